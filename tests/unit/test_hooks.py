"""Tests of hooks: @hook, HookRegistry, dispatch, arguments, tags, lock, instance hook points."""

import asyncio
from contextlib import aclosing
from types import SimpleNamespace

import pytest

from pygents import (
    Agent,
    AgentHook,
    ContextItem,
    ContextPool,
    ContextPoolHook,
    ContextQueue,
    ContextQueueHook,
    HookRegistry,
    StopReason,
    ToolHook,
    Turn,
    TurnHook,
    TurnTimeoutError,
    UnregisteredHookError,
    hook,
    tool,
)

# --------------------------------------------------------------------------- helpers


class Gauge:
    def __init__(self):
        self.now = 0
        self.max = 0

    def enter(self):
        self.now += 1
        self.max = max(self.max, self.now)

    def exit(self):
        self.now -= 1


def recorder(calls):
    """Return a fresh async function that appends ``(args, kwargs)`` to ``calls``."""

    async def record(*args, **kwargs):
        calls.append((args, kwargs))

    return record


async def drain(agent):
    return [value async for _, value in agent.run()]


_names = iter(range(10**6))


def make_tool(body, tags=None, lock=False):
    """Decorate ``body`` under a unique name (tool names are unique per registry)."""
    body.__name__ = body.__qualname__ = f"{body.__name__}_{next(_names)}"
    return tool(tags=tags, lock=lock)(body)


# =========================================================================== @hook decorator


async def test_hook_with_one_type():
    calls = []

    @hook(TurnHook.BEFORE_RUN)
    async def before(turn):
        calls.append(turn)

    @tool()
    async def noop():
        return None

    turn = Turn(noop)
    await turn.returning()
    assert calls == [turn]
    assert before.metadata.types == (TurnHook.BEFORE_RUN,)
    assert HookRegistry.get("before") is before


async def test_hook_with_a_list_of_types():
    calls = []

    @hook([TurnHook.BEFORE_RUN, TurnHook.ON_COMPLETE])
    async def both(turn, *rest):
        calls.append(rest)

    @tool()
    async def noop():
        return "x"

    await Turn(noop).returning()
    assert calls == [(), (StopReason.COMPLETED,)]
    assert set(both.metadata.types) == {TurnHook.BEFORE_RUN, TurnHook.ON_COMPLETE}


async def test_hook_with_types_from_several_families():
    calls = []

    @hook([ToolHook.AFTER_INVOKE, ContextQueueHook.AFTER_CLEAR])
    async def cross(*args):
        calls.append(args)

    @tool()
    async def seven():
        return 7

    cq = ContextQueue(limit=2)
    await seven()
    await cq.clear()
    assert calls == [(7,), (cq,)]


def test_hook_with_empty_list_raises_value_error():
    with pytest.raises(ValueError):
        hook([])


@pytest.mark.parametrize(
    "bad",
    ["before_run", 1, None, StopReason.COMPLETED, [TurnHook.BEFORE_RUN, "on_error"]],
    ids=["string", "int", "none", "stop-reason", "list-with-string"],
)
def test_hook_with_non_hook_type_raises_type_error(bad):
    with pytest.raises(TypeError):

        @hook(bad)
        async def nope(*args):
            pass

    assert HookRegistry.all() == []


def test_hook_on_sync_function_raises_type_error():
    with pytest.raises(TypeError):

        @hook(TurnHook.BEFORE_RUN)
        def sync_hook(turn):
            pass

    with pytest.raises(TypeError):
        hook(TurnHook.BEFORE_RUN)(lambda turn: None)
    assert HookRegistry.all() == []


def test_instance_hook_point_rejects_sync_function():
    cq = ContextQueue(limit=1)
    with pytest.raises(TypeError):

        @cq.before_append
        def sync_hook(queue, incoming, current):
            pass

    assert cq.hooks == []


def test_hook_name_taken_by_another_global_hook_raises_value_error():
    @hook(TurnHook.BEFORE_RUN)
    async def dup(turn):
        pass

    with pytest.raises(ValueError):

        @hook(TurnHook.AFTER_RUN)  # type: ignore[no-redef]
        async def dup(turn, output):
            pass

    assert HookRegistry.get("dup").metadata.types == (TurnHook.BEFORE_RUN,)


# =========================================================================== HookRegistry


def test_registry_get_and_all():
    @hook(TurnHook.BEFORE_RUN)
    async def g1(turn):
        pass

    @hook(AgentHook.BEFORE_TURN)
    async def g2(agent):
        pass

    assert HookRegistry.get("g1") is g1
    assert HookRegistry.get("g2") is g2
    assert HookRegistry.all() == [g1, g2]
    with pytest.raises(UnregisteredHookError):
        HookRegistry.get("missing")
    assert issubclass(UnregisteredHookError, LookupError)


def test_registry_knows_instance_hooks_by_name():
    turn_cq = ContextQueue(limit=1)

    @turn_cq.after_clear
    async def cleared(queue):
        pass

    assert HookRegistry.get("cleared") is cleared


def test_registry_get_by_type():
    assert HookRegistry.get_by_type(TurnHook.ON_ERROR) is None

    @hook(TurnHook.BEFORE_RUN)
    async def before(turn):
        pass

    @hook([ToolHook.ON_ERROR, TurnHook.ON_ERROR])
    async def err_a(*args, **kwargs):
        pass

    @hook(TurnHook.ON_ERROR)
    async def err_b(turn, exc):
        pass

    assert HookRegistry.get_by_type(TurnHook.BEFORE_RUN) is before
    assert HookRegistry.get_by_type(TurnHook.ON_ERROR) is err_a  # first registered
    assert HookRegistry.get_by_type(ToolHook.ON_ERROR) is err_a
    assert HookRegistry.get_by_type(TurnHook.ON_TIMEOUT) is None
    # Same value, different family: not confused.
    assert HookRegistry.get_by_type(AgentHook.BEFORE_TURN) is None


async def test_a_library_hook_fires_but_the_programs_lookups_do_not_see_it():
    from pygents.testing import isolated_registries

    calls = []

    @hook(AgentHook.BEFORE_TURN)
    async def library_watch(agent):
        calls.append(("library", agent.name))

    HookRegistry.register(library_watch, library=True)  # marks the registered object
    assert HookRegistry.get_by_type(AgentHook.BEFORE_TURN) is None
    assert HookRegistry.all() == []
    assert HookRegistry.get("library_watch") is library_watch  # still found by name

    @hook(AgentHook.BEFORE_TURN)
    async def mine(agent):
        calls.append(("mine", agent.name))

    assert HookRegistry.get_by_type(AgentHook.BEFORE_TURN) is mine
    assert HookRegistry.all() == [mine]

    @tool()
    async def noop():
        return None

    agent = Agent("lib", "d", [noop])
    await agent.put(Turn(noop))
    async with aclosing(agent.run()) as run:
        async for _ in run:
            pass
    assert calls == [("library", "lib"), ("mine", "lib")]  # both fire, in order

    with isolated_registries():  # hidden inside the block, and still a library hook after
        assert HookRegistry.lookup("library_watch") is None
    assert HookRegistry.get_by_type(AgentHook.BEFORE_TURN) is mine
    assert HookRegistry.get("library_watch") is library_watch

    # Registered again under the same name after unregistering: a program hook now.
    HookRegistry.unregister(library_watch)
    HookRegistry.register(library_watch)
    assert HookRegistry.all() == [mine, library_watch]
    with pytest.raises(TypeError, match="library must be True or False"):
        HookRegistry.register(mine, library="yes")
    HookRegistry.register(library_watch, library=True)
    HookRegistry.clear()
    HookRegistry.register(library_watch)
    assert HookRegistry.all() == [library_watch]  # clear() forgot the mark


async def test_registry_clear_stops_global_hooks():
    calls = []

    @hook(TurnHook.BEFORE_RUN)
    async def before(turn):
        calls.append(turn)

    @tool()
    async def noop():
        return None

    HookRegistry.clear()
    assert HookRegistry.all() == []
    with pytest.raises(UnregisteredHookError):
        HookRegistry.get("before")
    await Turn(noop).returning()
    assert calls == []


@pytest.mark.parametrize("by", ["object", "name"])
async def test_registry_unregister_stops_the_hook_immediately(by):
    calls = []

    @hook(ToolHook.AFTER_INVOKE)
    async def watch(result):
        calls.append(result)

    @hook(ToolHook.AFTER_INVOKE)
    async def other(result):
        calls.append(("other", result))

    @tool()
    async def value(x):
        return x

    await value(1)
    HookRegistry.unregister(watch if by == "object" else "watch")
    await value(2)
    assert calls == [1, ("other", 1), ("other", 2)]
    assert HookRegistry.all() == [other]
    with pytest.raises(UnregisteredHookError):
        HookRegistry.get("watch")


async def test_registry_unregister_inside_a_running_agent_takes_effect_for_the_next_turn():
    calls = []

    @hook(AgentHook.AFTER_TURN)
    async def once(agent, turn):
        calls.append(turn)
        HookRegistry.unregister(once)

    @tool()
    async def noop():
        return None

    agent = Agent("unreg", "d", [noop])
    await agent.put(Turn(noop))
    await agent.put(Turn(noop))
    await drain(agent)
    assert len(calls) == 1


def test_registry_unregister_unknown_raises():
    with pytest.raises(UnregisteredHookError):
        HookRegistry.unregister("nothing")

    @hook(TurnHook.BEFORE_RUN)
    async def gone(turn):
        pass

    HookRegistry.unregister(gone)
    with pytest.raises(UnregisteredHookError):
        HookRegistry.unregister(gone)
    with pytest.raises(UnregisteredHookError):
        HookRegistry.unregister("gone")


def test_hook_name_can_be_reused_after_unregister():
    @hook(TurnHook.BEFORE_RUN)
    async def reuse(turn):
        pass

    HookRegistry.unregister("reuse")

    @hook(TurnHook.AFTER_RUN)
    async def reuse(turn, output):  # noqa: F811
        pass

    assert HookRegistry.get("reuse") is reuse


# =========================================================================== exact arguments
#
# One row per hook type (seed 004 "All hook types and their arguments", plus the design-note
# additions ON_RUN_START / ON_RUN_END). Each scenario calls ``arm(obj)`` right before the
# action under test: in "global" mode arm registers an @hook, in "instance" mode it attaches
# the recorder with the object's own hook point (``obj.<hook name>``).


async def _double_tool():
    @tool()
    async def double(x):
        return x * 2

    return double


async def turn_ok(arm):
    double = await _double_tool()
    turn = Turn(double, kwargs={"x": 3})
    arm(turn)
    out = await turn.returning()
    return SimpleNamespace(turn=turn, out=out)


async def turn_timeout(arm):
    @tool()
    async def slow():
        await asyncio.sleep(5)

    turn = Turn(slow, timeout=0.01)
    arm(turn)
    with pytest.raises(TurnTimeoutError):
        await turn.returning()
    return SimpleNamespace(turn=turn)


async def turn_error(arm):
    @tool()
    async def broken():
        raise ValueError("broken")

    turn = Turn(broken)
    arm(turn)
    with pytest.raises(ValueError) as info:
        await turn.returning()
    return SimpleNamespace(turn=turn, exc=info.value)


async def turn_generator(arm):
    @tool()
    async def stream():
        yield "a"
        yield "b"

    turn = Turn(stream)
    arm(turn)
    values = [v async for v in turn.yielding()]
    assert values == ["a", "b"]
    return SimpleNamespace(turn=turn)


async def agent_run(arm):
    double = await _double_tool()
    agent = Agent("worker", "doubles", [double])
    turn = Turn(double, kwargs={"x": 5})
    arm(agent)
    await agent.put(turn)
    assert await drain(agent) == [10]
    return SimpleNamespace(agent=agent, turn=turn)


async def agent_run_error(arm):
    @tool()
    async def broken():
        raise LookupError("nope")

    agent = Agent("failing", "d", [broken])
    await agent.put(Turn(broken))
    arm(agent)
    with pytest.raises(LookupError) as info:
        await drain(agent)
    return SimpleNamespace(agent=agent, exc=info.value)


async def agent_paused(arm):
    double = await _double_tool()
    agent = Agent("pausing", "d", [double])
    await agent.put(Turn(double, kwargs={"x": 1}))
    arm(agent)
    agent.pause()
    task = asyncio.create_task(drain(agent))
    await asyncio.sleep(0.01)
    assert not task.done()
    agent.resume()
    assert await asyncio.wait_for(task, 1) == [2]
    return SimpleNamespace(agent=agent)


async def tool_call(arm):
    @tool()
    async def add(a, b):
        return a + b

    arm(add)
    assert await add(1, b=2) == 3
    return SimpleNamespace(tool=add)


async def tool_error(arm):
    @tool()
    async def broken(a):
        raise ValueError(a)

    arm(broken)
    with pytest.raises(ValueError) as info:
        await broken("bad")
    return SimpleNamespace(exc=info.value)


async def gen_tool_call(arm):
    @tool()
    async def stream(n):
        for i in range(n):
            yield i * 10

    arm(stream)
    assert [v async for v in stream(2)] == [0, 10]
    return SimpleNamespace()


A, B, C = (ContextItem(content=c) for c in "abc")


async def queue_append(arm):
    cq = ContextQueue(limit=2)
    await cq.append(A, B)
    arm(cq)
    await cq.append(C)
    return SimpleNamespace(cq=cq)


async def queue_clear(arm):
    cq = ContextQueue(limit=5)
    await cq.append(A, B)
    arm(cq)
    await cq.clear()
    assert len(cq) == 0
    return SimpleNamespace(cq=cq)


X = ContextItem(content="x", id="x", description="the x")
Y = ContextItem(content="y", id="y", description="the y")


async def pool_add(arm):
    pool = ContextPool(limit=1)
    await pool.add(X)
    arm(pool)
    await pool.add(Y)
    assert pool.items == [Y]
    return SimpleNamespace(pool=pool)


async def pool_remove(arm):
    pool = ContextPool()
    await pool.add(X)
    arm(pool)
    assert await pool.remove("x") == X
    return SimpleNamespace(pool=pool)


async def pool_clear(arm):
    pool = ContextPool()
    await pool.add(X)
    await pool.add(Y)
    arm(pool)
    await pool.clear()
    return SimpleNamespace(pool=pool)


def one(*args, **kwargs):
    return [(args, kwargs)]


ARGUMENT_TABLE = [
    # TurnHook
    (TurnHook.BEFORE_RUN, turn_ok, lambda s: one(s.turn)),
    (TurnHook.AFTER_RUN, turn_ok, lambda s: one(s.turn, 6)),
    (TurnHook.ON_TIMEOUT, turn_timeout, lambda s: one(s.turn)),
    (TurnHook.ON_ERROR, turn_error, lambda s: one(s.turn, s.exc)),
    (TurnHook.ON_COMPLETE, turn_ok, lambda s: one(s.turn, StopReason.COMPLETED)),
    # AgentHook
    (AgentHook.BEFORE_TURN, agent_run, lambda s: one(s.agent)),
    (AgentHook.AFTER_TURN, agent_run, lambda s: one(s.agent, s.turn)),
    (AgentHook.ON_TURN_VALUE, agent_run, lambda s: one(s.agent, s.turn, 10)),
    (AgentHook.BEFORE_PUT, agent_run, lambda s: one(s.agent, s.turn)),
    (AgentHook.AFTER_PUT, agent_run, lambda s: one(s.agent, s.turn)),
    (AgentHook.ON_PAUSE, agent_paused, lambda s: one(s.agent)),
    (AgentHook.ON_RESUME, agent_paused, lambda s: one(s.agent)),
    (AgentHook.ON_RUN_START, agent_run, lambda s: one(s.agent)),
    (AgentHook.ON_RUN_END, agent_run, lambda s: one(s.agent, None)),
    # ToolHook
    (ToolHook.BEFORE_INVOKE, tool_call, lambda s: one(1, b=2)),
    (ToolHook.AFTER_INVOKE, tool_call, lambda s: one(3)),
    (ToolHook.ON_ERROR, tool_error, lambda s: one(exc=s.exc)),
    (ToolHook.ON_YIELD, gen_tool_call, lambda s: one(0) + one(10)),
    # ContextQueueHook
    (ContextQueueHook.BEFORE_APPEND, queue_append, lambda s: one(s.cq, [C], [A, B])),
    (ContextQueueHook.AFTER_APPEND, queue_append, lambda s: one(s.cq, [C], [B, C])),
    (ContextQueueHook.ON_EVICT, queue_append, lambda s: one(s.cq, A)),
    (ContextQueueHook.BEFORE_CLEAR, queue_clear, lambda s: one(s.cq, [A, B])),
    (ContextQueueHook.AFTER_CLEAR, queue_clear, lambda s: one(s.cq)),
    # ContextPoolHook
    (ContextPoolHook.BEFORE_ADD, pool_add, lambda s: one(s.pool, Y)),
    (ContextPoolHook.AFTER_ADD, pool_add, lambda s: one(s.pool, Y)),
    (ContextPoolHook.ON_EVICT, pool_add, lambda s: one(s.pool, X)),
    (ContextPoolHook.BEFORE_REMOVE, pool_remove, lambda s: one(s.pool, X)),
    (ContextPoolHook.AFTER_REMOVE, pool_remove, lambda s: one(s.pool, X)),
    (ContextPoolHook.BEFORE_CLEAR, pool_clear, lambda s: one(s.pool, {"x": X, "y": Y})),
    (ContextPoolHook.AFTER_CLEAR, pool_clear, lambda s: one(s.pool)),
]

# Rows whose event has a second variant worth pinning down.
EXTRA_ROWS = [
    (TurnHook.ON_COMPLETE, turn_timeout, lambda s: one(s.turn, StopReason.TIMEOUT)),
    (TurnHook.ON_COMPLETE, turn_error, lambda s: one(s.turn, StopReason.ERROR)),
    (TurnHook.AFTER_RUN, turn_generator, lambda s: one(s.turn, ["a", "b"])),
    (ToolHook.AFTER_INVOKE, gen_tool_call, lambda s: one([0, 10])),
    (ToolHook.BEFORE_INVOKE, gen_tool_call, lambda s: one(2)),
    (AgentHook.ON_RUN_END, agent_run_error, lambda s: one(s.agent, s.exc)),
]


def _row_id(row):
    hook_type, scenario, _ = row
    return f"{type(hook_type).__name__}.{hook_type.name}-{scenario.__name__}"


def test_argument_table_covers_every_hook_type():
    covered = {row[0] for row in ARGUMENT_TABLE}
    every = {
        member
        for family in (TurnHook, AgentHook, ToolHook, ContextQueueHook, ContextPoolHook)
        for member in family
    }
    assert covered == every


@pytest.mark.parametrize(
    ("hook_type", "scenario", "expected"),
    ARGUMENT_TABLE + EXTRA_ROWS,
    ids=[_row_id(r) for r in ARGUMENT_TABLE + EXTRA_ROWS],
)
async def test_global_hook_receives_exact_arguments(hook_type, scenario, expected):
    calls = []

    def arm(obj):
        hook(hook_type)(recorder(calls))

    state = await scenario(arm)
    assert calls == expected(state)


# Instance hook points: the agent carries TurnHook ON_ERROR/ON_TIMEOUT/ON_COMPLETE too, and
# AgentHook has hook points for every member, so every row has an instance equivalent.
@pytest.mark.parametrize(
    ("hook_type", "scenario", "expected"),
    ARGUMENT_TABLE + EXTRA_ROWS,
    ids=[_row_id(r) for r in ARGUMENT_TABLE + EXTRA_ROWS],
)
async def test_instance_hook_receives_exact_arguments(hook_type, scenario, expected):
    calls = []

    def arm(obj):
        getattr(obj, hook_type.value)(recorder(calls))

    state = await scenario(arm)
    assert calls == expected(state)


@pytest.mark.parametrize(
    "hook_type", [TurnHook.ON_ERROR, TurnHook.ON_TIMEOUT, TurnHook.ON_COMPLETE]
)
async def test_agent_turn_hooks_fire_for_the_turns_it_runs(hook_type):
    calls = []

    @tool()
    async def work(mode):
        if mode == "error":
            raise ValueError("bad")
        if mode == "timeout":
            await asyncio.sleep(5)
        return mode

    mode = {"on_error": "error", "on_timeout": "timeout", "on_complete": "ok"}[hook_type.value]
    agent = Agent("turn-hooks", "d", [work])
    getattr(agent, hook_type.value)(recorder(calls))
    turn = Turn(work, kwargs={"mode": mode}, timeout=0.01 if mode == "timeout" else 60)
    await agent.put(turn)
    if mode == "ok":
        await drain(agent)
    else:
        with pytest.raises((ValueError, TurnTimeoutError)) as info:
            await drain(agent)
    expected = {
        "on_error": lambda: one(turn, info.value),
        "on_timeout": lambda: one(turn),
        "on_complete": lambda: one(turn, StopReason.COMPLETED),
    }[hook_type.value]()
    assert calls == expected


async def test_global_hooks_fire_for_every_matching_object():
    seen = []

    @hook(TurnHook.BEFORE_RUN)
    async def any_turn(turn):
        seen.append(turn)

    @hook(ContextQueueHook.AFTER_CLEAR)
    async def any_queue(queue):
        seen.append(queue)

    @tool()
    async def noop():
        return None

    t1, t2 = Turn(noop), Turn(noop)
    q1, q2 = ContextQueue(limit=1), ContextQueue(limit=2)
    await t1.returning()
    await t2.returning()
    await q1.clear()
    await q2.clear()
    assert seen == [t1, t2, q1, q2]


# =========================================================================== dispatch order


async def test_instance_hooks_fire_before_global_hooks():
    order = []

    @hook(TurnHook.BEFORE_RUN)
    async def global_first_registered(turn):
        order.append("global")

    @tool()
    async def noop():
        return None

    turn = Turn(noop)

    @turn.before_run
    async def instance_hook(turn):
        order.append("instance")

    await turn.returning()
    assert order == ["instance", "global"]


async def test_turn_hooks_then_agent_turn_hooks_then_global():
    order = []

    @hook(TurnHook.ON_COMPLETE)
    async def g(turn, reason):
        order.append("global")

    @tool()
    async def noop():
        return None

    agent = Agent("ordered", "d", [noop])

    @agent.on_complete
    async def a(turn, reason):
        order.append("agent")

    turn = Turn(noop)

    @turn.on_complete
    async def t(turn, reason):
        order.append("turn")

    await agent.put(turn)
    await drain(agent)
    assert order == ["turn", "agent", "global"]


async def test_instance_hooks_before_global_for_tools_agents_queues_and_pools():
    order = []

    @hook(
        [
            ToolHook.AFTER_INVOKE,
            AgentHook.AFTER_TURN,
            ContextQueueHook.AFTER_CLEAR,
            ContextPoolHook.AFTER_CLEAR,
        ]
    )
    async def g(*args):
        order.append("global")

    @tool()
    async def noop():
        return None

    @noop.after_invoke
    async def t(result):
        order.append("instance")

    agent = Agent("ord", "d", [noop])

    @agent.after_turn
    async def a(agent, turn):
        order.append("instance")

    cq, pool = ContextQueue(limit=1), ContextPool()

    @cq.after_clear
    async def q(queue):
        order.append("instance")

    @pool.after_clear
    async def p(pool):
        order.append("instance")

    await noop()
    assert order == ["instance", "global"]
    order.clear()
    await agent.put(Turn(noop))
    await drain(agent)
    # tool after_invoke (instance, global) then agent after_turn (instance, global)
    assert order == ["instance", "global", "instance", "global"]
    order.clear()
    await cq.clear()
    await pool.clear()
    assert order == ["instance", "global", "instance", "global"]


async def test_same_hook_in_instance_list_and_global_registry_fires_once():
    calls = []

    @hook(TurnHook.BEFORE_RUN)
    async def shared(turn):
        calls.append(turn)

    @tool()
    async def noop():
        return None

    agent = Agent("dedup", "d", [noop])
    turn = Turn(noop)
    turn.hooks.append(shared)
    agent.hooks.append(shared)
    await agent.put(turn)
    await drain(agent)
    assert calls == [turn]


async def test_same_hook_twice_in_an_instance_list_fires_once():
    calls = []

    @tool()
    async def noop():
        return None

    cq = ContextQueue(limit=3)

    @cq.after_clear
    async def once(queue):
        calls.append(queue)

    cq.hooks.append(once)
    await cq.clear()
    assert calls == [cq]


async def test_instance_hooks_do_not_fire_for_other_objects():
    calls = []
    q1, q2 = ContextQueue(limit=1), ContextQueue(limit=1)

    @q1.after_clear
    async def only_q1(queue):
        calls.append(queue)

    await q2.clear()
    await q1.clear()
    assert calls == [q1]


# =========================================================================== tags


def _tool_family():
    async def trigger(tags):
        async def tagged_tool():
            return None

        t = make_tool(tagged_tool, tags=tags)
        await t()

    return ToolHook.AFTER_INVOKE, trigger


def _stream_family():
    # A streamed value's ON_YIELD, fired per value by the run loop's stream.
    async def trigger(tags):
        async def stream_tool():
            yield 1

        t = make_tool(stream_tool, tags=tags)
        agent = Agent(f"agent-{next(_names)}", "d", [t])
        await agent.put(Turn(t))
        assert [value async for _, value in agent.run()] == [1]

    return ToolHook.ON_YIELD, trigger


def _agent_family():
    async def trigger(tags):
        async def agent_tool():
            return None

        t = make_tool(agent_tool)
        agent = Agent(f"agent-{next(_names)}", "d", [t], tags=tags)
        await agent.put(Turn(t))

    return AgentHook.BEFORE_PUT, trigger


def _turn_family():
    async def trigger(tags):
        async def turn_tool():
            return None

        await Turn(make_tool(turn_tool), tags=tags).returning()

    return TurnHook.BEFORE_RUN, trigger


def _queue_family():
    async def trigger(tags):
        await ContextQueue(limit=1, tags=tags).clear()

    return ContextQueueHook.BEFORE_CLEAR, trigger


def _pool_family():
    async def trigger(tags):
        await ContextPool(tags=tags).add(X)

    return ContextPoolHook.AFTER_ADD, trigger


@pytest.mark.parametrize(
    "family",
    [_tool_family, _stream_family, _agent_family, _turn_family, _queue_family, _pool_family],
    ids=["tool", "stream", "agent", "turn", "queue", "pool"],
)
async def test_tag_filtering_uses_or_semantics(family):
    hook_type, trigger = family()
    fired = []

    @hook(hook_type, tags={"a", "b"})
    async def tagged(*args, **kwargs):
        fired.append("tagged")

    @hook(hook_type)
    async def untagged(*args, **kwargs):
        fired.append("untagged")

    await trigger(["b"])
    assert sorted(fired) == ["tagged", "untagged"]
    fired.clear()
    await trigger(["c"])
    assert fired == ["untagged"]
    fired.clear()
    await trigger(None)
    assert fired == ["untagged"]
    fired.clear()
    await trigger(["a", "z"])
    assert sorted(fired) == ["tagged", "untagged"]


@pytest.mark.parametrize("kind", ["coroutine", "stream"])
async def test_tagged_global_turn_hooks_in_a_run_fire_for_matching_turns_only(kind):
    # A turn none of whose tags a global turn hook has runs as with no such hook (the run
    # loop's bare path); a turn sharing a tag gets every event of that hook, completed or
    # failed, in the same run.
    fired = []
    for hook_type in TurnHook:

        async def audit(turn, *rest, hook_type=hook_type):
            fired.append((hook_type, turn.kwargs["x"]))

        audit.__name__ = f"audit_{hook_type.value}"
        hook(hook_type, tags={"audited"})(audit)

    if kind == "coroutine":

        async def body(x):
            if x < 0:
                raise ValueError(x)
            return x

    else:

        async def body(x):
            if x < 0:
                raise ValueError(x)
            yield x

    work = make_tool(body)
    agent = Agent(f"agent-{next(_names)}", "d", [work])
    for x, tags in [(1, None), (2, ["audited"]), (3, ["other"]), (4, ["other", "audited"])]:
        await agent.put(Turn(work, kwargs={"x": x}, tags=tags))
    assert await drain(agent) == [1, 2, 3, 4]
    assert fired == [
        (hook_type, x)
        for x in (2, 4)
        for hook_type in (TurnHook.BEFORE_RUN, TurnHook.AFTER_RUN, TurnHook.ON_COMPLETE)
    ]
    fired.clear()
    for x, tags in [(-1, ["audited"]), (-2, ["other"])]:
        await agent.put(Turn(work, kwargs={"x": x}, tags=tags))
        with pytest.raises(ValueError):
            await drain(agent)
        agent.queue.clear()
    assert fired == [
        (TurnHook.BEFORE_RUN, -1),
        (TurnHook.ON_ERROR, -1),
        (TurnHook.ON_COMPLETE, -1),
    ]


async def test_tags_do_not_filter_instance_hooks():
    calls = []
    cq = ContextQueue(limit=1, tags=["x"])

    @cq.after_clear
    async def mine(queue):
        calls.append(queue)

    await cq.clear()
    assert calls == [cq]


def test_hook_tags_are_a_frozenset():
    @hook(TurnHook.BEFORE_RUN, tags=["a", "b"])
    async def tagged(turn):
        pass

    assert tagged.tags == frozenset({"a", "b"})
    assert tagged.metadata.tags == frozenset({"a", "b"})


# =========================================================================== lock, kwargs, context


def _tracked_hook(gauge, lock, name):
    async def body(*args, **kwargs):
        gauge.enter()
        try:
            await asyncio.sleep(0.01)
        finally:
            gauge.exit()

    body.__name__ = body.__qualname__ = name
    return hook(ToolHook.BEFORE_INVOKE, lock=lock)(body)


@pytest.mark.parametrize("lock", [True, False])
async def test_global_hook_lock_serialises(lock):
    gauge = Gauge()
    _tracked_hook(gauge, lock, "tracked")

    @tool()
    async def work(i):
        return i

    assert await asyncio.gather(*(work(i) for i in range(4))) == [0, 1, 2, 3]
    assert gauge.max == (1 if lock else 4)


async def test_instance_hook_with_lock_and_fixed_kwargs():
    gauge = Gauge()
    seen = []

    @tool()
    async def work(i):
        return i

    @work.before_invoke(lock=True, label="L")
    async def guarded(i, label):
        gauge.enter()
        try:
            seen.append((i, label))
            await asyncio.sleep(0.01)
        finally:
            gauge.exit()

    await asyncio.gather(*(work(i) for i in range(4)))
    assert gauge.max == 1
    assert sorted(seen) == [(0, "L"), (1, "L"), (2, "L"), (3, "L")]
    assert guarded in work.hooks
    assert guarded.metadata.lock is True


async def test_instance_hook_decorator_bare_form():
    seen = []

    @tool()
    async def work(i):
        return i

    @work.after_invoke
    async def bare(result):
        seen.append(result)

    await work(9)
    assert seen == [9]
    assert work.hooks == [bare]


async def test_global_hook_fixed_kwargs_are_merged():
    seen = []
    counter = iter(range(100))

    @hook(TurnHook.BEFORE_RUN, prefix="p", seq=lambda: next(counter))
    async def with_fixed(turn, prefix, seq):
        seen.append((prefix, seq))

    @tool()
    async def noop():
        return None

    await Turn(noop).returning()
    await Turn(noop).returning()
    assert seen == [("p", 0), ("p", 1)]


def test_hook_fixed_kwarg_not_in_signature_raises_type_error():
    with pytest.raises(TypeError):

        @hook(TurnHook.BEFORE_RUN, nope=1)
        async def strict(turn):
            pass


async def test_hook_with_context_parameters_gets_the_agents_instances():
    seen = {}

    @hook(TurnHook.BEFORE_RUN)
    async def global_ctx(turn, cq: ContextQueue, pool: ContextPool):
        seen["global"] = (cq, pool)

    @tool()
    async def noop():
        return None

    @noop.before_invoke
    async def tool_ctx(cq: ContextQueue | None = None):
        seen["tool"] = cq

    agent = Agent("ctx-hooks", "d", [noop])
    turn = Turn(noop)

    @turn.on_complete
    async def turn_ctx(turn, reason, cq: ContextQueue):
        seen["turn"] = cq

    await agent.put(turn)
    await drain(agent)
    assert seen["global"] == (agent.context_queue, agent.context_pool)
    assert seen["global"][0] is agent.context_queue
    assert seen["tool"] is agent.context_queue
    assert seen["turn"] is agent.context_queue


async def test_agent_hook_between_turns_gets_no_context():
    # Context is injected only while a turn executes: ON_TURN_VALUE fires between turns, in
    # the run loop, so an optional context parameter receives None (the original's rule).
    seen = {}

    @tool()
    async def produce():
        return ContextItem(content="note")

    agent = Agent("ctx-agent-hooks", "d", [produce])

    @agent.on_turn_value
    async def after_routing(agent, turn, value, cq: ContextQueue | None = None):
        seen["cq"] = cq

    await agent.put(Turn(produce))
    await drain(agent)
    assert seen["cq"] is None


async def test_hook_optional_context_parameter_is_none_without_agent():
    seen = []

    @hook(TurnHook.BEFORE_RUN)
    async def optional_ctx(turn, cq: ContextQueue | None, pool: ContextPool | None = None):
        seen.append((cq, pool))

    @tool()
    async def noop():
        return None

    await Turn(noop).returning()
    assert seen == [(None, None)]


# =========================================================================== instance hook points

INSTANCE_HOOK_POINTS = [
    ("coroutine tool", "before_invoke", ToolHook.BEFORE_INVOKE),
    ("coroutine tool", "after_invoke", ToolHook.AFTER_INVOKE),
    ("coroutine tool", "on_error", ToolHook.ON_ERROR),
    ("generator tool", "before_invoke", ToolHook.BEFORE_INVOKE),
    ("generator tool", "after_invoke", ToolHook.AFTER_INVOKE),
    ("generator tool", "on_yield", ToolHook.ON_YIELD),
    ("generator tool", "on_error", ToolHook.ON_ERROR),
    ("turn", "before_run", TurnHook.BEFORE_RUN),
    ("turn", "after_run", TurnHook.AFTER_RUN),
    ("turn", "on_timeout", TurnHook.ON_TIMEOUT),
    ("turn", "on_error", TurnHook.ON_ERROR),
    ("turn", "on_complete", TurnHook.ON_COMPLETE),
    ("agent", "before_turn", AgentHook.BEFORE_TURN),
    ("agent", "after_turn", AgentHook.AFTER_TURN),
    ("agent", "on_turn_value", AgentHook.ON_TURN_VALUE),
    ("agent", "before_put", AgentHook.BEFORE_PUT),
    ("agent", "after_put", AgentHook.AFTER_PUT),
    ("agent", "on_pause", AgentHook.ON_PAUSE),
    ("agent", "on_resume", AgentHook.ON_RESUME),
    ("agent", "on_error", TurnHook.ON_ERROR),
    ("agent", "on_timeout", TurnHook.ON_TIMEOUT),
    ("agent", "on_complete", TurnHook.ON_COMPLETE),
    ("queue", "before_append", ContextQueueHook.BEFORE_APPEND),
    ("queue", "after_append", ContextQueueHook.AFTER_APPEND),
    ("queue", "before_clear", ContextQueueHook.BEFORE_CLEAR),
    ("queue", "after_clear", ContextQueueHook.AFTER_CLEAR),
    ("queue", "on_evict", ContextQueueHook.ON_EVICT),
    ("pool", "before_add", ContextPoolHook.BEFORE_ADD),
    ("pool", "after_add", ContextPoolHook.AFTER_ADD),
    ("pool", "before_remove", ContextPoolHook.BEFORE_REMOVE),
    ("pool", "after_remove", ContextPoolHook.AFTER_REMOVE),
    ("pool", "before_clear", ContextPoolHook.BEFORE_CLEAR),
    ("pool", "after_clear", ContextPoolHook.AFTER_CLEAR),
    ("pool", "on_evict", ContextPoolHook.ON_EVICT),
]


def _make_owner(kind):
    if kind == "coroutine tool":

        @tool()
        async def coro_owner():
            return None

        return coro_owner
    if kind == "generator tool":

        @tool()
        async def gen_owner():
            yield None

        return gen_owner

    @tool()
    async def for_turn():
        return None

    if kind == "turn":
        return Turn(for_turn)
    if kind == "agent":
        return Agent("owner", "d", [for_turn])
    if kind == "queue":
        return ContextQueue(limit=1)
    return ContextPool()


@pytest.mark.parametrize(
    ("kind", "point", "hook_type"),
    INSTANCE_HOOK_POINTS,
    ids=[f"{k}.{p}" for k, p, _ in INSTANCE_HOOK_POINTS],
)
@pytest.mark.parametrize("form", ["bare", "options"])
def test_instance_hook_point_exists_and_attaches(kind, point, hook_type, form):
    owner = _make_owner(kind)

    async def fn(*args, **kwargs):
        pass

    decorator = getattr(owner, point)
    attached = decorator(fn) if form == "bare" else decorator(lock=True, k="v")(fn)
    # An agent's turn events go to the hooks it hands to each turn it runs.
    to_turns = kind == "agent" and isinstance(hook_type, TurnHook)
    assert attached in (owner.turn_hooks if to_turns else owner.hooks)
    assert attached.metadata.types == (hook_type,)
    assert attached.is_global is False
    assert attached.metadata.lock is (form == "options")
    assert HookRegistry.get("fn") is attached


def test_on_yield_is_only_on_generator_tools():
    @tool()
    async def coro_only():
        return None

    assert not hasattr(coro_only, "on_yield")


# =========================================================================== instance hook names


async def test_a_second_instance_hook_of_the_same_name_is_refused_with_a_remedy():
    @tool()
    async def noop():
        return None

    def make_turn():
        turn = Turn(noop)

        @turn.on_complete
        async def done(turn, reason):
            pass

        return turn, done

    t1, h1 = make_turn()
    with pytest.raises(ValueError, match="'done' already registered") as info:
        make_turn()  # the same name for another function: restoring t1 could find it
    assert "unique name" in str(info.value)
    assert "__name__" in str(info.value)
    assert HookRegistry.get("done") is h1
    assert t1.hooks == [h1]


async def test_factory_hooks_with_unique_names_each_fire_for_their_own_owner():
    calls = []

    @tool()
    async def noop():
        return None

    def make_turn(label):
        turn = Turn(noop)

        async def done(turn, reason):
            calls.append(label)

        done.__name__ = f"done_{label}"  # the remedy the error message gives
        turn.on_complete(done)
        return turn

    t1, t2 = make_turn("first"), make_turn("second")
    await t1.returning()
    await t2.returning()
    assert calls == ["first", "second"]
    assert HookRegistry.get("done_first") is t1.hooks[0]


def test_instance_hook_clashing_with_global_hook_raises_value_error():
    @hook(TurnHook.ON_COMPLETE)
    async def taken(turn, reason):
        pass

    cq = ContextQueue(limit=1)
    with pytest.raises(ValueError):

        @cq.after_clear
        async def taken(queue):  # type: ignore[no-redef]
            pass

    assert cq.hooks == []
    assert HookRegistry.get("taken").is_global


def test_global_hook_clashing_with_instance_hook_raises_value_error():
    cq = ContextQueue(limit=1)

    @cq.after_clear
    async def clash(queue):
        pass

    with pytest.raises(ValueError):

        @hook(ContextQueueHook.AFTER_CLEAR)  # type: ignore[no-redef]
        async def clash(queue):
            pass

    assert HookRegistry.get("clash") is cq.hooks[0]


# =========================================================================== errors from hooks


@pytest.mark.parametrize("scope", ["global", "instance"])
async def test_exception_from_a_hook_propagates(scope):
    boom = RuntimeError("hook failed")

    async def explode(*args, **kwargs):
        raise boom

    cq = ContextQueue(limit=2)
    if scope == "global":
        hook(ContextQueueHook.AFTER_APPEND)(explode)
    else:
        cq.after_append(explode)
    with pytest.raises(RuntimeError) as info:
        await cq.append(A)
    assert info.value is boom


async def test_exception_from_a_tool_hook_propagates_through_a_turn():
    boom = RuntimeError("after_invoke failed")

    @tool()
    async def fine():
        return 1

    @fine.after_invoke
    async def explode(result):
        raise boom

    turn = Turn(fine)
    with pytest.raises(RuntimeError) as info:
        await turn.returning()
    assert info.value is boom
    assert turn.metadata.stop_reason == StopReason.ERROR


async def test_exception_from_before_run_hook_vetoes_the_turn():
    ran = []

    @tool()
    async def work():
        ran.append(True)

    turn = Turn(work)

    @turn.before_run
    async def veto(turn):
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        await turn.returning()
    assert ran == []
    assert turn.metadata.stop_reason == StopReason.ERROR


async def test_exception_from_before_append_hook_leaves_queue_unchanged():
    cq = ContextQueue(limit=5)
    await cq.append(A)

    @cq.before_append
    async def veto(queue, incoming, current):
        raise PermissionError("read only")

    with pytest.raises(PermissionError):
        await cq.append(B, C)
    assert cq.items == [A]


async def test_hooks_on_generator_turn_abandoned_early():
    events = []

    @tool()
    async def stream():
        for i in range(10):
            yield i

    turn = Turn(stream)

    @turn.after_run
    async def after(turn, output):
        events.append("after_run")

    @turn.on_complete
    async def complete(turn, reason):
        events.append(reason)

    async with aclosing(turn.yielding()) as values:
        async for v in values:
            if v == 1:
                break
    assert events == [StopReason.CANCELLED]
