"""Inbound receipts: Engine.ingest through AsyncDeliveryClient.ingest and ingest_callback.

Every outcome (accepted, duplicate, unknown dispatch, late, out of order) is checked against the store, malformed
payloads must leave no trace, and a receipt that arrives while the engine is between committing a send's intent
and committing its result must not be lost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from delivery_sdk import (
    AsyncDeliveryClient,
    BaseChannel,
    ChannelKind,
    Dispatch,
    DispatchStatus,
    IngestOutcome,
    MalformedReceipt,
    MockChannel,
    PolicyConfig,
    Receipt,
    ReceiptKind,
    SendResult,
    ServiceMethod,
    SQLiteStore,
    StatusReport,
    TaskState,
    TaskStore,
    UnknownChannel,
    VirtualClock,
)
from delivery_sdk.testing import (
    FakeCarrier,
    Outcome,
    RecordingSink,
    channels_plugin,
    hubei_centres,
    make_party,
    make_request,
    print_centres_plugin,
)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


_store_factory: list[Any] = []  # this test's store_factory (tests/conftest.py)


@pytest.fixture(autouse=True)
def on_both_stores(store_factory: Any) -> Iterator[None]:
    """Every ingest path runs twice: on the SQLite store and on the PostgreSQL store."""
    _store_factory.append(store_factory)
    yield
    _store_factory.clear()


def _store() -> TaskStore:
    return _store_factory[-1]() if _store_factory else SQLiteStore()


class JsonChannel(BaseChannel):
    """A provider that accepts every message and pushes JSON delivery reports::

    [{"msg_id": "T1.1", "status": "delivered", "time": "2026-11-02T09:31:00+08:00", "event_id": "e-1"}]
    """

    def __init__(self, name: str, kind: ChannelKind) -> None:
        self.name = name
        self.kind = kind
        self.sent: list[str] = []

    async def send(self, dispatch: Dispatch) -> SendResult:
        self.sent.append(dispatch.dispatch_id)
        return SendResult(accepted=True, provider_ref=f"{self.name}:{dispatch.dispatch_id}")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=dispatch.dispatch_id in self.sent)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        items = json.loads(body)
        if isinstance(items, dict):
            items = [items]
        return [
            Receipt(
                dispatch_id=item["msg_id"],
                kind=ReceiptKind(item["status"]),
                at=datetime.fromisoformat(item["time"]),
                provider_event_id=item.get("event_id"),
                reason=item.get("reason"),
                waybill=item.get("waybill"),
            )
            for item in items
        ]


def report(dispatch_id: str, status: str, at: datetime | str, event_id: str | None = None, **extra: str) -> bytes:
    item: dict[str, Any] = {
        "msg_id": dispatch_id,
        "status": status,
        "time": at if isinstance(at, str) else at.isoformat(),
    }
    if event_id is not None:
        item["event_id"] = event_id
    item.update(extra)
    return json.dumps([item]).encode()


class World:
    """A client on an in-memory store with JSON-reporting SMS and e-mail providers, print centres and a carrier."""

    def __init__(self, *, policy: PolicyConfig | None = None, extra: Sequence[object] = ()) -> None:
        self.clock = VirtualClock()
        self.sms = JsonChannel("json-sms", ChannelKind.SMS)
        self.mail = JsonChannel("json-mail", ChannelKind.EMAIL)
        self.quiet = QuietChannel()
        self.carrier = FakeCarrier(clock=self.clock)
        self.sink = RecordingSink()
        self.store = _store()
        ids = itertools.count(1)
        self.client = AsyncDeliveryClient(
            self.store,
            plugins=[
                channels_plugin(self.sms, self.mail, self.quiet, self.carrier),
                print_centres_plugin(*hubei_centres(self.clock)),
                self.sink,
                *extra,
            ],
            clock=self.clock,
            policy=policy,
            load_entry_points=False,
            id_factory=lambda: f"T{next(ids)}",
        )

    async def sent_task(self, **party: Any) -> str:
        """A task whose first dispatch was accepted by the provider one minute ago."""
        task_id = await self.client.submit(make_request(make_party(**party)))
        await self.client.run_until_idle(until=self.clock.now() + timedelta(minutes=1))
        return task_id

    def snapshot(self) -> tuple[Any, ...]:
        rows = [self.store.task_row(t) for t in self.store.all_task_ids()]
        return (self.store.count_by_state(), self.store.events_after(0, 10**6), rows, self.store.pending_outbox())

    def types(self, task_id: str) -> list[str]:
        return [s.event.TYPE for s in self.client.timeline(task_id)]

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


class QuietChannel(BaseChannel):
    """Registered but never chosen (WeChat, no party has an openid); it takes no callbacks (BaseChannel's)."""

    name = "quiet-wechat"
    kind = ChannelKind.WECHAT


def in_world(test: Callable[[World], Coroutine[Any, Any, None]], **kwargs: Any) -> None:
    async def main() -> None:
        world = World(**kwargs)
        try:
            await test(world)
        finally:
            await world.close()

    run(main())


# -- accepted --------------------------------------------------------------------------------------------


def test_delivery_report_accepted_then_the_engine_serves() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        assert w.types(task_id) == ["task.created", "dispatch.queued", "dispatch.sent"]
        assert w.sms.sent == [f"{task_id}.1"]
        arrived = w.clock.now() - timedelta(seconds=20)
        result = await w.client.ingest(
            Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=arrived, provider_event_id="dlv-1")
        )
        assert result.outcome is IngestOutcome.ACCEPTED
        assert result.task_id == task_id
        assert result.event_type == "dispatch.delivered"
        task = w.client.task(task_id)
        assert task.state is TaskState.ELECTRONIC  # the engine decides; ingest only records
        record = task.dispatch(f"{task_id}.1")
        assert record is not None
        assert record.status is DispatchStatus.DELIVERED
        assert record.delivered_at == arrived
        assert w.store.task_row(task_id).due_at == w.clock.now()  # ...and makes the task due at once

        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.served_at == arrived  # the arrival is the service moment, not the time we heard of it
        assert w.client.task(task_id).served_dispatch_id == f"{task_id}.1"
        assert w.types(task_id) == [
            "task.created",
            "dispatch.queued",
            "dispatch.sent",
            "dispatch.delivered",
            "service.served",
            "service.filed",
        ]
        assert list(w.sink.filed) == [f"{task_id}:proof"]

    in_world(test)


def test_callback_accepted() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        arrived = w.clock.now()
        results = await w.client.ingest_callback(
            "json-sms", {"content-type": "application/json"}, report(f"{task_id}.1", "delivered", arrived, "cb-1")
        )
        assert [(r.outcome, r.task_id, r.event_type) for r in results] == [
            (IngestOutcome.ACCEPTED, task_id, "dispatch.delivered")
        ]
        assert w.store.receipt_seen("json-sms:cb-1")
        await w.client.run_until_idle()
        assert w.client.status(task_id).state is TaskState.FILED
        assert w.client.status(task_id).served_at == arrived

    in_world(test)


def test_callback_with_several_receipts() -> None:
    async def test(w: World) -> None:
        first = await w.sent_task(party_id="P1")
        second = await w.sent_task(party_id="P2")
        now = w.clock.now()
        body = json.dumps(
            [
                {"msg_id": f"{first}.1", "status": "delivered", "time": now.isoformat(), "event_id": "a"},
                {
                    "msg_id": f"{second}.1",
                    "status": "failed",
                    "time": now.isoformat(),
                    "event_id": "b",
                    "reason": "空号",
                },
                {"msg_id": "T99.1", "status": "delivered", "time": now.isoformat(), "event_id": "c"},
            ]
        ).encode()
        results = await w.client.ingest_callback("json-sms", {}, body)
        assert [r.outcome for r in results] == [
            IngestOutcome.ACCEPTED,
            IngestOutcome.ACCEPTED,
            IngestOutcome.UNKNOWN_DISPATCH,
        ]
        failed = w.client.task(second).dispatch(f"{second}.1")
        assert failed is not None
        assert failed.status is DispatchStatus.FAILED
        assert failed.detail == "空号"

    in_world(test)


# -- duplicates ------------------------------------------------------------------------------------------


def test_same_provider_event_twice_is_recorded_once() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        receipt = Receipt(
            dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=w.clock.now(), provider_event_id="dup-1"
        )
        assert (await w.client.ingest(receipt)).outcome is IngestOutcome.ACCEPTED
        before = w.snapshot()
        again = await w.client.ingest(receipt)
        assert again.outcome is IngestOutcome.DUPLICATE
        assert again.task_id == task_id
        assert "'dup-1' was recorded before" in again.message
        # the same provider event id, whatever it claims now, is the same event
        read = Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.READ, at=w.clock.now(), provider_event_id="dup-1")
        assert (await w.client.ingest(read)).outcome is IngestOutcome.DUPLICATE
        body = report(f"{task_id}.1", "delivered", w.clock.now(), "dup-1")
        assert [r.outcome for r in await w.client.ingest_callback("json-sms", {}, body)] == [IngestOutcome.DUPLICATE]
        assert w.snapshot() == before
        assert w.types(task_id).count("dispatch.delivered") == 1

    in_world(test)


def test_same_fact_without_an_id_is_a_duplicate() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        at = w.clock.now() - timedelta(seconds=5)
        plain = Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=at)
        assert (await w.client.ingest(plain)).outcome is IngestOutcome.ACCEPTED
        before = w.snapshot()
        again = await w.client.ingest(plain)
        assert again.outcome is IngestOutcome.DUPLICATE
        assert f"dispatch {task_id}.1 already shows this" in again.message
        # a later report of the same arrival, now with an id, tells nothing new either
        later = Receipt(
            dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=at + timedelta(minutes=3), provider_event_id="x"
        )
        assert (await w.client.ingest(later)).outcome is IngestOutcome.DUPLICATE
        assert not w.store.receipt_seen("json-sms:x")
        assert w.snapshot() == before

    in_world(test)


def test_earlier_arrival_is_news() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        now = w.clock.now()
        first = Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=now)
        earlier = Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=now - timedelta(seconds=40))
        assert (await w.client.ingest(first)).outcome is IngestOutcome.ACCEPTED
        assert (await w.client.ingest(earlier)).outcome is IngestOutcome.ACCEPTED
        await w.client.run_until_idle()
        assert w.client.status(task_id).served_at == now - timedelta(seconds=40)

    in_world(test)


# -- unknown dispatch ------------------------------------------------------------------------------------


def test_unknown_dispatch_writes_nothing() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        before = w.snapshot()
        for dispatch_id in ("T404.1", task_id, f"{task_id}.2", f"{task_id}.1 "):
            result = await w.client.ingest(
                Receipt(dispatch_id=dispatch_id, kind=ReceiptKind.DELIVERED, at=w.clock.now(), provider_event_id="u")
            )
            assert result.outcome is IngestOutcome.UNKNOWN_DISPATCH
            assert result.task_id is None
            assert repr(dispatch_id) in result.message
        results = await w.client.ingest_callback("json-sms", {}, report("T404.1", "read", w.clock.now(), "u2"))
        assert [r.outcome for r in results] == [IngestOutcome.UNKNOWN_DISPATCH]
        assert w.snapshot() == before
        assert not w.store.receipt_seen("json-sms:u")

    in_world(test)


# -- late ------------------------------------------------------------------------------------------------


def test_failure_after_the_task_was_served_and_filed_is_late() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task(email="zhang@example.cn")
        assert w.sms.sent == [f"{task_id}.1"]
        assert w.mail.sent == [f"{task_id}.2"]  # parallel: both channels at once
        arrived = w.clock.now()
        sms_report = report(f"{task_id}.1", "delivered", arrived, "s-1")
        assert [r.outcome for r in await w.client.ingest_callback("json-sms", {}, sms_report)] == [
            IngestOutcome.ACCEPTED
        ]
        await w.client.run_until_idle(until=w.clock.now() + timedelta(minutes=1))
        assert w.client.status(task_id).state is TaskState.FILED
        served = w.client.task(task_id)

        w.clock.advance(timedelta(hours=3))
        bounce = report(f"{task_id}.2", "failed", w.clock.now(), "m-1", reason="mailbox full")
        results = await w.client.ingest_callback("json-mail", {}, bounce)
        assert [(r.outcome, r.event_type) for r in results] == [(IngestOutcome.LATE, "dispatch.failed")]
        task = w.client.task(task_id)
        assert task.state is TaskState.FILED  # no effect on service...
        assert task.served_at == served.served_at == arrived
        assert task.record_id == served.record_id
        assert w.types(task_id)[-1] == "dispatch.failed"  # ...but recorded for the evidence
        record = task.dispatch(f"{task_id}.2")
        assert record is not None
        assert record.status is DispatchStatus.FAILED
        assert w.store.task_row(task_id).due_at is None  # a finished task is not woken up
        assert await w.client.run_until_idle() == 0
        assert (await w.client.ingest_callback("json-mail", {}, bounce))[0].outcome is IngestOutcome.DUPLICATE

    in_world(test, policy=PolicyConfig(parallel=True))


def test_delivery_for_a_cancelled_task_is_late() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        await w.client.cancel(task_id, "case withdrawn (撤诉)")
        result = await w.client.ingest(
            Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=w.clock.now(), provider_event_id="d")
        )
        assert result.outcome is IngestOutcome.LATE
        assert result.event_type == "dispatch.delivered"
        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.CANCELLED
        assert status.served_at is None
        assert status.method is None
        assert w.types(task_id)[-2:] == ["task.cancelled", "dispatch.delivered"]
        assert w.sink.filed == {}

    in_world(test)


def test_later_earlier_arrival_after_filing_is_late_and_changes_nothing() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        now = w.clock.now()
        await w.client.ingest(Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=now))
        await w.client.run_until_idle()
        assert w.client.status(task_id).state is TaskState.FILED
        earlier = Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=now - timedelta(seconds=30))
        assert (await w.client.ingest(earlier)).outcome is IngestOutcome.LATE
        assert w.client.status(task_id).served_at == now

    in_world(test)


# -- out of order ----------------------------------------------------------------------------------------


def test_read_before_delivered_serves_at_the_read_time() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        read_at = w.clock.now() - timedelta(seconds=10)
        result = await w.client.ingest(
            Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.READ, at=read_at, provider_event_id="r-1")
        )
        assert result.outcome is IngestOutcome.OUT_OF_ORDER
        assert result.event_type == "dispatch.read"
        record = w.client.task(task_id).dispatch(f"{task_id}.1")
        assert record is not None
        assert record.status is DispatchStatus.READ
        assert record.read_at == read_at
        assert record.delivered_at == read_at  # a read presumes arrival (Online Litigation Rules Art. 31)

        w.clock.advance(timedelta(minutes=2))
        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.served_at == read_at
        # the delivery report that was overtaken arrives at last: the record has it, service is unchanged
        late = Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=read_at, provider_event_id="d-1")
        assert (await w.client.ingest(late)).outcome is IngestOutcome.DUPLICATE

    in_world(test)


def test_mailed_before_printed_is_out_of_order() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task(party_id="P-post", mobile=None, consent=False)
        task = w.client.task(task_id)
        assert task.state is TaskState.ROUTED
        dispatch_id = task.postal_dispatch_id
        assert dispatch_id is not None
        assert task.centre_id == "PC-420100"
        result = await w.client.ingest(
            Receipt(dispatch_id=dispatch_id, kind=ReceiptKind.MAILED, at=w.clock.now(), waybill="EMS1234567890CN")
        )
        assert result.outcome is IngestOutcome.OUT_OF_ORDER
        task = w.client.task(task_id)
        assert task.state is TaskState.MAILED
        record = task.dispatch(dispatch_id)
        assert record is not None
        assert record.waybill == "EMS1234567890CN"

    in_world(test)


# -- malformed -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": ReceiptKind.MAILED}, "needs the waybill number"),
        ({"kind": ReceiptKind.MAILED, "waybill": ""}, "needs the waybill number"),
        ({"kind": ReceiptKind.RETURNED}, "a 'returned' receipt needs a reason, one of"),
        ({"kind": ReceiptKind.RETURNED, "reason": "lost in the flood"}, "'returned' receipt needs a reason"),
        ({"at": datetime(2026, 11, 2, 9, 30)}, "must be a timezone-aware datetime"),
        ({"at": "2026-11-02T09:30:00+08:00"}, "must be a timezone-aware datetime"),
        ({"dispatch_id": ""}, "dispatch_id must be a non-empty string"),
        ({"dispatch_id": 7}, "dispatch_id must be a non-empty string"),
        ({"kind": "delivered"}, "receipt kind must be one of"),
        ({"provider_event_id": ""}, "provider_event_id must be a non-empty string"),
        ({"reason": "x" * 501}, "reason must be a string of at most 500 characters"),
        ({"kind": ReceiptKind.SIGNED, "signer_role": 3}, "signer_role must be a string"),
        ({"reason": "bad \ud800 text"}, "not valid Unicode (a lone surrogate)"),
        ({"provider_event_id": "p" * 201}, "provider_event_id must be a non-empty string"),
        ({"dispatch_id": "T" * 201}, "dispatch_id must be a non-empty string"),
    ],
)
def test_malformed_receipt_refused(kwargs: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {
        "dispatch_id": "T1.1",
        "kind": ReceiptKind.DELIVERED,
        "at": VirtualClock().now(),
        **kwargs,
    }
    with pytest.raises(MalformedReceipt) as info:
        Receipt(**base)
    assert fragment in str(info.value)


class _Id(str):
    pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": ReceiptKind.FAILED, "reason": "号码不存在"},  # non-ASCII text: checked, then accepted
        {"dispatch_id": _Id("T1.1"), "provider_event_id": _Id("p-1")},  # str subclasses
        {"kind": ReceiptKind.MAILED, "waybill": "EMS1234567890CN"},
        {"kind": ReceiptKind.RETURNED, "reason": "moved"},
        {"kind": ReceiptKind.SIGNED, "signer_role": "family_member"},
    ],
)
def test_well_formed_receipts_accepted_on_either_path(kwargs: dict[str, Any]) -> None:
    """The quick test for the usual receipt and the full checks agree on what is well formed."""
    receipt = Receipt(**{"dispatch_id": "T1.1", "kind": ReceiptKind.DELIVERED, "at": VirtualClock().now(), **kwargs})
    receipt._check()  # the full checks pass too


BAD_BODIES: list[tuple[str, Callable[[str, datetime], bytes], str]] = [
    ("mailed without waybill", lambda d, t: report(d, "mailed", t, "b-1"), "needs the waybill number"),
    ("returned without reason", lambda d, t: report(d, "returned", t, "b-2"), "needs a reason"),
    ("returned, bad reason", lambda d, t: report(d, "returned", t, "b-3", reason="gone"), "needs a reason"),
    ("naive time", lambda d, t: report(d, "delivered", "2026-11-02T09:30:00", "b-4"), "timezone-aware"),
    ("not JSON", lambda d, t: b"<xml>delivered</xml>", "could not parse the callback"),
    ("not UTF-8", lambda d, t: b"\xff\xfe\x00", "could not parse the callback"),
    ("unknown status", lambda d, t: report(d, "exploded", t, "b-5"), "could not parse the callback"),
    ("missing field", lambda d, t: json.dumps([{"status": "delivered"}]).encode(), "could not parse the callback"),
    ("bad time", lambda d, t: report(d, "delivered", "yesterday", "b-6"), "could not parse the callback"),
    (
        "one good, one bad",
        lambda d, t: json.dumps(
            [
                {"msg_id": d, "status": "delivered", "time": t.isoformat(), "event_id": "good"},
                {"msg_id": d, "status": "mailed", "time": t.isoformat(), "event_id": "bad"},
            ]
        ).encode(),
        "needs the waybill number",
    ),
]


@pytest.mark.parametrize(("body", "fragment"), [(b, f) for _, b, f in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES])
def test_malformed_callback_writes_nothing(body: Callable[[str, datetime], bytes], fragment: str) -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        before = w.snapshot()
        with pytest.raises(MalformedReceipt) as info:
            await w.client.ingest_callback("json-sms", {}, body(f"{task_id}.1", w.clock.now()))
        assert fragment in str(info.value)
        assert "'json-sms'" in str(info.value) or "receipt" in str(info.value)
        assert w.snapshot() == before
        assert not w.store.receipt_seen("json-sms:good")

    in_world(test)


def test_ingest_refuses_what_is_not_a_receipt() -> None:
    async def test(w: World) -> None:
        task_id = await w.sent_task()
        before = w.snapshot()
        not_a_receipt: Any = {"dispatch_id": f"{task_id}.1", "kind": "delivered", "at": w.clock.now()}
        with pytest.raises(MalformedReceipt, match="ingest takes a Receipt, got dict"):
            await w.client.ingest(not_a_receipt)
        with pytest.raises(MalformedReceipt, match="does not take callbacks"):
            await w.client.ingest_callback("quiet-wechat", {}, b"[]")
        with pytest.raises(UnknownChannel, match="'no-such-sms'"):
            await w.client.ingest_callback("no-such-sms", {}, report(f"{task_id}.1", "delivered", w.clock.now()))
        assert w.snapshot() == before
        assert await w.client.ingest_callback("json-sms", {}, b"[]") == []

    in_world(test)


# -- a receipt between the intent and the result of a send --------------------------------------------------


def _mock_client(handlers: dict[str, Callable[[Dispatch], SendResult]], clock: VirtualClock) -> AsyncDeliveryClient:
    ids = itertools.count(1)
    channels = [
        MockChannel(handlers["sms"], name="mock-sms", kind=ChannelKind.SMS),
        MockChannel(handlers["email"], name="mock-email", kind=ChannelKind.EMAIL),
    ]
    return AsyncDeliveryClient(
        _store(),
        plugins=[channels_plugin(*channels), RecordingSink()],
        clock=clock,
        load_entry_points=False,
        id_factory=lambda: f"T{next(ids)}",
    )


def test_receipt_for_the_dispatch_being_sent_is_not_lost() -> None:
    """The provider's delivery webhook beats its answer to the send call."""
    clock = VirtualClock()
    seen: list[Any] = []
    client: AsyncDeliveryClient

    def sms(dispatch: Dispatch) -> SendResult:
        # the intent is committed: the ingest finds the dispatch and commits first
        assert client.store.pending_outbox()[0].dispatch_id == dispatch.dispatch_id
        seen.append(
            client.engine.ingest(
                Receipt(
                    dispatch_id=dispatch.dispatch_id, kind=ReceiptKind.DELIVERED, at=clock.now(), provider_event_id="w"
                )
            )
        )
        return SendResult(accepted=True, provider_ref="sms-ref-1")

    def email(dispatch: Dispatch) -> SendResult:
        raise AssertionError("e-mail is never needed")

    client = _mock_client({"sms": sms, "email": email}, clock)

    async def main() -> None:
        task_id = await client.submit(make_request(make_party("P1")))
        await client.run_until_idle()
        assert [r.outcome for r in seen] == [IngestOutcome.ACCEPTED]
        timeline = client.timeline(task_id)
        assert [s.event.TYPE for s in timeline] == [
            "task.created",
            "dispatch.queued",
            "dispatch.delivered",  # the receipt...
            "dispatch.sent",  # ...and the send result, re-applied after the version conflict
            "service.served",
            "service.filed",
        ]
        assert [s.task_seq for s in timeline] == [1, 2, 3, 4, 5, 6]
        sent = timeline[3].event
        assert getattr(sent, "provider_ref", None) == "sms-ref-1"
        assert client.store.pending_outbox() == []
        assert client.status(task_id).served_at == clock.now()
        assert client.store.receipt_seen("mock-sms:w")
        await client.aclose()

    run(main())


def test_a_task_served_after_two_conflicting_ingests_is_filed_in_the_same_step() -> None:
    """A receiver in another process records a provider's reports while the worker's send is in flight: the
    worker's commits conflict, its results are re-applied each time, and the task, served, is filed at once,
    not ``retry_after_error`` later (a filing decided before a conflict is dropped with the write: it runs
    again)."""
    clock = VirtualClock()
    client: AsyncDeliveryClient
    pending: list[Receipt] = []

    class Racing(SQLiteStore):
        """The receiver's second write lands just before the worker commits the filing."""

        def commit(self, writes: Sequence[Any], *, returning: bool = True) -> Any:
            if pending and any(type(e).__name__ == "Filed" for w in writes for e in w.events):
                client.engine.ingest(pending.pop())
            return super().commit(writes, returning=returning)

    def sms(dispatch: Dispatch) -> SendResult:
        client.engine.ingest(
            Receipt(dispatch_id=dispatch.dispatch_id, kind=ReceiptKind.DELIVERED, at=clock.now(), provider_event_id="d")
        )
        pending.append(
            Receipt(dispatch_id=dispatch.dispatch_id, kind=ReceiptKind.READ, at=clock.now(), provider_event_id="r")
        )
        return SendResult(accepted=True, provider_ref="sms-ref-1")

    client = AsyncDeliveryClient(
        Racing(),
        plugins=[channels_plugin(MockChannel(sms, name="mock-sms", kind=ChannelKind.SMS))],
        clock=clock,
        load_entry_points=False,
    )

    async def main() -> None:
        task_id = await client.submit(make_request(make_party("P1")))
        for _ in range(3):  # the clock stands still: only what is due now
            await client.engine.step()
        assert pending == []  # the second report did race the filing
        assert client.status(task_id).state is TaskState.FILED
        assert [s.event.TYPE for s in client.timeline(task_id)][-2:] == ["service.served", "service.filed"]
        await client.aclose()

    run(main())


def test_receipt_for_an_earlier_dispatch_while_the_next_is_sent_is_not_lost() -> None:
    """SMS timed out and the engine moves on to e-mail; the SMS delivery report comes in during that send."""
    clock = VirtualClock()
    seen: list[Any] = []
    client: AsyncDeliveryClient
    arrived = clock.now() + timedelta(minutes=90)  # within the SMS window; reported only after it closed

    def sms(dispatch: Dispatch) -> SendResult:
        return SendResult(accepted=True, provider_ref="sms-ref")

    def email(dispatch: Dispatch) -> SendResult:
        sms_dispatch = f"{dispatch.task_id}.1"
        assert client.task(dispatch.task_id).dispatch(sms_dispatch) is not None
        seen.append(
            client.engine.ingest(
                Receipt(dispatch_id=sms_dispatch, kind=ReceiptKind.DELIVERED, at=arrived, provider_event_id="late-sms")
            )
        )
        return SendResult(accepted=True, provider_ref="mail-ref")

    client = _mock_client({"sms": sms, "email": email}, clock)

    async def main() -> None:
        task_id = await client.submit(make_request(make_party("P1", email="p1@example.cn")))
        await client.run_until_idle()
        assert [r.outcome for r in seen] == [IngestOutcome.ACCEPTED]
        types = [s.event.TYPE for s in client.timeline(task_id)]
        assert types == [
            "task.created",
            "dispatch.queued",
            "dispatch.sent",
            "dispatch.timed_out",
            "dispatch.queued",
            "dispatch.delivered",
            "dispatch.sent",
            "service.served",
            "service.filed",
        ]
        task = client.task(task_id)
        assert task.state is TaskState.FILED
        assert task.served_at == arrived  # the earliest effective service counts (Rules Art. 31)
        assert task.served_dispatch_id == f"{task_id}.1"
        mail = task.dispatch(f"{task_id}.2")
        assert mail is not None
        assert mail.status is DispatchStatus.SENT
        assert mail.provider_ref == "mail-ref"
        assert client.store.pending_outbox() == []
        assert (
            await client.ingest(
                Receipt(
                    dispatch_id=f"{task_id}.1", kind=ReceiptKind.DELIVERED, at=arrived, provider_event_id="late-sms"
                )
            )
        ).outcome is IngestOutcome.DUPLICATE
        await client.aclose()

    run(main())


def test_receipt_that_races_a_poll_is_recorded_once() -> None:
    """A status poll and a callback report the same delivery: one event, whichever commits first."""
    clock = VirtualClock()
    client: AsyncDeliveryClient
    outcome: list[Any] = []

    def status(dispatch: Dispatch) -> StatusReport:
        receipt = Receipt(
            dispatch_id=dispatch.dispatch_id, kind=ReceiptKind.DELIVERED, at=clock.now(), provider_event_id="p-1"
        )
        outcome.append(client.engine.ingest(receipt))  # the callback lands while the poll is in flight
        return StatusReport(found=True, provider_ref="ref", receipts=(receipt,))

    ids = itertools.count(1)
    channel = MockChannel(
        lambda d: SendResult(accepted=True, provider_ref="ref"), name="mock-sms", status_handler=status
    )
    client = AsyncDeliveryClient(
        _store(),
        plugins=[channels_plugin(channel), RecordingSink()],
        clock=clock,
        load_entry_points=False,
        id_factory=lambda: f"T{next(ids)}",
    )

    async def main() -> None:
        task_id = await client.submit(make_request(make_party("P1")))
        await client.run_until_idle()
        assert [r.outcome for r in outcome] == [IngestOutcome.ACCEPTED]
        types = [s.event.TYPE for s in client.timeline(task_id)]
        assert types.count("dispatch.delivered") == 1
        assert types[-2:] == ["service.served", "service.filed"]
        await client.aclose()

    run(main())


def test_fake_channel_outcomes_and_ingest_agree() -> None:
    """A FakeChannel-scripted delivery seen by polling and the same fact pushed later: one event."""

    async def main() -> None:
        from delivery_sdk.testing import Harness

        h = Harness()
        h.sms.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(make_party("P1")))
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        ref = h.client.task(task_id).dispatches[0].provider_ref
        pushed = Receipt(
            dispatch_id=f"{task_id}.1",
            kind=ReceiptKind.DELIVERED,
            at=h.client.status(task_id).served_at or h.clock.now(),
            provider_event_id=f"{ref}-dlv",
        )
        assert (await h.client.ingest(pushed)).outcome is IngestOutcome.DUPLICATE
        assert [s.event.TYPE for s in h.client.timeline(task_id)].count("dispatch.delivered") == 1
        await h.aclose()

    run(main())
