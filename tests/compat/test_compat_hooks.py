"""The original's hooks page, re-enacted: ``docs-0.6.1/concepts/hooks.md``.

Sections covered (by heading):

- "Defining hooks": ``@hook(type)`` (also as ``type=``), the ``TypeError`` and ``ValueError``
  warnings, a different hook under a taken name.
- "Global vs instance-scoped hooks": reach of each, "Both can coexist" (instance first, then
  global, one call for a hook in both lists), "Where hooks attach" (``agent.on_error`` /
  ``on_timeout`` / ``on_complete`` stored in ``agent.turn_hooks`` and fired for each turn),
  sequential dispatch stopping at the first exception.
- "Tool hooks": arguments, the parenthesised form with ``lock`` and fixed kwargs, calling the
  decorator directly, sharing one hook across tools with stacked decorators.
- "Multi-type hooks": ``@hook([A, B])`` fires for both events, ``type`` is a tuple.
- "Fixed kwargs": injected into every call, call-site values win with a warning.
- "Tag filtering": tags on all five object types, OR semantics, untagged objects, instance hooks
  unaffected.
- "Context injection": hooks declaring ``ContextQueue | None`` get the agent's queue inside a
  turn and ``None`` outside.
- "Locking", "Metadata", "Registry" (``get``, ``clear``, ``get_by_type`` over a list), "Hook
  class" (``metadata``, ``type``, ``fn``, ``lock``, ``tags``).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pygents import (
    Agent,
    AgentHook,
    ContextPoolHook,
    ContextQueueHook,
    Hook,
    HookMetadata,
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
from pygents.context import ContextItem, ContextPool, ContextQueue


def _make_echo():
    @tool()
    async def echo(value: object = None) -> object:
        return value

    return echo


# -- Defining hooks --------------------------------------------------------------------------


async def test_global_turn_hooks_fire_with_their_arguments(capsys: pytest.CaptureFixture[str]):
    @tool()
    async def crash() -> None:
        raise OSError("disk full")

    @hook(TurnHook.BEFORE_RUN)
    async def say_start(turn) -> None:
        print(f"Starting {turn.tool.metadata.name}")

    @hook(TurnHook.ON_ERROR)
    async def say_error(turn, exception) -> None:
        print(f"Error: {exception}")

    with pytest.raises(OSError):
        await Turn("crash").returning()
    assert capsys.readouterr().out == "Starting crash\nError: disk full\n"


async def test_hook_type_can_be_given_as_the_keyword_type():
    fired: list[str] = []

    @hook(type=TurnHook.AFTER_RUN)
    async def by_keyword(turn, output) -> None:
        fired.append(output)

    _make_echo()
    await Turn("echo", args=["ok"]).returning()
    assert fired == ["ok"]


def test_a_sync_hook_function_raises_type_error():
    def plain(turn) -> None: ...

    with pytest.raises(TypeError):
        hook(TurnHook.BEFORE_RUN)(plain)


def test_fixed_kwargs_outside_the_hook_signature_raise_type_error():
    async def narrow(turn) -> None: ...

    with pytest.raises(TypeError):
        hook(TurnHook.BEFORE_RUN, flavour="x")(narrow)


def test_an_empty_type_list_raises_value_error():
    with pytest.raises(ValueError, match="at least one type"):
        hook([])


def test_a_different_hook_under_a_taken_name_raises_value_error():
    @hook(AgentHook.BEFORE_TURN)
    async def clash(agent) -> None: ...

    async def clash(agent) -> None:  # noqa: F811 - another function under the same name
        ...

    with pytest.raises(ValueError, match="'clash' already registered"):
        hook(AgentHook.AFTER_TURN)(clash)


# -- Global vs instance-scoped ---------------------------------------------------------------


async def test_an_instance_hook_fires_only_for_its_object():
    calls: list[str] = []

    @tool()
    async def guarded(x: int) -> int:
        return x

    @tool()
    async def free(x: int) -> int:
        return x

    @guarded.before_invoke
    async def non_negative(x: int) -> None:
        calls.append(f"checked {x}")
        if x < 0:
            raise ValueError("x must be non-negative")

    await Turn("guarded", args=[3]).returning()
    await Turn("free", args=[-3]).returning()
    with pytest.raises(ValueError, match="non-negative"):
        await Turn("guarded", args=[-1]).returning()
    assert calls == ["checked 3", "checked -1"]


async def test_instance_turn_and_agent_hooks_stay_on_their_objects():
    failures: list[str] = []
    starts: list[str] = []
    echo = _make_echo()

    @tool()
    async def crash() -> None:
        raise RuntimeError("bad")

    failing = Turn("crash")

    @failing.on_error
    async def this_turn_failed(turn, exc) -> None:
        failures.append(str(exc))

    worker = Agent("worker", "desc", [echo, crash])
    bystander = Agent("bystander", "desc", [echo])

    @worker.before_turn
    async def worker_starting(agent) -> None:
        starts.append(agent.name)

    await bystander.put(Turn("echo"))
    async for _ in bystander.run():
        pass
    await worker.put(failing)
    with pytest.raises(RuntimeError):
        async for _ in worker.run():
            pass
    with pytest.raises(RuntimeError):
        await Turn("crash").returning()

    assert failures == ["bad"]
    assert starts == ["worker"]


async def test_instance_hooks_run_before_global_ones(capsys: pytest.CaptureFixture[str]):
    echo = _make_echo()

    @hook(ToolHook.BEFORE_INVOKE)
    async def everywhere(**kwargs) -> None:
        print("global")

    @echo.before_invoke
    async def here(**kwargs) -> None:
        print("instance")

    await Turn("echo", kwargs={"value": 1}).returning()
    assert capsys.readouterr().out == "instance\nglobal\n"


async def test_a_hook_in_both_lists_fires_once():
    calls: list[object] = []
    echo = _make_echo()

    @hook(ToolHook.AFTER_INVOKE)
    async def counted(result) -> None:
        calls.append(result)

    echo.hooks.append(counted)
    await Turn("echo", args=["r"]).returning()
    assert calls == ["r"]


async def test_hooks_run_in_order_and_stop_at_the_first_exception():
    calls: list[str] = []

    @tool()
    async def noop() -> None: ...

    turn = Turn("noop")

    @turn.before_run
    async def first(t) -> None:
        calls.append("first")
        raise LookupError("stop here")

    @turn.before_run
    async def second(t) -> None:
        calls.append("second")

    with pytest.raises(LookupError, match="stop here"):
        await turn.returning()
    assert calls == ["first"]


# -- Where hooks attach: agent turn hooks ----------------------------------------------------


async def test_agent_turn_scoped_hooks_go_to_turn_hooks_not_hooks():
    agent = Agent("keeper", "desc", [_make_echo()])

    @agent.on_error
    async def any_error(turn, exception) -> None: ...

    @agent.on_timeout
    async def any_timeout(turn) -> None: ...

    @agent.on_complete
    async def any_complete(turn, stop_reason) -> None: ...

    assert agent.turn_hooks == [any_error, any_timeout, any_complete]
    assert agent.hooks == []


async def test_agent_turn_hooks_fire_for_every_turn_the_agent_runs():
    events: list[tuple] = []

    @tool()
    async def maybe_fail(fail: bool) -> str:
        if fail:
            raise ValueError("asked to fail")
        return "fine"

    agent = Agent("keeper", "desc", [maybe_fail])

    @agent.on_complete
    async def finished(turn, stop_reason) -> None:
        events.append(("complete", turn.kwargs["fail"], stop_reason))

    @agent.on_error
    async def failed(turn, exception) -> None:
        events.append(("error", str(exception)))

    first = Turn("maybe_fail", kwargs={"fail": False})
    second = Turn("maybe_fail", kwargs={"fail": True})
    await agent.put(first)
    await agent.put(second)
    with pytest.raises(ValueError):
        async for _ in agent.run():
            pass

    assert events == [
        ("complete", False, StopReason.COMPLETED),
        ("error", "asked to fail"),
        ("complete", True, StopReason.ERROR),
    ]
    assert first.hooks == []
    assert second.hooks == []


async def test_agent_on_timeout_fires_for_a_turn_that_times_out():
    timed_out: list[str] = []

    @tool()
    async def hang() -> None:
        await asyncio.Event().wait()

    agent = Agent("keeper", "desc", [hang])

    @agent.on_timeout
    async def late(turn) -> None:
        timed_out.append(turn.tool.metadata.name)

    await agent.put(Turn("hang", timeout=0.01))
    with pytest.raises(TurnTimeoutError):
        async for _ in agent.run():
            pass
    assert timed_out == ["hang"]


async def test_agent_turn_hooks_survive_to_dict_and_branch():
    agent = Agent("keeper", "desc", [_make_echo()])

    @agent.on_complete
    async def done(turn, stop_reason) -> None: ...

    assert agent.to_dict()["turn_hooks"] == {"on_complete": ["done"]}
    assert agent.branch("keeper-2", hooks=[]).turn_hooks == [done]


# -- Tool hooks ------------------------------------------------------------------------------


async def test_tool_hooks_receive_the_tools_arguments_and_result(
    capsys: pytest.CaptureFixture[str],
):
    @tool()
    async def label(x: int, y: str) -> str:
        return f"{x}-{y}"

    @label.before_invoke
    async def show_args(x: int, y: str) -> None:
        print(f"calling with x={x}, y={y}")

    @label.after_invoke
    async def show_result(result) -> None:
        print(f"result: {result}")

    await Turn("label", kwargs={"x": 2, "y": "b"}).returning()
    assert capsys.readouterr().out == "calling with x=2, y=b\nresult: 2-b\n"


async def test_parenthesised_tool_hook_takes_lock_and_fixed_kwargs():
    seen: list[str] = []

    @tool()
    async def label(x: int, y: str) -> str:
        return f"{x}-{y}"

    @label.before_invoke(lock=True, stage="staging")
    async def check(x: int, y: str, stage: str) -> None:
        seen.append(stage)

    await Turn("label", kwargs={"x": 1, "y": "a"}).returning()
    assert seen == ["staging"]
    assert isinstance(check.lock, asyncio.Lock)


async def test_a_tool_hook_decorator_can_be_called_directly():
    seen: list[int] = []

    @tool()
    async def label(x: int, y: str) -> str:
        return f"{x}-{y}"

    async def check(x: int, y: str) -> None:
        seen.append(x)

    label.before_invoke(check)
    await Turn("label", kwargs={"x": 5, "y": "a"}).returning()
    assert seen == [5]


async def test_stacked_decorators_share_one_hook_across_tools():
    seen: list[tuple[str, int]] = []

    @tool()
    async def left(x: int) -> int:
        seen.append(("left ran", x))
        return x

    @tool()
    async def right(x: int) -> int:
        seen.append(("right ran", x))
        return x

    @left.after_invoke
    @right.before_invoke
    async def shared(x) -> None:
        seen.append(("shared", x))

    await Turn("left", args=[1]).returning()
    await Turn("right", args=[2]).returning()
    assert seen == [("left ran", 1), ("shared", 1), ("shared", 2), ("right ran", 2)]


async def test_on_error_tool_hook_replaces_after_invoke():
    seen: list[str] = []

    @tool()
    async def fails() -> None:
        raise ValueError("nope")

    @fails.after_invoke
    async def after(result) -> None:
        seen.append("after")

    @fails.on_error
    async def error(exc) -> None:
        seen.append(f"error {exc}")

    with pytest.raises(ValueError):
        await Turn("fails").returning()
    assert seen == ["error nope"]


# -- Multi-type hooks ------------------------------------------------------------------------


async def test_a_multi_type_hook_fires_for_each_of_its_events():
    events: list[int] = []
    echo = _make_echo()

    @hook([AgentHook.BEFORE_TURN, AgentHook.AFTER_TURN])
    async def both(*args, **kwargs) -> None:
        events.append(len(args))

    agent = Agent("multi", "desc", [echo])
    await agent.put(Turn("echo"))
    async for _ in agent.run():
        pass
    assert events == [1, 2]  # BEFORE_TURN gets (agent,), AFTER_TURN (agent, turn)
    assert both.type == (AgentHook.BEFORE_TURN, AgentHook.AFTER_TURN)


# -- Fixed kwargs ----------------------------------------------------------------------------


async def test_fixed_kwargs_are_injected_into_every_hook_call():
    reports: list[tuple[str, str]] = []

    @hook(TurnHook.AFTER_RUN, env="staging")
    async def report(turn, output, env) -> None:
        reports.append((turn.tool.metadata.name, env))

    _make_echo()
    await Turn("echo").returning()
    await Turn("echo").returning()
    assert reports == [("echo", "staging"), ("echo", "staging")]


async def test_a_call_site_kwarg_overrides_a_hooks_fixed_kwarg_with_a_warning(caplog):
    used: list[str] = []

    @hook(TurnHook.AFTER_RUN, env="staging")
    async def report(turn, output, env) -> None:
        used.append(env)

    with caplog.at_level(logging.WARNING, logger="pygents"):
        await report(None, None, env="prod")
    assert used == ["prod"]
    records = [r for r in caplog.records if r.name == "pygents" and r.levelno == logging.WARNING]
    assert len(records) == 1
    assert "'env'" in records[0].getMessage()
    assert "report" in records[0].getMessage()


# -- Tag filtering ---------------------------------------------------------------------------


async def test_tag_filters_apply_to_tools_agents_turns_queues_and_pools():
    fired: list[str] = []

    @tool(tags=["io", "storage"])
    async def store_row(row: dict) -> None: ...

    @tool(tags=["io"])
    async def read_row(key: str) -> str:
        return key

    @tool()
    async def add(x: int) -> int:
        return x

    @hook(ToolHook.AFTER_INVOKE, tags={"io"})
    async def io_tool(result) -> None:
        fired.append(f"tool {result}")

    @hook(AgentHook.BEFORE_PUT, tags={"io"})
    async def io_agent(agent, turn) -> None:
        fired.append(f"agent {agent.name}")

    @hook(TurnHook.ON_ERROR, tags={"audited"})
    async def audited_failure(turn, exception) -> None:
        fired.append(f"turn {exception}")

    @hook(ContextQueueHook.AFTER_APPEND, tags={"session"})
    async def session_queue(queue, appended_items, current) -> None:
        fired.append("queue")

    @hook(ContextPoolHook.AFTER_ADD, tags={"documents"})
    async def document_pool(pool, item) -> None:
        fired.append(f"pool {item.id}")

    producer = Agent("producer", "I/O", [store_row, read_row, add], tags=["io"])
    plain = Agent("plain", "no tags", [store_row, read_row, add])
    await producer.put(Turn("read_row", args=["k"]))
    await plain.put(Turn("add", args=[1]))
    async for _ in producer.run():
        pass
    async for _ in plain.run():
        pass

    @tool()
    async def broken() -> None:
        raise RuntimeError("x")

    for tags in (["audited"], None):
        with pytest.raises(RuntimeError):
            await Turn("broken", tags=tags).returning()

    await ContextQueue(limit=3, tags=["session"]).append(ContextItem(content=1))
    await ContextQueue(limit=3).append(ContextItem(content=1))
    await ContextPool(tags=["documents"]).add(ContextItem(id="d", description="d", content=1))
    await ContextPool().add(ContextItem(id="e", description="e", content=1))

    assert fired == ["agent producer", "tool k", "turn x", "queue", "pool d"]


async def test_a_hook_without_tags_fires_for_tagged_and_untagged_objects():
    fired: list[str] = []

    @tool()
    async def noop() -> None: ...

    @hook(TurnHook.BEFORE_RUN)
    async def all_turns(turn) -> None:
        fired.append(",".join(sorted(turn.tags)) or "-")

    await Turn("noop", tags=["a"]).returning()
    await Turn("noop").returning()
    assert fired == ["a", "-"]


# -- Context injection -----------------------------------------------------------------------


async def test_hooks_get_the_agents_queue_inside_a_turn_and_none_outside():
    seen: list[object] = []

    @tool()
    async def work() -> int:
        return 1

    @hook(ToolHook.AFTER_INVOKE)
    async def with_memory(result: object, memory: ContextQueue | None = None) -> None:
        seen.append(("tool", memory))

    @hook(AgentHook.AFTER_TURN)
    async def outside(agent, turn, memory: ContextQueue | None = None) -> None:
        seen.append(("agent", memory))

    agent = Agent("injected", "desc", [work])
    await agent.put(Turn("work"))
    async for _ in agent.run():
        pass
    assert seen == [("tool", agent.context_queue), ("agent", None)]


# -- Locking ---------------------------------------------------------------------------------


async def test_lock_true_serializes_a_hooks_concurrent_runs():
    inside = 0
    most = 0

    @hook(TurnHook.AFTER_RUN, lock=True)
    async def append_log(turn, output) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        for _ in range(3):
            await asyncio.sleep(0)
        inside -= 1

    _make_echo()
    await asyncio.gather(*(Turn("echo", args=[i]).returning() for i in range(4)))
    assert most == 1
    assert isinstance(append_log.lock, asyncio.Lock)


# -- Metadata --------------------------------------------------------------------------------


def test_hook_metadata_comes_from_the_function():
    @hook(TurnHook.BEFORE_RUN)
    async def stamped(turn) -> None:
        """Notes the turn start."""

    @hook(TurnHook.BEFORE_RUN)
    async def bare(turn) -> None:
        pass

    assert stamped.metadata.name == "stamped"
    assert stamped.metadata.description == "Notes the turn start."
    assert stamped.metadata.dict() == {"name": "stamped", "description": "Notes the turn start."}
    assert bare.metadata == HookMetadata("bare", None)


# -- Registry --------------------------------------------------------------------------------


def test_hook_registry_get_and_clear():
    @hook(TurnHook.BEFORE_RUN)
    async def look_me_up(turn) -> None: ...

    assert HookRegistry.get("look_me_up") is look_me_up
    HookRegistry.clear()
    with pytest.raises(UnregisteredHookError, match="'look_me_up' not found"):
        HookRegistry.get("look_me_up")


def test_unregistered_hook_error_is_a_key_error():
    with pytest.raises(KeyError):
        HookRegistry.get("never")


def test_get_by_type_over_a_list_returns_every_match_in_order():
    @tool()
    async def noop() -> None: ...

    turn = Turn("noop")

    @turn.before_run
    async def one(t) -> None: ...

    @turn.after_run
    async def two(t, output) -> None: ...

    @turn.before_run
    async def three(t) -> None: ...

    assert HookRegistry.get_by_type(TurnHook.BEFORE_RUN, turn.hooks) == [one, three]
    assert HookRegistry.get_by_type(TurnHook.ON_TIMEOUT, turn.hooks) == []
    assert HookRegistry.get_by_type(ToolHook.ON_ERROR, []) == []


# -- Hook class ------------------------------------------------------------------------------


def test_a_decorated_hook_exposes_the_hook_class_attributes():
    async def body(turn) -> None: ...

    made = hook(TurnHook.BEFORE_RUN, tags={"t"})(body)
    assert isinstance(made, Hook)
    assert made.metadata.name == "body"
    assert made.type is TurnHook.BEFORE_RUN
    assert made.fn is body
    assert made.lock is None
    assert made.tags == frozenset({"t"})
