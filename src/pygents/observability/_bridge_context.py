"""The bridge's context-queue and context-pool hooks: item gauges, evictions, span events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _semconv as sc

if TYPE_CHECKING:
    from ._settings import LabelLimiter
    from ._store import MetricStore

__all__ = ["ContextEvents"]

_QUEUE_ITEMS = "pygents_context_queue_items"
_QUEUE_EVICTIONS = "pygents_context_queue_evictions_total"
_POOL_ITEMS = "pygents_context_pool_items"
_POOL_EVICTIONS = "pygents_context_pool_evictions_total"


class ContextEvents:
    """Context hook handlers, mixed into ``Bridge`` (which provides the attributes below)."""

    store: MetricStore | None
    _owner_label: LabelLimiter

    _routing: dict[Any, tuple[Any, int, Any, dict[str, Any] | None]]

    def _event(self, name: str, items: tuple[tuple[str, Any], ...] = ()) -> None:
        raise NotImplementedError

    def _routed(self) -> None:
        raise NotImplementedError

    def _owner(self, obj: Any) -> str:
        return self._owner_label(obj.owner or obj.name or "unowned")

    def queue_append(self, queue: Any, appended: list[Any], current: list[Any]) -> None:
        self._event(sc.EVENT_QUEUE_APPEND, ((sc.PYGENTS_CONTEXT_ITEMS, len(appended)),))
        if self._routing:
            self._routed()
        if self.store is not None:
            self.store.set(_QUEUE_ITEMS, (self._owner(queue),), len(current))

    def queue_evict(self, queue: Any, item: Any) -> None:
        self._event(sc.EVENT_QUEUE_EVICT)
        if self.store is not None:
            owner = self._owner(queue)
            self.store.inc(_QUEUE_EVICTIONS, (owner,))
            self.store.set(_QUEUE_ITEMS, (owner,), len(queue))

    def queue_clear(self, queue: Any) -> None:
        self._event(sc.EVENT_QUEUE_CLEAR)
        if self.store is not None:
            self.store.set(_QUEUE_ITEMS, (self._owner(queue),), 0)

    def pool_add(self, pool: Any, item: Any) -> None:
        self._event(sc.EVENT_POOL_ADD, ((sc.PYGENTS_CONTEXT_ITEM_ID, item.id),))
        if self._routing:
            self._routed()
        if self.store is not None:
            self.store.set(_POOL_ITEMS, (self._owner(pool),), len(pool))

    def pool_remove(self, pool: Any, item: Any) -> None:
        self._event(sc.EVENT_POOL_REMOVE, ((sc.PYGENTS_CONTEXT_ITEM_ID, item.id),))
        if self.store is not None:
            self.store.set(_POOL_ITEMS, (self._owner(pool),), len(pool))

    def pool_evict(self, pool: Any, item: Any) -> None:
        self._event(sc.EVENT_POOL_EVICT, ((sc.PYGENTS_CONTEXT_ITEM_ID, item.id),))
        if self.store is not None:
            owner = self._owner(pool)
            self.store.inc(_POOL_EVICTIONS, (owner,))
            self.store.set(_POOL_ITEMS, (owner,), max(len(pool) - 1, 0))

    def pool_clear(self, pool: Any) -> None:
        self._event(sc.EVENT_POOL_CLEAR)
        if self.store is not None:
            self.store.set(_POOL_ITEMS, (self._owner(pool),), 0)
