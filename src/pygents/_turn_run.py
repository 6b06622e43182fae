"""Turn execution: hooks, dynamic arguments, the timeout, metadata and stop reason.

``run_returning`` drives a coroutine tool, ``run_yielding`` a streaming one. Both drive the
tool's first step by hand, so a tool that never suspends never pays for a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Generator
from time import time
from typing import Any

from . import _scope
from ._dispatch import fire, fire_global
from ._enums import StopReason, TurnHook
from ._frame import get_frame, set_frame
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE
from ._scope import SCOPES
from ._types import AgentState as Agent
from ._types import TurnState as Turn
from .errors import SafeExecutionError, TurnTimeoutError

__all__ = [
    "Watch",
    "finish",
    "resolve_dynamic",
    "run_returning",
    "run_yielding",
    "seen_by_tool",
    "stop_reason_of",
]

_TURN_GLOBALS = GLOBAL_BY_FAMILY[TurnHook]
# Per-type global hook lists (mutated in place by HookRegistry): an event nobody listens to
# costs one truthiness test, even when other turn hooks exist (e.g. telemetry's).
_G_BEFORE_RUN = GLOBAL_BY_TYPE[TurnHook.BEFORE_RUN]
_G_AFTER_RUN = GLOBAL_BY_TYPE[TurnHook.AFTER_RUN]
_G_COMPLETE = GLOBAL_BY_TYPE[TurnHook.ON_COMPLETE]
_COMPLETED = StopReason.COMPLETED
_ERROR = StopReason.ERROR
_TIMEOUT = StopReason.TIMEOUT
_CANCELLED = StopReason.CANCELLED


def resolve_dynamic(
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


def _timed_out(turn: Turn) -> TurnTimeoutError:
    error = TurnTimeoutError(
        f"Turn of tool {turn._tool.metadata.name!r} timed out after {turn._timeout}s: "
        f"raise its timeout, or make the tool faster"
    )
    error.turn = turn
    return error


async def finish(coro: Any, pending: Any, limit: float | None, turn: Turn) -> Any:
    """Drive ``coro`` (already stepped once, now waiting on ``pending``) to its end."""
    if limit is None:
        return await _Resume(coro, pending)
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await _Resume(coro, pending)
    except TimeoutError as exc:
        if deadline.expired():
            raise _timed_out(turn) from exc
        raise


async def finish_step(
    step: Any, pending: Any, remaining: float | None, turn: Turn
) -> tuple[Any, float | None]:
    """``finish`` for a stream's step (suspended); also return what is left of the timeout.

    A stream turn's timeout bounds the time spent inside the tool: each step that suspends
    takes what it used off what is left, and the consumer's time between values never
    counts. Raises ``StopAsyncIteration`` when the step ends the stream.
    """
    if remaining is None:
        return await _Resume(step, pending), None
    loop = asyncio.get_running_loop()
    started = loop.time()
    value = await finish(step, pending, remaining, turn)
    return value, max(remaining - (loop.time() - started), 1e-9)


class Watch:
    """The timeouts of one run's turns whose tool the run loop awaits directly.

    Stepping a tool's coroutine by hand (``finish``) spares a tool that never suspends a
    timer, but catching its ``StopIteration`` costs about 2,700 instructions a turn; awaiting
    it costs 1,100. So, from an agent's third bare turn on (the watch is the agent's, kept
    from run to run, for one event loop; an agent that runs one turn makes none), the run
    loop awaits the tool with ``turn`` set here, and the deadline is set only once that
    turn has suspended: ``arm()`` is a callback scheduled before a turn starts (once until it
    has run, for the task running the turn), which runs when that task next yields to the
    event loop. Finding the turn still in its tool, it sets the turn's deadline from then, as
    ``finish`` arms its timer after the first step; between turns it does nothing.

    One timer serves every turn (a watchdog): a turn whose deadline is no earlier than the
    timer's leaves it in place (a new timer and its cancellation cost ~12,000 instructions a
    turn that suspends), and when the timer fires before the armed turn's deadline it waits
    again until then; once no turn is armed it lapses. An expired deadline cancels the task,
    and ``settle()`` makes the cancellation a ``TurnTimeoutError`` with ``asyncio.timeout``'s
    rules: only when the tool ended with that cancellation and no other cancellation was
    requested (``Task.uncancel``), raised from a ``TimeoutError`` raised from the
    cancellation.
    """

    __slots__ = (
        "armed",
        "cancelling",
        "deadline",
        "expired",
        "handle",
        "loop",
        "pending",
        "task",
        "turn",
        "when",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: The turn whose tool is being awaited, else None.
        self.turn: Turn | None = None
        #: Whether ``arm`` is scheduled; the task (and its cancellation count) it was for.
        self.pending = False
        self.task: asyncio.Task[Any] | None = None
        self.cancelling = 0
        #: The turn whose deadline is set, the deadline, and the turn it expired for.
        self.armed: Turn | None = None
        self.deadline = 0.0
        self.expired: Turn | None = None
        #: The watchdog timer (None when none is scheduled) and the time it fires at.
        self.handle: asyncio.TimerHandle | None = None
        self.when = 0.0

    def schedule(self) -> bool:
        """Schedule ``arm`` for the task's next yield; False outside a task."""
        task = asyncio.current_task(self.loop)
        if task is None:
            return False
        self.task = task
        self.cancelling = task.cancelling()
        self.pending = True
        self.loop.call_soon(self.arm)
        return True

    def arm(self) -> None:
        self.pending = False
        turn = self.turn
        if turn is not None and self.armed is None and turn._timeout is not None:
            # The task yielded inside this turn's tool: its timeout runs from now.
            self.armed = turn
            deadline = self.deadline = self.loop.time() + turn._timeout
            handle = self.handle
            if handle is None or self.when > deadline:
                if handle is not None:
                    handle.cancel()
                self.when = deadline
                self.handle = self.loop.call_at(deadline, self._expire)
        elif self.armed is None:
            # The watch outlives runs (it is the agent's): it keeps no task alive it does not
            # need (a task with a deadline set, by an earlier call, still needs it).
            self.task = None

    def _expire(self) -> None:
        self.handle = None
        turn = self.armed
        if turn is None or turn is not self.turn or self.task is None:
            return  # no turn in its tool with a deadline: the watchdog lapses
        if self.when < self.deadline:
            # Scheduled for an earlier turn's deadline: wait for this one's.
            self.when = self.deadline
            self.handle = self.loop.call_at(self.deadline, self._expire)
            return
        self.expired = turn
        self.task.cancel()

    def settle(self, turn: Turn | None, exc: BaseException | None) -> None:
        """The armed ``turn`` ended (with ``exc``): disarm; raise its timeout if it expired.

        The watchdog timer stays scheduled for the next turn (see the class).
        """
        self.armed = None
        task = self.task
        if not self.pending:
            self.task = None  # as in arm()
        if turn is not None and self.expired is turn:
            self.expired = None
            if (
                task is not None
                and task.uncancel() <= self.cancelling
                and isinstance(exc, asyncio.CancelledError)
            ):
                try:
                    raise TimeoutError from exc  # what asyncio.timeout raises
                except TimeoutError as timeout:
                    raise _timed_out(turn) from timeout


async def _failed(turn: Turn, agent: Agent | None, exc: Exception, hooked: bool) -> None:
    """Record a failure: TIMEOUT for this turn's own timeout, else ERROR; fire the hooks.

    A ``TurnTimeoutError`` of another (nested) turn is an error of this one.
    """
    turn._stop_reason = reason = stop_reason_of(turn, exc)
    if hooked:
        if reason is _TIMEOUT:
            await _fire_turn(turn, agent, TurnHook.ON_TIMEOUT)
        else:
            await _fire_turn(turn, agent, TurnHook.ON_ERROR, exc)


def seen_by_tool(exc: BaseException, turn: Turn) -> BaseException:
    """What a turn's tool ended with, when ``exc`` ended the turn.

    For the turn's own timeout, the cancellation the timeout threw into the tool (what the
    tool's own invocation reports), else ``exc``.
    """
    if isinstance(exc, TurnTimeoutError) and exc.turn is turn:
        timeout = exc.__cause__  # asyncio.timeout's TimeoutError, raised from the cancellation
        if timeout is not None:
            cancelled = timeout.__cause__ or timeout.__context__
            if isinstance(cancelled, asyncio.CancelledError):
                return cancelled
        return asyncio.CancelledError()
    return exc


def stop_reason_of(turn: Turn, exc: Exception) -> StopReason:
    """TIMEOUT for this turn's own timeout, else ERROR (another turn's timeout included)."""
    if isinstance(exc, TurnTimeoutError) and exc.turn is turn:
        return _TIMEOUT
    return _ERROR


def _completion(turn: Turn, agent: Agent | None, local: bool) -> Awaitable[Any]:
    """ON_COMPLETE's awaitable (whatever happened; the caller restores the frame after)."""
    if local:
        return _fire_turn(turn, agent, TurnHook.ON_COMPLETE, turn._stop_reason)
    return fire_global(_G_COMPLETE, turn.tags, turn, turn._stop_reason)


def _fire_turn(turn: Turn, agent: Agent | None, hook_type: TurnHook, *args: Any) -> Awaitable[Any]:
    hooks = turn._hooks or ()
    # The turn's own hooks, then the agent's turn hooks, then turn hooks put in its hooks.
    lists = (hooks,) if agent is None else (hooks, agent._turn_hooks, agent._hooks)
    return fire(hook_type, lists, GLOBAL_BY_TYPE[hook_type], turn.tags, turn, *args)


def _enter(turn: Turn, agent: Agent | None) -> tuple[Any, Any, bool, bool]:
    """Start a turn; return the caller's frame, the turn's frame, and two hook flags.

    ``hooked``: some turn hook may fire (any instance hook, or a global turn hook of any
    type). ``local``: an instance hook exists (on the turn or the running agent), so every
    event must go through the dispatcher; without one, an event fires only when its own
    global list is non-empty.
    """
    if turn._running:
        raise SafeExecutionError(
            f"The turn of tool {turn._tool.metadata.name!r} is already running: a turn runs "
            f"once at a time"
        )
    outer = get_frame()
    tool = turn._tool
    frame = (agent if agent is not None else outer[0], turn, tool)
    set_frame(frame)
    turn._running = True
    turn._stop_reason = None
    turn._end = None
    turn._start = tool.metadata._start = time()
    # Conditional expressions, not bool(): calling bool costs ~250 instructions (3.12).
    # (An agent's own hooks count when one of them is a turn hook: see HookList.)
    local = (
        True
        if turn._hooks
        or (agent is not None and (agent._turn_hooks or TurnHook in agent._hooks.families))
        else False
    )
    return outer, frame, local or (True if _TURN_GLOBALS else False), local


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
            args, kwargs = resolve_dynamic(args, kwargs)
        coro: Coroutine[Any, Any, Any] = turn._tool._start(args, kwargs, turn)
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            output = stop.value
        else:
            output = await finish(coro, pending, turn._timeout, turn)
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
            set_frame(outer)
            if opened:
                _scope.close_turn(opened, tokens, turn, error)


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
            args, kwargs = resolve_dynamic(args, kwargs)
        stream = turn._tool._start(args, kwargs, turn)
        remaining = turn._timeout
        while True:
            step = stream.__anext__()
            try:
                pending = step.send(None)  # a step that does not suspend arms no timer
            except StopIteration as stop:
                value = stop.value
            except StopAsyncIteration:
                break
            else:
                try:
                    value, remaining = await finish_step(step, pending, remaining, turn)
                except StopAsyncIteration:
                    break
            values.append(value)
            set_frame(outer)
            if opened:
                _scope.detach(opened, tokens)
                tokens = None
            try:
                yield value
            finally:
                set_frame(frame)
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
            set_frame(outer)
            if opened:
                _scope.close_turn(opened, tokens, turn, error)


async def _close(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
