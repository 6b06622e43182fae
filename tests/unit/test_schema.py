"""Schemas from type hints: what each annotation becomes, docstrings, exclusions, laziness.

Every schema here is also checked against the draft 2020-12 metaschema by the real
``jsonschema`` package, and our validator must answer as ``jsonschema`` does.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any

import jsonschema
import pytest
from tool_types import (
    CASES,
    Address,
    Color,
    Described,
    Item,
    NotASchema,
    Opaque,
    Order,
    Part,
    Point,
    Tree,
)

from pygents import Agent, ContextPool, ContextQueue, Turn, _validate, tool
from pygents._schema import docstring_parameters, schema_of, summary_of
from pygents._validate import problems

META = jsonschema.Draft202012Validator


def check(schema: dict[str, Any]) -> dict[str, Any]:
    META.check_schema(schema)
    return schema


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_construct_gives_a_valid_draft_2020_12_schema(name: str) -> None:
    check(schema_of(CASES[name][0]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_our_validator_accepts_and_rejects_exactly_as_jsonschema(name: str) -> None:
    hint, values = CASES[name]
    schema = check(schema_of(hint))
    reference = META(schema)
    for value in values:
        ours = problems(value, schema)
        assert (not ours) == reference.is_valid(value), (name, schema, value, ours)


SCHEMAS = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    None: {"type": "null"},
    Any: {},
    list[str]: {"type": "array", "items": {"type": "string"}},
    set[int]: {"type": "array", "uniqueItems": True, "items": {"type": "integer"}},
    tuple[int, str]: {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
    },
    tuple[int, ...]: {"type": "array", "items": {"type": "integer"}},
    dict[str, float]: {"type": "object", "additionalProperties": {"type": "number"}},
    int | None: {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    Color: {"type": "string", "enum": ["red", "green"], "title": "Color"},
    Point: {
        "type": "object",
        "title": "Point",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
        "additionalProperties": False,
    },
    Callable[[int], int]: {},
    Opaque: {},
}


@pytest.mark.parametrize("hint", list(SCHEMAS), ids=repr)
def test_annotation_to_schema(hint: Any) -> None:
    assert check(schema_of(hint)) == SCHEMAS[hint]


def test_typeddict_required_and_optional_keys_and_docstring() -> None:
    schema = schema_of(Address)
    assert schema["required"] == ["street"]
    assert set(schema["properties"]) == {"street", "zip"}
    assert schema["properties"]["street"]["description"] == "the street and number."
    assert schema["description"] == "A postal address."


def test_a_recursive_dataclass_goes_to_defs() -> None:
    schema = check(schema_of(Tree))
    assert schema["$ref"] == "#/$defs/Tree"
    children = schema["$defs"]["Tree"]["properties"]["children"]
    assert children["items"] == {"$ref": "#/$defs/Tree"}


def test_a_pydantic_model_uses_its_own_schema() -> None:
    schema = check(schema_of(Item))
    assert schema["properties"]["quantity"]["minimum"] == 1
    assert schema["required"] == ["name", "quantity"]


def test_pydantic_defs_are_hoisted_to_the_root() -> None:
    @tool()
    async def order(items: list[Item], note: str = "") -> None:
        """Place an order."""

    schema = check(order.metadata.input_schema)
    assert schema["properties"]["items"]["items"] == {"$ref": "#/$defs/Item"} or (
        schema["properties"]["items"]["items"]["title"] == "Item"
    )
    assert META(schema).is_valid({"items": [{"name": "a", "quantity": 2}]})
    assert not META(schema).is_valid({"items": [{"name": "a", "quantity": 0}]})


async def test_a_pydantic_v1_model_and_any_schema_method_are_used_duck_typed() -> None:
    # The original's docs (0.6.8): a model type is detected by its model_json_schema() or
    # schema() method, without depending on Pydantic.
    from pygents import turn_from_call

    @tool()
    async def place(order: Order, note: Described, other: NotASchema) -> Order:
        return order

    schema = check(place.metadata.input_schema)
    props = schema["properties"]
    assert props["order"]["properties"]["count"] == {"title": "Count", "type": "integer"}
    assert props["order"]["properties"]["part"] == {"$ref": "#/$defs/Part"}
    assert schema["$defs"]["Part"]["required"] == ["sku"]
    assert props["note"] == {"type": "string", "format": "described"}
    assert props["other"] == {}  # not a schema: no constraint
    assert place.metadata.output_schema["title"] == "Order"
    assert META(schema).is_valid(
        {"order": {"count": 1, "part": {"sku": "a"}}, "note": "", "other": 1}
    )
    assert not META(schema).is_valid({"order": {"count": 1, "part": {}}, "note": "", "other": 1})

    turn = turn_from_call(
        "place", {"order": {"count": 2, "part": {"sku": "x"}}, "note": "n", "other": None}
    )
    made = turn.kwargs["order"]
    assert isinstance(made, Order) and made.part == Part(sku="x")


# --------------------------------------------------------------------------- tools


async def test_input_schema_of_a_tool() -> None:
    @tool(api_key="k")
    async def search(
        query: str,
        memory: ContextQueue,
        pool: ContextPool | None,
        api_key: str,
        limit: int = 5,
        color: Color = Color.RED,
        *rest: Any,
        **extra: Any,
    ) -> list[str]:
        """Search the index.

        Args:
            query: what to look for,
                over two lines.
            limit: how many results.
        """
        return []

    schema = check(search.metadata.input_schema)
    # injected context and fixed kwargs are not for the model; nor are *args / **kwargs
    assert list(schema["properties"]) == ["query", "limit", "color"]
    assert schema["required"] == ["query"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["query"] == {
        "type": "string",
        "description": "what to look for, over two lines.",
    }
    assert schema["properties"]["limit"] == {
        "type": "integer",
        "description": "how many results.",
        "default": 5,
    }
    assert schema["properties"]["color"]["default"] == "red"
    assert check(search.metadata.output_schema) == {"type": "array", "items": {"type": "string"}}
    assert search.metadata.spec.summary == "Search the index."


async def test_streaming_output_schema_is_one_item() -> None:
    @tool()
    async def lines(path: str) -> AsyncGenerator[int, None]:
        yield 1

    @tool()
    async def words(path: str) -> AsyncIterator[str]:
        yield "a"

    @tool()
    async def untyped(path: str):  # type: ignore[no-untyped-def]
        yield 1

    assert lines.metadata.output_schema == {"type": "integer"}
    assert words.metadata.output_schema == {"type": "string"}
    assert untyped.metadata.output_schema == {}


async def test_unexpressible_annotations_never_fail_decoration() -> None:
    @tool()
    async def odd(fn: Callable[[int], int], thing: Opaque, later: NotDefinedAnywhere) -> Opaque:  # type: ignore[name-defined]  # noqa: F821
        return thing

    schema = check(odd.metadata.input_schema)
    assert schema["properties"] == {"fn": {}, "thing": {}, "later": {}}
    assert odd.metadata.output_schema == {}


async def test_one_unresolvable_hint_leaves_the_others_resolved() -> None:
    @tool()
    async def half(x: int, later: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    assert half.metadata.input_schema["properties"] == {"x": {"type": "integer"}, "later": {}}


async def test_none_return_and_no_annotations() -> None:
    @tool()
    async def nothing(x, y=2) -> None:  # type: ignore[no-untyped-def]
        return None

    schema = check(nothing.metadata.input_schema)
    assert schema["properties"] == {"x": {}, "y": {"default": 2}}
    assert nothing.metadata.output_schema == {"type": "null"}


async def test_schemas_are_built_once_on_first_read_and_never_by_a_turn() -> None:
    @tool()
    async def double(x: int) -> int:
        return 2 * x

    assert double.metadata._spec is None  # decoration did not build it
    agent = Agent("a", "d", [double])
    await agent.put(Turn("double", kwargs={"x": 2}))
    assert [v async for _, v in agent.run()] == [4]
    assert await Turn(double, kwargs={"x": 3}).returning() == 6
    assert double.metadata._spec is None  # running turns did not either
    first = double.metadata.input_schema
    assert double.metadata.input_schema is first


# --------------------------------------------------------------------------- docstrings

GOOGLE = """Do a thing.

Longer text.

Args:
    alpha (int): the first
        value.
    beta: the second.

Returns:
    Something.
"""

NUMPY = """Do a thing.

Parameters
----------
alpha : int
    the first
    value.
beta : str, optional
    the second.

Returns
-------
int
"""

REST = """Do a thing.

:param alpha: the first
    value.
:param str beta: the second.
:returns: something.
"""


@pytest.mark.parametrize("doc", [GOOGLE, NUMPY, REST], ids=["google", "numpy", "rest"])
def test_parameter_descriptions_from_docstrings(doc: str) -> None:
    assert docstring_parameters(doc) == {"alpha": "the first value.", "beta": "the second."}
    assert summary_of(doc).startswith("Do a thing.")
    assert "alpha" not in summary_of(doc)


async def test_annotated_description_wins_over_docstring() -> None:
    @tool()
    async def f(x: Annotated[int, "from the annotation"]) -> None:
        """F.

        Args:
            x: from the docstring.
        """

    assert f.metadata.input_schema["properties"]["x"]["description"] == "from the annotation"


def test_a_tree_value_validates() -> None:
    schema = schema_of(Tree)
    assert problems({"value": 1, "children": [{"value": 2}]}, schema) == []
    assert problems({"value": 1, "children": [{"value": "x"}]}, schema) == [
        ("children[0].value", 'expected an integer, got a string "x"')
    ]


def test_point_positional_values() -> None:
    assert problems({"x": 1}, schema_of(Point)) == []


UNIQUE_CASES = [
    [1, 2, 3],
    [1, 1.0],  # equal in JSON
    [True, 1],  # not equal: a boolean is not a number
    [False, 0, None, ""],
    [[1, 2], [1, 2]],
    [[1, 2], [2, 1]],
    [{"a": 1, "b": [1]}, {"b": [1.0], "a": 1}],
    [{"a": 1}, {"a": True}],
    [float("nan"), 1],
    ["x", "y", "x", "z", "y"],
]


@pytest.mark.parametrize("value", UNIQUE_CASES, ids=repr)
def test_unique_items_answers_as_jsonschema_and_names_the_first_repeat(value: list[Any]) -> None:
    schema = check({"type": "array", "uniqueItems": True})
    ours = problems(value, schema)
    assert (not ours) == META(schema).is_valid(value), (value, ours)
    expected = []
    for i, item in enumerate(value):
        for j in range(i):
            if _validate.json_equal(item, value[j]):
                expected.append((f"[{i}]", f"repeats item {j}; items must be unique"))
                break
    assert ours == expected


def test_unique_items_of_a_huge_array_take_no_pairwise_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A model may send a set[...] argument of 100k items: the check is linear (items keyed by
    # their JSON value), not the ~5e9 pairwise comparisons that took hours.
    calls = 0
    real = _validate.json_equal

    def counting(a: Any, b: Any) -> bool:
        nonlocal calls
        calls += 1
        return real(a, b)

    monkeypatch.setattr(_validate, "json_equal", counting)
    schema = {"type": "array", "uniqueItems": True, "items": {"type": "integer"}}
    assert problems(list(range(100_000)), schema) == []
    assert problems([*range(100_000), 5], schema) == [
        ("[100000]", "repeats item 5; items must be unique")
    ]
    assert calls == 0
    # Something that is not JSON data falls back to pairwise comparison, and still answers.
    assert problems([object(), 1, 1], {"uniqueItems": True}) == [
        ("[2]", "repeats item 1; items must be unique")
    ]
    assert calls > 0
