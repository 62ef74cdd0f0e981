"""The policy: given a task, the configuration and "now", what to do next. Pure and table-tested.

:func:`decide` returns a :class:`Decision`: actions plus the moment to look at the task again if nothing
happens before. An action is either an event to record right away (falling back to post, a timeout,
service, publication, asking a person) or a request for I/O that the engine performs through the plugin
host (send on a channel, ask a provider for a dispatch's status, route a print job, search for an
address, file the proof of service).

The rules it applies, with their sources:

- electronic service needs consent that covers it (CPL Art. 90; Online Litigation Rules Arts. 29-30), as
  ``delivery_sdk.law.consent_status`` decides for every document kind of the request (given before the
  sending, not objected to, the document kind allowed electronically); without it, staff phone the party
  (Rules Art. 30) or, with ``serve_subject_to_acceptance``, the e-service is sent anyway and takes effect only
  when the party's acceptance of it is recorded (Rules Art. 29(4); ``law.accepted_service``); otherwise post;
- the service moment of e-service is the arrival at the recipient's system (CPL Art. 90) when the party
  gave or confirmed the electronic address (Rules Art. 31(1)); at an address it did not, arrival is not
  service: the "read" report is, as a rebuttable presumption (Rules Art. 31(2)), and a dispatch that was
  delivered but not read within the channel's response window serves nothing; when several channels
  carried the same content the earliest effective service counts (Rules Art. 31);
- postal service is effective on the signing date of the return receipt (CPL Art. 91), when the signer
  may receive for the party: the recipient, a co-resident adult family member (a person), the mail handler
  (an organisation), an appointed agent (CPL Art. 88); anyone else serves nothing and a person decides;
- a refusal (CPL Art. 89; SPC Provisions on Court Express Post Art. 11), or mail to a confirmed address
  that proved wrong (SPC 2017 Opinion), is deemed served on the day the mail came back; other returns lead
  to assisted person search and another postal round, up to ``max_postal_rounds``;
- publication (CPL Art. 95) when no address is left (whereabouts unknown) or the rounds are used up (the
  other methods failed), if ``auto_publication``; otherwise a person decides;
- publication is deemed served on the last day of 30 days (60 for a party abroad, CPL Art. 283) counted
  from the day after the (last) posting, rolled over a rest day with ``LawConfig.publication_rolls_over``
  (CPL Arts. 95 and 85; computed by ``delivery_sdk.law``); the service moment is 00:00 Beijing time of that
  day, so the task, its status, the proof of service and the deadlines all show that day.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from ._exceptions import IllegalTransition
from .adapters import AdapterRoute, adapter_order, adapter_routes, failover_adapter, first_adapter
from .channels import Receipt, ReceiptKind
from .events import (
    AddressSearchFailed,
    AddressUpdated,
    ContactUpdated,
    DispatchTimedOut,
    Event,
    FellBackToPost,
    NeedsAttention,
    PublicationStarted,
    ReturnReason,
    Served,
    StoredEvent,
)
from .law.addresses import choose_address, contact_basis, new_contacts
from .law.config import LawConfig
from .law.consent import (
    BASIS_EXCLUDED,
    BASIS_NO_CONSENT,
    ConsentStatus,
    accepted_service,
    consent_covers,
    consent_status,
)
from .law.holidays import CalendarNotCovered, beijing_date
from .law.service import BASIS_CONFIRMED_WRONG as _LAW_CONFIRMED_WRONG
from .law.service import BASIS_REFUSED as _LAW_REFUSED
from .law.service import (
    PUBLICATION_DAYS,
    PUBLICATION_DAYS_ABROAD,
    SignerRole,
    deemed_moment,
    electronic_service,
    postal_service,
    publication_service,
)
from .lifecycle import TERMINAL, Task, TaskState, receipt_contradicts, receipt_is_news, receipt_out_of_order
from .model import (
    ChannelKind,
    Contact,
    ContactKind,
    DispatchRecord,
    DispatchStatus,
    DocumentKind,
    PartyKind,
    ServiceMethod,
)
from .records import AddressCandidate, ServiceRecord

__all__ = [
    "Action",
    "Decision",
    "Emit",
    "File",
    "IngestOutcome",
    "PolicyConfig",
    "Poll",
    "Reconcile",
    "Route",
    "SearchAddress",
    "Send",
    "address_confirmed",
    "address_search_result",
    "decide",
    "file_with_service",
    "found_contacts",
    "implausible_report_needs_person",
    "ingest_outcome",
    "service_record",
    "service_record_id",
]

BASIS_ELECTRONIC = "CPL Art. 90; SPC Online Litigation Rules Art. 31"
BASIS_POSTAL = "CPL Art. 91"
BASIS_REFUSED = _LAW_REFUSED
BASIS_CONFIRMED_WRONG = _LAW_CONFIRMED_WRONG
BASIS_PUBLICATION = "CPL Art. 95"
# Why publication starts: the two limbs of CPL Art. 95.
BASIS_PUBLICATION_UNKNOWN = "CPL Art. 95 (whereabouts unknown: no address left to serve at)"
BASIS_PUBLICATION_FAILED = "CPL Art. 95 (service by the other methods failed: {rounds} postal round(s) came back)"
FINAL_POLL_MARGIN = timedelta(minutes=1)


def _default_windows() -> dict[ChannelKind, timedelta]:
    # a kind not listed (a plugin's) waits as long as its nature says: ServiceNature.default_window
    return {
        ChannelKind.SMS: timedelta(hours=2),
        ChannelKind.WECHAT: timedelta(hours=6),
        ChannelKind.EMAIL: timedelta(hours=24),
        ChannelKind.ESERVICE: timedelta(hours=24),
        ChannelKind.PHONE: timedelta(hours=48),
    }


def _check_poll_offsets(offsets: tuple[timedelta, ...]) -> None:
    if not offsets or any(not isinstance(o, timedelta) or o <= timedelta(0) for o in offsets):
        raise ValueError("poll_offsets must be one or more positive timedeltas")
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        raise ValueError("poll_offsets must increase (the last one repeats)")


@attrs.frozen(kw_only=True)
class PolicyConfig:
    """How the policy behaves; every field has a default a service centre can live with."""

    electronic_order: tuple[ChannelKind, ...] = (
        ChannelKind.ESERVICE,
        ChannelKind.SMS,
        ChannelKind.WECHAT,
        ChannelKind.EMAIL,
    )
    parallel: bool = False  # try all electronic channels at once instead of one after the other
    # electronic service only where consent covers it (law.consent_status); False: the integrator vouches for
    # consent, the policy does not ask (nor looks for acceptance: every e-service is taken as consented)
    require_consent: bool = True
    seek_consent_by_phone: bool = True  # without consent, staff phone the party first (when a PHONE channel exists)
    # Without consent (and no objection), send the e-service anyway, to the first electronic channel (all of them
    # with ``parallel``): it takes effect only if the party accepts it without objecting (SPC Online Litigation
    # Rules Art. 29(4)), recorded with ``client.record_acceptance``; if no acceptance comes within
    # ``acceptance_window`` (from sending), the task goes by post. False: no e-service without prior consent.
    serve_subject_to_acceptance: bool = False
    acceptance_window: timedelta = timedelta(days=3)
    response_window: Mapping[ChannelKind, timedelta] = attrs.field(factory=_default_windows)
    # the status-poll schedule: a dispatch's status is asked this long after its send (the last offset repeats);
    # `delivery-sdk worker --poll-after` / DELIVERY_SDK_POLL_AFTER. Callbacks make polls a fallback.
    poll_offsets: tuple[timedelta, ...] = attrs.field(
        default=(timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6)),
        validator=lambda _self, _attr, value: _check_poll_offsets(value),
    )
    print_window: timedelta = timedelta(days=2)
    mail_window: timedelta = timedelta(days=20)
    max_postal_rounds: int = 2
    auto_publication: bool = True
    # CPL Art. 95: 30 days; 60 days (CPL Art. 283) for parties abroad; any other whole number of days is
    # applied as given (no roll-over). Counted in days from the day after the posting (CPL Art. 85).
    publication_period: timedelta = timedelta(days=30)
    # The interpretive choices of the service law (publication roll-over, weekends, consent, reads), applied by
    # the policy wherever it calls delivery_sdk.law: docs/legal-reference.md, "Interpretive choices".
    law: LawConfig = attrs.field(factory=LawConfig)
    retry_after_error: timedelta = timedelta(minutes=10)
    home_province: str = "420000"  # breaks ties when an address without a division code is resolved
    # Which adapter of a kind serves a task, when a kind has several: kind -> routes (delivery_sdk.adapters:
    # an ordered list, primary first, or routing by court and prefecture; failover on transient failure).
    # Empty: each kind's first adapter in the host's order, no failover. Also kind value -> [names].
    adapters: Mapping[ChannelKind, tuple[AdapterRoute, ...]] = attrs.field(factory=dict, converter=adapter_routes)


# -- actions ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Emit:
    """Record this event now (no I/O)."""

    event: Event


@attrs.frozen(kw_only=True)
class Send:
    """Queue a dispatch on ``channel`` (the engine allocates the stable dispatch id)."""

    channel: str
    kind: ChannelKind
    centre_id: str | None = None


@attrs.frozen(kw_only=True)
class Poll:
    """Ask the provider what became of a dispatch."""

    dispatch_id: str


@attrs.frozen(kw_only=True)
class Reconcile:
    """A dispatch whose intent was committed but whose send result was not: ask before sending."""

    dispatch_id: str


@attrs.frozen(kw_only=True)
class Route:
    """Choose a print centre for the current address."""


@attrs.frozen(kw_only=True)
class SearchAddress:
    """Run assisted person search for a better postal address."""


@attrs.frozen(kw_only=True)
class File:
    """File the proof of service into the case file."""


Action = Emit | Send | Poll | Reconcile | Route | SearchAddress | File


@attrs.frozen(kw_only=True)
class Decision:
    """What the policy decided for a task: the actions to take now and when to look again (``due_at``; None: only on
    news)."""

    actions: tuple[Action, ...] = ()
    due_at: datetime | None = None  # look again then, if nothing happens before; None: only on news

    @property
    def io(self) -> bool:
        """True when an action needs I/O (anything but emitting events)."""
        return any(not isinstance(a, Emit) for a in self.actions)


# Enum members the hot paths compare with, read once: a member read through its class goes through
# EnumType's attribute hook, several times slower than a module global.
_PHONE = ChannelKind.PHONE
_QUEUED = DispatchStatus.QUEUED
_DELIVERED = DispatchStatus.DELIVERED
_READ = DispatchStatus.READ
_CREATED = TaskState.CREATED
_ELECTRONIC = TaskState.ELECTRONIC
_SERVED = TaskState.SERVED
_PUBLISHING = TaskState.PUBLISHING
_SIGNER_UNKNOWN = SignerRole.UNKNOWN.value
_AT_REST = TERMINAL | {TaskState.NEEDS_ATTENTION}  # the policy has nothing to do
_REACHED = frozenset({DispatchStatus.DELIVERED, DispatchStatus.READ})
_IN_POST = frozenset({TaskState.ROUTED, TaskState.PRINTED, TaskState.MAILED})


def _emit(event: Event, due_at: datetime) -> Decision:
    return Decision(actions=(Emit(event=event),), due_at=due_at)


def next_poll(record: DispatchRecord, now: datetime, offsets: tuple[timedelta, ...]) -> datetime:
    """The first poll moment after ``now`` on the schedule sent_at + offsets (the last offset repeats)."""
    start = record.sent_at or record.queued_at
    moment = start
    for offset in offsets:
        moment = start + offset
        if moment > now:
            return moment
    step = offsets[-1]
    elapsed = now - moment
    periods = int(elapsed / step) + 1
    return moment + periods * step


def _wake(record: DispatchRecord, now: datetime, deadline: datetime, offsets: tuple[timedelta, ...]) -> datetime:
    """When to look at a dispatch next: its next poll, but always once more just before the deadline, so a
    report that arrived since the last poll is not mistaken for silence."""
    moment = next_poll(record, now, offsets)
    last_chance = deadline - FINAL_POLL_MARGIN
    if moment >= deadline:
        moment = last_chance if last_chance > now else deadline
    return moment


def _poll_due(record: DispatchRecord, now: datetime, offsets: tuple[timedelta, ...]) -> bool:
    start = record.sent_at or record.queued_at
    return now >= start + offsets[0]


def _same_address(a: Contact, b: Contact) -> bool:
    return a.kind is b.kind and a.value == b.value


def address_confirmed(task: Task, record: DispatchRecord) -> bool:
    """Whether the party gave or confirmed the electronic address ``record`` went to (Rules Art. 31(1)).

    - the contact is marked ``confirmed`` (the address-confirmation form, Interpretation Art. 136);
    - the request carries the party's consent: it covers the electronic addresses submitted with it (the
      party's own and its representatives'), as the integrator submits the addresses the consent names;
    - consent obtained later on a staff call (Rules Art. 30) confirms the number the call reached.

    Anything else (no consent, or consent by phone and an address the party never named) is an address the
    court verified but the party did not confirm: Rules Art. 31(2). So is a contact added to the task after
    submission (``contact.updated``: found by staff or by assisted person search) unless it is marked
    ``confirmed``: the party's consent lets the court serve electronically (CPL Art. 90), and it may serve at
    that address, but the service takes effect only on the party's read or reply (Art. 31(2)).
    """
    contact = record.contact
    if contact.confirmed:
        return True
    party = task.request.party
    if party.consent is not None:
        return any(_same_address(contact, c) for c in party.contacts_of(contact.kind))
    if task.consent is None:
        return False
    return any(
        d.kind is ChannelKind.PHONE and d.status in _REACHED and _same_address(contact, d.contact)
        for d in task.dispatches
    )


def _pending_acceptance(task: Task, record: DispatchRecord, config: PolicyConfig) -> bool:
    """Whether ``record``'s e-service went out without consent that covered it when it was sent (CPL Art. 90;
    ``law.consent_covers``): it can then take effect only by the party's acceptance (Rules Art. 29(4)).
    Never, when the policy does not require consent. Cheap: comparisons only (asked per decision)."""
    return config.require_consent and not consent_covers(
        task.consent, record.queued_at, objected_at=task.objected_at, config=config.law
    )


def _awaits(task: Task, record: DispatchRecord, pending: bool) -> bool:
    """Delivered, but no service yet: sent without consent and not accepted (Rules Art. 29(4)), or at an
    address the party did not confirm and not read (Rules Art. 31(2))."""
    status = record.status
    if pending:
        return (status is _DELIVERED or status is _READ) and record.accepted_at is None
    return (
        status is _DELIVERED
        and record.kind is not _PHONE
        and record.read_at is None
        and record.accepted_at is None
        and not address_confirmed(task, record)
    )


def _earliest_service(task: Task, now: datetime, config: PolicyConfig) -> Served | None:
    """The earliest effective service among everything that reached the recipient (Rules Art. 31), as the
    event recorded at ``now``."""
    best: tuple[datetime, ServiceMethod, str, str] | None = None
    law = config.law
    for d in task.dispatches:
        if d.delivered_at is None:
            continue
        if d.kind is _PHONE:
            continue  # a staff call notifies and seeks consent; it carries no document, so it serves nothing
        if d.kind.electronic:
            accepted = d.accepted_at
            if _pending_acceptance(task, d, config):
                # sent without consent: only the party's acceptance without objection makes it service
                # (Rules Art. 29(4)), at the moment law.accepted_service fixes
                if accepted is None or not consent_covers(
                    None, d.queued_at, accepted_at=accepted, objected_at=task.objected_at, config=law
                ):
                    continue
                deemed = accepted_service(d.delivered_at, accepted, config=law)
            else:
                found = electronic_service(
                    d.delivered_at,
                    address_confirmed=address_confirmed(task, d),
                    read_at=d.read_at,
                    replied_at=accepted,  # a recorded acceptance is the reply or act of Rules Art. 31(2)(1)
                    config=law,
                )
                if found is None:
                    continue  # delivered to an unconfirmed address and not read: not service (Rules Art. 31(2))
                deemed = found
            candidate = (deemed.effective_at, ServiceMethod.ELECTRONIC, deemed.basis, d.dispatch_id)
        elif d.kind is ChannelKind.PRINT and d.status is DispatchStatus.DELIVERED:
            party = task.request.party
            signed = postal_service(
                d.delivered_at,
                d.detail,  # the signer's role as the carrier reported it (PostSigned.signer_role)
                organisation=party.kind is PartyKind.ORGANISATION,
                agents=[a.role for a in party.agents],
            )
            if signed is None:
                continue  # signed by someone who may not receive for the party: not service (CPL Art. 88)
            candidate = (signed.effective_at, ServiceMethod.POSTAL, signed.basis, d.dispatch_id)
        else:
            continue
        if best is None or candidate[0] < best[0]:
            best = candidate
    if best is None:
        return None
    at, method, basis, dispatch_id = best
    return Served(task_id=task.task_id, at=now, method=method, basis=basis, effective_at=at, dispatch_id=dispatch_id)


def _electronic_options(task: Task, config: PolicyConfig, channels: _Channels) -> list[ChannelKind]:
    """The electronic channels that can carry the documents to this party (staff calls carry none)."""
    order = task.request.channels or config.electronic_order
    reachable = task.reachable
    options = [k for k in order if k is not _PHONE and k in channels and k.contact_kind in reachable]
    routes = config.adapters
    if routes:  # a kind whose routes give this task no adapter is not an option for it
        options = [k for k in options if k not in routes or adapter_order(task, k, routes, channels)]
    return options


# the adapters the host registered: kind -> its adapter's name, or its adapters' names in the host's order
_Channels = Mapping[ChannelKind, str | Sequence[str]]


_CONSENT_NOT_ASKED = ConsentStatus(
    allowed=True, basis="PolicyConfig(require_consent=False)", reason="consent not required by the policy"
)


def _consent(task: Task, now: datetime, config: PolicyConfig) -> ConsentStatus:
    """Whether consent covers e-service of every document of the task sent at ``now``: ``law.consent_status``
    (CPL Art. 90; Rules Arts. 29-30; ``LawConfig``), once per document kind, the first refusal answering.
    Asked only when the policy is about to send (once per task and electronic round), not per poll."""
    if not config.require_consent:
        return _CONSENT_NOT_ASKED
    documents = task.request.documents
    consent, law, objected = task.consent, config.law, task.objected_at
    if len(documents) == 1:  # the usual request: no set to build
        return consent_status(consent, documents[0].kind, at=now, config=law, objected_at=objected)
    status = _CONSENT_NOT_ASKED
    seen: set[DocumentKind] = set()
    for document in documents:
        kind = document.kind
        if kind in seen:
            continue
        seen.add(kind)
        status = consent_status(consent, kind, at=now, config=law, objected_at=objected)
        if not status.allowed:
            return status
    return status


def _why_not(status: ConsentStatus) -> str:
    """The fallback reason for a refusal of ``law.consent_status``, with its basis unless there is no consent."""
    return status.reason if status.basis == BASIS_NO_CONSENT else f"{status.reason} ({status.basis})"


def _can_call(task: Task, config: PolicyConfig, channels: _Channels) -> bool:
    """Whether staff can phone the party to seek consent (Rules Art. 30: consent confirmed by phone)."""
    return (
        config.seek_consent_by_phone
        and ChannelKind.PHONE in channels
        and ContactKind.MOBILE in task.reachable
        and first_adapter(task, ChannelKind.PHONE, config.adapters, channels) is not None
    )


# Actions are frozen values: the ones the policy asks for again and again are built once. The engine tests
# whether it already performed an action this step (``in``), which an identical object answers at once.
_SENDS: dict[tuple[str, ChannelKind], Send] = {}
_NOTHING = Decision()
_FILE = (File(),)


def _send(channel: str, kind: ChannelKind) -> Send:
    action = _SENDS.get((channel, kind))
    if action is None:
        action = _SENDS[(channel, kind)] = Send(channel=channel, kind=kind)
    return action


def _send_electronic(
    task: Task, config: PolicyConfig, kinds: list[ChannelKind], channels: _Channels, now: datetime
) -> Decision:
    routes = config.adapters
    sends = []
    for kind in kinds:
        name = failover_adapter(task, kind, routes, channels) if routes else None
        name = name or first_adapter(task, kind, routes, channels)
        if name is not None:  # always, for a kind _electronic_options or _can_call offered
            sends.append(_send(name, kind))
    return Decision(actions=tuple(sends), due_at=now)


def _failovers(task: Task, now: datetime, config: PolicyConfig, channels: _Channels) -> Decision | None:
    """The sends that fail a kind over to its next adapter (``delivery_sdk.adapters``): the round's last
    dispatch of the kind was failed after transient failures and the task's route names another adapter.
    Staff calls fail over whatever the consent (they seek it); e-service when it may still be sent."""
    kinds = [
        k
        for k in {d.kind: None for d in task.electronic_dispatches}
        if failover_adapter(task, k, config.adapters, channels)
    ]
    if not kinds:
        return None
    if any(k is not _PHONE for k in kinds):
        status = _consent(task, now, config)
        if not status.allowed and not (
            config.serve_subject_to_acceptance and task.objected_at is None and status.basis != BASIS_EXCLUDED
        ):
            kinds = [k for k in kinds if k is _PHONE]
    return _send_electronic(task, config, kinds, channels, now) if kinds else None


def decide(
    task: Task,
    now: datetime,
    config: PolicyConfig,
    channels: Mapping[ChannelKind, str | Sequence[str]],
) -> Decision:
    """The next step for ``task`` at ``now``. ``channels`` maps each available kind to its adapter's name, or
    to its adapters' names in the host's order (which one serves: ``config.adapters``, :mod:`delivery_sdk.adapters`)."""
    state = task.state
    if state in _AT_REST:
        return _NOTHING
    if state is _SERVED:
        return Decision(actions=_FILE, due_at=now + config.retry_after_error)
    served = _earliest_service(task, now, config)
    if state is _PUBLISHING:
        return _publishing(task, now, config, served)
    if served is not None:
        return _emit(served, now)
    if state is _CREATED:
        return _created(task, now, config, channels)
    if state is _ELECTRONIC:
        return _electronic(task, now, config, channels)
    if state is TaskState.POSTAL:
        return _postal(task, now, config)
    if state in _IN_POST:
        return _in_post(task, now, config)
    if state is TaskState.RETURNED:
        return _returned(task, now, config)
    raise AssertionError(f"no policy for state {state}")  # pragma: no cover - every state is handled


def _publishing(task: Task, now: datetime, config: PolicyConfig, served: Served | None) -> Decision:
    """Publication is deemed served on its day (CPL Art. 95); a service that reached the party meanwhile
    counts if it took effect on an earlier day, or on the same day, as an actual service (Rules Art. 31)."""
    assert task.published_at is not None
    effective, basis = publication_effective(task.published_at, config)
    if now < effective or (served is not None and beijing_date(served.effective_at) <= beijing_date(effective)):
        return Decision(due_at=effective) if served is None else _emit(served, now)
    publication = Served(
        task_id=task.task_id, at=now, method=ServiceMethod.PUBLICATION, basis=basis, effective_at=effective
    )
    return _emit(publication, now)


def publication_effective(published_at: datetime, config: PolicyConfig) -> tuple[datetime, str]:
    """The moment publication is deemed served, and on which basis (CPL Arts. 95, 283 and 85, by
    ``delivery_sdk.law``): 00:00 Beijing time of the period's last day, the service date.

    The period is counted from the day after the (last) posting; 30 days (CPL Art. 95), or 60 for parties
    abroad (``publication_period`` of 60 days, CPL Art. 283); a last day on a rest day moves to the next
    working day when ``config.law.publication_rolls_over``. For a year the holiday calendar does not cover,
    the period is not rolled over, and the basis says so. Any other ``publication_period`` is applied as
    given, in whole days, without roll-over.
    """
    period = config.publication_period
    law = config.law
    if period not in _STATUTORY_PUBLICATION:
        day = beijing_date(published_at) + timedelta(days=max(period.days, 1))
        return deemed_moment(day), f"{BASIS_PUBLICATION} (period of {max(period.days, 1)} days as configured)"
    abroad = period == _PUBLICATION_ABROAD
    try:
        deemed = publication_service(published_at, config=law, abroad=abroad)
    except CalendarNotCovered:
        deemed = publication_service(
            published_at, config=attrs.evolve(law, publication_rolls_over=False), abroad=abroad
        )
        return (
            deemed.effective_at,
            f"{deemed.basis} (no holiday calendar for that year: the period was not rolled over)",
        )
    return deemed.effective_at, deemed.basis


_PUBLICATION_ABROAD = timedelta(days=PUBLICATION_DAYS_ABROAD)
_STATUTORY_PUBLICATION = frozenset({timedelta(days=PUBLICATION_DAYS), _PUBLICATION_ABROAD})


def _created(task: Task, now: datetime, config: PolicyConfig, channels: _Channels) -> Decision:
    options = _electronic_options(task, config, channels)
    if not options:
        reason = "no usable electronic channel or contact"
        return _emit(FellBackToPost(task_id=task.task_id, at=now, reason=reason), now)
    status = _consent(task, now, config)
    if status.allowed:
        return _send_electronic(task, config, options if config.parallel else options[:1], channels, now)
    if status.basis != BASIS_EXCLUDED and task.objected_at is None:
        # no electronic service without consent (CPL Art. 90): seek it by phone first (Rules Art. 30) ...
        if _can_call(task, config, channels):
            return _send_electronic(task, config, [ChannelKind.PHONE], channels, now)
        # ... or serve subject to the party's acceptance (Rules Art. 29(4))
        if config.serve_subject_to_acceptance:
            return _send_electronic(task, config, options if config.parallel else options[:1], channels, now)
    return _emit(FellBackToPost(task_id=task.task_id, at=now, reason=_why_not(status)), now)


def _electronic(task: Task, now: datetime, config: PolicyConfig, channels: _Channels) -> Decision:
    if config.adapters:
        failover = _failovers(task, now, config, channels)
        if failover is not None:
            return failover
    actions: list[Action] = []
    wake: list[datetime] = []
    round_ = task.electronic_dispatches
    awaited_read = awaited_acceptance = False
    objected = task.objected_at is not None
    for d in round_:
        pending = d.kind is not _PHONE and _pending_acceptance(task, d, config)
        if pending and objected:
            continue  # sent without consent, and the party objected: it can never take effect (Rules Art. 29(4))
        waits = _awaits(task, d, pending)
        if d.status.settled and not waits:
            continue
        if d.status is _QUEUED:
            actions.append(Reconcile(dispatch_id=d.dispatch_id))
            wake.append(now + config.retry_after_error)
            continue
        if waits and pending:
            window = config.acceptance_window  # delivered without consent: the party may yet accept it
        else:
            window = config.response_window.get(d.kind) or d.kind.nature.default_window
        deadline = (d.sent_at or d.queued_at) + window
        if waits and now >= deadline:
            # delivered, never read (or never accepted): it served nothing, and no more is expected of it
            if pending:
                awaited_acceptance = True
            else:
                awaited_read = True
            continue
        if now >= deadline:
            actions.append(Emit(event=DispatchTimedOut(task_id=task.task_id, at=now, dispatch_id=d.dispatch_id)))
            wake.append(now)
            continue
        if _poll_due(d, now, config.poll_offsets):
            actions.append(Poll(dispatch_id=d.dispatch_id))
        wake.append(_wake(d, now, deadline, config.poll_offsets))
    if actions or wake:
        return Decision(actions=tuple(actions), due_at=min(wake))
    sent = {d.kind for d in round_}
    # a kind counts as tried while its dispatch went to the party's current contact of that kind: one added
    # or replaced since (contact.updated) is tried in its turn
    tried = sent if not task.contacts_added else {d.kind for d in round_ if not _superseded(task, d)}
    remaining = [k for k in _electronic_options(task, config, channels) if k not in tried]
    started = any(k is not ChannelKind.PHONE for k in sent)
    status = _consent(task, now, config)
    if not status.allowed:
        subject_to_acceptance = config.serve_subject_to_acceptance and not objected and status.basis != BASIS_EXCLUDED
        if subject_to_acceptance and not started and remaining:
            # the staff call did not obtain consent: serve subject to the party's acceptance (Rules Art. 29(4))
            return _send_electronic(task, config, remaining if config.parallel else remaining[:1], channels, now)
        if awaited_acceptance:
            reason = (
                "no electronic service took effect: the party did not accept the e-service sent without its "
                "consent within the acceptance window (SPC Online Litigation Rules Art. 29(4))"
            )
        elif not started and status.basis == BASIS_NO_CONSENT:
            reason = "no consent to electronic service (the staff call did not obtain it)"
        else:
            reason = _why_not(status)
        return _emit(FellBackToPost(task_id=task.task_id, at=now, reason=reason), now)
    if remaining:
        if not config.parallel:
            return _send_electronic(task, config, remaining[:1], channels, now)
        if not started or tried != sent:  # consent just came from a call, or a contact was added: at once
            return _send_electronic(task, config, remaining, channels, now)
    reason = "every electronic channel failed"
    if awaited_read:
        reason = (
            "no electronic service took effect: delivered only to addresses the party did not confirm, "
            "and not read within the response window (SPC Online Litigation Rules Art. 31(2))"
        )
    return _emit(FellBackToPost(task_id=task.task_id, at=now, reason=reason), now)


def _superseded(task: Task, record: DispatchRecord) -> bool:
    """Whether ``record`` went to a contact the party no longer has first of its kind (one was added or
    replaced since: contact.updated)."""
    current = task.first_contact(record.kind.contact_kind)
    return current is not None and current.value != record.contact.value


def _postal(task: Task, now: datetime, config: PolicyConfig) -> Decision:
    if task.postal_address is None or task.postal_address.value in task.tried_addresses:
        if not task.address_search_failed:
            return Decision(actions=(SearchAddress(),), due_at=now + config.retry_after_error)
        return _give_up_on_post(task, now, config, "no postal address to try", BASIS_PUBLICATION_UNKNOWN)
    return Decision(actions=(Route(),), due_at=now + config.retry_after_error)


def _current_postal(task: Task) -> DispatchRecord | None:
    return task.dispatch(task.postal_dispatch_id) if task.postal_dispatch_id else None


def _in_post(task: Task, now: datetime, config: PolicyConfig) -> Decision:
    record = _current_postal(task)
    if record is None:
        assert task.centre_id is not None
        return Decision(
            actions=(Send(channel=task.centre_id, kind=ChannelKind.PRINT, centre_id=task.centre_id),), due_at=now
        )
    if record.status is DispatchStatus.QUEUED:
        return Decision(actions=(Reconcile(dispatch_id=record.dispatch_id),), due_at=now + config.retry_after_error)
    if record.status is DispatchStatus.DELIVERED:  # signed, but law.postal_service found it no service
        signer = record.detail
        if not signer or signer == _SIGNER_UNKNOWN:
            reason = (
                "the carrier did not report who signed the return receipt, so it does not show service on the "
                "party (CPL Art. 88): check the receipt, confirm receipt with the party or serve again"
            )
        else:
            reason = (
                f"the return receipt was signed by {signer}, who may not receive for this party "
                "(CPL Art. 88): confirm receipt with the party or serve again"
            )
        return _emit(NeedsAttention(task_id=task.task_id, at=now, reason=reason), now)
    if task.state is TaskState.MAILED:
        window, what = config.mail_window, "the carrier reported no outcome"
    else:
        window, what = config.print_window, f"print centre {record.centre_id} did not print and mail"
    deadline = (record.sent_at or record.queued_at) + window
    if now >= deadline:
        return _emit(NeedsAttention(task_id=task.task_id, at=now, reason=f"{what} within {window.days} days"), now)
    actions: tuple[Action, ...] = ()
    if _poll_due(record, now, config.poll_offsets):
        actions = (Poll(dispatch_id=record.dispatch_id),)
    return Decision(actions=actions, due_at=_wake(record, now, deadline, config.poll_offsets))


def _returned(task: Task, now: datetime, config: PolicyConfig) -> Decision:
    reason = task.last_return_reason
    returned_at = task.last_return_at or now
    address = task.postal_address
    if reason is ReturnReason.REFUSED or (address is not None and address.confirmed):
        basis = BASIS_REFUSED if reason is ReturnReason.REFUSED else BASIS_CONFIRMED_WRONG
        return _emit(
            Served(
                task_id=task.task_id,
                at=now,
                method=ServiceMethod.POSTAL,
                basis=basis,
                effective_at=returned_at,
                dispatch_id=task.postal_dispatch_id,
            ),
            now,
        )
    if task.postal_rounds < config.max_postal_rounds and not task.address_search_failed:
        # assisted person search for a better address, then the next postal round (SPC 2017 Opinion)
        return Decision(actions=(SearchAddress(),), due_at=now + config.retry_after_error)
    why = f"mail returned ({reason.value if reason else 'unknown'}) after {task.postal_rounds} round(s)"
    if task.address_search_failed:
        basis = BASIS_PUBLICATION_UNKNOWN
    else:
        basis = BASIS_PUBLICATION_FAILED.format(rounds=task.postal_rounds)
    return _give_up_on_post(task, now, config, why, basis)


def _give_up_on_post(task: Task, now: datetime, config: PolicyConfig, why: str, basis: str) -> Decision:
    """Publication (CPL Art. 95) when ``auto_publication``; otherwise a person decides (the reason says on
    which ground publication would rest)."""
    if config.auto_publication and task.state in (TaskState.POSTAL, TaskState.RETURNED):
        return _emit(PublicationStarted(task_id=task.task_id, at=now, published_at=now, reason=why, basis=basis), now)
    return _emit(NeedsAttention(task_id=task.task_id, at=now, reason=f"{why}; publication possible: {basis}"), now)


# -- ingest and filing: what a report does to a task, and when the proof of service is filed ----------------
#
# Pure decisions the engine acts on (tests/test_policy_ingest_filing.py has their tables). Kept apart from
# decide() above.

# A task whose service is decided (or that was cancelled): a late report is evidence only, never a person's work.
SETTLED_STATES = frozenset({TaskState.SERVED, TaskState.FILED, TaskState.CANCELLED})


class IngestOutcome(enum.Enum):
    """What became of an ingested report: accepted, out of order, duplicate, late, unknown dispatch or refused."""

    ACCEPTED = "accepted"  # recorded; the engine will act on it
    OUT_OF_ORDER = "out_of_order"  # recorded although an earlier stage was never reported (read before delivered)
    DUPLICATE = "duplicate"  # this provider event (or this exact fact) was recorded before; nothing written
    LATE = "late"  # recorded for the evidence, but the task had already moved on; no effect on service
    UNKNOWN_DISPATCH = "unknown_dispatch"  # no such dispatch in this store; nothing written
    # not the dispatch's own adapter, or a report that adapter cannot make: no task changed; the refusal is
    # counted (supervision's refused receipts)
    REFUSED = "refused"
    # a time before the dispatch was queued or after now (give or take EngineConfig.clock_skew): not applied;
    # the task goes to a person (needs attention) unless it was already served; counted like a refusal
    IMPLAUSIBLE_TIME = "implausible_time"


def ingest_outcome(task: Task, record: DispatchRecord, receipt: Receipt, *, keyed: bool) -> IngestOutcome:
    """What a believed report (its source allowed, its time plausible) on ``record``, a dispatch of ``task``,
    comes to, before it is applied: DUPLICATE (nothing to record), LATE (evidence only: the service is decided,
    or the report contradicts the dispatch's settled outcome), OUT_OF_ORDER or ACCEPTED.

    ``keyed``: the report carries a provider event id (not seen before), so a report contradicting the
    outcome is recorded as evidence; without one, it is taken for a repeat. The lifecycle may still refuse to
    apply a recorded report: then it is LATE too (the engine's part).
    """
    contradicts = receipt_contradicts(record, receipt.kind)
    if not receipt_is_news(record, receipt) and not (contradicts and keyed):
        return IngestOutcome.DUPLICATE
    if task.state in SETTLED_STATES or contradicts or (receipt.kind is ReceiptKind.FAILED and record.status.settled):
        return IngestOutcome.LATE
    if receipt_out_of_order(record, receipt.kind):
        return IngestOutcome.OUT_OF_ORDER
    return IngestOutcome.ACCEPTED


def implausible_report_needs_person(task: Task, reason: str) -> bool:
    """Whether a report whose time was not believed sends ``task`` to a person: not once its service is
    decided (it is evidence then), and not twice for the same reason (a retried report asks nobody again)."""
    return task.state not in SETTLED_STATES and task.attention_reason != reason


def file_with_service(served_now: bool, filing_sinks: bool) -> bool:
    """Whether the proof of service is filed in the same write as the service (True) or after that write
    commits (False). A case-file sink only ever receives a committed service, so with sinks registered a
    service recorded in this very write (``served_now``) is filed after its commit; without sinks nothing
    leaves the engine, and the filing commits with the service."""
    return not served_now or not filing_sinks


def service_record(task: Task, timeline: tuple[StoredEvent, ...], proof_bundle: dict[str, Any] | None) -> ServiceRecord:
    """The proof of service of a served ``task`` to file: how, when and on which basis it was served, with
    its ``timeline`` (its events) and the inclusion proofs (``proof_bundle``) when the store keeps them."""
    if task.served_method is None or task.served_at is None or task.served_basis is None:
        raise IllegalTransition(task.state.value, "filing a task that is not served", task.task_id)
    return ServiceRecord(
        record_id=service_record_id(task.task_id),
        task_id=task.task_id,
        case=task.request.case,
        party_id=task.request.party.party_id,
        documents=task.request.documents,
        method=task.served_method,
        basis=task.served_basis,
        effective_at=task.served_at,
        dispatch_id=task.served_dispatch_id,
        timeline=timeline,
        proof_bundle=proof_bundle,
    )


def service_record_id(task_id: str) -> str:
    """The stable id of a task's proof of service (a sink that receives it twice can deduplicate)."""
    return f"{task_id}:proof"


# -- assisted person search: what the candidates found come to -------------------------------------------------
#
# The ranking and the bases are the law's (delivery_sdk.law.addresses); these turn them into the events the
# engine records (tests/test_policy_ingest_filing.py).


def found_contacts(task: Task, now: datetime, candidates: Sequence[AddressCandidate]) -> list[ContactUpdated]:
    """The best new contact of each electronic kind among ``candidates`` (a registry's phone, say), as
    ``contact.updated`` events with their source and basis; postal addresses and contacts the task has are
    left out."""
    known = {kind: [c.value for c in task.contacts_of(kind)] for kind in ContactKind}
    return [
        ContactUpdated(
            task_id=task.task_id,
            at=now,
            contact=attrs.evolve(candidate.contact, source=candidate.source),
            source=candidate.source,
            confidence=candidate.confidence,
            basis=contact_basis(kind, candidate.source),
        )
        for kind, candidate in new_contacts(candidates, known).items()
    ]


def address_search_result(task: Task, now: datetime, candidates: Sequence[AddressCandidate]) -> Event:
    """What assisted person search's ``candidates`` come to for ``task``: the address the law puts first
    (``address.updated`` with its basis); a person to choose between equally ranked different addresses
    (``task.needs_attention``, naming the sources, never the addresses); or no untried address left
    (``address.search_failed``, which leads to publication)."""
    choice = choose_address(candidates, task.tried_addresses)
    if choice.best is None:
        reason = f"no untried address among {len(candidates)} candidate(s)"
        return AddressSearchFailed(task_id=task.task_id, at=now, reason=reason, basis=choice.basis)
    if choice.needs_person:
        sources = ", ".join(sorted({c.source for c in (choice.best, *choice.rivals)}))
        count = len(choice.rivals) + 1
        reason = f"assisted person search found {count} equally ranked addresses ({sources}); choose one"
        return NeedsAttention(task_id=task.task_id, at=now, reason=reason)
    best = choice.best
    return AddressUpdated(
        task_id=task.task_id,
        at=now,
        contact=best.contact,
        source=best.source,
        confidence=best.confidence,
        basis=choice.basis,
    )
