"""Context containers: ``ContextItem``, ``ContextQueue`` and ``ContextPool``."""

from __future__ import annotations

from ._context import ContextItem as ContextItem
from ._context import ContextPool as ContextPool
from ._context import ContextQueue as ContextQueue

__all__ = ["ContextItem", "ContextPool", "ContextQueue"]
