"""Real instrumented clients, real servers on loopback, one trace per agent run (issue 9, item 2).

A tool's own work belongs to its turn's trace. The tools here call

- a small HTTP service through ``httpx``, instrumented by ``opentelemetry-instrumentation-httpx``;
- an OpenAI-compatible chat endpoint through ``openai.AsyncOpenAI``, instrumented by
  ``opentelemetry-instrumentation-openai-v2``;

and write log records (trace ids injected by ``opentelemetry-instrumentation-logging``) and
propagate their context by hand (``opentelemetry.propagate.inject``). Every span leaves through
the real OTLP/HTTP exporter to a receiver on 127.0.0.1 and is checked as decoded there: one trace
under ``invoke_agent``, each client span a child of the ``execute_tool`` span of the turn whose
code made it, and the downstream service sees that trace in the ``traceparent`` it receives.

Instrumentors patch process-global state: the ``pipeline`` fixture instruments with this test's
own providers (never the global ones) and uninstruments everything afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from loopback_servers import LoopbackService, load_otlp_receiver
from opentelemetry import propagate
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from pygents import Agent, Tool, Turn, tool
from pygents.observability import instrument, uninstrument

OTLPReceiver = load_otlp_receiver().OTLPReceiver

SERVICE = "instrumented-clients"
MODEL = "gpt-loopback"
LOGGER = "tests.instrumented_clients"
HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"
SPAN_KIND_CLIENT = 3
#: Variables that would change what the instrumentations record or where the exporter sends.
OTEL_ENV = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK",
    "OTEL_PYTHON_LOG_CORRELATION",
    "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
)
#: (instrumentor, what its ``instrument()`` is given besides the tracer provider)
INSTRUMENTORS: tuple[tuple[Any, dict[str, Any]], ...] = (
    (HTTPXClientInstrumentor(), {"meter_provider": NoOpMeterProvider()}),
    (
        OpenAIInstrumentor(),
        {"meter_provider": NoOpMeterProvider(), "logger_provider": NoOpLoggerProvider()},
    ),
    # Only the record factory (otelTraceID / otelSpanID on every record): no handler on the
    # root logger, no logging.basicConfig().
    (
        LoggingInstrumentor(),
        {"inject_trace_context": True, "enable_log_auto_instrumentation": False},
    ),
)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Pipeline:
    """The downstream service, the OTLP receiver and the tracer provider exporting to it."""

    service: LoopbackService
    receiver: Any  # otlp_receiver.OTLPReceiver
    tracer_provider: TracerProvider

    def exported(self) -> list[Any]:
        """Flush the exporter and return every span the receiver decoded."""
        assert self.tracer_provider.force_flush(10_000), "the OTLP exporter did not flush"
        assert self.receiver.errors == []
        return list(self.receiver.spans())


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """Instrument pygents, httpx, openai and logging with one provider exporting over OTLP."""
    for name in OTEL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback only, never via a proxy
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for instrumentor, _ in INSTRUMENTORS:
        assert not instrumentor.is_instrumented_by_opentelemetry, f"{instrumentor!r} leaked"
    with LoopbackService() as service, OTLPReceiver() as receiver:
        provider = TracerProvider(
            resource=Resource.create({"service.name": SERVICE}), shutdown_on_exit=False
        )
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
        )
        try:
            assert instrument(
                tracer_provider=provider, meter_provider=False, prometheus_registry=False
            )
            for instrumentor, options in INSTRUMENTORS:
                instrumentor.instrument(tracer_provider=provider, **options)
            yield Pipeline(service, receiver, provider)
        finally:
            for instrumentor, _ in reversed(INSTRUMENTORS):
                if instrumentor.is_instrumented_by_opentelemetry:
                    instrumentor.uninstrument()
            uninstrument()
            provider.shutdown()


@pytest.fixture(autouse=True)
def _no_context_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No test here may make OpenTelemetry fail to detach a context (a leaked or lost parent)."""
    yield
    failures = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name.startswith("opentelemetry") and r.levelno >= logging.ERROR
    ]
    assert failures == []


# --------------------------------------------------------------------------- tools and agents


def define_tools(base_url: str) -> list[Tool]:
    """Tools whose code calls the loopback service through the instrumented clients."""

    def http_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, timeout=10)

    def llm_client() -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key="test", max_retries=0, timeout=10
        )

    async def ask(llm: openai.AsyncOpenAI, question: str) -> str | None:
        completion = await llm.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question}]
        )
        return completion.choices[0].message.content

    @tool()
    async def weather(city: str) -> dict[str, Any]:
        """Look the weather up over HTTP."""
        async with http_client() as http:
            response = await http.get("/weather", params={"city": city})
            response.raise_for_status()
            return dict(response.json())

    @tool()
    async def ask_llm(question: str) -> str | None:
        """Ask the chat model a question."""
        async with llm_client() as llm:
            return await ask(llm, question)

    @tool()
    async def brief(city: str):
        """Stream a weather report, then the model's summary of it: one call per step."""
        async with http_client() as http:
            report = (await http.get("/weather", params={"city": city})).json()
        yield report
        async with llm_client() as llm:
            yield await ask(llm, f"summarise {report['city']}")

    @tool()
    async def relay(question: str):
        """Relay the model's answer as it streams in, one chunk per value."""
        async with llm_client() as llm:
            stream = await llm.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": question}],
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    return [weather, ask_llm, brief, relay]


async def run_agent(name: str, tools: Sequence[Tool], turns: list[Turn]) -> list[tuple[str, Any]]:
    agent = Agent(name, "calls services on loopback", list(tools))
    for turn in turns:
        await agent.put(turn)
    return [(turn.tool.metadata.name, value) async for turn, value in agent.run()]


# --------------------------------------------------------------------------- span helpers


def named(spans: list[Any], name: str) -> list[Any]:
    return [s for s in spans if s.name == name]


def named_prefix(spans: list[Any], prefix: str) -> list[Any]:
    return [s for s in spans if s.name.startswith(prefix)]


def parent_of(span: Any, spans: list[Any]) -> Any | None:
    """The received span that is ``span``'s parent (None for a root or an unknown parent)."""
    parent_id = span.span.parent_span_id
    found = [s for s in spans if parent_id and s.span.span_id == parent_id]
    assert len(found) <= 1
    return found[0] if found else None


def children_names(span: Any, spans: list[Any]) -> list[str]:
    return sorted(s.name for s in spans if s.span.parent_span_id == span.span.span_id)


def http_client_spans(spans: list[Any]) -> list[Any]:
    return [s for s in spans if s.scope_name == HTTPX_SCOPE]


def url_of(span: Any) -> str:
    attributes = span.attributes
    return str(attributes.get("url.full") or attributes.get("http.url"))


def traceparent(header: str) -> tuple[str, str]:
    """``(trace id, parent span id)`` of a W3C ``traceparent``, in lower-case hex."""
    version, trace_id, span_id, flags = header.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16, header
    assert int(flags, 16) & 1, f"not sampled: {header}"
    return trace_id, span_id


# --------------------------------------------------------------------------- tests


@pytest.mark.timeout(30)
async def test_an_httpx_call_in_a_tool_is_a_child_of_its_turn_and_carries_the_trace_downstream(
    pipeline: Pipeline,
) -> None:
    tools = define_tools(pipeline.service.url)
    turns = [Turn("weather", kwargs={"city": city}) for city in ("Oslo", "Quito")]

    results = await run_agent("forecaster", tools, turns)

    assert results == [
        ("weather", {"city": "Oslo", "temp_c": 4}),
        ("weather", {"city": "Quito", "temp_c": 5}),
    ]
    spans = pipeline.exported()
    turn_spans = named(spans, "execute_tool weather")
    gets = http_client_spans(spans)
    assert len(turn_spans) == 2 and len(gets) == 2, sorted(s.name for s in spans)
    # Each GET is a client span whose parent is the execute_tool span of the turn that sent it:
    # one GET per turn, never both under one turn, never a root of its own trace.
    parents = [parent_of(get, spans) for get in gets]
    assert all(get.span.kind == SPAN_KIND_CLIENT for get in gets)
    assert [p.name if p else None for p in parents] == ["execute_tool weather"] * 2
    assert {p.span.span_id for p in parents if p} == {t.span.span_id for t in turn_spans}
    for get, turn_span in zip(gets, parents, strict=True):
        assert get.span.trace_id == turn_span.span.trace_id

    # The service received the turn's trace: the traceparent names the turn's trace and the
    # client span (the instrumentation's own span, child of the turn) as its parent.
    received = [r for r in pipeline.service.requests if r.path.startswith("/weather")]
    assert len(received) == 2
    by_city = {url_of(get).rsplit("=", 1)[-1]: get for get in gets}
    for request in received:
        get = by_city[request.path.rsplit("=", 1)[-1]]
        assert "traceparent" in request.headers, request.headers
        assert traceparent(request.headers["traceparent"]) == (
            get.span.trace_id.hex(),
            get.span.span_id.hex(),
        )


@pytest.mark.timeout(30)
async def test_an_openai_chat_call_in_a_tool_is_a_child_of_its_turn(pipeline: Pipeline) -> None:
    tools = define_tools(pipeline.service.url)

    results = await run_agent(
        "assistant", tools, [Turn("ask_llm", kwargs={"question": "what is a turn?"})]
    )

    assert results == [("ask_llm", "echo: what is a turn?")]
    (request,) = pipeline.service.requests
    assert request.path == "/v1/chat/completions" and request.body["model"] == MODEL
    spans = pipeline.exported()
    (chat,) = named(spans, f"chat {MODEL}")
    (turn_span,) = named(spans, "execute_tool ask_llm")
    assert chat.span.kind == SPAN_KIND_CLIENT
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == MODEL
    assert chat.attributes["gen_ai.usage.input_tokens"] == 4  # the service's count: real answer
    assert chat.span.trace_id == turn_span.span.trace_id
    assert chat.span.parent_span_id == turn_span.span.span_id


@pytest.mark.timeout(30)
async def test_an_agent_run_with_real_clients_arrives_over_otlp_as_one_trace(
    pipeline: Pipeline,
) -> None:
    tools = define_tools(pipeline.service.url)
    turns = [
        Turn("weather", kwargs={"city": "Oslo"}),
        Turn("ask_llm", kwargs={"question": "pack an umbrella?"}),
        Turn("brief", kwargs={"city": "Lima"}),
    ]

    results = await run_agent("concierge", tools, turns)

    assert results == [
        ("weather", {"city": "Oslo", "temp_c": 4}),
        ("ask_llm", "echo: pack an umbrella?"),
        ("brief", {"city": "Lima", "temp_c": 4}),
        ("brief", "echo: summarise Lima"),
    ]
    spans = pipeline.exported()
    chat = f"chat {MODEL}"
    assert Counter(s.name for s in spans) == {
        "invoke_agent concierge": 1,
        "execute_tool weather": 1,
        "execute_tool ask_llm": 1,
        "execute_tool brief": 1,
        "GET": 2,
        chat: 2,
    }
    # One trace, rooted at the agent run; every other span has its parent in that trace.
    assert {s.span.trace_id for s in spans} == {spans[0].span.trace_id}
    roots = [s for s in spans if not s.span.parent_span_id]
    assert [r.name for r in roots] == ["invoke_agent concierge"]
    (root,) = roots
    assert all(parent_of(s, spans) is not None for s in spans if s is not root)
    assert {s.resource.get("service.name") for s in spans} == {SERVICE}
    # The tree: turns under the run, each client span under the turn whose code made it
    # (the streaming tool's two steps both under its one span).
    assert children_names(root, spans) == [
        "execute_tool ask_llm",
        "execute_tool brief",
        "execute_tool weather",
    ]
    tree = {s.name: children_names(s, spans) for s in named_prefix(spans, "execute_tool ")}
    assert tree == {
        "execute_tool weather": ["GET"],
        "execute_tool ask_llm": [chat],
        "execute_tool brief": ["GET", chat],
    }
    # Downstream, the HTTP service saw the same trace.
    headers = [
        r.headers.get("traceparent", "") for r in pipeline.service.requests if r.method == "GET"
    ]
    assert len(headers) == 2
    assert {traceparent(h)[0] for h in headers} == {root.span.trace_id.hex()}


@pytest.mark.timeout(30)
async def test_log_records_and_injected_context_in_a_tool_carry_its_turn_span(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger(LOGGER)
    carriers: dict[str, list[dict[str, str]]] = {"note": [], "steps": []}

    def injected(into: str) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        carriers[into].append(carrier)

    @tool()
    async def note(topic: str) -> str:
        """Log a note and propagate the context."""
        log.info("note %s", topic)
        injected("note")
        return topic

    @tool()
    async def steps(n: int):
        """Log and propagate in every step of a stream."""
        for i in range(n):
            log.info("step %d", i)
            injected("steps")
            yield i

    async def run() -> list[tuple[str, Any]]:
        agent = Agent("scribe", "logs from its tools", [note, steps])
        await agent.put(Turn("note", kwargs={"topic": "seen"}))
        await agent.put(Turn("steps", kwargs={"n": 2}))
        results = []
        async for turn, value in agent.run():
            log.info("consumer got %s", value)  # the consumer's code, between values
            results.append((turn.tool.metadata.name, value))
        return results

    with caplog.at_level(logging.INFO, logger=LOGGER):
        results = await run()
        log.info("after the run")

    assert results == [("note", "seen"), ("steps", 0), ("steps", 1)]
    spans = pipeline.exported()
    (note_span,) = named(spans, "execute_tool note")
    (steps_span,) = named(spans, "execute_tool steps")
    turn_ids = {
        "note": (note_span.span.trace_id.hex(), note_span.span.span_id.hex()),
        "steps": (steps_span.span.trace_id.hex(), steps_span.span.span_id.hex()),
    }
    ids = {r.getMessage(): (r.otelTraceID, r.otelSpanID) for r in caplog.records}  # type: ignore[attr-defined]
    # Log records written in a tool carry its turn's trace and span ids, in every step.
    assert ids["note seen"] == turn_ids["note"]
    assert ids["step 0"] == ids["step 1"] == turn_ids["steps"]
    # ... and only there: not in the consumer between values, nor after the run.
    for value in ("seen", "0", "1"):
        assert ids[f"consumer got {value}"][1] not in {span for _, span in turn_ids.values()}
    assert ids["after the run"] == ("0", "0")
    # propagate.inject() in a tool gives a traceparent naming the turn's span as the parent.
    assert [traceparent(c["traceparent"]) for c in carriers["note"]] == [turn_ids["note"]]
    assert [traceparent(c["traceparent"]) for c in carriers["steps"]] == [turn_ids["steps"]] * 2


@pytest.mark.timeout(30)
async def test_a_tool_relaying_an_openai_stream_keeps_the_chat_span_under_its_turn(
    pipeline: Pipeline,
) -> None:
    tools = define_tools(pipeline.service.url)
    consumer = pipeline.tracer_provider.get_tracer("consumer")
    agent = Agent("relayer", "streams a model's answer", tools)
    await agent.put(Turn("relay", kwargs={"question": "stream this answer"}))

    chunks = []
    async for _turn, value in agent.run():
        # The consumer's own work between two chunks, while the chat span is still open.
        with consumer.start_as_current_span("consumer handles a chunk"):
            chunks.append(value)

    assert chunks == ["echo:", " stream", " this", " answer"]
    spans = pipeline.exported()
    (turn_span,) = named(spans, "execute_tool relay")
    (chat,) = named(spans, f"chat {MODEL}")
    handled = named(spans, "consumer handles a chunk")
    # The chat span, opened in the tool's first step and ended when the stream ran out (the
    # usage chunk comes last), is under the turn.
    assert chat.span.parent_span_id == turn_span.span.span_id
    assert chat.span.trace_id == turn_span.span.trace_id
    assert chat.attributes["gen_ai.usage.output_tokens"] == 4
    # Between two chunks neither the turn's span nor the open chat span is current.
    assert len(handled) == len(chunks)
    inside = {turn_span.span.span_id, chat.span.span_id}
    assert not [s for s in handled if s.span.parent_span_id in inside]


CITIES = ("Lima", "Quito", "Nairobi", "Helsinki", "Wellington", "Ulaanbaatar")


@pytest.mark.timeout(30)
async def test_concurrent_agents_nest_their_client_spans_under_their_own_turns(
    pipeline: Pipeline,
) -> None:
    tools = define_tools(pipeline.service.url)

    async def one(city: str) -> list[tuple[str, Any]]:
        turns = [
            Turn("weather", kwargs={"city": city}),
            Turn("ask_llm", kwargs={"question": city}),
        ]
        return await run_agent(f"agent-{city}", tools, turns)

    results = await asyncio.gather(*(one(city) for city in CITIES))

    assert results == [
        [("weather", {"city": city, "temp_c": len(city)}), ("ask_llm", f"echo: {city}")]
        for city in CITIES
    ]
    spans = pipeline.exported()
    runs = named_prefix(spans, "invoke_agent ")
    run_of_trace = {s.span.trace_id: s.attributes["gen_ai.agent.name"] for s in runs}
    assert sorted(run_of_trace.values()) == sorted(f"agent-{city}" for city in CITIES)
    # Each client span sits under a turn span of its own agent's trace: the GET names its city in
    # the URL, the chat answer's id encodes the question's length (all cities differ in length).
    city_of_length = {len(city): city for city in CITIES}
    clients = [*http_client_spans(spans), *named(spans, f"chat {MODEL}")]
    assert len(clients) == 2 * len(CITIES)
    for client in clients:
        if client.name == "GET":
            city, expected_parent = url_of(client).rsplit("=", 1)[-1], "execute_tool weather"
        else:
            length = int(client.attributes["gen_ai.response.id"].removeprefix("chatcmpl-"))
            city, expected_parent = city_of_length[length], "execute_tool ask_llm"
        parent = parent_of(client, spans)
        assert parent is not None and parent.name == expected_parent, (client.name, city)
        assert run_of_trace[client.span.trace_id] == f"agent-{city}"
        assert parent.span.trace_id == client.span.trace_id
    # Downstream, every request carried its own agent's trace.
    trace_of_agent = {agent: trace.hex() for trace, agent in run_of_trace.items()}
    for request in pipeline.service.requests:
        if request.method == "GET":
            city = request.path.rsplit("=", 1)[-1]
            assert traceparent(request.headers["traceparent"])[0] == trace_of_agent[f"agent-{city}"]
