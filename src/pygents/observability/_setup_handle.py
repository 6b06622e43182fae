"""``TelemetryHandle``: what ``configure()`` built or reused, and how to stop it."""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

from ._instrument import uninstrument
from ._settings import logger, warn_once

__all__ = ["TelemetryHandle", "bounded", "closed_providers", "quietly"]

#: Providers that a handle has shut down: a later configure() never reuses them.
closed_providers: weakref.WeakSet[Any] = weakref.WeakSet()


class TelemetryHandle:
    """What ``configure()`` built or reused; ``shutdown()`` flushes and stops it all.

    Attributes:
        tracer_provider: the provider pygents' spans go to.
        meter_provider: the provider pygents' OpenTelemetry metrics go to, or None.
        metrics_server: ``(server, thread)`` serving ``/metrics``, or None.
        reused_tracer_provider: True when an SDK tracer provider was already global (e.g.
            under ``opentelemetry-instrument``) and ``configure()`` used it instead of
            building one. ``shutdown()`` then flushes it but leaves it running.
        reused_meter_provider: the same for the meter provider.
        span_destinations: where spans go, in words, credentials in endpoints redacted.
        metric_destinations: where OpenTelemetry metrics go, likewise.
        prometheus_registry: the registry pygents' Prometheus metrics are on, or None.
        final_metrics: None until ``shutdown()``; then a ``CollectorRegistry`` holding the
            last values of every ``pygents_*`` family, readable after the bridge is gone.
    """

    def __init__(
        self,
        tracer_provider: Any,
        meter_provider: Any,
        metrics_server: Any = None,
        *,
        reused_tracer_provider: bool = False,
        reused_meter_provider: bool = False,
        span_destinations: tuple[str, ...] = (),
        metric_destinations: tuple[str, ...] = (),
        prometheus_registry: Any = None,
        added_processors: tuple[Any, ...] = (),
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.metrics_server = metrics_server
        self.reused_tracer_provider = reused_tracer_provider
        self.reused_meter_provider = reused_meter_provider
        self.span_destinations = span_destinations
        self.metric_destinations = metric_destinations
        self.prometheus_registry = prometheus_registry
        self.final_metrics: CollectorRegistry | None = None
        self._added_processors = added_processors
        self._closed = False
        self._finished = True  # what shutdown() returned (a second call returns it again)

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` is served on, if any."""
        if self.metrics_server is None:
            return None
        port: int = self.metrics_server[0].server_address[1]
        return port

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export what is buffered; return False if it did not finish within ``timeout`` s."""
        millis = int(timeout * 1000)
        return bounded(lambda: self._each(lambda p: p.force_flush(millis), "force_flush"), timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop exporters and the metrics server; return within ``timeout`` s.

        The last values of the Prometheus metrics stay readable in ``final_metrics``. A
        provider that was reused (already global) is flushed, not stopped: it belongs to
        whoever set it up.

        Returns:
            True if everything shut down in time, False if an exporter was still stuck
            (its daemon thread is abandoned; the process can still exit). A second call does
            nothing and returns what the first returned.
        """
        if self._closed:
            return self._finished
        self._closed = True
        atexit.unregister(self.shutdown)
        deadline = time.monotonic() + timeout
        self.final_metrics = _snapshot(self.prometheus_registry)
        # Metrics before the bridge goes: its observable instruments (read at collection)
        # leave with it, and the last export must still see them. Spans after: removing the
        # bridge ends the spans still open, and the last export must carry them.
        finished = bounded(lambda: self._stop_metrics(_millis_until(deadline)), timeout)
        uninstrument()
        if self.metrics_server is not None:
            server, thread = self.metrics_server
            server.shutdown()
            server.server_close()
            thread.join(max(0.0, deadline - time.monotonic()))
        remaining = max(0.0, deadline - time.monotonic())
        finished = finished and bounded(
            lambda: self._stop_traces(_millis_until(deadline)), remaining
        )
        self._finished = finished
        if not finished:
            warn_once(
                "flush",
                "pygents telemetry: flushing did not finish within %.1f s (is the OTLP endpoint "
                "reachable?); spans still buffered may be lost",
                timeout,
            )
        return finished

    def _stop_metrics(self, millis: int) -> None:
        if self.meter_provider is None:
            return
        if self.reused_meter_provider:
            quietly(lambda: self.meter_provider.force_flush(millis), "force_flush")
        else:
            closed_providers.add(self.meter_provider)
            quietly(lambda: self.meter_provider.shutdown(timeout_millis=millis), "shutdown")

    def _stop_traces(self, millis: int) -> None:
        for processor in self._added_processors:
            quietly(processor.shutdown, "shutdown")
        if self.tracer_provider is None:
            return
        if self.reused_tracer_provider:
            quietly(lambda: self.tracer_provider.force_flush(millis), "force_flush")
        else:
            closed_providers.add(self.tracer_provider)
            quietly(self.tracer_provider.shutdown, "shutdown")

    def _each(self, call: Callable[[Any], Any], what: str) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                quietly(partial(call, provider), what)

    def __enter__(self) -> TelemetryHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _millis_until(deadline: float) -> int:
    return max(1, int((deadline - time.monotonic()) * 1000))


def quietly(call: Callable[[], Any], what: str) -> None:
    try:
        call()
    except Exception as exc:
        logger.warning("pygents telemetry: %s failed: %s", what, exc)


def bounded(work: Callable[[], None], timeout: float) -> bool:
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=run, name="pygents-telemetry-shutdown", daemon=True).start()
    return done.wait(timeout)


class _FrozenFamilies:
    """A ``prometheus_client`` collector that yields families collected once."""

    def __init__(self, families: list[Any]) -> None:
        self._families = families

    def collect(self) -> Iterator[Any]:
        return iter(self._families)


def _snapshot(registry: Any) -> CollectorRegistry | None:
    """Copy the ``pygents_*`` families of ``registry`` into a registry of their own."""
    if registry is None:
        return None
    from prometheus_client import CollectorRegistry

    try:
        families = [f for f in registry.collect() if f.name.startswith("pygents_")]
    except Exception as exc:  # a user collector that fails: keep what we can say
        logger.warning("pygents telemetry: could not keep the final metrics: %s", exc)
        families = []
    frozen = CollectorRegistry()
    frozen.register(_FrozenFamilies(families))  # type: ignore[arg-type]
    return frozen
