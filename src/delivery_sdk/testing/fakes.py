"""Fakes that behave like the real world, scripted: channels, print centres, the carrier, sinks."""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs

from .._exceptions import ChannelError, TransientChannelError
from ..channels import BaseChannel, PrintCentreInfo, Receipt, ReceiptKind, SendResult, StatusReport
from ..clock import Clock, VirtualClock
from ..events import StoredEvent
from ..hookspecs import hookimpl
from ..model import ChannelKind, Contact, Dispatch, Party
from ..plugins import ChannelRegistry, PrintCentreRegistry
from ..records import AddressCandidate, EvidenceBatch, ServiceRecord

__all__ = [
    "FakeAddressSource",
    "FakeCarrier",
    "FakeChannel",
    "FakePrintCentre",
    "Outcome",
    "RecordingSink",
    "channels_plugin",
    "fake_waybill",
    "print_centres_plugin",
]


@attrs.frozen(kw_only=True)
class Outcome:
    """What a fake provider does with one dispatch.

    ``kind``: delivered, read, failed, no_answer, refused (not accepted), transient (raise first),
    signed, returned. ``after``: how long after sending the outcome happens (virtual time).
    """

    kind: str
    after: timedelta = timedelta(0)
    read_after: timedelta | None = None
    reason: str | None = None
    times: int = 1  # for transient: how many sends fail before ``then``
    then: Outcome | None = None
    signer_role: str | None = "recipient"  # None: the carrier does not say who signed

    @classmethod
    def delivered(cls, after: timedelta = timedelta(0), *, read_after: timedelta | None = None) -> Outcome:
        """Delivered ``after`` the send (and read ``read_after`` the delivery, when given)."""
        return cls(kind="delivered", after=after, read_after=read_after)

    @classmethod
    def read(cls, after: timedelta = timedelta(0)) -> Outcome:
        """Delivered and read at once: a read receipt with no separate delivery report."""
        return cls(kind="read", after=after)

    @classmethod
    def failed(cls, reason: str = "undeliverable", after: timedelta = timedelta(0)) -> Outcome:
        """Accepted, then failed ``after`` the send for ``reason``."""
        return cls(kind="failed", after=after, reason=reason)

    @classmethod
    def consented(cls, after: timedelta = timedelta(minutes=10)) -> Outcome:
        """A staff call that reached the party, who consented to electronic service."""
        return cls(kind="consented", after=after)

    @classmethod
    def no_answer(cls) -> Outcome:
        """Accepted, then nothing ever comes back: the policy's response window times out."""
        return cls(kind="no_answer")

    @classmethod
    def refused(cls, reason: str = "rejected by the provider") -> Outcome:
        """Not accepted by the provider, for ``reason``."""
        return cls(kind="refused", reason=reason)

    @classmethod
    def transient(cls, times: int = 1, then: Outcome | None = None) -> Outcome:
        """A transient error ``times`` times, then ``then`` (by default: delivered)."""
        return cls(kind="transient", times=times, then=then or cls.delivered())

    @classmethod
    def signed(cls, after: timedelta = timedelta(days=2), *, signer_role: str | None = "recipient") -> Outcome:
        """Post signed for ``after`` the mailing (by ``signer_role``)."""
        return cls(kind="signed", after=after, signer_role=signer_role)

    @classmethod
    def returned(cls, reason: str = "address_wrong", after: timedelta = timedelta(days=3)) -> Outcome:
        """Post returned ``after`` the mailing, for ``reason``."""
        return cls(kind="returned", after=after, reason=reason)


Handler = Callable[[Dispatch], Outcome]
_ids = itertools.count(1)


class _Scripted(BaseChannel):
    """Outcomes from a FIFO (``enqueue``) or, when it is empty, from ``handler``/``default``."""

    def __init__(
        self, *, name: str, kind: ChannelKind, clock: Clock | None, handler: Handler | None, default: Outcome | None
    ) -> None:
        self.name = name
        self.kind = kind
        self.clock: Clock = clock or VirtualClock()
        self._follows_host = clock is None  # registered through a plugin, it takes the client's clock
        self.handler = handler
        self.default = default
        self._queue: deque[Outcome] = deque()

    def enqueue(self, *outcomes: Outcome) -> None:
        self._queue.extend(outcomes)

    def unused(self) -> list[Outcome]:
        """Scripted outcomes nobody consumed (the pytest fixtures fail a test that leaves some)."""
        return list(self._queue)

    def _next(self, dispatch: Dispatch) -> Outcome:
        if self._queue:
            return self._queue.popleft()
        if self.handler is not None:
            return self.handler(dispatch)
        if self.default is not None:
            return self.default
        raise AssertionError(
            f"{self.name}: unscripted dispatch {dispatch.dispatch_id}; enqueue an Outcome or give a default"
        )


class FakeChannel(_Scripted):
    """A fake electronic channel. Keeps ``history`` (every send call) and the idempotency keys it saw."""

    def __init__(
        self,
        name: str = "fake-sms",
        kind: ChannelKind = ChannelKind.SMS,
        *,
        clock: Clock | None = None,
        handler: Handler | None = None,
        default: Outcome | None = None,
    ) -> None:
        super().__init__(name=name, kind=kind, clock=clock, handler=handler, default=default)
        self.history: list[Dispatch] = []
        self._sent: dict[str, tuple[Outcome, datetime, str]] = {}
        self._pending_transient: dict[str, Outcome] = {}

    @property
    def idempotency_keys(self) -> list[str]:
        """The dispatch id of every send call, in order (a resend shows twice)."""
        return [d.dispatch_id for d in self.history]

    def _receipts(self, dispatch_id: str, now: datetime) -> tuple[Receipt, ...]:
        outcome, sent_at, ref = self._sent[dispatch_id]
        happened = sent_at + outcome.after
        if now < happened:
            return ()
        if outcome.kind == "delivered":
            out = [
                Receipt(
                    dispatch_id=dispatch_id, kind=ReceiptKind.DELIVERED, at=happened, provider_event_id=f"{ref}-dlv"
                )
            ]
            if outcome.read_after is not None and now >= happened + outcome.read_after:
                out.append(
                    Receipt(
                        dispatch_id=dispatch_id,
                        kind=ReceiptKind.READ,
                        at=happened + outcome.read_after,
                        provider_event_id=f"{ref}-read",
                    )
                )
            return tuple(out)
        if outcome.kind == "read":
            return (
                Receipt(dispatch_id=dispatch_id, kind=ReceiptKind.READ, at=happened, provider_event_id=f"{ref}-read"),
            )
        if outcome.kind == "consented":
            return (
                Receipt(
                    dispatch_id=dispatch_id, kind=ReceiptKind.CONSENTED, at=happened, provider_event_id=f"{ref}-ok"
                ),
            )
        if outcome.kind == "failed":
            return (
                Receipt(
                    dispatch_id=dispatch_id,
                    kind=ReceiptKind.FAILED,
                    at=happened,
                    reason=outcome.reason,
                    provider_event_id=f"{ref}-fail",
                ),
            )
        return ()

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Play the next scripted outcome for ``dispatch``; a resend of one dispatch id gets the first answer again,
        as a real provider's deduplication would."""
        self.history.append(dispatch)
        if dispatch.dispatch_id in self._sent:  # a real provider deduplicates on the idempotency key
            _, _, ref = self._sent[dispatch.dispatch_id]
            return SendResult(
                accepted=True, provider_ref=ref, receipts=self._receipts(dispatch.dispatch_id, self.clock.now())
            )
        outcome = self._pending_transient.pop(dispatch.dispatch_id, None) or self._next(dispatch)
        if outcome.kind == "transient":
            if outcome.times > 1:
                self._pending_transient[dispatch.dispatch_id] = attrs.evolve(outcome, times=outcome.times - 1)
            elif outcome.then is not None:
                self._pending_transient[dispatch.dispatch_id] = outcome.then
            raise TransientChannelError(f"{self.name}: provider unavailable (scripted)", retry_after=0.0)
        if outcome.kind == "refused":
            return SendResult(accepted=False, reason=outcome.reason)
        if outcome.kind == "error":
            raise ChannelError(outcome.reason or "permanent error")
        ref = f"{self.name}-{next(_ids)}"
        self._sent[dispatch.dispatch_id] = (outcome, self.clock.now(), ref)
        return SendResult(
            accepted=True, provider_ref=ref, receipts=self._receipts(dispatch.dispatch_id, self.clock.now())
        )

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """What became of ``dispatch`` by the clock's now (not found if it was never accepted)."""
        entry = self._sent.get(dispatch.dispatch_id)
        if entry is None:
            return StatusReport(found=False)
        return StatusReport(
            found=True, provider_ref=entry[2], receipts=self._receipts(dispatch.dispatch_id, self.clock.now())
        )


def fake_waybill(dispatch_id: str) -> str:
    """A deterministic EMS-shaped waybill number for a dispatch (the fakes' carrier and centres agree on it)."""
    digest = int.from_bytes(hashlib.sha256(dispatch_id.encode()).digest()[:8], "big")
    return f"EMS{digest % 10**10:010d}CN"


class FakePrintCentre(BaseChannel):
    """A print/mail centre: accepts jobs, prints after ``print_after`` and hands to the carrier after
    ``mail_after`` (virtual time), reporting a waybill: the one the job came with (ordered from the carrier
    by the engine), else one of its own. ``refuse=True`` makes it refuse every job."""

    kind = ChannelKind.PRINT

    def __init__(
        self,
        info: PrintCentreInfo,
        *,
        clock: Clock | None = None,
        print_after: timedelta = timedelta(hours=4),
        mail_after: timedelta = timedelta(hours=8),
        refuse: bool = False,
    ) -> None:
        self.info = info
        self.name = info.centre_id
        self.clock: Clock = clock or VirtualClock()
        self._follows_host = clock is None  # registered through a plugin, it takes the client's clock
        self.print_after = print_after
        self.mail_after = mail_after
        self.refuse = refuse
        self.jobs: list[Dispatch] = []
        self._accepted: dict[str, datetime] = {}
        self._waybills: dict[str, str] = {}

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Accept a print job (or refuse every job when ``refuse`` is set) and remember its waybill."""
        self.jobs.append(dispatch)
        if self.refuse:
            return SendResult(accepted=False, reason=f"centre {self.name} is not accepting jobs")
        self._accepted.setdefault(dispatch.dispatch_id, self.clock.now())
        if dispatch.waybill is not None:
            self._waybills.setdefault(dispatch.dispatch_id, dispatch.waybill)
        return SendResult(accepted=True, provider_ref=f"job-{dispatch.dispatch_id}")

    def waybill(self, dispatch_id: str) -> str:
        """The waybill of a job: the one it came with, or a fake one made from its dispatch id."""
        return self._waybills.get(dispatch_id) or fake_waybill(dispatch_id)

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """The job's progress by the clock's now: printed, then mailed (not found if never accepted)."""
        accepted = self._accepted.get(dispatch.dispatch_id)
        if accepted is None:
            return StatusReport(found=False)
        now = self.clock.now()
        receipts: list[Receipt] = []
        if now >= accepted + self.print_after:
            receipts.append(
                Receipt(
                    dispatch_id=dispatch.dispatch_id,
                    kind=ReceiptKind.PRINTED,
                    at=accepted + self.print_after,
                    provider_event_id=f"{dispatch.dispatch_id}-prt",
                )
            )
        if now >= accepted + self.mail_after:
            receipts.append(
                Receipt(
                    dispatch_id=dispatch.dispatch_id,
                    kind=ReceiptKind.MAILED,
                    at=accepted + self.mail_after,
                    waybill=self.waybill(dispatch.dispatch_id),
                    provider_event_id=f"{dispatch.dispatch_id}-mail",
                )
            )
        return StatusReport(found=True, provider_ref=f"job-{dispatch.dispatch_id}", receipts=tuple(receipts))


class FakeCarrier(_Scripted):
    """The postal carrier: creates electronic waybills (``send``, idempotent on the dispatch id; ``orders``
    keeps each order) and tracks mailed items by waybill (``status``); outcomes ``signed`` or ``returned``.
    ``refuse_orders`` makes it refuse every waybill order with that reason. ``requires`` declares what its
    waybills need (``{"receiver_phone"}``, as the real EMS carrier; none by default), and then it refuses an
    order without a receiver phone, as the real carrier does."""

    orders_waybills = True  # the engine orders each print job's waybill here before the centre gets the job

    def __init__(
        self,
        name: str = "fake-ems",
        *,
        clock: Clock | None = None,
        handler: Handler | None = None,
        default: Outcome | None = None,
        requires: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(name=name, kind=ChannelKind.POST, clock=clock, handler=handler, default=default)
        self.tracked: dict[str, tuple[Outcome, datetime]] = {}
        self.orders: dict[str, Dispatch] = {}
        self.refuse_orders: str | None = None
        self.requires = frozenset(requires)

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Take a waybill order (refused when scripted so, or when a required receiver phone is missing)."""
        if self.refuse_orders is not None:
            return SendResult(accepted=False, reason=self.refuse_orders)
        if "receiver_phone" in self.requires and dispatch.recipient_phone is None:
            return SendResult(accepted=False, reason="RECEIVER_PHONE_REQUIRED")
        self.orders.setdefault(dispatch.dispatch_id, dispatch)
        return SendResult(accepted=True, provider_ref=fake_waybill(dispatch.dispatch_id))

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """The tracking of a waybill by the clock's now: the scripted outcome once its time has come."""
        if dispatch.waybill is None:
            return StatusReport(found=False)
        if dispatch.waybill not in self.tracked:
            self.tracked[dispatch.waybill] = (self._next(dispatch), self.clock.now())
        outcome, first_seen = self.tracked[dispatch.waybill]
        happened = first_seen + outcome.after
        if self.clock.now() < happened:
            return StatusReport(found=True, provider_ref=dispatch.waybill)
        if outcome.kind == "signed":
            receipt = Receipt(
                dispatch_id=dispatch.dispatch_id,
                kind=ReceiptKind.SIGNED,
                at=happened,
                signer_role=outcome.signer_role,
                provider_event_id=f"{dispatch.waybill}-sign",
            )
        elif outcome.kind == "returned":
            receipt = Receipt(
                dispatch_id=dispatch.dispatch_id,
                kind=ReceiptKind.RETURNED,
                at=happened,
                reason=outcome.reason or "address_wrong",
                provider_event_id=f"{dispatch.waybill}-ret",
            )
        else:
            return StatusReport(found=True, provider_ref=dispatch.waybill)
        return StatusReport(found=True, provider_ref=dispatch.waybill, receipts=(receipt,))


class FakeAddressSource:
    """An assisted-person-search source (a plugin): candidates per party id, scripted."""

    def __init__(
        self,
        candidates: dict[str, Sequence[AddressCandidate]] | None = None,
        handler: Callable[[Party, Sequence[Contact]], Sequence[AddressCandidate]] | None = None,
    ) -> None:
        self.candidates = dict(candidates or {})
        self.handler = handler
        self.calls: list[str] = []

    @hookimpl
    def delivery_address_candidates(self, party: Party, known: Sequence[Contact]) -> Sequence[AddressCandidate]:
        """The handler's candidates for ``party``, or the scripted ones (and the call is recorded)."""
        self.calls.append(party.party_id)
        if self.handler is not None:
            return self.handler(party, known)
        return self.candidates.get(party.party_id, ())


class RecordingSink:
    """An evidence sink, case-file system and observer in one plugin that remembers what it got."""

    def __init__(self, *, fail_filing: int = 0) -> None:
        self.evidence: list[StoredEvent] = []
        self.filed: dict[str, ServiceRecord] = {}
        self.filing_calls = 0
        self.observed: list[StoredEvent] = []
        self._fail_filing = fail_filing

    @hookimpl
    def delivery_record_evidence(self, batch: EvidenceBatch) -> None:
        """Keep the batch's events in :attr:`evidence`."""
        self.evidence.extend(batch.events)

    @hookimpl
    def delivery_file_service_record(self, record: ServiceRecord) -> str:
        """Keep the record in :attr:`filed` (failing as many times as scripted first) and return its filing
        reference."""
        self.filing_calls += 1
        if self._fail_filing > 0:
            self._fail_filing -= 1
            raise ConnectionError("case-file system unavailable (scripted)")
        self.filed.setdefault(record.record_id, record)
        return f"casefile:{record.record_id}"

    @hookimpl
    def delivery_task_event(self, event: StoredEvent) -> None:
        """Keep the event in :attr:`observed`."""
        self.observed.append(event)


def _follow(adapter: object, clock: Clock) -> None:
    """A fake made without a clock reports times on the client's clock, as a real provider reports on the
    same wall clock as the engine (the engine believes no report dated before its dispatch, nor after now)."""
    if getattr(adapter, "_follows_host", False):
        adapter.clock = clock  # type: ignore[attr-defined]


class _ChannelsPlugin:
    def __init__(self, adapters: Sequence[BaseChannel]) -> None:
        self.adapters = list(adapters)

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry, clock: Clock) -> None:
        for adapter in self.adapters:
            _follow(adapter, clock)
            register(adapter)


class _CentresPlugin:
    def __init__(self, centres: Sequence[FakePrintCentre]) -> None:
        self.centres = list(centres)

    @hookimpl
    def delivery_register_print_centres(self, register: PrintCentreRegistry, clock: Clock) -> None:
        for centre in self.centres:
            _follow(centre, clock)
            register(centre.info, centre)


def channels_plugin(*adapters: BaseChannel) -> object:
    """A plugin object that registers the given channel adapters."""
    return _ChannelsPlugin(adapters)


def print_centres_plugin(*centres: FakePrintCentre) -> object:
    """A plugin object that registers the given print centres."""
    return _CentresPlugin(centres)
