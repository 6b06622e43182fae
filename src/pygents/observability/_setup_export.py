"""The export side of ``configure()``: OTLP and console exporters, failures logged once.

Imports the OpenTelemetry SDK: ``_setup`` imports this module only inside ``configure()``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._settings import warn_once
from ._setup_env import BatchSettings, SignalPlan

__all__ = [
    "DetachableProcessor",
    "batch_processor",
    "metric_exporters",
    "quiet_export_loggers",
    "span_exporter",
]

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


def quiet_export_loggers() -> None:
    """Let the export pipeline's loggers report data loss once and stay quiet otherwise."""
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


def span_exporter(plan: SignalPlan) -> Any:
    """The OTLP span exporter for ``plan.protocol`` (it reads endpoint, headers... itself)."""
    if plan.protocol == "grpc":
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


def metric_exporters(plan: SignalPlan) -> list[Any]:
    """The metric exporters ``plan`` asks for (OTLP, console)."""
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExportResult

    found: list[Any] = []
    if plan.otlp:
        if plan.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                OTLPMetricExporter,
            )
        found.append(
            _FailureReporting(
                OTLPMetricExporter(),
                "metrics",
                MetricExportResult.SUCCESS,
                MetricExportResult.FAILURE,
            )
        )
    if plan.console:
        found.append(ConsoleMetricExporter(out=sys.stdout))
    return found


def batch_processor(exporter: Any, settings: BatchSettings) -> Any:
    """A ``BatchSpanProcessor`` with every setting explicit (the SDK re-reads nothing)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(
        exporter,
        max_queue_size=settings.max_queue_size,
        schedule_delay_millis=settings.schedule_delay_millis,
        max_export_batch_size=settings.max_export_batch_size,
        export_timeout_millis=settings.export_timeout_millis,
    )


class DetachableProcessor(SpanProcessor):
    """A span processor added to a provider ``configure()`` does not own.

    The SDK cannot remove a processor from a provider; after ``detach()`` this one forwards
    nothing, so a closed handle leaves the global provider as it found it. (The inner
    processors are the SDK's batch and simple ones, whose ``_on_ending`` does nothing.)
    """

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self._attached = True

    def detach(self) -> None:
        """Stop forwarding spans to the inner processor."""
        self._attached = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Forward to the inner processor while attached."""
        if self._attached:
            self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Forward to the inner processor while attached."""
        if self._attached:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        """Detach, and shut the inner processor down."""
        self._attached = False
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner processor."""
        return self.inner.force_flush(timeout_millis)
