"""pygents on Redis: a shared checkpoint store and workers that scale agents out.

Install with ``pip install "pygents[redis]"`` (the asyncio ``redis`` client).

- ``RedisStore``: a ``pygents.store.CheckpointStore`` in Redis (atomic, highest ``seq`` wins).
- ``RedisWorker``: serve a set of agents from many processes on many machines; each agent is
  owned by one worker at a time through an expiring lease, its turns arrive through a
  stream, and a dead worker's agents are taken over from their checkpoints.
- ``RedisQueue``: send a turn to an agent wherever it is served; read the dead letters.

``import pygents`` never imports this package (nor ``redis``).
"""

from __future__ import annotations

from ._keys import GROUP as GROUP
from ._keys import Keys as Keys
from ._queue import DeadLetter as DeadLetter
from ._queue import RedisQueue as RedisQueue
from ._store import LeaseLostError as LeaseLostError
from ._store import RedisStore as RedisStore
from ._telemetry import METRICS as METRICS
from ._worker import RedisWorker as RedisWorker

__all__ = [
    "GROUP",
    "METRICS",
    "DeadLetter",
    "Keys",
    "LeaseLostError",
    "RedisQueue",
    "RedisStore",
    "RedisWorker",
]
