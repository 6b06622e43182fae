"""Simulate "telemetry packages not installed" inside a process (no pygents import here).

Call ``block_telemetry()`` before ``import pygents``: a meta-path finder then makes
``import opentelemetry`` / ``import prometheus_client`` raise ``ModuleNotFoundError`` and
``importlib.util.find_spec`` of them fail, exactly as when the packages are absent.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

#: The packages "not installed" hides from a process.
TELEMETRY_PACKAGES = ("opentelemetry", "prometheus_client")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.split(".", 1)[0] in TELEMETRY_PACKAGES:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None


def block_telemetry() -> None:
    """Hide the telemetry packages from this process from now on."""
    if any(m.split(".", 1)[0] in TELEMETRY_PACKAGES for m in sys.modules):
        raise RuntimeError("a telemetry package is already imported; block it before that")
    if not any(isinstance(f, _Blocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _Blocker())
