"""Helpers for testing code that uses pygents.

The three registries are process-wide, so tests that define tools, agents or hooks collide
unless each test starts clean. Use ``isolated_registries()`` (or the ``reset_registries()``
call it wraps) in an autouse fixture::

    import pytest
    from pygents.testing import isolated_registries

    @pytest.fixture(autouse=True)
    def _pygents_registries():
        with isolated_registries():
            yield
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ._registry import GLOBAL_BUCKETS, ToolRegistry
from ._registry import AgentRegistryBase as AgentRegistry
from ._registry import HookRegistryBase as HookRegistry

__all__ = ["isolated_registries", "reset_registries"]


def reset_registries() -> None:
    """Empty ``ToolRegistry``, ``AgentRegistry`` and ``HookRegistry``."""
    ToolRegistry.clear()
    AgentRegistry.clear()
    HookRegistry.clear()


@contextmanager
def isolated_registries() -> Iterator[None]:
    """Run a block with empty registries, then restore what was registered before.

    Global hooks registered before the block (telemetry, say) are removed for the block and
    come back afterwards; whatever the block registered is dropped.
    """
    tools = dict(ToolRegistry._items)
    agents = dict(AgentRegistry._items)
    hooks = dict(HookRegistry._hooks)
    library = set(HookRegistry._library)
    buckets = [list(bucket) for bucket in GLOBAL_BUCKETS]
    reset_registries()
    try:
        yield
    finally:
        reset_registries()
        ToolRegistry._items.update(tools)
        AgentRegistry._items.update(agents)
        HookRegistry._hooks.update(hooks)
        HookRegistry._library.update(library)
        for bucket, saved in zip(GLOBAL_BUCKETS, buckets, strict=True):
            bucket.extend(saved)
