"""``ContextItem``: the immutable unit of context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from . import _serde
from ._generic import T
from .errors import SerializationError, short_repr

__all__ = ["ContextItem"]


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
