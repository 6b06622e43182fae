"""``HookList``: an object's instance hooks, with the events they listen to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self, SupportsIndex

from ._enums import HOOK_FAMILIES, HookType

__all__ = ["HookList"]


#: Every hook type of every family: what a list holding a duck-typed hook may listen to.
_EVERY_TYPE: frozenset[Any] = frozenset(t for family in HOOK_FAMILIES for t in family)
_EVERY_FAMILY: frozenset[Any] = frozenset(HOOK_FAMILIES)


class HookList(list[Any]):
    """An object's instance hooks: a list that knows which events its hooks listen to.

    The hook lists of agents, turns, tools and context containers. It is a list in every
    other way, changed as any list is (``append``, ``remove``, slicing, ``+=``, ...). Its
    ``listens`` (the hook types of its hooks) and ``families`` (their enums) let the run
    loop skip an event none of an object's hooks listens to, with one set lookup, instead of
    handing it to the dispatcher. Hooks whose class says their types never change
    (``fixed_types = True``: ``@hook`` and instance-decorator hooks) are counted by their
    types; a duck-typed hook (an async callable with a ``type`` attribute, which may change)
    makes the list listen to every event, so that it goes to the dispatcher at each event,
    as before. Changing the list through ``list``'s own functions
    (``list.append(hooks, h)``) bypasses the bookkeeping: use its methods.
    """

    __slots__ = ("families", "listens")

    #: The hook types its hooks listen to (every type, with a duck-typed hook among them).
    listens: frozenset[Any]
    #: The enums of those types (``TurnHook``, ``AgentHook`` ...).
    families: frozenset[Any]

    def __init__(self, hooks: Iterable[Any] = ()) -> None:
        super().__init__(hooks)
        self._note()

    def _note(self) -> None:
        listens: set[HookType] = set()
        for h in self:
            types = (
                getattr(h, "types", None) if getattr(h.__class__, "fixed_types", False) else None
            )
            if type(types) is tuple:
                listens.update(types)
            else:  # a duck-typed hook, or not a hook (the dispatcher says so when it fires)
                self.listens = _EVERY_TYPE
                self.families = _EVERY_FAMILY
                return
        self.listens = frozenset(listens)
        self.families = frozenset(t.__class__ for t in listens)

    def __reduce__(self) -> tuple[Any, ...]:
        return (HookList, (list(self),))

    def append(self, hook: Any, /) -> None:
        super().append(hook)
        self._note()

    def extend(self, hooks: Iterable[Any], /) -> None:
        super().extend(hooks)
        self._note()

    def insert(self, index: SupportsIndex, hook: Any, /) -> None:
        super().insert(index, hook)
        self._note()

    def remove(self, hook: Any, /) -> None:
        super().remove(hook)
        self._note()

    def pop(self, index: SupportsIndex = -1, /) -> Any:
        hook = super().pop(index)
        self._note()
        return hook

    def clear(self) -> None:
        super().clear()
        self._note()

    def __setitem__(self, index: Any, value: Any, /) -> None:
        super().__setitem__(index, value)
        self._note()

    def __delitem__(self, index: Any, /) -> None:
        super().__delitem__(index)
        self._note()

    def __iadd__(self, hooks: Iterable[Any], /) -> Self:  # type: ignore[misc]  # (as list's)
        super().__iadd__(hooks)
        self._note()
        return self

    def __imul__(self, times: SupportsIndex, /) -> Self:
        super().__imul__(times)
        self._note()
        return self
