"""``ContextQueue``: a bounded window of ``ContextItem``s, the oldest evicted first."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from . import _serde
from ._context_base import KEEP, Container, check_limit
from ._context_item import ContextItem
from ._enums import ContextQueueHook
from ._generic import T
from ._hooks import HookPoint
from ._registry import GLOBAL_BY_TYPE
from .errors import is_collection, short_repr

__all__ = ["ContextQueue"]

# Per-type global hook lists (mutated in place by HookRegistry).
_G_BEFORE_APPEND = GLOBAL_BY_TYPE[ContextQueueHook.BEFORE_APPEND]
_G_AFTER_APPEND = GLOBAL_BY_TYPE[ContextQueueHook.AFTER_APPEND]
_G_EVICT = GLOBAL_BY_TYPE[ContextQueueHook.ON_EVICT]
_G_BEFORE_CLEAR = GLOBAL_BY_TYPE[ContextQueueHook.BEFORE_CLEAR]
_G_AFTER_CLEAR = GLOBAL_BY_TYPE[ContextQueueHook.AFTER_CLEAR]


def _not_an_item(item: Any, where: str) -> TypeError:
    return TypeError(
        f"{where} takes ContextItem objects, got {type(item).__name__}: "
        f"wrap it as ContextItem(content=...)"
    )


class ContextQueue(Container[T]):
    """A bounded window of ``ContextItem``s; the oldest is evicted when full.

    Generic in the items' content: ``ContextQueue[str]`` holds ``ContextItem[str]``; an
    unparameterised queue holds any content.

    Args:
        limit: the most items kept (>= 1).
        tags: tags matched by tag-filtered global hooks.
        hooks: instance hooks to start with (keyword only).
        name: optional name, the metrics ``owner`` when no agent owns it (keyword only).

    Raises:
        TypeError: ``limit`` is not an int, or ``tags`` not strings.
        ValueError: ``limit`` is below 1 (``limit must be >= 1``).
    """

    family = ContextQueueHook
    #: What tool and hook parameters annotated with this class receive (see ``_callable``).
    context_kind = "queue"

    before_append = HookPoint["ContextQueue"](ContextQueueHook.BEFORE_APPEND)
    after_append = HookPoint["ContextQueue"](ContextQueueHook.AFTER_APPEND)
    before_clear = HookPoint["ContextQueue"](ContextQueueHook.BEFORE_CLEAR)
    after_clear = HookPoint["ContextQueue"](ContextQueueHook.AFTER_CLEAR)
    on_evict = HookPoint["ContextQueue"](ContextQueueHook.ON_EVICT)

    def __init__(
        self,
        limit: int,
        tags: Iterable[str] | None = None,
        *,
        hooks: Iterable[Any] | None = None,
        name: str | None = None,
    ) -> None:
        self._limit: int = check_limit(limit, "ContextQueue", allow_none=False)  # type: ignore[assignment]
        self._items: deque[ContextItem[T]] = deque()
        self._init_common(hooks, tags, name)

    @property
    def limit(self) -> int:
        """The most items kept (>= 1).

        Assigning validates like the constructor. A smaller limit applies at once: only the
        newest ``limit`` items are kept, no hook fires and nothing counts as evicted (as when
        assigning ``items``); read ``items`` first to keep what would be dropped.

        Raises:
            TypeError: the new limit is not an int.
            ValueError: the new limit is below 1 (``limit must be >= 1``).
        """
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        limit: int = check_limit(value, "ContextQueue", allow_none=False)  # type: ignore[assignment]
        self._limit = limit
        items = self.__dict__.get("_items")  # absent if a subclass sets it before __init__
        while items and len(items) > limit:
            items.popleft()

    def _values(self) -> Iterable[ContextItem[T]]:
        return self._items

    async def append(self, *items: ContextItem[T]) -> None:
        """Append items, evicting the oldest past the limit.

        An ``ON_EVICT`` hook that raises does not stop the append: every item is appended,
        every eviction made and reported, ``AFTER_APPEND`` fires, then the first such
        exception propagates. If the task is cancelled inside an ``ON_EVICT`` hook, the
        append is finished without further hooks, then the cancellation propagates.

        Raises:
            TypeError: an argument is not a ``ContextItem`` (nothing is appended).
        """
        for item in items:
            if not isinstance(item, ContextItem):
                raise _not_an_item(item, "ContextQueue.append")
        hooks = self.hooks
        # Each event is tested against its own global list: one nobody listens to (e.g.
        # BEFORE_APPEND, with only telemetry's hooks registered) costs no copy of the queue.
        if hooks or _G_BEFORE_APPEND:
            await self._fire(ContextQueueHook.BEFORE_APPEND, list(items), list(self._items))
        queue = self._items
        limit = self._limit
        error: Exception | None = None
        for done, item in enumerate(items):
            if len(queue) >= limit:
                evicted = queue.popleft()
                if hooks or _G_EVICT:
                    try:
                        await self._fire(ContextQueueHook.ON_EVICT, evicted)
                    except Exception as exc:
                        # The eviction has happened: finish the append (later evictions still
                        # report), then raise the first such error.
                        if error is None:
                            error = exc
                    except BaseException:
                        # Cancelled while an eviction was reported: the evicted item is gone,
                        # so the append is finished (no further hook) before the
                        # cancellation goes on; no item is lost half-way.
                        queue.extend(items[done:])
                        while len(queue) > limit:
                            queue.popleft()
                        raise
            queue.append(item)
        if hooks or _G_AFTER_APPEND:
            try:
                await self._fire(ContextQueueHook.AFTER_APPEND, list(items), list(queue))
            except Exception as later:
                if error is not None and later.__context__ is None:
                    later.__context__ = error
                raise
        if error is not None:
            raise error

    async def clear(self) -> None:
        """Remove every item."""
        hooks = self.hooks
        if hooks or _G_BEFORE_CLEAR:
            await self._fire(ContextQueueHook.BEFORE_CLEAR, list(self._items))
        self._items.clear()
        if hooks or _G_AFTER_CLEAR:
            await self._fire(ContextQueueHook.AFTER_CLEAR)

    @property
    def items(self) -> list[ContextItem[T]]:
        """A copy of the items, oldest first.

        Assigning replaces the contents: the newest ``limit`` of the given items are kept, no
        hook fires and nothing counts as evicted. Anything but a ``ContextItem`` raises
        ``TypeError`` and leaves the queue as it was.
        """
        return list(self._items)

    @items.setter
    def items(self, values: Iterable[ContextItem[T]]) -> None:
        given: Any = values  # checked: callers may pass anything
        if not is_collection(given):
            raise TypeError(
                f"ContextQueue.items must be a list of ContextItem, got {short_repr(values)}"
            )
        new = list(values)
        for item in new:
            if not isinstance(item, ContextItem):
                raise _not_an_item(item, "ContextQueue.items")
        self._items = deque(new[-self._limit :])

    def history(self, last: int | None = None) -> str:
        """Return the contents as text: ``str(item.content)`` per line, oldest first.

        Args:
            last: only the newest ``last`` items. ``None`` (and, as in the original pygents,
                ``0``) means every item; more than the queue holds means every item too.

        Raises:
            TypeError: ``last`` is not an int or None.
            ValueError: ``last`` is negative.
        """
        chosen: Iterable[ContextItem[T]] = self._items
        if last is not None:
            if not isinstance(last, int) or isinstance(last, bool):
                raise TypeError(
                    f"ContextQueue.history: last must be an int or None, got {short_repr(last)}"
                )
            if last < 0:
                raise ValueError(f"ContextQueue.history: last must be >= 0, got {short_repr(last)}")
            if last:
                chosen = list(self._items)[-last:]
        return "\n".join(str(item.content) for item in chosen)

    def branch(
        self,
        limit: int | None = None,
        hooks: Iterable[Any] | None = KEEP,
        tags: Iterable[str] | None = KEEP,
    ) -> ContextQueue[T]:
        """Return an independent copy: a snapshot of the items (the newest ``limit`` of them).

        No hook fires while the items are copied.

        Args:
            limit: the child's limit (default, or None: the same).
            hooks: the child's hooks (default: a copy of this queue's; None or ``[]``: none).
            tags: the child's tags (default: the same).
        """
        child: ContextQueue[T] = ContextQueue(
            self.limit if limit is None else limit,
            tags=self.tags if tags is KEEP else tags,
            hooks=self.hooks if hooks is KEEP else hooks,
            name=self.name,
        )
        snapshot = list(self._items)
        child._items.extend(snapshot[-child._limit :])
        return child

    @classmethod
    def from_dict(cls, data: Any) -> ContextQueue:
        """Rebuild a queue from ``to_dict()`` output, without firing hooks.

        Hooks are resolved by name through ``HookRegistry``; ``"hooks"`` may map hook types to
        names (``{"before_append": ["audit"]}``) or be a plain list of names. Only the newest
        ``limit`` items are kept; their contents are kept as given.

        Raises:
            SerializationError: a field is missing or malformed (naming it), or a hooks key is
                not a hook type.
            UnregisteredHookError: a hook name is not registered.
        """
        queue, items, where = cls._parse(data, int, _serde.REQUIRED)
        built = [
            _serde.nested(where, f"'items'[{i}]", ContextItem.from_dict, raw)
            for i, raw in enumerate(items)
        ]
        queue._items.extend(built[-queue._limit :])
        return queue
