"""OpenTelemetry metric instruments: one class creates them all from a ``Meter``."""

from __future__ import annotations

from typing import Any

from opentelemetry.metrics import Meter

from ._semconv import (
    DURATION_BUCKETS,
    ERROR_TYPE,
    GEN_AI_AGENT_NAME,
    GEN_AI_DURATION_BUCKETS,
    GEN_AI_METRICS,
    GEN_AI_TOOL_NAME,
    METRICS,
    OTEL_ATTRIBUTE_FOR_LABEL,
)

__all__ = ["OtelMetrics"]


class OtelMetrics:
    """The same signals as the Prometheus metrics, as OpenTelemetry instruments."""

    def __init__(self, meter: Meter) -> None:
        self._instruments: dict[str, Any] = {}
        self._keys: dict[str, tuple[str, ...]] = {}
        for prom_name, kind, labels, name, unit, _src in METRICS:
            if kind == "counter":
                inst: Any = meter.create_counter(name, unit=unit)
            elif kind == "gauge":
                inst = meter.create_gauge(name, unit=unit)
            else:
                inst = meter.create_histogram(
                    name, unit=unit, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
                )
            self._instruments[prom_name] = inst
            self._keys[prom_name] = tuple(OTEL_ATTRIBUTE_FOR_LABEL[label] for label in labels)
        for name, unit, _attrs in GEN_AI_METRICS:
            self._instruments[name] = meter.create_histogram(
                name, unit=unit, explicit_bucket_boundaries_advisory=GEN_AI_DURATION_BUCKETS
            )
        self._attributes: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}

    def _attrs(self, name: str, values: tuple[str, ...]) -> dict[str, str]:
        key = (name, values)
        found = self._attributes.get(key)
        if found is None:
            found = self._attributes[key] = dict(zip(self._keys[name], values, strict=True))
        return found

    def _add(self, name: str, values: tuple[str, ...], amount: float = 1) -> None:
        self._instruments[name].add(amount, self._attrs(name, values))

    def _record(self, name: str, values: tuple[str, ...], amount: float) -> None:
        self._instruments[name].record(amount, self._attrs(name, values))

    def _set(self, name: str, values: tuple[str, ...], amount: float) -> None:
        self._instruments[name].set(amount, self._attrs(name, values))

    def turn_completed(
        self, agent: str, tool: str, reason: str, seconds: float, trace_id: str | None
    ) -> None:
        """Count a finished turn and record its durations."""
        self._add("pygents_turns_total", (agent, tool, reason))
        self._record("pygents_turn_duration_seconds", (agent, tool, reason), seconds)

    def tool_execution(self, tool: str, error_type: str | None, seconds: float) -> None:
        """Record ``gen_ai.execute_tool.duration``."""
        attrs = {GEN_AI_TOOL_NAME: tool}
        if error_type is not None:
            attrs[ERROR_TYPE] = error_type
        self._instruments["gen_ai.execute_tool.duration"].record(seconds, attrs)

    def agent_run(self, agent: str, error_type: str | None, seconds: float) -> None:
        """Record ``gen_ai.invoke_agent.duration``."""
        attrs = {GEN_AI_AGENT_NAME: agent}
        if error_type is not None:
            attrs[ERROR_TYPE] = error_type
        self._instruments["gen_ai.invoke_agent.duration"].record(seconds, attrs)

    def turn_timeout(self, agent: str, tool: str) -> None:
        """Count a timeout."""
        self._add("pygents_turn_timeouts_total", (agent, tool))

    def turn_error(self, agent: str, tool: str, error_type: str) -> None:
        """Count an error."""
        self._add("pygents_turn_errors_total", (agent, tool, error_type))

    def turn_value(self, agent: str, tool: str) -> None:
        """Count a value yielded by an agent."""
        self._add("pygents_turn_values_total", (agent, tool))

    def tool_invoked(self, tool: str, outcome: str, seconds: float, trace_id: str | None) -> None:
        """Count a tool invocation and record its duration."""
        self._add("pygents_tool_invocations_total", (tool, outcome))
        self._record("pygents_tool_duration_seconds", (tool,), seconds)

    def enqueued(self, agent: str, depth: int) -> None:
        """Count an enqueued turn and set the queue depth."""
        self._add("pygents_agent_turns_enqueued_total", (agent,))
        self._set("pygents_agent_queue_depth", (agent,), depth)

    def queue_depth(self, agent: str, depth: int) -> None:
        """Set the queue depth."""
        self._set("pygents_agent_queue_depth", (agent,), depth)

    def running(self, agent: str, value: int) -> None:
        """Set the running state."""
        self._set("pygents_agent_running", (agent,), value)

    def paused(self, agent: str, value: int) -> None:
        """Set the paused state."""
        self._set("pygents_agent_paused", (agent,), value)

    def queue_wait(self, agent: str, seconds: float) -> None:
        """Record how long a turn waited in the queue."""
        self._record("pygents_turn_queue_wait_seconds", (agent,), seconds)

    def context_queue_items(self, owner: str, count: int) -> None:
        """Set a context queue's item count."""
        self._set("pygents_context_queue_items", (owner,), count)

    def context_queue_evicted(self, owner: str) -> None:
        """Count a context-queue eviction."""
        self._add("pygents_context_queue_evictions_total", (owner,))

    def context_pool_items(self, owner: str, count: int) -> None:
        """Set a context pool's item count."""
        self._set("pygents_context_pool_items", (owner,), count)

    def context_pool_evicted(self, owner: str) -> None:
        """Count a context-pool eviction."""
        self._add("pygents_context_pool_evictions_total", (owner,))
