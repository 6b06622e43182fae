"""examples/model_tool_loop.py against an OpenAI-compatible server on loopback (issue 12).

The server plays a model from a script: a malformed tool call, then (having read the error)
two good ones, then an answer. The real ``openai`` client talks to it; with telemetry on,
each model call's ``chat`` span (``opentelemetry-instrumentation-openai-v2``) is a child of the
``execute_tool ask_model`` span of the turn that made it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest
from loopback_servers import LoopbackService
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pygents.observability import instrument, uninstrument

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model_tool_loop.py"
MODEL = "gpt-loopback"


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


SCRIPT = [
    # 1: a malformed call (a number for the city, an unknown unit, an extra argument)
    {"tool_calls": [call("c1", "weather", '{"city": 42, "unit": "kelvin", "days": 2}')]},
    # 2: the model read the error and corrects itself; a second call alongside
    {
        "tool_calls": [
            call("c2", "weather", '{"city": "Oslo", "unit": "fahrenheit"}'),
            call("c3", "add", '{"a": 1, "b": 2.5}'),
        ]
    },
    # 3: the answer
    {"content": "Oslo: 44.6 F; 1 + 2.5 = 3.5."},
]


@pytest.fixture
def example() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("model_tool_loop_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up while defined
    try:
        spec.loader.exec_module(module)  # registers its tools (registries are per test)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackService]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, never via a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with LoopbackService() as running:
        running.script = [dict(m) for m in SCRIPT]
        yield running


def client(service: LoopbackService) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{service.url}/v1", api_key="test", max_retries=0, timeout=10
    )


@pytest.mark.timeout(30)
async def test_the_model_loop_runs_tools_and_corrects_a_malformed_call(
    example: ModuleType, service: LoopbackService
) -> None:
    async with client(service) as llm:
        text = await example.answer(llm, MODEL, "Weather in Oslo? And 1 + 2.5?", example.TOOLS)

    assert text == "Oslo: 44.6 F; 1 + 2.5 = 3.5."
    first, second, third = (r.body for r in service.requests)
    # the model saw strict OpenAI definitions of the two tools (not of ask_model)
    assert [t["function"]["name"] for t in first["tools"]] == ["weather", "add"]
    assert all(t["function"]["strict"] for t in first["tools"])
    weather = first["tools"][0]["function"]["parameters"]
    assert weather["properties"]["unit"]["anyOf"][0]["enum"] == ["celsius", "fahrenheit"]
    # the malformed call came back as a tool message listing every problem
    error = second["messages"][-1]
    assert error["role"] == "tool" and error["tool_call_id"] == "c1"
    assert error["content"].splitlines() == [
        "Tool call 'weather' was not run: 3 problems with its arguments.",
        "- city: expected a string, got an integer 42",
        '- unit: expected one of "celsius", "fahrenheit"; got "kelvin"',
        "- days: unknown argument; allowed: city, unit",
        "Fix every argument listed and call the tool again.",
    ]
    # the corrected calls ran as turns; their results went back as tool messages
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in third["messages"][-2:]}
    assert results == {
        "c2": {"city": "Oslo", "temperature": 42.8, "unit": "fahrenheit"},
        "c3": 3.5,
    }


@pytest.fixture
def traced() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    openai_instrumentor = OpenAIInstrumentor()
    assert instrument(tracer_provider=provider, meter_provider=False, prometheus_registry=False)
    openai_instrumentor.instrument(
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        logger_provider=NoOpLoggerProvider(),
    )
    try:
        yield exporter
    finally:
        openai_instrumentor.uninstrument()
        uninstrument()
        provider.shutdown()


@pytest.mark.timeout(30)
async def test_each_chat_span_sits_inside_the_turn_that_made_it(
    example: ModuleType, service: LoopbackService, traced: InMemorySpanExporter
) -> None:
    async with client(service) as llm:
        await example.answer(llm, MODEL, "Weather in Oslo?", example.TOOLS)

    spans = traced.get_finished_spans()
    chats = [s for s in spans if s.name == f"chat {MODEL}"]
    asks = [s for s in spans if s.name == "execute_tool ask_model"]
    assert len(chats) == 3 and len(asks) == 3
    by_id = {s.context.span_id: s for s in spans}
    for chat, ask in zip(chats, asks, strict=True):
        assert chat.parent is not None
        assert by_id[chat.parent.span_id] is ask  # each model call inside its own turn
        assert chat.context.trace_id == ask.context.trace_id
    tools = sorted(s.name for s in spans if s.name.startswith("execute_tool ") and s not in asks)
    assert tools == ["execute_tool add", "execute_tool weather"]  # the malformed call never ran
    (run,) = [s for s in spans if s.name == "invoke_agent model-loop"]
    assert {s.context.trace_id for s in spans} == {run.context.trace_id}
