"""configure(): the standard OTEL_* values, atomic failure, final metrics, redacted endpoints.

In-process, with ``set_global=False`` wherever something is built (a global provider can be
set only once per process); the paths through already-global providers run in subprocesses
(test_zero_code.py, test_setup_globals.py). Spans go over real OTLP/HTTP to the receiver on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import OTLPReceiver
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from pygents import Agent, AgentRegistry, Turn, tool
from pygents.demo._cli import _banner
from pygents.observability import configure, instrument, is_instrumented, uninstrument
from pygents.observability._setup_env import redact_url

AGENT = "setup-agent"
#: Threads that configure() may start: SDK workers, the /metrics server, our shutdown helper.
CONFIGURE_THREADS = ("OtelBatch", "OtelPeriodicExportingMetricReader", "pygents-telemetry")


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "PYGENTS_CAPTURE")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, never via a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield
    uninstrument()


def define_double() -> None:
    @tool()
    async def double(n: int) -> int:
        """Double a number."""
        return n * 2


async def run_doubles(n: int) -> list[int]:
    agent = Agent(AGENT, "doubles", [double_tool()])
    for i in range(n):
        await agent.put(Turn("double", kwargs={"n": i}))
    return [value async for _turn, value in agent.run()]


def double_tool() -> Any:
    from pygents import ToolRegistry

    return ToolRegistry.get("double")


def warnings_naming(caplog: pytest.LogCaptureFixture, variable: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.name == "pygents.observability"
        and variable in r.getMessage()
    ]


# --------------------------------------------------------------------------- process state


def listening_sockets() -> set[str]:
    """The TCP sockets of this process in LISTEN state (Linux /proc), by inode."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                listening.add(f"{fields[1]} inode {fields[9]}")
    return listening


def configure_threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith(CONFIGURE_THREADS) or "serve_forever" in repr(t)
    }


def other_threads(before: set[threading.Thread]) -> list[str]:
    """Threads started since ``before`` that are still alive (after a short grace)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        if not alive:
            return []
        time.sleep(0.05)
    return sorted(t.name for t in alive)


def state() -> dict[str, Any]:
    """What configure() must leave as it found it when it fails."""
    return {
        "listening": listening_sockets(),
        "instrumented": is_instrumented(),
        "tracer_provider": trace.get_tracer_provider(),
        "meter_provider": metrics.get_meter_provider(),
        "registry": sorted(family.name for family in REGISTRY.collect()),
    }


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="counts sockets through Linux /proc"
)


# --------------------------------------------------------------------------- bad arguments

BAD_ARGUMENTS = [
    ({"prometheus_port": -1}, ValueError, "prometheus_port=-1"),
    ({"prometheus_port": 70000}, ValueError, "prometheus_port=70000"),
    ({"prometheus_port": "9464"}, TypeError, "prometheus_port"),
    ({"prometheus_port": True}, TypeError, "prometheus_port"),
    ({"prometheus_port": 9464.0}, TypeError, "prometheus_port"),
    ({"prometheus_host": ""}, TypeError, "prometheus_host"),
    ({"prometheus_host": 127}, TypeError, "prometheus_host"),
    ({"service_name": 5}, TypeError, "service_name"),
    ({"console_spans": "yes"}, TypeError, "console_spans"),
    ({"set_global": None}, TypeError, "set_global"),
    ({"capture_content": "all"}, TypeError, "capture_content"),
    ({"span_exporter": object()}, TypeError, "span_exporter"),
    ({"metric_export_interval": 0}, ValueError, "metric_export_interval"),
    ({"metric_export_interval": -5.0}, ValueError, "metric_export_interval"),
    ({"metric_export_interval": float("nan")}, ValueError, "metric_export_interval"),
    ({"metric_export_interval": "10"}, TypeError, "metric_export_interval"),
    ({"prometheus_registry": True}, TypeError, "prometheus_registry"),
    ({"prometheus_registry": "default"}, TypeError, "prometheus_registry"),
]


@needs_proc
@pytest.mark.parametrize("already_instrumented", [False, True], ids=["bare", "instrumented"])
@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_fail_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
    already_instrumented: bool,
) -> None:
    # Everything that could be built is asked for: OTLP for both signals, console spans,
    # an in-memory exporter, /metrics on a free port, and the global providers.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    if already_instrumented:
        assert instrument(prometheus_registry=CollectorRegistry(), meter_provider=False)
    arguments: dict[str, Any] = {
        "prometheus_port": 0,
        "span_exporter": InMemorySpanExporter(),
        "set_global": True,
        **kwargs,
    }
    threads = set(threading.enumerate())
    before = state()
    with pytest.raises(error, match=message):
        configure("atomic", **arguments)
    assert state() == before
    assert other_threads(threads) == []


@needs_proc
def test_a_busy_port_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp,console")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        threads = set(threading.enumerate())
        before = state()
        with pytest.raises(OSError):
            configure("atomic", prometheus_port=port, span_exporter=InMemorySpanExporter())
        assert state() == before
        assert other_threads(threads) == []


class FailingRegistry(CollectorRegistry):
    """A registry that refuses every collector (as a broken custom registry would)."""

    def register(self, collector: Any) -> None:
        raise RuntimeError("this registry is broken")


@needs_proc
async def test_a_failure_in_the_last_step_undoes_server_threads_and_hooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    define_double()
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        exporter = InMemorySpanExporter()
        threads = set(threading.enumerate())
        before = state()
        with pytest.raises(RuntimeError, match="broken"):
            # The /metrics server, the batch processors and the metric reader all exist by
            # the time the bridge registers its collector and fails.
            configure(
                "atomic",
                prometheus_port=0,
                prometheus_registry=FailingRegistry(),
                span_exporter=exporter,
                metric_export_interval=0.2,
            )
        assert state() == before
        assert other_threads(threads) == []
        assert not is_instrumented()
        assert await run_doubles(2) == [0, 2]
        assert exporter.get_finished_spans() == ()


# --------------------------------------------------------------------------- exporters


async def test_console_traces_exporter_prints_spans_and_skips_otlp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    define_double()
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        with configure("t", set_global=False, prometheus_registry=False) as handle:
            assert handle.span_destinations == ("the console",)
            assert handle.meter_provider is None
            assert await run_doubles(2) == [0, 2]
        assert receiver.requests("/v1/traces") == 0
        assert receiver.requests("/v1/metrics") == 0
    out = capsys.readouterr().out
    assert out.count('"name": "execute_tool double"') == 2, out
    assert f'"name": "invoke_agent {AGENT}"' in out


async def test_an_exporter_list_sends_to_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    define_double()
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", " OTLP , console ")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
        with configure("t", set_global=False, prometheus_registry=False) as handle:
            assert handle.span_destinations == (f"OTLP to {receiver.endpoint}", "the console")
            assert handle.metric_destinations == ("the console",)
            await run_doubles(3)
        names = sorted(s.name for s in receiver.spans())
        assert receiver.requests("/v1/metrics") == 0
    assert names == [*["execute_tool double"] * 3, f"invoke_agent {AGENT}"]
    out = capsys.readouterr().out
    assert out.count('"name": "execute_tool double"') == 3
    assert '"resource_metrics"' in out  # the console metric exporter's final export
    assert '"name": "pygents"' in out  # ... of pygents' instruments


@pytest.mark.parametrize("signal", ["spans", "metrics"])
async def test_a_failing_console_exporter_is_reported_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, signal: str
) -> None:
    # stdout closed under the program (a pipe whose reader left fails the same way): every
    # span or metric export to the console fails; pygents says so once, the SDK not at all.
    define_double()
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console" if signal == "spans" else "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console" if signal == "metrics" else "none")
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    with configure("t", set_global=False, prometheus_registry=False, metric_export_interval=0.05):
        assert await run_doubles(5) == [0, 2, 4, 6, 8]  # 6 spans
        await asyncio.sleep(0.3)  # a few metric exports
    logged = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("opentelemetry", "pygents"))
    ]
    exporter = "ConsoleSpanExporter" if signal == "spans" else "ConsoleMetricExporter"
    assert len(logged) == 1, logged
    assert f"exporting {signal} with {exporter} failed" in logged[0], logged


async def test_none_exports_nothing_even_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    define_double()
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        exporter = InMemorySpanExporter()
        with configure("t", set_global=False, span_exporter=exporter) as handle:
            assert handle.span_destinations == ("InMemorySpanExporter",)
            assert handle.meter_provider is None
            await run_doubles(2)
        assert receiver.requests("/v1/traces") == receiver.requests("/v1/metrics") == 0
    assert len(exporter.get_finished_spans()) == 3


def test_explicit_otlp_without_endpoint_uses_the_default_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    with configure("t", set_global=False, prometheus_registry=False) as handle:
        assert handle.span_destinations == ("OTLP to http://localhost:4318 (the default)",)
        assert handle.meter_provider is None  # OTEL_METRICS_EXPORTER unset, no endpoint
    # Unset: no endpoint, no exporter (never to an endpoint nobody named).
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    with configure("t", set_global=False, prometheus_registry=False) as handle:
        assert handle.span_destinations == ()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_TRACES_EXPORTER", "otlp,jaeger"),
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_METRICS_EXPORTER", "logging"),
    ],
)
def test_unknown_exporters_are_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
) -> None:
    caplog.set_level(logging.WARNING, "pygents.observability")
    monkeypatch.setenv(variable, value)
    with configure("t", set_global=False, prometheus_registry=False):
        pass
    (message,) = warnings_naming(caplog, variable)
    assert value.split(",")[-1] in message


@pytest.mark.parametrize("value", ["0", "-1", "lots", "1.5"])
async def test_an_invalid_queue_size_is_named_and_the_default_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    define_double()
    caplog.set_level(logging.WARNING)
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", value)
        with configure("t", set_global=False, prometheus_registry=False):
            await run_doubles(2)
        spans = receiver.spans()
    (message,) = warnings_naming(caplog, "OTEL_BSP_MAX_QUEUE_SIZE")
    assert repr(value) in message and "65536" in message
    assert len(spans) == 3
    # The SDK's own complaint (a traceback for a non-number) is not there: it read nothing.
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_a_batch_larger_than_the_queue_is_clamped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500")
    # The SDK alone raises ValueError here ("max_export_batch_size must be less than ...").
    with configure("t", set_global=False, span_exporter=InMemorySpanExporter()):
        pass
    (message,) = warnings_naming(caplog, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    assert "100" in message
    assert "(its default)" not in message


def test_a_default_batch_larger_than_a_small_queue_says_it_is_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")  # the batch variable is not set
    with configure("t", set_global=False, span_exporter=InMemorySpanExporter()):
        pass
    (message,) = warnings_naming(caplog, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    assert "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512 (its default)" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"),
    ],
)
async def test_an_unsupported_protocol_is_named_and_http_protobuf_used(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
) -> None:
    define_double()
    caplog.set_level(logging.WARNING, "pygents.observability")
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv(variable, value)
        with configure("t", set_global=False, prometheus_registry=False):
            await run_doubles(1)
        spans = receiver.spans()
        assert receiver.errors == []
    (message,) = warnings_naming(caplog, variable)
    assert repr(value) in message and "http/protobuf" in message
    assert len(spans) == 2


async def _metric_exports_within(
    monkeypatch: pytest.MonkeyPatch, seconds: float, **kwargs: Any
) -> int:
    """OTLP metric exports a configure() makes in ``seconds`` (the final one not counted)."""
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        with configure("t", set_global=False, prometheus_registry=False, **kwargs):
            await run_doubles(2)  # something to export
            AgentRegistry.unregister(AGENT)  # the next call makes it again
            await asyncio.sleep(seconds)
            return receiver.requests("/v1/metrics")


async def test_otel_metric_export_interval_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    # Milliseconds, as the OpenTelemetry SDK reads it; unset, pygents exports every 10 s.
    define_double()
    assert await _metric_exports_within(monkeypatch, 0.6) == 0
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
    assert await _metric_exports_within(monkeypatch, 0.6) >= 2
    # The argument wins over the variable.
    assert await _metric_exports_within(monkeypatch, 0.6, metric_export_interval=30.0) == 0


@pytest.mark.parametrize("value", ["0", "-100", "soon", "inf"])
async def test_an_invalid_metric_export_interval_is_named_and_the_default_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    define_double()
    caplog.set_level(logging.WARNING, "pygents.observability")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", value)
    assert await _metric_exports_within(monkeypatch, 0.3) == 0
    (message,) = warnings_naming(caplog, "OTEL_METRIC_EXPORT_INTERVAL")
    assert repr(value) in message and "10 seconds" in message


# --------------------------------------------------------------------------- final metrics


@pytest.mark.parametrize("which", ["private", "global"])
async def test_final_metrics_stay_readable_after_the_block(which: str) -> None:
    define_double()
    registry = CollectorRegistry() if which == "private" else None
    live = registry if registry is not None else REGISTRY
    labels = {"agent": AGENT, "tool": "double", "stop_reason": "completed"}
    with configure("t", set_global=False, prometheus_registry=registry) as handle:
        assert handle.prometheus_registry is live
        assert handle.final_metrics is None
        await run_doubles(3)
        assert live.get_sample_value("pygents_turns_total", labels) == 3
    # The bridge is gone, and its collector with it ...
    assert live.get_sample_value("pygents_turns_total", labels) is None
    # ... but the last values are kept.
    final: Any = handle.final_metrics  # (mypy narrowed it to None inside the block)
    assert final.get_sample_value("pygents_turns_total", labels) == 3
    assert final.get_sample_value("pygents_turn_duration_seconds_count", labels) == 3
    exposition = generate_latest(final).decode()
    assert "# TYPE pygents_turns_total counter" in exposition
    assert "process_" not in exposition  # only pygents' families


async def test_configure_runs_both_metric_pipelines_and_exports_the_final_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # configure()'s own meter provider exports over OTLP, never to a Prometheus registry, so
    # /metrics keeps pygents' families too; and the last OTLP export (at shutdown) still
    # carries the counters, which are read at collection.
    define_double()
    labels = {"agent": AGENT, "tool": "double", "stop_reason": "completed"}
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        # An interval far longer than the test: only the shutdown exports.
        with configure("t", set_global=False, metric_export_interval=600) as handle:
            assert handle.prometheus_registry is REGISTRY
            await run_doubles(3)
            assert REGISTRY.get_sample_value("pygents_turns_total", labels) == 3
        assert receiver.requests("/v1/metrics") == 1
        found = receiver.last_metric("pygents.turns")
    assert found is not None, "the counters were missing from the export at shutdown"
    points = found[1].sum.data_points
    assert [getattr(p, p.WhichOneof("value")) for p in points] == [3]
    assert {kv.key: kv.value.string_value for kv in points[0].attributes} == labels
    assert handle.final_metrics is not None
    assert handle.final_metrics.get_sample_value("pygents_turns_total", labels) == 3


@pytest.mark.parametrize(
    ("argument", "env", "expected"),
    [
        (None, {}, "pygents"),
        (None, {"OTEL_RESOURCE_ATTRIBUTES": "team=x,service.name=shop%20api"}, "shop api"),
        (
            None,
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attrs", "OTEL_SERVICE_NAME": "env"},
            "env",
        ),
        (
            "arg",
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attrs", "OTEL_SERVICE_NAME": "env"},
            "arg",
        ),
    ],
    ids=["default", "resource-attributes", "service-name-variable", "argument"],
)
def test_the_service_name_follows_the_opentelemetry_precedence(
    monkeypatch: pytest.MonkeyPatch, argument: str | None, env: dict[str, str], expected: str
) -> None:
    # The argument, then OTEL_SERVICE_NAME, then service.name in OTEL_RESOURCE_ATTRIBUTES
    # (which "pygents" used to override), then "pygents".
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    with configure(argument, set_global=False, prometheus_registry=False) as handle:
        resource = handle.tracer_provider.resource
    assert resource.attributes["service.name"] == expected
    if "team=x" in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        assert resource.attributes["team"] == "x"  # the other attributes are kept


async def test_slow_resource_detection_does_not_race_the_metric_readers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A reader's ticker starts when the reader is built; had slow resource detection (cloud
    # detectors query a metadata endpoint) run between the reader and its provider, the first
    # tick would find the reader unregistered and the SDK would warn.
    from opentelemetry.sdk.resources import Resource

    create = Resource.create

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return create(*args, **kwargs)

    monkeypatch.setattr(Resource, "create", staticmethod(slow_create))
    define_double()
    caplog.set_level(logging.WARNING)
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        with configure("t", set_global=False, metric_export_interval=0.05):
            await run_doubles(3)
            receiver.wait_for(lambda: receiver.requests("/v1/metrics") > 0, timeout=5)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []


def test_no_registry_no_final_metrics() -> None:
    with configure("t", set_global=False, prometheus_registry=False) as handle:
        pass
    assert handle.prometheus_registry is None
    assert handle.final_metrics is None


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("https://user:secret@host:4318", "https://***@host:4318"),
        ("https://secret@host:4318/v1/traces", "https://***@host:4318/v1/traces"),
        ("user:secret@host:4318", "***@host:4318"),
        ("https://host:4318?api_key=secret&region=eu", "https://host:4318?api_key=***&region=***"),
        ("https://host/?secret", "https://host/?***"),
        ("https://host/otlp/ab12CD34ef56GH78ij90KL12mn/v1", "https://host/otlp/***/v1"),
        ("https://host:4318/v1/traces;token=secret7", "https://host:4318/v1/traces;token=***"),
        ("https://host/a;secret;k=v/v1", "https://host/a;***;k=***/v1"),
        ("https://host:4318#secret", "https://host:4318"),
        ("http://[::1", "<an endpoint that is not a valid URL>"),
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318"),
        ("grpc://collector:4317", "grpc://collector:4317"),
    ],
)
def test_redact_url(endpoint: str, shown: str) -> None:
    assert redact_url(endpoint) == shown


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_the_demo_banner_never_prints_endpoint_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    endpoint = "https://demo-user:s3cr3t-pass@127.0.0.1:9/otlp?token=t0k3n-value"
    monkeypatch.setenv(variable, endpoint)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    options = argparse.Namespace(
        turns=5, duration=None, agents=3, metrics_host="127.0.0.1", metrics_port=0, redis=None
    )
    with configure(
        "t", set_global=False, prometheus_port=0, prometheus_registry=CollectorRegistry()
    ) as handle:
        _banner(options, 1, handle)
    out = capsys.readouterr().out
    assert "traces:  OTLP to https://***@127.0.0.1:9/otlp?token=***" in out, out
    for secret in ("demo-user", "s3cr3t", "t0k3n"):
        assert secret not in out


def test_the_demo_banner_says_when_nothing_is_exported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = argparse.Namespace(
        turns=None, duration=2.0, agents=3, metrics_host="127.0.0.1", metrics_port=0, redis=None
    )
    with configure("t", set_global=False, prometheus_registry=False) as handle:
        _banner(options, 1, handle)
    assert "traces:  not exported (set OTEL_EXPORTER_OTLP_ENDPOINT" in capsys.readouterr().out
