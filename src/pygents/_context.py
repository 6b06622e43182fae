"""Context: ``ContextItem``, the bounded ``ContextQueue`` and the keyed ``ContextPool``.

One module per class (``_context_item``, ``_context_queue``, ``_context_pool``, their shared
base in ``_context_base``); this one gathers them for the rest of the package.
"""

from __future__ import annotations

from ._context_item import ContextItem as ContextItem
from ._context_pool import ContextPool as ContextPool
from ._context_queue import ContextQueue as ContextQueue

__all__ = ["ContextItem", "ContextPool", "ContextQueue"]
