"""The Redis key layout of one namespace (all keys of one agent share a ``{agent}`` hash tag)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUP", "Keys"]

#: The consumer group every worker reads agent streams in.
GROUP = "pygents-workers"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under ``namespace``.

    Attributes:
        namespace: the prefix of every key (several deployments can share one Redis).
    """

    namespace: str = "pygents"

    def stream(self, agent: str) -> str:
        """The agent's inbox: a stream of turns not yet handed to its owner."""
        return f"{self.namespace}:{{{agent}}}:turns"

    def lease(self, agent: str) -> str:
        """The agent's lease: the owning worker's id, expiring unless renewed."""
        return f"{self.namespace}:{{{agent}}}:lease"

    def owner(self, agent: str) -> str:
        """The agent's last owner (deleted on a clean release; left behind by a dead worker)."""
        return f"{self.namespace}:{{{agent}}}:owner"

    def checkpoint(self, agent: str) -> str:
        """The agent's checkpoint: a hash of ``seq``, ``data``, ``saved_at``."""
        return f"{self.namespace}:{{{agent}}}:checkpoint"

    @property
    def index(self) -> str:
        """The set of agent names with a checkpoint."""
        return f"{self.namespace}:checkpoints"

    @property
    def dead(self) -> str:
        """The dead-letter stream: turns that failed ``max_attempts`` times, with their error."""
        return f"{self.namespace}:dead"

    @property
    def workers(self) -> str:
        """A sorted set of live workers, scored by their last heartbeat (ms)."""
        return f"{self.namespace}:workers"
