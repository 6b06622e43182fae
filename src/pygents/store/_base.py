"""The store interface a service checkpoints into, and the in-memory store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pygents import _serde

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "CheckpointStore", "MemoryStore", "to_json"]


def to_json(value: Any) -> str:
    """``value`` as compact JSON text, refusing what would not come back as it went.

    What checkpoints and ``pygents.redis`` write: ``json.dumps`` with NaN and infinities,
    nesting deeper than ``json`` goes, and dict keys that are not strings (``json`` writes
    ``1``, ``True`` and ``None`` as ``"1"``, ``"true"`` and ``"null"``, and two keys may
    become one) refused as well as what it cannot write. A tuple is written as a list.

    Raises:
        SerializationError: ``value`` is not JSON data; the message says why (and where, for
            a key).
    """
    return _serde.json_text(value)


#: The ``format`` of the JSON document in a checkpoint's ``data`` (written by a ``Service``).
CHECKPOINT_FORMAT = "pygents.checkpoint/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One saved state of one agent: what a store keeps, one per agent name.

    Attributes:
        agent: the agent's name (the key).
        seq: increases with every save of the agent; a store keeps the highest it was given
            and ignores an older one that arrives late.
        data: the state, a UTF-8 JSON document (``pygents.checkpoint/1``) the service writes
            and reads; a store treats it as opaque bytes.
        saved_at: when it was taken (``time.time()``).
    """

    agent: str
    seq: int
    data: bytes
    saved_at: float


@runtime_checkable
class CheckpointStore(Protocol):
    """Where a ``Service`` keeps one checkpoint per agent (``SQLiteStore``, ``MemoryStore``).

    Every method is a coroutine, so a store backed by a server (Redis) or by a blocking
    library run in a thread (SQLite) fits alike. ``save`` must be atomic: after a crash a
    reader finds the previous checkpoint or the new one, never a mix.
    """

    async def save(self, checkpoint: Checkpoint) -> None:
        """Replace the agent's checkpoint, unless the stored one has a higher or equal ``seq``."""
        ...

    async def load(self, agent: str) -> Checkpoint | None:
        """Return the agent's checkpoint, or None if there is none."""
        ...

    async def delete(self, agent: str) -> None:
        """Forget the agent's checkpoint (nothing happens if there is none)."""
        ...

    async def agents(self) -> list[str]:
        """Return the names of the agents with a checkpoint, sorted."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""
        ...


class MemoryStore:
    """A ``CheckpointStore`` in a dict: for tests, and for services that only need restarts.

    Nothing survives the process; ``SQLiteStore`` does.
    """

    def __init__(self) -> None:
        self._rows: dict[str, Checkpoint] = {}

    async def save(self, checkpoint: Checkpoint) -> None:
        """Replace the agent's checkpoint unless a newer one is stored."""
        old = self._rows.get(checkpoint.agent)
        if old is None or checkpoint.seq > old.seq:
            self._rows[checkpoint.agent] = checkpoint

    async def load(self, agent: str) -> Checkpoint | None:
        """Return the agent's checkpoint, or None."""
        return self._rows.get(agent)

    async def delete(self, agent: str) -> None:
        """Forget the agent's checkpoint."""
        self._rows.pop(agent, None)

    async def agents(self) -> list[str]:
        """Return the names with a checkpoint, sorted."""
        return sorted(self._rows)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStore(agents={len(self._rows)})"
