"""A model's tool call -> a Turn, or one ToolCallError listing every problem by path."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pickle
import re
import uuid
from typing import Any, Literal

import pytest
from pydantic import BaseModel, field_validator
from tool_types import Address, Color, Item, Level, Point, Tree

from pygents import Agent, ContextQueue, ToolCallError, Turn, _tool_call, tool, turn_from_call
from pygents._tool_call import MAX_DEPTH, MAX_PROBLEMS


def make_tools() -> tuple[Any, Any]:
    @tool(api_key="secret")
    async def book(
        city: str,
        nights: int,
        memory: ContextQueue,
        api_key: str,
        tags: set[str] | None = None,
        color: Color = Color.RED,
        where: Point | None = None,
    ) -> dict[str, Any]:
        """Book a room."""
        return {"city": city, "nights": nights, "tags": tags, "color": color, "where": where}

    @tool()
    async def ping() -> str:
        return "pong"

    return book, ping


async def test_a_valid_call_becomes_a_turn_with_python_values() -> None:
    book, _ = make_tools()
    turn = turn_from_call(
        "book",
        '{"city": "Oslo", "nights": 2, "tags": ["a", "b"], "color": "green",'
        ' "where": {"x": 1, "y": 2}}',
    )
    assert isinstance(turn, Turn) and turn.tool is book
    assert turn.kwargs == {
        "city": "Oslo",
        "nights": 2,
        "tags": {"a", "b"},
        "color": Color.GREEN,
        "where": Point(1.0, 2.0),
    }
    agent = Agent("booker", "books", [book])
    await agent.put(turn)
    [(_, value)] = [pair async for pair in agent.run()]
    assert value["where"] == Point(1.0, 2.0)  # the agent injected memory; api_key was fixed


async def test_arguments_may_be_a_dict_empty_or_none() -> None:
    _, ping = make_tools()
    for arguments in ("", "  ", None, {}, "{}", b"{}"):
        assert turn_from_call("ping", arguments).tool is ping
    assert turn_from_call("book", {"city": "x", "nights": 1}).kwargs == {"city": "x", "nights": 1}


async def test_every_problem_is_listed_by_path_and_no_turn_is_built() -> None:
    make_tools()
    with pytest.raises(ToolCallError) as caught:
        turn_from_call(
            "book",
            json.dumps({"nights": "two", "colour": "red", "tags": ["a", 3], "where": {"y": "1"}}),
        )
    error = caught.value
    assert error.tool_name == "book"
    assert error.problems == [
        ("city", "missing required argument"),
        ("nights", 'expected an integer, got a string "two"'),
        ("colour", "unknown argument; allowed: city, nights, tags, color, where"),
        ("tags[1]", "expected a string, got an integer 3"),
        ("where.x", "missing required field"),
        ("where.y", 'expected a number, got a string "1"'),
    ]
    text = str(error)
    assert text.splitlines()[0] == "Tool call 'book' was not run: 6 problems with its arguments."
    assert "- city: missing required argument" in text
    assert text.splitlines()[-1] == "Fix every argument listed and call the tool again."
    assert isinstance(error, ValueError)


async def test_nested_paths() -> None:
    @tool()
    async def ship(to: Address, parcels: list[Item], tree: Tree) -> None:
        return None

    with pytest.raises(ToolCallError) as caught:
        turn_from_call(
            "ship",
            {
                "to": {"zip": "0150"},
                "parcels": [{"name": "a", "quantity": 1}, {"name": "b", "quantity": 99}],
                "tree": {"value": 1, "children": [{"value": "x"}]},
            },
        )
    assert [path for path, _ in caught.value.problems] == [
        "to.street",
        "to.zip",
        "parcels[1].quantity",
        "tree.children[0].value",
    ]
    assert caught.value.problems[0][1] == "missing required field"


async def test_unknown_tool_lists_the_available_ones() -> None:
    make_tools()
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("bok", "{}")
    assert str(caught.value) == (
        "Tool call 'bok' was not run: there is no tool named 'bok'. Available tools: book, ping."
    )


async def test_a_tool_outside_the_agents_set() -> None:
    _, ping = make_tools()
    agent = Agent("pinger", "pings", [ping])
    with pytest.raises(
        ToolCallError, match=r"tool 'book' is not available here\. Available tools: ping"
    ):
        agent.turn_from_call("book", '{"city": "x", "nights": 1}')
    assert agent.turn_from_call("ping", "").tool is ping


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"city": "x",', "the arguments are not valid JSON"),
        ('{"nights": NaN}', "the arguments are not valid JSON"),
        ("[1, 2]", "the arguments must be one JSON object, got an array"),
        ('"x"', "the arguments must be one JSON object, got a string"),
        (42, "the arguments must be a JSON object, got int"),
    ],
)
async def test_arguments_that_are_not_a_json_object(arguments: Any, words: str) -> None:
    make_tools()
    with pytest.raises(ToolCallError, match=words):
        turn_from_call("book", arguments)


async def test_null_for_an_optional_parameter_means_its_default() -> None:
    make_tools()
    turn = turn_from_call("book", '{"city": "x", "nights": 1, "color": null, "where": null}')
    assert turn.kwargs == {"city": "x", "nights": 1, "where": None}  # color: use the default
    with pytest.raises(ToolCallError, match="nights: expected an integer, got null"):
        turn_from_call("book", '{"city": "x", "nights": null}')  # required: null is wrong


async def test_conversions() -> None:
    @tool()
    async def convert(
        a: float, b: int, c: tuple[int, str], d: frozenset[Level], e: dict[str, Point], /
    ) -> None:
        return None

    turn = turn_from_call(
        "convert", {"a": 1, "b": 2.0, "c": [1, "x"], "d": [1, 2], "e": {"p": {"x": 0}}}
    )
    assert turn.args == [1.0, 2, (1, "x"), frozenset({Level.LOW, Level.HIGH}), {"p": Point(0.0)}]
    assert type(turn.args[0]) is float and type(turn.args[1]) is int
    assert turn.kwargs == {}


async def test_pydantic_arguments_become_models() -> None:
    @tool()
    async def order(item: Item) -> str:
        return item.name

    turn = turn_from_call("order", '{"item": {"name": "tea", "quantity": 2}}')
    assert turn.kwargs["item"] == Item(name="tea", quantity=2)
    assert await turn.returning() == "tea"


async def test_the_error_pickles() -> None:
    make_tools()
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("book", "{}")
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.problems == caught.value.problems


# --------------------------------------------------------------------------- hostile payloads
# The arguments come from a model: whatever they are, the answer is a ToolCallError of bounded
# size (never a RecursionError, never a message that grows with the payload).


def make_list_tool() -> Any:
    @tool()
    async def count(xs: list[int]) -> int:
        return len(xs)

    return count


def nested(levels: int) -> Any:
    """``{"xs": [[...]]}`` nesting ``levels`` containers in all, built without recursion."""
    value: Any = []
    for _ in range(levels - 2):
        value = [value]
    return {"xs": value}


@pytest.mark.parametrize("as_json", [True, False])
async def test_arguments_nested_100k_deep_are_refused_not_a_recursion_error(
    as_json: bool,
) -> None:
    make_list_tool()
    deep = 100_000
    arguments: Any = '{"xs": ' + "[" * deep + "]" * deep + "}" if as_json else nested(deep)
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("count", arguments)
    assert str(caught.value) == (
        "Tool call 'count' was not run: the arguments nest arrays and objects more than "
        f"{MAX_DEPTH} levels deep; send flatter values"
    )


async def test_nesting_up_to_the_limit_is_checked_as_before() -> None:
    make_list_tool()
    with pytest.raises(ToolCallError, match=r"- xs\[0\]: expected an integer, got an array"):
        turn_from_call("count", json.dumps(nested(MAX_DEPTH)))  # validated, not refused
    with pytest.raises(ToolCallError, match=f"more than {MAX_DEPTH} levels deep"):
        turn_from_call("count", json.dumps(nested(MAX_DEPTH + 1)))


async def test_arguments_that_contain_themselves_are_refused() -> None:
    make_list_tool()
    arguments: dict[str, Any] = {}
    arguments["xs"] = [arguments]
    with pytest.raises(ToolCallError, match="levels deep"):
        turn_from_call("count", arguments)


async def test_a_recursion_error_while_checking_becomes_the_same_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Within the depth limit the walks fit the stack, unless the caller is itself deep in it.
    make_list_tool()

    def overflow(value: Any, schema: Any) -> Any:
        raise RecursionError

    monkeypatch.setattr(_tool_call, "problems", overflow)
    with pytest.raises(ToolCallError, match="levels deep"):
        turn_from_call("count", {"xs": [1]})


async def test_100k_wrong_items_make_a_short_message_naming_the_first() -> None:
    make_list_tool()
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("count", {"xs": ["a"] * 100_000})
    text = str(caught.value)
    assert len(text) < 2_000
    lines = text.splitlines()
    assert lines[0] == (
        f"Tool call 'count' was not run: 100000 problems with its arguments; "
        f"the first {MAX_PROBLEMS}:"
    )
    assert lines[1] == '- xs[0]: expected an integer, got a string "a"'
    assert lines[-2] == f"- and {100_000 - MAX_PROBLEMS} more, not listed"
    assert caught.value.problems[0] == ("xs[0]", 'expected an integer, got a string "a"')
    assert len(caught.value.problems) == MAX_PROBLEMS


async def test_many_unknown_keys_make_a_short_message() -> None:
    make_list_tool()
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("count", {f"key{i}": i for i in range(10_000)})
    text = str(caught.value)
    assert len(text) < 2_000
    assert "10001 problems" in text  # the missing xs, and every unknown key
    assert "- xs: missing required argument" in text
    assert "- key0: unknown argument; allowed: xs" in text
    assert f"- and {10_001 - MAX_PROBLEMS} more, not listed" in text


async def test_a_huge_key_is_shortened_in_the_message_and_the_problems() -> None:
    make_list_tool()
    key = "k" * 50 + "x" * 100_000 + "z" * 50
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("count", {"xs": [], key: 1})
    text = str(caught.value)
    assert len(text) < 2_000
    [(path, message)] = caught.value.problems
    assert len(path) <= 100 and path.startswith("k" * 40) and path.endswith("z" * 40)
    assert message == "unknown argument; allowed: xs"
    assert f"- {path}: {message}" in text


async def test_a_huge_tool_name_is_shortened() -> None:
    make_list_tool()
    with pytest.raises(ToolCallError) as caught:
        turn_from_call("c" * 100_000, "{}")
    assert len(str(caught.value)) < 2_000


@pytest.mark.parametrize(
    ("tools", "words"),
    [
        ("count", "tools must be a list of tools, got 'count'"),
        (b"count", "tools must be a list of tools, got b'count'"),
        (42, "tools must be a list of tools, got 42"),
        (["count"], "'count' in tools= is not a tool; pass the tools themselves"),
    ],
)
async def test_tools_that_are_not_a_collection_of_tools(tools: Any, words: str) -> None:
    count = make_list_tool()
    with pytest.raises(TypeError, match=re.escape(words)):
        turn_from_call("count", "{}", tools=tools)
    assert turn_from_call("count", '{"xs": []}', tools=iter([count])).tool is count


# -- values the schema allows but that do not build ----------------------------------------


class Event(BaseModel):
    when: datetime.datetime
    uid: uuid.UUID


class Even(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("n must be even")
        return value


@dataclasses.dataclass
class Range:
    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError("lo must be <= hi")


async def test_a_value_that_does_not_build_is_a_problem_of_the_call_not_a_crash() -> None:
    # The schema says a string; the model checks the format (a datetime, a UUID) and runs its
    # validators; a dataclass its __post_init__; a float cannot hold every JSON integer. The
    # documented model loop catches ToolCallError: anything else ended it.
    @tool()
    async def plan(event: Event, even: Even, span: Range, scale: float, ok: int) -> None: ...

    arguments = {
        "event": {"when": "tomorrow morning", "uid": "nope"},
        "even": {"n": 3},
        "span": {"lo": 5, "hi": 1},
        "scale": 10**400,
        "ok": 1,
    }
    with pytest.raises(ToolCallError) as info:
        turn_from_call("plan", json.dumps(arguments))
    paths = [path for path, _ in info.value.problems]
    assert paths == ["event.when", "event.uid", "even.n", "span", "scale"]
    text = dict(info.value.problems)
    assert "valid datetime" in text["event.when"] and "valid UUID" in text["event.uid"]
    assert "n must be even" in text["even.n"]
    assert text["span"] == "is invalid: lo must be <= hi"
    assert text["scale"] == "the number is too large; send a smaller one"
    assert "Fix every argument listed" in str(info.value)


async def test_an_empty_argument_name_is_shown_not_taken_for_the_whole_call() -> None:
    @tool()
    async def count(xs: list[int]) -> int:
        return len(xs)

    with pytest.raises(ToolCallError) as info:
        turn_from_call("count", '{"xs": [], "": 1}')
    assert info.value.problems == [('[""]', "unknown argument; allowed: xs")]


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [('{"n": null}', "got null\n"), ('{"n": true}', "got a boolean, true\n")],
)
async def test_null_and_booleans_are_named_once(arguments: str, shown: str) -> None:
    @tool()
    async def take(n: int) -> None: ...

    with pytest.raises(ToolCallError) as info:
        turn_from_call("take", arguments)
    assert f"- n: expected an integer, {shown}" in str(info.value)


async def test_a_literal_arrives_as_itself_and_no_number_becomes_infinity() -> None:
    @tool()
    async def pick(level: Literal[1, 2], scale: float = 1.0) -> None: ...

    turn = turn_from_call("pick", '{"level": 1.0}')
    assert turn.kwargs == {"level": 1} and type(turn.kwargs["level"]) is int
    with pytest.raises(ToolCallError, match=r"1e400 is too large a number"):
        turn_from_call("pick", '{"level": 1, "scale": 1e400}')
