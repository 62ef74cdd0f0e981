"""The high-level faces: :class:`AsyncDeliveryClient` and the synchronous :class:`DeliveryClient`.

::

    with DeliveryClient("service.sqlite3", plugins=[my_channels]) as client:
        task_id = client.submit(ServiceRequest(case=case, party=party, documents=docs, client_key="k-1"))
        client.run_until_idle()
        print(client.status(task_id).state)
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import attrs
import orjson

from ._exceptions import InvalidRequest, MalformedReceipt, PluginError, StoreError, UnknownChannel, ValidationError
from .access import LOCAL_ACTOR, AccessRecord, Actor, Permission, court_of_request
from .callbacks import parse_callback_with_query
from .channels import RECEIVER_PHONE, WAYBILL_REQUIREMENTS, Receipt
from .clock import Clock, SystemClock
from .engine import Engine, EngineConfig, IngestResult
from .events import (
    AddressUpdated,
    Cancelled,
    ConsentObjected,
    ConsentRecorded,
    ContactUpdated,
    Event,
    ResumedByStaff,
    StoredEvent,
    TaskCreated,
)
from .evidence.keys import DEFAULT_KEY_ENV, Signer, load_signers
from .evidence.witness import resolve_witness
from .law.citations import chinese
from .law.consent import CONSENT_BASIS
from .law.periods import Deadline
from .lifecycle import Task, TaskState
from .model import (
    Case,
    ChannelKind,
    ConsentMethod,
    Contact,
    ContactKind,
    DispatchStatus,
    Document,
    Party,
    ServiceMethod,
    ServiceRequest,
    check_note,
    check_source,
    mask,
)
from .plugins import PluginHost
from .policy import PolicyConfig
from .serialization import event_to_dict
from .store import STORE_ENV, NewTask, TaskStore, open_store

__all__ = ["AsyncDeliveryClient", "DeliveryClient", "DispatchSummary", "RequestWarning", "TaskStatus"]

log = logging.getLogger("delivery_sdk.client")

T = TypeVar("T")
DEFAULT_STORE = "delivery-sdk.sqlite3"


@attrs.frozen(kw_only=True)
class DispatchSummary:
    """One attempt, without personal data (the contact is masked)."""

    dispatch_id: str
    channel: str
    kind: ChannelKind
    status: DispatchStatus
    contact: str
    queued_at: datetime
    delivered_at: datetime | None
    detail: str | None


@attrs.frozen(kw_only=True)
class RequestWarning:
    """Something a request lacks that the configured plugins need, known at submit (no personal data).

    ``code``: ``receiver_phone_missing`` (the carrier needs a phone on the waybill and the party has no mobile
    number) or ``unknown_requirement`` (the carrier declares a requirement this SDK does not know);
    ``adapter``: the adapter that needs it; ``message``: what is missing, what follows, and the remedy.
    """

    code: str
    message: str
    adapter: str | None = None


@attrs.frozen(kw_only=True)
class TaskStatus:
    """Where a task stands, for a judge's screen or a script."""

    task_id: str
    case_number: str
    court: str
    party_id: str
    state: TaskState
    created_at: datetime
    updated_at: datetime
    method: ServiceMethod | None
    basis: str | None
    served_at: datetime | None
    record_id: str | None
    attention_reason: str | None
    fallback_reason: str | None
    centre_id: str | None
    postal_rounds: int
    dispatches: tuple[DispatchSummary, ...]
    deadlines: tuple[Deadline, ...] = ()  # the periods that run from the service (CPL Arts. 85, 128, 171)
    deadlines_note: str | None = None  # why deadlines are missing for a served task (no calendar for the year)
    # the ground of the party's consent to e-service on record (law.CONSENT_BASIS: Rules Art. 29(1)-(4), 30,
    # Interpretation Art. 136), None without one; an e-service that took effect by acceptance also says so in basis
    consent_basis: str | None = None

    @property
    def basis_zh(self) -> str | None:
        """``basis`` as a formal Chinese citation, for court staff (``basis`` keeps the recorded English)."""
        return None if self.basis is None else chinese(self.basis)

    @property
    def cycle_time(self) -> timedelta | None:
        """From creation to the effective service moment."""
        return None if self.served_at is None else self.served_at - self.created_at

    @classmethod
    def of(cls, task: Task) -> TaskStatus:
        """The status of a folded task: its state, deadlines, contacts (masked) and latest facts."""
        from .model import mask

        deadlines, note = _deadlines(task)
        req = task.request
        return cls(
            task_id=task.task_id,
            case_number=req.case.case_number,
            court=req.case.court,
            party_id=req.party.party_id,
            state=task.state,
            created_at=task.created_at,
            updated_at=task.updated_at,
            method=task.served_method,
            basis=task.served_basis,
            served_at=task.served_at,
            record_id=task.record_id,
            attention_reason=task.attention_reason,
            fallback_reason=task.fallback_reason,
            centre_id=task.centre_id,
            postal_rounds=task.postal_rounds,
            dispatches=tuple(
                DispatchSummary(
                    dispatch_id=d.dispatch_id,
                    channel=d.channel,
                    kind=d.kind,
                    status=d.status,
                    contact=mask(d.contact.value),
                    queued_at=d.queued_at,
                    delivered_at=d.delivered_at,
                    detail=d.detail,
                )
                for d in task.dispatches
            ),
            deadlines=deadlines,
            deadlines_note=note,
            consent_basis=None if task.consent is None else CONSENT_BASIS[task.consent.method],
        )


def _request_warnings(
    request: ServiceRequest, carrier: str | None, requires: frozenset[str]
) -> tuple[RequestWarning, ...]:
    found: list[RequestWarning] = []
    if RECEIVER_PHONE in requires and request.party.first_contact(ContactKind.MOBILE) is None:
        found.append(
            RequestWarning(
                code="receiver_phone_missing",
                adapter=carrier,
                message=(
                    f"carrier {carrier!r} needs the receiver's phone on every waybill and the party has no "
                    "mobile number (nor has a representative): should the task go by post, assisted person "
                    "search is asked for one, then a person (needs_attention). Give the party a mobile "
                    "number in the request, or add one to the task with client.set_contact(task_id, "
                    "Contact(kind=ContactKind.MOBILE, value=...))"
                ),
            )
        )
    for name in sorted(requires - WAYBILL_REQUIREMENTS.keys()):
        found.append(
            RequestWarning(
                code="unknown_requirement",
                adapter=carrier,
                message=f"carrier {carrier!r} requires {name!r}, which this SDK does not know: it is not checked",
            )
        )
    return tuple(found)


def _check_actor(value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or not value.isprintable():
        raise ValidationError("actor must be 1-64 characters of plain text (a staff member's id, say)")


def _deadlines(task: Task) -> tuple[tuple[Deadline, ...], str | None]:
    """The deadlines that follow the service of each document (once per period name, earliest basis).

    On the official notices where loaded and on provisional calendars elsewhere (each deadline says which);
    only a last day beyond every calendar (after 2099), or an unreadable imported notice, leaves them
    unknown, and the note says why."""
    if task.served_at is None:
        return (), None
    from .law import CalendarNotCovered, InvalidCalendarFile, deadlines_after_service

    found: dict[str, Deadline] = {}
    try:
        for document in task.request.documents:
            for deadline in deadlines_after_service(document.kind, task.served_at):
                found.setdefault(deadline.name, deadline)
    except (CalendarNotCovered, InvalidCalendarFile) as exc:
        return (), f"deadlines unknown: {exc}"
    return tuple(found.values()), None


def _serialise(created: TaskCreated) -> tuple[bytes, str]:
    """The created event's stored form as UTF-8 (keys sorted, as :func:`~delivery_sdk.serialization.event_body`)
    and the request's fingerprint (over its wire JSON in field order, as ever: the bytes of
    :func:`~delivery_sdk.serialization.dumps`), from one pass of the converter."""
    data = event_to_dict(created)
    body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return body, hashlib.sha256(orjson.dumps(data["request"])).hexdigest()


class AsyncDeliveryClient:
    """The asyncio face of the SDK: submit, watch, ingest, run. An async context manager."""

    def __init__(
        self,
        store: TaskStore | str | os.PathLike[str] | None = None,
        *,
        plugins: Sequence[object] = (),
        clock: Clock | None = None,
        policy: PolicyConfig | None = None,
        config: EngineConfig | None = None,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        id_factory: Callable[[], str] | None = None,
        evidence_signers: Sequence[Signer] | None = None,
        evidence_origin: str | None = None,
        evidence_witness: str | os.PathLike[str] | bool | None = None,
        actor: Actor | None = None,
    ) -> None:
        if actor is not None and not isinstance(actor, Actor):
            raise ValidationError(f"actor must be a delivery_sdk.Actor, got {type(actor).__name__}")
        # who acts through this client (docs/access.md); the default: every court, every permission
        self.actor: Actor = actor or LOCAL_ACTOR
        if store is None or isinstance(store, str | os.PathLike):
            # a SQLite path or a postgresql:// DSN; none: $DELIVERY_SDK_STORE, else the default SQLite file
            env_store = (os.environ if environ is None else environ).get(STORE_ENV) if store is None else None
            self.store: TaskStore = open_store(store if store is not None else env_store or DEFAULT_STORE)
            self._owns_store = True
        else:
            self.store = store
            self._owns_store = False
        self.clock: Clock = clock or SystemClock()
        self.host = PluginHost(plugins, load_entry_points=load_entry_points, environ=environ, clock=self.clock)
        self.engine = Engine(self.store, self.host, self.clock, policy=policy, config=config)
        self._ids = id_factory or (lambda: uuid.uuid4().hex)
        # Evidence checkpoints are signed with these keys, or with the key(s) in DELIVERY_SDK_EVIDENCE_KEY.
        if evidence_signers is None:
            env = os.environ if environ is None else environ
            evidence_signers = load_signers(environ=env) if env.get(DEFAULT_KEY_ENV) else []
        self.engine.signers = tuple(evidence_signers)
        # the log's name: given, else the (first) signer key's name; the witness: given, else
        # $DELIVERY_SDK_EVIDENCE_WITNESS, else <file>.checkpoint beside a SQLite store (evidence/witness.py)
        self.engine.origin = evidence_origin
        self.engine.witness = resolve_witness(evidence_witness, self.store, environ)
        self._closed = False
        self._view = False

    # -- who acts ------------------------------------------------------------------------------------

    def as_actor(self, actor: Actor) -> AsyncDeliveryClient:
        """A view of this client that acts for ``actor``: the same store, engine and plugins, every call
        checked against the actor's role and courts. Closing the view closes nothing; close this client."""
        if not isinstance(actor, Actor):
            raise ValidationError(f"as_actor takes a delivery_sdk.Actor, got {type(actor).__name__}")
        view = copy.copy(self)
        view.actor = actor
        view._view = True
        return view

    def _court(self, task_id: str) -> str:
        """The task's court; :class:`UnknownTask` if absent."""
        return self.store.task_row(task_id).court

    def _allow(self, permission: Permission, task_id: str | None, what: str) -> str | None:
        """Check the actor may ``what`` (on ``task_id``): :class:`AccessDenied` if not. The task's court, when
        it was looked up (an actor of every court with the permission needs no lookup)."""
        actor = self.actor
        if task_id is None or (actor.all_courts and actor.can(permission)):
            actor.require(permission, None, what)
            return None
        actor.require(permission, None, what)
        court = self._court(task_id)
        actor.require(permission, court, what)
        return court

    def _seen(self, reads: Sequence[tuple[str, str | None]], what: str) -> None:
        """Record that the actor was shown the personal data of each ``(task_id, court)`` (``what``): before
        it is returned; a store that cannot record it refuses the read (:class:`StoreError`)."""
        if not reads:
            return
        log = self.store.capabilities().access
        if log is None:
            if self.actor is LOCAL_ACTOR:
                return  # a store of the embedder's own that keeps no access log: the local default reads all
            raise StoreError(
                "this store keeps no access log (record_access), so it cannot show personal data to a named "
                "actor: use the SQLite or PostgreSQL store"
            )
        now = self.clock.now()
        actor = self.actor
        log.record_access(
            [
                AccessRecord(
                    at=now,
                    staff_id=actor.staff_id,
                    role=actor.role,
                    task_id=task_id,
                    court=self._court(task_id) if court is None else court,
                    what=what,
                )
                for task_id, court in reads
            ]
        )

    def access_records(self, *, task_id: str | None = None, staff_id: str | None = None) -> list[AccessRecord]:
        """Who looked at what: the access log (of one task, or of one staff member), of the actor's courts.

        Needs the ``audit`` permission (:class:`AccessDenied` otherwise)."""
        self.actor.require(Permission.AUDIT, None, "read the access records")
        log = self.store.capabilities().access
        if log is None:
            raise StoreError("this store keeps no access log: use the SQLite or PostgreSQL store")
        records = log.access_records(task_id=task_id, staff_id=staff_id)
        return [r for r in records if self.actor.covers(r.court)]

    # -- submitting ----------------------------------------------------------------------------------

    def _check_channels(self, request: ServiceRequest) -> None:
        if not isinstance(request, ServiceRequest):
            raise InvalidRequest(f"submit takes a ServiceRequest, got {type(request).__name__}")
        if request.channels:
            kinds = self.engine.channel_kinds
            for kind in request.channels:
                if kind not in kinds:
                    raise UnknownChannel(kind.value, [f"{k.value} ({n})" for k, n in kinds.items()])

    def check_request(self, request: ServiceRequest) -> tuple[RequestWarning, ...]:
        """What ``request`` lacks that the configured plugins need, without submitting it.

        The carrier's waybill requirements (its ``requires``, :data:`~delivery_sdk.channels.WAYBILL_REQUIREMENTS`)
        are checked against the party's contacts (its own and its representatives'): a postal-only party
        whose carrier needs a receiver phone would otherwise be found out only when its waybill is due.
        :meth:`submit` logs each warning (logger ``delivery_sdk.client``) and creates the task all the same:
        the engine then asks assisted person search for a phone, then a person, and
        :meth:`set_contact` adds one. Nothing here is personal data."""
        if not isinstance(request, ServiceRequest):
            raise InvalidRequest(f"check_request takes a ServiceRequest, got {type(request).__name__}")
        carrier, requires = self.engine.carrier_requirements()
        return _request_warnings(request, carrier, requires)

    def _submit_warnings(self) -> tuple[str | None, frozenset[str]]:
        """The carrier's requirements for :meth:`submit`'s warnings; none when the plugins cannot load (the
        engine says why when it runs: submitting needs no plugin)."""
        try:
            return self.engine.carrier_requirements()
        except PluginError as exc:
            log.debug("carrier requirements not checked at submit: %s", exc)
            return None, frozenset()

    async def submit(self, request: ServiceRequest) -> str:
        """Create the service task for ``request`` and return its id (idempotent on ``client_key``).

        What the request lacks for the configured plugins (:meth:`check_request`) is logged as a warning; the
        task is created all the same."""
        return (await self.submit_many([request]))[0]

    async def submit_many(self, requests: Sequence[ServiceRequest]) -> list[str]:
        """Create many tasks in one transaction: all are created, or none is."""
        with self.engine.computing:  # the collector paused while the batch is serialised and written
            return self._submit_many(requests)

    def _submit_many(self, requests: Sequence[ServiceRequest]) -> list[str]:
        now = self.clock.now()
        new: list[NewTask] = []
        actor = self.actor
        for request in requests:
            self._check_channels(request)
            court = court_of_request(request.case.case_number)
            actor.require(Permission.ACT, court, "submit a task")
            task_id = self._ids()
            created = TaskCreated(task_id=task_id, at=now, request=request)
            body, fingerprint = _serialise(created)
            new.append(
                NewTask(
                    task_id=task_id,
                    client_key=request.client_key,
                    fingerprint=fingerprint,
                    case_key=request.case.key,
                    created=created,
                    due_at=now,
                    body=body,
                    court=court,
                )
            )
        keys = [n.client_key for n in new if n.client_key is not None]
        if len(keys) != len(set(keys)):
            raise InvalidRequest("two requests in one submission share a client_key; each needs its own")
        carrier, requires = self._submit_warnings()
        result = self.store.create_tasks(new)
        self.engine.created(result.stored)
        if requires:
            for request, task_id in zip(requests, result.task_ids, strict=False):
                for warning in _request_warnings(request, carrier, requires):
                    log.warning("task %s: %s (%s)", task_id, warning.message, warning.code)
        return list(result.task_ids)

    async def submit_case(
        self,
        case: Case,
        parties: Sequence[Party],
        documents: Sequence[Document],
        *,
        client_key: str | None = None,
        channels: Sequence[ChannelKind] | None = None,
    ) -> list[str]:
        """Serve ``documents`` on every party of a case: one task per party, created atomically.

        With ``client_key`` each task's key is ``{client_key}/{party_id}``, so resubmitting the case is safe.
        """
        if not parties:
            raise InvalidRequest("submit_case needs at least one party")
        requests = [
            ServiceRequest(
                case=case,
                party=p,
                documents=tuple(documents),
                client_key=None if client_key is None else f"{client_key}/{p.party_id}",
                channels=None if channels is None else tuple(channels),
            )
            for p in parties
        ]
        return await self.submit_many(requests)

    # -- reading -------------------------------------------------------------------------------------

    def task(self, task_id: str) -> Task:
        """The folded task (every field, personal data in clear), for code that needs more than :meth:`status`.

        Needs the ``personal`` permission on the task's court; the read is recorded in the access log."""
        court = self._allow(Permission.PERSONAL, task_id, "read a task's personal data")
        task = self.engine.load_task(task_id)
        self._seen([(task_id, court)], "task")
        return task

    def status(self, task_id: str) -> TaskStatus:
        """A task's status (state, deadlines, basis of service, masked contacts); :class:`UnknownTask` if absent.

        Needs the ``read`` permission on the task's court (nothing in it is personal data in clear)."""
        self._allow(Permission.READ, task_id, "read a task's status")
        return TaskStatus.of(self.engine.load_task(task_id))

    def timeline(self, task_id: str) -> list[StoredEvent]:
        """Every stored event of a task, oldest first; :class:`UnknownTask` if absent.

        The events hold the request (names, contacts, addresses in clear): needs the ``personal`` permission
        on the task's court; the read is recorded in the access log."""
        court = self._allow(Permission.PERSONAL, task_id, "read a task's timeline")
        self.store.task_row(task_id)  # UnknownTask if absent
        events = self.store.load_events([task_id]).get(task_id, [])
        self._seen([(task_id, court)], "timeline")
        return events

    def tasks_of_case(self, case: Case | str) -> list[TaskStatus]:
        """The status of every task of a case (a :class:`Case` or its key) of the actor's courts, in the order
        they were created (``read`` permission)."""
        self.actor.require(Permission.READ, None, "list the tasks of a case")
        key = case.key if isinstance(case, Case) else case
        rows = [r for r in self.store.tasks_of_case(key) if self.actor.covers(r.court)]
        tasks = self.engine.load([(r.task_id, r.version) for r in rows])
        return [TaskStatus.of(tasks[r.task_id]) for r in rows if r.task_id in tasks]

    def count_by_state(self) -> dict[str, int]:
        """How many tasks of the actor's courts are in each lifecycle state, by state name (``statistics``)."""
        self.actor.require(Permission.STATISTICS, None, "count tasks")
        courts = self.actor.court_filter()
        if courts is None:
            return self.store.count_by_state()
        counter: Any = self.store.count_by_state
        result: dict[str, int] = counter(courts=courts)
        return result

    def proof_bundle(self, task_id: str) -> dict[str, Any]:
        """The evidence bundle of a task (its events with inclusion proofs and the checkpoint that covers them;
        ``delivery-sdk proof``): needs the ``audit`` or the ``personal`` permission on the task's court, and the
        read, personal data in clear, is recorded."""
        actor = self.actor
        permission = Permission.AUDIT if actor.can(Permission.AUDIT) else Permission.PERSONAL
        court = self._allow(permission, task_id, "export a task's proof bundle")
        evidence = self.store.capabilities().evidence
        bundle = None if evidence is None else evidence.proof_bundle(task_id)
        if bundle is None:
            raise StoreError(f"no proof bundle for task {task_id}: the store keeps no evidence log, or it is empty")
        self._seen([(task_id, court)], "proof")
        result: dict[str, Any] = bundle
        return result

    # -- acting on a task ----------------------------------------------------------------------------

    def _record(self, task_id: str, event: Event) -> StoredEvent:
        self._allow(Permission.ACT, task_id, f"change a task ({event.TYPE})")
        return self.engine.record(task_id, event)

    async def cancel(self, task_id: str, reason: str) -> None:
        """Cancel a task (not once it is in the post or served: the lifecycle refuses then)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("cancel needs a reason (it goes into the evidence)")
        check_note("cancel reason", reason)
        self._record(task_id, Cancelled(task_id=task_id, at=self.clock.now(), reason=reason))

    async def resume(self, task_id: str, note: str = "") -> None:
        """Send a task that needs attention back to electronic-first service."""
        if not isinstance(note, str):
            raise ValidationError(f"resume note must be a string, got {type(note).__name__}")
        check_note("resume note", note)
        self._record(task_id, ResumedByStaff(task_id=task_id, at=self.clock.now(), note=note))

    async def set_contact(
        self,
        task_id: str,
        contact: Contact,
        *,
        replaces: Contact | None = None,
        source: str = "staff",
        actor: str | None = None,
        note: str = "",
    ) -> None:
        """Add a contact of any kind to a task, or replace one of the party's (``replaces``: the same kind).

        ``source`` says where it came from (``staff``, a registry's name, ``portal``: it becomes the contact's
        ``source`` too), ``actor`` who records it (a staff member's id), ``note`` why. Recorded as
        ``contact.updated``; the engine works the task at once:

        - a mobile number goes on the waybill (a carrier that needs one takes the print job now) and, with
          e-mail and platform accounts, opens electronic service where consent allows (CPL Art. 90). A contact
          the party did not give or confirm (``contact.confirmed`` false) is an address the court found: the
          party's consent covers serving there, but the service takes effect only on the party's read or reply
          (SPC Online Litigation Rules Art. 31(2)); without consent, staff may phone it to seek consent;
        - a postal address becomes the address to serve at (as :meth:`set_address`);
        - a task that needs attention resumes: with an address, by post; with any other contact, from the start,
          electronic first (as :meth:`resume`), then by post with the new contact on the waybill.

        Refused (``IllegalTransition``) once the task is served, cancelled or publishing, and for a postal
        address while an item is in the post."""
        if not isinstance(contact, Contact):
            raise ValidationError(f"set_contact takes a Contact, got {type(contact).__name__}")
        check_source(source)
        if actor is not None:
            _check_actor(actor)
        if not isinstance(note, str):
            raise ValidationError(f"set_contact note must be a string, got {type(note).__name__}")
        check_note("set_contact note", note)
        if replaces is not None:
            if not isinstance(replaces, Contact) or replaces.kind is not contact.kind:
                raise ValidationError(f"replaces must be a {contact.kind.value} Contact, the kind of the new one")
            self._allow(Permission.ACT, task_id, "change a task's contacts")
            current = self.engine.load_task(task_id).contacts_of(replaces.kind)
            if not any(c.value == replaces.value for c in current):
                raise ValidationError(
                    f"task {task_id} has no {replaces.kind.value} contact {mask(replaces.value)!r} to replace"
                )
        event = ContactUpdated(
            task_id=task_id,
            at=self.clock.now(),
            contact=attrs.evolve(contact, source=source),
            source=source,
            replaces=replaces,
            actor=actor,
            note=note,
        )
        self._record(task_id, event)

    async def set_address(self, task_id: str, contact: Contact, *, source: str = "staff") -> None:
        """Give a task a (better) postal address, e.g. after a person found one: the postal shorthand of
        :meth:`set_contact`, recorded as ``address.updated`` (as stores and consumers have always had it)."""
        if not isinstance(contact, Contact) or contact.kind is not ContactKind.POSTAL:
            raise ValidationError("set_address takes a postal Contact")
        check_source(source)
        self._record(task_id, AddressUpdated(task_id=task_id, at=self.clock.now(), contact=contact, source=source))

    def _party_moment(self, task: Task, what: str, at: datetime | None, dispatch_id: str | None) -> datetime:
        """``at`` (default: now) checked: aware, not in the future, not before the dispatch it answers."""
        now = self.clock.now()
        if at is None:
            return now
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise ValidationError(f"{what}: 'at' must be a timezone-aware datetime")
        if at > now:
            raise ValidationError(f"{what}: 'at' ({at.isoformat()}) is in the future")
        record = task.dispatch(dispatch_id) if dispatch_id is not None else None
        if record is not None and at < record.queued_at:
            raise ValidationError(f"{what}: 'at' is before dispatch {dispatch_id} was sent")
        return at

    async def record_acceptance(self, task_id: str, dispatch_id: str, *, at: datetime | None = None) -> None:
        """Record that the party accepted an e-service without objecting to e-service: it replied that it had
        received it, or took the procedural step it called for (SPC Online Litigation Rules Art. 29(4)).

        ``dispatch_id`` names the electronic dispatch accepted; ``at`` the moment of the reply or act
        (default: now). Recorded as ``consent.recorded`` (method ``accepted_without_objection``,
        ``via_dispatch``): the party's consent from then on. An e-service sent without prior consent
        (``PolicyConfig.serve_subject_to_acceptance``) takes effect on it (``law.accepted_service``: at the
        acceptance, basis ``BASIS_ACCEPTED_SERVICE``); one sent with consent to an address the party did not
        confirm takes effect at the reply or act if nothing served earlier (Rules Art. 31(2)(1)). An acceptance
        after the party objected (:meth:`record_objection`) is recorded but serves nothing.
        """
        self._allow(Permission.ACT, task_id, "record the party's acceptance")
        task = self.engine.load_task(task_id)
        record = task.dispatch(dispatch_id) if isinstance(dispatch_id, str) else None
        if record is None or not record.kind.carries_documents:  # a staff call carries none: no one accepts it
            raise ValidationError(f"task {task_id} has no electronic dispatch {dispatch_id!r} that carried documents")
        given = self._party_moment(task, "record_acceptance", at, dispatch_id)
        event = ConsentRecorded(
            task_id=task_id,
            at=self.clock.now(),
            method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION,
            given_at=given,
            via_dispatch=dispatch_id,
        )
        self._record(task_id, event)

    async def record_objection(
        self, task_id: str, *, at: datetime | None = None, dispatch_id: str | None = None
    ) -> None:
        """Record that the party expressly refused electronic service (不同意电子送达).

        From ``at`` (default: now) no e-service is sent or covered by consent (CPL Art. 90), and no acceptance
        of an e-service sent without consent can follow (Rules Art. 29(4)): the policy goes to post. Services
        that took effect before stand. ``dispatch_id`` optionally names the dispatch the objection answered.
        Recorded as ``consent.objected``; the first objection stands.
        """
        self._allow(Permission.ACT, task_id, "record the party's objection")
        task = self.engine.load_task(task_id)
        if dispatch_id is not None and task.dispatch(dispatch_id) is None:
            raise ValidationError(f"task {task_id} has no dispatch {dispatch_id!r}")
        moment = self._party_moment(task, "record_objection", at, dispatch_id)
        event = ConsentObjected(task_id=task_id, at=self.clock.now(), objected_at=moment, via_dispatch=dispatch_id)
        self._record(task_id, event)

    # -- inbound -------------------------------------------------------------------------------------

    async def ingest(self, receipt: Receipt, *, channel: str | None = None) -> IngestResult:
        """Record a delivery report, read receipt or print/carrier progress; idempotent on its event id.

        ``channel`` names the adapter the receipt came through (a channel adapter, or a print centre's id):
        a receipt from an adapter that is not the dispatch's own is refused (:attr:`IngestOutcome.REFUSED`,
        nothing changes). Code relaying a provider's report must name it; ``None`` means the application
        itself vouches for the receipt. See :meth:`Engine.ingest <delivery_sdk.engine.Engine.ingest>`.

        The actor needs the ``operate`` permission, or ``act`` on the court of the receipt's task (a clerk
        recording its own staff call's outcome)."""
        self._allow_ingest(receipt)
        return self.engine.ingest(receipt, channel=channel)

    def _allow_ingest(self, receipt: Receipt) -> None:
        actor = self.actor
        if actor.can(Permission.OPERATE) and actor.all_courts:
            return
        dispatch_id = getattr(receipt, "dispatch_id", None)
        task_id = self.store.dispatch_task(dispatch_id) if isinstance(dispatch_id, str) else None
        permission = Permission.OPERATE if actor.can(Permission.OPERATE) else Permission.ACT
        if task_id is None:
            actor.require(Permission.OPERATE, None, "ingest a receipt")
            return  # the engine answers an unknown dispatch (and writes nothing)
        self._allow(permission, task_id, "ingest a receipt")

    async def ingest_callback(
        self, channel: str, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> list[IngestResult]:
        """Parse a provider's push with its channel adapter and ingest every receipt in it.

        ``query`` (the request's URL query parameters) goes to adapters whose ``parse_callback`` declares
        it (see :mod:`delivery_sdk.callbacks`). Nothing is verified against replays here: that is
        :class:`~delivery_sdk.callbacks.CallbackReceiver`'s job. Every receipt is ingested as having come
        through ``channel``: one about a dispatch of another adapter is refused.
        """
        self.actor.require(Permission.OPERATE, None, "ingest a provider's callback")
        adapter = self.host.channels.get(channel)
        try:
            receipts = parse_callback_with_query(adapter, headers, body, query)
        except MalformedReceipt:
            raise
        except Exception as exc:
            raise MalformedReceipt(f"channel {channel!r} could not parse the callback: {exc}") from exc
        return [self.engine.ingest(r, channel=channel) for r in receipts]

    # -- running -------------------------------------------------------------------------------------

    def _start(self) -> None:
        self.actor.require(Permission.OPERATE, None, "run the engine")
        lock = self.store.capabilities().engine_lock
        if lock is not None:
            lock.acquire_engine_lock()

    async def run_until_idle(self, *, until: datetime | None = None, max_steps: int | None = None) -> int:
        """Work until nothing is due (with a virtual clock: until every task waits for news or is done)."""
        self._start()
        return await self.engine.run_until_idle(until=until, max_steps=max_steps)

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Work as tasks fall due, on the client's clock, until ``stop`` is set (or the task is cancelled)."""
        self._start()
        await self.engine.run_forever(stop)

    async def aclose(self) -> None:
        """Stop the engine and close the store if the client opened it; closing twice is harmless."""
        if self._closed or self._view:
            return
        self._closed = True
        await self.engine.aclose()
        if self._owns_store:
            self.store.close()

    async def __aenter__(self) -> AsyncDeliveryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class DeliveryClient:
    """The synchronous face for scripts: the same methods as :class:`AsyncDeliveryClient`, blocking."""

    # the same parameters as AsyncDeliveryClient.__init__ (tests/test_public_api.py keeps them equal)
    def __init__(
        self,
        store: TaskStore | str | os.PathLike[str] | None = None,
        *,
        plugins: Sequence[object] = (),
        clock: Clock | None = None,
        policy: PolicyConfig | None = None,
        config: EngineConfig | None = None,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        id_factory: Callable[[], str] | None = None,
        evidence_signers: Sequence[Signer] | None = None,
        evidence_origin: str | None = None,
        evidence_witness: str | os.PathLike[str] | bool | None = None,
        actor: Actor | None = None,
    ) -> None:
        self._view = False
        self._runner = asyncio.Runner()
        self._async = AsyncDeliveryClient(
            store,
            plugins=plugins,
            clock=clock,
            policy=policy,
            config=config,
            load_entry_points=load_entry_points,
            environ=environ,
            id_factory=id_factory,
            evidence_signers=evidence_signers,
            evidence_origin=evidence_origin,
            evidence_witness=evidence_witness,
            actor=actor,
        )

    def as_actor(self, actor: Actor) -> DeliveryClient:
        """A view of this client that acts for ``actor`` (see :meth:`AsyncDeliveryClient.as_actor`): the same
        store, engine and event loop; closing the view closes nothing."""
        view = object.__new__(DeliveryClient)
        view._runner = self._runner
        view._async = self._async.as_actor(actor)
        view._view = True
        return view

    @property
    def actor(self) -> Actor:
        """Who acts through this client."""
        return self._async.actor

    def access_records(self, *, task_id: str | None = None, staff_id: str | None = None) -> list[AccessRecord]:
        """Who looked at what: the access log of the actor's courts (``audit`` permission)."""
        return self._async.access_records(task_id=task_id, staff_id=staff_id)

    def proof_bundle(self, task_id: str) -> dict[str, Any]:
        """The evidence bundle of a task (recorded as a read of personal data)."""
        return self._async.proof_bundle(task_id)

    @property
    def engine(self) -> Engine:
        """The engine that runs the tasks."""
        return self._async.engine

    @property
    def host(self) -> PluginHost:
        """The plugin host: the registered channels, print centres, carriers, sinks and hooks."""
        return self._async.host

    @property
    def store(self) -> TaskStore:
        """The task store (SQLite or PostgreSQL) the client works on."""
        return self._async.store

    @property
    def clock(self) -> Clock:
        """The clock the client runs on (the system's, or a virtual one in tests and the demo)."""
        return self._async.clock

    def _run(self, coro: Any) -> Any:
        return self._runner.run(coro)

    def submit(self, request: ServiceRequest) -> str:
        """Create the service task for ``request`` and return its id (idempotent on ``client_key``)."""
        result: str = self._run(self._async.submit(request))
        return result

    def submit_many(self, requests: Sequence[ServiceRequest]) -> list[str]:
        """Create many tasks in one transaction: all are created, or none is."""
        result: list[str] = self._run(self._async.submit_many(requests))
        return result

    def submit_case(
        self,
        case: Case,
        parties: Sequence[Party],
        documents: Sequence[Document],
        *,
        client_key: str | None = None,
        channels: Sequence[ChannelKind] | None = None,
    ) -> list[str]:
        """Serve ``documents`` on every party of a case: one task per party, created atomically."""
        result: list[str] = self._run(
            self._async.submit_case(case, parties, documents, client_key=client_key, channels=channels)
        )
        return result

    def task(self, task_id: str) -> Task:
        """The folded task (every field), for code that needs more than :meth:`status`."""
        return self._async.task(task_id)

    def status(self, task_id: str) -> TaskStatus:
        """A task's status (state, deadlines, basis of service, masked contacts); :class:`UnknownTask` if absent."""
        return self._async.status(task_id)

    def timeline(self, task_id: str) -> list[StoredEvent]:
        """Every stored event of a task, oldest first; :class:`UnknownTask` if absent."""
        return self._async.timeline(task_id)

    def tasks_of_case(self, case: Case | str) -> list[TaskStatus]:
        """The status of every task of a case (a :class:`Case` or its key), in the order they were created."""
        return self._async.tasks_of_case(case)

    def count_by_state(self) -> dict[str, int]:
        """How many tasks are in each lifecycle state, by state name."""
        return self._async.count_by_state()

    def cancel(self, task_id: str, reason: str) -> None:
        """Cancel a task (not once it is in the post or served: the lifecycle refuses then)."""
        self._run(self._async.cancel(task_id, reason))

    def resume(self, task_id: str, note: str = "") -> None:
        """Send a task that needs attention back to electronic-first service."""
        self._run(self._async.resume(task_id, note))

    def set_address(self, task_id: str, contact: Contact, *, source: str = "staff") -> None:
        """Give a task a (better) postal address: the postal shorthand of :meth:`set_contact`."""
        self._run(self._async.set_address(task_id, contact, source=source))

    def set_contact(
        self,
        task_id: str,
        contact: Contact,
        *,
        replaces: Contact | None = None,
        source: str = "staff",
        actor: str | None = None,
        note: str = "",
    ) -> None:
        """Add a contact of any kind to a task, or replace one of the party's (``replaces``: the same kind)."""
        self._run(self._async.set_contact(task_id, contact, replaces=replaces, source=source, actor=actor, note=note))

    def check_request(self, request: ServiceRequest) -> tuple[RequestWarning, ...]:
        """What ``request`` lacks that the configured plugins need, without submitting it."""
        return self._async.check_request(request)

    def record_acceptance(self, task_id: str, dispatch_id: str, *, at: datetime | None = None) -> None:
        """Record that the party accepted an e-service without objecting to it (SPC Online Litigation Rules
        Art. 29(4))."""
        self._run(self._async.record_acceptance(task_id, dispatch_id, at=at))

    def record_objection(self, task_id: str, *, at: datetime | None = None, dispatch_id: str | None = None) -> None:
        """Record that the party expressly refused electronic service (不同意电子送达)."""
        self._run(self._async.record_objection(task_id, at=at, dispatch_id=dispatch_id))

    def ingest(self, receipt: Receipt, *, channel: str | None = None) -> IngestResult:
        """Record a delivery report, read receipt or print/carrier progress; idempotent on its event id."""
        result: IngestResult = self._run(self._async.ingest(receipt, channel=channel))
        return result

    def ingest_callback(
        self, channel: str, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> list[IngestResult]:
        """Parse a provider's push with its channel adapter and ingest every receipt in it."""
        result: list[IngestResult] = self._run(self._async.ingest_callback(channel, headers, body, query=query))
        return result

    def run_until_idle(self, *, until: datetime | None = None, max_steps: int | None = None) -> int:
        """Work until nothing is due (with a virtual clock: until every task waits for news or is done); return
        the number of steps taken."""
        result: int = self._run(self._async.run_until_idle(until=until, max_steps=max_steps))
        return result

    def close(self) -> None:
        """Stop the engine, close the store if the client opened it, and end the client's event loop (a view
        from :meth:`as_actor` closes nothing)."""
        if self._view:
            return
        try:
            self._run(self._async.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> DeliveryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
