"""Turn: construction, validation, running, timeouts, hooks, immutability, cancellation."""

from __future__ import annotations

import asyncio
import json
import math
import time
import traceback
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pygents import (
    SafeExecutionError,
    StopReason,
    Turn,
    TurnHook,
    TurnTimeoutError,
    UnregisteredToolError,
    WrongRunMethodError,
    current_turn,
    hook,
    tool,
)
from pygents.errors import PygentsError

# --------------------------------------------------------------------------- helpers


def record(turn: Turn) -> list[tuple[Any, ...]]:
    """Attach all five instance hooks to ``turn``; return the list they append to."""
    events: list[tuple[Any, ...]] = []

    @turn.before_run
    async def rec_before_run(t: Turn) -> None:
        events.append(("before_run", t))

    @turn.after_run
    async def rec_after_run(t: Turn, output: Any) -> None:
        events.append(("after_run", t, output))

    @turn.on_timeout
    async def rec_on_timeout(t: Turn) -> None:
        events.append(("on_timeout", t))

    @turn.on_error
    async def rec_on_error(t: Turn, exc: BaseException) -> None:
        events.append(("on_error", t, exc))

    @turn.on_complete
    async def rec_on_complete(t: Turn, stop_reason: StopReason) -> None:
        events.append(("on_complete", t, stop_reason))

    return events


def names(events: list[tuple[Any, ...]]) -> list[str]:
    return [e[0] for e in events]


async def run(turn: Turn) -> Any:
    """Run ``turn`` with the right method; a generator turn returns its list of values."""
    if turn.tool.is_generator:
        async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
            return [v async for v in stream]
    return await turn.returning()


@pytest.fixture
def echo() -> Any:
    @tool()
    async def echo(*args: Any, **kwargs: Any) -> Any:
        return (list(args), kwargs)

    return echo


@pytest.fixture
def count() -> Any:
    @tool()
    async def count(n: int = 3) -> Any:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    return count


# --------------------------------------------------------------------------- construction


def test_construct_by_name_resolves_registered_tool(echo: Any) -> None:
    turn = Turn("echo")
    assert turn.tool is echo
    assert turn.tool_name == "echo"


def test_construct_by_tool_object(echo: Any) -> None:
    turn = Turn(echo, args=[1], kwargs={"a": 2})
    assert turn.tool is echo
    assert turn.tool_name == "echo"
    assert list(turn.args) == [1]
    assert turn.kwargs == {"a": 2}


def test_construct_unknown_name_raises_unregistered_tool_error() -> None:
    with pytest.raises(UnregisteredToolError, match="nope"):
        Turn("nope")


def test_unknown_name_error_carries_no_lookup_internals() -> None:
    # The name is looked up in a try block: the error must not arrive chained to a KeyError
    # ("During handling of the above exception, another exception occurred").
    with pytest.raises(UnregisteredToolError) as info:
        Turn("nope")
    shown = "".join(traceback.format_exception(info.value))
    assert "KeyError" not in shown and "During handling" not in shown


def test_unregistered_tool_error_is_lookup_error() -> None:
    with pytest.raises(LookupError):
        Turn("nope")


def test_construct_with_undecorated_function_raises_type_error() -> None:
    async def plain() -> int:
        return 1

    with pytest.raises(TypeError):
        Turn(plain)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [5, None, object(), ["echo"]])
def test_construct_with_non_tool_raises_type_error(echo: Any, bad: Any) -> None:
    with pytest.raises(TypeError):
        Turn(bad)


def test_defaults(echo: Any) -> None:
    turn = Turn(echo)
    assert turn.timeout == 60
    assert list(turn.args) == []
    assert turn.kwargs == {}
    assert turn.tags == frozenset()
    assert turn.hooks == []
    assert turn.output is None
    assert turn.is_running is False
    meta = turn.metadata
    assert meta.start_time is None
    assert meta.end_time is None
    assert meta.duration is None
    assert meta.stop_reason is None


def test_tags_stored_as_frozenset(echo: Any) -> None:
    assert Turn(echo, tags=["a", "b", "a"]).tags == frozenset({"a", "b"})


async def test_args_default_to_a_fresh_list(echo: Any) -> None:
    # The documented default is ``args=[]`` (it was ``()``).
    first, second = Turn(echo), Turn("echo")
    assert first.args == [] and type(first.args) is list
    assert first.args + [3] == [3]  # noqa: RUF005 - the point: it is a list
    assert first.args is not second.args
    first.args.append(1)
    assert second.args == []
    assert Turn.from_dict(first.to_dict()).args == first.args == [1]
    assert Turn.from_dict(second.to_dict()).args == second.args == []
    assert await second.returning() == ([], {})
    assert await first.returning() == ([1], {})
    # An empty tuple given reads as a list of the turn's own too; other values as given.
    assert Turn(echo, args=()).args == [] and type(Turn(echo, args=()).args) is list
    given = [1, 2]
    assert Turn(echo, args=given).args is given
    assert Turn(echo, args=(1,)).args == (1,)


def test_tags_assignment_converts_like_the_constructor(echo: Any) -> None:
    turn = Turn(echo)
    turn.tags = ["x", "y", "x"]
    assert turn.tags == frozenset({"x", "y"}) and type(turn.tags) is frozenset
    turn.tags = ("z",)
    assert turn.tags == frozenset({"z"})
    turn.tags = None
    assert turn.tags == frozenset()
    turn.tags = frozenset({"io"})
    # A bare string is refused, as by the constructor (it would be a set of characters).
    for wrong in ("io", ["ok", 1], 5):
        with pytest.raises(TypeError, match="tags"):
            turn.tags = wrong
        with pytest.raises(TypeError, match="tags"):
            Turn(echo, tags=wrong)
    assert turn.tags == frozenset({"io"})


async def test_assigned_tags_filter_global_hooks(echo: Any) -> None:
    seen: list[Turn] = []

    @hook(TurnHook.BEFORE_RUN, tags={"io"})
    async def io_only(t: Turn) -> None:
        seen.append(t)

    turn = Turn(echo, tags=["i", "o"])
    await turn.returning()
    assert seen == []
    turn.tags = ["io"]
    await turn.returning()
    assert seen == [turn]


@pytest.mark.parametrize("timeout", [None, 0.01, 1, 2.5, 60, 3600])
def test_valid_timeouts_accepted(echo: Any, timeout: Any) -> None:
    assert Turn(echo, timeout=timeout).timeout == timeout


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -0.5])
def test_non_positive_timeout_raises_value_error(echo: Any, timeout: Any) -> None:
    with pytest.raises(ValueError):
        Turn(echo, timeout=timeout)


@pytest.mark.parametrize("timeout", ["5", [5], {"s": 5}, object()])
def test_non_number_timeout_raises_type_error(echo: Any, timeout: Any) -> None:
    with pytest.raises(TypeError):
        Turn(echo, timeout=timeout)


def test_timeout_setter_validates(echo: Any) -> None:
    turn = Turn(echo)
    with pytest.raises(ValueError):
        turn.timeout = 0
    with pytest.raises(TypeError):
        turn.timeout = "5"  # type: ignore[assignment]
    assert turn.timeout == 60
    turn.timeout = None
    assert turn.timeout is None
    turn.timeout = 1.5
    assert turn.timeout == 1.5


@pytest.mark.parametrize("timeout", [10**400, 2**1024], ids=["10**400", "2**1024"])
def test_timeout_no_timer_can_use_is_refused(echo: Any, timeout: int) -> None:
    # Accepted before, it failed only at run time, with OverflowError inside asyncio.
    with pytest.raises(ValueError, match=r"a timer can use.*None for no deadline"):
        Turn(echo, timeout=timeout)
    turn = Turn(echo)
    with pytest.raises(ValueError, match="a timer can use"):
        turn.timeout = timeout
    assert turn.timeout == 60


def test_largest_usable_int_timeout_is_accepted(echo: Any) -> None:
    assert Turn(echo, timeout=10**308).timeout == 10**308


async def test_infinite_timeout_means_no_deadline_and_round_trips(echo: Any) -> None:
    turn = Turn(echo, kwargs={"text": "hi"}, timeout=math.inf)
    assert await turn.returning() == ([], {"text": "hi"})
    data = turn.to_dict()
    assert data["timeout"] is None  # written as None: the same meaning, and JSON has no inf
    restored = Turn.from_dict(json.loads(json.dumps(data)))
    assert restored.timeout is None


@pytest.mark.parametrize("args", [[], [1, 2], (1, 2), ()])
def test_args_list_or_tuple_accepted(echo: Any, args: Any) -> None:
    assert list(Turn(echo, args=args).args) == list(args)


@pytest.mark.parametrize("args", ["abc", 5, {"a": 1}, {1, 2}])
def test_bad_args_type_raises_type_error(echo: Any, args: Any) -> None:
    with pytest.raises(TypeError):
        Turn(echo, args=args)


@pytest.mark.parametrize("kwargs", [[("a", 1)], "a=1", 5, ("a", 1)])
def test_bad_kwargs_type_raises_type_error(echo: Any, kwargs: Any) -> None:
    with pytest.raises(TypeError):
        Turn(echo, kwargs=kwargs)


def test_kwargs_with_non_string_keys_raises_type_error(echo: Any) -> None:
    # The kwargs setter rejects non-string keys; the constructor must do the same
    # instead of failing later, at run time, inside the tool call.
    with pytest.raises(TypeError):
        Turn(echo, kwargs={1: "x"})  # type: ignore[dict-item]


async def test_kwargs_keys_of_a_str_subclass_are_strings_to_the_constructor_and_setter() -> None:
    # As the kwargs setter has them (and a call with **kwargs): an enum's str members too.
    class Key(str):
        pass

    @tool()
    async def named(x: int) -> int:
        return x * 2

    built = Turn(named, kwargs={Key("x"): 4})
    assigned = Turn(named)
    assigned.kwargs = {Key("x"): 4}
    assert await built.returning() == await assigned.returning() == 8


def test_args_kwargs_setters_validate(echo: Any) -> None:
    turn = Turn(echo)
    with pytest.raises(TypeError):
        turn.args = "abc"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        turn.kwargs = [("a", 1)]  # type: ignore[assignment]
    with pytest.raises(TypeError):
        turn.kwargs = {1: "x"}  # type: ignore[dict-item]
    turn.args = [7]
    turn.kwargs = {"k": 8}
    assert list(turn.args) == [7]
    assert turn.kwargs == {"k": 8}


def test_tool_setter_by_name_and_object(echo: Any, count: Any) -> None:
    turn = Turn(echo)
    turn.tool = "count"  # type: ignore[assignment]
    assert turn.tool is count
    assert turn.tool_name == "count"
    turn.tool = echo
    assert turn.tool_name == "echo"
    with pytest.raises(UnregisteredToolError):
        turn.tool = "nope"  # type: ignore[assignment]
    assert turn.tool is echo


# --------------------------------------------------------------------------- run methods


async def test_returning_returns_value_and_sets_output(echo: Any) -> None:
    turn = Turn(echo, args=[1, 2], kwargs={"k": "v"})
    result = await turn.returning()
    assert result == ([1, 2], {"k": "v"})
    assert turn.output == ([1, 2], {"k": "v"})
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_yielding_streams_values_and_output_is_list(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 4})
    seen = []
    async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
        async for value in stream:
            seen.append(value)
            # output grows as values are produced
            assert turn.output == seen
    assert seen == [0, 1, 2, 3]
    assert turn.output == [0, 1, 2, 3]
    assert isinstance(turn.output, list)
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_yielding_empty_generator(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 0})
    assert await run(turn) == []
    assert turn.output == []
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_returning_on_generator_tool_raises_wrong_run_method(count: Any) -> None:
    turn = Turn(count)
    with pytest.raises(WrongRunMethodError):
        await turn.returning()
    assert turn.is_running is False
    assert turn.metadata.stop_reason is None


def test_yielding_on_coroutine_tool_raises_wrong_run_method(echo: Any) -> None:
    turn = Turn(echo)
    with pytest.raises(WrongRunMethodError):
        turn.yielding()
    assert turn.is_running is False


def test_wrong_run_method_error_is_type_error_and_pygents_error() -> None:
    assert issubclass(WrongRunMethodError, TypeError)
    assert issubclass(WrongRunMethodError, PygentsError)


# --------------------------------------------------------------------------- dynamic args


async def test_dynamic_args_and_kwargs_evaluated_at_run_time_each_run(echo: Any) -> None:
    calls = {"a": 0, "k": 0}

    def next_a() -> int:
        calls["a"] += 1
        return calls["a"] * 10

    def next_k() -> str:
        calls["k"] += 1
        return f"k{calls['k']}"

    turn = Turn(echo, args=[next_a, "static"], kwargs={"k": next_k, "plain": 5})
    assert calls == {"a": 0, "k": 0}  # not evaluated at construction
    assert await turn.returning() == ([10, "static"], {"k": "k1", "plain": 5})
    assert await turn.returning() == ([20, "static"], {"k": "k2", "plain": 5})
    assert calls == {"a": 2, "k": 2}
    # the turn keeps the callables, not the evaluated values
    assert turn.args[0] is next_a
    assert turn.kwargs["k"] is next_k


async def test_dynamic_args_read_current_state(echo: Any) -> None:
    config = {"retries": 1}
    turn = Turn(echo, kwargs={"retries": lambda: config["retries"]})
    config["retries"] = 3
    assert await turn.returning() == ([], {"retries": 3})


async def test_dynamic_args_for_generator_tool() -> None:
    @tool()
    async def repeat(value: Any, times: int) -> Any:
        for _ in range(times):
            yield value

    n = {"v": 0}

    def bump() -> int:
        n["v"] += 1
        return n["v"]

    turn = Turn(repeat, args=[bump], kwargs={"times": lambda: 2})
    assert n["v"] == 0
    assert await run(turn) == [1, 1]
    assert await run(turn) == [2, 2]


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("kind", ["coroutine", "generator"])
async def test_metadata_times_are_utc_and_duration_matches(kind: str) -> None:
    if kind == "coroutine":

        @tool()
        async def work() -> int:
            await asyncio.sleep(0.05)
            return 1
    else:

        @tool()
        async def work() -> Any:  # type: ignore[misc]
            await asyncio.sleep(0.05)
            yield 1

    turn = Turn(work)
    before = datetime.now(UTC)
    await run(turn)
    after = datetime.now(UTC)
    meta = turn.metadata
    assert isinstance(meta.start_time, datetime)
    assert isinstance(meta.end_time, datetime)
    assert meta.start_time.utcoffset() == timedelta(0)
    assert meta.end_time.utcoffset() == timedelta(0)
    slack = timedelta(milliseconds=50)
    assert before - slack <= meta.start_time <= meta.end_time <= after + slack
    assert meta.duration is not None
    assert meta.duration == pytest.approx(
        (meta.end_time - meta.start_time).total_seconds(), abs=1e-5
    )
    assert 0.04 <= meta.duration < 0.5
    assert meta.stop_reason is StopReason.COMPLETED


async def test_metadata_dict_is_plain(echo: Any) -> None:
    turn = Turn(echo)
    await turn.returning()
    d = turn.metadata.dict()
    assert d["stop_reason"] == "completed"
    assert datetime.fromisoformat(d["start_time"]) == turn.metadata.start_time
    assert datetime.fromisoformat(d["end_time"]) == turn.metadata.end_time


async def test_start_time_set_while_running_and_end_time_cleared() -> None:
    seen: dict[str, Any] = {}

    @tool()
    async def peek() -> None:
        t = current_turn()
        assert t is not None
        seen["start"] = t.metadata.start_time
        seen["end"] = t.metadata.end_time
        seen["reason"] = t.metadata.stop_reason
        seen["running"] = t.is_running

    turn = Turn(peek)
    await turn.returning()
    assert seen["start"] is not None
    assert seen["end"] is None
    assert seen["reason"] is None
    assert seen["running"] is True
    assert turn.is_running is False


@pytest.mark.parametrize("kind", ["coroutine", "generator"])
async def test_stop_reason_error_when_tool_raises(kind: str) -> None:
    boom = RuntimeError("boom")
    if kind == "coroutine":

        @tool()
        async def bad() -> None:
            await asyncio.sleep(0)
            raise boom
    else:

        @tool()
        async def bad() -> Any:  # type: ignore[misc]
            yield 1
            raise boom

    turn = Turn(bad)
    events = record(turn)
    with pytest.raises(RuntimeError) as info:
        await run(turn)
    assert info.value is boom
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert turn.metadata.end_time is not None
    assert turn.is_running is False
    assert events == [
        ("before_run", turn),
        ("on_error", turn, boom),
        ("on_complete", turn, StopReason.ERROR),
    ]


# --------------------------------------------------------------------------- timeouts


async def test_coroutine_timeout() -> None:
    @tool()
    async def slow() -> None:
        await asyncio.sleep(5)

    turn = Turn(slow, timeout=0.05)
    events = record(turn)
    started = time.monotonic()
    with pytest.raises(TurnTimeoutError) as info:
        await turn.returning()
    assert time.monotonic() - started < 1
    err = info.value
    assert isinstance(err, TimeoutError)
    assert isinstance(err, PygentsError)
    assert err.turn is turn
    assert turn.metadata.stop_reason is StopReason.TIMEOUT
    assert turn.is_running is False
    assert events == [
        ("before_run", turn),
        ("on_timeout", turn),
        ("on_complete", turn, StopReason.TIMEOUT),
    ]


async def test_timeout_error_can_be_caught_as_builtin_timeout_error() -> None:
    @tool()
    async def slow() -> None:
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        await Turn(slow, timeout=0.05).returning()


async def test_generator_timeout_keeps_partial_output() -> None:
    @tool()
    async def stalls() -> Any:
        yield 1
        await asyncio.sleep(5)
        yield 2

    turn = Turn(stalls, timeout=0.05)
    events = record(turn)
    seen = []
    with pytest.raises(TurnTimeoutError) as info:
        async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
            async for value in stream:
                seen.append(value)  # noqa: PERF401 - keeps values seen before the error
    assert info.value.turn is turn
    assert isinstance(info.value, TimeoutError)
    assert seen == [1]
    assert turn.output == [1]
    assert turn.metadata.stop_reason is StopReason.TIMEOUT
    assert turn.is_running is False
    assert events == [
        ("before_run", turn),
        ("on_timeout", turn),
        ("on_complete", turn, StopReason.TIMEOUT),
    ]


async def test_generator_timeout_is_cumulative_over_tool_steps() -> None:
    # Each step (0.1 s) fits in the timeout (0.15 s) alone, but two do not.
    @tool()
    async def steady() -> Any:
        for i in range(3):
            await asyncio.sleep(0.1)
            yield i

    turn = Turn(steady, timeout=0.15)
    seen = []
    with pytest.raises(TurnTimeoutError):
        async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
            async for value in stream:
                seen.append(value)  # noqa: PERF401 - keeps values seen before the error
    assert seen == [0]
    assert turn.metadata.stop_reason is StopReason.TIMEOUT


async def test_generator_timeout_ignores_consumer_time() -> None:
    @tool()
    async def fast() -> Any:
        for i in range(2):
            await asyncio.sleep(0)
            yield i

    turn = Turn(fast, timeout=0.05)
    seen = []
    async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
        async for value in stream:
            seen.append(value)
            await asyncio.sleep(0.1)  # the consumer is slow, not the tool
    assert seen == [0, 1]
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_coroutine_tool_that_never_suspends_is_not_timed_out() -> None:
    @tool()
    async def blocking() -> str:
        time.sleep(0.15)  # noqa: ASYNC251 - deliberately never suspends
        return "done"

    turn = Turn(blocking, timeout=0.05)
    assert await turn.returning() == "done"
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_generator_tool_that_never_suspends_is_not_timed_out() -> None:
    @tool()
    async def blocking() -> Any:
        for i in range(2):
            time.sleep(0.08)  # noqa: ASYNC251 - deliberately never suspends
            yield i

    turn = Turn(blocking, timeout=0.05)
    assert await run(turn) == [0, 1]
    assert turn.metadata.stop_reason is StopReason.COMPLETED


@pytest.mark.parametrize("suspend_first", [False, True])
async def test_tool_raising_timeout_error_itself_is_error_not_timeout(suspend_first: bool) -> None:
    own = TimeoutError("tool's own timeout")

    @tool()
    async def flaky() -> None:
        if suspend_first:
            await asyncio.sleep(0.01)
        raise own

    turn = Turn(flaky, timeout=5)
    events = record(turn)
    with pytest.raises(TimeoutError) as info:
        await turn.returning()
    assert info.value is own
    assert not isinstance(info.value, TurnTimeoutError)
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert names(events) == ["before_run", "on_error", "on_complete"]
    assert events[1][2] is own


async def test_generator_tool_raising_timeout_error_itself_is_error() -> None:
    @tool()
    async def flaky() -> Any:
        yield 1
        await asyncio.sleep(0.01)
        raise TimeoutError("mine")

    turn = Turn(flaky, timeout=5)
    events = record(turn)
    with pytest.raises(TimeoutError):
        await run(turn)
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert names(events) == ["before_run", "on_error", "on_complete"]


@pytest.mark.parametrize("outer_timeout", [5, None])
async def test_nested_turn_timeout_makes_outer_turn_error(outer_timeout: Any) -> None:
    @tool()
    async def inner_slow() -> None:
        await asyncio.sleep(5)

    inner = Turn(inner_slow, timeout=0.05)

    @tool()
    async def outer_tool() -> None:
        await inner.returning()

    outer = Turn(outer_tool, timeout=outer_timeout)
    events = record(outer)
    with pytest.raises(TurnTimeoutError) as info:
        await outer.returning()
    assert info.value.turn is inner
    assert inner.metadata.stop_reason is StopReason.TIMEOUT
    assert outer.metadata.stop_reason is StopReason.ERROR
    assert names(events) == ["before_run", "on_error", "on_complete"]
    assert events[1][2] is info.value
    assert events[2][2] is StopReason.ERROR


async def test_nested_turn_timeout_inside_generator_tool_makes_outer_error() -> None:
    @tool()
    async def inner_slow() -> None:
        await asyncio.sleep(5)

    @tool()
    async def outer_gen() -> Any:
        yield 0
        await Turn(inner_slow, timeout=0.05).returning()
        yield 1

    outer = Turn(outer_gen, timeout=5)
    events = record(outer)
    with pytest.raises(TurnTimeoutError):
        await run(outer)
    assert outer.metadata.stop_reason is StopReason.ERROR
    assert names(events) == ["before_run", "on_error", "on_complete"]


async def test_turn_can_run_again_after_timeout() -> None:
    delay = {"s": 5.0}

    @tool()
    async def sometimes_slow() -> str:
        await asyncio.sleep(delay["s"])
        return "ok"

    turn = Turn(sometimes_slow, timeout=0.05)
    with pytest.raises(TurnTimeoutError):
        await turn.returning()
    delay["s"] = 0
    assert await turn.returning() == "ok"
    assert turn.metadata.stop_reason is StopReason.COMPLETED


# --------------------------------------------------------------------------- hooks


async def test_hooks_on_success_exact_args_and_order(echo: Any) -> None:
    turn = Turn(echo, args=[1])
    events = record(turn)
    result = await turn.returning()
    assert events == [
        ("before_run", turn),
        ("after_run", turn, result),
        ("on_complete", turn, StopReason.COMPLETED),
    ]
    assert events[1][2] == ([1], {})


async def test_hooks_on_success_generator_after_run_gets_list(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 2})
    events = record(turn)
    await run(turn)
    assert events == [
        ("before_run", turn),
        ("after_run", turn, [0, 1]),
        ("on_complete", turn, StopReason.COMPLETED),
    ]


async def test_before_run_fires_before_tool_and_after_run_after() -> None:
    order: list[str] = []

    @tool()
    async def work() -> str:
        order.append("tool")
        return "v"

    turn = Turn(work)

    @turn.before_run
    async def b(t: Turn) -> None:
        order.append("before_run")

    @turn.after_run
    async def a(t: Turn, output: Any) -> None:
        order.append("after_run")

    @turn.on_complete
    async def c(t: Turn, reason: StopReason) -> None:
        order.append("on_complete")
        # stop reason and end time are already set when on_complete fires
        assert t.metadata.stop_reason is reason
        assert t.metadata.end_time is not None
        assert t.is_running is False

    await turn.returning()
    assert order == ["before_run", "tool", "after_run", "on_complete"]


async def test_instance_hooks_fire_before_global_hooks(echo: Any) -> None:
    order: list[str] = []

    @hook(TurnHook.BEFORE_RUN)
    async def global_before_run(t: Turn) -> None:
        order.append("global")

    turn = Turn(echo)

    @turn.before_run
    async def local_before_run(t: Turn) -> None:
        order.append("instance")

    await turn.returning()
    assert order == ["instance", "global"]


async def test_global_hook_with_tags_fires_only_for_matching_turns(echo: Any) -> None:
    seen: list[Turn] = []

    @hook(TurnHook.ON_COMPLETE, tags={"io"})
    async def io_complete(t: Turn, reason: StopReason) -> None:
        seen.append(t)

    tagged = Turn(echo, tags=["io", "x"])
    untagged = Turn(echo)
    other = Turn(echo, tags=["cpu"])
    for t in (tagged, untagged, other):
        await t.returning()
    assert seen == [tagged]


async def test_hook_in_instance_list_and_global_fires_once(echo: Any) -> None:
    calls: list[Turn] = []

    @hook(TurnHook.BEFORE_RUN)
    async def shared_before(t: Turn) -> None:
        calls.append(t)

    turn = Turn(echo)
    turn.hooks.append(shared_before)
    await turn.returning()
    assert calls == [turn]


@pytest.mark.parametrize("kind", ["coroutine", "generator"])
async def test_before_run_veto_means_error_and_tool_not_called(kind: str) -> None:
    called = []
    if kind == "coroutine":

        @tool()
        async def guarded() -> None:
            called.append(1)
    else:

        @tool()
        async def guarded() -> Any:  # type: ignore[misc]
            called.append(1)
            yield 1

    turn = Turn(guarded)
    events = record(turn)
    veto = PermissionError("no")

    @turn.before_run
    async def vetoer(t: Turn) -> None:
        raise veto

    with pytest.raises(PermissionError) as info:
        await run(turn)
    assert info.value is veto
    assert called == []
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert turn.is_running is False
    # the recorder's before_run was attached first, so it ran before the veto
    assert events == [
        ("before_run", turn),
        ("on_error", turn, veto),
        ("on_complete", turn, StopReason.ERROR),
    ]


@pytest.mark.parametrize("kind", ["coroutine", "generator"])
async def test_after_run_raising_makes_turn_error(kind: str) -> None:
    if kind == "coroutine":

        @tool()
        async def fine() -> int:
            return 42
    else:

        @tool()
        async def fine() -> Any:  # type: ignore[misc]
            yield 42

    turn = Turn(fine)
    failure = ValueError("after_run failed")

    @turn.after_run
    async def failing_after(t: Turn, output: Any) -> None:
        raise failure

    events = record(turn)
    with pytest.raises(ValueError) as info:
        await run(turn)
    assert info.value is failure
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert events == [
        ("before_run", turn),
        ("on_error", turn, failure),
        ("on_complete", turn, StopReason.ERROR),
    ]


async def test_on_error_does_not_fire_on_success_and_on_timeout_not_on_error() -> None:
    @tool()
    async def bad() -> None:
        raise KeyError("x")

    turn = Turn(bad)
    events = record(turn)
    with pytest.raises(KeyError):
        await turn.returning()
    assert "on_timeout" not in names(events)
    assert "after_run" not in names(events)


async def test_on_complete_raising_propagates_after_success(echo: Any) -> None:
    turn = Turn(echo)

    @turn.on_complete
    async def broken_complete(t: Turn, reason: StopReason) -> None:
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        await turn.returning()
    assert turn.is_running is False
    # the turn can still be run again
    turn.hooks.clear()
    await turn.returning()
    assert turn.metadata.stop_reason is StopReason.COMPLETED


# --------------------------------------------------------------------------- immutability


async def test_changing_guarded_attributes_inside_running_turn_raises(echo: Any) -> None:
    new_start = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)

    @tool()
    async def mutate() -> dict[str, str]:
        t = current_turn()
        assert t is not None
        outcome: dict[str, str] = {}
        for attr, value in (
            ("tool", echo),
            ("tool", "echo"),
            ("args", [1]),
            ("kwargs", {"a": 1}),
            ("timeout", 5),
            ("timeout", None),
            ("tags", ["x"]),
        ):
            try:
                setattr(t, attr, value)
            except SafeExecutionError:
                outcome[f"{attr}={value!r}"] = "refused"
            else:
                outcome[f"{attr}={value!r}"] = "allowed"
        # metadata stays writable while running
        t.metadata.trace_context = {"traceparent": "00-abc-def-01"}
        t.metadata.start_time = new_start
        return outcome

    turn = Turn(mutate, args=(), kwargs={}, timeout=30, tags=["t"])
    outcome = await turn.returning()
    assert set(outcome.values()) == {"refused"}, outcome
    assert turn.tool is mutate
    assert list(turn.args) == []
    assert turn.kwargs == {}
    assert turn.timeout == 30
    assert turn.tags == frozenset({"t"})
    assert turn.metadata.trace_context == {"traceparent": "00-abc-def-01"}
    assert turn.metadata.start_time == new_start
    # not running any more: the attributes can change again
    turn.timeout = 10
    turn.args = [1]
    assert turn.timeout == 10


async def test_tags_cannot_change_while_running_and_hooks_can(echo: Any) -> None:
    # ``tags`` was assignable while running. ``hooks`` is not guarded (the documents list
    # tool, args, kwargs, timeout and tags as fixed while running).
    turn = Turn(echo, tags=["before"])

    @turn.before_run
    async def try_changes(t: Turn) -> None:
        with pytest.raises(
            SafeExecutionError, match="Cannot change property 'tags' while the turn is running"
        ):
            t.tags = ["during"]
        t.hooks = list(t.hooks)

    await turn.returning()
    assert turn.tags == frozenset({"before"})
    assert turn.hooks == [try_changes]
    turn.tags = ["after"]
    assert turn.tags == frozenset({"after"})


async def test_changing_args_of_streaming_turn_between_values_raises(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 3})
    async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
        async for _ in stream:
            assert turn.is_running is True
            with pytest.raises(SafeExecutionError):
                turn.kwargs = {"n": 1}
            with pytest.raises(SafeExecutionError):
                turn.timeout = 1
            turn.metadata.trace_context = {"k": "v"}
    assert turn.kwargs == {"n": 3}
    assert turn.output == [0, 1, 2]
    assert turn.metadata.trace_context == {"k": "v"}


async def test_safe_execution_error_is_runtime_error() -> None:
    assert issubclass(SafeExecutionError, RuntimeError)
    assert issubclass(SafeExecutionError, PygentsError)


async def test_running_same_coroutine_turn_concurrently_raises() -> None:
    gate = asyncio.Event()

    @tool()
    async def wait_gate() -> str:
        await gate.wait()
        return "done"

    turn = Turn(wait_gate)
    first = asyncio.create_task(turn.returning())
    await asyncio.sleep(0.01)
    assert turn.is_running is True
    with pytest.raises(SafeExecutionError):
        await turn.returning()
    # the refused attempt did not disturb the running one
    assert turn.is_running is True
    assert turn.metadata.stop_reason is None
    gate.set()
    assert await first == "done"
    assert turn.metadata.stop_reason is StopReason.COMPLETED
    assert turn.is_running is False


async def test_running_same_generator_turn_concurrently_raises(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 2})
    async with aclosing(turn.yielding()) as first:  # type: ignore[type-var]
        assert await first.__anext__() == 0
        with pytest.raises(SafeExecutionError):
            async with aclosing(turn.yielding()) as second:  # type: ignore[type-var]
                await second.__anext__()
        assert turn.is_running is True
        assert [v async for v in first] == [1]
    assert turn.output == [0, 1]
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_turn_can_be_rerun_after_finishing_and_metadata_resets() -> None:
    counter = {"n": 0}

    @tool()
    async def tick() -> int:
        counter["n"] += 1
        await asyncio.sleep(0.01)
        if counter["n"] == 2:
            raise RuntimeError("second run fails")
        return counter["n"]

    turn = Turn(tick)
    assert await turn.returning() == 1
    first_start, first_end = turn.metadata.start_time, turn.metadata.end_time
    assert turn.metadata.stop_reason is StopReason.COMPLETED

    with pytest.raises(RuntimeError):
        await turn.returning()
    assert turn.metadata.stop_reason is StopReason.ERROR
    assert turn.metadata.start_time is not None and first_end is not None
    assert turn.metadata.start_time >= first_end
    assert turn.metadata.start_time != first_start

    assert await turn.returning() == 3
    assert turn.output == 3
    assert turn.metadata.stop_reason is StopReason.COMPLETED


async def test_generator_turn_can_be_rerun(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 2})
    first = await run(turn)
    assert await run(turn) == [0, 1]
    assert turn.output == [0, 1]
    assert turn.output is not first  # a fresh list per run
    assert turn.metadata.stop_reason is StopReason.COMPLETED


# --------------------------------------------------------------------------- cancellation


async def test_cancelling_task_awaiting_returning_marks_cancelled() -> None:
    started = asyncio.Event()
    cleaned = []

    @tool()
    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(5)
        finally:
            cleaned.append(True)

    turn = Turn(slow, timeout=10)
    events = record(turn)
    task = asyncio.create_task(turn.returning())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert cleaned == [True]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert turn.metadata.end_time is not None
    assert turn.is_running is False
    assert events == [
        ("before_run", turn),
        ("on_complete", turn, StopReason.CANCELLED),
    ]


async def test_cancelling_turn_without_timeout_marks_cancelled() -> None:
    started = asyncio.Event()

    @tool()
    async def slow() -> None:
        started.set()
        await asyncio.sleep(5)

    turn = Turn(slow, timeout=None)
    events = record(turn)
    task = asyncio.create_task(turn.returning())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert names(events) == ["before_run", "on_complete"]


async def test_cancelling_task_consuming_yielding_marks_cancelled() -> None:
    @tool()
    async def slow_stream() -> Any:
        yield 1
        await asyncio.sleep(5)
        yield 2

    turn = Turn(slow_stream)
    events = record(turn)
    got = []

    async def consume() -> None:
        async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
            async for v in stream:
                got.append(v)  # noqa: PERF401 - keeps values seen before cancellation

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == [1]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert turn.is_running is False
    assert events == [
        ("before_run", turn),
        ("on_complete", turn, StopReason.CANCELLED),
    ]


async def test_breaking_out_of_yielding_marks_cancelled_and_reports_partial() -> None:
    closed = []

    @tool()
    async def numbers() -> Any:
        try:
            for i in range(100):
                await asyncio.sleep(0)
                yield i
        finally:
            closed.append(True)

    partial: list[Any] = []

    @numbers.after_invoke
    async def tool_after_invoke(result: Any) -> None:
        partial.append(list(result))

    turn = Turn(numbers)
    events = record(turn)
    async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
        async for value in stream:
            if value == 2:
                break
    assert closed == [True]
    assert partial == [[0, 1, 2]]
    assert turn.output == [0, 1, 2]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert turn.is_running is False
    assert "after_run" not in names(events)
    assert events == [
        ("before_run", turn),
        ("on_complete", turn, StopReason.CANCELLED),
    ]


async def test_breaking_out_then_rerun_works(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 5})
    async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
        async for _ in stream:
            break
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert await run(turn) == [0, 1, 2, 3, 4]
    assert turn.metadata.stop_reason is StopReason.COMPLETED


# --------------------------------------------------------------------------- current_turn


async def test_current_turn_inside_tool_and_none_outside(echo: Any) -> None:
    seen = []

    @tool()
    async def who() -> None:
        seen.append(current_turn())

    turn = Turn(who)
    assert current_turn() is None
    await turn.returning()
    assert seen == [turn]
    assert current_turn() is None


async def test_current_turn_not_leaked_to_consumer_of_yielding(count: Any) -> None:
    turn = Turn(count, kwargs={"n": 2})
    async with aclosing(turn.yielding()) as stream:  # type: ignore[type-var]
        async for _ in stream:
            assert current_turn() is None
    assert current_turn() is None


def test_a_finished_turn_is_freed_without_the_cyclic_gc():
    """Reading metadata must not tie a turn into a reference cycle (memory of long runs)."""
    import gc
    import weakref

    class Payload:
        pass

    @tool()
    async def keeps_payload(payload: Payload) -> int:
        return 1

    gc.collect()
    gc.disable()
    try:
        payload = Payload()
        freed = weakref.finalize(payload, lambda: None)
        turn = Turn(keeps_payload, kwargs={"payload": payload})
        del payload
        asyncio.run(turn.returning())
        turn.metadata.trace_context = {"traceparent": "x"}
        assert turn.metadata.duration is not None
        assert turn.metadata.trace_context == {"traceparent": "x"}
        del turn
        assert not freed.alive, "the turn survived its last reference: a reference cycle"
    finally:
        gc.enable()
