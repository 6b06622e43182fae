"""Spans produced by the telemetry bridge: tree, names, kinds, attributes, status, links,
events, suppression, content capture, (un)instrumentation and failure isolation.

Every test uses the ``telemetry`` fixture (fresh SDK providers, in-memory exporter).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import traceback
from collections import Counter
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import MeterProvider as ApiMeterProvider
from opentelemetry.metrics import NoOpMeter
from opentelemetry.trace import SpanKind, StatusCode

import pygents
from pygents import (
    Agent,
    AgentHook,
    AgentRegistry,
    ContextItem,
    ContextPool,
    ContextPoolHook,
    ContextQueue,
    ContextQueueHook,
    DeferredTraceContext,
    HookRegistry,
    ToolHook,
    Turn,
    TurnHook,
    TurnTimeoutError,
    current_agent,
    hook,
    tool,
)
from pygents.observability import ContentCapture, instrument, is_instrumented, uninstrument
from pygents.observability._bridge import Bridge
from pygents.observability._spans import stacktrace

INVOKE = "invoke_agent {}"
EXECUTE = "execute_tool {}"
ARGS = "gen_ai.tool.call.arguments"
RESULT = "gen_ai.tool.call.result"
BRIDGE_PREFIX = "pygents.observability"


# --------------------------------------------------------------------------- helpers


async def drain(agent: Agent) -> list[tuple[str, Any]]:
    """Run ``agent`` to the end; return ``(tool name, value)`` pairs."""
    return [(turn.tool_name, value) async for turn, value in agent.run()]


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def event_names(span: Any) -> list[str]:
    return [e.name for e in span.events]


def exception_events(span: Any) -> list[Any]:
    return [e for e in span.events if e.name == "exception"]


def only(spans: list[Any]) -> Any:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def is_child_of(span: Any, parent: Any) -> bool:
    return (
        span.parent is not None
        and span.parent.span_id == parent.context.span_id
        and span.context.trace_id == parent.context.trace_id
    )


def reinstrument(telemetry: Any, **kwargs: Any) -> None:
    """Instrument again with the fixture's providers and extra options."""
    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
        **kwargs,
    )


def _start(span: Any) -> int:
    return int(span.start_time)


def bridge_hooks() -> list[Any]:
    """The bridge's hooks, found by their documented names (all() leaves library hooks out)."""
    found = []
    for family in _FAMILIES.values():
        for member in family:
            h = HookRegistry.lookup(f"{BRIDGE_PREFIX}.{member.value}.{family.__name__}")
            if h is not None:
                found.append(h)
    return found


def bridge_hook_names() -> list[str]:
    return [h.metadata.name for h in bridge_hooks()]


# --------------------------------------------------------------------------- span timing
#
# A turn's span is handed to the SDK when the turn completes, unless something needs it
# earlier (an event, a child, a link): these tests pin that the span still covers the turn
# exactly, whichever way it was started.


def _ns(moment: Any) -> int:
    return int(moment.timestamp() * 1e9)


async def test_turn_span_covers_the_turn_from_start_to_end(telemetry: Any) -> None:
    @tool()
    async def slow_step() -> int:
        await asyncio.sleep(0.03)
        return 1

    agent = Agent("timed", "d", [slow_step])
    turn = Turn(slow_step)
    await agent.put(turn)
    await drain(agent)

    span = only(telemetry.by_name(EXECUTE.format("slow_step")))
    run = only(telemetry.by_name(INVOKE.format("timed")))
    assert span.end_time - span.start_time >= 30_000_000
    # Within 5 ms of the turn's own metadata (the hooks run right after / before it).
    assert abs(span.start_time - _ns(turn.metadata.start_time)) < 5_000_000
    assert abs(span.end_time - _ns(turn.metadata.end_time)) < 5_000_000
    assert run.start_time <= span.start_time <= span.end_time <= run.end_time
    assert attrs(span)["pygents.turn.stop_reason"] == "completed"
    assert attrs(span)["gen_ai.tool.name"] == "slow_step"


async def test_event_in_the_middle_of_a_turn_lands_on_a_span_started_at_the_turn_start(
    telemetry: Any,
) -> None:
    @tool()
    async def noting(memory: ContextQueue) -> str:
        await asyncio.sleep(0.02)
        await memory.append(ContextItem(content="x", description="a note"))
        await asyncio.sleep(0.02)
        return "noted"

    agent = Agent("noter", "d", [noting], context_queue=ContextQueue(limit=5))
    turn = Turn(noting)
    await agent.put(turn)
    assert await drain(agent) == [("noting", "noted")]

    span = only(telemetry.by_name(EXECUTE.format("noting")))
    appended = [e for e in span.events if e.name == "pygents.context_queue.append"]
    assert len(appended) == 1
    assert span.start_time + 20_000_000 <= appended[0].timestamp <= span.end_time - 20_000_000
    assert abs(span.start_time - _ns(turn.metadata.start_time)) < 5_000_000
    assert attrs(span)["pygents.turn.stop_reason"] == "completed"
    assert attrs(span)["pygents.turn.values"] == 1


async def test_uninstrument_while_a_turn_runs_ends_its_span_with_the_right_start(
    telemetry: Any,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    @tool()
    async def blocking() -> int:
        started.set()
        await release.wait()
        return 1

    turn = Turn(blocking)
    task = asyncio.create_task(turn.returning())
    await started.wait()
    await asyncio.sleep(0.01)
    uninstrument()  # the turn is still running
    span = only(telemetry.by_name(EXECUTE.format("blocking")))
    assert span.end_time - span.start_time >= 10_000_000
    assert abs(span.start_time - _ns(turn.metadata.start_time)) < 5_000_000
    release.set()
    assert await task == 1
    assert len(telemetry.by_name(EXECUTE.format("blocking"))) == 1  # no second span


async def test_every_processor_sees_the_turn_span_start_before_its_end(telemetry: Any) -> None:
    from opentelemetry.sdk.trace import SpanProcessor

    seen: list[tuple[str, str]] = []

    class Recorder(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            seen.append(("start", span.name))

        def on_end(self, span: Any) -> None:
            seen.append(("end", span.name))

    telemetry.tracer_provider.add_span_processor(Recorder())

    @tool()
    async def observed() -> int:
        return 1

    agent = Agent("observer", "d", [observed])
    await agent.put(Turn(observed))
    await drain(agent)
    step = EXECUTE.format("observed")
    assert seen.index(("start", step)) < seen.index(("end", step))
    assert seen[0] == ("start", INVOKE.format("observer"))
    assert seen[-1] == ("end", INVOKE.format("observer"))


# --------------------------------------------------------------------------- plain agent run


async def test_plain_agent_run_span_tree_names_kinds_and_attributes(telemetry: Any) -> None:
    @tool()
    async def lookup(key: str) -> str:
        """Look a key up."""
        await asyncio.sleep(0)
        return key.upper()

    @tool()
    async def bare(x: int) -> int:
        return x + 1

    agent = Agent("planner", "Plans things.", [lookup, bare], tags=["zeta", "alpha"])
    await agent.put(Turn(lookup, timeout=5, kwargs={"key": "k"}))
    await agent.put(Turn(bare, timeout=None, args=[1]))
    await agent.put(Turn("lookup", timeout=2.5, kwargs={"key": "j"}))

    assert await drain(agent) == [("lookup", "K"), ("bare", 2), ("lookup", "J")]

    run = only(telemetry.by_name(INVOKE.format("planner")))
    assert run.kind is SpanKind.INTERNAL
    assert run.parent is None
    assert run.status.status_code is StatusCode.UNSET
    assert attrs(run) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "pygents",
        "gen_ai.agent.name": "planner",
        "gen_ai.agent.description": "Plans things.",
        "pygents.agent.tags": ("alpha", "zeta"),
        "pygents.agent.turns": 3,
    }

    lookups = telemetry.by_name(EXECUTE.format("lookup"))
    bares = telemetry.by_name(EXECUTE.format("bare"))
    assert len(lookups) == 2
    assert len(bares) == 1
    for span in [*lookups, *bares]:
        assert span.kind is SpanKind.INTERNAL
        assert is_child_of(span, run)
        assert span.status.status_code is StatusCode.UNSET
        assert exception_events(span) == []
        assert span.links == ()
    # Children end inside the run span.
    assert all(run.start_time <= s.start_time <= s.end_time <= run.end_time for s in lookups)

    first, second = sorted(lookups, key=lambda s: s.start_time)
    assert attrs(first) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup",
        "gen_ai.tool.description": "Look a key up.",
        "gen_ai.tool.type": "function",
        "pygents.turn.timeout": 5.0,
        "pygents.turn.stop_reason": "completed",
        "pygents.turn.values": 1,
    }
    assert isinstance(first.attributes["pygents.turn.timeout"], float)
    assert second.attributes["pygents.turn.timeout"] == 2.5
    # No docstring -> no description; timeout None -> no timeout attribute.
    assert attrs(only(bares)) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "bare",
        "gen_ai.tool.type": "function",
        "pygents.turn.stop_reason": "completed",
        "pygents.turn.values": 1,
    }
    # Exactly the run span and the three turn spans: nothing else.
    assert len(telemetry.finished()) == 4


async def test_agent_without_tags_has_no_tags_attribute_and_counts_zero_turns(
    telemetry: Any,
) -> None:
    @tool()
    async def noop() -> None:
        return None

    agent = Agent("idle", "", [noop])
    assert await drain(agent) == []
    run = only(telemetry.by_name(INVOKE.format("idle")))
    assert "pygents.agent.tags" not in attrs(run)
    assert run.attributes["pygents.agent.turns"] == 0
    assert run.attributes["gen_ai.agent.description"] == ""


async def test_each_run_gets_its_own_agent_span(telemetry: Any) -> None:
    @tool()
    async def noop() -> int:
        return 0

    agent = Agent("again", "d", [noop])
    for _ in range(2):
        await agent.put(Turn(noop))
        await drain(agent)
    runs = telemetry.by_name(INVOKE.format("again"))
    assert len(runs) == 2
    assert runs[0].context.trace_id != runs[1].context.trace_id
    for run in runs:
        assert run.attributes["pygents.agent.turns"] == 1
        assert (
            len([s for s in telemetry.by_name(EXECUTE.format("noop")) if is_child_of(s, run)]) == 1
        )


# --------------------------------------------------------------------------- streaming


async def test_streaming_tool_counts_values_and_records_yield_events(telemetry: Any) -> None:
    @tool()
    async def three():
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    agent = Agent("streamer", "d", [three])
    await agent.put(Turn(three))
    assert [v for _, v in await drain(agent)] == [0, 1, 2]

    span = only(telemetry.by_name(EXECUTE.format("three")))
    assert span.attributes["pygents.turn.values"] == 3
    assert span.attributes["pygents.turn.stop_reason"] == "completed"
    yields = [e for e in span.events if e.name == "pygents.tool.yield"]
    assert len(yields) == 3
    assert is_child_of(span, only(telemetry.by_name(INVOKE.format("streamer"))))


async def test_yield_events_are_capped_at_100_but_values_count_all(telemetry: Any) -> None:
    @tool()
    async def many():
        for i in range(150):
            yield i

    agent = Agent("flood", "d", [many])
    await agent.put(Turn(many))
    assert len(await drain(agent)) == 150

    span = only(telemetry.by_name(EXECUTE.format("many")))
    assert span.attributes["pygents.turn.values"] == 150
    assert event_names(span).count("pygents.tool.yield") == 100


@pytest.mark.parametrize(
    ("setting", "events"), [("2", 2), ("0", 0), (" 7 ", 5), ("-1", 5), ("lots", 5)]
)
async def test_the_yield_event_cap_is_set_by_the_environment(
    telemetry: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    setting: str,
    events: int,
) -> None:
    # Read when the bridge is installed; a value that is not a non-negative integer keeps the
    # default (100, so all five here) and says so.
    monkeypatch.setenv("PYGENTS_YIELD_EVENTS_MAX", setting)
    uninstrument()
    reinstrument(telemetry)

    @tool()
    async def five():
        for i in range(5):
            yield i

    assert [v async for v in Turn(five).yielding()] == [0, 1, 2, 3, 4]
    span = only(telemetry.by_name(EXECUTE.format("five")))
    assert span.attributes["pygents.turn.values"] == 5
    indexes = [e.attributes["pygents.tool.yield.index"] for e in span.events]
    assert indexes == list(range(events))
    warned = [r for r in caplog.records if "PYGENTS_YIELD_EVENTS_MAX" in r.getMessage()]
    assert len(warned) == (1 if setting in ("-1", "lots") else 0)


async def test_streaming_turn_run_on_its_own_counts_values(telemetry: Any) -> None:
    @tool()
    async def pair():
        yield "a"
        yield "b"

    assert [v async for v in Turn(pair).yielding()] == ["a", "b"]
    span = only(telemetry.by_name(EXECUTE.format("pair")))
    assert span.attributes["pygents.turn.values"] == 2
    assert event_names(span).count("pygents.tool.yield") == 2


# --------------------------------------------------------------------------- links


async def test_turn_returned_by_a_tool_links_to_the_creating_turn(telemetry: Any) -> None:
    returned: list[Turn] = []

    @tool()
    async def first() -> Turn:
        returned.append(Turn("second", kwargs={"n": 1}))
        return returned[0]

    @tool()
    async def second(n: int) -> int:
        return n * 10

    agent = Agent("flow", "d", [first, second])
    await agent.put(Turn(first))
    results = await drain(agent)
    assert results == [("second", 10)]  # the returned turn was routed, not yielded

    first_span = only(telemetry.by_name(EXECUTE.format("first")))
    second_span = only(telemetry.by_name(EXECUTE.format("second")))
    assert first_span.links == ()
    link = only(list(second_span.links))
    assert link.context.span_id == first_span.context.span_id
    assert link.context.trace_id == first_span.context.trace_id
    # A span of this process: linked by its own context (not remote, its flags and state).
    assert link.context == first_span.context and not link.context.is_remote
    # The origin was recorded deferred (no carrier formatted for a turn linked in-process);
    # read, it is the W3C carrier of the creating turn's span.
    meta = returned[0].metadata
    assert isinstance(meta.recorded_trace_context, DeferredTraceContext)
    ids = first_span.context
    traceparent = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}"
    assert meta.trace_context == {"traceparent": traceparent}
    assert meta.recorded_trace_context == meta.trace_context
    # Both turns are still children of the one run span.
    run = only(telemetry.by_name(INVOKE.format("flow")))
    assert is_child_of(first_span, run)
    assert is_child_of(second_span, run)


@pytest.mark.parametrize("hooked", [False, True], ids=["bare", "put-hook"])
async def test_a_returned_turn_that_ran_before_links_to_the_turn_returning_it_again(
    telemetry: Any, hooked: bool
) -> None:
    # Returned, run, then returned again by another turn: each run links to the turn that
    # returned it that time (the origin of the put routing it), not to the first origin.
    kept: list[Turn] = []

    @tool()
    async def make() -> Turn:
        kept.append(Turn("step", kwargs={"n": 1}))
        return kept[0]

    @tool()
    async def again() -> Turn:
        return kept[0]

    @tool()
    async def step(n: int) -> int:
        return n

    agent = Agent("again", "d", [make, again, step])
    if hooked:  # the put goes through put() and its hooks, not the run loop's own append

        @hook(AgentHook.BEFORE_PUT)
        async def seen(*_: Any) -> None:
            return None

        agent.hooks.append(seen)
    await agent.put(Turn(make))
    await drain(agent)
    await agent.put(Turn(again))
    await drain(agent)
    steps = telemetry.by_name(EXECUTE.format("step"))
    assert len(steps) == 2
    made = only(telemetry.by_name(EXECUTE.format("make")))
    returned = only(telemetry.by_name(EXECUTE.format("again")))
    assert [only(list(s.links)).context for s in steps] == [made.context, returned.context]


async def test_a_turn_whose_output_is_routed_ends_like_any_completed_turn(telemetry: Any) -> None:
    # Its span stays open until the agent has routed the output (so the routing's event lands
    # on it), then ends with the end time and closing attributes of a completed turn.
    @tool()
    async def hand_over() -> Turn:
        return Turn("take", kwargs={"n": 1})

    @tool()
    async def take(n: int) -> ContextItem:
        return ContextItem(content=f"note {n}")

    @tool()
    async def pooled() -> ContextItem:
        return ContextItem(content="doc", id="doc", description="a doc")

    agent = Agent("router", "d", [hand_over, take, pooled])
    await agent.put(Turn(hand_over))
    await agent.put(Turn(pooled))
    assert await drain(agent) == []  # every output was routed

    expected_event = {
        "hand_over": "pygents.agent.put",
        "take": "pygents.context_queue.append",
        "pooled": "pygents.context_pool.add",
    }
    for name, event in expected_event.items():
        span = only(telemetry.by_name(EXECUTE.format(name)))
        assert span.attributes["pygents.turn.stop_reason"] == "completed", name
        assert span.attributes["pygents.turn.values"] == 1, name
        assert span.status.status_code is StatusCode.UNSET, name
        assert event_names(span) == [event], name
        # The span ends when the tool returned; the routing's event, just after, is stamped
        # with that end (an event after its span's end is drawn outside the span).
        assert span.start_time <= span.events[0].timestamp == span.end_time, name
    put = only(telemetry.by_name(EXECUTE.format("hand_over"))).events[0]
    assert dict(put.attributes) == {"gen_ai.agent.name": "router", "gen_ai.tool.name": "take"}


async def test_turn_streamed_by_a_tool_links_to_the_streaming_turn(telemetry: Any) -> None:
    @tool()
    async def fan_out():
        yield Turn("leaf", kwargs={"n": 1})
        yield Turn("leaf", kwargs={"n": 2})

    @tool()
    async def leaf(n: int) -> int:
        return n

    agent = Agent("fan", "d", [fan_out, leaf])
    await agent.put(Turn(fan_out))
    await drain(agent)

    source = only(telemetry.by_name(EXECUTE.format("fan_out")))
    leaves = telemetry.by_name(EXECUTE.format("leaf"))
    assert len(leaves) == 2
    for span in leaves:
        link = only(list(span.links))
        assert link.context.span_id == source.context.span_id
        assert link.context.trace_id == source.context.trace_id


async def test_turn_put_under_a_user_span_links_to_that_span(telemetry: Any) -> None:
    @tool()
    async def job() -> int:
        return 1

    agent = Agent("worker", "d", [job])
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("request") as request:
        await agent.put(Turn(job))
    await drain(agent)

    span = only(telemetry.by_name(EXECUTE.format("job")))
    link = only(list(span.links))
    assert link.context.span_id == request.get_span_context().span_id
    assert link.context.trace_id == request.get_span_context().trace_id


async def test_link_survives_serialization_of_the_turn_and_the_agent(telemetry: Any) -> None:
    @tool()
    async def job() -> int:
        return 1

    tracer = telemetry.tracer_provider.get_tracer("t")
    sender = Agent("sender", "d", [job])
    with tracer.start_as_current_span("origin") as origin:
        await sender.put(Turn(job))
        await sender.put(Turn(job))
    saved_agent = json.loads(json.dumps(sender.to_dict()))
    saved_turn = json.loads(json.dumps(sender.queue[0].to_dict()))

    AgentRegistry.unregister("sender")
    restored = Agent.from_dict(saved_agent)
    await restored.put(Turn.from_dict(saved_turn))
    assert len(restored) == 3
    await drain(restored)
    spans = telemetry.by_name(EXECUTE.format("job"))
    assert len(spans) == 3
    for span in spans:
        link = only(list(span.links))
        assert link.context.span_id == origin.get_span_context().span_id
        assert link.context.trace_id == origin.get_span_context().trace_id
    # All three came back from their W3C carriers (the agent's dict, the turn's): remote.
    assert all(only(list(span.links)).context.is_remote for span in spans)


async def test_send_between_agents_links_across_traces(telemetry: Any) -> None:
    @tool()
    async def ask(question: str) -> str:
        agent = current_agent()
        assert agent is not None
        await agent.send("bob", Turn("answer", kwargs={"question": question}))
        return "sent"

    @tool()
    async def answer(question: str) -> str:
        return f"42 ({question})"

    alice = Agent("alice", "asks", [ask])
    bob = Agent("bob", "answers", [answer])
    await alice.put(Turn(ask, kwargs={"question": "life"}))
    assert await drain(alice) == [("ask", "sent")]
    assert await drain(bob) == [("answer", "42 (life)")]

    alice_run = only(telemetry.by_name(INVOKE.format("alice")))
    bob_run = only(telemetry.by_name(INVOKE.format("bob")))
    sending = only(telemetry.by_name(EXECUTE.format("ask")))
    receiving = only(telemetry.by_name(EXECUTE.format("answer")))
    assert is_child_of(sending, alice_run)
    assert is_child_of(receiving, bob_run)
    # Two traces, joined by a link.
    assert alice_run.context.trace_id != bob_run.context.trace_id
    link = only(list(receiving.links))
    assert link.context.span_id == sending.context.span_id
    assert link.context.trace_id == sending.context.trace_id
    # The put is an event on the sending turn's span, naming the target agent.
    puts = [e for e in sending.events if e.name == "pygents.agent.put"]
    assert len(puts) == 1
    assert puts[0].attributes["gen_ai.agent.name"] == "bob"
    assert puts[0].attributes["gen_ai.tool.name"] == "answer"


async def test_a_put_from_outside_a_running_agent_records_its_event_on_the_run(
    telemetry: Any,
) -> None:
    # The bridge's enqueue takes no frame switch (enqueue_in_frame False): the agent it is
    # given names the run, and current_turn() (the caller's) names a turn put from.
    @tool()
    async def tick(n: int) -> int:
        return n

    ticker = Agent("ticker", "ticks", [tick])
    await ticker.put(Turn(tick, kwargs={"n": 1}))
    values = []
    async for _turn, value in ticker.run():
        values.append(value)
        if value == 1:  # the consumer's code, between two steps of the run: no turn current
            assert current_agent() is None
            await ticker.put(Turn(tick, kwargs={"n": 2}))
    assert values == [1, 2]
    await ticker.put(Turn(tick, kwargs={"n": 3}))  # not running: no span for the event
    assert await drain(ticker) == [("tick", 3)]

    runs = telemetry.by_name(INVOKE.format("ticker"))
    assert len(runs) == 2
    first = next(r for r in runs if r.attributes["pygents.agent.turns"] == 2)
    puts = [e for e in first.events if e.name == "pygents.agent.put"]
    assert [dict(e.attributes) for e in puts] == [
        {"gen_ai.agent.name": "ticker", "gen_ai.tool.name": "tick"}
    ]
    ticks = telemetry.by_name(EXECUTE.format("tick"))
    assert all(not any(e.name == "pygents.agent.put" for e in t.events) for t in ticks)
    # No span is current in the consumer's code (the run's is detached around each value):
    # the turns have no origin to link to.
    assert len(ticks) == 3 and not any(t.links for t in ticks)


# --------------------------------------------------------------------------- errors
# --------------------------------------------------------------------------- errors


class ToolBroke(Exception):
    pass


async def test_tool_error_marks_turn_and_run_spans_as_errors(telemetry: Any) -> None:
    @tool()
    async def explode() -> None:
        raise ToolBroke("kaboom")

    agent = Agent("fragile", "d", [explode])
    await agent.put(Turn(explode))
    with pytest.raises(ToolBroke, match="kaboom"):
        await drain(agent)

    expected_type = f"{ToolBroke.__module__}.{ToolBroke.__qualname__}"
    span = only(telemetry.by_name(EXECUTE.format("explode")))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ToolBroke"
    assert span.attributes["pygents.turn.stop_reason"] == "error"
    assert span.attributes["pygents.turn.values"] == 0
    event = only(exception_events(span))
    assert event.attributes["exception.type"] == expected_type
    assert event.attributes["exception.message"] == "kaboom"

    run = only(telemetry.by_name(INVOKE.format("fragile")))
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["error.type"] == "ToolBroke"
    assert only(exception_events(run)).attributes["exception.type"] == expected_type
    assert run.attributes["pygents.agent.turns"] == 1


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot format: secret-42")


async def test_an_error_whose_str_raises_still_ends_every_span(telemetry: Any) -> None:
    # record_exception() calls str(exc): it raised inside the bridge, and the turn's span,
    # the run's and a direct call's were never ended (never exported).
    @tool()
    async def odd() -> None:
        raise Unprintable()

    agent = Agent("odd-agent", "d", [odd])
    await agent.put(Turn(odd))
    with pytest.raises(Unprintable):
        await drain(agent)
    with pytest.raises(Unprintable):
        await odd()

    expected_type = f"{Unprintable.__module__}.{Unprintable.__qualname__}"
    spans = telemetry.by_name(EXECUTE.format("odd"))
    assert len(spans) == 2  # the turn's and the direct call's
    for span in [*spans, only(telemetry.by_name(INVOKE.format("odd-agent")))]:
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "Unprintable: <Unprintable: str() failed>"
        event = only(exception_events(span))
        assert event.attributes["exception.type"] == expected_type
        assert event.attributes["exception.message"] == "<Unprintable: str() failed>"
        assert "Unprintable" in event.attributes["exception.stacktrace"]
        assert "secret-42" not in str(dict(event.attributes))


async def test_builtin_error_on_a_turn_run_on_its_own(telemetry: Any) -> None:
    @tool()
    async def parse(text: str) -> int:
        return int(text)

    with pytest.raises(ValueError):
        await Turn(parse, args=["nope"]).returning()
    span = only(telemetry.by_name(EXECUTE.format("parse")))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    assert only(exception_events(span)).attributes["exception.type"] == "ValueError"


async def test_timeout_marks_the_turn_span_with_turn_timeout_error(telemetry: Any) -> None:
    @tool()
    async def slow() -> None:
        await asyncio.sleep(5)

    agent = Agent("sluggish", "d", [slow])
    await agent.put(Turn(slow, timeout=0.01))
    with pytest.raises(TurnTimeoutError):
        await drain(agent)

    span = only(telemetry.by_name(EXECUTE.format("slow")))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "TurnTimeoutError"
    assert span.attributes["pygents.turn.stop_reason"] == "timeout"
    assert span.attributes["pygents.turn.timeout"] == 0.01
    event = only(exception_events(span))
    assert event.attributes["exception.type"] == "pygents.errors.TurnTimeoutError"

    run = only(telemetry.by_name(INVOKE.format("sluggish")))
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["error.type"] == "TurnTimeoutError"


async def test_timeout_of_a_streaming_turn(telemetry: Any) -> None:
    @tool()
    async def trickle():
        yield 1
        await asyncio.sleep(5)
        yield 2

    with pytest.raises(TurnTimeoutError):
        async for _ in Turn(trickle, timeout=0.01).yielding():
            pass
    span = only(telemetry.by_name(EXECUTE.format("trickle")))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "TurnTimeoutError"
    assert span.attributes["pygents.turn.values"] == 1
    assert len(exception_events(span)) == 1


# --------------------------------------------------------------------------- cancellation


async def test_cancelled_turn_has_unset_status_and_no_exception_event(telemetry: Any) -> None:
    started = asyncio.Event()

    @tool()
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(Turn(forever).returning())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    span = only(telemetry.by_name(EXECUTE.format("forever")))
    assert span.attributes["pygents.turn.stop_reason"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET
    assert exception_events(span) == []
    assert "error.type" not in attrs(span)


async def test_cancelled_agent_run_is_not_an_error(telemetry: Any) -> None:
    started = asyncio.Event()

    @tool()
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    agent = Agent("patient", "d", [forever])
    await agent.put(Turn(forever))
    task = asyncio.create_task(drain(agent))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    turn_span = only(telemetry.by_name(EXECUTE.format("forever")))
    assert turn_span.attributes["pygents.turn.stop_reason"] == "cancelled"
    assert turn_span.status.status_code is StatusCode.UNSET
    assert exception_events(turn_span) == []
    run = only(telemetry.by_name(INVOKE.format("patient")))
    assert run.status.status_code is StatusCode.UNSET
    assert exception_events(run) == []
    assert "error.type" not in attrs(run)
    assert is_child_of(turn_span, run)


async def test_consumer_break_ends_the_streaming_span_as_cancelled(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    @tool()
    async def endless():
        i = 0
        while True:
            await asyncio.sleep(0)
            yield i
            i += 1

    agent = Agent("quitter", "d", [endless])
    await agent.put(Turn(endless))
    async with contextlib.aclosing(agent.run()) as stream:
        async for _turn, value in stream:
            if value == 2:
                break

    span = only(telemetry.by_name(EXECUTE.format("endless")))
    assert span.attributes["pygents.turn.stop_reason"] == "cancelled"
    assert span.attributes["pygents.turn.values"] == 3
    assert span.status.status_code is StatusCode.UNSET
    assert exception_events(span) == []
    run = only(telemetry.by_name(INVOKE.format("quitter")))
    assert run.status.status_code is StatusCode.UNSET
    assert is_child_of(span, run)
    assert not [r for r in caplog.records if "Failed to detach context" in r.getMessage()]


# --------------------------------------------------------------------------- parents


async def test_turn_outside_an_agent_is_a_child_of_the_current_user_span(telemetry: Any) -> None:
    @tool()
    async def solo(x: int) -> int:
        return x

    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("user work"):
        assert await Turn(solo, args=[3]).returning() == 3

    user = only(telemetry.by_name("user work"))
    span = only(telemetry.by_name(EXECUTE.format("solo")))
    assert is_child_of(span, user)
    assert span.attributes["pygents.turn.stop_reason"] == "completed"
    assert telemetry.by_name(INVOKE.format("")) == []


async def test_turn_outside_any_span_is_a_root(telemetry: Any) -> None:
    @tool()
    async def solo() -> int:
        return 1

    await Turn(solo).returning()
    assert only(telemetry.by_name(EXECUTE.format("solo"))).parent is None


async def test_tool_invoked_directly_gets_exactly_one_span(telemetry: Any) -> None:
    @tool()
    async def direct(x: int) -> int:
        """Directly called."""
        return x * 2

    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("caller"):
        assert await direct(x=4) == 8

    span = only(telemetry.by_name(EXECUTE.format("direct")))
    assert is_child_of(span, only(telemetry.by_name("caller")))
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["gen_ai.tool.name"] == "direct"
    assert span.attributes["gen_ai.tool.type"] == "function"
    assert span.attributes["gen_ai.tool.description"] == "Directly called."
    assert span.attributes["pygents.turn.values"] == 1
    assert span.status.status_code is StatusCode.UNSET
    assert len(telemetry.finished()) == 2  # the caller's span and ours


async def test_generator_tool_invoked_directly_gets_one_span(telemetry: Any) -> None:
    @tool()
    async def gen():
        for i in range(4):
            yield i

    assert [v async for v in gen()] == [0, 1, 2, 3]
    span = only(telemetry.finished())
    assert span.name == EXECUTE.format("gen")
    assert span.attributes["pygents.turn.values"] == 4
    assert event_names(span).count("pygents.tool.yield") == 4


async def test_tool_invoked_directly_that_fails(telemetry: Any) -> None:
    @tool()
    async def bad() -> None:
        raise ToolBroke("direct failure")

    with pytest.raises(ToolBroke):
        await bad()
    span = only(telemetry.finished())
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ToolBroke"
    assert len(exception_events(span)) == 1


async def test_tool_run_by_a_turn_gets_no_second_span(telemetry: Any) -> None:
    @tool()
    async def once(x: int) -> int:
        return x

    @tool()
    async def stream_once():
        yield 1

    assert await Turn(once, args=[1]).returning() == 1
    assert [v async for v in Turn(stream_once).yielding()] == [1]
    assert [s.name for s in telemetry.finished()] == [
        EXECUTE.format("once"),
        EXECUTE.format("stream_once"),
    ]

    telemetry.spans.clear()
    agent = Agent("single", "d", [once, stream_once])
    await agent.put(Turn(once, args=[2]))
    await agent.put(Turn(stream_once))
    await drain(agent)
    assert sorted(s.name for s in telemetry.finished()) == sorted(
        [INVOKE.format("single"), EXECUTE.format("once"), EXECUTE.format("stream_once")]
    )


async def test_nested_turn_and_direct_tool_inside_a_tool_are_children_of_its_span(
    telemetry: Any,
) -> None:
    @tool()
    async def inner(x: int) -> int:
        return x + 1

    @tool()
    async def helper(x: int) -> int:
        return x * 3

    @tool()
    async def outer() -> int:
        nested = await Turn(inner, args=[1]).returning()
        return await helper(nested)

    agent = Agent("nest", "d", [outer])
    await agent.put(Turn(outer))
    assert await drain(agent) == [("outer", 6)]

    outer_span = only(telemetry.by_name(EXECUTE.format("outer")))
    assert is_child_of(outer_span, only(telemetry.by_name(INVOKE.format("nest"))))
    assert is_child_of(only(telemetry.by_name(EXECUTE.format("inner"))), outer_span)
    assert is_child_of(only(telemetry.by_name(EXECUTE.format("helper"))), outer_span)


# --------------------------------------------------------------------------- events


async def test_pause_and_resume_are_events_on_the_agent_span(telemetry: Any) -> None:
    @tool()
    async def stop_me() -> int:
        agent = current_agent()
        assert agent is not None
        agent.pause()
        asyncio.get_running_loop().call_soon(agent.resume)
        return 1

    @tool()
    async def after() -> int:
        return 2

    agent = Agent("napper", "d", [stop_me, after])
    await agent.put(Turn(stop_me))
    await agent.put(Turn(after))
    assert await drain(agent) == [("stop_me", 1), ("after", 2)]

    run = only(telemetry.by_name(INVOKE.format("napper")))
    names = event_names(run)
    assert names.count("pygents.agent.pause") == 1
    assert names.count("pygents.agent.resume") == 1
    assert names.index("pygents.agent.pause") < names.index("pygents.agent.resume")
    for span in telemetry.by_name(EXECUTE.format("stop_me")) + telemetry.by_name(
        EXECUTE.format("after")
    ):
        assert "pygents.agent.pause" not in event_names(span)
        assert "pygents.agent.resume" not in event_names(span)


async def test_context_events_from_a_streaming_turn_land_on_its_span(telemetry: Any) -> None:
    @tool()
    async def produce():
        for i in range(3):
            yield ContextItem(content=f"note {i}")
        yield ContextItem(content="a", id="a", description="doc a")
        yield ContextItem(content="b", id="b", description="doc b")

    agent = Agent(
        "producer",
        "d",
        [produce],
        context_queue=ContextQueue(limit=2),
        context_pool=ContextPool(limit=1),
    )
    await agent.put(Turn(produce))
    await drain(agent)
    assert len(agent.context_queue) == 2
    assert [i.id for i in agent.context_pool.items] == ["b"]

    span = only(telemetry.by_name(EXECUTE.format("produce")))
    names = Counter(event_names(span))
    assert names["pygents.context_queue.append"] == 3
    assert names["pygents.context_queue.evict"] == 1
    assert names["pygents.context_pool.add"] == 2
    assert names["pygents.context_pool.evict"] == 1
    run = only(telemetry.by_name(INVOKE.format("producer")))
    assert not [n for n in event_names(run) if n.startswith("pygents.context_")]


async def test_context_events_from_a_returned_item_land_on_the_producing_turn_span(
    telemetry: Any,
) -> None:
    """Routing a coroutine tool's returned item runs in the producing turn's frame, so the
    append/evict (and add/evict) events belong to that turn's span, not the agent's."""

    @tool()
    async def note(text: str) -> ContextItem:
        return ContextItem(content=text)

    @tool()
    async def doc(key: str) -> ContextItem:
        return ContextItem(content=key, id=key, description=f"doc {key}")

    @tool()
    async def delegate() -> Turn:
        return Turn("note", args=["three"])

    agent = Agent(
        "returner",
        "d",
        [note, doc, delegate],
        context_queue=ContextQueue(limit=1),
        context_pool=ContextPool(limit=1),
    )
    await agent.put(Turn(note, args=["one"]))
    await agent.put(Turn(note, args=["two"]))
    await agent.put(Turn(doc, args=["a"]))
    await agent.put(Turn(doc, args=["b"]))
    await agent.put(Turn(delegate))
    await drain(agent)

    notes = sorted(telemetry.by_name(EXECUTE.format("note")), key=lambda s: s.start_time)
    docs = sorted(telemetry.by_name(EXECUTE.format("doc")), key=lambda s: s.start_time)
    assert event_names(notes[0]) == ["pygents.context_queue.append"]
    assert sorted(event_names(notes[1])) == sorted(
        ["pygents.context_queue.evict", "pygents.context_queue.append"]
    )
    assert event_names(docs[0]) == ["pygents.context_pool.add"]
    assert sorted(event_names(docs[1])) == sorted(
        ["pygents.context_pool.evict", "pygents.context_pool.add"]
    )
    # Same for the put of a returned turn: it belongs to the turn that returned it.
    assert event_names(only(telemetry.by_name(EXECUTE.format("delegate")))) == ["pygents.agent.put"]
    run = only(telemetry.by_name(INVOKE.format("returner")))
    assert event_names(run) == []


async def test_context_clear_and_remove_from_a_tool_are_events_on_its_span(
    telemetry: Any,
) -> None:
    @tool()
    async def tidy(cq: ContextQueue, pool: ContextPool) -> str:
        await cq.append(ContextItem(content="x"))
        await cq.clear()
        await pool.add(ContextItem(content=1, id="k", description="key"))
        await pool.remove("k")
        await pool.add(ContextItem(content=2, id="j", description="jay"))
        await pool.clear()
        return "tidy"

    agent = Agent("janitor", "d", [tidy])
    await agent.put(Turn(tidy))
    await drain(agent)
    span = only(telemetry.by_name(EXECUTE.format("tidy")))
    assert [n for n in event_names(span) if n.startswith("pygents.context_")] == [
        "pygents.context_queue.append",
        "pygents.context_queue.clear",
        "pygents.context_pool.add",
        "pygents.context_pool.remove",
        "pygents.context_pool.add",
        "pygents.context_pool.clear",
    ]


# --------------------------------------------------------------------------- suppression


async def test_suppress_instrumentation_means_no_spans(telemetry: Any) -> None:
    @tool()
    async def quiet(x: int) -> int:
        return x

    @tool()
    async def quiet_stream():
        yield 1

    agent = Agent("hush", "d", [quiet, quiet_stream])
    await agent.put(Turn(quiet, args=[1]))
    await agent.put(Turn(quiet_stream))
    with suppress_instrumentation():
        assert await drain(agent) == [("quiet", 1), ("quiet_stream", 1)]
        assert await Turn(quiet, args=[2]).returning() == 2
        assert await quiet(3) == 3
        assert [v async for v in quiet_stream()] == [1]
    assert telemetry.finished() == []

    # Outside the block, spans come back.
    assert await quiet(4) == 4
    assert [s.name for s in telemetry.finished()] == [EXECUTE.format("quiet")]


# --------------------------------------------------------------------------- content capture


def _capture_tools() -> tuple[Any, Any]:
    @tool()
    async def add(a: int, b: int) -> int:
        return a + b

    @tool()
    async def chunks(text: str):
        yield text

    return add, chunks


async def _capture_workload() -> None:
    add, chunks = _capture_tools()
    agent = Agent("capturer", "d", [add, chunks])
    await agent.put(Turn(add, kwargs={"a": 1, "b": 2}))
    await agent.put(Turn(chunks, args=["hello"]))
    await drain(agent)
    assert await add(5, b=6) == 11


async def test_content_is_not_captured_by_default(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    await _capture_workload()
    spans = telemetry.finished()
    assert len(spans) == 4
    for span in spans:
        assert ARGS not in attrs(span)
        assert RESULT not in attrs(span)


async def test_content_captured_with_capture_content_true(telemetry: Any) -> None:
    reinstrument(telemetry, capture_content=True)
    await _capture_workload()

    turn_span, direct_span = sorted(telemetry.by_name(EXECUTE.format("add")), key=_start)
    assert json.loads(turn_span.attributes[ARGS]) == {"args": [], "kwargs": {"a": 1, "b": 2}}
    assert json.loads(turn_span.attributes[RESULT]) == 3
    assert json.loads(direct_span.attributes[ARGS]) == {"args": [5], "kwargs": {"b": 6}}
    assert json.loads(direct_span.attributes[RESULT]) == 11
    stream_span = only(telemetry.by_name(EXECUTE.format("chunks")))
    assert json.loads(stream_span.attributes[ARGS]) == {"args": ["hello"], "kwargs": {}}
    assert ARGS not in attrs(only(telemetry.by_name(INVOKE.format("capturer"))))


async def test_content_capture_truncates(telemetry: Any) -> None:
    reinstrument(telemetry, capture_content=ContentCapture(enabled=True, max_length=10))

    @tool()
    async def echo(text: str) -> str:
        return text

    @tool()
    async def small() -> int:
        return 7

    await Turn(echo, args=["x" * 50]).returning()
    await Turn(small).returning()

    span = only(telemetry.by_name(EXECUTE.format("echo")))
    arguments = span.attributes[ARGS]
    assert len(arguments) == 11
    assert arguments.endswith("…")
    assert span.attributes[RESULT] == '"' + "x" * 9 + "…"
    short = only(telemetry.by_name(EXECUTE.format("small")))
    assert short.attributes[RESULT] == "7"
    assert len(short.attributes[ARGS]) == 11  # '{"args": [], "kwargs": {}}' is longer than 10
    assert short.attributes[ARGS].endswith("…")


async def test_content_capture_applies_redaction(telemetry: Any) -> None:
    def redact(text: str) -> str:
        return text.replace("hunter2", "[REDACTED]")

    reinstrument(telemetry, capture_content=ContentCapture(enabled=True, redact=redact))

    @tool()
    async def login(user: str, password: str) -> str:
        return f"token for {user}:{password}"

    await Turn(login, kwargs={"user": "ann", "password": "hunter2"}).returning()
    span = only(telemetry.by_name(EXECUTE.format("login")))
    assert json.loads(span.attributes[ARGS]) == {
        "args": [],
        "kwargs": {"user": "ann", "password": "[REDACTED]"},
    }
    assert json.loads(span.attributes[RESULT]) == "token for ann:[REDACTED]"
    assert all("hunter2" not in str(v) for s in telemetry.finished() for v in attrs(s).values())


async def test_content_capture_redacts_before_truncating(telemetry: Any) -> None:
    reinstrument(
        telemetry,
        capture_content=ContentCapture(enabled=True, max_length=6, redact=lambda s: "SAFE" + s),
    )

    @tool()
    async def word() -> str:
        return "abcdef"

    await Turn(word).returning()
    span = only(telemetry.by_name(EXECUTE.format("word")))
    assert span.attributes[RESULT] == 'SAFE"a…'


@pytest.mark.parametrize(
    ("value", "captured"),
    [("true", True), ("span_only", True), ("SPAN_AND_EVENT", True), ("false", False)],
)
async def test_content_capture_env_var(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, value: str, captured: bool
) -> None:
    uninstrument()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    reinstrument(telemetry)

    @tool()
    async def shout(text: str) -> str:
        return text.upper()

    assert await Turn(shout, args=["hi"]).returning() == "HI"
    span = only(telemetry.by_name(EXECUTE.format("shout")))
    if captured:
        assert json.loads(span.attributes[ARGS]) == {"args": ["hi"], "kwargs": {}}
        assert json.loads(span.attributes[RESULT]) == "HI"
    else:
        assert ARGS not in attrs(span)
        assert RESULT not in attrs(span)


# --------------------------------------------------------------------------- (un)instrument


def _otel_snapshot(telemetry: Any) -> dict[tuple[str, tuple[Any, ...]], Any]:
    snapshot: dict[tuple[str, tuple[Any, ...]], Any] = {}
    data = telemetry.metric_reader.get_metrics_data()
    if data is None:
        return snapshot
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)
                    snapshot[key] = value
    return snapshot


async def test_uninstrument_stops_spans_and_metrics_but_keeps_user_hooks(
    telemetry: Any,
) -> None:
    seen: list[str] = []

    @hook(TurnHook.ON_COMPLETE)
    async def user_complete(turn: Turn, reason: Any) -> None:
        seen.append(turn.tool_name)

    @tool()
    async def work() -> int:
        return 1

    async def run_once() -> None:
        agent = Agent(f"agent{len(seen)}", "d", [work])
        await agent.put(Turn(work))
        await drain(agent)

    await run_once()
    assert len(telemetry.finished()) == 2
    assert seen == ["work"]
    assert telemetry.sample("pygents_turns_total", _labels("agent0")) == 1
    before = _otel_snapshot(telemetry)
    assert before

    uninstrument()
    assert not is_instrumented()
    assert bridge_hook_names() == []
    assert HookRegistry.get("user_complete") is user_complete

    telemetry.spans.clear()
    await run_once()
    await work()
    assert telemetry.finished() == []
    assert seen == ["work", "work"]  # the user's global hook still fires
    assert HookRegistry.get("user_complete") is user_complete
    # Prometheus metrics are gone from the registry; OTel data points did not move.
    names = {m.name for m in telemetry.registry.collect()}
    assert not [n for n in names if n.startswith("pygents_")]
    assert telemetry.sample("pygents_turns_total", _labels("agent1")) is None
    # No OpenTelemetry data point moved (the observable instruments stop reporting).
    assert _otel_snapshot(telemetry).items() <= before.items()


async def test_the_programs_hook_lookups_do_not_see_the_bridge_hooks(telemetry: Any) -> None:
    # A ported program asks the registry for its own hooks (COMPAT A7: get_by_type with one
    # argument is the first registered hook of that type); the bridge registered at import.
    assert bridge_hook_names()
    assert HookRegistry.all() == []
    assert HookRegistry.get_by_type(AgentHook.ON_PAUSE) is None
    assert HookRegistry.get_by_type(ToolHook.ON_YIELD) is None

    @hook(AgentHook.ON_PAUSE)
    async def my_pause(agent: Any) -> None:
        pass

    assert HookRegistry.get_by_type(AgentHook.ON_PAUSE) is my_pause
    assert HookRegistry.all() == [my_pause]

    @tool()
    async def stream() -> Any:
        yield 1

    agent = Agent("lookups", "d", [stream])
    await agent.put(Turn(stream))
    await drain(agent)
    (span,) = telemetry.by_name(EXECUTE.format("stream"))
    assert [e.name for e in span.events] == ["pygents.tool.yield"]  # the bridge still fires


async def test_subtools_are_named_by_their_scoped_registry_name(telemetry: Any) -> None:
    @tool()
    async def users() -> None:
        pass

    @tool()
    async def files() -> None:
        pass

    @users.subtool()
    async def delete(n: int) -> int:
        return n

    user_delete = delete

    @files.subtool()
    async def delete(n: int) -> int:  # the same short name, another parent
        return -n

    agent = Agent("cleaner", "d", [user_delete, delete])
    await agent.put(Turn("users.delete", kwargs={"n": 1}))
    await agent.put(Turn("files.delete", kwargs={"n": 2}))
    await drain(agent)
    (user_span,) = telemetry.by_name("execute_tool users.delete")
    (file_span,) = telemetry.by_name("execute_tool files.delete")
    assert user_span.attributes["gen_ai.tool.name"] == "users.delete"
    assert file_span.attributes["gen_ai.tool.name"] == "files.delete"
    labels = {"agent": "cleaner", "tool": "users.delete", "stop_reason": "completed"}
    assert telemetry.sample("pygents_turns_total", labels) == 1


def _labels(agent: str) -> dict[str, str]:
    return {"agent": agent, "tool": "work", "stop_reason": "completed"}


_FAMILIES = {
    "TurnHook": TurnHook,
    "AgentHook": AgentHook,
    "ToolHook": ToolHook,
    "ContextQueueHook": ContextQueueHook,
    "ContextPoolHook": ContextPoolHook,
}


async def test_instrument_is_idempotent(telemetry: Any) -> None:
    first = bridge_hooks()
    names = [h.metadata.name for h in first]
    assert names
    assert len(names) == len(set(names))
    for name in names:
        match = re.fullmatch(r"pygents\.observability\.([a-z_]+)\.(\w+)", name)
        assert match, name
        family = _FAMILIES[match.group(2)]
        assert family(match.group(1))  # the value names a real hook of that family
    # Turn lifecycles come through the bridge's execution scope, not through turn hooks.
    assert {n.rsplit(".", 1)[1] for n in names} == set(_FAMILIES) - {"TurnHook"}
    assert sum(isinstance(s, Bridge) for s in pygents.scopes()) == 1

    reinstrument(telemetry)  # same arguments as the fixture
    reinstrument(telemetry)
    again = bridge_hooks()
    assert [id(h) for h in again] == [id(h) for h in first]

    @tool()
    async def once() -> int:
        return 1

    agent = Agent("idem", "d", [once])
    await agent.put(Turn(once))
    await drain(agent)
    assert len(telemetry.by_name(EXECUTE.format("once"))) == 1
    assert len(telemetry.by_name(INVOKE.format("idem"))) == 1
    labels = {"agent": "idem", "tool": "once", "stop_reason": "completed"}
    assert telemetry.sample("pygents_turns_total", labels) == 1

    # Different arguments re-instrument: still one set of hooks.
    reinstrument(telemetry, capture_content=True)
    assert sorted(bridge_hook_names()) == sorted(names)
    assert sum(isinstance(s, Bridge) for s in pygents.scopes()) == 1
    assert is_instrumented()


# --------------------------------------------------------------------------- failure isolation


class ExplodingTracer(trace_api.Tracer):
    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer down")

    @contextlib.contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracer down")
        yield  # pragma: no cover


class ExplodingTracerProvider(trace_api.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return ExplodingTracer()


class _BrokenInstrument:
    def add(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("metric sink down")

    record = set = add


class ExplodingMeter(NoOpMeter):
    def create_counter(self, *args: Any, **kwargs: Any) -> Any:
        return _BrokenInstrument()

    create_histogram = create_gauge = create_up_down_counter = create_counter


class ExplodingMeterProvider(ApiMeterProvider):
    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return ExplodingMeter("exploding")


def _isolation_tools() -> dict[str, Any]:
    @tool()
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @tool()
    async def count(n: int):
        for i in range(n):
            yield i

    @tool()
    async def remember(key: str, cq: ContextQueue) -> ContextItem:
        await cq.append(ContextItem(content="a"), ContextItem(content="b"))
        return ContextItem(content="c", id=key, description="c")

    @tool()
    async def fail() -> None:
        raise ToolBroke("nope")

    return {"double": double, "count": count, "remember": remember, "fail": fail}


async def _isolation_workload(tools: dict[str, Any], round_: int) -> list[Any]:
    """Agents, streaming, errors, context and direct calls; returns everything observed."""
    double, count = tools["double"], tools["count"]
    agent = Agent(f"iso{round_}", "d", list(tools.values()), context_queue=ContextQueue(2))
    for i in range(3):
        await agent.put(Turn(double, args=[i]))
    await agent.put(Turn(count, args=[3]))
    await agent.put(Turn("remember", args=["k"]))
    await agent.put(Turn("fail"))
    await agent.put(Turn(double, args=[10]))
    observed: list[Any] = []
    with pytest.raises(ToolBroke):
        async for turn, value in agent.run():
            observed.append((turn.tool_name, value))
    agent.pause()
    agent.resume()
    observed.append(await drain(agent))
    observed.append(await double(21))
    observed.append([v async for v in count(2)])
    observed.append(await Turn(double, args=[5]).returning())
    observed.append([i.content for i in agent.context_queue.items])
    observed.append([i.id for i in agent.context_pool.items])
    return observed


def _normalise(value: Any) -> Any:
    """Make results comparable across runs (items and turns by content, not identity)."""
    if isinstance(value, ContextItem):
        return ("item", value.content, value.id)
    if isinstance(value, Turn):
        return ("turn", value.tool_name, list(value.args), value.kwargs)
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def _bridge_failures(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for record in caplog.records:
        if record.name != "pygents.observability" or record.levelno < logging.WARNING:
            continue
        match = re.search(
            r"the (\S+) bridge hook failed|the bridge's (\S+) failed", record.getMessage()
        )
        if match:
            kinds[match.group(1) or match.group(2)] += 1
    return kinds


async def test_failing_tracer_never_breaks_the_agent(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pygents.observability")
    uninstrument()
    tools = _isolation_tools()
    expected = await _isolation_workload(tools, 0)  # reference results, no telemetry at all

    assert instrument(
        tracer_provider=ExplodingTracerProvider(),
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
    )
    got = [await _isolation_workload(tools, 1), await _isolation_workload(tools, 2)]
    assert [_normalise(o) for o in got] == [_normalise(expected)] * 2

    failures = _bridge_failures(caplog)
    assert failures, "a failing tracer must be reported"
    # Spans start when their execution opens (run, turn, direct tool call).
    assert {"open_run", "open_turn", "open_call"} <= set(failures)
    assert all(n == 1 for n in failures.values()), failures
    # Metrics do not depend on the tracer: they are still recorded.
    labels = {"agent": "iso1", "tool": "double", "stop_reason": "completed"}
    # iso1 ran double 3 times in its failing run and once more after it.
    assert telemetry.sample("pygents_turns_total", labels) == 4


async def test_failing_metric_sink_never_breaks_the_agent(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pygents.observability")
    uninstrument()
    tools = _isolation_tools()
    expected = await _isolation_workload(tools, 0)

    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=ExplodingMeterProvider(),
        prometheus_registry=False,
    )
    got = [await _isolation_workload(tools, 1), await _isolation_workload(tools, 2)]
    assert [_normalise(o) for o in got] == [_normalise(expected)] * 2

    failures = _bridge_failures(caplog)
    assert failures, "a failing metric sink must be reported"
    assert "close_turn" in failures
    assert all(n == 1 for n in failures.values()), failures
    # Spans do not depend on the metrics: both rounds are fully traced.
    for round_ in (1, 2):
        failed, succeeded = sorted(telemetry.by_name(INVOKE.format(f"iso{round_}")), key=_start)
        assert failed.status.status_code is StatusCode.ERROR
        assert succeeded.status.status_code is StatusCode.UNSET
    executed = [s for s in telemetry.finished() if s.name.startswith("execute_tool ")]
    # Per round: 3 double + count + remember + fail (run 1), double (run 2), and three more
    # outside the agent (direct double, direct count, a turn of double).
    assert len(executed) == 2 * (6 + 1 + 3)


def _raised(make: Any) -> BaseException:
    try:
        make()
    except BaseException as exc:  # any exception, as a span records it
        return exc
    raise AssertionError("nothing raised")


def _divide() -> float:
    return 1 / 0


def _wrapped() -> None:
    try:
        _divide()
    except ZeroDivisionError as exc:
        raise ValueError("wrapped") from exc


def _in_handling() -> None:
    try:
        _divide()
    except ZeroDivisionError:
        raise KeyError("while handling")  # noqa: B904 -- the implicit context is the point


def _suppressed() -> None:
    try:
        _divide()
    except ZeroDivisionError:
        raise KeyError("context suppressed") from None


def _noted() -> None:
    error = RuntimeError("noted")
    error.add_note("a note")
    raise error


def _grouped() -> None:
    raise ExceptionGroup("group", [ValueError(1), KeyError(2)])


@pytest.mark.parametrize(
    "make", [_divide, _wrapped, _in_handling, _suppressed, _noted, _grouped, None]
)
def test_the_recorded_stack_trace_is_pythons_without_column_markers(make: Any) -> None:
    # traceback's column markers (^^^, ~~~) cost ~2.5 ms per exception on the run loop's
    # frames: the span's stack trace leaves them out, and nothing else.
    exc = RuntimeError("never raised") if make is None else _raised(make)
    full = "".join(traceback.format_exception(exc))
    markers = re.compile(r"[ \t]*[~^]+[ \t]*\n")
    assert stacktrace(exc) == "".join(
        line for line in full.splitlines(keepends=True) if not markers.fullmatch(line)
    )
