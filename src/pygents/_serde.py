"""Validation helpers for ``from_dict()``.

Every problem becomes a ``SerializationError`` naming the object and the field, never a bare
``KeyError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ._enums import HOOK_FAMILIES, hook_name, hook_types
from ._hooks import alias
from ._registry import HookRegistryBase as HookRegistry
from .errors import SerializationError, UnregisteredHookError, short_repr

__all__ = [
    "field",
    "hooks_from",
    "hooks_to",
    "json_text",
    "mapping",
    "no_constant",
    "optional_time",
    "tags_from",
    "time_to_iso",
]

short = short_repr

_MISSING = object()
#: ``field(..., default=REQUIRED)``: the field must be present.
REQUIRED: Any = _MISSING


def mapping(data: Any, where: str) -> Mapping[str, Any]:
    """Return ``data`` if it is a mapping, else raise."""
    if not isinstance(data, Mapping):
        raise SerializationError(f"{where}: expected a dict, got {type(data).__name__}")
    return data


def field(
    data: Mapping[str, Any],
    name: str,
    types: type | tuple[type, ...],
    where: str,
    default: Any = _MISSING,
) -> Any:
    """Return ``data[name]`` checked against ``types``; raise naming the field."""
    value = data.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise SerializationError(f"{where}: missing field {name!r}")
        return default
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        expected = " or ".join(t.__name__ for t in _as_tuple(types))
        raise SerializationError(
            f"{where}: field {name!r} must be {expected}, got {type(value).__name__}"
        )
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def string_list(data: Mapping[str, Any], name: str, where: str) -> list[str]:
    """Return a list-of-strings field (default empty)."""
    values = field(data, name, list, where, default=[])
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise SerializationError(
                f"{where}: field {name!r}[{i}] must be str, got {type(value).__name__}"
            )
    return list(values)


def tags_from(data: Mapping[str, Any], where: str) -> list[str]:
    """Return the ``tags`` field."""
    return string_list(data, "tags", where)


def hooks_to(hooks: Iterable[Any]) -> dict[str, list[str]]:
    """Serialize a hooks list: hook-type value -> hook names, in list order.

    A hook listening to several types appears under each of them; no hooks gives ``{}``.
    """
    out: dict[str, list[str]] = {}
    for h in hooks:
        name = hook_name(h)
        for member in hook_types(h):
            out.setdefault(member.value, []).append(name)
    return out


def _members_by_value() -> dict[str, tuple[Any, ...]]:
    found: dict[str, list[Any]] = {}
    for family in HOOK_FAMILIES:
        for member in family:
            found.setdefault(member.value, []).append(member)
    return {k: tuple(v) for k, v in found.items()}


#: Hook-type value -> the members carrying it ("on_error" is a TurnHook and a ToolHook).
_MEMBERS: dict[str, tuple[Any, ...]] = _members_by_value()


def hooks_from(
    data: Mapping[str, Any],
    where: str,
    key: str = "hooks",
    families: tuple[type, ...] | None = None,
) -> list[Any]:
    """Resolve a serialized hooks field through ``HookRegistry``.

    Accepts the mapping form (hook-type value -> list of names, walked in key then list
    order; a name seen again is skipped, so a multi-type hook comes back once) and the older
    plain list of names. A key may be the value of any hook type, of any family: hooks lists
    are plain lists, and whatever ``hooks_to`` writes comes back. A name under a type its hook
    does not listen to (a hook stacked onto another event of this owner) comes back as an
    alias firing on that type.

    Args:
        data: the serialized object.
        where: who is being restored, for messages (``"Turn.from_dict"``).
        key: the field holding the hooks.
        families: the hook-type enums this owner fires. They refuse nothing; they say which
            event a key means when two families share its value (``"on_error"`` on a turn is
            ``TurnHook.ON_ERROR``), which decides whether a hook comes back as itself or
            stacked onto the owner's event.

    Raises:
        SerializationError: the field is malformed (not a dict or list, a value that is not a
            list of names), or a key is not the value of any hook type.
        UnregisteredHookError: a name is not in ``HookRegistry``.
    """
    raw = data.get(key)
    if raw is None:
        return []
    if isinstance(raw, list):
        entries: list[tuple[str | None, Any, str]] = [
            (None, name, f"{key!r}[{i}]") for i, name in enumerate(raw)
        ]
    elif isinstance(raw, Mapping):
        entries = []
        for type_value, names in raw.items():
            path = f"{key!r}[{short(type_value)}]"
            if not isinstance(type_value, str):
                raise SerializationError(
                    f"{where}: field {key!r} has a key {short(type_value)} that is not a hook "
                    f"type name (a string such as 'before_run')"
                )
            if type_value not in _MEMBERS:
                raise SerializationError(
                    f"{where}: field {key!r} has an unknown hook type {short(type_value)}"
                )
            if not isinstance(names, list):
                raise SerializationError(
                    f"{where}: field {path} must be a list of hook names, "
                    f"got {type(names).__name__}"
                )
            entries.extend((type_value, name, f"{path}[{i}]") for i, name in enumerate(names))
    else:
        raise SerializationError(
            f"{where}: field {key!r} must be a dict of hook type -> hook names, "
            f"got {type(raw).__name__}"
        )
    out: list[Any] = []
    seen: set[str] = set()
    seen_aliases: set[tuple[str, Any]] = set()
    for type_value, name, path in entries:
        if not isinstance(name, str):
            raise SerializationError(
                f"{where}: field {path} must be a hook name (str), got {type(name).__name__}"
            )
        try:
            found = HookRegistry.get(name)
        except UnregisteredHookError as exc:
            raise UnregisteredHookError(f"{where}: field {path}: {exc}") from None
        member = None if type_value is None else _stacked_on(found, type_value, families)
        if member is None:
            if name not in seen:
                seen.add(name)
                out.append(found)
        elif (name, member) not in seen_aliases:
            # Stacked onto another event of this owner: fire on that event here.
            seen_aliases.add((name, member))
            out.append(alias(found, member))
    return out


def _stacked_on(found: Any, type_value: str, families: tuple[type, ...] | None) -> Any:
    """Return the event a hook listed under ``type_value`` was stacked onto; None if its own.

    The key means the owner's event of that name when the owner has one (``"on_evict"`` in a
    queue's hooks is ``ContextQueueHook.ON_EVICT``), else any event of that name. A hook
    listening to it comes back as itself: this is how a hook of another family put in the
    list (hooks lists are plain lists) round-trips. One that does not was stacked onto it.
    """
    members = _MEMBERS[type_value]
    if families is not None:
        members = tuple(m for m in members if type(m) in families) or members
    types = hook_types(found)
    if any(t in members for t in types):
        return None
    same_family = [m for m in members if any(type(t) is type(m) for t in types)]
    return (same_family or list(members))[0]


def time_to_iso(value: float | None) -> str | None:
    """Format an epoch timestamp as ISO 8601 (UTC)."""
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def optional_time(data: Mapping[str, Any], name: str, where: str) -> float | None:
    """Parse an optional ISO 8601 timestamp field into an epoch float."""
    value = field(data, name, (str, type(None)), where, default=None)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SerializationError(
            f"{where}: field {name!r} is not an ISO 8601 timestamp: {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    stamp = parsed.timestamp()
    try:
        datetime.fromtimestamp(stamp, UTC)
    except (ValueError, OverflowError, OSError):
        raise SerializationError(
            f"{where}: field {name!r} is out of the representable range: {value!r}"
        ) from None
    return stamp


def nested(where: str, path: str, build: Any, raw: Any) -> Any:
    """Call ``build(raw)``; prefix a ``SerializationError`` with the field path."""
    try:
        return build(raw)
    except SerializationError as exc:
        raise SerializationError(f"{where}: field {path}: {exc}") from None


# -- JSON data ---------------------------------------------------------------------------------

_NESTED = (dict, list, tuple)


def no_constant(token: str) -> Any:
    """``json.loads``' ``parse_constant``: ``NaN`` and the infinities are not JSON; refused."""
    raise ValueError(f"{token} is not JSON")


def json_text(value: Any, roots: Iterable[Any] | None = None) -> str:
    """``value`` as compact JSON text, if it is JSON data that comes back as it went.

    Refused (``SerializationError`` saying why): what ``json`` cannot write (an object, a set,
    bytes), NaN and infinities, nesting deeper than ``json`` goes, and a dict key that is not
    a string (``json`` writes ``1``, ``True`` and ``None`` as ``"1"``, ``"true"`` and
    ``"null"``, and two keys may become one). A tuple is written as a list.

    Args:
        value: the data.
        roots: where in ``value`` a key may not be a string (the parts a program gave; the
            rest is known to be fine); None: all of ``value``.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(str(exc)) from None
    except RecursionError:
        raise SerializationError("it is nested too deeply") from None
    if not _str_keys_only([value] if roots is None else roots):
        raise SerializationError(_key_problem(value))
    return text


def is_json(value: Any) -> bool:
    """Whether ``value`` is JSON data that comes back as it went (see ``json_text``)."""
    try:
        json_text(value)
    except SerializationError:
        return False
    return True


def _str_keys_only(data: Iterable[Any]) -> bool:
    """Whether every dict in ``data`` has string keys."""
    stack = [value for value in data if isinstance(value, _NESTED)]
    pop, push = stack.pop, stack.append
    while stack:
        value = pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return False
                if isinstance(item, _NESTED):
                    push(item)
        else:
            for item in value:
                if isinstance(item, _NESTED):
                    push(item)
    return True


def _key_problem(value: Any) -> str:
    """Where ``_str_keys_only`` failed, for the error (walked again, with paths)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        value, path = stack.pop()
        if not isinstance(value, _NESTED):
            continue
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in pairs:
            if isinstance(value, dict) and not isinstance(key, str):
                return f"{path or 'the data'} has a key that is not a string: {short(key)}"
            if isinstance(item, _NESTED):
                stack.append((item, f"{path}[{key!r}]"))
    return "a dict key is not a string"
