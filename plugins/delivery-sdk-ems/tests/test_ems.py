"""The EMS carrier adapter against its local emulator (real sockets on 127.0.0.1), alone and through the engine.

Run after ``pip install -e plugins/delivery-sdk-ems`` (the entry-point test needs the installed distribution).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx
import pytest
from delivery_sdk_ems import (
    ENV_CALLBACK_SECRET,
    ENV_RATE,
    ENV_SENDER_ADDRESS,
    ENV_SENDER_PHONE,
    ENV_TOKEN,
    ENV_URL,
    EmsCarrier,
    EnvEmsPlugin,
    Sender,
    traces_to_receipts,
)
from delivery_sdk_ems.emulator import EmsEmulator, Fault, Plan, sign_push

from delivery_sdk import (
    AgentRole,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Contact,
    ContactKind,
    Dispatch,
    PluginError,
    ReceiptKind,
    Representative,
    ServiceMethod,
    TaskState,
    TransientChannelError,
)
from delivery_sdk.callbacks import CallbackReceiver
from delivery_sdk.client import AsyncDeliveryClient
from delivery_sdk.clock import VirtualClock
from delivery_sdk.events import Event, Mailed, PostReturned, PostSigned, Served
from delivery_sdk.law.service import BASIS_CONFIRMED_WRONG, BASIS_POSTAL, BASIS_REFUSED
from delivery_sdk.model import Case, Document, DocumentKind, Party
from delivery_sdk.plugins import PluginHost
from delivery_sdk.records import AddressCandidate
from delivery_sdk.retry import RetryConfig, call_with_retries
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import FakeAddressSource, RecordingSink, hubei_centres, make_party, make_request
from delivery_sdk.testing.fakes import FakePrintCentre, channels_plugin, print_centres_plugin

TOKEN = "ems-token"
SECRET = "ems-callback-secret"
NAME = "李四光"
MOBILE = "13912345678"
HOME = "湖北省武汉市武昌区中北路1号"
YICHANG = "湖北省宜昌市夷陵区小溪塔街道发展大道57号"
SENDER = Sender(address="湖北省武汉市武昌区法院路1号", phone="027-88886666")
PII = (NAME, MOBILE, HOME, "中北路", "13912", YICHANG, "发展大道")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def ems() -> Iterator[EmsEmulator]:
    with EmsEmulator(token=TOKEN, callback_secret=SECRET) as server:
        yield server
    assert server.errors == []


def carrier(server: EmsEmulator, **kwargs: Any) -> EmsCarrier:
    return EmsCarrier(server.url, token=TOKEN, callback_secret=SECRET, sender=SENDER, **kwargs)


def dispatch(dispatch_id: str = "T000001.1", *, phone: str | None = MOBILE, waybill: str | None = None) -> Dispatch:
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="PC-420100",
        kind=ChannelKind.PRINT,
        contact=Contact(kind=ContactKind.POSTAL, value=HOME, division_code="420106"),
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"),
        recipient_name=NAME,
        documents=(Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256="a" * 64),),
        centre_id="PC-420100",
        waybill=waybill,
        recipient_phone=phone,
    )


# ---------------------------------------------------------------------------------------------------
# The adapter alone
# ---------------------------------------------------------------------------------------------------


def test_waybill_order_carries_the_order_and_is_idempotent_on_the_dispatch_id(ems: EmsEmulator) -> None:
    ems.enqueue(Plan.signed())

    async def main() -> None:
        async with carrier(ems, partner_id="HB-COURT-01") as c:
            first = await c.send(dispatch())
            again = await c.send(dispatch())
            assert first.accepted
            assert first.provider_ref == ems.waybill_of("T000001.1")
            assert again.provider_ref == first.provider_ref
        order = ems.orders["T000001.1"].body
        assert order["receiver"] == {"name": NAME, "mobile": MOBILE, "address": HOME, "division_code": "420106"}
        assert order["sender"] == {"name": "武汉市武昌区人民法院", "address": SENDER.address, "phone": SENDER.phone}
        assert order["reference"] == {"task_id": "T000001", "case_number": "(2026)鄂0106民初1号", "documents": 1}
        assert ems.order_calls == 2
        assert len(ems.orders) == 1

    asyncio.run(main())


def test_a_refused_order_is_a_permanent_refusal_with_the_carriers_code(ems: EmsEmulator) -> None:
    async def main() -> None:
        async with carrier(ems) as c:
            result = await c.send(dispatch(phone=None))
        assert not result.accepted
        assert result.reason == "ems.order: refused with HTTP 422 (RECEIVER_PHONE_REQUIRED)"
        assert ems.orders == {}

    asyncio.run(main())


def test_a_timeout_leaves_the_order_in_doubt_and_the_status_call_finds_it(ems: EmsEmulator) -> None:
    ems.enqueue(Plan.signed())
    ems.fail(Fault(path_prefix="/v1/orders", delay=1.0))  # the order is taken, the answer comes too late

    async def main() -> None:
        async with carrier(ems, timeout=0.3) as c:
            with pytest.raises(TransientChannelError, match="timed out"):
                await c.send(dispatch())
            report = await c.status(dispatch())  # what the engine asks before it would send again
            assert report.found
            assert report.provider_ref == ems.waybill_of("T000001.1")
            assert not (await c.status(dispatch("T000009.1"))).found
            again = await c.send(dispatch())
            assert again.provider_ref == report.provider_ref
        assert len(ems.orders) == 1

    asyncio.run(main())


def test_5xx_is_transient_and_the_retry_succeeds(ems: EmsEmulator) -> None:
    ems.enqueue(Plan.signed())
    ems.fail(Fault(path_prefix="/v1/orders", status=503), Fault(path_prefix="/v1/orders", status=502))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        async with carrier(ems) as c:
            result = await call_with_retries(
                "ems.send", lambda: c.send(dispatch()), config=RetryConfig(attempts=4, initial=0.01), sleep=sleep
            )
        assert result.accepted
        assert result.provider_ref == ems.waybill_of("T000001.1")
        assert [m for m, p in ems.requests] == ["POST", "POST", "POST"]
        assert len(waits) == 2

    asyncio.run(main())


def test_429_honours_retry_after(ems: EmsEmulator) -> None:
    ems.enqueue(Plan.signed())
    ems.fail(Fault(path_prefix="/v1/orders", status=429, headers=(("Retry-After", "7"),)))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        async with carrier(ems) as c:
            with pytest.raises(TransientChannelError) as excinfo:
                await c.send(dispatch())
            assert excinfo.value.retry_after == 7.0
            result = await call_with_retries(
                "ems.send", lambda: c.send(dispatch()), config=RetryConfig(initial=0.01, maximum=30), sleep=sleep
            )
        assert result.accepted
        assert waits == []  # the fault was used up by the first call
        ems.fail(Fault(path_prefix="/v1/orders", status=429, headers=(("Retry-After", "7"),)))
        async with carrier(ems) as c:
            await call_with_retries(
                "ems.send", lambda: c.send(dispatch()), config=RetryConfig(initial=0.01, maximum=30), sleep=sleep
            )
        assert waits
        assert waits[0] >= 7.0

    asyncio.run(main())


def test_other_4xx_on_tracking_is_permanent(ems: EmsEmulator) -> None:
    ems.fail(Fault(path_prefix="/v1/waybills/", status=403))

    async def main() -> None:
        async with carrier(ems) as c:
            with pytest.raises(ChannelError, match="HTTP 403") as excinfo:
                await c.status(dispatch(waybill="1100000000001"))
            assert not isinstance(excinfo.value, TransientChannelError)

    asyncio.run(main())


def test_polling_reports_acceptance_then_the_signature_as_time_passes() -> None:
    clock = VirtualClock(T0)
    with EmsEmulator(token=TOKEN, callback_secret=SECRET, now=clock.now) as ems:
        ems.enqueue(Plan.signed("FAMILY", after=timedelta(days=2)))

        async def main() -> None:
            async with carrier(ems) as c:
                waybill = (await c.send(dispatch())).provider_ref
                assert waybill is not None
                mailed = dispatch(waybill=waybill)
                assert (await c.status(mailed)).receipts == ()
                clock.advance(timedelta(hours=13))
                (accepted,) = (await c.status(mailed)).receipts
                assert accepted.kind is ReceiptKind.MAILED
                assert accepted.waybill == waybill
                clock.advance(timedelta(days=2))
                report = await c.status(mailed)
                assert [r.kind for r in report.receipts] == [ReceiptKind.MAILED, ReceiptKind.SIGNED]
                signed = report.receipts[-1]
                assert signed.signer_role == "family_member"
                assert signed.at == T0 + timedelta(days=2)
                assert signed.provider_event_id == f"ems:{waybill}-sig"
                assert not (await c.status(dispatch(waybill="1100000000001"))).found

        asyncio.run(main())
        assert ems.errors == []


def test_a_signature_without_a_signer_type_names_nobody() -> None:
    # CPL Art. 88: the carrier did not say who signed, so nobody is presumed to have (law.postal_service: no
    # service until a person checks the return receipt)
    trace = {"trace_id": "t1", "op_time": "2026-11-05T10:20:00+08:00", "op_code": "SIGNED"}
    (receipt,) = traces_to_receipts("T1.1", "1100000000001", [trace])
    assert (receipt.kind, receipt.signer_role) == (ReceiptKind.SIGNED, None)


@pytest.mark.parametrize(
    ("trace", "kind", "detail"),
    [
        ({"op_code": "SIGNED", "signer_type": "SELF"}, ReceiptKind.SIGNED, "recipient"),
        ({"op_code": "SIGNED", "signer_type": "FAMILY"}, ReceiptKind.SIGNED, "family_member"),
        ({"op_code": "SIGNED", "signer_type": "UNIT_MAILROOM"}, ReceiptKind.SIGNED, "mail_room"),
        ({"op_code": "SIGNED", "signer_type": "AGENT"}, ReceiptKind.SIGNED, "agent"),
        ({"op_code": "SIGNED", "signer_type": "PROPERTY"}, ReceiptKind.SIGNED, "other:PROPERTY"),
        ({"op_code": "SIGNED", "signer_type": "LEGAL_REP"}, ReceiptKind.SIGNED, "legal_representative"),
        ({"op_code": "RETURNED", "return_reason": "REFUSED"}, ReceiptKind.RETURNED, "refused"),
        ({"op_code": "RETURNED", "return_reason": "ADDRESS_UNKNOWN"}, ReceiptKind.RETURNED, "address_wrong"),
        ({"op_code": "RETURNED", "return_reason": "RECIPIENT_UNKNOWN"}, ReceiptKind.RETURNED, "address_wrong"),
        ({"op_code": "RETURNED", "return_reason": "MOVED"}, ReceiptKind.RETURNED, "moved"),
        ({"op_code": "RETURNED", "return_reason": "UNCLAIMED"}, ReceiptKind.RETURNED, "unclaimed"),
        ({"op_code": "RETURNED", "return_reason": "STORM"}, ReceiptKind.RETURNED, "unclaimed"),
        ({"op_code": "ACCEPT"}, ReceiptKind.MAILED, "1100000000001"),
    ],
)
def test_traces_become_receipts(trace: dict[str, str], kind: ReceiptKind, detail: str) -> None:
    full = {"trace_id": "t1", "op_time": "2026-11-05T10:20:00+08:00", **trace}
    (receipt,) = traces_to_receipts("T1.1", "1100000000001", [full])
    assert receipt.kind is kind
    assert detail in (receipt.signer_role, receipt.reason, receipt.waybill)
    assert receipt.provider_event_id == "ems:t1"
    assert traces_to_receipts("T1.1", "1100000000001", [dict(full, op_code="TRANSIT")]) == []


# ---------------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
BODY = (
    b'{"waybill_no": "1100000000001", "order_no": "T1.1", "traces": [{"trace_id": "t9", "op_code": "SIGNED",'
    b' "op_time": "2026-11-05T10:00:00+08:00", "signer_type": "SELF"}]}'
)


def test_a_signed_push_verifies_and_parses() -> None:
    c = EmsCarrier("http://127.0.0.1:9", token=TOKEN, callback_secret=SECRET)
    headers = sign_push(SECRET, BODY, timestamp=int(NOW.timestamp()), nonce="n-1")
    assert c.verify_callback(headers, BODY, NOW) == "ems:n-1"
    (receipt,) = c.parse_callback(headers, BODY)
    assert (receipt.dispatch_id, receipt.kind, receipt.signer_role) == ("T1.1", ReceiptKind.SIGNED, "recipient")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"body": BODY.replace(b"SELF", b"FAMILY")}, "forged", id="tampered-body"),
        pytest.param({"secret": "guessed"}, "forged", id="wrong-secret"),
        pytest.param({"drop": "x-ems-signature"}, "forged", id="no-signature"),
        pytest.param({"drop": "x-ems-nonce"}, "forged", id="no-nonce"),
        pytest.param({"stamp": NOW - timedelta(minutes=6)}, "stale", id="stale-replay"),
        pytest.param({"stamp": NOW + timedelta(minutes=6)}, "stale", id="from-the-future"),
    ],
)
def test_forged_or_stale_pushes_are_rejected(change: dict[str, Any], reason: str) -> None:
    c = EmsCarrier("http://127.0.0.1:9", token=TOKEN, callback_secret=SECRET)
    stamp = change.get("stamp", NOW)
    headers = sign_push(change.get("secret", SECRET), BODY, timestamp=int(stamp.timestamp()), nonce="n-1")
    headers = {k: v for k, v in headers.items() if k.lower() != change.get("drop")}
    with pytest.raises(CallbackRejected) as excinfo:
        c.verify_callback(headers, change.get("body", BODY), NOW)
    assert excinfo.value.reason == reason


def test_without_a_secret_every_push_is_unsigned() -> None:
    c = EmsCarrier("http://127.0.0.1:9", token=TOKEN)
    headers = sign_push(SECRET, BODY, timestamp=int(NOW.timestamp()), nonce="n-1")
    with pytest.raises(CallbackRejected) as excinfo:
        c.verify_callback(headers, BODY, NOW)
    assert excinfo.value.reason == "unsigned"


# ---------------------------------------------------------------------------------------------------
# Through the engine: the print centres are fakes, the carrier is the plugin against its emulator
# ---------------------------------------------------------------------------------------------------


class CourtReceiver:
    """The court's callback endpoint on 127.0.0.1: hands each push to a CallbackReceiver in the engine's loop."""

    def __init__(self, receiver: CallbackReceiver, loop: asyncio.AbstractEventLoop) -> None:
        outer = self
        self.statuses: list[tuple[int, str | None]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                channel = self.path.rsplit("/", 1)[-1]
                future = asyncio.run_coroutine_threadsafe(
                    receiver.ahandle(channel, dict(self.headers.items()), body), loop
                )
                response = future.result(timeout=10)
                outer.statuses.append((response.status, response.reason))
                payload = response.json()
                self.send_response(response.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/callbacks/ems"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class World:
    def __init__(self, ems: EmsEmulator, clock: VirtualClock) -> None:
        self.clock = clock
        self.ems = ems
        self.carrier = carrier(ems)
        self.centres = hubei_centres(clock)
        self.addresses = FakeAddressSource()
        self.sink = RecordingSink()
        self.store = SQLiteStore(":memory:")
        self.client = AsyncDeliveryClient(
            self.store,
            plugins=[channels_plugin(self.carrier), print_centres_plugin(*self.centres), self.addresses, self.sink],
            clock=clock,
            load_entry_points=False,
        )

    def centre(self, code: str) -> FakePrintCentre:
        return next(c for c in self.centres if c.info.centre_id == f"PC-{code}")

    def types(self, task_id: str) -> list[str]:
        return [s.event.TYPE for s in self.client.timeline(task_id)]

    def events(self, task_id: str, cls: type[Event]) -> list[Any]:
        return [s.event for s in self.client.timeline(task_id) if isinstance(s.event, cls)]


def run_world(scenario: Any) -> None:
    clock = VirtualClock(T0)
    with EmsEmulator(token=TOKEN, callback_secret=SECRET, now=clock.now) as ems:

        async def main() -> None:
            world = World(ems, clock)
            try:
                await scenario(world)
            finally:
                await world.client.aclose()
                world.store.close()

        asyncio.run(main())
        assert ems.errors == []
        assert ems.plans == []


POSTAL = ["print.routed", "dispatch.queued", "dispatch.sent", "print.printed", "post.mailed"]


def party_of(pid: str, *, agents: tuple[Representative, ...] = (), address_confirmed: bool = False) -> Party:
    party = make_party(pid, mobile=MOBILE, consent=False, address=HOME, address_confirmed=address_confirmed)
    return attrs.evolve(party, name=NAME, agents=agents)


def test_engine_signed_by_a_family_member_through_the_ems_plugin() -> None:
    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.signed("FAMILY", after=timedelta(days=2)))
        task_id = await w.client.submit(make_request(party_of("P-e1")))
        await w.client.run_until_idle()
        assert w.types(task_id) == [
            "task.created",
            "service.fell_back_to_post",
            *POSTAL,
            "post.signed",
            "service.served",
            "service.filed",
        ]
        job = f"{task_id}.1"
        waybill = w.ems.waybill_of(job)
        (mailed,) = w.events(task_id, Mailed)
        assert mailed.waybill == waybill  # the centre printed the label the carrier issued
        assert w.centre("420100").jobs[0].waybill == waybill
        assert w.centre("420100").jobs[0].recipient_phone == MOBILE
        (signed,) = w.events(task_id, PostSigned)
        assert signed.signer_role == "family_member"
        (served,) = w.events(task_id, Served)
        assert served.method is ServiceMethod.POSTAL
        assert served.basis == "CPL Arts. 88 and 91 (signed for by a co-resident adult family member)"
        assert served.effective_at == signed.signed_at == w.ems.orders[job].created_at + timedelta(days=2)
        assert w.client.status(task_id).state is TaskState.FILED
        assert len(w.ems.orders) == 1

    run_world(scenario)


def test_engine_refusal_is_deemed_served_on_the_return_day_through_the_ems_plugin() -> None:
    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.returned("REFUSED", after=timedelta(days=4)))
        task_id = await w.client.submit(make_request(party_of("P-e2")))
        await w.client.run_until_idle()
        assert w.types(task_id)[-4:] == ["post.mailed", "post.returned", "service.served", "service.filed"]
        (returned,) = w.events(task_id, PostReturned)
        (served,) = w.events(task_id, Served)
        assert returned.reason.value == "refused"
        assert served.basis == BASIS_REFUSED
        assert (
            served.effective_at == returned.returned_at == w.ems.orders[f"{task_id}.1"].created_at + timedelta(days=4)
        )
        assert w.addresses.calls == []

    run_world(scenario)


def test_engine_returned_then_remailed_then_signed_through_the_ems_plugin() -> None:
    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.returned("ADDRESS_UNKNOWN"), Plan.signed("SELF"))
        w.addresses.candidates["P-e3"] = [
            AddressCandidate(
                contact=Contact(kind=ContactKind.POSTAL, value=YICHANG, division_code="420506"),
                source="household_registry",
                confidence=0.9,
            )
        ]
        task_id = await w.client.submit(make_request(party_of("P-e3")))
        await w.client.run_until_idle()
        assert w.types(task_id) == [
            "task.created",
            "service.fell_back_to_post",
            *POSTAL,
            "post.returned",
            "address.updated",
            *POSTAL,
            "post.signed",
            "service.served",
            "service.filed",
        ]
        first, second = w.ems.orders[f"{task_id}.1"], w.ems.orders[f"{task_id}.2"]
        assert second.body["receiver"]["address"] == YICHANG
        assert second.body["receiver"]["division_code"] == "420506"
        assert first.waybill != second.waybill
        (served,) = w.events(task_id, Served)
        assert served.basis == BASIS_POSTAL
        assert served.dispatch_id == f"{task_id}.2"

    run_world(scenario)


def test_engine_confirmed_address_returned_is_deemed_served_through_the_ems_plugin() -> None:
    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.returned("MOVED", after=timedelta(days=5)))
        task_id = await w.client.submit(make_request(party_of("P-e4", address_confirmed=True)))
        await w.client.run_until_idle()
        (returned,) = w.events(task_id, PostReturned)
        (served,) = w.events(task_id, Served)
        assert served.basis == BASIS_CONFIRMED_WRONG
        assert served.effective_at == returned.returned_at
        assert w.addresses.calls == []

    run_world(scenario)


def test_engine_tracks_by_signed_push_callbacks_duplicates_and_replays_recorded_once() -> None:
    async def scenario(w: World) -> None:
        agent = Representative(name="王律师", role=AgentRole.LITIGATION_AGENT)
        w.ems.enqueue(Plan.signed("AGENT", after=timedelta(days=1)))
        task_id = await w.client.submit(make_request(party_of("P-e5", agents=(agent,))))
        job = f"{task_id}.1"
        await w.client.run_until_idle(until=T0 + timedelta(hours=13))
        assert w.client.status(task_id).state is TaskState.MAILED
        w.clock.advance_to(T0 + timedelta(days=1, hours=1))  # signed; the next poll is hours away

        court = CourtReceiver(CallbackReceiver(w.client), asyncio.get_running_loop())
        try:
            assert await asyncio.to_thread(w.ems.push, court.url, job) == 200
            assert w.client.status(task_id).state is TaskState.MAILED  # recorded; the engine acts next step
            # the carrier pushes the same traces again (a fresh nonce): nothing new is recorded
            assert await asyncio.to_thread(w.ems.push, court.url, job) == 200
            # a captured push sent again as it was: refused before it is parsed
            headers, body = w.ems.push_request(job)
            forged = dict(headers, **{"X-Ems-Signature": "0" * 64})
            receiver = CallbackReceiver(w.client)
            assert receiver.handle("ems", headers, body).status == 200
            assert receiver.handle("ems", headers, body).reason == "replayed"
            assert receiver.handle("ems", forged, body).reason == "forged"
        finally:
            court.close()
        assert court.statuses == [(200, None), (200, None)]
        signed = w.events(task_id, PostSigned)
        assert len(signed) == 1
        assert signed[0].signer_role == "agent"
        await w.client.run_until_idle()
        (served,) = w.events(task_id, Served)
        assert served.basis == "CPL Arts. 88 and 91 (signed for by the litigation agent or designated receiver)"
        assert w.client.status(task_id).state is TaskState.FILED

    run_world(scenario)


def test_engine_carrier_refusing_the_order_asks_a_person_and_nothing_is_printed() -> None:
    async def scenario(w: World) -> None:
        w.carrier.requires = frozenset()  # a carrier that does not declare what it needs: found out at the order
        party = make_party("P-e6", mobile=None, consent=False, address=HOME)  # no phone: the carrier refuses
        task_id = await w.client.submit(make_request(party))
        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason == (
            "the carrier refused the waybill order: ems.order: refused with HTTP 422 (RECEIVER_PHONE_REQUIRED); "
            "the party has no mobile number on the task: add one with client.set_contact(task_id, "
            "Contact(kind=ContactKind.MOBILE, value=...)) to go on by post"
        )
        assert all(c.jobs == [] for c in w.centres)

        # the clerk adds a phone: the task goes on by post, through the same centre (the carrier refused, not it)
        w.ems.enqueue(Plan.signed(after=timedelta(days=2)))
        await w.client.set_contact(task_id, Contact(kind=ContactKind.MOBILE, value=MOBILE), actor="clerk-07")
        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        assert status.centre_id == "PC-420100"
        (job,) = w.centre("420100").jobs
        assert job.recipient_phone == MOBILE
        assert w.ems.orders[job.dispatch_id].body["receiver"]["mobile"] == MOBILE

    run_world(scenario)


def test_the_carrier_declares_that_its_waybills_need_a_phone() -> None:
    from delivery_sdk.channels import RECEIVER_PHONE, WAYBILL_REQUIREMENTS, carrier_requires

    assert EmsCarrier.requires == frozenset({RECEIVER_PHONE})
    assert carrier_requires(EmsCarrier("http://127.0.0.1:1", token=TOKEN)) <= WAYBILL_REQUIREMENTS.keys()


def test_a_postal_only_party_is_served_by_post_after_a_clerk_adds_a_phone(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 23: the real EMS plugin refuses a waybill without the receiver's phone. The client says so at
    submit, the engine orders nothing and asks a person, and a phone the clerk adds lets the carrier take it:
    ordered, printed, mailed, signed, served, filed."""
    caplog.set_level(logging.WARNING, logger="delivery_sdk.client")

    async def scenario(w: World) -> None:
        party = attrs.evolve(make_party("P-post", mobile=None, consent=False, address=HOME), name=NAME)
        request = make_request(party)
        (warning,) = w.client.check_request(request)
        assert warning.code == "receiver_phone_missing"
        assert warning.adapter == "ems"
        assert "client.set_contact" in warning.message
        task_id = await w.client.submit(request)
        assert [r.getMessage() for r in caplog.records] == [
            f"task {task_id}: {warning.message} (receiver_phone_missing)"
        ]

        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason is not None
        assert "needs the receiver's phone on the waybill (receiver_phone)" in status.attention_reason
        assert w.ems.order_calls == 0  # nothing was ordered that the carrier would refuse
        assert w.addresses.calls == ["P-post"]  # assisted person search was asked for a phone first
        assert all(c.jobs == [] for c in w.centres)

        w.ems.enqueue(Plan.signed("SELF", after=timedelta(days=2)))
        phone = Contact(kind=ContactKind.MOBILE, value=MOBILE)
        await w.client.set_contact(task_id, phone, actor="clerk-07", note="电话经当事人单位核实")
        await w.client.run_until_idle()

        status = w.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        assert status.basis == BASIS_POSTAL
        types = w.types(task_id)
        assert types[types.index("contact.updated") :] == [
            "contact.updated",
            "service.fell_back_to_post",  # from the start: no consent, so by post at once
            *POSTAL,
            "post.signed",
            "service.served",
            "service.filed",
        ]
        (job,) = w.centre("420100").jobs
        order = w.ems.orders[job.dispatch_id].body
        assert order["receiver"]["mobile"] == MOBILE
        assert job.waybill == w.ems.waybill_of(job.dispatch_id)
        assert job.recipient_phone == MOBILE
        (update,) = [s.event for s in w.client.timeline(task_id) if s.event.TYPE == "contact.updated"]
        assert (update.source, update.actor, update.contact.source) == ("staff", "clerk-07", "staff")

    run_world(scenario)


def test_a_phone_found_by_assisted_person_search_goes_on_the_waybill() -> None:
    async def scenario(w: World) -> None:
        found = Contact(kind=ContactKind.MOBILE, value=MOBILE)
        w.addresses.candidates["P-found"] = [
            AddressCandidate(contact=found, source="household_registry", confidence=0.8)
        ]
        w.ems.enqueue(Plan.signed(after=timedelta(days=2)))
        party = make_party("P-found", mobile=None, consent=False, address=HOME)
        task_id = await w.client.submit(make_request(party))
        await w.client.run_until_idle()
        assert w.client.status(task_id).state is TaskState.FILED
        (job,) = w.centre("420100").jobs
        assert w.ems.orders[job.dispatch_id].body["receiver"]["mobile"] == MOBILE
        (update,) = [s.event for s in w.client.timeline(task_id) if s.event.TYPE == "contact.updated"]
        assert update.source == "household_registry"
        assert update.actor is None
        assert update.confidence == 0.8
        assert "assisted person search" in update.basis

    run_world(scenario)


def test_no_personal_data_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.returned("STORM"))
        w.ems.fail(Fault(path_prefix="/v1/orders", status=500))
        task_id = await w.client.submit(make_request(party_of("P-e7")))
        await w.client.run_until_idle(until=T0 + timedelta(days=4))
        assert "post.returned" in w.types(task_id)

    run_world(scenario)
    text = caplog.text
    assert "unknown; recorded as unclaimed" in text
    for secret in PII:
        assert secret not in text
    assert repr(dispatch()).count(MOBILE) == 0
    assert repr(SENDER).count(SENDER.phone) == 0


# ---------------------------------------------------------------------------------------------------
# Configuration and the entry point
# ---------------------------------------------------------------------------------------------------


def test_entry_point_registers_the_carrier_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    (ep,) = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "ems"]
    assert ep.value == "delivery_sdk_ems:plugin"
    for key in (ENV_URL, ENV_TOKEN, ENV_CALLBACK_SECRET, ENV_SENDER_ADDRESS, ENV_SENDER_PHONE):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DELIVERY_SDK_PLUGINS", "ems")  # this plugin's entry point only
    assert "ems" not in PluginHost().channels.names()
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:9/court-express")
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    monkeypatch.setenv(ENV_SENDER_ADDRESS, SENDER.address)
    monkeypatch.setenv(ENV_SENDER_PHONE, SENDER.phone)
    host = PluginHost()
    adapter = host.channels.get("ems")
    assert isinstance(adapter, EmsCarrier)
    assert adapter.kind is ChannelKind.POST
    assert adapter.orders_waybills
    assert adapter.sender == SENDER
    assert TOKEN not in repr(adapter)
    assert EnvEmsPlugin({}).configured() is None
    with pytest.raises(PluginError, match="DELIVERY_SDK_EMS_TOKEN is required"):
        EnvEmsPlugin({ENV_URL: "http://127.0.0.1:9"}).configured()


def test_register_channels_partial_configuration_names_every_missing_variable() -> None:
    partial = {ENV_SENDER_ADDRESS: SENDER.address, ENV_RATE: "0"}
    host = PluginHost([EnvEmsPlugin()], load_entry_points=False, environ=partial)
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    for variable in (ENV_URL, ENV_TOKEN, ENV_SENDER_PHONE, ENV_RATE):
        assert variable in problems, variable
    # a ValueError of the carrier itself arrives as a PluginError with its message
    with pytest.raises(PluginError, match=r"not usable: .*URL"):
        EnvEmsPlugin({ENV_URL: "ftp://carrier.example", ENV_TOKEN: TOKEN}).configured()
    # nothing set: nothing registered, no error
    assert PluginHost([EnvEmsPlugin()], load_entry_points=False, environ={}).channels.names() == []


def test_a_mock_transport_works_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(200, json={"order_no": "T000001.1", "waybill_no": "1100000000042"})

    async def main() -> None:
        async with EmsCarrier(
            "http://ems.test", token=TOKEN, sender=SENDER, transport=httpx.MockTransport(handler)
        ) as c:
            assert (await c.send(dispatch())).provider_ref == "1100000000042"

    asyncio.run(main())
