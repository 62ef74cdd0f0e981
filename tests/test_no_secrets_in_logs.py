"""No secret and no personal data in any log record, with every logger at DEBUG.

Each plugin's flows run against its local emulator (real sockets on 127.0.0.1), through the engine and the
callback receiver: sends that succeed, are refused or time out, status queries, genuine, forged and
malformed callbacks, a token refresh. :class:`~delivery_sdk.testing.logcheck.LogLeakCheck` keeps every
record of every logger (httpx's request lines and httpcore's traces included) and fails on any configured
secret, any issued access token, any mobile number however spelt, any resident ID number and any address.
The registry and notary plugins (whose servers live in their own tests) have the same check in
``plugins/delivery-sdk-registry/tests`` and ``plugins/delivery-sdk-notary/tests``.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import attrs

from delivery_sdk import ChannelKind, DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver, sign_callback
from delivery_sdk.model import Case, Document, DocumentKind, Party, ServiceRequest
from delivery_sdk.testing import FakeAddressSource, FakeChannel, hubei_centres, make_party, make_request
from delivery_sdk.testing.fakes import Outcome, channels_plugin, print_centres_plugin
from delivery_sdk.testing.logcheck import LogLeakCheck, find_personal_data

NAME = "李四光"
ID_NUMBER = "420106198001011234"
MOBILE = "13912345678"
HOME = "湖北省武汉市武昌区中北路1号"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def party(pid: str, **kwargs: object) -> Party:
    base = make_party(pid, address=HOME, **kwargs)  # type: ignore[arg-type]
    return attrs.evolve(base, name=NAME, id_number=ID_NUMBER)


def check_clean(check: LogLeakCheck, *, http: bool = True) -> None:
    assert check.records, "nothing was logged: the flows did not run"
    if http:  # httpx's INFO request lines and httpcore's DEBUG traces were there, and were checked
        assert {"httpx", "httpcore.http11"} <= {r.name for r in check.records}
    assert check.leaks() == []


def test_the_checker_finds_what_it_must() -> None:
    found = find_personal_data(
        "to +86 139-1234-5678, id 42010619800101123X at 湖北省武汉市武昌区中北路1号 key=s3cret",
        secrets=["s3cret"],
        addresses=[HOME],
    )
    assert {f.split(" ")[0] for f in found} == {"secret", "mobile", "ID", "address"}
    assert find_personal_data("dispatch T000001.1 at 1795136400123, nonce 4f1c13912345678ab") == []
    assert find_personal_data("１３９１２３４５６７８")  # full-width digits are a phone number too


def test_sms_flows_log_no_secret_or_personal_data() -> None:
    from delivery_sdk_sms.emulator import Fault, SmsGatewayEmulator

    clock = VirtualClock(T0)
    with SmsGatewayEmulator(clock=clock.now) as gateway:
        secrets = [gateway.access_key_secret, gateway.callback_secret]
        with (
            LogLeakCheck(secrets=secrets, addresses=[HOME]) as check,
            DeliveryClient(
                ":memory:", plugins=[channels_plugin(gateway.channel())], clock=clock, load_entry_points=False
            ) as client,
        ):
            gateway.fail_next(Fault.http(503))
            ok = client.submit(make_request(party("P-s1", mobile=MOBILE), channels=[ChannelKind.SMS]))
            gateway.refuse_numbers.add("13700000000")
            refused = client.submit(make_request(party("P-s2", mobile="13700000000"), channels=[ChannelKind.SMS]))
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            receiver = CallbackReceiver(client)
            [dispatch] = client.status(ok).dispatches
            _, pushed = gateway.deliver(dispatch.dispatch_id, push=False)
            headers, body = gateway.signed_callback(json.loads(pushed), timestamp=int(clock.now().timestamp()))
            assert receiver.handle("sms", headers, body).status == 200
            assert receiver.handle("sms", {**headers, "X-Sms-Signature": "0" * 64}, body).status == 401
            assert client.status(refused).dispatches
    check_clean(check)


def test_wechat_flows_log_no_secret_token_or_personal_data() -> None:
    from delivery_sdk_wechat import read_callback
    from delivery_sdk_wechat.emulator import Fault, WeChatEmulator

    clock = VirtualClock(T0)
    with WeChatEmulator(clock=clock.now) as wechat:
        channel = wechat.channel(clock=clock)
        with (
            LogLeakCheck(
                secrets=[wechat.secret, wechat.server_token, "emulator-read-secret"], addresses=[HOME]
            ) as check,
            DeliveryClient(
                ":memory:", plugins=[channels_plugin(channel)], clock=clock, load_entry_points=False
            ) as client,
        ):
            wechat.fail_next(Fault.errcode(40001))  # a refused token: refreshed, forced
            task = client.submit(
                make_request(party("P-w1", mobile=None, wechat="oWx_log_1"), channels=[ChannelKind.WECHAT])
            )
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            wechat.expire_tokens()
            client.submit(make_request(party("P-w2", mobile=None, wechat="oWx_log_2"), channels=[ChannelKind.WECHAT]))
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            receiver = CallbackReceiver(client)
            [dispatch] = client.status(task).dispatches
            stamp = int(clock.now().timestamp())
            message = wechat.message(dispatch.dispatch_id)
            params, body = wechat.event_push(message.touser, message.msgid, "success", timestamp=stamp)
            assert receiver.handle("wechat", {}, body, query=params).status == 200
            headers, read = read_callback(
                "emulator-read-secret", channel._link_key, dispatch.dispatch_id, clock.now(), timestamp=stamp
            )
            assert receiver.handle("wechat", headers, read).status == 200
            assert receiver.handle("wechat", {}, body, query={**params, "signature": "x"}).status == 401
        issued = list(wechat._tokens)
    assert len(issued) >= 2
    leaks = [leak for r in check.records for leak in find_personal_data(r.getMessage(), secrets=issued)]
    assert leaks == []  # no access token, in any record
    check_clean(check)


def test_email_flows_log_no_secret_or_personal_data() -> None:
    from delivery_sdk_email import EmailChannel, MemorySentLog
    from delivery_sdk_email.emulator import SmtpEmulator, sign_push

    clock = VirtualClock(T0)
    with SmtpEmulator() as mx:
        adapter = EmailChannel(
            mx.host,
            mx.port,
            sender="service@court.example",
            sent_log=MemorySentLog(),
            security="none",
            mode="direct",
            link_template="https://court.example/s/{token}",
            link_secret="email-link-secret",
            callback_secret="email-bounce-secret",
            timeout=3.0,
            clock=clock,
        )
        with (
            LogLeakCheck(secrets=["email-link-secret", "email-bounce-secret"], addresses=[HOME]) as check,
            DeliveryClient(
                ":memory:", plugins=[channels_plugin(adapter)], clock=clock, load_entry_points=False
            ) as client,
        ):
            client.submit(
                make_request(party("P-e1", mobile=MOBILE, email="li.siguang@example.com"), channels=[ChannelKind.EMAIL])
            )
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            dsn = mx.make_dsn(mx.messages[0], when=clock.now())
            headers = sign_push("email-bounce-secret", dsn, timestamp=int(clock.now().timestamp()), nonce="b-1")
            receiver = CallbackReceiver(client)
            assert receiver.handle("email", headers, dsn).status == 200
            assert receiver.handle("email", {**headers, "X-Delivery-Nonce": "b-2"}, dsn).status == 401
    check_clean(check, http=False)  # SMTP: mail.log, not httpx


def test_eservice_flows_log_no_secret_or_personal_data() -> None:
    from delivery_sdk_eservice import EServiceChannel
    from delivery_sdk_eservice.emulator import PlatformEmulator

    clock = VirtualClock(T0)
    with PlatformEmulator(app_key="court-app", app_secret="platform-s3cret", clock=clock.now) as platform:
        adapter = EServiceChannel(platform.url, app_key="court-app", app_secret="platform-s3cret", timeout=3.0)
        with (
            LogLeakCheck(secrets=["platform-s3cret"], addresses=[HOME]) as check,
            DeliveryClient(
                ":memory:", plugins=[channels_plugin(adapter)], clock=clock, load_entry_points=False
            ) as client,
        ):
            task = client.submit(
                make_request(party("P-p1", mobile=MOBILE, eservice="ES-1"), channels=[ChannelKind.ESERVICE])
            )
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            receiver = CallbackReceiver(client)
            [dispatch] = client.status(task).dispatches
            headers, body = platform.arrive(dispatch.dispatch_id)
            assert receiver.handle("eservice", headers, body).status == 200
            assert receiver.handle("eservice", {**headers, "X-Signature": "f" * 64}, body).status == 401
    check_clean(check)


def _summons_pdf() -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, invariant=True)
    canvas.drawString(72, 720, "SUMMONS")
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def test_print_centre_and_ems_flows_log_no_secret_or_personal_data(tmp_path: Path) -> None:
    from delivery_sdk_ems import EmsCarrier, Sender
    from delivery_sdk_ems.emulator import EmsEmulator, Plan
    from delivery_sdk_printcentre import HttpPrintCentre
    from delivery_sdk_printcentre.emulator import CentreEmulator

    from delivery_sdk.printing.batch import BatchSpool
    from delivery_sdk.printing.centres import CentreConfig, centres_plugin
    from delivery_sdk.printing.package import FolderDocumentSource, PackageRenderer

    clock = VirtualClock(T0)
    secrets = ["centre-t0ken", "centre-push-s3cret", "ems-t0ken", "ems-push-s3cret"]
    sender = Sender(address="湖北省武汉市武昌区法院路1号", phone="027-88886666")
    with (
        EmsEmulator(
            token="ems-t0ken",
            callback_secret="ems-push-s3cret",
            now=clock.now,
            default=Plan.signed("FAMILY", after=timedelta(days=2)),
        ) as ems,
        CentreEmulator(
            centre_id="PC-420100", token="centre-t0ken", callback_secret="centre-push-s3cret", now=clock.now
        ) as wuhan,
        LogLeakCheck(secrets=secrets, addresses=[HOME, sender.address]) as check,
    ):
        source = FolderDocumentSource(tmp_path / "documents")
        summons = Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=source.put(_summons_pdf()))
        config = CentreConfig(
            centre_id="PC-420100",
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

        def factory(cfg: CentreConfig, clk: object) -> HttpPrintCentre:
            return HttpPrintCentre(
                cfg,
                spool=spool,
                renderer=renderer,
                token="centre-t0ken",
                callback_secret="centre-push-s3cret",
                clock=clk,  # type: ignore[arg-type]
            )

        sms = FakeChannel("fake-sms", clock=clock, default=Outcome.failed("number unreachable"))
        carrier = EmsCarrier(ems.url, token="ems-t0ken", callback_secret="ems-push-s3cret", sender=sender)
        with DeliveryClient(
            ":memory:",
            plugins=[channels_plugin(sms, carrier), centres_plugin([config], factory), FakeAddressSource()],
            clock=clock,
            load_entry_points=False,
        ) as client:
            request = ServiceRequest(
                case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初9号"),
                party=party("P-pc1", mobile=MOBILE),
                documents=(summons,),
            )
            task = client.submit(request)
            client.run_until_idle(until=T0 + timedelta(hours=1))
            receiver = CallbackReceiver(client)
            job = next(iter(wuhan.jobs))
            clock.advance_to(wuhan.jobs[job].batch_at + timedelta(hours=5, minutes=1))  # type: ignore[operator]
            headers, body = wuhan.push_request(job)
            assert receiver.handle("PC-420100", headers, body).status == 200
            forged = sign_callback("not-the-secret", body, timestamp=clock.now())
            assert receiver.handle("PC-420100", forged, body).status == 401
            client.run_until_idle(until=T0 + timedelta(days=3))
            headers, body = ems.push_request(job)
            assert receiver.handle("ems", headers, body).status in (200, 422)
            assert client.status(task).dispatches
    check_clean(check)


def test_logchannel_and_staffcalls_flows_log_no_personal_data(tmp_path: Path) -> None:
    from delivery_sdk_logchannel import LogChannel
    from delivery_sdk_staffcalls import StaffCalls, StaffCallsPlugin

    clock = VirtualClock(T0)
    store = tmp_path / "service.sqlite3"
    with LogLeakCheck(addresses=[HOME]) as check:
        log_channel = LogChannel(tmp_path / "log.jsonl", kind=ChannelKind.SMS, clock=clock)
        plugins = [
            channels_plugin(log_channel),
            StaffCallsPlugin(store=store),
            print_centres_plugin(*hubei_centres(clock)),
        ]
        with DeliveryClient(str(store), plugins=plugins, clock=clock, load_entry_points=False) as client:
            client.submit(make_request(party("P-l1", mobile=MOBILE), channels=[ChannelKind.SMS]))
            client.submit(make_request(party("P-c1", mobile="13800138000", consent=False)))
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            calls = StaffCalls(client)
            call = calls.claim("staff-7")
            if call is not None:
                calls.record(call, "reached_consented", scope=[ChannelKind.SMS])
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
    check_clean(check, http=False)
