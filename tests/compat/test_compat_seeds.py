"""The product seeds' own examples, re-enacted (``shared/seeds/*.txt``).

``004_*`` (the Claude Code skill) and ``001_*`` (the landing page) are the newest and are the
same text as ``docs-0.6.1/guides/claude-code-skill.md`` and ``docs-0.6.1/index.md``: they are
covered by ``test_compat_guide_skill.py`` and ``test_compat_index.py``. This module covers what
the older seeds add and the newer ones do not contradict:

- ``002_*`` (the package page): the ``greet`` example with kwargs and with positional args, each
  printing ``Hello, World!``; fixed decorator kwargs merged into every invocation, call-time
  kwargs overriding them.
- ``000_*`` (an early landing page): the minimal example and ``send_turn`` (kept as a deprecated
  alias of ``send``).

Superseded and not tested: ``002_*``'s ``Turn(..., start_time=..., stop_reason=...,
metadata={...})`` constructor (``004_*``: metadata fields are not constructor parameters, the
order is ``Turn(tool, timeout, args, kwargs, tags)``) and ``000_*``'s "Memory" abstraction
(replaced by ``ContextQueue``/``ContextPool``).
"""

from __future__ import annotations

import logging

import pytest

from pygents import Agent, Turn, tool

# -- 002: the package page -------------------------------------------------------------------


async def test_greet_example_prints_the_greeting_for_kwargs_and_positional_args(
    capsys: pytest.CaptureFixture[str],
):
    @tool()
    async def welcome(who: str) -> str:
        return f"Welcome, {who}!"

    agent = Agent("welcomer", "Welcomes people", [welcome])
    await agent.put(Turn("welcome", kwargs={"who": "Ada"}))
    await agent.put(Turn("welcome", args=["Ada"]))
    async for _turn, value in agent.run():
        print(value)
    assert capsys.readouterr().out == "Welcome, Ada!\nWelcome, Ada!\n"


async def test_decorator_kwargs_are_merged_into_every_invocation():
    @tool(role="operator")
    async def act(task: str, role: str) -> str:
        return f"{role} does {task}"

    assert await Turn("act", args=["backup"]).returning() == "operator does backup"
    assert await Turn("act", args=["restore"]).returning() == "operator does restore"


async def test_call_time_kwargs_override_decorator_kwargs(caplog):
    @tool(role="operator")
    async def act(task: str, role: str) -> str:
        return f"{role} does {task}"

    with caplog.at_level(logging.WARNING, logger="pygents"):
        result = await Turn("act", kwargs={"task": "audit", "role": "auditor"}).returning()
    assert result == "auditor does audit"


# -- 000: the early landing page -------------------------------------------------------------


async def test_early_minimal_example_prints_name_and_value(capsys: pytest.CaptureFixture[str]):
    @tool()
    async def grab(link: str) -> str:
        return f"<body of {link}>"

    agent = Agent("grabber", "Grabs links", [grab])
    await agent.put(Turn("grab", kwargs={"link": "https://site.invalid"}))
    async for turn, value in agent.run():
        print(f"{turn.tool.metadata.name}: {value}")
    assert capsys.readouterr().out == "grab: <body of https://site.invalid>\n"


async def test_send_turn_is_a_deprecated_alias_of_send(values):
    @tool()
    async def relay(x: int) -> int:
        return x

    @tool()
    async def work_item(x: int) -> int:
        return x * 10

    erin = Agent("erin", "Delegates", [relay])
    frank = Agent("frank", "Works", [work_item])
    with pytest.warns(DeprecationWarning):
        await erin.send_turn("frank", Turn("work_item", kwargs={"x": 4}))
    assert await values(frank) == [40]
