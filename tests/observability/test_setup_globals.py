"""configure() with the global providers (``set_global=True``), in a fresh interpreter.

OpenTelemetry lets a global provider be set only once per process, so these run in a
subprocess: the first ``configure()`` installs its providers; after its handle shut them down, a
second ``configure()`` must not reuse them (they would drop every span) and must not try to
override them either. A program that set up its own SDK provider first gets it reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PROGRAM = """
    import asyncio, json, logging

    from opentelemetry import metrics, trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pygents import Turn, tool
    from pygents.observability import configure

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


    @tool()
    async def ping() -> str:
        \"\"\"Answer pong.\"\"\"
        return "pong"


    def names(exporter):
        return sorted(s.name for s in exporter.get_finished_spans())


    facts = {}
    first = InMemorySpanExporter()
    with configure("first", span_exporter=first, metric_export_interval=60) as h1:
        asyncio.run(Turn("ping").returning())
        facts["first"] = {
            "global": trace.get_tracer_provider() is h1.tracer_provider,
            "global_meter": metrics.get_meter_provider() is h1.meter_provider,
            "reused": h1.reused_tracer_provider,
        }
    second = InMemorySpanExporter()
    with configure("second", span_exporter=second) as h2:
        asyncio.run(Turn("ping").returning())
        facts["second"] = {
            "global": trace.get_tracer_provider() is h2.tracer_provider,
            "global_meter": metrics.get_meter_provider() is h2.meter_provider,
            "reused": h2.reused_tracer_provider,
        }
    facts["spans"] = [names(first), names(second)]
    print(json.dumps(facts))
"""


def test_a_second_configure_after_shutdown_builds_its_own_provider(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYGENTS_"))}
    # A (console) metric exporter, so that configure() builds a meter provider too.
    env.update(OTEL_METRICS_EXPORTER="console", OTEL_TRACES_EXPORTER="none")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    facts: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts == {
        "first": {"global": True, "global_meter": True, "reused": False},
        "second": {"global": False, "global_meter": False, "reused": False},
        "spans": [["execute_tool ping"], ["execute_tool ping"]],
    }
    assert "global tracer provider was built by an earlier configure()" in proc.stderr
    assert "global meter provider was built by an earlier configure()" in proc.stderr
    assert "Overriding" not in proc.stderr  # OpenTelemetry's own complaint is avoided


REUSED_METER_PROGRAM = """
    import asyncio, json, sys
    from urllib.request import urlopen

    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from prometheus_client import REGISTRY, generate_latest

    from pygents import Agent, Turn, tool
    from pygents.observability import configure

    # What a program (or opentelemetry-instrument's distro) set up before configure(): a
    # global SDK meter provider, with a PrometheusMetricReader on prometheus_client.REGISTRY
    # (OTEL_METRICS_EXPORTER=prometheus) or without one (otlp, console, none).
    readers = [InMemoryMetricReader()]
    if sys.argv[1] == "prometheus-reader":
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader())
    metrics.set_meter_provider(MeterProvider(metric_readers=readers))


    @tool()
    async def ping() -> str:
        return "pong"


    async def main() -> None:
        agent = Agent("pinger", "d", [ping])
        await agent.put(Turn("ping"))
        async for _ in agent.run():
            pass


    def helps(text):
        return sorted(l.split()[2] for l in text.splitlines() if l.startswith("# HELP pygents_"))


    with configure(prometheus_port=0) as h:
        asyncio.run(main())
        served = urlopen(f"http://127.0.0.1:{h.metrics_port}/metrics").read().decode()
        facts = {
            "reused_meter_provider": h.reused_meter_provider,
            "own_registry": h.prometheus_registry not in (None, REGISTRY),
            "served": helps(served),
            "global_registry": helps(generate_latest(REGISTRY).decode()),
            "turns": h.prometheus_registry.get_sample_value(
                "pygents_turns_total",
                {"agent": "pinger", "tool": "ping", "stop_reason": "completed"},
            ),
        }
    data = readers[0].get_metrics_data()
    facts["otel"] = sorted(
        m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    )
    print(json.dumps(facts))
"""


def test_configure_with_a_port_serves_pygents_metrics_beside_a_reused_meter_provider(
    tmp_path: Path,
) -> None:
    # A /metrics endpoint asked of configure() carries pygents' families even when the meter
    # provider was already global: on a registry of its own, so no family is twice in any
    # registry whether or not that provider puts them on prometheus_client.REGISTRY too.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYGENTS_"))}
    env.update(OTEL_TRACES_EXPORTER="none")
    results = {}
    for case in ("no-prometheus-reader", "prometheus-reader"):
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(REUSED_METER_PROGRAM), case],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, facts in results.items():
        assert facts["reused_meter_provider"] is True, case
        assert facts["own_registry"] is True, case
        assert facts["turns"] == 1.0, case
        served = facts["served"]
        assert "pygents_turns_total" in served and "pygents_agent_running" in served, case
        assert len(served) == len(set(served)), case  # each family once
        assert "pygents.turns" in facts["otel"], case  # the reused provider has them too
    # Without a Prometheus reader of its own the global registry has no pygents family; with
    # one, each family is there once (the reader's), not twice.
    assert results["no-prometheus-reader"]["global_registry"] == []
    with_reader = results["prometheus-reader"]["global_registry"]
    assert "pygents_turns_total" in with_reader
    assert len(with_reader) == len(set(with_reader))
