"""The durable SQLite side-log: an adapter's own record of what it sent, for providers without a status API.

An adapter that cannot ask its provider "what became of message X?" keeps its own record, written *before*
the step it protects (so that a crash never leaves a send it cannot account for). :class:`SideLog` is the
connection every such record shares: one SQLite file in WAL mode with ``synchronous=FULL`` (a write is on
disk when it returns; ``":memory:"`` for tests forgets everything), the plugin's own schema created on
open, one lock so that threads may share it, and ``close()``. A plugin subclasses it and writes its own
queries with :meth:`execute`, :meth:`one`, :meth:`all` and :meth:`transaction`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["SideLog"]


class SideLog:
    """A SQLite file (or ``":memory:"``) with ``schema`` created on open; safe to share between threads.

    :param path: the file (created when missing) or ``":memory:"``.
    :param schema: SQL statements creating the plugin's tables (``CREATE TABLE IF NOT EXISTS ...``); name
        the tables after the plugin, several plugins may share one file.
    :param timeout: seconds to wait for another process's write lock.
    :raises sqlite3.Error: the file cannot be opened or ``schema`` fails (the connection is closed again).
    """

    def __init__(self, path: str | os.PathLike[str], schema: str, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
        try:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(schema)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def __enter__(self) -> SideLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one statement (autocommit: durable when it returns); returns the rows it changed."""
        with self._lock:
            return self._db.execute(sql, parameters).rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the log for a read-then-write that must not interleave with another thread's or process's:
        ``with log.transaction() as db: db.execute(...)``. Committed when the block ends, rolled back (and
        the error raised again) when it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows`` in a single transaction (all or nothing)."""
        with self.transaction() as db:
            db.executemany(sql, rows)

    def one(self, sql: str, parameters: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row a query returns, or None."""
        with self._lock:
            row = self._db.execute(sql, parameters).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row a query returns."""
        with self._lock:
            return [tuple(row) for row in self._db.execute(sql, parameters).fetchall()]

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._db.close()
