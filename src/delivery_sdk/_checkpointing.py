"""The engine's evidence orchestration: signing checkpoints of the store's evidence log (never a fork of the
last one signed), handing committed events and checkpoints to evidence sinks, keeping their receipts, and
loading what filing needs (timelines, proof bundles).

Only through the store's declared capability (``TaskStore.capabilities().evidence``); a store without an
evidence log signs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ._exceptions import EvidenceForkError
from .evidence.witness import read_witness, write_witness
from .lifecycle import TaskState
from .records import EvidenceBatch

if TYPE_CHECKING:
    from ._work import Work as _Work
    from .engine import Engine

log = logging.getLogger("delivery_sdk.engine")


def maybe_checkpoint(engine: Engine, now: datetime) -> None:
    """Sign a checkpoint when enough events or enough time went by since the last one."""
    config = engine.config
    last = engine.last_checkpoint
    due = last is None or now - last >= config.checkpoint_every
    if engine.unsigned_events >= config.checkpoint_every_events or (due and engine.unsigned_events):
        checkpoint(engine, now)


def _latest_checkpoint(engine: Engine) -> str | None:
    evidence = engine.capabilities.evidence
    log_ = evidence.evidence if evidence is not None else None
    found = log_.checkpoints() if log_ is not None else []
    return str(found[-1][1]) if found else None


def checkpoint(engine: Engine, now: datetime) -> str | None:
    """:meth:`Engine.checkpoint <delivery_sdk.engine.Engine.checkpoint>`."""
    evidence = engine.capabilities.evidence
    if evidence is None or not engine.signers:
        return None
    witness = engine.witness
    # never sign a fork: the log must extend the last checkpoint signed (kept outside the store)
    kept = read_witness(witness) if witness is not None else None
    try:
        note = evidence.checkpoint(
            engine.log_origin,
            engine.signers,
            now,
            extends=None if kept is None else kept[1],
            extends_from=None if kept is None else str(witness),
        )
    except EvidenceForkError as exc:
        log.critical("evidence checkpoints stopped: %s", exc)
        raise
    if witness is not None and (note is not None or kept is None):
        latest = note if note is not None else _latest_checkpoint(engine)
        if latest is not None:
            write_witness(witness, latest)
    engine.last_checkpoint = now
    engine.unsigned_events = 0
    if note is not None and engine.host.has_evidence_sinks():
        to_sinks(engine, EvidenceBatch(events=(), checkpoint=note))
    return note


def to_sinks(engine: Engine, batch: EvidenceBatch) -> None:
    """Hand committed events (or a checkpoint) to the evidence sinks; keep the notaries' receipts they return."""
    try:
        receipts = engine.host.record_evidence(batch)
    except Exception:
        log.exception("an evidence sink failed; the events are committed and stay in the store")
        return
    evidence = engine.capabilities.evidence
    if receipts and evidence is not None:
        evidence.record_anchors(receipts)


def prefetch_timelines(engine: Engine, works: Sequence[_Work]) -> None:
    """Load the timelines of served tasks in one query (filing needs them), when anyone files; with an
    evidence log and a key, sign what is committed first, so each proof of service carries its proofs."""
    if not engine.host.has_filing_sinks():
        return
    served = [w for w in works if w.task.state is TaskState.SERVED]
    if not served:
        return
    timelines = engine.store.load_events([w.task.task_id for w in served])
    for work in served:
        work.timeline = tuple(timelines.get(work.task.task_id, ()))
    evidence = engine.capabilities.evidence
    if evidence is not None and engine.signers:
        checkpoint(engine, engine.clock.now())
        for work in served:
            work.bundle = evidence.proof_bundle(work.task.task_id)
