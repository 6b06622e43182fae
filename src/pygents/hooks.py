"""Hooks: ``@hook``, the ``Hook`` protocol, ``HookMetadata`` and the hook-type enums.

The same names are exported from ``pygents``; this module is where a program written for the
original pygents imports them from (``from pygents.hooks import hook, TurnHook``). It also
names ``HookList``, the class of every object's ``hooks`` list.
"""

from __future__ import annotations

from ._enums import AgentHook as AgentHook
from ._enums import ContextPoolHook as ContextPoolHook
from ._enums import ContextQueueHook as ContextQueueHook
from ._enums import HookType as HookType
from ._enums import ToolHook as ToolHook
from ._enums import TurnHook as TurnHook
from ._hook_list import HookList as HookList
from ._hooks import Hook as Hook
from ._hooks import HookMetadata as HookMetadata
from ._hooks import hook as hook

__all__ = [
    "AgentHook",
    "ContextPoolHook",
    "ContextQueueHook",
    "Hook",
    "HookList",
    "HookMetadata",
    "HookType",
    "ToolHook",
    "TurnHook",
    "hook",
]
