"""OpenTelemetry instruments for the metric store: one class creates them all from a ``Meter``.

Counters and gauges are *observable* instruments reading the store when the SDK collects,
so they cost nothing per turn; duration histograms are recorded per observation (the API has
no pre-aggregated histogram), plus the GenAI ``gen_ai.*.duration`` histograms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

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
from ._store import Labels, MetricStore

__all__ = ["OtelMetrics"]


class OtelMetrics:
    """The store's signals as OpenTelemetry instruments."""

    def __init__(self, meter: Meter, store: MetricStore) -> None:
        self.store: MetricStore | None = store
        self._keys: dict[str, tuple[str, ...]] = {}
        self._histograms: dict[str, Any] = {}
        self._attributes: dict[tuple[str, Labels], dict[str, str]] = {}
        for prom_name, kind, labels, name, unit, _src in METRICS:
            self._keys[prom_name] = tuple(OTEL_ATTRIBUTE_FOR_LABEL[label] for label in labels)
            if kind == "counter":
                meter.create_observable_counter(name, [self._callback(prom_name)], unit=unit)
            elif kind == "gauge":
                meter.create_observable_gauge(name, [self._callback(prom_name)], unit=unit)
            else:
                self._histograms[prom_name] = meter.create_histogram(
                    name, unit=unit, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
                )
        self._gen_ai = {
            name: meter.create_histogram(
                name, unit=unit, explicit_bucket_boundaries_advisory=GEN_AI_DURATION_BUCKETS
            )
            for name, unit, _attrs in GEN_AI_METRICS
        }
        store.histogram_listener = self.record_histogram

    def attach(self, store: MetricStore) -> None:
        """Read from ``store`` from now on (re-instrumenting with the same meter provider).

        The SDK hands back the instruments registered first (with their callbacks) when the
        same names are created again, so one ``OtelMetrics`` serves a meter provider for life.
        """
        self.detach()
        self.store = store
        store.histogram_listener = self.record_histogram

    def detach(self) -> None:
        """Stop receiving histogram observations.

        Observable instruments keep reporting the store's last values (nothing writes to it
        any more), so exported series stay still.
        """
        store = self.store
        if store is not None and store.histogram_listener == self.record_histogram:
            store.histogram_listener = None

    def _attrs(self, name: str, labels: Labels) -> dict[str, str]:
        key = (name, labels)
        found = self._attributes.get(key)
        if found is None:
            found = self._attributes[key] = dict(zip(self._keys[name], labels, strict=True))
        return found

    def _callback(self, name: str) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            store = self.store
            if store is None:
                return []
            return [
                Observation(value, self._attrs(name, labels))
                for labels, value in store.snapshot(name)
            ]

        return observe

    def record_histogram(self, name: str, labels: Labels, value: float) -> None:
        """Record one observation of a store histogram."""
        self._histograms[name].record(value, self._attrs(name, labels))

    def tool_execution(self, tool: str, error_type: str | None, seconds: float) -> None:
        """Record ``gen_ai.execute_tool.duration``."""
        self._gen_ai_duration(
            "gen_ai.execute_tool.duration", GEN_AI_TOOL_NAME, tool, error_type, seconds
        )

    def agent_run(self, agent: str, error_type: str | None, seconds: float) -> None:
        """Record ``gen_ai.invoke_agent.duration``."""
        self._gen_ai_duration(
            "gen_ai.invoke_agent.duration", GEN_AI_AGENT_NAME, agent, error_type, seconds
        )

    def _gen_ai_duration(
        self, name: str, key: str, value: str, error_type: str | None, seconds: float
    ) -> None:
        attrs = {key: value}
        if error_type is not None:
            attrs[ERROR_TYPE] = error_type
        self._gen_ai[name].record(seconds, attrs)
