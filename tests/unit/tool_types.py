"""Annotations the schema tests share (module level, so type hints resolve)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import pydantic
from pydantic import v1 as pydantic_v1

UserId = NewType("UserId", int)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(TypedDict):
    """A postal address.

    Args:
        street: the street and number.
    """

    street: str
    zip: NotRequired[int]


class Partial(TypedDict, total=False):
    name: str
    age: int


@dataclass
class Point:
    x: float
    y: float = 0.0


@dataclass
class Tree:
    """A tree of numbers."""

    value: int
    children: list[Tree] = field(default_factory=list)


class Item(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=8)
    quantity: int = pydantic.Field(ge=1, le=10)
    notes: list[str] = []


class Opaque:
    """An arbitrary class: JSON Schema cannot say what it is."""


class Part(pydantic_v1.BaseModel):
    """A Pydantic v1 model (``schema()``, ``parse_obj()``)."""

    sku: str


class Order(pydantic_v1.BaseModel):
    count: int
    part: Part


class Described:
    """Not a model, but a class that describes itself with ``schema()``."""

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"type": "string", "format": "described"}


class NotASchema:
    @classmethod
    def schema(cls) -> int:
        return 5


#: name -> (annotation, sample values a model could send, some valid and some not)
SAMPLES = [1, 0, -3, 1.0, 2.5, True, False, None, "", "red", "1", [], [1], [1, "a"], {}, {"a": 1}]

CASES: dict[str, tuple[Any, list[Any]]] = {
    "str": (str, SAMPLES),
    "int": (int, SAMPLES),
    "float": (float, SAMPLES),
    "bool": (bool, SAMPLES),
    "None": (None, SAMPLES),
    "Any": (Any, SAMPLES),
    "list[int]": (list[int], [*SAMPLES, [1, 2.0, 3], [1, 2.5], [[1]]]),
    "Sequence[str]": (Sequence[str], [*SAMPLES, ["a", "b"], ["a", 1]]),
    "bare list": (list, SAMPLES),
    "tuple[int, str]": (tuple[int, str], [*SAMPLES, [1, "a", 2], ["a", 1], [1, "b"]]),
    "tuple[int, ...]": (tuple[int, ...], [*SAMPLES, [1, 2, 3], [1, "x"]]),
    "set[str]": (set[str], [*SAMPLES, ["a", "a"], ["a", "b"], [1, True]]),
    "frozenset[int]": (frozenset[int], [[1, 1.0], [1, True], [0, False], [1, 2]]),
    "dict[str, int]": (dict[str, int], [*SAMPLES, {"a": 1, "b": 2}, {"a": "x"}, {"a": 1.0}]),
    "Mapping[str, list[int]]": (Mapping[str, list[int]], [{"a": [1]}, {"a": [1, "x"]}, {"a": 1}]),
    "Optional[int]": (Optional[int], SAMPLES),  # noqa: UP045 - the spelling is the case
    "int | str": (int | str, SAMPLES),
    "Union[int, list[str], None]": (Union[int, list[str], None], [*SAMPLES, ["a"], [1]]),  # noqa: UP007
    "Literal": (Literal["fast", "slow"], [*SAMPLES, "fast", "slow", "FAST"]),
    "Literal mixed": (Literal[1, "one", True, None], [*SAMPLES, "one", 1.0]),
    "Enum": (Color, [*SAMPLES, "green", "RED"]),
    "IntEnum": (Level, [*SAMPLES, 2, 2.0, 3]),
    "TypedDict": (
        Address,
        [
            *SAMPLES,
            {"street": "x"},
            {"street": "x", "zip": 1},
            {"street": 1},
            {"zip": 1},
            {"street": "x", "city": "y"},
            {"street": "x", "zip": "1"},
        ],
    ),
    "TypedDict total=False": (Partial, [{}, {"name": "a"}, {"age": "x"}, {"other": 1}]),
    "dataclass": (Point, [*SAMPLES, {"x": 1}, {"x": 1, "y": 2.5}, {"y": 1}, {"x": "1"}]),
    "recursive dataclass": (
        Tree,
        [
            {"value": 1},
            {"value": 1, "children": [{"value": 2, "children": []}]},
            {"value": 1, "children": [{"value": "x"}]},
            {"value": 1, "children": [{}]},
        ],
    ),
    "Annotated": (Annotated[int, "how many"], SAMPLES),
    "NewType": (UserId, SAMPLES),
    "pydantic": (
        Item,
        [
            *SAMPLES,
            {"name": "a", "quantity": 1},
            {"name": "toolongname", "quantity": 1},
            {"name": "a", "quantity": 0},
            {"name": "a", "quantity": 11},
            {"name": "a"},
            {"name": "a", "quantity": 2, "notes": ["x", 1]},
            {"name": "a", "quantity": 2, "z": 1},
        ],
    ),
    "list[Address | None]": (list[Address | None], [[None], [{"street": "a"}], [{"zip": 1}]]),
    "Callable (inexpressible)": (Callable[[int], int], SAMPLES),
    "class (inexpressible)": (Opaque, SAMPLES),
}
