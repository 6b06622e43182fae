"""Prometheus metrics (``prometheus_client``), one object per registry, cached label children."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ._semconv import DURATION_BUCKETS, METRICS

__all__ = ["PrometheusMetrics", "start_metrics_server"]

_DOC = {
    "pygents_turns_total": "Turns finished, by agent, tool and stop reason.",
    "pygents_turn_duration_seconds": "Turn duration from BEFORE_RUN to ON_COMPLETE.",
    "pygents_turn_timeouts_total": "Turns that timed out.",
    "pygents_turn_errors_total": "Turns that failed, by exception type.",
    "pygents_turn_values_total": "Values yielded by turns run by agents.",
    "pygents_tool_invocations_total": "Tool invocations, by outcome (ok/error).",
    "pygents_tool_duration_seconds": "Tool invocation duration.",
    "pygents_agent_turns_enqueued_total": "Turns put on an agent's queue.",
    "pygents_agent_queue_depth": "Turns waiting in an agent's queue.",
    "pygents_agent_running": "1 while the agent's run loop is active.",
    "pygents_agent_paused": "1 while the agent is paused.",
    "pygents_context_queue_items": "Items in a context queue, by owner.",
    "pygents_context_queue_evictions_total": "Items evicted from context queues.",
    "pygents_context_pool_items": "Items in a context pool, by owner.",
    "pygents_context_pool_evictions_total": "Items evicted from context pools.",
    "pygents_turn_queue_wait_seconds": "Time a turn waited in the queue before running.",
}


def _strip_total(name: str) -> str:
    # prometheus_client appends _total to counters itself.
    return name[: -len("_total")] if name.endswith("_total") else name


class PrometheusMetrics:
    """All pygents metrics in one ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._metrics: dict[str, Any] = {}
        for name, kind, labels, _otel, _unit, _src in METRICS:
            doc = _DOC[name]
            metric: Any
            if kind == "counter":
                metric = Counter(_strip_total(name), doc, labels, registry=registry)
            elif kind == "gauge":
                metric = Gauge(name, doc, labels, registry=registry)
            else:
                metric = Histogram(name, doc, labels, buckets=DURATION_BUCKETS, registry=registry)
            self._metrics[name] = metric
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}

    def unregister(self) -> None:
        """Remove every metric from the registry."""
        for metric in self._metrics.values():
            try:
                self.registry.unregister(metric)
            except KeyError:  # already gone
                pass

    def child(self, name: str, labels: tuple[str, ...]) -> Any:
        """Return the cached labelled child of metric ``name``."""
        key = (name, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = self._metrics[name].labels(*labels)
        return found

    # -- events (called by the bridge; labels already cardinality-limited) ---------------------

    def turn_completed(
        self, agent: str, tool: str, reason: str, seconds: float, trace_id: str | None
    ) -> None:
        """Count a finished turn and observe its duration (exemplar: the trace id)."""
        self.child("pygents_turns_total", (agent, tool, reason)).inc()
        hist = self.child("pygents_turn_duration_seconds", (agent, tool, reason))
        if trace_id is None:
            hist.observe(seconds)
        else:
            hist.observe(seconds, {"trace_id": trace_id})

    def turn_timeout(self, agent: str, tool: str) -> None:
        """Count a timeout."""
        self.child("pygents_turn_timeouts_total", (agent, tool)).inc()

    def turn_error(self, agent: str, tool: str, error_type: str) -> None:
        """Count an error."""
        self.child("pygents_turn_errors_total", (agent, tool, error_type)).inc()

    def turn_value(self, agent: str, tool: str) -> None:
        """Count a value yielded by an agent."""
        self.child("pygents_turn_values_total", (agent, tool)).inc()

    def tool_invoked(self, tool: str, outcome: str, seconds: float, trace_id: str | None) -> None:
        """Count a tool invocation and observe its duration."""
        self.child("pygents_tool_invocations_total", (tool, outcome)).inc()
        hist = self.child("pygents_tool_duration_seconds", (tool,))
        if trace_id is None:
            hist.observe(seconds)
        else:
            hist.observe(seconds, {"trace_id": trace_id})

    def enqueued(self, agent: str, depth: int) -> None:
        """Count an enqueued turn and set the queue depth."""
        self.child("pygents_agent_turns_enqueued_total", (agent,)).inc()
        self.child("pygents_agent_queue_depth", (agent,)).set(depth)

    def queue_depth(self, agent: str, depth: int) -> None:
        """Set the queue depth."""
        self.child("pygents_agent_queue_depth", (agent,)).set(depth)

    def running(self, agent: str, value: int) -> None:
        """Set the running state."""
        self.child("pygents_agent_running", (agent,)).set(value)

    def paused(self, agent: str, value: int) -> None:
        """Set the paused state."""
        self.child("pygents_agent_paused", (agent,)).set(value)

    def queue_wait(self, agent: str, seconds: float) -> None:
        """Observe how long a turn waited in the queue."""
        self.child("pygents_turn_queue_wait_seconds", (agent,)).observe(seconds)

    def context_queue_items(self, owner: str, count: int) -> None:
        """Set a context queue's item count."""
        self.child("pygents_context_queue_items", (owner,)).set(count)

    def context_queue_evicted(self, owner: str) -> None:
        """Count a context-queue eviction."""
        self.child("pygents_context_queue_evictions_total", (owner,)).inc()

    def context_pool_items(self, owner: str, count: int) -> None:
        """Set a context pool's item count."""
        self.child("pygents_context_pool_items", (owner,)).set(count)

    def context_pool_evicted(self, owner: str) -> None:
        """Count a context-pool eviction."""
        self.child("pygents_context_pool_evictions_total", (owner,)).inc()


def start_metrics_server(
    port: int = 9464, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> Any:
    """Serve ``/metrics`` (Prometheus text or OpenMetrics by content negotiation).

    Binds to loopback unless ``host`` says otherwise. Returns ``(server, thread)``; call
    ``server.shutdown()`` to stop it.
    """
    from prometheus_client import REGISTRY, start_http_server

    return start_http_server(port, addr=host, registry=registry or REGISTRY)
