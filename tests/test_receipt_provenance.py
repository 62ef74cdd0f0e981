"""Provenance of receipts (issue 15, part 1): only a dispatch's own adapters may report on it, each only what it
can know, whichever way the receipt arrives (ingest, ingest_callback, the receiver, the ASGI app, the engine's
own polls and sends). A refused receipt changes no task, is answered with a 4xx, and is counted durably.

Every test runs on the SQLite store and on the PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from delivery_sdk import (
    AsyncDeliveryClient,
    BaseChannel,
    ChannelKind,
    Dispatch,
    DispatchStatus,
    IngestOutcome,
    PolicyConfig,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TaskState,
    TaskStore,
    VirtualClock,
)
from delivery_sdk.callbacks import CallbackReceiver, asgi_app, sign_callback
from delivery_sdk.store import RefusalCount
from delivery_sdk.testing import FakeChannel, Harness, Outcome, channels_plugin, make_party, make_request
from delivery_sdk.trust import REPORTS, Refusal, Reporter, allowed_reports, provenance_refusal

SMS_SECRET = "the-sms-gateway-secret"
ESERVICE_SECRET = "the-platform-secret"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class PushFake(FakeChannel):
    """A fake channel whose provider also pushes JSON reports: [{"dispatch_id", "kind", "at", "id"}]."""

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        return [
            Receipt(
                dispatch_id=item["dispatch_id"],
                kind=ReceiptKind(item["kind"]),
                at=datetime.fromisoformat(item["at"]),
                provider_event_id=item["id"],
            )
            for item in json.loads(body)
        ]


def push(dispatch_id: str, kind: str, at: datetime, event_id: str = "ev-1") -> bytes:
    return json.dumps([{"dispatch_id": dispatch_id, "kind": kind, "at": at.isoformat(), "id": event_id}]).encode()


class World:
    """Two providers (an SMS gateway and the e-service platform), each with its own callback secret, and two
    parties: one reached by SMS (the attacker holds that gateway's secret), one by e-service (the victim)."""

    def __init__(self, store: TaskStore) -> None:
        self.clock = VirtualClock()
        self.sms = PushFake("push-sms", ChannelKind.SMS, clock=self.clock, default=Outcome.no_answer())
        self.eservice = PushFake("push-eservice", ChannelKind.ESERVICE, clock=self.clock, default=Outcome.no_answer())
        self.store = store
        ids = itertools.count(1)
        self.client = AsyncDeliveryClient(
            store,
            plugins=[channels_plugin(self.sms, self.eservice)],
            clock=self.clock,
            load_entry_points=False,
            id_factory=lambda: f"T{next(ids)}",
        )
        self.receiver = CallbackReceiver(
            self.client, secrets={"push-sms": SMS_SECRET, "push-eservice": ESERVICE_SECRET}
        )
        self.created = self.clock.now()

    async def start(self) -> None:
        self.own = await self.client.submit(make_request(make_party("P-sms", eservice=None)))
        self.victim = await self.client.submit(make_request(make_party("P-victim", mobile=None, eservice="acct-9")))
        await self.client.run_until_idle(until=self.clock.now() + timedelta(minutes=1))
        self.sms_dispatch = f"{self.own}.1"
        self.victim_dispatch = f"{self.victim}.1"
        record = self.client.task(self.victim).dispatch(self.victim_dispatch)
        assert record is not None
        assert record.channel == "push-eservice"
        own = self.client.task(self.own).dispatch(self.sms_dispatch)
        assert own is not None
        assert own.channel == "push-sms"

    def snapshot(self) -> tuple[Any, ...]:
        rows = [self.store.task_row(t) for t in (self.own, self.victim)]
        return (self.store.events_after(0, 10**6), rows, self.store.pending_outbox())

    def refusals(self) -> list[RefusalCount]:
        found: list[RefusalCount] = self.store.refusals()  # type: ignore[attr-defined]
        return found

    def signed(self, body: bytes, secret: str = SMS_SECRET) -> dict[str, str]:
        return sign_callback(secret, body, timestamp=self.clock.now())


@pytest.fixture
def world(store_factory: Any) -> Iterator[World]:
    w = World(store_factory())
    run(w.start())
    yield w
    run(w.client.aclose())


# -- the attack of the issue, end to end -------------------------------------------------------------------


def test_a_report_signed_with_the_sms_secret_cannot_serve_the_e_service_party(world: World) -> None:
    w = world
    before = w.snapshot()
    # "delivered" on the victim's e-service dispatch, at a moment before the task even existed
    forged_time = w.created - timedelta(days=30)
    body = push(w.victim_dispatch, "delivered", forged_time, "attack-1")
    response = w.receiver.handle("push-sms", w.signed(body), body)
    assert response.status == 403
    assert response.reason == "refused"
    assert response.body["refused"] == 1
    assert response.body["recorded"] == 0
    assert "T2" not in response.json().decode()  # the answer names no task
    assert w.snapshot() == before  # no task changed
    [refusal] = w.refusals()
    assert (refusal.source, refusal.reason, refusal.count) == ("push-sms", "wrong_adapter", 1)
    assert refusal.dispatch_id == w.victim_dispatch
    assert "push-eservice" in refusal.detail  # says whose dispatch it is; nothing of the body

    # the provider's retry is refused again (and counted again), and the engine serves nobody on it
    again = w.receiver.handle("push-sms", w.signed(body), body)
    assert again.status == 403
    run(w.client.run_until_idle(until=w.clock.now() + timedelta(minutes=5)))
    victim = w.client.task(w.victim)
    assert victim.state is TaskState.ELECTRONIC
    assert victim.served_at is None
    record = victim.dispatch(w.victim_dispatch)
    assert record is not None
    assert record.delivered_at is None
    assert record.status is DispatchStatus.SENT
    assert [r.count for r in w.refusals()] == [2]


def test_the_same_attack_through_the_asgi_app_ingest_callback_and_ingest(world: World) -> None:
    w = world
    before = w.snapshot()
    body = push(w.victim_dispatch, "read", w.clock.now(), "attack-2")

    async def over_http() -> httpx.Response:
        app = asgi_app(w.receiver)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://court.test") as http:
            return await http.post("/callbacks/push-sms", content=body, headers=w.signed(body))

    answer = run(over_http())
    assert answer.status_code == 403
    assert answer.json()["error"] == "refused"

    [result] = run(w.client.ingest_callback("push-sms", {}, body))
    assert result.outcome is IngestOutcome.REFUSED
    assert result.refusal == Refusal.WRONG_ADAPTER.value

    receipt = Receipt(dispatch_id=w.victim_dispatch, kind=ReceiptKind.DELIVERED, at=w.clock.now())
    result = run(w.client.ingest(receipt, channel="push-sms"))
    assert result.outcome is IngestOutcome.REFUSED
    assert result.event_type is None
    assert w.snapshot() == before
    assert [(r.source, r.reason, r.count) for r in w.refusals()] == [("push-sms", "wrong_adapter", 3)]


def test_refusals_survive_a_restart(store_factory: Any) -> None:
    w = World(store_factory())
    run(w.start())
    body = push(w.victim_dispatch, "delivered", w.clock.now(), "attack-3")
    assert w.receiver.handle("push-sms", w.signed(body), body).status == 403
    run(w.client.aclose())
    reopened = store_factory()  # a new store object on the same file / schema
    [refusal] = reopened.refusals()
    assert (refusal.source, refusal.reason, refusal.count) == ("push-sms", "wrong_adapter", 1)
    assert refusal.day == w.clock.now().date().isoformat()


def test_the_own_adapter_is_still_believed(world: World) -> None:
    w = world
    body = push(w.victim_dispatch, "delivered", w.clock.now(), "real-1")
    response = w.receiver.handle("push-eservice", w.signed(body, ESERVICE_SECRET), body)
    assert response.status == 200
    assert response.body["recorded"] == 1
    run(w.client.run_until_idle())
    assert w.client.status(w.victim).state is TaskState.FILED
    assert w.refusals() == []


def test_a_push_with_a_foreign_receipt_records_the_own_ones_and_answers_403(world: World) -> None:
    w = world
    body = json.dumps(
        [
            {"dispatch_id": w.sms_dispatch, "kind": "delivered", "at": w.clock.now().isoformat(), "id": "mine"},
            {"dispatch_id": w.victim_dispatch, "kind": "delivered", "at": w.clock.now().isoformat(), "id": "theirs"},
        ]
    ).encode()
    response = w.receiver.handle("push-sms", w.signed(body), body)
    assert response.status == 403
    assert (response.body["recorded"], response.body["refused"]) == (1, 1)
    own = w.client.task(w.own).dispatch(w.sms_dispatch)
    assert own is not None
    assert own.status is DispatchStatus.DELIVERED
    victim = w.client.task(w.victim).dispatch(w.victim_dispatch)
    assert victim is not None
    assert victim.status is DispatchStatus.SENT


# -- the own adapter reports only what it can know ---------------------------------------------------------


@pytest.mark.parametrize("kind", [ReceiptKind.CONSENTED, ReceiptKind.SIGNED, ReceiptKind.PRINTED])
def test_an_sms_gateway_reports_no_consent_signature_or_printing(world: World, kind: ReceiptKind) -> None:
    w = world
    before = w.snapshot()
    receipt = Receipt(dispatch_id=w.sms_dispatch, kind=kind, at=w.clock.now(), signer_role="recipient")
    result = run(w.client.ingest(receipt, channel="push-sms"))
    assert result.outcome is IngestOutcome.REFUSED
    assert result.refusal == Refusal.NOT_ITS_REPORT.value
    assert w.snapshot() == before
    # without a source (the application vouching for it) the kind must still fit the dispatch
    assert run(w.client.ingest(receipt)).outcome is IngestOutcome.REFUSED
    assert {r.reason for r in w.refusals()} == {"not_its_report"}


def test_a_trusted_caller_without_a_source_is_believed_for_the_dispatch_s_own_reports(world: World) -> None:
    w = world
    receipt = Receipt(dispatch_id=w.victim_dispatch, kind=ReceiptKind.DELIVERED, at=w.clock.now())
    assert run(w.client.ingest(receipt)).outcome is IngestOutcome.ACCEPTED
    assert w.refusals() == []


# -- print jobs: the centre and the carrier ----------------------------------------------------------------


def _print_job(h: Harness) -> tuple[str, str, str]:
    """A task whose print job went to its centre: (task id, dispatch id, centre id)."""

    async def go() -> str:
        task_id = await h.client.submit(make_request(make_party(mobile=None, consent=False)))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=1))
        return task_id

    task_id = run(go())
    task = h.client.task(task_id)
    assert task.state is TaskState.ROUTED
    record = task.dispatch(task.postal_dispatch_id or "")
    assert record is not None
    assert record.centre_id is not None
    return task_id, record.dispatch_id, record.centre_id


def test_a_print_centre_reports_printing_and_mailing_the_carrier_the_signature(store_factory: Any) -> None:
    h = Harness(store_factory(), kinds=())
    try:
        task_id, did, centre = _print_job(h)
        now = h.clock.now()

        def ingest(kind: ReceiptKind, source: str, event_id: str) -> IngestOutcome:
            receipt = Receipt(
                dispatch_id=did,
                kind=kind,
                at=now,
                provider_event_id=event_id,
                waybill="EMS0000000001CN" if kind is ReceiptKind.MAILED else None,
                signer_role="recipient" if kind is ReceiptKind.SIGNED else None,
            )
            outcome: IngestOutcome = run(h.client.ingest(receipt, channel=source)).outcome
            return outcome

        assert ingest(ReceiptKind.SIGNED, centre, "c-sign") is IngestOutcome.REFUSED  # a centre signs for nobody
        assert ingest(ReceiptKind.MAILED, "fake-sms", "s-mail") is IngestOutcome.REFUSED  # not its dispatch
        assert ingest(ReceiptKind.SIGNED, "PC-429004", "x-sign") is IngestOutcome.REFUSED  # another centre
        assert ingest(ReceiptKind.PRINTED, "fake-ems", "e-print") is IngestOutcome.REFUSED  # carriers do not print
        assert h.client.task(task_id).state is TaskState.ROUTED
        assert ingest(ReceiptKind.PRINTED, centre, "c-print") is IngestOutcome.ACCEPTED
        assert ingest(ReceiptKind.MAILED, centre, "c-mail") is IngestOutcome.ACCEPTED
        assert ingest(ReceiptKind.SIGNED, "fake-ems", "e-sign") is IngestOutcome.ACCEPTED
        record = h.client.task(task_id).dispatch(did)
        assert record is not None
        assert record.status is DispatchStatus.DELIVERED
        reasons = sorted((r.source, r.reason) for r in h.store.refusals())  # type: ignore[attr-defined]
        assert reasons == sorted(
            [
                ("PC-429004", "wrong_adapter"),
                (centre, "not_its_report"),
                ("fake-ems", "not_its_report"),
                ("fake-sms", "wrong_adapter"),
            ]
        )
    finally:
        run(h.aclose())


# -- the engine's own polls and sends ----------------------------------------------------------------------


class Liar(BaseChannel):
    """An SMS adapter whose answers about one dispatch carry a delivery report for another (the task's
    e-service dispatch): through ``send``'s receipts or ``status``'s."""

    kind = ChannelKind.SMS

    def __init__(self, name: str, clock: VirtualClock, *, via: str) -> None:
        self.name = name
        self.clock = clock
        self.via = via
        self.target: str | None = None
        self.sent: list[str] = []

    def _lie(self) -> tuple[Receipt, ...]:
        if self.target is None:
            return ()
        at = self.clock.now() - timedelta(seconds=1)
        return (Receipt(dispatch_id=self.target, kind=ReceiptKind.DELIVERED, at=at, provider_event_id="lie"),)

    async def send(self, dispatch: Dispatch) -> SendResult:
        self.sent.append(dispatch.dispatch_id)
        self.target = f"{dispatch.task_id}.1"  # the e-service dispatch, queued first
        return SendResult(accepted=True, provider_ref="ref", receipts=self._lie() if self.via == "send" else ())

    async def status(self, dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=True, provider_ref="ref", receipts=self._lie() if self.via == "status" else ())


@pytest.mark.parametrize("via", ["send", "status"])
def test_an_adapter_answers_only_for_the_dispatch_it_was_asked_about(store_factory: Any, via: str) -> None:
    store = store_factory()
    clock = VirtualClock()
    liar = Liar("liar-sms", clock, via=via)
    quiet = FakeChannel("quiet-eservice", ChannelKind.ESERVICE, clock=clock, default=Outcome.no_answer())

    async def scenario() -> None:
        client = AsyncDeliveryClient(
            store,
            plugins=[channels_plugin(quiet, liar)],
            clock=clock,
            policy=PolicyConfig(parallel=True),
            load_entry_points=False,
        )
        try:
            task_id = await client.submit(make_request(make_party(eservice="acct-1")))
            await client.run_until_idle(until=clock.now() + timedelta(hours=6))
            task = client.task(task_id)
            assert liar.sent == [f"{task_id}.2"]
            eservice = task.dispatch(f"{task_id}.1")
            assert eservice is not None
            assert eservice.channel == "quiet-eservice"
            assert eservice.delivered_at is None  # the liar's report on it was not applied
            assert task.served_at is None
            refusals = store.refusals()  # type: ignore[attr-defined]
            assert {(r.source, r.reason) for r in refusals} == {("liar-sms", "other_dispatch")}
            assert refusals[0].dispatch_id == f"{task_id}.2"  # the dispatch the liar was asked about
        finally:
            await client.aclose()

    run(scenario())


# -- the rule table ----------------------------------------------------------------------------------------


def test_consent_comes_only_from_the_staff_calls_channel() -> None:
    reporting = {key for key, kinds in REPORTS.items() if ReceiptKind.CONSENTED in kinds}
    assert reporting == {(ChannelKind.PHONE, Reporter.CHANNEL)}
    assert ReceiptKind.SIGNED not in allowed_reports(ChannelKind.PRINT, Reporter.CENTRE)
    assert ReceiptKind.PRINTED not in allowed_reports(ChannelKind.PRINT, Reporter.CARRIER)
    assert ReceiptKind.SIGNED in allowed_reports(ChannelKind.PRINT, None)


def test_provenance_refusal_names_the_dispatch_s_own_adapter(world: World) -> None:
    record = world.client.task(world.victim).dispatch(world.victim_dispatch)
    assert record is not None
    refused = provenance_refusal(record, ReceiptKind.DELIVERED, "push-sms", None)
    assert refused is not None
    why, message = refused
    assert why is Refusal.WRONG_ADAPTER
    assert world.victim_dispatch in message
    assert "push-eservice" in message
    assert provenance_refusal(record, ReceiptKind.DELIVERED, "push-eservice", None) is None


# -- supervision -------------------------------------------------------------------------------------------


def test_supervision_counts_refusals_by_source_and_reason(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from delivery_sdk import SQLiteStore
    from delivery_sdk.supervision import Supervisor

    path = tmp_path / "store.sqlite3"
    w = World(SQLiteStore(path))
    run(w.start())
    for n in range(3):
        body = push(w.victim_dispatch, "delivered", w.clock.now(), f"attack-{n}")
        assert w.receiver.handle("push-sms", w.signed(body), body).status == 403
    receipt = Receipt(dispatch_id=w.sms_dispatch, kind=ReceiptKind.CONSENTED, at=w.clock.now())
    assert run(w.client.ingest(receipt, channel="push-sms")).outcome is IngestOutcome.REFUSED
    run(w.client.aclose())
    w.store.close()
    with Supervisor(path) as sup:
        stats = sup.statistics()
    assert stats.refused == 4
    assert [(r.source, r.reason, r.count) for r in stats.refused_receipts] == [
        ("push-sms", "wrong_adapter", 3),
        ("push-sms", "not_its_report", 1),
    ]
    shown = stats.to_dict()["refused_receipts"]
    assert shown["total"] == 4
    assert shown["by_reason"] == {"not_its_report": 1, "wrong_adapter": 3}
    assert shown["sources"][0]["dispatch_id"] == w.victim_dispatch
    # the operator sees them in `delivery-sdk stats` too
    from delivery_sdk.cli import main

    assert main(["stats", "--store", str(path)]) == 0
    assert "被拒绝的服务商回执" in capsys.readouterr().out  # court staff read Chinese by default
    assert main(["stats", "--store", str(path), "--lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (at,) = [n for n, line in enumerate(lines) if line.split() == ["refused", "provider", "reports", "4"]]
    following = lines[at + 1]
    assert following.split()[0] == "push-sms"
    assert " 3  " in following  # the count, then the last time (Beijing time)
