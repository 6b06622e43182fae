"""``ContextItem``: the immutable unit of context, and the checks its serialized form needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from . import _serde
from ._generic import T
from .errors import SerializationError, short_repr

__all__ = ["ContextItem", "first_non_json"]


_JSON_SCALARS = (str, int, float, bool, type(None))
_LEAVE: Any = object()  # stack marker: the walk leaves a container


def first_non_json(value: Any) -> tuple[str, str] | None:
    """Return ``(path, what)`` for the first part of ``value`` that is not JSON data, else None.

    JSON data is what ``json.dumps`` writes without help: None, bool, int, float, str, lists
    and tuples of JSON data, and dicts with string keys. ``path`` is like ``[0]['text']`` (empty
    for ``value`` itself) and ``what`` names the offender by type only, so both stay small. The
    walk is iterative and linear, so deep nesting cannot exhaust the stack; a container met
    again inside itself is a cycle.
    """
    if isinstance(value, _JSON_SCALARS):  # the common case: one check
        return None
    inside: set[int] = set()
    stack: list[tuple[Any, Any]] = [(value, None)]  # (value, link to its path)
    while stack:
        current, link = stack.pop()
        if current is _LEAVE:
            inside.discard(link)
            continue
        if isinstance(current, _JSON_SCALARS):
            continue
        if not isinstance(current, list | tuple | dict):
            return _path(link), type(current).__name__
        key = id(current)
        if key in inside:
            return _path(link), "a container that contains itself"
        inside.add(key)
        stack.append((_LEAVE, key))
        if isinstance(current, dict):
            for k in current:
                if not isinstance(k, str):
                    return _path((link, k)), f"a {type(k).__name__} key"
            stack.extend((v, (link, k)) for k, v in reversed(current.items()))
        else:
            stack.extend((current[i], (link, i)) for i in range(len(current) - 1, -1, -1))
    return None


def _path(link: Any) -> str:
    """Format a path link chain as ``[0]['text']``, eliding the middle of a deep one."""
    steps: list[Any] = []
    while link is not None:
        link, step = link
        steps.append(step)
    steps.reverse()
    shown = [f"[{short_repr(s)}]" for s in (steps if len(steps) <= 8 else steps[:3] + steps[-3:])]
    if len(steps) > 8:
        shown.insert(3, f"...({len(steps) - 6} more)...")
    return "".join(shown)


@dataclass(frozen=True, init=False)
class ContextItem(Generic[T]):
    """A piece of context: content, plus an id and a description when it lives in a pool.

    Items are immutable and compare (and hash) by their fields, like any frozen dataclass:
    use ``dataclasses.replace(item, content=...)`` for a changed copy. ``ContextItem[str]``
    names the content's type.

    Args:
        content: the payload (default None); keep it JSON data if the item's dict goes
            through ``json``.
        description: what the item holds, shown by ``ContextPool.catalogue()``.
        id: the key in a ``ContextPool``; an item without id goes to a ``ContextQueue``.

    Raises:
        TypeError: ``description`` or ``id`` is neither a string nor None.
    """

    content: T
    description: str | None
    id: str | None

    # Written out rather than generated: a frozen dataclass's own __init__ sets each field
    # through object.__setattr__ and then calls __post_init__, twice the cost of this, and
    # tools build an item per value they return. The original requires ``content``; ours
    # defaults it to None (every call the original accepts means the same here).
    def __init__(
        self,
        content: T = None,  # type: ignore[assignment]
        description: str | None = None,
        id: str | None = None,
    ) -> None:
        if id is not None and not isinstance(id, str):
            raise TypeError(f"ContextItem id must be a string or None, got {short_repr(id)}")
        if description is not None and not isinstance(description, str):
            raise TypeError(
                f"ContextItem description must be a string or None, got {short_repr(description)}"
            )
        fields = self.__dict__  # frozen blocks attribute assignment, not the instance dict
        fields["content"] = content
        fields["description"] = description
        fields["id"] = id

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a plain dict (``content``, ``description``, ``id``)."""
        return {"content": self.content, "description": self.description, "id": self.id}

    @classmethod
    def from_dict(cls, data: Any) -> ContextItem[Any]:
        """Rebuild an item from ``to_dict()`` output.

        ``content`` is kept as given, whatever its type (pygents never calls it); whether
        it survives ``json`` is the caller's concern.

        Raises:
            SerializationError: ``data`` is not such a dict (``content`` missing, ``id`` or
                ``description`` neither a string nor None).
        """
        where = "ContextItem.from_dict"
        data = _serde.mapping(data, where)
        if "content" not in data:
            raise SerializationError(f"{where}: missing field 'content'")
        content = data["content"]
        return cls(
            content=content,
            description=_serde.field(data, "description", (str, type(None)), where, default=None),
            id=_serde.field(data, "id", (str, type(None)), where, default=None),
        )
