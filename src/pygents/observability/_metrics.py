"""OpenTelemetry instruments for the metric store: one class creates them all from a ``Meter``.

Counters and gauges are *observable* instruments reading the store when the SDK collects,
so they cost nothing per turn. Duration histograms are recorded per observation (the API has
no pre-aggregated histogram), plus the GenAI ``gen_ai.*.duration`` histograms; the bridge
records them with attribute dicts it built once per series.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ._semconv import (
    DURATION_BUCKETS,
    ERROR_TYPE,
    GEN_AI_AGENT_NAME,
    GEN_AI_DURATION_BUCKETS,
    GEN_AI_METRICS,
    GEN_AI_TOOL_NAME,
    METRIC_EXECUTE_TOOL_DURATION,
    METRIC_INVOKE_AGENT_DURATION,
    METRICS,
    OTEL_ATTRIBUTE_FOR_LABEL,
)
from ._store import Labels, MetricStore

__all__ = ["OtelMetrics"]

#: The context histograms are recorded in. pygents spans are never made current, so the
#: current context holds no pygents span to sample an exemplar from; an empty context says
#: so explicitly and spares the SDK a context lookup per measurement.
NO_CONTEXT = Context()


class OtelMetrics:
    """The store's signals as OpenTelemetry instruments."""

    def __init__(self, meter: Meter, store: MetricStore) -> None:
        self.store: MetricStore | None = store
        self._keys: dict[str, tuple[str, ...]] = {}
        #: Histogram instruments by Prometheus metric name, and the GenAI ones by name.
        self.histograms: dict[str, Any] = {}
        for prom_name, kind, labels, name, unit, _src, doc in METRICS:
            self._keys[prom_name] = tuple(OTEL_ATTRIBUTE_FOR_LABEL[label] for label in labels)
            if kind == "counter":
                meter.create_observable_counter(
                    name, [self._callback(prom_name)], unit=unit, description=doc
                )
            elif kind == "gauge":
                meter.create_observable_gauge(
                    name, [self._callback(prom_name)], unit=unit, description=doc
                )
            else:
                self.histograms[prom_name] = meter.create_histogram(
                    name,
                    unit=unit,
                    description=doc,
                    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
                )
        for name, unit, _attrs in GEN_AI_METRICS:
            self.histograms[name] = meter.create_histogram(
                name, unit=unit, explicit_bucket_boundaries_advisory=GEN_AI_DURATION_BUCKETS
            )

    def attach(self, store: MetricStore) -> None:
        """Read from ``store`` from now on (re-instrumenting with the same meter provider).

        The SDK hands back the instruments registered first (with their callbacks) when the
        same names are created again, so one ``OtelMetrics`` serves a meter provider for life.
        """
        self.store = store

    def attributes(self, name: str, labels: Labels) -> dict[str, str]:
        """The attribute dict of one series of a store metric (build it once, keep it)."""
        return dict(zip(self._keys[name], labels, strict=True))

    @staticmethod
    def gen_ai_attributes(key: str, value: str, error_type: str | None) -> dict[str, str]:
        """The attributes of a ``gen_ai.*.duration`` measurement."""
        attrs = {key: value}
        if error_type is not None:
            attrs[ERROR_TYPE] = error_type
        return attrs

    def _callback(self, name: str) -> Any:
        counter = name.endswith("_total")

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            store = self.store
            if store is None:
                return []
            return [
                Observation(value[0] if counter else value, self.attributes(name, labels))
                for labels, value in store.snapshot(name)
            ]

        return observe

    def agent_run(self, agent: str, error_type: str | None, seconds: float) -> None:
        """Record ``gen_ai.invoke_agent.duration`` (once per run: not worth caching)."""
        self._gen_ai(METRIC_INVOKE_AGENT_DURATION, GEN_AI_AGENT_NAME, agent, error_type, seconds)

    def tool_run(self, tool: str, error_type: str | None, seconds: float) -> None:
        """Record ``gen_ai.execute_tool.duration`` for a tool called directly (no turn)."""
        self._gen_ai(METRIC_EXECUTE_TOOL_DURATION, GEN_AI_TOOL_NAME, tool, error_type, seconds)

    def _gen_ai(
        self, metric: str, key: str, value: str, error_type: str | None, seconds: float
    ) -> None:
        attributes = self.gen_ai_attributes(key, value, error_type)
        self.histograms[metric].record(seconds, attributes, NO_CONTEXT)
