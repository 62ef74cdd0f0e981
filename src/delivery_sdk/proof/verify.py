"""Checking a proof-of-service record offline (``delivery-sdk verify-record``).

What is checked, in order (every problem is reported, not only the first):

1. the format (``delivery-sdk/proof-of-service/v1``) and the shape of every field (strict, as on the wire);
2. the record's own ``digest``: any change to any field after it was built shows;
3. its internal consistency: title and method, the Beijing service date of the effective time, the served
   attempt, the evidence summary;
4. the document digests: well-formed, and — given the files — equal to the files' SHA-256;
5. with a proof bundle: its inclusion proofs against its checkpoint (signature checked with trusted keys
   through :func:`delivery_sdk.evidence.audit.verify_bundle`), and the record's facts against the proven
   events: the case, the recipient and the documents against ``task.created``, the method, basis, effective
   time and dispatch against ``service.served``, every attempt against its ``dispatch.queued``.

The digest alone proves integrity, not origin: anyone can rebuild a digest. The bundle, checked with a
trusted key, is what ties the record to the signed evidence log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from .._exceptions import ValidationError
from ..law.holidays import beijing_date
from ..model import ServiceMethod
from ..serialization import unstructure
from .record import (
    TITLE_ELECTRONIC,
    TITLE_PAPER,
    ProofOfService,
    canonical_digest,
    checkpoint_ref,
    record_from_json,
)

__all__ = ["RecordCheck", "verify_record"]


@attrs.frozen(kw_only=True)
class RecordCheck:
    """The outcome of :func:`verify_record`: ``ok`` when ``problems`` is empty; ``notes`` say what was not checked."""

    record: ProofOfService | None
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    events_proven: int = 0

    @property
    def ok(self) -> bool:
        """True when the record verified with no problem."""
        return not self.problems


def _consistency(record: ProofOfService) -> list[str]:
    problems = []
    title = TITLE_ELECTRONIC if record.method is ServiceMethod.ELECTRONIC else TITLE_PAPER
    if record.title != title:
        problems.append(f"title {record.title!r} does not fit method {record.method.value} (expected {title!r})")
    if record.served_on != beijing_date(record.effective_at).isoformat():
        problems.append(f"served_on {record.served_on} is not the Beijing date of the effective time")
    served = [a.dispatch_id for a in record.attempts if a.served]
    if record.dispatch_id is not None and served and served != [record.dispatch_id]:
        problems.append(f"the attempts mark {served} as serving, the record names {record.dispatch_id}")
    if record.evidence_complete != all(c.met for c in record.evidence):
        problems.append("evidence_complete does not match the evidence listed")
    for check in record.evidence:
        if not set(check.present) <= set(check.any_of):
            problems.append(f"evidence for {check.basis} lists items it does not ask for")
    ids = [d.document_id for d in record.documents]
    if len(set(ids)) != len(ids):
        problems.append("a document is listed twice")
    return problems


def _files(record: ProofOfService, files: Iterable[Path]) -> list[str]:
    listed = {d.sha256: d.document_id for d in record.documents}
    problems = []
    for path in files:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest not in listed:
            problems.append(f"file {Path(path).name}: its SHA-256 {digest[:16]}... is not among the documents listed")
    return problems


def _prove(bundle: dict[str, Any], trusted_keys: Sequence[str], origin: str | None) -> int:
    """The bundle's inclusion proofs: with keys, the full :func:`verify_bundle`; without, against the root only."""
    from ..evidence.audit import BUNDLE_FORMAT, verify_bundle
    from ..evidence.verify import (
        Checkpoint,
        InclusionProof,
        VerificationError,
        event_leaf_input,
        leaf_hash,
        parse_note,
        verify_inclusion,
    )

    if trusted_keys:
        return verify_bundle(bundle, trusted_keys, origin=origin)
    if bundle.get("format") != BUNDLE_FORMAT:
        raise VerificationError(f"not a {BUNDLE_FORMAT} bundle")
    checkpoint = Checkpoint.parse(parse_note(bundle["checkpoint"]).text)
    if checkpoint.size != bundle.get("tree_size"):
        raise VerificationError("the bundle's tree size differs from its checkpoint's")
    for n, item in enumerate(bundle.get("events", []), start=1):
        event = item["event"]
        if event.get("task_id") != bundle.get("task_id") or item["task_seq"] != n:
            raise VerificationError(f"event #{n} of the bundle is not event #{n} of its task")
        path = InclusionProof.from_dict(
            {"leaf_index": item["seq"] - 1, "tree_size": checkpoint.size, "path": item["inclusion"]}
        ).path
        digest = leaf_hash(event_leaf_input(item["seq"], item["task_seq"], event))
        verify_inclusion(item["seq"] - 1, checkpoint.size, digest, path, checkpoint.root)
    return len(bundle.get("events", []))


def _same_time(a: Any, b: datetime) -> bool:
    try:
        return isinstance(a, str) and datetime.fromisoformat(a) == b
    except ValueError:
        return False


def _against_events(record: ProofOfService, bundle: dict[str, Any]) -> list[str]:
    """The record's facts compared with the events the bundle proves."""
    events = [item["event"] for item in bundle.get("events", [])]
    problems = []
    if bundle.get("task_id") != record.task_id:
        problems.append(f"the bundle is of task {bundle.get('task_id')!r}, the record of {record.task_id!r}")
    created = next((e for e in events if e.get("type") == "task.created"), None)
    if created is None:
        problems.append("the bundle proves no task.created event")
    else:
        request = created.get("request", {})
        if request.get("case") != unstructure(record.case):
            problems.append("the case differs from the proven task.created event")
        party = request.get("party", {})
        if party.get("party_id") != record.recipient.party_id or party.get("name") != record.recipient.name:
            problems.append("the recipient differs from the proven task.created event")
        if request.get("documents") != unstructure(record.documents):
            problems.append("the documents (titles or digests) differ from the proven task.created event")
    served = [e for e in events if e.get("type") == "service.served"]
    if not served:
        problems.append("the bundle proves no service.served event")
    else:
        last = served[-1]
        if (
            last.get("method") != record.method.value
            or last.get("basis") != record.basis
            or not _same_time(last.get("effective_at"), record.effective_at)
            or last.get("dispatch_id") != record.dispatch_id
        ):
            problems.append("the method, basis, effective time or dispatch differ from the proven service.served")
    queued = {e.get("dispatch_id"): e for e in events if e.get("type") == "dispatch.queued"}
    for attempt in record.attempts:
        event = queued.get(attempt.dispatch_id)
        if event is None or event.get("channel") != attempt.channel or event.get("kind") != attempt.kind.value:
            problems.append(f"attempt {attempt.dispatch_id} is not the proven dispatch.queued of that id")
    return problems


def verify_record(
    text: str | bytes,
    trusted_keys: Sequence[str] = (),
    *,
    origin: str | None = None,
    documents: Iterable[Path] = (),
) -> RecordCheck:
    """Check a proof-of-service record offline; see the module docstring for what is checked."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return RecordCheck(record=None, problems=(f"not valid JSON: {exc}",))
    try:
        record = record_from_json(text)
    except ValidationError as exc:
        return RecordCheck(record=None, problems=(str(exc),))
    problems: list[str] = []
    notes: list[str] = []
    if canonical_digest(data) != record.digest:
        problems.append("the record's digest does not match its content: it was changed after it was built")
    problems.extend(_consistency(record))
    problems.extend(_files(record, documents))
    proven = 0
    if record.bundle is None:
        notes.append("no proof bundle: the record's facts are not tied to the evidence log")
    else:
        from ..evidence.verify import VerificationError

        try:
            proven = _prove(record.bundle, trusted_keys, origin)
        except (VerificationError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"the proof bundle does not verify: {exc}")
        if not trusted_keys:
            notes.append("checkpoint signature not checked (no trusted key given)")
        if record.checkpoint is not None:
            try:
                if checkpoint_ref(record.bundle) != record.checkpoint:
                    problems.append("the checkpoint summary differs from the bundle's checkpoint")
            except ValidationError as exc:
                problems.append(str(exc))
        problems.extend(_against_events(record, record.bundle))
    return RecordCheck(record=record, problems=tuple(problems), notes=tuple(notes), events_proven=proven)
