"""Decoration-time analysis shared by tools and hooks.

Everything here runs once, when a function is decorated, so that calls never inspect
signatures: which parameters want the running agent's ``ContextQueue`` / ``ContextPool``
injected, whether the function takes ``**kwargs``, and whether fixed kwargs fit it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ._frame import get_frame

__all__ = ["ArgumentFit", "CallShape", "Injection", "analyse", "first_parameter", "merge_fixed"]

_log = logging.getLogger("pygents")

# (parameter name, "queue" | "pool", accepts None)
Injection = tuple[str, str, bool]

_STRING_HINT = re.compile(
    r"^\s*(?:(?:typing\.)?Optional\[\s*)?(?:[\w.]*\.)?(ContextQueue|ContextPool)\s*\]?"
    r"\s*(\|\s*None)?\s*$|^\s*None\s*\|\s*(?:[\w.]*\.)?(ContextQueue|ContextPool)\s*$"
)


_TYPE_ARGUMENT = re.compile(r"\b(ContextQueue|ContextPool)\s*\[[^\[\]]*\]")


def _classify(hint: Any) -> tuple[str, bool] | None:
    """Return ("queue"|"pool", optional) when ``hint`` names a context class.

    Context classes say what they are with a ``context_kind`` class attribute, so this module
    (below them in the core) needs no import of theirs.
    """
    if isinstance(hint, str):
        # ``ContextQueue[str]`` and friends: the type argument does not matter here.
        hint = _TYPE_ARGUMENT.sub(r"\1", hint)
        match = _STRING_HINT.match(hint)
        if match is None:
            return None
        name = match.group(1) or match.group(3)
        optional = "None" in hint or "Optional" in hint
        return ("queue" if name == "ContextQueue" else "pool"), optional
    optional = False
    candidates: tuple[Any, ...] = (hint,)
    if typing.get_origin(hint) in (typing.Union, _union_type()):
        candidates = typing.get_args(hint)
        optional = type(None) in candidates
    for candidate in candidates:
        candidate = typing.get_origin(candidate) or candidate  # ContextQueue[str] -> ContextQueue
        kind = getattr(candidate, "context_kind", None) if isinstance(candidate, type) else None
        if kind in ("queue", "pool"):
            return kind, optional
    return None


def _union_type() -> Any:
    import types

    return types.UnionType


def analyse(
    fn: Callable[..., Any], fixed_kwargs: Mapping[str, Any], what: str
) -> tuple[tuple[Injection, ...], bool]:
    """Inspect ``fn`` once; return its injection plan and whether it takes ``**kwargs``.

    Raises:
        TypeError: a fixed kwarg names no parameter of ``fn`` and ``fn`` has no ``**kwargs``.
    """
    signature = inspect.signature(fn)
    params = signature.parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not var_kw:
        accepted = {
            name
            for name, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        unknown = sorted(set(fixed_kwargs) - accepted)
        if unknown:
            raise TypeError(
                f"{what} {fn.__name__!r} got fixed kwargs {unknown} that are not parameters "
                f"of the function: add them to its signature or accept **kwargs"
            )
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = dict(getattr(fn, "__annotations__", {}))
    plan: list[Injection] = []
    for name, p in params.items():
        if p.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            continue
        if name not in hints:
            continue
        found = _classify(hints[name])
        if found is not None:
            plan.append((name, found[0], found[1]))
    return tuple(plan), var_kw


def merge_fixed(fixed: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return fixed kwargs (callables evaluated now) overridden by call-time ``kwargs``."""
    merged = {k: (v() if callable(v) else v) for k, v in fixed.items() if k not in kwargs}
    merged.update(kwargs)
    return merged


def inject(
    plan: tuple[Injection, ...],
    agent: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    positional: tuple[str, ...],
) -> dict[str, Any]:
    """Return ``kwargs`` with the running agent's context objects added where wanted.

    A parameter already given (by keyword, or positionally) is left alone. Without an agent,
    a parameter annotated ``ContextQueue | None`` receives None; a required one is left for
    Python to report as missing.
    """
    out = kwargs
    copied = False
    taken = positional[: len(args)]
    for name, kind, optional in plan:
        if name in kwargs or name in taken:
            continue
        if agent is not None:
            value = agent.context_queue if kind == "queue" else agent.context_pool
        elif optional:
            value = None
        else:
            continue
        if not copied:
            out = dict(kwargs)
            copied = True
        out[name] = value
    return out


def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Return the names of ``fn``'s positional parameters, in order."""
    return tuple(
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def first_parameter(fn: Callable[..., Any]) -> str | None:
    """The parameter ``fn(value)`` binds as ``fn(**{name: value})`` would, if there is one.

    The first parameter of a plain Python function, unless it is positional-only (then a
    keyword call fails, a positional one would not). Read from the function's own code
    (what a call binds against), not its signature (which ``__wrapped__`` can change).
    """
    if type(fn) is not types.FunctionType:
        return None
    code = fn.__code__
    if code.co_posonlyargcount or not code.co_argcount:
        return None
    name: str = code.co_varnames[0]
    return name


class ArgumentFit:
    """Which arguments a function's call can take: built on first need (never per call).

    ``room`` is the number of positional parameters (None: ``*args`` takes any), ``names``
    the keywords a call may pass (None: ``**kwargs`` takes any). A keyword naming a
    positional-only parameter counts as one it may pass: no surplus but a mistake, which the
    call then reports.
    """

    __slots__ = ("names", "room")

    def __init__(self, fn: Callable[..., Any]) -> None:
        kind = inspect.Parameter
        try:
            # The function's own parameters (what a call binds against), not a __wrapped__'s.
            params = list(inspect.signature(fn, follow_wrapped=False).parameters.values())
        except (TypeError, ValueError):
            params = [inspect.Parameter("args", kind.VAR_POSITIONAL)]
            params.append(inspect.Parameter("kwargs", kind.VAR_KEYWORD))
        kinds = {p.kind for p in params}
        self.room: int | None = (
            None
            if kind.VAR_POSITIONAL in kinds
            else sum(p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD) for p in params)
        )
        self.names: frozenset[str] | None = (
            None
            if kind.VAR_KEYWORD in kinds
            else frozenset(p.name for p in params if p.kind is not kind.VAR_POSITIONAL)
        )

    def trim(
        self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...] | list[Any], dict[str, Any], list[str]]:
        """The call without its surplus arguments, and what was dropped (empty: nothing)."""
        dropped: list[str] = []
        room, names = self.room, self.names
        if room is not None and len(args) > room:
            extra = len(args) - room
            dropped.append(f"{extra} positional value{'s' if extra > 1 else ''}")
            args = args[:room]
        if names is not None and not kwargs.keys() <= names:
            dropped.extend(repr(k) for k in kwargs if k not in names)
            kwargs = {k: v for k, v in kwargs.items() if k in names}
        return args, kwargs, dropped


class CallShape:
    """What each call of a decorated tool or hook adds: fixed kwargs, injection, a lock.

    Built once at decoration time (signature analysis included).

    Args:
        fn: the decorated function.
        fixed: fixed kwargs given to the decorator.
        lock: serialise runs (within each event loop).
        what: ``"Tool"`` or ``"Hook"``, for messages.
        name: the tool's or hook's name, for messages (default: the function's name).
    """

    __slots__ = ("_guard", "_locks", "fixed", "lock", "name", "plain", "plan", "positional", "what")

    def __init__(
        self,
        fn: Callable[..., Any],
        fixed: dict[str, Any],
        lock: bool,
        what: str,
        *,
        name: str | None = None,
    ) -> None:
        self.plan, _ = analyse(fn, fixed, what)
        self.fixed = fixed
        self.lock = lock
        self.what = what.lower()
        self.name = name if name is not None else getattr(fn, "__name__", repr(fn))
        self.positional = positional_names(fn) if self.plan else ()
        #: True when a call can go straight to the function: nothing to add, no lock.
        self.plain = not (lock or fixed or self.plan)
        self._locks: dict[asyncio.AbstractEventLoop | None, asyncio.Lock] = {}
        self._guard = threading.Lock()

    def kwargs(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Return the call's kwargs with fixed kwargs merged and context injected.

        A call-time keyword that is also a fixed kwarg wins, and is reported with a WARNING
        on the ``pygents`` logger: one record per such key, on every call (COMPAT A12).
        """
        if self.fixed:
            if kwargs:
                for key in self.fixed.keys() & kwargs.keys():
                    _log.warning(
                        "Fixed kwarg %r is overridden by call-time argument for %s %r.",
                        key,
                        self.what,
                        self.name,
                    )
            kwargs = merge_fixed(self.fixed, kwargs)
        if self.plan:
            # Context is injected only while a turn executes (the original's rule): hooks
            # that fire between turns (BEFORE_TURN, AFTER_TURN, ON_TURN_VALUE) get None.
            frame = get_frame()
            agent = frame[0] if frame[1] is not None else None
            kwargs = inject(self.plan, agent, tuple(args), kwargs, self.positional)
        return kwargs

    def get_lock(self) -> asyncio.Lock:
        """The lock for the running event loop (an ``asyncio.Lock`` serves one loop)."""
        loop = asyncio.get_running_loop()
        found = self._locks.get(loop)
        if found is None:
            found = self._new_lock(loop)
        return found

    def lock_object(self) -> asyncio.Lock | None:
        """The lock a caller sees as ``.lock``: the running loop's, or one for no loop yet."""
        if not self.lock:
            return None
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        found = self._locks.get(loop)
        return found if found is not None else self._new_lock(loop)

    def _new_lock(self, loop: asyncio.AbstractEventLoop | None) -> asyncio.Lock:
        # Loops in other threads may be using their locks right now: only locks of closed
        # loops are forgotten, never another live loop's (which would let two runs in that
        # loop overlap). The guard keeps two threads from editing the dict at once.
        with self._guard:
            found = self._locks.get(loop)
            if found is None:
                for old in [k for k in self._locks if k is not None and k.is_closed()]:
                    del self._locks[old]
                if loop is not None and None in self._locks:
                    # The lock handed out before any loop ran becomes this loop's, so that
                    # ``async with hook.lock`` taken early still excludes the runs.
                    found = self._locks[loop] = self._locks.pop(None)
                else:
                    found = self._locks[loop] = asyncio.Lock()
            return found
