"""``instrument()`` / ``uninstrument()``: install or remove the telemetry bridge."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Literal

from ._bridge import Bridge
from ._semconv import INSTRUMENTATION_NAME, SCHEMA_URL
from ._settings import ContentCapture, logger
from ._store import MetricStore

if TYPE_CHECKING:  # the extras' types, for a type checker (not imported at run time)
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_bridge: Bridge | None = None
_prometheus: Any = None
_key: tuple[Any, ...] | None = None
_automatic = False
#: The OtelMetrics of the last installation; it keeps reporting its final values after
#: ``uninstrument()`` (so a last export still has them) until another installation replaces it.
_otel: Any = None
#: One OtelMetrics per meter provider: its instruments (and callbacks) live as long as it.
_otel_by_provider: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
#: The OtelMetrics made on the global proxy meter provider, whose instruments move to the
#: provider the program later sets as the global one.
_proxy_otel: Any = None


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


def _records(provider: Any) -> bool:
    """True when a meter provider records: neither the API's no-op provider nor its proxy.

    The proxy is what ``metrics.get_meter_provider()`` returns until the program sets a
    provider; it lives in the API package (``opentelemetry.metrics``), as the no-op one does,
    while every recording provider (the SDK's, a vendor's) comes from elsewhere.
    """
    from opentelemetry import metrics

    if isinstance(provider, metrics.NoOpMeterProvider):
        return False
    return not type(provider).__module__.startswith("opentelemetry.metrics")


def _global_meter_provider_records() -> bool:
    from opentelemetry import metrics

    return _records(metrics.get_meter_provider())


class _OtelCarriesMetrics:
    """Does the global meter provider record now? Asked by the automatic Prometheus collector.

    Asked at each scrape: once an SDK is the global provider, the OpenTelemetry instruments
    carry the metrics and the collector stays silent. A global provider can be set only once,
    so a yes is final (and cached).
    """

    __slots__ = ("_yes",)

    def __init__(self) -> None:
        self._yes = False

    def __call__(self) -> bool:
        if not self._yes:
            self._yes = _global_meter_provider_records()
        return self._yes


def _make_otel_metrics(meter_provider: Any, store: MetricStore) -> Any | None:
    global _proxy_otel
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
    if (
        existing is None
        and _proxy_otel is not None
        and provider is metrics.get_meter_provider()
        and _records(provider)
    ):
        # Instruments made on the proxy were handed to this provider when the program set it
        # as the global one; the SDK would answer new ones with those (and their callbacks).
        existing = _proxy_otel
    if existing is not None:
        existing.attach(store)
        made = existing
    else:
        meter = provider.get_meter(INSTRUMENTATION_NAME, _version(), schema_url=SCHEMA_URL)
        made = OtelMetrics(meter, store)
        if not _records(provider):
            _proxy_otel = made
    try:
        _otel_by_provider[provider] = made
    except TypeError:  # a provider that cannot be weakly referenced: no reuse
        pass
    return made


def _make_prometheus(
    registry: Any, store: MetricStore, defer: _OtelCarriesMetrics | None = None
) -> Any | None:
    if registry is False:
        return None
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return None
    from ._prometheus import register_collector

    target = registry if registry is not None else REGISTRY
    try:
        collector = register_collector(store, target, defer)
    except ValueError as exc:  # "Duplicated timeseries": someone registered our names
        logger.warning("pygents telemetry: Prometheus metrics not registered: %s", exc)
        return None
    return (target, collector)


def _make_metrics(
    meter_provider: Any, prometheus_registry: Any, store: MetricStore
) -> tuple[Any | None, Any | None]:
    """Choose the metric pipelines: ``(prometheus, otel_metrics)``, either may be None.

    One pipeline per signal, so that no registry (and no Prometheus) gets a family twice:

    - an explicit argument (a provider, a registry) switches its pipeline on; the other one
      then runs only if it is explicit too;
    - with both left to None (the automatic instrumentation at import), the OpenTelemetry
      instruments carry the metrics when the global meter provider records (an SDK is
      configured), else the Prometheus collector on ``prometheus_client.REGISTRY`` does. The
      global provider may be set after this runs: the collector asks at each scrape.
    """
    explicit_registry = prometheus_registry is not None and prometheus_registry is not False
    otel_metrics = None
    if meter_provider is not None or not explicit_registry:
        otel_metrics = _make_otel_metrics(meter_provider, store)
    defer = None
    if prometheus_registry is None and otel_metrics is not None:
        if meter_provider is not None:
            return None, otel_metrics  # an explicit meter provider carries the metrics
        defer = _OtelCarriesMetrics()
        if defer():
            return None, otel_metrics  # the global provider records already
    return _make_prometheus(prometheus_registry, store, defer), otel_metrics


def instrument(
    *,
    tracer_provider: TracerProvider | Literal[False] | None = None,
    meter_provider: MeterProvider | Literal[False] | None = None,
    prometheus_registry: CollectorRegistry | Literal[False] | None = None,
    capture_content: bool | ContentCapture | None = None,
) -> bool:
    """Bridge every pygents hook into OpenTelemetry spans and metrics and Prometheus metrics.

    Idempotent: calling it again with the same arguments does nothing; with different
    arguments it re-instruments. Either half works without the other package installed.

    Metrics take one pipeline per signal, so no registry ever exposes a family twice: with
    ``meter_provider`` and ``prometheus_registry`` both None, the OpenTelemetry instruments
    carry them once the global meter provider records (an SDK is configured, now or later),
    else the Prometheus collector on ``prometheus_client.REGISTRY`` does. Passing one of the
    two selects that pipeline alone; passing both runs both.

    Args:
        tracer_provider: where spans go; None for the global provider. False, or a
            ``NoOpTracerProvider``, switches spans off entirely (no hooks, no cost).
        meter_provider: where OpenTelemetry metrics go; None for the global provider (unless
            ``prometheus_registry`` is given); False or a ``NoOpMeterProvider`` switches them
            off.
        prometheus_registry: the ``CollectorRegistry`` for the Prometheus metrics; None for
            ``prometheus_client.REGISTRY`` while no OpenTelemetry meter provider records (and
            none is given); False for no Prometheus metrics.
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
    global _bridge, _prometheus, _key, _automatic, _otel
    key = (tracer_provider, meter_provider, prometheus_registry, capture_content)
    with _lock:
        if _key is not None:
            # A registry reset (HookRegistry.clear(), reset_registries()) removes the bridge's
            # hooks: then it is not installed any more, and the same call installs it again.
            intact = _bridge is None or _bridge.intact()
            if intact and (automatic or (not _automatic and _key == key)):
                return _bridge is not None
            _uninstall()
        tracer = _make_tracer(tracer_provider)
        store = MetricStore()
        prometheus, otel_metrics = _make_metrics(meter_provider, prometheus_registry, store)
        if _otel is not None and _otel is not otel_metrics:
            # The instruments of the previous installation stay in their SDK (it cannot forget
            # them): silence them now that other ones report, or a registry would get both.
            _otel.detach()
        _key = key
        _automatic = automatic
        _prometheus = prometheus
        _otel = otel_metrics
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
    """Return True while the bridge is installed.

    False after a registry reset (``HookRegistry.clear()``, ``reset_registries()``) removed
    its hooks; ``instrument()`` installs it again. ``isolated_registries()`` puts it back
    when its block ends.
    """
    bridge = _bridge
    return bridge is not None and bridge.intact()


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
