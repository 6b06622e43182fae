"""Hooks: the ``Hook`` protocol, ``@hook``, instance hook points and the one dispatcher."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar, overload, runtime_checkable

from . import _callable
from ._enums import HOOK_FAMILIES, HookType
from ._registry import HookRegistry

__all__ = [
    "AsyncHook",
    "Hook",
    "HookMetadata",
    "HookPoint",
    "fire",
    "fire_global",
    "hook",
    "normalize_tags",
]

HookFn = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=HookFn)
Owner = TypeVar("Owner")


def normalize_tags(tags: Iterable[str] | None, what: str) -> frozenset[str]:
    """Return ``tags`` as a frozenset of strings; raise ``TypeError`` on anything else."""
    if tags is None:
        return frozenset()
    if isinstance(tags, str):
        raise TypeError(f"{what}: tags must be a list or set of strings, not the string {tags!r}")
    out = frozenset(tags)
    for tag in out:
        if not isinstance(tag, str):
            raise TypeError(f"{what}: tags must be strings, got {tag!r}")
    return out


class HookMetadata:
    """Name, description and options of a hook."""

    __slots__ = ("description", "lock", "name", "tags", "types")

    def __init__(
        self,
        name: str,
        description: str | None,
        types: tuple[HookType, ...],
        tags: frozenset[str],
        lock: bool,
    ) -> None:
        self.name = name
        self.description = description
        self.types = types
        self.tags = tags
        self.lock = lock

    @property
    def type(self) -> HookType:
        """The first (usually only) hook type."""
        return self.types[0]

    def dict(self) -> dict[str, Any]:
        """Return the metadata as a plain dict."""
        return {
            "name": self.name,
            "description": self.description,
            "types": [f"{type(t).__name__}.{t.name}" for t in self.types],
            "tags": sorted(self.tags),
            "lock": self.lock,
        }

    def __repr__(self) -> str:
        return f"HookMetadata(name={self.name!r}, types={list(self.types)!r})"


@runtime_checkable
class Hook(Protocol):
    """What the registries and dispatcher need from a hook."""

    metadata: HookMetadata
    types: tuple[HookType, ...]
    tags: frozenset[str]
    is_global: bool

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Run the hook."""
        ...


class AsyncHook:
    """An async function bound to one or more hook types.

    Created by ``@hook(...)`` (global) or an instance hook point such as
    ``@agent.before_turn`` (instance-scoped). Calling it runs the function with fixed kwargs
    merged, context injected and the lock held, as configured.
    """

    def __init__(
        self,
        fn: HookFn,
        types: tuple[HookType, ...],
        *,
        tags: frozenset[str] = frozenset(),
        lock: bool = False,
        fixed_kwargs: dict[str, Any] | None = None,
        is_global: bool,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"Hook {getattr(fn, '__name__', fn)!r} must be an 'async def' function "
                f"(got {type(fn).__name__})"
            )
        shape = _callable.CallShape(fn, dict(fixed_kwargs or {}), lock, "Hook")
        self.fn = fn
        self.types = types
        self.tags = tags
        self.is_global = is_global
        self.fixed_kwargs = shape.fixed
        self.metadata = HookMetadata(fn.__name__, inspect.getdoc(fn), types, tags, lock)
        self._shape = shape
        # The dispatcher calls ``invoke``: the bare function when there is nothing to add.
        self.invoke: HookFn = fn if shape.plain else self._invoke
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Run the hook function with this hook's options applied."""
        return self.invoke(*args, **kwargs)

    async def _invoke(self, *args: Any, **kwargs: Any) -> Any:
        shape = self._shape
        kwargs = shape.kwargs(args, kwargs)
        if shape.lock:
            async with shape.get_lock():
                return await self.fn(*args, **kwargs)
        return await self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        scope = "global" if self.is_global else "instance"
        return f"<{scope} hook {self.metadata.name!r} on {[t.name for t in self.types]}>"


def _check_types(hook_type: Any) -> tuple[HookType, ...]:
    types = (
        tuple(hook_type) if isinstance(hook_type, list | tuple | set | frozenset) else (hook_type,)
    )
    if not types:
        raise ValueError("@hook needs at least one hook type, got an empty list")
    for t in types:
        if type(t) not in HOOK_FAMILIES:
            raise TypeError(
                f"@hook: {t!r} is not a hook type; use a member of TurnHook, AgentHook, "
                f"ToolHook, ContextQueueHook or ContextPoolHook"
            )
    return tuple(dict.fromkeys(types))


def hook(
    hook_type: HookType | Iterable[HookType],
    *,
    tags: Iterable[str] | None = None,
    lock: bool = False,
    **fixed_kwargs: Any,
) -> Callable[[HookFn], AsyncHook]:
    """Register an async function as a global hook for one or more hook types.

    Args:
        hook_type: a hook type, or a list of them.
        tags: fire only for objects sharing at least one of these tags (OR); none = all.
        lock: serialise concurrent runs of this hook.
        **fixed_kwargs: merged into every call (callables evaluated per call).

    Raises:
        ValueError: the list of types is empty, or the name is taken.
        TypeError: a type is not a hook type, or the function is not ``async def``.
    """
    types = _check_types(hook_type)
    tag_set = normalize_tags(tags, "@hook")

    def decorate(fn: HookFn) -> AsyncHook:
        h = AsyncHook(fn, types, tags=tag_set, lock=lock, fixed_kwargs=fixed_kwargs, is_global=True)
        HookRegistry.register(h)
        return h

    return decorate


def _attach(
    owner: Any, hook_type: HookType, fn: HookFn, lock: bool, fixed: dict[str, Any]
) -> AsyncHook:
    h = AsyncHook(fn, (hook_type,), lock=lock, fixed_kwargs=fixed, is_global=False)
    HookRegistry.register(h)
    owner.hooks.append(h)
    return h


class BoundHookPoint:
    """``obj.before_x``: a decorator that attaches an instance hook to ``obj``.

    Use it bare (``@obj.before_x``) or with options (``@obj.before_x(lock=True, k=v)``).
    """

    __slots__ = ("_owner", "_type")

    def __init__(self, owner: Any, hook_type: HookType) -> None:
        self._owner = owner
        self._type = hook_type

    @overload
    def __call__(self, fn: HookFn, /) -> AsyncHook: ...
    @overload
    def __call__(self, /, *, lock: bool = ..., **fixed: Any) -> Callable[[HookFn], AsyncHook]: ...
    def __call__(
        self, fn: HookFn | None = None, /, *, lock: bool = False, **fixed: Any
    ) -> AsyncHook | Callable[[HookFn], AsyncHook]:
        """Attach ``fn`` as an instance hook, or return a decorator that does."""
        if fn is not None:
            return _attach(self._owner, self._type, fn, lock, fixed)

        def decorate(f: HookFn) -> AsyncHook:
            return _attach(self._owner, self._type, f, lock, fixed)

        return decorate


class HookPoint(Generic[Owner]):
    """Class attribute declaring an instance hook decorator, e.g. ``before_turn``."""

    def __init__(self, hook_type: HookType) -> None:
        self.hook_type = hook_type

    @overload
    def __get__(self, obj: None, owner: type[Owner]) -> HookPoint[Owner]: ...
    @overload
    def __get__(self, obj: Owner, owner: type[Owner]) -> BoundHookPoint: ...
    def __get__(self, obj: Owner | None, owner: type[Owner]) -> HookPoint[Owner] | BoundHookPoint:
        if obj is None:
            return self
        return BoundHookPoint(obj, self.hook_type)


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
                raise TypeError(
                    f"{h!r} in a hooks list is not a hook: create it with @hook(...) or an "
                    f"instance decorator such as @agent.before_turn"
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


async def _fire_all(hooks: list[Hook], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for h in hooks:
        await h(*args, **kwargs)
