"""Fuzz the print centre's push receiver (delivery-sdk's generic signature scheme): whatever arrives,
CallbackReceiver answers 2xx/4xx, never raises, and a refused push changes nothing in the store. Most
pushes are signed with the centre's secret, so the event parser is fuzzed too."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from delivery_sdk_ems import EmsCarrier, Sender
from delivery_sdk_ems.emulator import EmsEmulator, Plan
from delivery_sdk_printcentre import HttpPrintCentre
from delivery_sdk_printcentre.emulator import CentreEmulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery_sdk import DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver, hmac_sha256_hex
from delivery_sdk.model import Case, Document, DocumentKind, ServiceRequest
from delivery_sdk.printing.batch import BatchSpool
from delivery_sdk.printing.centres import CentreConfig, centres_plugin
from delivery_sdk.printing.package import FolderDocumentSource, PackageRenderer
from delivery_sdk.testing import FakeChannel, make_party
from delivery_sdk.testing.fakes import Outcome, channels_plugin
from delivery_sdk.testing.fuzz import (
    assert_answered,
    header_noise,
    hostile_bodies,
    hostile_text,
    json_values,
    nonces,
    sign_or_garble,
    timestamps,
)

TOKEN = "centre-token"
SECRET = "centre-callback-secret"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
WUHAN = "PC-420100"


def summons_pdf() -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, invariant=True)
    canvas.drawString(72, 720, "SUMMONS")
    canvas.showPage()
    canvas.save()
    return out.getvalue()


class World:
    def __init__(self, tmp_path: Path, clock: VirtualClock, ems: EmsEmulator, wuhan: CentreEmulator) -> None:
        self.clock = clock
        self.wuhan = wuhan
        source = FolderDocumentSource(tmp_path / "documents")
        summons = Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=source.put(summons_pdf()))
        config = CentreConfig(
            centre_id=WUHAN,
            name="武汉集约送达打印中心",
            route_keys=frozenset({"420100"}),
            days="all",
            opens=time(0, 0),
            closes=time(23, 59),
            cutoffs=(time(23, 59),),
            batch_size=1,
            endpoint=wuhan.url,
        )
        spool, renderer = BatchSpool(tmp_path / "spool"), PackageRenderer(source)

        def factory(cfg: CentreConfig, clk: Any) -> HttpPrintCentre:
            return HttpPrintCentre(cfg, spool=spool, renderer=renderer, token=TOKEN, callback_secret=SECRET, clock=clk)

        sms = FakeChannel("fake-sms", clock=clock, default=Outcome.failed("number unreachable"))
        carrier = EmsCarrier(
            ems.url,
            token="ems-token",
            callback_secret="ems-callback-secret",
            sender=Sender(address="湖北省武汉市武昌区法院路1号", phone="027-88886666"),
        )
        self.client = DeliveryClient(
            ":memory:",
            plugins=[channels_plugin(sms, carrier), centres_plugin([config], factory)],
            clock=clock,
            load_entry_points=False,
        )
        self.task_ids = [
            self.client.submit(
                ServiceRequest(
                    case=Case(court="武汉市武昌区人民法院", case_number=f"(2026)鄂0106民初{i}号"),
                    party=attrs.evolve(make_party(f"P-fuzz-{i}", mobile="13912345678"), name="李四光"),
                    documents=(summons,),
                )
            )
            for i in range(1, 3)
        ]
        self.client.run_until_idle(until=T0 + timedelta(hours=1))
        self.jobs = sorted(wuhan.jobs)
        assert self.jobs, "the fuzz needs jobs the centre knows"
        self.receiver = CallbackReceiver(self.client)

    def facts(self) -> list[tuple[str, int]]:
        return [(self.client.status(t).state.value, len(self.client.timeline(t))) for t in self.task_ids]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = VirtualClock(T0)
    with (
        EmsEmulator(
            token="ems-token",
            callback_secret="ems-callback-secret",
            now=clock.now,
            default=Plan.signed("SELF", after=timedelta(days=2)),
        ) as ems,
        CentreEmulator(centre_id=WUHAN, token=TOKEN, callback_secret=SECRET, now=clock.now) as wuhan,
    ):
        w = World(tmp_path, clock, ems, wuhan)
        yield w
        w.client.close()


def pushes(world: World) -> st.SearchStrategy[bytes]:
    field = st.one_of(hostile_text(32), json_values(4))
    now = world.clock.now().isoformat()
    event = st.fixed_dictionaries(
        {
            "event_id": st.one_of(st.from_regex(r"e-[0-9]{1,6}", fullmatch=True), field),
            "type": st.one_of(st.sampled_from(["printed", "enveloped", "mailed", "queued", "failed"]), field),
            "at": st.one_of(st.sampled_from([now, "2026-11-02T01:00:00", "2099-01-01T00:00:00+00:00"]), field),
        },
        optional={"waybill": st.one_of(st.from_regex(r"11[0-9]{11}", fullmatch=True), field)},
    )
    push = st.fixed_dictionaries(
        {},
        optional={
            "centre_id": st.one_of(st.just(WUHAN), field),
            "dispatch_id": st.one_of(st.sampled_from(world.jobs), field),
            "events": st.one_of(st.lists(event, max_size=3), field),
        },
    )
    return push.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_print_centre_receiver_answers_every_push(world: World) -> None:
    now = world.clock.now()
    seen: Counter[str] = Counter()
    headers, body = world.wuhan.push_request(world.jobs[0])
    assert assert_answered(world.receiver, WUHAN, headers, body, facts=world.facts).status == 200

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        body = data.draw(st.one_of(pushes(world), hostile_bodies()), label="body")
        ts = data.draw(timestamps(now), label="timestamp")
        nonce = data.draw(nonces(), label="nonce")
        good = sign_or_garble(lambda: hmac_sha256_hex(SECRET, ts, nonce, body))
        signature = data.draw(st.one_of(st.just(good), st.just(good.upper()), hostile_text()), label="signature")
        headers = {"X-Delivery-Timestamp": ts, "X-Delivery-Nonce": nonce, "X-Delivery-Signature": signature}
        drop = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(sorted(headers)))), label="drop")
        headers = {k: v for k, v in headers.items() if k not in drop}
        headers.update(data.draw(header_noise(), label="noise"))
        response = assert_answered(world.receiver, WUHAN, headers, body, facts=world.facts)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert seen["400 malformed"], seen  # the fuzz got past the signature, into the parser
