"""The proof of service as data: a versioned JSON record built from a :class:`~delivery_sdk.records.ServiceRecord`.

A record (format ``delivery-sdk/proof-of-service/v1``) carries what a 送达回证 / 电子送达凭证 shows: the case,
the recipient, the documents with their SHA-256 digests, the method, the effective time and its legal basis,
the trail of attempts, the evidence the method needs (:func:`delivery_sdk.law.required_evidence`) with what
is present, and optionally a proof bundle (:func:`delivery_sdk.evidence.audit.export_bundle`) whose
inclusion proofs tie those facts to a signed checkpoint of the evidence log.

Personal data, decided once here (``docs/proof-of-service.md`` explains why):

- the recipient's **name is in clear**: a proof of service names the person served (CPL Art. 87), and the
  record is a court document for the case file; its ``repr`` masks it, and the library never logs it;
- the recipient's **ID number is not carried**: the receipt does not need it, the case file has it;
- **contacts are masked** (:func:`delivery_sdk.model.mask`): the trail shows the channel and a recognisable
  form of the number or address used, not the value itself. A proof bundle, when attached, carries the
  events in clear (that is what its proofs prove): hand such a record only to those entitled to the file.

The record is deterministic (built from the service record alone, no clock), so filing it twice gives
the same bytes — as long as the holiday calendar is the same: the ``deadlines`` it lists are computed on
the notices loaded when it is built, and an entry on a provisional calendar says so.
``digest`` is the SHA-256 of the record's canonical JSON without the digest itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from .._exceptions import ValidationError
from ..events import (
    DispatchQueued,
    Mailed,
    PostReturned,
    PostSigned,
    PublicationStarted,
    TaskCreated,
)
from ..law.citations import chinese
from ..law.consent import BASIS_ACCEPTED_SERVICE, BASIS_ACCEPTED_SERVICE_ARRIVAL
from ..law.evidence import Evidence, required_evidence
from ..law.holidays import beijing_date
from ..law.service import BASIS_ELECTRONIC_READ, BASIS_ELECTRONIC_REPLY
from ..lifecycle import fold
from ..model import Case, ChannelKind, DispatchRecord, Document, PartyKind, ServiceMethod, mask
from ..records import ServiceRecord
from ..serialization import structure, unstructure

__all__ = [
    "PROOF_FORMAT",
    "TITLE_ELECTRONIC",
    "TITLE_PAPER",
    "Attempt",
    "CheckpointRef",
    "DeadlineEntry",
    "EvidenceCheck",
    "ProofOfService",
    "Recipient",
    "build_record",
    "canonical_digest",
    "checkpoint_ref",
    "record_from_json",
    "record_to_json",
]

PROOF_FORMAT = "delivery-sdk/proof-of-service/v1"
TITLE_PAPER = "送达回证"
TITLE_ELECTRONIC = "电子送达凭证"

# the e-services whose proof needs read or reply data (Rules Art. 31(2)); an acceptance (Art. 29(4)) is the reply
_UNCONFIRMED_BASES = frozenset(
    {BASIS_ELECTRONIC_READ, BASIS_ELECTRONIC_REPLY, BASIS_ACCEPTED_SERVICE, BASIS_ACCEPTED_SERVICE_ARRIVAL}
)


def _masked(value: object) -> str:
    return repr(mask(str(value)))


@attrs.frozen(kw_only=True)
class Recipient:
    """The party served (受送达人): its id and name in clear (a court document), its kind."""

    party_id: str
    name: str = attrs.field(repr=_masked)
    kind: PartyKind = PartyKind.PERSON


@attrs.frozen(kw_only=True)
class Attempt:
    """One dispatch of the task, as the trail of attempts shows it; ``contact`` is masked."""

    dispatch_id: str
    channel: str
    kind: ChannelKind
    contact: str
    queued_at: datetime
    sent_at: datetime | None = None
    delivered_at: datetime | None = None  # arrival (electronic) or signing (post)
    read_at: datetime | None = None
    settled_at: datetime | None = None
    accepted_at: datetime | None = None  # the party's reply of receipt (签收 on the document page; Rules Art. 29(4))
    outcome: str  # the dispatch's final status: delivered, read, failed, returned, timed_out...
    detail: str | None = None  # failure or return reason; who signed, for post
    centre_id: str | None = None
    waybill: str | None = None
    served: bool = False  # this attempt is the one that served the task


@attrs.frozen(kw_only=True)
class EvidenceCheck:
    """One item of proof the method needs: met by any of ``any_of``; ``present`` lists those held."""

    any_of: tuple[Evidence, ...]
    basis: str
    present: tuple[Evidence, ...]

    @property
    def met(self) -> bool:
        """True when some of the required evidence is present."""
        return bool(self.present)

    @property
    def basis_zh(self) -> str:
        """``basis`` as a formal Chinese citation (derived, not part of the JSON record)."""
        return chinese(self.basis)


@attrs.frozen(kw_only=True)
class DeadlineEntry:
    """A period the service starts (:func:`delivery_sdk.law.deadlines_after_service`): its last day
    (``YYYY-MM-DD``, Beijing), basis and length; ``provisional`` when that day was fixed on a provisional
    calendar (no State Council notice for its year loaded yet), ``calendar`` saying what it rests on."""

    name: str
    due: str
    basis: str
    days: int
    provisional: bool = False
    calendar: str = ""


@attrs.frozen(kw_only=True)
class CheckpointRef:
    """The signed checkpoint a proof bundle proves against: the log's origin, size and root (base64)."""

    origin: str
    tree_size: int
    root: str


@attrs.frozen(kw_only=True)
class ProofOfService:
    """A proof of service (送达回证 / 电子送达凭证) as filed; see the module docstring."""

    format: str = PROOF_FORMAT
    record_id: str
    task_id: str
    title: str
    case: Case
    recipient: Recipient
    documents: tuple[Document, ...]
    method: ServiceMethod
    basis: str
    effective_at: datetime
    served_on: str  # the Beijing date of service (YYYY-MM-DD): the date periods run from
    dispatch_id: str | None
    attempts: tuple[Attempt, ...]
    evidence: tuple[EvidenceCheck, ...]
    evidence_complete: bool
    # The periods the service starts, on the calendar loaded when the record was built (a provisional one
    # for a year without a notice: the entry says so); ``deadlines_note`` says why none could be computed.
    deadlines: tuple[DeadlineEntry, ...] = ()
    deadlines_note: str | None = None
    checkpoint: CheckpointRef | None = None
    bundle: dict[str, Any] | None = None
    digest: str = ""

    @property
    def basis_zh(self) -> str:
        """``basis`` as a formal Chinese citation, as the PDF shows it. Derived, not a field: the record
        keeps the English basis the ``service.served`` event recorded (its digest and verification too)."""
        return chinese(self.basis)


def canonical_digest(data: dict[str, Any]) -> str:
    """SHA-256 (hex) of a record's JSON without its ``digest``: keys sorted, no whitespace, UTF-8."""
    body = {k: v for k, v in data.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _present(record: ServiceRecord, served: DispatchRecord | None, held: frozenset[Evidence]) -> set[Evidence]:
    """What the timeline itself proves for the served dispatch, plus what the caller holds outside it."""
    have = set(held)
    events = [s.event for s in record.timeline]
    did = record.dispatch_id
    if record.method is ServiceMethod.ELECTRONIC:
        have.add(Evidence.ESERVICE_VOUCHER)  # this record is the voucher
        if served is not None:
            queued = any(isinstance(e, DispatchQueued) and e.dispatch_id == did for e in events)
            if queued and served.delivered_at is not None:
                have.add(Evidence.SYSTEM_TRACE)
            if served.delivered_at is not None:
                have.add(Evidence.ARRIVAL_TIME)
            if served.read_at is not None:
                have.add(Evidence.READ_RECORD)
            if served.accepted_at is not None:  # the recorded acceptance (consent.recorded via the dispatch)
                have.add(Evidence.REPLY_RECORD)
    elif record.method is ServiceMethod.POSTAL:
        mine = [e for e in events if getattr(e, "dispatch_id", None) == did]
        if any(isinstance(e, PostSigned) for e in mine):
            have.add(Evidence.RETURN_RECEIPT)
        if any(isinstance(e, Mailed) for e in mine) and any(isinstance(e, PostSigned | PostReturned) for e in mine):
            have.add(Evidence.CARRIER_TRACKING)
        if served is not None and served.waybill:
            have.add(Evidence.WAYBILL_NUMBER)
    elif record.method is ServiceMethod.PUBLICATION:
        for e in events:
            if isinstance(e, PublicationStarted):
                have.add(Evidence.PUBLICATION_DATE)
                if e.reason.strip():
                    have.add(Evidence.REASON_ON_FILE)
    return have


def checkpoint_ref(bundle: dict[str, Any]) -> CheckpointRef:
    """The checkpoint a proof bundle is anchored to; :class:`ValidationError` when the bundle has no readable one."""
    from ..evidence.verify import Checkpoint, VerificationError, parse_note

    try:
        cp = Checkpoint.parse(parse_note(bundle["checkpoint"]).text)
    except (KeyError, TypeError, VerificationError) as exc:
        raise ValidationError(f"the proof bundle has no readable checkpoint: {exc}") from exc
    return CheckpointRef(origin=cp.origin, tree_size=cp.size, root=base64.b64encode(cp.root).decode())


def _deadlines(record: ServiceRecord) -> tuple[tuple[DeadlineEntry, ...], str | None]:
    """The deadlines the service of the record's documents starts (once per period name), as the status shows
    them; a note instead when the last day lies beyond every calendar."""
    from ..law.holidays import CalendarNotCovered, InvalidCalendarFile
    from ..law.periods import deadlines_after_service

    found: dict[str, DeadlineEntry] = {}
    try:
        for document in record.documents:
            for d in deadlines_after_service(document.kind, record.effective_at):
                found.setdefault(
                    d.name,
                    DeadlineEntry(
                        name=d.name,
                        due=d.due.isoformat(),
                        basis=d.basis,
                        days=d.days,
                        provisional=d.provisional,
                        calendar=d.calendar,
                    ),
                )
    except (CalendarNotCovered, InvalidCalendarFile) as exc:
        return (), f"deadlines unknown: {exc}"
    return tuple(found.values()), None


def build_record(
    record: ServiceRecord,
    *,
    bundle: dict[str, Any] | None = None,
    held: Iterable[Evidence] = (),
    recipient_name: str | None = None,
) -> ProofOfService:
    """The proof of service of ``record``.

    ``bundle`` is a proof bundle of the same task (``export_bundle(store, task_id)``), attached as is;
    ``held`` names evidence kept outside the SDK (posting photos, a signed paper receipt);
    ``recipient_name`` is needed only when the record's timeline lacks the ``task.created`` event.
    """
    created = next((s.event for s in record.timeline if isinstance(s.event, TaskCreated)), None)
    party = created.request.party if created is not None else None
    name = recipient_name or (party.name if party is not None else None)
    if not name:
        raise ValidationError(f"task {record.task_id}: no task.created event in the timeline; pass recipient_name")
    kind = party.kind if party is not None else PartyKind.PERSON
    task = fold(tuple(s.event for s in record.timeline)) if created is not None else None
    served = task.dispatch(record.dispatch_id) if task is not None and record.dispatch_id else None
    attempts = tuple(
        Attempt(
            dispatch_id=d.dispatch_id,
            channel=d.channel,
            kind=d.kind,
            contact=mask(d.contact.value),
            queued_at=d.queued_at,
            sent_at=d.sent_at,
            delivered_at=d.delivered_at,
            read_at=d.read_at,
            settled_at=d.settled_at,
            accepted_at=d.accepted_at,
            outcome=d.status.value,
            detail=d.detail,
            centre_id=d.centre_id,
            waybill=d.waybill,
            served=d.dispatch_id == record.dispatch_id,
        )
        for d in (task.dispatches if task is not None else ())
    )
    have = _present(record, served, frozenset(held))
    confirmed = record.basis not in _UNCONFIRMED_BASES
    checks = tuple(
        EvidenceCheck(
            any_of=tuple(sorted(r.any_of, key=lambda e: e.value)),
            basis=r.basis,
            present=tuple(sorted(r.any_of & have, key=lambda e: e.value)),
        )
        for r in required_evidence(record.method, address_confirmed=confirmed)
    )
    deadlines, deadlines_note = _deadlines(record)
    if bundle is not None and bundle.get("task_id") != record.task_id:
        raise ValidationError(f"the proof bundle is of task {bundle.get('task_id')!r}, not {record.task_id!r}")
    proof = ProofOfService(
        record_id=record.record_id,
        task_id=record.task_id,
        title=TITLE_ELECTRONIC if record.method is ServiceMethod.ELECTRONIC else TITLE_PAPER,
        case=record.case,
        recipient=Recipient(party_id=record.party_id, name=name, kind=kind),
        documents=record.documents,
        method=record.method,
        basis=record.basis,
        effective_at=record.effective_at,
        served_on=beijing_date(record.effective_at).isoformat(),
        dispatch_id=record.dispatch_id,
        attempts=attempts,
        evidence=checks,
        evidence_complete=all(c.met for c in checks),
        deadlines=deadlines,
        deadlines_note=deadlines_note,
        checkpoint=checkpoint_ref(bundle) if bundle is not None else None,
        bundle=bundle,
    )
    return attrs.evolve(proof, digest=canonical_digest(unstructure(proof)))


def record_to_json(proof: ProofOfService) -> str:
    """The record as UTF-8 JSON text (Chinese unescaped, indented, keys in field order)."""
    return json.dumps(unstructure(proof), ensure_ascii=False, indent=1) + "\n"


def record_from_json(text: str | bytes) -> ProofOfService:
    """Read a record; raises :class:`~delivery_sdk.ValidationError` for another format or a malformed one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != PROOF_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValidationError(f"not a {PROOF_FORMAT} record (format {found!r})")
    return structure(data, ProofOfService)
