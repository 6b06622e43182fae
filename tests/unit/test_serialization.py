"""to_dict()/from_dict(): JSON round trips, registry resolution, malformed and hostile data."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentHook,
    AgentRegistry,
    ContextPool,
    ContextPoolHook,
    ContextQueue,
    ContextQueueHook,
    HookRegistry,
    StopReason,
    ToolRegistry,
    Turn,
    TurnHook,
    UnregisteredHookError,
    UnregisteredToolError,
    current_agent,
    hook,
    tool,
)
from pygents.context import ContextItem
from pygents.errors import PygentsError, SerializationError
from pygents.turn import DeferredTraceContext


def rt(data: Any) -> Any:
    """Send ``data`` through JSON and back, as a real save/load would."""
    return json.loads(json.dumps(data))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def echo() -> Any:
    @tool()
    async def echo(*args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    return echo


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def hostile_names(marker: Path) -> list[str]:
    return [
        "os.system",
        f"__import__('os').system('touch {marker}')",
        "builtins.eval",
        "eval",
        "exec",
        f"os.system('touch {marker}')",
        "__builtins__",
        "__class__",
    ]


# --------------------------------------------------------------------------- ContextItem


@pytest.mark.parametrize(
    "item",
    [
        ContextItem(content="hello"),
        ContextItem(content=None),
        ContextItem(
            content={"nested": [1, 2.5, None, True, {"k": "v"}]}, id="doc", description="d"
        ),
        ContextItem(content=[1, "two"], id="x"),
        ContextItem(content=0, description="only a description"),
        ContextItem(),
    ],
)
def test_context_item_round_trip(item: ContextItem) -> None:
    data = rt(item.to_dict())
    assert data == {"id": item.id, "description": item.description, "content": item.content}
    restored = ContextItem.from_dict(data)
    assert restored == item
    assert restored is not item
    assert (restored.id, restored.description, restored.content) == (
        item.id,
        item.description,
        item.content,
    )


def test_context_item_optional_fields_default_to_none() -> None:
    assert ContextItem.from_dict({"content": 3}) == ContextItem(content=3)


CONTEXT_ITEM_BAD: list[tuple[Any, str]] = [
    (None, "dict"),
    (5, "dict"),
    ("content", "dict"),
    ([], "dict"),
    ([{"content": 1}], "dict"),
    ({}, "content"),
    ({"id": "a", "description": "d"}, "content"),
    ({"content": 1, "id": 5}, "id"),
    ({"content": 1, "id": True}, "id"),
    ({"content": 1, "id": ["a"]}, "id"),
    ({"content": 1, "description": 5}, "description"),
    ({"content": 1, "description": {"d": 1}}, "description"),
]


@pytest.mark.parametrize(("data", "field"), CONTEXT_ITEM_BAD)
def test_context_item_malformed(data: Any, field: str) -> None:
    with pytest.raises(SerializationError) as info:
        ContextItem.from_dict(data)
    assert field in str(info.value)


# --------------------------------------------------------------------------- Turn


async def test_turn_round_trip_everything(echo: Any) -> None:
    turn = Turn(
        echo,
        timeout=2.5,
        args=[1, "two", [3, 4], {"five": None}, 6.5, True, None],
        kwargs={"a": 1, "b": {"c": [1, 2]}, "s": "x"},
        tags=["io", "llm"],
    )

    @turn.on_complete
    async def turn_done(t: Turn, reason: StopReason) -> None:
        pass

    @hook(TurnHook.BEFORE_RUN)
    async def global_turn_start(t: Turn) -> None:
        pass

    turn.hooks.append(global_turn_start)
    await turn.returning()
    turn.metadata.trace_context = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-01"}

    data = rt(turn.to_dict())
    assert data["tool_name"] == "echo"
    restored = Turn.from_dict(data)

    assert restored.tool is echo
    assert restored.tool_name == "echo"
    assert list(restored.args) == [1, "two", [3, 4], {"five": None}, 6.5, True, None]
    assert restored.kwargs == {"a": 1, "b": {"c": [1, 2]}, "s": "x"}
    assert restored.timeout == 2.5
    assert restored.tags == frozenset({"io", "llm"})
    assert restored.hooks == [turn_done, global_turn_start]
    assert restored.hooks[0] is turn_done
    meta, orig = restored.metadata, turn.metadata
    assert meta.stop_reason is StopReason.COMPLETED
    assert meta.start_time == orig.start_time
    assert meta.end_time == orig.end_time
    assert meta.duration == pytest.approx(orig.duration, abs=1e-5)
    assert meta.trace_context == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-01"}
    assert restored.is_running is False
    # stable: a second trip gives the same data
    assert rt(restored.to_dict()) == data


# ----------------------------------------------------- deferred trace contexts


def traceparent_of(origin: tuple[int, int]) -> dict[str, str]:
    return {"traceparent": "00-%032x-%016x-01" % origin}  # noqa: UP031


def counting(render: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], list[Any]]:
    calls: list[Any] = []

    def counted(origin: Any) -> Any:
        calls.append(origin)
        return render(origin)

    return counted, calls


def test_a_deferred_trace_context_is_rendered_once_on_first_read(echo: Any) -> None:
    render, calls = counting(traceparent_of)
    turn = Turn(echo)
    turn.metadata.defer_trace_context((0xAB, 0xCD), render)
    recorded = turn.metadata.recorded_trace_context
    assert isinstance(recorded, DeferredTraceContext)
    assert recorded.origin == (0xAB, 0xCD) and recorded.render is render
    assert calls == []  # nothing rendered until read
    assert turn.metadata.trace_context == traceparent_of((0xAB, 0xCD))
    assert turn.metadata.trace_context == traceparent_of((0xAB, 0xCD))
    assert calls == [(0xAB, 0xCD)]
    # Rendered: the dict is what is recorded now.
    assert turn.metadata.recorded_trace_context == traceparent_of((0xAB, 0xCD))
    with pytest.raises(AttributeError):
        recorded.origin = (1, 2)  # type: ignore[misc]


def test_a_deferred_trace_context_is_serialized_rendered(echo: Any) -> None:
    turn = Turn(echo, kwargs={"x": 1})
    turn.metadata.defer_trace_context((7, 8), traceparent_of)
    data = rt(turn.to_dict())
    assert data["metadata"]["trace_context"] == traceparent_of((7, 8))
    assert Turn.from_dict(data).metadata.trace_context == traceparent_of((7, 8))
    meta = Turn(echo).metadata
    meta.defer_trace_context((9, 10), traceparent_of)
    assert meta.dict()["trace_context"] == traceparent_of((9, 10))


def test_deferring_a_trace_context_needs_a_callable_render(echo: Any) -> None:
    turn = Turn(echo)
    with pytest.raises(TypeError, match="callable render, got str"):
        turn.metadata.defer_trace_context((1, 2), "traceparent")  # type: ignore[arg-type]
    assert turn.metadata.recorded_trace_context is None


def test_assigning_a_trace_context_replaces_a_deferred_one(echo: Any) -> None:
    render, calls = counting(traceparent_of)
    turn = Turn(echo)
    turn.metadata.defer_trace_context((1, 2), render)
    turn.metadata.trace_context = {"traceparent": "mine"}
    assert turn.metadata.recorded_trace_context == {"traceparent": "mine"}
    assert turn.metadata.trace_context == {"traceparent": "mine"}
    turn.metadata.trace_context = None
    assert turn.to_dict()["metadata"].get("trace_context") is None
    assert calls == []


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(lambda origin: 1 / 0, id="raises"),
        pytest.param(lambda origin: "00-ab-cd-01", id="a string"),
        pytest.param(lambda origin: {"traceparent": 1}, id="a non-string value"),
    ],
)
def test_a_failing_render_leaves_no_trace_context_and_is_logged(
    echo: Any, render: Any, caplog: pytest.LogCaptureFixture
) -> None:
    turn = Turn(echo, kwargs={"x": 1})
    turn.metadata.defer_trace_context((1, 2), render)
    with caplog.at_level("ERROR", logger="pygents"):
        data = rt(turn.to_dict())  # serializing the turn still works, without it
    assert "trace_context" not in data["metadata"]
    assert turn.metadata.trace_context is None
    assert turn.metadata.recorded_trace_context is None
    assert "rendering a deferred trace context failed" in caplog.text


async def test_a_branch_copies_a_deferred_trace_context_unrendered(echo: Any) -> None:
    render, calls = counting(traceparent_of)
    agent = Agent("deferring", "d", [echo])
    turn = Turn(echo)
    turn.metadata.defer_trace_context((3, 4), render)
    await agent.put(turn)
    child = agent.branch("deferring-child")
    try:
        copied = child.queue[0]
        assert copied is not turn
        assert copied.metadata.recorded_trace_context == turn.metadata.recorded_trace_context
        assert calls == []
        # Each renders its own, and one turn's read leaves the other deferred.
        assert copied.metadata.trace_context == traceparent_of((3, 4))
        assert isinstance(turn.metadata.recorded_trace_context, DeferredTraceContext)
        assert rt(agent.to_dict())["queue"][0]["metadata"]["trace_context"] == traceparent_of(
            (3, 4)
        )
    finally:
        AgentRegistry.discard("deferring-child", child)
        AgentRegistry.discard("deferring", agent)


@pytest.mark.parametrize("timeout", [None, 60, 0.25, 7])
def test_turn_round_trip_timeout(echo: Any, timeout: Any) -> None:
    restored = Turn.from_dict(rt(Turn(echo, timeout=timeout).to_dict()))
    assert restored.timeout == timeout


@pytest.mark.parametrize("reason", list(StopReason))
def test_turn_round_trip_each_stop_reason(echo: Any, reason: StopReason) -> None:
    turn = Turn(echo)
    turn.metadata.stop_reason = reason
    restored = Turn.from_dict(rt(turn.to_dict()))
    assert restored.metadata.stop_reason is reason


def test_turn_never_run_round_trip(echo: Any) -> None:
    restored = Turn.from_dict(rt(Turn(echo).to_dict()))
    assert restored.metadata.start_time is None
    assert restored.metadata.end_time is None
    assert restored.metadata.stop_reason is None
    assert restored.metadata.trace_context is None
    assert restored.timeout == 60


def test_turn_from_minimal_dict_uses_defaults(echo: Any) -> None:
    restored = Turn.from_dict({"tool_name": "echo"})
    assert restored.tool is echo
    assert list(restored.args) == []
    assert restored.kwargs == {}
    assert restored.timeout == 60
    assert restored.tags == frozenset()
    assert restored.hooks == []


async def test_restored_turn_runs_and_fires_restored_hooks(echo: Any) -> None:
    fired: list[tuple[Turn, Any]] = []
    turn = Turn(echo, args=[1], kwargs={"k": "v"})

    @turn.after_run
    async def remember_output(t: Turn, output: Any) -> None:
        fired.append((t, output))

    restored = Turn.from_dict(rt(turn.to_dict()))
    assert await restored.returning() == [[1], {"k": "v"}]
    assert fired == [(restored, [[1], {"k": "v"}])]


async def test_restored_generator_turn_runs() -> None:
    @tool()
    async def stream(n: int) -> Any:
        for i in range(n):
            yield i

    restored = Turn.from_dict(rt(Turn(stream, kwargs={"n": 3}).to_dict()))
    assert [v async for v in restored.yielding()] == [0, 1, 2]


def test_turn_from_dict_resolves_hooks_from_registry(echo: Any) -> None:
    turn = Turn(echo)

    @turn.before_run
    async def my_hook(t: Turn) -> None:
        pass

    data = rt(turn.to_dict())
    HookRegistry.unregister("my_hook")
    with pytest.raises(UnregisteredHookError, match="my_hook"):
        Turn.from_dict(data)

    # whatever is registered under the name now is what the turn gets
    @hook(TurnHook.ON_COMPLETE)
    async def my_hook(t: Turn, reason: StopReason) -> None:  # noqa: F811
        pass

    # Saved under before_run, it comes back firing on BEFORE_RUN for this turn.
    restored = Turn.from_dict(data)
    (only,) = restored.hooks
    assert only.target is my_hook
    assert TurnHook.BEFORE_RUN in only.types


def test_turn_from_dict_resolves_tool_from_registry(echo: Any) -> None:
    data = rt(Turn(echo).to_dict())
    ToolRegistry.unregister("echo")
    with pytest.raises(UnregisteredToolError, match="echo"):
        Turn.from_dict(data)

    @tool()
    async def echo() -> str:  # a new tool under the same name
        return "new"

    assert Turn.from_dict(data).tool is echo


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ([lambda: 1], {}, "args"),
        ([1, print], {}, "args"),
        ([], {"token": lambda: "t"}, "kwargs"),
        ([], {"a": 1, "fn": len}, "kwargs"),
    ],
)
def test_turn_to_dict_writes_callable_arguments_as_they_are_and_from_dict_refuses_them(
    echo: Any, args: Any, kwargs: Any, field: str
) -> None:
    # As the original: to_dict() writes arguments as they are (a dict to inspect, log or copy
    # works); loading is where a callable the run would call is refused.
    turn = Turn(echo, args=args, kwargs=kwargs)
    data = turn.to_dict()
    assert data["args"] == args and data["kwargs"] == kwargs
    with pytest.raises(SerializationError, match="callable") as info:
        Turn.from_dict(data)
    assert field in str(info.value)


def _valid_turn_dict() -> dict[str, Any]:
    return {
        "tool_name": "echo",
        "args": [1],
        "kwargs": {"a": 1},
        "timeout": 5,
        "tags": ["t"],
        "hooks": [],
        "metadata": {
            "start_time": "2024-05-01T12:00:00+00:00",
            "end_time": "2024-05-01T12:00:01+00:00",
            "stop_reason": "completed",
            "trace_context": {"traceparent": "x"},
        },
    }


def _with(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """Return a deep copy of ``base`` with ``path`` set to ``value`` (or removed if _DROP)."""
    data = copy.deepcopy(base)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DROP = object()

TURN_BAD: list[tuple[tuple[str, ...], Any, str]] = [
    (("tool_name",), _DROP, "tool_name"),
    (("tool_name",), 5, "tool_name"),
    (("tool_name",), None, "tool_name"),
    (("tool_name",), True, "tool_name"),
    (("tool_name",), ["echo"], "tool_name"),
    (("tool_name",), {"name": "echo"}, "tool_name"),
    (("args",), "abc", "args"),
    (("args",), {"a": 1}, "args"),
    (("args",), 5, "args"),
    (("args",), None, "args"),
    (("kwargs",), [["a", 1]], "kwargs"),
    (("kwargs",), "a=1", "kwargs"),
    (("kwargs",), 5, "kwargs"),
    (("kwargs",), {1: "x"}, "kwargs"),
    (("kwargs",), {("a",): "x"}, "kwargs"),
    (("timeout",), "5", "timeout"),
    (("timeout",), True, "timeout"),
    (("timeout",), False, "timeout"),
    (("timeout",), [5], "timeout"),
    (("timeout",), {}, "timeout"),
    (("timeout",), 0, "timeout"),
    (("timeout",), -1, "timeout"),
    (("timeout",), -0.5, "timeout"),
    (("tags",), "io", "tags"),
    (("tags",), [1], "tags"),
    (("tags",), {"io": True}, "tags"),
    (("tags",), ["ok", None], "tags"),
    (("hooks",), "my_hook", "hooks"),
    (("hooks",), [1], "hooks"),
    (("hooks",), [None], "hooks"),
    (("hooks",), {"h": 1}, "hooks"),
    (("metadata",), [], "metadata"),
    (("metadata",), "x", "metadata"),
    (("metadata",), 5, "metadata"),
    (("metadata", "start_time"), "yesterday", "start_time"),
    (("metadata", "start_time"), "2024-13-45T00:00:00", "start_time"),
    (("metadata", "start_time"), 1714564800, "start_time"),
    (("metadata", "start_time"), True, "start_time"),
    (("metadata", "end_time"), "not a time", "end_time"),
    (("metadata", "end_time"), ["2024-05-01"], "end_time"),
    (("metadata", "stop_reason"), "exploded", "stop_reason"),
    (("metadata", "stop_reason"), "COMPLETED", "stop_reason"),
    (("metadata", "stop_reason"), 1, "stop_reason"),
    (("metadata", "stop_reason"), ["completed"], "stop_reason"),
    (("metadata", "trace_context"), [], "trace_context"),
    (("metadata", "trace_context"), "traceparent", "trace_context"),
    (("metadata", "trace_context"), {"traceparent": 1}, "trace_context"),
    (("metadata", "trace_context"), {"k": None}, "trace_context"),
]


@pytest.mark.parametrize("data", [None, 1, 2.5, True, "turn", b"turn", [], [_valid_turn_dict()]])
def test_turn_from_dict_not_a_dict(echo: Any, data: Any) -> None:
    with pytest.raises(SerializationError, match="dict"):
        Turn.from_dict(data)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    TURN_BAD,
    ids=[f"{'.'.join(p)}={v!r}" for p, v, _ in TURN_BAD],
)
def test_turn_from_dict_malformed(echo: Any, path: Any, value: Any, field: str) -> None:
    assert Turn.from_dict(_valid_turn_dict()).tool is echo  # the base is valid
    with pytest.raises(SerializationError) as info:
        Turn.from_dict(_with(_valid_turn_dict(), path, value))
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PygentsError)


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"],
)
def test_turn_from_dict_unrepresentable_timestamp(echo: Any, stamp: str) -> None:
    # Valid ISO 8601, but outside what a datetime can hold once converted to UTC: either
    # refuse it up front, or produce a turn whose metadata can be read and saved again.
    data = _with(_valid_turn_dict(), ("metadata", "start_time"), stamp)
    try:
        turn = Turn.from_dict(data)
    except SerializationError as exc:
        assert "start_time" in str(exc)
        return
    turn.metadata.start_time  # noqa: B018 - must not raise
    rt(turn.to_dict())


def test_turn_from_dict_unknown_tool(echo: Any) -> None:
    with pytest.raises(UnregisteredToolError) as info:
        Turn.from_dict(_with(_valid_turn_dict(), ("tool_name",), "nope"))
    assert isinstance(info.value, KeyError) and isinstance(info.value, LookupError)
    assert "nope" in str(info.value)


def test_turn_from_dict_unknown_hook(echo: Any) -> None:
    with pytest.raises(UnregisteredHookError) as info:
        Turn.from_dict(_with(_valid_turn_dict(), ("hooks",), ["ghost_hook"]))
    assert isinstance(info.value, KeyError) and isinstance(info.value, LookupError)
    assert "ghost_hook" in str(info.value)


def test_turn_hostile_tool_names_execute_nothing(echo: Any, marker: Path) -> None:
    for name in hostile_names(marker):
        with pytest.raises(UnregisteredToolError):
            Turn.from_dict(_with(_valid_turn_dict(), ("tool_name",), name))
        with pytest.raises(UnregisteredHookError):
            Turn.from_dict(_with(_valid_turn_dict(), ("hooks",), [name]))
    assert not marker.exists()


def test_turn_from_dict_does_not_mutate_input(echo: Any) -> None:
    data = _valid_turn_dict()
    before = copy.deepcopy(data)
    turn = Turn.from_dict(data)
    turn.kwargs["added"] = 1
    assert data == before


# --------------------------------------------------------------------------- ContextQueue


async def test_context_queue_round_trip() -> None:
    queue = ContextQueue(limit=3, tags=["mem"], name="window")

    @queue.after_append
    async def queue_appended(q: ContextQueue, items: list[Any], current: list[Any]) -> None:
        pass

    await queue.append(
        ContextItem(content="a"),
        ContextItem(content={"b": [1]}),
        ContextItem(content="c", id="cid", description="cd"),
    )
    data = rt(queue.to_dict())
    restored = ContextQueue.from_dict(data)
    assert restored.limit == 3
    assert restored.items == queue.items
    assert restored.tags == frozenset({"mem"})
    assert restored.name == "window"
    assert restored.hooks == [queue_appended]
    assert rt(restored.to_dict()) == data


async def test_restored_context_queue_keeps_limit_and_hooks_fire() -> None:
    evicted: list[Any] = []
    queue = ContextQueue(limit=2)

    @queue.on_evict
    async def queue_evicted(q: ContextQueue, item: ContextItem) -> None:
        evicted.append((q, item))

    await queue.append(ContextItem(content=1), ContextItem(content=2))
    restored = ContextQueue.from_dict(rt(queue.to_dict()))
    await restored.append(ContextItem(content=3))
    assert [i.content for i in restored.items] == [2, 3]
    assert evicted == [(restored, ContextItem(content=1))]
    # the original is independent
    assert [i.content for i in queue.items] == [1, 2]


def test_empty_context_queue_round_trip() -> None:
    restored = ContextQueue.from_dict(rt(ContextQueue(limit=1).to_dict()))
    assert restored.limit == 1
    assert restored.items == []
    assert restored.hooks == []


QUEUE_BASE: dict[str, Any] = {
    "limit": 5,
    "items": [{"id": None, "description": None, "content": "x"}],
    "hooks": [],
    "tags": [],
    "name": None,
}

QUEUE_BAD: list[tuple[tuple[str, ...], Any, str]] = [
    (("limit",), _DROP, "limit"),
    (("limit",), "5", "limit"),
    (("limit",), True, "limit"),
    (("limit",), 0, "limit"),
    (("limit",), -1, "limit"),
    (("limit",), 2.5, "limit"),
    (("limit",), None, "limit"),
    (("limit",), [5], "limit"),
    (("items",), "x", "items"),
    (("items",), {"content": 1}, "items"),
    (("items",), 5, "items"),
    (("items",), [5], "items"),
    (("items",), ["item"], "items"),
    (("items",), [{"id": None}], "content"),
    (("items",), [{"content": 1, "id": 7}], "id"),
    (("items",), [{"content": 1, "description": 7}], "description"),
    (("hooks",), "h", "hooks"),
    (("hooks",), [1], "hooks"),
    (("tags",), "t", "tags"),
    (("tags",), [1], "tags"),
    (("name",), 5, "name"),
    (("name",), ["n"], "name"),
]


@pytest.mark.parametrize("data", [None, 1, "queue", [], [QUEUE_BASE], True])
def test_context_queue_from_dict_not_a_dict(data: Any) -> None:
    with pytest.raises(SerializationError, match="dict"):
        ContextQueue.from_dict(data)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    QUEUE_BAD,
    ids=[f"{'.'.join(p)}={v!r}" for p, v, _ in QUEUE_BAD],
)
def test_context_queue_from_dict_malformed(path: Any, value: Any, field: str) -> None:
    assert len(ContextQueue.from_dict(QUEUE_BASE)) == 1  # the base is valid
    with pytest.raises(SerializationError) as info:
        ContextQueue.from_dict(_with(QUEUE_BASE, path, value))
    assert field in str(info.value)


def test_context_queue_hostile_hook_names(marker: Path) -> None:
    for name in hostile_names(marker):
        with pytest.raises(UnregisteredHookError):
            ContextQueue.from_dict(_with(QUEUE_BASE, ("hooks",), [name]))
    assert not marker.exists()


# --------------------------------------------------------------------------- ContextPool


@pytest.mark.parametrize("limit", [None, 3])
async def test_context_pool_round_trip(limit: Any) -> None:
    pool = ContextPool(limit=limit, tags=["docs"], name="store")

    @pool.after_add
    async def pool_added(p: ContextPool, item: ContextItem) -> None:
        pass

    await pool.add(ContextItem(content={"text": "q3"}, id="doc-1", description="Q3 report"))
    await pool.add(ContextItem(content=[1, 2], id="doc-2", description="numbers"))
    data = rt(pool.to_dict())
    restored = ContextPool.from_dict(data)
    assert restored.limit == limit
    assert restored.items == pool.items
    assert [i.id for i in restored.items] == ["doc-1", "doc-2"]  # order kept
    assert restored.catalogue() == pool.catalogue()
    assert restored["doc-1"] == ContextItem(
        content={"text": "q3"}, id="doc-1", description="Q3 report"
    )
    assert restored.tags == frozenset({"docs"})
    assert restored.name == "store"
    assert restored.hooks == [pool_added]
    assert rt(restored.to_dict()) == data


async def test_restored_context_pool_evicts_oldest_and_fires_hooks() -> None:
    evicted: list[Any] = []
    pool = ContextPool(limit=2)

    @pool.on_evict
    async def pool_evicted(p: ContextPool, item: ContextItem) -> None:
        evicted.append(item.id)

    await pool.add(ContextItem(content=1, id="a", description="A"))
    await pool.add(ContextItem(content=2, id="b", description="B"))
    restored = ContextPool.from_dict(rt(pool.to_dict()))
    await restored.add(ContextItem(content=3, id="c", description="C"))
    assert [i.id for i in restored.items] == ["b", "c"]
    assert evicted == ["a"]


POOL_BASE: dict[str, Any] = {
    "limit": 5,
    "items": [{"id": "a", "description": "A", "content": 1}],
    "hooks": [],
    "tags": [],
    "name": None,
}

POOL_BAD: list[tuple[tuple[str, ...], Any, str]] = [
    (("limit",), "5", "limit"),
    (("limit",), True, "limit"),
    (("limit",), False, "limit"),
    (("limit",), 0, "limit"),
    (("limit",), -3, "limit"),
    (("limit",), 2.5, "limit"),
    (("limit",), [1], "limit"),
    (("items",), "x", "items"),
    (("items",), {"a": {"content": 1}}, "items"),
    (("items",), 5, "items"),
    (("items",), [5], "items"),
    (("items",), [None], "items"),
    (("items",), [{"description": "no id", "content": 1}], "id"),
    (("items",), [{"id": None, "description": "null id", "content": 1}], "id"),
    (("items",), [{"id": 5, "description": "d", "content": 1}], "id"),
    (("items",), [{"id": "a", "description": "d"}], "content"),
    (("hooks",), "h", "hooks"),
    (("hooks",), [1], "hooks"),
    (("tags",), "t", "tags"),
    (("tags",), [None], "tags"),
    (("name",), 5, "name"),
]


@pytest.mark.parametrize("data", [None, 1, "pool", [], [POOL_BASE], True])
def test_context_pool_from_dict_not_a_dict(data: Any) -> None:
    with pytest.raises(SerializationError, match="dict"):
        ContextPool.from_dict(data)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    POOL_BAD,
    ids=[f"{'.'.join(p)}={v!r}" for p, v, _ in POOL_BAD],
)
def test_context_pool_from_dict_malformed(path: Any, value: Any, field: str) -> None:
    assert len(ContextPool.from_dict(POOL_BASE)) == 1  # the base is valid
    with pytest.raises(SerializationError) as info:
        ContextPool.from_dict(_with(POOL_BASE, path, value))
    assert field in str(info.value)


def test_context_pool_hostile_hook_names(marker: Path) -> None:
    for name in hostile_names(marker):
        with pytest.raises(UnregisteredHookError):
            ContextPool.from_dict(_with(POOL_BASE, ("hooks",), [name]))
    assert not marker.exists()


# --------------------------------------------------------------------------- Agent


async def _build_agent(snapshots: list[str]) -> tuple[Agent, Any, Any]:
    @tool()
    async def step(n: int) -> int:
        if n == 1:
            agent = current_agent()
            assert agent is not None
            snapshots.append(json.dumps(agent.to_dict()))
        await asyncio.sleep(0)
        return n * 10

    @tool()
    async def other() -> str:
        return "other"

    agent = Agent(
        "saver",
        "Saves itself mid-run",
        [step, other],
        context_queue=ContextQueue(limit=4, tags=["cq"]),
        context_pool=ContextPool(limit=3, tags=["cp"]),
        tags=["team-a", "x"],
    )
    await agent.context_queue.append(ContextItem(content="system prompt"))
    await agent.context_pool.add(ContextItem(content={"t": 1}, id="doc", description="a doc"))
    await agent.put(Turn(step, kwargs={"n": 1}, timeout=9, tags=["first"]))
    await agent.put(Turn(step, kwargs={"n": 2}))
    await agent.put(Turn("other"))
    return agent, step, other


@pytest.mark.parametrize("forget", ["unregister", "clear"])
async def test_agent_round_trip_mid_run_requeues_current_turn_first(forget: str) -> None:
    snapshots: list[str] = []
    agent, step, other = await _build_agent(snapshots)
    fired: list[tuple[str, Any, Any]] = []

    @agent.after_turn
    async def saver_after_turn(a: Agent, turn: Turn) -> None:
        fired.append(("after_turn", a, turn.tool_name))

    @hook(AgentHook.BEFORE_TURN)
    async def saver_global_before(a: Agent) -> None:
        pass

    agent.hooks.append(saver_global_before)

    results = [value async for _, value in agent.run()]
    assert results == [10, 20, "other"]
    assert len(snapshots) == 1
    fired.clear()

    if forget == "unregister":
        AgentRegistry.unregister("saver")
    else:
        AgentRegistry.clear()

    data = json.loads(snapshots[0])
    assert data["current_turn"] is not None
    assert data["current_turn"]["kwargs"] == {"n": 1}
    assert data["current_turn"]["metadata"]["stop_reason"] is None
    assert data["current_turn"]["metadata"]["start_time"] is not None

    restored = Agent.from_dict(data)
    assert AgentRegistry.get("saver") is restored
    assert restored is not agent
    assert restored.name == "saver"
    assert restored.description == "Saves itself mid-run"
    assert restored.tools == [step, other]
    assert restored.tags == frozenset({"team-a", "x"})
    assert restored.hooks == [saver_after_turn, saver_global_before]
    assert restored.is_paused is False
    assert restored.is_running is False
    assert restored.current_turn is None
    # the turn that was in flight is queued first, then the rest in order
    queued = restored.queue
    assert [(t.tool_name, t.kwargs) for t in queued] == [
        ("step", {"n": 1}),
        ("step", {"n": 2}),
        ("other", {}),
    ]
    assert queued[0].timeout == 9
    assert queued[0].tags == frozenset({"first"})
    assert len(restored) == 3
    # context contents
    assert restored.context_queue.limit == 4
    assert restored.context_queue.tags == frozenset({"cq"})
    assert restored.context_queue.items == [ContextItem(content="system prompt")]
    assert restored.context_pool.limit == 3
    assert restored.context_pool.tags == frozenset({"cp"})
    assert restored.context_pool.items == [
        ContextItem(content={"t": 1}, id="doc", description="a doc")
    ]
    assert restored.context_queue is not agent.context_queue
    assert restored.context_pool is not agent.context_pool

    # the restored agent works
    results = [(turn.tool_name, value) async for turn, value in restored.run()]
    assert results == [("step", 10), ("step", 20), ("other", "other")]
    assert fired == [
        ("after_turn", restored, "step"),
        ("after_turn", restored, "step"),
        ("after_turn", restored, "other"),
    ]
    assert len(restored) == 0


async def test_agent_round_trip_idle_is_stable() -> None:
    snapshots: list[str] = []
    agent, _, _ = await _build_agent(snapshots)
    data = rt(agent.to_dict())
    assert data["current_turn"] is None
    assert set(data) >= {
        "name",
        "description",
        "tool_names",
        "tags",
        "hooks",
        "queue",
        "current_turn",
        "context_queue",
        "context_pool",
        "is_paused",
    }
    AgentRegistry.unregister("saver")
    restored = Agent.from_dict(data)
    assert rt(restored.to_dict()) == data


async def test_agent_round_trip_routes_values_into_restored_context() -> None:
    @tool()
    async def produce() -> Any:
        yield ContextItem(content="note")
        yield ContextItem(content="body", id="k", description="keyed")

    agent = Agent("router", "routes", [produce])
    await agent.put(Turn(produce))
    data = rt(agent.to_dict())
    AgentRegistry.unregister("router")
    restored = Agent.from_dict(data)
    _ = [v async for v in restored.run()]
    assert restored.context_queue.items == [ContextItem(content="note")]
    assert restored.context_pool.get("k") == ContextItem(
        content="body", id="k", description="keyed"
    )


async def test_agent_round_trip_paused_state() -> None:
    @tool()
    async def job() -> str:
        return "ran"

    agent = Agent("sleepy", "pauses", [job])
    await agent.put(Turn(job))
    agent.pause()
    data = rt(agent.to_dict())
    assert data["is_paused"] is True
    AgentRegistry.unregister("sleepy")
    restored = Agent.from_dict(data)
    assert restored.is_paused is True

    results: list[Any] = []

    async def consume() -> None:
        async for _, value in restored.run():
            results.append(value)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    assert results == []  # held at the pause gate
    assert len(restored) == 1
    restored.resume()
    await asyncio.wait_for(task, 1)
    assert results == ["ran"]
    assert restored.is_paused is False


async def test_agent_from_dict_takes_over_the_name_of_an_idle_agent() -> None:
    @tool()
    async def job() -> None:
        pass

    agent = Agent("taken", "d", [job])
    restored = Agent.from_dict(rt(agent.to_dict()))
    assert AgentRegistry.get("taken") is restored


async def test_agent_from_dict_refuses_the_name_of_a_running_agent() -> None:
    @tool()
    async def job() -> None:
        pass

    agent = Agent("busy", "d", [job])
    data = rt(agent.to_dict())
    agent._running = True
    try:
        with pytest.raises(ValueError, match="running"):
            Agent.from_dict(data)
    finally:
        agent._running = False
    assert AgentRegistry.get("busy") is agent


async def test_agent_to_dict_with_a_callable_turn_argument_writes_it_as_it_is() -> None:
    @tool()
    async def job(x: int) -> int:
        return x

    agent = Agent("dyn", "d", [job])
    dynamic = lambda: 1  # noqa: E731
    await agent.put(Turn(job, kwargs={"x": dynamic}))
    agent.pause()  # the original's docs: pause, then to_dict()
    assert agent.to_dict()["queue"][0]["kwargs"] == {"x": dynamic}


async def test_agent_from_dict_resolves_hooks_and_tools_by_name() -> None:
    @tool()
    async def job() -> None:
        pass

    agent = Agent("named", "d", [job])

    @agent.before_turn
    async def named_before(a: Agent) -> None:
        pass

    data = rt(agent.to_dict())
    AgentRegistry.unregister("named")
    HookRegistry.unregister("named_before")
    with pytest.raises(UnregisteredHookError, match="named_before"):
        Agent.from_dict(data)
    ToolRegistry.unregister("job")
    with pytest.raises(UnregisteredToolError, match="job"):
        Agent.from_dict(data)
    # nothing was registered by the failed attempts
    assert AgentRegistry.all() == []


def _agent_base() -> dict[str, Any]:
    turn = {"tool_name": "job", "args": [], "kwargs": {"x": 1}}
    return {
        "name": "restored",
        "description": "d",
        "tool_names": ["job"],
        "tags": ["t"],
        "hooks": [],
        "queue": [dict(turn)],
        "current_turn": dict(turn),
        "context_queue": {"limit": 3, "items": [{"content": "c"}]},
        "context_pool": {"limit": None, "items": [{"id": "i", "description": "D", "content": 1}]},
        "is_paused": False,
    }


TURN_OTHER = {"tool_name": "stranger", "kwargs": {}}

AGENT_BAD: list[tuple[tuple[str, ...], Any, str]] = [
    (("name",), _DROP, "name"),
    (("name",), 5, "name"),
    (("name",), None, "name"),
    (("name",), "", "name"),
    (("name",), ["restored"], "name"),
    (("description",), _DROP, "description"),
    (("description",), 5, "description"),
    (("description",), None, "description"),
    (("tool_names",), "job", "tool_names"),
    (("tool_names",), [5], "tool_names"),
    (("tool_names",), {"job": 1}, "tool_names"),
    (("tags",), "t", "tags"),
    (("tags",), [1], "tags"),
    (("hooks",), "h", "hooks"),
    (("hooks",), [1], "hooks"),
    (("queue",), "x", "queue"),
    (("queue",), {}, "queue"),
    (("queue",), 5, "queue"),
    (("queue",), [5], "queue"),
    (("queue",), [{"kwargs": {}}], "tool_name"),
    (("queue",), [{"tool_name": "job", "timeout": True}], "timeout"),
    (("queue",), [TURN_OTHER], "tool_names"),
    (("current_turn",), 5, "current_turn"),
    (("current_turn",), "job", "current_turn"),
    (("current_turn",), [], "current_turn"),
    (("current_turn",), {"args": []}, "tool_name"),
    (("current_turn",), TURN_OTHER, "tool_names"),
    (("context_queue",), 5, "context_queue"),
    (("context_queue",), "cq", "context_queue"),
    (("context_queue",), [], "context_queue"),
    (("context_queue",), {"items": []}, "limit"),
    (("context_queue",), {"limit": 0}, "limit"),
    (("context_queue",), {"limit": True}, "limit"),
    (("context_pool",), 5, "context_pool"),
    (("context_pool",), [], "context_pool"),
    (("context_pool",), {"limit": -1}, "limit"),
    (("context_pool",), {"items": [{"content": 1, "description": "no id"}]}, "id"),
    (("is_paused",), "yes", "is_paused"),
    (("is_paused",), 1, "is_paused"),
    (("is_paused",), None, "is_paused"),
]


@pytest.fixture
def job_tools() -> tuple[Any, Any]:
    @tool()
    async def job(x: int = 0) -> int:
        return x

    @tool()
    async def stranger() -> None:
        pass

    return job, stranger


@pytest.mark.parametrize("data", [None, 1, "agent", [], [{"name": "a"}], True])
def test_agent_from_dict_not_a_dict(data: Any) -> None:
    with pytest.raises(SerializationError, match="dict"):
        Agent.from_dict(data)


async def test_agent_base_dict_is_valid(job_tools: Any) -> None:
    agent = Agent.from_dict(_agent_base())
    assert [t.kwargs for t in agent.queue] == [{"x": 1}, {"x": 1}]
    assert [v async for _, v in agent.run()] == [1, 1]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    AGENT_BAD,
    ids=[f"{'.'.join(p)}={v!r}" for p, v, _ in AGENT_BAD],
)
def test_agent_from_dict_malformed(job_tools: Any, path: Any, value: Any, field: str) -> None:
    with pytest.raises(SerializationError) as info:
        Agent.from_dict(_with(_agent_base(), path, value))
    assert field in str(info.value)
    assert AgentRegistry.all() == []  # nothing half-built was registered


@pytest.mark.parametrize(
    ("path", "make", "error"),
    [
        (("tool_names",), lambda n: ["job", n], UnregisteredToolError),
        (("queue",), lambda n: [{"tool_name": n}], UnregisteredToolError),
        (("current_turn",), lambda n: {"tool_name": n}, UnregisteredToolError),
        (("hooks",), lambda n: [n], UnregisteredHookError),
        (("queue",), lambda n: [{"tool_name": "job", "hooks": [n]}], UnregisteredHookError),
        (("context_queue",), lambda n: {"limit": 2, "hooks": [n]}, UnregisteredHookError),
        (("context_pool",), lambda n: {"hooks": [n]}, UnregisteredHookError),
    ],
)
def test_agent_hostile_names_execute_nothing(
    job_tools: Any,
    marker: Path,
    path: Any,
    make: Callable[[str], Any],
    error: type[Exception],
) -> None:
    for name in hostile_names(marker):
        with pytest.raises(error) as info:
            Agent.from_dict(_with(_agent_base(), path, make(name)))
        assert isinstance(info.value, KeyError) and isinstance(info.value, LookupError)
    assert not marker.exists()
    assert AgentRegistry.all() == []


def test_hostile_names_are_not_registered_by_lookup(marker: Path) -> None:
    for name in hostile_names(marker):
        with pytest.raises(UnregisteredToolError):
            ToolRegistry.get(name)
        with pytest.raises(UnregisteredHookError):
            HookRegistry.get(name)
    assert ToolRegistry.all() == []
    assert HookRegistry.all() == []
    assert not marker.exists()


# Hook families other than Turn/Agent also resolve by name on restore.
async def test_hooks_of_every_context_family_resolve_by_name() -> None:
    @hook(ContextQueueHook.BEFORE_APPEND)
    async def g_queue_before(q: ContextQueue, incoming: Any, current: Any) -> None:
        pass

    @hook(ContextPoolHook.BEFORE_ADD)
    async def g_pool_before(p: ContextPool, item: ContextItem) -> None:
        pass

    queue = ContextQueue(limit=2, hooks=[g_queue_before])
    pool = ContextPool(hooks=[g_pool_before])
    assert ContextQueue.from_dict(rt(queue.to_dict())).hooks == [g_queue_before]
    assert ContextPool.from_dict(rt(pool.to_dict())).hooks == [g_pool_before]


# --------------------------------------------------------------------------- what to_dict wrote


@dataclasses.dataclass
class Query:
    text: str


def _non_json_values() -> list[Any]:
    return [
        Query("hi"),
        {1, 2},
        b"raw",
        Decimal("1.10"),
        datetime(2024, 5, 1, 12, tzinfo=UTC),
        {1: "int key", (2, 3): "tuple key"},
        ("a", "tuple"),
        {"nested": [Query("deep"), {"fn": print}]},  # a nested callable is never called
    ]


@pytest.mark.parametrize("value", _non_json_values(), ids=lambda v: type(v).__name__)
async def test_turn_round_trips_arguments_and_output_that_are_not_json(
    echo: Any, value: Any
) -> None:
    # These were refused ("holds Query, not JSON data"): they are kept as given now.
    turn = Turn(echo, args=[value], kwargs={"q": value})
    turn.output = value
    restored = Turn.from_dict(turn.to_dict())
    assert restored.args == [value] and restored.args[0] is value
    assert restored.kwargs == {"q": value} and restored.kwargs["q"] is value
    assert restored.output is value
    assert await restored.returning() == [[value], {"q": value}]


async def test_agent_round_trips_turns_and_context_that_are_not_json() -> None:
    @tool()
    async def search(q: Query) -> str:
        return q.text

    agent = Agent("keeps-objects", "d", [search])
    await agent.put(Turn(search, kwargs={"q": Query("hi")}))
    await agent.context_queue.append(ContextItem({"when": datetime(2024, 1, 1, tzinfo=UTC)}))
    await agent.context_pool.add(ContextItem(Decimal("3"), "a number", "n"))
    data = agent.to_dict()
    AgentRegistry.clear()
    restored = Agent.from_dict(data)
    assert restored.turns[0].kwargs == {"q": Query("hi")}
    assert restored.context_queue.items == agent.context_queue.items
    assert restored.context_pool.items == agent.context_pool.items
    assert [value async for _turn, value in restored.run()] == ["hi"]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("args", [1, print], "'args'[1]"),
        ("args", [Query], "'args'[0]"),  # a class is called too
        ("kwargs", {"q": lambda: 1}, "'kwargs'['q']"),
        ("kwargs", {"a": 1, "cls": Query}, "'kwargs'['cls']"),
    ],
)
def test_turn_from_dict_refuses_a_callable_where_the_run_would_call_it(
    echo: Any, field: str, value: Any, path: str
) -> None:
    data = _with(_valid_turn_dict(), (field,), value)
    with pytest.raises(SerializationError, match="callable") as info:
        Turn.from_dict(data)
    assert path in str(info.value)
    assert str(info.value).startswith("Turn.from_dict: field")


async def test_agent_from_dict_refuses_a_callable_argument_of_a_queued_turn() -> None:
    @tool()
    async def job(x: Any = 0) -> Any:
        return x

    data = Agent("callable-args", "d", [job]).to_dict()
    data["queue"] = [{"tool_name": "job", "kwargs": {"x": print}}]
    AgentRegistry.clear()
    with pytest.raises(SerializationError, match=r"'queue'\[0\].*'kwargs'\['x'\].*callable"):
        Agent.from_dict(data)


def test_turn_from_dict_still_checks_the_structure_of_arguments(echo: Any) -> None:
    for field, value in (("args", (1, 2)), ("args", {1}), ("kwargs", {1: "x"})):
        with pytest.raises(SerializationError, match=f"'{field}'"):
            Turn.from_dict(_with(_valid_turn_dict(), (field,), value))


def test_turn_with_a_hook_of_two_families_round_trips(echo: Any) -> None:
    @hook([TurnHook.BEFORE_RUN, AgentHook.AFTER_TURN])
    async def log_events(*args: Any, **kwargs: Any) -> None:
        pass

    turn = Turn(echo)

    @turn.on_complete
    async def done(t: Turn, reason: StopReason) -> None:
        pass

    turn.hooks.append(log_events)
    data = turn.to_dict()
    assert data["hooks"] == {
        "on_complete": ["done"],
        "before_run": ["log_events"],
        "after_turn": ["log_events"],
    }
    # Was: SerializationError "hook type 'after_turn' does not fire on this object".
    for payload in (data, rt(data)):
        restored = Turn.from_dict(payload)
        assert restored.hooks == [done, log_events]
        assert restored.to_dict()["hooks"] == data["hooks"]


async def test_agent_hooks_and_turn_hooks_of_two_families_round_trip() -> None:
    @tool()
    async def job() -> int:
        return 1

    @hook([TurnHook.ON_COMPLETE, AgentHook.AFTER_TURN])
    async def on_both(*args: Any) -> None:
        pass

    @hook([AgentHook.BEFORE_TURN, ContextQueueHook.AFTER_APPEND])
    async def agent_and_queue(*args: Any) -> None:
        pass

    agent = Agent("two-families", "d", [job])
    agent.turn_hooks.append(on_both)
    agent.hooks.append(agent_and_queue)
    data = agent.to_dict()
    assert data["turn_hooks"] == {"on_complete": ["on_both"], "after_turn": ["on_both"]}
    AgentRegistry.clear()
    restored = Agent.from_dict(rt(data))
    assert restored.turn_hooks == [on_both]
    assert restored.hooks == [agent_and_queue]


def test_hooks_come_back_once_each_in_list_order(echo: Any) -> None:
    @hook([TurnHook.BEFORE_RUN, TurnHook.ON_COMPLETE])
    async def first(*args: Any) -> None:
        pass

    @hook(TurnHook.BEFORE_RUN)
    async def second(*args: Any) -> None:
        pass

    @hook([TurnHook.ON_COMPLETE, ContextPoolHook.AFTER_ADD])
    async def third(*args: Any) -> None:
        pass

    turn = Turn(echo)
    turn.hooks.extend([first, second, third])
    assert Turn.from_dict(turn.to_dict()).hooks == [first, second, third]


@pytest.mark.parametrize(
    "hooks",
    [{"before_flight": []}, {"before_flight": ["x"]}, {"before_run": "x"}, {"before_run": [1]}],
)
def test_a_hooks_key_that_is_no_hook_type_or_a_value_not_a_list_of_names_is_refused(
    echo: Any, hooks: Any
) -> None:
    with pytest.raises(SerializationError, match="'hooks'"):
        Turn.from_dict(_with(_valid_turn_dict(), ("hooks",), hooks))
