"""Agents: ``Agent`` (also importable from ``pygents``)."""

from __future__ import annotations

from ._agent import Agent as Agent

__all__ = ["Agent"]
