"""A model's tool call -> a ``Turn``, or one ``ToolCallError`` listing every problem.

The call is checked against the tool's input schema (``_validate``) before anything is built,
so a bad call never yields a partial turn. Valid JSON values are then turned into what the
annotations ask for (an ``Enum`` member, a tuple, a set, a dataclass, a Pydantic model).

The arguments come from a model, so they are hostile until checked: their nesting depth is
measured (without recursion) before any recursive walk, and the error lists at most
``MAX_PROBLEMS`` problems, each path and message shortened, so its size never grows with the
payload's.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections import abc
from collections.abc import Iterable, Mapping
from typing import Any

from ._registry import ToolRegistry
from ._schema import _hints, _is_typeddict, _strip_qualifiers, schema_of
from ._serde import no_constant
from ._turn import Turn
from ._types import Tool
from ._validate import json_equal, json_type, problems
from .errors import ToolCallError, is_collection, short_repr

__all__ = ["MAX_DEPTH", "MAX_PROBLEMS", "call_name", "resolve", "turn_from_call"]

#: The deepest nesting of arrays and objects accepted in a call's arguments (the arguments
#: object itself is level 1). The walks below recurse about three frames per level, so this
#: leaves most of Python's default recursion limit to the caller.
MAX_DEPTH = 100
#: The most problems a ``ToolCallError`` lists; its message counts the rest.
MAX_PROBLEMS = 10
_MAX_PATH = 100  # characters of a problem's path kept in the error
_MAX_TEXT = 500  # characters of a problem's message kept in the error


def call_name(tool: Tool) -> str:
    """The tool's registry name: ``parent.child`` for a subtool, else ``metadata.name``."""
    name = getattr(tool, "__name__", None)
    return name if isinstance(name, str) else tool.metadata.name


def resolve(name: Any, tools: Iterable[Tool] | None) -> Tool:
    """Return the tool a call names, among ``tools`` (default: every registered tool).

    A subtool's name may come back as sent in a model API shape (``parent-child``).

    Raises:
        ToolCallError: no such tool, or it is not among ``tools``.
        TypeError: ``tools`` is not a collection of tools (a bare string, say).
    """
    listed_tools = ToolRegistry.all() if tools is None else _checked_tools(tools)
    if not isinstance(name, str) or not name:
        raise ToolCallError.from_problems(
            str(name), [("", f"the tool name must be a non-empty string, got {short_repr(name)}")]
        )
    available = {call_name(t): t for t in listed_tools}
    for candidate in (name, name.replace("-", ".")):
        found = available.get(candidate)
        if found is not None:
            return found
    listed = ", ".join(sorted(available)) or "none"
    if tools is not None and any(c in ToolRegistry._items for c in (name, name.replace("-", "."))):
        why = f"tool {short_repr(name)} is not available here"
    else:
        why = f"there is no tool named {short_repr(name)}"
    raise ToolCallError.from_problems(name, [("", f"{why}. Available tools: {listed}.")])


def _checked_tools(tools: Any) -> list[Tool]:
    """``tools`` as a list, or a ``TypeError``: a mistake in the caller's code, not the model's."""
    if not is_collection(tools):
        raise TypeError(f"turn_from_call: tools must be a list of tools, got {short_repr(tools)}")
    checked = list(tools)  # it may be a generator
    for t in checked:
        if not isinstance(getattr(getattr(t, "metadata", None), "name", None), str):
            raise TypeError(
                f"turn_from_call: {short_repr(t)} in tools= is not a tool; pass the tools "
                f"themselves (functions decorated with @tool()), not their names"
            )
    return checked


def turn_from_call(
    name: str,
    arguments: str | bytes | Mapping[str, Any] | None,
    *,
    tools: Iterable[Tool] | None = None,
    timeout: float | None = 60,
    tags: Iterable[str] | None = None,
) -> Turn:
    """Build the ``Turn`` a model's tool call asks for, after checking every argument.

    Args:
        name: the tool's name as the model sent it (``parent.child`` or ``parent-child``
            for a subtool).
        arguments: the arguments as a JSON string (an OpenAI ``tool_call.function.arguments``;
            empty means none) or as a dict (an Anthropic ``tool_use.input``).
        tools: the tools the call may name (an agent's); default: every registered tool.
        timeout: the turn's timeout in seconds (None for none).
        tags: the turn's tags.

    A ``null`` for an optional parameter that does not itself accept null means "use the
    default" (OpenAI strict mode sends every parameter, null for the ones it leaves out).

    Raises:
        ToolCallError: the tool is unknown or not among ``tools``, the arguments are not a
            JSON object or nest deeper than ``MAX_DEPTH`` levels, or arguments are missing,
            unknown or of the wrong type; the message lists the problems by path (the first
            ``MAX_PROBLEMS``, then how many more), in words a model can act on.
        TypeError: ``tools`` is not a collection of tools (a bare string, say).
    """
    tool = resolve(name, tools)
    spec = tool.metadata.spec
    value = _decode(name, arguments)
    schema = spec.input_schema
    try:
        value = _drop_nulls(value, schema, schema)
        found = problems(value, schema)
    except RecursionError:  # the depth is bounded; this is for a caller already deep in the stack
        raise _too_deep(name) from None
    if found:
        raise _error(name, found)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in spec.params:
        if param.name not in value:
            if param.positional_only:
                break  # later positional-only parameters keep their defaults too
            continue
        try:
            converted = _to_python(value[param.name], param.hint)
        except Exception as exc:  # the schema holds, the value does not build
            found.extend(_build_problems(param.name, exc))
            continue
        if param.positional_only:
            args.append(converted)
        else:
            kwargs[param.name] = converted
    if found:
        raise _error(name, found)
    return Turn(tool, timeout=timeout, args=args, kwargs=kwargs, tags=tags)


def _build_problems(path: str, exc: Exception) -> list[tuple[str, str]]:
    """What building a parameter's value from valid JSON found wrong, for the model.

    The schema cannot say everything: a Pydantic model checks formats (a date, a UUID) and
    runs its validators, a dataclass its ``__post_init__``, a float cannot hold every JSON
    integer. A Pydantic ``ValidationError`` gives one problem per error, by path.
    """
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            found = [
                (
                    path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]),
                    str(e["msg"]),
                )
                for e in errors()
            ]
        except Exception:  # not Pydantic's shape: reported as one problem below
            found = []
        if found:
            return found
    if isinstance(exc, OverflowError):
        return [(path, "the number is too large; send a smaller one")]
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ raises
        text = ""
    return [(path, f"is invalid: {text}" if text else f"is invalid ({type(exc).__name__})")]


def _decode(name: str, arguments: Any) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, bytes | bytearray):
        arguments = arguments.decode("utf-8", "replace")
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            arguments = json.loads(arguments, parse_constant=no_constant, parse_float=_finite)
        except RecursionError:  # the parser's own limit, below MAX_DEPTH's on some Pythons
            raise _too_deep(name) from None
        except ValueError as exc:
            raise ToolCallError.from_problems(
                name,
                [("", f"the arguments are not valid JSON ({exc}); send one JSON object")],
            ) from None
    elif not isinstance(arguments, Mapping):
        raise ToolCallError.from_problems(
            name,
            [
                (
                    "",
                    f"the arguments must be a JSON object, got {type(arguments).__name__}",
                )
            ],
        )
    if not isinstance(arguments, Mapping):
        raise ToolCallError.from_problems(
            name,
            [("", f"the arguments must be one JSON object, got {_a(json_type(arguments))}")],
        )
    if _depth_exceeds(arguments, MAX_DEPTH):
        raise _too_deep(name)
    return dict(arguments)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in ``value`` (level 1).

    Iterative, and it stops at the limit, so a 100k-deep payload (or a dict that contains
    itself) costs no stack and no more than one pass over the values within the limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, Mapping) else node:
            if isinstance(child, Mapping | list | tuple):
                if depth == limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep(name: str) -> ToolCallError:
    return ToolCallError.from_problems(
        name,
        [
            (
                "",
                f"the arguments nest arrays and objects more than {MAX_DEPTH} levels deep; "
                f"send flatter values",
            )
        ],
    )


def _error(name: str, found: list[tuple[str, str]]) -> ToolCallError:
    """The error for ``found``: at most ``MAX_PROBLEMS``, each shortened, the rest counted."""
    shown = [
        (_clip(path, _MAX_PATH), _clip(text, _MAX_TEXT)) for path, text in found[:MAX_PROBLEMS]
    ]
    if len(found) <= MAX_PROBLEMS:
        return ToolCallError.from_problems(name, shown)
    rest = len(found) - len(shown)
    lines = [
        f"Tool call {short_repr(name)} was not run: {len(found)} problems with its arguments;"
        f" the first {len(shown)}:",
        *(f"- {path}: {text}" if path else f"- {text}" for path, text in shown),
        f"- and {rest} more, not listed",
        "Fix every argument listed (and any like them) and call the tool again.",
    ]
    return ToolCallError("\n".join(lines), tool_name=name, problems=shown)


def _clip(text: str, limit: int) -> str:
    """``text`` cut in the middle to ``limit`` characters: a huge key keeps both its ends."""
    if len(text) <= limit:
        return text
    keep = limit - 3
    return f"{text[: keep - keep // 2]}...{text[len(text) - keep // 2 :]}"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _finite(token: str) -> float:
    """A JSON number as a float, refused if no float holds it (``1e400``: not infinity)."""
    value = float(token)
    if math.isinf(value):
        raise ValueError(f"{_clip(token, 40)} is too large a number")
    return value


def _follow(schema: Any, root: Any) -> Any:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return schema
        node = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
        seen += 1
    return schema


def _accepts_null(schema: Any, root: Any) -> bool:
    schema = _follow(schema, root)
    if not isinstance(schema, dict) or schema == {}:
        return True
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_accepts_null(option, root) for option in schema.get("anyOf", ()))


def _drop_nulls(value: Any, schema: Any, root: Any) -> Any:
    """Remove ``null`` for optional properties that do not accept null, at any depth."""
    schema = _follow(schema, root)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        if "anyOf" in schema:
            objects = [o for o in schema["anyOf"] if "properties" in _follow(o, root)]
            return _drop_nulls(value, objects[0], root) if len(objects) == 1 else value
        properties = schema.get("properties")
        if not properties:
            return value
        required = set(schema.get("required", ()))
        out = {}
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None:
                out[key] = item
            elif item is None and key not in required and not _accepts_null(sub, root):
                continue
            else:
                out[key] = _drop_nulls(item, sub, root)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_drop_nulls(item, schema["items"], root) for item in value]
    return value


def _to_python(value: Any, hint: Any) -> Any:
    """Turn a valid JSON value into what ``hint`` asks for."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _to_python(value, args[0])
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return _to_python(value, supertype)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is not type(None) and not problems(value, schema_of(option)):
                return _to_python(value, option)
        return value
    if value is None:
        return None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float):
        return int(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next((m for m in hint if m.value == value), value)
    if origin is typing.Literal:
        for arg in args:  # the literal itself: 1 for 1.0, the Enum member for its value
            if arg.value == value if isinstance(arg, enum.Enum) else json_equal(arg, value):
                return arg
        return value
    if isinstance(value, list):
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_to_python(v, args[0]) for v in value)
            return tuple(_to_python(v, a) for v, a in zip(value, args, strict=False))
        if hint is tuple:
            return tuple(value)
        container = origin or hint
        item = args[0] if args else Any
        if container in (set, abc.Set, abc.MutableSet):
            return {_to_python(v, item) for v in value}
        if container is frozenset:
            return frozenset(_to_python(v, item) for v in value)
        return [_to_python(v, item) for v in value]
    if isinstance(value, dict):
        return _object(value, hint, origin, args)
    return value


def _object(value: dict[str, Any], hint: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(hint, type):
        validate = getattr(hint, "model_validate", None)
        if callable(validate):  # a Pydantic model
            return validate(value)
        if _is_typeddict(hint):
            hints = _hints(hint)
            return {
                k: _to_python(v, _strip_qualifiers(hints.get(k, Any))) for k, v in value.items()
            }
        if dataclasses.is_dataclass(hint):
            hints = _hints(hint)
            return hint(**{k: _to_python(v, hints.get(k, Any)) for k, v in value.items()})
        parse = getattr(hint, "parse_obj", None)
        if callable(parse) and callable(getattr(hint, "schema", None)):  # Pydantic v1
            return parse(value)
    if (origin or hint) in (dict, abc.Mapping, abc.MutableMapping) and len(args) == 2:
        return {k: _to_python(v, args[1]) for k, v in value.items()}
    return value
