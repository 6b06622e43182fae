"""Automatic instrumentation at ``import pygents``, its off switches, and the instrumentor.

The suite itself runs with ``PYGENTS_TELEMETRY=off`` (tests/conftest.py), so everything automatic is
checked in a fresh interpreter with an explicit environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from pygents import Turn, tool
from pygents.observability import is_instrumented

SWITCHES = ("PYGENTS_TELEMETRY", "OTEL_SDK_DISABLED", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the telemetry switches (the suite sets one), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    # nothing in the child may try to export anywhere
    for key in list(env):
        if key.startswith("OTEL_EXPORTER_") or key in (
            "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER",
        ):
            del env[key]
    env.update(extra)
    return env


def run_child(code: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"child printed no result:\nstdout={proc.stdout}\nstderr={proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr"] = proc.stderr
    return result


AUTO_ON = """
    import asyncio, json, sys

    import pygents  # auto-instruments here
    from pygents import Turn, tool

    otel_after_import = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
    from pygents.observability import is_instrumented
    instrumented = is_instrumented()

    # A program that configures an SDK (after importing pygents) gets pygents spans.
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    @tool()
    async def ping(who: str) -> str:
        "Answer a ping."
        return "pong " + who

    value = asyncio.run(Turn("ping", kwargs={"who": "me"}).returning())
    provider.force_flush()
    spans = [
        {"name": s.name, "attributes": dict(s.attributes or {})}
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps({
        "instrumented": instrumented,
        "otel_after_import": otel_after_import,
        "value": value,
        "spans": spans,
    }))
"""


def test_import_pygents_instruments_automatically(tmp_path: Path) -> None:
    result = run_child(AUTO_ON, clean_env(), tmp_path)
    assert result["instrumented"] is True
    assert result["value"] == "pong me"
    tool_spans = [s for s in result["spans"] if s["name"] == "execute_tool ping"]
    assert len(tool_spans) == 1, result["spans"]
    attrs = tool_spans[0]["attributes"]
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "ping"
    assert attrs["pygents.turn.stop_reason"] == "completed"
    assert "Traceback" not in result["stderr"], result["stderr"]


SWITCHED_OFF = """
    import json, sys

    import pygents

    otel_after_import = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
    prom_after_import = sorted(m for m in sys.modules if m.split(".")[0] == "prometheus_client")
    from pygents.observability import is_instrumented
    instrumented = is_instrumented()
    otel_after_check = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
    print(json.dumps({
        "instrumented": instrumented,
        "otel_after_import": otel_after_import,
        "prom_after_import": prom_after_import,
        "otel_after_check": otel_after_check,
    }))
"""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PYGENTS_TELEMETRY", "off"),
        ("PYGENTS_TELEMETRY", "false"),
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "pygents"),
        ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "requests, pygents ,urllib3"),
    ],
)
def test_environment_switches_auto_instrumentation_off(
    tmp_path: Path, name: str, value: str
) -> None:
    result = run_child(SWITCHED_OFF, clean_env(**{name: value}), tmp_path)
    assert result["instrumented"] is False
    assert result["otel_after_import"] == [], f"{name}={value}: import pygents imported OTel"
    assert result["prom_after_import"] == [], f"{name}={value}: import pygents imported prometheus"
    assert result["otel_after_check"] == [], f"{name}={value}: is_instrumented() imported OTel"


def test_unrelated_disabled_instrumentations_keep_it_on(tmp_path: Path) -> None:
    env = clean_env(
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="requests,pygentsx", OTEL_SDK_DISABLED="false"
    )
    result = run_child(SWITCHED_OFF, env, tmp_path)
    assert result["instrumented"] is True


# --------------------------------------------------------------------------- instrumentor


def test_entry_point_names_the_instrumentor() -> None:
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

    from pygents.observability import PygentsInstrumentor

    found = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "pygents"]
    assert len(found) == 1, found
    loaded = found[0].load()
    assert loaded is PygentsInstrumentor
    assert issubclass(loaded, BaseInstrumentor)


async def test_instrumentor_instruments_and_uninstruments_in_process() -> None:
    from pygents.observability import PygentsInstrumentor

    @tool()
    async def echo(x: int) -> int:
        return x

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = PygentsInstrumentor()
    assert not is_instrumented()
    instrumentor.instrument(
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        prometheus_registry=CollectorRegistry(),
    )
    try:
        assert is_instrumented()
        assert instrumentor.is_instrumented_by_opentelemetry
        assert await Turn("echo", args=[1]).returning() == 1
        names = [s.name for s in exporter.get_finished_spans()]
        assert names == ["execute_tool echo"]
    finally:
        instrumentor.uninstrument()
    assert not is_instrumented()
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert await Turn("echo", args=[2]).returning() == 2
    assert len(exporter.get_finished_spans()) == 1, "spans recorded after uninstrument()"
    provider.shutdown()
