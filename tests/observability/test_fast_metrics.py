"""The fast histogram path (``_fast_metrics``) against the public SDK API.

Equivalence: every histogram record the bridge makes goes, in the same run, to two SDK meter
providers configured alike: provider A through the path pygents chose (fast where exact), B
through the SDK's public ``Histogram.record``, with the same values and attribute dicts. At
checkpoints during the workload every reader of both is collected (delta readers reset there),
and everything collected must be equal but the collection timestamps.
Fallback: what the fast path does not know sends records through the public API.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricReader,
)
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    LastValueAggregation,
    SumAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from pygents import Agent, Turn, TurnTimeoutError, tool
from pygents.observability import _fast_metrics, _instrument, _metrics, instrument, uninstrument
from pygents.observability._fast_metrics import FastHistogram, fast_histogram
from pygents.observability._metrics import NO_CONTEXT
from pygents.observability._semconv import (
    DURATION_BUCKETS,
    INSTRUMENTATION_NAME,
    METRICS,
    SCHEMA_URL,
)

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
except ImportError:  # not installed beside the oldest SDK
    PrometheusMetricReader = None
if PrometheusMetricReader is not None and (
    "registry" not in inspect.signature(PrometheusMetricReader).parameters
):
    # Before exporter-prometheus 0.63b0 every reader registers on the global registry: the two
    # sides of a comparison could not be told apart, so the comparison leaves it out there.
    PrometheusMetricReader = None

#: OpenTelemetry names of the observable instruments (provider A only has them).
OBSERVABLE = {spec[3] for spec in METRICS if spec[1] != "histogram"}
#: Prometheus families of the observable instruments.
OBSERVABLE_FAMILIES = {spec[0] for spec in METRICS if spec[1] != "histogram"}
#: The SDK's view cardinality limit (1.45 and later).
CARDINALITY = "aggregation_cardinality_limit" in inspect.signature(View).parameters
DELTA = {Histogram: AggregationTemporality.DELTA}

ReadersFactory = Callable[[], list[MetricReader]]
ViewsFactory = Callable[[], list[View]]


# --------------------------------------------------------------------------- set-up


class Tee:
    """Hands each record to provider A's histogram (as pygents chose it) and B's public one."""

    def __init__(self, chosen: Any, public: Any) -> None:
        self.chosen = chosen
        self.public = public

    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self.chosen.record(amount, attributes, context)
        self.public.record(amount, attributes, context)


def public_histograms(provider: MeterProvider) -> dict[str, Any]:
    """The bridge's histograms made on ``provider`` (by name, as ``OtelMetrics`` makes them)."""
    from pygents import __version__

    meter = provider.get_meter(INSTRUMENTATION_NAME, __version__, schema_url=SCHEMA_URL)
    return {
        spec[0]: meter.create_histogram(
            spec[3],
            unit=spec[4],
            description=spec[6],
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        for spec in METRICS
        if spec[1] == "histogram"
    }


def metric_points(reader: InMemoryMetricReader) -> dict[tuple[str, str], Any]:
    """A collection of ``reader``: each histogram metric's JSON, timestamps dropped."""
    data = reader.get_metrics_data()
    out: dict[tuple[str, str], Any] = {}
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name not in OBSERVABLE:
                    key = (scope_metrics.scope.name, metric.name)
                    out[key] = _untimed(json.loads(metric.to_json()))
    return out


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _untimed(v)
            for k, v in value.items()
            if k not in {"start_time_unix_nano", "time_unix_nano"}
        }
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def exposition(registry: Any) -> list[str]:
    """The histogram lines of a Prometheus registry's exposition (no creation times)."""
    from prometheus_client import generate_latest

    lines = []
    for line in generate_latest(registry).decode().splitlines():
        name = line.split()[2] if line.startswith("#") else line.split("{")[0].split()[0]
        observable = name in OBSERVABLE_FAMILIES or f"{name}_total" in OBSERVABLE_FAMILIES
        if name.startswith("pygents_") and not name.endswith("_created") and not observable:
            lines.append(line)
    return lines


class Side:
    """One meter provider of a comparison and its readers."""

    def __init__(self, readers: ReadersFactory, views: ViewsFactory, **provider: Any) -> None:
        from prometheus_client import CollectorRegistry

        self.readers = readers()
        self.registries: list[Any] = []
        if PrometheusMetricReader is not None and any(r is None for r in self.readers):
            self.registries.append(CollectorRegistry())
        self.readers = [
            r if r is not None else PrometheusMetricReader(registry=self.registries[0])
            for r in self.readers
        ]
        self.provider = MeterProvider(
            metric_readers=self.readers,
            views=views(),
            resource=Resource.create({"service.name": "fast-metrics"}),
            **provider,
        )

    def collect(self) -> list[Any]:
        seen: list[Any] = [
            metric_points(r) for r in self.readers if isinstance(r, InMemoryMetricReader)
        ]
        seen.extend(exposition(registry) for registry in self.registries)
        return seen


async def compare(
    monkeypatch: pytest.MonkeyPatch,
    readers: ReadersFactory,
    views: ViewsFactory,
    *,
    fast: bool = True,
    **provider: Any,
) -> tuple[list[Any], list[Any], dict[str, Tee]]:
    """Run the workload through both sides; return each side's collections, and the tees."""
    chosen, public = Side(readers, views, **provider), Side(readers, views, **provider)
    public_ones = public_histograms(public.provider)
    choose = _metrics._fast_histograms
    tees: dict[str, Tee] = {}

    def tee(instruments: dict[str, Any]) -> dict[str, Any]:
        tees.update({name: Tee(h, public_ones[name]) for name, h in choose(instruments).items()})
        return dict(tees)

    monkeypatch.setattr(_metrics, "_fast_histograms", tee)
    monkeypatch.setenv("PYGENTS_METRICS_MAX_LABEL_VALUES", "1000")
    assert instrument(
        tracer_provider=False, meter_provider=chosen.provider, prometheus_registry=False
    )
    seen: tuple[list[Any], list[Any]] = ([], [])

    def checkpoint() -> None:
        seen[0].append(chosen.collect())
        seen[1].append(public.collect())

    try:
        await workload(checkpoint)
    finally:
        uninstrument()
        chosen.provider.shutdown()
        public.provider.shutdown()
    for t in tees.values():
        assert (type(t.chosen) is FastHistogram) is fast, "histogram path not as expected"
    return seen[0], seen[1], tees


# --------------------------------------------------------------------------- the workload


async def workload(checkpoint: Callable[[], None]) -> None:
    """Completed, failing, timed-out, streaming and chained turns, direct calls, many tools."""

    @tool()
    async def double(x: int) -> int:
        return 2 * x

    @tool()
    async def broken() -> None:
        raise ValueError("boom")

    @tool()
    async def sluggish() -> None:
        await asyncio.sleep(5)

    @tool()
    async def stream(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i

    @tool()
    async def step(n: int) -> Any:
        return Turn("step", kwargs={"n": n - 1}) if n else "done"

    agent = Agent("worker", "does work", [double, broken, sluggish, stream, step])
    for x in range(4):
        await agent.put(Turn(double, kwargs={"x": x}))
    [_ async for _ in agent.run()]
    checkpoint()
    await agent.put(Turn(broken))
    with pytest.raises(ValueError):
        [_ async for _ in agent.run()]
    await agent.put(Turn(stream, kwargs={"n": 3}))
    await agent.put(Turn(step, kwargs={"n": 3}))
    [_ async for _ in agent.run()]
    await agent.put(Turn(sluggish, timeout=0.01))
    with pytest.raises(TurnTimeoutError):
        [_ async for _ in agent.run()]
    checkpoint()
    await double(x=1)  # a direct call
    with pytest.raises(ValueError):
        await broken()
    for i in range(12):  # more series than the cardinality limit of the limited views
        many = numbered_tool(i)
        await many()
        other = Agent(f"agent_{i}", "d", [many])
        await other.put(Turn(many))
        [_ async for _ in other.run()]
    checkpoint()
    for x in range(3):  # the first series again, after delta readers reset them
        await agent.put(Turn(double, kwargs={"x": x}))
    [_ async for _ in agent.run()]
    await double(x=2)
    checkpoint()
    checkpoint()  # nothing recorded since: empty deltas on both sides


def numbered_tool(i: int) -> Any:
    async def trivial() -> int:
        return i

    trivial.__name__ = trivial.__qualname__ = f"tool_{i}"
    return tool(trivial)


# --------------------------------------------------------------------------- configurations


def cumulative() -> list[MetricReader]:
    return [InMemoryMetricReader()]


def delta() -> list[MetricReader]:
    return [InMemoryMetricReader(preferred_temporality=DELTA)]


def mixed() -> list[MetricReader]:
    exponential = {Histogram: ExponentialBucketHistogramAggregation(max_size=20)}
    readers: list[Any] = [
        InMemoryMetricReader(),
        InMemoryMetricReader(preferred_temporality=DELTA),
        InMemoryMetricReader(preferred_aggregation=exponential),
    ]
    if PrometheusMetricReader is not None:
        readers.append(None)  # Side makes it, with a private registry
    return readers


def no_views() -> list[View]:
    return []


def reshaping_views() -> list[View]:
    return [
        # renamed, one attribute dropped
        View(
            instrument_name="pygents.turn.duration",
            name="renamed.turn.duration",
            attribute_keys={"agent", "tool"},
        ),
        # a second stream of the same instrument: only stop reasons, other buckets
        View(
            instrument_name="pygents.turn.duration",
            name="turn.by.reason",
            attribute_keys={"stop_reason"},
            aggregation=ExplicitBucketHistogramAggregation((0.0001, 0.01, 1.0), False),
        ),
        View(instrument_name="pygents.tool.duration", aggregation=SumAggregation()),
        View(instrument_name="pygents.turn.queue_wait", attribute_keys=set()),
        View(
            instrument_name="pygents.turn.queue_wait",
            name="wait.last",
            aggregation=LastValueAggregation(),
        ),
    ]


def dropping_views() -> list[View]:
    return [
        View(instrument_name="pygents.turn.duration", aggregation=DropAggregation()),
        # every histogram named pygents.t*, turn duration included: tool only, one bucket
        View(
            instrument_name="pygents.t*",
            instrument_type=Histogram,
            attribute_keys={"tool"},
            aggregation=ExplicitBucketHistogramAggregation(()),
        ),
    ]


def limited_views() -> list[View]:
    if not CARDINALITY:
        pytest.skip("no view cardinality limit before SDK 1.45")
    return [
        View(instrument_name="pygents.tool.duration", aggregation_cardinality_limit=5),
        View(instrument_name="pygents.turn.duration", aggregation_cardinality_limit=3),
    ]


READERS = [cumulative, delta, mixed]
VIEWS = [no_views, reshaping_views, dropping_views, limited_views]


@pytest.fixture(autouse=True)
def _fast_path_available(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PYGENTS_FAST_METRICS", raising=False)
    yield


# --------------------------------------------------------------------------- equivalence


def test_the_installed_sdk_is_recognized() -> None:
    """The suite proves the fast path on this SDK, not the fallback (both are supported)."""
    assert _fast_metrics._RECORD_PATH is not None
    assert len(_fast_metrics._AGGREGATIONS) == 5


@pytest.mark.parametrize("views", VIEWS, ids=lambda v: v.__name__)
@pytest.mark.parametrize("readers", READERS, ids=lambda r: r.__name__)
async def test_both_paths_collect_the_same(
    readers: ReadersFactory, views: ViewsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, public, tees = await compare(monkeypatch, readers, views)
    assert len(fast) == 5
    assert fast == public
    assert any(point for collection in fast for points in collection for point in points)
    resolved = [t.chosen for t in tees.values() if t.chosen.series]
    assert resolved, "no series took the fast path"


async def test_series_past_the_cardinality_limit_go_to_the_sdk_overflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, public, tees = await compare(monkeypatch, cumulative, limited_views)
    assert fast == public
    overflow = [
        point
        for points in fast[-1][0].values()
        for point in points["data"]["data_points"]
        if point["attributes"] == {"otel.metric.overflow": True}
    ]
    assert len(overflow) == 2  # tool and turn duration
    tool_series = tees["pygents_tool_duration_seconds"].chosen.series
    assert 0 < len(tool_series) <= 5  # overflowed series stay on the public path


async def test_an_exemplar_filter_that_samples_keeps_the_public_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter

    fast, public, _ = await compare(
        monkeypatch, cumulative, no_views, fast=False, exemplar_filter=AlwaysOnExemplarFilter()
    )
    assert fast == public


async def test_the_environment_switch_forces_the_public_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYGENTS_FAST_METRICS", "0")
    fast, public, _ = await compare(monkeypatch, cumulative, no_views, fast=False)
    assert fast == public


def test_the_switch_is_read_again_when_instrumenting(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    try:
        for value, fast in (("off", False), ("", True), ("false", False)):
            monkeypatch.setenv("PYGENTS_FAST_METRICS", value)
            assert instrument(
                tracer_provider=False, meter_provider=provider, prometheus_registry=False
            )
            otel = _instrument._otel
            assert all((type(h) is FastHistogram) is fast for h in otel.histograms.values())
            uninstrument()
    finally:
        provider.shutdown()


# --------------------------------------------------------------------------- fallback


def sdk_histogram(**provider: Any) -> tuple[Any, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], **provider).get_meter("test")
    return meter.create_histogram("h", unit="s"), reader


def test_only_the_sdk_histogram_is_recognized() -> None:
    histogram, _ = sdk_histogram()
    assert type(fast_histogram(histogram, NO_CONTEXT)) is FastHistogram
    counter = MeterProvider().get_meter("test").create_counter("c")
    assert fast_histogram(counter, NO_CONTEXT) is None


@pytest.mark.parametrize("exemplar_filter", ["trace_based", "always_on"])
def test_a_proxy_histogram_is_decided_when_the_provider_is_set(exemplar_filter: str) -> None:
    """Histograms made before the program set its meter provider (pygents on at import)."""
    from opentelemetry.sdk.metrics._internal import _get_exemplar_filter

    proxy_provider = _ProxyMeterProvider()
    proxy = proxy_provider.get_meter("test").create_histogram("h", unit="s")
    fast = fast_histogram(proxy, NO_CONTEXT)
    assert fast is not None
    attributes = {"tool": "t"}
    fast.record(1.0, attributes, NO_CONTEXT)  # dropped, as the proxy drops it
    reader, twin_reader = InMemoryMetricReader(), InMemoryMetricReader()
    chosen = _get_exemplar_filter(exemplar_filter)
    provider = MeterProvider(metric_readers=[reader], exemplar_filter=chosen)
    twin = MeterProvider(metric_readers=[twin_reader], exemplar_filter=chosen)
    proxy_provider.on_set_meter_provider(provider)
    twin_histogram = twin.get_meter("test").create_histogram("h", unit="s")
    for value in (2.0, 4.0, 8.0):
        fast.record(value, attributes, NO_CONTEXT)
        twin_histogram.record(value, attributes, NO_CONTEXT)
    assert metric_points(reader) == metric_points(twin_reader)
    (point,) = next(iter(metric_points(reader).values()))["data"]["data_points"]
    assert point["sum"] == 14.0
    assert bool(fast.series) is (exemplar_filter == "trace_based")


def test_an_sdk_it_does_not_know_gets_the_public_path(monkeypatch: pytest.MonkeyPatch) -> None:
    known = dict(_fast_metrics._KNOWN_NAMES)
    known["Histogram.record"] = frozenset({"time_ns"})
    monkeypatch.setattr(_fast_metrics, "_KNOWN_NAMES", known)
    assert _fast_metrics._sdk_record_path() is None
    monkeypatch.setattr(_fast_metrics, "_MATCH_STYLES", {})
    assert _fast_metrics._match_style() is None
    monkeypatch.setattr(_fast_metrics, "_RECORD_PATH", None)
    histogram, _ = sdk_histogram()
    assert fast_histogram(histogram, NO_CONTEXT) is None


def test_records_the_sdk_rejects_take_the_public_path(caplog: pytest.LogCaptureFixture) -> None:
    """Negative and non-finite values: the SDK's warnings and handling, on either path."""
    histogram, reader = sdk_histogram()
    twin, twin_reader = sdk_histogram()
    fast = fast_histogram(histogram, NO_CONTEXT)
    assert fast is not None
    attributes = {"tool": "t"}
    warnings = 0
    for value in (0.5, 0.25, -1.0, math.inf, math.nan, -0.0, 2.0, True, 0):
        caplog.clear()
        fast.record(value, attributes, NO_CONTEXT)
        ours = [r.getMessage() for r in caplog.records]
        caplog.clear()
        twin.record(value, attributes, NO_CONTEXT)
        assert ours == [r.getMessage() for r in caplog.records], value
        warnings += len(ours)
    assert warnings  # the negative value at least
    assert len(fast.series) == 1
    ours, theirs = metric_points(reader), metric_points(twin_reader)
    if not math.isnan(ours[("test", "h")]["data"]["data_points"][0]["sum"]):
        assert ours == theirs
    else:  # an SDK that aggregates NaN (before 1.44): NaN != NaN, compare the rest
        assert json.dumps(list(ours.items())) == json.dumps(list(theirs.items()))


def test_another_context_takes_the_public_path() -> None:
    """A sampled span's context makes the default filter offer an exemplar: the SDK's path."""
    from opentelemetry import trace as trace_api
    from opentelemetry.context import Context

    def sampled(span_id: int) -> Context:
        flags = trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED)
        span = trace_api.NonRecordingSpan(trace_api.SpanContext(1, span_id, False, flags))
        return trace_api.set_span_in_context(span, Context())

    histogram, reader = sdk_histogram()
    twin, twin_reader = sdk_histogram()
    fast = fast_histogram(histogram, NO_CONTEXT)
    assert fast is not None
    attributes = {"tool": "t"}
    for context in (sampled(2), None, NO_CONTEXT, NO_CONTEXT, sampled(3), Context(), NO_CONTEXT):
        fast.record(1.0, attributes, context)
        twin.record(1.0, attributes, context)
    assert fast.series
    points = metric_points(reader)
    assert points == metric_points(twin_reader)
    (point,) = next(iter(points.values()))["data"]["data_points"]
    assert point["count"] == 7
    assert [e["span_id"] for e in point["exemplars"]] == [3]


def test_a_reader_added_later_gets_every_record_after() -> None:
    if not hasattr(MeterProvider, "add_metric_reader"):
        pytest.skip("readers cannot be added to this SDK's provider")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("test").create_histogram("h")
    fast = fast_histogram(histogram, NO_CONTEXT)
    assert fast is not None
    attributes = {"tool": "t"}
    fast.record(1.0, attributes, NO_CONTEXT)
    fast.record(2.0, attributes, NO_CONTEXT)
    assert fast.series
    late = InMemoryMetricReader()
    provider.add_metric_reader(late)
    fast.record(4.0, attributes, NO_CONTEXT)
    fast.record(8.0, attributes, NO_CONTEXT)
    first = metric_points(reader)
    (point,) = next(iter(first.values()))["data"]["data_points"]
    assert point["sum"] == 15.0
    (late_point,) = next(iter(metric_points(late).values()))["data"]["data_points"]
    assert late_point["sum"] == 12.0


def test_a_meter_disabled_by_its_configurator_records_nothing() -> None:
    from opentelemetry.sdk.metrics import _internal as sdk_internal

    if not hasattr(sdk_internal, "_MeterConfig"):
        pytest.skip("no meter configurator in this SDK")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("test").create_histogram("h")
    fast = fast_histogram(histogram, NO_CONTEXT)
    assert fast is not None
    attributes = {"tool": "t"}
    fast.record(1.0, attributes, NO_CONTEXT)
    fast.record(1.0, attributes, NO_CONTEXT)
    provider._set_meter_configurator(
        meter_configurator=lambda scope: sdk_internal._MeterConfig(is_enabled=False)
    )
    fast.record(100.0, attributes, NO_CONTEXT)
    (point,) = next(iter(metric_points(reader).values()))["data"]["data_points"]
    assert point["sum"] == 2.0
