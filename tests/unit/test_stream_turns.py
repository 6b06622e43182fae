"""Streaming turns run by an agent: the same outcome on both of the run loop's paths.

A stream turn with no hook, scope or tool wrapper ("bare") is driven by the run loop itself;
any instance hook on the turn takes it through ``run_yielding`` ("hooked"). Each test runs
the same scenario both ways and asserts what a user relies on: values and their order, the
turn's output and stop reason, early stops, errors and timeouts, the frame each side sees,
routing, and global hooks added while the stream runs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentHook,
    ContextItem,
    ExecutionScope,
    SafeExecutionError,
    StopReason,
    Turn,
    TurnHook,
    TurnTimeoutError,
    add_scope,
    current_agent,
    current_turn,
    hook,
    remove_scope,
    tool,
)

_hook_names = itertools.count()


_STEP: ContextVar[Any] = ContextVar("test_stream_step", default=None)


class Steps(ExecutionScope):
    """A scope that makes each turn's state current during its steps, and checks pairing."""

    def __init__(self) -> None:
        self.open: set[int] = set()
        self.closed: list[tuple[str, str | None]] = []

    def open_turn(self, turn: Turn, agent: Any) -> Any:
        self.open.add(id(turn))
        return turn

    def close_turn(self, turn: Turn, state: Any, error: BaseException | None) -> None:
        self.open.discard(id(turn))
        self.closed.append((turn.tool_name, type(error).__name__ if error else None))

    def attach(self, state: Any) -> Any:
        return _STEP.set(state)

    def detach(self, token: Any) -> None:
        _STEP.reset(token)


@pytest.fixture
def steps() -> Steps:
    """The execution scope of the "scoped" path (registered by ``path`` only there)."""
    return Steps()


@pytest.fixture(params=["bare", "scoped", "hooked"])
def path(request: pytest.FixtureRequest, steps: Steps) -> Iterator[str]:
    """How the stream turn runs: bare; bare with an execution scope; through run_yielding."""
    value: str = request.param
    if value != "scoped":
        yield value
        return
    add_scope(steps)
    try:
        yield value
    finally:
        remove_scope(steps)
    assert not steps.open, "a turn's scope was never closed"
    assert _STEP.get() is None


@pytest.fixture
def three() -> Any:
    """A stream tool yielding 0, 1 and 2."""

    @tool()
    async def count() -> Any:
        for i in range(3):
            yield i

    return count


@pytest.fixture
def endless() -> tuple[Any, list[Any]]:
    """A stream tool yielding 0, 1, 2, ... until closed, and what its clean-up saw.

    Its ``finally`` records the agent, turn and scope state current when it runs.
    """
    cleaned: list[Any] = []

    @tool()
    async def endless() -> Any:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            cleaned.append((current_agent(), current_turn(), _STEP.get()))

    return endless, cleaned


def prepared(turn: Turn, path: str, fired: list[Any] | None = None) -> Turn:
    """``turn``, given an instance hook when ``path`` is "hooked" (the run_yielding path)."""
    if path == "hooked":

        async def completed(done: Turn, reason: Any) -> None:
            if fired is not None:
                fired.append(reason)

        completed.__name__ = f"completed_{next(_hook_names)}"  # hook names are unique
        turn.on_complete(completed)
    return turn


async def test_values_output_and_metadata(path: str, steps: Steps) -> None:
    @tool()
    async def count(n: int) -> Any:
        for i in range(n):
            yield i

    agent = Agent("streamer", "d", [count])
    turn = prepared(Turn(count, kwargs={"n": 5}), path)
    await agent.put(turn)
    pairs = [pair async for pair in agent.run()]
    assert pairs == [(turn, i) for i in range(5)]
    assert turn.output == [0, 1, 2, 3, 4]
    assert turn.metadata.stop_reason is StopReason.COMPLETED
    start, end = turn.metadata.start_time, turn.metadata.end_time
    assert start is not None and end is not None and start <= end
    assert count.metadata.end_time is not None
    assert not agent.is_running and agent.current_turn is None
    assert steps.closed == ([("count", None)] if path == "scoped" else [])


async def test_dynamic_arguments_are_called_when_the_turn_starts(path: str) -> None:
    @tool()
    async def repeat(word: str, times: int) -> Any:
        for _ in range(times):
            yield word

    agent = Agent("streamer", "d", [repeat])
    await agent.put(prepared(Turn(repeat, args=[lambda: "hi"], kwargs={"times": 2}), path))
    assert [value async for _, value in agent.run()] == ["hi", "hi"]


async def test_stopping_early_cancels_the_turn_and_closes_the_tool(
    path: str, steps: Steps, endless: tuple[Any, list[Any]]
) -> None:
    stream, cleaned = endless

    @tool()
    async def later() -> int:
        return 1

    agent = Agent("streamer", "d", [stream, later])
    turn = prepared(Turn(stream), path)
    await agent.put(turn)
    await agent.put(Turn(later))
    async with aclosing(agent.run()) as run:
        async for _, value in run:
            if value == 2:
                break
    # The tool's clean-up runs in its turn's frame (and scope state), as inside the tool.
    assert cleaned == [(agent, turn, turn if path == "scoped" else None)]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert turn.output == [0, 1, 2]
    assert turn.metadata.end_time is not None
    assert not agent.is_running and current_turn() is None and _STEP.get() is None
    assert [t.tool_name for t in agent.turns] == ["later"]  # the rest stays queued
    assert steps.closed == ([("endless", "GeneratorExit")] if path == "scoped" else [])


async def test_an_error_propagates_with_its_note_and_closes_the_tool(
    path: str, steps: Steps
) -> None:
    closed: list[bool] = []

    @tool()
    async def fails() -> Any:
        try:
            yield 1
            raise ValueError("broken stream")
        finally:
            closed.append(True)

    agent = Agent("streamer", "d", [fails])
    fired: list[Any] = []
    turn = prepared(Turn(fails), path, fired)
    await agent.put(turn)
    seen = []
    with pytest.raises(ValueError, match="broken stream") as info:
        async for _, value in agent.run():
            seen.append(value)
    assert seen == [1]
    assert any("'fails'" in note and "'streamer'" in note for note in info.value.__notes__)
    assert closed == [True]
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert turn.output == [1]
    assert current_turn() is None and current_agent() is None
    assert fired == ([StopReason.ERROR] if path == "hooked" else [])
    assert steps.closed == ([("fails", "ValueError")] if path == "scoped" else [])


async def test_the_timeout_bounds_the_tools_time_not_the_consumers(path: str) -> None:
    @tool()
    async def slow() -> Any:
        yield 1
        await asyncio.sleep(5)
        yield 2

    @tool()
    async def quick() -> Any:
        for i in range(3):
            await asyncio.sleep(0)  # each step suspends: its time is counted
            yield i

    @tool()
    async def steady() -> Any:
        for i in range(3):
            await asyncio.sleep(0.1)  # one step fits in the timeout, two do not
            yield i

    agent = Agent("streamer", "d", [slow, quick, steady])
    timed = prepared(Turn(slow, timeout=0.05), path)
    await agent.put(timed)
    with pytest.raises(TurnTimeoutError):
        async for _ in agent.run():
            pass
    assert timed.metadata.stop_reason is StopReason.TIMEOUT
    assert timed.output == [1]

    patient = prepared(Turn(quick, timeout=0.05), path)
    await agent.put(patient)
    async for _ in agent.run():
        await asyncio.sleep(0.06)  # longer than the timeout, between values
    assert patient.metadata.stop_reason is StopReason.COMPLETED
    assert patient.output == [0, 1, 2]

    # What each suspending step used is taken off what is left.
    cumulative = prepared(Turn(steady, timeout=0.15), path)
    await agent.put(cumulative)
    with pytest.raises(TurnTimeoutError):
        async for _ in agent.run():
            pass
    assert cumulative.metadata.stop_reason is StopReason.TIMEOUT
    assert cumulative.output == [0]


async def test_each_side_sees_its_own_frame(path: str) -> None:
    inside: list[tuple[Any, Any]] = []
    states: list[Any] = []

    @tool()
    async def look() -> Any:
        for i in range(3):
            inside.append((current_agent(), current_turn()))
            await asyncio.sleep(0)
            inside.append((current_agent(), current_turn()))
            states.append(_STEP.get())
            yield i

    agent = Agent("streamer", "d", [look])
    turn = prepared(Turn(look), path)
    await agent.put(turn)
    between = [(current_agent(), current_turn(), _STEP.get()) async for _ in agent.run()]
    assert inside == [(agent, turn)] * 6
    assert between == [(None, None, None)] * 3
    # An execution scope's state is current during each step of the tool, never between.
    assert states == ([turn] * 3 if path == "scoped" else [None] * 3)


async def test_turns_and_items_are_routed_and_only_plain_values_yielded(path: str) -> None:
    @tool()
    async def finish() -> str:
        return "finished"

    @tool()
    async def mixed() -> Any:
        yield Turn(finish)
        yield ContextItem(content="note")
        yield 7

    agent = Agent("streamer", "d", [mixed, finish])
    await agent.put(prepared(Turn(mixed), path))
    values = [value async for _, value in agent.run()]
    assert values == [7, "finished"]
    assert [item.content for item in agent.context_queue.items] == ["note"]


async def test_global_hooks_added_while_the_stream_runs_fire(path: str, three: Any) -> None:
    agent = Agent("streamer", "d", [three])
    turn = prepared(Turn(three), path)
    await agent.put(turn)
    events: list[Any] = []
    async for _, value in agent.run():
        if value == 0:

            @hook(AgentHook.ON_TURN_VALUE)
            async def on_value(agent_: Agent, turn_: Turn, value_: Any) -> None:
                events.append(("value", value_))

            @hook(TurnHook.AFTER_RUN)
            async def after(turn_: Turn, output: Any) -> None:
                events.append(("after_run", list(output)))

            @hook(TurnHook.ON_COMPLETE)
            async def complete(turn_: Turn, reason: Any) -> None:
                events.append(("complete", reason))

    assert events == [
        ("value", 1),
        ("value", 2),
        ("after_run", [0, 1, 2]),
        ("complete", StopReason.COMPLETED),
    ]


async def test_a_turn_already_streaming_elsewhere_is_refused_with_a_note(
    path: str, three: Any
) -> None:
    agent = Agent("streamer", "d", [three])
    turn = prepared(Turn(three), path)
    async with aclosing(turn.yielding()) as direct:
        assert await anext(direct) == 0  # the turn is running, outside the agent
        await agent.put(turn)
        with pytest.raises(SafeExecutionError, match="already running") as info:
            async for _ in agent.run():
                pass
        assert any("'streamer'" in note for note in info.value.__notes__)
        assert not agent.is_running
        assert [value async for value in direct] == [1, 2]  # the direct run is unharmed


async def test_a_value_that_cannot_be_routed_stops_the_stream_as_cancelled(
    path: str, steps: Steps
) -> None:
    closed: list[Any] = []

    @tool()
    async def outside() -> None:
        return None

    @tool()
    async def wander() -> Any:
        try:
            yield 1
            yield Turn(outside)  # not one of the agent's tools: routing it fails
            yield 2
        finally:
            closed.append((current_turn(), _STEP.get()))

    agent = Agent("streamer", "d", [wander])
    turn = prepared(Turn(wander), path)
    await agent.put(turn)
    with pytest.raises(ValueError, match="does not accept tool"):
        async for _ in agent.run():
            pass
    # The tool's clean-up runs in its turn's frame (and scope), as for an early stop.
    assert closed == [(turn, turn if path == "scoped" else None)]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert not agent.is_running and current_turn() is None
    assert steps.closed == ([("wander", "GeneratorExit")] if path == "scoped" else [])


async def test_an_exception_thrown_in_by_the_consumer_stops_the_stream(
    path: str, steps: Steps, endless: tuple[Any, list[Any]]
) -> None:
    stream, cleaned = endless
    agent = Agent("streamer", "d", [stream])
    turn = prepared(Turn(stream), path)
    await agent.put(turn)
    run = agent.run()
    assert await anext(run) == (turn, 0)
    with pytest.raises(KeyError, match="from the consumer"):
        await run.athrow(KeyError("from the consumer"))
    assert cleaned == [(agent, turn, turn if path == "scoped" else None)]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert not agent.is_running
    assert steps.closed == ([("endless", "GeneratorExit")] if path == "scoped" else [])
