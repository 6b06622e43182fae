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
