"""Agents, turns and tools behave as the original pygents documents (COMPAT.md A1-B10).

Each test names the COMPAT item it pins; each fails without the behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

import pytest

import pygents
from pygents import (
    Agent,
    AgentHook,
    ContextItem,
    ContextPool,
    ContextQueue,
    SafeExecutionError,
    SerializationError,
    StopReason,
    ToolRegistry,
    Turn,
    TurnHook,
    TurnMetadata,
    TurnTimeoutError,
    UnregisteredToolError,
    hook,
    tool,
)


@pytest.fixture
def echo() -> Any:
    @tool()
    async def echo(text: str) -> str:
        return text

    return echo


async def drain(agent: Agent) -> list[tuple[Turn, Any]]:
    return [pair async for pair in agent.run()]


# -- A1: routed values are not yielded -----------------------------------------------------------


async def test_a1_a_stream_mixing_kinds_yields_only_plain_values() -> None:
    @tool()
    async def mixed():
        yield ContextItem(content="note")
        yield Turn("tail")
        yield 99

    @tool()
    async def tail() -> str:
        return "tail ran"

    agent = Agent("mixer", "d", [mixed, tail])
    seen: list[Any] = []

    @agent.on_turn_value
    async def every(a: Agent, turn: Turn, value: Any) -> None:
        seen.append(value if not isinstance(value, Turn) else "turn")

    first = Turn("mixed")
    await agent.put(first)
    assert [v for _, v in await drain(agent)] == [99, "tail ran"]
    assert seen == [ContextItem(content="note"), "turn", 99, "tail ran"]
    assert [i.content for i in agent.context_queue.items] == ["note"]
    assert len(first.output) == 3  # the output keeps every yielded value


async def test_a1_a_pool_item_that_cannot_be_added_propagates() -> None:
    @tool()
    async def bad() -> ContextItem:
        return ContextItem(content="x", id="only-id")

    agent = Agent("strict", "d", [bad])
    await agent.put(Turn("bad"))
    with pytest.raises(ValueError, match="'id' and 'description'"):
        await drain(agent)


# -- A2 -----------------------------------------------------------------------------------------


def test_a2_default_context_queue_limit_is_10(echo: Any) -> None:
    assert Agent("a2", "d", [echo]).context_queue.limit == 10
    data = Agent("a2b", "d", [echo]).to_dict()
    del data["context_queue"]
    data["name"] = "a2c"
    assert Agent.from_dict(data).context_queue.limit == 10


# -- A9: turn_hooks -----------------------------------------------------------------------------


async def test_a9_agent_turn_hooks_fire_for_every_turn_after_the_turns_own() -> None:
    order: list[str] = []

    @tool()
    async def work(n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        return n

    agent = Agent("a9", "d", [work])

    @agent.on_complete
    async def done(turn: Turn, reason: StopReason) -> None:
        order.append(f"agent:{reason.value}")

    @agent.on_error
    async def failed(turn: Turn, exc: BaseException) -> None:
        order.append(f"agent-error:{exc}")

    @hook(TurnHook.ON_COMPLETE)
    async def global_done(turn: Turn, reason: StopReason) -> None:
        order.append("global")

    assert agent.turn_hooks == [done, failed]
    assert agent.hooks == []
    turn = Turn("work", kwargs={"n": 1})

    @turn.on_complete
    async def own(turn: Turn, reason: StopReason) -> None:
        order.append("own")

    await agent.put(turn)
    await agent.put(Turn("work", kwargs={"n": -1}))
    with pytest.raises(ValueError):
        await drain(agent)
    assert order == [
        "own",
        "agent:completed",
        "global",
        "agent-error:negative",
        "agent:error",
        "global",
    ]
    assert turn.hooks == [own]  # not modified by the run
    data = agent.to_dict()
    assert data["turn_hooks"] == {"on_complete": ["done"], "on_error": ["failed"]}
    assert data["hooks"] == {}
    child = agent.branch("a9-child", hooks=None)
    assert child.turn_hooks == [done, failed] and child.turn_hooks is not agent.turn_hooks
    assert child.hooks == []


# -- A10: locked while paused -------------------------------------------------------------------


async def test_a10_attributes_are_locked_while_paused_and_run_still_starts(echo: Any) -> None:
    agent = Agent("a10", "d", [echo])
    agent.pause()
    for attr, value in [
        ("name", "other"),
        ("description", "x"),
        ("tools", [echo]),
        ("hooks", []),
        ("turn_hooks", []),
        ("tags", ["t"]),
        ("context_queue", ContextQueue(limit=2)),
        ("context_pool", ContextPool()),
    ]:
        with pytest.raises(SafeExecutionError, match=f"Cannot change property '{attr}'"):
            setattr(agent, attr, value)
    with pytest.raises(SafeExecutionError, match="while the agent is paused"):
        agent.description = "x"
    agent.hooks.append  # noqa: B018  (in-place changes stay allowed)
    await agent.put(Turn("echo", kwargs={"text": "hi"}))
    paused_events: list[str] = []

    @agent.on_pause
    async def noted(a: Agent) -> None:
        paused_events.append("paused")

    task = asyncio.create_task(drain(agent))
    await asyncio.sleep(0.01)
    assert paused_events == ["paused"] and agent.is_running
    agent.resume()
    assert [v for _, v in await task] == ["hi"]
    agent.description = "changed after resume"
    assert agent.description == "changed after resume"


def test_a10_from_dict_restores_a_paused_agent(echo: Any) -> None:
    agent = Agent("a10b", "d", [echo], tags=["x"])
    agent.pause()
    data = agent.to_dict()
    data["name"] = "a10c"
    restored = Agent.from_dict(data)
    assert restored.is_paused and restored.tags == frozenset({"x"})


# -- A11: tool.lock -----------------------------------------------------------------------------


async def test_a11_tool_lock_is_an_asyncio_lock_or_none(echo: Any) -> None:
    @tool(lock=True)
    async def serial() -> int:
        return 1

    assert serial.lock is not None and isinstance(serial.lock, asyncio.Lock)
    assert echo.lock is None
    assert bool(serial.lock) and not echo.lock


def test_a11_lock_serialises_within_each_loop_whatever_other_loops_do() -> None:
    inside: dict[int, int] = {}
    overlaps: list[int] = []

    @tool(lock=True)
    async def critical(loop_id: int) -> None:
        inside[loop_id] = inside.get(loop_id, 0) + 1
        if inside[loop_id] > 1:
            overlaps.append(loop_id)
        await asyncio.sleep(0.001)
        inside[loop_id] -= 1

    errors: list[BaseException] = []

    def in_thread(loop_id: int) -> None:
        async def main() -> None:
            await asyncio.gather(*(critical(loop_id) for _ in range(20)))

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert overlaps == []


# -- A13: TurnMetadata --------------------------------------------------------------------------


async def test_a13_turn_metadata_is_a_value_object(echo: Any) -> None:
    assert TurnMetadata() == TurnMetadata(None, None, None)
    turn = Turn("echo", kwargs={"text": "x"})
    assert turn.metadata == TurnMetadata()
    await turn.returning()
    meta = turn.metadata
    assert meta.stop_reason is StopReason.COMPLETED and meta != TurnMetadata()
    restored = Turn.from_dict(turn.to_dict())
    assert restored.metadata == turn.metadata
    assert restored.metadata.start_time == turn.metadata.start_time  # to the microsecond
    copy = TurnMetadata(meta.start_time, meta.end_time, StopReason.ERROR)
    assert copy != meta
    turn.metadata = copy
    assert turn.metadata == copy and turn.metadata.stop_reason is StopReason.ERROR
    assert TurnMetadata.from_dict(copy.to_dict()) == copy


# -- B1, B2 -------------------------------------------------------------------------------------


async def test_b1_turns_is_a_snapshot_of_the_queue(echo: Any) -> None:
    agent = Agent("b1", "d", [echo])
    t1, t2 = Turn("echo", kwargs={"text": "1"}), Turn("echo", kwargs={"text": "2"})
    await agent.put(t1)
    await agent.put(t2)
    assert agent.turns == [t1, t2] == agent.turns
    assert list(agent) == [t1, t2]
    agent.turns.clear()
    assert len(agent) == 2


def test_b2_branch_positional_order_and_hooks(echo: Any) -> None:
    @tool()
    async def other() -> int:
        return 1

    parent = Agent("b2", "parent", [echo, other])

    @parent.before_turn
    async def watch(a: Agent) -> None:
        pass

    kept = parent.branch("b2-kept", "child description", [echo])
    assert kept.description == "child description" and kept.tools == [echo]
    assert kept.hooks == [watch] and kept.hooks is not parent.hooks
    assert parent.branch("b2-none", hooks=None).hooks == []
    assert parent.branch("b2-empty", hooks=[]).hooks == []


# -- B6, B7, B10 --------------------------------------------------------------------------------


def test_b6_turn_is_subscriptable(echo: Any) -> None:
    made = Turn[str]("echo", kwargs={"text": "x"})
    assert type(made) is Turn and made.kwargs == {"text": "x"}
    assert Turn[list[int]] is not None


async def test_b7_output_is_serialized(echo: Any) -> None:
    turn = Turn("echo", kwargs={"text": "out"})
    assert turn.to_dict()["output"] is None
    await turn.returning()
    data = turn.to_dict()
    assert data["output"] == "out"
    assert Turn.from_dict(data).output == "out"
    del data["output"]
    assert Turn.from_dict(data).output is None


def test_b10_an_unregistered_tool_name_is_both_kinds_of_error(echo: Any) -> None:
    ToolRegistry.unregister("echo")
    with pytest.raises(UnregisteredToolError, match="'echo' not found"):
        Agent("b10", "d", [echo])
    with pytest.raises(ValueError, match="'echo' not found"):
        Agent("b10", "d", [echo])


def test_b10_another_object_under_a_registered_name_is_a_plain_value_error(echo: Any) -> None:
    async def echo_fn(text: str) -> str:
        return text

    echo_fn.__name__ = "echo"
    impostor = pygents.CoroutineTool(echo_fn, lock=False, tags=frozenset(), fixed_kwargs={})
    with pytest.raises(ValueError, match="not the instance given") as info:
        Agent("b10b", "d", [impostor])
    assert not isinstance(info.value, UnregisteredToolError)


# -- positional orders, phrases, reprs ------------------------------------------------------------


def test_agent_positional_order_is_the_originals(echo: Any) -> None:
    pool, queue = ContextPool(limit=3), ContextQueue(limit=4)
    agent = Agent("order", "d", [echo], pool, queue, ["t"])
    assert agent.context_pool is pool and agent.context_queue is queue
    assert agent.tags == frozenset({"t"})


async def test_key_phrases_of_the_original(echo: Any) -> None:
    agent = Agent("phrases", "d", [echo])

    @tool()
    async def stranger() -> None:
        return None

    with pytest.raises(ValueError, match="does not accept tool"):
        await agent.put(Turn("stranger"))
    with pytest.raises(TypeError, match="Tool must be async"):

        @tool()
        def sync_fn() -> None:  # type: ignore[misc]
            return None

    @tool()
    async def slow() -> None:
        await asyncio.sleep(1)

    with pytest.raises(TurnTimeoutError, match=r"timed out after 0\.01s"):
        await Turn("slow", timeout=0.01).returning()
    turn = Turn("slow", timeout=0.5)
    task = asyncio.create_task(turn.returning())
    await asyncio.sleep(0)
    with pytest.raises(SafeExecutionError, match="Cannot change property 'timeout' while the turn"):
        turn.timeout = 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    agent._running = True
    try:
        with pytest.raises(SafeExecutionError, match="while the agent is running"):
            agent.name = "x"
    finally:
        agent._running = False


def test_reprs_show_configuration(echo: Any) -> None:
    agent = Agent("shown", "d", [echo])
    assert repr(agent) == "Agent(name='shown', tools=['echo'])"
    turn = Turn("echo", timeout=30)
    assert repr(turn) == (
        "Turn(tool='echo', timeout=30, "
        "metadata=TurnMetadata(start_time=None, end_time=None, stop_reason=None))"
    )


# -- hostile or wrong serialized data --------------------------------------------------------


@pytest.mark.parametrize("timeout", [10**400, math.inf, math.nan, -math.inf])
def test_from_dict_refuses_unusable_timeouts(echo: Any, timeout: Any) -> None:
    data = Turn("echo", kwargs={"text": "x"}).to_dict()
    data["timeout"] = timeout
    with pytest.raises(SerializationError, match="'timeout'"):
        Turn.from_dict(data)


@pytest.mark.parametrize("field", ["args", "kwargs"])
def test_from_dict_refuses_callables_in_arguments(echo: Any, field: str) -> None:
    # The run calls a callable argument (dynamic arguments): a loaded turn must not hold one.
    data = Turn("echo", kwargs={"text": "x"}).to_dict()
    data[field] = [print] if field == "args" else {"text": print}
    with pytest.raises(SerializationError, match=f"'{field}'.*callable.*would call"):
        Turn.from_dict(data)


async def test_from_dict_takes_an_agent_hook_stacked_onto_a_turn_event(echo: Any) -> None:
    # ``turn.before_run(agent_hook)`` saves {"before_run": [name]}; it comes back firing on
    # the turn's BEFORE_RUN (it was refused: the hook itself listens to no turn event).
    calls: list[Any] = []

    @hook(AgentHook.BEFORE_TURN)
    async def agent_only(owner: Any) -> None:
        calls.append(owner)

    turn = Turn("echo", kwargs={"text": "x"})
    turn.before_run(agent_only)
    data = turn.to_dict()
    assert data["hooks"] == {"before_run": ["agent_only"]}
    restored = Turn.from_dict(data)
    assert restored.to_dict()["hooks"] == data["hooks"]
    await restored.returning()
    assert calls == [restored]


def test_agent_from_dict_allow_list_refuses_a_granted_tool(echo: Any) -> None:
    @tool()
    async def delete_everything() -> None:
        return None

    Agent("modest", "d", [echo])
    data = Agent("grabby", "d", [echo]).to_dict()
    data["tool_names"] = ["echo", "delete_everything"]
    data["name"] = "restored"
    with pytest.raises(SerializationError, match="allow-list") as info:
        Agent.from_dict(data, tools=[echo])
    assert len(str(info.value)) < 500
    assert Agent.from_dict(data, tools=["echo", "delete_everything"]).name == "restored"


def test_error_messages_stay_small_for_huge_names() -> None:
    huge = "x" * 10_000_000
    with pytest.raises(LookupError) as info:
        Turn.from_dict({"tool_name": huge})
    assert len(str(info.value)) < 1_000


def test_no_none_valued_extra_keys_in_to_dict(echo: Any) -> None:
    assert "trace_context" not in Turn("echo", kwargs={"text": "x"}).to_dict()["metadata"]


def test_public_submodules_exist() -> None:
    from pygents.agent import Agent as A
    from pygents.tool import AsyncGenTool as G
    from pygents.turn import Turn as T
    from pygents.turn import TurnMetadata as M

    assert (A, G, T, M) == (Agent, pygents.AsyncGenTool, Turn, TurnMetadata)
    assert "AsyncGenTool" in pygents.__all__
    # Importing the submodule pygents.tool never shadows the @tool decorator.
    from pygents import tool as decorator

    assert decorator is tool and callable(pygents.tool) and pygents.tool is tool


def test_fixed_kwarg_override_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    @tool(greeting="hello")
    async def greet(name: str, greeting: str) -> str:
        return f"{greeting} {name}"

    with caplog.at_level(logging.WARNING, logger="pygents"):
        assert asyncio.run(greet("ann", greeting="hi")) == "hi ann"
    assert any(
        "'greeting'" in r.getMessage() and "'greet'" in r.getMessage() for r in caplog.records
    )
