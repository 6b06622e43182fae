"""Shared fixtures: every test starts with empty registries."""

from __future__ import annotations

import os

# The suite controls telemetry explicitly: no auto-instrumentation at `import pygents` here.
# (Tests of the automatic behaviour run in subprocesses with their own environment.)
os.environ["PYGENTS_TELEMETRY"] = "off"

from collections.abc import Iterator

import pytest

from pygents.testing import isolated_registries


@pytest.fixture(autouse=True)
def _isolated_registries() -> Iterator[None]:
    with isolated_registries():
        yield
