"""The live progress line on stderr.

On a terminal it is rewritten in place twice a second; otherwise (a pipe, a log file) a plain
line is printed every few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TextIO

from ._summary import Stats

__all__ = ["Progress"]

TTY_INTERVAL = 0.5
LOG_INTERVAL = 5.0


class Progress:
    """Reports turns done, turns/s, timeouts and errors while the demo runs.

    Args:
        stats: the run's statistics.
        stream: where to write (stderr).
        in_flight: returns how many questions are being worked on.
    """

    def __init__(self, stats: Stats, stream: TextIO, in_flight: Callable[[], int]) -> None:
        self.stats = stats
        self.stream = stream
        self.in_flight = in_flight
        self.tty = stream.isatty()
        self.interval = TTY_INTERVAL if self.tty else LOG_INTERVAL
        self._last = (time.monotonic(), 0)
        self._drawn = False

    def line(self) -> str:
        """The current progress line (turns/s over the last interval)."""
        now, turns = time.monotonic(), self.stats.turns
        before, turns_before = self._last
        self._last = (now, turns)
        rate = (turns - turns_before) / (now - before) if now > before else 0.0
        return (
            f"{self.stats.elapsed:6.1f}s  {turns} turns  {rate:6.1f} turns/s  "
            f"{self.stats.timeouts} timeouts  {self.stats.errors} errors  "
            f"{self.in_flight()} questions in flight"
        )

    def draw(self) -> None:
        """Write the line: in place on a terminal, as a new line otherwise."""
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line())
            self._drawn = True
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    async def run(self) -> None:
        """Draw every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            self.draw()

    def close(self) -> None:
        """Erase the in-place line, so what follows starts on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False
