"""A small JSON Schema (draft 2020-12) validator: every problem, by path, in plain words.

It covers the keywords pygents' schemas use and those a Pydantic model's schema adds
(``type``, ``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``,
``patternProperties``, ``items``, ``prefixItems``, ``minItems``/``maxItems``,
``uniqueItems``, ``anyOf``/``oneOf``/``allOf``/``not``, local ``$ref``, the numeric and string
bounds, ``pattern``). Like the ``jsonschema`` package by default, ``format`` and other
annotations are not checked; a test holds the two to the same accept/reject answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["Problem", "json_equal", "json_type", "problems"]

#: ``(path, message)``: ``path`` is like ``address.zip`` or ``tags[2]`` ("" for the whole).
Problem = tuple[str, str]

_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
    "array": "an array",
    "object": "an object",
}


def json_type(value: Any) -> str:
    """Name the JSON type of a decoded JSON value (``"integer"`` for 2.0 as for 2)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, kind: str) -> bool:
    actual = json_type(value)
    return actual == kind or (kind == "number" and actual == "integer")


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | dict) or isinstance(b, list | tuple | dict):
        return False
    return bool(a == b)


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not key:  # an empty name: shown quoted, never the path of the whole call ("")
        return f'{path}[""]'
    return f"{path}.{key}" if path else key


def problems(value: Any, schema: Any) -> list[Problem]:
    """Return every way ``value`` fails ``schema``; an empty list when it is valid."""
    return list(_check(value, schema, "", schema))


def _resolve(ref: str, root: Any) -> Any:
    if not ref.startswith("#"):
        return {}  # a remote reference: not followed, so not checked
    node = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _check(value: Any, schema: Any, path: str, root: Any) -> Iterator[Problem]:
    if schema is True or schema == {}:
        return
    if schema is False:
        yield path, "no value is allowed here"
        return
    if "$ref" in schema:
        yield from _check(value, _resolve(schema["$ref"], root), path, root)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, k) for k in kinds):
            wanted = " or ".join(_NAMES.get(str(k), str(k)) for k in kinds)
            yield path, f"expected {wanted}, got {_describe(value)}"
            return  # the other keywords would only repeat the type mismatch
    if "enum" in schema and not any(json_equal(value, v) for v in schema["enum"]):
        choices = ", ".join(_show(v) for v in schema["enum"])
        yield path, f"expected one of {choices}; got {_show(value)}"
    if "const" in schema and not json_equal(value, schema["const"]):
        yield path, f"expected exactly {_show(schema['const'])}; got {_show(value)}"
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            yield from _alternatives(value, schema[keyword], keyword, path, root)
    for sub in schema.get("allOf", ()):
        yield from _check(value, sub, path, root)
    if "not" in schema and not list(_check(value, schema["not"], path, root)):
        yield path, "this value is not allowed here"
    if isinstance(value, dict):
        yield from _object(value, schema, path, root)
    elif isinstance(value, list | tuple):
        yield from _array(value, schema, path, root)
    elif isinstance(value, str):
        yield from _string(value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield from _number(value, schema, path)


def _alternatives(
    value: Any, options: list[Any], keyword: str, path: str, root: Any
) -> Iterator[Problem]:
    failures = [list(_check(value, option, path, root)) for option in options]
    passed = sum(1 for f in failures if not f)
    if keyword == "anyOf" and passed:
        return
    if keyword == "oneOf" and passed == 1:
        return
    if passed > 1:
        yield path, f"matches {passed} of the allowed forms; it must match exactly one"
        return
    # ``T | None`` given a wrong T: report what is wrong inside the one form whose type
    # fits (``where.x: missing required field``), not that it is also not null.
    fitting = [f for option, f in zip(options, failures, strict=True) if _fits(value, option, root)]
    if len(fitting) == 1:
        yield from fitting[0]
        return
    if len(options) and all(len(f) == 1 and f[0][0] == path for f in failures):
        reasons = "; or ".join(f[0][1] for f in failures)
        yield path, reasons
        return
    yield (
        path,
        f"matches none of the {len(options)} allowed forms; "
        + "; or ".join(f"{p or 'value'}: {m}" for f in failures for p, m in f[:1]),
    )


def _fits(value: Any, schema: Any, root: Any) -> bool:
    """Whether ``value``'s JSON type is one ``schema`` allows (ignoring everything else)."""
    for _ in range(32):
        if not isinstance(schema, dict) or "$ref" not in schema:
            break
        schema = _resolve(schema["$ref"], root)
    if not isinstance(schema, dict):
        return schema is not False
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        return any(_is_type(value, k) for k in kinds)
    if "anyOf" in schema:
        return any(_fits(value, option, root) for option in schema["anyOf"])
    return True


def _describe(value: Any) -> str:
    kind = json_type(value)
    if kind in ("array", "object", "null"):
        return _NAMES[kind]  # the value adds nothing ("got null", not "got null null")
    if kind == "boolean":
        return f"a boolean, {_show(value)}"
    return f"{_NAMES.get(kind, kind)} {_show(value)}"


def _object(
    value: dict[Any, Any], schema: dict[str, Any], path: str, root: Any
) -> Iterator[Problem]:
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            what = "required argument" if not path else "required field"
            yield _join(path, name), f"missing {what}"
    patterns = schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        where = _join(path, key)
        matched = False
        if key in properties:
            matched = True
            yield from _check(item, properties[key], where, root)
        for pattern, sub in patterns.items():
            if re.search(pattern, key):
                matched = True
                yield from _check(item, sub, where, root)
        if matched:
            continue
        if extra is False:
            allowed = ", ".join(properties) or "none"
            yield where, f"unknown {'argument' if not path else 'field'}; allowed: {allowed}"
        elif extra is not True:
            yield from _check(item, extra, where, root)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        yield path, f"needs at least {schema['minProperties']} entries"
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        yield path, f"takes at most {schema['maxProperties']} entries"


def _array(
    value: list[Any] | tuple[Any, ...], schema: dict[str, Any], path: str, root: Any
) -> Iterator[Problem]:
    prefix = schema.get("prefixItems", [])
    for i, sub in enumerate(prefix[: len(value)]):
        yield from _check(value[i], sub, _join(path, i), root)
    items = schema.get("items")
    if items is False and len(value) > len(prefix):
        yield path, f"takes at most {len(prefix)} items, got {len(value)}"
    elif items is not None and items is not False:
        for i in range(len(prefix), len(value)):
            yield from _check(value[i], items, _join(path, i), root)
    if "minItems" in schema and len(value) < schema["minItems"]:
        yield path, f"needs at least {schema['minItems']} items, got {len(value)}"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        yield path, f"takes at most {schema['maxItems']} items, got {len(value)}"
    if schema.get("uniqueItems"):
        yield from _repeats(value, path)


def _repeats(value: list[Any] | tuple[Any, ...], path: str) -> Iterator[Problem]:
    """``uniqueItems``: each item equal to an earlier one, naming the first such item.

    Linear: items are keyed by their JSON value (``_key``), so a model sending a huge array
    costs no quadratic walk. An item with no such key (not JSON data) makes the check compare
    pairwise with ``json_equal``, which the keys agree with.
    """
    try:
        keys = [_key(item) for item in value]
    except TypeError:
        for i in range(len(value)):
            for j in range(i):
                if json_equal(value[i], value[j]):
                    yield _join(path, i), f"repeats item {j}; items must be unique"
                    break
        return
    first: dict[Any, int] = {}
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j != i:
            yield _join(path, i), f"repeats item {j}; items must be unique"


def _key(value: Any) -> Any:
    """A hashable key equal for two JSON values exactly when ``json_equal`` says they are equal.

    Raises:
        TypeError: ``value`` is not JSON data (the caller then compares pairwise).
    """
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        # 1 and 1.0 are one key (equal, with equal hashes); NaN equals nothing, itself included.
        return ("n", value) if value == value else ("nan", object())
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, list | tuple):
        return ("l", tuple(_key(item) for item in value))
    if isinstance(value, dict):
        return ("d", frozenset((k, _key(v)) for k, v in value.items()))
    raise TypeError(type(value).__name__)


def _string(value: str, schema: dict[str, Any], path: str) -> Iterator[Problem]:
    if "minLength" in schema and len(value) < schema["minLength"]:
        yield path, f"needs at least {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        yield path, f"takes at most {schema['maxLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        yield path, f"must match the pattern {schema['pattern']!r}"


_BOUNDS = (
    ("minimum", "at least"),
    ("maximum", "at most"),
    ("exclusiveMinimum", "greater than"),
    ("exclusiveMaximum", "less than"),
)


def _number(value: float, schema: dict[str, Any], path: str) -> Iterator[Problem]:
    for keyword, words in _BOUNDS:
        if keyword in schema:
            bound = schema[keyword]
            ok = {
                "minimum": value >= bound,
                "maximum": value <= bound,
                "exclusiveMinimum": value > bound,
                "exclusiveMaximum": value < bound,
            }[keyword]
            if not ok:
                yield path, f"must be {words} {bound}, got {_show(value)}"
    step = schema.get("multipleOf")
    if step is not None:
        quotient = value / step
        if isinstance(quotient, float) and not (math.isfinite(quotient) and quotient.is_integer()):
            yield path, f"must be a multiple of {step}, got {_show(value)}"
