"""The original's research-assistant guide, re-enacted: ``docs-0.6.1/guides/research-assistant.md``.

The guide combines every abstraction in one script: a tool returning pool items
("The fetch_document tool", and its tip "Streaming ingestion with async generators"), a router
reading the injected pool and memory ("The think tool", with a ``before_invoke`` hook reading
the injected ``pool`` from its kwargs), an LLM selection over descriptions only ("The
select_context tool"), a streaming answer that ends with a ``ContextItem`` for the memory ("The
answer tool"), and "Putting it together" / "Expected execution": only the streamed text reaches
the caller, the pool holds every document, the memory holds the question and the reply.

The guide's LLM client (``py_ai_toolkit``) is replaced by a local fake of the same shape
(``asend(response_model=..., template=..., **vars)`` returning an object with ``.content``;
``stream(prompt=..., **vars)`` yielding objects with ``.content``). The subclassing note at the
end ("Extending ContextPool for external resources") is covered too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from pygents import Agent, ContextPool, ContextQueue, Turn, tool
from pygents.context import ContextItem

# A small library of our own, shaped like the guide's DOCUMENTS.
LIBRARY = {
    "budget-2025": {
        "description": "Budget 2025: spend EUR 5M, research up 20%, travel frozen",
        "body": "Total: EUR 5M. Research +20%. Travel frozen until Q3.",
    },
    "outage-march": {
        "description": "March outage report: 2-hour downtime, cause: expired TLS certificate",
        "body": "Downtime 2h. Cause: a certificate expired. Fix: automatic renewal added.",
    },
    "team-offsite": {
        "description": "Team offsite plan: Lisbon, three days, agenda and budget",
        "body": "Lisbon, 3 days. Day 1 planning, day 2 hacking, day 3 retro.",
    },
}


@dataclass
class _Reply:
    content: Any


@dataclass
class _Selection:
    relevant_ids: list[str]


@dataclass
class FakeLLM:
    """Stands in for the guide's toolkit: picks ids by keyword, streams a canned answer."""

    keyword_to_id: dict[str, str]
    chunks: list[str]
    prompts: list[dict[str, Any]] = field(default_factory=list)

    async def asend(self, *, response_model: type, template: str, **variables: Any) -> _Reply:
        self.prompts.append({"template": template, **variables})
        question = variables["question"].lower()
        picked = [doc for word, doc in self.keyword_to_id.items() if word in question]
        return _Reply(response_model(relevant_ids=picked))

    async def stream(self, *, prompt: str, **variables: Any):
        self.prompts.append({"prompt": prompt, **variables})
        for chunk in self.chunks:
            yield _Reply(chunk)


def _last_question(memory: ContextQueue) -> str:
    for item in reversed(memory.items):
        if isinstance(item.content, str) and item.content.startswith("User:"):
            return item.content.removeprefix("User:").strip()
    return ""


def _build(llm: FakeLLM, log: list[str], pool: ContextPool | None = None) -> Agent:
    """Define the guide's four tools (in our names) and the agent that owns the context."""

    @tool()
    async def load_document(doc_id: str) -> ContextItem:
        """Load a document; the agent stores it in its pool."""
        doc = LIBRARY.get(doc_id)
        if doc is None:
            raise ValueError(f"Unknown document: {doc_id!r}")
        return ContextItem(id=doc_id, description=doc["description"], content=doc["body"])

    @tool()
    async def route(pool: ContextPool, memory: ContextQueue) -> Turn:
        """Go to selection when the pool has anything, else answer without context."""
        if not pool:
            return Turn(respond, kwargs={"relevant_ids": []})
        return Turn(choose)

    @route.before_invoke
    async def note_pool(**kwargs: Any) -> None:
        store = kwargs.get("pool")
        if store:
            log.append(f"route sees {len(store)} items")

    @tool()
    async def choose(pool: ContextPool, memory: ContextQueue) -> Turn:
        """Ask the model which descriptions matter; hand the ids to respond."""
        reply = await llm.asend(
            response_model=_Selection,
            template="Question: {{ question }}\n{{ catalogue }}",
            question=_last_question(memory),
            catalogue=pool.catalogue(),
        )
        return Turn(respond, kwargs={"relevant_ids": reply.content.relevant_ids})

    @tool()
    async def respond(pool: ContextPool, memory: ContextQueue, relevant_ids: list[str]):
        """Stream the answer, then leave it in the memory."""
        known = {item.id for item in pool.items}
        chosen = [pool.get(i) for i in relevant_ids if i in known]
        block = (
            "\n\n".join(f"[{i.id}] {i.description}\n{i.content}" for i in chosen)
            or "(no relevant context found)"
        )
        text = ""
        async for part in llm.stream(
            prompt="Answer from the context.", question=_last_question(memory), context_block=block
        ):
            text += part.content
            yield part.content
        yield ContextItem(content=f"Assistant: {text}")

    memory = ContextQueue(limit=30)

    @memory.after_append
    async def count_memory(queue, appended_items, current) -> None:
        log.append(f"memory has {len(current)}")

    return Agent(
        "analyst",
        "Answers questions from a document pool",
        [load_document, route, choose, respond],
        context_queue=memory,
        context_pool=pool if pool is not None else ContextPool(limit=50),
    )


async def _ask(agent: Agent, question: str, doc_ids: list[str]) -> list[Any]:
    await agent.context_queue.append(ContextItem(content=f"User: {question}"))
    for doc_id in doc_ids:
        await agent.put(Turn("load_document", kwargs={"doc_id": doc_id}))
    await agent.put(Turn("route"))
    return [value async for _turn, value in agent.run()]


async def test_only_the_streamed_answer_reaches_the_caller(capsys: pytest.CaptureFixture[str]):
    llm = FakeLLM({"outage": "outage-march"}, ["The outage ", "was a certificate."])
    agent = _build(llm, [])

    async def ask(question: str, doc_ids: list[str]) -> None:
        await agent.context_queue.append(ContextItem(content=f"User: {question}"))
        for doc_id in doc_ids:
            await agent.put(Turn("load_document", kwargs={"doc_id": doc_id}))
        await agent.put(Turn("route"))
        async for _turn, value in agent.run():
            if isinstance(value, str):
                print(value, end="", flush=True)
        print()

    await ask("What caused the outage in March?", list(LIBRARY))
    assert capsys.readouterr().out == "The outage was a certificate.\n"


async def test_every_value_yielded_is_a_text_chunk():
    llm = FakeLLM({"outage": "outage-march"}, ["a", "b", "c"])
    agent = _build(llm, [])
    assert await _ask(agent, "outage cause?", list(LIBRARY)) == ["a", "b", "c"]


async def test_the_pool_holds_every_document_and_the_memory_the_exchange():
    llm = FakeLLM({"outage": "outage-march"}, ["Cert ", "expired."])
    agent = _build(llm, [])
    await _ask(agent, "outage cause?", list(LIBRARY))

    assert [item.id for item in agent.context_pool.items] == list(LIBRARY)
    assert [item.content for item in agent.context_queue.items] == [
        "User: outage cause?",
        "Assistant: Cert expired.",
    ]


async def test_selection_sees_descriptions_only_and_the_answer_only_chosen_bodies():
    llm = FakeLLM({"budget": "budget-2025", "offsite": "team-offsite"}, ["ok"])
    agent = _build(llm, [])
    await _ask(agent, "What is the budget for the offsite?", list(LIBRARY))

    selection, answer = llm.prompts
    assert selection["question"] == "What is the budget for the offsite?"
    for doc_id, doc in LIBRARY.items():
        assert f"- [{doc_id}] {doc['description']}" in selection["catalogue"]
        assert doc["body"] not in selection["catalogue"]
    block = answer["context_block"]
    assert LIBRARY["budget-2025"]["body"] in block
    assert LIBRARY["team-offsite"]["body"] in block
    assert LIBRARY["outage-march"]["body"] not in block


async def test_with_an_empty_pool_the_router_answers_without_context():
    llm = FakeLLM({}, ["nothing to go on"])
    agent = _build(llm, [])
    assert await _ask(agent, "anything?", []) == ["nothing to go on"]
    (answer,) = llm.prompts  # no selection call
    assert answer["context_block"] == "(no relevant context found)"


async def test_hooks_see_the_injected_pool_and_the_memory_growing():
    log: list[str] = []
    llm = FakeLLM({"outage": "outage-march"}, ["x"])
    agent = _build(llm, log)
    await _ask(agent, "outage?", list(LIBRARY))
    assert log == ["memory has 1", f"route sees {len(LIBRARY)} items", "memory has 2"]


async def test_an_unknown_document_id_raises_out_of_run():
    agent = _build(FakeLLM({}, []), [])
    await agent.put(Turn("load_document", kwargs={"doc_id": "missing"}))
    with pytest.raises(ValueError, match="Unknown document: 'missing'"):
        async for _ in agent.run():
            pass


async def test_a_generator_ingests_documents_one_by_one():
    sizes: list[int] = []

    @tool()
    async def load_many(doc_ids: list[str]):
        for doc_id in doc_ids:
            doc = LIBRARY.get(doc_id)
            if doc:
                yield ContextItem(id=doc_id, description=doc["description"], content=doc["body"])

    store = ContextPool()

    @store.after_add
    async def grew(pool, item) -> None:
        sizes.append(len(pool))

    agent = Agent("ingester", "Ingests", [load_many], context_pool=store)
    await agent.put(Turn("load_many", args=[["budget-2025", "nope", "team-offsite"]]))
    assert [v async for _, v in agent.run()] == []
    assert sizes == [1, 2]
    assert [i.id for i in store.items] == ["budget-2025", "team-offsite"]


async def test_a_pool_subclass_passed_to_the_agent_is_used_and_branched(caplog):
    class LoggingPool(ContextPool):
        async def add(self, item: ContextItem) -> None:
            logging.getLogger("tests.compat").info("storing %s", item.id)
            await super().add(item)

    store = LoggingPool(limit=10)
    agent = _build(FakeLLM({"budget": "budget-2025"}, ["fine"]), [], pool=store)
    with caplog.at_level(logging.INFO, logger="tests.compat"):
        await _ask(agent, "budget?", ["budget-2025"])
    assert agent.context_pool is store
    assert "storing budget-2025" in caplog.text
    assert type(agent.branch("analyst-2").context_pool) is LoggingPool
