"""pygents: lightweight async agent orchestration.

Tools say *how*, turns say *what*, agents orchestrate, a ``ContextQueue`` holds the working
context and a ``ContextPool`` the accumulated tool outputs. Hooks observe (and can veto)
every step. The package needs nothing beyond the standard library.
"""

from __future__ import annotations

# The public submodules of the original, loaded first: ``pygents.tool`` is also the name of the
# decorator, and importing the submodule later would rebind the package attribute to it.
from . import agent as _agent_module  # noqa: F401
from . import context as _context_module  # noqa: F401
from . import hooks as _hooks_module  # noqa: F401
from . import registry as _registry_module  # noqa: F401
from . import tool as _tool_module  # noqa: F401
from . import turn as _turn_module  # noqa: F401
from ._agent import Agent as Agent
from ._agent import AgentRegistry as AgentRegistry
from ._context import ContextItem as ContextItem
from ._context import ContextPool as ContextPool
from ._context import ContextQueue as ContextQueue
from ._current import current_agent as current_agent
from ._current import current_tool as current_tool
from ._current import current_turn as current_turn
from ._enums import AgentHook as AgentHook
from ._enums import ContextPoolHook as ContextPoolHook
from ._enums import ContextQueueHook as ContextQueueHook
from ._enums import StopReason as StopReason
from ._enums import ToolHook as ToolHook
from ._enums import TurnHook as TurnHook
from ._execution_scope import ExecutionScope as ExecutionScope
from ._execution_scope import add_scope as add_scope
from ._execution_scope import remove_scope as remove_scope
from ._execution_scope import scopes as scopes
from ._hooks import Hook as Hook
from ._hooks import HookMetadata as HookMetadata
from ._hooks import HookRegistry as HookRegistry
from ._hooks import hook as hook
from ._registry import ToolRegistry as ToolRegistry
from ._routing import SendRouter as SendRouter
from ._routing import get_send_router as get_send_router
from ._routing import set_send_router as set_send_router
from ._serve import ErrorPolicy as ErrorPolicy
from ._serve import Service as Service
from ._serve import serve as serve
from ._tool import AsyncGenTool as AsyncGenTool
from ._tool import BaseTool as BaseTool
from ._tool import CoroutineTool as CoroutineTool
from ._tool import Tool as Tool
from ._tool import ToolMetadata as ToolMetadata
from ._tool import tool as tool
from ._tool_call import turn_from_call as turn_from_call
from ._turn_metadata import DeferredTraceContext as DeferredTraceContext
from ._turn_metadata import TurnMetadata as TurnMetadata
from .errors import CheckpointError as CheckpointError
from .errors import CheckpointStoreError as CheckpointStoreError
from .errors import PygentsError as PygentsError
from .errors import SafeExecutionError as SafeExecutionError
from .errors import SerializationError as SerializationError
from .errors import ToolCallError as ToolCallError
from .errors import TurnTimeoutError as TurnTimeoutError
from .errors import UnregisteredAgentError as UnregisteredAgentError
from .errors import UnregisteredHookError as UnregisteredHookError
from .errors import UnregisteredToolError as UnregisteredToolError
from .errors import WrongRunMethodError as WrongRunMethodError

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentHook",
    "AgentRegistry",
    "AsyncGenTool",
    "BaseTool",
    "CheckpointError",
    "CheckpointStoreError",
    "ContextItem",
    "ContextPool",
    "ContextPoolHook",
    "ContextQueue",
    "ContextQueueHook",
    "CoroutineTool",
    "DeferredTraceContext",
    "ErrorPolicy",
    "ExecutionScope",
    "Hook",
    "HookMetadata",
    "HookRegistry",
    "PygentsError",
    "SafeExecutionError",
    "SendRouter",
    "SerializationError",
    "Service",
    "StopReason",
    "Tool",
    "ToolCallError",
    "ToolHook",
    "ToolMetadata",
    "ToolRegistry",
    "Turn",
    "TurnHook",
    "TurnMetadata",
    "TurnTimeoutError",
    "UnregisteredAgentError",
    "UnregisteredHookError",
    "UnregisteredToolError",
    "WrongRunMethodError",
    "add_scope",
    "current_agent",
    "current_tool",
    "current_turn",
    "get_send_router",
    "hook",
    "remove_scope",
    "scopes",
    "serve",
    "set_send_router",
    "tool",
    "turn_from_call",
]

from ._turn import Turn as Turn


def _auto_telemetry() -> None:
    """Instrument at import when a telemetry extra is installed (see pygents.observability).

    The core itself never needs these packages: without them this is two ``find_spec``
    calls, and ``PYGENTS_TELEMETRY=off`` skips even those.
    """
    from ._env import telemetry_switched_off

    if telemetry_switched_off():
        return
    if not any(_installed(name) for name in ("opentelemetry", "prometheus_client")):
        return
    from .observability._instrument import auto_instrument

    auto_instrument()


def _installed(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_auto_telemetry()
