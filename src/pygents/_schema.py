"""JSON Schema (draft 2020-12) from Python type hints, for tools a model can call.

``ToolSpec`` is built once per tool, on the first read of ``tool.metadata.input_schema`` (or of
anything else that needs it), never while a turn runs: decorating stays cheap and a ``Turn``
built directly never consults a schema.

What each annotation becomes is in ``docs/tools-for-models.md`` (the type-to-schema table).
An annotation that JSON Schema cannot express (a callable, an arbitrary class, a ``TypeVar``)
becomes the permissive schema ``{}`` (any JSON value), never an exception.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
import types
import typing
from collections import abc
from collections.abc import Callable, Mapping
from typing import Any

from . import _callable
from ._serde import is_json

__all__ = ["Param", "ToolSpec", "docstring_parameters", "schema_of", "summary_of"]

Schema = dict[str, Any]

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    None: {"type": "null"},
}
_ARRAYS = (list, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection)
_SETS = (set, frozenset, abc.Set, abc.MutableSet)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)
_STREAMS = (abc.AsyncGenerator, abc.AsyncIterator, abc.AsyncIterable)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


class _Builder:
    """One schema walk: ``$defs`` shared by everything it builds (recursive types land there)."""

    def __init__(self) -> None:
        self.defs: dict[str, Schema] = {}
        self._stack: list[Any] = []
        self._recursive: set[Any] = set()

    def root(self, schema: Schema) -> Schema:
        """Attach the collected ``$defs`` to a root schema."""
        if self.defs:
            schema = {**schema, "$defs": dict(self.defs)}
        return schema

    def build(self, hint: Any) -> Schema:
        """Return the schema of ``hint`` (``{}`` when it cannot be expressed)."""
        if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, typing.TypeVar):
            return {}
        if isinstance(hint, str | typing.ForwardRef):
            return {}  # an unresolvable forward reference
        scalar = _SCALARS.get(hint) if _hashable(hint) else None
        if scalar is not None:
            return dict(scalar)
        supertype = getattr(hint, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return self.build(supertype)
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is typing.Annotated:
            schema = self.build(args[0])
            notes = [a for a in args[1:] if isinstance(a, str)]
            if notes:
                schema = {**schema, "description": " ".join(notes)}
            return schema
        if _is_union(hint):
            return _any_of([self.build(a) for a in args])
        if origin is typing.Literal:
            return _literal(args)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum(hint)
        if origin is tuple or hint is tuple:
            return self._tuple(args, bare=origin is None)
        container = origin if origin is not None else hint
        if container in _SETS:
            schema = {"type": "array", "uniqueItems": True}
            if args:
                schema["items"] = self.build(args[0])
            return schema
        if container in _MAPPINGS:
            schema = {"type": "object"}
            if len(args) == 2:
                schema["additionalProperties"] = self.build(args[1])
            return schema
        if container in _ARRAYS:
            schema = {"type": "array"}
            if args:
                schema["items"] = self.build(args[0])
            return schema
        if isinstance(hint, type):
            return self._class(hint)
        return {}

    def _tuple(self, args: tuple[Any, ...], bare: bool) -> Schema:
        if bare:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.build(args[0])}
        if args == ((),):  # tuple[()] in older spellings
            args = ()
        return {
            "type": "array",
            "prefixItems": [self.build(a) for a in args],
            "items": False,
            "minItems": len(args),
        }

    def _class(self, cls: type) -> Schema:
        if cls in self._stack:
            self._recursive.add(cls)
            return {"$ref": f"#/$defs/{cls.__name__}"}
        model_schema = getattr(cls, "model_json_schema", None)
        if callable(model_schema):  # Pydantic v2, duck-typed: no import of pydantic
            return self._pydantic(cls, model_schema)
        if _is_typeddict(cls):
            make = self._typeddict
        elif dataclasses.is_dataclass(cls):
            make = self._dataclass
        else:
            old_schema = getattr(cls, "schema", None)
            if callable(old_schema):  # Pydantic v1 (or pydantic.v1), duck-typed likewise
                return self._pydantic(cls, old_schema)
            return {}
        self._stack.append(cls)
        try:
            schema = make(cls)
        finally:
            self._stack.pop()
        if cls in self._recursive:
            self.defs[cls.__name__] = schema
            return {"$ref": f"#/$defs/{cls.__name__}"}
        return schema

    def _object(self, cls: type, fields: list[tuple[str, Any, bool, Any]]) -> Schema:
        described = docstring_parameters(inspect.getdoc(cls) or "")
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for name, hint, is_required, default in fields:
            prop = self.build(hint)
            if name in described and "description" not in prop:
                prop = {**prop, "description": described[name]}
            if not is_required and default is not _NO_DEFAULT:
                prop = _with_default(prop, default)
            properties[name] = prop
            if is_required:
                required.append(name)
        schema: Schema = {"type": "object", "title": cls.__name__, "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        summary = summary_of(inspect.getdoc(cls) or "") if cls.__doc__ else ""
        if summary and not summary.startswith(f"{cls.__name__}("):  # not the dataclass default
            schema["description"] = summary
        return schema

    def _typeddict(self, cls: type) -> Schema:
        hints = _hints(cls)
        required_keys = getattr(cls, "__required_keys__", frozenset(hints))
        fields = []
        for name, hint in hints.items():
            # Under ``from __future__ import annotations`` Python 3.11 cannot see the
            # qualifiers when it fills __required_keys__; the resolved hints still carry them.
            qualifier = typing.get_origin(hint)
            if qualifier is typing.NotRequired:
                required = False
            elif qualifier is typing.Required:
                required = True
            else:
                required = name in required_keys
            fields.append((name, _strip_qualifiers(hint), required, _NO_DEFAULT))
        return self._object(cls, fields)

    def _dataclass(self, cls: type) -> Schema:
        hints = _hints(cls)
        fields = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            has_default = f.default is not dataclasses.MISSING
            has_factory = f.default_factory is not dataclasses.MISSING
            default = f.default if has_default else _NO_DEFAULT
            hint = hints.get(f.name, Any)
            fields.append((f.name, hint, not (has_default or has_factory), default))
        return self._object(cls, fields)

    def _pydantic(self, cls: type, model_schema: Callable[..., Any]) -> Schema:
        """The schema a model class gives of itself (``model_json_schema()``, ``schema()``).

        Its definitions (``$defs``, or Pydantic v1's ``definitions``) join the tool's
        ``$defs``, which its references point to. Anything but a dict, or a method that
        raises, gives ``{}`` (no constraint).
        """
        try:
            try:
                made = model_schema(ref_template="#/$defs/{model}")
            except TypeError:  # a schema() of another shape: its own references
                made = model_schema()
        except Exception:
            return {}
        if not isinstance(made, dict):
            return {}
        schema = dict(made)
        for key in ("$defs", "definitions"):
            defs = schema.pop(key, None)
            if isinstance(defs, dict):
                for name, sub in defs.items():
                    self.defs.setdefault(name, sub)
        return schema


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"


_NO_DEFAULT: Any = _NoDefault()


def _with_default(schema: Schema, default: Any) -> Schema:
    """Add ``default`` when it is JSON data (an ``Enum`` member as its value)."""
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, tuple | frozenset | set):
        default = list(default)
    if not is_json(default):  # NaN and the infinities are floats, but not JSON
        return schema
    return {**schema, "default": default}


def _hashable(hint: Any) -> bool:
    try:
        hash(hint)
    except TypeError:
        return False
    return True


def _hints(owner: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(owner, include_extras=True)
    except Exception:
        pass
    # One forward reference does not resolve: resolve the others one by one (the failing
    # ones become Any, the permissive schema).
    resolved: dict[str, Any] = {}
    for name, hint in dict(getattr(owner, "__annotations__", {})).items():
        probe = types.SimpleNamespace(__annotations__={name: hint})
        try:
            globalns = getattr(owner, "__globals__", None)
            if globalns is None:
                module = sys.modules.get(getattr(owner, "__module__", ""), None)
                globalns = vars(module) if module is not None else {}
            resolved[name] = typing.get_type_hints(probe, globalns, include_extras=True)[name]
        except Exception:
            resolved[name] = Any
    return resolved


def _strip_qualifiers(hint: Any) -> Any:
    """``Required[T]`` / ``NotRequired[T]`` / ``ReadOnly[T]`` -> ``T``."""
    while typing.get_origin(hint) in (typing.Required, typing.NotRequired):
        hint = typing.get_args(hint)[0]
    return hint


def _is_typeddict(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__total__")


def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _typed_enum(values: list[Any]) -> Schema:
    kinds = {_json_type(v) for v in values}
    schema: Schema = {}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    schema["enum"] = values
    return schema


def _literal(args: tuple[Any, ...]) -> Schema:
    values: list[Any] = []
    for arg in args:
        if typing.get_origin(arg) is typing.Literal:  # nested Literal[Literal[...]]
            values.extend(typing.get_args(arg))
        else:
            values.append(arg.value if isinstance(arg, enum.Enum) else arg)
    if not all(is_json(v) for v in values):
        return {}
    return _typed_enum(values)


def _enum(cls: type[enum.Enum]) -> Schema:
    values = [member.value for member in cls]
    if not all(is_json(v) for v in values):
        return {}
    schema = _typed_enum(values)
    schema["title"] = cls.__name__
    return schema


def _any_of(options: list[Schema]) -> Schema:
    flat: list[Schema] = []
    for option in options:
        if option == {}:
            return {}  # anything | X is anything
        nested = option.get("anyOf") if len(option) == 1 else None
        for item in nested if nested is not None else [option]:
            if item not in flat:
                flat.append(item)
    return flat[0] if len(flat) == 1 else {"anyOf": flat}


def schema_of(hint: Any) -> Schema:
    """Return the JSON Schema of one annotation, ``$defs`` included when needed."""
    builder = _Builder()
    return builder.root(builder.build(hint))


# --------------------------------------------------------------------------- docstrings

_GOOGLE_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$"
)
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_ANY_GOOGLE_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_NUMPY_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?::\s*(.*))?$")
_REST_PARAM = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?(\w+)\s*:(.*)$"
)
_REST_FIELD = re.compile(r"^:\w+")


def summary_of(doc: str) -> str:
    """Return the docstring's text before its first section (Google, NumPy or reST)."""
    lines = doc.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if _ANY_GOOGLE_SECTION.match(stripped) or _REST_FIELD.match(stripped):
            break
        if i + 1 < len(lines) and stripped and _NUMPY_UNDERLINE.match(lines[i + 1]):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def docstring_parameters(doc: str) -> dict[str, str]:
    """Return ``{parameter: description}`` from a Google, NumPy or reST docstring."""
    lines = doc.expandtabs().splitlines()
    found: dict[str, str] = {}
    _google(lines, found)
    _numpy(lines, found)
    _rest(lines, found)
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google(lines: list[str], found: dict[str, str]) -> None:
    i = 0
    while i < len(lines):
        header = lines[i]
        i += 1
        if not _GOOGLE_SECTION.match(header.strip()):
            continue
        base = _indent(header)
        item_indent: int | None = None
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            if line.strip() and _indent(line) <= base:
                break  # the section ended
            i += 1
            if not line.strip():
                continue
            if item_indent is None:
                item_indent = _indent(line)
            match = _GOOGLE_ITEM.match(line.strip()) if _indent(line) == item_indent else None
            if match:
                current = match.group(1)
                found[current] = match.group(3).strip()
            elif current is not None:
                found[current] = f"{found[current]} {line.strip()}".strip()


def _numpy(lines: list[str], found: dict[str, str]) -> None:
    i = 0
    while i + 1 < len(lines):
        title = lines[i].strip()
        if title not in ("Parameters", "Other Parameters") or not _NUMPY_UNDERLINE.match(
            lines[i + 1]
        ):
            i += 1
            continue
        base = _indent(lines[i])
        i += 2
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            if i + 1 < len(lines) and line.strip() and _NUMPY_UNDERLINE.match(lines[i + 1]):
                break  # the next section
            i += 1
            if not line.strip():
                continue
            if _indent(line) == base:
                match = _NUMPY_ITEM.match(line.strip())
                current = match.group(1) if match else None
                if current is not None:
                    found.setdefault(current, "")
            elif current is not None:
                found[current] = f"{found[current]} {line.strip()}".strip()


def _rest(lines: list[str], found: dict[str, str]) -> None:
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        match = _REST_PARAM.match(stripped)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif _REST_FIELD.match(stripped) or not stripped:
            current = None
        elif current is not None:
            found[current] = f"{found[current]} {stripped}".strip()


# --------------------------------------------------------------------------- tools


@dataclasses.dataclass(frozen=True)
class Param:
    """A parameter a model supplies: its name, annotation, schema and how it is passed."""

    name: str
    hint: Any
    schema: Schema
    required: bool
    positional_only: bool


class ToolSpec:
    """A tool's schemas and model-facing parameters, computed once from its function.

    Args:
        fn: the tool's function.
        fixed_kwargs: the decorator's fixed kwargs (not in the input schema).
        is_generator: the output schema then describes one yielded item.
    """

    def __init__(
        self, fn: Callable[..., Any], fixed_kwargs: Mapping[str, Any], is_generator: bool
    ) -> None:
        doc = inspect.getdoc(fn) or ""
        self.summary = summary_of(doc)
        described = docstring_parameters(doc)
        hints = _hints(fn)
        builder = _Builder()
        params: list[Param] = []
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for name, p in inspect.signature(fn).parameters.items():
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if name in fixed_kwargs:
                continue
            hint = hints.get(name, Any)
            if _callable._classify(hint) is not None:
                continue  # the agent injects its ContextQueue / ContextPool here
            prop = builder.build(hint)
            if name in described and described[name] and "description" not in prop:
                prop = {**prop, "description": described[name]}
            is_required = p.default is inspect.Parameter.empty
            prop = _with_default(prop, p.default) if not is_required else prop
            properties[name] = prop
            if is_required:
                required.append(name)
            params.append(
                Param(name, hint, prop, is_required, p.kind is inspect.Parameter.POSITIONAL_ONLY)
            )
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        self.params = tuple(params)
        self.input_schema = builder.root(schema)
        self.output_schema = schema_of(_output_hint(hints.get("return", Any), is_generator))


def _output_hint(hint: Any, is_generator: bool) -> Any:
    if not is_generator:
        return hint
    origin = typing.get_origin(hint)
    if origin in _STREAMS:
        args = typing.get_args(hint)
        return args[0] if args else Any
    return Any
