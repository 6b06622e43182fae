"""``instrument()`` / ``uninstrument()``: install or remove the telemetry bridge."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from ._bridge import Bridge
from ._semconv import INSTRUMENTATION_NAME, SCHEMA_URL
from ._settings import ContentCapture, logger
from ._store import MetricStore

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_bridge: Bridge | None = None
_prometheus: Any = None
_key: tuple[Any, ...] | None = None
_automatic = False
#: One OtelMetrics per meter provider: its instruments (and callbacks) live as long as it.
_otel_by_provider: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _version() -> str:
    from pygents import __version__

    return __version__


def _make_tracer(tracer_provider: Any) -> Any | None:
    if tracer_provider is False:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if isinstance(provider, trace.NoOpTracerProvider):
        return None  # nothing would be recorded: do not pay for the hooks
    return provider.get_tracer(INSTRUMENTATION_NAME, _version(), schema_url=SCHEMA_URL)


def _make_otel_metrics(meter_provider: Any, store: MetricStore) -> Any | None:
    if meter_provider is False:
        return None
    try:
        from opentelemetry import metrics
    except ImportError:
        return None
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    if isinstance(provider, metrics.NoOpMeterProvider):
        return None
    from ._metrics import OtelMetrics

    existing = _otel_by_provider.get(provider)
    if existing is not None:
        existing.attach(store)
        return existing
    meter = provider.get_meter(INSTRUMENTATION_NAME, _version(), schema_url=SCHEMA_URL)
    made = OtelMetrics(meter, store)
    try:
        _otel_by_provider[provider] = made
    except TypeError:  # a provider that cannot be weakly referenced: no reuse
        pass
    return made


def _make_prometheus(registry: Any, store: MetricStore) -> Any | None:
    if registry is False:
        return None
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return None
    from ._prometheus import register_collector

    target = registry if registry is not None else REGISTRY
    try:
        collector = register_collector(store, target)
    except ValueError as exc:  # "Duplicated timeseries": someone registered our names
        logger.warning("pygents telemetry: Prometheus metrics not registered: %s", exc)
        return None
    return (target, collector)


def instrument(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    prometheus_registry: Any = None,
    capture_content: bool | ContentCapture | None = None,
) -> bool:
    """Bridge every pygents hook into OpenTelemetry spans and metrics and Prometheus metrics.

    Idempotent: calling it again with the same arguments does nothing; with different
    arguments it re-instruments. Either half works without the other package installed.

    Args:
        tracer_provider: where spans go; None for the global provider. False, or a
            ``NoOpTracerProvider``, switches spans off entirely (no hooks, no cost).
        meter_provider: where OpenTelemetry metrics go; None for the global provider; False
            or a ``NoOpMeterProvider`` switches them off.
        prometheus_registry: the ``CollectorRegistry`` for the Prometheus metrics; None for
            ``prometheus_client.REGISTRY``; False for no Prometheus metrics.
        capture_content: record tool arguments and results on spans (off by default; None
            reads ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``). A
            ``ContentCapture`` sets truncation and a redaction callback.

    Returns:
        True if the bridge is installed (something will be recorded), else False.
    """
    return _install(tracer_provider, meter_provider, prometheus_registry, capture_content, False)


def _install(
    tracer_provider: Any,
    meter_provider: Any,
    prometheus_registry: Any,
    capture_content: Any,
    automatic: bool,
) -> bool:
    global _bridge, _prometheus, _key, _automatic
    key = (tracer_provider, meter_provider, prometheus_registry, capture_content)
    with _lock:
        if _key is not None:
            if automatic or (not _automatic and _key == key):
                return _bridge is not None
            _uninstall()
        tracer = _make_tracer(tracer_provider)
        store = MetricStore()
        prometheus = _make_prometheus(prometheus_registry, store)
        otel_metrics = _make_otel_metrics(meter_provider, store)
        _key = key
        _automatic = automatic
        _prometheus = prometheus
        metrics_on = prometheus is not None or otel_metrics is not None
        if tracer is None and not metrics_on:
            _bridge = None
            return False
        bridge = Bridge(
            tracer,
            store if metrics_on else None,
            otel_metrics,
            ContentCapture.resolve(capture_content),
        )
        bridge.register()
        _bridge = bridge
        return True


def _uninstall() -> None:
    global _bridge, _prometheus, _key, _automatic
    if _bridge is not None:
        _bridge.unregister()
    if _prometheus is not None:
        registry, collector = _prometheus
        try:
            registry.unregister(collector)
        except KeyError:  # already gone
            pass
    _bridge = None
    _prometheus = None
    _key = None
    _automatic = False


def uninstrument() -> None:
    """Remove every bridge hook and the Prometheus collector; the user's hooks stay."""
    with _lock:
        _uninstall()


def is_instrumented() -> bool:
    """True while the bridge is installed."""
    return _bridge is not None


def auto_instrument() -> None:
    """Instrument with the global providers, unless switched off by the environment.

    Called when ``pygents`` is imported with a telemetry extra installed. Never raises.
    """
    from ._settings import disabled_by_env

    reason = disabled_by_env()
    if reason is not None:
        logger.debug("pygents telemetry off: %s", reason)
        return
    try:
        _install(None, None, None, None, True)
    except Exception as exc:  # importing pygents must never fail
        logger.warning("pygents telemetry could not start: %s: %s", type(exc).__name__, exc)
