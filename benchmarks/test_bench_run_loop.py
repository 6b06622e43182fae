"""Run loop cost per turn: coroutine and streaming tools, hooks, flow control, send.

Every benchmark drains an agent whose queue was filled in the (untimed) setup, telemetry
off, and reports the median time per turn (per yielded value for the streaming tool, per
message for ping-pong).
"""

from __future__ import annotations

import asyncio
from typing import Any

import _workloads as w
import pytest

from pygents import AgentHook, ToolHook, Turn, TurnHook, hook

N = 2000  # turns per round
ROUNDS = 30

pytestmark = pytest.mark.benchmark(group="run loop")


def _bench_drain(per_op: Any, runner: asyncio.Runner, agent: Any, tool_: Any, **extra: Any) -> None:
    def setup() -> None:
        runner.run(w.put_round(agent, tool_, N))

    def target() -> None:
        runner.run(w.drain(agent))

    per_op(target, ops=N, rounds=ROUNDS, setup=setup, **extra)


def test_coroutine_tool(per_op: Any, runner: asyncio.Runner) -> None:
    """The guarded case: a trivial coroutine tool, no hooks, telemetry off."""
    trivial = w.trivial_tool()
    _bench_drain(per_op, runner, w.agent_with([trivial]), trivial)


def test_async_gen_tool_per_value(per_op: Any, runner: asyncio.Runner) -> None:
    values = 10
    stream = w.streaming_tool(values)
    agent = w.agent_with([stream])
    turns = N // values

    def setup() -> None:
        runner.run(w.put_round(agent, stream, turns))

    def target() -> None:
        assert runner.run(w.drain(agent)) == turns * values

    per_op(target, ops=turns * values, rounds=ROUNDS, setup=setup, unit="value")


def _named(name: str) -> Any:
    async def fn(*args: Any, **kwargs: Any) -> None:
        return None

    fn.__name__ = fn.__qualname__ = w.unique(name)
    return fn


@pytest.mark.parametrize("count", [1, 5])
def test_instance_hooks(per_op: Any, runner: asyncio.Runner, count: int) -> None:
    """1 hook: agent.after_turn. 5 hooks, each firing once per turn: agent before_turn,
    on_turn_value, after_turn, on_complete (a TurnHook set on the agent) and the tool's
    after_invoke."""
    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])
    agent.after_turn(_named("after_turn"))
    if count == 5:
        agent.before_turn(_named("before_turn"))
        agent.on_turn_value(_named("on_turn_value"))
        agent.on_complete(_named("on_complete"))
        trivial.after_invoke(_named("after_invoke"))
    _bench_drain(per_op, runner, agent, trivial, hooks=count)


@pytest.mark.parametrize(
    "tagged", [False, True], ids=["untagged-all-fire", "tag-filtered-none-fire"]
)
def test_global_hooks(per_op: Any, runner: asyncio.Runner, tagged: bool) -> None:
    """5 global hooks on five per-turn events. Untagged, they all fire; tagged with a tag the
    agent, turn and tool do not have, they are all filtered out (the cost of looking)."""
    tags = ["elsewhere"] if tagged else None
    for hook_type in (
        AgentHook.BEFORE_TURN,
        AgentHook.ON_TURN_VALUE,
        AgentHook.AFTER_TURN,
        TurnHook.ON_COMPLETE,
        ToolHook.AFTER_INVOKE,
    ):
        hook(hook_type, tags=tags)(_named(hook_type.value))
    trivial = w.trivial_tool(tags=["bench"])
    agent = w.agent_with([trivial], tags=["bench"])
    _bench_drain(per_op, runner, agent, trivial, global_hooks=5, tagged=tagged)


def test_chain_of_1000_tool_returned_turns(per_op: Any, runner: asyncio.Runner) -> None:
    """Flow control: each turn's tool returns the next Turn (constructed, routed, put)."""
    length = 1000
    chain = w.chain_tool()
    agent = w.agent_with([chain])

    def setup() -> None:
        runner.run(agent.put(Turn(chain, kwargs={"left": length})))

    def target() -> None:
        assert runner.run(w.drain(agent)) == length

    per_op(target, ops=length, rounds=ROUNDS, setup=setup)


def test_send_ping_pong(per_op: Any, runner: asyncio.Runner) -> None:
    """Two agents bounce a turn with ``send``; each message is one run() of one turn on the
    receiving agent (run start and stop included)."""
    messages = 500
    a, b = w.ping_pong_agents()

    def target() -> None:
        runner.run(w.ping_pong(a, b, messages))

    per_op(target, ops=messages, rounds=ROUNDS, unit="message")
