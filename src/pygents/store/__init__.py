"""Checkpoint stores for served agents: the interface, SQLite (the embedded default), memory.

A ``pygents.Service`` given a store saves each agent's state (queue, turn in flight, context
queue and pool, paused state) after every turn and restores it on start. A store is
anything implementing ``CheckpointStore``: four coroutines over one row per agent.
"""

from __future__ import annotations

from ._base import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from ._base import Checkpoint as Checkpoint
from ._base import CheckpointStore as CheckpointStore
from ._base import MemoryStore as MemoryStore
from ._base import to_json as to_json
from ._sqlite import SQLiteStore as SQLiteStore

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "CheckpointStore",
    "MemoryStore",
    "SQLiteStore",
    "to_json",
]
