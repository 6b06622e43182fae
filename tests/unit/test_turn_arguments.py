"""A turn's arguments reach its tool as ``fn(*args, **kwargs)`` would pass them.

The run loop calls a bare turn's tool by position when that binds the same (no argument, or
one keyword naming the function's first parameter): a call by keyword costs about 1,400
instructions more. These tests hold every shape of call to the keyword call's outcome, on a
run's first turns (the tool stepped by hand) and on later ones (the tool awaited).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from pygents import Agent, Turn, tool

_agents = itertools.count()


async def run_one(fn: Callable[..., Any], warm: int, **turn: Any) -> Any:
    """Run ``Turn(tool(fn), **turn)`` after ``warm`` quick turns; return its value."""

    @tool()
    async def quick() -> int:
        return 0

    made = tool()(fn)
    agent = Agent(f"arguments_{next(_agents)}", "runs one turn", [quick, made])
    for _ in range(warm):
        await agent.put(Turn(quick))
    await agent.put(Turn(made, **turn))
    values = [value async for _, value in agent.run()]
    assert values[:warm] == [0] * warm
    return values[warm]


async def test_one_keyword_naming_the_first_parameter(warm: int) -> None:
    async def first(x: int, y: int = 2) -> tuple[int, int]:
        return x, y

    assert await run_one(first, warm, kwargs={"x": 1}) == (1, 2)


async def test_one_keyword_naming_a_later_parameter(warm: int) -> None:
    async def later(x: int = 1, y: int = 2) -> tuple[int, int]:
        return x, y

    assert await run_one(later, warm, kwargs={"y": 5}) == (1, 5)


async def test_no_argument(warm: int) -> None:
    async def none(x: int = 7) -> int:
        return x

    assert await run_one(none, warm) == 7


async def test_a_dynamic_argument_is_called_then_passed(warm: int) -> None:
    async def first(x: int) -> int:
        return x

    assert await run_one(first, warm, kwargs={"x": lambda: 42}) == 42


async def test_a_positional_only_first_parameter_is_not_given_by_keyword(warm: int) -> None:
    async def positional(x: int, /) -> int:
        return x

    with pytest.raises(TypeError, match="positional-only"):
        await run_one(positional, warm, kwargs={"x": 1})


async def test_a_keyword_only_parameter(warm: int) -> None:
    async def keyword(*, x: int) -> int:
        return x

    assert await run_one(keyword, warm, kwargs={"x": 3}) == 3


async def test_a_wrapper_sees_the_keyword_it_was_given(warm: int) -> None:
    # The signature is the wrapped function's (x), the code the wrapper's (*args, **kwargs):
    # the wrapper is what is called, so it gets the argument by keyword, as it always did.
    seen: list[tuple[Any, Any]] = []

    async def inner(x: int) -> int:
        return x

    @functools.wraps(inner)
    async def wrapper(*args: Any, **kwargs: Any) -> int:
        seen.append((args, kwargs))
        return await inner(*args, **kwargs)

    assert await run_one(wrapper, warm, kwargs={"x": 4}) == 4
    assert seen == [((), {"x": 4})]


async def test_several_keywords_in_any_order(warm: int) -> None:
    async def three(a: int, b: int, c: int = 0) -> tuple[int, int, int]:
        return a, b, c

    assert await run_one(three, warm, kwargs={"c": 3, "a": 1, "b": 2}) == (1, 2, 3)


async def test_positional_and_keyword_arguments(warm: int) -> None:
    async def mixed(a: int, b: int, *rest: int, c: int = 0) -> tuple[Any, ...]:
        return a, b, rest, c

    got = await run_one(mixed, warm, args=[1, 2, 3], kwargs={"c": 4})
    assert got == (1, 2, (3,), 4)


@pytest.mark.parametrize(
    ("call", "expected", "reported"),
    [
        ({"kwargs": {"x": 1, "z": 9}}, (1, 2), "'z'"),
        ({"kwargs": {"z": 9, "x": 1, "w": 0}}, (1, 2), "'z', 'w'"),
        ({"args": [1, 5, 6, 7]}, (1, 5), "2 positional values"),
        ({"args": [3], "kwargs": {"q": 0, "y": 4}}, (3, 4), "'q'"),
    ],
)
async def test_surplus_arguments_are_ignored_and_reported(
    warm: int,
    caplog: pytest.LogCaptureFixture,
    call: dict[str, Any],
    expected: tuple[int, int],
    reported: str,
) -> None:
    # The original (0.6.8 docs, "Extra arguments are ignored"): a caller may pass more than
    # the tool takes; only the parameters the function declares are passed.
    async def first(x: int, y: int = 2) -> tuple[int, int]:
        return x, y

    caplog.set_level("WARNING", logger="pygents")
    assert await run_one(first, warm, **call) == expected
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "pygents"]
    assert f"Tool 'first' has no parameter for {reported}: ignored" in warning


async def test_surplus_arguments_are_reported_once_per_tool_and_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool()
    async def once(x: int) -> int:
        return x

    caplog.set_level("WARNING", logger="pygents")
    agent = Agent("reported_once", "d", [once])
    for extra in ("a", "a", "b", "a"):
        await agent.put(Turn(once, kwargs={"x": 1, extra: 0}))
    assert [value async for _, value in agent.run()] == [1, 1, 1, 1]
    assert await once(2, a=0) == 2  # a direct call: the same rule, the same report
    warnings = [r.getMessage() for r in caplog.records if r.name == "pygents"]
    assert len(warnings) == 2 and "'a'" in warnings[0] and "'b'" in warnings[1]


async def test_surplus_arguments_reach_var_parameters(warm: int) -> None:
    async def anything(x: int, *rest: int, **more: int) -> tuple[Any, ...]:
        return x, rest, more

    got = await run_one(anything, warm, args=[1, 2], kwargs={"z": 3})
    assert got == (1, (2,), {"z": 3})


async def test_a_missing_argument_still_fails_as_a_keyword_call_does(warm: int) -> None:
    async def first(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        await run_one(first, warm, kwargs={"z": 1})


async def test_a_keyword_repeating_a_positional_argument_fails_as_a_keyword_call_does(
    warm: int,
) -> None:
    async def first(a: int, b: int = 0) -> tuple[int, int]:
        return a, b

    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        await run_one(first, warm, args=[1], kwargs={"a": 2})
