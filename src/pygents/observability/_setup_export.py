"""The export side of ``configure()``: the exporters it builds, each failure logged once.

Every exporter ``configure()`` drives (OTLP, console, the caller's ``span_exporter``) is wrapped
by ``_FailureReporting``: its first failure is logged once per signal, by pygents. What the
OpenTelemetry export pipeline logs meanwhile is made redundant by that warning, so a filter on
the SDK's and OTLP exporters' loggers drops it, but only what is logged on the thread of one of
these exports, while it runs: every other pipeline of the process logs as it always does.

Imports the OpenTelemetry SDK: ``_setup`` imports this module only inside ``configure()``.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import FrameType
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ._settings import first_time, warn_once
from ._setup_env import BatchSettings, SignalPlan, redact_text

__all__ = [
    "DetachableProcessor",
    "batch_processor",
    "console_span_exporter",
    "metric_exporters",
    "quiet_export_loggers",
    "reporting",
    "span_exporter",
]

#: Loggers of the OpenTelemetry export pipeline whose messages our warnings make redundant.
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

#: Whether the current thread is inside the export() of one of configure()'s exporters.
_inside = threading.local()
#: How far up the stack a drop message is traced to the processor that logged it.
_DROP_DEPTH = 12


def _exporting() -> bool:
    exporting: bool = getattr(_inside, "exporting", False)
    return exporting


def _logged_by_our_processor() -> bool:
    """True when the record being logged comes from a batch processor configure() built.

    The SDK logs a drop in the processor's ``on_end``, on the thread that ends the span:
    looking up the stack on that (rare) record costs the span path nothing.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_DROP_DEPTH):
        if frame is None:
            return False
        if isinstance(frame.f_locals.get("self"), _ConfiguredBatchSpanProcessor):
            return True
        frame = frame.f_back
    return False


class _ExportFailureFilter(logging.Filter):
    """Drop what our own export pipeline logs while it exports: ``_FailureReporting`` says it.

    Without this, a dead collector makes the OTLP exporters and processors log every failed
    batch and every retry. Only records of configure()'s own pipeline are touched: those
    logged on a thread inside one of its exports, and its batch processors' drop messages.
    A message about lost data (e.g. "Queue full, dropping Span.") is kept, once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exporting = _exporting()
        message = str(record.msg)
        if "drop" in message.lower() and (exporting or _logged_by_our_processor()):
            return first_time(f"drop:{record.name}:{message}")
        if exporting and getattr(_inside, "cause", None) is None:
            # The exporter's own word on why (a status code, a connection error): the
            # failure warning quotes the first one instead of the bare failure result.
            try:
                cause = record.getMessage()
            except Exception:  # a record whose arguments do not format
                cause = message
            _inside.cause = redact_text(cause)  # it may quote the endpoint's query
        return not exporting  # not one of our exports: never touched


_export_filter = _ExportFailureFilter()


def quiet_export_loggers() -> None:
    """Install the filter on the export pipeline's loggers (idempotent).

    It stays installed: outside ``configure()``'s own exports it lets everything through, and
    an export a closed handle abandoned (stuck on a hanging collector) stays quiet too.
    """
    for name in _EXPORT_LOGGERS:
        target = logging.getLogger(name)
        if _export_filter not in target.filters:
            target.addFilter(_export_filter)


class _FailureReporting:
    """Wraps an exporter: its first failing export is logged, once per signal.

    A failure is an export that raises or returns the failure result; anything else (success,
    or a custom exporter's ``None``) is not.
    """

    def __init__(self, inner: Any, signal: str, failure: Any) -> None:
        self._inner = inner
        self._signal = signal
        self._failure = failure

    def export(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        outer = _exporting()
        outer_cause = getattr(_inside, "cause", None)
        _inside.exporting = True
        _inside.cause = None
        try:
            result = self._inner.export(batch, *args, **kwargs)
        except Exception as exc:
            result = self._failure
            reason = redact_text(f"{type(exc).__name__}: {exc}")
        else:
            reason = _inside.cause or str(result)
        finally:
            _inside.exporting = outer
            _inside.cause = outer_cause
        if result is self._failure:
            warn_once(
                f"export:{self._signal}",
                "pygents telemetry: exporting %s with %s failed (%s); the program goes on, and "
                "further failures to export %s are not logged",
                self._signal,
                type(self._inner).__name__,
                reason,
                self._signal,
            )
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def reporting(exporter: Any, signal: str) -> Any:
    """Wrap ``exporter`` so that its first failure is logged once (``signal``: spans, metrics).

    An exporter already wrapped is returned as it is.
    """
    if isinstance(exporter, _FailureReporting):
        return exporter
    if signal == "spans":
        from opentelemetry.sdk.trace.export import SpanExportResult

        return _FailureReporting(exporter, signal, SpanExportResult.FAILURE)
    from opentelemetry.sdk.metrics.export import MetricExportResult

    return _FailureReporting(exporter, signal, MetricExportResult.FAILURE)


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
    return reporting(OTLPSpanExporter(), "spans")


def console_span_exporter() -> Any:
    """A console span exporter on ``sys.stdout`` as it is now, its failure logged once.

    (The SDK's default binds the ``sys.stdout`` of its import time.)
    """
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return reporting(ConsoleSpanExporter(out=sys.stdout), "spans")


def metric_exporters(plan: SignalPlan) -> list[Any]:
    """The metric exporters ``plan`` asks for (OTLP, console), each failure logged once."""
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

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
        found.append(reporting(OTLPMetricExporter(), "metrics"))
    if plan.console:
        found.append(reporting(ConsoleMetricExporter(out=sys.stdout), "metrics"))
    return found


class _ConfiguredBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` that ``configure()`` built: its drop message is logged once.

    The class only names it (see ``_logged_by_our_processor``); it changes no method, so the
    span path and the fast span path see the SDK's processor.
    """


def batch_processor(exporter: Any, settings: BatchSettings) -> Any:
    """A ``BatchSpanProcessor`` with every setting explicit (the SDK re-reads nothing).

    ``exporter`` is wrapped to log its first failure once, if it is not already (the caller's
    ``span_exporter``).
    """
    return _ConfiguredBatchSpanProcessor(
        reporting(exporter, "spans"),
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
