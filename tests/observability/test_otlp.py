"""Real OTLP: configure() with the real OTLP/HTTP exporters sending to a receiver on 127.0.0.1.

The happy path decodes the protobuf the exporters sent (spans and metrics); the fault tests point
the exporters at a closed port, a server answering 500 and a server that hangs, and check that the
program neither breaks, nor stalls, nor floods the log.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from otlp_receiver import OTLPReceiver

from pygents import Agent, ToolRegistry, Turn, tool
from pygents.observability import configure, is_instrumented, uninstrument
from pygents.observability._settings import reset_warnings

AGENT = "otlp-agent"
OTLP_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
    "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED",
)
#: Threads of the export pipeline (SDK workers, pygents' bounded shutdown).
EXPORT_THREADS = ("OtelBatch", "OtelPeriodicExportingMetricReader", "pygents-telemetry")
SPAN_KIND_INTERNAL = 1
STATUS_CODE_ERROR = 2
SDK_VERSION = tuple(int(part) for part in metadata.version("opentelemetry-sdk").split(".")[:2])


@pytest.fixture(autouse=True)
def _clean_otlp_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in OTLP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, never via a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    before = set(threading.enumerate())
    yield
    uninstrument()
    # Exporter threads that a timed-out shutdown() abandoned must not log into the next test.
    join_export_threads(before, timeout=8)


def join_export_threads(before: set[threading.Thread], timeout: float) -> None:
    """Give export threads started since ``before`` (bounded) time to finish."""
    deadline = time.monotonic() + timeout
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith(EXPORT_THREADS):
            thread.join(max(0.0, deadline - time.monotonic()))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def define_tools() -> None:
    @tool()
    async def double(n: int) -> int:
        """Double a number."""
        return n * 2

    @tool()
    async def count(upto: int):
        """Count up to a number."""
        for i in range(upto):
            yield i


async def run_agent(name: str, turns: list[Turn]) -> list[tuple[str, Any]]:
    agent = Agent(
        name,
        "exports over OTLP",
        [ToolRegistry.get("double"), ToolRegistry.get("count")],
        tags=["zeta", "alpha"],
    )
    for turn in turns:
        await agent.put(turn)
    results = []
    async for turn, value in agent.run():
        results.append((turn.tool.metadata.name, value))
    return results


def doubles(n: int) -> list[Turn]:
    return [Turn("double", kwargs={"n": i}) for i in range(n)]


# --------------------------------------------------------------------------- happy path


@pytest.mark.timeout(30)
async def test_spans_and_metrics_arrive_over_otlp_http(monkeypatch: pytest.MonkeyPatch) -> None:
    define_tools()
    n_double = 7
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        handle = configure(service_name="t", set_global=False, metric_export_interval=0.5)
        try:
            assert is_instrumented()
            turns = [*doubles(n_double), Turn("count", kwargs={"upto": 3}, timeout=5)]
            results = await run_agent(AGENT, turns)
        finally:
            assert handle.shutdown(timeout=10) is True
        assert not is_instrumented()
        assert receiver.errors == []
        spans = receiver.spans()
        metric = receiver.last_metric("pygents.turns")

    assert results == [("double", 2 * i) for i in range(n_double)] + [
        ("count", i) for i in range(3)
    ]

    # ---- spans
    names = sorted(s.name for s in spans)
    assert names == sorted(
        [f"invoke_agent {AGENT}", *["execute_tool double"] * n_double, "execute_tool count"]
    ), names
    for s in spans:
        assert s.resource.get("service.name") == "t"
        assert s.scope_name == "pygents"
        assert s.span.kind == SPAN_KIND_INTERNAL
        assert s.span.status.code != STATUS_CODE_ERROR
        assert len(s.span.trace_id) == 16 and len(s.span.span_id) == 8
        assert s.span.end_time_unix_nano >= s.span.start_time_unix_nano > 0

    (agent_span,) = [s for s in spans if s.name == f"invoke_agent {AGENT}"]
    agent_attrs = agent_span.attributes
    assert agent_attrs["gen_ai.operation.name"] == "invoke_agent"
    assert agent_attrs["gen_ai.agent.name"] == AGENT
    assert agent_attrs["gen_ai.agent.description"] == "exports over OTLP"
    assert agent_attrs["pygents.agent.tags"] == ["alpha", "zeta"]
    assert agent_attrs["pygents.agent.turns"] == n_double + 1

    tool_spans = [s for s in spans if s.name.startswith("execute_tool ")]
    for s in tool_spans:
        attrs = s.attributes
        tool_name = s.name.removeprefix("execute_tool ")
        assert attrs["gen_ai.operation.name"] == "execute_tool"
        assert attrs["gen_ai.tool.name"] == tool_name
        assert attrs["gen_ai.tool.type"] == "function"
        assert attrs["pygents.turn.stop_reason"] == "completed"
        assert "error.type" not in attrs
        # content capture is off by default: no argument or result on the wire
        assert "gen_ai.tool.call.arguments" not in attrs
        assert "gen_ai.tool.call.result" not in attrs
        # children of the agent run span
        assert s.span.trace_id == agent_span.span.trace_id
        assert s.span.parent_span_id == agent_span.span.span_id
        if tool_name == "double":
            assert attrs["gen_ai.tool.description"] == "Double a number."
            assert attrs["pygents.turn.values"] == 1
            assert attrs["pygents.turn.timeout"] == 60.0
            assert isinstance(attrs["pygents.turn.timeout"], float)
        else:
            assert attrs["gen_ai.tool.description"] == "Count up to a number."
            assert attrs["pygents.turn.values"] == 3
            assert attrs["pygents.turn.timeout"] == 5.0
            yields = [e for e in s.span.events if e.name == "pygents.tool.yield"]
            assert len(yields) == 3

    # ---- metrics: pygents.turns, a monotonic cumulative sum
    assert metric is not None, "no pygents.turns metric arrived over OTLP"
    resource, turns_metric = metric
    assert resource.get("service.name") == "t"
    assert turns_metric.WhichOneof("data") == "sum"
    assert turns_metric.sum.is_monotonic
    by_tool: dict[str, int] = {}
    for point in turns_metric.sum.data_points:
        attrs = {kv.key: kv.value for kv in point.attributes}
        labels = {k: v.string_value for k, v in attrs.items()}
        # The contract's label names (they pass the OTel -> Prometheus translation unchanged).
        assert labels["agent"] == AGENT
        assert labels["stop_reason"] == "completed"
        tool_name = labels["tool"]
        by_tool[tool_name] = by_tool.get(tool_name, 0) + int(point.as_int or point.as_double)
    assert by_tool == {"double": n_double, "count": 1}


@pytest.mark.timeout(30)
async def test_otlp_metrics_include_duration_histograms(monkeypatch: pytest.MonkeyPatch) -> None:
    define_tools()
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        handle = configure(service_name="t", set_global=False, metric_export_interval=0.5)
        try:
            await run_agent(AGENT, doubles(4))
        finally:
            assert handle.shutdown(timeout=10) is True
        durations = {
            name: receiver.last_metric(name)
            for name in ("pygents.turn.duration", "pygents.tool.duration")
        }
    for name, found in durations.items():
        assert found is not None, f"{name} did not arrive over OTLP"
        _resource, metric = found
        assert metric.unit == "s", name
        assert metric.WhichOneof("data") == "histogram", name
        total = sum(p.count for p in metric.histogram.data_points)
        assert total == 4, (name, total)
        for point in metric.histogram.data_points:
            labels = {kv.key: kv.value.string_value for kv in point.attributes}
            assert labels["tool"] == "double", (name, labels)


# --------------------------------------------------------------------------- protocol choice


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_configure_picks_exporter_per_protocol(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    kind = "grpc" if protocol == "grpc" else "http"
    traces = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{kind}.trace_exporter")
    metrics = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{kind}.metric_exporter")
    built: list[str] = []
    # configure() imports the exporter classes from these modules when it runs: record what it
    # builds there instead of reading it back from the SDK providers' private attributes.
    for module, name in ((traces, "OTLPSpanExporter"), (metrics, "OTLPMetricExporter")):
        monkeypatch.setattr(module, name, recording(getattr(module, name), f"{kind}.{name}", built))

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    handle = configure(service_name="t", set_global=False, metric_export_interval=60)
    try:
        assert sorted(built) == [f"{kind}.OTLPMetricExporter", f"{kind}.OTLPSpanExporter"]
        assert handle.meter_provider is not None
    finally:
        started = time.monotonic()
        handle.shutdown(timeout=3)
        assert time.monotonic() - started < 3.5


def recording(cls: type, label: str, built: list[str]) -> type:
    """A subclass of an exporter class that appends ``label`` to ``built`` per instance."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)  # type: ignore[misc]
        built.append(label)

    return type(cls.__name__, (cls,), {"__init__": __init__})


# --------------------------------------------------------------------------- faults

N_FAULT = 10_000


def export_log_records(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [
        r
        for r in records
        if r.levelno >= logging.WARNING and r.name.startswith(("opentelemetry", "pygents"))
    ]


#: What each of pygents' export warnings is about: one per signal, and one for shutdown's flush.
WARNING_KINDS = {
    "spans": "exporting spans with ",
    "metrics": "exporting metrics with ",
    "flush": "flushing did not finish",
}


def warnings_by_kind(records: list[logging.LogRecord]) -> dict[str, list[str]]:
    """pygents' export warnings in ``records`` by kind; ``other`` holds every other record.

    Every WARNING+ record of the OpenTelemetry and pygents loggers is in one of the lists.
    """
    found: dict[str, list[str]] = {}
    for record in export_log_records(records):
        message = record.getMessage()
        kind = "other"
        if record.name == "pygents.observability":
            kind = next((k for k, text in WARNING_KINDS.items() if text in message), "other")
        found.setdefault(kind, []).append(f"{record.name}: {message[:200]}")
    return found


async def timed_run(name: str, n: int) -> tuple[float, list[tuple[str, Any]]]:
    started = time.perf_counter()
    results = await run_agent(name, doubles(n))
    return time.perf_counter() - started, results


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["closed-port", "http-500", "hang"])
async def test_export_faults_neither_break_nor_stall_nor_flood(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    define_tools()
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    expected = [("double", 2 * i) for i in range(N_FAULT)]

    # Reference 1: no telemetry at all.
    assert not is_instrumented()
    _, plain = await timed_run("plain", N_FAULT)
    assert plain == expected

    # Reference 2: the same run exporting to a working receiver.
    with OTLPReceiver() as good:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", good.endpoint)
        handle = configure(service_name="t", set_global=False, metric_export_interval=0.5)
        try:
            good_seconds, good_results = await timed_run("baseline", N_FAULT)
        finally:
            assert handle.shutdown(timeout=10) is True
        assert good.requests("/v1/traces") > 0
    assert good_results == expected

    # The faulty collector.
    caplog.clear()
    # The warning is once per process: an export thread an earlier case abandoned (its
    # retries outlive join_export_threads on a loaded machine) may have used it up since
    # this test began. This phase's failure must be reported whatever happened before it.
    reset_warnings()
    with OTLPReceiver(mode="error" if fault == "http-500" else "hang", hang_seconds=30) as bad:
        endpoint = f"http://127.0.0.1:{closed_port()}" if fault == "closed-port" else bad.endpoint
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        threads_before = set(threading.enumerate())
        handle = configure(service_name="t", set_global=False, metric_export_interval=0.5)
        try:
            bad_seconds, bad_results = await timed_run("faulty", N_FAULT)
            # let the exporters hit the fault at least once before shutting down
            if fault != "closed-port":
                bad.wait_for(lambda: bad.requests("/v1/traces") > 0, timeout=5)
        finally:
            started = time.monotonic()
            handle.shutdown(timeout=3)
            shutdown_seconds = time.monotonic() - started
        # While the fault persists, let the export threads shutdown() may have abandoned run
        # to their end: every failed batch and retry they log counts.
        join_export_threads(threads_before, timeout=15)  # generous: CI machines are loaded
        logged = export_log_records(caplog.records)
        if fault != "closed-port":
            assert bad.requests("/v1/traces") > 0, "the exporter never reached the faulty server"

    assert bad_results == expected
    assert bad_seconds < 3 * good_seconds + 1.0, (fault, bad_seconds, good_seconds)
    assert shutdown_seconds < 3.5, shutdown_seconds
    # The failure is reported, not swallowed, and not once per batch or turn: at most one
    # warning per signal (spans, metrics) and one for a flush that did not finish at shutdown,
    # nothing from the OpenTelemetry loggers.
    kinds = warnings_by_kind(logged)
    report = f"{fault}: {kinds}"
    assert "other" not in kinds, report
    assert all(len(messages) == 1 for messages in kinds.values()), report
    if fault == "http-500" and SDK_VERSION < (1, 35):
        # Before SDK 1.35 the OTLP/HTTP exporters retry a 5xx answer with backoff for up to
        # 63 s, whatever OTEL_EXPORTER_OTLP_TIMEOUT says: no export returns before shutdown
        # gives up, so what is reported is pygents' flush timeout.
        assert "flush" in kinds, report
    else:
        assert "spans" in kinds, report
        # The warning says why, in the exporter's words (it was "SpanExportResult.FAILURE").
        (spans,) = [r.getMessage() for r in logged if "exporting spans with" in r.getMessage()]
        assert "SpanExportResult.FAILURE" not in spans, spans


@pytest.mark.timeout(60)
async def test_the_export_failure_names_its_cause_without_the_endpoint_credentials(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    define_tools()
    caplog.set_level(logging.WARNING)
    reset_warnings()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    # Long enough for a retry: the exporter names the error when it retries (newer SDKs) or
    # raises it (older ones); its last word, when it gives up, is a generic one.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    # Used as it is (the general variable gets /v1/traces appended): the client's error
    # message quotes the path and query it asked for.
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        f"http://127.0.0.1:{closed_port()}/v1/traces?api_key=s3cr3t-value",
    )
    threads_before = set(threading.enumerate())
    handle = configure(service_name="t", set_global=False, prometheus_registry=False)
    try:
        await run_agent(AGENT, doubles(3))
        handle.tracer_provider.force_flush(5_000)  # the export, its retry, its failure
    finally:
        handle.shutdown(timeout=3)
    join_export_threads(threads_before, timeout=15)
    (message,) = [
        r.getMessage() for r in caplog.records if "exporting spans with" in r.getMessage()
    ]
    assert "Connection refused" in message, message
    assert "api_key=***" in message and "s3cr3t" not in message, message


@pytest.mark.timeout(30)
async def test_shutdown_returns_within_its_timeout_when_the_collector_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    define_tools()
    with OTLPReceiver(mode="hang", hang_seconds=30) as bad:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", bad.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        # the exporter's own timeout is longer than shutdown's: shutdown must not wait for it
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4")
        handle = configure(service_name="t", set_global=False, metric_export_interval=0.5)
        await run_agent(AGENT, doubles(50))
        started = time.monotonic()
        ok = handle.shutdown(timeout=1)
        elapsed = time.monotonic() - started
        assert elapsed < 1.5, elapsed
        assert ok is False  # the hung export did not finish in time
        assert not is_instrumented()
        # Idempotent: a second call does nothing, and does not claim the flush finished.
        started = time.monotonic()
        assert handle.shutdown(timeout=1) is False
        assert time.monotonic() - started < 0.5


# ------------------------------------------------------------------------ whose failures are logged


def wait_for_warnings(
    caplog: pytest.LogCaptureFixture, kinds: tuple[str, ...], timeout: float = 15.0
) -> bool:
    """Poll the captured log until a warning of each of ``kinds`` is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(kinds) <= set(warnings_by_kind(caplog.records)):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(60)
async def test_a_dead_endpoint_is_reported_once_per_signal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Spans and metrics both fail (nothing listens): one warning says so for each signal, and
    # further failed batches and metric exports say nothing.
    define_tools()
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    threads_before = set(threading.enumerate())
    # Exports every 0.5 s: the SDK gives a collection the export interval as its timeout, and
    # at 0.1 s a stall of the (shared) machine made it log "Metric collection timed out".
    handle = configure(service_name="t", set_global=False, metric_export_interval=0.5)
    try:
        assert await run_agent("a0", doubles(20)) == [("double", 2 * i) for i in range(20)]
        assert wait_for_warnings(caplog, ("spans", "metrics")), warnings_by_kind(caplog.records)
        # Fail some more: more span batches, more metric exports (three or so in 1.5 s).
        for i in range(1, 6):
            await run_agent(f"a{i}", doubles(20))
            await asyncio.sleep(0.3)
    finally:
        handle.shutdown(timeout=10)
    join_export_threads(threads_before, timeout=15)
    kinds = warnings_by_kind(caplog.records)
    assert sorted(kinds) == ["metrics", "spans"], kinds
    assert len(kinds["spans"]) == len(kinds["metrics"]) == 1, kinds
    assert "OTLPSpanExporter" in kinds["spans"][0], kinds
    assert "OTLPMetricExporter" in kinds["metrics"][0], kinds


@pytest.mark.timeout(60)
async def test_a_flush_that_does_not_finish_is_reported_after_an_export_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The span export fails first (the collector hangs past the exporter's timeout) and is
    # reported; then shutdown gives up on a flush stuck the same way, and says that too.
    define_tools()
    caplog.set_level(logging.WARNING)
    with OTLPReceiver(mode="hang", hang_seconds=30) as bad:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", bad.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        threads_before = set(threading.enumerate())
        handle = configure(service_name="t", set_global=False)
        try:
            await run_agent("a0", doubles(5))
            assert wait_for_warnings(caplog, ("spans",)), warnings_by_kind(caplog.records)
            await run_agent("a1", doubles(5))  # buffered: the flush at shutdown must hang
        finally:
            finished = handle.shutdown(timeout=0.3)
        assert finished is False
        join_export_threads(threads_before, timeout=15)
    kinds = warnings_by_kind(caplog.records)
    assert sorted(kinds) == ["flush", "spans"], kinds
    assert len(kinds["flush"]) == len(kinds["spans"]) == 1, kinds


class RaisingSpanExporter(SpanExporter):
    """A span exporter that fails the way a broken one does: it raises."""

    def export(self, spans: Any) -> SpanExportResult:
        raise ConnectionError("the user's exporter is broken")

    def shutdown(self) -> None:
        pass


def user_exporter(kind: str) -> SpanExporter:
    if kind == "raising":
        return RaisingSpanExporter()
    # A real OTLP exporter to a port nobody listens on: it logs each failed export itself
    # (1.35+) or raises and the processor logs it (older SDKs).
    return OTLPSpanExporter(endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["raising", "otlp-closed-port"])
async def test_a_pipeline_configure_did_not_build_logs_its_failures_as_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    # The program's own SDK pipeline, with an exporter that fails on every span: the SDK
    # logs each failure (on the thread that ends the span). configure() -- whose own
    # pipeline fails too, and whose warnings and filter are installed -- and its shutdown
    # change nothing about that.
    define_tools()
    caplog.set_level(logging.WARNING)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(user_exporter(kind)))
    tracer = provider.get_tracer("the program")

    def failures_of_a_user_span(name: str) -> list[str]:
        """What the SDK logs about one span of the program's pipeline: (logger, message)s.

        Templates, not messages: a retry's delay and the port vary. An OTLP exporter may
        log a retry before its failure, depending on timing: the last record is the failure.
        """
        caplog.clear()
        with tracer.start_as_current_span(name):
            pass
        main = threading.get_ident()
        found = [
            f"{r.name}: {r.msg}"
            for r in caplog.records
            if r.thread == main and r.name.startswith("opentelemetry")
        ]
        return found[-1:] if kind == "otlp-closed-port" else found

    before = failures_of_a_user_span("before configure()")
    assert len(before) == 1, before

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    threads_before = set(threading.enumerate())
    handle = configure(service_name="t", set_global=False, metric_export_interval=0.1)
    try:
        await run_agent(AGENT, doubles(5))
        assert wait_for_warnings(caplog, ("spans", "metrics")), warnings_by_kind(caplog.records)
        during = failures_of_a_user_span("while configure()'s pipeline fails")
        assert during == before, during
    finally:
        handle.shutdown(timeout=5)
    join_export_threads(threads_before, timeout=15)
    after = failures_of_a_user_span("after shutdown()")
    assert after == before, after
    provider.shutdown()


@pytest.mark.timeout(30)
async def test_a_failing_span_exporter_passed_to_configure_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    define_tools()
    caplog.set_level(logging.WARNING)
    with configure(
        service_name="t",
        set_global=False,
        span_exporter=RaisingSpanExporter(),
        prometheus_registry=False,
    ) as handle:
        for i in range(3):
            await run_agent(f"a{i}", doubles(5))
            assert handle.force_flush(timeout=5)  # one failed export each
    kinds = warnings_by_kind(caplog.records)
    assert sorted(kinds) == ["spans"], kinds
    (message,) = kinds["spans"]
    assert "RaisingSpanExporter" in message and "the user's exporter is broken" in message


@pytest.mark.timeout(60)
async def test_a_full_span_queue_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The collector hangs, the queues fill, spans are dropped: that data is lost, and the
    # SDK's message saying so is kept -- once, not once per dropped span nor per processor
    # (two here: the OTLP exporter's and span_exporter's; SDKs before 1.35 say it once per
    # processor, later ones once per 20 s).
    define_tools()
    caplog.set_level(logging.WARNING)
    with OTLPReceiver(mode="hang", hang_seconds=30) as bad:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", bad.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4")
        monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
        threads_before = set(threading.enumerate())
        second = OTLPSpanExporter(endpoint=f"{bad.endpoint}/v1/traces", timeout=2)
        handle = configure(service_name="t", set_global=False, span_exporter=second)
        try:
            for i in range(3):
                await run_agent(f"a{i}", doubles(50))
        finally:
            handle.shutdown(timeout=0.3)
        join_export_threads(threads_before, timeout=15)
    dropped = [m for m in warnings_by_kind(caplog.records).get("other", []) if "drop" in m]
    assert len(dropped) == 1, dropped
