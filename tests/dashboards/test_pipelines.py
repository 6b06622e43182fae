"""One metric per signal: pygents' Prometheus collector and its OpenTelemetry instruments never
put a family twice into one registry, whichever order a program sets things up in.

Each scenario is a fresh interpreter (the global meter provider can be set once per process)
that serves `prometheus_client.REGISTRY` on loopback with `start_http_server`, as programs do;
the test reads `/metrics` over HTTP and runs `promtool check metrics` on it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import ROOT, contract, find_executable, missing

#: The exporter adds these to every series of the OpenTelemetry pipeline (0.64b0 and later).
SCOPE_LABELS = {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
EXPORTER = metadata.version("opentelemetry-exporter-prometheus")
EXPORTER_SCOPES = int(EXPORTER.split(".")[1].split("b")[0]) >= 64

PRELUDE = """
    import asyncio, json, sys, urllib.request

    TOOLS = []

    def workload(agent_name):
        # Four turns of one agent: two complete, one fails (KeyError), one times out.
        from pygents import Agent, Turn, TurnTimeoutError, tool

        if not TOOLS:  # tools register once per process

            @tool()
            async def ok(x: int) -> int:
                return x

            @tool()
            async def boom() -> None:
                raise KeyError("nope")

            @tool()
            async def slow() -> None:
                await asyncio.sleep(5)

            TOOLS.extend([ok, boom, slow])
        ok, boom, slow = TOOLS

        async def main():
            agent = Agent(agent_name, "d", [ok, boom, slow])
            turns = [Turn(ok, args=[1]), Turn(boom), Turn(slow, timeout=0.01), Turn(ok, args=[2])]
            for turn in turns:
                await agent.put(turn)
            for _ in range(3):
                try:
                    async for _ in agent.run():
                        pass
                except (KeyError, TurnTimeoutError):
                    pass

        asyncio.run(main())

    def scrape(port, openmetrics=False):
        headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def serve(registry=None):
        from prometheus_client import REGISTRY, start_http_server
        server, thread = start_http_server(0, addr="127.0.0.1", registry=registry or REGISTRY)
        return server.server_port

    def sdk_with_prometheus_reader():
        # On prometheus_client.REGISTRY (the only registry before exporter-prometheus 0.63b0).
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        return MeterProvider(metric_readers=[PrometheusMetricReader()])
"""

SDK_AFTER_IMPORT = """
    import pygents  # instruments itself; the global meter provider is a placeholder
    from opentelemetry import metrics

    port = serve()
    workload("early")
    before = scrape(port)  # no SDK yet: pygents' own collector serves the metrics
    metrics.set_meter_provider(sdk_with_prometheus_reader())
    workload("late")
    print(json.dumps({"before": before, "text": scrape(port), "om": scrape(port, True)}))
"""

SDK_BEFORE_IMPORT = """
    from opentelemetry import metrics
    metrics.set_meter_provider(sdk_with_prometheus_reader())

    import pygents  # instruments itself; the global meter provider records already

    port = serve()
    workload("late")
    print(json.dumps({"text": scrape(port), "om": scrape(port, True)}))
"""

EXPLICIT = """
    import pygents
    from opentelemetry import metrics
    from prometheus_client import REGISTRY, CollectorRegistry
    from pygents.observability import instrument

    provider = sdk_with_prometheus_reader()
    metrics.set_meter_provider(provider)
    port = serve()
    result = {}

    # An explicit registry selects pygents' collector alone, even with a recording global
    # meter provider exporting to that same registry.
    instrument(prometheus_registry=REGISTRY)
    workload("native")
    result["registry_only"] = scrape(port)

    # An explicit meter provider selects the OpenTelemetry instruments alone.
    instrument(meter_provider=provider)
    workload("otel")
    result["provider_only"] = scrape(port)

    # Both explicit, to two registries: each gets the metrics once.
    private = CollectorRegistry()
    instrument(meter_provider=provider, prometheus_registry=private)
    workload("both")
    result["both_global"] = scrape(port)
    result["both_private"] = scrape(serve(private))
    print(json.dumps(result))
"""


def run_scenario(code: str, tmp_path: Path) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k != "PYGENTS_TELEMETRY"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE) + textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"scenario failed ({proc.returncode}):\n{proc.stderr}"
    assert "has been created already" not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def promtool() -> str | None:
    return find_executable("promtool")


def families(text: str) -> dict[str, list[dict[str, str]]]:
    """``{pygents family: label sets of its samples}`` of a text exposition; a family's HELP
    line must appear once."""
    helps = re.findall(r"^# HELP (pygents_\w+) ", text, re.M)
    assert len(helps) == len(set(helps)), f"a family twice: {sorted(helps)}"
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("pygents_") and not family.name.endswith("_created"):
            found[family.name] = [dict(s.labels) for s in family.samples]
    return found


def lint(promtool: str | None, text: str) -> None:
    if promtool is None:
        missing("promtool is not installed (apt-get install prometheus)")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def pipeline(text: str) -> str:
    """Which pipeline wrote the pygents families: ``otel`` or ``native``; never a mix.

    The exporter puts scope labels on every sample (exporter-prometheus 0.64b0 and later);
    pygents' collector never does, and gives each counter a ``_created`` family, which the
    exporter never does: on older exporters, the counters tell the pipelines apart.
    """
    from prometheus_client.parser import text_string_to_metric_families

    parsed = [f for f in text_string_to_metric_families(text) if f.name.startswith("pygents_")]
    created = {f.name.removesuffix("_created") for f in parsed if f.name.endswith("_created")}
    found = set()
    for family in parsed:
        if family.name.endswith("_created") or not family.samples:
            continue
        scoped = {SCOPE_LABELS <= set(sample.labels) for sample in family.samples}
        assert len(scoped) == 1, f"{family.name}: samples from both pipelines"
        if scoped.pop():
            found.add("otel")
        elif family.type == "counter":
            found.add("native" if family.name in created else "otel")
        elif EXPORTER_SCOPES:
            found.add("native")
    assert len(found) == 1, "pygents families from both pipelines in one exposition"
    return found.pop()


def assert_contract_labels(text: str) -> None:
    """Every family is a contract metric with exactly its labels (plus the exporter's scope
    labels, and ``le`` on buckets)."""
    expected = {name.removesuffix("_total"): labels for name, (_k, labels) in contract().items()}
    for name, samples in families(text).items():
        assert name in expected, name
        for labels in samples:
            assert set(labels) - SCOPE_LABELS - {"le"} == set(expected[name]), (name, labels)


def turns(text: str, agent: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pygents_turns_total{") and f'agent="{agent}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_an_sdk_set_after_import_takes_over_and_each_family_stays_single(
    tmp_path: Path, promtool: str | None
) -> None:
    out = run_scenario(SDK_AFTER_IMPORT, tmp_path)
    # Before the SDK: pygents' own collector.
    assert pipeline(out["before"]) == "native"
    assert turns(out["before"], "early") == 4
    # After: the exporter alone, every family once, with the dashboards' names and labels.
    text = out["text"]
    assert pipeline(text) == "otel"
    assert {"pygents_turns", "pygents_turn_errors", "pygents_turn_timeouts"} <= set(families(text))
    assert_contract_labels(text)
    assert turns(text, "late") == 4
    assert turns(text, "early") == 4  # the counters read the same store: nothing lost
    lint(promtool, text)
    om_helps = re.findall(r"^# HELP (pygents_\w+) ", out["om"], re.M)
    assert om_helps and len(om_helps) == len(set(om_helps))


def test_an_sdk_set_before_import_carries_the_metrics_alone(
    tmp_path: Path, promtool: str | None
) -> None:
    out = run_scenario(SDK_BEFORE_IMPORT, tmp_path)
    text = out["text"]
    assert pipeline(text) == "otel"
    assert_contract_labels(text)
    assert 'error_type="KeyError"' in text
    assert turns(text, "late") == 4
    lint(promtool, text)


def test_explicit_arguments_select_one_pipeline_or_both(
    tmp_path: Path, promtool: str | None
) -> None:
    out = run_scenario(EXPLICIT, tmp_path)
    assert pipeline(out["registry_only"]) == "native"
    assert turns(out["registry_only"], "native") == 4
    assert pipeline(out["provider_only"]) == "otel"
    assert turns(out["provider_only"], "otel") == 4
    assert turns(out["provider_only"], "native") == 0  # the old collector is gone
    assert pipeline(out["both_global"]) == "otel"
    assert pipeline(out["both_private"]) == "native"
    assert turns(out["both_global"], "both") == turns(out["both_private"], "both") == 4
    for key in ("registry_only", "provider_only", "both_global", "both_private"):
        assert_contract_labels(out[key])
        lint(promtool, out[key])
