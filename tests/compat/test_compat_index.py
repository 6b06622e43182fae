"""The original's landing page, re-enacted: ``docs-0.6.1/index.md`` and seed ``001_*``.

Sections covered (by heading of ``docs-0.6.1/index.md``):

- "Minimal example": one tool, one turn, ``run()`` prints ``<tool name>: <value>``.
- "Tool-driven flow control": a tool returning a ``Turn`` has it enqueued (and, per the
  agents page, consumed: it is not yielded).
- "Streaming": an async-generator tool's values reach the caller one by one, in order.
- "Inter-agent messaging": ``agent.send(name, turn)``.
- "Dynamic arguments": callables in ``args``/``kwargs`` are evaluated when the tool runs.
- "Capabilities": the default timeout (60 s), ``TurnTimeoutError``, ``@tool(lock=True)``.
- "Registries": ``ToolRegistry.get/all``, ``AgentRegistry.get/clear``,
  ``HookRegistry.get/clear/get_by_type`` ("first match by type").
- "Public API": every symbol the table lists is importable from ``pygents``.
"""

from __future__ import annotations

import asyncio

import pytest

import pygents
from pygents import (
    Agent,
    AgentRegistry,
    HookRegistry,
    ToolRegistry,
    Turn,
    TurnHook,
    TurnTimeoutError,
    hook,
    tool,
)
from pygents.context import ContextItem

# -- Minimal example ---------------------------------------------------------------------------


async def test_minimal_example_prints_tool_name_and_value(capsys: pytest.CaptureFixture[str]):
    @tool()
    async def download(address: str) -> str:
        return f"<page at {address}>"

    async def main() -> None:
        agent = Agent("downloader", "Downloads pages", [download])
        await agent.put(Turn("download", kwargs={"address": "https://pygents.invalid/a"}))
        async for turn, value in agent.run():
            print(f"{turn.tool.metadata.name}: {value}")

    await main()
    assert capsys.readouterr().out == "download: <page at https://pygents.invalid/a>\n"


async def test_turn_takes_the_tool_object_as_well_as_its_name(values):
    @tool()
    async def download(address: str) -> str:
        return f"<page at {address}>"

    agent = Agent("downloader", "Downloads pages", [download])
    await agent.put(Turn("download", kwargs={"address": "x"}))
    await agent.put(Turn(download, kwargs={"address": "y"}))
    assert await values(agent) == ["<page at x>", "<page at y>"]


# -- Tool-driven flow control ------------------------------------------------------------------


async def test_returned_turn_is_enqueued_and_only_plain_values_reach_the_caller(drain):
    @tool()
    async def triage(note: str) -> str | Turn:
        if note.endswith("?"):
            return Turn("investigate", kwargs={"note": note})
        return "nothing to do"

    @tool()
    async def investigate(note: str) -> str:
        return f"investigated {note}"

    agent = Agent("triager", "Triage", [triage, investigate])
    await agent.put(Turn("triage", kwargs={"note": "why?"}))
    await agent.put(Turn("triage", kwargs={"note": "fine."}))

    pairs = await drain(agent)
    # The Turn returned by the first triage is consumed by the agent, never yielded (A1);
    # it runs after the turns already queued.
    assert [(t.tool.metadata.name, v) for t, v in pairs] == [
        ("triage", "nothing to do"),
        ("investigate", "investigated why?"),
    ]


# -- Streaming -------------------------------------------------------------------------------


async def test_generator_values_reach_the_caller_in_order_with_their_turn(drain):
    @tool()
    async def countdown(start: int):
        for i in range(start, 0, -1):
            yield i

    agent = Agent("launcher", "Counts down", [countdown])
    queued = Turn("countdown", kwargs={"start": 3})
    await agent.put(queued)

    pairs = await drain(agent)
    assert [v for _, v in pairs] == [3, 2, 1]
    assert all(t is queued for t, _ in pairs)


# -- Inter-agent messaging -------------------------------------------------------------------


async def test_send_puts_the_turn_on_the_named_agents_queue(values):
    @tool()
    async def hand_over(item: str) -> str:
        return item

    @tool()
    async def process(n: int) -> int:
        return n + 1

    carol = Agent("carol", "Hands work over", [hand_over])
    dave = Agent("dave", "Processes", [process])

    await carol.send("dave", Turn("process", kwargs={"n": 41}))

    assert len(carol.queue) == 0
    assert await values(carol) == []
    assert await values(dave) == [42]


# -- Dynamic arguments -----------------------------------------------------------------------


async def test_callable_args_and_kwargs_are_read_when_the_tool_runs():
    settings = {"attempts": 1, "host": "first.invalid"}

    @tool()
    async def connect(host: str, attempts: int) -> str:
        return f"{host} x{attempts}"

    turn = Turn(
        "connect",
        args=[lambda: settings["host"]],
        kwargs={"attempts": lambda: settings["attempts"]},
    )
    settings.update(attempts=5, host="second.invalid")

    assert await turn.returning() == "second.invalid x5"


# -- Capabilities ----------------------------------------------------------------------------


async def test_default_turn_timeout_is_60_seconds():
    @tool()
    async def idle() -> None:
        return None

    assert Turn("idle").timeout == 60


async def test_a_turn_past_its_timeout_raises_turn_timeout_error():
    @tool()
    async def stall() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TurnTimeoutError):
        await Turn("stall", timeout=0.01).returning()


async def test_lock_true_serializes_concurrent_runs_of_a_tool():
    inside = 0
    most = 0

    @tool(lock=True)
    async def append_row(row: int) -> int:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        for _ in range(3):
            await asyncio.sleep(0)
        inside -= 1
        return row

    results = await asyncio.gather(*(Turn("append_row", args=[i]).returning() for i in range(4)))
    assert results == [0, 1, 2, 3]
    assert most == 1


# -- Registries ------------------------------------------------------------------------------


async def test_tool_registry_gets_by_name_and_lists_all():
    @tool()
    async def alpha() -> None: ...

    @tool()
    async def beta() -> None: ...

    assert ToolRegistry.get("alpha") is alpha
    assert {t.metadata.name for t in ToolRegistry.all()} == {"alpha", "beta"}


async def test_agent_registry_gets_by_name_and_clear_empties_it():
    @tool()
    async def alpha() -> None: ...

    agent = Agent("registered", "desc", [alpha])
    assert AgentRegistry.get("registered") is agent
    AgentRegistry.clear()
    with pytest.raises(pygents.UnregisteredAgentError):
        AgentRegistry.get("registered")


async def test_hook_registry_get_by_type_returns_the_first_match():
    @hook(TurnHook.AFTER_RUN)
    async def first_after(turn, output) -> None: ...

    @hook(TurnHook.AFTER_RUN)
    async def second_after(turn, output) -> None: ...

    assert HookRegistry.get("second_after") is second_after
    assert HookRegistry.get_by_type(TurnHook.AFTER_RUN) is first_after
    assert HookRegistry.get_by_type(TurnHook.ON_TIMEOUT) is None
    HookRegistry.clear()
    with pytest.raises(pygents.UnregisteredHookError):
        HookRegistry.get("first_after")


# -- Public API ------------------------------------------------------------------------------

PUBLIC_NAMES = [
    "Agent",
    "Turn",
    "ContextQueue",
    "ContextPool",
    "tool",
    "hook",
    "StopReason",
    "TurnHook",
    "AgentHook",
    "ToolHook",
    "ContextQueueHook",
    "ContextPoolHook",
    "Tool",
    "Hook",
    "ToolMetadata",
    "HookMetadata",
    "ToolRegistry",
    "AgentRegistry",
    "HookRegistry",
    "SafeExecutionError",
    "WrongRunMethodError",
    "TurnTimeoutError",
    "UnregisteredToolError",
    "UnregisteredAgentError",
    "UnregisteredHookError",
]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_api_table_symbol_is_importable_from_pygents(name: str):
    assert hasattr(pygents, name)
    assert name in pygents.__all__


def test_context_item_is_importable_from_pygents_context():
    assert ContextItem(content="x").content == "x"
