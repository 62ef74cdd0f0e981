"""The lifecycle of a service task: everything that decides a state change lives in this file.

A task's state is a fold of its events through one table, :data:`TRANSITIONS`, keyed by
``(state, event type)``. A row's value is the next state, or a *guard* (a pure function of the task and
the event) where the answer depends on which dispatch the event is about. :func:`apply` is pure: no I/O,
no clock, no globals. An event the table does not list for the task's state raises
:class:`~delivery_sdk.IllegalTransition` naming the state and the event.

The docs' state diagram is generated from the table by :func:`mermaid`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from ._exceptions import IllegalTransition
from ._fast import evolver
from .channels import Receipt, ReceiptKind
from .events import (
    AddressSearchFailed,
    AddressUpdated,
    Cancelled,
    ConsentObjected,
    ConsentRecorded,
    ContactUpdated,
    DispatchDelivered,
    DispatchFailed,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    DispatchTimedOut,
    Enveloped,
    Event,
    FellBackToPost,
    Filed,
    Mailed,
    NeedsAttention,
    PostReturned,
    PostSigned,
    Printed,
    PrintRouted,
    PublicationStarted,
    ResumedByStaff,
    ReturnReason,
    Served,
    TaskCreated,
)
from .law.service import SignerRole
from .model import (
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    DispatchRecord,
    DispatchStatus,
    ServiceMethod,
    ServiceRequest,
)

__all__ = [
    "PROVIDER_FACTS",
    "TERMINAL",
    "TRANSITIONS",
    "Task",
    "TaskState",
    "apply",
    "event_is_news",
    "fact_is_news",
    "fold",
    "mermaid",
    "new_task",
    "receipt_contradicts",
    "receipt_event",
    "receipt_is_news",
    "receipt_out_of_order",
]


class TaskState(enum.Enum):
    """The lifecycle state of a service task; :data:`TERMINAL` states never change again."""

    # Members are singletons compared by identity, so the identity hash is correct and, unlike Enum's
    # Python-level __hash__, costs nothing in the transition table's lookups.
    __hash__ = object.__hash__

    CREATED = "created"
    ELECTRONIC = "electronic"  # electronic attempts under way
    POSTAL = "postal"  # fell back to post; needs a print centre
    ROUTED = "routed"  # a print centre was chosen; the print job goes or went there
    PRINTED = "printed"
    MAILED = "mailed"  # in the post
    RETURNED = "returned"  # the post came back; address search or publication next
    PUBLISHING = "publishing"  # public notice posted; deemed served when the period ends
    SERVED = "served"
    FILED = "filed"  # proof of service filed into the case file: done
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"  # a person must decide

    @property
    def terminal(self) -> bool:
        """True for a state the task never leaves (served, cancelled...)."""
        return self in TERMINAL


TERMINAL = frozenset({TaskState.FILED, TaskState.CANCELLED})


@attrs.frozen(kw_only=True, slots=False)  # dict-based: the fold copies it once per event (_fast.evolver)
class Task:
    """A service task: one recipient x one document set, folded from its events."""

    task_id: str
    request: ServiceRequest
    state: TaskState
    version: int  # number of events folded in
    created_at: datetime
    updated_at: datetime
    consent: Consent | None = None  # to electronic service: from the request, or recorded later (the first stands)
    objected_at: datetime | None = None  # the party expressly refused e-service then (Rules Art. 29(4))
    reachable: frozenset[ContactKind] = frozenset()  # contact kinds the party (or its agents) can be reached by
    dispatches: tuple[DispatchRecord, ...] = ()
    electronic_from: int = 0  # index into dispatches where the current electronic round starts
    postal_address: Contact | None = None
    tried_addresses: tuple[str, ...] = ()
    postal_rounds: int = 0
    centre_id: str | None = None
    postal_dispatch_id: str | None = None
    fallback_reason: str | None = None
    last_return_reason: ReturnReason | None = None
    last_return_at: datetime | None = None
    address_search_failed: bool = False
    published_at: datetime | None = None
    served_method: ServiceMethod | None = None
    served_basis: str | None = None
    served_at: datetime | None = None
    served_dispatch_id: str | None = None
    record_id: str | None = None
    attention_reason: str | None = None
    cancel_reason: str | None = None
    # contacts given after submission (contact.updated, oldest first) and those replaced since: with the
    # request's, the party's current contacts (contacts_of)
    contacts_added: tuple[Contact, ...] = ()
    contacts_retired: tuple[Contact, ...] = ()

    def contacts_of(self, kind: ContactKind) -> tuple[Contact, ...]:
        """The party's current contacts of ``kind``: those added after submission (the latest first), then the
        request's (``Party.contacts_of``: the party's own, then its representatives'), less those replaced."""
        return _current_contacts(self.request, self.contacts_added, self.contacts_retired, kind)

    def first_contact(self, kind: ContactKind) -> Contact | None:
        """``contacts_of(kind)[0]``, or None (the request's first contact while nothing was added or replaced)."""
        if not self.contacts_added and not self.contacts_retired:
            return self.request.party.first_contact(kind)
        found = self.contacts_of(kind)
        return found[0] if found else None

    def dispatch(self, dispatch_id: str) -> DispatchRecord | None:
        """The dispatch ``dispatch_id`` of this task, or None."""
        for d in self.dispatches:
            if d.dispatch_id == dispatch_id:
                return d
        return None

    @property
    def electronic_dispatches(self) -> tuple[DispatchRecord, ...]:
        """The electronic dispatches of the current electronic round (since the task last went electronic)."""
        return tuple(d for d in self.dispatches[self.electronic_from :] if d.kind.electronic)

    @property
    def terminal(self) -> bool:
        """True when the task is in a terminal state."""
        return self.state in TERMINAL


def _current_contacts(
    request: ServiceRequest, added: tuple[Contact, ...], retired: tuple[Contact, ...], kind: ContactKind
) -> tuple[Contact, ...]:
    base = request.party.contacts_of(kind)
    if not added and not retired:
        return base
    gone = {c.value for c in retired if c.kind is kind}
    seen: set[str] = set()
    current: list[Contact] = []
    for contact in (*reversed(added), *base):
        if contact.kind is kind and contact.value not in gone and contact.value not in seen:
            seen.add(contact.value)
            current.append(contact)
    return tuple(current)


Guard = Callable[[Task, Event], TaskState]
Next = TaskState | Guard

S = TaskState

# Members the fold compares with, read once (a read through the enum class costs an attribute hook).
_QUEUED, _SENT = DispatchStatus.QUEUED, DispatchStatus.SENT
_DELIVERED, _READ = DispatchStatus.DELIVERED, DispatchStatus.READ
_FINAL = frozenset({_DELIVERED, _READ})

_ACTIVE = (
    S.CREATED,
    S.ELECTRONIC,
    S.POSTAL,
    S.ROUTED,
    S.PRINTED,
    S.MAILED,
    S.RETURNED,
    S.PUBLISHING,
    S.NEEDS_ATTENTION,
)
_RECEIPTS: tuple[type[Event], ...] = (
    DispatchSent,
    DispatchDelivered,
    DispatchRead,
    DispatchFailed,
    DispatchTimedOut,
    Printed,
    Enveloped,  # a fact with its time: recorded in every state, moves none
    Mailed,
    PostSigned,
    PostReturned,
)


def _queued(task: Task, event: Event) -> TaskState:
    assert isinstance(event, DispatchQueued)
    if event.kind.electronic and task.state in (S.CREATED, S.ELECTRONIC):
        return S.ELECTRONIC
    if event.kind is ChannelKind.PRINT and task.state is S.ROUTED:
        return S.ROUTED
    raise IllegalTransition(task.state.value, f"{event.TYPE}({event.kind.value})", task.task_id)


def _current_postal(task: Task, event: Event, to: TaskState) -> TaskState:
    """Postal progress moves the state only when it is about the current print/mail dispatch."""
    dispatch_id = getattr(event, "dispatch_id", None)
    return to if dispatch_id is not None and dispatch_id == task.postal_dispatch_id else task.state


def _resumed(task: Task, event: Event) -> TaskState:
    """A person sends the task back: to filing if it was already served, else to the start."""
    return S.SERVED if task.served_at is not None else S.CREATED


def _contact_updated(task: Task, event: Event) -> TaskState:
    """A contact given after submission. A postal address is the address to serve at (as ``address.updated``):
    a returned or stuck task goes to post with it, and an item already in the post cannot change address. Any
    other contact is recorded where the task is (the policy uses it at once), and resumes a task that needs
    attention from the start, electronic first (as ``task.resumed``): consent decides whether e-service opens,
    else the task goes by post with the new contact on the waybill."""
    assert isinstance(event, ContactUpdated)
    postal = event.contact.kind is ContactKind.POSTAL
    state = task.state
    if state is S.NEEDS_ATTENTION:
        if task.served_at is not None:
            return state  # served: only the filing waits for a person
        return S.POSTAL if postal else S.CREATED
    if state is S.RETURNED:
        return S.POSTAL if postal else state
    if postal and state in _IN_POST:
        raise IllegalTransition(state.value, f"{event.TYPE}(postal)", task.task_id)
    return state


# where a contact.updated row can lead (for the diagram)
_CONTACT_TARGETS: dict[TaskState, tuple[TaskState, ...]] = {
    S.NEEDS_ATTENTION: (S.CREATED, S.POSTAL),
    S.RETURNED: (S.POSTAL,),
}
_IN_POST = (S.ROUTED, S.PRINTED, S.MAILED)


def _print_failed(task: Task, event: Event) -> TaskState:
    return _current_postal(task, event, S.POSTAL)


def _printed(task: Task, event: Event) -> TaskState:
    return _current_postal(task, event, S.PRINTED)


def _mailed(task: Task, event: Event) -> TaskState:
    return _current_postal(task, event, S.MAILED)


def _returned(task: Task, event: Event) -> TaskState:
    return _current_postal(task, event, S.RETURNED)


TRANSITIONS: dict[tuple[TaskState, str], Next] = {}


def _rows(states: tuple[TaskState, ...], event: type[Event], to: Next | None = None) -> None:
    for state in states:
        TRANSITIONS[(state, event.TYPE)] = state if to is None else to


# Receipts are facts: they are recorded in every state (late ones too, for the evidence) and only
# move the state where the rows below say so.
for _receipt in _RECEIPTS:
    _rows((*_ACTIVE, S.SERVED, S.FILED, S.CANCELLED), _receipt)
_rows((S.CREATED, S.ELECTRONIC, S.ROUTED), DispatchQueued, _queued)
_rows((*_ACTIVE, S.SERVED, S.FILED, S.CANCELLED), ConsentRecorded)  # a fact: recorded in every state
_rows((*_ACTIVE, S.SERVED, S.FILED, S.CANCELLED), ConsentObjected)  # a fact: recorded in every state
_rows((S.CREATED,), FellBackToPost, S.POSTAL)
_rows((S.ELECTRONIC,), FellBackToPost, S.POSTAL)
_rows((S.NEEDS_ATTENTION,), FellBackToPost, S.POSTAL)
_rows((S.CREATED, S.ELECTRONIC, S.POSTAL), AddressUpdated)
_rows((S.RETURNED, S.NEEDS_ATTENTION), AddressUpdated, S.POSTAL)
_rows((S.POSTAL, S.RETURNED), AddressSearchFailed)
_rows((S.CREATED, S.ELECTRONIC, S.POSTAL, *_IN_POST, S.RETURNED, S.NEEDS_ATTENTION), ContactUpdated, _contact_updated)
_rows((S.POSTAL,), PrintRouted, S.ROUTED)
_rows((S.ROUTED,), DispatchFailed, _print_failed)
_rows((S.ROUTED,), Printed, _printed)
_rows((S.ROUTED, S.PRINTED), Mailed, _mailed)
_rows((S.MAILED,), PostReturned, _returned)
_rows((S.CREATED, S.POSTAL, S.RETURNED, S.NEEDS_ATTENTION), PublicationStarted, S.PUBLISHING)
_rows(_ACTIVE, Served, S.SERVED)
_rows((S.SERVED,), Filed, S.FILED)
_rows(tuple(s for s in _ACTIVE if s is not S.MAILED), Cancelled, S.CANCELLED)
_rows((*_ACTIVE, S.SERVED), NeedsAttention, S.NEEDS_ATTENTION)  # SERVED: filing keeps failing
_rows((S.NEEDS_ATTENTION,), ResumedByStaff, _resumed)


# ---------------------------------------------------------------------------------------------------
# The fold: state from the table, the rest of the task from one reducer per event type.
# ---------------------------------------------------------------------------------------------------


def new_task(event: TaskCreated) -> Task:
    """The task a ``task.created`` event starts: the request's facts, its postal address (a confirmed one first) and
    no dispatch yet."""
    request = event.request
    postal = request.party.contacts_of(ContactKind.POSTAL)
    confirmed = [c for c in postal if c.confirmed]
    ordered = confirmed or list(postal)
    address = ordered[0] if ordered else None
    return Task(
        task_id=event.task_id,
        request=request,
        state=S.CREATED,
        version=1,
        created_at=event.at,
        updated_at=event.at,
        postal_address=address,
        consent=request.party.consent,
        reachable=frozenset(c.kind for c in request.party.contacts)
        | frozenset(c.kind for a in request.party.agents for c in a.contacts),
    )


# The fold copies a task once per event and a dispatch record once per receipt without attrs.evolve
# (delivery_sdk._fast.evolver: both classes are dict-based, with no validator to skip, checked at import).
_evolve_task = evolver(Task)
_evolve_record = evolver(DispatchRecord)


def _update_dispatch(task: Task, dispatch_id: str, **changes: Any) -> tuple[DispatchRecord, ...]:
    """The task's dispatches with ``dispatch_id``'s record changed."""
    dispatches = task.dispatches
    for i, d in enumerate(dispatches):
        if d.dispatch_id == dispatch_id:
            return (*dispatches[:i], _evolve_record(d, changes), *dispatches[i + 1 :])
    return dispatches


def _queued_changes(task: Task, event: Event) -> dict[str, object]:
    assert isinstance(event, DispatchQueued)
    record = DispatchRecord(
        dispatch_id=event.dispatch_id,
        channel=event.channel,
        kind=event.kind,
        contact=event.contact,
        status=DispatchStatus.QUEUED,
        queued_at=event.at,
        centre_id=event.centre_id,
    )
    changes: dict[str, object] = {"dispatches": (*task.dispatches, record)}
    if event.kind is ChannelKind.PRINT:
        changes.update(postal_rounds=task.postal_rounds + 1, postal_dispatch_id=event.dispatch_id)
    return changes


def _consent_changes(task: Task, event: Event) -> dict[str, object]:
    assert isinstance(event, ConsentRecorded)
    changes: dict[str, object] = {}
    # The first consent stands: it covers the most (a later one adds nothing to what it covers). A consent
    # cannot have been given after it was recorded: a provider's clock ahead of ours is clamped.
    given = event.given_at if event.given_at <= event.at else event.at
    if task.consent is None:
        changes["consent"] = Consent(method=event.method, given_at=given)
    reached = task.dispatch(event.via_dispatch) if event.via_dispatch else None
    if event.via_dispatch and reached is None:
        raise IllegalTransition(
            task.state.value, f"{event.TYPE} for unknown dispatch {event.via_dispatch}", task.task_id
        )
    if (
        reached is not None
        and event.method is ConsentMethod.ACCEPTED_WITHOUT_OBJECTION
        and reached.kind.carries_documents
    ):
        # the party accepted this e-service (replied, acted; Rules Art. 29(4)): it reached the party, and the
        # first acceptance stands
        changes["dispatches"] = _update_dispatch(
            task,
            reached.dispatch_id,
            accepted_at=reached.accepted_at or given,
            status=reached.status if reached.status in _FINAL else _DELIVERED,
            delivered_at=reached.delivered_at or given,
            settled_at=reached.settled_at or event.at,
            sent_at=reached.sent_at or event.at,
        )
    elif reached is not None and not reached.status.settled:
        # the call that obtained consent reached the party: it is settled, though it served nothing
        changes["dispatches"] = _update_dispatch(
            task, reached.dispatch_id, status=DispatchStatus.DELIVERED, settled_at=event.at
        )
    return changes


def _objection_changes(task: Task, event: Event) -> dict[str, object]:
    assert isinstance(event, ConsentObjected)
    if event.via_dispatch and task.dispatch(event.via_dispatch) is None:
        raise IllegalTransition(
            task.state.value, f"{event.TYPE} for unknown dispatch {event.via_dispatch}", task.task_id
        )
    return {"objected_at": task.objected_at or event.objected_at}  # the first objection stands


def _contact_changes(task: Task, event: Event) -> dict[str, object]:
    assert isinstance(event, ContactUpdated)
    contact, replaces = event.contact, event.replaces

    def same(a: Contact, b: Contact) -> bool:
        return a.kind is b.kind and a.value == b.value

    added = tuple(c for c in task.contacts_added if not same(c, contact))
    retired = tuple(c for c in task.contacts_retired if not same(c, contact))
    if replaces is not None and not same(replaces, contact):
        added = tuple(c for c in added if not same(c, replaces))
        if not any(same(c, replaces) for c in retired):
            retired = (*retired, replaces)
    added = (*added, contact)
    request = task.request
    changes: dict[str, object] = {
        "contacts_added": added,
        "contacts_retired": retired,
        "reachable": frozenset(k for k in ContactKind if _current_contacts(request, added, retired, k)),
    }
    if contact.kind is ContactKind.POSTAL:
        changes.update(postal_address=contact, address_search_failed=False, centre_id=None)
    if task.state is S.NEEDS_ATTENTION and task.served_at is None:
        changes["attention_reason"] = None
        if contact.kind is not ContactKind.POSTAL:  # from the start, as task.resumed
            changes.update(electronic_from=len(task.dispatches), centre_id=None)
    return changes


def _served_changes(task: Task, event: Event) -> dict[str, object]:
    assert isinstance(event, Served)
    return {
        "served_method": event.method,
        "served_basis": event.basis,
        "served_at": event.effective_at,
        "served_dispatch_id": event.dispatch_id,
        "attention_reason": None,
    }


def _receipt_changes(task: Task, event: Event) -> dict[str, object]:
    """A provider's report about one dispatch: that dispatch's record changes (see _reduce_receipt)."""
    dispatch_id: str = getattr(event, "dispatch_id")  # noqa: B009 - every receipt event has one
    for known in task.dispatches:
        if known.dispatch_id == dispatch_id:
            return _reduce_receipt(task, known, event)
    raise IllegalTransition(task.state.value, f"{event.TYPE} for unknown dispatch {dispatch_id}", task.task_id)


def _no_changes(task: Task, event: Event) -> dict[str, object]:
    return {}


Reducer = Callable[[Task, Any], dict[str, object]]  # Any: each reducer takes its own event class

# The non-state fields each event type changes (the state itself comes from TRANSITIONS), looked up by the
# event's class: one dict lookup instead of a chain of isinstance tests per event folded.
_REDUCERS: dict[type[Event], Reducer] = {
    DispatchQueued: _queued_changes,
    ResumedByStaff: lambda task, event: {
        "attention_reason": None,
        "electronic_from": len(task.dispatches),
        "centre_id": None,
    },
    ConsentRecorded: _consent_changes,
    ConsentObjected: _objection_changes,
    FellBackToPost: lambda task, event: {"fallback_reason": event.reason},
    AddressUpdated: lambda task, event: {
        "postal_address": event.contact,
        "address_search_failed": False,
        "centre_id": None,
    },
    AddressSearchFailed: lambda task, event: {"address_search_failed": True},
    ContactUpdated: _contact_changes,
    PrintRouted: lambda task, event: {"centre_id": event.centre_id, "postal_dispatch_id": None},
    PublicationStarted: lambda task, event: {"published_at": event.published_at},
    Served: _served_changes,
    Filed: lambda task, event: {"record_id": event.record_id},
    Cancelled: lambda task, event: {"cancel_reason": event.reason},
    NeedsAttention: lambda task, event: {"attention_reason": event.reason},
    **dict.fromkeys(_RECEIPTS, _receipt_changes),
}


def _reducer(cls: type[Event]) -> Reducer:
    """The reducer of an event class (a subclass of a known event reduces as its base does)."""
    for base in cls.__mro__:
        found = _REDUCERS.get(base)
        if found is not None:
            _REDUCERS[cls] = found
            return found
    return _no_changes


def _reduce_receipt(task: Task, record: DispatchRecord, event: Event) -> dict[str, object]:
    did = record.dispatch_id
    status = record.status
    final = status in _FINAL
    if isinstance(event, DispatchSent):
        if status is not _QUEUED:
            # a delivery report overtook the send's answer: keep the provider's reference all the same
            return {"dispatches": _update_dispatch(task, did, provider_ref=record.provider_ref or event.provider_ref)}
        return {
            "dispatches": _update_dispatch(task, did, status=_SENT, sent_at=event.at, provider_ref=event.provider_ref)
        }
    if isinstance(event, DispatchDelivered):
        at = record.delivered_at
        if at is None:
            at = event.delivered_at
        elif task.served_at is not None or task.state is S.CANCELLED:
            # Settled: the service stands on the facts it was decided on; a later report (an earlier arrival
            # among them) is recorded as evidence and rewrites nothing.
            return {}
        elif event.delivered_at < at:
            at = event.delivered_at  # before service, the earliest reported arrival counts (Rules Art. 31)
        new = _READ if status is _READ else _DELIVERED
        return {
            "dispatches": _update_dispatch(
                task,
                did,
                status=new,
                delivered_at=at,
                settled_at=record.settled_at or event.at,
                sent_at=record.sent_at or event.at,
            )
        }
    if isinstance(event, DispatchRead):
        # A "read" report presumes arrival (Online Litigation Rules Art. 31), so it settles the dispatch
        # even when it overtakes the delivery report.
        delivered = record.delivered_at or event.read_at
        return {
            "dispatches": _update_dispatch(
                task,
                did,
                status=DispatchStatus.READ,
                read_at=record.read_at or event.read_at,  # the first reading stands
                delivered_at=delivered,
                settled_at=record.settled_at or event.at,
                sent_at=record.sent_at or event.at,
            )
        }
    if isinstance(event, DispatchFailed):
        if final:
            return {}
        changes: dict[str, object] = {
            "dispatches": _update_dispatch(
                task,
                did,
                status=DispatchStatus.FAILED,
                detail=event.reason,
                settled_at=event.at,
                failed_by=event.failed_by,
            )
        }
        if did == task.postal_dispatch_id and task.state is S.ROUTED:
            changes["centre_id"] = None
        return changes
    if isinstance(event, DispatchTimedOut):
        if status.settled:
            return {}
        return {"dispatches": _update_dispatch(task, did, status=DispatchStatus.TIMED_OUT, settled_at=event.at)}
    if isinstance(event, Printed):
        if status not in (DispatchStatus.QUEUED, DispatchStatus.SENT):
            return {}
        return {
            "dispatches": _update_dispatch(task, did, status=DispatchStatus.PRINTED, sent_at=record.sent_at or event.at)
        }
    if isinstance(event, Enveloped):
        if record.enveloped_at is not None:
            return {}
        return {"dispatches": _update_dispatch(task, did, enveloped_at=event.enveloped_at)}
    if isinstance(event, Mailed):
        if status.settled:
            return {"dispatches": _update_dispatch(task, did, waybill=event.waybill)}
        return {
            "dispatches": _update_dispatch(
                task, did, status=DispatchStatus.MAILED, waybill=event.waybill, sent_at=record.sent_at or event.at
            )
        }
    if isinstance(event, PostSigned):
        if final or status is DispatchStatus.RETURNED:
            # the first signature stands; a signature after the item came back (the sender signing for the
            # returned mail) serves nothing: both are recorded as evidence only
            return {}
        return {
            "dispatches": _update_dispatch(
                task,
                did,
                status=DispatchStatus.DELIVERED,
                delivered_at=event.signed_at,
                settled_at=event.at,
                detail=event.signer_role,
            )
        }
    if isinstance(event, PostReturned):
        if final:
            return {}
        changes = {
            "dispatches": _update_dispatch(
                task, did, status=DispatchStatus.RETURNED, detail=event.reason.value, settled_at=event.at
            )
        }
        if did == task.postal_dispatch_id:
            changes.update(
                last_return_reason=event.reason,
                last_return_at=event.returned_at,
                tried_addresses=(*task.tried_addresses, record.contact.value),
            )
        return changes
    return {}


def apply(task: Task, event: Event) -> Task:
    """Fold one event into a task. Pure; raises :class:`IllegalTransition` for a forbidden event."""
    cls = type(event)
    if isinstance(event, TaskCreated):
        raise IllegalTransition(task.state.value, event.TYPE, task.task_id)
    if event.task_id != task.task_id:
        raise IllegalTransition(task.state.value, f"{event.TYPE} of task {event.task_id}", task.task_id)
    row = TRANSITIONS.get((task.state, cls.TYPE))
    if row is None:
        raise IllegalTransition(task.state.value, event.TYPE, task.task_id)
    changes = (_REDUCERS.get(cls) or _reducer(cls))(task, event)
    changes["state"] = row if isinstance(row, TaskState) else row(task, event)
    changes["version"] = task.version + 1
    changes["updated_at"] = event.at
    return _evolve_task(task, changes)


def fold(events: list[Event] | tuple[Event, ...]) -> Task:
    """Rebuild a task from its whole event history (the first event must be ``task.created``)."""
    if not events or not isinstance(events[0], TaskCreated):
        first = events[0].TYPE if events else "nothing"
        raise IllegalTransition("(none)", first)
    task = new_task(events[0])
    for event in events[1:]:
        task = apply(task, event)
    return task


def mermaid() -> str:
    """The state diagram (Mermaid ``stateDiagram-v2``), generated from :data:`TRANSITIONS`."""
    edges: dict[tuple[str, str], list[str]] = {}
    guarded_targets = {
        _queued: (S.ELECTRONIC, S.ROUTED),
        _print_failed: (S.POSTAL,),
        _printed: (S.PRINTED,),
        _mailed: (S.MAILED,),
        _returned: (S.RETURNED,),
        _resumed: (S.CREATED, S.SERVED),
        _contact_updated: (),
    }
    for (state, etype), to in TRANSITIONS.items():
        targets = (to,) if isinstance(to, TaskState) else guarded_targets[to]  # type: ignore[index]
        if to is _contact_updated:
            targets = _CONTACT_TARGETS.get(state, ())
        for target in targets:
            if target is state:
                continue
            if to is _queued and target is not (S.ELECTRONIC if state is not S.ROUTED else S.ROUTED):
                continue
            edges.setdefault((state.value, target.value), []).append(etype)
    lines = ["stateDiagram-v2", "    [*] --> created"]
    for (frm, to_), types in sorted(edges.items()):
        lines.append(f"    {frm} --> {to_}: {', '.join(sorted(set(types)))}")
    for state in sorted(TERMINAL, key=lambda s: s.value):
        lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"


# -- provider reports: what a receipt becomes, and whether it tells a dispatch anything new ------------------
#
# Pure functions of a dispatch's record and a provider's report. The engine (a send's answer, a status poll)
# and ingest (a callback) both ask these; the tables in tests/test_lifecycle_receipts.py pin them down.

_R_DELIVERED, _R_FAILED, _R_READ = ReceiptKind.DELIVERED, ReceiptKind.FAILED, ReceiptKind.READ
_R_SIGNED, _R_RETURNED = ReceiptKind.SIGNED, ReceiptKind.RETURNED
_R_IN_POST = frozenset({ReceiptKind.MAILED, ReceiptKind.ENVELOPED})
_RETURNED_STATUS = DispatchStatus.RETURNED
_NOT_YET_PRINTED = frozenset({DispatchStatus.QUEUED, DispatchStatus.SENT})
_SIGNER_UNKNOWN = SignerRole.UNKNOWN.value

#: The events that record what a provider said (as opposed to what the policy decided): after a commit
#: conflict these, and only these, are applied again (if still news) on top of the task as it now is.
PROVIDER_FACTS: tuple[type[Event], ...] = (
    DispatchSent,
    DispatchDelivered,
    DispatchRead,
    DispatchFailed,
    Printed,
    Enveloped,
    Mailed,
    PostSigned,
    PostReturned,
    ConsentRecorded,
)


def receipt_event(task_id: str, now: datetime, receipt: Receipt) -> Event:
    """The event a provider's receipt becomes (recorded at ``now``)."""
    did = receipt.dispatch_id
    pid = receipt.provider_event_id
    kind = receipt.kind
    if kind is _R_DELIVERED:
        return DispatchDelivered(
            task_id=task_id, at=now, dispatch_id=did, delivered_at=receipt.at, provider_event_id=pid
        )
    if kind is _R_FAILED:
        return DispatchFailed(
            task_id=task_id, at=now, dispatch_id=did, reason=receipt.reason or "failed", provider_event_id=pid
        )
    if kind is _R_READ:
        return DispatchRead(task_id=task_id, at=now, dispatch_id=did, read_at=receipt.at, provider_event_id=pid)
    if kind is ReceiptKind.PRINTED:
        return Printed(task_id=task_id, at=now, dispatch_id=did, provider_event_id=pid)
    if kind is ReceiptKind.ENVELOPED:
        return Enveloped(task_id=task_id, at=now, dispatch_id=did, enveloped_at=receipt.at, provider_event_id=pid)
    if kind is ReceiptKind.MAILED:
        assert receipt.waybill is not None
        return Mailed(task_id=task_id, at=now, dispatch_id=did, waybill=receipt.waybill, provider_event_id=pid)
    if kind is ReceiptKind.CONSENTED:
        return ConsentRecorded(
            task_id=task_id, at=now, method=ConsentMethod.PHONE, given_at=receipt.at, via_dispatch=did
        )
    if kind is _R_SIGNED:
        return PostSigned(
            task_id=task_id,
            at=now,
            dispatch_id=did,
            signed_at=receipt.at,
            # who signed, as the carrier said; the law decides whether that serves (law.postal_service)
            signer_role=receipt.signer_role or _SIGNER_UNKNOWN,
            provider_event_id=pid,
        )
    assert receipt.reason is not None
    return PostReturned(
        task_id=task_id,
        at=now,
        dispatch_id=did,
        returned_at=receipt.at,
        reason=ReturnReason(receipt.reason),
        provider_event_id=pid,
    )


def fact_is_news(record: DispatchRecord, event: Event) -> bool:
    """Whether a provider-reported fact tells the dispatch's record anything it does not know yet."""
    if isinstance(event, DispatchSent):
        # the provider's acceptance is evidence even when its delivery report overtook it
        return record.status is _QUEUED or (record.provider_ref is None and event.provider_ref is not None)
    if isinstance(event, DispatchDelivered):
        return record.delivered_at is None or event.delivered_at < record.delivered_at
    if isinstance(event, DispatchRead):
        return record.read_at is None
    if isinstance(event, DispatchFailed | ConsentRecorded):
        return not record.status.settled
    if isinstance(event, Printed):
        return record.status in _NOT_YET_PRINTED
    if isinstance(event, Enveloped):
        return record.enveloped_at is None
    if isinstance(event, Mailed):
        return record.waybill is None
    if isinstance(event, PostSigned):
        # a signature after the item came back is no service (the sender signing for the returned item)
        return record.status is not _DELIVERED and record.status is not _RETURNED_STATUS
    if isinstance(event, PostReturned):
        return record.status is not _RETURNED_STATUS and record.status is not _DELIVERED
    return True


def event_is_news(task: Task, event: Event) -> bool:
    """Whether a provider-reported event still tells ``task`` something (after a conflict, an ingest may
    have recorded the same report meanwhile); an event about no dispatch of the task is news."""
    dispatch_id = event.via_dispatch if isinstance(event, ConsentRecorded) else getattr(event, "dispatch_id", None)
    record = task.dispatch(dispatch_id) if dispatch_id is not None else None
    return record is None or fact_is_news(record, event)


def receipt_is_news(record: DispatchRecord, receipt: Receipt) -> bool:
    """Whether a receipt tells the task anything it does not know (status polls repeat old news)."""
    return fact_is_news(record, receipt_event(record.dispatch_id, record.queued_at, receipt))


def receipt_contradicts(record: DispatchRecord, kind: ReceiptKind) -> bool:
    """Whether a report of ``kind`` contradicts the settled outcome of its dispatch (a failure after delivery, a
    return after delivery, a signature after the return): recorded as late evidence only."""
    status = record.status
    if kind is _R_FAILED:
        return status is _DELIVERED or status is _READ
    if kind is _R_RETURNED:
        return status is _DELIVERED
    if kind is _R_SIGNED:
        return status is _RETURNED_STATUS
    return False


def receipt_out_of_order(record: DispatchRecord, kind: ReceiptKind) -> bool:
    """Whether a report of ``kind`` skips a stage never reported (read before delivered, mailed or enveloped
    before printed): recorded all the same."""
    if kind is _R_READ:
        return record.delivered_at is None
    if kind in _R_IN_POST:
        return record.status in _NOT_YET_PRINTED
    return False
