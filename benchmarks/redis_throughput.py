"""Turns/s and per-turn cost of the Redis path with 1, 2 and 4 workers, against in-process.

``python benchmarks/redis_throughput.py [TURNS] [AGENTS]``: starts its own redis-server on
loopback (Debian's ``redis-server``), then for each worker count spawns that many worker
processes (``RedisWorker``, telemetry off) serving AGENTS agents, sends TURNS trivial turns
spread round-robin over the agents with ``RedisQueue.send`` (one ``XADD`` each) and times
from the first send until every turn ran. The in-process rows run the same turns with
``Agent.run()`` and with a ``Service`` (no store) in this process. Per-turn cost is
wall time / turns. Machine: whatever runs it (the table in docs was taken on 2 shared cores,
where 4 workers, Redis and the producer compete for them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time

os.environ.setdefault("PYGENTS_TELEMETRY", "off")

import redis.asyncio as aioredis

from pygents import Agent, Service, Turn, tool
from pygents.redis import RedisQueue, RedisWorker

TURNS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--worker" else 5000
AGENTS = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] != "--worker" else 20
DONE = "bench:done"


@tool()
async def work(n: int) -> None:
    """Do nothing: the benchmark measures the path, not the work."""
    COUNT[0] += 1


COUNT = [0]


def build_agents(count: int) -> list[Agent]:
    return [Agent(f"bench-{i:03d}", "benchmark", [work]) for i in range(count)]


async def worker_main(url: str, name: str, agents: int) -> None:
    client = aioredis.Redis.from_url(url)
    worker = RedisWorker(
        build_agents(agents), client, name=name, lease_ttl=3.0, prometheus_registry=False
    )
    await worker.start()
    reported = 0
    while True:  # report progress; the parent kills the worker when done
        await asyncio.sleep(0.02)
        now = COUNT[0]
        if now != reported:
            await client.incrby(DONE, now - reported)
            reported = now


async def in_process(served: bool) -> float:
    agents = build_agents(AGENTS)
    start = time.perf_counter()
    for n in range(TURNS):
        await agents[n % AGENTS].put(Turn("work", kwargs={"n": n}))
    if served:
        async with Service(agents) as service:
            await service.aclose(drain=True)
    else:
        for agent in agents:
            async for _ in agent.run():
                pass
    elapsed = time.perf_counter() - start
    from pygents import AgentRegistry

    AgentRegistry.clear()
    return elapsed


async def through_redis(url: str, workers: int) -> float:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
            [sys.executable, __file__, "--worker", url, f"w{k}", str(AGENTS)]
        )
        for k in range(workers)
    ]
    try:
        # Wait until the leases are spread (each worker holds its share).
        deadline = time.monotonic() + 30
        while True:
            leases = await client.keys("pygents:*:lease")
            owners = {await client.get(k) for k in leases}
            if len(leases) == AGENTS and len(owners) == workers:
                break
            assert time.monotonic() < deadline, "workers did not take the leases"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # one more lease round: the shares settle
        queue = RedisQueue(client, tracer_provider=False)
        start = time.perf_counter()
        for n in range(TURNS):
            await queue.send(f"bench-{n % AGENTS:03d}", Turn("work", kwargs={"n": n}))
        while int(await client.get(DONE) or 0) < TURNS:  # noqa: ASYNC110 - polls Redis
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
    finally:
        for p in procs:
            p.kill()
            p.wait()
        await client.aclose()
    return elapsed


def redis_server() -> tuple[subprocess.Popen[bytes], str, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0", port


def main() -> None:
    rows = []
    for label, served in (("in-process `Agent.run()`", False), ("in-process `Service`", True)):
        elapsed = asyncio.run(in_process(served))
        rows.append((label, elapsed))
    proc, url, port = redis_server()
    try:
        for workers in (1, 2, 4):
            label = f"Redis, {workers} worker{'s' if workers > 1 else ''}"
            elapsed = asyncio.run(through_redis(url, workers))
            rows.append((label, elapsed))
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], check=False)
        proc.wait()
    print(
        f"{TURNS} turns over {AGENTS} agents, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| path | turns/s | µs per turn |")
    print("|---|---|---|")
    for label, elapsed in rows:
        print(f"| {label} | {TURNS / elapsed:,.0f} | {elapsed / TURNS * 1e6:,.1f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        asyncio.run(worker_main(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        main()
