"""Generic containers, checked by mypy: ``ContextItem[T]``, ``ContextQueue[T]``, ``ContextPool[T]``,
``Turn[T]``.

Run it (``python examples/typed_context.py``) or type-check it
(``mypy --strict examples/typed_context.py``): the test suite does both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pygents import Agent, ContextItem, ContextPool, ContextQueue, Turn, tool


@dataclass
class Report:
    title: str
    pages: int


@tool()
async def recall(topic: str, memory: ContextQueue[str]) -> ContextItem[str]:
    """Remember what was asked about, next to what is already in memory."""
    seen = ", ".join(item.content for item in memory.items)
    return ContextItem(content=f"{topic} (after: {seen or 'nothing'})")


@tool()
async def file_report(title: str, pages: int) -> ContextItem[Report]:
    """Store a report in the pool."""
    return ContextItem(content=Report(title, pages), description=f"report {title}", id=title)


@tool()
async def count_pages(pool: ContextPool[Report]) -> int:
    """Add up the pages of every stored report."""
    return sum(item.content.pages for item in pool.items)


async def main() -> int:
    memory: ContextQueue[str] = ContextQueue(limit=5)
    await memory.append(ContextItem(content="hello"))
    reports: ContextPool[Report] = ContextPool()
    agent = Agent("typed", "shows the generic containers", [recall, file_report, count_pages],
                  context_queue=memory, context_pool=reports)  # fmt: skip
    await agent.put(Turn("recall", kwargs={"topic": "tools"}))
    await agent.put(Turn("file_report", kwargs={"title": "q3", "pages": 12}))
    await agent.put(Turn("file_report", kwargs={"title": "q4", "pages": 30}))
    async for _ in agent.run():
        pass
    latest: str = memory.items[-1].content
    first: Report = reports.get("q3").content
    pages: Turn[int] = Turn(count_pages, kwargs={"pool": reports})
    total: int = await pages.returning()
    print(latest, first.title, total)
    return total


if __name__ == "__main__":
    asyncio.run(main())
