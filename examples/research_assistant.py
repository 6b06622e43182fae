"""A small research assistant built with pygents: offline, deterministic, well under a second.

The shape is the one pygents is designed for:

1. ``search`` (an async-generator tool) finds matching documents in a local corpus and yields
   a ``fetch_document`` turn for each one not yet in the pool, then a ``select_documents``
   turn: the tool, not the caller, decides what happens next.
2. ``fetch_document`` returns a ``ContextItem`` with an ``id``; the agent stores it in its
   ``ContextPool``. Documents accumulate over the session.
3. ``select_documents`` reads only ``pool.catalogue()`` (ids and one-line descriptions, cheap)
   through an injected ``pool: ContextPool`` parameter, picks the relevant documents, and
   returns an ``answer`` turn, or a ``give_up`` turn when nothing fits.
4. ``answer`` reads the chosen documents' content from the pool and the conversation so far
   from an injected ``ContextQueue``, and records the exchange there.

Run it with ``python examples/research_assistant.py``.
"""

import asyncio
import re

from pygents import Agent, ContextItem, ContextPool, ContextQueue, Turn, tool

# A stand-in for a search index or a document store.
CORPUS: dict[str, dict[str, str]] = {
    "asyncio-tasks": {
        "title": "asyncio tasks",
        "summary": "scheduling coroutines concurrently with tasks and task groups",
        "text": (
            "A task wraps a coroutine and schedules it on the event loop. "
            "A cancelled task receives CancelledError inside its coroutine. "
            "TaskGroup starts several tasks and waits for all of them, cancelling the rest "
            "if one fails."
        ),
    },
    "asyncio-timeouts": {
        "title": "asyncio timeouts",
        "summary": "bounding how long a coroutine may run with asyncio.timeout",
        "text": (
            "asyncio.timeout sets a deadline for a block of code. "
            "When the deadline passes, the running coroutine is cancelled and TimeoutError "
            "is raised to the caller."
        ),
    },
    "context-windows": {
        "title": "context windows",
        "summary": "keeping the most recent messages of a conversation within a bounded window",
        "text": (
            "A context window keeps only the most recent messages. "
            "When it is full, the oldest message is evicted to make room for a new one."
        ),
    },
    "retrieval": {
        "title": "retrieval",
        "summary": "choosing documents by their descriptions before reading their content",
        "text": (
            "Retrieval picks a few relevant documents from many. "
            "Reading short descriptions first keeps the cost low; only the chosen documents "
            "are read in full."
        ),
    },
}

STOPWORDS = frozenset(
    "a an and are as by do does for from how i in is it its of on or the to what when "
    "which why with".split()
)


def keywords(text: str) -> set[str]:
    """Crude stems of a text's words: lower case, no stop words, no plural, first 6 letters."""
    words = set(re.findall(r"[a-z]+", text.lower())) - STOPWORDS
    return {w.removesuffix("s")[:6] if len(w) > 3 else w for w in words}


def score(question: str, text: str) -> int:
    """How many of the question's keywords the text mentions."""
    return len(keywords(question) & keywords(text))


@tool()
async def search(question: str, pool: ContextPool):
    """Find documents about the question; queue a fetch for each new one, then a selection."""
    hits = sorted(
        (doc_id for doc_id, doc in CORPUS.items() if score(question, doc["summary"]) > 0),
        key=lambda doc_id: (-score(question, CORPUS[doc_id]["summary"]), doc_id),
    )
    for doc_id in hits:
        if doc_id not in pool:  # fetched for an earlier question: no need to fetch again
            yield Turn("fetch_document", kwargs={"doc_id": doc_id})
    yield Turn("select_documents", kwargs={"question": question})


@tool()
async def fetch_document(doc_id: str) -> ContextItem:
    """Load one document; the agent stores the returned item in its context pool."""
    await asyncio.sleep(0)  # where a real tool would await an HTTP call or a database
    doc = CORPUS[doc_id]
    return ContextItem(
        id=doc_id,
        description=f"{doc['title']}: {doc['summary']}",
        content=doc["text"],
    )


@tool()
async def select_documents(question: str, pool: ContextPool) -> Turn:
    """Choose documents from the catalogue (descriptions only), then answer or give up."""
    scored = []
    for line in pool.catalogue().splitlines():
        match = re.match(r"- \[(?P<id>[^\]]+)\] (?P<description>.*)", line)
        if match and (points := score(question, match["description"])) > 0:
            scored.append((-points, match["id"]))
    chosen = [doc_id for _, doc_id in sorted(scored)[:2]]
    if not chosen:
        return Turn("give_up", kwargs={"question": question})
    return Turn("answer", kwargs={"question": question, "doc_ids": chosen})


@tool()
async def answer(
    question: str, doc_ids: list[str], pool: ContextPool, history: ContextQueue
) -> str:
    """Answer from the chosen documents, and remember the exchange."""
    sentences = []
    for doc_id in doc_ids:
        item = pool.get(doc_id)
        assert item is not None
        # The document's own title words are in every sentence's context: they don't help
        # choose between its sentences.
        focus = " ".join(keywords(question) - keywords(CORPUS[doc_id]["title"]))
        best = max(re.split(r"(?<=\.) ", item.content), key=lambda s: score(focus, s))
        sentences.append(f"{best} [{doc_id}]")
    earlier = sum(1 for item in history if str(item.content).startswith("Q:"))
    reply = " ".join(sentences)
    await history.append(ContextItem(content=f"Q: {question}"), ContextItem(content=f"A: {reply}"))
    return f"{reply} ({earlier} earlier exchanges in memory)"


@tool()
async def give_up(question: str, history: ContextQueue) -> str:
    """Say that nothing relevant was found."""
    await history.append(ContextItem(content=f"Q: {question}"), ContextItem(content="A: -"))
    return "I found nothing about that in the corpus."


QUESTIONS = [
    "How do tasks get cancelled when a task group fails?",
    "What happens when a timeout passes?",
    "What is evicted when a context window is full?",
    "Is a task cancelled when its timeout passes?",
    "Who won the 1998 World Cup?",
]


async def main() -> None:
    agent = Agent(
        "researcher",
        "Answers questions from a local corpus",
        [search, fetch_document, select_documents, answer, give_up],
        context_pool=ContextPool(limit=20),
        context_queue=ContextQueue(limit=10),
    )

    @agent.context_pool.after_add
    async def log_stored(pool: ContextPool, item: ContextItem) -> None:
        print(f"    stored [{item.id}] ({len(pool)} in pool)")

    for question in QUESTIONS:
        print(f"\n>>> {question}")
        await agent.put(Turn("search", kwargs={"question": question}))
        async for turn, value in agent.run():
            name = turn.tool.metadata.name
            if isinstance(value, Turn):
                shown = ", ".join(f"{k}={v!r}" for k, v in value.kwargs.items() if k != "question")
                print(f"  {name} -> next: {value.tool.metadata.name}({shown})")
            elif isinstance(value, str):
                print(f"  {name}: {value}")

    print("\nPool catalogue at the end of the session:")
    print(agent.context_pool.catalogue())
    print(f"\nConversation memory: {len(agent.context_queue)} items (limit 10)")


if __name__ == "__main__":
    asyncio.run(main())
