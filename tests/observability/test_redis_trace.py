"""One trace across processes: a turn sent from process A, run by a worker process B.

Real parts: a redis-server on loopback, a worker subprocess exporting over OTLP/HTTP to the
loopback receiver, and this process's own SDK exporting there too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from otlp_receiver import OTLPReceiver

from pygents import Agent, Turn, tool
from pygents.redis import RedisQueue

HERE = Path(__file__).resolve().parent
WORKER = HERE.parent / "integration" / "redis_worker.py"


def _redis_server() -> Any:
    spec = importlib.util.spec_from_file_location(
        "pygents_tests_redis_server", HERE.parent / "integration" / "redis_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.redis_server()


@pytest.mark.timeout(60)
def test_a_turn_sent_in_process_a_and_run_in_process_b_is_one_trace(tmp_path: Path) -> None:
    @tool()
    async def step(n: int) -> None: ...

    Agent("agent-000", "works", [step])
    log = tmp_path / "worker.jsonl"
    with OTLPReceiver() as receiver, _redis_server() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYGENTS_"))}
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), url, str(log), "b", "2", "--otel"], env=env
        )
        try:
            deadline = time.monotonic() + 30
            while not (log.exists() and '"ready"' in log.read_text()):
                assert worker.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            provider = TracerProvider(resource=Resource.create({"service.name": "process-a"}))
            provider.add_span_processor(
                SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
            )
            tracer = provider.get_tracer("process-a")

            async def request() -> None:
                queue = RedisQueue(url, tracer_provider=provider)
                with tracer.start_as_current_span("request"):
                    await queue.send("agent-000", Turn("step", kwargs={"n": 0}))
                await queue.aclose()

            asyncio.run(request())
            provider.shutdown()
            deadline = time.monotonic() + 20
            while '"ping"' not in log.read_text():  # step(0) sent ping(0) to agent-001
                assert time.monotonic() < deadline, "the worker never ran the turns"
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        spans = receiver.spans()

    by_name = {s.name: s for s in spans}
    request_span = by_name["request"]
    trace_id = request_span.span.trace_id
    names = {s.name for s in spans if s.span.trace_id == trace_id}
    expected = {
        "request",
        "send pygents:{agent-000}:turns",
        "process pygents:{agent-000}:turns",
        "execute_tool step",
        "send pygents:{agent-001}:turns",
        "process pygents:{agent-001}:turns",
        "execute_tool ping",
    }
    assert expected <= names, names

    def parent_of(name: str) -> str:
        span = by_name[name].span
        return next(s.name for s in spans if s.span.span_id == span.parent_span_id)

    assert parent_of("send pygents:{agent-000}:turns") == "request"
    assert parent_of("process pygents:{agent-000}:turns") == "send pygents:{agent-000}:turns"
    assert parent_of("execute_tool step") == "process pygents:{agent-000}:turns"
    assert parent_of("send pygents:{agent-001}:turns") == "execute_tool step"
    assert parent_of("process pygents:{agent-001}:turns") == "send pygents:{agent-001}:turns"
    assert parent_of("execute_tool ping") == "process pygents:{agent-001}:turns"
    # Two processes, one trace.
    services = {s.resource.get("service.name") for s in spans if s.span.trace_id == trace_id}
    assert services == {"process-a", "pygents-worker-b"}
    send = by_name["send pygents:{agent-000}:turns"]
    process = by_name["process pygents:{agent-000}:turns"]
    assert send.span.kind == SpanKind.PRODUCER.value + 1  # OTLP kinds are shifted by one
    assert process.span.kind == SpanKind.CONSUMER.value + 1
    assert send.attributes["messaging.system"] == "redis"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == "pygents:{agent-000}:turns"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.consumer.group.name"] == "pygents-workers"
    assert process.attributes["messaging.message.id"] == send.attributes["messaging.message.id"]
    assert process.attributes["messaging.client.id"] == "b"
    assert json.loads(log.read_text().splitlines()[-1])["t"] == "stats"
