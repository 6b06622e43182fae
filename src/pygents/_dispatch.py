"""Hook dispatch: which hooks fire for an event, in which order, and firing them.

Instance hooks first (the object's own lists, in order), then the tag-matching global hooks;
a hook object fires at most once per event. ``fire`` has fast paths for the common cases (no
hook at all, one global hook), and ``fire_global`` skips the instance lists altogether.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Sequence
from inspect import iscoroutinefunction, isfunction
from typing import Any

from ._enums import HookType, hook_types
from ._types import Hook
from .errors import short_repr as _short

__all__ = ["DONE", "fire", "fire_global", "none_apply", "select"]


def select(
    hook_type: HookType,
    instance_lists: tuple[Sequence[Any], ...],
    global_hooks: list[Hook],
    tags: frozenset[str],
) -> list[Hook]:
    """Return the hooks to fire, in order: instance hooks, then tag-matching global hooks.

    A hook object appears at most once, however many lists hold it.
    """
    chosen: list[Hook] = []
    for hooks in instance_lists:
        for h in hooks:
            try:
                types = h.types
            except AttributeError:
                # A duck-typed hook: any async callable with a ``type`` attribute.
                types = hook_types(h)
                if not types or not callable(h):
                    raise TypeError(
                        f"{_short(h)} in a hooks list is not a hook: create it with "
                        f"@hook(...) or an instance decorator such as @agent.before_turn, or "
                        f"give an async callable a 'type' attribute"
                    ) from None
                if isfunction(h) and not iscoroutinefunction(h):
                    raise TypeError(
                        f"{h.__qualname__!r} in a hooks list is a plain function: hooks are "
                        f"awaited, so define it with 'async def'"
                    ) from None
            if hook_type in types and h not in chosen:
                chosen.append(h)
    for h in global_hooks:
        if (not h.tags or not h.tags.isdisjoint(tags)) and h not in chosen:
            chosen.append(h)
    return chosen


class _Done:
    """An awaitable that is already finished: what ``fire`` returns when nothing listens."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        return
        yield


DONE = _Done()


def fire(
    hook_type: HookType,
    instance_lists: tuple[Sequence[Any], ...],
    global_hooks: list[Hook],
    tags: frozenset[str],
    *args: Any,
    **kwargs: Any,
) -> Awaitable[Any]:
    """Return an awaitable running every hook for one event, in order.

    An exception from a hook propagates. The common cases (no instance hooks and a single
    global hook, e.g. telemetry) cost one coroutine, not three.
    """
    for hooks in instance_lists:
        if hooks:
            break
    else:
        if not global_hooks:
            return DONE
        if len(global_hooks) == 1:
            only = global_hooks[0]
            if not only.tags or not only.tags.isdisjoint(tags):
                return getattr(only, "invoke", only)(*args, **kwargs)
            return DONE
    chosen = select(hook_type, instance_lists, global_hooks, tags)
    if not chosen:
        return DONE
    if len(chosen) == 1:
        return chosen[0](*args, **kwargs)
    return _fire_all(chosen, args, kwargs)


def fire_global(
    global_hooks: list[Hook], tags: frozenset[str], *args: Any, **kwargs: Any
) -> Awaitable[Any]:
    """``fire`` for an object without instance hooks: only one type's global hooks.

    The hot paths call this directly when they know no instance hook is attached (the usual
    case for process-wide hooks such as telemetry): no instance lists to scan. Routing those
    calls through the per-object ``_fire`` helpers instead (which make the same choice) cost
    about 1 us per turn per hook family, measured: keep them direct.
    """
    if len(global_hooks) == 1:
        only = global_hooks[0]
        if not only.tags or not only.tags.isdisjoint(tags):
            return getattr(only, "invoke", only)(*args, **kwargs)
        return DONE
    chosen = [h for h in global_hooks if not h.tags or not h.tags.isdisjoint(tags)]
    if not chosen:
        return DONE
    return _fire_all(chosen, args, kwargs)


def none_apply(global_hooks: list[Hook], tags: frozenset[str]) -> bool:
    """True when none of ``global_hooks`` would fire for an object tagged ``tags``.

    The tag filter ``fire_global`` and ``select`` apply: each hook is tag-filtered and shares
    no tag with the object. (The run loop asks it of the global turn hooks, per turn, only
    when there are some: a turn none applies to runs as with none registered.)
    """
    for registered in global_hooks:
        hook_tags = registered.tags
        if not hook_tags or not hook_tags.isdisjoint(tags):
            return False
    return True


async def _fire_all(hooks: list[Hook], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for h in hooks:
        await h(*args, **kwargs)
