"""Turns: ``Turn``, ``TurnMetadata``, ``DeferredTraceContext`` (all also in ``pygents``)."""

from __future__ import annotations

from ._enums import StopReason as StopReason
from ._turn import Turn as Turn
from ._turn_metadata import DeferredTraceContext as DeferredTraceContext
from ._turn_metadata import TurnMetadata as TurnMetadata

__all__ = ["DeferredTraceContext", "StopReason", "Turn", "TurnMetadata"]
