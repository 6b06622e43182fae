"""Execution scopes: an extension's state made current around each step of execution.

A scope is told when an agent run, a turn or a tool invocation starts and ends (always in
pairs, whatever hooks or tools do), and is asked to make its state current around every
*step* of that execution: the stretches of code that run on its behalf. Between two steps
(while the consumer of a stream handles a value, or the code after ``run()`` executes) the
state is not current. ``attach`` and ``detach`` are called in the same frame around each
step, so the state never crosses an ``await`` into someone else's code.

This is how a tracer makes a turn's span the current span while the tool runs (the
telemetry bridge is one user), without the core importing any tracing package. With no
scope registered, executions pay one truthiness test each.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._agent import Agent
    from ._tool import Tool
    from ._turn import Turn

__all__ = ["ExecutionScope", "add_scope", "remove_scope", "scopes"]

_log = logging.getLogger("pygents")

#: The registered scopes, in registration order. Mutated in place only, so the hot paths
#: can hold a reference and test it for truthiness.
SCOPES: list[ExecutionScope] = []

#: What ``open_*`` calls return: the scopes that opened, each with its state.
Opened = list[tuple["ExecutionScope", Any]]


class ExecutionScope:
    """Base class of an execution scope; override what you need (every method is a no-op).

    The ``open_*`` methods return a state (anything), or None for "nothing to do for this
    execution"; only a non-None state is attached, detached and closed. A scope must be
    cheap and must not raise: an exception from any method is logged on the ``pygents``
    logger and the scope is removed, so a broken extension cannot break the program.

    Order: ``open_run`` before the run's ``ON_RUN_START`` hooks and ``close_run`` after its
    ``ON_RUN_END`` hooks; ``open_turn`` before ``BEFORE_RUN`` and ``close_turn`` after
    ``ON_COMPLETE``; ``open_call`` before a tool invocation's ``BEFORE_INVOKE`` hooks and
    ``close_call`` after its ``AFTER_INVOKE`` / ``ON_ERROR`` hooks. So every hook of a turn
    runs with the turn's state current, every hook of a run with the run's.
    """

    def open_run(self, agent: Agent) -> Any:
        """An agent's ``run()`` starts; return its state, or None."""
        return None

    def close_run(self, agent: Agent, state: Any, error: BaseException | None) -> None:
        """An agent's ``run()`` ended: normally (``error`` None) or with ``error``.

        ``error`` is ``GeneratorExit`` when the consumer stopped iterating early, and a
        ``CancelledError`` on cancellation.
        """

    def open_turn(self, turn: Turn, agent: Agent | None) -> Any:
        """A turn starts (``agent`` is the agent running it, or None); return its state."""
        return None

    def close_turn(self, turn: Turn, state: Any, error: BaseException | None) -> None:
        """A turn ended; ``turn.metadata.stop_reason`` says how, ``error`` with what."""

    def open_call(
        self,
        tool: Tool,
        turn: Turn | None,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        """A tool invocation starts: by ``turn``, or called directly (``turn`` None)."""
        return None

    def close_call(self, tool: Tool, state: Any, result: Any, error: BaseException | None) -> None:
        """A tool invocation ended with ``result`` (a list of values for a stream) or ``error``.

        ``error`` is ``GeneratorExit`` when a stream's consumer stopped early, a
        ``CancelledError`` on cancellation.
        """

    def attach(self, state: Any) -> Any:
        """Make ``state`` current for one step; return a token for ``detach``."""
        return None

    def detach(self, token: Any) -> None:
        """Undo the ``attach`` that returned ``token`` (same frame, same task)."""


def add_scope(scope: ExecutionScope) -> None:
    """Register an execution scope (again: no effect).

    Executions already under way keep the scopes they started with.

    Raises:
        TypeError: ``scope`` is not an ``ExecutionScope``.
    """
    if not isinstance(scope, ExecutionScope):
        raise TypeError(
            f"add_scope() takes an ExecutionScope, got {type(scope).__name__}: subclass "
            f"pygents.ExecutionScope and override the methods you need"
        )
    if scope not in SCOPES:
        SCOPES.append(scope)


def remove_scope(scope: ExecutionScope) -> None:
    """Unregister an execution scope (not registered: no effect)."""
    if scope in SCOPES:
        SCOPES.remove(scope)


def scopes() -> list[ExecutionScope]:
    """Return the registered execution scopes, in registration order."""
    return list(SCOPES)


def _broken(scope: ExecutionScope, where: str, exc: BaseException) -> None:
    _log.error(
        "pygents: execution scope %r raised in %s and was removed: %s: %s",
        scope,
        where,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    remove_scope(scope)


# open_run / open_turn / open_call and the three close_* are written out rather than one
# generic helper taking the method name: per turn the core calls four of them, and the generic
# version (getattr, argument packing) measured 7,700 more instructions per turn (callgrind,
# 3.11, a no-op scope: 55,000 -> 62,700).


def open_run(agent: Agent) -> Opened | None:
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


def open_turn(turn: Turn, agent: Agent | None) -> Opened | None:
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


def open_call(
    tool: Tool, turn: Turn | None, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
) -> Opened | None:
    """Open every scope for a tool invocation; None when none has a state for it."""
    opened: Opened | None = None
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
    return opened


def attach(opened: Opened) -> list[Any]:
    """Attach every opened state (in order); return the tokens for ``detach``."""
    tokens: list[Any] = []
    for scope, state in opened:
        try:
            tokens.append(scope.attach(state))
        except Exception as exc:
            _broken(scope, "attach", exc)
            tokens.append(_FAILED)
    return tokens


def detach(opened: Opened, tokens: list[Any]) -> None:
    """Detach what ``attach`` attached, in reverse order."""
    for i in range(len(opened) - 1, -1, -1):
        token = tokens[i]
        if token is _FAILED:
            continue
        scope = opened[i][0]
        try:
            scope.detach(token)
        except Exception as exc:
            _broken(scope, "detach", exc)


def close_run(opened: Opened, agent: Agent, error: BaseException | None) -> None:
    """Close every opened run state, innermost (last opened) first."""
    for scope, state in reversed(opened):
        try:
            scope.close_run(agent, state, error)
        except Exception as exc:
            _broken(scope, "close_run", exc)


def close_turn(opened: Opened, turn: Turn, error: BaseException | None) -> None:
    """Close every opened turn state, innermost first."""
    for scope, state in reversed(opened):
        try:
            scope.close_turn(turn, state, error)
        except Exception as exc:
            _broken(scope, "close_turn", exc)


def close_call(opened: Opened, tool: Tool, result: Any, error: BaseException | None) -> None:
    """Close every opened tool-invocation state, innermost first."""
    for scope, state in reversed(opened):
        try:
            scope.close_call(tool, state, result, error)
        except Exception as exc:
            _broken(scope, "close_call", exc)


_FAILED = object()
