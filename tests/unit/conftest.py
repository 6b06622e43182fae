"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[0, 3], ids=["first-turns", "later-turns"])
def warm(request: pytest.FixtureRequest) -> int:
    """Quick turns run before the turn under test, for its run loop path.

    An agent's first two bare turns step the tool by hand; from the third on, the run loop
    awaits it (``pygents._turn_run.Watch``): 0 tests the first path, 3 the second.
    """
    n: int = request.param
    return n
