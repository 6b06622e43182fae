"""Context: ``ContextItem``, the bounded ``ContextQueue`` and the keyed ``ContextPool``."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Iterable, Iterator
from typing import Any, TypeVar

from . import _serde
from ._enums import ContextPoolHook, ContextQueueHook
from ._hooks import HookPoint, fire, normalize_tags
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE
from .errors import SerializationError

__all__ = ["ContextItem", "ContextPool", "ContextQueue"]

_QUEUE_GLOBALS = GLOBAL_BY_FAMILY[ContextQueueHook]
_POOL_GLOBALS = GLOBAL_BY_FAMILY[ContextPoolHook]
_KEEP: Any = object()  # "inherit" sentinel for branch()
C = TypeVar("C", bound="_Container")


class ContextItem:
    """A piece of context: content, plus an id and description when it lives in a pool.

    Args:
        content: anything; it must be JSON-compatible for ``to_dict()`` to round-trip.
        id: the key in a ``ContextPool``; an item without id goes to a ``ContextQueue``.
        description: what the item holds, shown by ``ContextPool.catalogue()``.
    """

    __slots__ = ("content", "description", "id")

    def __init__(self, content: Any = None, id: str | None = None, description: str | None = None):
        if id is not None and not isinstance(id, str):
            raise TypeError(f"ContextItem id must be a string or None, got {id!r}")
        if description is not None and not isinstance(description, str):
            raise TypeError(
                f"ContextItem description must be a string or None, got {description!r}"
            )
        self.content = content
        self.id = id
        self.description = description

    def __repr__(self) -> str:
        return (
            f"ContextItem(id={self.id!r}, description={self.description!r}, "
            f"content={self.content!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContextItem):
            return NotImplemented
        return (self.id, self.description, self.content) == (
            other.id,
            other.description,
            other.content,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a plain dict."""
        return {"id": self.id, "description": self.description, "content": self.content}

    @classmethod
    def from_dict(cls, data: Any) -> ContextItem:
        """Rebuild an item from ``to_dict()`` output."""
        where = "ContextItem.from_dict"
        data = _serde.mapping(data, where)
        if "content" not in data:
            raise SerializationError(f"{where}: missing field 'content'")
        return cls(
            content=data["content"],
            id=_serde.field(data, "id", (str, type(None)), where, default=None),
            description=_serde.field(data, "description", (str, type(None)), where, default=None),
        )


def _check_limit(limit: Any, what: str, allow_none: bool) -> int | None:
    if limit is None and allow_none:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(
            f"{what} limit must be an int{' or None' if allow_none else ''}, got {limit!r}"
        )
    if limit < 1:
        raise ValueError(f"{what} limit must be >= 1, got {limit}")
    return limit


class _Container:
    """What queue and pool share: hooks, tags, name, owner, dispatch and serialization."""

    hooks: list[Any]
    tags: frozenset[str]
    name: str | None
    limit: int | None
    _owner: str | None

    def _init_common(
        self, hooks: Iterable[Any] | None, tags: Iterable[str] | None, name: str | None
    ) -> None:
        self.hooks = list(hooks) if hooks is not None else []
        self.tags = normalize_tags(tags, type(self).__name__)
        self.name = name
        self._owner = None

    def _values(self) -> Iterable[ContextItem]:
        raise NotImplementedError

    def _fire(self, hook_type: ContextQueueHook | ContextPoolHook, *args: Any) -> Awaitable[Any]:
        return fire(hook_type, (self.hooks,), GLOBAL_BY_TYPE[hook_type], self.tags, self, *args)

    def __len__(self) -> int:
        return len(self._items)  # type: ignore[attr-defined]

    def __bool__(self) -> bool:
        return bool(self._items)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[ContextItem]:
        return iter(list(self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, items={len(self)})"

    def to_dict(self) -> dict[str, Any]:
        """Return the container (limit, items, hook names, tags, name) as a plain dict."""
        return {
            "limit": self.limit,
            "items": [item.to_dict() for item in self._values()],
            "hooks": [h.metadata.name for h in self.hooks],
            "tags": sorted(self.tags),
            "name": self.name,
        }

    @classmethod
    def _parse(
        cls: type[C], data: Any, limit_types: type | tuple[type, ...], default_limit: Any
    ) -> tuple[C, list[Any], str]:
        """Build an empty container from ``to_dict()`` output; return it, raw items, where."""
        where = f"{cls.__name__}.from_dict"
        data = _serde.mapping(data, where)
        try:
            made = cls(  # type: ignore[call-arg]
                _serde.field(data, "limit", limit_types, where, default=default_limit),
                hooks=_serde.hooks_from(data, where),
                tags=_serde.tags_from(data, where),
                name=_serde.field(data, "name", (str, type(None)), where, default=None),
            )
        except SerializationError:
            raise
        except ValueError as exc:
            raise SerializationError(f"{where}: {exc}") from None
        items = _serde.field(data, "items", list, where, default=[])
        return made, items, where

    @property
    def owner(self) -> str | None:
        """Name of the agent this object belongs to, if any."""
        return self._owner

    def _adopt(self, agent_name: str) -> None:
        if self._owner is None:
            self._owner = agent_name


class ContextQueue(_Container):
    """A bounded window of ``ContextItem``s; the oldest is evicted when full.

    Args:
        limit: the most items kept (>= 1).
        hooks: instance hooks to start with.
        tags: tags matched by tag-filtered global hooks.
        name: optional name (used as the metrics ``owner`` when no agent owns it).
    """

    before_append = HookPoint["ContextQueue"](ContextQueueHook.BEFORE_APPEND)
    after_append = HookPoint["ContextQueue"](ContextQueueHook.AFTER_APPEND)
    before_clear = HookPoint["ContextQueue"](ContextQueueHook.BEFORE_CLEAR)
    after_clear = HookPoint["ContextQueue"](ContextQueueHook.AFTER_CLEAR)
    on_evict = HookPoint["ContextQueue"](ContextQueueHook.ON_EVICT)

    def __init__(
        self,
        limit: int,
        hooks: Iterable[Any] | None = None,
        tags: Iterable[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.limit: int = _check_limit(limit, "ContextQueue", allow_none=False)  # type: ignore[assignment]
        self._items: deque[ContextItem] = deque()
        self._init_common(hooks, tags, name)

    def _values(self) -> Iterable[ContextItem]:
        return self._items

    async def append(self, *items: ContextItem) -> None:
        """Append items, evicting the oldest past the limit.

        Raises:
            TypeError: an argument is not a ``ContextItem`` (nothing is appended).
        """
        for item in items:
            if not isinstance(item, ContextItem):
                raise TypeError(
                    f"ContextQueue.append takes ContextItem objects, got {type(item).__name__}: "
                    f"wrap it as ContextItem(content=...)"
                )
        hooked = bool(self.hooks or _QUEUE_GLOBALS)
        if hooked:
            await self._fire(ContextQueueHook.BEFORE_APPEND, list(items), list(self._items))
        queue = self._items
        for item in items:
            if len(queue) >= self.limit:
                evicted = queue.popleft()
                if hooked:
                    await self._fire(ContextQueueHook.ON_EVICT, evicted)
            queue.append(item)
        if hooked:
            await self._fire(ContextQueueHook.AFTER_APPEND, list(items), list(queue))

    async def clear(self) -> None:
        """Remove every item."""
        if self.hooks or _QUEUE_GLOBALS:
            await self._fire(ContextQueueHook.BEFORE_CLEAR, list(self._items))
            self._items.clear()
            await self._fire(ContextQueueHook.AFTER_CLEAR)
        else:
            self._items.clear()

    @property
    def items(self) -> list[ContextItem]:
        """A copy of the items, oldest first."""
        return list(self._items)

    def branch(
        self,
        limit: int | None = None,
        hooks: Iterable[Any] | None = _KEEP,
        tags: Iterable[str] | None = _KEEP,
    ) -> ContextQueue:
        """Return an independent copy: a snapshot of the items (the newest ``limit`` of them).

        Args:
            limit: the child's limit (default: the same).
            hooks: the child's hooks (default: the same hooks; ``[]`` for none).
            tags: the child's tags (default: the same).
        """
        child = ContextQueue(
            self.limit if limit is None else limit,
            hooks=self.hooks if hooks is _KEEP else hooks,
            tags=self.tags if tags is _KEEP else tags,
            name=self.name,
        )
        snapshot = list(self._items)
        child._items.extend(snapshot[-child.limit :])
        return child

    @classmethod
    def from_dict(cls, data: Any) -> ContextQueue:
        """Rebuild a queue from ``to_dict()`` output (hooks resolved via ``HookRegistry``)."""
        queue, items, where = cls._parse(data, int, _serde.REQUIRED)
        built = [
            _serde.nested(where, f"'items'[{i}]", ContextItem.from_dict, raw)
            for i, raw in enumerate(items)
        ]
        queue._items.extend(built[-queue.limit :])
        return queue


class ContextPool(_Container):
    """A keyed, optionally bounded store of ``ContextItem``s, oldest evicted first.

    Args:
        limit: the most items kept (>= 1), or None for no bound.
        hooks: instance hooks to start with.
        tags: tags matched by tag-filtered global hooks.
        name: optional name (used as the metrics ``owner`` when no agent owns it).
    """

    before_add = HookPoint["ContextPool"](ContextPoolHook.BEFORE_ADD)
    after_add = HookPoint["ContextPool"](ContextPoolHook.AFTER_ADD)
    before_remove = HookPoint["ContextPool"](ContextPoolHook.BEFORE_REMOVE)
    after_remove = HookPoint["ContextPool"](ContextPoolHook.AFTER_REMOVE)
    before_clear = HookPoint["ContextPool"](ContextPoolHook.BEFORE_CLEAR)
    after_clear = HookPoint["ContextPool"](ContextPoolHook.AFTER_CLEAR)
    on_evict = HookPoint["ContextPool"](ContextPoolHook.ON_EVICT)

    def __init__(
        self,
        limit: int | None = None,
        hooks: Iterable[Any] | None = None,
        tags: Iterable[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.limit = _check_limit(limit, "ContextPool", allow_none=True)
        self._items: dict[str, ContextItem] = {}
        self._init_common(hooks, tags, name)

    def _values(self) -> Iterable[ContextItem]:
        return self._items.values()

    async def add(self, item: ContextItem) -> None:
        """Store ``item`` under its id, replacing an item with the same id.

        When the pool is full and the id is new, the oldest item is evicted first.

        Raises:
            TypeError: ``item`` is not a ``ContextItem``.
            ValueError: the item has no id or no description.
        """
        if not isinstance(item, ContextItem):
            raise TypeError(f"ContextPool.add takes a ContextItem, got {type(item).__name__}")
        if item.id is None or item.description is None:
            raise ValueError(
                f"ContextPool.add needs an item with both id and description, got {item!r}"
            )
        items = self._items
        if not (self.hooks or _POOL_GLOBALS):
            if self.limit is not None and item.id not in items and len(items) >= self.limit:
                del items[next(iter(items))]
            items[item.id] = item
            return
        await self._fire(ContextPoolHook.BEFORE_ADD, item)
        if self.limit is not None and item.id not in items and len(items) >= self.limit:
            oldest = next(iter(items.values()))
            await self._fire(ContextPoolHook.ON_EVICT, oldest)
            items.pop(oldest.id, None)  # type: ignore[arg-type]
        items[item.id] = item
        await self._fire(ContextPoolHook.AFTER_ADD, item)

    def get(self, id: str, default: ContextItem | None = None) -> ContextItem | None:
        """Return the item stored under ``id``, or ``default``."""
        return self._items.get(id, default)

    def __getitem__(self, id: str) -> ContextItem:
        try:
            return self._items[id]
        except KeyError:
            raise KeyError(f"No item {id!r} in the pool; catalogue() lists what is there") from None

    def __contains__(self, id: object) -> bool:
        return id in self._items

    async def remove(self, id: str) -> ContextItem:
        """Remove and return the item stored under ``id``.

        Raises:
            KeyError: no item has that id.
        """
        item = self[id]
        hooked = bool(self.hooks or _POOL_GLOBALS)
        if hooked:
            await self._fire(ContextPoolHook.BEFORE_REMOVE, item)
        self._items.pop(id, None)
        if hooked:
            await self._fire(ContextPoolHook.AFTER_REMOVE, item)
        return item

    async def clear(self) -> None:
        """Remove every item."""
        if self.hooks or _POOL_GLOBALS:
            await self._fire(ContextPoolHook.BEFORE_CLEAR, dict(self._items))
            self._items.clear()
            await self._fire(ContextPoolHook.AFTER_CLEAR)
        else:
            self._items.clear()

    def catalogue(self) -> str:
        """Return one ``- [id] description`` line per item, oldest first."""
        return "\n".join(f"- [{i.id}] {i.description}" for i in self._items.values())

    @property
    def items(self) -> list[ContextItem]:
        """A copy of the items, oldest first."""
        return list(self._items.values())

    def branch(
        self,
        limit: int | None = _KEEP,
        hooks: Iterable[Any] | None = _KEEP,
        tags: Iterable[str] | None = _KEEP,
    ) -> ContextPool:
        """Return an independent copy holding a snapshot of the items.

        Args:
            limit: the child's limit (default: the same; None for unbounded).
            hooks: the child's hooks (default: the same hooks; ``[]`` for none).
            tags: the child's tags (default: the same).
        """
        child = ContextPool(
            self.limit if limit is _KEEP else limit,
            hooks=self.hooks if hooks is _KEEP else hooks,
            tags=self.tags if tags is _KEEP else tags,
            name=self.name,
        )
        snapshot = list(self._items.values())
        if child.limit is not None:
            snapshot = snapshot[-child.limit :]
        child._items.update((i.id, i) for i in snapshot)  # type: ignore[misc]
        return child

    @classmethod
    def from_dict(cls, data: Any) -> ContextPool:
        """Rebuild a pool from ``to_dict()`` output (hooks resolved via ``HookRegistry``)."""
        pool, items, where = cls._parse(data, (int, type(None)), None)
        for i, raw in enumerate(items):
            item = _serde.nested(where, f"'items'[{i}]", ContextItem.from_dict, raw)
            if item.id is None or item.description is None:
                raise SerializationError(f"{where}: items[{i}] needs an id and a description")
            pool._items[item.id] = item
        if pool.limit is not None:
            while len(pool._items) > pool.limit:
                del pool._items[next(iter(pool._items))]
        return pool
