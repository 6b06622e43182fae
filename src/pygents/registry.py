"""The process-wide registries: ``ToolRegistry``, ``AgentRegistry`` and ``HookRegistry``.

The same names are exported from ``pygents``; this module is where a program written for the
original pygents imports them from (``from pygents.registry import HookRegistry``).
"""

from __future__ import annotations

from ._agent import AgentRegistry as AgentRegistry
from ._hooks import HookRegistry as HookRegistry
from ._registry import ToolRegistry as ToolRegistry

__all__ = ["AgentRegistry", "HookRegistry", "ToolRegistry"]
