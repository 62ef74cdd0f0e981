"""The recipient's document page (delivery_sdk.portal), driven over ASGI with httpx.

One world per test: an SQLite store, the SMS gateway emulator (the document SMS and the one-time codes
both go through the registered SMS adapter), the portal over the same client. Every refusal (a wrong code,
an expired link, a replayed or foreign session, a document whose bytes are not its digest) is checked to
change no legal fact: the task's events are the same before and after.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from delivery_sdk_sms.emulator import SmsGatewayEmulator

from delivery_sdk import AsyncDeliveryClient
from delivery_sdk.cli import main
from delivery_sdk.clock import VirtualClock
from delivery_sdk.events import ConsentObjected, ConsentRecorded, DispatchDelivered, DispatchRead
from delivery_sdk.law.service import BASIS_ELECTRONIC_READ
from delivery_sdk.lifecycle import TaskState
from delivery_sdk.model import ConsentMethod, ContactKind, ServiceMethod
from delivery_sdk.portal import CSP, ENV, IdentityMethod, Portal, PortalConfig
from delivery_sdk.printing.package import FolderDocumentSource
from delivery_sdk.store import SQLiteStore

_spec = importlib.util.spec_from_file_location("portal_world", Path(__file__).with_name("portal_world.py"))
assert _spec is not None
assert _spec.loader is not None
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)


@pytest.fixture
def gateway() -> Iterator[SmsGatewayEmulator]:
    with SmsGatewayEmulator() as emulator:
        yield emulator


class World:
    def __init__(
        self,
        client: AsyncDeliveryClient,
        portal: Portal,
        http: httpx.AsyncClient,
        gateway: SmsGatewayEmulator,
        clock: VirtualClock,
        source: FolderDocumentSource,
    ) -> None:
        self.client, self.portal, self.http, self.gateway, self.clock, self.source = (
            client,
            portal,
            http,
            gateway,
            clock,
            source,
        )
        self.tasks: list[str] = []

    async def submit(self, party_id: str = "P1") -> tuple[str, str, str]:
        """A task sent by SMS: (task id, dispatch id, link token)."""
        _source, docs = W.documents(self.source.folder)
        task_id = await self.client.submit(W.request(docs, party_id=party_id))
        await self.client.run_until_idle(until=self.clock.now())
        [dispatch] = self.client.task(task_id).dispatches
        return task_id, dispatch.dispatch_id, W.token_of(W.link_of(self.gateway, dispatch.dispatch_id))

    def facts(self, task_id: str) -> list[str]:
        return [s.event.TYPE for s in self.client.timeline(task_id)]

    async def csrf(self, path: str) -> str:
        page = await self.http.get(path)
        marker = 'name="csrf" value="'
        assert marker in page.text, page.text
        return page.text.split(marker, 1)[1].split('"', 1)[0]

    async def verify_by_code(self, token: str) -> httpx.Response:
        csrf = await self.csrf(f"/s/{token}")
        sent = await self.http.post(f"/s/{token}/code", data={"csrf": csrf})
        assert sent.status_code == 200, sent.text
        return await self.http.post(f"/s/{token}/verify", data={"csrf": csrf, "answer": W.last_code(self.gateway)})


Scenario = Callable[[World], Awaitable[None]]


def run(gateway: SmsGatewayEmulator, tmp_path: Path, scenario: Scenario, **overrides: Any) -> None:
    clock = VirtualClock()
    gateway.clock = clock.now

    async def main() -> None:
        source, _docs = W.documents(tmp_path / "documents")
        store = SQLiteStore(tmp_path / "store.sqlite3")
        try:
            async with W.client(store, W.sms_channel(gateway), clock) as client:
                portal = Portal(W.config(**overrides), source, client)
                transport = httpx.ASGITransport(app=portal.app())
                async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                    await scenario(World(client, portal, http, gateway, clock, source))
        finally:
            store.close()

    asyncio.run(main())


# -- the whole path --------------------------------------------------------------------------------------


def test_link_code_read_confirm_serves_under_art_31(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, dispatch_id, token = await w.submit()
        assert w.client.status(task_id).state is TaskState.ELECTRONIC  # sent, not delivered, not served
        opened = await w.http.get(f"/s/{token}")
        assert opened.status_code == 200
        assert "查阅文书前，请先核验身份" in opened.text
        assert "张三" not in opened.text  # no name before the identity check
        w.clock.advance(timedelta(minutes=2))
        verified = await w.verify_by_code(token)
        assert verified.status_code == 303
        assert verified.headers["location"] == f"/s/{token}/docs"
        page = await w.http.get(f"/s/{token}/docs")
        assert page.status_code == 200
        assert "传票" in page.text
        assert W.digest(W.SUMMONS) in page.text
        assert "第三十一条" in page.text
        w.clock.advance(timedelta(minutes=3))
        read_at = w.clock.now()
        document = await w.http.get(f"/s/{token}/doc/D1")
        assert document.status_code == 200
        assert document.content == W.SUMMONS
        assert document.headers["cache-control"].startswith("no-store")
        assert document.headers["content-type"] == "application/pdf"
        w.clock.advance(timedelta(minutes=1))
        csrf = await w.csrf(f"/s/{token}/docs")
        confirmed = await w.http.post(f"/s/{token}/confirm", data={"csrf": csrf})
        assert "已签收" in confirmed.text
        await w.client.run_until_idle(until=w.clock.now())

        task = w.client.task(task_id)
        assert task.served_method is ServiceMethod.ELECTRONIC
        assert task.served_basis == BASIS_ELECTRONIC_READ
        assert task.served_at == read_at
        [record] = task.dispatches
        assert record.read_at == read_at
        assert record.accepted_at == read_at + timedelta(minutes=1)
        events = [s.event for s in w.client.timeline(task_id)]
        delivered = [e for e in events if isinstance(e, DispatchDelivered)]
        read = [e for e in events if isinstance(e, DispatchRead)]
        assert [e.provider_event_id for e in delivered] == [f"portal-verified-{dispatch_id}"]
        assert [e.provider_event_id for e in read] == [f"portal-read-{dispatch_id}"]
        acceptance = [e for e in events if isinstance(e, ConsentRecorded)]
        assert [(e.method, e.via_dispatch) for e in acceptance] == [
            (ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, dispatch_id)
        ]
        assert w.portal.counts["read_accepted"] == 1
        # a second read and a download are not new facts
        again = await w.http.get(f"/s/{token}/doc/D2?download=1")
        assert again.headers["content-disposition"].startswith("attachment;")
        assert [e for e in w.client.timeline(task_id) if isinstance(e.event, DispatchRead)] == [
            s for s in w.client.timeline(task_id) if isinstance(s.event, DispatchRead)
        ]
        assert len([s for s in w.client.timeline(task_id) if isinstance(s.event, DispatchRead)]) == 1

    run(gateway, tmp_path, scenario)


def test_the_code_goes_through_the_sms_adapter_to_the_tasks_mobile(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        _task_id, dispatch_id, token = await w.submit()
        csrf = await w.csrf(f"/s/{token}")
        page = await w.http.post(f"/s/{token}/code", data={"csrf": csrf})
        assert "13*******78" in page.text  # masked
        codes = [m for m in w.gateway.messages.values() if m.template_code == W.CODE_TEMPLATE]
        assert len(codes) == 1
        assert codes[0].phone_numbers == W.MOBILE
        assert dispatch_id not in codes[0].out_id  # the reference names no dispatch
        # a second code within the interval is refused; after it, a new one replaces the first
        soon = await w.http.post(f"/s/{token}/code", data={"csrf": csrf})
        assert soon.status_code == 429
        first = W.last_code(w.gateway)
        w.clock.advance(timedelta(seconds=61))
        assert (await w.http.post(f"/s/{token}/code", data={"csrf": csrf})).status_code == 200
        second = W.last_code(w.gateway)
        if first != second:
            stale = await w.http.post(f"/s/{token}/verify", data={"csrf": csrf, "answer": first})
            assert stale.status_code == 403

    run(gateway, tmp_path, scenario)


def test_id_digits_when_the_court_configures_them(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        _task_id, _dispatch_id, token = await w.submit()
        page = await w.http.get(f"/s/{token}")
        assert "身份证号码后 4 位" in page.text
        csrf = await w.csrf(f"/s/{token}")
        ok = await w.http.post(f"/s/{token}/verify", data={"csrf": csrf, "answer": "123x"})
        assert ok.status_code == 303
        assert not [m for m in w.gateway.messages.values() if m.template_code == W.CODE_TEMPLATE]

    run(gateway, tmp_path, scenario, identity=IdentityMethod.ID_DIGITS)


# -- refusals change no legal fact -------------------------------------------------------------------------


def test_wrong_codes_lock_out_and_change_nothing(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, _dispatch_id, token = await w.submit()
        before = w.facts(task_id)
        csrf = await w.csrf(f"/s/{token}")
        await w.http.post(f"/s/{token}/code", data={"csrf": csrf})
        right = W.last_code(w.gateway)
        wrong = "000000" if right != "000000" else "111111"
        for _ in range(4):
            assert (await w.http.post(f"/s/{token}/verify", data={"csrf": csrf, "answer": wrong})).status_code == 403
        locked = await w.http.post(f"/s/{token}/verify", data={"csrf": csrf, "answer": wrong})
        assert locked.status_code == 429
        assert "已暂时锁定" in locked.text
        # locked: even the right code does not open, and no new code is sent
        assert (await w.http.post(f"/s/{token}/verify", data={"csrf": csrf, "answer": right})).status_code == 429
        assert (await w.http.post(f"/s/{token}/code", data={"csrf": csrf})).status_code == 429
        assert (await w.http.get(f"/s/{token}/docs")).status_code == 303
        assert (await w.http.get(f"/s/{token}/doc/D1")).status_code == 303
        assert w.facts(task_id) == before
        assert w.portal.attempts.counts["lockouts"] == 1
        # after the lockout a new code works
        w.clock.advance(timedelta(minutes=31))
        assert (await w.verify_by_code(token)).status_code == 303

    run(gateway, tmp_path, scenario)


def test_expired_unknown_and_tampered_links(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, _dispatch_id, token = await w.submit()
        before = w.facts(task_id)
        unknown = await w.http.get("/s/AAAAAAAAAAAAAAAAAAAAAA")
        assert unknown.status_code == 404
        assert "链接无效" in unknown.text
        assert W.PHONE in unknown.text
        tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
        assert (await w.http.get(f"/s/{tampered}")).status_code == 404
        assert (await w.http.get(f"/s/{token[:10]}")).status_code == 404
        assert (await w.http.get("/s/%3Cscript%3E")).status_code == 404
        w.clock.advance(timedelta(days=31))
        expired = await w.http.get(f"/s/{token}")
        assert expired.status_code == 410
        assert "链接已过期" in expired.text
        assert W.PHONE in expired.text
        assert (await w.http.post(f"/s/{token}/code", data={})).status_code == 410
        assert w.facts(task_id) == before
        # a withdrawn (cancelled) task's link is closed too
        withdrawn, _d2, closed = await w.submit("P2")
        await w.client.cancel(withdrawn, "withdrawn by the court")
        page = await w.http.get(f"/s/{closed}")
        assert page.status_code == 410
        assert "已由法院撤回" in page.text
        assert w.portal.counts["link_unknown"] == 2
        assert w.portal.counts["link_malformed"] == 2
        assert w.portal.counts["link_expired"] == 2
        health = (await w.http.get("/healthz")).json()
        assert health["status"] == "ok"
        assert health["counts"]["link_expired"] == 2

    run(gateway, tmp_path, scenario)


def test_replayed_expired_and_forged_sessions(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, _dispatch_id, token = await w.submit()
        await w.verify_by_code(token)
        cookie = w.http.cookies.get("ds_session")
        assert cookie is not None
        assert W.MOBILE not in cookie
        assert "张三" not in cookie
        before = w.facts(task_id)
        csrf = await w.csrf(f"/s/{token}/docs")
        assert (await w.http.post(f"/s/{token}/logout", data={"csrf": csrf})).status_code == 303
        # the cookie replayed after logout: refused, nothing read, nothing confirmed
        replay = {"cookie": f"ds_session={cookie}"}
        w.http.cookies.clear()
        for response in (
            await w.http.get(f"/s/{token}/docs", headers=replay),
            await w.http.get(f"/s/{token}/doc/D1", headers=replay),
            await w.http.post(f"/s/{token}/confirm", data={"csrf": csrf}, headers=replay),
            await w.http.post(f"/s/{token}/consent", data={"csrf": csrf, "choice": "agree"}, headers=replay),
        ):
            assert response.status_code == 303
            assert response.headers["location"] == f"/s/{token}"
        assert w.portal.counts["session_ended"] == 4
        # an expired session, and a forged one
        w.clock.advance(timedelta(seconds=61))  # the next code may be sent
        await w.verify_by_code(token)
        live = w.http.cookies.get("ds_session")
        assert live is not None
        payload, _signature = live.split(".")
        forged = {"cookie": f"ds_session={payload}.AAAA"}
        w.http.cookies.clear()
        assert (await w.http.get(f"/s/{token}/doc/D1", headers=forged)).status_code == 303
        w.clock.advance(timedelta(minutes=16))
        assert (await w.http.get(f"/s/{token}/doc/D1", headers={"cookie": f"ds_session={live}"})).status_code == 303
        assert w.portal.counts["session_forged"] == 1
        assert w.portal.counts["session_expired"] == 1
        after = [t for t in w.facts(task_id) if t not in ("dispatch.delivered",)]
        assert [t for t in before if t != "dispatch.delivered"] == after
        assert "dispatch.read" not in w.facts(task_id)
        assert "consent.recorded" not in w.facts(task_id)

    run(gateway, tmp_path, scenario)


def test_another_dispatchs_session_opens_nothing(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        _mine, _d1, token = await w.submit("P1")
        theirs, _d2, other = await w.submit("P2")
        assert token != other
        await w.verify_by_code(token)
        cookie = w.http.cookies.get("ds_session")
        before = w.facts(theirs)
        w.http.cookies.clear()
        stolen = {"cookie": f"ds_session={cookie}"}
        assert (await w.http.get(f"/s/{other}/docs", headers=stolen)).status_code == 303
        assert (await w.http.get(f"/s/{other}/doc/D1", headers=stolen)).status_code == 303
        csrf = await w.csrf(f"/s/{other}")
        assert (await w.http.post(f"/s/{other}/confirm", data={"csrf": csrf}, headers=stolen)).status_code == 303
        assert w.facts(theirs) == before
        assert w.portal.counts["session_other_dispatch"] == 3

    run(gateway, tmp_path, scenario)


def test_a_document_whose_bytes_changed_is_not_served_nor_read(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, _dispatch_id, token = await w.submit()
        await w.verify_by_code(token)
        before = w.facts(task_id)
        w.source.path(W.digest(W.SUMMONS)).write_bytes(b"%PDF-1.4\n% not the summons\n")
        changed = await w.http.get(f"/s/{token}/doc/D1")
        assert changed.status_code == 409
        assert "文书校验未通过" in changed.text
        assert b"not the summons" not in changed.content
        w.source.path(W.digest(W.COMPLAINT)).unlink()
        assert (await w.http.get(f"/s/{token}/doc/D2")).status_code == 503
        assert (await w.http.get(f"/s/{token}/doc/D9")).status_code == 404
        assert w.facts(task_id) == before
        assert w.portal.counts["document_digest_mismatch"] == 1

    run(gateway, tmp_path, scenario)


def test_forms_need_their_csrf_token(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, _dispatch_id, token = await w.submit()
        assert (await w.http.post(f"/s/{token}/code", data={"csrf": "x"})).status_code == 400
        await w.verify_by_code(token)
        before = w.facts(task_id)
        assert (await w.http.post(f"/s/{token}/confirm", data={})).status_code == 400
        assert (await w.http.post(f"/s/{token}/consent", data={"choice": "agree"})).status_code == 400
        assert w.facts(task_id) == before

    run(gateway, tmp_path, scenario)


# -- address confirmation and consent -----------------------------------------------------------------------


def test_consent_covers_the_partys_other_tasks_in_the_case(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        first, _d1, token = await w.submit("P1")
        second, _d2, _t2 = await w.submit("P1")
        stranger, _d3, _t3 = await w.submit("P9")
        await w.verify_by_code(token)
        csrf = await w.csrf(f"/s/{token}/docs")
        page = await w.http.post(f"/s/{token}/consent", data={"csrf": csrf, "choice": "agree"})
        assert "同意电子送达" in page.text
        for task_id in (first, second):
            consent = w.client.task(task_id).consent
            assert consent is not None
            assert consent.method is ConsentMethod.CONFIRMATION_FORM
        assert w.client.task(stranger).consent is None
        for task_id in (first, second):  # the mobile the link went to is now a confirmed address
            [mobile] = w.client.task(task_id).contacts_of(ContactKind.MOBILE)
            assert mobile.confirmed
            assert mobile.source == "portal"
        assert not any(c.confirmed for c in w.client.task(stranger).contacts_of(ContactKind.MOBILE))
        # confirming the address sends nothing again
        await w.client.run_until_idle(until=w.clock.now())
        assert [len(w.client.task(t).dispatches) for t in (first, second)] == [1, 1]
        # the same form twice records nothing new
        n = len(w.facts(first))
        await w.http.post(f"/s/{token}/consent", data={"csrf": csrf, "choice": "agree"})
        assert len(w.facts(first)) == n

    run(gateway, tmp_path, scenario)


def test_declining_is_an_objection(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        task_id, dispatch_id, token = await w.submit()
        await w.verify_by_code(token)
        csrf = await w.csrf(f"/s/{token}/docs")
        page = await w.http.post(f"/s/{token}/consent", data={"csrf": csrf, "choice": "decline"})
        assert "不同意电子送达" in page.text
        [objection] = [s.event for s in w.client.timeline(task_id) if isinstance(s.event, ConsentObjected)]
        assert objection.via_dispatch == dispatch_id
        assert w.client.task(task_id).objected_at is not None

    run(gateway, tmp_path, scenario)


# -- headers, logs ---------------------------------------------------------------------------------------------


def test_security_headers_and_an_access_log_without_personal_data(
    gateway: SmsGatewayEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(w: World) -> None:
        _task_id, _dispatch_id, token = await w.submit()
        with caplog.at_level(logging.INFO, logger="delivery_sdk.portal"):
            page = await w.http.get(f"/s/{token}")
            await w.verify_by_code(token)
            await w.http.get(f"/s/{token}/doc/D1")
        assert page.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"].startswith("no-store")
        assert "https://" not in page.text  # no external assets
        assert "<script" not in page.text
        css = await w.http.get("/static/portal.css")
        assert css.headers["content-type"].startswith("text/css")
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "delivery_sdk.portal.access"]
        assert {line["route"] for line in lines} >= {"/s/{token}", "/s/{token}/verify", "/s/{token}/doc/{document_id}"}
        text = "\n".join(r.getMessage() for r in caplog.records)
        for secret in (token, W.MOBILE, "张三", W.ID_NUMBER, W.last_code(w.gateway)):
            assert secret not in text

    run(gateway, tmp_path, scenario)


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="session_secret"):
        W.config(session_secret=b"short")
    with pytest.raises(ValueError, match="link_keys"):
        W.config(link_keys=())
    env = {
        "DELIVERY_SDK_PORTAL_COURT_NAME": W.COURT,
        "DELIVERY_SDK_PORTAL_COURT_PHONE": W.PHONE,
        "DELIVERY_SDK_PORTAL_LINK_KEY": "k1, k2",
        "DELIVERY_SDK_PORTAL_SESSION_SECRET": "x" * 40,
        "DELIVERY_SDK_PORTAL_IDENTITY": "id_digits",
    }
    config = PortalConfig.from_env(env)
    assert config.link_keys == (b"k1", b"k2")
    assert config.identity is IdentityMethod.ID_DIGITS
    assert config.secure_cookies
    with pytest.raises(ValueError, match="DELIVERY_SDK_PORTAL_SESSION_SECRET"):
        PortalConfig.from_env({k: v for k, v in env.items() if "SECRET" not in k})


# -- the command ---------------------------------------------------------------------------------------------


def test_the_portal_command_needs_its_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ENV.values():
        monkeypatch.delenv(variable, raising=False)
    assert main(["portal", "--store", str(tmp_path / "s.sqlite3")]) == 2
    assert "DELIVERY_SDK_PORTAL_COURT_NAME" in capsys.readouterr().err


def test_the_portal_command_serves_health_and_pages(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        ENV["court_name"]: W.COURT,
        ENV["court_phone"]: W.PHONE,
        ENV["link_keys"]: W.LINK_KEY.decode(),
        ENV["session_secret"]: W.SECRET.decode(),
        ENV["documents"]: str(tmp_path / "documents"),
        "DELIVERY_SDK_PLUGINS": "",
    }
    command = [sys.executable, "-m", "delivery_sdk.cli", "portal", "--store", str(tmp_path / "store.sqlite3")]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the portal did not start"
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        assert health.headers["content-security-policy"] == CSP
        unknown = httpx.get(f"http://127.0.0.1:{port}/s/AAAAAAAAAAAAAAAAAAAAAA", timeout=5)
        assert unknown.status_code == 404
        assert W.PHONE in unknown.text
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=15)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {"method": "GET", "route": "/s/{token}", "status": 404} in [
        {k: v for k, v in line.items() if k != "ms"} for line in lines
    ]
    assert "AAAAAAAAAAAAAAAAAAAAAA" not in err
