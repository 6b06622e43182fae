"""``PygentsInstrumentor``: the OpenTelemetry instrumentor convention."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ._instrument import instrument, uninstrument

__all__ = ["PygentsInstrumentor"]


class PygentsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument pygents the OpenTelemetry way (a ``BaseInstrumentor``).

    ``opentelemetry-instrument python app.py`` finds it through the
    ``opentelemetry_instrumentor`` entry point named ``pygents``. In code,
    ``PygentsInstrumentor().instrument(...)`` takes the keywords of ``instrument()``:
    ``tracer_provider``, ``meter_provider``, ``prometheus_registry`` and
    ``capture_content``; ``uninstrument()`` removes the bridge again.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """Return the packages this instruments (pygents itself: always satisfied)."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        instrument(
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
            prometheus_registry=kwargs.get("prometheus_registry"),
            capture_content=kwargs.get("capture_content"),
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
