"""The e-mail channel against a real local SMTP server (aiosmtpd on 127.0.0.1, an ephemeral port).

Run after ``pip install -e plugins/delivery-sdk-email`` (the entry-point test needs the installed distribution).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from delivery_sdk_email import (
    DISPATCH_HEADER,
    EmailChannel,
    EnvEmailPlugin,
    MemorySentLog,
    SentState,
    SQLiteSentLog,
    bounce_receipts,
    channel_from_env,
    dispatch_from_message_id,
    link_token,
    message_id_for,
    parse_bounce,
    xtext,
)
from delivery_sdk_email.emulator import SmtpEmulator, TlsMaterial, self_signed_tls, sign_push

from delivery_sdk import (
    AsyncDeliveryClient,
    CallbackRejected,
    Case,
    ChannelError,
    ChannelKind,
    Contact,
    ContactKind,
    DeliveryClient,
    Dispatch,
    DispatchStatus,
    Document,
    DocumentKind,
    IngestOutcome,
    MalformedReceipt,
    PluginError,
    ReceiptKind,
    ServiceMethod,
    SQLiteStore,
    TaskState,
    TransientChannelError,
    VirtualClock,
)
from delivery_sdk.testing import FakeCarrier, Outcome, channels_plugin, hubei_centres, make_party, make_request
from delivery_sdk.testing import print_centres_plugin as centres_plugin

SENDER = "service@court.example"
DOMAIN = "court.example"
LINK = "https://court.example/s/{token}"
LINK_SECRET = "link-secret"
CALLBACK_SECRET = "bounce-secret"
PDF = b"%PDF-1.4 summons of case 1"
PDF_DIGEST = hashlib.sha256(PDF).hexdigest()
ADDRESS = "zhang.san@example.com"
WORKER = Path(__file__).with_name("crash_worker.py")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return self_signed_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mx() -> Iterator[SmtpEmulator]:
    with SmtpEmulator(hang_seconds=5.0) as server:
        yield server


def channel(server: SmtpEmulator, clock: VirtualClock | None = None, **kwargs: Any) -> EmailChannel:
    options: dict[str, Any] = {
        "sender": SENDER,
        "sent_log": MemorySentLog(),
        "security": "none",
        "mode": "direct",
        "link_template": LINK,
        "link_secret": LINK_SECRET,
        "callback_secret": CALLBACK_SECRET,
        "timeout": 3.0,  # generous: a loaded CI machine must not turn a slow answer into a failure
        "clock": clock,
    }
    options.update(kwargs)
    return EmailChannel(server.host, server.port, **options)


def dispatch(dispatch_id: str = "T000001.1", to: str = ADDRESS, digest: str = PDF_DIGEST) -> Dispatch:
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="email",
        kind=ChannelKind.EMAIL,
        contact=Contact(kind=ContactKind.EMAIL, value=to),
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"),
        recipient_name="张三",
        documents=(Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=digest),),
    )


def email_request(address: str = ADDRESS, **kwargs: Any) -> Any:
    party = make_party(mobile=None, email=address, **kwargs)
    return make_request(party, channels=[ChannelKind.EMAIL])


def client_for(adapter: EmailChannel, clock: VirtualClock, store: SQLiteStore | None = None) -> AsyncDeliveryClient:
    carrier = FakeCarrier(clock=clock, default=Outcome.signed())
    return AsyncDeliveryClient(
        store or SQLiteStore(":memory:"),
        plugins=[channels_plugin(adapter, carrier), centres_plugin(*hubei_centres(clock))],
        clock=clock,
        load_entry_points=False,
    )


def signed(body: bytes, nonce: str = "n-1", when: datetime | None = None) -> dict[str, str]:
    moment = when or datetime.now(UTC)
    return sign_push(CALLBACK_SECRET, body, timestamp=int(moment.timestamp()), nonce=nonce)


# -- naming ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dispatch_id", ["T000001.1", "a=b", ".lead", "x..y", "案件-1", "sp ace", "trail."])
def test_message_id_is_derived_from_the_dispatch_id_and_reversible(dispatch_id: str) -> None:
    message_id = message_id_for(dispatch_id, DOMAIN)
    assert message_id == message_id_for(dispatch_id, DOMAIN)  # the same on every (re)send
    assert message_id.endswith(f"@{DOMAIN}>")
    assert message_id.isascii()
    assert " " not in message_id
    assert ".." not in message_id
    assert not message_id.startswith("<.")
    assert dispatch_from_message_id(message_id, DOMAIN) == dispatch_id
    assert dispatch_from_message_id(message_id, "other.example") is None


def test_xtext_escapes_plus_equals_and_controls() -> None:
    assert xtext("T1.1") == "T1.1"
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"


def test_link_token_is_opaque_and_stable() -> None:
    token = link_token(LINK_SECRET, "T000001.1")
    assert token == link_token(LINK_SECRET, "T000001.1")
    assert token != link_token("other", "T000001.1")
    assert "T000001" not in token
    assert len(token) == 22


def test_configuration_errors_are_clear() -> None:
    log = MemorySentLog()
    with pytest.raises(ValueError, match=r"link_template .* or documents"):
        EmailChannel("h", sender=SENDER, sent_log=log)
    with pytest.raises(ValueError, match=r"\{token\}"):
        EmailChannel("h", sender=SENDER, sent_log=log, link_template="https://x/{id}", link_secret="k")
    with pytest.raises(ValueError, match="link_secret"):
        EmailChannel("h", sender=SENDER, sent_log=log, link_template=LINK)
    with pytest.raises(ValueError, match="security"):
        EmailChannel("h", sender=SENDER, sent_log=log, link_template=LINK, link_secret="k", security="ssl")  # type: ignore[arg-type]
    assert EmailChannel("h", sender=SENDER, sent_log=log, link_template=LINK, link_secret="k").port == 587
    implicit = EmailChannel("h", sender=SENDER, sent_log=log, link_template=LINK, link_secret="k", security="tls")
    assert implicit.port == 465


# -- sending --------------------------------------------------------------------------------------------


def test_success_direct_mode_the_message_and_its_delivered_receipt(mx: SmtpEmulator) -> None:
    clock = VirtualClock()
    adapter = channel(mx, clock, documents=lambda document: PDF)

    async def scenario() -> None:
        result = await adapter.send(dispatch())
        assert result.accepted
        assert result.provider_ref == "<T000001.1@court.example>"
        [receipt] = result.receipts
        assert (receipt.kind, receipt.at, receipt.dispatch_id) == (ReceiptKind.DELIVERED, clock.now(), "T000001.1")
        again = await adapter.send(dispatch())  # the engine retrying: answered from the sent log
        assert again == result
        report = await adapter.status(dispatch())
        assert (report.found, report.provider_ref, report.receipts) == (True, result.provider_ref, result.receipts)
        assert not (await adapter.status(dispatch("T000009.1"))).found
        await adapter.aclose()

    asyncio.run(scenario())
    assert mx.seen("T000001.1") == 1
    [received] = mx.messages
    assert received.envid == "T000001.1"  # DSN requested: ENVID = dispatch id
    assert received.notify == "SUCCESS,FAILURE,DELAY"
    assert received.rcpt_to == ADDRESS
    assert received.mail_from == SENDER
    message = received.message
    assert message["Message-ID"] == "<T000001.1@court.example>"
    assert message[DISPATCH_HEADER] == "T000001.1"
    assert "武汉市武昌区人民法院" in str(message["Subject"])
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert LINK.replace("{token}", link_token(LINK_SECRET, "T000001.1")) in body
    assert PDF_DIGEST in body
    assert "张三" not in body  # no personal data beyond the address in To
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


def test_engine_run_serves_at_the_moment_the_recipient_mx_accepted(mx: SmtpEmulator) -> None:
    clock = VirtualClock()
    adapter = channel(mx, clock)

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            ids = [await client.submit(email_request(f"party{i}@example.com")) for i in range(5)]
            sent_at = clock.now()
            await client.run_until_idle()
            for task_id in ids:
                status = client.status(task_id)
                assert status.state is TaskState.FILED
                assert status.method is ServiceMethod.ELECTRONIC
                assert status.served_at == sent_at  # the DELIVERED receipt's time (CPL Art. 90)
                [record] = status.dispatches
                assert record.status is DispatchStatus.DELIVERED
                assert mx.seen(record.dispatch_id) == 1

    asyncio.run(scenario())
    assert len(mx.messages) == 5


def test_relay_mode_acceptance_is_not_arrival(mx: SmtpEmulator) -> None:
    adapter = channel(mx, mode="relay")

    async def scenario() -> None:
        result = await adapter.send(dispatch())
        assert result.accepted
        assert result.receipts == ()
        report = await adapter.status(dispatch())
        assert report.found
        assert report.receipts == ()

    asyncio.run(scenario())


def test_permanent_failure_550_falls_back_to_post(mx: SmtpEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mx.script(ADDRESS, "reject")
    clock = VirtualClock()
    adapter = channel(mx, clock)

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            task_id = await client.submit(email_request())
            await client.run_until_idle()
            status = client.status(task_id)
            first = status.dispatches[0]
            assert first.status is DispatchStatus.FAILED
            assert first.detail == "email: the recipient's server refused the recipient (550 5.1.1)"
            assert status.method is ServiceMethod.POSTAL
            assert status.state is TaskState.FILED
            report = await adapter.status(dispatch(first.dispatch_id))  # the refusal is remembered
            assert [r.kind for r in report.receipts] == [ReceiptKind.FAILED]

    asyncio.run(scenario())
    assert mx.messages == []
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("delivery_sdk"))
    assert "refused (550 5.1.1) for zh" in ours  # the masked address...
    assert ADDRESS not in ours  # ...never the address


def test_refused_message_554_is_a_permanent_failure(mx: SmtpEmulator) -> None:
    mx.script(ADDRESS, "reject_data")
    result = asyncio.run(channel(mx).send(dispatch()))
    assert not result.accepted
    assert result.reason == "email: the recipient's server refused the message (554 5.6.0)"


def test_451_then_success_is_retried_and_sent_once(mx: SmtpEmulator) -> None:
    mx.script(ADDRESS, "tempfail", "tempfail_data", "accept")
    clock = VirtualClock()
    adapter = channel(mx, clock)

    async def scenario() -> None:
        with pytest.raises(TransientChannelError, match=r"RCPT TO answered 451 4\.3\.0"):
            await adapter.send(dispatch("X1.1"))
        with pytest.raises(TransientChannelError, match=r"deferred the message \(451 4.3.0\)"):
            await adapter.send(dispatch("X1.1"))
        async with client_for(adapter, clock) as client:  # the engine's own retries
            mx.script("party@example.com", "tempfail", "accept")
            task_id = await client.submit(email_request("party@example.com"))
            await client.run_until_idle()
            assert client.status(task_id).state is TaskState.FILED
            assert client.status(task_id).method is ServiceMethod.ELECTRONIC
        assert (await adapter.send(dispatch("X1.1"))).accepted

    asyncio.run(scenario())
    assert mx.transactions == 5
    # the 451 to the message was received and not kept: the one kept copy is the last send
    assert [m.behaviour for m in mx.messages if m.dispatch_id == "X1.1"] == ["tempfail_data", "accept"]
    assert mx.seen("X1.1") == 1


def test_timeout_after_the_data_is_in_doubt_and_never_sent_again(mx: SmtpEmulator) -> None:
    mx.script(ADDRESS, "hang")  # no answer for 5 s
    clock = VirtualClock()
    adapter = channel(mx, clock, timeout=1.0)

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            task_id = await client.submit(email_request())
            await client.run_until_idle()
            status = client.status(task_id)
            first = status.dispatches[0]
            # the server got the message but its answer never came: handed over, no proof of arrival;
            # the response window ran out and the task went on by post
            assert first.status is DispatchStatus.TIMED_OUT
            assert first.delivered_at is None
            assert status.method is ServiceMethod.POSTAL
            record = adapter._log.get(first.dispatch_id)
            assert record is not None
            assert record.state is SentState.IN_DOUBT
            assert mx.seen(first.dispatch_id) == 1

    asyncio.run(scenario())


def test_timeout_connecting_is_transient() -> None:
    adapter = EmailChannel(
        "127.0.0.1", 9, sender=SENDER, sent_log=MemorySentLog(), security="none", link_template=LINK, link_secret="k"
    )
    with pytest.raises(TransientChannelError, match="SMTP ConnectionRefusedError"):
        asyncio.run(adapter.send(dispatch()))


def test_starttls_with_auth(tls: TlsMaterial) -> None:
    with SmtpEmulator(tls=tls, require_starttls=True, auth=("court", "pw")) as server:
        adapter = channel(
            server, security="starttls", tls_context=tls.client_context(), username="court", password="pw"
        )
        assert asyncio.run(adapter.send(dispatch())).accepted
        [received] = server.messages
        assert received.tls
        assert server.logins == ["court"]

        wrong = channel(
            server, security="starttls", tls_context=tls.client_context(), username="court", password="nope"
        )
        with pytest.raises(TransientChannelError, match="535"):
            asyncio.run(wrong.send(dispatch("T000002.1")))
        untrusted = channel(server, security="starttls")  # the system trust store: a self-signed cert fails
        with pytest.raises(TransientChannelError, match="SSLCertVerificationError"):
            asyncio.run(untrusted.send(dispatch("T000003.1")))
        plain = channel(server, security="none")  # the server insists on STARTTLS
        with pytest.raises(TransientChannelError, match="MAIL FROM answered 530"):
            asyncio.run(plain.send(dispatch("T000004.1")))
        assert server.seen("T000002.1") + server.seen("T000003.1") + server.seen("T000004.1") == 0


def test_starttls_is_never_skipped(mx: SmtpEmulator) -> None:
    adapter = channel(mx, security="starttls")  # this server offers no STARTTLS
    with pytest.raises(TransientChannelError, match="does not offer STARTTLS"):
        asyncio.run(adapter.send(dispatch()))
    assert mx.messages == []


def test_implicit_tls(tls: TlsMaterial) -> None:
    with SmtpEmulator(tls=tls, implicit_tls=True) as server:
        adapter = channel(server, security="tls", tls_context=tls.client_context())
        assert asyncio.run(adapter.send(dispatch())).accepted
        assert server.messages[0].tls


def test_documents_are_checked_against_their_digest_before_attaching(mx: SmtpEmulator) -> None:
    adapter = channel(mx, documents=lambda document: b"%PDF-1.4 tampered")
    with pytest.raises(ChannelError, match="does not match its SHA-256 digest"):
        asyncio.run(adapter.send(dispatch()))

    def broken(document: Document) -> bytes:
        raise OSError("document store down")

    with pytest.raises(TransientChannelError, match="document source failed"):
        asyncio.run(channel(mx, documents=broken).send(dispatch()))

    async def async_source(document: Document) -> bytes:
        return PDF

    assert asyncio.run(channel(mx, documents=async_source, link_template=None).send(dispatch())).accepted
    assert mx.seen("T000001.1") == 1
    too_big = channel(mx, documents=lambda document: PDF, max_attachment_bytes=10)
    with pytest.raises(ChannelError, match="serve them by link"):
        asyncio.run(too_big.send(dispatch("T000002.1")))


def test_rate_limit_spaces_the_sends(mx: SmtpEmulator) -> None:
    adapter = channel(mx, rate=20.0)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(adapter.send(dispatch(f"T00000{i}.1", f"p{i}@example.com")) for i in range(5)))
        return loop.time() - start

    assert asyncio.run(scenario()) >= 0.18  # 5 sends at 20/s, burst 1: at least 4 intervals of 50 ms
    assert len(mx.messages) == 5


# -- bounces --------------------------------------------------------------------------------------------


def test_bounce_fed_back_fails_the_dispatch_once(mx: SmtpEmulator) -> None:
    mx.script(ADDRESS, "bounce")
    clock = VirtualClock()
    adapter = channel(mx, clock, mode="relay")

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            task_id = await client.submit(email_request())
            await client.run_until_idle(until=clock.now())
            [record] = client.status(task_id).dispatches
            assert record.status is DispatchStatus.SENT  # the relay took it; no arrival yet
            [dsn] = mx.bounces
            headers = signed(dsn)
            assert adapter.verify_callback(headers, dsn, datetime.now(UTC)) == "nonce:n-1"
            [result] = await client.ingest_callback("email", headers, dsn)
            assert result.outcome is IngestOutcome.ACCEPTED
            again = await client.ingest_callback("email", signed(dsn, nonce="n-2"), dsn)  # the same DSN again
            assert [r.outcome for r in again] == [IngestOutcome.DUPLICATE]
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.dispatches[0].status is DispatchStatus.FAILED
            assert status.dispatches[0].detail == "email bounced: status 5.1.1 (failed)"
            assert status.method is ServiceMethod.POSTAL

    asyncio.run(scenario())
    assert mx.seen(mx.messages[0].dispatch_id or "") == 1


def test_delivered_dsn_is_the_service_moment_in_relay_mode(mx: SmtpEmulator) -> None:
    clock = VirtualClock()
    adapter = channel(mx, clock, mode="relay")

    async def scenario() -> None:
        async with client_for(adapter, clock) as client:
            task_id = await client.submit(email_request())
            await client.run_until_idle(until=clock.now())
            arrived = clock.advance(timedelta(minutes=3))
            delayed = mx.make_dsn(mx.messages[0], action="delayed", status="4.4.7", when=arrived)
            assert await client.ingest_callback("email", signed(delayed, "d"), delayed) == []  # no news yet
            dsn = mx.make_dsn(mx.messages[0], action="delivered", status="2.0.0", when=arrived)
            [result] = await client.ingest_callback("email", signed(dsn), dsn)
            assert result.outcome is IngestOutcome.ACCEPTED
            await client.run_until_idle()
            status = client.status(task_id)
            assert status.method is ServiceMethod.ELECTRONIC
            assert status.served_at == arrived.replace(microsecond=0)  # RFC 5322 dates have whole seconds

    asyncio.run(scenario())


def test_forged_and_stale_bounce_pushes_are_rejected(mx: SmtpEmulator) -> None:
    mx.script(ADDRESS, "bounce")
    adapter = channel(mx, mode="relay")
    asyncio.run(adapter.send(dispatch()))
    [dsn] = mx.bounces
    now = datetime.now(UTC)
    forged = {**signed(dsn), "X-Delivery-Signature": "0" * 64}
    with pytest.raises(CallbackRejected) as rejected:
        adapter.verify_callback(forged, dsn, now)
    assert rejected.value.reason == "forged"
    with pytest.raises(MalformedReceipt, match="signature"):
        adapter.parse_callback(forged, dsn)
    tampered = dsn.replace(b"Action: failed", b"Action: delivered")
    with pytest.raises(CallbackRejected, match="forged"):
        adapter.verify_callback(signed(dsn), tampered, now)
    stale = signed(dsn, when=now - timedelta(minutes=30))
    with pytest.raises(CallbackRejected) as rejected:
        adapter.verify_callback(stale, dsn, now)
    assert rejected.value.reason == "stale"
    unsigned = channel(mx, callback_secret=None)
    with pytest.raises(CallbackRejected, match="unsigned"):
        unsigned.verify_callback(signed(dsn), dsn, now)


def test_parse_bounce_matches_by_envid_header_message_id_or_in_reply_to(mx: SmtpEmulator) -> None:
    mx.script(ADDRESS, "accept")
    asyncio.run(channel(mx).send(dispatch("T000042.1")))
    [received] = mx.messages
    now = datetime.now(UTC)
    by_envid = parse_bounce(mx.make_dsn(received), domain=DOMAIN)
    assert (by_envid.dispatch_id, by_envid.envelope_id) == ("T000042.1", "T000042.1")
    by_header = parse_bounce(mx.make_dsn(received, include_envid=False), domain=DOMAIN)
    assert (by_header.dispatch_id, by_header.envelope_id) == ("T000042.1", None)
    headers_only = mx.make_dsn(received, include_envid=False).replace(b"X-Delivery-Dispatch-Id", b"X-Other")
    assert parse_bounce(headers_only, domain=DOMAIN).dispatch_id == "T000042.1"  # from the Message-ID
    bare = mx.make_dsn(received, include_envid=False, include_headers=False)
    assert parse_bounce(bare, domain=DOMAIN).dispatch_id is None
    with pytest.raises(MalformedReceipt, match="names none of our dispatches"):
        bounce_receipts(parse_bounce(bare, domain=DOMAIN), now=now)
    replied = b"In-Reply-To: <T000042.1@court.example>\r\n" + bare
    assert parse_bounce(replied, domain=DOMAIN).dispatch_id == "T000042.1"
    assert parse_bounce(replied, domain="elsewhere.example").dispatch_id is None
    [receipt] = bounce_receipts(by_envid, now=now)
    assert receipt.kind is ReceiptKind.FAILED
    assert receipt.provider_event_id is not None
    assert receipt.provider_event_id.startswith("dsn:")
    assert ADDRESS not in repr(by_envid)


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("failed", "5.1.1", ReceiptKind.FAILED),
        ("failed", "4.4.7", ReceiptKind.FAILED),  # the MTA gave up after a long temporary failure
        ("delayed", "4.4.1", None),
        ("delivered", "2.0.0", ReceiptKind.DELIVERED),
        ("relayed", "2.0.0", None),
        ("", "5.2.2", ReceiptKind.FAILED),
        ("", "4.2.2", None),
    ],
)
def test_dsn_actions_and_status_classes(mx: SmtpEmulator, action: str, status: str, kind: ReceiptKind | None) -> None:
    asyncio.run(channel(mx).send(dispatch()))
    raw = mx.make_dsn(mx.messages[0], action=action or "failed", status=status)
    if not action:
        raw = raw.replace(b"Action: failed\r\n", b"")
    receipts = bounce_receipts(parse_bounce(raw, domain=DOMAIN), now=datetime.now(UTC))
    assert [r.kind for r in receipts] == ([] if kind is None else [kind])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"From: a@b.cc\r\nSubject: hello\r\n\r\nnot a report\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: text/plain\r\n\r\nhi\r\n--x--\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n--x--\r\n",
    ],
)
def test_what_is_not_a_dsn_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedReceipt):
        parse_bounce(raw)


# -- the sent log and crashes ---------------------------------------------------------------------------


def test_sqlite_sent_log_survives_a_new_adapter(mx: SmtpEmulator, tmp_path: Path) -> None:
    path = tmp_path / "sent.sqlite3"
    first = channel(mx, sent_log=SQLiteSentLog(path))
    result = asyncio.run(first.send(dispatch()))
    asyncio.run(first.aclose())
    second = channel(mx, sent_log=SQLiteSentLog(path))  # a new process, the same file
    report = asyncio.run(second.status(dispatch()))
    assert (report.found, report.provider_ref, report.receipts) == (True, result.provider_ref, result.receipts)
    assert asyncio.run(second.send(dispatch())) == result
    other = channel(mx, sent_log=SQLiteSentLog(path, channel="email-2"))  # another channel in the same file
    assert not asyncio.run(other.status(dispatch())).found
    assert mx.seen("T000001.1") == 1


def _worker(store: Path, sent: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), str(store), str(sent), str(port), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )


def test_status_after_a_crash_between_smtp_accept_and_commit(mx: SmtpEmulator, tmp_path: Path) -> None:
    store, sent = tmp_path / "store.sqlite3", tmp_path / "sent.sqlite3"
    killed = _worker(store, sent, mx.port, "--kill-after-send")
    assert killed.returncode == 17, killed.stderr  # died right after the server accepted the first message
    assert len(mx.messages) == 1
    first = mx.messages[0].dispatch_id
    done = _worker(store, sent, mx.port)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["states"] == ["filed"] * 3
    assert summary["methods"] == ["electronic"] * 3
    assert sorted(mx.dispatch_ids()) == sorted(summary["dispatch_ids"])  # each dispatch reached the server once
    assert first in summary["dispatch_ids"]
    assert all(mx.seen(d) == 1 for d in summary["dispatch_ids"])


# -- the entry point ------------------------------------------------------------------------------------


def test_entry_point_is_declared() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="delivery_sdk") if e.name == "email"]
    assert entry.value == "delivery_sdk_email:plugin"
    assert isinstance(entry.load(), EnvEmailPlugin)


def test_entry_point_plugin_registers_nothing_unless_configured(
    mx: SmtpEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with DeliveryClient(":memory:", plugins=[EnvEmailPlugin({})], load_entry_points=False) as client:
        assert "email" not in client.host.channels.names()
    broken = {"DELIVERY_SDK_EMAIL_HOST": "127.0.0.1", "DELIVERY_SDK_EMAIL_PORT": "x"}  # no sender, no link
    with (
        DeliveryClient(":memory:", plugins=[EnvEmailPlugin(broken)], load_entry_points=False) as client,
        pytest.raises(PluginError) as info,
    ):
        client.host.load()
    problems = "\n".join(info.value.problems)
    for variable in ("SENDER", "LINK_TEMPLATE", "LINK_SECRET", "PORT"):
        assert f"DELIVERY_SDK_EMAIL_{variable}" in problems
    assert "DELIVERY_SDK_EMAIL_HOST" not in problems
    with pytest.raises(PluginError, match="DELIVERY_SDK_EMAIL_HOST is required"):
        channel_from_env(
            {
                "DELIVERY_SDK_EMAIL_SENDER": SENDER,
                "DELIVERY_SDK_EMAIL_LINK_TEMPLATE": LINK,
                "DELIVERY_SDK_EMAIL_LINK_SECRET": LINK_SECRET,
            }
        )
    # the channel's own ValueError (a sender that is no address) arrives as a PluginError, message kept
    not_an_address = {
        "DELIVERY_SDK_EMAIL_HOST": "127.0.0.1",
        "DELIVERY_SDK_EMAIL_SENDER": "court",
        "DELIVERY_SDK_EMAIL_SENT_LOG": str(tmp_path / "refused.sqlite3"),
        "DELIVERY_SDK_EMAIL_LINK_TEMPLATE": LINK,
        "DELIVERY_SDK_EMAIL_LINK_SECRET": LINK_SECRET,
    }
    with pytest.raises(PluginError, match="refuses its settings: sender must be an e-mail address"):
        channel_from_env(not_an_address)
    environ = {
        "DELIVERY_SDK_EMAIL_HOST": mx.host,
        "DELIVERY_SDK_EMAIL_PORT": str(mx.port),
        "DELIVERY_SDK_EMAIL_SECURITY": "none",
        "DELIVERY_SDK_EMAIL_SENDER": SENDER,
        "DELIVERY_SDK_EMAIL_MODE": "direct",
        "DELIVERY_SDK_EMAIL_SENT_LOG": str(tmp_path / "sent.sqlite3"),
        "DELIVERY_SDK_EMAIL_LINK_TEMPLATE": LINK,
        "DELIVERY_SDK_EMAIL_LINK_SECRET": LINK_SECRET,
    }
    with DeliveryClient(":memory:", plugins=[EnvEmailPlugin(environ)], load_entry_points=False) as client:
        adapter = client.host.channels.get("email")
        assert isinstance(adapter, EmailChannel)
        assert (adapter.port, adapter.security, adapter.mode) == (mx.port, "none", "direct")
        assert asyncio.run(adapter.send(dispatch())).accepted
    assert mx.seen("T000001.1") == 1
