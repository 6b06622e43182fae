"""Hooks: the ``Hook`` protocol, ``@hook``, instance hook points and the one dispatcher."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar, overload

from . import _callable
from ._enums import HOOK_FAMILIES, ContextQueueHook, HookType, hook_types
from ._hook_list import HookList
from ._registry import HookRegistryBase
from ._types import Hook, HookMetadata
from .errors import is_collection
from .errors import short_repr as _short

__all__ = [
    "AsyncHook",
    "Hook",
    "HookAlias",
    "HookMetadata",
    "HookPoint",
    "alias",
    "check_lock",
    "hook",
    "hook_list",
    "normalize_tags",
    "wrap",
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
    try:
        out = frozenset(tags)
    except TypeError:  # not iterable, or an unhashable tag
        raise TypeError(
            f"{what}: tags must be a list or set of strings, got {_short(tags)}"
        ) from None
    for tag in out:
        if not isinstance(tag, str):
            raise TypeError(f"{what}: tags must be strings, got {tag!r}")
    return out


def hook_list(hooks: Iterable[Any] | None, what: str) -> HookList:
    """Return ``hooks`` as a new list (None: empty); raise ``TypeError`` on anything else.

    ``what`` names the argument in the message (``"Agent hooks"``). Each entry must be
    callable: a hook, or an async callable such as a duck-typed hook object.
    """
    if hooks is None:
        return HookList()
    if not is_collection(hooks):
        raise TypeError(f"{what} must be a list of hooks (or None for none), got {_short(hooks)}")
    out = HookList(hooks)  # it may be a generator
    for h in out:
        if not callable(h):
            raise TypeError(
                f"{what} must hold hooks (async functions made hooks with @hook or an instance "
                f"decorator), got {_short(h)}"
            )
    return out


def check_lock(lock: Any, what: str) -> bool:
    """Return ``lock`` if it is a bool; raise ``TypeError`` otherwise (``"yes"``, ``1``)."""
    if lock is not True and lock is not False:
        raise TypeError(f"{what}: lock must be True or False, got {_short(lock)}")
    return lock


class AsyncHook:
    """An async function bound to one or more hook types.

    Created by ``@hook(...)`` (global), an instance hook point such as
    ``@agent.before_turn``, or ``HookRegistry.wrap`` (both instance-scoped). Calling it runs
    the function with fixed kwargs merged, context injected and the lock held, as configured.

    Attributes:
        metadata: ``HookMetadata(name, description)``.
        type: the hook type, or a tuple of them in the order given.
        types: always a tuple of the hook types.
        fn: the undecorated function.
        lock: an ``asyncio.Lock`` when made with ``lock=True``, else None.
        tags: the global hook's tag filter (empty: fires for every object).
        is_global: True for ``@hook(...)`` hooks, which fire for every matching object.
    """

    fixed_types = True  # its types never change (see HookList)

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
        if not isinstance(getattr(fn, "__name__", None), str):
            # A functools.partial is async but has no name to register or serialize it under.
            raise TypeError(
                f"A hook needs a named async function: got {_short(fn)}, which has no "
                f"__name__; define an 'async def' function that calls it"
            )
        check_lock(lock, f"Hook {fn.__name__!r}")
        shape = _callable.CallShape(fn, dict(fixed_kwargs or {}), lock, "Hook", name=fn.__name__)
        self.fn = fn
        self.types = types
        self.type: HookType | tuple[HookType, ...] = types[0] if len(types) == 1 else types
        self.tags = tags
        self.is_global = is_global
        self.fixed_kwargs = shape.fixed
        self.metadata = HookMetadata(
            fn.__name__, inspect.getdoc(fn), types=types, tags=tags, lock=lock
        )
        self._shape = shape
        # The dispatcher calls ``invoke``: the bare function when there is nothing to add.
        self.invoke: HookFn = fn if shape.plain else self._invoke
        if types == (ContextQueueHook.AFTER_APPEND,) and _two_positional(fn, shape):
            # The original's newer form, ``(appended_items, current)`` without the queue:
            # a function of two parameters could never take the three-argument call.
            self._full = self.invoke
            self.invoke = self._without_queue
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def lock(self) -> asyncio.Lock | None:
        """The ``asyncio.Lock`` serialising this hook's runs, or None without ``lock=True``.

        An ``asyncio.Lock`` serves one event loop, so each loop gets its own: inside a running
        loop this is that loop's lock (``async with my_hook.lock:`` excludes the hook there).
        """
        return self._shape.lock_object()

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

    def _without_queue(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        # The dispatcher passes (queue, appended_items, current); a direct call of the hook
        # with the two arguments its function takes passes them on as they are.
        if len(args) == 3:
            args = args[1:]
        return self._full(*args, **kwargs)

    def __repr__(self) -> str:
        scope = "global" if self.is_global else "instance"
        return f"<{scope} hook {self.metadata.name!r} on {[t.name for t in self.types]}>"


def _two_positional(fn: Callable[..., Any], shape: _callable.CallShape) -> bool:
    """True when ``fn`` takes exactly two positional arguments from its caller.

    Parameters a fixed kwarg or context injection fills do not count, except a first
    parameter annotated ``ContextQueue``: that is the queue the three-argument form passes.
    ``*args`` takes any number: the three-argument form.
    """
    try:
        params = list(inspect.signature(fn, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return False
    kinds = inspect.Parameter
    if any(p.kind is kinds.VAR_POSITIONAL for p in params):
        return False
    positional = [
        p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    ]
    filled = set(shape.fixed) | {
        name
        for name, kind, _ in shape.plan
        if not (kind == "queue" and positional and positional[0].name == name)
    }
    return len([p for p in positional if p.name not in filled]) == 2


class HookAlias:
    """An existing hook firing on one more event, for one owner.

    Made when a hook is stacked onto an event it does not listen to
    (``@tool_a.after_invoke`` over ``@tool_b.before_invoke``): the owner's list holds this
    alias, which runs the original hook (its options, its lock) on the new event, while the
    original keeps firing where it did. It serializes under the original's name.
    """

    fixed_types = True  # its types never change (see HookList)

    def __init__(self, target: Any, hook_type: HookType) -> None:
        self.target = target
        self.types: tuple[HookType, ...] = (hook_type,)
        self.type = hook_type
        self.tags: frozenset[str] = frozenset()
        self.is_global = False
        original = getattr(target, "metadata", None)
        name = original.name if original is not None else target.__name__
        description = original.description if original is not None else inspect.getdoc(target)
        self.metadata = HookMetadata(name, description, types=self.types)
        self.fn = getattr(target, "fn", target)
        self.invoke: HookFn = getattr(target, "invoke", target)
        self.__name__ = name

    @property
    def lock(self) -> asyncio.Lock | None:
        """The original hook's lock."""
        return getattr(self.target, "lock", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Run the original hook."""
        return self.invoke(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<hook {self.metadata.name!r} stacked on {self.type.name}>"


def alias(target: Any, hook_type: HookType) -> HookAlias:
    """Return ``target`` made to fire on ``hook_type`` as well, for one owner's list."""
    if isinstance(target, HookAlias):
        target = target.target
    return HookAlias(target, hook_type)


def _check_types(hook_type: Any) -> tuple[HookType, ...]:
    types = (
        tuple(hook_type) if isinstance(hook_type, list | tuple | set | frozenset) else (hook_type,)
    )
    if not types:
        raise ValueError(
            "A hook type requires at least one type: got an empty list; pass a member such as "
            "TurnHook.BEFORE_RUN, or a list of members"
        )
    for t in types:
        if type(t) not in HOOK_FAMILIES:
            raise TypeError(
                f"{_short(t)} is not a hook type; use a member of TurnHook, AgentHook, "
                f"ToolHook, ContextQueueHook or ContextPoolHook"
            )
    return tuple(dict.fromkeys(types))


def hook(
    type: HookType | Iterable[HookType],  # the reference's name; shadows the builtin here
    *,
    tags: Iterable[str] | None = None,
    lock: bool = False,
    **fixed_kwargs: Any,
) -> Callable[[HookFn], AsyncHook]:
    """Register an async function as a global hook for one or more hook types.

    Args:
        type: a hook type, or a list of them (``@hook(type=...)`` works too).
        tags: fire only for objects sharing at least one of these tags (OR); none = all.
        lock: serialise concurrent runs of this hook (within each event loop).
        **fixed_kwargs: merged into every call (callables evaluated per call); a call-time
            argument of the same name wins, with a warning on the ``pygents`` logger.

    Raises:
        ValueError: the list of types is empty, or another hook holds the name.
        TypeError: a type is not a hook type, the function is not a named ``async def``
            function, or ``lock`` is not a bool.
    """
    types = _check_types(type)
    tag_set = normalize_tags(tags, "@hook")
    check_lock(lock, "@hook")

    def decorate(fn: HookFn) -> AsyncHook:
        h = AsyncHook(fn, types, tags=tag_set, lock=lock, fixed_kwargs=fixed_kwargs, is_global=True)
        HookRegistry.register(h)
        return h

    return decorate


def wrap(fn: Any, hook_type: Any, lock: bool, fixed_kwargs: dict[str, Any]) -> Any:
    """``HookRegistry.wrap``: an instance-scoped, registered hook attached to nothing.

    An existing hook is registered (idempotent) and returned as is; a function already
    wrapped and registered under its name gives that hook back; anything else becomes a new
    hook.
    """
    existing = _existing(fn)
    if existing is not None:
        HookRegistry.register(existing)
        return existing
    h = AsyncHook(
        fn, _check_types(hook_type), lock=lock, fixed_kwargs=fixed_kwargs, is_global=False
    )
    HookRegistry.register(h)
    return h


def _existing(fn: Any) -> Any:
    """Return the hook ``fn`` already is (or wraps, registered), or None for a new function."""
    if isinstance(fn, AsyncHook):
        return fn
    if isinstance(fn, HookAlias):
        return fn.target
    if inspect.iscoroutinefunction(fn):
        registered = HookRegistry.lookup(getattr(fn, "__name__", None))
        if getattr(registered, "fn", None) is fn:
            return registered  # the same function attached again: one hook, as wrap() does
        return None
    if callable(fn) and hook_types(fn):
        return fn  # a duck-typed hook object (async callable with a ``type``)
    return None


def _attach(
    owner: Any, attr: str, hook_type: HookType, fn: Any, lock: bool, fixed: dict[str, Any]
) -> Any:
    existing = _existing(fn)
    if existing is None:
        made = AsyncHook(fn, (hook_type,), lock=lock, fixed_kwargs=fixed, is_global=False)
        HookRegistry.register(made)  # before appending: a taken name leaves the owner alone
        getattr(owner, attr).append(made)
        return made
    # An existing hook: the same object, options ignored; fired on this event for this owner.
    HookRegistry.register(existing)
    if hook_type in hook_types(existing):
        getattr(owner, attr).append(existing)
    else:
        getattr(owner, attr).append(alias(existing, hook_type))
    return existing


class BoundHookPoint:
    """``obj.before_x``: a decorator that attaches an instance hook to ``obj``.

    Use it bare (``@obj.before_x``), with options (``@obj.before_x(lock=True, k=v)``), or
    call it (``obj.before_x(fn)``). Given a hook that already exists (from ``@hook``, another
    instance decorator or ``HookRegistry.wrap``), it attaches that same object (options are
    ignored); if the hook does not listen to this event it fires on it for ``obj`` anyway.
    """

    __slots__ = ("_attr", "_owner", "_type")

    def __init__(self, owner: Any, hook_type: HookType, attr: str = "hooks") -> None:
        self._owner = owner
        self._type = hook_type
        self._attr = attr

    @overload
    def __call__(self, fn: HookFn, /) -> AsyncHook: ...
    @overload
    def __call__(self, /, *, lock: bool = ..., **fixed: Any) -> Callable[[HookFn], AsyncHook]: ...
    def __call__(
        self, fn: HookFn | None = None, /, *, lock: bool = False, **fixed: Any
    ) -> AsyncHook | Callable[[HookFn], AsyncHook]:
        """Attach ``fn`` as an instance hook, or return a decorator that does."""
        if fn is not None:
            attached: AsyncHook = _attach(self._owner, self._attr, self._type, fn, lock, fixed)
            return attached

        def decorate(f: HookFn) -> AsyncHook:
            made: AsyncHook = _attach(self._owner, self._attr, self._type, f, lock, fixed)
            return made

        return decorate


class HookPoint(Generic[Owner]):
    """Class attribute declaring an instance hook decorator, e.g. ``before_turn``.

    Args:
        hook_type: the event the decorator attaches hooks to.
        attr: the owner's list the hooks go to (``"turn_hooks"`` for an agent's turn events).
    """

    def __init__(self, hook_type: HookType, attr: str = "hooks") -> None:
        self.hook_type = hook_type
        self.attr = attr

    @overload
    def __get__(self, obj: None, owner: type[Owner]) -> HookPoint[Owner]: ...
    @overload
    def __get__(self, obj: Owner, owner: type[Owner]) -> BoundHookPoint: ...
    def __get__(self, obj: Owner | None, owner: type[Owner]) -> HookPoint[Owner] | BoundHookPoint:
        if obj is None:
            return self
        return BoundHookPoint(obj, self.hook_type, self.attr)


class HookRegistry(HookRegistryBase):
    """Every hook, by name; global hooks also by type.

    Instance hooks (``@agent.before_turn`` and friends, ``HookRegistry.wrap``) are registered
    by name so that serialized objects can find them again, but they fire only for the
    objects they are attached to. Global hooks (``@hook(...)``) fire for every matching
    object. One name, one hook: that is what makes restoring a serialized object exact.
    """

    @classmethod
    def wrap(
        cls,
        fn: Any,
        hook_type: HookType | Iterable[HookType],
        *,
        lock: bool = False,
        **fixed_kwargs: Any,
    ) -> Hook:
        """Return ``fn`` as a registered, instance-scoped hook attached to no object.

        If ``fn`` already is a hook it is registered (idempotent) and returned; if a hook
        wrapping this very function is registered under its name, that hook is returned;
        otherwise a new hook is made with ``hook_type`` (one member or a list), ``lock`` and
        the fixed kwargs. Attach it with an instance decorator (``turn.before_run(h)``) or by
        appending it to a ``hooks`` list.

        Raises:
            ValueError: another hook holds the name, or ``hook_type`` is an empty list.
            TypeError: ``fn`` is not an async function, or a type is not a hook type.
        """
        made: Hook = wrap(fn, hook_type, lock, dict(fixed_kwargs))
        return made
