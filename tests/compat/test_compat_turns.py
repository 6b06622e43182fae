"""The original's turns page, re-enacted: ``docs-0.6.1/concepts/turns.md``.

Sections covered (by heading):

- "Creating and running": tool by name or by object, ``args``/``kwargs``, ``returning()``,
  ``yielding()``, ``UnregisteredToolError``, ``WrongRunMethodError``.
- "Attributes": ``output``, ``tags``, ``metadata`` (a ``TurnMetadata`` of three fields, all
  ``None`` on a fresh turn, assignable while running), ``SafeExecutionError`` and reentrancy.
- "Timeouts": the default of 60 s, ``StopReason`` for each outcome, ``TurnTimeoutError``,
  the timeout covering a whole ``yielding()`` run.
- "Dynamic args and kwargs".
- "Hooks": the five turn hooks, their arguments and order; ``turn.hooks.append``; global
  ``@hook(TurnHook.*)``; a different hook under a taken name.
- "Serialization": ``to_dict()`` / ``from_dict()``, hooks by name, ``UnregisteredHookError``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from pygents import (
    HookRegistry,
    SafeExecutionError,
    StopReason,
    Turn,
    TurnHook,
    TurnMetadata,
    TurnTimeoutError,
    UnregisteredHookError,
    UnregisteredToolError,
    WrongRunMethodError,
    hook,
    tool,
)

# -- Creating and running --------------------------------------------------------------------


async def test_turn_by_name_with_kwargs_and_timeout_returns_the_result():
    @tool()
    async def get_page(address: str) -> str:
        return f"page:{address}"

    turn = Turn("get_page", kwargs={"address": "mirror.invalid"}, timeout=15)
    assert turn.tool is get_page
    assert turn.timeout == 15
    assert await turn.returning() == "page:mirror.invalid"


async def test_turn_by_object_with_positional_args():
    @tool()
    async def get_page(address: str) -> str:
        return f"page:{address}"

    turn = Turn(get_page, args=["mirror.invalid"], timeout=15)
    assert turn.tool is get_page
    assert await turn.returning() == "page:mirror.invalid"


async def test_yielding_streams_each_value():
    @tool()
    async def read_rows(source: str):
        for row in source.split(";"):
            yield row

    assert [r async for r in Turn("read_rows", kwargs={"source": "a;b"}).yielding()] == ["a", "b"]


def test_unknown_tool_name_raises_unregistered_tool_error():
    with pytest.raises(UnregisteredToolError, match="'not_a_tool' not found"):
        Turn("not_a_tool")


async def test_wrong_run_method_raises_both_ways():
    @tool()
    async def single() -> int:
        return 1

    @tool()
    async def stream():
        yield 1

    with pytest.raises(WrongRunMethodError):
        await Turn("stream").returning()
    with pytest.raises(WrongRunMethodError):
        async for _ in Turn("single").yielding():
            pass


# -- Attributes ------------------------------------------------------------------------------


def test_a_fresh_turn_has_no_output_no_tags_and_empty_metadata():
    @tool()
    async def noop() -> None: ...

    turn = Turn("noop")
    assert turn.output is None
    assert turn.tags == frozenset()
    assert turn.metadata.start_time is None
    assert turn.metadata.end_time is None
    assert turn.metadata.stop_reason is None
    assert turn.metadata == TurnMetadata()


def test_turn_tags_are_a_frozenset():
    @tool()
    async def noop() -> None: ...

    assert Turn("noop", tags=["x", "y", "x"]).tags == frozenset({"x", "y"})


async def test_output_is_the_return_value_for_a_coroutine_tool():
    @tool()
    async def square(n: int) -> int:
        return n * n

    turn = Turn("square", args=[6])
    await turn.returning()
    assert turn.output == 36


async def test_output_is_the_list_of_yielded_values_for_a_generator_tool():
    @tool()
    async def evens(limit: int):
        for n in range(0, limit, 2):
            yield n

    turn = Turn("evens", args=[5])
    async for _ in turn.yielding():
        pass
    assert turn.output == [0, 2, 4]


async def test_metadata_records_start_end_and_completed():
    @tool()
    async def noop() -> None: ...

    turn = Turn("noop")
    await turn.returning()
    assert isinstance(turn.metadata.start_time, datetime)
    assert isinstance(turn.metadata.end_time, datetime)
    assert turn.metadata.start_time <= turn.metadata.end_time
    assert turn.metadata.stop_reason is StopReason.COMPLETED


def test_turn_metadata_is_a_value_of_three_fields():
    stamp = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    meta = TurnMetadata(stamp, None, StopReason.ERROR)
    assert meta.start_time == stamp
    assert meta.end_time is None
    assert meta.stop_reason is StopReason.ERROR
    assert meta == TurnMetadata(start_time=stamp, stop_reason=StopReason.ERROR)
    assert meta != TurnMetadata()


async def test_turn_metadata_is_a_dataclass_of_three_fields():
    # The original's turns.md: "A TurnMetadata dataclass with three fields".
    @tool()
    async def echo(x: int) -> int:
        return x

    turn = Turn("echo", kwargs={"x": 1})
    await turn.returning()
    meta = turn.metadata
    assert dataclasses.is_dataclass(meta)
    assert [f.name for f in dataclasses.fields(meta)] == ["start_time", "end_time", "stop_reason"]
    assert dataclasses.asdict(meta) == {
        "start_time": meta.start_time,
        "end_time": meta.end_time,
        "stop_reason": StopReason.COMPLETED,
    }
    copy = dataclasses.replace(meta, stop_reason=StopReason.ERROR)
    assert isinstance(copy, TurnMetadata) and copy.start_time == meta.start_time
    assert (
        copy.stop_reason is StopReason.ERROR and turn.metadata.stop_reason is StopReason.COMPLETED
    )
    match meta:
        case TurnMetadata(start, end, StopReason.COMPLETED):
            assert start is not None and end is not None
        case _:
            pytest.fail("positional match on the three fields")


def test_turn_metadata_keeps_the_datetime_it_was_given():
    # The original stores what it is given; a naive datetime built by user code (the
    # original's own timestamps are naive) must compare equal to itself after the round trip.
    stamp = datetime(2024, 5, 1, 12, 0, 0)
    assert TurnMetadata(start_time=stamp).start_time == stamp


def test_a_turn_keeps_the_metadata_assigned_to_it():
    @tool()
    async def noop() -> None: ...

    stamp = datetime(2024, 5, 1, 12, 0, 0)
    turn = Turn("noop")
    turn.metadata = TurnMetadata(stamp, stamp, StopReason.COMPLETED)
    assert turn.metadata == TurnMetadata(stamp, stamp, StopReason.COMPLETED)


def test_a_turn_saved_by_the_original_keeps_its_naive_timestamps():
    # The original writes naive ISO strings; loading them must give the same datetimes back.
    @tool()
    async def noop() -> None: ...

    data = Turn("noop").to_dict()
    data["metadata"] = {
        "start_time": "2024-05-01T12:00:00.250000",
        "end_time": "2024-05-01T12:00:01.500000",
        "stop_reason": StopReason.COMPLETED.value,
    }
    restored = Turn.from_dict(data)
    assert restored.metadata.start_time == datetime(2024, 5, 1, 12, 0, 0, 250000)
    assert restored.metadata.end_time == datetime(2024, 5, 1, 12, 0, 1, 500000)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("args", [2]), ("kwargs", {"n": 2}), ("timeout", 5), ("tags", ["x"])],
)
async def test_changing_a_fixed_attribute_while_running_raises(attribute: str, value: object):
    errors: list[BaseException] = []

    @tool()
    async def slow(n: int = 0) -> int:
        try:
            setattr(turn, attribute, value)
        except SafeExecutionError as exc:
            errors.append(exc)
        return n

    turn = Turn("slow")
    await turn.returning()
    assert len(errors) == 1
    assert f"Cannot change property '{attribute}' while the turn is running" in str(errors[0])


async def test_changing_the_tool_while_running_raises():
    errors: list[BaseException] = []

    @tool()
    async def other() -> None: ...

    @tool()
    async def slow() -> None:
        try:
            turn.tool = other
        except SafeExecutionError as exc:
            errors.append(exc)

    turn = Turn("slow")
    await turn.returning()
    assert len(errors) == 1
    assert turn.tool is slow


async def test_metadata_can_be_assigned_while_running():
    stamp = datetime(2020, 1, 1)

    @tool()
    async def relabel() -> None:
        turn.metadata = TurnMetadata(start_time=stamp)

    turn = Turn("relabel")
    await turn.returning()  # no SafeExecutionError
    # The framework sets end_time and stop_reason when the turn finishes.
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_running_a_turn_again_while_it_runs_raises():
    errors: list[BaseException] = []

    @tool()
    async def reenter() -> None:
        try:
            await turn.returning()
        except SafeExecutionError as exc:
            errors.append(exc)

    turn = Turn("reenter")
    await turn.returning()
    assert len(errors) == 1


# -- Timeouts --------------------------------------------------------------------------------


def test_every_turn_has_a_60_second_timeout_by_default():
    @tool()
    async def noop() -> None: ...

    assert Turn("noop").timeout == 60


async def test_timeout_raises_and_records_the_stop_reason():
    @tool()
    async def hang() -> None:
        await asyncio.Event().wait()

    turn = Turn("hang", timeout=0.01)
    with pytest.raises(TurnTimeoutError, match=r"timed out after 0\.01s"):
        await turn.returning()
    assert turn.metadata.stop_reason is StopReason.TIMEOUT


async def test_the_timeout_covers_the_whole_yielding_run():
    got: list[int] = []

    @tool()
    async def trickle():
        yield 1
        await asyncio.Event().wait()
        yield 2

    turn = Turn("trickle", timeout=0.01)
    with pytest.raises(TurnTimeoutError):
        async for value in turn.yielding():
            got.append(value)  # noqa: PERF401 - keeps what arrived before the timeout
    assert got == [1]
    assert turn.metadata.stop_reason is StopReason.TIMEOUT


async def test_an_error_records_stop_reason_error():
    @tool()
    async def broken() -> None:
        raise RuntimeError("broken")

    turn = Turn("broken")
    with pytest.raises(RuntimeError):
        await turn.returning()
    assert turn.metadata.stop_reason is StopReason.ERROR


async def test_cancellation_records_stop_reason_cancelled():
    started = asyncio.Event()

    @tool()
    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    turn = Turn("wait_forever")
    task = asyncio.ensure_future(turn.returning())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert turn.metadata.stop_reason is StopReason.CANCELLED


# -- Dynamic args and kwargs -----------------------------------------------------------------


async def test_callables_are_called_when_the_tool_runs_not_when_the_turn_is_made():
    state = {"page": "old", "key": "k0"}

    @tool()
    async def open_page(page: str, key: str) -> str:
        return f"{page}/{key}"

    turn = Turn("open_page", args=[lambda: state["page"]], kwargs={"key": lambda: state["key"]})
    state.update(page="new", key="k1")
    assert await turn.returning() == "new/k1"


# -- Hooks -----------------------------------------------------------------------------------


async def test_turn_hooks_fire_with_their_arguments_on_success():
    events: list[tuple] = []

    @tool()
    async def compute(x: int) -> int:
        return x + 1

    turn = Turn("compute", kwargs={"x": 1})

    @turn.before_run
    async def started(t) -> None:
        events.append(("before_run", t))

    @turn.after_run
    async def finished(t, output) -> None:
        events.append(("after_run", t, output))

    @turn.on_complete
    async def always(t, stop_reason) -> None:
        events.append(("on_complete", t, stop_reason))

    await turn.returning()
    assert events == [
        ("before_run", turn),
        ("after_run", turn, 2),
        ("on_complete", turn, StopReason.COMPLETED),
    ]


async def test_on_error_gets_turn_and_exception_then_on_complete_fires():
    events: list[tuple] = []

    @tool()
    async def explode() -> None:
        raise ArithmeticError("boom")

    turn = Turn("explode")

    @turn.on_error
    async def failed(t, exception) -> None:
        events.append(("on_error", t, type(exception)))

    @turn.on_complete
    async def always(t, stop_reason) -> None:
        events.append(("on_complete", stop_reason))

    with pytest.raises(ArithmeticError):
        await turn.returning()
    assert events == [("on_error", turn, ArithmeticError), ("on_complete", StopReason.ERROR)]


async def test_on_timeout_gets_the_turn_then_on_complete_fires():
    events: list[tuple] = []

    @tool()
    async def hang() -> None:
        await asyncio.Event().wait()

    turn = Turn("hang", timeout=0.01)

    @turn.on_timeout
    async def late(t) -> None:
        events.append(("on_timeout", t))

    @turn.on_error
    async def failed(t, exception) -> None:
        events.append(("on_error",))

    @turn.on_complete
    async def always(t, stop_reason) -> None:
        events.append(("on_complete", stop_reason))

    with pytest.raises(TurnTimeoutError):
        await turn.returning()
    assert events == [("on_timeout", turn), ("on_complete", StopReason.TIMEOUT)]


async def test_a_hook_object_appended_to_turn_hooks_fires():
    seen: list[str] = []

    @tool()
    async def noop() -> None: ...

    async def mark(t) -> None:
        seen.append(t.tool.metadata.name)

    reusable = HookRegistry.wrap(mark, TurnHook.BEFORE_RUN)
    turn = Turn("noop")
    turn.hooks.append(reusable)
    await turn.returning()
    assert seen == ["noop"]


async def test_global_turn_hook_fires_for_every_turn(capsys: pytest.CaptureFixture[str]):
    @tool()
    async def first() -> None: ...

    @tool()
    async def second() -> None: ...

    @hook(TurnHook.BEFORE_RUN)
    async def announce(turn) -> None:
        print(f"Starting {turn.tool.metadata.name}")

    await Turn("first").returning()
    await Turn("second").returning()
    assert capsys.readouterr().out == "Starting first\nStarting second\n"


async def test_an_exception_in_a_turn_hook_propagates():
    @tool()
    async def noop() -> None: ...

    turn = Turn("noop")

    @turn.before_run
    async def veto(t) -> None:
        raise PermissionError("not now")

    with pytest.raises(PermissionError, match="not now"):
        await turn.returning()


def test_a_different_hook_under_a_taken_name_raises_value_error():
    @hook(TurnHook.BEFORE_RUN)
    async def shared_name(turn) -> None: ...

    async def shared_name(turn) -> None:  # noqa: F811 - a different function, same name
        ...

    with pytest.raises(ValueError, match="'shared_name' already registered"):
        hook(TurnHook.AFTER_RUN)(shared_name)


def test_registering_the_same_hook_again_is_allowed():
    @hook(TurnHook.BEFORE_RUN)
    async def only_once(turn) -> None: ...

    HookRegistry.register(only_once)
    assert HookRegistry.get("only_once") is only_once


# -- Serialization ---------------------------------------------------------------------------


async def test_to_dict_has_the_documented_keys_and_iso_datetimes():
    @tool()
    async def add(a: int, b: int) -> int:
        return a + b

    turn = Turn("add", args=[1], kwargs={"b": 2}, timeout=9, tags=["t"])

    @turn.before_run
    async def trace(t) -> None: ...

    await turn.returning()
    data = turn.to_dict()
    assert data["tool_name"] == "add"
    assert data["args"] == [1]
    assert data["kwargs"] == {"b": 2}
    assert data["timeout"] == 9
    assert data["tags"] == ["t"]
    assert data["output"] == 3
    assert data["hooks"] == {"before_run": ["trace"]}
    meta = data["metadata"]
    assert set(meta) == {"start_time", "end_time", "stop_reason"}  # no None-valued extras
    assert datetime.fromisoformat(meta["start_time"]) == turn.metadata.start_time
    assert datetime.fromisoformat(meta["end_time"]) == turn.metadata.end_time
    assert StopReason(meta["stop_reason"]) is StopReason.COMPLETED


async def test_from_dict_restores_the_turn_and_resolves_hooks_by_name():
    @tool()
    async def add(a: int, b: int) -> int:
        return a + b

    turn = Turn("add", args=[1], kwargs={"b": 2}, timeout=9)

    @turn.after_run
    async def check(t, output) -> None: ...

    await turn.returning()
    restored = Turn.from_dict(turn.to_dict())
    assert restored.tool is add
    assert list(restored.args) == [1]
    assert restored.kwargs == {"b": 2}
    assert restored.timeout == 9
    assert restored.output == 3
    assert restored.hooks == [check]
    assert restored.metadata == turn.metadata


def test_from_dict_raises_unregistered_hook_error_for_an_unknown_hook():
    @tool()
    async def noop() -> None: ...

    data = Turn("noop").to_dict()
    data["hooks"] = {"before_run": ["never_defined"]}
    with pytest.raises(UnregisteredHookError):
        Turn.from_dict(data)
