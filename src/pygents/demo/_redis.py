"""The demo over Redis: a feeder that sends questions through ``RedisQueue``, and workers.

``pygents demo --redis URL`` runs no agent itself: it sends each question's ``plan`` turn to
a planner's stream. ``pygents demo worker --redis URL`` (as many as you like, on any host)
serves the same team with a ``pygents.redis.RedisWorker``: each agent is owned by one worker
at a time, and the turns the team sends each other (``Agent.send()``) go through Redis, so a
question hops between workers. Give the feeder and every worker the same ``--agents`` and
``--seed``: the seed fixes the questions and what the simulated services do.

A turn that fails is retried by the worker (the simulated services fail the same request
again, by design), then dead-lettered after ``--max-attempts`` runs: the redelivery and
dead-letter metrics move while the demo runs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._agents import build_crew, new_question, planned_turns
from ._world import World, enter_world

if TYPE_CHECKING:
    from pygents import Agent
    from pygents.redis import RedisQueue

__all__ = ["add_worker_arguments", "feed_redis", "serve_worker"]

#: The prefix of every Redis key the feeder and the workers use, unless told otherwise.
DEFAULT_NAMESPACE = "pygents-demo"
#: Turns waiting in the planners' streams before the feeder waits (per fetcher).
WAITING_PER_FETCHER = 3
#: Seconds between two looks at the planners' streams while the feeder waits.
BACKOFF = 0.05


def _lease_ttl(text: str) -> float:
    value = float(text)
    if not (value >= 0.01 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0.01, got {text}")
    return value


_lease_ttl.__name__ = "lease time"


def add_worker_arguments(
    parser: argparse.ArgumentParser,
    positive_int: Callable[[str], int],
    agents: Callable[[str], int],
    text: Callable[[str], str],
    redis_url: Callable[[str], str],
    port: Callable[[str], int],
) -> None:
    """Add the options of ``pygents demo worker`` to ``parser`` (validators from ``_cli``)."""
    parser.add_argument(
        "--redis",
        required=True,
        type=redis_url,
        metavar="URL",
        help="the Redis server (redis://host:port/db)",
    )
    parser.add_argument(
        "--namespace",
        type=text,
        default=DEFAULT_NAMESPACE,
        help=f"prefix of every Redis key (default {DEFAULT_NAMESPACE}; the same as the feeder's)",
    )
    parser.add_argument(
        "--agents",
        type=agents,
        default=3,
        metavar="N",
        help="number of fetcher agents (default 3; the same as the feeder's)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every latency and failure (default 0; the same as the feeder's)",
    )
    parser.add_argument("--name", type=text, help="this worker's id (default: host-pid)")
    parser.add_argument(
        "--lease-ttl",
        type=_lease_ttl,
        default=10.0,
        metavar="SECONDS",
        help="a dead worker's agents are taken over after at most this long (default 10)",
    )
    parser.add_argument(
        "--max-attempts",
        type=positive_int,
        default=3,
        metavar="N",
        help="runs of a failing turn before it goes to the dead letters (default 3)",
    )
    parser.add_argument(
        "--metrics-port",
        type=port,
        default=9464,
        metavar="PORT",
        help="serve Prometheus /metrics on this port (default 9464; 0 picks a free one)",
    )
    parser.add_argument(
        "--metrics-host",
        type=text,
        default="127.0.0.1",
        metavar="HOST",
        help="address /metrics binds to (default 127.0.0.1, loopback only)",
    )
    parser.add_argument(
        "--console-spans", action="store_true", help="also print every span to stdout"
    )
    # What the demo's telemetry set-up and banner read, fixed for a worker.
    parser.set_defaults(duration=None, turns=None)


async def _handle_signals(stop: asyncio.Event, caught: list[int]) -> list[int]:
    loop = asyncio.get_running_loop()

    def interrupted(signum: int) -> None:
        if not caught:
            caught.append(signum)
        stop.set()

    handled: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, interrupted, signum)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not on this platform
            pass
    return handled


def _forget_signals(handled: list[int]) -> None:
    loop = asyncio.get_running_loop()
    for signum in handled:
        loop.remove_signal_handler(signum)


async def serve_worker(
    options: argparse.Namespace, caught: list[int], *, prometheus_registry: Any = None
) -> dict[str, object]:
    """Serve the demo's team from Redis until SIGINT / SIGTERM; return the worker's stats.

    The worker finishes each turn in flight, checkpoints and gives its leases back when it
    stops, so the other workers take its agents at once. ``prometheus_registry`` is the
    worker's (``False`` when its OpenTelemetry instruments already reach Prometheus).
    """
    from pygents.redis import RedisWorker

    from ._summary import Stats

    stop = asyncio.Event()
    handled = await _handle_signals(stop, caught)
    crew = build_crew(options.agents)
    # Before the worker starts its tasks: they (and the agents' turns) inherit the world.
    enter_world(
        World(options.seed, [a.name for a in crew.fetchers], [a.name for a in crew.writers])
    )
    stats = Stats()
    stats.watch(crew.agents)
    worker = RedisWorker(
        crew.agents,
        options.redis,
        namespace=options.namespace,
        name=options.name,
        lease_ttl=options.lease_ttl,
        max_attempts=options.max_attempts,
        prometheus_registry=prometheus_registry,
    )
    try:
        async with worker:
            print(
                f"pygents demo worker {worker.name}: serving {len(crew.agents)} agents", flush=True
            )
            await stop.wait()
        return {**worker.stats(), "turns": stats.turns}
    finally:
        _forget_signals(handled)
        crew.dismiss()


async def feed_redis(options: argparse.Namespace, seed: int, caught: list[int]) -> tuple[int, int]:
    """Send questions to the planners through Redis; return (questions, planned turns).

    Runs for ``--duration`` s, until the questions account for ``--turns`` turns, or until
    SIGINT / SIGTERM. The feeder waits while the planners' streams hold more than a few turns
    per fetcher (no worker serving, or the workers behind).
    """
    from pygents.redis import RedisQueue

    stop = asyncio.Event()
    handled = await _handle_signals(stop, caught)
    crew = build_crew(options.agents)  # registers the tools: turns are built from them
    world = World(seed, [a.name for a in crew.fetchers], [a.name for a in crew.writers])
    queue = RedisQueue(options.redis, namespace=options.namespace)
    counts = [0, 0]
    # Set before the feeder is cancelled: on Python 3.11 redis-py's asyncio.wait_for() can
    # swallow a cancellation that meets the end of a command, and the feeder would feed on.
    halt = asyncio.Event()
    feeding = asyncio.create_task(_feed(queue, crew.planners, world, options, counts, halt))
    stopping = asyncio.create_task(stop.wait())
    try:
        waiting = [feeding, stopping]
        await asyncio.wait(waiting, timeout=options.duration, return_when=asyncio.FIRST_COMPLETED)
        if feeding.done():
            feeding.result()  # a bug, or Redis unreachable: let it show
    finally:
        halt.set()
        for task in (feeding, stopping):
            task.cancel()
        await asyncio.gather(feeding, stopping, return_exceptions=True)
        await queue.aclose()
        _forget_signals(handled)
        crew.dismiss()
    return counts[0], counts[1]


async def _feed(
    queue: RedisQueue,
    planners: list[Agent],
    world: World,
    options: argparse.Namespace,
    counts: list[int],
    halt: asyncio.Event,
) -> None:
    names = [p.name for p in planners]
    limit = WAITING_PER_FETCHER * options.agents
    job = 0
    while not halt.is_set() and (options.turns is None or counts[1] < options.turns):
        # The depths live in Redis, moved by other processes: no local event to wait on.
        while sum([await queue.depth(n) for n in names]) >= limit:
            if halt.is_set():
                return
            await asyncio.sleep(BACKOFF)
        await queue.send(names[job % len(names)], new_question(world, job))
        counts[0] += 1
        counts[1] += planned_turns(world, job)
        job += 1
        await asyncio.sleep(world.rng("arrival", job).uniform(0.0, 0.02))
