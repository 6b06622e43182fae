"""The fast span path (``_fast_span``) against the public SDK API path.

Equivalence: the same workloads run once through each path, with a deterministic id generator,
so every field of every span (ids and parents included, timestamps aside) must be equal.
Fallback: what the fast path does not know sends spans through the public API.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanContext, StatusCode, TraceFlags

from pygents import Agent, ContextItem, ContextPool, ContextQueue, Turn, TurnTimeoutError, tool
from pygents.observability import _instrument, instrument, uninstrument
from pygents.observability._fast_span import FastSpan
from pygents.observability._propagation import traceparent
from pygents.testing import isolated_registries

Workload = Callable[[trace_api.Tracer], Awaitable[None]]


# --------------------------------------------------------------------------- set-up


class CountingIds(IdGenerator):
    """Deterministic, well-spread ids: both paths of one workload get the same ones."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def generate_span_id(self) -> int:
        return (next(self._n) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF or 1

    def generate_trace_id(self) -> int:
        n = next(self._n)
        return (n * 0x9E3779B97F4A7C15_F39CC0605CEDC834) & ((1 << 128) - 1) or 1


class Collect(SpanProcessor):
    """Every ended span, sampled or not (on_start is the base no-op)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class AddsAttribute(Sampler):
    """A sampler the fast path does not know: it changes the attributes."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):  # type: ignore[no-untyped-def]
        extra = {**(attributes or {}), "sampler.saw": name, "sampler.links": len(links or ())}
        return SamplingResult(Decision.RECORD_AND_SAMPLE, extra)

    def get_description(self) -> str:
        return "AddsAttribute"


class RecordOnly(Sampler):
    """Records every span without sampling it (exported by no exporter, seen by processors)."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):  # type: ignore[no-untyped-def]
        return SamplingResult(Decision.RECORD_ONLY, attributes)

    def get_description(self) -> str:
        return "RecordOnly"


def bridge_spans() -> Any:
    bridge = _instrument._bridge
    assert bridge is not None
    return bridge.spans


async def run_both_ways(
    workload: Workload, monkeypatch: pytest.MonkeyPatch, **provider: Any
) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """Run ``workload`` on the public path, then on the fast one; return each path's spans."""
    seen = []
    for fast in (False, True):
        monkeypatch.setenv("PYGENTS_FAST_SPANS", "1" if fast else "0")
        collect = Collect()
        with isolated_registries():
            tracer_provider = TracerProvider(
                resource=Resource.create({"service.name": "fast-spans"}),
                **{"id_generator": CountingIds(), **provider},
            )
            tracer_provider.add_span_processor(collect)
            assert instrument(
                tracer_provider=tracer_provider, meter_provider=False, prometheus_registry=False
            )
            assert (bridge_spans()._fast is not None) is fast
            try:
                await workload(tracer_provider.get_tracer("user"))
            except Exception:
                pass  # a failing workload fails the same way on both paths
            finally:
                uninstrument()
                tracer_provider.shutdown()
        seen.append(collect.spans)
    return seen[0], seen[1]


def context_fields(context: SpanContext | None) -> Any:
    if context is None:
        return None
    return (
        context.trace_id,
        context.span_id,
        context.is_remote,
        int(context.trace_flags),
        context.trace_state.to_header(),
    )


def fields(span: ReadableSpan) -> dict[str, Any]:
    """Every field of a finished span, timestamps aside (their presence and order kept)."""
    assert type(span) is ReadableSpan
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= span.end_time
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "context": context_fields(span.context),
        "parent": context_fields(span.parent),
        "kind": span.kind,
        "attributes": list(span.attributes.items()),  # order too
        "dropped_attributes": span.dropped_attributes,
        "events": [
            (
                e.name,
                list(e.attributes.items()),
                getattr(e, "dropped_attributes", 0),
                span.start_time <= e.timestamp <= span.end_time,
            )
            for e in span.events
        ],
        "dropped_events": span.dropped_events,
        "links": [
            (context_fields(link.context), list((link.attributes or {}).items()))
            for link in span.links
        ],
        "link_dropped_attributes": [getattr(link, "dropped_attributes", 0) for link in span.links],
        "dropped_links": span.dropped_links,
        "status": (span.status.status_code, span.status.description),
        "resource": (dict(span.resource.attributes), span.resource.schema_url),
        "scope": (scope.name, scope.version, scope.schema_url, scope.attributes) if scope else None,
    }


async def assert_same(
    workload: Workload, monkeypatch: pytest.MonkeyPatch, minimum: int = 1, **provider: Any
) -> list[dict[str, Any]]:
    public, fast = await run_both_ways(workload, monkeypatch, **provider)
    assert len(public) >= minimum
    expected = [fields(s) for s in public]
    assert [fields(s) for s in fast] == expected
    return expected


# --------------------------------------------------------------------------- workloads


async def queue_of_turns(tracer: Any) -> None:
    @tool()
    async def double(x: int) -> int:
        """Doubles."""
        return 2 * x

    agent = Agent("worker", "does work", [double], tags={"b", "a"})
    for x in range(3):
        await agent.put(Turn(double, kwargs={"x": x}, timeout=30))
    [_ async for _ in agent.run()]


async def failing_turn(tracer: Any) -> None:
    @tool()
    async def broken() -> None:
        raise ValueError("boom")

    agent = Agent("fragile", "d", [broken])
    await agent.put(Turn(broken))
    [_ async for _ in agent.run()]


async def context_routing(tracer: Any) -> None:
    # Appends, adds (one replacing an item), evictions from both: the context events.
    @tool()
    async def note(x: int) -> ContextItem[int]:
        if x % 2:
            return ContextItem(content=x, id=f"k{x % 5}", description="a note")
        return ContextItem(content=x)

    agent = Agent(
        "noter",
        "d",
        [note],
        context_queue=ContextQueue(limit=2),
        context_pool=ContextPool(limit=2),
    )
    for x in range(12):
        await agent.put(Turn(note, kwargs={"x": x}))
    [_ async for _ in agent.run()]


async def timed_out_turn(tracer: Any) -> None:
    @tool()
    async def slow() -> None:
        await asyncio.sleep(5)

    agent = Agent("sluggish", "d", [slow])
    await agent.put(Turn(slow, timeout=0.01))
    with pytest.raises(TurnTimeoutError):
        [_ async for _ in agent.run()]


async def streaming_turn(tracer: Any) -> None:
    @tool()
    async def stream(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i

    agent = Agent("streamer", "d", [stream])
    await agent.put(Turn(stream, kwargs={"n": 4}))
    [_ async for _ in agent.run()]


async def chain_of_turns(tracer: Any) -> None:
    @tool()
    async def step(n: int) -> Any:
        return Turn("step", kwargs={"n": n - 1}) if n else "done"

    agent = Agent("chain", "d", [step])
    await agent.put(Turn(step, kwargs={"n": 3}))
    [_ async for _ in agent.run()]


async def direct_calls(tracer: Any) -> None:
    @tool()
    async def direct(x: int) -> int:
        return x + 1

    @tool()
    async def direct_fail() -> int:
        raise KeyError("missing")

    with tracer.start_as_current_span("caller"):
        await direct(x=1)
        with pytest.raises(KeyError):
            await direct_fail()
    await direct(x=2)  # a root span


async def user_code_on_the_current_span(tracer: Any) -> None:
    @tool()
    async def busy() -> int:
        span = trace_api.get_current_span()
        span.set_attribute("user.list", [1, 2, 3])
        span.set_attribute("user.text", "hello")
        span.set_attribute("user.none", None)  # dropped by old SDKs, kept by new ones
        span.set_attributes({"user.flag": True, "user.ratio": 0.5, "": "no key"})
        span.set_attribute("user.text", "moved")  # an update moves the key to the end
        span.add_event("user.event", {"k": "v", "seq": (1, 2)})
        span.add_link(SpanContext(0xABC, 0xDEF, True, TraceFlags(1)), {"why": "test"})
        span.update_name("renamed by the tool")
        span.record_exception(RuntimeError("noted, not raised"))
        with tracer.start_as_current_span("child of the tool") as child:
            child.set_attribute("inner", 1)
        return 1

    @tool()
    async def says_ok() -> None:
        span = trace_api.get_current_span()
        span.set_status(StatusCode.OK)
        raise ValueError("after OK, the error status is ignored")

    @tool()
    async def says_error() -> int:
        trace_api.get_current_span().set_status(StatusCode.ERROR, "custom")
        return 0

    agent = Agent("user", "d", [busy, says_ok, says_error])
    await agent.put(Turn(busy))
    await agent.put(Turn(says_error))
    await agent.put(Turn(says_ok))
    [_ async for _ in agent.run()]


async def links_from_trace_context(tracer: Any) -> None:
    @tool()
    async def linked() -> int:
        # A link added to a span that started with one (the list is made then).
        trace_api.get_current_span().add_link(SpanContext(0xABC, 0xDEF, True, TraceFlags(1)))
        return 1

    agent = Agent("linked", "d", [linked])
    with tracer.start_as_current_span("origin") as origin:
        turn = Turn(linked)
        turn.metadata.trace_context = traceparent(origin.get_span_context())
    await agent.put(turn)
    await agent.put(Turn(linked))
    [_ async for _ in agent.run()]


async def everything(tracer: Any) -> None:
    for workload in (
        queue_of_turns,
        failing_turn,
        streaming_turn,
        chain_of_turns,
        direct_calls,
        user_code_on_the_current_span,
        links_from_trace_context,
    ):
        try:
            await workload(tracer)
        except Exception:
            pass


WORKLOADS = [
    queue_of_turns,
    failing_turn,
    context_routing,
    timed_out_turn,
    streaming_turn,
    chain_of_turns,
    direct_calls,
    user_code_on_the_current_span,
    links_from_trace_context,
]


# --------------------------------------------------------------------------- equivalence


@pytest.fixture(autouse=True)
def _both_paths_available(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PYGENTS_FAST_SPANS", raising=False)
    yield


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.__name__)
async def test_both_paths_make_the_same_spans(
    workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    await assert_same(workload, monkeypatch)


async def test_the_context_events_land_as_the_sdk_puts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans = await assert_same(context_routing, monkeypatch)
    names = Counter(e[0] for span in spans for e in span["events"])
    assert names["pygents.context_queue.append"] == 6
    assert names["pygents.context_pool.add"] == 6
    assert names["pygents.context_queue.evict"] == 4
    assert names["pygents.context_pool.evict"] > 0
    added = [e for span in spans for e in span["events"] if e[0] == "pygents.context_pool.add"]
    assert [dict(e[1])["pygents.context.item.id"] for e in added][:3] == ["k1", "k3", "k0"]


async def test_the_user_span_calls_land_as_the_sdk_puts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans = await assert_same(user_code_on_the_current_span, monkeypatch)
    busy = next(s for s in spans if s["name"] == "renamed by the tool")
    keys = [k for k, _ in busy["attributes"]]
    assert keys.index("user.text") > keys.index("user.ratio")  # moved by the update
    assert ("user.list", (1, 2, 3)) in busy["attributes"]
    assert [e[0] for e in busy["events"]] == ["user.event", "exception"]
    assert busy["links"][0][1] == [("why", "test")]
    child = next(s for s in spans if s["name"] == "child of the tool")
    assert child["parent"] == busy["context"]


async def test_the_sdk_random_ids_are_drawn_as_the_sdk_draws_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the SDK's own ``RandomIdGenerator`` both paths draw the same ids from ``random``."""

    async def seeded(tracer: trace_api.Tracer) -> None:
        random.seed(20261130)
        await everything(tracer)

    spans = await assert_same(seeded, monkeypatch, minimum=10, id_generator=RandomIdGenerator())
    assert len({s["context"][1] for s in spans}) == len(spans)  # fresh span ids, all drawn


@pytest.mark.parametrize(
    "sampler",
    [
        ParentBased(TraceIdRatioBased(0.5)),
        TraceIdRatioBased(0.3),
        AddsAttribute(),
        RecordOnly(),
        ParentBased(ALWAYS_ON),
    ],
    ids=lambda s: type(s).__name__,
)
async def test_samplers_decide_the_same(sampler: Sampler, monkeypatch: pytest.MonkeyPatch) -> None:
    spans = await assert_same(everything, monkeypatch, sampler=sampler)
    if isinstance(sampler, TraceIdRatioBased):  # some sampled out (not recorded), some in
        every = await assert_same(everything, monkeypatch, sampler=ALWAYS_ON)
        assert 0 < len(spans) < len(every)
    if isinstance(sampler, RecordOnly):
        assert {s["context"][3] & 1 for s in spans} == {0}


@pytest.mark.parametrize(
    "limits",
    [
        SpanLimits(max_span_attributes=3, max_events=1, max_links=1, max_event_attributes=1),
        SpanLimits(max_attribute_length=4),
        SpanLimits(max_span_attributes=6, max_link_attributes=0),
        SpanLimits(max_span_attributes=0),
        SpanLimits(max_links=0, max_link_attributes=0),
        SpanLimits(max_events=0),
    ],
    ids=["counts", "length", "just-enough", "none", "no-links", "no-events"],
)
async def test_span_limits_apply_the_same(
    limits: SpanLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = await assert_same(everything, monkeypatch, span_limits=limits)
    if limits.max_span_attributes == 3:
        assert any(s["dropped_attributes"] for s in spans)


async def test_the_sdk_warnings_are_the_same(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def late_calls(tracer: Any) -> None:
        kept: list[Any] = []

        @tool()
        async def keep() -> int:
            kept.append(trace_api.get_current_span())
            return 1

        await keep()
        kept[0].set_attribute("late", 1)
        kept[0].add_event("late")
        kept[0].end()

    messages = []
    for fast in (False, True):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="opentelemetry"):
            await assert_same(late_calls, monkeypatch)
            messages.append(
                [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("opentel")]
            )
        del fast
    assert messages[0] == messages[1]
    assert len(messages[0]) == 6  # three calls after the end, on each path


# --------------------------------------------------------------------------- fallback


class Starts(SpanProcessor):
    """An unknown processor that acts on start."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span)


def instrumented(provider: TracerProvider) -> Any:
    assert instrument(tracer_provider=provider, meter_provider=False, prometheus_registry=False)
    return bridge_spans()


async def one_turn() -> None:
    @tool()
    async def once() -> int:
        return 1

    await Turn(once).returning()


async def test_the_fast_path_is_used_with_known_processors() -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    spans = instrumented(provider)
    assert spans._fast is not None
    seen: list[Any] = []

    @tool()
    async def look() -> int:
        seen.append(trace_api.get_current_span())
        return 1

    await Turn(look).returning()
    assert type(seen[0]) is FastSpan
    assert len(exporter.get_finished_spans()) == 1
    provider.shutdown()


async def test_a_processor_acting_on_start_gets_the_public_path() -> None:
    provider = TracerProvider()
    starts = Starts()
    provider.add_span_processor(starts)
    instrumented(provider)
    seen: list[Any] = []

    @tool()
    async def look() -> int:
        seen.append(trace_api.get_current_span())
        return 1

    await Turn(look).returning()
    assert type(seen[0]) is not FastSpan
    assert starts.started == seen  # its on_start saw the span
    provider.shutdown()


async def test_a_processor_added_after_instrument_is_noticed() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    instrumented(provider)
    seen: list[Any] = []

    @tool()
    async def look() -> int:
        seen.append(trace_api.get_current_span())
        return 1

    await Turn(look).returning()
    starts = Starts()
    provider.add_span_processor(starts)
    await Turn(look).returning()
    assert type(seen[0]) is FastSpan
    assert type(seen[1]) is not FastSpan
    assert starts.started == [seen[1]]
    provider.shutdown()


async def test_a_processor_added_while_a_span_is_open_sees_it_end() -> None:
    class Ending(SpanProcessor):
        def __init__(self) -> None:
            self.ending: list[Any] = []
            self.ended: list[Any] = []

        def _on_ending(self, span: Any) -> None:
            self.ending.append(span)

        def on_end(self, span: Any) -> None:
            self.ended.append(span)

    provider = TracerProvider()
    instrumented(provider)
    late = Ending()

    @tool()
    async def adds() -> int:
        provider.add_span_processor(late)
        return 1

    await Turn(adds).returning()
    assert len(late.ended) == 1
    if hasattr(SpanProcessor, "_on_ending"):  # SDKs that have it call it first
        assert len(late.ending) == 1
    provider.shutdown()


async def test_the_environment_switch_forces_the_public_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYGENTS_FAST_SPANS", "0")
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert instrumented(provider)._fast is None
    await one_turn()
    assert len(exporter.get_finished_spans()) == 1
    provider.shutdown()


async def test_a_tracer_it_does_not_know_gets_the_public_path() -> None:
    class Wrapper(trace_api.Tracer):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.start_span(*args, **kwargs)

        def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.start_as_current_span(*args, **kwargs)

    class WrappingProvider(trace_api.TracerProvider):
        def __init__(self, inner: TracerProvider) -> None:
            self.inner = inner

        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            return Wrapper(self.inner.get_tracer(*args, **kwargs))

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert instrumented(WrappingProvider(provider))._fast is None  # type: ignore[arg-type]
    await one_turn()
    assert len(exporter.get_finished_spans()) == 1
    provider.shutdown()


def test_links_are_made_as_the_sdk_makes_them() -> None:
    # A link the SDK would drop (invalid, no attributes) is dropped on the fast path too.
    provider = TracerProvider()
    collect = Collect()
    provider.add_span_processor(collect)
    spans = instrumented(provider)
    invalid = Link(SpanContext(0, 0, False))
    valid = Link(SpanContext(0xA, 0xB, True, TraceFlags(1)))
    span, _context = spans.start("linked", {"k": "v"}, [invalid, valid])
    assert type(span) is FastSpan
    span.end()
    assert [link.context.span_id for link in collect.spans[0].links] == [0xB]
    provider.shutdown()


def test_a_bridge_event_on_an_ended_span_is_refused_as_the_sdk_refuses_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = TracerProvider(span_limits=SpanLimits(max_events=2))
    collect = Collect()
    provider.add_span_processor(collect)
    spans = instrumented(provider)
    span, _context = spans.start("evented", {"k": "v"}, None)
    assert type(span) is FastSpan
    for n in range(3):  # one more than the limit: the oldest is dropped and counted
        spans.add_event(span, f"early-{n}", (("n", n),))
    span.end()
    with caplog.at_level(logging.WARNING, logger="opentelemetry"):
        spans.add_event(span, "late", (("n", 9),))
        plain = provider.get_tracer("sdk").start_span("plain")
        plain.end()
        plain.add_event("late", {"n": 9})
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")]
    assert warnings == ["Tried calling _add_event on an ended span."] * 2
    (ended,) = [s for s in collect.spans if s.name == "evented"]
    assert [(e.name, dict(e.attributes or {})) for e in ended.events] == [
        ("early-1", {"n": 1}),
        ("early-2", {"n": 2}),
    ]
    assert ended.dropped_events == 1
    assert all(e.timestamp >= ended.start_time for e in ended.events)
    provider.shutdown()


async def test_a_carrier_changed_after_the_bridge_wrote_it_is_read_as_changed() -> None:
    # The bridge reads back the carriers it wrote without parsing them, unless they changed.
    provider = TracerProvider()
    collect = Collect()
    provider.add_span_processor(collect)
    instrumented(provider)
    elsewhere = SpanContext(0xABC, 0xDEF, True, TraceFlags(1))
    queued: list[Turn[Any]] = []

    @tool()
    async def follower(n: int) -> int:
        return n

    @tool()
    async def leader() -> None:
        for n in range(2):
            turn = Turn(follower, kwargs={"n": n})
            queued.append(turn)
            await me.put(turn)
        carrier = queued[1].metadata.trace_context
        assert carrier is not None  # written by the bridge as it was put
        carrier["traceparent"] = traceparent(elsewhere)["traceparent"]

    me = Agent("carriers", "d", [leader, follower])
    await me.put(Turn(leader))
    [_ async for _ in me.run()]
    spans = {s.name: s for s in collect.spans if s.name.startswith("execute_tool leader")}
    (lead,) = spans.values()
    followers = [s for s in collect.spans if s.name.startswith("execute_tool follower")]
    assert [
        [(link.context.trace_id, link.context.span_id) for link in s.links] for s in followers
    ] == [
        [(lead.context.trace_id, lead.context.span_id)],
        [(0xABC, 0xDEF)],
    ]
    # The leader's span is this process's own: linked as it is (not remote, as the SDK makes
    # it); the carrier rewritten to name a span elsewhere is parsed: a remote context.
    assert [link.context.is_remote for s in followers for link in s.links] == [False, True]
    assert followers[0].links[0].context == lead.context
    provider.shutdown()


@pytest.mark.parametrize("known", [True, False], ids=["written-out", "api"])
def test_a_remote_context_and_a_link_are_the_ones_the_api_makes(
    known: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pygents.observability import _fast_span

    assert _fast_span._LINK_CODE_KNOWN  # the installed API is the known code
    monkeypatch.setattr(_fast_span, "_LINK_CODE_KNOWN", known)
    for trace_id, span_id, flags in [(0xA, 0xB, 1), (1 << 127, (1 << 64) - 1, 0), (0, 5, 3)]:
        context = _fast_span.remote_context(trace_id, span_id, flags)
        expected = SpanContext(trace_id, span_id, True, TraceFlags(flags))
        assert type(context) is SpanContext and tuple(context) == tuple(expected)
        assert type(context.trace_flags) is TraceFlags
        assert context.is_valid == expected.is_valid and context.is_remote
        made = _fast_span.link(context)
        assert type(made) is Link and made.context is context
        assert made.attributes is None and made.dropped_attributes == 0


@pytest.mark.parametrize(
    "limits",
    [
        SpanLimits(),
        SpanLimits(max_links=1),
        SpanLimits(max_link_attributes=1, max_attribute_length=2),
    ],
    ids=["default", "one-link", "small"],
)
@pytest.mark.parametrize("as_tuple", [True, False], ids=["tuple", "list"])
def test_links_are_kept_and_limited_as_the_sdk_does(limits: SpanLimits, as_tuple: bool) -> None:
    """``_new_links`` against the SDK's ``Span._new_links``: the same links, attributes, drops."""
    from pygents.observability import _fast_span

    span = TracerProvider(span_limits=limits).get_tracer("t").start_span("s")  # the SDK's

    def made() -> list[list[Any]]:
        valid = SpanContext(0xA, 0xB, False, TraceFlags(1))
        remote = _fast_span.remote_context(0xC, 0xD, 0)
        invalid = SpanContext(0, 0, False)
        return [
            [_fast_span.link(valid)],
            [_fast_span.link(valid), _fast_span.link(remote)],
            [Link(valid, {"why": "test", "more": "words"}), _fast_span.link(remote)],
            [_fast_span.link(invalid), _fast_span.link(valid)],
            [Link(invalid, {"why": "test"}), Link(remote), _fast_span.link(invalid)],
        ]

    def seen(kept: Any) -> list[Any]:
        return [
            (link.context, dict(link.attributes), link.dropped_attributes, type(link.attributes))
            for link in kept
        ]

    for ours, theirs in zip(made(), made(), strict=True):
        given = tuple(ours) if as_tuple else ours
        fast = _fast_span._new_links(span, given)
        sdk = span._new_links(theirs)
        assert seen(fast) == seen(sdk)
        assert getattr(fast, "dropped", 0) == getattr(sdk, "dropped", 0)
        if type(fast) is tuple:  # none dropped: what ReadableSpan.links gives of the SDK's
            assert len(fast) == len(sdk) and sdk.dropped == 0
            if as_tuple and len(fast) == len(given):
                assert fast is given  # nothing to copy
        # The empty attributes are the SDK's (immutable) and shared by links alike.
        empties = [link.attributes for link in fast if not link.attributes]
        assert all(e is empties[0] for e in empties)


def test_an_origin_the_bridge_deferred_is_the_span_context_its_carrier_names() -> None:
    from pygents.observability._propagation import parse_traceparent, render_origin
    from pygents.turn import DeferredTraceContext, TurnMetadata

    provider = TracerProvider()
    spans = instrumented(provider)
    rng = random.Random(7)
    for _ in range(200):
        trace_id, span_id = rng.getrandbits(128) or 1, rng.getrandbits(64) or 1
        origin = trace_api.NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(1)))
        meta = TurnMetadata()
        spans.record_origin(meta, origin)
        # Deferred: the ids as they are, no carrier formatted yet.
        recorded = meta.recorded_trace_context
        assert isinstance(recorded, DeferredTraceContext)
        assert recorded.origin is origin.get_span_context()
        assert recorded.render is render_origin
        assert spans.origin(meta, recorded) is recorded.origin  # the span's own context
        # Read (rendered): the carrier says the same, and is what the bridge reads after.
        carrier = meta.trace_context
        assert carrier is not None and parse_traceparent(carrier) == (trace_id, span_id, 1)
        assert meta.recorded_trace_context is carrier
        parsed = spans.origin(meta, carrier)
        assert parsed == SpanContext(trace_id, span_id, True, TraceFlags(1))
        assert parsed.is_remote and type(parsed.trace_flags) is TraceFlags
    # Out of the W3C format's range: formatted at once, and refused when parsed, as before.
    odd = trace_api.NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(0x1FF)))
    meta = TurnMetadata()
    spans.record_origin(meta, odd)
    assert meta.recorded_trace_context == {"traceparent": "00-%032x-%016x-1ff" % (1, 2)}  # noqa: UP031
    assert spans.origin(meta, meta.recorded_trace_context) is None
    provider.shutdown()
