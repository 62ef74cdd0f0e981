"""Events: the immutable facts a task's state is folded from.

Every event names its task and the moment it happened (``at``, timezone-aware). Each class has a
stable wire tag ``TYPE`` (``"dispatch.delivered"``...) used by the serializer's tagged union and by the
lifecycle's transition table. Adding an event type means: a class here, a line in ``EVENT_TYPES``, rows
in ``lifecycle.TRANSITIONS``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

import attrs

from .model import ChannelKind, ConsentMethod, Contact, ServiceMethod, ServiceRequest

__all__ = [
    "EVENT_TYPES",
    "FAILED_BY_CARRIER",
    "AddressSearchFailed",
    "AddressUpdated",
    "Cancelled",
    "ConsentObjected",
    "ConsentRecorded",
    "ContactUpdated",
    "DispatchDelivered",
    "DispatchFailed",
    "DispatchQueued",
    "DispatchRead",
    "DispatchSent",
    "DispatchTimedOut",
    "Enveloped",
    "Event",
    "FellBackToPost",
    "Filed",
    "Mailed",
    "NeedsAttention",
    "PostReturned",
    "PostSigned",
    "PrintRouted",
    "Printed",
    "PublicationStarted",
    "ResumedByStaff",
    "ReturnReason",
    "Served",
    "StoredEvent",
    "TaskCreated",
]


class ReturnReason(enum.Enum):
    """Why the post came back: refused, wrong address, unclaimed, moved..."""

    REFUSED = "refused"  # the recipient refused to sign
    ADDRESS_WRONG = "address_wrong"  # no such address / recipient unknown there
    UNCLAIMED = "unclaimed"  # failed attempts, not collected
    MOVED = "moved"


@attrs.frozen(kw_only=True)
class Event:
    """The base of every event: the task it belongs to and the moment it happened; ``TYPE`` names it in the store."""

    TYPE: ClassVar[str] = "event"
    task_id: str
    at: datetime


@attrs.frozen(kw_only=True)
class TaskCreated(Event):
    """A service task was created for ``request`` (the first event of every task)."""

    TYPE: ClassVar[str] = "task.created"
    request: ServiceRequest


@attrs.frozen(kw_only=True)
class DispatchQueued(Event):
    """The intent to send: committed (with the outbox row) before the provider is called."""

    TYPE: ClassVar[str] = "dispatch.queued"
    dispatch_id: str
    channel: str
    kind: ChannelKind
    contact: Contact
    centre_id: str | None = None


@attrs.frozen(kw_only=True)
class DispatchSent(Event):
    """The provider accepted a dispatch (``provider_ref``: its reference for it)."""

    TYPE: ClassVar[str] = "dispatch.sent"
    dispatch_id: str
    provider_ref: str | None = None


@attrs.frozen(kw_only=True)
class DispatchDelivered(Event):
    """The message reached the recipient's system (CPL Art. 90): the electronic service moment."""

    TYPE: ClassVar[str] = "dispatch.delivered"
    dispatch_id: str
    delivered_at: datetime
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class DispatchRead(Event):
    """The recipient read a dispatch, as the provider reports (``read_at``)."""

    TYPE: ClassVar[str] = "dispatch.read"
    dispatch_id: str
    read_at: datetime
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class DispatchFailed(Event):
    """A dispatch failed for good (``reason``), as its provider (or the carrier, ``failed_by``) reports."""

    TYPE: ClassVar[str] = "dispatch.failed"
    dispatch_id: str
    reason: str
    provider_event_id: str | None = None
    # who failed it when not the dispatch's own adapter: FAILED_BY_CARRIER for a print job whose waybill the
    # postal carrier refused (the job never reached the print centre: supervision does not count it there)
    failed_by: str | None = None


FAILED_BY_CARRIER = "carrier"


@attrs.frozen(kw_only=True)
class DispatchTimedOut(Event):
    """No outcome was reported for a dispatch before its deadline."""

    TYPE: ClassVar[str] = "dispatch.timed_out"
    dispatch_id: str


@attrs.frozen(kw_only=True)
class ConsentRecorded(Event):
    """The party consented to electronic service (Online Litigation Rules Arts. 29-30; Interpretation
    Art. 136), e.g. on a staff call (``via_dispatch`` names the call). With method
    ``accepted_without_objection`` and ``via_dispatch`` naming an electronic dispatch, the party accepted
    that completed e-service (replied that it received it, or acted on it) at ``given_at`` (Art. 29(4))."""

    TYPE: ClassVar[str] = "consent.recorded"
    method: ConsentMethod
    given_at: datetime
    via_dispatch: str | None = None


@attrs.frozen(kw_only=True)
class ConsentObjected(Event):
    """The party expressly refused electronic service (不同意电子送达): no consent by accepting a completed
    e-service can follow (Online Litigation Rules Art. 29(4)), and no e-service sent from ``objected_at`` is
    covered by any consent (CPL Art. 90). ``via_dispatch`` names the dispatch it answered, if any."""

    TYPE: ClassVar[str] = "consent.objected"
    objected_at: datetime
    via_dispatch: str | None = None


@attrs.frozen(kw_only=True)
class FellBackToPost(Event):
    """Electronic service failed or was not possible: the task goes to post (``reason``)."""

    TYPE: ClassVar[str] = "service.fell_back_to_post"
    reason: str


@attrs.frozen(kw_only=True)
class AddressUpdated(Event):
    """A (new) postal address to use, from assisted person search or a person."""

    TYPE: ClassVar[str] = "address.updated"
    contact: Contact
    source: str
    confidence: float = 1.0
    basis: str = ""  # why this address may be served at (SPC 2017 Opinion order; empty: set by a person)


@attrs.frozen(kw_only=True)
class ContactUpdated(Event):
    """A contact of any kind (a mobile, an e-mail, an account, a postal address) added to a task after it was
    submitted, or replacing one (``replaces``), with its provenance.

    ``source`` says where it came from (``staff``, a registry's name from assisted person search, ``portal``);
    ``actor`` who recorded it (a staff member's id, the party on a portal), ``note`` why. The task uses it at
    once (``Task.contacts_of``): a mobile goes on the waybill and opens electronic service where consent
    allows; a postal address becomes the address to serve at, as with ``address.updated``. A contact the
    party did not give or confirm (``contact.confirmed`` false) is an address the court found: e-service there
    takes effect only on the party's read or reply (SPC Online Litigation Rules Art. 31(2)).
    """

    TYPE: ClassVar[str] = "contact.updated"
    contact: Contact
    source: str
    replaces: Contact | None = None
    actor: str | None = None
    note: str = ""
    confidence: float = 1.0
    basis: str = ""  # why it may be used (assisted person search: the source's rank); empty: given by a person


@attrs.frozen(kw_only=True)
class AddressSearchFailed(Event):
    """Assisted person search found no better address (``reason``; ``basis``: the rule applied)."""

    TYPE: ClassVar[str] = "address.search_failed"
    reason: str
    basis: str = ""


@attrs.frozen(kw_only=True)
class PrintRouted(Event):
    """The print job was routed to print centre ``centre_id`` (``reason``: why that one)."""

    TYPE: ClassVar[str] = "print.routed"
    centre_id: str
    reason: str


@attrs.frozen(kw_only=True)
class Printed(Event):
    """The print centre printed the package of a dispatch."""

    TYPE: ClassVar[str] = "print.printed"
    dispatch_id: str
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class Enveloped(Event):
    """The print centre put the printed package in its envelope (a recorded fact; the state stays)."""

    TYPE: ClassVar[str] = "print.enveloped"
    dispatch_id: str
    enveloped_at: datetime
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class Mailed(Event):
    """The package was handed to the carrier under ``waybill``."""

    TYPE: ClassVar[str] = "post.mailed"
    dispatch_id: str
    waybill: str
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class PostSigned(Event):
    """Signed for (CPL Arts. 87-88): by the recipient, a co-resident adult, a mail room or an agent."""

    TYPE: ClassVar[str] = "post.signed"
    dispatch_id: str
    signed_at: datetime
    signer_role: str = "recipient"
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class PostReturned(Event):
    """The post came back undelivered (``returned_at``, ``reason``)."""

    TYPE: ClassVar[str] = "post.returned"
    dispatch_id: str
    returned_at: datetime
    reason: ReturnReason
    provider_event_id: str | None = None


@attrs.frozen(kw_only=True)
class PublicationStarted(Event):
    """A public notice was posted (CPL Art. 95); deemed served after the publication period."""

    TYPE: ClassVar[str] = "publication.started"
    published_at: datetime
    reason: str
    basis: str = ""  # which limb of CPL Art. 95: whereabouts unknown, or the other methods failed


@attrs.frozen(kw_only=True)
class Served(Event):
    """The task is legally served: how, on which basis, effective when."""

    TYPE: ClassVar[str] = "service.served"
    method: ServiceMethod
    basis: str
    effective_at: datetime
    dispatch_id: str | None = None


@attrs.frozen(kw_only=True)
class Filed(Event):
    """The proof of service went into the electronic case file (入卷)."""

    TYPE: ClassVar[str] = "service.filed"
    record_id: str
    filed_by: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Cancelled(Event):
    """The task was cancelled (``reason``)."""

    TYPE: ClassVar[str] = "task.cancelled"
    reason: str


@attrs.frozen(kw_only=True)
class NeedsAttention(Event):
    """A human must decide; the engine leaves the task alone until one does."""

    TYPE: ClassVar[str] = "task.needs_attention"
    reason: str


@attrs.frozen(kw_only=True)
class ResumedByStaff(Event):
    """A person sent a task that needed attention back to the start (electronic service first)."""

    TYPE: ClassVar[str] = "task.resumed"
    note: str = ""


EVENT_TYPES: tuple[type[Event], ...] = (
    TaskCreated,
    DispatchQueued,
    DispatchSent,
    DispatchDelivered,
    DispatchRead,
    DispatchFailed,
    DispatchTimedOut,
    ConsentRecorded,
    ConsentObjected,
    FellBackToPost,
    AddressUpdated,
    AddressSearchFailed,
    PrintRouted,
    Printed,
    Enveloped,
    Mailed,
    PostSigned,
    PostReturned,
    PublicationStarted,
    Served,
    Filed,
    Cancelled,
    NeedsAttention,
    ResumedByStaff,
    ContactUpdated,
)

EVENT_BY_TYPE: dict[str, type[Event]] = {cls.TYPE: cls for cls in EVENT_TYPES}


@attrs.frozen(kw_only=True)
class StoredEvent:
    """An event as committed: ``seq`` is its place in the whole store, ``task_seq`` in its task (1-based)."""

    seq: int
    task_seq: int
    event: Event
