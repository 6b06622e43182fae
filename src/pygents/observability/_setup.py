"""``configure()``: a whole telemetry set-up from the standard ``OTEL_*`` variables.

``configure()`` works in three phases, so that a failure leaves nothing behind:

1. check: arguments (``TypeError`` / ``ValueError``), the environment (warnings, defaults),
   the packages it needs (``ImportError``). Nothing is built.
2. build: exporters, then the ``/metrics`` server, then processors, readers and providers
   (these start threads), then the bridge. A failure undoes what was built, in reverse.
3. commit, which cannot fail: the providers become global, processors join a global provider
   that was already there, the handle is registered to run at exit.
"""

from __future__ import annotations

import atexit
import math
import os
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

from ._instrument import instrument, uninstrument
from ._settings import ContentCapture, logger
from ._setup_env import DEFAULT_METRIC_EXPORT_INTERVAL, ExportPlan, read_plan
from ._setup_handle import TelemetryHandle, bounded, closed_providers, quietly

__all__ = ["TelemetryHandle", "configure"]

_GLOBAL_TRACES = (
    "the global tracer provider set up before configure() (e.g. by opentelemetry-instrument)"
)
_GLOBAL_METRICS = (
    "the global meter provider set up before configure() (e.g. by opentelemetry-instrument)"
)


# --------------------------------------------------------------------------- checks


def _check_arguments(
    service_name: Any,
    prometheus_port: Any,
    prometheus_host: Any,
    console_spans: Any,
    capture_content: Any,
    set_global: Any,
    span_exporter: Any,
    metric_export_interval: Any,
    prometheus_registry: Any,
) -> None:
    """Raise ``TypeError`` / ``ValueError`` on a bad argument, before anything is built."""
    if service_name is not None and not isinstance(service_name, str):
        raise TypeError(f"configure(service_name=...) takes a str or None, not {service_name!r}")
    if prometheus_port is not None:
        if isinstance(prometheus_port, bool) or not isinstance(prometheus_port, int):
            raise TypeError(
                f"configure(prometheus_port=...) takes an int or None, not {prometheus_port!r}"
            )
        if not 0 <= prometheus_port <= 65535:
            raise ValueError(
                f"configure(prometheus_port={prometheus_port!r}) is not a TCP port: give "
                f"1..65535, or 0 to pick a free one"
            )
    if not isinstance(prometheus_host, str) or not prometheus_host.strip():
        raise TypeError(
            f"configure(prometheus_host=...) takes an address such as '127.0.0.1', "
            f"not {prometheus_host!r}"
        )
    for name, value in (("console_spans", console_spans), ("set_global", set_global)):
        if not isinstance(value, bool):
            raise TypeError(f"configure({name}=...) takes True or False, not {value!r}")
    if capture_content is not None and not isinstance(capture_content, bool | ContentCapture):
        raise TypeError(
            f"configure(capture_content=...) takes a bool, a ContentCapture or None, "
            f"not {capture_content!r}"
        )
    if span_exporter is not None and not callable(getattr(span_exporter, "export", None)):
        raise TypeError(
            f"configure(span_exporter=...) takes a SpanExporter (with export() and "
            f"shutdown()), not {span_exporter!r}"
        )
    interval = metric_export_interval
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise TypeError(
                f"configure(metric_export_interval=...) takes seconds or None, not {interval!r}"
            )
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(
                f"configure(metric_export_interval={interval!r}): give a number of seconds above 0"
            )
    registry = prometheus_registry
    if registry is not None and registry is not False:
        if registry is True or not callable(getattr(registry, "register", None)):
            raise TypeError(
                f"configure(prometheus_registry=...) takes a prometheus_client "
                f"CollectorRegistry, None (the global one) or False (none), not {registry!r}"
            )


def _import_what_is_needed(plan: ExportPlan, prometheus_port: int | None) -> None:
    """Raise ``ImportError`` now, not halfway through building."""
    import opentelemetry.sdk.metrics
    import opentelemetry.sdk.trace  # noqa: F401

    if prometheus_port is not None:
        import prometheus_client  # noqa: F401
    for signal, plan_of in (("trace", plan.traces), ("metric", plan.metrics)):
        if plan_of.otlp and plan_of.protocol == "grpc":
            __import__(f"opentelemetry.exporter.otlp.proto.grpc.{signal}_exporter")
        elif plan_of.otlp:
            __import__(f"opentelemetry.exporter.otlp.proto.http.{signal}_exporter")


def _global(kind: str) -> tuple[Any, bool]:
    """``(provider, free)``: the global provider to reuse (or None), and whether it can be set.

    A provider set before ``configure()`` (an SDK one, e.g. by ``opentelemetry-instrument``'s
    distro, or any other the program installed) is reused: OpenTelemetry lets a global be
    set only once, and pygents' spans must go where the program's other spans go. One that
    an earlier ``configure()`` built and has shut down is never reused (it drops everything).
    """
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider

    if kind == "tracer":
        provider: Any = trace.get_tracer_provider()
        unset = isinstance(provider, trace.ProxyTracerProvider)
    else:
        provider = metrics.get_meter_provider()
        # The API's proxy has no public class: anything else is set.
        unset = not isinstance(provider, MeterProvider | metrics.NoOpMeterProvider)
    if unset:
        return None, True
    if provider in closed_providers:
        return None, False
    return provider, False


# --------------------------------------------------------------------------- configure()


def configure(
    service_name: str | None = None,
    *,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
    console_spans: bool = False,
    capture_content: bool | ContentCapture | None = None,
    set_global: bool = True,
    span_exporter: Any = None,
    metric_export_interval: float | None = None,
    prometheus_registry: Any = None,
) -> TelemetryHandle:
    """Build OpenTelemetry SDK providers from ``OTEL_*`` variables and instrument pygents.

    Spans go where ``OTEL_TRACES_EXPORTER`` says (``otlp``, ``console``, ``none``, a comma
    list; unset: OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or the traces-specific variable is
    set), over HTTP/protobuf or gRPC per ``OTEL_EXPORTER_OTLP_PROTOCOL``; metrics likewise
    with ``OTEL_METRICS_EXPORTER``. A value it does not know is ignored with a warning naming
    the variable. Export failures are logged once and never stop the program.

    With ``set_global`` (the default), a tracer or meter provider that is already global (as
    under ``opentelemetry-instrument``) is used instead of a new one, and logged at INFO:
    its own exporters carry pygents' telemetry, and the handle says so.

    Everything is checked before anything is built, and a failure undoes what was built: no
    provider, thread, server or hook is left behind.

    Args:
        service_name: ``service.name`` (default: ``OTEL_SERVICE_NAME``, else "pygents").
        prometheus_port: serve ``/metrics`` on this port (0 picks a free one).
        prometheus_host: the address to bind; loopback unless told otherwise.
        console_spans: also print spans to stdout.
        capture_content: see ``instrument()``.
        set_global: install the providers as the global OpenTelemetry providers, or use
            those already installed.
        span_exporter: an extra span exporter (e.g. in-memory, for tests).
        metric_export_interval: seconds between OTLP metric exports (default:
            ``OTEL_METRIC_EXPORT_INTERVAL``, in milliseconds, else 10).
        prometheus_registry: the ``CollectorRegistry`` for the Prometheus metrics (and the
            ``/metrics`` endpoint); None for ``prometheus_client.REGISTRY``; False for none.

    Returns:
        A handle; ``shutdown()`` (or leaving ``with configure(...)``) flushes everything.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an argument out of range (a port outside 0..65535, an interval <= 0).
        ImportError: the OpenTelemetry SDK (or ``prometheus_client`` for a port) is missing.
        OSError: ``/metrics`` cannot be served on that port.
    """
    _check_arguments(
        service_name,
        prometheus_port,
        prometheus_host,
        console_spans,
        capture_content,
        set_global,
        span_exporter,
        metric_export_interval,
        prometheus_registry,
    )
    tracer = _global("tracer") if set_global else (None, False)
    meter = _global("meter") if set_global else (None, False)
    plan = read_plan(traces=tracer[0] is None, metrics=meter[0] is None)
    _import_what_is_needed(plan, prometheus_port)
    return _Build(plan, service_name, set_global, tracer, meter).run(
        prometheus_port=prometheus_port,
        prometheus_host=prometheus_host,
        console_spans=console_spans,
        capture_content=capture_content,
        span_exporter=span_exporter,
        metric_export_interval=metric_export_interval,
        prometheus_registry=prometheus_registry,
    )


def _resource_service_name() -> str | None:
    """``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` (``key=value`` pairs, percent-encoded)."""
    for pair in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == "service.name" and value.strip():
            return unquote(value.strip())
    return None


class _Build:
    """One ``configure()`` call's build phase: what it made, and how to undo it."""

    def __init__(
        self,
        plan: ExportPlan,
        service_name: str | None,
        set_global: bool,
        tracer: tuple[Any, bool],
        meter: tuple[Any, bool],
    ) -> None:
        self.plan = plan
        self.name = (
            service_name
            or os.environ.get("OTEL_SERVICE_NAME")
            or _resource_service_name()
            or "pygents"
        )
        self.set_global = set_global
        #: A provider already global to reuse (or None), and whether ours may become global.
        self.global_tracer, self.tracer_free = tracer
        self.global_meter, self.meter_free = meter
        #: Undo steps by the id of what they undo, in build order; an exporter's step goes
        #: when a processor or reader takes the exporter over (and shuts it down itself).
        self.undo: dict[int, Callable[[], Any]] = {}

    def on_failure(self, made: Any, step: Callable[[], Any]) -> None:
        """Register ``step`` to undo ``made`` if configure() fails."""
        self.undo[id(made)] = step

    def run(
        self,
        *,
        prometheus_port: int | None,
        prometheus_host: str,
        console_spans: bool,
        capture_content: bool | ContentCapture | None,
        span_exporter: Any,
        metric_export_interval: float | None,
        prometheus_registry: Any,
    ) -> TelemetryHandle:
        from opentelemetry import metrics

        registry = _prometheus_registry(prometheus_registry, self.global_meter)
        served = prometheus_registry or None  # None: prometheus_client.REGISTRY
        if registry is None and prometheus_registry is None and prometheus_port is not None:
            # A reused meter provider carries pygents' OpenTelemetry metrics (and may put
            # them on prometheus_client.REGISTRY itself), but the /metrics asked for here
            # must carry them too: the Prometheus pipeline on a registry of its own, which
            # that endpoint serves (no family twice in any registry).
            from prometheus_client import CollectorRegistry

            registry = served = CollectorRegistry()
        try:
            span_exporters, destinations = self._span_exporters(console_spans, span_exporter)
            metric_exporters = self._metric_exporters()
            server = self._server(prometheus_port, prometheus_host, served)
            tracer_provider, processors = self._tracer_provider(span_exporters)
            interval = (
                metric_export_interval
                or self.plan.metric_export_interval
                or DEFAULT_METRIC_EXPORT_INTERVAL
            )
            meter_provider = self._meter_provider(metric_exporters, interval)
            self.on_failure(uninstrument, uninstrument)
            instrument(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider
                if meter_provider is not None
                else metrics.NoOpMeterProvider(),
                prometheus_registry=registry if registry is not None else False,
                capture_content=capture_content,
            )
        except BaseException:
            self._undo()
            raise
        return self._commit(
            tracer_provider,
            meter_provider,
            server,
            processors,
            destinations,
            registry,
        )

    # -- build steps: each registers its undo ---------------------------------------------

    def _span_exporters(
        self, console_spans: bool, extra: Any
    ) -> tuple[list[tuple[Any, bool]], tuple[str, ...]]:
        """``[(exporter, synchronous)]`` and where they send spans, in words."""
        from ._setup_export import console_span_exporter, span_exporter

        traces = self.plan.traces
        found: list[tuple[Any, bool]] = []
        where: list[str] = []
        if self.global_tracer is not None:
            # Its owner read OTEL_TRACES_EXPORTER already: only what the caller passed is added.
            where.append(_GLOBAL_TRACES)
        else:
            if traces.otlp:
                exporter = span_exporter(traces)
                self.on_failure(exporter, exporter.shutdown)
                found.append((exporter, False))
            where.extend(traces.destinations())
        if console_spans and not (self.global_tracer is None and traces.console):
            where.append("the console")
        if console_spans or (self.global_tracer is None and traces.console):
            found.append((console_span_exporter(), True))
        if extra is not None:
            found.append((extra, False))
            where.append(type(extra).__name__)
        return found, tuple(where)

    def _metric_exporters(self) -> list[Any]:
        if self.global_meter is not None:
            return []
        from ._setup_export import metric_exporters

        found = metric_exporters(self.plan.metrics)
        for exporter in found:
            self.on_failure(exporter, exporter.shutdown)
        return found

    def _server(self, port: int | None, host: str, registry: Any) -> Any:
        if port is None:
            return None
        from ._prometheus import start_metrics_server

        server = start_metrics_server(port, host, registry)

        def close() -> None:
            server[0].shutdown()
            server[0].server_close()
            server[1].join(5)

        self.on_failure(server, close)
        return server

    def _tracer_provider(self, exporters: list[tuple[Any, bool]]) -> tuple[Any, list[Any]]:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        from ._setup_export import batch_processor

        processors = []
        for exporter, synchronous in exporters:
            processor = (
                SimpleSpanProcessor(exporter)
                if synchronous
                else batch_processor(exporter, self.plan.batch)
            )
            self.undo.pop(id(exporter), None)  # the processor shuts it down
            self.on_failure(processor, processor.shutdown)
            processors.append(processor)
        if self.global_tracer is not None:
            return self.global_tracer, processors  # the processors join it at commit
        # The handle flushes at exit (atexit), so the SDK's own exit hook is not needed:
        # with both, a shutdown that already ran would be attempted again and warn.
        provider = TracerProvider(
            resource=Resource.create({"service.name": self.name}), shutdown_on_exit=False
        )
        for processor in processors:
            provider.add_span_processor(processor)
        return provider, []

    def _meter_provider(self, exporters: list[Any], interval: float) -> Any:
        if self.global_meter is not None:
            return self.global_meter
        if not exporters:
            return None
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        # A reader's ticker thread starts in its constructor and its first collect() warns
        # if the reader is not yet on a provider: nothing slow (Resource.create loads the
        # resource detectors' entry points) may run between the two.
        resource = Resource.create({"service.name": self.name})
        readers = []
        for exporter in exporters:
            reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000)
            self.undo.pop(id(exporter), None)  # the reader shuts it down
            self.on_failure(reader, partial(reader.shutdown, timeout_millis=1_000))
            readers.append(reader)
        return MeterProvider(
            resource=resource,
            metric_readers=readers,
            shutdown_on_exit=False,
        )

    def _undo(self) -> None:
        """Undo the build steps in reverse, within a few seconds whatever the exporters do."""

        def undo_all() -> None:
            for step in reversed(list(self.undo.values())):
                quietly(step, "undoing configure()")

        bounded(undo_all, 5.0)

    # -- commit: nothing here can fail ----------------------------------------------------

    def _commit(
        self,
        tracer_provider: Any,
        meter_provider: Any,
        server: Any,
        processors: list[Any],
        span_destinations: tuple[str, ...],
        registry: Any,
    ) -> TelemetryHandle:
        from opentelemetry import metrics, trace

        from ._setup_export import DetachableProcessor, quiet_export_loggers

        quiet_export_loggers()
        added = tuple(DetachableProcessor(p) for p in processors)
        for processor in added:
            tracer_provider.add_span_processor(processor)
        if self.global_tracer is not None:
            logger.info(
                "pygents configure(): using the tracer provider that was already global "
                "(%s): pygents spans go to its exporters, under its resource (service.name); "
                "configure() builds no exporter from the OTEL_* variables",
                type(tracer_provider).__name__,
            )
        else:
            self._make_global("tracer", tracer_provider, trace.set_tracer_provider)
        metric_destinations: tuple[str, ...] = ()
        if self.global_meter is not None:
            metric_destinations = (_GLOBAL_METRICS,)
            logger.info(
                "pygents configure(): using the meter provider that was already global (%s): "
                "pygents' OpenTelemetry metrics go to its readers; OTEL_METRICS_EXPORTER and "
                "metric_export_interval are left to whoever set it up",
                type(meter_provider).__name__,
            )
        elif meter_provider is not None:
            metric_destinations = self.plan.metrics.destinations()
            self._make_global("meter", meter_provider, metrics.set_meter_provider)
        handle = TelemetryHandle(
            tracer_provider,
            meter_provider,
            server,
            reused_tracer_provider=self.global_tracer is not None,
            reused_meter_provider=self.global_meter is not None,
            span_destinations=span_destinations,
            metric_destinations=metric_destinations,
            prometheus_registry=registry,
            added_processors=added,
        )
        atexit.register(handle.shutdown)
        return handle

    def _make_global(self, kind: str, provider: Any, setter: Callable[[Any], None]) -> None:
        if not self.set_global:
            return
        if self.tracer_free if kind == "tracer" else self.meter_free:
            setter(provider)
            return
        logger.warning(
            "pygents configure(): the global %s provider was built by an earlier configure() "
            "and is shut down; OpenTelemetry lets it be set only once, so this one is not "
            "global (pygents' telemetry goes to it; other libraries' still to the old one)",
            kind,
        )


def _prometheus_registry(prometheus_registry: Any, global_meter: Any) -> Any:
    """The registry for the Prometheus pipeline, or None when it does not run.

    ``instrument()`` runs one metric pipeline per signal unless both are named. The meter
    provider configure() builds exports over OTLP or to the console, never to a Prometheus
    registry, so both pipelines run side by side: ``/metrics`` keeps pygents' families
    whatever ``OTEL_METRICS_EXPORTER`` says. A provider that was already global may carry a
    ``PrometheusMetricReader`` on the same registry: then the registry is used only when
    the caller names one, else the OpenTelemetry instruments alone carry the metrics.
    """
    if prometheus_registry is False:
        return None
    if prometheus_registry is not None:
        return prometheus_registry
    from opentelemetry.metrics import NoOpMeterProvider

    if global_meter is not None and not isinstance(global_meter, NoOpMeterProvider):
        return None
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return None
    return REGISTRY
