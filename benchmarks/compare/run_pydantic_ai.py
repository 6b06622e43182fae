"""Pydantic AI: a ``FunctionModel`` that calls a tool N times, then answers.

Each step: one model request (the local function decides the next tool call from the
message history; no network), Pydantic AI validates the call against the tool's schema,
runs the tool and appends the exchange to the history. Tracing on: the agent's
OpenTelemetry instrumentation (the ``Instrumentation`` capability) with an SDK tracer provider,
batch processor to a discarding exporter, message content not recorded.
"""

from __future__ import annotations

from typing import Any

from _common import discarding_tracer_provider, guarded, measure, parse

args = parse()


def run() -> None:
    from importlib.metadata import version

    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.usage import UsageLimits

    state = {"left": 0, "calls": 0}

    def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if state["left"] > 0:
            state["left"] -= 1
            return ModelResponse(parts=[ToolCallPart("step", {"x": state["left"]})])
        return ModelResponse(parts=[TextPart("done")])

    capabilities: list[Any] = []
    if args.tracing == "on":
        from pydantic_ai.capabilities import Instrumentation
        from pydantic_ai.models.instrumented import InstrumentationSettings

        settings = InstrumentationSettings(
            tracer_provider=discarding_tracer_provider(), include_content=False
        )
        capabilities.append(Instrumentation(settings=settings))
    agent = Agent(FunctionModel(decide), capabilities=capabilities)

    @agent.tool_plain
    async def step(x: int) -> int:
        state["calls"] += 1
        return x

    async def workload(steps: int) -> int:
        state["left"], state["calls"] = steps, 0
        result = await agent.run("go", usage_limits=UsageLimits(request_limit=steps + 10))
        assert result.output == "done"
        return state["calls"]

    measure("Pydantic AI", version("pydantic-ai-slim"), workload, args)


guarded("Pydantic AI", args, run)
