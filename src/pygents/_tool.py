"""Tools: ``@tool()``, the two tool kinds, ``ToolMetadata`` and the ``Tool`` protocol."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
)
from time import time
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from . import _callable, _definitions, _schema, _scope
from ._dispatch import fire, fire_global
from ._enums import ToolHook
from ._frame import get_frame, set_frame
from ._hook_list import HookList
from ._hooks import HookPoint, check_lock, hook_list, normalize_tags
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE, GLOBAL_INVOKE, ToolRegistry
from ._scope import NO_CALL as _NO_CALL
from ._scope import SCOPES
from ._types import Tool, ToolMetadata
from .errors import short_repr

__all__ = ["AsyncGenTool", "BaseTool", "CoroutineTool", "Tool", "ToolMetadata", "tool"]

P = ParamSpec("P")
R = TypeVar("R")
Y = TypeVar("Y")

_log = logging.getLogger("pygents")
_SPLIT_DICT_SLOW = sys.version_info < (3, 13)
_TOOL_GLOBALS = GLOBAL_BY_FAMILY[ToolHook]
_G_BEFORE = GLOBAL_BY_TYPE[ToolHook.BEFORE_INVOKE]
_G_AFTER = GLOBAL_BY_TYPE[ToolHook.AFTER_INVOKE]
_G_YIELD = GLOBAL_BY_TYPE[ToolHook.ON_YIELD]
_G_ERROR = GLOBAL_BY_TYPE[ToolHook.ON_ERROR]
# The events, tested against the tool's ``hooks.listens``: an event none of its own hooks
# listens to goes to the global hooks only (or nowhere).
_BEFORE = ToolHook.BEFORE_INVOKE
_AFTER = ToolHook.AFTER_INVOKE
_YIELD = ToolHook.ON_YIELD
_ERROR = ToolHook.ON_ERROR


class _BaseTool:
    """Shared machinery of both tool kinds; everything per-call is precomputed here."""

    #: Whether the tool streams; each tool copies it to ``is_generator``, an instance
    #: attribute (read per turn: before Python 3.13 a class attribute read through an
    #: instance is never specialised, nor an instance attribute of the same name).
    _STREAMS = False
    is_generator: bool
    __name__: str

    before_invoke = HookPoint["_BaseTool"](ToolHook.BEFORE_INVOKE)
    after_invoke = HookPoint["_BaseTool"](ToolHook.AFTER_INVOKE)
    on_error = HookPoint["_BaseTool"](ToolHook.ON_ERROR)

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        lock: bool,
        tags: frozenset[str],
        fixed_kwargs: dict[str, Any],
        parent: _BaseTool | None = None,
    ) -> None:
        shape = _callable.CallShape(fn, fixed_kwargs, lock, "Tool")
        functools.update_wrapper(self, fn)
        self.is_generator = self._STREAMS
        #: The registry name: ``parent.child`` for a subtool (``metadata.name`` stays short).
        self.__name__ = fn.__name__ if parent is None else f"{parent.__name__}.{fn.__name__}"
        self.parent = parent
        self.subtools: list[_BaseTool] = []
        self.fn = fn
        # Schemas are built on first read, never on a turn's path (see _schema).
        self.metadata = ToolMetadata(
            fn.__name__,
            inspect.getdoc(fn),
            spec=functools.partial(_schema.ToolSpec, fn, fixed_kwargs, self.is_generator),
        )
        self._hooks = HookList()
        self.tags = tags
        self.fixed_kwargs = fixed_kwargs
        self._shape = shape
        #: What a call may pass (built on first need) and the sets of surplus arguments
        #: already reported (see _fitted).
        self._fit: _callable.ArgumentFit | None = None
        self._ignored: set[tuple[str, ...]] = set()
        # True when a call can go straight to the function: no lock, kwargs or injection.
        self._plain = shape.plain
        #: For a straight call: the parameter one keyword argument may be passed to by
        #: position (see the run loop), else None.
        self._first = _callable.first_parameter(fn) if shape.plain else None
        if _SPLIT_DICT_SLOW:
            # update_wrapper made the instance dict a "split" one (keys shared with the
            # class), whose attribute reads CPython 3.11/3.12 do not specialise: each of a
            # turn's four reads of a tool attribute would take the generic lookup (~270
            # instructions). A plain dict of the same items reads in ~30. (3.13 reads the
            # split dict's values inline; there a plain dict would cost ~110 a read more.)
            self.__dict__ = dict(self.__dict__)

    @property
    def lock(self) -> asyncio.Lock | None:
        """The ``asyncio.Lock`` serialising this tool's runs, or None without ``lock=True``.

        An ``asyncio.Lock`` serves one event loop, so each loop gets its own (a tool used
        from several threads, each running its own loop, is serialised within each loop):
        inside a running loop this is that loop's lock.
        """
        return self._shape.lock_object()

    def _fitted(
        self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...] | list[Any], dict[str, Any]]:
        """The arguments the function declares, of those given (surplus ones ignored).

        As the original does, a caller may pass more than the tool takes: a keyword naming
        no parameter (without ``**kwargs``) and positional values beyond its positional
        parameters (without ``*args``) are dropped. Each distinct set dropped is logged once
        per tool (WARNING, ``pygents`` logger), so a misspelt keyword is still seen.
        """
        fit = self._fit
        if fit is None:
            fit = self._fit = _callable.ArgumentFit(self.fn)
        args, kwargs, dropped = fit.trim(args, kwargs)
        if dropped:
            key = tuple(dropped)
            warned = self._ignored
            if key not in warned and len(warned) < 100:
                warned.add(key)
                _log.warning(
                    "Tool %r has no parameter for %s: ignored (a tool receives the "
                    "arguments its function declares; *args / **kwargs take any others)",
                    self.__name__,
                    ", ".join(dropped),
                )
        return args, kwargs

    def _call(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> Any:
        """``self.fn(*args, **kwargs)`` (the coroutine or generator), surplus ones ignored.

        The check runs only when the call raised (see ``_refit``). A turn's ways to the
        function (the run loop's bare turn, ``_start``) write this out, to save the call.
        """
        try:
            return self.fn(*args, **kwargs)
        except TypeError as exc:
            return self._refit(exc, args, kwargs)

    def _refit(
        self, error: TypeError, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """Call the function again with the arguments it declares (see ``_fitted``).

        Every call of the function comes here when it raised ``error`` (for an ``async
        def`` function or generator, a call raises only when its arguments do not bind), so
        a call whose arguments bind pays nothing for the rule. With nothing surplus (an
        argument given twice) ``error`` is raised; a call that still does not bind raises
        its own ``TypeError`` (a required argument missing).
        """
        fitted_args, fitted_kwargs = self._fitted(args, kwargs)
        if len(fitted_args) == len(args) and len(fitted_kwargs) == len(kwargs):
            raise error
        try:
            return self.fn(*fitted_args, **fitted_kwargs)
        except TypeError as still:
            raise still from None  # what is still wrong, without the surplus' error

    @property
    def hooks(self) -> HookList:
        """The tool's instance hooks (the list itself; append to add one)."""
        return self._hooks

    @hooks.setter
    def hooks(self, value: Iterable[Any] | None) -> None:
        self._hooks = hook_list(value, f"Tool {self.__name__!r}: hooks")

    def _fire(self, hook_type: ToolHook, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        hooks = self._hooks
        if hooks and hook_type in hooks.listens:
            return fire(hook_type, (hooks,), GLOBAL_BY_TYPE[hook_type], self.tags, *args, **kwargs)
        return fire_global(GLOBAL_BY_TYPE[hook_type], self.tags, *args, **kwargs)

    @overload
    def subtool(self, *, lock: bool = ..., tags: Iterable[str] | None = ...) -> _ToolDecorator: ...
    @overload
    def subtool(
        self, *, lock: bool = ..., tags: Iterable[str] | None = ..., **fixed_kwargs: Any
    ) -> _LooseToolDecorator: ...
    def subtool(
        self, *, lock: bool = False, tags: Iterable[str] | None = None, **fixed_kwargs: Any
    ) -> Any:
        """Decorate a function as a subtool of this tool, registered as ``parent.child``.

        Takes the options of ``@tool()``. The subtool is a full tool; its ``metadata.name``
        is the function's name, and turns and the registry use the scoped name.

        Raises:
            TypeError: the function is not async, or a fixed kwarg is not a parameter.
            ValueError: the scoped name is already registered.
        """
        return _ToolDecorator(
            check_lock(lock, "@subtool"), normalize_tags(tags, "@subtool"), dict(fixed_kwargs), self
        )

    if TYPE_CHECKING:
        # Both kinds are callable (each with its own signature): a list of tools of both
        # kinds, which a type checker takes for a list of this class, is a list of ``Tool``.
        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def doc_tree(self) -> dict[str, Any]:
        """Return ``{"name", "description", "subtools": [...]}``, recursively (short names)."""
        return _definitions.doc_tree(self)

    def definition(self, style: str, *, strict: bool = True) -> dict[str, Any]:
        """Return this tool in a model API's tool shape (see ``ToolRegistry.definitions``).

        Args:
            style: ``"openai"``, ``"openai-responses"``, ``"anthropic"`` or ``"mcp"``.
            strict: for the OpenAI styles, ask for strict mode where the schema allows it.

        Raises:
            ValueError: ``style`` is not one of those.
        """
        return _definitions.definition(self, style, strict=strict)

    def __repr__(self) -> str:
        return f"<tool {self.__name__!r}>"


class CoroutineTool(_BaseTool, Generic[P, R]):
    """A tool made from an ``async def`` function returning one value."""

    def _start(
        self, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], turn: Any = None
    ) -> Coroutine[Any, Any, R]:
        """Return the coroutine a turn drives: the bare function call when nothing wraps it."""
        if self._plain and not self._hooks and not SCOPES and not GLOBAL_INVOKE:
            try:  # _call written out: a turn's way, one method call less per turn
                return self.fn(*args, **kwargs)  # type: ignore[no-any-return]
            except TypeError as exc:
                return self._refit(exc, args, kwargs)  # type: ignore[no-any-return]
        return self._invoke(args, kwargs, turn)

    async def _invoke(
        self, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], turn: Any = None
    ) -> R:
        # Execution scopes' call states are current for the whole call (one step), if they ask
        # to be (see _scope.open_call).
        opened, stepped = _scope.open_call(self, turn, args, kwargs) if SCOPES else _NO_CALL
        tokens = _scope.attach(opened) if stepped else None
        result: Any = None
        error: BaseException | None = None
        try:
            # Each event is gated by its own listeners: a BEFORE_INVOKE hook alone does not
            # make every call pay for AFTER_INVOKE and ON_ERROR dispatches.
            meta = self.metadata
            meta._start = time()
            meta._end = None
            try:
                # BEFORE_INVOKE sees what the tool will receive (fixed kwargs, injected context).
                call_kwargs = kwargs if self._plain else self._shape.kwargs(args, kwargs)
                if (hooks := self._hooks) and _BEFORE in hooks.listens:
                    args, call_kwargs = self._fitted(args, call_kwargs)  # as the tool gets them
                    await self._fire(ToolHook.BEFORE_INVOKE, *args, **call_kwargs)
                elif _G_BEFORE:
                    args, call_kwargs = self._fitted(args, call_kwargs)
                    await fire_global(_G_BEFORE, self.tags, *args, **call_kwargs)
                if self._shape.lock:
                    async with self._shape.get_lock():
                        result = await self._call(args, call_kwargs)
                else:
                    result = await self._call(args, call_kwargs)
            except Exception as exc:
                meta._end = time()
                if _G_ERROR or ((hooks := self._hooks) and _ERROR in hooks.listens):
                    await self._fire(ToolHook.ON_ERROR, exc=exc)
                raise
            meta._end = time()
            if (hooks := self._hooks) and _AFTER in hooks.listens:
                await self._fire(ToolHook.AFTER_INVOKE, result)
            elif _G_AFTER:
                await fire_global(_G_AFTER, self.tags, result)
            return result  # type: ignore[no-any-return]
        except BaseException as exc:
            error = exc
            raise
        finally:
            if opened:
                _scope.close_call(opened, tokens, self, result, error)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Invoke the tool directly (outside a turn), with its hooks, lock and kwargs."""
        outer = get_frame()
        set_frame((outer[0], outer[1], self))
        try:
            return await self._invoke(args, kwargs)
        finally:
            set_frame(outer)


class AsyncGenTool(_BaseTool, Generic[P, Y]):
    """A tool made from an ``async def`` generator, streaming values."""

    _STREAMS = True
    on_yield = HookPoint["_BaseTool"](ToolHook.ON_YIELD)

    def _start(
        self, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], turn: Any = None
    ) -> AsyncIterator[Y]:
        """Return the async iterator a turn drives: the bare generator when nothing wraps it."""
        if self._plain and not self._hooks and not _TOOL_GLOBALS and not SCOPES:
            try:  # _call written out: a turn's way, one method call less per turn
                return self.fn(*args, **kwargs)  # type: ignore[no-any-return]
            except TypeError as exc:
                return self._refit(exc, args, kwargs)  # type: ignore[no-any-return]
        return self._iterate(args, kwargs, turn)

    async def _iterate(
        self, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], turn: Any = None
    ) -> AsyncGenerator[Y, None]:
        # Execution scopes are current during each step of the stream (from a resumption to
        # the next value), never while the consumer handles a value.
        opened, stepped = _scope.open_call(self, turn, args, kwargs) if SCOPES else _NO_CALL
        tokens = _scope.attach(opened) if stepped else None
        meta = self.metadata
        meta._start = time()
        meta._end = None
        values: list[Y] = []
        lock: asyncio.Lock | None = None
        agen: AsyncGenerator[Y, None] | None = None
        error: BaseException | None = None
        try:
            # BEFORE_INVOKE sees what the tool will receive (fixed kwargs, injected context).
            call_kwargs = self._shape.kwargs(args, kwargs)
            if _G_BEFORE or ((hooks := self._hooks) and _BEFORE in hooks.listens):
                args, call_kwargs = self._fitted(args, call_kwargs)  # as the tool gets them
                await self._fire(ToolHook.BEFORE_INVOKE, *args, **call_kwargs)
            if self._shape.lock:
                lock = self._shape.get_lock()
                await lock.acquire()
            agen = self._call(args, call_kwargs)
            async for value in agen:
                values.append(value)
                if (hooks := self._hooks) and _YIELD in hooks.listens:
                    await self._fire(ToolHook.ON_YIELD, value)
                elif _G_YIELD:  # per value: the global hooks directly (see fire_global)
                    await fire_global(_G_YIELD, self.tags, value)
                if stepped:
                    _scope.detach(opened, tokens)
                    tokens = None
                    try:
                        yield value
                    finally:
                        tokens = _scope.attach(opened)
                else:
                    yield value
        except GeneratorExit as exc:
            # The consumer stopped early: close the tool, report the partial values.
            error = exc
            await self._close(agen, lock)
            lock = None
            meta._end = time()
            if _G_AFTER or ((hooks := self._hooks) and _AFTER in hooks.listens):
                await self._fire(ToolHook.AFTER_INVOKE, values)
            raise
        except Exception as exc:
            error = exc
            await self._close(agen, lock)
            lock = None
            meta._end = time()
            if _G_ERROR or ((hooks := self._hooks) and _ERROR in hooks.listens):
                await self._fire(ToolHook.ON_ERROR, exc=exc)
            raise
        except BaseException as exc:
            error = exc
            await self._close(agen, lock)
            lock = None
            meta._end = time()
            raise
        else:
            await self._close(agen, lock)
            meta._end = time()
            if _G_AFTER or ((hooks := self._hooks) and _AFTER in hooks.listens):
                await self._fire(ToolHook.AFTER_INVOKE, values)
        finally:
            if opened:
                _scope.close_call(opened, tokens, self, values, error)

    @staticmethod
    async def _close(agen: AsyncGenerator[Any, None] | None, lock: asyncio.Lock | None) -> None:
        try:
            if agen is not None:
                await agen.aclose()
        finally:
            if lock is not None:
                lock.release()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Y]:
        """Invoke the tool directly (outside a turn): an async iterator of its values."""
        return self._direct(args, kwargs)

    async def _direct(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncGenerator[Y, None]:
        outer = get_frame()
        inner = (outer[0], outer[1], self)
        stream = self._iterate(args, kwargs)
        try:
            while True:
                set_frame(inner)
                try:
                    value = await stream.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    set_frame(outer)
                yield value
        finally:
            set_frame(inner)
            try:
                await stream.aclose()
            finally:
                set_frame(outer)


# Typing: a stream may be annotated AsyncGenerator, AsyncIterator or AsyncIterable (all
# three are AsyncIterable). With fixed kwargs, the tool's own signature is kept for the type
# checker only without them: a ParamSpec cannot drop the parameters they fill, so such a
# tool's arguments go unchecked (its result type is kept).
@overload
def tool(fn: Callable[P, AsyncIterable[Y]], /) -> AsyncGenTool[P, Y]: ...
@overload
def tool(fn: Callable[P, Coroutine[Any, Any, R]], /) -> CoroutineTool[P, R]: ...
@overload
def tool(*, lock: bool = ..., tags: Iterable[str] | None = ...) -> _ToolDecorator: ...
@overload
def tool(
    *, lock: bool = ..., tags: Iterable[str] | None = ..., **fixed_kwargs: Any
) -> _LooseToolDecorator: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    lock: bool = False,
    tags: Iterable[str] | None = None,
    **fixed_kwargs: Any,
) -> Any:
    """Turn an ``async def`` function or async generator into a registered tool.

    Use as ``@tool()`` (or bare ``@tool``). The tool registers in ``ToolRegistry`` under the
    function's name.

    Args:
        fn: the function, when used bare as ``@tool``.
        lock: serialise concurrent invocations (only the function call; hooks run outside).
        tags: tags matched by tag-filtered global hooks.
        **fixed_kwargs: merged into every call; call-time kwargs win; callables are
            evaluated at each call.

    Raises:
        TypeError: the function is not a named async function (a ``functools.partial`` has no
            name), a fixed kwarg is not one of its parameters, or ``lock`` is not a bool.
        ValueError: another tool already has this name.
    """
    decorator = _ToolDecorator(
        check_lock(lock, "@tool"), normalize_tags(tags, "@tool"), dict(fixed_kwargs)
    )
    if fn is not None:
        return decorator(fn)
    return decorator


class _ToolDecorator:
    __slots__ = ("fixed_kwargs", "lock", "parent", "tags")

    def __init__(
        self,
        lock: bool,
        tags: frozenset[str],
        fixed_kwargs: dict[str, Any],
        parent: _BaseTool | None = None,
    ) -> None:
        self.lock = lock
        self.tags = tags
        self.fixed_kwargs = fixed_kwargs
        self.parent = parent

    @overload
    def __call__(self, fn: Callable[P, AsyncIterable[Y]], /) -> AsyncGenTool[P, Y]: ...
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> CoroutineTool[P, R]: ...
    def __call__(self, fn: Callable[..., Any], /) -> Any:
        made: _BaseTool
        kind: type[_BaseTool]
        if inspect.isasyncgenfunction(fn):
            kind = AsyncGenTool
        elif inspect.iscoroutinefunction(fn):
            kind = CoroutineTool
        else:
            raise TypeError(
                f"Tool must be async: @tool needs an 'async def' function or async generator, "
                f"got {getattr(fn, '__name__', fn)!r} ({type(fn).__name__})"
            )
        if not isinstance(getattr(fn, "__name__", None), str):
            # A functools.partial (or a callable object) is async but has no name to register.
            raise TypeError(
                f"Tool needs a named async function: @tool got {short_repr(fn)}, which has no "
                f"__name__ to register it under; define an 'async def' function that calls it"
            )
        made = kind(
            fn, lock=self.lock, tags=self.tags, fixed_kwargs=self.fixed_kwargs, parent=self.parent
        )
        ToolRegistry.register(made)
        if self.parent is not None:
            self.parent.subtools.append(made)
        return made


if TYPE_CHECKING:

    class _LooseToolDecorator(Protocol):
        """``@tool(**fixed_kwargs)`` to a type checker: the tool's arguments are unchecked."""

        @overload
        def __call__(self, fn: Callable[..., AsyncIterable[Y]], /) -> AsyncGenTool[..., Y]: ...
        @overload
        def __call__(
            self, fn: Callable[..., Coroutine[Any, Any, R]], /
        ) -> CoroutineTool[..., R]: ...


#: The base class of both tool kinds (``isinstance(x, BaseTool)``: is it a decorated tool?).
BaseTool = _BaseTool
