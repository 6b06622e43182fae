"""``SQLiteStore``: checkpoints in one SQLite file (WAL, one row per agent), off the event loop."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pygents.errors import CheckpointStoreError

from ._base import Checkpoint

__all__ = ["SQLiteStore"]

R = TypeVar("R")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SQLiteStore:
    """A ``CheckpointStore`` in an SQLite database file: the embedded default.

    One row per agent, replaced by one ``INSERT ... ON CONFLICT DO UPDATE`` statement (atomic;
    an older ``seq`` never overwrites a newer one). The database runs in WAL mode. Every call
    runs on one thread of the store's own, so the event loop never waits for the disk: it
    only builds the JSON document (see the docs for measured costs).

    Args:
        path: the database file (created if missing).
        table: the table name (letters, digits and ``_``).
        synchronous: SQLite's ``synchronous`` pragma. ``"NORMAL"`` (default) survives a crash
            of the process, not a power loss of the last commits; ``"FULL"`` also survives
            power loss, at one fsync per checkpoint.
        busy_timeout: seconds to wait for another process's lock before failing.

    Raises:
        ValueError: ``table`` is not an identifier, or ``synchronous`` is not a valid level.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "pygents_checkpoints",
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"SQLiteStore path must be a str or a path, got {path!r}")
        if not isinstance(table, str) or not _IDENTIFIER.fullmatch(table):
            raise ValueError(
                f"SQLiteStore table must be an identifier (letters, digits, _), got {table!r}"
            )
        level = str(synchronous).upper()
        if level not in _SYNCHRONOUS:
            raise ValueError(
                f"SQLiteStore synchronous must be one of {_SYNCHRONOUS}, got {synchronous!r}"
            )
        self.path = os.fspath(path)
        self.table = table
        self._synchronous = level
        self._busy_ms = int(busy_timeout * 1000)
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- the store thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """The connection (made on the store's thread, on first use)."""
        db = self._connection
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA synchronous = {self._synchronous}")
                db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    "agent TEXT PRIMARY KEY, seq INTEGER NOT NULL, data BLOB NOT NULL, "
                    "saved_at REAL NOT NULL)"
                )
            except BaseException:
                db.close()  # a connection that cannot be set up is not kept (nor leaked)
                raise
            self._connection = db
        return db

    async def _call(self, what: str, fn: Callable[[sqlite3.Connection], R]) -> R:
        if self._closed:
            raise CheckpointStoreError(f"{self!r} is closed; make a new store")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="pygents-sqlite")

        def job() -> R:
            with self._lock:
                return fn(self._connect())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except sqlite3.Error as exc:
            raise CheckpointStoreError(
                f"{self!r} failed to {what}: {type(exc).__name__}: {exc}"
            ) from exc

    # -- CheckpointStore -----------------------------------------------------------------------

    async def save(self, checkpoint: Checkpoint) -> None:
        """Replace the agent's row in one statement, unless a newer ``seq`` is stored.

        Raises:
            CheckpointStoreError: SQLite failed (the error is the ``__cause__``).
        """
        sql = (
            f"INSERT INTO {self.table} (agent, seq, data, saved_at) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT(agent) DO UPDATE SET seq = excluded.seq, data = excluded.data, "
            f"saved_at = excluded.saved_at WHERE excluded.seq > {self.table}.seq"
        )
        row = (checkpoint.agent, checkpoint.seq, checkpoint.data, checkpoint.saved_at)
        await self._call(f"save agent {checkpoint.agent!r}", lambda db: db.execute(sql, row))

    async def load(self, agent: str) -> Checkpoint | None:
        """Return the agent's checkpoint, or None.

        Raises:
            CheckpointStoreError: SQLite failed, or the row's columns have the wrong types.
        """
        sql = f"SELECT agent, seq, data, saved_at FROM {self.table} WHERE agent = ?"
        row: Any = await self._call(
            f"load agent {agent!r}", lambda db: db.execute(sql, (agent,)).fetchone()
        )
        if row is None:
            return None
        name, seq, data, saved_at = row
        if isinstance(data, str):
            data = data.encode()
        if not (
            isinstance(seq, int) and isinstance(data, bytes) and isinstance(saved_at, int | float)
        ):
            raise CheckpointStoreError(
                f"{self!r}: the row of agent {agent!r} has columns of the wrong types "
                f"(seq {type(seq).__name__}, data {type(data).__name__}); delete it"
            )
        return Checkpoint(name, seq, data, float(saved_at))

    async def delete(self, agent: str) -> None:
        """Delete the agent's row."""
        sql = f"DELETE FROM {self.table} WHERE agent = ?"
        await self._call(f"delete agent {agent!r}", lambda db: db.execute(sql, (agent,)))

    async def agents(self) -> list[str]:
        """Return the names with a row, sorted."""
        sql = f"SELECT agent FROM {self.table} ORDER BY agent"
        rows = await self._call("list agents", lambda db: db.execute(sql).fetchall())
        return [r[0] for r in rows]

    async def aclose(self) -> None:
        """Close the connection and stop the store's thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        executor = self._executor
        if executor is None:
            return

        def close() -> None:
            with self._lock:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=True)
