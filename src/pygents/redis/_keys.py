"""The Redis key layout of one namespace (all keys of one agent share a ``{agent}`` hash tag)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pygents.errors import short_repr

__all__ = ["GROUP", "Keys", "check_agent_name", "check_count", "check_name", "check_seconds"]

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


def check_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a non-empty string; raise ``TypeError`` / ``ValueError``.

    ``what`` names the argument (``"RedisQueue namespace"``): every key embeds these names,
    so ``5`` or ``None`` must not silently become ``pygents:{None}:turns``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a non-empty string, got {short_repr(value)}")
    if not value:
        raise ValueError(f"{what} must be a non-empty string, got ''")
    return value


def check_agent_name(agent: Any, where: str) -> str:
    """Return ``agent`` (an agent's name, as keys embed it) or raise as ``check_name``."""
    return check_name(agent, f"{where}: the agent name")


def check_count(value: Any, what: str) -> int:
    """Return ``value`` if it is an int >= 1; raise ``TypeError`` / ``ValueError`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int >= 1, got {short_repr(value)}")
    if value < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return value


def check_seconds(value: Any, what: str, least: float = 0.0) -> float:
    """Return ``value`` if it is a finite number of seconds > ``least``; raise otherwise."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds > 0, got {short_repr(value)}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    if value < least:
        raise ValueError(f"{what} must be at least {least} s, got {value!r}")
    return float(value)
