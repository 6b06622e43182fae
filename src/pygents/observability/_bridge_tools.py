"""The bridge's tool hooks: a tool run by a turn is timed; one run on its own gets a span."""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pygents import current_tool, current_turn

from . import _semconv as sc

if TYPE_CHECKING:
    from ._cells import Cells
    from ._metrics import OtelMetrics
    from ._settings import ContentCapture, LabelLimiter
    from ._store import MetricStore

__all__ = ["ToolEvents"]

#: Open direct tool calls tracked at most (a cancelled call never reports its end).
_MAX_OPEN_TOOL_CALLS = 10_000


class _ToolState:
    __slots__ = ("span", "start", "yields")

    def __init__(self, start: float, span: Any) -> None:
        self.start = start
        self.span = span
        self.yields = 0


class ToolEvents:
    """ToolHook handlers, mixed into ``Bridge`` (which provides the attributes below)."""

    tracer: Any
    store: MetricStore | None
    otel: OtelMetrics | None
    capture: ContentCapture
    yield_events_cap: int
    _turns: dict[Any, Any]
    _tools: dict[Any, _ToolState]
    _tool_label: LabelLimiter
    cells: Cells
    _otel_tool: Any
    _no_context: Any
    _trace: Any
    _INTERNAL: Any

    def _suppressed(self) -> bool:
        raise NotImplementedError

    def _current_span(self) -> Any:
        raise NotImplementedError

    def _span_start(self, tool: Any, timeout: Any) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def _span_of(self, state: Any, attributes: Any = None) -> Any:
        raise NotImplementedError

    def _mark_error(self, span: Any, error_type: str, exc: BaseException | None) -> None:
        raise NotImplementedError

    @staticmethod
    def _trace_id(context: Any) -> int | None:
        raise NotImplementedError

    def before_invoke(self, *args: Any, **kwargs: Any) -> None:
        turn = current_turn()
        tool = current_tool()
        if tool is None:
            return
        if turn is not None and turn.tool is tool:
            # Run by a turn: the turn's span covers it; only time it.
            state = self._turns.get(turn)
            if state is not None:
                state.tool_start = perf_counter()
                if state.traced and self.capture.enabled:
                    self._span_of(state).set_attribute(
                        sc.GEN_AI_TOOL_CALL_ARGUMENTS,
                        self.capture.render({"args": list(args), "kwargs": kwargs}),
                    )
            return
        span = None
        if self.tracer is not None and not self._suppressed():
            context = None
            outer = self._current_span()
            if outer is not None:
                context = self._trace.set_span_in_context(outer)
            name, attributes = self._span_start(tool, None)
            span = self.tracer.start_span(
                name, context=context, kind=self._INTERNAL, attributes=attributes
            )
            if self.capture.enabled:
                span.set_attribute(
                    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
                    self.capture.render({"args": list(args), "kwargs": kwargs}),
                )
        tools = self._tools
        if len(tools) >= _MAX_OPEN_TOOL_CALLS:
            # Direct calls that were cancelled never report back: forget the oldest.
            stale = tools.pop(next(iter(tools)))
            if stale.span is not None:
                stale.span.end()
        tools[(asyncio.current_task(), tool)] = _ToolState(perf_counter(), span)

    def _tool_done(self, outcome: str, result: Any, exc: BaseException | None) -> None:
        turn = current_turn()
        tool = current_tool()
        if tool is None:
            return
        if turn is not None and turn.tool is tool:
            # Run by a turn: recorded when the turn completes (with its trace id).
            turn_state = self._turns.get(turn)
            if turn_state is not None:
                turn_state.tool_time = perf_counter() - turn_state.tool_start
                turn_state.tool_outcome = outcome
            return
        state = self._tools.pop((asyncio.current_task(), tool), None)
        if state is None:
            return
        duration = perf_counter() - state.start
        span = state.span
        trace_id = None
        if span is not None:
            values = state.yields if tool.is_generator else (1 if exc is None else 0)
            span.set_attribute(sc.PYGENTS_TURN_VALUES, values)
            if exc is not None:
                self._mark_error(span, type(exc).__name__, exc)
            elif self.capture.enabled and not tool.is_generator:
                span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, self.capture.render(result))
            trace_id = self._trace_id(span.get_span_context())
            span.end()
        store = self.store
        if store is not None:
            cells = self.cells.tool(tool.metadata.name, outcome)
            with store.lock:
                cells.count.value += 1
                store.observe(cells.duration, duration, trace_id)
            if self.otel is not None:
                self._otel_tool.record(duration, cells.attrs, self._no_context)

    def after_invoke(self, result: Any) -> None:
        self._tool_done("ok", result, None)

    def tool_error(self, exc: BaseException) -> None:
        self._tool_done("error", None, exc)

    def tool_yield(self, value: Any) -> None:
        if self.tracer is None:
            return
        turn = current_turn()
        tool = current_tool()
        state: Any
        if turn is not None and turn.tool is tool:
            state = self._turns.get(turn)
            if state is None or not state.traced:
                return
            span = self._span_of(state)
        else:
            state = self._tools.get((asyncio.current_task(), tool))
            if state is None or state.span is None:
                return
            span = state.span
        state.yields += 1
        if state.yields <= self.yield_events_cap:
            span.add_event(sc.EVENT_YIELD, {sc.PYGENTS_TOOL_YIELD_INDEX: state.yields - 1})
