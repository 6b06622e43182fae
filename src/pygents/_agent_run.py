"""The agent's run loop: take turns off the queue, execute them, route and stream values.

``run_agent`` is what ``Agent.run()`` returns. Values a turn produces are routed (a ``Turn``
is enqueued, a ``ContextItem`` goes to the context queue or pool), ``ON_TURN_VALUE`` fires for
every value, and only values that were not routed are yielded to the caller.
"""

from __future__ import annotations

import asyncio
from asyncio import current_task
from asyncio.events import _get_running_loop
from collections.abc import AsyncGenerator, Awaitable
from time import time
from typing import Any, Literal

from . import _scope
from ._context import ContextItem
from ._dispatch import fire_global, none_apply
from ._enums import AgentHook, StopReason, TurnHook
from ._frame import get_frame, leave, set_frame
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE, GLOBAL_INVOKE
from ._scope import SCOPES
from ._turn import Turn
from ._turn_run import (
    Watch,
    _close,
    _enter,
    _failed,
    finish,
    finish_step,
    resolve_dynamic,
    run_returning,
    run_yielding,
    seen_by_tool,
    stop_reason_of,
)
from ._types import AgentState as Agent
from .errors import SafeExecutionError

__all__ = ["deliver", "gate", "route", "route_in_frame", "run_agent"]

#: The run loop yields to the event loop after this many turns that never suspended,
#: so that other agents and timers get to run.
_BREATHE_EVERY = 64

_AGENT_GLOBALS = GLOBAL_BY_FAMILY[AgentHook]
# Per-type global hook lists (mutated in place by HookRegistry): the run loop tests the
# one of each event, so an event nobody listens to is not dispatched.
_G_BEFORE_TURN = GLOBAL_BY_TYPE[AgentHook.BEFORE_TURN]
_G_AFTER_TURN = GLOBAL_BY_TYPE[AgentHook.AFTER_TURN]
_G_TURN_VALUE = GLOBAL_BY_TYPE[AgentHook.ON_TURN_VALUE]
_G_RUN_START = GLOBAL_BY_TYPE[AgentHook.ON_RUN_START]
_G_RUN_END = GLOBAL_BY_TYPE[AgentHook.ON_RUN_END]
# A bare stream's turn events (run_yielding fires these for it).
_G_AFTER_RUN = GLOBAL_BY_TYPE[TurnHook.AFTER_RUN]
_G_COMPLETE = GLOBAL_BY_TYPE[TurnHook.ON_COMPLETE]
_TURN_GLOBALS = GLOBAL_BY_FAMILY[TurnHook]
_COMPLETED = StopReason.COMPLETED
# The agent events the run loop fires, tested against the agent's ``hooks.listens``: an
# event none of its own hooks listens to goes to the global hooks only (or nowhere).
_BEFORE_TURN = AgentHook.BEFORE_TURN
_AFTER_TURN = AgentHook.AFTER_TURN
_TURN_VALUE = AgentHook.ON_TURN_VALUE
_RUN_START = AgentHook.ON_RUN_START
_RUN_END = AgentHook.ON_RUN_END
_BEFORE_PUT = AgentHook.BEFORE_PUT
_AFTER_PUT = AgentHook.AFTER_PUT
_CANCELLED = StopReason.CANCELLED
_G_BEFORE_PUT = GLOBAL_BY_TYPE[AgentHook.BEFORE_PUT]
_G_AFTER_PUT = GLOBAL_BY_TYPE[AgentHook.AFTER_PUT]
_ROUTED = (Turn, ContextItem)  # output types the run loop routes (and does not yield)
#: Value types that are never routed: ``value.__class__ in _UNROUTED`` answers the routing
#: test for most values without ``isinstance`` on a tuple (600 instructions less a turn).
_UNROUTED = frozenset((int, float, str, bool, type(None), bytes, dict, list, tuple))


def _note(exc: BaseException, agent: Agent, turn: Turn) -> None:
    exc.add_note(f"raised by a turn of tool {turn.tool_name!r} run by agent {agent.name!r}")


async def gate(agent: Agent) -> None:
    """Wait while the agent is paused, firing ON_PAUSE and ON_RESUME."""
    hooked = bool(agent._hooks or _AGENT_GLOBALS)
    if hooked:
        await agent._fire(AgentHook.ON_PAUSE)
    while agent._paused:
        agent._resumed = asyncio.Event()
        await agent._resumed.wait()
    agent._resumed = None
    if hooked:
        await agent._fire(AgentHook.ON_RESUME)


async def deliver(agent: Agent, turn: Turn, value: Any) -> None:
    """Route a value (a Turn or ContextItem), then fire ON_TURN_VALUE."""
    if isinstance(value, _ROUTED):
        await route(agent, value, turn)
    if _TURN_VALUE in agent._hooks.listens:
        await agent._fire(AgentHook.ON_TURN_VALUE, turn, value)
    elif _G_TURN_VALUE:
        # The run loop's frame is this agent's whenever a global agent hook exists.
        await fire_global(_G_TURN_VALUE, agent._tags, agent, turn, value)


async def route(agent: Agent, value: Any, source: Turn) -> None:
    """Put a Turn on the agent's queue, a ContextItem in its context queue or pool."""
    # Routing runs in the producing turn's frame, so put/append/add hooks see
    # current_turn() == the turn whose output is being routed.
    outer = get_frame()
    set_frame((agent, source, source._tool))
    try:
        await route_in_frame(agent, value)
    finally:
        set_frame(outer)


def route_in_frame(agent: Agent, value: Any) -> Awaitable[None]:
    """Route ``value`` in the current frame (the producing turn's)."""
    if isinstance(value, Turn):
        return agent.put(value)
    pending: Awaitable[None]
    if value.id is None:
        pending = agent._context_queue.append(value)
    else:
        pending = agent._context_pool.add(value)
    return pending


async def run_agent(agent: Agent) -> AsyncGenerator[tuple[Turn, Any], None]:
    """Run queued turns in order, yielding ``(turn, value)``; return when the queue is empty.

    A returned ``Turn`` is enqueued; a returned ``ContextItem`` goes to the context queue
    (no id) or the context pool (with id). A tool error or timeout propagates; the agent
    then stops running and every turn still queued stays queued.

    Raises:
        SafeExecutionError: the agent is already running.
    """
    if agent._running:
        raise SafeExecutionError(f"Agent {agent._name!r} is already running")
    agent._running = True
    queue = agent._queue
    hooks = agent._hooks
    error: BaseException | None = None
    breathe = _BREATHE_EVERY  # turns left before the loop yields to the event loop
    # The tool of the last Turn routed inline, one of the agent's tools (which cannot change
    # while it runs: the setter refuses): a chain's next turn is accepted by an identity test
    # (~150 instructions less than the lookup).
    accepted = None
    # The timeouts of bare turns awaited directly: the agent's (it runs once at a time), kept
    # from run to run: None until its first bare turn, False after it, then a Watch of the
    # event loop (an agent that only ever runs one turn never makes one; a new loop, a new
    # one). Kept, so a later one-turn run awaits its tool too (~3,500 instructions less).
    watch: Watch | Literal[False] | None = agent._watch
    if watch and watch.loop is not _get_running_loop():
        watch = agent._watch = False
    # Between turns, current_agent() is this agent; around each yield the consumer's
    # frame is put back, so code between iterations sees its own.
    outer = get_frame()
    mine = (agent, None, None)
    # Execution scopes (a tracer's run span) are current during each step of the run,
    # hooks included, and detached around each yield like the frame.
    opened = _scope.open_run(agent) if SCOPES else None
    tokens = _scope.attach(opened) if opened else None
    # With agent hooks that fire between turns, the frame between turns is this agent's
    # (put back around each yield); without, nobody looks at it, so it is not touched per
    # turn (hooks fired through agent._fire set it themselves).
    # (A conditional expression, not bool(): calling bool costs ~250 instructions, 3.12.)
    juggle = True if hooks or _G_BEFORE_TURN or _G_AFTER_TURN or _G_TURN_VALUE else False
    if juggle:
        set_frame(mine)
    try:
        # Per-type global lists: other agent hooks (telemetry's put hook) fire nothing here.
        if _G_RUN_START or (hooks and _RUN_START in hooks.listens):
            await agent._fire(AgentHook.ON_RUN_START)
        while queue:
            if agent._paused:
                await gate(agent)
                if not queue:
                    break
            if hooks or _AGENT_GLOBALS:
                if not juggle and (hooks or _G_BEFORE_TURN or _G_AFTER_TURN or _G_TURN_VALUE):
                    juggle = True  # such a hook was added during the run
                    set_frame(mine)
                if hooks and _BEFORE_TURN in hooks.listens:
                    await agent._fire(AgentHook.BEFORE_TURN)
                    if not queue:
                        break
                elif _G_BEFORE_TURN:  # the frame is this agent's (juggle)
                    await fire_global(_G_BEFORE_TURN, agent._tags, agent)
                    if not queue:
                        break
            turn = queue.popleft()
            agent._current_turn = turn
            tool = turn._tool
            if tool.is_generator:
                if (
                    (not hooks or TurnHook not in hooks.families)
                    and (not _TURN_GLOBALS or none_apply(_TURN_GLOBALS, turn._tags))
                    and not turn._hooks
                    and not agent._turn_hooks
                ):
                    # A stream turn without turn hooks: run_yielding's work written
                    # out here, so each value crosses one async generator less (~4,000
                    # instructions a value; the tool's own wrapper, for its hooks and call
                    # scope, stays). It does what run_yielding does for such a turn: the
                    # same scopes, frames and stop reasons, and the global hooks added while
                    # it runs (by the consumer).
                    try:
                        outer_t, frame_t, _hooked, _local = _enter(turn, agent)
                    except Exception as exc:  # the turn is running already (elsewhere)
                        _note(exc, agent, turn)
                        raise
                    if SCOPES:
                        scoped = _scope.open_turn(turn, agent)
                        scoped_tokens = _scope.attach(scoped) if scoped else None
                    else:
                        scoped = None
                    values: list[Any] = []
                    turn.output = values
                    gen: Any = None
                    turn_error: BaseException | None = None
                    # False when the exception ending the stream was raised while a value
                    # was handed over (routed, or yielded to the consumer), not by the tool.
                    stepping = True
                    try:
                        args, kwargs = turn._args, turn._kwargs
                        if args or kwargs:
                            args, kwargs = resolve_dynamic(args, kwargs)
                        gen = tool._start(args, kwargs, turn)  # bare, or the tool's wrapper
                        remaining = turn._timeout
                        while True:
                            step = gen.__anext__()
                            try:
                                pending = step.send(None)  # not suspending: no timer armed
                            except StopIteration as stop:
                                value = stop.value
                            except StopAsyncIteration:
                                break
                            else:
                                try:
                                    value, remaining = await finish_step(
                                        step, pending, remaining, turn
                                    )
                                except StopAsyncIteration:
                                    break
                            values.append(value)
                            set_frame(outer_t)
                            if scoped:
                                _scope.detach(scoped, scoped_tokens)
                                scoped_tokens = None
                            try:
                                if value.__class__ not in _UNROUTED and isinstance(value, _ROUTED):
                                    await deliver(agent, turn, value)  # not yielded
                                else:
                                    if _G_TURN_VALUE or (hooks and _TURN_VALUE in hooks.listens):
                                        await deliver(agent, turn, value)
                                    if juggle:
                                        set_frame(outer)
                                    if opened:
                                        _scope.detach(opened, tokens)
                                        tokens = None
                                        try:
                                            yield turn, value
                                        finally:
                                            tokens = _scope.attach(opened)
                                    else:
                                        yield turn, value
                            except BaseException:
                                stepping = False  # (a flag set per value would cost ~70)
                                raise
                            set_frame(frame_t)
                            if scoped:
                                scoped_tokens = _scope.attach(scoped)
                        if _G_AFTER_RUN:
                            await fire_global(_G_AFTER_RUN, turn.tags, turn, values)
                        turn._stop_reason = _COMPLETED
                    except BaseException as exc:
                        if not stepping:
                            # Raised while a value was handed over: routing it failed, or the
                            # consumer stopped (GeneratorExit) or threw an exception in. The
                            # stream stops there, as run_yielding's when the run loop closes
                            # it: CANCELLED, the tool closed in the turn's frame and scope.
                            set_frame(frame_t)
                            if scoped and scoped_tokens is None:
                                scoped_tokens = _scope.attach(scoped)
                            turn_error = exc if exc.__class__ is GeneratorExit else GeneratorExit()
                            turn._stop_reason = _CANCELLED
                            await _close(gen)
                            raise
                        turn_error = exc
                        if isinstance(exc, Exception):  # the tool (or its hooks) failed
                            await _close(gen)
                            await _failed(turn, agent, exc, False)
                            _note(exc, agent, turn)
                        else:  # cancelled during a step
                            turn._stop_reason = _CANCELLED
                            await _close(gen)
                        raise
                    finally:
                        turn._end = tool.metadata._end = time()
                        turn._running = False
                        try:
                            if _G_COMPLETE:
                                await fire_global(_G_COMPLETE, turn.tags, turn, turn._stop_reason)
                        finally:
                            set_frame(outer_t)
                            if scoped:
                                _scope.close_turn(scoped, scoped_tokens, turn, turn_error)
                    agent._current_turn = None
                else:
                    stream = run_yielding(turn, agent)
                    try:
                        while True:
                            try:
                                value = await stream.__anext__()
                            except StopAsyncIteration:
                                break
                            except Exception as exc:
                                _note(exc, agent, turn)
                                raise
                            if value.__class__ not in _UNROUTED and isinstance(value, _ROUTED):
                                await deliver(agent, turn, value)
                                continue  # routed values are not yielded
                            if _G_TURN_VALUE or (hooks and _TURN_VALUE in hooks.listens):
                                await deliver(agent, turn, value)
                            if opened:
                                if juggle:
                                    set_frame(outer)
                                _scope.detach(opened, tokens)
                                tokens = None
                                try:
                                    yield turn, value
                                finally:
                                    if juggle:
                                        set_frame(mine)
                                    tokens = _scope.attach(opened)
                            elif juggle:
                                set_frame(outer)
                                yield turn, value
                                set_frame(mine)
                            else:
                                yield turn, value
                    finally:
                        await stream.aclose()
                    agent._current_turn = None
            else:
                if (
                    (not hooks or TurnHook not in hooks.families)
                    and (not _TURN_GLOBALS or none_apply(_TURN_GLOBALS, turn._tags))
                    and not turn._hooks
                    and not agent._turn_hooks
                    and not turn._running
                ):
                    # A bare turn (no turn hook; scopes allowed): run_returning's work written
                    # out here, so the most common turn costs no coroutine of its own, with
                    # one frame switch instead of two (see _frame: a live frame). A plain
                    # tool (no tool hook, lock, fixed kwargs or injection) is called bare,
                    # its invocation's work (call scopes) written out too; any other is
                    # called through its invocation (CoroutineTool._invoke), as
                    # run_returning calls it.
                    plain = True if tool._plain and not tool._hooks and not GLOBAL_INVOKE else False
                    here = get_frame()
                    frame = [agent, turn, tool, True]
                    set_frame(frame)
                    turn._running = True
                    turn._stop_reason = None
                    turn._end = None
                    meta = tool.metadata
                    turn._start = meta._start = time()
                    if SCOPES:
                        scoped = _scope.open_turn(turn, agent)
                        scoped_tokens = _scope.attach(scoped) if scoped else None
                    else:
                        scoped = None  # (its tokens are read only when it is set)
                    turn_error = None
                    try:
                        args, kwargs = turn._args, turn._kwargs
                        # How the tool is called: a call by keyword (**kwargs) costs ~1,400
                        # instructions more than one by position (3.12), so a tool given no
                        # argument, or one keyword naming its first parameter, is called by
                        # position, which binds the same (see first_parameter). Dynamic
                        # arguments (callables) are called first.
                        if not plain:
                            by_position = False
                            if args or kwargs:
                                args, kwargs = resolve_dynamic(args, kwargs)
                        elif not args and len(kwargs) == 1 and (first := tool._first) in kwargs:
                            by_position = True
                            one = kwargs[first]
                            if callable(one):
                                one = one()
                                kwargs = {first: one}
                        elif args or kwargs:
                            by_position = False
                            # Keys, then a lookup: no values view built.
                            for key in kwargs:
                                if callable(kwargs[key]):
                                    args, kwargs = resolve_dynamic(args, kwargs)
                                    break
                            else:
                                for arg in args:
                                    if callable(arg):
                                        args, kwargs = resolve_dynamic(args, kwargs)
                                        break
                        else:
                            by_position = False
                        # Scopes open for the tool's invocation as in CoroutineTool._invoke
                        # (which opens them itself for a tool that is not plain).
                        called: list[tuple[Any, Any]] | None  # (no code: an annotation)
                        if SCOPES and plain:
                            called, stepped = _scope.open_call(tool, turn, args, kwargs)
                            called_tokens = _scope.attach(called) if stepped else None
                        else:
                            called = None
                        try:
                            try:
                                if by_position:
                                    coro = tool.fn(one)
                                elif not plain:
                                    coro = tool._start(args, kwargs, turn)
                                elif args or kwargs:
                                    coro = tool.fn(*args, **kwargs)
                                else:
                                    coro = tool.fn()
                            except TypeError as exc:  # the arguments do not bind
                                coro = tool._refit(exc, args, kwargs)
                            if watch and (
                                turn._timeout is None
                                or (watch.pending and watch.task is current_task(watch.loop))
                                or watch.schedule()
                            ):
                                # From the agent's third bare turn on: the tool awaited, its
                                # timeout armed only if it suspends (see Watch).
                                watch.turn = turn
                                try:
                                    value = await coro
                                except BaseException as exc:
                                    watch.turn = None
                                    if watch.armed is turn:
                                        watch.settle(turn, exc)  # may raise its timeout
                                    raise
                                watch.turn = None
                                if watch.armed is turn:
                                    watch.settle(turn, None)
                            else:
                                try:
                                    pending = coro.send(None)
                                except StopIteration as stop:
                                    value = stop.value
                                else:
                                    value = await finish(coro, pending, turn._timeout, turn)
                                if watch is None:
                                    watch = agent._watch = False  # the next one makes it
                                elif watch is False:
                                    watch = agent._watch = Watch(asyncio.get_running_loop())
                        except BaseException as exc:
                            if called:
                                _scope.close_call(
                                    called, called_tokens, tool, None, seen_by_tool(exc, turn)
                                )
                            raise
                        if called:
                            _scope.close_call(called, called_tokens, tool, value, None)
                        turn.output = value
                        turn._stop_reason = _COMPLETED
                    except BaseException as exc:
                        turn_error = exc
                        if isinstance(exc, Exception):
                            turn._stop_reason = stop_reason_of(turn, exc)
                            _note(exc, agent, turn)
                        else:
                            turn._stop_reason = _CANCELLED
                        leave(frame, here)
                        raise
                    finally:
                        turn._end = meta._end = ended = time()
                        turn._running = False
                        if scoped:
                            _scope.close_turn(scoped, scoped_tokens, turn, turn_error)
                    agent._current_turn = None
                    cls = value.__class__
                    routed = cls not in _UNROUTED and (cls is Turn or isinstance(value, _ROUTED))
                    try:
                        if routed:
                            # Routed in the turn's frame (put/append/add hooks see this turn).
                            if (
                                cls is Turn
                                and not _G_BEFORE_PUT
                                and not _G_AFTER_PUT
                                and (
                                    not hooks
                                    or (
                                        _BEFORE_PUT not in hooks.listens
                                        and _AFTER_PUT not in hooks.listens
                                    )
                                )
                            ):
                                # No put hook: no await. Agent.put written out for a turn
                                # of one of its tools, when no service waits on the queue
                                # (its frame is this turn's already); anything else goes
                                # through put (scopes) or _enqueue (none).
                                nxt = value._tool
                                if agent._nonempty is None and (
                                    nxt is accepted or agent._tools.get(nxt.__name__) is nxt
                                ):
                                    accepted = nxt
                                    if SCOPES:  # told first, as put tells them
                                        _scope.enqueue(agent, value)
                                    # Enqueued as the turn that returned it ended
                                    # (one clock read for both: ~400 instructions).
                                    value._enqueued = ended
                                    queue.append(value)
                                elif SCOPES:
                                    await route_in_frame(agent, value)
                                else:
                                    agent._enqueue(value)
                            else:
                                await route_in_frame(agent, value)
                    finally:
                        if here.__class__ is tuple or not here[3]:
                            # leave(frame, here) written out for a frame that no longer
                            # changes (the call costs ~600 instructions here, 3.12).
                            frame[0] = here[0]
                            frame[1] = here[1]
                            frame[2] = here[2]
                            frame[3] = False
                        else:
                            leave(frame, here)
                    if hooks and _TURN_VALUE in hooks.listens:
                        await agent._fire(AgentHook.ON_TURN_VALUE, turn, value)
                    elif _G_TURN_VALUE:
                        await fire_global(_G_TURN_VALUE, agent._tags, agent, turn, value)
                else:
                    try:
                        value = await run_returning(turn, agent)
                    except Exception as exc:
                        _note(exc, agent, turn)
                        raise
                    agent._current_turn = None
                    routed = isinstance(value, _ROUTED)
                    if routed or _G_TURN_VALUE or (hooks and _TURN_VALUE in hooks.listens):
                        await deliver(agent, turn, value)
                if routed:
                    pass  # routed values are not yielded
                elif opened:
                    if juggle:
                        set_frame(outer)
                    _scope.detach(opened, tokens)
                    tokens = None
                    try:
                        yield turn, value
                    finally:
                        if juggle:
                            set_frame(mine)
                        tokens = _scope.attach(opened)
                elif juggle:
                    set_frame(outer)
                    yield turn, value
                    set_frame(mine)
                else:
                    yield turn, value
            if hooks and _AFTER_TURN in hooks.listens:
                await agent._fire(AgentHook.AFTER_TURN, turn)
            elif _G_AFTER_TURN:
                await fire_global(_G_AFTER_TURN, agent._tags, agent, turn)
            breathe -= 1
            if breathe == 0:
                breathe = _BREATHE_EVERY
                await asyncio.sleep(0)
    except BaseException as exc:
        error = exc
        raise
    finally:
        agent._current_turn = None
        agent._running = False
        try:
            if _G_RUN_END or (hooks and _RUN_END in hooks.listens):
                set_frame(mine)
                try:
                    await agent._fire(
                        AgentHook.ON_RUN_END, None if isinstance(error, GeneratorExit) else error
                    )
                finally:
                    set_frame(outer)
            elif juggle:
                set_frame(outer)
        finally:
            if opened:
                _scope.close_run(opened, tokens, agent, error)
