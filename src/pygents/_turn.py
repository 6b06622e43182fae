"""Turns: one tool call with its arguments, timeout, hooks and outcome."""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Coroutine,
    Generator,
    Iterable,
)
from datetime import UTC, datetime
from time import time
from typing import TYPE_CHECKING, Any

from . import _scope, _serde
from ._current import FRAME
from ._enums import StopReason, TurnHook
from ._hooks import HookPoint, fire, fire_global, normalize_tags
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE, ToolRegistry
from ._scope import SCOPES
from ._tool import _BaseTool
from .errors import SafeExecutionError, SerializationError, TurnTimeoutError, WrongRunMethodError

if TYPE_CHECKING:
    from ._agent import Agent
    from ._tool import Tool

__all__ = ["Turn", "TurnMetadata"]

_TURN_GLOBALS = GLOBAL_BY_FAMILY[TurnHook]
# Per-type global hook lists (mutated in place by HookRegistry): an event nobody listens to
# costs one truthiness test, even when other turn hooks exist (e.g. telemetry's).
_G_BEFORE_RUN = GLOBAL_BY_TYPE[TurnHook.BEFORE_RUN]
_G_AFTER_RUN = GLOBAL_BY_TYPE[TurnHook.AFTER_RUN]
_G_COMPLETE = GLOBAL_BY_TYPE[TurnHook.ON_COMPLETE]
_NO_TAGS: frozenset[str] = frozenset()
_COMPLETED = StopReason.COMPLETED
_ERROR = StopReason.ERROR
_TIMEOUT = StopReason.TIMEOUT
_CANCELLED = StopReason.CANCELLED


class TurnMetadata:
    """What happened to a turn: start and end time, stop reason. Writable at any time.

    A view of its turn (the values live on the turn, so a queued turn carries no extra
    objects). ``trace_context`` is a string-to-string carrier (W3C ``traceparent`` and
    friends) that telemetry fills so a turn's causal origin survives serialization.
    """

    __slots__ = ("_turn",)

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    @property
    def start_time(self) -> datetime | None:
        """When the turn last started (UTC), or None."""
        return _datetime(self._turn._start)

    @start_time.setter
    def start_time(self, value: datetime | None) -> None:
        self._turn._start = None if value is None else value.timestamp()

    @property
    def end_time(self) -> datetime | None:
        """When the turn last ended (UTC), or None."""
        return _datetime(self._turn._end)

    @end_time.setter
    def end_time(self, value: datetime | None) -> None:
        self._turn._end = None if value is None else value.timestamp()

    @property
    def enqueued_time(self) -> datetime | None:
        """When the turn was last put on an agent's queue (UTC), or None."""
        return _datetime(self._turn._enqueued)

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the turn last stopped, or None if it has not run (or is running)."""
        return self._turn._stop_reason

    @stop_reason.setter
    def stop_reason(self, value: StopReason | None) -> None:
        self._turn._stop_reason = value

    @property
    def trace_context(self) -> dict[str, str] | None:
        """The W3C trace-context carrier of where the turn was created, if recorded."""
        return self._turn._trace_context

    @trace_context.setter
    def trace_context(self, value: dict[str, str] | None) -> None:
        self._turn._trace_context = value

    @property
    def queue_wait(self) -> float | None:
        """Seconds the turn waited in an agent's queue before its last run, or None."""
        turn = self._turn
        if turn._enqueued is None or turn._start is None or turn._start < turn._enqueued:
            return None
        return turn._start - turn._enqueued

    @property
    def duration(self) -> float | None:
        """Seconds between start and end, or None if the turn has not ended."""
        turn = self._turn
        if turn._start is None or turn._end is None:
            return None
        return turn._end - turn._start

    def dict(self) -> dict[str, Any]:
        """Return the metadata as a plain, JSON-compatible dict."""
        turn = self._turn
        reason = turn._stop_reason
        carrier = turn._trace_context
        return {
            "start_time": _serde.time_to_iso(turn._start),
            "end_time": _serde.time_to_iso(turn._end),
            "stop_reason": None if reason is None else reason.value,
            "trace_context": None if carrier is None else dict(carrier),
        }

    def __repr__(self) -> str:
        return f"TurnMetadata(stop_reason={self.stop_reason!r}, duration={self.duration!r})"


def _datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


def _resolve_tool(tool: Any) -> Any:
    if isinstance(tool, str):
        return ToolRegistry.get(tool)
    if isinstance(tool, _BaseTool):
        return tool
    raise TypeError(
        f"Turn needs a tool name or a @tool-decorated function, got {tool!r}: "
        f"decorate the function with @tool() first"
    )


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    cls = timeout.__class__
    if cls is not int and cls is not float:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"Turn timeout must be a number of seconds or None, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"Turn timeout must be > 0 seconds, got {timeout!r}")
    return timeout  # type: ignore[no-any-return]


class Turn:
    """One unit of work: which tool to run, with which arguments, within which timeout.

    Args:
        tool: a tool, or the name it is registered under.
        timeout: seconds the tool may run (default 60); None for no limit.
        args: positional arguments; callables among them are called at run time.
        kwargs: keyword arguments; callable values are called at run time.
        tags: tags matched by tag-filtered global hooks.

    Raises:
        UnregisteredToolError: ``tool`` is a name no tool is registered under.
        TypeError: ``tool`` is not a tool, or an argument has the wrong type.
        ValueError: ``timeout`` is not positive.
    """

    __slots__ = (
        "_args",
        "_end",
        "_enqueued",
        "_hooks",
        "_kwargs",
        "_running",
        "_start",
        "_stop_reason",
        "_timeout",
        "_tool",
        "_trace_context",
        "output",
        "tags",
    )

    before_run = HookPoint["Turn"](TurnHook.BEFORE_RUN)
    after_run = HookPoint["Turn"](TurnHook.AFTER_RUN)
    on_timeout = HookPoint["Turn"](TurnHook.ON_TIMEOUT)
    on_error = HookPoint["Turn"](TurnHook.ON_ERROR)
    on_complete = HookPoint["Turn"](TurnHook.ON_COMPLETE)

    def __init__(
        self,
        tool: Tool | str,
        timeout: float | None = 60,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        self._tool = tool if tool.__class__ in _TOOL_CLASSES else _resolve_tool(tool)
        self._timeout = (
            timeout if timeout == 60 and timeout.__class__ is int else _check_timeout(timeout)
        )
        if args is None:
            self._args: list[Any] | tuple[Any, ...] = ()
        elif args.__class__ is list or args.__class__ is tuple:
            self._args = args
        else:
            self._args = _check_args(args)
        if kwargs is None:
            self._kwargs: dict[str, Any] = {}
        elif kwargs.__class__ is dict:
            for key in kwargs:
                if key.__class__ is not str:
                    raise TypeError(f"Turn kwargs keys must be strings, got {key!r}")
            self._kwargs = kwargs
        else:
            self._kwargs = _check_kwargs(kwargs)
        self.tags = _NO_TAGS if tags is None else normalize_tags(tags, "Turn")
        self.output: Any = None
        self._running = False
        # Allocated on first use: a queued turn is one object (cheap to build, light for GC).
        self._hooks: list[Any] | None = None
        self._start: float | None = None
        self._end: float | None = None
        self._enqueued: float | None = None
        self._stop_reason: StopReason | None = None
        self._trace_context: dict[str, str] | None = None

    @property
    def hooks(self) -> list[Any]:
        """The turn's instance hooks (the list itself; append to add one)."""
        hooks = self._hooks
        if hooks is None:
            hooks = self._hooks = []
        return hooks

    @hooks.setter
    def hooks(self, value: Iterable[Any]) -> None:
        self._hooks = list(value)

    @property
    def metadata(self) -> TurnMetadata:
        """Start and end time, stop reason, trace context; writable even while running.

        A fresh view each time (the values live on the turn): caching it on the turn would
        make every turn a reference cycle, left for the cyclic GC to find.
        """
        return TurnMetadata(self)

    # -- guarded attributes ------------------------------------------------------------------

    def _guard(self, name: str) -> None:
        if self._running:
            raise SafeExecutionError(
                f"Cannot change {name!r} of {self!r} while it is running; change it before or after"
            )

    @property
    def tool(self) -> Tool:
        """The tool this turn runs (read-only while running)."""
        return self._tool

    @tool.setter
    def tool(self, value: Tool | str) -> None:
        self._guard("tool")
        self._tool = _resolve_tool(value)

    @property
    def tool_name(self) -> str:
        """The name of the tool this turn runs."""
        return self._tool.metadata.name

    @property
    def args(self) -> list[Any] | tuple[Any, ...]:
        """Positional arguments (read-only while running)."""
        return self._args

    @args.setter
    def args(self, value: list[Any] | tuple[Any, ...]) -> None:
        self._guard("args")
        self._args = _check_args(value)

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments (read-only while running)."""
        return self._kwargs

    @kwargs.setter
    def kwargs(self, value: dict[str, Any]) -> None:
        self._guard("kwargs")
        self._kwargs = _check_kwargs(value)

    @property
    def timeout(self) -> float | None:
        """Seconds the tool may run, or None (read-only while running)."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._guard("timeout")
        self._timeout = _check_timeout(value)

    @property
    def is_running(self) -> bool:
        """True while the turn is executing."""
        return self._running

    def __repr__(self) -> str:
        return f"Turn({self._tool.metadata.name!r})"

    # -- running -----------------------------------------------------------------------------

    async def returning(self) -> Any:
        """Run a coroutine tool and return its value.

        Raises:
            WrongRunMethodError: the tool is an async generator (use ``yielding()``).
            SafeExecutionError: the turn is already running.
            TurnTimeoutError: the tool ran past the timeout.
        """
        if self._tool.is_generator:
            raise WrongRunMethodError(
                f"{self!r} runs an async-generator tool: iterate turn.yielding() instead"
            )
        return await run_returning(self, None)

    def yielding(self) -> AsyncIterator[Any]:
        """Run an async-generator tool, yielding each value.

        Raises:
            WrongRunMethodError: the tool is a coroutine (use ``returning()``).
        """
        if not self._tool.is_generator:
            raise WrongRunMethodError(
                f"{self!r} runs a coroutine tool: await turn.returning() instead"
            )
        return run_yielding(self, None)

    # -- serialization -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the turn as a JSON-compatible dict (hooks by name).

        Raises:
            SerializationError: an argument is a callable (dynamic arguments cannot be saved).
        """
        for i, arg in enumerate(self._args):
            if callable(arg):
                raise SerializationError(
                    f"{self!r}: args[{i}] is a callable and cannot be serialized"
                )
        for key, value in self._kwargs.items():
            if callable(value):
                raise SerializationError(
                    f"{self!r}: kwargs[{key!r}] is a callable and cannot be serialized"
                )
        return {
            "tool_name": self._tool.metadata.name,
            "args": list(self._args),
            "kwargs": dict(self._kwargs),
            "timeout": self._timeout,
            "tags": sorted(self.tags),
            "hooks": [h.metadata.name for h in self._hooks or ()],
            "metadata": self.metadata.dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Turn:
        """Rebuild a turn from ``to_dict()`` output.

        Names resolve only through ``ToolRegistry`` and ``HookRegistry``.

        Raises:
            SerializationError: a field is missing or has the wrong type.
            UnregisteredToolError: the tool name is not registered.
            UnregisteredHookError: a hook name is not registered.
        """
        where = "Turn.from_dict"
        data = _serde.mapping(data, where)
        tool = ToolRegistry.get(_serde.field(data, "tool_name", str, where))
        kwargs = _serde.field(data, "kwargs", dict, where, default={})
        for key in kwargs:
            if not isinstance(key, str):
                raise SerializationError(f"{where}: field 'kwargs' has a non-string key {key!r}")
        timeout = _serde.field(data, "timeout", (int, float, type(None)), where, default=60)
        try:
            turn = cls(
                tool,
                timeout=timeout,
                args=list(_serde.field(data, "args", list, where, default=[])),
                kwargs=dict(kwargs),
                tags=_serde.tags_from(data, where),
            )
        except ValueError as exc:
            raise SerializationError(f"{where}: {exc}") from None
        turn.hooks.extend(_serde.hooks_from(data, where))
        raw_meta = _serde.field(data, "metadata", dict, where, default={})
        meta_where = f"{where} metadata"
        turn._start = _serde.optional_time(raw_meta, "start_time", meta_where)
        turn._end = _serde.optional_time(raw_meta, "end_time", meta_where)
        reason = _serde.field(raw_meta, "stop_reason", (str, type(None)), meta_where, default=None)
        if reason is not None:
            try:
                turn._stop_reason = StopReason(reason)
            except ValueError:
                raise SerializationError(f"{meta_where}: unknown stop_reason {reason!r}") from None
        carrier = _serde.field(
            raw_meta, "trace_context", (dict, type(None)), meta_where, default=None
        )
        if carrier is not None:
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in carrier.items()):
                raise SerializationError(f"{meta_where}: trace_context must map strings to strings")
            turn._trace_context = dict(carrier)
        return turn


def _check_args(value: Any) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return value
    raise TypeError(f"Turn args must be a list or tuple, got {type(value).__name__}")


def _check_kwargs(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return value
    raise TypeError(f"Turn kwargs must be a dict with string keys, got {value!r}")


def _resolve_dynamic(
    args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[list[Any] | tuple[Any, ...], dict[str, Any]]:
    """Call the callables among the arguments (dynamic arguments); copy only if needed."""
    for arg in args:
        if callable(arg):
            args = [a() if callable(a) else a for a in args]
            break
    for value in kwargs.values():
        if callable(value):
            kwargs = {k: (v() if callable(v) else v) for k, v in kwargs.items()}
            break
    return args, kwargs


class _Resume:
    """Await the rest of a coroutine (or awaitable step) already driven one step by hand.

    This is ``yield from`` written out, so the first step can run without arming a timer:
    a tool that never suspends never pays for a timeout.
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        pending = self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Any, pending: Any, limit: float | None, turn: Turn) -> Any:
    """Drive ``coro`` (already stepped once, now waiting on ``pending``) to its end."""
    if limit is None:
        return await _Resume(coro, pending)
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await _Resume(coro, pending)
    except TimeoutError as exc:
        if deadline.expired():
            error = TurnTimeoutError(
                f"{turn!r} timed out after {turn._timeout} s: raise its timeout, or make "
                f"the tool faster"
            )
            error.turn = turn
            raise error from exc
        raise


async def _failed(turn: Turn, agent: Agent | None, exc: Exception, hooked: bool) -> None:
    """Record a failure: TIMEOUT for this turn's own timeout, else ERROR; fire the hooks.

    A ``TurnTimeoutError`` of another (nested) turn is an error of this one.
    """
    if isinstance(exc, TurnTimeoutError) and exc.turn is turn:
        turn._stop_reason = _TIMEOUT
        if hooked:
            await _fire_turn(turn, agent, TurnHook.ON_TIMEOUT)
    else:
        turn._stop_reason = _ERROR
        if hooked:
            await _fire_turn(turn, agent, TurnHook.ON_ERROR, exc)


def _completion(turn: Turn, agent: Agent | None, local: bool) -> Awaitable[Any]:
    """ON_COMPLETE's awaitable (whatever happened; the caller restores the frame after)."""
    if local:
        return _fire_turn(turn, agent, TurnHook.ON_COMPLETE, turn._stop_reason)
    return fire_global(_G_COMPLETE, turn.tags, turn, turn._stop_reason)


def _fire_turn(turn: Turn, agent: Agent | None, hook_type: TurnHook, *args: Any) -> Awaitable[Any]:
    hooks = turn._hooks or ()
    lists = (hooks,) if agent is None else (hooks, agent._hooks)
    return fire(hook_type, lists, GLOBAL_BY_TYPE[hook_type], turn.tags, turn, *args)


def _enter(turn: Turn, agent: Agent | None) -> tuple[Any, Any, bool, bool]:
    """Start a turn; return the caller's frame, the turn's frame, and two hook flags.

    ``hooked``: some turn hook may fire (any instance hook, or a global turn hook of any
    type). ``local``: an instance hook exists (on the turn or the running agent), so every
    event must go through the dispatcher; without one, an event fires only when its own
    global list is non-empty.
    """
    if turn._running:
        raise SafeExecutionError(f"{turn!r} is already running: a turn runs once at a time")
    outer = FRAME.get()
    tool = turn._tool
    frame = (agent if agent is not None else outer[0], turn, tool)
    FRAME.set(frame)
    turn._running = True
    turn._stop_reason = None
    turn._end = None
    turn._start = tool.metadata._start = time()
    local = bool(turn._hooks or (agent is not None and agent._hooks))
    return outer, frame, local or bool(_TURN_GLOBALS), local


async def run_returning(turn: Turn, agent: Agent | None) -> Any:
    """Execute a coroutine-tool turn: hooks, dynamic args, timeout, metadata, stop reason."""
    outer, _, hooked, local = _enter(turn, agent)
    # Execution scopes (e.g. a tracer's span) are current for the whole turn, hooks
    # included: a coroutine tool runs as one step, in this frame.
    opened = _scope.open_turn(turn, agent) if SCOPES else None
    tokens = _scope.attach(opened) if opened else None
    error: BaseException | None = None
    try:
        if local:
            await _fire_turn(turn, agent, TurnHook.BEFORE_RUN)
        elif _G_BEFORE_RUN:
            await fire_global(_G_BEFORE_RUN, turn.tags, turn)
        args, kwargs = turn._args, turn._kwargs
        if args or kwargs:
            args, kwargs = _resolve_dynamic(args, kwargs)
        coro: Coroutine[Any, Any, Any] = turn._tool._start(args, kwargs, turn)  # type: ignore[assignment]
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            output = stop.value
        else:
            output = await _finish(coro, pending, turn._timeout, turn)
        turn.output = output
        if local:
            await _fire_turn(turn, agent, TurnHook.AFTER_RUN, output)
        elif _G_AFTER_RUN:
            await fire_global(_G_AFTER_RUN, turn.tags, turn, output)
        turn._stop_reason = _COMPLETED
        return output
    except Exception as exc:
        error = exc
        await _failed(turn, agent, exc, hooked)
        raise
    except BaseException as exc:
        error = exc
        turn._stop_reason = _CANCELLED
        raise
    finally:
        turn._end = turn._tool.metadata._end = time()
        turn._running = False
        try:
            if local or _G_COMPLETE:
                await _completion(turn, agent, local)
        finally:
            FRAME.set(outer)
            if opened:
                _scope.detach(opened, tokens)  # type: ignore[arg-type]
                _scope.close_turn(opened, turn, error)


async def run_yielding(turn: Turn, agent: Agent | None) -> AsyncGenerator[Any, None]:
    """Execute an async-generator-tool turn, yielding each value.

    The timeout bounds the time spent inside the tool, not the consumer's time between
    values. Stopping early (``break``, ``aclose()``) ends the turn as CANCELLED. Execution
    scopes are current during each step (from a resumption to the next value), never while
    the consumer handles a value.
    """
    outer, frame, hooked, local = _enter(turn, agent)
    opened = _scope.open_turn(turn, agent) if SCOPES else None
    tokens = _scope.attach(opened) if opened else None
    error: BaseException | None = None
    values: list[Any] = []
    turn.output = values
    stream: Any = None
    try:
        if local:
            await _fire_turn(turn, agent, TurnHook.BEFORE_RUN)
        elif _G_BEFORE_RUN:
            await fire_global(_G_BEFORE_RUN, turn.tags, turn)
        args, kwargs = turn._args, turn._kwargs
        if args or kwargs:
            args, kwargs = _resolve_dynamic(args, kwargs)
        stream = turn._tool._start(args, kwargs, turn)
        remaining = turn._timeout
        loop = None
        while True:
            step = stream.__anext__()
            try:
                pending = step.send(None)
            except StopIteration as stop:
                value = stop.value
            except StopAsyncIteration:
                break
            else:
                if loop is None:
                    loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    value = await _finish(step, pending, remaining, turn)
                except StopAsyncIteration:
                    break
                if remaining is not None:
                    remaining = max(remaining - (loop.time() - started), 1e-9)
            values.append(value)
            FRAME.set(outer)
            if opened:
                _scope.detach(opened, tokens)  # type: ignore[arg-type]
                tokens = None
            try:
                yield value
            finally:
                FRAME.set(frame)
                if opened:
                    tokens = _scope.attach(opened)
        if local:
            await _fire_turn(turn, agent, TurnHook.AFTER_RUN, values)
        elif _G_AFTER_RUN:
            await fire_global(_G_AFTER_RUN, turn.tags, turn, values)
        turn._stop_reason = _COMPLETED
    except Exception as exc:
        error = exc
        await _close(stream)
        await _failed(turn, agent, exc, hooked)
        raise
    except BaseException as exc:
        # GeneratorExit (the consumer stopped early) or cancellation.
        error = exc
        turn._stop_reason = _CANCELLED
        await _close(stream)
        raise
    finally:
        turn._end = turn._tool.metadata._end = time()
        turn._running = False
        try:
            if local or _G_COMPLETE:
                await _completion(turn, agent, local)
        finally:
            FRAME.set(outer)
            if opened:
                if tokens is not None:
                    _scope.detach(opened, tokens)
                _scope.close_turn(opened, turn, error)


async def _close(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


from ._tool import AsyncGenTool, CoroutineTool  # noqa: E402

_TOOL_CLASSES = (CoroutineTool, AsyncGenTool)
