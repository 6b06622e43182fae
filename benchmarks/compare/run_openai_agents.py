"""OpenAI Agents SDK: a fake model that calls a function tool N times, then answers.

Each step: one model call (a local ``Model`` subclass returns a function-call item; no
network), the runner resolves and runs the ``function_tool`` (JSON arguments parsed and
validated), appends the call and its output to the run's items, and calls the model again
with the whole history. Tracing off: ``RunConfig(tracing_disabled=True)``. Tracing on: the
SDK's own tracing (trace, agent, response and function spans) with its processors replaced
by one that drops everything (the default one uploads to OpenAI's service).
"""

from __future__ import annotations

import json
from typing import Any

from _common import guarded, measure, parse

args = parse()


def run() -> None:
    from importlib.metadata import version

    from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.tracing import TracingProcessor, set_trace_processors
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    state = {"left": 0, "calls": 0}

    class FakeModel(Model):
        async def get_response(self, *a: Any, **k: Any) -> ModelResponse:
            if state["left"] > 0:
                state["left"] -= 1
                n = state["left"]
                item: Any = ResponseFunctionToolCall(
                    id=f"fc_{n}",
                    call_id=f"call_{n}",
                    type="function_call",
                    name="step",
                    arguments=json.dumps({"x": n}),
                    status="completed",
                )
            else:
                item = ResponseOutputMessage(
                    id="msg_done",
                    type="message",
                    role="assistant",
                    status="completed",
                    content=[
                        ResponseOutputText(
                            text="done", type="output_text", annotations=[], logprobs=[]
                        )
                    ],
                )
            return ModelResponse(output=[item], usage=Usage(), response_id=None)

        def stream_response(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

    class Drop(TracingProcessor):
        def on_trace_start(self, trace: Any) -> None: ...
        def on_trace_end(self, trace: Any) -> None: ...
        def on_span_start(self, span: Any) -> None: ...
        def on_span_end(self, span: Any) -> None: ...
        def shutdown(self) -> None: ...
        def force_flush(self) -> None: ...

    set_trace_processors([Drop()])

    @function_tool
    async def step(x: int) -> int:
        """Return x."""
        state["calls"] += 1
        return x

    agent = Agent(
        name="bench",
        instructions="",
        model=FakeModel(),
        tools=[step],
        model_settings=ModelSettings(),
    )
    config = RunConfig(tracing_disabled=args.tracing == "off")

    async def workload(steps: int) -> int:
        state["left"], state["calls"] = steps, 0
        result = await Runner.run(agent, "go", max_turns=steps + 10, run_config=config)
        assert result.final_output == "done"
        return state["calls"]

    measure("OpenAI Agents SDK", version("openai-agents"), workload, args)


guarded("OpenAI Agents SDK", args, run)
