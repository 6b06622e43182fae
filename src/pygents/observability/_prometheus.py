"""Prometheus exposition of the metric store, as a ``prometheus_client`` custom collector."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from ._semconv import METRICS
from ._store import MetricStore

__all__ = ["PrometheusCollector", "start_metrics_server"]


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class PrometheusCollector(Collector):
    """Renders every pygents metric from a ``MetricStore`` at scrape time.

    ``defer`` (if given) is asked at each scrape whether another pipeline carries the metrics
    now (the OpenTelemetry instruments, once an SDK meter provider is in place); while it says
    so the collector yields nothing at all (no family, not even its HELP line), so the registry
    never exposes a family twice.
    """

    def __init__(self, store: MetricStore, defer: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.defer = defer
        self._bounds = [_le(b) for b in store.buckets] + ["+Inf"]

    def describe(self) -> list[Metric]:
        """Return the (empty) families, so a registry detects duplicate names."""
        return list(self._families(empty=True))

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family with its current samples (none while deferring)."""
        if self.defer is not None and self.defer():
            return iter(())
        return self._families(empty=False)

    def _families(self, empty: bool) -> Iterator[Metric]:
        for name, kind, labels, *_, doc in METRICS:
            family: Any
            if kind == "counter":
                family = CounterMetricFamily(name, doc, labels=labels)
            elif kind == "gauge":
                family = GaugeMetricFamily(name, doc, labels=labels)
            else:
                family = HistogramMetricFamily(name, doc, labels=labels)
            if not empty:
                for label_values, value in self.store.snapshot(name):
                    if kind == "histogram":
                        self._add_histogram(family, list(label_values), value)
                    elif kind == "counter":
                        total, created = value
                        family.add_metric(list(label_values), total, created=created)
                    else:
                        family.add_metric(list(label_values), value)
            yield family

    def _add_histogram(self, family: Any, labels: list[str], value: Any) -> None:
        counts, total, exemplars = value
        buckets: list[Any] = []
        cumulative = 0
        for bound, count, exemplar in zip(self._bounds, counts, exemplars, strict=True):
            cumulative += count
            if exemplar is None:
                buckets.append((bound, cumulative))
            else:
                trace_id, observed, stamp = exemplar
                buckets.append(
                    (bound, cumulative, Exemplar({"trace_id": f"{trace_id:032x}"}, observed, stamp))
                )
        family.add_metric(labels, buckets, total)


def register_collector(
    store: MetricStore, registry: CollectorRegistry, defer: Callable[[], bool] | None = None
) -> PrometheusCollector:
    """Create the collector and register it (``ValueError`` if the names are taken)."""
    collector = PrometheusCollector(store, defer)
    registry.register(collector)
    return collector


def start_metrics_server(
    port: int = 9464, host: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> tuple[Any, Any]:
    """Serve ``/metrics`` (Prometheus text or OpenMetrics by content negotiation).

    Args:
        port: the TCP port; 0 picks a free one (read it from ``server.server_port``).
        host: the address to bind; loopback unless you say otherwise.
        registry: the registry to serve; ``prometheus_client.REGISTRY`` by default.

    Returns:
        ``(server, thread)``: the WSGI server and the daemon thread serving it; call
        ``server.shutdown()`` to stop it.

    Raises:
        OSError: the port is taken or the address cannot be bound.
    """
    from prometheus_client import REGISTRY, start_http_server

    return start_http_server(port, addr=host, registry=registry or REGISTRY)
