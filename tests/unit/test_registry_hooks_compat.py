"""Hooks, the hook registry and hook serialization as a program written for the original expects.

COMPAT.md items A4-A8, A12, B8, B9, the D1 message phrases, the ``Unregistered*Error`` /
``KeyError`` relation, ``@hook(type=...)``, the public ``pygents.hooks`` / ``pygents.registry``
modules, and two findings of the review: a restore never attaches another object's hook, and
``lock=True`` holds within each event loop whatever other loops do.
"""

import asyncio
import logging
import threading

import pytest

from pygents import (
    Agent,
    AgentHook,
    AgentRegistry,
    ContextPool,
    ContextPoolHook,
    ContextQueue,
    ContextQueueHook,
    HookMetadata,
    HookRegistry,
    PygentsError,
    SerializationError,
    ToolHook,
    ToolRegistry,
    Turn,
    TurnHook,
    UnregisteredAgentError,
    UnregisteredHookError,
    UnregisteredToolError,
    _serde,
    hook,
    tool,
)


async def _noop_fn(*args, **kwargs):
    return None


@pytest.fixture
def noop():
    @tool()
    async def noop():
        return None

    return noop


class Duck:
    """A hook that is not a pygents hook: an async callable with a ``type`` attribute."""

    def __init__(self, hook_type, name, calls):
        self.type = hook_type
        self.__name__ = name
        self.calls = calls

    async def __call__(self, *args, **kwargs):
        self.calls.append((self.__name__, args))


# =========================================================================== A4: serialization


def test_hooks_to_maps_each_type_to_names_in_list_order():
    @hook([TurnHook.BEFORE_RUN, TurnHook.ON_COMPLETE])
    async def both(*args):
        pass

    @hook(TurnHook.BEFORE_RUN)
    async def first(turn):
        pass

    duck = Duck(TurnHook.AFTER_RUN, "ducky", [])
    assert _serde.hooks_to([first, both, duck]) == {
        "before_run": ["first", "both"],
        "on_complete": ["both"],
        "after_run": ["ducky"],
    }
    assert _serde.hooks_to([]) == {}


def test_hooks_from_walks_keys_then_lists_and_keeps_a_multi_type_hook_once():
    @hook([TurnHook.BEFORE_RUN, TurnHook.ON_COMPLETE])
    async def both(*args):
        pass

    @hook(TurnHook.ON_COMPLETE)
    async def last(turn, reason):
        pass

    data = {"hooks": {"before_run": ["both"], "on_complete": ["both", "last"]}}
    assert _serde.hooks_from(data, "Turn.from_dict") == [both, last]
    assert _serde.hooks_from({}, "Turn.from_dict") == []
    # Our earlier list-of-names form still loads.
    assert _serde.hooks_from({"hooks": ["last", "both"]}, "x") == [last, both]
    # Another key, for an agent's turn_hooks.
    assert _serde.hooks_from({"turn_hooks": {"on_complete": ["last"]}}, "x", "turn_hooks") == [last]


def test_a_turn_round_trips_its_hooks_in_the_mapping_shape(noop):
    turn = Turn("noop")

    @turn.before_run
    async def audit(turn):
        pass

    data = turn.to_dict()
    assert data["hooks"] == {"before_run": ["audit"]}
    assert Turn.from_dict(data).hooks == [audit]


def test_hooks_from_reports_a_missing_name_as_unregistered():
    with pytest.raises(UnregisteredHookError, match="'ghost' not found"):
        _serde.hooks_from({"hooks": {"before_run": ["ghost"]}}, "Turn.from_dict")


@pytest.mark.parametrize(
    ("hooks", "phrase"),
    [
        ({"before_run": "audit"}, "list of hook names"),
        ({"before_run": [3]}, r"hook name \(str\)"),
        ({"before_flight": ["audit"]}, "unknown hook type 'before_flight'"),
        ({7: ["audit"]}, "not a hook type name"),
        ("audit", "must be a dict"),
    ],
)
def test_hooks_from_refuses_malformed_fields(hooks, phrase):
    @hook(TurnHook.BEFORE_RUN)
    async def audit(turn):
        pass

    with pytest.raises(SerializationError, match=phrase) as info:
        _serde.hooks_from({"hooks": hooks}, "Turn.from_dict")
    assert str(info.value).count("Turn.from_dict") == 1
    assert "'hooks'" in str(info.value)


def test_hooks_from_takes_a_hook_of_another_family():
    # Hooks lists are plain lists: whatever hooks_to writes comes back (these were refused).
    @hook(AgentHook.BEFORE_TURN)
    async def agent_only(agent):
        pass

    # Under its own key: the hook itself, though a turn fires no agent event.
    assert _serde.hooks_from(
        {"hooks": {"before_turn": ["agent_only"]}}, "T", families=(TurnHook,)
    ) == [agent_only]
    # In the plain list form: the hook itself.
    assert _serde.hooks_from({"hooks": ["agent_only"]}, "T", families=(TurnHook,)) == [agent_only]
    # Under a turn key it does not listen to: stacked onto that event, as
    # ``turn.before_run(agent_only)`` attached (and saved) it.
    (stacked,) = _serde.hooks_from(
        {"hooks": {"before_run": ["agent_only"]}}, "T", families=(TurnHook,)
    )
    assert stacked.type is TurnHook.BEFORE_RUN and stacked.target is agent_only


def test_a_turn_keeps_an_agent_hook_from_a_payload(noop):
    @hook(AgentHook.BEFORE_TURN)
    async def agent_only(agent):
        pass

    data = Turn("noop").to_dict()
    data["hooks"] = {"before_turn": ["agent_only"]}
    restored = Turn.from_dict(data)
    assert restored.hooks == [agent_only]
    assert restored.to_dict()["hooks"] == {"before_turn": ["agent_only"]}


def test_error_messages_about_huge_names_stay_small():
    huge = "x" * 10_000_000
    with pytest.raises(SerializationError) as bad_key:
        _serde.hooks_from({"hooks": {huge: ["a"]}}, "Turn.from_dict")
    with pytest.raises(UnregisteredHookError) as missing:
        _serde.hooks_from({"hooks": {"before_run": [huge]}}, "Turn.from_dict")
    with pytest.raises(UnregisteredToolError) as no_tool:
        ToolRegistry.get(huge)
    for info in (bad_key, missing, no_tool):
        assert len(str(info.value)) < 1_000


def test_a_name_under_an_event_its_hook_does_not_listen_to_comes_back_on_that_event():
    calls = []

    @hook(TurnHook.AFTER_RUN)
    async def shared(*args):
        calls.append(args)

    (restored,) = _serde.hooks_from(
        {"hooks": {"before_run": ["shared"]}}, "T", families=(TurnHook,)
    )
    assert restored.type is TurnHook.BEFORE_RUN
    assert _serde.hooks_to([restored]) == {"before_run": ["shared"]}


async def test_a_turn_with_a_stacked_hook_restores_exactly(noop):
    calls = []
    first, second = Turn("noop"), Turn("noop")

    @first.before_run
    @second.after_run
    async def shared(turn, *rest):
        calls.append(("shared", turn))

    restored = Turn.from_dict(first.to_dict())
    assert restored.to_dict()["hooks"] == {"before_run": ["shared"]}
    await restored.returning()
    assert calls == [("shared", restored)]  # before_run fired: after_run would add a second


# =========================================================================== restore exactness


def test_a_factory_making_same_named_instance_hooks_gets_a_clear_error(noop):
    def make_agent(name):
        agent = Agent(name, "d", [noop])

        @agent.before_turn
        async def audit(agent):
            pass

        return agent

    first = make_agent("a")
    with pytest.raises(ValueError, match="'audit' already registered") as info:
        make_agent("b")
    message = str(info.value)
    assert "unique name" in message and "__name__" in message
    # Restoring the first agent's hooks finds the first agent's hook, not another one.
    assert _serde.hooks_from({"hooks": _serde.hooks_to(first.hooks)}, "Agent.from_dict") == [
        first.hooks[0]
    ]


async def test_one_hook_shared_by_many_agents_restores_to_that_hook(noop):
    calls = []

    async def audit(agent):
        calls.append(agent.name)

    agents = []
    for name in ("a", "b"):
        agent = Agent(name, "d", [noop])
        agent.before_turn(audit)  # the same function: one hook, attached to each
        agents.append(agent)
    assert agents[0].hooks == agents[1].hooks
    shared = HookRegistry.get("audit")
    assert shared.fn is audit
    AgentRegistry.clear()
    restored = Agent.from_dict(agents[0].to_dict())
    assert restored.hooks == [shared]


# =========================================================================== A5: type, fn, lock


def test_hook_objects_expose_type_fn_and_lock(noop):
    async def one(turn):
        pass

    async def many(*args):
        pass

    async def inst(turn):
        pass

    async def locked(turn):
        pass

    single = hook(TurnHook.BEFORE_RUN)(one)
    multi = hook([AgentHook.AFTER_TURN, TurnHook.BEFORE_RUN])(many)
    instance = Turn("noop").before_run(inst)
    wrapped = HookRegistry.wrap(locked, TurnHook.AFTER_RUN, lock=True)
    assert single.type is TurnHook.BEFORE_RUN
    assert multi.type == (AgentHook.AFTER_TURN, TurnHook.BEFORE_RUN)
    assert multi.types == (AgentHook.AFTER_TURN, TurnHook.BEFORE_RUN)
    assert instance.type is TurnHook.BEFORE_RUN
    assert (single.fn, multi.fn, instance.fn, wrapped.fn) == (one, many, inst, locked)
    assert single.lock is None and instance.lock is None
    assert isinstance(wrapped.lock, asyncio.Lock)
    assert isinstance(hook(TurnHook.ON_ERROR, lock=True)(_noop_fn).lock, asyncio.Lock)


async def test_the_lock_attribute_is_the_lock_the_hook_takes():
    order = []

    @hook(ContextQueueHook.AFTER_CLEAR, lock=True)
    async def guarded(queue):
        order.append("hook")

    queue = ContextQueue(limit=1)
    async with guarded.lock:
        task = asyncio.ensure_future(queue.clear())
        for _ in range(5):
            await asyncio.sleep(0)
        order.append("released")
    await task
    assert order == ["released", "hook"]


def test_lock_serialises_runs_in_each_loop_whatever_another_loop_does():
    """Loop A holds the lock; loop B (another thread) takes its own; A's next run must wait."""
    holding = threading.Event()
    other_loop_done = threading.Event()
    seen = {}  # loop -> {"now": runs in progress, "max": most at once}
    release = {}

    @hook(ContextQueueHook.AFTER_CLEAR, lock=True)
    async def guarded(queue):
        mine = seen.setdefault(asyncio.get_running_loop(), {"now": 0, "max": 0})
        mine["now"] += 1
        mine["max"] = max(mine["max"], mine["now"])
        events = release.get(asyncio.get_running_loop())
        if events is not None:
            gate, entered = events
            entered.set()
            holding.set()
            await gate.wait()
        mine["now"] -= 1

    async def loop_a():
        gate, entered = asyncio.Event(), asyncio.Event()
        release[asyncio.get_running_loop()] = (gate, entered)
        first = asyncio.ensure_future(guarded(None))
        await entered.wait()
        await asyncio.get_running_loop().run_in_executor(None, other_loop_done.wait)
        del release[asyncio.get_running_loop()]  # the second run does not wait on the gate
        second = asyncio.ensure_future(guarded(None))
        for _ in range(5):
            await asyncio.sleep(0)
        concurrent = seen[asyncio.get_running_loop()]["max"]
        gate.set()
        await asyncio.gather(first, second)
        return concurrent

    def loop_b():
        holding.wait()
        asyncio.run(guarded(None))  # another loop, another lock
        other_loop_done.set()

    thread = threading.Thread(target=loop_b)
    thread.start()
    try:
        assert asyncio.run(loop_a()) == 1
    finally:
        thread.join()


# =========================================================================== A6: HookMetadata


def test_hook_metadata_is_a_name_and_description_value():
    meta = HookMetadata("audit", "Logs.")
    assert (meta.name, meta.description) == ("audit", "Logs.")
    assert meta.dict() == {"name": "audit", "description": "Logs."}
    assert meta == HookMetadata("audit", "Logs.")
    assert meta != HookMetadata("audit", None)
    assert HookMetadata("a", None, types=(TurnHook.BEFORE_RUN,)) == HookMetadata("a", None)

    @hook(TurnHook.BEFORE_RUN)
    async def my_hook(turn):
        pass

    @hook(TurnHook.AFTER_RUN)
    async def timed(turn, output):
        """Logs turn end."""

    assert my_hook.metadata == HookMetadata("my_hook", None)
    assert timed.metadata.dict() == {"name": "timed", "description": "Logs turn end."}


# =========================================================================== A7: get_by_type


def test_get_by_type_filters_a_list_by_its_type_attribute():
    @hook(TurnHook.ON_ERROR)
    async def turn_err(turn, exc):
        pass

    @hook(ToolHook.ON_ERROR)
    async def tool_err(exc):
        pass

    @hook([TurnHook.BEFORE_RUN, TurnHook.ON_ERROR])
    async def multi(*args):
        pass

    duck_set = Duck({TurnHook.ON_ERROR}, "duck_set", [])
    untyped = Duck(None, "untyped", [])
    plain = object()
    items = [tool_err, turn_err, plain, untyped, multi, duck_set]
    assert HookRegistry.get_by_type(TurnHook.ON_ERROR, items) == [turn_err, multi, duck_set]
    assert HookRegistry.get_by_type(ToolHook.ON_ERROR, items) == [tool_err]
    assert HookRegistry.get_by_type(TurnHook.ON_ERROR, []) == []
    # One argument: the first registered hook of that type.
    assert HookRegistry.get_by_type(TurnHook.ON_ERROR) is turn_err
    assert HookRegistry.get_by_type(AgentHook.ON_PAUSE) is None


# =========================================================================== A8: reuse, stacking


async def test_stacked_tool_decorators_share_one_hook_on_two_events():
    calls = []

    @tool()
    async def tool_a(x: int) -> int:
        calls.append(("a", x))
        return x

    @tool()
    async def tool_b(x: int) -> int:
        calls.append(("b", x))
        return x

    @tool_a.after_invoke
    @tool_b.before_invoke
    async def shared(x):
        calls.append(("shared", x))

    await Turn("tool_b", kwargs={"x": 1}).returning()
    await Turn("tool_a", kwargs={"x": 2}).returning()
    assert calls == [("shared", 1), ("b", 1), ("a", 2), ("shared", 2)]
    assert HookRegistry.get("shared") is shared


@pytest.mark.parametrize("form", ["bare", "called", "options"])
def test_an_existing_hook_is_attached_as_the_same_object(form, noop):
    @hook(TurnHook.BEFORE_RUN)
    async def existing(turn):
        pass

    turn = Turn("noop")
    if form == "options":
        result = turn.before_run(lock=True, extra=1)(existing)  # options are ignored
    else:
        result = turn.before_run(existing)
    assert result is existing
    assert turn.hooks == [existing]
    assert existing.lock is None
    assert HookRegistry.get("existing") is existing


async def test_a_global_hook_attached_to_an_owner_still_fires_once(noop):
    calls = []

    @hook(TurnHook.BEFORE_RUN)
    async def once(turn):
        calls.append(turn)

    turn = Turn("noop")
    turn.before_run(once)
    await turn.returning()
    assert calls == [turn]


async def test_an_existing_hook_on_another_event_fires_there_for_that_owner_only(noop):
    calls = []
    queue, other = ContextQueue(limit=2), ContextQueue(limit=2)

    @queue.after_clear
    async def cleared(q, *rest):
        calls.append(("after_clear", q))

    assert queue.before_clear(cleared) is cleared
    other.before_clear(HookRegistry.wrap(cleared, ContextQueueHook.AFTER_CLEAR))
    await queue.clear()
    assert calls == [("after_clear", queue), ("after_clear", queue)]
    calls.clear()
    await ContextQueue(limit=1).clear()
    assert calls == []


def test_an_agent_turn_event_decorator_takes_an_existing_hook_into_turn_hooks(noop):
    @hook(TurnHook.ON_COMPLETE)
    async def done(turn, reason):
        pass

    agent = Agent("owner", "d", [noop])
    assert agent.on_complete(done) is done
    assert agent.turn_hooks == [done]
    assert agent.hooks == []


# =========================================================================== B8: duck-typed hooks


async def test_duck_typed_hooks_in_hooks_lists_are_dispatched(noop):
    calls = []
    turn = Turn("noop")
    turn.hooks.append(Duck(TurnHook.BEFORE_RUN, "before", calls))
    turn.hooks.append(Duck((TurnHook.AFTER_RUN, TurnHook.ON_COMPLETE), "after", calls))
    queue = ContextQueue(limit=1)
    queue.hooks.append(Duck([ContextQueueHook.AFTER_CLEAR], "cleared", calls))
    pool = ContextPool()
    pool.hooks.append(Duck(frozenset({ContextPoolHook.AFTER_CLEAR}), "pool", calls))
    await turn.returning()
    await queue.clear()
    await pool.clear()
    assert [name for name, _ in calls] == ["before", "after", "after", "cleared", "pool"]


async def test_an_object_with_neither_types_nor_type_is_a_clear_type_error(noop):
    turn = Turn("noop")
    turn.hooks.append(object())
    with pytest.raises(TypeError, match="not a hook"):
        await turn.returning()


# =========================================================================== B9: register, wrap


async def test_register_accepts_any_named_callable_without_making_it_fire(noop):
    calls = []
    duck = Duck(TurnHook.BEFORE_RUN, "ducky", calls)
    HookRegistry.register(duck)
    HookRegistry.register(duck)  # the identical object again: nothing happens
    assert HookRegistry.get("ducky") is duck
    await Turn("noop").returning()
    assert calls == []  # registered is not global
    with pytest.raises(ValueError, match="'ducky' already registered"):
        HookRegistry.register(Duck(TurnHook.BEFORE_RUN, "ducky", calls))
    HookRegistry.clear()
    with pytest.raises(UnregisteredHookError):
        HookRegistry.get("ducky")


async def test_wrap_makes_an_unattached_registered_hook_and_gives_it_back_again(noop):
    calls = []

    async def watch(turn, *rest, label):
        calls.append(label)

    wrapped = HookRegistry.wrap(watch, [TurnHook.BEFORE_RUN], label="fixed")
    assert wrapped is not watch and wrapped.fn is watch
    assert HookRegistry.get("watch") is wrapped
    assert wrapped.type is TurnHook.BEFORE_RUN
    assert HookRegistry.wrap(watch, TurnHook.AFTER_RUN) is wrapped  # the same function
    assert HookRegistry.wrap(wrapped, TurnHook.AFTER_RUN) is wrapped  # already a hook
    await Turn("noop").returning()
    assert calls == []  # attached to nothing, and not global
    turn = Turn("noop")
    turn.hooks.append(wrapped)
    await turn.returning()
    assert calls == ["fixed"]


# =========================================================================== A12: warnings


async def test_overriding_a_fixed_kwarg_warns_once_per_key(caplog):
    @hook(ContextQueueHook.AFTER_CLEAR, env="prod", region="eu")
    async def report(queue, env, region):
        pass

    @tool(env="prod")
    async def deploy(env):
        return env

    caplog.set_level(logging.WARNING, logger="pygents")
    await report(None)
    assert await deploy() == "prod"
    assert caplog.records == []
    await report(None, env="dev", region="us")
    assert await deploy(env="dev") == "dev"
    messages = sorted(r.getMessage() for r in caplog.records if r.name == "pygents")
    assert messages == [
        "Fixed kwarg 'env' is overridden by call-time argument for hook 'report'.",
        "Fixed kwarg 'env' is overridden by call-time argument for tool 'deploy'.",
        "Fixed kwarg 'region' is overridden by call-time argument for hook 'report'.",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


async def test_context_injection_is_not_an_override(caplog, noop):
    @hook(TurnHook.BEFORE_RUN, label="x")
    async def sees(turn, label, memory: ContextQueue | None = None):
        pass

    caplog.set_level(logging.WARNING, logger="pygents")
    agent = Agent("injector", "d", [noop])
    await agent.put(Turn("noop"))
    async for _ in agent.run():
        pass
    assert caplog.records == []


# =========================================================================== @hook(type=...)


def test_hook_takes_its_type_by_keyword_or_position():
    @hook(type=TurnHook.BEFORE_RUN)
    async def by_keyword(turn):
        pass

    @hook(TurnHook.BEFORE_RUN)
    async def by_position(turn):
        pass

    assert by_keyword.type is by_position.type is TurnHook.BEFORE_RUN


def test_an_empty_type_list_says_at_least_one_type():
    with pytest.raises(ValueError, match="at least one type"):
        hook([])


# =========================================================================== errors


@pytest.mark.parametrize(
    ("registry", "error", "what"),
    [
        (ToolRegistry, UnregisteredToolError, "Tool"),
        (AgentRegistry, UnregisteredAgentError, "Agent"),
        (HookRegistry, UnregisteredHookError, "Hook"),
    ],
)
def test_lookups_raise_key_errors_with_unquoted_messages(registry, error, what):
    assert issubclass(error, KeyError) and issubclass(error, LookupError)
    assert issubclass(error, PygentsError)
    with pytest.raises(KeyError) as info:
        registry.get("ghost")
    assert isinstance(info.value, error)
    message = str(info.value)
    assert message.startswith(what)  # not KeyError's quoted repr
    assert "'ghost' not found" in message


def test_duplicate_names_say_already_registered(noop):
    async def noop_again():
        return None

    noop_again.__name__ = "noop"
    with pytest.raises(ValueError, match="'noop' already registered"):
        tool()(noop_again)
    Agent("dup", "d", [noop])
    with pytest.raises(ValueError, match="'dup' already registered"):
        Agent("dup", "d", [noop])


# =========================================================================== public modules


def test_hooks_and_registry_modules_re_export_the_originals_names():
    import pygents
    from pygents import hooks, registry

    for name in hooks.__all__:
        assert getattr(hooks, name) is getattr(pygents, name, getattr(hooks, name))
    assert {"hook", "Hook", "HookMetadata", "TurnHook", "AgentHook", "ToolHook"} <= set(
        hooks.__all__
    )
    assert {"ContextQueueHook", "ContextPoolHook"} <= set(hooks.__all__)
    assert set(registry.__all__) == {"ToolRegistry", "AgentRegistry", "HookRegistry"}
    assert registry.HookRegistry is HookRegistry


async def test_duck_typed_hooks_fire_for_an_agent_and_survive_branch(noop):
    calls = []
    agent = Agent("ducked", "d", [noop])
    agent.hooks.append(Duck(AgentHook.BEFORE_TURN, "agent_duck", calls))
    child = agent.branch("ducked-child")
    await child.put(Turn("noop"))
    async for _ in child.run():
        pass
    assert [name for name, _ in calls] == ["agent_duck"]
