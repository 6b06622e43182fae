"""Execution scopes, the core's side: the registered scopes and their dispatch.

The run loop, turns and tools call these to open, attach, detach and close every registered
scope around their executions; the public ``ExecutionScope`` class and ``add_scope()`` are in
``_execution_scope``, which sits above the core.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "FRAMED_ENQUEUE",
    "NO_CALL",
    "SCOPES",
    "attach",
    "close_call",
    "close_run",
    "close_turn",
    "detach",
    "discard",
    "enqueue",
    "open_call",
]

_log = logging.getLogger("pygents")

#: The registered scopes, in registration order. Mutated in place only, so the hot paths
#: can hold a reference and test it for truthiness.
SCOPES: list[Any] = []

#: The registered scopes whose ``enqueue`` is called in the put's frame
#: (``ExecutionScope.enqueue_in_frame``, read when the scope is added). Mutated in place
#: only, like SCOPES: ``put()`` tests it for truthiness.
FRAMED_ENQUEUE: list[Any] = []

#: What ``open_*`` calls return: the scopes that opened, each with its state.
Opened = list[tuple[Any, Any]]


def _broken(scope: Any, where: str, exc: BaseException) -> None:
    _log.error(
        "pygents: execution scope %r raised in %s and was removed: %s: %s",
        scope,
        where,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    discard(scope)


def discard(scope: Any) -> None:
    """Unregister ``scope`` from SCOPES and FRAMED_ENQUEUE (not registered: no effect)."""
    if scope in SCOPES:
        SCOPES.remove(scope)
    if scope in FRAMED_ENQUEUE:
        FRAMED_ENQUEUE.remove(scope)


# open_run / open_turn / open_call and the three close_* are written out rather than one
# generic helper taking the method name: per turn the core calls four of them, and the generic
# version (getattr, argument packing) measured 7,700 more instructions per turn (callgrind,
# 3.11, a no-op scope: 55,000 -> 62,700).


def enqueue(agent: Any, turn: Any) -> None:
    """Tell every scope that ``agent.put(turn)`` adds the turn to the queue now."""
    for scope in SCOPES:
        try:
            scope.enqueue(agent, turn)
        except Exception as exc:
            _broken(scope, "enqueue", exc)


def open_run(agent: Any) -> Opened | None:
    """Open every scope for an agent run; None when none has a state for it."""
    opened: Opened | None = None
    for scope in SCOPES:
        try:
            state = scope.open_run(agent)
        except Exception as exc:
            _broken(scope, "open_run", exc)
            continue
        if state is not None:
            if opened is None:
                opened = [(scope, state)]
            else:
                opened.append((scope, state))
    return opened


def open_turn(turn: Any, agent: Any) -> Opened | None:
    """Open every scope for a turn; None when none has a state for it."""
    opened: Opened | None = None
    for scope in SCOPES:
        try:
            state = scope.open_turn(turn, agent)
        except Exception as exc:
            _broken(scope, "open_turn", exc)
            continue
        if state is not None:
            if opened is None:
                opened = [(scope, state)]
            else:
                opened.append((scope, state))
    return opened


#: What ``open_call`` returns when no scope opened: nothing to attach or close (the list is
#: empty, so false, and never changed).
NO_CALL: tuple[Opened, bool] = ([], False)


def open_call(
    tool: Any, turn: Any, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
) -> tuple[Opened, bool]:
    """Open every scope for a tool invocation; return its states and whether to attach them.

    The states are empty when no scope opened. A call made by a turn runs inside the turn's
    steps, where the turn's states are current, so its states are attached only when a scope
    that opened asks for it (``ExecutionScope.attach_turn_calls``); a direct call's always are.
    """
    opened: Opened | None = None
    stepped = turn is None
    for scope in SCOPES:
        try:
            state = scope.open_call(tool, turn, args, kwargs)
        except Exception as exc:
            _broken(scope, "open_call", exc)
            continue
        if state is not None:
            if opened is None:
                opened = [(scope, state)]
            else:
                opened.append((scope, state))
            if not stepped and scope.attach_turn_calls:
                stepped = True
    return NO_CALL if opened is None else (opened, stepped)


def attach(opened: Opened) -> Any:
    """Attach every opened state (in order); return the tokens for ``detach``.

    With one opened scope (the common case: telemetry) the token is that scope's own
    (``_NONE`` standing for None, so that None keeps meaning "not attached" to the callers);
    with several, a list of them.
    """
    if len(opened) == 1:
        scope, state = opened[0]
        try:
            token = scope.attach(state)
        except Exception as exc:
            _broken(scope, "attach", exc)
            return _FAILED
        return _NONE if token is None else token
    tokens: list[Any] = []
    for scope, state in opened:
        try:
            tokens.append(scope.attach(state))
        except Exception as exc:
            _broken(scope, "attach", exc)
            tokens.append(_FAILED)
    return tokens


def detach(opened: Opened, tokens: Any) -> None:
    """Detach what ``attach`` attached, in reverse order."""
    if len(opened) == 1:
        if tokens is _FAILED:
            return
        scope = opened[0][0]
        try:
            scope.detach(None if tokens is _NONE else tokens)
        except Exception as exc:
            _broken(scope, "detach", exc)
        return
    for i in range(len(opened) - 1, -1, -1):
        token = tokens[i]
        if token is _FAILED:
            continue
        scope = opened[i][0]
        try:
            scope.detach(token)
        except Exception as exc:
            _broken(scope, "detach", exc)


def close_run(opened: Opened, tokens: Any, agent: Any, error: BaseException | None) -> None:
    """Detach (if attached) and close every opened run state, innermost first."""
    if len(opened) == 1:  # one scope: detach and close written out (no dispatch call)
        scope, state = opened[0]
        if tokens is not None and tokens is not _FAILED:
            try:
                scope.detach(None if tokens is _NONE else tokens)
            except Exception as exc:
                _broken(scope, "detach", exc)
        try:
            scope.close_run(agent, state, error)
        except Exception as exc:
            _broken(scope, "close_run", exc)
        return
    if tokens is not None:
        detach(opened, tokens)
    for scope, state in reversed(opened):
        try:
            scope.close_run(agent, state, error)
        except Exception as exc:
            _broken(scope, "close_run", exc)


def close_turn(opened: Opened, tokens: Any, turn: Any, error: BaseException | None) -> None:
    """Detach (if attached) and close every opened turn state, innermost first."""
    if len(opened) == 1:  # as in close_run
        scope, state = opened[0]
        if tokens is not None and tokens is not _FAILED:
            try:
                scope.detach(None if tokens is _NONE else tokens)
            except Exception as exc:
                _broken(scope, "detach", exc)
        try:
            scope.close_turn(turn, state, error)
        except Exception as exc:
            _broken(scope, "close_turn", exc)
        return
    if tokens is not None:
        detach(opened, tokens)
    for scope, state in reversed(opened):
        try:
            scope.close_turn(turn, state, error)
        except Exception as exc:
            _broken(scope, "close_turn", exc)


def close_call(
    opened: Opened, tokens: Any, tool: Any, result: Any, error: BaseException | None
) -> None:
    """Detach (if attached) and close every opened tool-invocation state, innermost first."""
    if len(opened) == 1:  # as in close_run
        scope, state = opened[0]
        if tokens is not None and tokens is not _FAILED:
            try:
                scope.detach(None if tokens is _NONE else tokens)
            except Exception as exc:
                _broken(scope, "detach", exc)
        try:
            scope.close_call(tool, state, result, error)
        except Exception as exc:
            _broken(scope, "close_call", exc)
        return
    if tokens is not None:
        detach(opened, tokens)
    for scope, state in reversed(opened):
        try:
            scope.close_call(tool, state, result, error)
        except Exception as exc:
            _broken(scope, "close_call", exc)


_FAILED = object()  # an attach that raised: nothing to detach
_NONE = object()  # a scope's attach returned None (its token)
