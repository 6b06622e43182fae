"""The bridge's agent and tool event hooks: put, values, pause, yields.

Point events are global hooks; they land on the span of the execution they belong to (the
tool step's, the turn's, else the agent run's) and feed the metric recorder.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pygents import current_agent, current_turn

from . import _semconv as sc
from ._bridge_state import CallState, RunState, State, TurnState

if TYPE_CHECKING:
    from ._bridge_metrics import MetricRecorder

__all__ = ["AgentEvents"]


class AgentEvents:
    """Agent and tool event handlers, mixed into ``Bridge`` (which provides the attributes)."""

    spans: Any
    metrics: MetricRecorder | None
    yield_events_cap: int
    _call: ContextVar[CallState | None]
    _runs: dict[Any, RunState]
    _turns: dict[Any, TurnState]
    _routing: dict[Any, tuple[Any, int, Any, dict[str, Any] | None]]

    def _end_routed(self, turn: Any) -> None:
        raise NotImplementedError

    def _turn_span(self, turn: Any) -> Any:
        """The span of ``turn`` (the turn the core says is current), if open.

        Events of a turn fired outside its own steps (the agent routing what the turn
        produced) belong to it too.
        """
        if self._routing:
            pending = self._routing.get(turn)
            if pending is not None:
                return pending[0]
        state = self._turns.get(turn)
        return None if state is None else state.span

    def _innermost(self) -> State | None:
        """The execution running in this task: a direct tool call, a turn, else None.

        A direct call is the innermost when it was made in the turn the core says is current
        (else a turn started inside the call is). A turn is found by ``current_turn()``; a
        closed one (a task it started, outliving it) is not.
        """
        turn = current_turn()
        call = self._call.get()
        if call is not None and not call.closed and call.turn is turn:
            return call
        return None if turn is None else self._turns.get(turn)

    def _locate(self, agent: Any = None) -> tuple[Any, Any, bool]:
        """(the span events belong to, the current turn's span, whether a tool call's).

        The span is the tool call's (a direct call made in the turn the core says is
        current), else that turn's, else the agent run's. The turn's span is not looked up
        for a tool call's events (None then). ``agent``: the current agent, if known.
        """
        turn = current_turn()
        call = self._call.get()
        if call is not None and not call.closed and call.turn is turn:
            return call.span, None, True
        turn_span = None if turn is None else self._turn_span(turn)
        return (self._run_span(agent) if turn_span is None else turn_span), turn_span, False

    def _current_span(self) -> Any:
        """The span events belong to: the tool call's, the turn's, else the agent run's."""
        return self._locate()[0]

    def _run_span(self, agent: Any = None) -> Any:
        """The span of the run of the agent the core says is current, if open.

        ``agent``: the agent whose run it is, if known (``enqueue`` is given the agent put
        to, and is called in the caller's frame: see ``Bridge.enqueue_in_frame``).
        """
        if agent is None:
            agent = current_agent()
        run = None if agent is None else self._runs.get(agent)
        return None if run is None else run.span

    def _event(self, name: str, items: tuple[tuple[str, Any], ...] = ()) -> None:
        """Add the event ``name`` (attributes: ``items``) to the current span, if any."""
        spans = self.spans
        if spans is None:
            return
        span = self._current_span()
        if span is not None:
            if self._routing:
                turn = current_turn()
                pending = None if turn is None else self._routing.get(turn)
                if pending is not None and pending[0] is span:
                    # Routing the turn's output, just after its span's end: stamped with
                    # that end, so that the event is drawn inside the span.
                    spans.add_event(span, name, items, pending[1])
                    return
            spans.add_event(span, name, items)

    def enqueue(self, agent: Any, turn: Any) -> None:
        """``put()`` adds ``turn`` to the queue now: its origin, the put event, the count.

        An execution-scope call (not an ``AFTER_PUT`` hook): nothing awaits between it and
        the turn joining the queue, so the origin is on the turn before a running or serving
        agent can start it (a put hook that awaits, fired before a hook of the bridge's,
        would let it start first), and a put costs no hook dispatch.
        """
        spans = self.spans
        if spans is not None:
            # The put routes the output of the turn the core says is current (the run loop,
            # just after that turn ended): that turn's span, kept open for it, is the span
            # (what _locate() finds then, without its lookups: the turn's tool call is
            # closed), and it ends after the event (see _routed).
            routed = None
            if self._routing:
                producer: Any = current_turn()  # a Turn whenever routed is set
                if producer is not None:
                    routed = self._routing.pop(producer, None)
            if routed is not None:
                span = turn_span = routed[0]
                in_call = False
                # The producer's returned turn: its origin, the producer's span, was recorded
                # as that span was kept for this put (see Bridge._end_turn_span).
                meta = None if producer.output is turn else turn.metadata
            else:
                span, turn_span, in_call = self._locate(agent)
                meta = turn.metadata
            # Recorded already (by the turn that returned it, or by its sender) and not run
            # since: kept. A turn put again after it ran gets the origin of this put.
            if meta is not None:
                recorded = meta.recorded_trace_context
                if recorded is None or meta.start_time is not None:
                    # Causality: inside a tool's step, the current span (the tool's, or a
                    # user's span within it); while the agent routes a turn's output, that
                    # turn's span; else whatever span is current. Outside a step of the turn
                    # the core says is current (routing it), the span current is the agent
                    # run's (or none).
                    origin = None
                    current = spans.current_valid()  # None: no span, or an invalid one
                    if not in_call and (
                        current is None
                        or current is (span if turn_span is None else self._run_span(agent))
                    ):
                        origin = turn_span
                    if origin is None:
                        origin = current
                    if origin is not None:
                        spans.record_origin(meta, origin)
                    elif recorded is not None:
                        meta.trace_context = None  # ran, and this put has no origin
            if span is not None:
                items = (
                    (sc.GEN_AI_AGENT_NAME, agent.name),
                    (sc.GEN_AI_TOOL_NAME, turn.tool.__name__),
                )
                if routed is not None:
                    spans.add_event_and_end(span, sc.EVENT_PUT, items, routed[3], routed[1])
                else:
                    spans.add_event(span, sc.EVENT_PUT, items)
        if self.metrics is not None:
            self.metrics.enqueued(agent)

    def _routed(self) -> None:
        """The agent routed a turn's output (this put, append or add): end that turn's span.

        Routing (``Agent.put``, a context queue's ``append``, a pool's ``add``) runs in the
        producing turn's frame and makes exactly one such event, after any eviction it
        causes; so its span, kept open for them, ends here with the end time it had.
        """
        turn = current_turn()
        if turn is not None and turn in self._routing:
            self._end_routed(turn)

    def pause(self, agent: Any) -> None:
        run = self._runs.get(agent)
        if run is not None and run.span is not None:
            run.span.add_event(sc.EVENT_PAUSE)
        if self.metrics is not None:
            self.metrics.watch(agent)

    def resume(self, agent: Any) -> None:
        run = self._runs.get(agent)
        if run is not None and run.span is not None:
            run.span.add_event(sc.EVENT_RESUME)
        if self.metrics is not None:
            self.metrics.watch(agent)

    def tool_yield(self, value: Any) -> None:
        state = self._innermost()
        if state is None or state.closed:
            return
        if self.metrics is not None and isinstance(state, TurnState) and state.agent is not None:
            # A value of a stream run by an agent, which delivers each one: counted as it
            # comes (a returning tool's value is counted when its turn ends).
            self.metrics.value(state.lane)
        if state.span is None:
            return
        state.yields += 1
        if state.yields <= self.yield_events_cap:
            self.spans.add_event(
                state.span, sc.EVENT_YIELD, ((sc.PYGENTS_TOOL_YIELD_INDEX, state.yields - 1),)
            )
