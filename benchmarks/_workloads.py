"""Workloads shared by the pytest-benchmark suite, the CI guard and the plots.

Everything here is plain pygents code, with no telemetry import at module level, so a
process that blocks the telemetry packages (see ``block_telemetry``) can import it.

Each ``*_round`` coroutine does ``n`` operations of one kind; callers time it (externally
with pytest-benchmark, or internally with ``time.perf_counter`` in the guard) and divide by
``n`` to get a per-operation cost.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

from _blocker import TELEMETRY_PACKAGES as TELEMETRY_PACKAGES
from _blocker import block_telemetry as block_telemetry

from pygents import (
    Agent,
    AgentRegistry,
    ContextItem,
    ContextPool,
    ContextQueue,
    Turn,
    TurnHook,
    current_agent,
    hook,
    tool,
)

_names = itertools.count()


def unique(prefix: str) -> str:
    """A name no other tool or agent of this process has."""
    return f"{prefix}_{next(_names)}"


# -- tools ------------------------------------------------------------------------------


def trivial_tool(name: str | None = None, tags: Sequence[str] | None = None) -> Any:
    """A registered coroutine tool that returns its argument: the cheapest possible turn."""

    async def trivial(x: int) -> int:
        return x

    trivial.__name__ = trivial.__qualname__ = name or unique("trivial")
    return tool(tags=tags)(trivial)


def streaming_tool(values: int, name: str | None = None) -> Any:
    """A registered async-generator tool yielding ``values`` integers per turn."""

    async def stream(x: int) -> AsyncIterator[int]:
        for i in range(values):
            yield x + i

    stream.__name__ = stream.__qualname__ = name or unique("stream")
    return tool()(stream)


def chain_tool(name: str | None = None) -> Any:
    """A registered tool that returns the next ``Turn`` of itself until ``left`` is 0.

    Tool-driven flow control: every turn but the last enqueues its successor.
    """
    fn_name = name or unique("chain")

    async def chain(left: int) -> Any:
        if left > 1:
            return Turn(fn_name, kwargs={"left": left - 1})
        return left

    chain.__name__ = chain.__qualname__ = fn_name
    return tool()(chain)


def failing_tool(name: str | None = None) -> Any:
    """A registered coroutine tool that raises ``ValueError``: a failed turn."""

    async def failing(x: int) -> int:
        raise ValueError(x)

    failing.__name__ = failing.__qualname__ = name or unique("failing")
    return tool()(failing)


def context_tool(name: str | None = None) -> Any:
    """A registered tool returning a ``ContextItem``: without id (to the agent's context
    queue) for an even ``x``, with one (to its pool) for an odd ``x``."""

    async def remember(x: int) -> ContextItem:
        if x % 2:
            return ContextItem(content=x, id=f"k{x}", description="a note")
        return ContextItem(content=x)

    remember.__name__ = remember.__qualname__ = name or unique("remember")
    return tool()(remember)


def suspending_tool(name: str | None = None) -> Any:
    """A registered coroutine tool that suspends once (``asyncio.sleep(0)``) and returns its
    argument: the path of a tool that awaits I/O, whose turn's timeout is armed."""

    async def suspending(x: int) -> int:
        await asyncio.sleep(0)
        return x

    suspending.__name__ = suspending.__qualname__ = name or unique("suspending")
    return tool()(suspending)


def injected_tool(name: str | None = None) -> Any:
    """A registered coroutine tool that takes the agent's context queue (context injection)
    and returns its argument: a tool the run loop cannot call bare."""

    async def injected(x: int, memory: ContextQueue | None = None) -> int:
        return x

    injected.__name__ = injected.__qualname__ = name or unique("injected")
    return tool()(injected)


def sending_tools() -> tuple[Any, Any, str]:
    """A sender tool whose turn sends a ``Turn`` of the receiver tool to the agent named by
    the third item (to be created with the receiver), and the receiver tool."""
    receiver_agent = unique("receiver_agent")
    receiver_tool = trivial_tool()
    receive_name = receiver_tool.metadata.name

    async def sender(x: int) -> int:
        me = current_agent()
        assert me is not None
        await me.send(receiver_agent, Turn(receive_name, kwargs={"x": x}))
        return x

    sender.__name__ = sender.__qualname__ = unique("sender")
    return tool()(sender), receiver_tool, receiver_agent


def noop_hook(prefix: str) -> Any:
    """An ``async def`` that does nothing, named uniquely (hooks register by name)."""

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    nothing.__name__ = nothing.__qualname__ = unique(prefix)
    return nothing


def agent_with(tools: Sequence[Any], name: str | None = None, **kwargs: Any) -> Agent:
    """A new registered agent."""
    return Agent(name or unique("bench"), "benchmark agent", list(tools), **kwargs)


def forget(agent: Agent) -> None:
    """Unregister an agent (so its name can be reused and it can be garbage-collected)."""
    AgentRegistry.discard(agent.name, agent)


# -- the operations ---------------------------------------------------------------------


def row_workload(workload: str) -> tuple[Agent, Any, Callable[[int], Awaitable[None]]]:
    """The agent, tool and ``once(n)`` of a workload of ``callgrind_turns.py``'s rows.

    ``once(n)``: ``queue``, ``stream10``, ``put_drain``, ``hooked``, ``context``,
    ``suspend`` and ``injected`` put n turns and drain them, ``short_runs`` runs n one-turn
    runs, ``errors`` n one-turn runs whose tool raises (each run ends with the error,
    caught), ``chain`` runs a chain of n turns each returned by the one before, ``send`` puts
    n turns whose tool each sends a turn to a second agent, drains the agent, then the
    second agent.

    ``hooked``: the queue with an agent ``after_turn`` hook, a tool ``before_invoke`` hook
    and a global ``before_run`` hook whose tags match no turn (each does nothing): the
    hook-dispatching path of a turn. ``context``: each turn's tool returns a ``ContextItem``,
    routed to the agent's context queue (limit 10) or, every other turn, its pool (limit
    100): both evict once full. ``suspend``: each turn's tool suspends once (a round trip
    through the event loop, the turn's timeout armed and disarmed). ``injected``: the tool
    takes the agent's context queue (injected), so it is called through its invocation.
    """
    kwargs: dict[str, Any] = {}
    receiver: Agent | None = None
    if workload == "stream10":
        tool_ = streaming_tool(10)
    elif workload == "chain":
        tool_ = chain_tool()
    elif workload == "errors":
        tool_ = failing_tool()
    elif workload == "context":
        tool_ = context_tool()
        kwargs["context_pool"] = ContextPool(limit=100)
    elif workload == "suspend":
        tool_ = suspending_tool()
    elif workload == "injected":
        tool_ = injected_tool()
    elif workload == "send":
        tool_, receiving, receiver_name = sending_tools()
        receiver = agent_with([receiving], receiver_name)
    else:
        tool_ = trivial_tool()
    agent = agent_with([tool_], **kwargs)
    if workload == "hooked":
        agent.after_turn(noop_hook("after_turn"))
        tool_.before_invoke(noop_hook("before_invoke"))
        hook(TurnHook.BEFORE_RUN, tags=["elsewhere"])(noop_hook("global_before_run"))
    name = tool_.metadata.name

    async def once(n: int) -> None:
        if workload == "chain":
            await agent.put(Turn(name, kwargs={"left": n}))
            await drain(agent)
        elif workload == "short_runs":
            for i in range(n):
                await agent.put(Turn(tool_, kwargs={"x": i}))
                await drain(agent)
        elif workload == "send":
            assert receiver is not None
            await put_round(agent, tool_, n)
            await drain(agent)
            await drain(receiver)
        elif workload == "errors":
            for i in range(n):
                await agent.put(Turn(tool_, kwargs={"x": i}))
                try:
                    await drain(agent)
                except ValueError:
                    pass
        else:
            await put_round(agent, tool_, n)
            await drain(agent)

    return agent, tool_, once


async def calibration_round(fn: Callable[[int], Awaitable[Any]], n: int) -> None:
    """The guard's yardstick: ``n`` bare awaits of ``fn`` under ``asyncio.timeout(60)``."""
    for i in range(n):
        async with asyncio.timeout(60):
            await fn(i)


async def put_round(agent: Agent, tool_: Any, n: int) -> None:
    """``n`` times ``Turn(tool, kwargs=...)`` + ``agent.put``."""
    put = agent.put
    for i in range(n):
        await put(Turn(tool_, kwargs={"x": i}))


async def drain(agent: Agent) -> int:
    """Run the agent until its queue is empty; return how many values it yielded."""
    count = 0
    async for _ in agent.run():
        count += 1
    return count


async def timed_put_round(agent: Agent, tool_: Any, n: int) -> float:
    t0 = perf_counter()
    await put_round(agent, tool_, n)
    return perf_counter() - t0


async def timed_drain(agent: Agent) -> float:
    t0 = perf_counter()
    await drain(agent)
    return perf_counter() - t0


async def timed_calibration(fn: Callable[[int], Awaitable[Any]], n: int) -> float:
    t0 = perf_counter()
    await calibration_round(fn, n)
    return perf_counter() - t0


async def drain_many(agents: Sequence[Agent]) -> None:
    """Run every agent concurrently (one task each) until all queues are empty."""
    await asyncio.gather(*(drain(a) for a in agents))


def ping_pong_agents() -> tuple[Agent, Agent]:
    """Two agents whose tools ``send`` a turn to the other one until ``left`` reaches 0."""
    a_name, b_name = unique("ping_agent"), unique("pong_agent")
    ping_name, pong_name = unique("ping"), unique("pong")

    async def ping(left: int) -> int:
        if left > 0:
            me = current_agent()
            assert me is not None
            await me.send(b_name, Turn(pong_name, kwargs={"left": left - 1}))
        return left

    async def pong(left: int) -> int:
        if left > 0:
            me = current_agent()
            assert me is not None
            await me.send(a_name, Turn(ping_name, kwargs={"left": left - 1}))
        return left

    ping.__name__ = ping.__qualname__ = ping_name
    pong.__name__ = pong.__qualname__ = pong_name
    a = agent_with([tool()(ping)], a_name)
    b = agent_with([tool()(pong)], b_name)
    return a, b


async def ping_pong(a: Agent, b: Agent, messages: int) -> None:
    """``messages`` turns bounced between two agents with ``send`` (one run() per turn)."""
    ping = a.tools[0]
    await a.put(Turn(ping, kwargs={"left": messages - 1}))
    while len(a) or len(b):
        async for _ in a.run():
            pass
        async for _ in b.run():
            pass


def context_items(n: int, start: int = 0) -> list[ContextItem]:
    return [
        ContextItem(content={"n": i}, id=f"item-{i}", description=f"item number {i}")
        for i in range(start, start + n)
    ]


# -- worker subprocesses ----------------------------------------------------------------


class Worker:
    """A ``_worker.py`` subprocess measuring rounds on request.

    ``worker("runloop", n)`` returns the seconds per turn of one round, timed inside the
    worker (the pipe is not in the measurement).
    """

    def __init__(self, mode: str) -> None:
        env = dict(os.environ, PYTHONHASHSEED="0")
        env.pop("PYGENTS_TELEMETRY", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve().parent / "_worker.py"), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.hello: dict[str, Any] = json.loads(self._readline())

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.proc.wait()}")
        return line

    def __call__(self, what: str, n: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{what} {n}\n")
        self.proc.stdin.flush()
        return float(self._readline()) / n

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


# -- telemetry modes --------------------------------------------------------------------


#: Telemetry modes measured in one process (``not installed`` needs its own process).
IN_PROCESS_MODES = (
    "installed_off",
    "noop",
    "sdk",
    "sdk_prometheus",
    "sdk_prometheus_metrics",
    "sdk_otlp",
)

MODE_LABELS = {
    "not_installed": "not installed",
    "installed_off": "installed, PYGENTS_TELEMETRY=off",
    "noop": "no-op providers",
    "sdk": "SDK tracer (batch, discarding exporter)",
    "sdk_prometheus": "SDK tracer + Prometheus",
    "sdk_prometheus_metrics": "SDK tracer + Prometheus + SDK metrics",
    "sdk_otlp": "SDK tracer, exporter encoding OTLP protobuf (then discarding it)",
}


def discarding_tracer_provider(owner: Any, encode: bool = False, threadless: bool = False) -> Any:
    """An SDK ``TracerProvider`` with the batch processor and an exporter that drops the
    spans, counting them in ``owner.exported``; with ``encode``, it first encodes them as an
    OTLP exporter does (protobuf bytes), the work a real exporter adds.

    The processor exports only when flushed (a queue and batch larger than any run, no timer
    in practice), so measurements see the export at a point they choose, on their thread.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    encode_spans: Any = None
    if encode:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    class Discard(SpanExporter):
        """Counts the spans it is given (encoding them first, if asked) and drops them."""

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            if encode_spans is not None:
                owner.encoded += len(encode_spans(spans).SerializeToString())
            owner.exported += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    if threadless:
        # For instruction counts: the batch processor's work on the event loop's thread, with
        # no worker thread whose wake-ups (GIL switch requests) would move the count.
        provider.add_span_processor(flush_only_batch_processor(Discard()))
        return provider
    provider.add_span_processor(
        BatchSpanProcessor(
            Discard(),
            max_queue_size=1 << 20,
            max_export_batch_size=1 << 20,
            schedule_delay_millis=3_600_000,
        )
    )
    return provider


def _flush_only_processor() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class FlushOnly(SpanProcessor):  # type: ignore[misc]
        """A batch span processor without a thread: ends queue, ``force_flush`` exports.

        ``on_start`` is inherited (the base no-op, like ``BatchSpanProcessor``'s), so the
        bridge's fast span path sees a processor it knows and the guard measures what users
        of the batch processor get.
        """

        def __init__(self, exporter: Any) -> None:
            self._exporter = exporter
            self._queue: collections.deque[Any] = collections.deque()

        def on_end(self, span: Any) -> None:
            if span.context.trace_flags.sampled:
                self._queue.append(span)

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            if self._queue:
                batch = list(self._queue)
                self._queue.clear()
                self._exporter.export(batch)
            return True

        def shutdown(self) -> None:
            self.force_flush()

    return FlushOnly


def flush_only_batch_processor(exporter: Any) -> Any:
    """The thread-free batch processor of the instruction-count guard (see above)."""
    return _flush_only_processor()(exporter)


class TelemetryMode:
    """Context manager: install one telemetry mode, and uninstrument on exit.

    ``installed_off`` expects the process to have been started with
    ``PYGENTS_TELEMETRY=off`` (so ``import pygents`` skipped auto-instrumentation) and
    installs nothing.
    """

    def __init__(self, mode: str, threadless: bool = False) -> None:
        if mode not in IN_PROCESS_MODES:
            raise ValueError(f"unknown telemetry mode {mode!r}")
        self.mode = mode
        self.exported = 0
        self.encoded = 0  # bytes of OTLP protobuf made by the sdk_otlp mode
        self.threadless = threadless
        self.tracer_provider: Any = None
        self.meter_provider: Any = None

    def __enter__(self) -> TelemetryMode:
        from pygents.observability import is_instrumented

        if self.mode == "installed_off":
            if is_instrumented():
                raise RuntimeError("telemetry is on: start the process with PYGENTS_TELEMETRY=off")
            return self

        from opentelemetry import metrics, trace

        from pygents.observability import instrument

        if self.mode == "noop":
            installed = instrument(
                tracer_provider=trace.NoOpTracerProvider(),
                meter_provider=metrics.NoOpMeterProvider(),
                prometheus_registry=False,
            )
            assert not installed  # no-op providers: the bridge is not even registered
            return self

        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from prometheus_client import CollectorRegistry

        self.tracer_provider = discarding_tracer_provider(
            self, encode=self.mode == "sdk_otlp", threadless=self.threadless
        )
        registry: Any = CollectorRegistry() if "prometheus" in self.mode else False
        if self.mode.endswith("metrics"):
            # A reader that collects only when asked: nothing is collected during the run.
            self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
            meter_provider = self.meter_provider
        else:
            meter_provider = metrics.NoOpMeterProvider()
        installed = instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=meter_provider,
            prometheus_registry=registry,
        )
        assert installed
        return self

    def flush(self) -> None:
        """Export every finished span (so ``exported`` is complete)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()

    def __exit__(self, *exc: object) -> None:
        if self.mode == "installed_off":
            return
        from pygents.observability import uninstrument

        uninstrument()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


class SdkFloor:
    """The least the telemetry contract can cost per turn, with no pygents hook at all.

    The run loop drives a tool that itself starts and ends one OpenTelemetry SDK span per
    call, as the bridge's ``execute_tool`` span: the contract's 7 attributes, a parent
    context, the batch processor and a discarding exporter. With ``metrics``, the tool also
    records 4 SDK histograms per turn: the contract's 3 (turn, tool and queue-wait duration)
    and ``gen_ai.execute_tool.duration``, which the contract had when the floor was written
    and has no longer. Whatever a bridge does on top (hook dispatch, bookkeeping, Prometheus)
    comes on top of this.
    """

    def __init__(self, metrics: bool) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        self.exported = 0
        self.tracer_provider = discarding_tracer_provider(self)
        self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        tracer = self.tracer_provider.get_tracer("pygents-floor")
        parent = tracer.start_span("invoke_agent floor")
        context = trace.set_span_in_context(parent)
        kind = trace.SpanKind.INTERNAL
        name = unique("floor")
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.description": "A registered coroutine tool that returns its argument",
            "pygents.turn.timeout": 60.0,
            "pygents.turn.stop_reason": "completed",
            "pygents.turn.values": 1,
        }
        meter = self.meter_provider.get_meter("pygents-floor")
        turn_attrs = {"gen_ai.agent.name": "a", "gen_ai.tool.name": name, "s": "completed"}
        one_attr = {"gen_ai.tool.name": name}
        histograms = [
            (meter.create_histogram(n, unit="s"), a)
            for n, a in (
                ("floor.turn.duration", turn_attrs),
                ("floor.tool.duration", one_attr),
                ("floor.queue_wait", {"gen_ai.agent.name": "a"}),
                ("floor.execute_tool.duration", one_attr),
            )
        ]
        empty = Context()

        async def floor(x: int) -> int:
            start = time.time_ns()
            tracer.start_span(
                name, context=context, kind=kind, attributes=attributes, start_time=start
            ).end()
            if metrics:
                for histogram, attrs in histograms:
                    histogram.record(0.001, attrs, empty)
            return x

        floor.__name__ = floor.__qualname__ = name
        self.tool = tool()(floor)

    def flush(self) -> None:
        self.tracer_provider.force_flush()

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
