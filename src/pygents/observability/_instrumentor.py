"""``PygentsInstrumentor``: the OpenTelemetry instrumentor convention."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ._instrument import auto_instrument, instrument, uninstrument

__all__ = ["PygentsInstrumentor"]

#: The keywords of ``instrument()`` the instrumentor passes on.
_KEYWORDS = ("tracer_provider", "meter_provider", "prometheus_registry", "capture_content")


class PygentsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument pygents the OpenTelemetry way (a ``BaseInstrumentor``).

    ``opentelemetry-instrument python app.py`` finds it through the
    ``opentelemetry_instrumentor`` entry point named ``pygents``. In code,
    ``PygentsInstrumentor().instrument(...)`` takes the keywords of ``instrument()``:
    ``tracer_provider``, ``meter_provider``, ``prometheus_registry`` and
    ``capture_content``; ``uninstrument()`` removes the bridge again.

    Without any of them (which is how ``opentelemetry-instrument`` calls it) it instruments
    as ``import pygents`` does: with the global providers, unless ``PYGENTS_TELEMETRY=off``,
    ``OTEL_SDK_DISABLED=true`` or ``pygents`` in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
    switches telemetry off. With one of them it is explicit, like ``instrument()``, and works
    whatever those variables say.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """Return the packages this instruments (pygents itself: always satisfied)."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        if all(kwargs.get(name) is None for name in _KEYWORDS):
            # The agent's call: automatic, so the off switches win here as at import.
            auto_instrument()
            return
        instrument(**{name: kwargs.get(name) for name in _KEYWORDS})

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
