"""``configure()``: a whole telemetry set-up from the standard ``OTEL_*`` variables."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from types import TracebackType
from typing import Any

from ._instrument import instrument, uninstrument
from ._settings import ContentCapture, logger, warn_once

__all__ = ["TelemetryHandle", "configure"]

#: Loggers of the OpenTelemetry export pipeline whose repeated failures we log only once.
_EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk._shared_internal",
)


class _ExportFailureFilter(logging.Filter):
    """Drop the export pipeline's own warnings: ``_FailureReporting`` logs one instead.

    Without this, a dead collector makes the OTLP exporters and processors log every failed
    batch and every retry.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = str(record.msg)
        if "drop" in message.lower():
            # Data lost inside the SDK (e.g. "Queue full, dropping Span."): say it, once.
            key = (record.name, message)
            if key not in self._seen:
                self._seen.add(key)
                return True
        return False


_export_filter = _ExportFailureFilter()


def _quiet_export_loggers() -> None:
    for name in _EXPORT_LOGGERS:
        target = logging.getLogger(name)
        if _export_filter not in target.filters:
            target.addFilter(_export_filter)


class _FailureReporting:
    """Wraps an exporter: the first failing export is logged (once for all signals)."""

    def __init__(self, inner: Any, what: str, success: Any, failure: Any) -> None:
        self._inner = inner
        self._what = what
        self._success = success
        self._failure = failure

    def export(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self._inner.export(batch, *args, **kwargs)
        except Exception as exc:
            result = self._failure
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = str(result)
        if result is not self._success:
            warn_once(
                "export",
                "pygents telemetry: exporting %s to the OTLP endpoint failed (%s); the program "
                "goes on, and further export failures are not logged",
                self._what,
                reason,
            )
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


#: The batch span queue. The SDK's default (2,048) drops spans when an agent runs thousands
#: of fast turns between two exports; OTEL_BSP_MAX_QUEUE_SIZE still wins when set.
_DEFAULT_SPAN_QUEUE = 65_536


def _queue_size() -> int | None:
    return None if os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE") else _DEFAULT_SPAN_QUEUE


def _otlp_endpoint(signal: str) -> str | None:
    """The OTLP endpoint of a signal, unless ``OTEL_<signal>_EXPORTER`` rules OTLP out."""
    exporters = os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower()
    if "otlp" not in {part.strip() for part in exporters.split(",")}:
        return None
    return os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def _protocol(signal: str) -> str:
    value = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    return value.strip().lower()


def _span_exporter() -> Any:
    if _protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    from opentelemetry.sdk.trace.export import SpanExportResult

    return _FailureReporting(
        OTLPSpanExporter(), "spans", SpanExportResult.SUCCESS, SpanExportResult.FAILURE
    )


def _metric_exporter() -> Any:
    if _protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
    from opentelemetry.sdk.metrics.export import MetricExportResult

    return _FailureReporting(
        OTLPMetricExporter(), "metrics", MetricExportResult.SUCCESS, MetricExportResult.FAILURE
    )


class TelemetryHandle:
    """What ``configure()`` built; ``shutdown()`` flushes and stops it all."""

    def __init__(
        self, tracer_provider: Any, meter_provider: Any, metrics_server: Any = None
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.metrics_server = metrics_server
        self._closed = False

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` is served on, if any."""
        if self.metrics_server is None:
            return None
        port: int = self.metrics_server[0].server_address[1]
        return port

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export what is buffered; return False if it did not finish within ``timeout`` s."""
        return self._bounded(lambda: self._each("force_flush", int(timeout * 1000)), timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop exporters and the metrics server; return within ``timeout`` s.

        Returns:
            True if everything shut down in time, False if an exporter was still stuck
            (its daemon thread is abandoned; the process can still exit).
        """
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self.shutdown)
        uninstrument()
        if self.metrics_server is not None:
            server, thread = self.metrics_server
            server.shutdown()
            server.server_close()
            thread.join(timeout)
        finished = self._bounded(lambda: self._each("shutdown"), timeout)
        if not finished:
            warn_once(
                "export",
                "pygents telemetry: flushing did not finish within %.1f s (is the OTLP endpoint "
                "reachable?); spans still buffered may be lost",
                timeout,
            )
        return finished

    def _each(self, method: str, *args: Any) -> None:
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                try:
                    if method == "shutdown" and provider is self.meter_provider:
                        provider.shutdown(timeout_millis=int(args[0]) if args else 30_000)
                    else:
                        getattr(provider, method)(*args)
                except Exception as exc:
                    logger.warning("pygents telemetry: %s failed: %s", method, exc)

    @staticmethod
    def _bounded(work: Any, timeout: float) -> bool:
        done = threading.Event()

        def run() -> None:
            try:
                work()
            finally:
                done.set()

        threading.Thread(target=run, name="pygents-telemetry-shutdown", daemon=True).start()
        return done.wait(timeout)

    def __enter__(self) -> TelemetryHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def configure(
    service_name: str | None = None,
    *,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
    console_spans: bool = False,
    capture_content: bool | ContentCapture | None = None,
    set_global: bool = True,
    span_exporter: Any = None,
    metric_export_interval: float = 10.0,
    prometheus_registry: Any = None,
) -> TelemetryHandle:
    """Build OpenTelemetry SDK providers from ``OTEL_*`` variables and instrument pygents.

    Spans go to OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific variable)
    is set, over HTTP/protobuf or gRPC per ``OTEL_EXPORTER_OTLP_PROTOCOL``; metrics likewise.
    Export failures are logged once and never stop the program.

    Args:
        service_name: ``service.name`` (default: ``OTEL_SERVICE_NAME``, else "pygents").
        prometheus_port: serve ``/metrics`` on this port (0 picks a free one).
        prometheus_host: the address to bind; loopback unless told otherwise.
        console_spans: also print spans to stdout.
        capture_content: see ``instrument()``.
        set_global: also install the providers as the global OpenTelemetry providers.
        span_exporter: an extra span exporter (e.g. in-memory, for tests).
        metric_export_interval: seconds between OTLP metric exports.
        prometheus_registry: the ``CollectorRegistry`` for the Prometheus metrics (and the
            ``/metrics`` endpoint); None for ``prometheus_client.REGISTRY``; False for none.

    Returns:
        A handle; ``shutdown()`` (or leaving ``with configure(...)``) flushes everything.
    """
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    _quiet_export_loggers()
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "pygents"
    resource = Resource.create({"service.name": name})
    # The handle flushes at exit (atexit below), so the SDK's own exit hook is not needed:
    # with both, a shutdown that already ran would be attempted again and warn.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    if _otlp_endpoint("TRACES"):
        tracer_provider.add_span_processor(
            BatchSpanProcessor(_span_exporter(), max_queue_size=_queue_size())
        )
    if console_spans:
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if span_exporter is not None:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(span_exporter, max_queue_size=_queue_size())
        )
    readers = []
    if _otlp_endpoint("METRICS"):
        readers.append(
            PeriodicExportingMetricReader(
                _metric_exporter(), export_interval_millis=metric_export_interval * 1000
            )
        )
    meter_provider = (
        MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
        if readers
        else None
    )
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        if meter_provider is not None:
            metrics.set_meter_provider(meter_provider)
    server = None
    if prometheus_port is not None:
        from ._prometheus import start_metrics_server

        server = start_metrics_server(prometheus_port, prometheus_host, prometheus_registry or None)
    instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider
        if meter_provider is not None
        else metrics.NoOpMeterProvider(),
        prometheus_registry=prometheus_registry,
        capture_content=capture_content,
    )
    handle = TelemetryHandle(tracer_provider, meter_provider, server)
    atexit.register(handle.shutdown)
    return handle
