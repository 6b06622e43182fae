"""The turn's span is the current span while its tool runs, and only then.

Spans made inside a tool are children of its ``execute_tool`` span; its hooks can enrich
it; the consumer, the code after ``run()`` and other agents' tasks see their own spans;
nothing logs "Failed to detach context", however runs end.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from opentelemetry import trace

from pygents import Agent, AgentHook, ToolHook, Turn, TurnHook, hook, tool

EXECUTE = "execute_tool {}"
INVOKE = "invoke_agent {}"


def only(spans: list[Any]) -> Any:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def parent_of(span: Any, spans: list[Any]) -> Any:
    assert span.parent is not None, f"{span.name} has no parent"
    found = [s for s in spans if s.context.span_id == span.parent.span_id]
    return only(found)


@pytest.fixture
def detach_errors(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.ERROR, logger="opentelemetry.context")

    def errors() -> list[str]:
        return [r.getMessage() for r in caplog.records if "detach" in r.getMessage().lower()]

    return errors


async def test_a_user_span_in_a_coroutine_tool_is_a_child_of_execute_tool(
    telemetry: Any, detach_errors: Any
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user")

    @tool()
    async def ask() -> str:
        with tracer.start_as_current_span("inner work"):
            await asyncio.sleep(0)
        return "done"

    agent = Agent("asker", "d", [ask])
    await agent.put(Turn(ask))
    async for _ in agent.run():
        pass
    spans = telemetry.finished()
    inner = only(telemetry.by_name("inner work"))
    execute = only(telemetry.by_name(EXECUTE.format("ask")))
    run = only(telemetry.by_name(INVOKE.format("asker")))
    assert parent_of(inner, spans) is execute
    assert parent_of(execute, spans) is run
    assert {s.context.trace_id for s in spans} == {run.context.trace_id}
    assert detach_errors() == []


async def test_streaming_tool_steps_see_the_span_and_the_consumer_does_not(
    telemetry: Any, detach_errors: Any
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user")
    in_tool: list[int] = []

    @tool()
    async def chunks(n: int):
        for i in range(n):
            in_tool.append(trace.get_current_span().get_span_context().span_id)
            with tracer.start_as_current_span(f"chunk {i}"):
                await asyncio.sleep(0)
            yield i

    agent = Agent("streamer", "d", [chunks])
    await agent.put(Turn(chunks, kwargs={"n": 3}))
    with tracer.start_as_current_span("request") as request:
        consumer: list[int] = []
        async for _turn, _value in agent.run():
            consumer.append(trace.get_current_span().get_span_context().span_id)
        after = trace.get_current_span()
    assert after is request
    execute = only(telemetry.by_name(EXECUTE.format("chunks")))
    assert in_tool == [execute.context.span_id] * 3
    # Between values the consumer sees its own span, never the turn's or the run's.
    assert consumer == [request.get_span_context().span_id] * 3
    spans = telemetry.finished()
    for i in range(3):
        assert parent_of(only(telemetry.by_name(f"chunk {i}")), spans) is execute
    run = only(telemetry.by_name(INVOKE.format("streamer")))
    assert parent_of(run, spans).name == "request"
    assert detach_errors() == []


async def test_hooks_run_with_their_span_current_and_can_enrich_it(telemetry: Any) -> None:
    @tool()
    async def model_call(prompt: str) -> str:
        # The documented way for a tool to add its own attributes.
        trace.get_current_span().set_attribute("gen_ai.request.model", "gpt-test")
        return prompt.upper()

    @model_call.before_invoke
    async def tag_tool(prompt: str) -> None:
        trace.get_current_span().set_attribute("app.prompt.length", len(prompt))

    @hook(TurnHook.ON_COMPLETE)
    async def tag_turn(turn: Turn, reason: Any) -> None:
        trace.get_current_span().set_attribute("app.turn.reason", reason.value)

    @hook(AgentHook.ON_RUN_START)
    async def tag_run(agent: Agent) -> None:
        trace.get_current_span().set_attribute("app.run.agent", agent.name)

    agent = Agent("enricher", "d", [model_call])
    await agent.put(Turn(model_call, kwargs={"prompt": "hi"}))
    async for _ in agent.run():
        pass
    execute = only(telemetry.by_name(EXECUTE.format("model_call")))
    run = only(telemetry.by_name(INVOKE.format("enricher")))
    assert execute.attributes["gen_ai.request.model"] == "gpt-test"
    assert execute.attributes["app.prompt.length"] == 2
    assert execute.attributes["app.turn.reason"] == "completed"
    assert run.attributes["app.run.agent"] == "enricher"


async def test_direct_tool_call_and_nested_turn_nest_their_inner_spans(telemetry: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user")

    @tool()
    async def leaf() -> int:
        with tracer.start_as_current_span("leaf work"):
            return 1

    @tool()
    async def branch() -> int:
        return await leaf() + await Turn(leaf).returning()

    assert await Turn(branch).returning() == 2
    spans = telemetry.finished()
    outer = only(telemetry.by_name(EXECUTE.format("branch")))
    leaves = telemetry.by_name(EXECUTE.format("leaf"))
    assert len(leaves) == 2
    for span in leaves:
        assert parent_of(span, spans) is outer
    works = telemetry.by_name("leaf work")
    assert sorted(parent_of(w, spans).context.span_id for w in works) == sorted(
        s.context.span_id for s in leaves
    )


async def test_early_break_aclose_cancel_and_timeout_leave_no_context_behind(
    telemetry: Any, detach_errors: Any
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user")

    @tool()
    async def endless():
        i = 0
        while True:
            with tracer.start_as_current_span("tick"):
                await asyncio.sleep(0)
            yield i
            i += 1

    @tool()
    async def stuck() -> int:
        await asyncio.sleep(10)
        return 1

    agent = Agent("breaker", "d", [endless, stuck])
    with tracer.start_as_current_span("request") as request:
        await agent.put(Turn(endless))
        run = agent.run()
        async for _turn, value in run:
            assert trace.get_current_span() is request
            if value == 2:
                break
        await run.aclose()
        assert trace.get_current_span() is request

        stream = Turn(endless).yielding()
        assert await stream.__anext__() == 0
        await stream.aclose()  # type: ignore[attr-defined]
        assert trace.get_current_span() is request

        with pytest.raises(Exception, match="timed out"):
            await Turn(stuck, timeout=0.01).returning()
        assert trace.get_current_span() is request

        task = asyncio.create_task(Turn(stuck).returning())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert trace.get_current_span() is request
    assert trace.get_current_span() is trace.INVALID_SPAN
    spans = telemetry.finished()
    for tick in telemetry.by_name("tick"):
        assert parent_of(tick, spans).name == EXECUTE.format("endless")
    assert detach_errors() == []


AGENTS = 1000


async def test_a_thousand_concurrent_agents_every_parent_right(
    telemetry: Any, detach_errors: Any
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user")

    @tool()
    async def work(tag: str) -> str:
        with tracer.start_as_current_span(f"work {tag}"):
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        with tracer.start_as_current_span(f"work2 {tag}"):
            pass
        return tag

    @tool()
    async def stream(tag: str):
        for i in range(3):
            await asyncio.sleep(0)
            with tracer.start_as_current_span(f"step {tag}"):
                pass
            yield i

    @hook(ToolHook.BEFORE_INVOKE)
    async def note(*args: Any, **kwargs: Any) -> None:
        tracer.start_span(f"hook {kwargs['tag']}").end()

    async def one(i: int) -> None:
        agent = Agent(f"agent-{i}", "d", [work, stream])
        await agent.put(Turn(work, kwargs={"tag": f"w{i}"}))
        await agent.put(Turn(stream, kwargs={"tag": f"s{i}"}))
        with tracer.start_as_current_span(f"request {i}") as request:
            async for _turn, value in agent.run():
                assert trace.get_current_span() is request
                if value == 1 and i % 3 == 0:
                    break  # early break for a third of them

    async with asyncio.TaskGroup() as group:
        for i in range(AGENTS // 2):
            group.create_task(one(i))
    await asyncio.gather(*(one(i) for i in range(AGENTS // 2, AGENTS)))

    spans = telemetry.finished()
    by_id = {s.context.span_id: s for s in spans}

    def parent(span: Any) -> Any:
        return by_id[span.parent.span_id]

    checked = 0
    for span in spans:
        kind, _, tag = span.name.partition(" ")
        if kind in ("work", "work2", "hook") and tag.startswith("w"):
            i = tag[1:]
            assert parent(span).name == EXECUTE.format("work"), span.name
            assert parent(parent(span)).name == INVOKE.format(f"agent-{i}")
            checked += 1
        elif kind in ("step", "hook") and tag.startswith("s"):
            i = tag[1:]
            assert parent(span).name == EXECUTE.format("stream"), span.name
            assert parent(parent(span)).name == INVOKE.format(f"agent-{i}")
            checked += 1
        elif span.name.startswith("invoke_agent agent-"):
            i = span.name.rsplit("-", 1)[1]
            assert parent(span).name == f"request {i}"
    assert checked >= AGENTS * 4
    assert detach_errors() == []
