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

import inspect
from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ._semconv import DURATION_BUCKETS, METRICS, OTEL_ATTRIBUTE_FOR_LABEL
from ._store import Labels, MetricStore

__all__ = ["NO_CONTEXT", "OtelMetrics"]

#: The context histograms are recorded in: one without a span. Exemplars (trace ids on
#: duration buckets) come from the Prometheus collector, which gets the trace id from the
#: bridge; the SDK's default exemplar filter samples only measurements made in a sampled
#: span's context, so this one spares it an exemplar per measurement (a reservoir offer
#: costs about a fifth of a record) and the current-context lookup. Not empty: the SDK
#: takes ``context or get_current()``, and an empty ``Context`` is falsy.
NO_CONTEXT = Context({"pygents.metrics.no_span": True})


class OtelMetrics:
    """The store's signals as OpenTelemetry instruments."""

    def __init__(self, meter: Meter, store: MetricStore) -> None:
        self.store: MetricStore | None = store
        self._keys: dict[str, tuple[str, ...]] = {}
        #: Histogram instruments by Prometheus metric name: what the bridge records into (the
        #: SDK's, or its fast path where exact: see ``_fast_metrics``).
        self.histograms: dict[str, Any] = {}
        #: The arguments after ``(amount, attributes)`` of a histogram record: the span-less
        #: context where ``record`` takes one (SDK 1.28 and later; 1.27 has no such parameter).
        self.record_extra: tuple[Any, ...] = ()
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
        for histogram in self.histograms.values():
            if _takes_context(histogram.record):
                self.record_extra = (NO_CONTEXT,)
            break
        #: The histogram instruments as the meter made them.
        self.instruments = dict(self.histograms)
        self.histograms = _fast_histograms(self.instruments)

    def attach(self, store: MetricStore) -> None:
        """Read from ``store`` from now on (re-instrumenting with the same meter provider).

        The SDK hands back the instruments registered first (with their callbacks) when the
        same names are created again, so one ``OtelMetrics`` serves a meter provider for life.
        ``PYGENTS_FAST_METRICS`` is read again.
        """
        self.store = store
        self.histograms = _fast_histograms(self.instruments)

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


def _fast_histograms(instruments: dict[str, Any]) -> dict[str, Any]:
    """The instruments, each replaced by its fast path where that is exact."""
    try:
        from ._fast_metrics import fast_histogram
    except ImportError:  # the API without the SDK: nothing to speed up
        return dict(instruments)
    return {
        name: fast_histogram(histogram, NO_CONTEXT) or histogram
        for name, histogram in instruments.items()
    }


def _takes_context(record: Any) -> bool:
    """Whether a histogram's ``record`` accepts a context after the attributes."""
    try:
        return "context" in inspect.signature(record).parameters
    except (TypeError, ValueError):  # no signature to read: pass the two arguments only
        return False
