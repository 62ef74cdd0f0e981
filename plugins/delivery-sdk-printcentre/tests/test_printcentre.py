"""The HTTP print-centre adapter against its local emulator (real sockets on 127.0.0.1), alone and through the
engine (with the EMS carrier plugin against its emulator for the full postal leg).

Run after ``pip install -e plugins/delivery-sdk-printcentre`` (the entry-point test needs the installed
distribution) and ``pip install -e plugins/delivery-sdk-ems`` (the end-to-end carrier).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from delivery_sdk_ems import EmsCarrier, Sender
from delivery_sdk_ems.emulator import EmsEmulator, Plan
from delivery_sdk_printcentre import (
    ENV_CENTRES,
    ENV_DOCUMENTS,
    ENV_SPOOL,
    ENV_TOKEN,
    EnvPrintCentrePlugin,
    HttpPrintCentre,
    events_to_receipts,
)
from delivery_sdk_printcentre.emulator import CentreEmulator, Fault
from pypdf import PdfReader

from delivery_sdk import (
    CallbackRejected,
    ChannelKind,
    Contact,
    ContactKind,
    Dispatch,
    MalformedReceipt,
    PluginError,
    ReceiptKind,
    TaskState,
    TransientChannelError,
    UnsendableDispatch,
)
from delivery_sdk.callbacks import CallbackReceiver, sign_callback
from delivery_sdk.client import AsyncDeliveryClient
from delivery_sdk.clock import VirtualClock
from delivery_sdk.events import Enveloped, Mailed, Served
from delivery_sdk.model import Case, Document, DocumentKind, Party, ServiceRequest
from delivery_sdk.plugins import PluginHost
from delivery_sdk.printing.batch import BatchSpool
from delivery_sdk.printing.centres import CentreConfig, centres_plugin
from delivery_sdk.printing.package import FolderDocumentSource, PackageRenderer
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import FakeChannel, make_party
from delivery_sdk.testing.fakes import Outcome, channels_plugin

TOKEN = "centre-token"
SECRET = "centre-callback-secret"
NAME = "李四光"
MOBILE = "13912345678"
HOME = "湖北省武汉市武昌区中北路1号"
PII = (NAME, MOBILE, HOME, "中北路", "13912")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing, a Monday
WUHAN, XIAOGAN = "PC-420100", "PC-420900"


def marker_pdf(marker: str, pages: int) -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, invariant=True)
    for i in range(1, pages + 1):
        canvas.drawString(72, 720, f"{marker}-PAGE-{i}")
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def centre(centre_id: str = WUHAN, *, endpoint: str, neighbours: tuple[str, ...] = ()) -> CentreConfig:
    key = centre_id.removeprefix("PC-")
    return CentreConfig(
        centre_id=centre_id,
        name=f"{key} 集约送达打印中心",
        route_keys=frozenset({key}),
        neighbours=neighbours,
        days="all",
        opens=time(0, 0),
        closes=time(23, 59),
        cutoffs=(time(23, 59),),
        batch_size=1,  # released as soon as a job arrives (the cut-off path is tested in core)
        endpoint=endpoint,
    )


class Docs:
    """A folder of documents by digest, holding a 2-page summons."""

    def __init__(self, root: Path) -> None:
        self.source = FolderDocumentSource(root / "documents")
        self.summons = Document(
            document_id="D1",
            title="传票",
            kind=DocumentKind.SUMMONS,
            sha256=self.source.put(marker_pdf("SUMMONS", 2)),
        )


@pytest.fixture
def docs(tmp_path: Path) -> Docs:
    return Docs(tmp_path)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[CentreEmulator]:
    with CentreEmulator(centre_id=WUHAN, token=TOKEN, callback_secret=SECRET, now=clock.now) as server:
        yield server
    assert server.errors == []


def adapter(server: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path, **kwargs: Any) -> HttpPrintCentre:
    return HttpPrintCentre(
        centre(server.centre_id, endpoint=server.url),
        spool=BatchSpool(tmp_path / "spool"),
        renderer=PackageRenderer(docs.source),
        token=TOKEN,
        callback_secret=SECRET,
        clock=clock,
        **kwargs,
    )


def dispatch(docs: Docs, dispatch_id: str = "T000001.2", *, waybill: str | None = "1151234567890") -> Dispatch:
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel=WUHAN,
        kind=ChannelKind.PRINT,
        contact=Contact(kind=ContactKind.POSTAL, value=HOME, division_code="420106"),
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"),
        recipient_name=NAME,
        documents=(docs.summons,),
        centre_id=WUHAN,
        waybill=waybill,
        recipient_phone=MOBILE,
    )


def job_puts(server: CentreEmulator) -> list[str]:
    return [path for method, path in server.requests if method == "PUT" and path.startswith("/jobs/")]


# ---------------------------------------------------------------------------------------------------
# The adapter alone
# ---------------------------------------------------------------------------------------------------


def test_send_spools_the_package_pushes_job_then_manifest_and_polls_the_acknowledgements(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path) as pc:
            result = await pc.send(dispatch(docs))
            assert result.accepted
            assert result.provider_ref == f"{WUHAN}/T000001.2"
            assert [m for m, _ in emulator.requests] == ["PUT", "PUT"]
            assert emulator.requests[0][1] == "/jobs/T000001.2"
            assert emulator.requests[1][1].startswith(f"/batches/{WUHAN}-")
            job = emulator.jobs["T000001.2"]
            assert job.pages == 3  # the 送达回证 front sheet, then the summons' two pages
            assert job.waybill == "1151234567890"  # the carrier's waybill, for the label
            text = [page.extract_text() for page in PdfReader(io.BytesIO(job.pdf)).pages]
            assert NAME in text[0]
            assert "T000001" in text[0]
            assert ["SUMMONS-PAGE-1" in text[1], "SUMMONS-PAGE-2" in text[2]] == [True, True]
            manifest = emulator.batches[job.batch_id]
            assert manifest["jobs"][0]["sha256"] == job.sha256
            assert NAME not in str(manifest)
            assert HOME not in str(manifest)

            mid = dispatch(docs, waybill=None)  # polls go out without the waybill
            assert (await pc.status(mid)).receipts == ()
            clock.advance(timedelta(hours=3, minutes=1))
            report = await pc.status(mid)
            assert [r.kind for r in report.receipts] == [ReceiptKind.PRINTED, ReceiptKind.ENVELOPED]
            clock.advance(timedelta(hours=2))
            report = await pc.status(mid)
            assert [r.kind for r in report.receipts] == [ReceiptKind.PRINTED, ReceiptKind.ENVELOPED, ReceiptKind.MAILED]
            assert report.receipts[1].at == job.batch_at + timedelta(hours=3)  # type: ignore[operator]
            assert report.receipts[2].waybill == "1151234567890"
            assert not (await pc.status(dispatch(docs, "T000009.2"))).found
        assert emulator.puts["T000001.2"] == 1

    asyncio.run(main())


def test_a_job_sent_twice_is_spooled_rendered_and_pushed_once(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path) as pc:
            first = await pc.send(dispatch(docs))
            again = await pc.send(dispatch(docs))
            assert first == again
        assert job_puts(emulator) == ["/jobs/T000001.2"]
        # the protocol itself: a repeated PUT of the same bytes is taken once, other bytes are a conflict
        job = emulator.jobs["T000001.2"]
        headers = {
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/pdf",
            "Idempotency-Key": "T000001.2",
            "X-Batch-Id": job.batch_id,
            "X-Task-Id": "T000001",
            "X-Job-Sha256": job.sha256,
            "X-Job-Pages": "3",
        }
        async with httpx.AsyncClient(base_url=emulator.url) as http:
            repeat = await http.put("/jobs/T000001.2", content=job.pdf, headers=headers)
            other = marker_pdf("OTHER", 3)
            import hashlib

            conflict = await http.put(
                "/jobs/T000001.2",
                content=other,
                headers=dict(headers, **{"X-Job-Sha256": hashlib.sha256(other).hexdigest()}),
            )
        assert (repeat.status_code, conflict.status_code) == (200, 409)
        assert len(emulator.jobs) == 1
        assert emulator.jobs["T000001.2"].sha256 == job.sha256

    asyncio.run(main())


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_defers_the_push_and_the_retry_delivers_the_job_once(
    status: int, emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    emulator.fail(Fault(path_prefix="/jobs/", method="PUT", status=status))

    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path) as pc:
            assert (await pc.send(dispatch(docs))).accepted  # spooled: the push waits
            assert emulator.jobs == {}
            assert pc.failing_since == T0
            # 503 says the job did not get there; after a 500 it may have, so it is asked about first
            assert (pc.states.get("T000001.2") or {}).get("state") == ("doubt" if status == 500 else None)
            pushed = await pc.flush()
            assert len(pushed) == 1
            assert pc.failing_since is None
        assert "T000001.2" in emulator.jobs
        assert emulator.puts["T000001.2"] == 1
        # a batch pushed before is asked about job by job (after a restart the adapter cannot know more)
        assert [p for m, p in emulator.requests if m == "GET"] == ["/jobs/T000001.2"]

    asyncio.run(main())


def test_429_honours_retry_after_and_does_not_count_as_down(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    emulator.fail(
        Fault(path_prefix="/jobs/", method="PUT", status=429, headers=(("Retry-After", "7"),)),
        Fault(path_prefix="/jobs/", method="PUT", status=429, headers=(("Retry-After", "7"),)),
    )

    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path, down_after=timedelta(0)) as pc:
            assert (await pc.send(dispatch(docs))).accepted
            with pytest.raises(TransientChannelError) as excinfo:
                await pc.flush()
            assert excinfo.value.retry_after == 7.0
            assert not pc.down()
            await pc.flush()
        assert emulator.puts["T000001.2"] == 1

    asyncio.run(main())


def test_a_timed_out_push_is_reconciled_through_the_centres_status_and_sent_once(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    # the centre takes the job, its answer comes too late: the job is in doubt
    emulator.fail(Fault(path_prefix="/jobs/", method="PUT", delay=1.0))

    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path, timeout=0.3, down_after=timedelta(0)) as pc:
            assert (await pc.send(dispatch(docs))).accepted
            assert (pc.states.get("T000001.2") or {}).get("state") == "doubt"
            await asyncio.sleep(0.8)  # let the emulator finish its late answer
            # a doubtful job is never given up as "never reached", even by a centre counted down
            assert pc.down()
            assert (await pc.status(dispatch(docs, waybill=None))).found
            assert (pc.states.get("T000001.2") or {}).get("state") == "sent"
        assert emulator.puts["T000001.2"] == 1  # asked (GET), not pushed again
        assert ("GET", "/jobs/T000001.2") in emulator.requests
        assert emulator.jobs["T000001.2"].batch_at is not None  # and the manifest followed

    asyncio.run(main())


def test_a_digest_mismatch_is_unsendable_and_nothing_reaches_the_centre(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    docs.source.path(docs.summons.sha256).write_bytes(marker_pdf("FORGED", 2))

    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path) as pc:
            with pytest.raises(UnsendableDispatch, match="SHA-256"):
                await pc.send(dispatch(docs))
            assert pc.spool.where("T000001.2", WUHAN) is None

    asyncio.run(main())
    assert emulator.requests == []


def test_a_job_the_centre_refuses_for_good_is_reported_failed(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    emulator.fail(Fault(path_prefix="/jobs/", method="PUT", status=422, body=b'{"error": "PAPER_SIZE"}'))

    async def main() -> None:
        async with adapter(emulator, docs, clock, tmp_path) as pc:
            assert (await pc.send(dispatch(docs))).accepted
            (receipt,) = (await pc.status(dispatch(docs, waybill=None))).receipts
        assert receipt.kind is ReceiptKind.FAILED
        assert receipt.reason == f"print centre {WUHAN} refused the job with HTTP 422 (PAPER_SIZE)"

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------------


def pushed(emulator: CentreEmulator, clock: VirtualClock, docs: Docs, tmp_path: Path) -> HttpPrintCentre:
    pc = adapter(emulator, docs, clock, tmp_path)

    async def main() -> None:
        async with pc:
            await pc.send(dispatch(docs))

    asyncio.run(main())
    clock.advance(timedelta(hours=6))
    return pc


def offline(docs: Docs, clock: VirtualClock, tmp_path: Path, **kwargs: Any) -> HttpPrintCentre:
    """An adapter whose centre is never called (callback checks only)."""
    return HttpPrintCentre(
        centre(endpoint="http://127.0.0.1:9"),
        spool=BatchSpool(tmp_path / "spool"),
        renderer=PackageRenderer(docs.source),
        token=TOKEN,
        clock=clock,
        **kwargs,
    )


def test_a_signed_push_verifies_and_parses(
    emulator: CentreEmulator, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    pc = pushed(emulator, clock, docs, tmp_path)
    headers, body = emulator.push_request("T000001.2")
    assert pc.verify_callback(headers, body, clock.now()).startswith(f"{WUHAN}:")
    receipts = pc.parse_callback(headers, body)
    assert [r.kind for r in receipts] == [ReceiptKind.PRINTED, ReceiptKind.ENVELOPED, ReceiptKind.MAILED]
    assert receipts[2].waybill == "1151234567890"
    assert [r.provider_event_id for r in receipts] == [
        "T000001.2-printed",
        "T000001.2-enveloped",
        "T000001.2-mailed",
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"tamper": True}, "forged", id="tampered-body"),
        pytest.param({"secret": "guessed"}, "forged", id="wrong-secret"),
        pytest.param({"drop": "x-delivery-signature"}, "forged", id="no-signature"),
        pytest.param({"stamp": -timedelta(minutes=6)}, "stale", id="stale-replay"),
        pytest.param({"stamp": timedelta(minutes=6)}, "stale", id="from-the-future"),
    ],
)
def test_forged_or_stale_pushes_are_rejected(
    change: dict[str, Any], reason: str, docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    pc = offline(docs, clock, tmp_path, callback_secret=SECRET)
    body = b'{"centre_id": "PC-420100", "dispatch_id": "T1.2", "events": []}'
    stamp = clock.now() + change.get("stamp", timedelta(0))
    headers = sign_callback(change.get("secret", SECRET), body, timestamp=stamp, nonce="n-1")
    headers = {k: v for k, v in headers.items() if k.lower() != change.get("drop")}
    if change.get("tamper"):
        body = body.replace(b"T1.2", b"T9.2")
    with pytest.raises(CallbackRejected) as excinfo:
        pc.verify_callback(headers, body, clock.now())
    assert excinfo.value.reason == reason


def test_a_push_for_another_centre_or_without_a_secret_is_refused(
    docs: Docs, clock: VirtualClock, tmp_path: Path
) -> None:
    pc = offline(docs, clock, tmp_path, callback_secret=SECRET)
    body = b'{"centre_id": "PC-420900", "dispatch_id": "T1.2", "events": []}'
    with pytest.raises(MalformedReceipt, match="does not name centre"):
        pc.parse_callback({}, body)
    unsigned = offline(docs, clock, tmp_path)
    headers = sign_callback(SECRET, body, timestamp=clock.now(), nonce="n-1")
    with pytest.raises(CallbackRejected) as excinfo:
        unsigned.verify_callback(headers, body, clock.now())
    assert excinfo.value.reason == "unsigned"


def test_centre_events_become_receipts_and_unknown_ones_are_skipped() -> None:
    events = [
        {"event_id": "e1", "type": "queued", "at": "2026-11-02T10:00:00+08:00"},
        {"event_id": "e2", "type": "enveloped", "at": "2026-11-02T12:00:00+08:00"},
    ]
    (receipt,) = events_to_receipts("T1.2", events)
    assert (receipt.kind, receipt.provider_event_id) == (ReceiptKind.ENVELOPED, "e2")
    with pytest.raises(MalformedReceipt, match="waybill"):
        events_to_receipts("T1.2", [{"event_id": "e3", "type": "mailed", "at": "2026-11-02T12:00:00+08:00"}])
    with pytest.raises(MalformedReceipt, match="offset"):
        events_to_receipts("T1.2", [{"event_id": "e4", "type": "printed", "at": "2026-11-02T12:00:00"}])


# ---------------------------------------------------------------------------------------------------
# Through the engine
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
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/callbacks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class World:
    """The engine with an SMS channel that fails, two HTTP centres (Wuhan, and Xiaogan its neighbour) against
    their emulators, and a carrier: the EMS plugin against its emulator."""

    def __init__(
        self,
        tmp_path: Path,
        clock: VirtualClock,
        ems: EmsEmulator,
        wuhan: CentreEmulator,
        xiaogan: CentreEmulator,
        **adapter_kwargs: Any,
    ) -> None:
        self.clock = clock
        self.ems = ems
        self.emulators = {WUHAN: wuhan, XIAOGAN: xiaogan}
        self.docs = Docs(tmp_path)
        self.sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=clock, default=Outcome.failed("number unreachable"))
        spool = BatchSpool(tmp_path / "spool")
        renderer = PackageRenderer(self.docs.source)
        configs = [
            centre(WUHAN, endpoint=wuhan.url, neighbours=(XIAOGAN,)),
            centre(XIAOGAN, endpoint=xiaogan.url, neighbours=(WUHAN,)),
        ]

        def factory(config: CentreConfig, clk: Any) -> HttpPrintCentre:
            return HttpPrintCentre(
                config,
                spool=spool,
                renderer=renderer,
                token=TOKEN,
                callback_secret=SECRET,
                clock=clk,
                **adapter_kwargs,
            )

        carrier = EmsCarrier(
            ems.url,
            token="ems-token",
            callback_secret="ems-callback-secret",
            sender=Sender(address="湖北省武汉市武昌区法院路1号", phone="027-88886666"),
        )
        self.store = SQLiteStore(":memory:")
        self.client = AsyncDeliveryClient(
            self.store,
            plugins=[channels_plugin(self.sms, carrier), centres_plugin(configs, factory)],
            clock=clock,
            load_entry_points=False,
        )

    def request(self, pid: str) -> ServiceRequest:
        party: Party = attrs.evolve(make_party(pid, mobile=MOBILE, address=HOME), name=NAME)
        return ServiceRequest(
            case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"),
            party=party,
            documents=(self.docs.summons,),
        )

    def types(self, task_id: str) -> list[str]:
        return [s.event.TYPE for s in self.client.timeline(task_id)]


def run_world(tmp_path: Path, scenario: Any, **adapter_kwargs: Any) -> None:
    clock = VirtualClock(T0)
    with (
        EmsEmulator(token="ems-token", callback_secret="ems-callback-secret", now=clock.now) as ems,
        CentreEmulator(centre_id=WUHAN, token=TOKEN, callback_secret=SECRET, now=clock.now) as wuhan,
        CentreEmulator(centre_id=XIAOGAN, token=TOKEN, callback_secret=SECRET, now=clock.now) as xiaogan,
    ):

        async def main() -> None:
            world = World(tmp_path, clock, ems, wuhan, xiaogan, **adapter_kwargs)
            try:
                await scenario(world)
            finally:
                await world.client.aclose()
                world.store.close()

        asyncio.run(main())
        assert ems.errors == wuhan.errors == xiaogan.errors == []


def test_engine_electronic_fails_then_the_http_centre_prints_envelopes_and_mails_then_ems_serves(
    tmp_path: Path,
) -> None:
    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.signed("SELF", after=timedelta(days=2)))
        task_id = await w.client.submit(w.request("P-pc1"))
        await w.client.run_until_idle(until=T0 + timedelta(hours=1))
        assert w.client.status(task_id).state is TaskState.ROUTED
        job = f"{task_id}.2"
        wuhan = w.emulators[WUHAN]
        assert wuhan.jobs[job].waybill == w.ems.waybill_of(job)  # the label carries the carrier's waybill
        # the centre pushes its acknowledgements (signed) to the court's receiver, over HTTP
        w.clock.advance_to(wuhan.jobs[job].batch_at + timedelta(hours=5, minutes=1))  # type: ignore[operator]
        court = CourtReceiver(CallbackReceiver(w.client), asyncio.get_running_loop())
        try:
            assert await asyncio.to_thread(wuhan.push, f"{court.url}/{WUHAN}", job) == 200
            assert w.client.status(task_id).state is TaskState.MAILED
            headers, body = wuhan.push_request(job)
            receiver = CallbackReceiver(w.client)
            assert receiver.handle(WUHAN, headers, body).status == 200  # duplicates: nothing new recorded
            assert receiver.handle(WUHAN, headers, body).reason == "replayed"
            forged = dict(headers, **{"X-Delivery-Signature": "0" * 64})
            assert receiver.handle(WUHAN, forged, body).reason == "forged"
        finally:
            court.close()
        await w.client.run_until_idle()
        types = w.types(task_id)
        assert types == [
            "task.created",
            "dispatch.queued",
            "dispatch.sent",
            "dispatch.failed",
            "service.fell_back_to_post",
            "print.routed",
            "dispatch.queued",
            "dispatch.sent",
            "print.printed",
            "print.enveloped",
            "post.mailed",
            "post.signed",
            "service.served",
            "service.filed",
        ]
        (enveloped,) = [s.event for s in w.client.timeline(task_id) if isinstance(s.event, Enveloped)]
        assert enveloped.enveloped_at == wuhan.jobs[job].batch_at + timedelta(hours=3)  # type: ignore[operator]
        (mailed,) = [s.event for s in w.client.timeline(task_id) if isinstance(s.event, Mailed)]
        assert mailed.waybill == w.ems.waybill_of(job)
        (served,) = [s.event for s in w.client.timeline(task_id) if isinstance(s.event, Served)]
        assert served.dispatch_id == job
        assert w.client.status(task_id).state is TaskState.FILED
        assert wuhan.puts[job] == 1
        assert w.emulators[XIAOGAN].jobs == {}

    run_world(tmp_path, scenario)


def test_engine_a_centre_that_is_down_fails_over_to_its_neighbour(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        wuhan, xiaogan = w.emulators[WUHAN], w.emulators[XIAOGAN]
        wuhan.down = True
        # four waybills: the engine orders each print job's waybill before the centre sees the job, so the
        # job refused by the centre that is down has one too (the carrier never sees that item)
        w.ems.enqueue(Plan.signed(), Plan.signed(), Plan.signed(), Plan.signed())
        first = await w.client.submit(w.request("P-pc2"))
        await w.client.run_until_idle()
        # the job was spooled for Wuhan; its push met 503s; once Wuhan counted as down the job, which never
        # reached it, was given up and the engine routed the task to the neighbour
        types = w.types(first)
        assert types.count("print.routed") == 2
        routed = [s.event for s in w.client.timeline(first) if s.event.TYPE == "print.routed"]
        assert [e.centre_id for e in routed] == [WUHAN, XIAOGAN]  # type: ignore[attr-defined]
        assert "failover" in routed[1].reason  # type: ignore[attr-defined]
        assert w.client.status(first).state is TaskState.FILED
        assert f"{first}.3" in xiaogan.jobs
        assert wuhan.jobs == {}
        # a later job for Wuhan is refused at once (the centre is down), and goes to the neighbour too
        second = await w.client.submit(w.request("P-pc3"))
        await w.client.run_until_idle()
        failed = [s.event for s in w.client.timeline(second) if s.event.TYPE == "dispatch.failed"]
        assert any("is down" in e.reason for e in failed)  # type: ignore[attr-defined]
        assert w.client.status(second).state is TaskState.FILED
        assert f"{second}.3" in xiaogan.jobs
        assert wuhan.jobs == {}

    run_world(tmp_path, scenario, down_after=timedelta(0))


def test_engine_a_digest_mismatch_asks_a_person_without_failing_over(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.signed())
        w.docs.source.path(w.docs.summons.sha256).write_bytes(marker_pdf("FORGED", 2))
        task_id = await w.client.submit(w.request("P-pc4"))
        await w.client.run_until_idle()
        status = w.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert "SHA-256" in (status.attention_reason or "")
        assert w.types(task_id).count("print.routed") == 1
        assert all(e.jobs == {} and e.requests == [] for e in w.emulators.values())
        w.ems.plans.clear()

    run_world(tmp_path, scenario)


def test_no_personal_data_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(w: World) -> None:
        w.ems.enqueue(Plan.signed())
        w.emulators[WUHAN].fail(Fault(path_prefix="/jobs/", method="PUT", status=500))
        task_id = await w.client.submit(w.request("P-pc5"))
        await w.client.run_until_idle()
        assert w.client.status(task_id).state is TaskState.FILED

    run_world(tmp_path, scenario)
    assert "batch push deferred" in caplog.text
    for secret in PII:
        assert secret not in caplog.text


# ---------------------------------------------------------------------------------------------------
# Configuration and the entry point
# ---------------------------------------------------------------------------------------------------


def test_entry_point_registers_one_adapter_per_centre_with_an_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (ep,) = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "printcentre"]
    assert ep.value == "delivery_sdk_printcentre:plugin"
    toml = tmp_path / "centres.toml"
    toml.write_text(
        '[[centre]]\nid = "PC-420100"\nname = "武汉"\nroute_keys = ["420100"]\nendpoint = "http://127.0.0.1:9/api"\n'
        '[[centre]]\nid = "PC-420900"\nname = "孝感"\nroute_keys = ["420900"]\n',
        encoding="utf-8",
    )
    for key in (ENV_CENTRES, ENV_TOKEN, ENV_SPOOL, ENV_DOCUMENTS):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DELIVERY_SDK_PLUGINS", "printcentre")
    assert len(PluginHost().print_centres) == 0
    monkeypatch.setenv(ENV_CENTRES, str(toml))
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    monkeypatch.setenv(ENV_SPOOL, str(tmp_path / "spool"))
    monkeypatch.setenv(ENV_DOCUMENTS, str(tmp_path / "docs"))
    monkeypatch.setattr("delivery_sdk_printcentre.plugin.adapters", {})
    host = PluginHost()
    registry = host.print_centres
    assert [i.centre_id for i in registry.infos()] == [WUHAN]  # Xiaogan has no endpoint: left to others
    pc = registry.adapter(WUHAN)
    assert isinstance(pc, HttpPrintCentre)
    assert pc.base_url == "http://127.0.0.1:9/api"
    assert TOKEN not in repr(pc)
    assert EnvPrintCentrePlugin({}).configured() == []
    with pytest.raises(PluginError, match="DELIVERY_SDK_PRINTCENTRE_TOKEN is required"):
        EnvPrintCentrePlugin(
            {ENV_CENTRES: str(toml), ENV_SPOOL: str(tmp_path / "s"), ENV_DOCUMENTS: str(tmp_path / "d")}
        ).configured()


def test_register_print_centres_partial_configuration_fails_at_load_naming_every_variable(tmp_path: Path) -> None:
    # a print centre with missing settings used to start, then fail each route with a bare ValueError
    partial = {ENV_CENTRES: str(tmp_path / "missing.toml"), "DELIVERY_SDK_PRINTCENTRE_RATE": "fast"}
    host = PluginHost([EnvPrintCentrePlugin()], load_entry_points=False, environ=partial)
    with pytest.raises(PluginError) as info:
        host.load()
    problems = "\n".join(info.value.problems)
    for variable in (ENV_CENTRES, ENV_TOKEN, ENV_SPOOL, ENV_DOCUMENTS, "DELIVERY_SDK_PRINTCENTRE_RATE"):
        assert variable in problems, variable
    assert "missing.toml" in problems  # the file's own error, message kept
    # the routing path raises the same PluginError (never a bare ValueError)
    with pytest.raises(PluginError, match="DELIVERY_SDK_PRINTCENTRE_TOKEN"):
        host.print_centres  # noqa: B018
    assert len(PluginHost([EnvPrintCentrePlugin()], load_entry_points=False, environ={}).print_centres) == 0
