"""The adapter's durable memory of what it handed to the SMTP server.

SMTP has no "what became of message X?" query, so the adapter keeps its own record, written *before* the
step it protects and read before every send:

- ``in_doubt`` is written (durably) just before the message body goes out after ``354``: from then on the
  server may have the message, so it is never sent again (a crash, a timeout or a lost connection
  before the final reply leaves the record ``in_doubt``);
- ``accepted`` (``250`` to the end of data) and ``refused`` (``5xx``) are written as soon as the server
  answers;
- ``deferred`` (``4xx`` to the end of data): the server said "not now" and kept nothing, so sending again
  is safe.

:class:`SQLiteSentLog` is the default (one small SQLite file, WAL, ``synchronous=FULL``); anything with the
:class:`SentLog` shape works (a table in the application's own database, say). :class:`MemorySentLog` is
for tests and demos only: it forgets everything when the process ends.
"""

from __future__ import annotations

import enum
import os
import threading
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from delivery_sdk.plugin_kit import SideLog

__all__ = ["MemorySentLog", "SQLiteSentLog", "SentLog", "SentRecord", "SentState"]


class SentState(enum.Enum):
    IN_DOUBT = "in_doubt"  # the body went out; the server's answer never came
    ACCEPTED = "accepted"  # 250 to the end of data
    REFUSED = "refused"  # 5xx: refused for good
    DEFERRED = "deferred"  # 4xx to the end of data: the server kept nothing; safe to send again


@attrs.frozen(kw_only=True)
class SentRecord:
    dispatch_id: str
    state: SentState
    message_id: str
    at: datetime  # when the state was reached (the clock of the adapter)
    reply: str | None = None  # the SMTP reply code and enhanced status, e.g. "250 2.0.0" (never the text)
    reason: str | None = None  # for REFUSED


@runtime_checkable
class SentLog(Protocol):
    """Where the adapter records its sends; ``put`` must be durable when it returns."""

    def get(self, dispatch_id: str) -> SentRecord | None: ...

    def put(self, record: SentRecord) -> None: ...

    def close(self) -> None: ...


class MemorySentLog:
    """A :class:`SentLog` in memory (tests and demos: it does not survive the process)."""

    def __init__(self) -> None:
        self.records: dict[str, SentRecord] = {}
        self._lock = threading.Lock()

    def get(self, dispatch_id: str) -> SentRecord | None:
        with self._lock:
            return self.records.get(dispatch_id)

    def put(self, record: SentRecord) -> None:
        with self._lock:
            self.records[record.dispatch_id] = record

    def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS email_sent (
    channel     TEXT NOT NULL,
    dispatch_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    at          TEXT NOT NULL,
    reply       TEXT,
    reason      TEXT,
    PRIMARY KEY (channel, dispatch_id)
);
"""


class SQLiteSentLog(SideLog):
    """A :class:`SentLog` in a SQLite file; ``channel`` separates several e-mail channels sharing one file."""

    def __init__(self, path: str | os.PathLike[str], *, channel: str = "email") -> None:
        self.channel = channel
        super().__init__(path, _SCHEMA, timeout=10.0)

    def __repr__(self) -> str:
        return f"SQLiteSentLog({self.path!r}, channel={self.channel!r})"

    def get(self, dispatch_id: str) -> SentRecord | None:
        """The record of a dispatch, or None when it was never handed to the server."""
        row = self.one(
            "SELECT state, message_id, at, reply, reason FROM email_sent WHERE channel = ? AND dispatch_id = ?",
            (self.channel, dispatch_id),
        )
        if row is None:
            return None
        state, message_id, at, reply, reason = row
        return SentRecord(
            dispatch_id=dispatch_id,
            state=SentState(state),
            message_id=message_id,
            at=datetime.fromisoformat(at),
            reply=reply,
            reason=reason,
        )

    def put(self, record: SentRecord) -> None:
        """Write a record (replacing the dispatch's previous one); durable when it returns."""
        self.execute(
            "INSERT INTO email_sent (channel, dispatch_id, state, message_id, at, reply, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, dispatch_id) DO UPDATE SET"
            " state = excluded.state, message_id = excluded.message_id, at = excluded.at,"
            " reply = excluded.reply, reason = excluded.reason",
            (
                self.channel,
                record.dispatch_id,
                record.state.value,
                record.message_id,
                record.at.isoformat(),
                record.reply,
                record.reason,
            ),
        )
