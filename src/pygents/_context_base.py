"""What ``ContextQueue`` and ``ContextPool`` share: hooks, tags, name, owner, dunders, serde."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from . import _serde
from ._callable import ArgumentFit
from ._context_item import ContextItem
from ._dispatch import fire
from ._enums import ContextPoolHook, ContextQueueHook
from ._generic import T
from ._hooks import hook_list, normalize_tags
from ._registry import GLOBAL_BY_TYPE
from .errors import SerializationError, short_repr

__all__ = ["KEEP", "Container", "check_limit"]

#: ``branch()``'s "inherit from the parent" default (``None`` means something else there).
KEEP: Any = object()
C = TypeVar("C", bound="Container")


def check_limit(limit: Any, what: str, allow_none: bool) -> int | None:
    """Return a valid limit; raise ``TypeError`` or ``ValueError`` (``limit must be >= 1``)."""
    if limit is None and allow_none:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(
            f"{what} limit must be an int{' or None' if allow_none else ''}, "
            f"got {short_repr(limit)}"
        )
    if limit < 1:
        raise ValueError(f"{what} limit must be >= 1, got {short_repr(limit)}")
    return limit


class Container(Generic[T]):
    """The shared half of queue and pool: hooks, tags, name, owner, dispatch and serialization."""

    #: The hook family it fires (what a ``from_dict`` hooks key means when families share it).
    family: ClassVar[type[ContextQueueHook] | type[ContextPoolHook]]

    hooks: list[Any]
    _tags: frozenset[str]
    name: str | None
    _limit: int | None
    _owner: str | None
    _items: Any

    def _init_common(
        self, hooks: Iterable[Any] | None, tags: Iterable[str] | None, name: str | None
    ) -> None:
        self.hooks = hook_list(hooks, f"{type(self).__name__} hooks")
        self._tags = normalize_tags(tags, type(self).__name__)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__} name must be a string or None")
        self.name = name
        self._owner = None

    @property
    def tags(self) -> frozenset[str]:
        """Tags matched by tag-filtered global hooks.

        Assigning converts like the constructor: any iterable of strings (None: no tags)
        becomes a ``frozenset``; a bare string or a non-string tag raises ``TypeError``.
        """
        return self._tags

    @tags.setter
    def tags(self, value: Iterable[str] | None) -> None:
        self._tags = normalize_tags(value, type(self).__name__)

    def _values(self) -> Iterable[ContextItem[T]]:
        raise NotImplementedError

    def _fire(self, hook_type: ContextQueueHook | ContextPoolHook, *args: Any) -> Awaitable[Any]:
        return fire(hook_type, (self.hooks,), GLOBAL_BY_TYPE[hook_type], self._tags, self, *args)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[ContextItem[T]]:
        return iter(list(self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self._limit}, len={len(self)})"

    def to_dict(self) -> dict[str, Any]:
        """Return the container as a plain dict: limit, items, hooks by type, tags (and name).

        ``"hooks"`` maps each hook-type value to the names of the hooks of that type, e.g.
        ``{"before_append": ["audit"]}``; ``"name"`` is present only when set.
        """
        data: dict[str, Any] = {
            "limit": self._limit,
            "items": [item.to_dict() for item in self._values()],
            "hooks": _serde.hooks_to(self.hooks),
            "tags": sorted(self._tags),
        }
        if self.name is not None:
            data["name"] = self.name
        return data

    @classmethod
    def _blank(cls: type[C], limit: Any, tags: Any) -> C:
        """An empty instance of ``cls``: ``cls(limit=..., tags=...)``, as the original does.

        A subclass whose ``__init__`` takes no ``tags`` (the original's guide asks only for
        ``limit`` and ``hooks``) is called with ``limit=`` alone, and the tags are set after.
        """
        names = ArgumentFit(cls).names  # None: **kwargs takes any
        if names is not None and "tags" not in names:
            made = cls(limit=limit)  # type: ignore[call-arg]
            made.tags = tags
            return made
        return cls(limit=limit, tags=tags)  # type: ignore[call-arg]

    @classmethod
    def _parse(
        cls: type[C], data: Any, limit_types: type | tuple[type, ...], default_limit: Any
    ) -> tuple[C, list[Any], str]:
        """Build an empty container from ``to_dict()`` output; return it, raw items, where.

        The class is made as ``branch()`` makes a child (see ``_blank``), so a subclass
        round-trips as itself.
        """
        where = f"{cls.__name__}.from_dict"
        data = _serde.mapping(data, where)
        limit = _serde.field(data, "limit", limit_types, where, default=default_limit)
        hooks = _serde.hooks_from(data, where, families=(cls.family,))
        tags = _serde.tags_from(data, where)
        name = _serde.field(data, "name", (str, type(None)), where, default=None)
        try:
            made = cls._blank(limit, tags)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"{where}: {exc}") from None
        made.hooks = hooks
        made.name = name
        items = _serde.field(data, "items", list, where, default=[])
        return made, items, where

    @property
    def owner(self) -> str | None:
        """Name of the agent this object belongs to, if any."""
        return self._owner

    def _adopt(self, agent_name: str) -> None:
        if self._owner is None:
            self._owner = agent_name
