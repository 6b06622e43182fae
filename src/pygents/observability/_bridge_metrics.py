"""The bridge's metrics: what each finished run, turn and tool call adds to the store.

Recorded when an execution ends (the bridge's execution scope is told, whatever hooks
did), with the trace id of its span for exemplars. Series are looked up through ``Cells``
and the per-lane caches, so a turn that completes normally builds no label tuple.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from time import monotonic
from typing import TYPE_CHECKING, Any

from pygents import StopReason

from ._cells import Cells

if TYPE_CHECKING:
    from ._cells import AgentCells, Lane
    from ._metrics import OtelMetrics
    from ._settings import LabelLimiter
    from ._store import Counter, MetricStore

__all__ = ["MetricRecorder"]

_COMPLETED = StopReason.COMPLETED
_TIMEOUT = StopReason.TIMEOUT


class MetricRecorder:
    """Feeds the metric store (and the OpenTelemetry histograms) from the bridge."""

    def __init__(
        self,
        store: MetricStore,
        otel: OtelMetrics | None,
        agent_label: LabelLimiter,
        tool_label: LabelLimiter,
        error_label: LabelLimiter,
    ) -> None:
        self.store = store
        self.otel = otel
        self.cells = Cells(store, otel, agent_label, tool_label)
        self._agent_label = agent_label
        self._tool_label = tool_label
        self._error_label = error_label
        self._lock = store.lock
        self._observe = store.observe
        self._buckets = store.buckets
        #: id(agent) -> (a weak reference to it, its name then, its cells): an agent seen by
        #: ``agent()``, watched by the store since; the entry goes with the agent.
        self._agents: dict[int, tuple[weakref.ref[Any], str, AgentCells]] = {}
        if otel is not None:
            histograms = otel.histograms
            self._otel_turn = histograms["pygents_turn_duration_seconds"].record
            self._otel_tool = histograms["pygents_tool_duration_seconds"].record
            self._otel_wait = histograms["pygents_turn_queue_wait_seconds"].record
            self._extra = otel.record_extra

    # -- runs --------------------------------------------------------------------------------

    def agent(self, agent: Any) -> AgentCells:
        """``agent``'s cells; the store reads its gauges from it from now on (watch_agent).

        Cached by the agent's identity and its name (an idle agent may be renamed: its
        series are then the new name's), so a put or a run start looks up neither its cells
        by name nor whether the store watches it.
        """
        found = self._agents.get(id(agent))
        if found is not None and found[1] is agent.name and found[0]() is agent:
            return found[2]
        name = agent.name
        cells = self.cells.agent(name)
        self.store.watch_agent(cells.labels, agent)
        key = id(agent)
        agents = self._agents

        def forget(ref: weakref.ref[Any], key: int = key) -> None:
            if agents.get(key, (None,))[0] is ref:
                agents.pop(key, None)

        agents[key] = (weakref.ref(agent, forget), name, cells)
        return cells

    def run_started(self, agent: Any) -> AgentCells:
        """An agent's run starts: its busy time (and so its running gauge) counts from now.

        The agent's other gauges are read from it when collected. Returns the agent's cells,
        for ``run_ended``.
        """
        cells = self.agent(agent)
        busy = cells.busy or self.cells.busy(cells)
        now = monotonic()
        lock = self._lock
        lock.acquire()  # not `with`: see turn_done
        try:
            busy.start(now)
        finally:
            lock.release()
        return cells

    def run_ended(self, cells: AgentCells) -> None:
        """An agent's run ended (``cells``: what ``run_started`` returned)."""
        busy = cells.busy or self.cells.busy(cells)
        now = monotonic()
        lock = self._lock
        lock.acquire()
        try:
            busy.end(now)
        finally:
            lock.release()

    def enqueued(self, agent: Any) -> None:
        """A turn was put on ``agent``'s queue (whose length is read when collected)."""
        # agent()'s cache hit written out: a put is per turn (the method call costs more).
        found = self._agents.get(id(agent))
        if found is not None and found[1] is agent.name and found[0]() is agent:
            cells = found[2]
        else:
            cells = self.agent(agent)
        lock = self._lock
        lock.acquire()  # MetricStore.count, without the call (nor `with`: see turn_done)
        try:
            cells.enqueued.value += 1.0
        finally:
            lock.release()

    def watch(self, agent: Any) -> None:
        """Read ``agent``'s gauges (paused among them) from it when collected, from now on.

        For an agent paused or resumed in a run whose start this bridge did not see (it was
        instrumented mid-run); any other is watched since its first put or run start.
        """
        self.store.watch_agent(self.cells.agent(agent.name).labels, agent)

    def value(self, lane: Lane) -> None:
        """A turn of ``lane``, run by an agent, produced a value."""
        counter = lane.values or self._values(lane)
        lock = self._lock
        lock.acquire()
        try:
            counter.value += 1.0
        finally:
            lock.release()

    def _values(self, lane: Lane) -> Counter:
        counter = lane.values = self.cells.values(lane.agent_name, lane.tool.__name__)
        return counter

    # -- turns -------------------------------------------------------------------------------

    def queue_wait(self, lane: Lane, wait: float) -> None:
        """A turn run by an agent waited ``wait`` seconds in its queue."""
        cells = lane.agent
        if cells is None:
            return
        lock = self._lock
        lock.acquire()
        try:
            self._observe(cells.wait, wait)
        finally:
            lock.release()
        if self.otel is not None:
            self._otel_wait(wait, cells.wait_attrs, *self._extra)

    def turn_done(
        self,
        lane: Lane,
        reason: StopReason | None,
        error_type: str | None,
        seconds: float,
        tool_time: float | None,
        outcome: str,
        stamp: float,
        trace_id: int | None,
        valued: bool = False,
        wait: float | None = None,
    ) -> None:
        """A turn ended: its count and duration, its tool invocation, its failure counter.

        ``valued``: the turn, run by an agent, returned a value (which the agent delivers
        next: ``pygents_turn_values_total`` counts it now, sparing a hook per turn).
        ``wait``: seconds the turn, run by an agent, waited in its queue (recorded here, with
        the rest, rather than when the turn started: one pass through the lock per turn).
        """
        cells = lane.turn_ok
        if cells is None or reason is not _COMPLETED or error_type is not None:
            cells = self.cells.turn(
                lane.agent_name,
                lane.tool.__name__,
                reason.value if reason is not None else "unknown",
            )
            if reason is _COMPLETED and error_type is None:
                lane.turn_ok = cells
        tool_cells = None
        if tool_time is not None:
            tool_cells = lane.tool_ok if outcome == "ok" else None
            if tool_cells is None:
                tool_cells = self.cells.tool(lane.tool.__name__, outcome)
                if outcome == "ok":
                    lane.tool_ok = tool_cells
        values = (lane.values or self._values(lane)) if valued else None
        waited = lane.agent if wait is not None else None
        tool_seconds = 0.0 if tool_time is None else tool_time
        wait_seconds = 0.0 if wait is None else wait
        buckets = self._buckets
        # MetricStore.observe written out (three observations per turn). The lock is taken
        # with acquire() and released in a ``finally``, not by ``with``: a ``with`` statement
        # on a lock costs ~1,500 instructions more (3.12; its __enter__ and __exit__ looked up
        # and called generically, __exit__ with three arguments), on every metric recorded.
        lock = self._lock
        lock.acquire()
        try:
            # Counters are floats: ``+= 1.0`` (float + float) is specialised by the
            # interpreter, ``+= 1`` (float + int) is not (~100 instructions each).
            cells.count.value += 1.0
            histogram = cells.duration
            index = bisect_left(buckets, seconds)
            histogram.counts[index] += 1
            histogram.sum += seconds
            if trace_id is not None:
                histogram.exemplars[index] = (trace_id, seconds, stamp)
            if values is not None:
                values.value += 1.0
            if tool_cells is not None:
                tool_cells.count.value += 1.0
                histogram = tool_cells.duration
                index = bisect_left(buckets, tool_seconds)
                histogram.counts[index] += 1
                histogram.sum += tool_seconds
                if trace_id is not None:
                    histogram.exemplars[index] = (trace_id, tool_seconds, stamp)
            if waited is not None:
                histogram = waited.wait
                index = bisect_left(buckets, wait_seconds)
                histogram.counts[index] += 1
                histogram.sum += wait_seconds
        finally:
            lock.release()
        if reason is _TIMEOUT:
            self._failure(lane, "pygents_turn_timeouts_total", None)
        elif error_type is not None:
            self._failure(lane, "pygents_turn_errors_total", error_type)
        if self.otel is not None:
            if waited is not None:
                self._otel_wait(wait, waited.wait_attrs, *self._extra)
            self._otel_turn(seconds, cells.attrs, *self._extra)
            if tool_cells is not None:
                self._otel_tool(tool_time, tool_cells.attrs, *self._extra)

    def _failure(self, lane: Lane, metric: str, error_type: str | None) -> None:
        labels: tuple[str, ...] = (
            self._agent_label(lane.agent_name) if lane.agent_name else "",
            self._tool_label(lane.tool.__name__),
        )
        if error_type is not None:
            labels += (self._error_label(error_type),)
        self.store.inc(metric, labels)

    # -- tools called directly ---------------------------------------------------------------

    def call_done(self, tool: Any, outcome: str, seconds: float, trace_id: int | None) -> None:
        """A tool called directly (not by a turn) ended."""
        cells = self.cells.tool(tool.__name__, outcome)
        lock = self._lock
        lock.acquire()
        try:
            cells.count.value += 1.0
            self._observe(cells.duration, seconds, trace_id)
        finally:
            lock.release()
        if self.otel is not None:
            self._otel_tool(seconds, cells.attrs, *self._extra)
