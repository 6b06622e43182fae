"""Fixtures for the reference-fidelity suite.

Every module in this directory re-enacts the examples of the original pygents documentation
(0.6.1, ``shared/reference/docs-0.6.1``) and of the product seeds, in our own names and
literals, and asserts what the original documents. The parent ``tests/conftest.py`` already
gives every test empty registries (``pygents.testing.isolated_registries``), so tool, agent
and hook names can repeat between tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pygents import Agent, Turn


async def _drain(agent: Agent) -> list[tuple[Turn, Any]]:
    """Run ``agent`` to the end and return every ``(turn, value)`` pair it yielded."""
    return [pair async for pair in agent.run()]


async def _values(agent: Agent) -> list[Any]:
    """Run ``agent`` to the end and return the yielded values only."""
    return [value async for _turn, value in agent.run()]


@pytest.fixture
def drain() -> Callable[[Agent], Awaitable[list[tuple[Turn, Any]]]]:
    """Collect the ``(turn, value)`` pairs of a whole ``agent.run()``."""
    return _drain


@pytest.fixture
def values() -> Callable[[Agent], Awaitable[list[Any]]]:
    """Collect the values of a whole ``agent.run()``."""
    return _values
