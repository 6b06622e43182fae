"""Shared fixtures: every test starts with empty registries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pygents.testing import isolated_registries


@pytest.fixture(autouse=True)
def _isolated_registries() -> Iterator[None]:
    with isolated_registries():
        yield
