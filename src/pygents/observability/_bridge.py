"""The bridge: an execution scope plus global hooks that turn pygents into spans and metrics.

Lifecycles (agent runs, turns, tool calls) come through the bridge's ``ExecutionScope``:
the core opens and closes them in pairs whatever user hooks and tools do, so every turn
gets its span ended, its counts and a real duration, and no state stays behind. The scope
also makes the execution's span current around each step (its OpenTelemetry context is
attached and detached in the same frame), so spans made inside a tool are its children.
Point events (put, pause, values, yields, context changes) come through global hooks.

Every entry point is guarded: a failing tracer, meter or exporter is logged once and never
raises into the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any

from pygents import (
    AgentHook,
    ContextItem,
    ContextPoolHook,
    ContextQueueHook,
    ExecutionScope,
    Hook,
    HookRegistry,
    StopReason,
    ToolHook,
    Turn,
    add_scope,
    current_turn,
    hook,
    remove_scope,
)

from . import _semconv as sc
from ._bridge_context import ContextEvents
from ._bridge_events import AgentEvents
from ._bridge_metrics import MetricRecorder
from ._bridge_state import CallState, RunState, State, TurnState
from ._cells import BoundedCache, Lane
from ._settings import ContentCapture, LabelLimiter, label_limit, warn_once
from ._settings import yield_events_cap as _yield_cap

if TYPE_CHECKING:
    from ._metrics import OtelMetrics
    from ._store import MetricStore

__all__ = ["Bridge"]

_COMPLETED = StopReason.COMPLETED
# Bound once: ``HookRegistry.lookup(...)`` on the imported class would build a bound method
# per call (see pygents._frame.get_frame); open_turn calls it per turn.
_lookup_hook = HookRegistry.lookup
_TIMEOUT = StopReason.TIMEOUT
_ERROR = StopReason.ERROR
_ROUTED = (Turn, ContextItem)  # outputs the agent routes (put / append / add)
#: Output types that are never routed: a set lookup answers for them without ``isinstance``.
_UNROUTED = frozenset((int, float, str, bool, type(None), bytes, dict, list, tuple))


class Bridge(ExecutionScope, AgentEvents, ContextEvents):
    """Holds the telemetry state; registered as an execution scope and as global hooks."""

    #: A turn's tool call gets the turn's own state (its span, current around the call's
    #: steps already): no switch of its own per step.
    attach_turn_calls = False
    #: The scope's ``enqueue`` is the put-time record of AgentEvents (ExecutionScope, first
    #: in the bases, has a no-op of that name). It reads the agent from its argument, not
    #: from the frame: a put outside the agent's frame switches none for it.
    enqueue = AgentEvents.enqueue
    enqueue_in_frame = False

    def __init__(
        self,
        tracer: Any | None,
        store: MetricStore | None,
        otel_metrics: OtelMetrics | None,
        capture: ContentCapture,
        yield_events_cap: int | None = None,
    ) -> None:
        self.store = store
        self.capture = capture
        #: Yield events kept per span (None: ``PYGENTS_YIELD_EVENTS_MAX``, default 100).
        self.yield_events_cap = yield_events_cap if yield_events_cap is not None else _yield_cap()
        self.hooks: list[Hook] = []
        #: The innermost tool call made directly (not by a turn) in this task. Turns and runs
        #: need no such variable: the core's frame (``current_turn()``, ``current_agent()``)
        #: names them, and ``_turns`` / ``_runs`` hold their states; so making one current is
        #: one switch of OpenTelemetry's context.
        self._call: ContextVar[CallState | None] = ContextVar("pygents_bridge_call", default=None)
        #: Open direct calls and runs with a span (open turns are in ``_turns``), so
        #: uninstrument() can end them.
        self._open: dict[int, State] = {}
        self._runs: dict[Any, RunState] = {}
        #: Open turns: events fired for a turn outside its steps (the agent routing what a
        #: stream yielded) still find its span.
        self._turns: dict[Any, TurnState] = {}
        #: Turns whose output the agent routes next: their span stays open for those events.
        #: (span, end time, agent, its closing attributes if not set yet).
        self._routing: dict[Any, tuple[Any, int, Any, dict[str, Any] | None]] = {}
        self._lanes: BoundedCache[tuple[str, Any, Any], Lane] = BoundedCache()
        limit = label_limit()
        self._agent_label = LabelLimiter("agent", limit)
        self._tool_label = LabelLimiter("tool", limit)
        self._owner_label = LabelLimiter("owner", limit)
        self._error_label = LabelLimiter("error_type", limit)
        self.metrics: MetricRecorder | None = None
        if store is not None:
            self.metrics = MetricRecorder(
                store, otel_metrics, self._agent_label, self._tool_label, self._error_label
            )
            store.owner_label = self._owner
        self.spans: Any = None
        self.tracer = tracer
        self._get_current: Callable[[], Any] = lambda: None
        if tracer is not None:
            from ._spans import Spans

            self.spans = Spans(tracer, capture)
            access = self.spans.context
            self._get_current = access.get_current
            self._otel_attach = access.attach
            self._otel_detach = access.detach
        self._probe: Hook | None = None
        self._probe_name = ""

    # -- registration ------------------------------------------------------------------------

    def register(self) -> None:
        """Register the bridge's execution scope and the global hooks its halves need."""
        spans, metrics = self.spans is not None, self.metrics is not None
        # (hook type, method, needed for spans, needed for metrics): a hook nobody needs is
        # not registered, so it costs nothing per turn.
        table: list[tuple[Any, Callable[..., None], bool, bool]] = [
            (AgentHook.ON_PAUSE, self.pause, True, True),
            (AgentHook.ON_RESUME, self.resume, True, True),
            (ToolHook.ON_YIELD, self.tool_yield, True, True),
            (ContextQueueHook.AFTER_APPEND, self.queue_append, True, True),
            (ContextQueueHook.ON_EVICT, self.queue_evict, True, True),
            (ContextQueueHook.AFTER_CLEAR, self.queue_clear, True, True),
            (ContextPoolHook.AFTER_ADD, self.pool_add, True, True),
            (ContextPoolHook.AFTER_REMOVE, self.pool_remove, True, True),
            (ContextPoolHook.ON_EVICT, self.pool_evict, True, True),
            (ContextPoolHook.AFTER_CLEAR, self.pool_clear, True, True),
        ]
        for hook_type, method, for_spans, for_metrics in table:
            if (spans and for_spans) or (metrics and for_metrics):
                made = hook(hook_type)(_guarded(method, hook_type))
                # The program's own lookups (all(), get_by_type(type)) do not see it.
                HookRegistry.register(made, library=True)
                self.hooks.append(made)
        self._probe = self.hooks[0]
        self._probe_name = self._probe.metadata.name
        add_scope(self)

    def intact(self) -> bool:
        """False once the bridge's hooks were removed behind its back (a registry reset)."""
        probe = self._probe
        return probe is not None and _lookup_hook(self._probe_name) is probe

    def unregister(self) -> None:
        """Remove the scope and the hooks; end every span still open."""
        remove_scope(self)
        for h in self.hooks:
            try:
                HookRegistry.unregister(h)
            except LookupError:
                pass  # the registry was cleared under us
        self.hooks.clear()
        self._probe = None
        for pending in list(self._routing):
            self._end_routed(pending)
        for state in [*self._open.values(), *self._turns.values()]:
            if state.span is None:
                continue  # nothing to end (its metrics are still recorded when it closes)
            state.closed = True
            try:
                state.span.end()
            except Exception:
                pass
        self._open.clear()
        self._runs.clear()
        self._turns.clear()

    def _failed(self, where: str, exc: Exception) -> None:
        warn_once(
            f"scope:{where}:{type(exc).__name__}",
            "pygents telemetry: the bridge's %s failed (%s: %s); the agent goes on, further "
            "failures of this kind are not logged",
            where,
            type(exc).__name__,
            exc,
        )

    # -- the execution scope: what is current during each step ---------------------------------

    def attach(self, state: State) -> Any:
        """Make ``state``'s span (if any) current for one step; a direct call's state too.

        A turn or run is one switch of OpenTelemetry's context. A tool call run by its turn is
        not attached (``attach_turn_calls``) unless another scope asks for it; then it finds
        the turn's context current already and does nothing.
        """
        if type(state) is CallState:
            return self._attach_call(state)
        context = state.context
        if context is None or self._get_current() is context:
            return None
        try:
            return self._otel_attach(context)
        except Exception as exc:
            self._failed("attach", exc)
            return None

    def _attach_call(self, state: CallState) -> tuple[Any, Any]:
        token = self._call.set(state)
        context = state.context
        if context is None:
            return (token, None)
        try:
            return (token, self._otel_attach(context))
        except Exception as exc:
            self._failed("attach", exc)
            return (token, None)

    def detach(self, token: Any) -> None:
        """Undo ``attach`` (same frame)."""
        if token is None:
            return
        try:
            if token.__class__ is tuple:
                call_token, token = token
                if token is not None:
                    self._otel_detach(token)
                self._call.reset(call_token)
            else:
                self._otel_detach(token)
        except Exception as exc:  # what OpenTelemetry's detach() logs and swallows
            self._failed("detach", exc)

    def _trace(self) -> bool:
        spans = self.spans
        return spans is not None and not spans.suppressed()

    # -- agent runs ----------------------------------------------------------------------------

    def open_run(self, agent: Any) -> RunState | None:
        """An agent run starts: its span (child of the current context) and gauges."""
        if not self.intact():
            return None
        run = RunState(agent, time_ns())
        spans = self.spans
        try:
            if spans is not None:
                parent = self._get_current()
                if not spans.suppressed(parent):
                    run.span, run.context = spans.start_run(agent, parent)
                    self._open[id(run)] = run
        except Exception as exc:
            self._failed("open_run", exc)
        try:
            if self.metrics is not None:
                run.cells = self.metrics.run_started(agent)
        except Exception as exc:
            self._failed("open_run", exc)
        self._runs[agent] = run
        return run

    def close_run(self, agent: Any, state: RunState, error: BaseException | None) -> None:
        """An agent run ended: routed spans and the run span end, gauges drop."""
        if self._runs.get(agent) is state:
            del self._runs[agent]
        if state.closed:
            return
        state.closed = True
        try:
            if self._routing:
                for turn in [t for t, pending in self._routing.items() if pending[2] is agent]:
                    self._end_routed(turn)
            span = state.span
            if span is not None:
                self._open.pop(id(state), None)
                if error is not None and isinstance(error, Exception):
                    span.set_attribute(sc.PYGENTS_AGENT_TURNS, state.turns)
                    self.spans.mark_error(span, type(error).__name__, error)
                    span.end()
                else:
                    self.spans.end_counted(span, sc.PYGENTS_AGENT_TURNS, state.turns)
        except Exception as exc:
            self._failed("close_run", exc)
        try:
            if self.metrics is not None:
                cells = state.cells or self.metrics.cells.agent(agent.name)
                self.metrics.run_ended(cells)
        except Exception as exc:
            self._failed("close_run", exc)

    # -- turns ---------------------------------------------------------------------------------

    def _lane(self, key: tuple[str, Any, Any]) -> Lane:
        """The lane of (agent name, tool, timeout), made on first use."""
        lane = self._lanes[key] = Lane(key[0], key[1])
        if self.spans is not None:
            lane.span_name, lane.start_attributes = self.spans.tool_start(key[1], key[2])
            lane.done_attributes = {
                sc.PYGENTS_TURN_STOP_REASON: _COMPLETED.value,
                sc.PYGENTS_TURN_VALUES: 1,
            }
        if self.metrics is not None and key[0]:
            lane.agent = self.metrics.cells.agent(key[0])
        return lane

    def open_turn(self, turn: Any, agent: Any) -> TurnState | None:
        """A turn starts: its span (linked to its origin) and its queue wait."""
        probe = self._probe
        if probe is None or _lookup_hook(self._probe_name) is not probe:
            return None  # not intact (see intact())
        key = (agent.name if agent is not None else "", turn.tool, turn.timeout)
        lane = self._lanes.get(key) or self._lane(key)
        state = self._turns[turn] = TurnState(turn, agent, lane, time_ns())
        spans = self.spans
        if spans is not None:
            try:
                parent = self._get_current()
                if not spans.suppressed(parent):
                    recorded = state.meta.recorded_trace_context
                    origin = None if recorded is None else spans.origin(state.meta, recorded)
                    served = None
                    if origin is not None and agent is not None and agent.is_serving:
                        # A served agent's turn belongs to the request that put it.
                        served = spans.child_of_origin(
                            lane.span_name, lane.start_attributes, origin
                        )
                    if served is not None:
                        state.span, state.context = served
                    else:
                        state.span, state.context = spans.start(
                            lane.span_name,
                            lane.start_attributes,
                            None if origin is None else spans.links(origin),
                            parent,
                        )
            except Exception as exc:
                self._failed("open_turn", exc)
        # The queue wait (which ended when the turn started) is recorded when it closes, with
        # the rest of its metrics: one pass through the store's lock per turn.
        return state

    def close_turn(self, turn: Any, state: TurnState, error: BaseException | None) -> None:
        """A turn ended: its span ends, its counts and durations are recorded."""
        if self._turns.get(turn) is state:
            del self._turns[turn]
        if state.closed:
            return
        state.closed = True
        end = time_ns()
        meta = state.meta
        reason = meta.stop_reason
        error_type = None
        if reason is _TIMEOUT:
            error_type = "TurnTimeoutError"
        elif reason is _ERROR and error is not None:
            error_type = type(error).__name__
        agent = state.agent
        if agent is not None:
            run = self._runs.get(agent)
            if run is not None:
                run.turns += 1
        trace_id = None
        span = state.span
        if span is not None:
            try:
                spans = self.spans
                lane = state.lane
                if (
                    reason is _COMPLETED
                    and error_type is None
                    and not lane.tool.is_generator
                    and not spans.capture.enabled
                    and (turn.output.__class__ in _UNROUTED or not isinstance(turn.output, _ROUTED))
                ):
                    # The common case: completed, nothing to route or capture; closing
                    # attributes and end in one (the trace id is for exemplars only).
                    trace_id = spans.end_done(
                        span, lane.done_attributes, end, self.metrics is not None
                    )
                else:
                    trace_id = self._end_turn_span(turn, state, reason, error_type, error, end)
            except Exception as exc:
                self._failed("close_turn", exc)
        if self.metrics is not None:
            try:
                tool_error = state.tool_error
                self.metrics.turn_done(
                    state.lane,
                    reason,
                    error_type,
                    (end - state.start) / 1e9,
                    state.tool_time,  # None when the tool was never invoked
                    # The contract's outcome: ok, else error whatever stopped the tool (an
                    # exception, the timeout, a cancellation); stop_reason tells them apart.
                    "ok" if tool_error is None else "error",
                    end / 1e9,
                    trace_id,
                    # The value the agent delivers next (a stream's are counted as they come).
                    agent is not None and reason is _COMPLETED and not state.lane.tool.is_generator,
                    None if agent is None else meta.queue_wait,
                )
            except Exception as exc:
                self._failed("close_turn", exc)

    def _end_turn_span(
        self,
        turn: Any,
        state: TurnState,
        reason: StopReason | None,
        error_type: str | None,
        error: BaseException | None,
        end: int,
    ) -> int | None:
        """End the turn's span (or keep it for routing); return its trace id if sampled.

        Every case but the common one (see ``close_turn``).
        """
        span = state.span
        output = turn.output
        lane = state.lane
        tool = lane.tool
        spans = self.spans
        # The trace id is for exemplars only.
        trace_id: int | None = None if self.metrics is None else spans.trace_id(span)
        agent = state.agent
        routed = False
        if reason is _COMPLETED and not tool.is_generator and output is not None:
            # The agent routes the output next (put / append / add): the span stays open for
            # those events; the routing's event (or the run's end) closes it.
            routed = agent is not None and isinstance(output, _ROUTED)
            if isinstance(output, Turn):
                meta = output.metadata
                # Tool-driven flow control: the returned turn links back to this one. One
                # the agent puts next that ran before gets this origin now, as its put would
                # give it (AgentEvents.enqueue records nothing for the put routing it).
                if meta.recorded_trace_context is None or (routed and meta.start_time is not None):
                    spans.record_origin(meta, span)
            if routed and not spans.capture.enabled:
                # Completed, nothing to capture: its closing attributes are set as it ends,
                # under the same lock (see end_done).
                self._routing[turn] = (span, end, agent, lane.done_attributes)
                return trace_id
        spans.finish_turn(span, lane, tool, output, reason, error_type, error)
        if routed:
            self._routing[turn] = (span, end, agent, None)
            return trace_id
        span.end(end_time=end)
        return trace_id

    def _end_routed(self, turn: Any) -> None:
        pending = self._routing.pop(turn, None)
        if pending is not None:
            self._end_pending(pending)

    def _end_pending(self, pending: tuple[Any, int, Any, dict[str, Any] | None]) -> None:
        """End a routed turn's span (taken out of ``_routing``) with the end time it had."""
        span, end_time, _agent, done = pending
        if done is None:  # closing attributes set already
            span.end(end_time=end_time)
        else:
            self.spans.end_done(span, done, end_time)

    # -- tool calls ----------------------------------------------------------------------------

    def open_call(self, tool: Any, turn: Any, args: Any, kwargs: Any) -> State | None:
        """A tool invocation starts: timed for its turn, or its own span if called directly."""
        if turn is not None:
            state = self._turns.get(turn)
            if state is None:
                return None  # the turn was not opened by this bridge
            state.tool_start = perf_counter()
            if state.span is not None and self.spans.capture.enabled:
                try:
                    self.spans.capture_arguments(state.span, args, kwargs)
                except Exception as exc:
                    self._failed("open_call", exc)
            return state
        if not self.intact():
            return None
        call = CallState(time_ns(), current_turn())
        try:
            if self._trace():
                name, attributes = self.spans.tool_start(tool, None)
                call.span, call.context = self.spans.start(name, attributes)
                self._open[id(call)] = call
                self.spans.capture_arguments(call.span, args, kwargs)
        except Exception as exc:
            self._failed("open_call", exc)
        return call

    def close_call(self, tool: Any, state: State, result: Any, error: BaseException | None) -> None:
        """A tool invocation ended: timing for its turn, or span and metrics of its own."""
        if type(state) is TurnState:
            state.tool_time = perf_counter() - state.tool_start
            state.tool_error = error
            return
        if state.closed:
            return
        state.closed = True
        seconds = perf_counter() - state.clock  # type: ignore[attr-defined]
        outcome = "ok" if error is None else "error"  # as for a turn's invocation
        trace_id = None
        span = state.span
        if span is not None:
            try:
                self._open.pop(id(state), None)
                error_type = type(error).__name__ if isinstance(error, Exception) else None
                self.spans.finish_call(span, tool, result, error_type, error)
                trace_id = self.spans.trace_id(span)
                span.end()
            except Exception as exc:
                self._failed("close_call", exc)
        if self.metrics is not None:
            try:
                self.metrics.call_done(tool, outcome, seconds, trace_id)
            except Exception as exc:
                self._failed("close_call", exc)


def _guarded(method: Callable[..., None], hook_type: Any) -> Callable[..., Any]:
    """Wrap a bridge method as an async hook that never raises into the agent."""
    where = f"{type(hook_type).__name__}.{hook_type.name}"

    async def bridge_hook(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:
            warn_once(
                f"hook:{where}:{type(exc).__name__}",
                "pygents telemetry: the %s bridge hook failed (%s: %s); the agent goes on, "
                "further failures of this kind are not logged",
                where,
                type(exc).__name__,
                exc,
            )

    bridge_hook.__name__ = bridge_hook.__qualname__ = (
        f"pygents.observability.{hook_type.value}." + (type(hook_type).__name__)
    )
    return bridge_hook
