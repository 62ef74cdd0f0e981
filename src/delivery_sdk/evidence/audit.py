"""Auditing a store: every row re-derived from the signed event bodies; proof bundles for one task.

:func:`verify_store` reads a store without writing to it and checks everything it holds against the one
thing a signature covers, the event bodies:

- **events**: each body decodes (valid UTF-8, JSON, an event), its leaf hash equals the stored leaf, and
  the columns beside it (``task_id``, ``type``, ``at``, the supervision columns ``sv_ref``, ``sv_key``,
  ``sv_time``) say what the body says; ``seq`` runs 1, 2, 3... and each task's ``task_seq`` too;
- **tasks**: each row equals the fold of its task's events through :mod:`delivery_sdk.lifecycle`
  (``state``, ``version`` = the number of events, ``case_key`` and ``client_key`` from ``task.created``,
  ``created_at`` and ``updated_at`` = the first and last event's ``at``); no events without a row, no row
  without events. ``due_at`` (and PostgreSQL's lease columns) are scheduling, not facts: not checked, and
  nothing shown to a person reads them. ``fingerprint`` is the submitting client's idempotency digest,
  not derivable from the store: not checked;
- **outbox** and **receipts**: each outbox row is the ``dispatch.queued`` event of its dispatch (task and
  channel), and each such event has its row; each receipt event carrying a provider event id has its
  ``receipts`` row in its task (without it a replayed receipt would be recorded twice). ``outbox.done``
  is the sender's progress marker, not a fact: not checked;
- **the tree**: every stored node (``evidence_nodes``) is the hash of the leaves below it, none that
  should exist is missing, none is extra;
- **checkpoints**: each stored checkpoint is well formed, signed by a trusted key (when keys are given),
  names the log (``origin``, by default the name of the key that signed it) and its root is the tree's at
  its size. Events after the largest valid checkpoint are counted as *unsigned*.

Each problem names where it is (``event seq N``, ``task T``, ``tree node (level L, index I)``,
``stored checkpoint at size N``...). Rows that cannot be read (a body that is not UTF-8 or JSON) are
reported and the audit goes on. It streams the events once (memory: 32 bytes a leaf, twice, and the tasks
still open at that point of the log), so a store of 10^6 events is checked in well under a minute.

Given an older checkpoint the auditor trusted, it refuses a log that rewrote history since. What no
audit of a lone store can see is a store rolled back to an earlier, self-consistent state: only a
checkpoint kept outside it (the engine's witness file, a notary's receipt, an auditor's copy) shows that.

:func:`export_bundle` gives a task's events with their inclusion proofs against a signed checkpoint;
:func:`verify_bundle` checks one with the standalone verifier only. :func:`export_consistency` and
:func:`verify_consistency_bundle` do the same for a consistency proof between two checkpoints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..serialization import _dt_out
from .merkle import CompactRange, MemoryNodeStore, root
from .verify import (
    HASH_SIZE,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    VerificationError,
    event_leaf_input,
    leaf_hash,
    open_checkpoint,
    parse_note,
    verify_inclusion,
)

if TYPE_CHECKING:
    from ..lifecycle import Task
    from .log import SQLConnection

__all__ = [
    "BUNDLE_FORMAT",
    "CONSISTENCY_FORMAT",
    "AuditReport",
    "export_bundle",
    "export_consistency",
    "verify_bundle",
    "verify_consistency_bundle",
    "verify_store",
]

BUNDLE_FORMAT = "delivery-sdk/proof-bundle/v1"
CONSISTENCY_FORMAT = "delivery-sdk/consistency-proof/v1"

MAX_PROBLEMS = 1000  # listed one by one; more are counted in a last line


@attrs.frozen(kw_only=True)
class AuditReport:
    """The result of auditing a store's evidence: events and checkpoints checked, problems found, events not yet covered
    by a verified checkpoint."""

    events: int
    checkpoints: int
    problems: tuple[str, ...]
    unsigned: int = 0  # events after the largest stored checkpoint that verified (none: 0)
    tasks: int = 0
    nodes: int = 0
    accesses: int = 0  # access records checked (delivery_sdk.access: the chain of reads of personal data)

    @property
    def ok(self) -> bool:
        """True when the audit found no problem."""
        return not self.problems


def _text(raw: bytes) -> str | bytes:
    """SQLite's text as ``str``, or the raw bytes when it is not UTF-8 (reported, instead of a crash)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _connect(path: str | Path) -> sqlite3.Connection | SQLConnection:
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        from ..store.postgres import audit_connection  # a PostgreSQL store, read on one snapshot

        return audit_connection(path)
    from ..store.sqlite import connect_readonly  # checks the file is a store; never writes to it

    db = connect_readonly(path)
    db.text_factory = _text  # a body that is no longer UTF-8 is reported, not a crash
    return db


class _Problems:
    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self.items: list[str] = []
        self.more = 0
        self.limit = limit

    def add(self, text: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(text)
        else:
            self.more += 1

    def result(self) -> tuple[str, ...]:
        tail = [f"... and {self.more} more problems"] if self.more else []
        return (*self.items, *tail)


_PAGE = 5000  # rows per page on PostgreSQL


def _rows(db: sqlite3.Connection | SQLConnection, select: str, key: str, keys: int = 1) -> Iterator[Any]:
    """``select`` (ending in ``ORDER BY`` its first ``keys`` columns, ``key``) streamed: one cursor on SQLite,
    keyset pages on PostgreSQL (whose cursors fetch a whole result at once)."""
    if isinstance(db, sqlite3.Connection):
        yield from db.execute(select)
        return
    head, _, order = select.rpartition(" ORDER BY ")
    where = " AND " if " WHERE " in head else " WHERE "
    marks = ", ".join("?" * keys)
    page = _PAGE
    after: tuple[Any, ...] | None = None
    while True:
        if after is None:
            batch = list(db.execute(f"{head} ORDER BY {order} LIMIT {page}"))
        else:
            condition = f"{key} > ?" if keys == 1 else f"({key}) > ({marks})"
            batch = list(db.execute(f"{head}{where}{condition} ORDER BY {order} LIMIT {page}", after))
        yield from batch
        if len(batch) < page:
            return
        after = tuple(batch[-1][:keys])


def _same_time(stored: Any, moment: datetime) -> bool:
    """A stored time column against an event's time: the same text on SQLite, the same instant on PostgreSQL."""
    if isinstance(stored, datetime):
        return stored == moment
    return bool(stored == _dt_out(moment))


@attrs.define
class _Fold:
    task: Task
    first_seq: int
    count: int = 1
    broken: bool = False


_LEAF_HEAD = b"\x00delivery-sdk/event/v1\n" + b'{"event":'  # canonical._HEAD: a canonical body hashes in place
_ZERO = bytes(HASH_SIZE)
_TASK_COLUMNS = "task_id, client_key, case_key, state, version, created_at, updated_at"


class _Audit:
    def __init__(self, db: sqlite3.Connection | SQLConnection, trusted_keys: Sequence[str], origin: str | None):
        self.db = db
        self.keys = trusted_keys
        self.origin = origin
        self.problems = _Problems()
        self.sqlite = isinstance(db, sqlite3.Connection)

    # -- reading ----------------------------------------------------------------------------------------

    def _columns(self, table: str) -> set[str]:
        if isinstance(self.db, sqlite3.Connection):
            return {str(r[1]) for r in self.db.execute(f"PRAGMA table_info({table})")}
        return {
            str(r[0])
            for r in self.db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ?",
                (table,),
            )
        }

    def _stored_leaves(self) -> tuple[bytearray, bytearray]:
        leaves = bytearray()
        have = bytearray()
        add = self.problems.add
        for idx, digest in _rows(self.db, "SELECT idx, hash FROM evidence_nodes WHERE level = 0 ORDER BY idx", "idx"):
            if not isinstance(idx, int) or idx < 0:
                add(f"tree node (level 0, index {idx!r}) has no valid index")
                continue
            if idx >= len(have):
                grow = idx + 1 - len(have)
                have.extend(bytes(grow))
                leaves.extend(bytes(grow * HASH_SIZE))
            if not isinstance(digest, bytes | bytearray | memoryview) or len(digest) != HASH_SIZE:
                add(f"tree node (level 0, index {idx}) is not a {HASH_SIZE}-byte hash")
                continue
            leaves[idx * HASH_SIZE : (idx + 1) * HASH_SIZE] = bytes(digest)
            have[idx] = 1
        return leaves, have

    # -- the audit ----------------------------------------------------------------------------------------

    def run(self, trusted_checkpoint: str | None, access_head: tuple[int, bytes] | None = None) -> AuditReport:
        db = self.db
        if isinstance(db, sqlite3.Connection):
            db.execute("BEGIN")  # one snapshot for every read below (the connection is read-only)
        try:
            stored, have = self._stored_leaves()
            stored_size = len(have)
            count, last_seq, tasks = self._events(stored, have)
            size = max(last_seq, len(have))
            memory, edge = self._tree(stored, have, size)
            nodes = self._nodes(memory, stored_size)
            checkpoints, signed = self._checkpoints(memory, size)
            accesses = self._accesses(access_head)
            if trusted_checkpoint is not None:
                for problem in self._check_checkpoint(trusted_checkpoint, None, size, memory, "trusted checkpoint"):
                    self.problems.add(problem + "; the log rewrote history since it was trusted")
        finally:
            if isinstance(db, sqlite3.Connection):
                db.execute("ROLLBACK")
        del edge
        return AuditReport(
            events=count,
            checkpoints=checkpoints,
            problems=self.problems.result(),
            unsigned=max(0, last_seq - signed),
            tasks=tasks,
            nodes=nodes,
            accesses=accesses,
        )

    def _accesses(self, head: tuple[int, bytes] | None) -> int:
        """Check the access log's chain: an edited, inserted or deleted record breaks it (``docs/access.md``)."""
        from ..access import AccessRecord, verify_chain

        if not self._columns("access_log"):
            if head is not None:
                self.problems.add("the store has no access log, but an access log head was given")
            return 0  # a store from before the access log
        records = []
        for seq, at, staff_id, role, task_id, court, what, chain in _rows(
            self.db, "SELECT seq, at, staff_id, role, task_id, court, what, chain FROM access_log ORDER BY seq", "seq"
        ):
            try:
                moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
                records.append(
                    AccessRecord(
                        seq=int(seq),
                        at=moment,
                        staff_id=str(staff_id),
                        role=str(role),
                        task_id=str(task_id),
                        court=str(court),
                        what=str(what),
                        chain=bytes(chain),
                    )
                )
            except (TypeError, ValueError):
                self.problems.add(f"access record {seq!r} cannot be read (its time or chain is not valid)")
        for problem in verify_chain(records, limit=MAX_PROBLEMS, head=head):
            self.problems.add(problem)
        return len(records)

    def _events(self, stored: bytearray, have: bytearray) -> tuple[int, int, int]:
        """Every event row against its leaf, its body and its task; returns (rows, last seq, tasks)."""
        import orjson

        from .._exceptions import IllegalTransition
        from ..events import TaskCreated
        from ..lifecycle import apply, new_task
        from ..serialization import event_from_dict
        from ..store.sqlite import _NO_SUPERVISION, _SUPERVISION

        db, add = self.db, self.problems.add
        event_columns = self._columns("events")
        supervision = {"sv_ref", "sv_key", "sv_time"} <= event_columns
        select = "SELECT seq, task_id, task_seq, type, at, body" + (", sv_ref, sv_key, sv_time" if supervision else "")
        rows: dict[str, tuple[Any, ...]] = {}
        for row in db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks"):
            rows[row[0]] = tuple(row)
        outbox = {str(d): (t, c) for d, t, c in db.execute("SELECT dispatch_id, task_id, channel FROM outbox")}
        receipts: dict[str, set[Any]] = {}
        for key, task_id in db.execute("SELECT dedupe_key, task_id FROM receipts"):
            if not isinstance(key, str) or task_id not in rows:
                add(f"receipt key {key!r}: its task {task_id!r} is not in the store")
                continue
            receipts.setdefault(key.partition(":")[2], set()).add(task_id)
        folding: dict[str, _Fold] = {}
        finished: set[str] = set()
        sha = hashlib.sha256
        count = 0
        expected = 1
        for values in _rows(db, f"{select} FROM events ORDER BY seq", "seq"):
            seq, col_task, task_seq, col_type, col_at, body = values[:6]
            count += 1
            if not isinstance(seq, int) or seq < expected:
                add(f"event seq {seq!r} is out of order or not a number")
                continue
            if seq > expected:
                gap = f"{expected}" if seq == expected + 1 else f"{expected} to {seq - 1}"
                add(f"event seq {gap} missing: deleted after commit (seq runs 1, 2, 3... without gaps)")
            expected = seq + 1
            where = f"event seq {seq} (task {col_task}, #{task_seq})"
            i = seq - 1
            stored_leaf = bytes(stored[i * HASH_SIZE : (i + 1) * HASH_SIZE]) if i < len(have) and have[i] else None
            # the body: UTF-8 text holding JSON holding an event
            text: str | None = None
            if isinstance(body, str):
                text = body
            elif isinstance(body, bytes | bytearray | memoryview):
                try:
                    text = bytes(body).decode("utf-8")
                    add(f"event seq {seq}: its body is stored as bytes, not text")
                except UnicodeDecodeError as exc:
                    add(f"event seq {seq}: its body is not valid UTF-8 (byte {exc.start}); cannot be read")
            else:
                add(f"event seq {seq}: its body is a {type(body).__name__}, not JSON text")
            if type(task_seq) is not int:
                add(f"event seq {seq}: its task_seq {task_seq!r} is not an integer")
            data: Any = None
            digest: bytes | None = None
            if text is not None:
                raw = text.encode("utf-8", "surrogatepass")
                if type(task_seq) is int:
                    fast = sha(b'%s%s,"seq":%d,"task_seq":%d}' % (_LEAF_HEAD, raw, seq, task_seq)).digest()
                    if fast == stored_leaf:
                        digest = fast
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    add(f"event seq {seq}: its body is not JSON; cannot be read")
                if digest is None and data is not None and type(task_seq) is int:
                    try:
                        digest = leaf_hash(event_leaf_input(seq, task_seq, data))
                    except VerificationError as exc:
                        add(f"event seq {seq}: {exc}")
            if stored_leaf is None:
                add(f"{where} has no leaf in the evidence log (inserted after commit, or its leaf deleted)")
                if digest is not None:  # the tree goes on with the event's own leaf
                    while len(have) <= i:
                        have.append(0)
                        stored.extend(_ZERO)
                    stored[i * HASH_SIZE : (i + 1) * HASH_SIZE] = digest
                    have[i] = 2
            elif digest is not None and digest != stored_leaf:
                add(f"{where} does not match its leaf in the evidence log (changed after commit)")
            if data is None:
                continue
            try:
                event = event_from_dict(data)
            except Exception as exc:  # any way a body fails to be an event
                add(f"event seq {seq}: its body does not decode to an event ({type(exc).__name__})")
                continue
            # the columns beside the body
            if col_type != event.TYPE:
                add(f"event seq {seq}: its type column says {col_type!r}, its body {event.TYPE!r}")
            if col_task != event.task_id:
                add(f"event seq {seq}: its task_id column says {col_task!r}, its body {event.task_id!r}")
            if not _same_time(col_at, event.at):
                add(f"event seq {seq}: its at column says {col_at!r}, its body {_dt_out(event.at)!r}")
            if supervision:
                derive = _SUPERVISION.get(event.TYPE)
                want = tuple(v or None for v in (_NO_SUPERVISION if derive is None else derive(event)))
                if tuple(values[6:9]) != want:
                    add(f"event seq {seq}: its supervision columns say {tuple(values[6:9])!r}, its body {want!r}")
            self._side_tables(seq, event, outbox, receipts)
            # the task: fold it, numbered 1, 2, 3...
            task_id = event.task_id
            fold = folding.get(task_id)
            if isinstance(event, TaskCreated):
                if fold is not None or task_id in finished:
                    add(f"event seq {seq}: a second task.created for task {task_id}")
                    continue
                fold = folding[task_id] = _Fold(task=new_task(event), first_seq=seq)
                if task_seq != 1:
                    add(f"event seq {seq}: task {task_id}'s events skip or repeat a number (#{task_seq}, not #1)")
            elif fold is None:
                if task_id in finished:
                    add(f"task {task_id}: event seq {seq} comes after the events its row counts")
                else:
                    add(f"event seq {seq}: task {task_id} has no task.created before it")
                continue
            else:
                fold.count += 1
                if task_seq != fold.count:
                    n = fold.count
                    add(f"event seq {seq}: task {task_id}'s events skip or repeat a number (#{task_seq}, not #{n})")
                if not fold.broken:
                    try:
                        fold.task = apply(fold.task, event)
                    except IllegalTransition as exc:
                        add(f"event seq {seq}: {exc}")
                        fold.broken = True
            row = rows.get(task_id)
            if row is not None and fold.count == row[4]:
                self._compare_task(row, fold)
                del folding[task_id]
                finished.add(task_id)
        for task_id, fold in folding.items():
            row = rows.get(task_id)
            if row is None:
                add(f"task {task_id} (events from seq {fold.first_seq}) has no row in tasks")
            else:
                self._compare_task(row, fold)
        for task_id in rows.keys() - finished - folding.keys():
            add(f"task {task_id} has a row in tasks but no events")
        for dispatch_id, (task_id, _) in outbox.items():
            add(f"outbox dispatch {dispatch_id} (task {task_id}) has no dispatch.queued event")
        return count, expected - 1, len(rows)

    def _side_tables(
        self, seq: int, event: Any, outbox: dict[str, tuple[Any, Any]], receipts: dict[str, set[Any]]
    ) -> None:
        add = self.problems.add
        if event.TYPE == "dispatch.queued":
            found = outbox.pop(event.dispatch_id, None)
            if found is None:
                add(f"event seq {seq}: dispatch {event.dispatch_id} has no outbox row")
            elif found != (event.task_id, event.channel):
                add(
                    f"outbox dispatch {event.dispatch_id}: its row says {found!r}, event seq {seq} says "
                    f"{(event.task_id, event.channel)!r}"
                )
        pid = getattr(event, "provider_event_id", None)
        if pid is not None and event.task_id not in receipts.get(pid, ()):
            add(f"event seq {seq}: provider event {pid!r} has no receipts row in task {event.task_id}")

    def _compare_task(self, row: tuple[Any, ...], fold: _Fold) -> None:
        task_id, client_key, case_key, state, version, created_at, updated_at = row
        task, add = fold.task, self.problems.add
        where = f"task {task_id}"
        if version != fold.count:
            add(f"{where}: its row says version {version!r}, it has {fold.count} events")
        if not fold.broken and state != task.state.value:
            add(f"{where}: its row says state {state!r}, its events fold to {task.state.value!r}")
        if case_key != task.request.case.key:
            add(f"{where}: its row says case_key {case_key!r}, its task.created {task.request.case.key!r}")
        if client_key != task.request.client_key:
            add(f"{where}: its row says client_key {client_key!r}, its task.created {task.request.client_key!r}")
        if not _same_time(created_at, task.created_at):
            add(f"{where}: its row says created_at {created_at!r}, its first event's at differs")
        if not fold.broken and not _same_time(updated_at, task.updated_at):
            add(f"{where}: its row says updated_at {updated_at!r}, its last event's at differs")

    def _tree(self, stored: bytearray, have: bytearray, size: int) -> tuple[MemoryNodeStore, CompactRange]:
        """The tree over the stored leaves (each checked against its event above); gaps hash as zeros."""
        memory = MemoryNodeStore()
        edge = CompactRange()
        view = memoryview(stored)
        for start in range(0, size, 65536):
            end = min(size, start + 65536)
            leaves = [
                bytes(view[i * HASH_SIZE : (i + 1) * HASH_SIZE]) if i < len(have) and have[i] else _ZERO
                for i in range(start, end)
            ]
            memory.put_nodes(edge.append_many(leaves))
        for i in range(min(size, len(have))):
            if not have[i] and i >= 0:
                self.problems.add(f"tree node (level 0, index {i}) is missing: event seq {i + 1} has no leaf")
        return memory, edge

    def _nodes(self, memory: MemoryNodeStore, size: int) -> int:
        """Every stored node above the leaves against the tree; the missing (of a tree of the ``size`` stored
        leaves) and the extra ones."""
        from .log import DENSE_FROM

        add = self.problems.add
        nodes = 0
        next_idx: dict[int, int] = {}
        for level, idx, digest in _rows(
            self.db, "SELECT level, idx, hash FROM evidence_nodes WHERE level > 0 ORDER BY level, idx", "level, idx", 2
        ):
            nodes += 1
            where = f"tree node (level {level}, index {idx})"
            if not isinstance(level, int) or not isinstance(idx, int) or idx < 0:
                add(f"{where} has no valid key")
                continue
            start = next_idx.get(level, 0)
            if level >= DENSE_FROM and idx > start:
                for gap in range(start, min(idx, size >> level)):
                    add(f"tree node (level {level}, index {gap}) is missing (deleted after commit)")
            next_idx[level] = max(start, idx + 1)
            if idx >= memory.count(level):
                add(f"{where} is beyond the tree's {memory.count(0)} leaves (inserted after commit)")
            elif bytes(digest) != memory.get_nodes([(level, idx)])[0]:
                add(f"{where} is not the hash of the leaves below it (changed after commit)")
        for level in range(DENSE_FROM, size.bit_length()):
            for gap in range(next_idx.get(level, 0), size >> level):
                add(f"tree node (level {level}, index {gap}) is missing (deleted after commit)")
        return nodes

    def _checkpoints(self, memory: MemoryNodeStore, size: int) -> tuple[int, int]:
        """Every stored checkpoint; returns how many there are and the largest size that verified."""
        rows = list(self.db.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size"))
        best = 0
        origins: set[str] = set()
        for filed, note in rows:
            problems = self._check_checkpoint(note, filed, size, memory, "stored checkpoint", origins)
            for problem in problems:
                self.problems.add(problem)
            if not problems and isinstance(filed, int):
                best = max(best, filed)
        return len(rows), best

    def _check_checkpoint(
        self,
        note: Any,
        size: int | None,
        count: int,
        memory: MemoryNodeStore,
        what: str,
        origins: set[str] | None = None,
    ) -> list[str]:
        if not isinstance(note, str):
            return [f"{what} at size {size}: its note is not text"]
        try:
            if self.keys:
                checkpoint, signed_by = open_checkpoint(note, self.keys, origin=self.origin)
                if self.origin is None and checkpoint.origin not in {k.name for k in signed_by}:
                    names = ", ".join(sorted({k.name for k in signed_by}))
                    return [
                        f"{what} at size {checkpoint.size}: names log {checkpoint.origin!r}, not the name of the "
                        f"key that signed it ({names}); give --origin {checkpoint.origin} if that is the log's name"
                    ]
            else:
                checkpoint = Checkpoint.parse(parse_note(note).text)
                if self.origin is not None and checkpoint.origin != self.origin:
                    return [
                        f"{what} at size {checkpoint.size}: checkpoint of log {checkpoint.origin!r}, "
                        f"expected {self.origin!r}"
                    ]
        except VerificationError as exc:
            return [f"{what} at size {size}: {exc}"]
        label = f"{what} at size {checkpoint.size}"
        if origins is not None:
            if origins and checkpoint.origin not in origins:
                return [f"{label}: names log {checkpoint.origin!r}, the checkpoints before it {sorted(origins)!r}"]
            origins.add(checkpoint.origin)
        if size is not None and checkpoint.size != size:
            return [f"{label}: filed under size {size}"]
        if checkpoint.size > count:
            return [f"{label}: only {count} events could be checked"]
        if root(memory, checkpoint.size) != checkpoint.root:
            return [f"{label}: its root does not match the events"]
        return []


def verify_store(
    path: str | Path,
    trusted_keys: Sequence[str] = (),
    *,
    trusted_checkpoint: str | None = None,
    origin: str | None = None,
    access_head: tuple[int, bytes] | None = None,
) -> AuditReport:
    """Check everything a store holds against its signed event bodies; an empty ``problems`` means all passed.

    The access log's chain is checked too; ``access_head`` (a record's ``seq`` and ``chain`` kept earlier,
    :func:`delivery_sdk.access.parse_head`) also finds it cut short or rewritten since.

    ``trusted_keys`` are verifier keys (``name+hash+base64``); with none, signatures are not checked but
    every checkpoint's size and root still are. ``origin`` is the log's name in its checkpoints; by default
    it is the name of the key that signed each one (with keys), or whatever the checkpoints agree on.
    See the module docstring for what is checked.
    """
    db = _connect(path)
    try:
        return _Audit(db, trusted_keys, origin).run(trusted_checkpoint, access_head)
    finally:
        db.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_bundle(path: str | Path, task_id: str) -> dict[str, Any]:
    """A task's events with inclusion proofs against the store's first checkpoint covering them."""
    db = _connect(path)
    try:
        return bundle_from(db, task_id)
    finally:
        db.close()


def bundle_from(db: sqlite3.Connection | SQLConnection, task_id: str) -> dict[str, Any]:
    """:func:`export_bundle` on an open connection (the store uses it while filing)."""
    from .log import SQLiteNodes, stored_nodes
    from .merkle import inclusion_proof

    events = list(db.execute("SELECT seq, task_seq, body FROM events WHERE task_id = ? ORDER BY task_seq", (task_id,)))
    if not events:
        raise LookupError(f"no task {task_id!r} in this store")
    last = events[-1][0]
    row = db.execute(
        "SELECT size, note FROM evidence_checkpoints WHERE size >= ? ORDER BY size LIMIT 1", (last,)
    ).fetchone()
    if row is None:
        raise LookupError(f"no signed checkpoint covers task {task_id!r} yet (its last event is seq {last})")
    size, note = int(row[0]), str(row[1])
    nodes = stored_nodes(SQLiteNodes(db))
    items = []
    for seq, task_seq, body in events:
        proof = inclusion_proof(nodes, seq - 1, size)
        items.append(
            {
                "seq": seq,
                "task_seq": task_seq,
                "event": json.loads(body),
                "inclusion": [_b64(h) for h in proof.path],
            }
        )
    return {"format": BUNDLE_FORMAT, "task_id": task_id, "tree_size": size, "checkpoint": note, "events": items}


def verify_bundle(bundle: dict[str, Any], trusted_keys: Sequence[str], *, origin: str | None = None) -> int:
    """Check a proof bundle offline; returns the number of events proven, raises VerificationError."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise VerificationError(f"not a {BUNDLE_FORMAT} bundle")
    checkpoint, _ = open_checkpoint(bundle["checkpoint"], trusted_keys, origin=origin)
    if checkpoint.size != bundle.get("tree_size"):
        raise VerificationError("the bundle's tree size differs from its checkpoint's")
    task_id = bundle.get("task_id")
    for n, item in enumerate(bundle.get("events", []), start=1):
        event = item["event"]
        if event.get("task_id") != task_id or item["task_seq"] != n:
            raise VerificationError(f"event #{n} of the bundle is not event #{n} of task {task_id}")
        path = InclusionProof.from_dict(
            {"leaf_index": item["seq"] - 1, "tree_size": checkpoint.size, "path": item["inclusion"]}
        ).path
        digest = leaf_hash(event_leaf_input(item["seq"], item["task_seq"], event))
        verify_inclusion(item["seq"] - 1, checkpoint.size, digest, path, checkpoint.root)
    return len(bundle.get("events", []))


# -- consistency between two checkpoints ------------------------------------------------------------------


def _parse_checkpoint(note: str, what: str) -> Checkpoint:
    try:
        return Checkpoint.parse(parse_note(note).text)
    except VerificationError as exc:
        raise VerificationError(f"the {what} checkpoint cannot be read: {exc}") from None


def export_consistency(path: str | Path, old: str, new: str | None = None) -> dict[str, Any]:
    """A consistency proof (RFC 9162 §2.1.4) from the signed checkpoint ``old`` to ``new`` (default: the
    store's latest), as JSON: both notes and the proof. Raises LookupError when the store cannot prove it
    (``old`` is not a prefix of its log: the store was rolled back or forked since ``old`` was signed)."""
    from .log import SQLiteNodes, stored_nodes
    from .merkle import consistency_proof

    first = _parse_checkpoint(old, "old")
    db = _connect(path)
    try:
        if new is None:
            row = db.execute("SELECT note FROM evidence_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
            if row is None:
                raise LookupError("the store holds no signed checkpoint yet")
            new = str(row[0])
        second = _parse_checkpoint(new, "new")
        if second.origin != first.origin:
            raise LookupError(f"the checkpoints name two logs: {first.origin!r} and {second.origin!r}")
        if first.size > second.size:
            raise LookupError(f"the old checkpoint (size {first.size}) is larger than the new ({second.size})")
        nodes = stored_nodes(SQLiteNodes(db))
        try:
            roots = (root(nodes, first.size), root(nodes, second.size))
            proof = consistency_proof(nodes, first.size, second.size)
        except (LookupError, ValueError) as exc:
            raise LookupError(f"the store cannot prove sizes {first.size} to {second.size}: {exc}") from None
    finally:
        db.close()
    if roots != (first.root, second.root):
        which = "old" if roots[0] != first.root else "new"
        raise LookupError(
            f"the store's tree at size {(first if which == 'old' else second).size} is not the {which} "
            "checkpoint's: the store was rolled back or forked since it was signed"
        )
    return {"format": CONSISTENCY_FORMAT, "old_checkpoint": old, "new_checkpoint": new, "proof": proof.to_dict()}


def verify_consistency_bundle(
    bundle: dict[str, Any], trusted_keys: Sequence[str], *, trusted_checkpoint: str, origin: str | None = None
) -> Checkpoint:
    """Check offline that the bundle's new checkpoint extends ``trusted_checkpoint`` (one kept earlier).

    Both are checked against ``trusted_keys``; the log's name must stay the same. Returns the new
    checkpoint (to keep in place of the old one); raises :class:`VerificationError`.
    """
    if not isinstance(bundle, dict) or bundle.get("format") != CONSISTENCY_FORMAT:
        raise VerificationError(f"not a {CONSISTENCY_FORMAT} bundle")
    if not trusted_keys:
        raise VerificationError("give the log's verifier key: an unsigned checkpoint proves nothing")
    old, _ = open_checkpoint(trusted_checkpoint, trusted_keys, origin=origin)
    kept, _ = open_checkpoint(bundle.get("old_checkpoint", ""), trusted_keys, origin=old.origin)
    if (kept.size, kept.root) != (old.size, old.root):
        raise VerificationError(
            f"the proof starts from a checkpoint of size {kept.size}, not the trusted one of size {old.size}"
        )
    new, _ = open_checkpoint(bundle.get("new_checkpoint", ""), trusted_keys, origin=old.origin)
    proof = ConsistencyProof.from_dict(bundle.get("proof"))
    if (proof.size1, proof.size2) != (old.size, new.size):
        raise VerificationError(f"the proof is for sizes {proof.size1} to {proof.size2}, not {old.size} to {new.size}")
    proof.verify(old.root, new.root)
    return new
