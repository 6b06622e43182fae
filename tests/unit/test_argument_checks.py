"""Bad arguments raise a clear TypeError / ValueError naming the argument, not a deep error."""

from __future__ import annotations

import functools

import pytest

from pygents import Agent, HookRegistry, Service, Turn, TurnHook, hook, tool
from pygents.context import ContextPool, ContextQueue


@pytest.fixture
def echo():
    @tool()
    async def echo(x: str) -> str:
        return x

    return echo


# -- hooks lists -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [5, "before_run"])
def test_agent_hooks_must_be_a_list(echo, bad):
    with pytest.raises(TypeError, match=r"Agent 'a': hooks must be a list of hooks"):
        Agent("a", "d", [echo], hooks=bad)
    with pytest.raises(TypeError, match=r"Agent 'a': turn_hooks must be a list of hooks"):
        Agent("a", "d", [echo], turn_hooks=bad)


def test_a_hooks_list_holds_callables(echo):
    with pytest.raises(TypeError, match=r"hooks must hold hooks .*got 5"):
        Agent("a", "d", [echo], hooks=[5])


def test_agent_hooks_setters_take_a_list_or_none(echo):
    agent = Agent("a", "d", [echo])
    agent.hooks = None
    agent.turn_hooks = None
    assert agent.hooks == [] and agent.turn_hooks == []
    with pytest.raises(TypeError, match=r"Agent 'a': hooks must be a list of hooks .*got 5"):
        agent.hooks = 5  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"Agent 'a': turn_hooks must be a list of hooks"):
        agent.turn_hooks = 5  # type: ignore[assignment]


def test_branch_hooks_must_be_a_list(echo):
    agent = Agent("a", "d", [echo])
    with pytest.raises(TypeError, match=r"Agent 'b': hooks must be a list of hooks .*got 5"):
        agent.branch("b", hooks=5)  # type: ignore[arg-type]
    assert agent.branch("b", hooks=None).hooks == []


def test_turn_hooks_setter_takes_a_list_or_none(echo):
    turn = Turn(echo, kwargs={"x": "a"})
    with pytest.raises(TypeError, match=r"Turn hooks must be a list of hooks .*got 5"):
        turn.hooks = 5  # type: ignore[assignment]
    turn.hooks = None
    assert turn.hooks == []


def test_context_hooks_must_be_a_list():
    with pytest.raises(TypeError, match=r"ContextQueue hooks must be a list of hooks .*got 5"):
        ContextQueue(3, hooks=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ContextPool hooks must be a list of hooks .*got 5"):
        ContextPool(hooks=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ContextQueue hooks must be a list of hooks"):
        ContextQueue(3).branch(hooks=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ContextPool.branch: hooks must be a list of hooks"):
        ContextPool().branch(hooks=5)  # type: ignore[arg-type]


def test_queue_items_must_be_a_list():
    queue = ContextQueue(3)
    with pytest.raises(TypeError, match=r"ContextQueue.items must be a list of ContextItem"):
        queue.items = 5  # type: ignore[assignment]


@pytest.mark.parametrize("bad", [None, 5, "agent"])
def test_service_takes_a_list_of_agents(bad):
    with pytest.raises(TypeError, match=r"Service takes a list of agents"):
        Service(bad)


# -- tools and hooks need named async functions; lock is a bool ------------------------------


async def _add(a: int, b: int) -> int:
    return a + b


def test_a_partial_is_not_a_tool():
    with pytest.raises(TypeError, match=r"Tool needs a named async function: @tool got"):
        tool()(functools.partial(_add, 1))


def test_a_partial_is_not_a_hook():
    with pytest.raises(TypeError, match=r"A hook needs a named async function"):
        hook(TurnHook.BEFORE_RUN)(functools.partial(_add, 1))


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_lock_must_be_a_bool(bad):
    with pytest.raises(TypeError, match=r"@tool: lock must be True or False"):
        tool(lock=bad)
    with pytest.raises(TypeError, match=r"@hook: lock must be True or False"):
        hook(TurnHook.BEFORE_RUN, lock=bad)


def test_subtool_lock_must_be_a_bool(echo):
    with pytest.raises(TypeError, match=r"@subtool: lock must be True or False"):
        echo.subtool(lock="yes")


def test_instance_hook_lock_must_be_a_bool(echo):
    agent = Agent("a", "d", [echo])

    async def audit(agent) -> None: ...

    with pytest.raises(TypeError, match=r"Hook 'audit': lock must be True or False"):
        agent.before_turn(lock="yes")(audit)


# -- HookRegistry.register -------------------------------------------------------------------


def test_register_refuses_a_non_callable():
    with pytest.raises(TypeError, match=r"HookRegistry.register: a hook must be a callable"):
        HookRegistry.register(5)


def test_register_names_any_named_callable_a_plain_function_included():
    # COMPAT B9: "accepts any named callable"; it only names it (it never fires by itself).
    def audit(turn) -> None: ...

    HookRegistry.register(audit)
    assert HookRegistry.get("audit") is audit
    HookRegistry.register(audit)  # the identical object again: nothing happens


async def test_a_plain_function_in_a_hooks_list_is_refused_when_its_event_fires():
    @tool()
    async def noop() -> None: ...

    def audit(turn) -> None: ...

    audit.type = TurnHook.BEFORE_RUN  # type: ignore[attr-defined]
    turn = Turn("noop")
    turn.hooks.append(audit)
    with pytest.raises(TypeError, match=r"audit' in a hooks list is a plain function: hooks"):
        await turn.returning()


def test_register_refuses_a_callable_without_a_name():
    with pytest.raises(TypeError, match=r"has no name to register it under"):
        HookRegistry.register(functools.partial(_add, 1))


def test_register_takes_async_functions_and_async_callable_objects():
    async def audit(turn) -> None: ...

    class Duck:
        type = TurnHook.BEFORE_RUN
        __name__ = "ducky"

        async def __call__(self, *args: object) -> None: ...

    duck = Duck()
    HookRegistry.register(audit)
    HookRegistry.register(duck)
    assert HookRegistry.get("audit") is audit
    assert HookRegistry.get("ducky") is duck


# -- Agent.from_dict(tools=...) --------------------------------------------------------------


@pytest.mark.parametrize("bad", ["echo", b"echo", 5])
def test_from_dict_tools_must_be_a_list(echo, bad):
    data = Agent("a", "d", [echo]).to_dict() | {"name": "b"}
    with pytest.raises(
        TypeError, match=r"Agent.from_dict: tools must be a list of tools or tool names"
    ):
        Agent.from_dict(data, tools=bad)
    assert Agent.from_dict(data, tools=["echo"]).name == "b"


# -- put, requeue, send, stores --------------------------------------------------------------


async def test_put_requeue_and_send_name_themselves_and_what_they_take(echo):
    agent = Agent("a", "d", [echo])
    with pytest.raises(TypeError, match=r"Agent 'a': put\(\) takes a Turn, got str"):
        await agent.put("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Agent 'a': requeue\(\) takes a Turn, got str"):
        agent.requeue("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Agent 'a': send\(\) takes a Turn, got str"):
        await agent.send("a", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"send\(\) takes an agent name \(a str\), got int"):
        await agent.send(5, Turn(echo, kwargs={"x": "y"}))  # type: ignore[arg-type]
    assert agent.turns == []


def test_a_sqlite_store_path_must_be_a_path():
    from pygents.store import SQLiteStore

    with pytest.raises(TypeError, match=r"SQLiteStore path must be a str or a path, got 5"):
        SQLiteStore(5)  # type: ignore[arg-type]
