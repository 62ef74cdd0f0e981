"""An anchoring plugin for delivery-sdk: signed evidence checkpoints go to an external notary over HTTP.

:class:`NotaryAnchor` implements the ``delivery_record_evidence`` hook. Every newly signed checkpoint of the
evidence log (``batch.checkpoint``, a C2SP signed note) is first written to a small durable queue (SQLite,
WAL, ``synchronous=FULL``), then the queue is flushed to the notary in order, within a bounded time budget.
The receipts the notary gives back are returned to the engine as :class:`~delivery_sdk.AnchorReceipt`
objects, which the store keeps in its evidence log (``evidence_anchors``).

Checkpoint request: ``POST {base_url}/v1/checkpoints`` with ``Content-Type: application/json``, the headers
``Authorization: Bearer <api_key>`` (only when an ``api_key`` is configured) and ``Idempotency-Key`` (the same
for every attempt, in every process, to anchor that checkpoint)::

    {"checkpoint": "<the signed note, verbatim>", "size": 1024}

Leaf request (only with ``send_leaves=True``): ``POST {base_url}/v1/leaves``::

    {"leaves": [{"task_id": "T000001", "type": "dispatch.delivered", "at": "2026-11-26T09:30:00+08:00",
                 "seq": 17, "leaf_hash": "<base64 RFC 9162 leaf hash>"}, ...]}

Only these five keys leave the SDK: never a name, phone number, ID number, address or document.

Response (``200``, to both)::

    {"receipt": "<the notary's receipt: a transaction id, a signed statement...>",
     "anchored_at": "2026-11-26T09:30:01+08:00"}                  # ISO 8601 with a UTC offset

Failures: timeouts, connection errors, ``5xx`` and ``429`` are retried with tenacity (``attempts`` in all,
exponential back-off, ``Retry-After`` honoured up to ``max_retry_after``; a longer one ends this call). Any
other status or a response that is not the schema above ends this call too. In every case the item stays
queued and goes first, in order, at the next call (or after a restart, from the same ``queue_path``); the
hook logs a warning (no personal data, no response bodies) and never raises into the engine.

The entry point (``notary = "delivery_sdk_notary:plugin"``) is :data:`plugin`, an :class:`EnvNotaryAnchor`
configured from ``DELIVERY_SDK_NOTARY_URL`` (plus ``_TOKEN``, ``_QUEUE``, ``_NAME``); while the URL is unset
it contributes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from delivery_sdk import hookimpl
from delivery_sdk.events import StoredEvent
from delivery_sdk.evidence.canonical import stored_event_leaf_hash
from delivery_sdk.plugin_kit import (
    RETRYABLE_ERRORS,
    PluginSettings,
    RetryableResponse,
    RetryConfig,
    SideLog,
    aware_datetime,
    check_base_url,
    configured_or_none,
    parse_retry_after,
    retry_after_or_backoff,
)
from delivery_sdk.plugin_kit import retrying as kit_retrying
from delivery_sdk.records import AnchorReceipt, EvidenceBatch

__all__ = [
    "CHECKPOINTS_ENDPOINT",
    "DEFAULT_QUEUE",
    "ENV_NAME",
    "ENV_QUEUE",
    "ENV_TOKEN",
    "ENV_URL",
    "LEAF_KEYS",
    "LEAVES_ENDPOINT",
    "EnvNotaryAnchor",
    "NotaryAnchor",
    "checkpoint_size",
    "plugin",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_notary")

CHECKPOINTS_ENDPOINT = "/v1/checkpoints"
LEAVES_ENDPOINT = "/v1/leaves"
ENV_URL = "DELIVERY_SDK_NOTARY_URL"
ENV_TOKEN = "DELIVERY_SDK_NOTARY_TOKEN"
ENV_QUEUE = "DELIVERY_SDK_NOTARY_QUEUE"
ENV_NAME = "DELIVERY_SDK_NOTARY_NAME"
DEFAULT_QUEUE = "./delivery-sdk-notary-queue.sqlite3"
LEAF_KEYS = frozenset({"task_id", "type", "at", "seq", "leaf_hash"})
_MAX_RECEIPT = 8192

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notary_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    notary      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('checkpoint', 'leaf')),
    item_key    TEXT NOT NULL,
    size        INTEGER,
    payload     TEXT NOT NULL,
    queued_at   TEXT NOT NULL,
    receipt     TEXT,
    anchored_at TEXT,
    UNIQUE (notary, kind, item_key)
);
CREATE INDEX IF NOT EXISTS notary_queue_pending ON notary_queue (notary, kind, id) WHERE receipt IS NULL;
"""


class _GiveUp(Exception):
    """This call ends; the item stays queued. The message holds no server- or party-supplied text."""


def checkpoint_size(note: str) -> int:
    """The tree size of a C2SP checkpoint (line 2: decimal, no leading zeroes); ValueError otherwise."""
    lines = note.split("\n")
    if len(lines) < 3:
        raise ValueError("a checkpoint has an origin, a size and a root hash line")
    text = lines[1]
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ValueError("the checkpoint's size line is not a decimal number without leading zeroes")
    return int(text)


def leaf_item(stored: StoredEvent) -> dict[str, Any]:
    """The non-personal metadata of one committed event that may go to a notary (exactly :data:`LEAF_KEYS`)."""
    return {
        "task_id": stored.event.task_id,
        "type": stored.event.TYPE,
        "at": stored.event.at.isoformat(),
        "seq": stored.seq,
        "leaf_hash": base64.b64encode(stored_event_leaf_hash(stored)).decode("ascii"),
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RetryableResponse | _GiveUp):
        return str(exc)
    return type(exc).__name__


def _parse_response(response: httpx.Response) -> tuple[str, datetime]:
    """The receipt and time of a notary's answer, or _GiveUp naming what is wrong (never a value)."""
    try:
        payload = response.json()
    except ValueError:
        raise _GiveUp("response body is not JSON") from None
    if not isinstance(payload, dict):
        raise _GiveUp("response body is not a JSON object")
    receipt = payload.get("receipt")
    if not isinstance(receipt, str) or not receipt.strip() or len(receipt) > _MAX_RECEIPT or "\x00" in receipt:
        raise _GiveUp(f"response has no 'receipt' string of 1-{_MAX_RECEIPT} characters")
    return receipt, aware_datetime(payload.get("anchored_at"), "response 'anchored_at'", error=_GiveUp)


class NotaryAnchor:
    """The ``delivery_record_evidence`` hook over a notary's HTTP endpoint (see the module docstring).

    - ``base_url``: ``http(s)://host[:port][/prefix]``;
    - ``queue_path``: the durable queue (a SQLite file, created if missing; ``":memory:"`` for tests only);
    - ``name``: the ``notary`` of the receipts (default: ``base_url``); also separates queues of several
      notaries in one file;
    - ``api_key``: sent as ``Authorization: Bearer <api_key>``; never shown by ``repr``;
    - ``transport``: an ``httpx.BaseTransport`` (tests); ``timeout``: seconds for each attempt;
    - ``attempts``: attempts per item in one call; ``backoff`` doubles after each failed attempt;
    - ``send_leaves``: also send every committed event's leaf hash with non-personal metadata;
    - ``budget``: wall-clock seconds one call may spend talking to the notary (requests and waits);
    - ``max_retry_after``: the longest ``Retry-After`` waited for; a longer one ends the call;
    - ``cooldown``: after a failed flush, calls without a new checkpoint do not try again for this long;
    - ``leaf_batch``: leaf items per request; ``sleep``/``clock``: injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        queue_path: str | os.PathLike[str],
        *,
        name: str | None = None,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        send_leaves: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        budget: float = 10.0,
        backoff: float = 0.5,
        max_retry_after: float = 5.0,
        cooldown: float = 30.0,
        leaf_batch: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base_url = check_base_url(base_url)
        if attempts < 1 or leaf_batch < 1:
            raise ValueError("attempts and leaf_batch must be at least 1")
        if timeout <= 0 or budget <= 0 or backoff < 0 or max_retry_after < 0 or cooldown < 0:
            raise ValueError("timeout and budget must be positive; backoff, max_retry_after, cooldown not negative")
        self.base_url = base_url.rstrip("/")
        self.name = name or self.base_url
        self.queue_path = str(queue_path)
        self._api_key = api_key
        self.transport = transport
        self.timeout = timeout
        self.attempts = attempts
        self.send_leaves = send_leaves
        self.sleep = sleep
        self.budget = budget
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.cooldown = cooldown
        self.leaf_batch = leaf_batch
        self.clock = clock
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._queue = SideLog(self.queue_path, _SCHEMA, timeout=5.0)

    def __repr__(self) -> str:
        return f"NotaryAnchor({self.base_url!r}, {self.queue_path!r}, name={self.name!r})"

    def close(self) -> None:
        """Close the queue's SQLite file."""
        with self._lock:
            self._queue.close()

    def __enter__(self) -> NotaryAnchor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the queue -------------------------------------------------------------------------------------

    def enqueue_checkpoint(self, note: str) -> bool:
        """Queue a signed checkpoint (durably); False when a checkpoint of that size was queued before.

        Public so an operator can re-queue checkpoints from the store's ``evidence_checkpoints``.
        """
        size = checkpoint_size(note)
        with self._lock:
            return self._insert([("checkpoint", str(size), size, json.dumps({"checkpoint": note, "size": size}))]) > 0

    def _insert(self, rows: Sequence[tuple[str, str, int | None, str]]) -> int:
        now = datetime.now(UTC).isoformat()
        with self._queue.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO notary_queue (notary, kind, item_key, size, payload, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(self.name, kind, key, size, payload, now) for kind, key, size, payload in rows],
            )
            return db.total_changes - before

    def pending(self) -> list[tuple[str, int]]:
        """The queued items not yet anchored, in order: ``("checkpoint", size)`` or ``("leaf", seq)``."""
        with self._lock:
            rows = self._queue.all(
                "SELECT kind, item_key FROM notary_queue WHERE notary = ? AND receipt IS NULL ORDER BY id",
                (self.name,),
            )
        return [(kind, int(key)) for kind, key in rows]

    def anchored(self) -> list[AnchorReceipt]:
        """Every checkpoint receipt this notary gave, by size (to reconcile with the store's anchors)."""
        with self._lock:
            rows = self._queue.all(
                "SELECT size, receipt, anchored_at FROM notary_queue"
                " WHERE notary = ? AND kind = 'checkpoint' AND receipt IS NOT NULL ORDER BY size",
                (self.name,),
            )
        return [
            AnchorReceipt(notary=self.name, size=size, receipt=receipt, anchored_at=datetime.fromisoformat(at))
            for size, receipt, at in rows
        ]

    def _mark_done(self, ids: Sequence[int], receipt: str, anchored_at: datetime) -> None:
        self._queue.executemany(
            "UPDATE notary_queue SET receipt = ?, anchored_at = ? WHERE id = ?",
            [(receipt, anchored_at.isoformat(), i) for i in ids],
        )

    # -- the hook --------------------------------------------------------------------------------------

    @hookimpl
    def delivery_record_evidence(self, batch: EvidenceBatch) -> list[AnchorReceipt] | None:
        """Queue the batch's checkpoint (and leaves) and try to anchor what is queued; the receipts gained, or None."""
        try:
            with self._lock:
                new_checkpoint = self._queue_batch(batch)
                if not new_checkpoint and self._cooling_down():
                    return None
                receipts = self._flush()
        except Exception as exc:  # never into the engine: the items stay queued
            log.warning("notary %s: anchoring failed (%s); queued items stay queued", self.name, _describe(exc))
            return None
        return receipts or None

    def flush(self) -> list[AnchorReceipt]:
        """Send what is queued now (within the budget); the receipts of the checkpoints anchored."""
        with self._lock:
            return self._flush()

    def _cooling_down(self) -> bool:
        return self._failed_at is not None and self.clock() - self._failed_at < self.cooldown

    def _queue_batch(self, batch: EvidenceBatch) -> bool:
        rows: list[tuple[str, str, int | None, str]] = []
        if self.send_leaves:
            for stored in batch.events:
                rows.append(("leaf", str(stored.seq), None, json.dumps(leaf_item(stored), ensure_ascii=False)))
        new_checkpoint = False
        if batch.checkpoint is not None:
            try:
                size = checkpoint_size(batch.checkpoint)
            except ValueError as exc:
                log.warning("notary %s: a checkpoint was not queued: %s", self.name, exc)
            else:
                payload = json.dumps({"checkpoint": batch.checkpoint, "size": size})
                rows.append(("checkpoint", str(size), size, payload))
                new_checkpoint = True
        if rows:
            self._insert(rows)
        return new_checkpoint

    def _flush(self) -> list[AnchorReceipt]:
        deadline = self.clock() + self.budget
        receipts: list[AnchorReceipt] = []
        try:
            with httpx.Client(transport=self.transport, follow_redirects=False) as client:
                for item_id, size, payload in self._queue.all(
                    "SELECT id, size, payload FROM notary_queue"
                    " WHERE notary = ? AND kind = 'checkpoint' AND receipt IS NULL ORDER BY id",
                    (self.name,),
                ):
                    receipt, at = self._send(client, CHECKPOINTS_ENDPOINT, payload, deadline)
                    self._mark_done([item_id], receipt, at)
                    receipts.append(AnchorReceipt(notary=self.name, size=size, receipt=receipt, anchored_at=at))
                while True:
                    rows = self._queue.all(
                        "SELECT id, item_key, payload FROM notary_queue"
                        " WHERE notary = ? AND kind = 'leaf' AND receipt IS NULL ORDER BY id LIMIT ?",
                        (self.name, self.leaf_batch),
                    )
                    if not rows:
                        break
                    body = '{"leaves":[' + ",".join(payload for _, _, payload in rows) + "]}"
                    receipt, at = self._send(client, LEAVES_ENDPOINT, body, deadline)
                    self._mark_done([row[0] for row in rows], receipt, at)
        except Exception as exc:
            self._failed_at = self.clock()
            row = self._queue.one(
                "SELECT count(*) FROM notary_queue WHERE notary = ? AND receipt IS NULL", (self.name,)
            )
            left = row[0] if row is not None else 0
            log.warning(
                "notary %s: %s; %d item(s) stay queued for the next call (%d checkpoint(s) anchored in this one)",
                self.name,
                _describe(exc),
                left,
                len(receipts),
            )
        else:
            self._failed_at = None
        return receipts

    def _send(self, client: httpx.Client, endpoint: str, body: str, deadline: float) -> tuple[str, datetime]:
        raw = body.encode("utf-8")
        # the same request body gives the same key, on every attempt and in every process
        key = hashlib.sha256(raw).hexdigest()
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": key}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = self.base_url + endpoint

        def post() -> httpx.Response:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise _GiveUp("time budget spent")
            response = client.post(url, content=raw, headers=headers, timeout=min(self.timeout, remaining))
            status = response.status_code
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise _GiveUp(f"HTTP {status} with Retry-After {retry_after:g}s beyond {self.max_retry_after:g}s")
                raise RetryableResponse(status, retry_after)
            if status != 200:
                raise _GiveUp(f"HTTP {status}")
            return response

        retrying = kit_retrying(
            RetryConfig(attempts=self.attempts),
            retry_on=RETRYABLE_ERRORS,
            sleep=self.sleep,
            wait=retry_after_or_backoff(min(self.backoff, self.max_retry_after), self.max_retry_after),
            stop_when=lambda wait: self.clock() + wait >= deadline,
            on_retry=lambda attempt, exc, wait: log.info(
                "notary %s: POST %s attempt %d of %d failed (%s); retrying in %.2fs",
                self.name,
                endpoint,
                attempt,
                self.attempts,
                _describe(exc) if exc is not None else "?",
                wait,
            ),
        )
        try:
            response = retrying(post)
        except Exception as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise _GiveUp(f"POST {endpoint} failed: {_describe(exc)}, after {attempts} attempt(s)") from exc
        try:
            return _parse_response(response)
        except _GiveUp as exc:
            raise _GiveUp(f"POST {endpoint}: {exc}") from None


class EnvNotaryAnchor:
    """The entry-point plugin: a :class:`NotaryAnchor` configured from the environment, or nothing.

    ``DELIVERY_SDK_NOTARY_URL`` is the notary's base URL (unset or empty: the hook returns None);
    ``DELIVERY_SDK_NOTARY_TOKEN`` the bearer token; ``DELIVERY_SDK_NOTARY_QUEUE`` the queue file
    (``./delivery-sdk-notary-queue.sqlite3``); ``DELIVERY_SDK_NOTARY_NAME`` the receipts' notary name (the
    URL). The variables are read from the host's ``environ`` (``environ`` given here wins, for tests). At
    start (``delivery_configure``) a partial or unusable configuration raises one
    :class:`~delivery_sdk.PluginError` naming every variable at fault, and none set means not configured
    (nothing anchored, no error). Should the configuration fail later, at a call, it logs a warning and
    contributes nothing (a checkpoint that arrives then is not queued: re-queue it from the store with
    :meth:`NotaryAnchor.enqueue_checkpoint`).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, str | None, str, str | None], NotaryAnchor] | None = None

    def __repr__(self) -> str:
        return "EnvNotaryAnchor()"

    def configured(self, environ: Mapping[str, str] | None = None) -> NotaryAnchor | None:
        """The anchor the variables describe now, or None when none of ``DELIVERY_SDK_NOTARY_*`` is set;
        :class:`~delivery_sdk.PluginError` naming every variable at fault otherwise."""
        s = PluginSettings("notary", self._environ if self._environ is not None else environ, "DELIVERY_SDK_NOTARY_")
        if not s.configured:
            return None
        url = s.require(ENV_URL, "the notary's base URL")
        token = s.secret(ENV_TOKEN)
        s.check()
        key = (url, token.strip() if token else None, s.get(ENV_QUEUE) or DEFAULT_QUEUE, s.get(ENV_NAME))
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            try:
                anchor = NotaryAnchor(key[0], Path(key[2]), api_key=key[1], name=key[3])
            except (ValueError, OSError, sqlite3.Error) as exc:
                s.guard(f"the notary's configuration ({ENV_URL} and friends) is not usable", exc)
                s.check()
                raise
            if self._cached is not None:
                self._cached[1].close()
            self._cached = (key, anchor)
            return anchor

    def close(self) -> None:
        """Close the anchor this plugin opened (its queue file), if any."""
        with self._lock:
            if self._cached is not None:
                self._cached[1].close()
                self._cached = None

    @hookimpl
    def delivery_configure(self, environ: Mapping[str, str]) -> None:
        """Check the settings at start: a partial or unusable configuration stops the client from starting."""
        if self.configured(environ) is None:
            log.debug("notary plugin installed but not configured (no DELIVERY_SDK_NOTARY_* variable)")

    @hookimpl
    def delivery_record_evidence(self, batch: EvidenceBatch, environ: Mapping[str, str]) -> list[AnchorReceipt] | None:
        """Queue the batch's checkpoint (and leaves) and try to anchor what is queued; the receipts gained, or None."""
        anchor = configured_or_none(lambda: self.configured(environ), "notary plugin", log)
        if anchor is None:
            return None
        return anchor.delivery_record_evidence(batch)


plugin = EnvNotaryAnchor()
"""The object the ``notary`` entry point registers with every plugin host."""
