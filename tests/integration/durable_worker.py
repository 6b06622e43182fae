"""A worker process for the durability tests: serves one agent checkpointed into SQLite.

``python durable_worker.py DB LOG STEPS [CRASH_AT]``: on a fresh database, queues
``step(0)``; every ``step(n)`` appends a context item, logs ``n attempt`` (fsynced) and
returns ``step(n + 1)`` until ``STEPS``; it also sends ``audit(n)`` to a second agent.
``step(CRASH_AT)`` on its first attempt writes a marker and hangs, for the parent to
SIGKILL the process. The worker drains and exits; it prints the context it restored.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

os.environ["PYGENTS_TELEMETRY"] = "off"

from pygents import (
    Agent,
    ContextItem,
    ContextQueue,
    Service,
    Turn,
    current_agent,
    current_turn,
    tool,
)
from pygents.store import SQLiteStore

DB, LOG, STEPS = sys.argv[1], sys.argv[2], int(sys.argv[3])
CRASH_AT = int(sys.argv[4]) if len(sys.argv) > 4 else -1


def log(line: str) -> None:
    with open(LOG, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@tool()
async def step(n: int) -> Turn | ContextItem[str] | None:
    """One step of the job."""
    turn, agent = current_turn(), current_agent()
    assert turn is not None and agent is not None
    attempt = turn.metadata.attempt
    context = [item.content for item in agent.context_queue]
    log(json.dumps({"tool": "step", "n": n, "attempt": attempt, "context": context}))
    if n == CRASH_AT and attempt == 1:
        log(json.dumps({"marker": "hanging", "n": n}))
        await asyncio.sleep(3600)
    await agent.context_queue.append(ContextItem(content=f"step {n}"))
    await agent.send("auditor", Turn("audit", kwargs={"n": n}))
    return Turn("step", kwargs={"n": n + 1}) if n + 1 < STEPS else None


@tool()
async def audit(n: int) -> None:
    """Record that step n happened."""
    turn = current_turn()
    assert turn is not None
    log(json.dumps({"tool": "audit", "n": n, "attempt": turn.metadata.attempt}))


async def main() -> None:
    store = SQLiteStore(DB)
    worker = Agent("worker", "Steps", [step], context_queue=ContextQueue(limit=1000))
    auditor = Agent("auditor", "Audits", [audit])
    fresh = not await store.agents()
    if fresh:
        await worker.put(Turn("step", kwargs={"n": 0}))
    service = Service([worker, auditor], store=store)
    await service.start()
    log(
        json.dumps(
            {
                "marker": "started",
                "fresh": fresh,
                "context": [item.content for item in worker.context_queue],
                "queue": [t.to_dict()["kwargs"] for t in worker.turns],
                "attempts": [t.metadata.attempt for t in worker.turns],
            }
        )
    )
    await service.aclose(drain=True)
    await store.aclose()
    log(json.dumps({"marker": "done"}))


asyncio.run(main())
