"""Per-agent statistics, gathered with instance hooks, and the summary table printed at the end."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pygents import Agent, ContextItem, ContextPool, ContextQueue, StopReason, Turn

__all__ = ["AgentStats", "Stats", "percentile"]

HEADER = ("agent", "turns", "p50 ms", "p95 ms", "timeouts", "errors", "cq evict", "pool evict")


#: Turn durations kept per agent: percentiles are exact up to this many turns, and estimated
#: from a uniform sample of the whole run beyond (so a long run's memory stays bounded).
SAMPLE_SIZE = 20_000


@dataclass
class AgentStats:
    """What one agent did: finished turns, their durations, failures and evictions."""

    turns: int = 0
    timeouts: int = 0
    errors: int = 0
    cancelled: int = 0
    queue_evictions: int = 0
    pool_evictions: int = 0
    durations: list[float] = field(default_factory=list)
    _sampler: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def record(self, duration: float) -> None:
        """Keep ``duration`` in the sample (reservoir sampling once it is full)."""
        if len(self.durations) < SAMPLE_SIZE:
            self.durations.append(duration)
            return
        slot = self._sampler.randrange(self.turns)
        if slot < SAMPLE_SIZE:
            self.durations[slot] = duration


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1), or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


F = TypeVar("F", bound=Callable[..., Any])


def owned_by(owner: str) -> Callable[[F], F]:
    """Name a per-agent hook function after its agent, before an instance decorator sees it.

    Hooks are registered (and found again on restore) by name, so a hook made in a loop or a
    factory needs a name of its own per agent.
    """

    def rename(fn: F) -> F:
        fn.__name__ = fn.__qualname__ = f"{fn.__name__}_{owner}"
        return fn

    return rename


class Stats:
    """Statistics of every agent of a run, kept up to date by hooks on the agents."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentStats] = {}
        self.started = time.monotonic()
        self.ended: float | None = None

    def watch(self, agents: Iterable[Agent]) -> None:
        """Attach the hooks that record each agent's turns and its context evictions."""
        for agent in agents:
            self._watch(agent)

    def _watch(self, agent: Agent) -> None:
        stats = self.agents.setdefault(agent.name, AgentStats())

        @agent.on_complete
        @owned_by(agent.name)
        async def count_turn(turn: Turn, stop_reason: StopReason) -> None:
            if stop_reason is StopReason.CANCELLED:
                stats.cancelled += 1
                return
            stats.turns += 1
            if stop_reason is StopReason.TIMEOUT:
                stats.timeouts += 1
            elif stop_reason is StopReason.ERROR:
                stats.errors += 1
            if turn.metadata.duration is not None:
                stats.record(turn.metadata.duration)

        @agent.context_queue.on_evict
        @owned_by(agent.name)
        async def count_queue_eviction(queue: ContextQueue, item: ContextItem[str]) -> None:
            stats.queue_evictions += 1

        @agent.context_pool.on_evict
        @owned_by(agent.name)
        async def count_pool_eviction(pool: ContextPool, item: ContextItem[str]) -> None:
            stats.pool_evictions += 1

    # -- totals ------------------------------------------------------------------------------

    @property
    def turns(self) -> int:
        """Finished turns (completed, timed out or failed) of every agent."""
        return sum(s.turns for s in self.agents.values())

    @property
    def timeouts(self) -> int:
        """Timed-out turns of every agent."""
        return sum(s.timeouts for s in self.agents.values())

    @property
    def errors(self) -> int:
        """Failed turns of every agent."""
        return sum(s.errors for s in self.agents.values())

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it ended, once it has)."""
        end = self.ended if self.ended is not None else time.monotonic()
        return end - self.started

    def stop_clock(self) -> None:
        """Freeze ``elapsed`` at now."""
        if self.ended is None:
            self.ended = time.monotonic()

    # -- the table ---------------------------------------------------------------------------

    def table(self) -> str:
        """The summary: one row per agent, then the totals."""
        header = HEADER
        rows = [self._row(name, s) for name, s in self.agents.items()]
        total = AgentStats(
            turns=self.turns,
            timeouts=self.timeouts,
            errors=self.errors,
            queue_evictions=sum(s.queue_evictions for s in self.agents.values()),
            pool_evictions=sum(s.pool_evictions for s in self.agents.values()),
            durations=[d for s in self.agents.values() for d in s.durations],
        )
        rows.append(self._row("total", total))
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            first = cells[0].ljust(widths[0])
            rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
            return "  ".join([first, *rest])

        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])])

    @staticmethod
    def _row(name: str, s: AgentStats) -> tuple[str, ...]:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f}"

        return (
            name,
            str(s.turns),
            ms(percentile(s.durations, 0.50)),
            ms(percentile(s.durations, 0.95)),
            str(s.timeouts),
            str(s.errors),
            str(s.queue_evictions),
            str(s.pool_evictions),
        )
