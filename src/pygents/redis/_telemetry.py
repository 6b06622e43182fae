"""Telemetry of the Redis path: messaging spans, W3C context in messages, worker metrics.

Spans follow the OpenTelemetry messaging conventions: ``send {stream}`` (PRODUCER) when a
turn is enqueued, ``process {stream}`` (CONSUMER) when a worker hands it to its agent, a child
of the sender's context carried in the message; the turn's own ``execute_tool`` span is a
child of the ``process`` span. Metrics are kept in plain counters (``RedisWorker.stats()``)
and exported through OpenTelemetry observable instruments and a ``prometheus_client``
collector, when those packages are installed. Nothing here raises into the worker.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

__all__ = ["METRICS", "Telemetry"]

_log = logging.getLogger("pygents.redis")
SCOPE = "pygents.redis"

# messaging.* names from the semantic-conventions package (messaging_attributes); "redis"
# is not one of its well-known messaging.system values, which the convention allows.
SYSTEM = "redis"
A_SYSTEM = "messaging.system"
A_OPERATION_NAME = "messaging.operation.name"
A_OPERATION_TYPE = "messaging.operation.type"
A_DESTINATION = "messaging.destination.name"
A_GROUP = "messaging.consumer.group.name"
A_MESSAGE_ID = "messaging.message.id"
A_CLIENT_ID = "messaging.client.id"
A_BODY_SIZE = "messaging.message.body.size"
A_AGENT = "gen_ai.agent.name"
A_DELIVERY = "pygents.redis.delivery_count"

#: (OpenTelemetry name, unit, Prometheus name, kind, labels, help): the worker's metrics.
METRICS: tuple[tuple[str, str, str, str, tuple[str, ...], str], ...] = (
    (
        "pygents.redis.queue_depth",
        "{turn}",
        "pygents_redis_queue_depth",
        "gauge",
        ("agent",),
        "Turns waiting for an agent: in its stream plus queued at its owner",
    ),
    (
        "pygents.redis.leases_held",
        "{lease}",
        "pygents_redis_leases_held",
        "gauge",
        (),
        "Agents this worker holds the lease of",
    ),
    (
        "pygents.redis.takeovers",
        "{agent}",
        "pygents_redis_takeovers_total",
        "counter",
        ("agent",),
        "Agents taken over from a worker whose lease expired",
    ),
    (
        "pygents.redis.redeliveries",
        "{turn}",
        "pygents_redis_redeliveries_total",
        "counter",
        ("agent",),
        "Turns delivered again: claimed from a lost worker, resumed in flight, or retried",
    ),
    (
        "pygents.redis.dead_letters",
        "{turn}",
        "pygents_redis_dead_letters_total",
        "counter",
        ("agent",),
        "Turns moved to the dead-letter stream: failed or lost with their worker max_attempts "
        "times, or not runnable (undecodable, refused)",
    ),
)


def telemetry_switched_off() -> bool:
    """True when ``PYGENTS_TELEMETRY`` (the documented switch) says off."""
    return os.environ.get("PYGENTS_TELEMETRY", "").strip().lower() in {"off", "false", "0", "no"}


def _has(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class Telemetry:
    """Spans and metrics of one worker or queue.

    Args:
        tracer_provider: None for the global one; False for no spans.
        meter_provider: None for the global one; False for no OpenTelemetry metrics.
        prometheus_registry: a ``CollectorRegistry``; None for ``prometheus_client.REGISTRY``;
            False for none. Only workers register metrics (``metrics=True``).
        client_id: ``messaging.client.id`` (the worker's name).
        metrics: register the metrics (a worker) or only make spans (a queue).
    """

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        prometheus_registry: Any = None,
        client_id: str = "",
        metrics: bool = False,
    ) -> None:
        self.client_id = client_id
        self.counts: dict[str, dict[str, float]] = {m[0]: {} for m in METRICS if m[3] == "counter"}
        self.depths: dict[str, int] = {}
        self.leases = 0
        self._tracer: Any = None
        self._propagator: Any = None
        self._registry: Any = None
        self._collector: Any = None
        self._instruments: list[Any] = []
        # PYGENTS_TELEMETRY=off switches the global providers off; explicit ones still count.
        off = telemetry_switched_off() and tracer_provider is None and meter_provider is None
        if not off and _has("opentelemetry"):
            try:
                self._setup_otel(tracer_provider, meter_provider if metrics else False)
            except Exception as exc:  # telemetry never stops the worker
                _log.warning("pygents.redis: OpenTelemetry set-up failed: %s", exc)
        if metrics and prometheus_registry is not False and _has("prometheus_client"):
            try:
                self._setup_prometheus(prometheus_registry)
            except Exception as exc:
                _log.warning("pygents.redis: Prometheus set-up failed: %s", exc)

    # -- set-up ------------------------------------------------------------------------------

    def _setup_otel(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.metrics import Observation
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from pygents import __version__

        self._propagator = TraceContextTextMapPropagator()
        if tracer_provider is not False:
            provider = tracer_provider or trace.get_tracer_provider()
            self._tracer = provider.get_tracer(SCOPE, __version__)
        if meter_provider is False:
            return
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE, __version__)
        for name, unit, _prom, kind, _labels, help_ in METRICS:

            def callback(_options: Any, name: str = name) -> Iterable[Any]:
                return [Observation(v, attrs) for attrs, v in self._series(name)]

            make = (
                meter.create_observable_gauge
                if kind == "gauge"
                else meter.create_observable_counter
            )
            self._instruments.append(make(name, [callback], unit=unit, description=help_))

    def _setup_prometheus(self, registry: Any) -> None:
        from prometheus_client import REGISTRY
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        telemetry = self

        class Collector:
            def collect(self) -> Iterator[Any]:
                for name, _unit, prom, kind, labels, help_ in METRICS:
                    if kind == "counter":
                        family: Any = CounterMetricFamily(prom, help_, labels=labels)
                    else:
                        family = GaugeMetricFamily(prom, help_, labels=labels)
                    for attrs, value in telemetry._series(name):
                        family.add_metric([attrs[k] for k in labels], value)
                    yield family

            def describe(self) -> list[Any]:
                return []

        self._registry = registry or REGISTRY
        self._collector = Collector()
        self._registry.register(self._collector)

    def close(self) -> None:
        """Unregister the Prometheus collector (the OpenTelemetry callbacks go quiet)."""
        if self._collector is not None:
            try:
                self._registry.unregister(self._collector)
            except Exception as exc:
                _log.debug("pygents.redis: unregister failed: %s", exc)
            self._collector = None
        self.depths.clear()
        self.leases = 0

    # -- metrics -----------------------------------------------------------------------------

    def _series(self, name: str) -> list[tuple[dict[str, str], float]]:
        if name == "pygents.redis.queue_depth":
            return [({"agent": a}, float(d)) for a, d in sorted(self.depths.items())]
        if name == "pygents.redis.leases_held":
            return [({}, float(self.leases))] if self._collector or self._instruments else []
        return [({"agent": a}, v) for a, v in sorted(self.counts[name].items())]

    def count(self, name: str, agent: str, amount: float = 1.0) -> None:
        """Add ``amount`` to the counter ``name`` (an OpenTelemetry name) for ``agent``."""
        series = self.counts[name]
        series[agent] = series.get(agent, 0.0) + amount

    # -- spans -------------------------------------------------------------------------------

    def send_span(
        self, destination: str, agent: str, carrier: dict[str, str]
    ) -> AbstractContextManager[Any]:
        """A PRODUCER span around enqueueing; injects its W3C context into ``carrier``."""
        if self._tracer is None:
            return nullcontext()
        return self._span("send", destination, agent, carrier, None, None)

    def process_span(
        self,
        destination: str,
        agent: str,
        incoming: Mapping[str, str],
        carrier: dict[str, str],
        message_id: str,
        delivery: int,
    ) -> AbstractContextManager[Any]:
        """A CONSUMER span, child of the message's context; injects its own into ``carrier``."""
        if self._tracer is None:
            return nullcontext()
        return self._span("process", destination, agent, carrier, incoming, (message_id, delivery))

    @contextmanager
    def _span(
        self,
        operation: str,
        destination: str,
        agent: str,
        carrier: dict[str, str],
        incoming: Mapping[str, str] | None,
        message: tuple[str, int] | None,
    ) -> Iterator[Any]:
        from opentelemetry.trace import SpanKind, set_span_in_context

        attributes: dict[str, Any] = {
            A_SYSTEM: SYSTEM,
            A_OPERATION_NAME: operation,
            A_OPERATION_TYPE: operation,
            A_DESTINATION: destination,
            A_AGENT: agent,
        }
        if self.client_id:
            attributes[A_CLIENT_ID] = self.client_id
        parent = None
        if message is not None:
            attributes[A_GROUP] = "pygents-workers"
            attributes[A_MESSAGE_ID] = message[0]
            attributes[A_DELIVERY] = message[1]
            parent = self._propagator.extract(dict(incoming or {}))
        kind = SpanKind.PRODUCER if operation == "send" else SpanKind.CONSUMER
        with self._tracer.start_as_current_span(
            f"{operation} {destination}", context=parent, kind=kind, attributes=attributes
        ) as span:
            self._propagator.inject(carrier, context=set_span_in_context(span))
            yield span
