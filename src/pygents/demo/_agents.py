"""The demo's agents: a small research team answering a stream of questions.

One question (a "job") flows through the team like this::

    planner-i    plan ──returns──▶ dispatch ──send()──▶ fetcher-k: gather ──yields──▶ digest
                                       │                                                 │
                                       └─send() every few jobs─▶ supervisor: checkpoint  │
                                             (pauses fetcher-k, then resumes it)         │
    writer-m     answer (streams the reply) ◀──────────────────────────send()────────────┘

- ``plan`` asks the (simulated) model which sources to read and *returns* a ``dispatch`` turn:
  tool-driven flow control.
- ``dispatch`` hands the question to a fetcher with ``Agent.send()``.
- ``gather`` is a streaming tool: it yields each fetched page as a ``ContextItem`` with an id
  (stored in the fetcher's small ``ContextPool``, which evicts old pages) and a log line without
  an id (appended to its small ``ContextQueue``, which evicts old lines), then a ``digest`` turn.
- ``digest`` reads the pool's catalogue through an injected ``pool: ContextPool``, removes the
  pages that turn out to be stale, and sends an ``answer`` turn to a writer.
- ``answer`` streams the reply and remembers the exchange in an injected ``cq: ContextQueue``.

Services are simulated (see ``_world``): some requests fail, some hang past their turn's timeout.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from pygents import (
    Agent,
    AgentRegistry,
    ContextItem,
    ContextPool,
    ContextQueue,
    Turn,
    current_agent,
    tool,
)

from ._world import MalformedOutput, Profile, RateLimited, SourceUnavailable, World, current_world

__all__ = ["Crew", "build_crew", "new_question", "planned_turns"]

QUESTIONS: tuple[tuple[str, str], ...] = (
    ("task-groups", "How does a TaskGroup cancel its tasks when one fails?"),
    ("timeouts", "What happens to a coroutine when asyncio.timeout expires?"),
    ("backpressure", "How do bounded queues give back-pressure?"),
    ("retries", "When should a client retry with exponential backoff?"),
    ("context-windows", "What is evicted when a context window is full?"),
    ("tracing", "How does a trace follow a request across services?"),
    ("exemplars", "What is a Prometheus exemplar?"),
    ("rate-limits", "How does a token bucket enforce a rate limit?"),
    ("idempotency", "Why should a retried request be idempotent?"),
    ("caching", "Which entries does an LRU cache evict first?"),
)
SOURCES = ("docs", "peps", "wiki", "forum", "blog", "papers")

# Per-turn timeouts, and how the services behave. A request that does not stall stays well
# under its turn's timeout (even several in a row), so only the stalls time out.
PLAN_TIMEOUT = 0.2
DISPATCH_TIMEOUT = 0.2
GATHER_TIMEOUT = 0.25  # for all the pages of one question (at most 4 x 40 ms when none stalls)
DIGEST_TIMEOUT = 0.2
ANSWER_TIMEOUT = 0.3
CHECKPOINT_EVERY = 5  # the supervisor reviews every 5th question's fetcher

MODEL_PLAN = Profile(
    median=0.03, low=0.008, high=0.09,
    p_stall=0.03, stall=PLAN_TIMEOUT + 0.04,
    p_fail=0.02, failure=MalformedOutput,
)  # fmt: skip
SCHEDULER = Profile(median=0.006, low=0.003, high=0.015)
SOURCE_PAGE = Profile(
    median=0.018, low=0.005, high=0.04,
    p_stall=0.015, stall=GATHER_TIMEOUT + 0.04,
    p_fail=0.015, failure=SourceUnavailable,
)  # fmt: skip
MODEL_RERANK = Profile(median=0.012, low=0.005, high=0.05, p_fail=0.02, failure=RateLimited)
MODEL_FIRST_TOKEN = Profile(
    median=0.03, low=0.01, high=0.06,
    p_stall=0.025, stall=ANSWER_TIMEOUT + 0.02,
    p_fail=0.02, failure=RateLimited,
)  # fmt: skip
MODEL_NEXT_TOKEN = Profile(median=0.007, low=0.004, high=0.012)


def choose_sources(world: World, job: int) -> list[str]:
    """The sources the model picks for question ``job`` (two to four of them)."""
    rng = world.rng("sources", job)
    return rng.sample(SOURCES, rng.randint(2, 4))


def page_id(source: str, topic: str) -> str:
    """The pool id of a source's page about a topic (the same page for the same topic)."""
    return f"{source}/{topic}"


async def send(to: str, turn: Turn) -> None:
    """Send ``turn`` to the agent called ``to``, from the agent running this tool."""
    me = current_agent()
    if me is None:
        raise RuntimeError("the demo's tools run inside agents")
    await me.send(to, turn)


# Every tool takes a ``world`` (the simulated services): ``@tool(world=current_world)`` is a fixed
# kwarg whose callable is evaluated at each call, so the tools find the running demo's world
# without it appearing in their turns' arguments.

# -- planner ------------------------------------------------------------------------------------


@tool(world=current_world)
async def plan(question: str, topic: str, job: int, world: World) -> Turn:
    """Ask the model which sources to read, then continue with a dispatch turn."""
    await world.call(MODEL_PLAN, "plan", job)
    return Turn(
        "dispatch",
        kwargs={
            "question": question,
            "topic": topic,
            "job": job,
            "sources": choose_sources(world, job),
        },
        timeout=DISPATCH_TIMEOUT,
    )


@tool(world=current_world)
async def dispatch(
    question: str, topic: str, job: int, sources: list[str], cq: ContextQueue, world: World
) -> str:
    """Hand the question to a fetcher; every few questions, have the supervisor check it."""
    await world.call(SCHEDULER, "dispatch", job)
    fetcher = world.fetcher_for(job)
    gather_turn = Turn(
        "gather",
        kwargs={"question": question, "topic": topic, "job": job, "sources": sources},
        timeout=GATHER_TIMEOUT,
    )
    await send(fetcher, gather_turn)
    if job % CHECKPOINT_EVERY == 0:
        await send("supervisor", Turn("checkpoint", kwargs={"agent": fetcher, "job": job}))
    await cq.append(ContextItem(content=f"job {job}: {topic} -> {fetcher} ({', '.join(sources)})"))
    return f"job {job} dispatched to {fetcher}"


# -- fetchers -----------------------------------------------------------------------------------


@tool(world=current_world)
async def gather(
    question: str, topic: str, job: int, sources: list[str], world: World
) -> AsyncGenerator[ContextItem[str] | Turn, None]:
    """Fetch each source's page about the topic, streaming the pages as they arrive."""
    for source in sources:
        await world.call(SOURCE_PAGE, "page", job, source)
        yield ContextItem(
            id=page_id(source, topic),
            description=f"{source} on {topic}",
            content=f"What {source} says about {topic} (fetched for job {job}).",
        )
        yield ContextItem(content=f"job {job}: fetched {source}")
    yield Turn(
        "digest",
        kwargs={"question": question, "topic": topic, "job": job, "sources": sources},
        timeout=DIGEST_TIMEOUT,
    )


@tool(world=current_world)
async def digest(
    question: str,
    topic: str,
    job: int,
    sources: list[str],
    pool: ContextPool,
    cq: ContextQueue,
    world: World,
) -> str:
    """Pick this question's pages from the pool's catalogue, drop stale ones, brief a writer."""
    await world.call(MODEL_RERANK, "digest", job)
    wanted = {page_id(source, topic) for source in sources}
    # The catalogue ("- [id] description" lines) is cheap to read; only chosen pages are opened.
    listed = re.findall(r"^- \[([^\]]+)\]", pool.catalogue(), flags=re.MULTILINE)
    chosen = [doc_id for doc_id in listed if doc_id in wanted]  # others may have been evicted
    notes = [str(pool[doc_id].content) for doc_id in chosen]
    for doc_id in chosen:
        if world.rng("stale", job, doc_id).random() < 0.3:
            await pool.remove(doc_id)  # read once, but too old to keep
    await cq.append(ContextItem(content=f"job {job}: {len(notes)} of {len(sources)} pages used"))
    await send(
        world.writer_for(job),
        Turn(
            "answer",
            kwargs={"question": question, "job": job, "notes": notes},
            timeout=ANSWER_TIMEOUT,
        ),
    )
    return f"job {job}: {len(notes)} pages briefed"


# -- writers ------------------------------------------------------------------------------------


@tool(world=current_world)
async def answer(
    question: str, job: int, notes: list[str], cq: ContextQueue, world: World
) -> AsyncGenerator[str, None]:
    """Stream the reply in chunks, then remember the exchange in the conversation window."""
    await world.call(MODEL_FIRST_TOKEN, "answer", job)
    words = f"Based on {len(notes)} pages: {' '.join(notes) or 'nothing found.'}".split()
    parts = world.rng("chunks", job).randint(6, 10)
    size = -(-len(words) // parts)
    for start in range(0, len(words), size):
        yield " ".join(words[start : start + size]) + " "
        await world.call(MODEL_NEXT_TOKEN, "token", job, start)
    await cq.append(
        ContextItem(content=f"Q: {question}"), ContextItem(content=f"A: {' '.join(words)}")
    )


# -- supervisor ---------------------------------------------------------------------------------


@tool(world=current_world)
async def checkpoint(agent: str, job: int, world: World) -> str:
    """Pause an agent for a short review, then let it go on."""
    target = AgentRegistry.get(agent)
    target.pause()
    try:
        await asyncio.sleep(world.rng("review", job).uniform(0.1, 0.3))
    finally:
        target.resume()
    return f"{agent} reviewed after job {job}"


# -- the team -----------------------------------------------------------------------------------


@dataclass
class Crew:
    """The agents of one demo run."""

    planners: list[Agent]
    fetchers: list[Agent]
    writers: list[Agent]
    supervisor: Agent

    @property
    def agents(self) -> list[Agent]:
        """Every agent, in the order the summary lists them."""
        return [*self.planners, *self.fetchers, *self.writers, self.supervisor]

    def dismiss(self) -> None:
        """Unregister the agents, so that another crew may take their names."""
        for agent in self.agents:
            AgentRegistry.discard(agent.name, agent)


def build_crew(fetchers: int) -> Crew:
    """Create and register ``fetchers`` fetchers, planners and writers to match, a supervisor.

    One planner per three fetchers and one writer per two (rounded up).
    """
    planners = [
        Agent(
            f"planner-{i}",
            "Plans which sources answer a question and dispatches the work",
            [plan, dispatch],
            context_queue=ContextQueue(limit=8),
        )
        for i in range(1, (fetchers + 2) // 3 + 1)
    ]
    fetcher_agents = [
        Agent(
            f"fetcher-{i}",
            "Fetches pages into its pool and digests them for a writer",
            [gather, digest],
            context_queue=ContextQueue(limit=4),
            context_pool=ContextPool(limit=6),
        )
        for i in range(1, fetchers + 1)
    ]
    writer_agents = [
        Agent(
            f"writer-{i}",
            "Streams answers and keeps the recent conversation",
            [answer],
            context_queue=ContextQueue(limit=6),
        )
        for i in range(1, (fetchers + 1) // 2 + 1)
    ]
    supervisor = Agent("supervisor", "Pauses agents for periodic reviews", [checkpoint])
    return Crew(planners, fetcher_agents, writer_agents, supervisor)


def new_question(world: World, job: int) -> Turn:
    """The planner's turn for question number ``job`` (which question is drawn from the seed)."""
    topic, question = world.rng("question", job).choice(QUESTIONS)
    return Turn(
        "plan", kwargs={"question": question, "topic": topic, "job": job}, timeout=PLAN_TIMEOUT
    )


def planned_turns(world: World, job: int) -> int:
    """How many turns question ``job`` will run: the flow above, stopping at its first failure.

    Every failure point is a request whose outcome is fixed by the seed, so this is exact.
    """
    turns = 1  # plan
    if not world.outcome(MODEL_PLAN, "plan", job).ok:
        return turns
    turns += 2  # dispatch (never fails), gather
    if job % CHECKPOINT_EVERY == 0:
        turns += 1  # the supervisor's checkpoint
    sources = choose_sources(world, job)
    if not all(world.outcome(SOURCE_PAGE, "page", job, source).ok for source in sources):
        return turns
    turns += 1  # digest
    if not world.outcome(MODEL_RERANK, "digest", job).ok:
        return turns
    return turns + 1  # answer
