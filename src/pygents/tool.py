"""Tools: ``@tool`` and the two tool kinds (also importable from ``pygents``)."""

from __future__ import annotations

from ._tool import AsyncGenTool as AsyncGenTool
from ._tool import CoroutineTool as CoroutineTool
from ._tool import Tool as Tool
from ._tool import ToolMetadata as ToolMetadata
from ._tool import tool as tool

__all__ = ["AsyncGenTool", "CoroutineTool", "Tool", "ToolMetadata", "tool"]
