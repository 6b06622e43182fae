"""``ExecutionScope``: an extension's state made current around each step of execution.

A scope is told when an agent run, a turn or a tool invocation starts and ends (always in
pairs, whatever hooks or tools do), and is asked to make its state current around every
*step* of that execution: the stretches of code that run on its behalf. Between two steps
(while the consumer of a stream handles a value, or the code after ``run()`` executes) the
state is not current. ``attach`` and ``detach`` are called in the same frame around each
step, so the state never crosses an ``await`` into someone else's code.

This is how a tracer makes a turn's span the current span while the tool runs (the
telemetry bridge is one user), without the core importing any tracing package. With no
scope registered, executions pay one truthiness test each. The dispatch lives in ``_scope``,
at the bottom of the core; this module, the public face, sits on top of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._scope import FRAMED_ENQUEUE, SCOPES, discard

if TYPE_CHECKING:  # nothing in the core imports this module
    from ._agent import Agent
    from ._tool import Tool
    from ._turn import Turn

__all__ = ["ExecutionScope", "add_scope", "remove_scope", "scopes"]


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

    ``attach_turn_calls``: whether the state ``open_call`` returns for a tool call made by a
    turn is attached around the call's steps too. The call runs inside the turn's steps, with
    the turn's state current already; a scope whose turn state is all a call needs sets this
    False, and saves a switch per step (the telemetry bridge does). Its ``open_call`` and
    ``close_call`` are still called; a direct call's state is always attached. (When several
    scopes opened for a call, its states are attached if any of them asks.)

    ``enqueue_in_frame``: whether ``enqueue`` is called in the put's frame
    (``current_agent()`` is the agent put to). A put made outside that agent's frame switches
    to it for its hooks and for the scopes that ask; a scope whose ``enqueue`` reads only its
    arguments sets this False, and saves a put with no hook the switch (~4,000 instructions;
    the telemetry bridge does). ``current_turn()`` is the same either way. Read when the
    scope is added.
    """

    attach_turn_calls: bool = True
    enqueue_in_frame: bool = True

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

    def enqueue(self, agent: Agent, turn: Turn) -> None:
        """``agent.put(turn)`` is about to add the turn to the agent's queue.

        Called after the put's ``BEFORE_PUT`` hooks (a veto stops the put before it) and
        before its ``AFTER_PUT`` hooks, in the put's frame (``current_agent()`` is ``agent``;
        a scope with ``enqueue_in_frame`` False may get the caller's), with nothing awaited
        between this call and the turn joining the queue: what is recorded on the turn here
        is there before a running or serving agent can start it. Not called for
        ``requeue()`` (a retry keeps what its first put recorded).
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
        if scope.enqueue_in_frame:
            FRAMED_ENQUEUE.append(scope)


def remove_scope(scope: ExecutionScope) -> None:
    """Unregister an execution scope (not registered: no effect)."""
    discard(scope)


def scopes() -> list[ExecutionScope]:
    """Return the registered execution scopes, in registration order."""
    return list(SCOPES)
