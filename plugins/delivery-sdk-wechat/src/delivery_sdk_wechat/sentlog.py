"""The adapter's own record of what it sent to WeChat, which has no status API.

One row per dispatch (``client_msg_id``): when the send began, the ``msgid`` WeChat answered with (none yet:
the answer never came), a SHA-256 of the recipient's openid (to match a delivery event whose ``msgid`` we
never learnt; never the openid itself), and the receipts learnt from callbacks. SQLite: a file survives a
crash of the process (``":memory:"`` does not). Safe to share between threads.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

import attrs

from delivery_sdk import Receipt, ReceiptKind
from delivery_sdk.plugin_kit import SideLog

__all__ = ["SentEntry", "SentLog", "openid_digest"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wechat_sent (
    client_msg_id TEXT PRIMARY KEY,
    openid_sha256 TEXT NOT NULL,
    began_at      TEXT NOT NULL,
    msgid         TEXT
);
CREATE INDEX IF NOT EXISTS wechat_sent_msgid ON wechat_sent (msgid);
CREATE TABLE IF NOT EXISTS wechat_receipts (
    event_id      TEXT PRIMARY KEY,
    client_msg_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    at            TEXT NOT NULL,
    reason        TEXT
);
"""


def openid_digest(openid: str) -> str:
    """The SHA-256 hex digest of an openid (kept instead of the openid itself)."""
    return hashlib.sha256(openid.encode()).hexdigest()


@attrs.frozen(kw_only=True)
class SentEntry:
    """One dispatch as the sent log knows it: when the send began, WeChat's ``msgid``, the receipts."""

    client_msg_id: str
    began_at: datetime
    msgid: str | None
    receipts: tuple[Receipt, ...] = ()


class SentLog(SideLog):
    """What this adapter sent (see the module docstring); ``path`` is a SQLite file or ``":memory:"``."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        super().__init__(path, _SCHEMA, timeout=5.0)

    def begin(self, client_msg_id: str, openid: str, at: datetime) -> None:
        """Record that a send is about to go out (kept if it was recorded before: the first attempt counts)."""
        self.execute(
            "INSERT OR IGNORE INTO wechat_sent (client_msg_id, openid_sha256, began_at) VALUES (?, ?, ?)",
            (client_msg_id, openid_digest(openid), at.isoformat()),
        )

    def sent(self, client_msg_id: str, msgid: str) -> None:
        """Record the ``msgid`` WeChat answered a send with."""
        self.execute("UPDATE wechat_sent SET msgid = ? WHERE client_msg_id = ?", (msgid, client_msg_id))

    def forget(self, client_msg_id: str) -> None:
        """WeChat refused the send for good: nothing went out."""
        self.execute("DELETE FROM wechat_sent WHERE client_msg_id = ? AND msgid IS NULL", (client_msg_id,))

    def lookup(self, client_msg_id: str) -> SentEntry | None:
        """What was recorded of a dispatch (None: never sent), with the receipts learnt from callbacks."""
        row = self.one("SELECT began_at, msgid FROM wechat_sent WHERE client_msg_id = ?", (client_msg_id,))
        if row is None:
            return None
        receipts = self.all(
            "SELECT event_id, kind, at, reason FROM wechat_receipts WHERE client_msg_id = ? ORDER BY at",
            (client_msg_id,),
        )
        return SentEntry(
            client_msg_id=client_msg_id,
            began_at=datetime.fromisoformat(row[0]),
            msgid=row[1],
            receipts=tuple(
                Receipt(
                    dispatch_id=client_msg_id,
                    kind=ReceiptKind(kind),
                    at=datetime.fromisoformat(at),
                    provider_event_id=event_id,
                    reason=reason,
                )
                for event_id, kind, at, reason in receipts
            ),
        )

    def by_msgid(self, msgid: str, openid: str | None = None) -> str | None:
        """The dispatch a WeChat ``msgid`` belongs to; failing that, the only unanswered send to ``openid``
        (its answer was lost, so the msgid was never recorded), which then gets this msgid."""
        with self.transaction() as db:
            row = db.execute("SELECT client_msg_id FROM wechat_sent WHERE msgid = ?", (msgid,)).fetchone()
            if row is not None:
                return str(row[0])
            if openid is None:
                return None
            rows = db.execute(
                "SELECT client_msg_id FROM wechat_sent WHERE openid_sha256 = ? AND msgid IS NULL",
                (openid_digest(openid),),
            ).fetchall()
            if len(rows) != 1:
                return None
            db.execute("UPDATE wechat_sent SET msgid = ? WHERE client_msg_id = ?", (msgid, rows[0][0]))
            return str(rows[0][0])

    def add_receipt(self, receipt: Receipt) -> None:
        """Keep a receipt learnt from a callback, for status() (idempotent on its event id)."""
        assert receipt.provider_event_id is not None
        self.execute(
            "INSERT OR IGNORE INTO wechat_receipts (event_id, client_msg_id, kind, at, reason) VALUES (?, ?, ?, ?, ?)",
            (
                receipt.provider_event_id,
                receipt.dispatch_id,
                receipt.kind.value,
                receipt.at.isoformat(),
                receipt.reason,
            ),
        )
