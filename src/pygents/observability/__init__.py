"""pygents.observability: every pygents hook bridged into OpenTelemetry and Prometheus.

Install an extra (``pygents[otel]``, ``pygents[prometheus]`` or ``pygents[all]``) and
``import pygents`` instruments itself, unless ``PYGENTS_TELEMETRY=off``,
``OTEL_SDK_DISABLED=true`` or ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names ``pygents``.
The bridge is a set of global hooks registered through the public hook API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._instrument import instrument, is_instrumented, uninstrument
from ._semconv import SCHEMA_URL, SEMCONV_VERSION
from ._settings import ContentCapture

if TYPE_CHECKING:
    from ._instrumentor import PygentsInstrumentor
    from ._prometheus import start_metrics_server
    from ._setup import TelemetryHandle, configure

__all__ = [
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "ContentCapture",
    "PygentsInstrumentor",
    "TelemetryHandle",
    "configure",
    "instrument",
    "is_instrumented",
    "start_metrics_server",
    "uninstrument",
]


def __getattr__(name: str) -> Any:
    # Lazy: these need opentelemetry-sdk / -instrumentation / prometheus_client.
    if name == "PygentsInstrumentor":
        from ._instrumentor import PygentsInstrumentor

        return PygentsInstrumentor
    if name in ("configure", "TelemetryHandle"):
        from . import _setup

        return getattr(_setup, name)
    if name == "start_metrics_server":
        from ._prometheus import start_metrics_server

        return start_metrics_server
    raise AttributeError(f"module 'pygents.observability' has no attribute {name!r}")
