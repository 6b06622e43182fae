"""Tests of ``HookList``: an object's hook list knows which events its hooks listen to.

The run loop and tools skip an event none of an object's own hooks listens to (and an agent
whose hooks are not turn hooks runs its turns on the bare path), so every way of changing a
hook list must keep that knowledge exact: a hook added any way fires, a hook removed any way
stops firing, as with a plain list.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentHook,
    HookRegistry,
    ToolHook,
    Turn,
    TurnHook,
    current_agent,
    current_turn,
    tool,
)
from pygents._hook_list import HookList

_names = iter(range(10**6))


def unique(prefix: str) -> str:
    return f"{prefix}_{next(_names)}"


def make_tool(returning: Any = None) -> Any:
    async def body(x: int) -> Any:
        return x if returning is None else returning(x)

    body.__name__ = body.__qualname__ = unique("hl_tool")
    return tool()(body)


def recording(calls: list[Any], hook_type: Any, label: str) -> Any:
    async def record(*args: Any, **kwargs: Any) -> None:
        calls.append((label, current_agent(), current_turn(), args))

    record.__name__ = record.__qualname__ = unique(label)
    return HookRegistry.wrap(record, hook_type)


async def drain(agent: Agent) -> list[Any]:
    return [value async for _, value in agent.run()]


# --------------------------------------------------------------------- the bookkeeping


def test_listens_and_families_follow_every_change() -> None:
    calls: list[Any] = []
    before = recording(calls, AgentHook.BEFORE_TURN, "before")
    after = recording(calls, AgentHook.AFTER_TURN, "after")
    on_run = recording(calls, TurnHook.BEFORE_RUN, "run")
    hooks = HookList()
    assert hooks.listens == frozenset() and hooks.families == frozenset()

    changes = [
        (lambda h: h.append(before), {AgentHook.BEFORE_TURN}),
        (lambda h: h.extend([after]), {AgentHook.BEFORE_TURN, AgentHook.AFTER_TURN}),
        (
            lambda h: h.insert(0, on_run),
            {AgentHook.BEFORE_TURN, AgentHook.AFTER_TURN, TurnHook.BEFORE_RUN},
        ),
        (lambda h: h.remove(before), {AgentHook.AFTER_TURN, TurnHook.BEFORE_RUN}),
        (lambda h: h.pop(), {TurnHook.BEFORE_RUN}),
        (lambda h: h.__setitem__(0, after), {AgentHook.AFTER_TURN}),
        (
            lambda h: h.__setitem__(slice(0, 1), [before, on_run]),
            {AgentHook.BEFORE_TURN, TurnHook.BEFORE_RUN},
        ),
        (lambda h: h.__delitem__(0), {TurnHook.BEFORE_RUN}),
        (lambda h: h.__iadd__([after]), {AgentHook.AFTER_TURN, TurnHook.BEFORE_RUN}),
        (lambda h: h.__imul__(0), set()),
        (lambda h: h.extend([before]), {AgentHook.BEFORE_TURN}),
        (lambda h: h.clear(), set()),
    ]
    for change, expected in changes:
        change(hooks)
        assert hooks.listens == expected
        assert hooks.families == {t.__class__ for t in expected}
        assert hooks.listens == {t for h in hooks for t in h.types}  # as a scan would say


def test_a_duck_typed_hook_makes_the_list_listen_to_everything() -> None:
    class Duck:
        type = AgentHook.AFTER_TURN
        __name__ = "duck"

        async def __call__(self, *args: Any) -> None:
            return None

    hooks = HookList([Duck()])
    assert TurnHook.BEFORE_RUN in hooks.listens and ToolHook.ON_YIELD in hooks.listens
    assert TurnHook in hooks.families
    hooks.clear()
    assert hooks.listens == frozenset()


class FixedAfterTurn:
    """A hook class of its own whose types never change (``fixed_types``): counted by type."""

    fixed_types = True
    types = (AgentHook.AFTER_TURN,)
    __name__ = "fixed_after_turn"

    async def __call__(self, *args: Any) -> None:
        return None


def test_a_hook_class_with_fixed_types_is_counted_by_its_types() -> None:
    hooks = HookList([FixedAfterTurn()])
    assert hooks.listens == {AgentHook.AFTER_TURN} and hooks.families == {AgentHook}


def test_a_class_saying_fixed_types_without_a_types_tuple_is_dispatched_as_before() -> None:
    class Claims:
        fixed_types = True
        type = AgentHook.AFTER_TURN  # a duck-typed hook's attribute, no ``types`` tuple
        __name__ = "claims"

        async def __call__(self, *args: Any) -> None:
            return None

    hooks = HookList([Claims()])
    assert TurnHook.BEFORE_RUN in hooks.listens  # every event goes to the dispatcher


def test_copies_and_pickles_keep_the_bookkeeping() -> None:
    hooks = HookList([FixedAfterTurn()])
    for other in (copy.copy(hooks), copy.deepcopy(hooks), pickle.loads(pickle.dumps(hooks))):
        assert type(other) is HookList
        assert other.listens == {AgentHook.AFTER_TURN}
        other.clear()
        assert other.listens == frozenset()
    assert hooks.listens == {AgentHook.AFTER_TURN}  # the copies are their own lists


def test_every_owner_gets_one_and_assignment_converts() -> None:
    t = make_tool()
    agent = Agent(unique("hl_agent"), "d", [t])
    turn = Turn(t, kwargs={"x": 1})
    for owner in (agent, t, turn):
        assert type(owner.hooks) is HookList
    assert type(agent.turn_hooks) is HookList

    calls: list[Any] = []
    after = recording(calls, ToolHook.AFTER_INVOKE, "after")
    t.hooks = [after]  # a plain list given: kept as a HookList
    assert type(t.hooks) is HookList and t.hooks.listens == {ToolHook.AFTER_INVOKE}
    with pytest.raises(TypeError, match="must hold hooks"):
        t.hooks = [42]
    t.hooks = None
    assert t.hooks == [] and type(t.hooks) is HookList


# --------------------------------------------------------------------- what fires


@pytest.mark.parametrize(
    "add",
    [
        lambda hooks, h: hooks.append(h),
        lambda hooks, h: hooks.extend([h]),
        lambda hooks, h: hooks.insert(0, h),
        lambda hooks, h: hooks.__iadd__([h]),
        lambda hooks, h: hooks.__setitem__(slice(0, 0), [h]),
    ],
    ids=["append", "extend", "insert", "iadd", "slice"],
)
async def test_an_agent_hook_added_during_a_run_fires_from_then_on(add: Any) -> None:
    calls: list[Any] = []
    agent_box: list[Agent] = []

    async def body(x: int) -> int:
        if x == 1:  # during the first turn: the agent's next turns fire the hook
            add(agent_box[0].hooks, after)
        return x

    body.__name__ = body.__qualname__ = unique("hl_adder")
    t = tool()(body)
    after = recording(calls, AgentHook.AFTER_TURN, "after")
    agent = Agent(unique("hl_agent"), "d", [t])
    agent_box.append(agent)
    for i in (1, 2, 3):
        await agent.put(Turn(t, kwargs={"x": i}))
    assert await drain(agent) == [1, 2, 3]
    assert [c[0] for c in calls] == ["after"] * 3  # the turn that added it included
    assert all(c[1] is agent for c in calls)


@pytest.mark.parametrize(
    "drop",
    [
        lambda hooks, h: hooks.remove(h),
        lambda hooks, h: hooks.pop(),
        lambda hooks, h: hooks.clear(),
        lambda hooks, h: hooks.__delitem__(0),
        lambda hooks, h: hooks.__imul__(0),
        lambda hooks, h: hooks.__setitem__(slice(None), []),
    ],
    ids=["remove", "pop", "clear", "del", "imul", "slice"],
)
async def test_an_agent_hook_removed_during_a_run_stops_firing(drop: Any) -> None:
    calls: list[Any] = []
    box: list[Any] = []

    async def body(x: int) -> int:
        if x == 2:
            drop(box[0].hooks, box[1])
        return x

    body.__name__ = body.__qualname__ = unique("hl_dropper")
    t = tool()(body)
    value = recording(calls, AgentHook.ON_TURN_VALUE, "value")
    agent = Agent(unique("hl_agent"), "d", [t], hooks=[value])
    box.extend([agent, value])
    for i in (1, 2, 3):
        await agent.put(Turn(t, kwargs={"x": i}))
    assert await drain(agent) == [1, 2, 3]
    assert len(calls) == 1  # only the first turn's value


async def test_agent_hooks_of_other_events_leave_the_turn_events_exact(warm: int) -> None:
    """An agent whose hooks are no turn hooks runs bare turns; its events still fire."""
    calls: list[Any] = []
    t = make_tool()
    after = recording(calls, AgentHook.AFTER_TURN, "after_turn")
    value = recording(calls, AgentHook.ON_TURN_VALUE, "turn_value")
    agent = Agent(unique("hl_agent"), "d", [t], hooks=[after, value])
    for i in range(warm + 1):
        await agent.put(Turn(t, kwargs={"x": i}))
    turns = list(agent.queue)
    assert await drain(agent) == list(range(warm + 1))
    expected = []
    for i, turn in enumerate(turns):
        # (after the turn: current_turn() is None, as it is for a turn with hooks)
        expected += [
            ("turn_value", agent, None, (agent, turn, i)),
            ("after_turn", agent, None, (agent, turn)),
        ]
    assert calls == expected


async def test_a_turn_hook_in_the_agents_hooks_fires_for_its_turns() -> None:
    calls: list[Any] = []
    t = make_tool()
    before_run = recording(calls, TurnHook.BEFORE_RUN, "before_run")
    agent = Agent(unique("hl_agent"), "d", [t], hooks=[before_run])
    await agent.put(Turn(t, kwargs={"x": 1}))
    turn = agent.queue[0]
    assert await drain(agent) == [1]
    assert calls == [("before_run", agent, turn, (turn,))]


async def test_agent_put_hooks_see_a_turn_a_tool_returns() -> None:
    """A returned turn is enqueued through put() when the agent has a put hook."""
    calls: list[Any] = []
    t_name = unique("hl_chain")

    async def chain(left: int) -> Any:
        return Turn(t_name, kwargs={"left": left - 1}) if left else "done"

    chain.__name__ = chain.__qualname__ = t_name
    t = tool()(chain)
    before_put = recording(calls, AgentHook.BEFORE_PUT, "before_put")
    after_put = recording(calls, AgentHook.AFTER_PUT, "after_put")
    agent = Agent(unique("hl_agent"), "d", [t], hooks=[before_put, after_put])
    await agent.put(Turn(t, kwargs={"left": 2}))
    assert await drain(agent) == ["done"]
    assert [c[0] for c in calls] == ["before_put", "after_put"] * 3
    # The returned turns are put in the frame of the turn that returned them.
    assert calls[2][2] is not None and calls[2][2].kwargs == {"left": 2}


async def test_a_tool_hook_fires_only_on_its_event() -> None:
    calls: list[Any] = []
    t = make_tool()
    after = recording(calls, ToolHook.AFTER_INVOKE, "after_invoke")
    t.hooks.append(after)
    agent = Agent(unique("hl_agent"), "d", [t])
    await agent.put(Turn(t, kwargs={"x": 5}))
    assert await drain(agent) == [5]
    assert [c[0] for c in calls] == ["after_invoke"]
    t.hooks.remove(after)
    assert await t(6) == 6
    assert len(calls) == 1


async def test_a_duck_typed_hook_whose_type_changes_is_followed() -> None:
    calls: list[Any] = []

    class Duck:
        __name__ = "duck"

        def __init__(self) -> None:
            self.type = AgentHook.BEFORE_TURN

        async def __call__(self, agent: Any, *rest: Any) -> None:
            calls.append(self.type)

    duck = Duck()
    t = make_tool()
    agent = Agent(unique("hl_agent"), "d", [t], hooks=[duck])
    await agent.put(Turn(t, kwargs={"x": 1}))
    await drain(agent)
    duck.type = AgentHook.AFTER_TURN  # no list change: the dispatcher still sees it
    await agent.put(Turn(t, kwargs={"x": 2}))
    await drain(agent)
    assert calls == [AgentHook.BEFORE_TURN, AgentHook.AFTER_TURN]
