"""Staff phone calls for delivery-sdk: a human-in-the-loop channel of kind ``PHONE``.

Without the party's consent to electronic service the policy first asks for a ``PHONE`` dispatch (SPC
Online Litigation Rules Art. 30: consent may be sought and confirmed by phone). This channel's ``send``
puts a call task into a durable queue (:class:`~delivery_sdk_staffcalls.queue.CallQueue`); e-service staff
work the queue through :class:`StaffCalls` (or ``delivery-sdk calls ...``): claim the next call under a
lease, phone the party, record what happened. Each final outcome becomes a receipt ingested through the
client, so the engine moves on:

- ``reached_consented``: a ``consented`` receipt; the engine records the consent (method ``phone``) and
  serves through the electronic channels;
- ``refused`` and ``wrong_number``: a ``failed`` receipt; without consent the task goes by post;
- ``no_answer``: the call comes back on the retry schedule (2 h, then 1 day); after the last attempt
  (3 by default) a ``failed`` receipt, "no answer after 3 attempts".

The queue is idempotent on the dispatch id and ``status`` answers from it, so an engine that crashed after
``send`` learns that the call is queued (and any outcome already recorded) instead of queuing it twice.

Wiring::

    from delivery_sdk import DeliveryClient
    from delivery_sdk_staffcalls import StaffCalls, StaffCallsPlugin

    client = DeliveryClient("service.sqlite3", plugins=[StaffCallsPlugin(store="service.sqlite3")])
    calls = StaffCalls(client)  # the staff's API: open_calls, claim, release, record

Installed, the distribution registers the channel through the ``delivery_sdk`` entry point only when
``DELIVERY_SDK_STAFFCALLS_QUEUE`` names the queue (a SQLite path or a ``postgresql://`` DSN); otherwise it
contributes nothing (pass :class:`StaffCallsPlugin` yourself, as above).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from delivery_sdk import (
    AsyncDeliveryClient,
    BaseChannel,
    ChannelKind,
    ChannelRegistry,
    Clock,
    ContactKind,
    DeliveryClient,
    Dispatch,
    IngestResult,
    Permission,
    SendResult,
    StatusReport,
    StoredEvent,
    SystemClock,
    UnknownTask,
    hookimpl,
)
from delivery_sdk.access import court_code
from delivery_sdk.events import Cancelled, DispatchTimedOut, FellBackToPost, Served
from delivery_sdk.plugin_kit import PluginSettings

from .queue import (
    CallClosed,
    CallOutcome,
    CallQueue,
    CallState,
    CallSummary,
    ClaimedCall,
    LeaseLost,
    Recorded,
    RetrySchedule,
    StaffCallError,
    UnknownCall,
    queue_path_beside,
)

__all__ = [
    "DEFAULT_NAME",
    "ENV_QUEUE",
    "CallClosed",
    "CallOutcome",
    "CallQueue",
    "CallState",
    "CallSummary",
    "ClaimedCall",
    "LeaseLost",
    "Recorded",
    "RetrySchedule",
    "StaffCallChannel",
    "StaffCallError",
    "StaffCalls",
    "StaffCallsPlugin",
    "UnknownCall",
    "delivery_register_channels",
    "queue_path_beside",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_staffcalls")
ENV_QUEUE = "DELIVERY_SDK_STAFFCALLS_QUEUE"
DEFAULT_NAME = "staff-calls"
DEFAULT_LEASE = timedelta(minutes=15)

QueueSpec = CallQueue | str | os.PathLike[str]


class StaffCallChannel(BaseChannel):
    """The ``PHONE`` channel: ``send`` queues a call task, ``status`` reads the queue.

    ``queue`` is a :class:`CallQueue`, or where to open one (a SQLite path or a ``postgresql://`` DSN; opened
    on first use and closed by :meth:`aclose`). ``clock`` stamps the queue (the client's clock when the
    channel comes from :class:`StaffCallsPlugin`).
    """

    kind = ChannelKind.PHONE

    def __init__(
        self,
        queue: QueueSpec,
        *,
        name: str = DEFAULT_NAME,
        clock: Clock | None = None,
        schedule: RetrySchedule | None = None,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self._spec = queue
        self._schedule = schedule
        self._queue: CallQueue | None = queue if isinstance(queue, CallQueue) else None
        self._owns_queue = not isinstance(queue, CallQueue)

    @property
    def queue(self) -> CallQueue:
        """The call queue (opened on first use)."""
        if self._queue is None:
            assert not isinstance(self._spec, CallQueue)
            self._queue = CallQueue(self._spec, schedule=self._schedule)
        return self._queue

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Put a call to the party on the staff's queue (a mobile number is needed); a resend answers as the first
        did."""
        if dispatch.contact.kind is not ContactKind.MOBILE:
            return SendResult(accepted=False, reason="a staff call needs a mobile number")
        self.queue.enqueue(dispatch, self.clock.now())
        receipt = self.queue.receipt(dispatch.dispatch_id)  # a resend after a crash answers as the first did
        return SendResult(
            accepted=True, provider_ref=f"call:{dispatch.dispatch_id}", receipts=(receipt,) if receipt else ()
        )

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """Whether the call is on the queue, with its outcome once staff recorded one."""
        found, receipt = self.queue.lookup(dispatch.dispatch_id)
        if not found:
            return StatusReport(found=False)
        return StatusReport(
            found=True, provider_ref=f"call:{dispatch.dispatch_id}", receipts=(receipt,) if receipt else ()
        )

    def close_calls_of(self, event: StoredEvent) -> int:
        """Close the calls the engine no longer needs after ``event`` (a timeout, a fallback, service,
        cancellation); returns how many were closed."""
        ev = event.event
        if isinstance(ev, DispatchTimedOut):
            ids = [ev.dispatch_id]
            reason = "the engine stopped waiting for the call (response window over)"
        elif isinstance(ev, Served | Cancelled | FellBackToPost):
            ids = self.queue.open_call_ids(ev.task_id)
            reason = f"the task moved on ({ev.TYPE})"
        else:
            return 0
        return sum(self.queue.close_call(i, reason, self.clock.now()) for i in ids)

    async def aclose(self) -> None:
        """Close the queue when the channel opened it."""
        if self._queue is not None and self._owns_queue:
            self._queue.close()
            self._queue = None


class StaffCallsPlugin:
    """Registers a :class:`StaffCallChannel` with a client, and closes calls the engine stops needing.

    Where the queue lives, first match wins: ``queue`` (a :class:`CallQueue`, a SQLite path or a
    ``postgresql://`` DSN); ``store``, the path of the SQLite store (the queue file goes next to it:
    ``service.sqlite3`` -> ``service.staffcalls.sqlite3``); ``$DELIVERY_SDK_STAFFCALLS_QUEUE``.
    """

    def __init__(
        self,
        queue: QueueSpec | None = None,
        *,
        store: str | os.PathLike[str] | None = None,
        name: str = DEFAULT_NAME,
        schedule: RetrySchedule | None = None,
    ) -> None:
        if queue is None and store is not None:
            queue = queue_path_beside(store)
        if queue is None:
            queue = os.environ.get(ENV_QUEUE) or None
        if queue is None:
            raise StaffCallError(
                "say where the staff-call queue is: StaffCallsPlugin(queue=PATH_OR_DSN), StaffCallsPlugin("
                f"store=STORE_PATH) for a file next to the store, or set {ENV_QUEUE}"
            )
        self.queue_spec: QueueSpec = queue
        self.name = name
        self.schedule = schedule
        self.channel: StaffCallChannel | None = None

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry, clock: Clock) -> None:
        """Register the staff-call channel (the ``delivery_register_channels`` hook)."""
        if self.channel is None:
            self.channel = StaffCallChannel(self.queue_spec, name=self.name, clock=clock, schedule=self.schedule)
        register(self.channel)

    @hookimpl
    def delivery_task_event(self, event: StoredEvent) -> None:
        """Close the open calls of a task that no longer needs them (the ``delivery_task_event`` hook)."""
        if self.channel is not None:
            self.channel.close_calls_of(event)


@hookimpl
def delivery_register_channels(register: ChannelRegistry, clock: Clock, environ: Mapping[str, str]) -> None:
    """The entry point's hook: a channel on ``DELIVERY_SDK_STAFFCALLS_QUEUE`` (read from the host's
    ``environ``), or nothing when it is unset; a queue that cannot be opened raises
    :class:`~delivery_sdk.PluginError` naming the variable."""
    s = PluginSettings("staff-calls", environ, "DELIVERY_SDK_STAFFCALLS_")
    if not s.configured:
        log.debug("staff-calls plugin installed but not configured (%s unset): nothing registered", ENV_QUEUE)
        return
    target = s.require(ENV_QUEUE, "a SQLite path or a postgresql:// DSN")
    s.check()
    try:
        channel = StaffCallChannel(target, clock=clock)
    except Exception as exc:  # the queue's own error (a folder that does not exist, a DSN refused)
        if "://" in target:  # a database's error may quote the DSN: say only its type
            s.problem(f"{ENV_QUEUE}: the staff-call queue cannot be opened ({type(exc).__name__})")
        else:
            s.guard(f"{ENV_QUEUE}: the staff-call queue cannot be opened", exc)
        s.check()
        raise
    register(channel)


# -- the staff's API ----------------------------------------------------------------------------------


class StaffCalls:
    """The staff's face of the queue, bound to a client: list, claim, release, record.

    Works with a :class:`~delivery_sdk.DeliveryClient` or an :class:`~delivery_sdk.AsyncDeliveryClient`
    (its methods are synchronous: the queue and the ingest are short local transactions). ``channel``
    names the staff-call channel when a client has more than one. Claiming skips (and closes) calls whose
    dispatch the engine no longer waits for, so staff never phone about a task that moved on.
    """

    def __init__(
        self,
        client: DeliveryClient | AsyncDeliveryClient,
        *,
        channel: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.client = client
        adapters = [client.host.channels.get(channel)] if channel else client.host.channels.of_kind(ChannelKind.PHONE)
        found = [a for a in adapters if isinstance(a, StaffCallChannel)]
        if not found:
            raise StaffCallError(
                "the client has no staff-call channel: build it with plugins=[StaffCallsPlugin(...)] "
                f"(or set {ENV_QUEUE} for the installed entry point)"
            )
        self.channel = found[0]
        self.lease = lease

    @property
    def queue(self) -> CallQueue:
        """The call queue (opened on first use)."""
        return self.channel.queue

    def _now(self) -> datetime:
        return self.client.clock.now()

    def _still_wanted(self, call: CallSummary | ClaimedCall) -> str | None:
        """Why the engine no longer needs ``call``, or None if it does."""
        try:
            # the status, not the task: it holds no personal data, so a centre operator may read it and
            # nothing is recorded in the access log for a question the desk asks of every call
            status = self.client.status(call.task_id)
        except UnknownTask:
            return "the task is not in this store"
        record = next((d for d in status.dispatches if d.dispatch_id == call.call_id), None)
        if record is None:
            return "the dispatch is not in this store"
        if status.state.terminal:
            return f"the task is {status.state.value}"
        if record.status.settled:
            return f"the engine no longer waits for the call ({record.status.value})"
        return None

    def _covers(self, case_number: str) -> bool:
        """Whether the client's actor may work a call of this case: its court is one of the actor's."""
        court = court_code(case_number)
        return court is not None and self.client.actor.covers(court)

    def open_calls(self, *, include_claimed: bool = False) -> list[CallSummary]:
        """The open calls of the actor's courts (numbers and names masked): due ones first, then the ones
        scheduled later."""
        calls = self.queue.calls(self._now(), include_claimed=include_claimed)
        return [call for call in calls if self._covers(call.case_number)]

    def claim(self, staff: str, *, lease: timedelta | None = None) -> ClaimedCall | None:
        """Lease the next due call to ``staff`` (None when none is due); the view holds the full number."""
        skipped: list[str] = []
        while True:
            call = self.queue.claim(staff, self._now(), lease=lease or self.lease, exclude=skipped)
            if call is None:
                return None
            if not self._covers(call.case_number):  # another court's call: back to the queue, unseen
                self.queue.release(call.call_id, call.token, self._now())
                skipped.append(call.call_id)
                continue
            why = self._still_wanted(call)
            if why is None:
                return call
            self.queue.close_call(call.call_id, why, self._now())
            skipped.append(call.call_id)

    def release(self, call: ClaimedCall | str, *, token: str | None = None) -> None:
        """Hand a claimed call back to the queue unmade."""
        call_id, token = _id_and_token(call, token)
        self.queue.release(call_id, token, self._now())

    def record(
        self,
        call: ClaimedCall | str,
        outcome: CallOutcome | str,
        *,
        token: str | None = None,
        staff: str | None = None,
        scope: Sequence[ChannelKind | str] = (),
        note: str | None = None,
    ) -> tuple[Recorded, IngestResult | None]:
        """Record the outcome of the call just made, and hand a final one to the engine.

        ``scope`` (with ``reached_consented``) lists what the party agreed to be served through, e.g.
        ``[ChannelKind.SMS, ChannelKind.ESERVICE]``; it is kept with the call (the SDK's consent model
        records the method and the moment only). ``note`` is kept in the queue's attempt history, never in
        the task's events. Returns the queue's record and the ingest result (None while the call goes on).
        """
        call_id, token = _id_and_token(call, token)
        who = staff or (call.leased_by if isinstance(call, ClaimedCall) else None)
        if not who:
            raise StaffCallError("say who made the call (staff=...)")
        self._may_record(self.queue.get(call_id))
        kind = CallOutcome(outcome) if isinstance(outcome, str) else outcome
        names = tuple(s.value if isinstance(s, ChannelKind) else ChannelKind(s).value for s in scope)
        recorded = self.queue.record(call_id, token, kind, self._now(), staff=who, scope=names, note=note)
        if recorded.receipt is None:
            return recorded, None
        return recorded, self._ingest(recorded)

    def _may_record(self, call: CallSummary) -> None:
        """Raise :class:`~delivery_sdk.AccessDenied` (nothing recorded) unless the actor may hand this call's
        outcome to the engine: the centre's ``operate`` or a clerk's ``act``, on the call's court."""
        actor = self.client.actor
        permission = Permission.OPERATE if actor.can(Permission.OPERATE) else Permission.ACT
        actor.require(permission, court_code(call.case_number) or "", f"record staff call {call.call_id}")

    def _ingest(self, recorded: Recorded) -> IngestResult:
        assert recorded.receipt is not None
        if isinstance(self.client, DeliveryClient):
            return self.client.ingest(recorded.receipt, channel=self.channel.name)
        # AsyncDeliveryClient.ingest is a coroutine around this same call
        return self.client.engine.ingest(recorded.receipt, channel=self.channel.name)

    def resync(self) -> list[IngestResult]:
        """Hand every final outcome to the engine again (idempotent: already recorded ones come back as
        duplicates). Only needed after a crash between recording and ingest, and the engine's polls of the
        call's status would pick those up anyway."""
        results = []
        for call in self.queue.calls(self._now(), include_claimed=True, include_finished=True):
            receipt = self.queue.receipt(call.call_id) if call.state is CallState.DONE else None
            if receipt is not None:
                results.append(self.client.engine.ingest(receipt, channel=self.channel.name))
        return results


def _id_and_token(call: ClaimedCall | str, token: str | None) -> tuple[str, str]:
    if isinstance(call, ClaimedCall):
        return call.call_id, token or call.token
    if not token:
        raise LeaseLost(f"recording or releasing staff call {call} needs the token its claim gave you")
    return call, token
