"""Auditing a store's evidence log, and proof bundles for one task.

:func:`verify_store` recomputes every leaf from the stored events, rebuilds the tree, checks every stored
node and every signed checkpoint, and names the first event (or checkpoint) that does not match. Given an
older checkpoint the auditor trusted, it refuses a log that rewrote history since.

:func:`export_bundle` gives a task's events with their inclusion proofs against a signed checkpoint;
:func:`verify_bundle` checks one with the standalone verifier only.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .merkle import CompactRange, MemoryNodeStore, root
from .verify import (
    InclusionProof,
    VerificationError,
    event_leaf_input,
    leaf_hash,
    open_checkpoint,
    verify_inclusion,
)

if TYPE_CHECKING:
    from .log import SQLConnection

__all__ = ["BUNDLE_FORMAT", "AuditReport", "export_bundle", "verify_bundle", "verify_store"]

BUNDLE_FORMAT = "delivery-sdk/proof-bundle/v1"


@attrs.frozen(kw_only=True)
class AuditReport:
    events: int
    checkpoints: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _connect(path: str | Path) -> sqlite3.Connection | SQLConnection:
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        from ..store.postgres import audit_connection  # a PostgreSQL store, read on one snapshot

        return audit_connection(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"no store at {path}")
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


def verify_store(
    path: str | Path,
    trusted_keys: Sequence[str] = (),
    *,
    trusted_checkpoint: str | None = None,
    origin: str | None = None,
) -> AuditReport:
    """Check a store's evidence log end to end; an empty ``problems`` means every check passed.

    ``trusted_keys`` are verifier keys (``name+hash+base64``); with none, signatures are not checked but
    every checkpoint's size and root still are.
    """
    db = _connect(path)
    problems: list[str] = []
    try:
        rows = db.execute("SELECT seq, task_id, task_seq, body FROM events ORDER BY seq")
        stored_leaves = dict(db.execute("SELECT idx, hash FROM evidence_nodes WHERE level = 0"))
        memory = MemoryNodeStore()
        edge = CompactRange()
        last_task_seq: dict[str, int] = {}
        count = 0
        for seq, task_id, task_seq, body in rows:
            count += 1
            where = f"event seq {seq} (task {task_id}, #{task_seq})"
            if seq != count:
                problems.append(f"{where}: expected seq {count}; an event was deleted or inserted before it")
                break
            if task_seq != last_task_seq.get(task_id, 0) + 1:
                problems.append(f"{where}: the task's events are not numbered 1, 2, 3...; one is missing or moved")
            last_task_seq[task_id] = task_seq
            try:
                data = json.loads(body)
            except ValueError:
                problems.append(f"{where}: its stored body is not JSON")
                break
            digest = leaf_hash(event_leaf_input(seq, task_seq, data))
            stored = stored_leaves.get(seq - 1)
            if stored is None or bytes(stored) != digest:
                problems.append(f"{where} does not match its leaf in the evidence log (changed after commit)")
            memory.put_nodes(edge.append_many([digest]))
        if len(stored_leaves) != count and not problems:
            problems.append(f"the log holds {len(stored_leaves)} leaves for {count} events")
        if not problems:
            for level, idx, digest in db.execute("SELECT level, idx, hash FROM evidence_nodes WHERE level > 0"):
                expected = memory.get_nodes([(level, idx)])[0] if memory.count(level) > idx else None
                if expected != bytes(digest):
                    problems.append(f"tree node (level {level}, index {idx}) does not match the events")
                    break
        checkpoints = list(db.execute("SELECT size, note FROM evidence_checkpoints ORDER BY size"))
        for size, note in checkpoints:
            problems.extend(_check_checkpoint(note, size, edge.size, memory, trusted_keys, origin, "stored checkpoint"))
        if trusted_checkpoint is not None:
            for problem in _check_checkpoint(
                trusted_checkpoint, None, count, memory, trusted_keys, origin, "trusted checkpoint"
            ):
                problems.append(problem + "; the log rewrote history since it was trusted")
    finally:
        db.close()
    return AuditReport(events=count, checkpoints=len(checkpoints), problems=tuple(problems))


def _check_checkpoint(
    note: str,
    size: int | None,
    count: int,
    memory: MemoryNodeStore,
    trusted_keys: Sequence[str],
    origin: str | None,
    what: str,
) -> list[str]:
    from .verify import Checkpoint, parse_note

    try:
        if trusted_keys:
            checkpoint, _ = open_checkpoint(note, trusted_keys, origin=origin)
        else:
            checkpoint = Checkpoint.parse(parse_note(note).text)
    except VerificationError as exc:
        return [f"{what} at size {size}: {exc}"]
    label = f"{what} at size {checkpoint.size}"
    if size is not None and checkpoint.size != size:
        return [f"{label}: filed under size {size}"]
    if checkpoint.size > count:
        return [f"{label}: only {count} events could be checked"]
    if root(memory, checkpoint.size) != checkpoint.root:
        return [f"{label}: its root does not match the events"]
    return []


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
