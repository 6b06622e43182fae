"""current_agent() / current_turn() / current_tool() across the run loop's frame switches.

A turn run by the run loop sets a live frame and, when it ends, leaves it reading as the frame
it replaced (see ``pygents._frame``): whoever reads it afterwards must see exactly what a real
switch back would have shown.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentHook,
    Turn,
    current_agent,
    current_tool,
    current_turn,
    hook,
    tool,
)


def _now() -> tuple[Any, Any, Any]:
    agent, turn, tool_ = current_agent(), current_turn(), current_tool()
    return (
        agent.name if agent is not None else None,  # an Agent is falsy when its queue is empty
        turn.tool_name if turn is not None else None,
        tool_.metadata.name if tool_ is not None else None,
    )


async def test_the_consumer_sees_its_own_frame_between_values() -> None:
    @tool()
    async def frame_step(x: int) -> tuple[Any, Any, Any]:
        return _now()

    agent = Agent("frame_consumer", "reads frames", [frame_step])
    for i in range(3):
        await agent.put(Turn(frame_step, kwargs={"x": i}))
    seen = []
    async for _turn, value in agent.run():
        seen.append((value, _now()))
    assert seen == [(("frame_consumer", "frame_step", "frame_step"), (None, None, None))] * 3
    assert _now() == (None, None, None)


async def test_a_run_inside_a_tool_gives_the_frame_back_to_that_tool() -> None:
    @tool()
    async def frame_inner(x: int) -> tuple[Any, Any, Any]:
        return _now()

    inner = Agent("frame_inner_agent", "inner", [frame_inner])

    @tool()
    async def frame_outer(x: int) -> list[Any]:
        before = _now()
        await inner.put(Turn(frame_inner, kwargs={"x": x}))
        values = []
        async for _turn, value in inner.run():
            values.append((value, _now()))  # consumer code inside the outer tool
        return [before, values, _now()]

    outer = Agent("frame_outer_agent", "outer", [frame_outer])
    await outer.put(Turn(frame_outer, kwargs={"x": 1}))
    results = [(value, _now()) async for _turn, value in outer.run()]
    here = ("frame_outer_agent", "frame_outer", "frame_outer")
    inside = ("frame_inner_agent", "frame_inner", "frame_inner")
    assert results == [([here, [(inside, here)], here], (None, None, None))]


async def test_a_task_a_tool_starts_sees_the_turn_only_while_it_executes() -> None:
    release = asyncio.Event()
    seen: dict[str, Any] = {}

    async def background() -> None:
        seen["during"] = _now()
        await release.wait()
        seen["after"] = _now()

    tasks: list[asyncio.Task[None]] = []

    @tool()
    async def frame_spawner(x: int) -> int:
        tasks.append(asyncio.create_task(background()))
        await asyncio.sleep(0)  # the task starts while the turn executes
        return x

    @tool()
    async def frame_next(x: int) -> int:
        release.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return x

    agent = Agent("frame_spawning", "spawns", [frame_spawner, frame_next])
    await agent.put(Turn(frame_spawner, kwargs={"x": 1}))
    await agent.put(Turn(frame_next, kwargs={"x": 2}))
    async for _ in agent.run():
        pass
    await asyncio.gather(*tasks)
    assert seen["during"] == ("frame_spawning", "frame_spawner", "frame_spawner")
    # Its turn had ended; the next turn (frame_next) is not this task's: it sees what
    # enclosed its turn (the top level here), never another turn.
    assert seen["after"] == (None, None, None)


async def test_a_failing_turn_gives_the_frame_back() -> None:
    @tool()
    async def frame_fails(x: int) -> int:
        raise RuntimeError("no")

    agent = Agent("frame_failing", "fails", [frame_fails])
    await agent.put(Turn(frame_fails, kwargs={"x": 1}))
    with pytest.raises(RuntimeError):
        async for _ in agent.run():
            pass
    assert _now() == (None, None, None)


@pytest.mark.parametrize("where", ["global", "instance"])
async def test_routing_runs_in_the_producing_turns_frame(where: str) -> None:
    seen: list[Any] = []

    @tool()
    async def frame_last(x: int) -> int:
        return x

    @tool()
    async def frame_first(x: int) -> Turn[Any]:
        return Turn(frame_last, kwargs={"x": x})

    agent = Agent(f"frame_routing_{where}", "routes", [frame_first, frame_last])
    await agent.put(Turn(frame_first, kwargs={"x": 1}))

    async def frame_after_put(*args: Any) -> None:
        seen.append(_now())

    if where == "global":  # the run loop's bare path (no instance hook)
        hook(AgentHook.AFTER_PUT)(frame_after_put)
    else:
        agent.after_put(frame_after_put)
    values = [(value, _now()) async for _turn, value in agent.run()]
    assert values == [(1, (None, None, None))]
    assert seen == [(f"frame_routing_{where}", "frame_first", "frame_first")]
