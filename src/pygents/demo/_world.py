"""The simulated outside world the demo's tools talk to: a language model and web sources.

Every request has a key (``("plan", 12)``, ``("page", 12, "peps")`` ...). Its latency and its
fate (fine, failed, or stalled past the turn's timeout) are a pure function of the seed and
that key, never of the clock or of which agent happened to run first. So a ``--turns`` run
with the same ``--seed`` executes the same turns, with the same timeouts and errors, every
time, while the latencies still look like real services.
"""

from __future__ import annotations

import asyncio
import math
import random
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "MalformedOutput",
    "Outcome",
    "Profile",
    "RateLimited",
    "ServiceError",
    "SourceUnavailable",
    "World",
    "current_world",
]


class ServiceError(Exception):
    """A simulated service failed (the demo counts it and goes on)."""


class SourceUnavailable(ServiceError):
    """A web source answered 503."""


class RateLimited(ServiceError):
    """The model answered 429."""


class MalformedOutput(ServiceError):
    """The model's output could not be parsed."""


@dataclass(frozen=True)
class Profile:
    """How one kind of request behaves.

    Attributes:
        median: typical latency, in seconds (latencies are log-normal around it).
        low: shortest latency.
        high: longest latency of a request that does not stall.
        p_stall: probability that the request hangs for ``stall`` seconds.
        stall: how long a stalled request hangs (longer than the turn's timeout).
        p_fail: probability that the request fails with ``failure``.
        failure: the exception a failed request raises.
    """

    median: float
    low: float
    high: float
    p_stall: float = 0.0
    stall: float = 0.0
    p_fail: float = 0.0
    failure: type[ServiceError] = ServiceError


@dataclass(frozen=True)
class Outcome:
    """What a request will do: wait ``latency`` seconds, then raise ``failure`` if set."""

    latency: float
    stalled: bool
    failure: type[ServiceError] | None

    @property
    def ok(self) -> bool:
        """True when the request neither stalls nor fails."""
        return not self.stalled and self.failure is None


class World:
    """The seed, the simulated services, and who is on the team.

    Args:
        seed: drives every latency and failure.
        fetchers: names of the fetcher agents, in order.
        writers: names of the writer agents, in order.
    """

    def __init__(self, seed: int, fetchers: list[str], writers: list[str]) -> None:
        self.seed = seed
        self.fetchers = fetchers
        self.writers = writers

    def rng(self, *key: object) -> random.Random:
        """A random generator that depends only on the seed and ``key``."""
        return random.Random("/".join([str(self.seed), *map(str, key)]))

    def outcome(self, profile: Profile, *key: object) -> Outcome:
        """What the request ``key`` will do (the same answer every time it is asked)."""
        rng = self.rng(*key)
        roll = rng.random()
        if roll < profile.p_stall:
            return Outcome(profile.stall, stalled=True, failure=None)
        latency = rng.lognormvariate(math.log(profile.median), 0.6)
        latency = min(max(latency, profile.low), profile.high)
        failed = roll < profile.p_stall + profile.p_fail
        return Outcome(latency, stalled=False, failure=profile.failure if failed else None)

    async def call(self, profile: Profile, *key: object) -> None:
        """Make the request ``key``: wait as long as it takes, raise if it fails."""
        outcome = self.outcome(profile, *key)
        await asyncio.sleep(outcome.latency)
        if outcome.failure is not None:
            raise outcome.failure(f"request {'/'.join(map(str, key))} failed")

    def fetcher_for(self, job: int) -> str:
        """The fetcher that gathers the sources of question ``job`` (round robin)."""
        return self.fetchers[job % len(self.fetchers)]

    def writer_for(self, job: int) -> str:
        """The writer that answers question ``job`` (round robin)."""
        return self.writers[job % len(self.writers)]


_WORLD: ContextVar[World] = ContextVar("pygents_demo_world")


def current_world() -> World:
    """The world of the demo running in this task (the tools' ``world`` fixed kwarg)."""
    return _WORLD.get()


def enter_world(world: World) -> None:
    """Make ``world`` the current world of this task and of the tasks it starts."""
    _WORLD.set(world)
