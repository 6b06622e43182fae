"""Telemetry never loses a turn: whatever user hooks do, every execution is counted and ended.

Also: every tool invocation is counted (timeouts and cancellations as ``error``), every
execution gets its own span (recursion, interleaved streams), registry resets are visible,
and redaction covers exception messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from pygents import (
    Agent,
    AgentRegistry,
    HookRegistry,
    Turn,
    TurnHook,
    TurnTimeoutError,
    hook,
    tool,
)
from pygents.observability import ContentCapture, _instrument, instrument, is_instrumented
from pygents.observability._settings import REDACTION_FAILED
from pygents.testing import isolated_registries, reset_registries

EXECUTE = "execute_tool {}"
INVOKE = "invoke_agent {}"


def only(spans: list[Any]) -> Any:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def bridge_is_empty() -> bool:
    bridge = _instrument._bridge
    assert bridge is not None
    return not (bridge._turns or bridge._runs or bridge._routing or bridge._open)


def total(telemetry: Any, name: str, **labels: str) -> float:
    """Sum of a Prometheus family's samples whose labels include ``labels``."""
    found = 0.0
    for family in telemetry.registry.collect():
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                found += sample.value
    return found


async def test_a_raising_on_complete_hook_loses_nothing(telemetry: Any) -> None:
    calls = 0

    @hook(TurnHook.ON_COMPLETE)
    async def flaky(turn: Turn, reason: Any) -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise RuntimeError("audit sink down")

    @tool()
    async def step(n: int) -> int:
        return n

    failures = 0
    for i in range(1000):
        agent = Agent(f"flaky-{i % 10}", "d", [step])
        await agent.put(Turn(step, kwargs={"n": i}))
        try:
            async for _ in agent.run():
                pass
        except RuntimeError:
            failures += 1
        AgentRegistry.discard(agent.name, agent)
    assert failures == 500

    assert len(telemetry.by_name(EXECUTE.format("step"))) == 1000
    assert len(telemetry.by_name(INVOKE.format("flaky-0"))) == 100
    assert total(telemetry, "pygents_turns_total", tool="step") == 1000
    assert total(telemetry, "pygents_tool_invocations_total", tool="step", outcome="ok") == 1000
    for i in range(10):
        assert telemetry.sample("pygents_agent_running", {"agent": f"flaky-{i}"}) == 0
    assert bridge_is_empty()


async def test_a_hook_that_hangs_and_is_cancelled_still_ends_the_span(telemetry: Any) -> None:
    entered = asyncio.Event()

    @tool()
    async def quick() -> int:
        return 1

    turn = Turn(quick)

    @turn.before_run
    async def hangs(turn: Turn) -> None:
        entered.set()
        await asyncio.Event().wait()

    agent = Agent("hanger", "d", [quick])
    await agent.put(turn)

    async def consume() -> None:
        async for _ in agent.run():
            pass

    task = asyncio.create_task(consume())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = only(telemetry.by_name(EXECUTE.format("quick")))
    assert span.attributes["pygents.turn.stop_reason"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET
    run = only(telemetry.by_name(INVOKE.format("hanger")))
    assert run.end_time is not None
    labels = {"agent": "hanger", "tool": "quick", "stop_reason": "cancelled"}
    assert telemetry.sample("pygents_turns_total", labels) == 1
    assert telemetry.sample("pygents_agent_running", {"agent": "hanger"}) == 0
    # The tool never started: no invocation is counted.
    assert total(telemetry, "pygents_tool_invocations_total", tool="quick") == 0
    assert bridge_is_empty()


async def test_a_tool_vetoed_by_before_invoke_has_a_real_duration(telemetry: Any) -> None:
    @tool()
    async def withdraw(amount: int) -> int:
        return amount

    @withdraw.before_invoke
    async def validate(amount: int) -> None:
        if amount < 0:
            raise ValueError("amount must be positive")

    with pytest.raises(ValueError):
        await Turn(withdraw, args=[-5]).returning()
    with pytest.raises(ValueError):
        await withdraw(-5)

    assert total(telemetry, "pygents_tool_invocations_total", tool="withdraw") == 2
    assert total(telemetry, "pygents_tool_invocations_total", outcome="error") == 2
    count = telemetry.sample("pygents_tool_duration_seconds_count", {"tool": "withdraw"})
    seconds = telemetry.sample("pygents_tool_duration_seconds_sum", {"tool": "withdraw"})
    assert count == 2
    assert seconds is not None and 0 <= seconds < 1.0  # never the host's uptime
    spans = telemetry.by_name(EXECUTE.format("withdraw"))
    assert len(spans) == 2
    assert all(s.status.status_code is StatusCode.ERROR for s in spans)
    assert all(s.attributes["error.type"] == "ValueError" for s in spans)


async def test_timed_out_and_cancelled_invocations_are_counted(telemetry: Any) -> None:
    @tool()
    async def sleepy() -> int:
        await asyncio.sleep(10)
        return 1

    for _ in range(3):
        with pytest.raises(TurnTimeoutError):
            await Turn(sleepy, timeout=0.01).returning()
    task = asyncio.create_task(Turn(sleepy).returning())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    direct = asyncio.create_task(sleepy())
    await asyncio.sleep(0.01)
    direct.cancel()
    with pytest.raises(asyncio.CancelledError):
        await direct

    invocations = "pygents_tool_invocations_total"
    # The contract's two outcomes: a timeout or a cancellation is not "ok"; the turns'
    # stop_reason tells them apart (below).
    assert telemetry.sample(invocations, {"tool": "sleepy", "outcome": "error"}) == 5
    assert telemetry.sample(invocations, {"tool": "sleepy", "outcome": "ok"}) is None
    count = telemetry.sample("pygents_tool_duration_seconds_count", {"tool": "sleepy"})
    assert count == 5
    seconds = telemetry.sample("pygents_tool_duration_seconds_sum", {"tool": "sleepy"})
    assert seconds is not None and 0.03 <= seconds < 5
    timeouts = {"agent": "", "tool": "sleepy"}
    assert telemetry.sample("pygents_turn_timeouts_total", timeouts) == 3
    # Every execute_tool span says how it stopped, the direct call's too (no timeout there).
    reasons = sorted(
        s.attributes["pygents.turn.stop_reason"]
        for s in telemetry.by_name(EXECUTE.format("sleepy"))
    )
    assert reasons == ["cancelled", "cancelled", "timeout", "timeout", "timeout"]


async def test_direct_calls_carry_their_stop_reason(telemetry: Any) -> None:
    @tool()
    async def check(ok: bool) -> bool:
        if not ok:
            raise ValueError("no")
        return ok

    @tool()
    async def count(n: int) -> Any:
        for i in range(n):
            yield i

    assert await check(True)
    with pytest.raises(ValueError):
        await check(False)
    assert [v async for v in count(2)] == [0, 1]
    stream = count(5)
    async for _ in stream:
        break
    await stream.aclose()  # closed early: the stream did not finish
    by_values = {
        (s.name, s.attributes["pygents.turn.values"]): s.attributes["pygents.turn.stop_reason"]
        for s in telemetry.finished()
    }
    assert by_values == {
        (EXECUTE.format("check"), 1): "completed",
        (EXECUTE.format("check"), 0): "error",
        (EXECUTE.format("count"), 2): "completed",
        (EXECUTE.format("count"), 1): "cancelled",
    }


async def test_every_execution_gets_its_own_span(telemetry: Any) -> None:
    @tool()
    async def countdown(n: int) -> int:
        return 0 if n == 0 else 1 + await countdown(n - 1)

    assert await Turn(countdown, kwargs={"n": 3}).returning() == 3
    spans = telemetry.by_name(EXECUTE.format("countdown"))
    assert len(spans) == 4  # the turn and three direct calls, nested
    by_id = {s.context.span_id: s for s in spans}
    depth = {s.context.span_id: 0 for s in spans}
    for s in spans:
        p = s
        while p.parent is not None and p.parent.span_id in by_id:
            p = by_id[p.parent.span_id]
            depth[s.context.span_id] += 1
    assert sorted(depth.values()) == [0, 1, 2, 3]

    telemetry.spans.clear()

    @tool()
    async def spell(word: str):
        for ch in word:
            await asyncio.sleep(0)
            yield ch

    a, b = spell("ab"), spell("xyz")
    got = [await a.__anext__(), await b.__anext__(), await a.__anext__(), await b.__anext__()]
    got += [v async for v in b]
    got += [v async for v in a]
    assert got == ["a", "x", "b", "y", "z"]
    values = sorted(s.attributes["pygents.turn.values"] for s in telemetry.finished())
    assert values == [2, 3]
    yields = sorted(
        len([e for e in s.events if e.name == "pygents.tool.yield"]) for s in telemetry.finished()
    )
    assert yields == [2, 3]


async def test_registry_resets_switch_telemetry_off_visibly_and_instrument_restores_it(
    telemetry: Any,
) -> None:
    @tool()
    async def ping() -> int:
        return 1

    assert is_instrumented()
    with isolated_registries():
        # Hooks are cleared for the block: telemetry is off, and says so.
        assert not is_instrumented()

        @tool()
        async def pong() -> int:
            return 2

        assert await Turn(pong).returning() == 2
    assert telemetry.by_name(EXECUTE.format("pong")) == []
    assert is_instrumented()  # restored with the registries
    assert await Turn(ping).returning() == 1
    assert len(telemetry.by_name(EXECUTE.format("ping"))) == 1

    HookRegistry.clear()
    assert not is_instrumented()
    kwargs = {
        "tracer_provider": telemetry.tracer_provider,
        "meter_provider": telemetry.meter_provider,
        "prometheus_registry": telemetry.registry,
    }
    assert instrument(**kwargs)  # the same arguments bring it back
    assert is_instrumented()
    assert await Turn(ping).returning() == 1
    assert len(telemetry.by_name(EXECUTE.format("ping"))) == 2

    reset_registries()
    AgentRegistry.clear()
    assert not is_instrumented()
    assert instrument(**kwargs)
    assert is_instrumented()


@pytest.mark.parametrize(
    ("redact", "expected"),
    [
        (lambda text: text.replace("hunter2", "***"), "***"),
        (lambda text: 1 / 0, REDACTION_FAILED),
        (lambda text: None, REDACTION_FAILED),
    ],
    ids=["redacts", "raises", "not-a-string"],
)
async def test_redaction_applies_to_errors(telemetry: Any, redact: Any, expected: str) -> None:
    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
        capture_content=ContentCapture(enabled=False, redact=redact),
    )

    @tool()
    async def login(user: str) -> None:
        raise PermissionError(f"bad password hunter2 for {user}")

    with pytest.raises(PermissionError):
        await Turn(login, args=["ann"]).returning()
    span = only(telemetry.by_name(EXECUTE.format("login")))
    assert span.status.status_code is StatusCode.ERROR
    assert "hunter2" not in (span.status.description or "")
    assert expected in (span.status.description or "")
    (event,) = [e for e in span.events if e.name == "exception"]
    assert "hunter2" not in event.attributes["exception.message"]
    assert "hunter2" not in event.attributes["exception.stacktrace"]
    assert expected in event.attributes["exception.message"]
    assert event.attributes["exception.type"] == "PermissionError"
    assert span.attributes["error.type"] == "PermissionError"


class Refused(Exception):
    pass


async def test_a_redacted_exception_event_is_the_sdks_own_but_for_the_text(
    telemetry: Any,
) -> None:
    # exception.type is what record_exception() writes on this SDK (module-qualified for a
    # class outside builtins on newer ones): redaction changes only the message and stack.
    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
        capture_content=ContentCapture(enabled=False, redact=lambda t: t.replace("pin", "*")),
    )

    @tool()
    async def unlock() -> None:
        raise Refused("wrong pin")

    with pytest.raises(Refused):
        await Turn(unlock).returning()
    with telemetry.tracer_provider.get_tracer("reference").start_as_current_span("ref") as ref:
        ref.record_exception(Refused("wrong pin"))
    (event,) = only(telemetry.by_name(EXECUTE.format("unlock"))).events
    (expected,) = only(telemetry.by_name("ref")).events
    assert event.name == expected.name == "exception"
    assert list(event.attributes) == list(expected.attributes)
    assert event.attributes["exception.type"] == expected.attributes["exception.type"]
    assert event.attributes["exception.escaped"] == expected.attributes["exception.escaped"]
    assert event.attributes["exception.message"] == "wrong *"
    assert "wrong pin" not in event.attributes["exception.stacktrace"]
    assert "Refused" in event.attributes["exception.stacktrace"]
