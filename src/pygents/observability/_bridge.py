"""The bridge: global pygents hooks that turn lifecycle events into spans and metrics.

Spans are started and ended explicitly (never attached to the context), so a streaming
tool, an early ``break`` or many concurrent agents cannot produce "Failed to detach
context" errors. Every hook body is wrapped: a failing tracer, meter or exporter is logged
once and never raises into the agent.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any

from pygents import (
    AgentHook,
    ContextItem,
    ContextPoolHook,
    ContextQueueHook,
    Hook,
    HookRegistry,
    StopReason,
    ToolHook,
    Turn,
    TurnHook,
    current_agent,
    current_turn,
    hook,
)

from . import _semconv as sc
from ._bridge_context import ContextEvents
from ._bridge_tools import ToolEvents, _ToolState
from ._cells import BoundedCache, Cells, Lane
from ._propagation import parse_traceparent, traceparent
from ._settings import ContentCapture, LabelLimiter, label_limit, warn_once
from ._store import MetricStore

if TYPE_CHECKING:
    from ._metrics import OtelMetrics

__all__ = ["Bridge"]

_COMPLETED = StopReason.COMPLETED


class _TurnState:
    """A turn between BEFORE_RUN and ON_COMPLETE.

    Its span is started lazily: the start time, parent and links are kept, and the span is
    created when something needs it (a child span, an event, a link to it) or, usually,
    when the turn completes, with every attribute at once and the recorded start time.
    """

    __slots__ = (
        "agent",
        "error_type",
        "exc",
        "lane",
        "links",
        "parent",
        "span",
        "start",
        "tool_outcome",
        "tool_start",
        "tool_time",
        "traced",
        "yields",
    )

    def __init__(self, agent: Any, lane: Lane, start: int) -> None:
        self.agent = agent
        self.lane = lane
        self.start = start
        self.traced = False
        self.span: Any = None
        self.parent: Any = None
        self.links: list[Any] | None = None
        self.error_type: str | None = None
        self.exc: BaseException | None = None
        self.tool_start = 0.0
        self.tool_time: float | None = None
        self.tool_outcome = "ok"
        self.yields = 0


class _RunState:
    __slots__ = ("context", "span", "start", "turns")

    def __init__(self, span: Any, context: Any, start: float) -> None:
        self.span = span
        self.context = context
        self.start = start
        self.turns = 0


class Bridge(ToolEvents, ContextEvents):
    """Holds the telemetry state and the global hooks that feed it."""

    def __init__(
        self,
        tracer: Any | None,
        store: MetricStore | None,
        otel_metrics: OtelMetrics | None,
        capture: ContentCapture,
        yield_events_cap: int = 100,
    ) -> None:
        self.tracer = tracer
        self.store = store
        self.otel = otel_metrics
        self.capture = capture
        self.yield_events_cap = yield_events_cap
        self.hooks: list[Hook] = []
        self._turns: dict[Any, _TurnState] = {}
        self._runs: dict[Any, _RunState] = {}
        self._tools: dict[Any, _ToolState] = {}
        self._routing: dict[Any, tuple[Any, int | None, Any]] = {}
        # Caches keyed by names and timeouts a program may invent without end: bounded.
        self._tool_attrs: BoundedCache[tuple[Any, Any], tuple[str, dict[str, Any]]]
        self._tool_attrs = BoundedCache()
        self._lanes: BoundedCache[tuple[str, Any, Any], Lane] = BoundedCache()
        limit = label_limit()
        self._agent_label = LabelLimiter("agent", limit)
        self._tool_label = LabelLimiter("tool", limit)
        self._owner_label = LabelLimiter("owner", limit)
        self._error_label = LabelLimiter("error_type", limit)
        if store is not None:
            self.cells = Cells(store, otel_metrics, self._agent_label, self._tool_label)
            self._depth = store.values["pygents_agent_queue_depth"]
            self._lock = store.lock
            self._observe = store.observe
        if otel_metrics is not None:
            histograms = otel_metrics.histograms
            self._otel_turn = histograms["pygents_turn_duration_seconds"]
            self._otel_tool = histograms["pygents_tool_duration_seconds"]
            self._otel_wait = histograms["pygents_turn_queue_wait_seconds"]
            from ._metrics import NO_CONTEXT

            self._no_context = NO_CONTEXT
        if tracer is not None:
            from opentelemetry import context as otel_context
            from opentelemetry import trace
            from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
            from opentelemetry.trace.status import Status, StatusCode

            self._trace = trace
            self._current_context = otel_context.get_current
            self._ProxyTracerProvider = trace.ProxyTracerProvider
            self._awaiting_sdk = isinstance(tracer, trace.ProxyTracer)
            self._Link = Link
            self._SpanContext = SpanContext
            self._TraceFlags = TraceFlags
            self._INTERNAL = SpanKind.INTERNAL
            self._status_error = StatusCode.ERROR
            self._Status = Status
            self._instrumentation_enabled = _instrumentation_switch()

    # -- registration ----------------------------------------------------------------------

    def register(self) -> None:
        """Register the bridge's global hooks."""
        spans, metrics = self.tracer is not None, self.store is not None
        # (hook type, method, needed for spans, needed for metrics): a hook nobody needs is
        # not registered, so it costs nothing per turn.
        table: list[tuple[Any, Callable[..., None], bool, bool]] = [
            (TurnHook.BEFORE_RUN, self.before_run, True, True),
            (TurnHook.ON_ERROR, self.turn_error, True, True),
            (TurnHook.ON_TIMEOUT, self.turn_timeout, True, True),
            (TurnHook.ON_COMPLETE, self.turn_complete, True, True),
            (AgentHook.ON_RUN_START, self.run_start, True, True),
            (AgentHook.ON_RUN_END, self.run_end, True, True),
            (AgentHook.AFTER_PUT, self.after_put, True, True),
            (AgentHook.BEFORE_TURN, self.before_turn, False, True),
            (AgentHook.ON_TURN_VALUE, self.turn_value, True, True),
            (AgentHook.ON_PAUSE, self.pause, True, True),
            (AgentHook.ON_RESUME, self.resume, True, True),
            (ToolHook.BEFORE_INVOKE, self.before_invoke, True, True),
            (ToolHook.AFTER_INVOKE, self.after_invoke, True, True),
            (ToolHook.ON_ERROR, self.tool_error, True, True),
            (ToolHook.ON_YIELD, self.tool_yield, True, False),
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
                self.hooks.append(hook(hook_type)(_guarded(method, hook_type)))

    def unregister(self) -> None:
        """Remove the bridge's hooks; end any span still open."""
        for h in self.hooks:
            try:
                HookRegistry.unregister(h)
            except LookupError:
                pass  # the registry was cleared under us
        self.hooks.clear()
        others: list[Any] = [*self._runs.values(), *self._tools.values()]
        open_spans = [state.span for state in others if state.span is not None]
        for turn_state in self._turns.values():
            if turn_state.traced:
                try:  # started now, at the turn's start, if nothing needed it before
                    open_spans.append(self._span_of(turn_state))
                except Exception:
                    pass
        for span in open_spans:
            try:
                span.end()
            except Exception:
                pass
        for pending in list(self._routing):
            self._end_routed(pending)
        self._turns.clear()
        self._runs.clear()
        self._tools.clear()

    # -- helpers ---------------------------------------------------------------------------

    def _mark_error(self, span: Any, error_type: str, exc: BaseException | None) -> None:
        """Status ERROR, ``error.type``, and the exception recorded (when there is one)."""
        span.set_status(self._Status(self._status_error, f"{error_type}: {exc}"))
        span.set_attribute(sc.ERROR_TYPE, error_type)
        if exc is not None:
            span.record_exception(exc)

    def _suppressed(self) -> bool:
        """True when spans should not be made: suppressed, or no SDK configured yet."""
        if self._awaiting_sdk:
            # Instrumented with the global provider before an SDK was installed: spans would
            # be non-recording, so skip them until one is (OpenTelemetry sets it once).
            if isinstance(self._trace.get_tracer_provider(), self._ProxyTracerProvider):
                return True
            self._awaiting_sdk = False
        return not self._instrumentation_enabled()

    def _span_start(self, tool: Any, timeout: Any) -> tuple[str, dict[str, Any]]:
        """The span name and start attributes of a tool (built once per tool and timeout)."""
        key = (tool, timeout)
        found = self._tool_attrs.get(key)
        if found is None:
            attrs: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: tool.metadata.name,
                sc.GEN_AI_TOOL_TYPE: "function",
            }
            if tool.metadata.description:
                attrs[sc.GEN_AI_TOOL_DESCRIPTION] = tool.metadata.description
            if timeout is not None:
                attrs[sc.PYGENTS_TURN_TIMEOUT] = float(timeout)
            found = (sc.SPAN_EXECUTE_TOOL.format(tool=tool.metadata.name), attrs)
            self._tool_attrs[key] = found
        return found

    def _links(self, carrier: dict[str, str] | None) -> list[Any] | None:
        parsed = parse_traceparent(carrier)
        if parsed is None:
            return None
        trace_id, span_id, flags = parsed
        ctx = self._SpanContext(trace_id, span_id, True, self._TraceFlags(flags))
        return [self._Link(ctx)]

    @staticmethod
    def _trace_id(context: Any) -> int | None:
        """The trace id of a sampled span's context (for exemplars), else None."""
        return context.trace_id if context.trace_flags.sampled and context.trace_id else None

    def _span_of(self, state: _TurnState, attributes: Any = None) -> Any:
        """The turn's span, started now (at the turn's start time) if it is not yet."""
        span = state.span
        if span is None:
            lane = state.lane
            span = state.span = self.tracer.start_span(
                lane.span_name,
                context=state.parent,
                kind=self._INTERNAL,
                attributes=attributes or lane.start_attributes,
                links=state.links,
                start_time=state.start,
            )
            if state.error_type is not None:
                # The failure was reported before the span existed.
                span.set_status(
                    self._Status(self._status_error, f"{state.error_type}: {state.exc}")
                )
                if attributes is None:
                    span.set_attribute(sc.ERROR_TYPE, state.error_type)
                if state.exc is not None:
                    span.record_exception(state.exc)
        return span

    def _current_span(self) -> Any:
        """The pygents span events belong to: the current turn's, else the agent run's."""
        turn = current_turn()
        if turn is not None:
            state = self._turns.get(turn)
            if state is not None and state.traced:
                return self._span_of(state)
            pending = self._routing.get(turn)
            if pending is not None:
                return pending[0]
        agent = current_agent()
        if agent is not None:
            run = self._runs.get(agent)
            if run is not None:
                return run.span
        return None

    def _event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        if self.tracer is None:
            return
        span = self._current_span()
        if span is not None:
            span.add_event(name, attributes)

    # -- turns -----------------------------------------------------------------------------

    def _lane(self, key: tuple[str, Any, Any]) -> Lane:
        """The lane of (agent name, tool, timeout), made on first use."""
        lane = self._lanes[key] = Lane(key[0], key[1])
        if self.tracer is not None:
            lane.span_name, lane.start_attributes = self._span_start(key[1], key[2])
            lane.done_attributes = {
                **lane.start_attributes,
                sc.PYGENTS_TURN_STOP_REASON: _COMPLETED.value,
                sc.PYGENTS_TURN_VALUES: 1,
            }
        if self.store is not None and key[0]:
            lane.agent = self.cells.agent(key[0])
        return lane

    def before_run(self, turn: Any) -> None:
        agent = current_agent()
        owner = agent if agent is not None and agent.current_turn is turn else None
        run_by_agent = owner is not None
        key = (owner.name if owner is not None else "", turn.tool, turn.timeout)
        lane = self._lanes.get(key) or self._lane(key)
        # State first: if the tracer fails below, metrics are still recorded at completion.
        state = self._turns[turn] = _TurnState(owner, lane, time_ns())
        meta = turn.metadata
        try:
            if self.tracer is not None and not self._suppressed():
                self._trace_turn(meta, agent, run_by_agent, state)
        finally:  # spans and metrics fail independently
            cells = lane.agent
            if cells is not None and run_by_agent:
                wait = meta.queue_wait
                if wait is not None:
                    with self._lock:
                        self._observe(cells.wait, wait)
                    if self.otel is not None:
                        self._otel_wait.record(wait, cells.wait_attrs, self._no_context)

    def _trace_turn(self, meta: Any, agent: Any, run_by_agent: bool, state: _TurnState) -> None:
        """Keep what the turn's span will start with: its parent context and links."""
        if run_by_agent:
            run = self._runs.get(agent)
            state.parent = run.context if run is not None else self._current_context()
        elif agent is not None and agent.current_turn is not None:
            # A turn run inside a tool of an agent's turn: child of that turn's span.
            outer = self._turns.get(agent.current_turn)
            if outer is not None and outer.traced:
                state.parent = self._trace.set_span_in_context(self._span_of(outer))
            else:
                state.parent = self._current_context()
        else:
            state.parent = self._current_context()
        if meta.trace_context is not None:
            state.links = self._links(meta.trace_context)
        state.traced = True

    def turn_error(self, turn: Any, exc: BaseException) -> None:
        error_type = type(exc).__name__
        self._turn_failed(turn, error_type, exc)
        self._count_failure(turn, "pygents_turn_errors_total", error_type)

    def turn_timeout(self, turn: Any) -> None:
        # ON_TIMEOUT fires while the TurnTimeoutError is being handled.
        self._turn_failed(turn, "TurnTimeoutError", sys.exc_info()[1])
        self._count_failure(turn, "pygents_turn_timeouts_total")

    def _count_failure(self, turn: Any, metric: str, error_type: str | None = None) -> None:
        """Count a failed turn in ``metric`` by agent and tool (and error type, if given)."""
        if self.store is not None:
            state = self._turns.get(turn)
            agent = state.agent if state is not None else None
            labels: tuple[str, ...] = (
                self._agent_label(agent.name) if agent is not None else "",
                self._tool_label(turn.tool.metadata.name),
            )
            if error_type is not None:
                labels += (self._error_label(error_type),)
            self.store.inc(metric, labels)

    def _turn_failed(self, turn: Any, error_type: str, exc: BaseException | None) -> None:
        state = self._turns.get(turn)
        if state is None:
            return
        state.error_type = error_type
        state.exc = exc
        if state.span is not None:
            self._mark_error(state.span, error_type, exc)

    def turn_complete(self, turn: Any, reason: StopReason | None) -> None:
        state = self._turns.pop(turn, None)
        if state is None:
            return
        end = time_ns()
        agent = state.agent
        if agent is not None:
            run = self._runs.get(agent)
            if run is not None:
                run.turns += 1
        trace_id = None
        try:
            if state.traced:
                trace_id = self._end_turn_span(turn, state, reason, end)
        finally:  # spans and metrics fail independently
            if self.store is not None:
                self._turn_metrics(state, reason, end, trace_id)

    def _turn_metrics(
        self, state: _TurnState, reason: StopReason | None, end: int, trace_id: int | None
    ) -> None:
        lane = state.lane
        cells = lane.turn_ok
        if cells is None or reason is not _COMPLETED or state.error_type is not None:
            cells = self.cells.turn(
                lane.agent_name,
                lane.tool.metadata.name,
                reason.value if reason is not None else "unknown",
                None if state.error_type is None else self._error_label(state.error_type),
            )
            if reason is _COMPLETED and state.error_type is None:
                lane.turn_ok = cells
        tool_time = state.tool_time
        tool_cells = None
        if tool_time is not None:
            tool_cells = lane.tool_ok if state.tool_outcome == "ok" else None
            if tool_cells is None:
                tool_cells = self.cells.tool(lane.tool.metadata.name, state.tool_outcome)
                if state.tool_outcome == "ok":
                    lane.tool_ok = tool_cells
        seconds = (end - state.start) / 1e9
        stamp = end / 1e9
        observe = self._observe
        with self._lock:
            cells.count.value += 1
            observe(cells.duration, seconds, trace_id, stamp)
            if tool_cells is not None:
                tool_cells.count.value += 1
                observe(tool_cells.duration, tool_time, trace_id, stamp)  # type: ignore[arg-type]
        if self.otel is not None:
            no_context = self._no_context
            self._otel_turn.record(seconds, cells.attrs, no_context)
            if tool_cells is not None:
                self._otel_tool.record(tool_time, tool_cells.attrs, no_context)

    def _end_turn_span(
        self, turn: Any, state: _TurnState, reason: StopReason | None, end: int
    ) -> int | None:
        """End (or start and end) the turn's span; return its trace id if sampled."""
        lane = state.lane
        tool = lane.tool
        output = turn.output
        span = state.span
        returned = reason is _COMPLETED and output is not None and not tool.is_generator
        if (
            span is None
            and reason is _COMPLETED
            and state.error_type is None
            and not tool.is_generator
            and not (returned and self.capture.enabled)
        ):
            # The usual case: nothing needed the span earlier, and the attributes of a
            # completed turn of this lane are always the same (built once).
            span = self._span_of(state, lane.done_attributes)
        else:
            if tool.is_generator:
                values = len(output) if isinstance(output, list) else 0
            else:
                values = 1 if reason is _COMPLETED else 0
            closing: dict[str, Any] = {
                sc.PYGENTS_TURN_STOP_REASON: reason.value if reason else "unknown",
                sc.PYGENTS_TURN_VALUES: values,
            }
            if returned and self.capture.enabled:
                closing[sc.GEN_AI_TOOL_CALL_RESULT] = self.capture.render(output)
            if span is None:
                attributes = {**lane.start_attributes, **closing}
                if state.error_type is not None:
                    attributes[sc.ERROR_TYPE] = state.error_type
                span = self._span_of(state, attributes)
            else:
                span.set_attributes(closing)
        context = span.get_span_context()
        trace_id = self._trace_id(context)
        if returned:
            if isinstance(output, Turn) and output.metadata.trace_context is None:
                # Tool-driven flow control: the returned turn links back to this one.
                output.metadata.trace_context = traceparent(context)
            agent = state.agent
            if agent is not None and isinstance(output, Turn | ContextItem):
                # The agent routes the output next (put / append / add): keep the span open
                # for those events; ON_TURN_VALUE (or the run's end) closes it.
                self._routing[turn] = (span, end, agent)
                return trace_id
        span.end(end_time=end)
        return trace_id

    # -- agents ----------------------------------------------------------------------------

    def run_start(self, agent: Any) -> None:
        run = self._runs[agent] = _RunState(None, None, perf_counter())
        try:
            self._start_run_span(agent, run)
        finally:  # spans and metrics fail independently
            store = self.store
            if store is not None:
                labels = self.cells.agent(agent.name).labels
                store.set("pygents_agent_running", labels, 1)
                store.set("pygents_agent_paused", labels, 1 if agent.is_paused else 0)
                store.set("pygents_agent_queue_depth", labels, len(agent))
                queue, pool = agent.context_queue, agent.context_pool
                store.set("pygents_context_queue_items", (self._owner(queue),), len(queue))
                store.set("pygents_context_pool_items", (self._owner(pool),), len(pool))

    def _start_run_span(self, agent: Any, run: Any) -> None:
        if self.tracer is not None and not self._suppressed():
            attributes: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
                sc.GEN_AI_AGENT_NAME: agent.name,
                sc.GEN_AI_AGENT_DESCRIPTION: agent.description,
            }
            if agent.tags:
                attributes[sc.PYGENTS_AGENT_TAGS] = sorted(agent.tags)
            span = self.tracer.start_span(
                sc.SPAN_INVOKE_AGENT.format(agent=agent.name),
                kind=self._INTERNAL,
                attributes=attributes,
            )
            run.span = span
            run.context = self._trace.set_span_in_context(span)

    def _end_routed(self, turn: Any) -> None:
        pending = self._routing.pop(turn, None)
        if pending is not None:
            span, end_time, _agent = pending
            span.end(end_time=end_time)

    def run_end(self, agent: Any, exc: BaseException | None) -> None:
        if self._routing:
            for turn in [t for t, pending in self._routing.items() if pending[2] is agent]:
                self._end_routed(turn)
        run = self._runs.pop(agent, None)
        error_type = None
        if exc is not None and not isinstance(exc, asyncio.CancelledError | GeneratorExit):
            error_type = type(exc).__name__
        if run is not None and run.span is not None:
            span = run.span
            span.set_attribute(sc.PYGENTS_AGENT_TURNS, run.turns)
            if error_type is not None:
                self._mark_error(span, error_type, exc)
            span.end()
        store = self.store
        if store is not None:
            cells = self.cells.agent(agent.name)
            store.set("pygents_agent_running", cells.labels, 0)
            store.set("pygents_agent_queue_depth", cells.labels, len(agent))

    def after_put(self, agent: Any, turn: Any) -> None:
        if self.tracer is not None:
            span = self._current_span()
            if turn.metadata.trace_context is None:
                # Causality: remember where the turn was enqueued from: the running turn's
                # span, else the span current in the caller's context.
                origin = span if current_turn() is not None else None
                if origin is None:
                    current = self._trace.get_current_span()
                    if current.get_span_context().is_valid:
                        origin = current
                if origin is not None:
                    turn.metadata.trace_context = traceparent(origin.get_span_context())
            if span is not None:
                span.add_event(
                    sc.EVENT_PUT,
                    {
                        sc.GEN_AI_AGENT_NAME: agent.name,
                        sc.GEN_AI_TOOL_NAME: turn.tool.metadata.name,
                    },
                )
        if self.store is not None:
            cells = self.cells.agent(agent.name)
            self.store.count(cells.enqueued)
            self._depth[cells.labels] = float(len(agent))

    def before_turn(self, agent: Any) -> None:
        depth = len(agent) - 1
        self._depth[self.cells.agent(agent.name).labels] = float(depth if depth > 0 else 0)

    def turn_value(self, agent: Any, turn: Any, value: Any) -> None:
        if self._routing:
            self._end_routed(turn)
        if self.store is not None:
            lane = self._lanes.get((agent.name, turn.tool, turn.timeout))
            counter = None if lane is None else lane.values
            if counter is None:
                counter = self.cells.values(agent.name, turn.tool.metadata.name)
                if lane is not None:
                    lane.values = counter
            with self._lock:
                counter.value += 1

    def pause(self, agent: Any) -> None:
        run = self._runs.get(agent)
        if run is not None and run.span is not None:
            run.span.add_event(sc.EVENT_PAUSE)
        if self.store is not None:
            self.store.set("pygents_agent_paused", self.cells.agent(agent.name).labels, 1)

    def resume(self, agent: Any) -> None:
        run = self._runs.get(agent)
        if run is not None and run.span is not None:
            run.span.add_event(sc.EVENT_RESUME)
        if self.store is not None:
            self.store.set("pygents_agent_paused", self.cells.agent(agent.name).labels, 0)


def _instrumentation_switch() -> Callable[[], bool]:
    """``is_instrumentation_enabled`` (honours ``suppress_instrumentation()``), if installed.

    ``suppress_instrumentation()`` lives in opentelemetry-instrumentation; without that
    package nothing can suppress, so instrumentation is always on.
    """
    try:
        from opentelemetry.instrumentation.utils import is_instrumentation_enabled
    except ImportError:
        return lambda: True
    enabled: Callable[[], bool] = is_instrumentation_enabled
    return enabled


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
