"""An agent driven by a model: the model picks tools, pygents runs them as turns.

The loop works with any OpenAI-compatible Chat Completions endpoint through the user's own
``openai`` client (pygents itself imports no client):

1. the model sees the tools' definitions (``Tool.definition("openai")``, strict where possible);
2. each tool call it makes becomes a ``Turn`` through ``turn_from_call``, which checks the
   arguments against the tool's schema first;
3. results, and the ``ToolCallError`` text of a malformed call, go back as ``tool`` messages;
4. until the model answers in words.

The model call is itself a turn (``ask_model``, an async-generator tool that yields the turns
the model asked for, then a turn asking the model again), so with telemetry on every ``chat``
span sits inside the turn that made it.

Run against a real endpoint::

    OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_API_KEY=x MODEL=llama3.1 \\
        python examples/model_tool_loop.py "What is the weather in Oslo, in Fahrenheit?"
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

import openai

from pygents import Agent, AgentRegistry, Tool, ToolCallError, Turn, tool, turn_from_call


@dataclass
class Answer:
    """The model's final text."""

    text: str


@dataclass
class Conversation:
    """What ``ask_model`` needs: the client, the messages so far, the tools the model sees."""

    client: openai.AsyncOpenAI
    model: str
    tools: list[Tool]
    messages: list[dict[str, Any]]
    max_rounds: int = 8
    rounds: int = 0
    #: id(turn) -> the tool call id its result answers
    pending: dict[int, str] = field(default_factory=dict)


@tool()
async def ask_model(conversation: Conversation) -> AsyncGenerator[Turn | Answer, None]:
    """Ask the model; yield a turn per valid tool call, then a turn asking it again."""
    conversation.rounds += 1
    if conversation.rounds > conversation.max_rounds:
        raise RuntimeError(f"no answer after {conversation.max_rounds} model calls")
    completion = await conversation.client.chat.completions.create(
        model=conversation.model,
        messages=conversation.messages,  # type: ignore[arg-type]
        tools=[t.definition("openai") for t in conversation.tools],  # type: ignore[misc]  # a dict, not its TypedDict
    )
    message = completion.choices[0].message
    if not message.tool_calls:
        yield Answer(message.content or "")
        return
    conversation.messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls:
        if call.type != "function":
            continue  # a custom (free-text) tool call: none of ours
        try:
            turn = turn_from_call(
                call.function.name, call.function.arguments, tools=conversation.tools
            )
        except ToolCallError as error:
            # The model reads this and calls again: every problem, by argument path.
            conversation.messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": str(error)}
            )
            continue
        conversation.pending[id(turn)] = call.id
        yield turn
    yield Turn(ask_model, kwargs={"conversation": conversation})


async def answer(client: openai.AsyncOpenAI, model: str, question: str, tools: list[Tool]) -> str:
    """Run the loop for one question and return the model's answer."""
    conversation = Conversation(client, model, tools, [{"role": "user", "content": question}])
    agent = Agent("model-loop", "answers with tools", [ask_model, *tools])
    text: str | None = None
    try:
        await agent.put(Turn(ask_model, kwargs={"conversation": conversation}))
        # Run to the end (the queue empties after the answer): leaving the loop early would
        # leave the last turn unfinished until the generator is collected.
        async for turn, value in agent.run():
            if isinstance(value, Answer):
                text = value.text
                continue
            # A tool's result: back to the model before it is asked again.
            conversation.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": conversation.pending.pop(id(turn)),
                    "content": json.dumps(value, default=str),
                }
            )
    finally:
        AgentRegistry.unregister(agent.name)  # answer() may run again under the same name
    if text is None:
        raise RuntimeError("the agent stopped without an answer")
    return text


# --------------------------------------------------------------------------- the tools


@tool()
async def weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
    """Return the current temperature in a city.

    Args:
        city: the city's name, e.g. "Oslo".
        unit: the temperature unit.
    """
    celsius = len(city) + 2  # a stand-in for a real weather service
    value = celsius if unit == "celsius" else celsius * 9 / 5 + 32
    return {"city": city, "temperature": value, "unit": unit}


@tool()
async def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


TOOLS: list[Tool] = [weather, add]


async def main(question: str) -> None:
    # OPENAI_BASE_URL / OPENAI_API_KEY from the environment
    async with openai.AsyncOpenAI() as client:
        print(await answer(client, os.environ.get("MODEL", "gpt-4o-mini"), question, TOOLS))


if __name__ == "__main__":
    if not (os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY")):
        # Nothing to talk to (as when the test suite runs every example): say how, and stop.
        print("Set OPENAI_BASE_URL (and OPENAI_API_KEY, MODEL) to run this loop.")
        sys.exit(0)
    asyncio.run(main(" ".join(sys.argv[1:]) or "What is the weather in Oslo?"))
