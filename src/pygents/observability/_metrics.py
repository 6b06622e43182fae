"""OpenTelemetry instruments for the metric store: one class creates them all from a ``Meter``.

Counters and gauges are *observable* instruments reading the store when the SDK collects,
so they cost nothing per turn. Duration histograms are recorded per observation (the API has
no pre-aggregated histogram); the bridge records them with attribute dicts it built once per
series.

Instrument names, units and attribute keys are chosen so that the standard OpenTelemetry ->
Prometheus translation gives exactly the Prometheus names and labels of ``_semconv.METRICS``:
``pygents.turn.duration`` in ``s`` becomes ``pygents_turn_duration_seconds``, the monotonic
``pygents.turns`` becomes ``pygents_turns_total``, the attribute ``agent`` the label ``agent``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ._semconv import DURATION_BUCKETS, METRICS, OTEL_ATTRIBUTE_FOR_LABEL
from ._store import Labels, MetricStore

__all__ = ["NO_CONTEXT", "OtelMetrics"]

#: The context histograms are recorded in. The bridge passes the exemplar's trace id to the
#: Prometheus store itself; an empty context spares the SDK a context lookup per measurement.
NO_CONTEXT = Context()


class OtelMetrics:
    """The store's signals as OpenTelemetry instruments."""

    def __init__(self, meter: Meter, store: MetricStore) -> None:
        self.store: MetricStore | None = store
        self._keys: dict[str, tuple[str, ...]] = {}
        #: Histogram instruments by Prometheus metric name.
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

    def attach(self, store: MetricStore) -> None:
        """Read from ``store`` from now on (re-instrumenting with the same meter provider).

        The SDK hands back the instruments registered first (with their callbacks) when the
        same names are created again, so one ``OtelMetrics`` serves a meter provider for life.
        """
        self.store = store

    def detach(self) -> None:
        """Stop reporting: the observable instruments observe nothing from now on.

        Called when another installation replaces this one: the SDK cannot forget instruments,
        so without this the counters and gauges would go on reporting the last store's values
        next to whatever pipeline is installed next.
        """
        self.store = None

    def attributes(self, name: str, labels: Labels) -> dict[str, str]:
        """The attribute dict of one series of a store metric (build it once, keep it)."""
        return dict(zip(self._keys[name], labels, strict=True))

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
