"""The one environment switch the core itself reads: ``PYGENTS_TELEMETRY``."""

from __future__ import annotations

import os

__all__ = ["telemetry_switched_off"]

_OFF = frozenset({"off", "false", "0", "no"})


def telemetry_switched_off() -> bool:
    """True when ``PYGENTS_TELEMETRY`` says off (``off``, ``false``, ``0`` or ``no``)."""
    return os.environ.get("PYGENTS_TELEMETRY", "").strip().lower() in _OFF
