"""The metric store: every pygents metric aggregated in plain dicts, cheaply, per event.

The bridge records into this store (a dict update per counter, a bisect per histogram).
The Prometheus collector renders it at scrape time, and OpenTelemetry observable
instruments read it at collection time, so neither pays per-turn library overhead.
Only OpenTelemetry histograms are recorded per event (the API has no pre-aggregated
histogram). A lock makes updates from several threads' event loops safe.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from ._semconv import DURATION_BUCKETS, METRICS

__all__ = ["Histogram", "MetricStore"]

Labels = tuple[str, ...]


class Histogram:
    """Bucket counts (non-cumulative), sum, count and the latest exemplar per bucket."""

    __slots__ = ("counts", "exemplars", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.sum = 0.0
        self.exemplars: list[tuple[str, float, float] | None] = [None] * (buckets + 1)


class MetricStore:
    """Counters, gauges and histograms keyed by metric name and label values."""

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.buckets = buckets
        self.kinds = {name: kind for name, kind, *_ in METRICS}
        self.label_names = {name: labels for name, _kind, labels, *_ in METRICS}
        self.values: dict[str, dict[Labels, Any]] = {name: {} for name, *_ in METRICS}
        #: When each counter series was first incremented (OpenMetrics ``_created``).
        self.created: dict[str, dict[Labels, float]] = {name: {} for name, *_ in METRICS}
        self._lock = threading.Lock()
        #: Called as ``listener(metric_name, labels, value)`` for each histogram observation.
        self.histogram_listener: Callable[[str, Labels, float], None] | None = None

    # -- recording (called by the bridge) --------------------------------------------------

    def inc(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter."""
        series = self.values[name]
        with self._lock:
            current = series.get(labels)
            if current is None:
                self.created[name][labels] = time.time()
                current = 0.0
            series[labels] = current + amount

    def set(self, name: str, labels: Labels, value: float) -> None:
        """Set a gauge."""
        self.values[name][labels] = float(value)

    def observe(self, name: str, labels: Labels, value: float, trace_id: str | None = None) -> None:
        """Record a histogram observation (with an exemplar when a trace id is given)."""
        series = self.values[name]
        index = bisect_left(self.buckets, value)
        with self._lock:
            hist = series.get(labels)
            if hist is None:
                hist = series[labels] = Histogram(len(self.buckets))
            hist.counts[index] += 1
            hist.sum += value
            if trace_id is not None:
                hist.exemplars[index] = (trace_id, value, time.time())
        listener = self.histogram_listener
        if listener is not None:
            listener(name, labels, value)

    # -- reading (scrapes, observable callbacks, tests) ------------------------------------

    def created_at(self, name: str, labels: Labels) -> float | None:
        """When a counter series was created (epoch seconds), or None."""
        return self.created[name].get(labels)

    def snapshot(self, name: str) -> list[tuple[Labels, Any]]:
        """Return ``(labels, value)`` pairs of one metric, copied under the lock."""
        with self._lock:
            items = list(self.values[name].items())
            if self.kinds[name] == "histogram":
                return [(labels, (list(h.counts), h.sum, list(h.exemplars))) for labels, h in items]
            return items

    # -- the semantic events the bridge reports ----------------------------------------------

    def turn_completed(
        self, agent: str, tool: str, reason: str, seconds: float, trace_id: str | None
    ) -> None:
        """Count a finished turn and observe its duration (exemplar: the trace id)."""
        labels = (agent, tool, reason)
        self.inc("pygents_turns_total", labels)
        self.observe("pygents_turn_duration_seconds", labels, seconds, trace_id)

    def turn_timeout(self, agent: str, tool: str) -> None:
        """Count a timeout."""
        self.inc("pygents_turn_timeouts_total", (agent, tool))

    def turn_error(self, agent: str, tool: str, error_type: str) -> None:
        """Count an error."""
        self.inc("pygents_turn_errors_total", (agent, tool, error_type))

    def turn_value(self, agent: str, tool: str) -> None:
        """Count a value yielded by an agent."""
        self.inc("pygents_turn_values_total", (agent, tool))

    def tool_invoked(self, tool: str, outcome: str, seconds: float, trace_id: str | None) -> None:
        """Count a tool invocation and observe its duration."""
        self.inc("pygents_tool_invocations_total", (tool, outcome))
        self.observe("pygents_tool_duration_seconds", (tool,), seconds, trace_id)

    def enqueued(self, agent: str, depth: int) -> None:
        """Count an enqueued turn and set the queue depth."""
        self.inc("pygents_agent_turns_enqueued_total", (agent,))
        self.set("pygents_agent_queue_depth", (agent,), depth)

    def queue_depth(self, agent: str, depth: int) -> None:
        """Set the queue depth."""
        self.set("pygents_agent_queue_depth", (agent,), depth)

    def running(self, agent: str, value: int) -> None:
        """Set the running state."""
        self.set("pygents_agent_running", (agent,), value)

    def paused(self, agent: str, value: int) -> None:
        """Set the paused state."""
        self.set("pygents_agent_paused", (agent,), value)

    def queue_wait(self, agent: str, seconds: float) -> None:
        """Observe how long a turn waited in the queue."""
        self.observe("pygents_turn_queue_wait_seconds", (agent,), seconds)

    def context_queue_items(self, owner: str, count: int) -> None:
        """Set a context queue's item count."""
        self.set("pygents_context_queue_items", (owner,), count)

    def context_queue_evicted(self, owner: str) -> None:
        """Count a context-queue eviction."""
        self.inc("pygents_context_queue_evictions_total", (owner,))

    def context_pool_items(self, owner: str, count: int) -> None:
        """Set a context pool's item count."""
        self.set("pygents_context_pool_items", (owner,), count)

    def context_pool_evicted(self, owner: str) -> None:
        """Count a context-pool eviction."""
        self.inc("pygents_context_pool_evictions_total", (owner,))
