"""Driving the team: keep every agent running, feed questions, know when the work is done."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pygents import Agent, StopReason, Turn, TurnTimeoutError

from ._agents import Crew, new_question, planned_turns
from ._summary import owned_by
from ._world import ServiceError, World

__all__ = ["Workload"]

#: What a turn may legitimately raise out of ``Agent.run()``; anything else is a bug.
EXPECTED_FAILURES = (TurnTimeoutError, ServiceError)
#: After ``--duration``, questions in flight get this long to finish before being cancelled.
DRAIN_TIMEOUT = 2.0
#: Questions in flight per fetcher before the feeder waits.
IN_FLIGHT_PER_FETCHER = 3


async def keep_running(agent: Agent, wake: asyncio.Event) -> None:
    """Run ``agent`` whenever it has turns queued, until cancelled.

    A timeout or a service error ends ``run()`` by design (the hooks have counted it); the
    turns still queued stay queued, so the agent is simply run again.
    """
    while True:
        await wake.wait()
        wake.clear()
        while len(agent):
            try:
                async with contextlib.aclosing(agent.run()) as results:
                    async for _turn, _value in results:
                        pass
            except EXPECTED_FAILURES:
                continue


def _listen(agent: Agent, wake: asyncio.Event, changed: asyncio.Event) -> None:
    """Set ``wake`` when a turn is put on ``agent``; ``changed`` when a turn or a run ends."""

    @agent.after_put
    @owned_by(agent.name)
    async def wake_runner(agent: Agent, turn: Turn) -> None:
        wake.set()

    @agent.on_complete
    @owned_by(agent.name)
    async def turn_ended(turn: Turn, stop_reason: StopReason) -> None:
        changed.set()

    @agent.on_run_end
    @owned_by(agent.name)
    async def run_ended(agent: Agent, error: BaseException | None) -> None:
        changed.set()


class Workload:
    """The team at work: one runner task per agent, and a feeder of questions.

    Args:
        crew: the agents.
        world: the simulated services (the same seed gives the same questions and outcomes).
    """

    def __init__(self, crew: Crew, world: World) -> None:
        self.crew = crew
        self.world = world
        self.planned = 0  # turns the questions fed so far will run
        self.questions = 0
        self.max_in_flight = IN_FLIGHT_PER_FETCHER * len(crew.fetchers)
        self._changed = asyncio.Event()  # a turn or a run ended somewhere
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start a runner task per agent; each wakes up when a turn is put on its agent."""
        for agent in self.crew.agents:
            wake = asyncio.Event()
            _listen(agent, wake, self._changed)
            task = asyncio.create_task(keep_running(agent, wake), name=f"run {agent.name}")
            self._runners.append(task)
        self._tasks.extend(self._runners)

    # -- state -----------------------------------------------------------------------------

    def in_flight(self) -> int:
        """How many questions have a turn queued or running somewhere."""
        jobs: set[object] = set()
        for agent in self.crew.agents:
            turns = agent.queue
            if agent.current_turn is not None:
                turns.append(agent.current_turn)
            jobs.update(turn.kwargs.get("job") for turn in turns)
        return len(jobs)

    def idle(self) -> bool:
        """True when no agent has a turn queued or running (no more work can appear)."""
        return all(not len(agent) and not agent.is_running for agent in self.crew.agents)

    # -- feeding and finishing ---------------------------------------------------------------

    async def feed(self, budget: int | None) -> None:
        """Put questions on the planners, until the planned turns reach ``budget`` (if any)."""
        planners = self.crew.planners
        job = 0
        while budget is None or self.planned < budget:
            await self._until(lambda: self.in_flight() < self.max_in_flight)
            await planners[job % len(planners)].put(new_question(self.world, job))
            self.planned += planned_turns(self.world, job)
            self.questions += 1
            job += 1
            await asyncio.sleep(self.world.rng("arrival", job).uniform(0.0, 0.01))

    async def _until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds; it is checked again whenever a turn or run ends."""
        while not condition():
            self._changed.clear()
            await self._changed.wait()

    async def drain(self) -> None:
        """Wait until every agent is idle."""
        await self._until(self.idle)

    async def run(self, duration: float | None, turns: int | None) -> None:
        """Run until ``turns`` planned turns have run, or for ``duration`` s, or forever.

        Raises:
            Exception: whatever broke a runner or the feeder (a bug, not a simulated failure).
        """
        feeder = asyncio.create_task(self.feed(turns), name="feed questions")
        finish = asyncio.create_task(self._finish(feeder, duration, turns), name="finish")
        self._tasks += [feeder, finish]
        done, _ = await asyncio.wait([finish, *self._runners], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # re-raise what broke it
        if finish not in done:
            raise RuntimeError("an agent's runner stopped unexpectedly")

    async def _finish(
        self, feeder: asyncio.Task[None], duration: float | None, turns: int | None
    ) -> None:
        if turns is not None:
            await feeder
            await self.drain()
            return
        if duration is None:
            await feeder  # runs until cancelled (Ctrl-C)
            return
        done, _ = await asyncio.wait([feeder], timeout=duration)
        if done:
            feeder.result()
        feeder.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT):
                await self.drain()

    async def stop(self) -> None:
        """Cancel everything still running (turns in flight end as cancelled)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
