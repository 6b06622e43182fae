"""``ContextPool``: a keyed, optionally bounded store of ``ContextItem``s."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, overload

from . import _serde
from ._context_base import KEEP, Container, check_limit
from ._context_item import ContextItem
from ._enums import ContextPoolHook
from ._generic import T
from ._hooks import HookPoint, hook_list
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE
from .errors import SerializationError, short_repr

__all__ = ["ContextPool"]

_POOL_GLOBALS = GLOBAL_BY_FAMILY[ContextPoolHook]
# Per-type global hook lists (mutated in place by HookRegistry).
_G_BEFORE_ADD = GLOBAL_BY_TYPE[ContextPoolHook.BEFORE_ADD]
_G_AFTER_ADD = GLOBAL_BY_TYPE[ContextPoolHook.AFTER_ADD]
_G_EVICT = GLOBAL_BY_TYPE[ContextPoolHook.ON_EVICT]
_G_BEFORE_REMOVE = GLOBAL_BY_TYPE[ContextPoolHook.BEFORE_REMOVE]
_G_AFTER_REMOVE = GLOBAL_BY_TYPE[ContextPoolHook.AFTER_REMOVE]
_G_BEFORE_CLEAR = GLOBAL_BY_TYPE[ContextPoolHook.BEFORE_CLEAR]
_G_AFTER_CLEAR = GLOBAL_BY_TYPE[ContextPoolHook.AFTER_CLEAR]
_NO_DEFAULT: Any = object()
D = TypeVar("D")
P = TypeVar("P", bound="ContextPool")


def _missing(id: object) -> KeyError:
    return KeyError(f"No item {short_repr(id)} in the pool; catalogue() lists what is there")


class ContextPool(Container[T]):
    """A keyed, optionally bounded store of ``ContextItem``s, oldest evicted first.

    Generic in the items' content: ``ContextPool[Report]`` holds ``ContextItem[Report]``; an
    unparameterised pool holds any content.

    Args:
        limit: the most items kept (>= 1), or None for no bound.
        tags: tags matched by tag-filtered global hooks.
        hooks: instance hooks to start with (keyword only).
        name: optional name, the metrics ``owner`` when no agent owns it (keyword only).

    Raises:
        TypeError: ``limit`` is neither an int nor None, or ``tags`` not strings.
        ValueError: ``limit`` is below 1 (``limit must be >= 1``).
    """

    family = ContextPoolHook
    #: What tool and hook parameters annotated with this class receive (see ``_callable``).
    context_kind = "pool"

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
        tags: Iterable[str] | None = None,
        *,
        hooks: Iterable[Any] | None = None,
        name: str | None = None,
    ) -> None:
        self._limit = check_limit(limit, "ContextPool", allow_none=True)
        self._items: dict[str, ContextItem[T]] = {}
        self._init_common(hooks, tags, name)

    @property
    def limit(self) -> int | None:
        """The most items kept (>= 1), or None for no bound.

        Assigning validates like the constructor. A smaller limit applies at once: only the
        newest ``limit`` items are kept, no hook fires and nothing counts as evicted (as
        ``branch(limit=...)`` does); read ``items`` first to keep what would be dropped.

        Raises:
            TypeError: the new limit is neither an int nor None.
            ValueError: the new limit is below 1 (``limit must be >= 1``).
        """
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        limit = check_limit(value, "ContextPool", allow_none=True)
        self._limit = limit
        items = self.__dict__.get("_items")  # absent if a subclass sets it before __init__
        if limit is not None and items is not None and len(items) > limit:
            for key in list(items)[: len(items) - limit]:
                del items[key]

    def _values(self) -> Iterable[ContextItem[T]]:
        return self._items.values()

    async def add(self, item: ContextItem[T]) -> None:
        """Store ``item`` under its id, replacing an item with the same id.

        When the pool is full and the id is new, the oldest item is evicted first
        (``ON_EVICT``), then ``BEFORE_ADD`` fires, the item is stored and ``AFTER_ADD`` fires.
        A ``BEFORE_ADD`` hook that raises stops the add; an eviction already made stands. An
        ``ON_EVICT`` hook that raises does not stop anything: the oldest item goes, the add
        goes on (its hooks fire), then that exception propagates.

        Raises:
            TypeError: ``item`` is not a ``ContextItem``.
            ValueError: the item has no id or no description.
        """
        if not isinstance(item, ContextItem):
            raise TypeError(f"ContextPool.add takes a ContextItem, got {type(item).__name__}")
        if item.id is None or item.description is None:
            raise ValueError(
                "ContextPool requires a ContextItem with both 'id' and 'description' set, got "
                f"id={short_repr(item.id)}, description={short_repr(item.description)}: "
                "items without an id belong in a ContextQueue"
            )
        items = self._items
        limit = self._limit
        if not (self.hooks or _POOL_GLOBALS):
            if limit is not None and item.id not in items and len(items) >= limit:
                del items[next(iter(items))]
            items[item.id] = item
            return
        # The original's order: the eviction (ON_EVICT, while the oldest is still there, then
        # its removal) comes before BEFORE_ADD, which sees the pool as the item will join it.
        # So a BEFORE_ADD veto stops the add, not an eviction already made.
        error: Exception | None = None
        if limit is not None and item.id not in items and len(items) >= limit:
            oldest = next(iter(items.values()))
            if self.hooks or _G_EVICT:
                try:
                    await self._fire(ContextPoolHook.ON_EVICT, oldest)
                except Exception as exc:
                    # The eviction happens anyway, and so does the add; then the error is
                    # raised (an ON_* hook reports a change, it does not veto it).
                    error = exc
            items.pop(oldest.id, None)  # type: ignore[arg-type]
        # Each event is tested against its own global list (one nobody listens to is skipped).
        try:
            if self.hooks or _G_BEFORE_ADD:
                await self._fire(ContextPoolHook.BEFORE_ADD, item)
            items[item.id] = item
            if self.hooks or _G_AFTER_ADD:
                await self._fire(ContextPoolHook.AFTER_ADD, item)
        except Exception as later:
            if error is not None and later.__context__ is None:
                later.__context__ = error
            raise
        if error is not None:
            raise error

    @overload
    def get(self, id: str) -> ContextItem[T]: ...
    @overload
    def get(self, id: str, default: D) -> ContextItem[T] | D: ...
    def get(self, id: str, default: Any = _NO_DEFAULT) -> Any:
        """Return the item stored under ``id``.

        Args:
            id: the item's id.
            default: returned when no item has that id (may be None); without it, a missing
                id raises.

        Raises:
            KeyError: no item has that id and no ``default`` was given.
        """
        try:
            return self._items[id]
        except KeyError:
            if default is _NO_DEFAULT:
                raise _missing(id) from None
            return default

    def __getitem__(self, id: str) -> ContextItem[T]:
        try:
            return self._items[id]
        except KeyError:
            raise _missing(id) from None

    def __contains__(self, id: object) -> bool:
        return id in self._items

    async def remove(self, id: str) -> ContextItem[T]:
        """Remove and return the item stored under ``id``.

        Raises:
            KeyError: no item has that id.
        """
        item = self[id]
        if self.hooks or _G_BEFORE_REMOVE:
            await self._fire(ContextPoolHook.BEFORE_REMOVE, item)
        self._items.pop(id, None)
        if self.hooks or _G_AFTER_REMOVE:
            await self._fire(ContextPoolHook.AFTER_REMOVE, item)
        return item

    async def clear(self) -> None:
        """Remove every item."""
        if self.hooks or _G_BEFORE_CLEAR:
            await self._fire(ContextPoolHook.BEFORE_CLEAR, dict(self._items))
        self._items.clear()
        if self.hooks or _G_AFTER_CLEAR:
            await self._fire(ContextPoolHook.AFTER_CLEAR)

    def catalogue(self) -> str:
        """Return one ``- [id] description`` line per item, oldest first."""
        return "\n".join(f"- [{i.id}] {i.description}" for i in self._items.values())

    @property
    def items(self) -> list[ContextItem[T]]:
        """A copy of the items, oldest first."""
        return list(self._items.values())

    def branch(
        self: P,
        limit: int | None = KEEP,
        hooks: Iterable[Any] | None = KEEP,
        tags: Iterable[str] | None = KEEP,
    ) -> P:
        """Return an independent copy of the same class holding a snapshot of the items.

        The child is made as ``type(self)(limit=..., tags=...)`` (``limit=`` alone, the tags
        set after, for a subclass whose ``__init__`` takes no ``tags``); then hooks, name and
        items are copied without firing any hook. A smaller ``limit`` keeps the newest items.

        Args:
            limit: the child's limit (default: the same; None for unbounded).
            hooks: the child's hooks (default: a copy of this pool's; None or ``[]``: none).
            tags: the child's tags (default: the same).
        """
        child = type(self)._blank(
            self.limit if limit is KEEP else limit,
            self.tags if tags is KEEP else tags,
        )
        chosen = self.hooks if hooks is KEEP else hooks
        child.hooks = hook_list(chosen, f"{type(self).__name__}.branch: hooks")
        child.name = self.name
        snapshot = list(self._items.values())
        if child._limit is not None:
            snapshot = snapshot[-child._limit :]
        child._items = {item.id: item for item in snapshot}  # type: ignore[misc]
        return child

    @classmethod
    def from_dict(cls: type[P], data: Any) -> P:
        """Rebuild a pool from ``to_dict()`` output: every item, no hook fired, no eviction.

        Hooks are resolved by name through ``HookRegistry``; ``"hooks"`` may map hook types to
        names (``{"after_add": ["audit"]}``) or be a plain list of names. An item needs an id
        (its key) but, unlike for ``add()``, no description (as in the original pygents): it
        comes back with its description None. Item contents are kept as given.

        Raises:
            SerializationError: a field is missing or malformed (naming it), an item lacks an
                id, or a hooks key is not a hook type.
            UnregisteredHookError: a hook name is not registered.
        """
        pool, items, where = cls._parse(data, (int, type(None)), None)
        for i, raw in enumerate(items):
            item = _serde.nested(where, f"'items'[{i}]", ContextItem.from_dict, raw)
            if item.id is None:
                raise SerializationError(
                    f"{where}: field 'items'[{i}]: ContextPool requires a ContextItem with 'id' set"
                )
            pool._items[item.id] = item
        return pool
