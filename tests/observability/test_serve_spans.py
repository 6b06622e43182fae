"""Spans of served agents (real OTel SDK, in-memory exporter): one trace per request, across
agents and across a restart from a checkpoint; busy-period spans that end."""

from __future__ import annotations

import asyncio
from typing import Any

from pygents import Agent, AgentRegistry, Service, Turn, current_agent, current_turn, serve, tool
from pygents.store import MemoryStore


async def eventually(check: Any) -> None:
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110  # polls what the agents' tasks produce
            await asyncio.sleep(0.001)


async def test_an_after_put_hook_that_awaits_leaves_the_turn_in_the_request_trace(
    telemetry: Any,
) -> None:
    # The served agent wakes as the turn joins its queue; a user's after_put hook that awaits
    # (an audit call) lets it start the turn before any hook of the bridge's could run.
    done: list[int] = []

    @tool()
    async def pack(order: int) -> None:
        done.append(order)

    packer = Agent("packer", "", [pack])

    @packer.after_put
    async def audit(agent: Any, turn: Any) -> None:
        await asyncio.sleep(0.05)

    tracer = telemetry.tracer_provider.get_tracer("app")
    async with Service([packer]) as service:
        with tracer.start_as_current_span("POST /orders"):
            await packer.put(Turn("pack", kwargs={"order": 1}))
        await eventually(lambda: done == [1])
        await service.aclose()
    (request,) = telemetry.by_name("POST /orders")
    (packed,) = telemetry.by_name("execute_tool pack")
    assert packed.context.trace_id == request.context.trace_id
    assert packed.parent.span_id == request.context.span_id


async def test_a_turn_put_again_after_it_ran_belongs_to_the_new_request(telemetry: Any) -> None:
    done: list[int] = []

    @tool()
    async def job(n: int) -> None:
        done.append(n)

    cron = Agent("cron", "", [job])
    nightly = Turn("job", kwargs={"n": 1})
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with Service([cron]) as service:
        for day in (1, 2, 3):
            with tracer.start_as_current_span(f"day {day}"):
                await cron.put(nightly)
            await eventually(lambda: len(done) == day)  # noqa: B023  # read at once
        await service.aclose()
    jobs = sorted(telemetry.by_name("execute_tool job"), key=lambda s: s.start_time)
    assert len(jobs) == 3
    for day, span in zip((1, 2, 3), jobs, strict=True):
        (request,) = telemetry.by_name(f"day {day}")
        assert span.parent.span_id == request.context.span_id, day


async def test_a_request_is_one_trace_across_served_agents(telemetry: Any) -> None:
    done: list[int] = []

    @tool()
    async def plan(n: int) -> None:
        me = current_agent()
        assert me is not None
        await me.send("doer", Turn("do", kwargs={"n": n}))

    @tool()
    async def do(n: int) -> None:
        done.append(n)

    planner, doer = Agent("planner", "", [plan]), Agent("doer", "", [do])
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with Service([planner, doer]) as service:
        for n in range(3):
            with tracer.start_as_current_span(f"request {n}"):
                await planner.put(Turn("plan", kwargs={"n": n}))
        await eventually(lambda: len(done) == 3)
        await service.aclose()

    spans = telemetry.finished()
    for n in range(3):
        (request,) = telemetry.by_name(f"request {n}")
        in_trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
        names = sorted(s.name for s in in_trace)
        assert names == ["execute_tool do", "execute_tool plan", f"request {n}"]
        (planned,) = [s for s in in_trace if s.name == "execute_tool plan"]
        (did,) = [s for s in in_trace if s.name == "execute_tool do"]
        assert planned.parent.span_id == request.context.span_id
        assert did.parent.span_id == planned.context.span_id
        # Each turn links to the busy period (invoke_agent span) that ran it.
        for span in (planned, did):
            (link,) = span.links
            runner = next(s for s in spans if s.context.span_id == link.context.span_id)
            assert runner.name.startswith("invoke_agent")
    # Busy-period spans all ended (the exporter only has finished spans) and none is a request's.
    runs = [s for s in spans if s.name.startswith("invoke_agent")]
    assert runs and all(s.end_time is not None for s in runs)


async def test_trace_continuity_survives_a_restart_from_a_checkpoint(telemetry: Any) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    @tool()
    async def slow() -> None:
        turn = current_turn()
        assert turn is not None
        if turn.metadata.attempt == 1:
            started.set()
            await asyncio.sleep(30)
        finished.set()

    store = MemoryStore()
    agent = Agent("slow", "", [slow])
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        await agent.put(Turn("slow"))
    task = asyncio.create_task(serve(agent, store=store))
    await started.wait()
    task.cancel()  # stands for the crash: the turn was in flight
    await asyncio.gather(task, return_exceptions=True)

    AgentRegistry.unregister("slow")  # a new process: a new agent, restored from the store
    restarted = Agent("slow", "", [slow])
    assert restarted.turns == []
    async with Service([restarted], store=store) as service:
        await asyncio.wait_for(finished.wait(), 5)
        await service.aclose()
    runs = telemetry.by_name("execute_tool slow")
    assert len(runs) == 2
    origin = request.get_span_context()
    assert all(s.context.trace_id == origin.trace_id for s in runs)
    assert all(s.parent.span_id == origin.span_id for s in runs)
