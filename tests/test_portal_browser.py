"""The document page in a real headless browser against a real uvicorn server on 127.0.0.1.

The click-through is driven through chromium's DevTools protocol over ``--remote-debugging-pipe`` (JSON
messages on file descriptors 3 and 4, no websocket client and no selenium needed): the browser opens the link
in the SMS the gateway emulator received, presses "发送验证码", types the code the emulator received next,
opens a document, goes back and presses "签收". Every request is the browser's own (its cookie, its
redirects, its form posts), so the session cookie, the form tokens and the security headers are exercised as
a phone would. Screenshots are phone-sized (390 x 844 CSS pixels, 2x); they go to
``$DELIVERY_SDK_PORTAL_SCREENSHOTS`` when set (``docs/img`` to refresh the user guide's pictures), else to
the test's temporary folder. Without chromium the test fails: it is not optional (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import importlib.util
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from delivery_sdk_sms.emulator import SmsGatewayEmulator

from delivery_sdk.events import ConsentRecorded
from delivery_sdk.law.evidence import Evidence
from delivery_sdk.law.service import BASIS_ELECTRONIC_READ
from delivery_sdk.model import ConsentMethod, ServiceMethod
from delivery_sdk.portal import create_app
from delivery_sdk.proof import build_record
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import RecordingSink, channels_plugin

_spec = importlib.util.spec_from_file_location("portal_world", Path(__file__).with_name("portal_world.py"))
assert _spec is not None
assert _spec.loader is not None
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)

PHONE_WIDTH, PHONE_HEIGHT, SCALE = 390, 844, 2
TIMEOUT = 20.0


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium is not installed: the portal's browser test needs it (`apt-get install -y chromium`)")


class Browser:
    """Headless chromium driven over the DevTools pipe (one page, one session)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the child's ends, moved above 3 and 4 so that the shell's renumbering cannot clobber them
        a, b = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 100), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 100)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--lang=zh-CN",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # the protocol is on fds 3 (to chromium) and 4 (from it): the shell puts the pipes there
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', _chromium(), *args],
            pass_fds=(a, b),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(a)
        os.close(b)
        self._ids = iter(range(1, 1_000_000))
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=PHONE_WIDTH,
            height=PHONE_HEIGHT,
            deviceScaleFactor=SCALE,
            mobile=True,
        )

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._answers[message["id"]] = message
                        self._cond.notify_all()
                else:
                    self.events.put(message)

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        n = next(self._ids)
        message: dict[str, Any] = {"id": n, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        with self._cond:
            while n not in self._answers:
                left = deadline - time.monotonic()
                assert left > 0, f"chromium did not answer {method}"
                self._cond.wait(left)
            answer = self._answers.pop(n)
        assert "error" not in answer, (method, answer["error"])
        result: dict[str, Any] = answer.get("result", {})
        return result

    def _drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def _loaded(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if event.get("method") == "Page.loadEventFired":
                return

    def goto(self, url: str) -> dict[str, Any]:
        self._drain()
        result = self.call("Page.navigate", session=True, url=url)
        if "errorText" not in result:
            self._loaded()
        return result

    def click(self, element_id: str) -> None:
        """Click a button or link by id and wait for the page it leads to."""
        self._drain()
        clicked = self.js(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)}); "
            "if (!e) return false; setTimeout(() => e.click(), 0); return true; })()"
        )
        assert clicked, f"no element #{element_id} on {self.js('location.pathname')}"
        self._loaded()

    def type(self, element_id: str, text: str) -> None:
        assert self.js(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)}); "
            f"if (!e) return false; e.value = {json.dumps(text)}; return true; }})()"
        )

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def text(self) -> str:
        return str(self.js("document.body.innerText"))

    def screenshot(self, path: Path) -> None:
        """The whole page at phone width (at least one phone screen tall)."""
        height = max(PHONE_HEIGHT, int(self.js("document.documentElement.scrollHeight")))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=PHONE_WIDTH,
            height=height,
            deviceScaleFactor=SCALE,
            mobile=True,
        )
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=PHONE_WIDTH,
            height=PHONE_HEIGHT,
            deviceScaleFactor=SCALE,
            mobile=True,
        )

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """uvicorn in a thread, serving the portal with its own client on the store file."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(TIMEOUT)


@pytest.fixture
def gateway() -> Iterator[SmsGatewayEmulator]:
    with SmsGatewayEmulator() as emulator:
        yield emulator


def test_from_the_sms_to_a_confirmed_receipt_in_chromium(gateway: SmsGatewayEmulator, tmp_path: Path) -> None:
    shots = Path(os.environ.get("DELIVERY_SDK_PORTAL_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    link_template = f"http://127.0.0.1:{port}/s/{{token}}"
    store_path = tmp_path / "store.sqlite3"
    source, docs = W.documents(tmp_path / "documents")
    sink = RecordingSink()

    async def send() -> tuple[str, str]:
        store = SQLiteStore(store_path)
        try:
            async with W.client(store, W.sms_channel(gateway, link_template), None) as client:
                task_id = await client.submit(W.request(docs))
                await client.run_until_idle()
                [dispatch] = client.task(task_id).dispatches
                return task_id, dispatch.dispatch_id
        finally:
            store.close()

    task_id, dispatch_id = asyncio.run(send())
    link = W.link_of(gateway, dispatch_id)  # the link as the party's phone received it
    assert link.startswith(f"http://127.0.0.1:{port}/s/")

    app = create_app(
        W.config(),
        source,
        store=str(store_path),
        client_options={
            "plugins": [channels_plugin(W.sms_channel(gateway, link_template))],
            "policy": W.POLICY,
            "load_entry_points": False,
        },
    )
    browser = Browser(tmp_path / "profile")
    try:
        with Server(app, port):
            browser.goto(link)
            assert "查阅文书前，请先核验身份" in browser.text()
            assert "发送验证码" in browser.text()
            browser.click("send-code")
            assert "短信验证码" in browser.text()
            browser.screenshot(shots / "portal-verify.png")
            browser.type("answer", W.last_code(gateway))  # the code the gateway received for the party
            browser.click("verify")
            assert browser.js("location.pathname").endswith("/docs")
            page = browser.text()
            assert "传票" in page
            assert "起诉状副本" in page
            assert W.digest(W.SUMMONS) in page
            assert "送达的法律后果" in page
            assert browser.js("document.cookie") == ""  # HttpOnly: no script sees the session
            browser.screenshot(shots / "portal-documents.png")
            docs_url = browser.js("location.href")
            # open the summons (the browser's PDF viewer, or a download: either way the bytes are fetched)
            href = browser.js("document.getElementById('view-D1').href")
            browser.goto(href)
            browser.goto(docs_url)
            browser.click("confirm")
            assert "已签收" in browser.text()
            browser.screenshot(shots / "portal-confirmed.png")
            browser.goto(f"http://127.0.0.1:{port}/s/AAAAAAAAAAAAAAAAAAAAAA")
            assert "链接无效" in browser.text()
            assert W.PHONE in browser.text()
            browser.screenshot(shots / "portal-invalid-link.png")
    finally:
        browser.close()

    async def settle() -> None:
        store = SQLiteStore(store_path)
        try:
            async with W.client(store, W.sms_channel(gateway, link_template), None, sink) as client:
                await client.run_until_idle()
                task = client.task(task_id)
                [record] = task.dispatches
                assert record.read_at is not None
                assert record.accepted_at is not None
                assert task.served_method is ServiceMethod.ELECTRONIC
                assert task.served_basis == BASIS_ELECTRONIC_READ  # Art. 31: the unconfirmed mobile, read
                assert task.served_at == record.read_at
                acceptance = [s.event for s in client.timeline(task_id) if isinstance(s.event, ConsentRecorded)]
                assert [e.method for e in acceptance] == [ConsentMethod.ACCEPTED_WITHOUT_OBJECTION]
        finally:
            store.close()

    asyncio.run(settle())
    proof = build_record(sink.filed[f"{task_id}:proof"])
    [attempt] = proof.attempts
    assert attempt.read_at is not None
    assert attempt.accepted_at is not None  # the confirmation (签收), after the read
    assert attempt.accepted_at >= attempt.read_at
    assert proof.basis == BASIS_ELECTRONIC_READ
    assert proof.effective_at == attempt.read_at
    present = {e for check in proof.evidence for e in check.present}
    assert Evidence.READ_RECORD in present
    assert Evidence.REPLY_RECORD in present  # the confirmation (签收)
    for name in ("portal-verify.png", "portal-documents.png", "portal-confirmed.png", "portal-invalid-link.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
