"""A worker process for the Redis scale-out tests: serves AGENTS agents with pygents.redis.

``python redis_worker.py URL LOG NAME AGENTS [--otel] [--lease-ttl=SECONDS]``: every
``step(n)`` logs ``{"t": "step", "a": agent, "n": n, "at": attempt, "w": worker, "ts": ns}``
(one line, written before the turn ends; ``ts`` is ``time.monotonic_ns()``, one clock for
every process of the machine, so the runs of an agent that moved between workers can be put in
order) and works for a millisecond; ``step(n)`` with ``n % 10 == 9`` returns
``tail(n)`` (a tool-returned turn: it stays with the agent), with ``n % 10 == 0`` it sends
``ping(n)`` to the next agent (through Redis). SIGTERM stops the worker cleanly; it then logs
its counters. With ``--otel`` telemetry is configured from the OTEL_* environment (OTLP).
``slow()`` (a turn some tests run long in another worker) only logs ``{"t": "slow", ...}``
here. The lease lasts 1 s unless ``--lease-ttl`` says otherwise.

A worker that has not stopped 20 s after SIGTERM writes the stack of every asyncio task and
of every thread to stderr: a stop that hangs (seen in CI, rarely) then says where it waits.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import signal
import sys
import time
from typing import Any

OTEL = "--otel" in sys.argv
if not OTEL:
    os.environ["PYGENTS_TELEMETRY"] = "off"

from pygents import Agent, Turn, current_agent, current_turn, tool  # noqa: E402
from pygents.redis import RedisWorker  # noqa: E402

URL, LOG, NAME, AGENTS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
LEASE_TTL = float(next((a[12:] for a in sys.argv if a.startswith("--lease-ttl=")), 1.0))
out = open(LOG, "a", buffering=1)  # line-buffered, kept open


def log(**record: object) -> None:
    out.write(json.dumps(record) + "\n")  # line-buffered: in the kernel before the next await


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where a task waits: its coroutine, then each coroutine it awaits, down to a future.

    ``Task.print_stack()`` shows only the task's own coroutine; the frame that waits is at
    the end of the chain of awaits.
    """
    lines = []
    node: Any = task.get_coro()
    while node is not None:
        frame = getattr(node, "cr_frame", None) or getattr(node, "ag_frame", None)
        frame = frame or getattr(node, "gi_frame", None)
        if frame is None:
            lines.append(f"    awaiting {node!r}")
            break
        code = frame.f_code
        lines.append(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        node = (
            getattr(node, "cr_await", None)
            or getattr(node, "ag_await", None)
            or getattr(node, "gi_yieldfrom", None)
        )
    return lines


def dump_tasks() -> None:
    """Every asyncio task and where it waits, to stderr."""
    tasks = asyncio.all_tasks()
    lines = [f"--- {NAME}: not stopped 20 s after SIGTERM; {len(tasks)} tasks:"]
    for task in tasks:
        lines.append(f"--- {task!r}")
        lines.extend(awaiting(task))
    print("\n".join(lines), file=sys.stderr, flush=True)


def me() -> tuple[str, int]:
    agent, turn = current_agent(), current_turn()
    assert agent is not None and turn is not None
    return agent.name, turn.metadata.attempt


@tool()
async def step(n: int) -> Turn | None:
    """One unit of work of an agent."""
    name, attempt = me()
    log(t="step", a=name, n=n, at=attempt, w=NAME, ts=time.monotonic_ns())
    await asyncio.sleep(0.001)
    if n % 10 == 0:
        index = int(name.rsplit("-", 1)[1])
        agent = current_agent()
        assert agent is not None
        await agent.send(f"agent-{(index + 1) % AGENTS:03d}", Turn("ping", kwargs={"n": n}))
    return Turn("tail", kwargs={"n": n}) if n % 10 == 9 else None


@tool()
async def tail(n: int) -> None:
    """A turn a step returned."""
    name, attempt = me()
    log(t="tail", a=name, n=n, at=attempt, w=NAME)


@tool()
async def ping(n: int) -> None:
    """A turn another agent sent."""
    name, attempt = me()
    log(t="ping", a=name, n=n, at=attempt, w=NAME)


@tool()
async def slow() -> None:
    """A turn that runs long elsewhere; here it is only logged."""
    name, attempt = me()
    log(t="slow", a=name, at=attempt, w=NAME)


async def main() -> None:
    handle = None
    if OTEL:
        from pygents.observability import configure

        handle = configure(service_name=f"pygents-worker-{NAME}")
    agents = [Agent(f"agent-{i:03d}", "works", [step, tail, ping, slow]) for i in range(AGENTS)]
    worker = RedisWorker(
        agents, URL, name=NAME, lease_ttl=LEASE_TTL, prefetch=8, prometheus_registry=False
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.start()
    log(t="ready", w=NAME, pid=os.getpid())
    await stop.wait()
    # Where a stop that hangs waits: the tasks from the loop (if it still turns), every
    # thread's stack from faulthandler's own thread (if it does not). Left armed until the
    # process ends: a hang after aclose() (asyncio.run() cancelling the tasks left, the
    # telemetry's shutdown) is a stop that hangs too.
    asyncio.get_running_loop().call_later(20, dump_tasks)
    faulthandler.dump_traceback_later(20.5, file=sys.stderr)
    await worker.aclose()
    log(t="stats", **worker.stats())
    if handle is not None:
        handle.shutdown()


asyncio.run(main())
