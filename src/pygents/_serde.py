"""Validation helpers for ``from_dict()``.

Every problem becomes a ``SerializationError`` naming the object and the field, never a bare
``KeyError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import SerializationError

__all__ = ["field", "hooks_from", "mapping", "optional_time", "tags_from", "time_to_iso"]

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


def hooks_from(data: Mapping[str, Any], where: str) -> list[Any]:
    """Resolve the ``hooks`` field's names through ``HookRegistry``."""
    from ._registry import HookRegistry

    return [HookRegistry.get(name) for name in string_list(data, "hooks", where)]


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
