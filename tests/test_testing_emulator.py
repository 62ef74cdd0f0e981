"""The emulator machinery every provider emulator is built on, over a real socket on 127.0.0.1."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from delivery_sdk.testing.emulator import (
    EmulatorServer,
    FaultScript,
    PathFault,
    json_reply,
    post_callback,
    read_body,
    transient,
)


class Echo(EmulatorServer):
    """Answers every request with its method, path and body length; scripted faults first."""

    def __init__(self) -> None:
        super().__init__(name="echo")
        self.faults: FaultScript[PathFault] = FaultScript()
        self.seen: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        body = read_body(request)
        with self._lock:
            self.seen.append((method, request.path, body))
        fault = self.faults.pop(lambda f: f.matches(method, request.path))
        if fault is not None and fault.status is not None:
            json_reply(request, fault.status, fault.body, headers=fault.headers, retry_after="3")
            return
        json_reply(request, 200, {"method": method, "path": request.path, "length": len(body)})


def test_every_method_reaches_handle_over_keep_alive() -> None:
    with Echo() as server, httpx.Client(base_url=server.url) as http:
        assert server.url == f"http://127.0.0.1:{server.port}"
        for method in ("GET", "POST", "PUT", "DELETE"):
            answer = http.request(method, "/x", content=b"abc" if method != "GET" else None)
            assert answer.status_code == 200
            assert answer.json()["method"] == method
            assert answer.headers["content-type"] == "application/json; charset=utf-8"
        assert [s[0] for s in server.seen] == ["GET", "POST", "PUT", "DELETE"]
        assert server.seen[1][2] == b"abc"


def test_scripted_faults_by_path_and_method_in_order() -> None:
    with Echo() as server, httpx.Client(base_url=server.url) as http:
        server.faults.extend(
            [
                PathFault(path_prefix="/jobs", method="PUT", status=503),
                PathFault(path_prefix="/jobs", status=429, headers=(("X-Why", "busy"),)),
            ]
        )
        assert http.get("/other").status_code == 200  # no fault matches: both stay scripted
        assert len(server.faults) == 2
        first = http.get("/jobs/1")  # the PUT-only fault does not match a GET: the second one does
        assert (first.status_code, first.headers["retry-after"], first.headers["x-why"]) == (429, "3", "busy")
        assert http.put("/jobs/1").status_code == 503
        assert http.put("/jobs/1").status_code == 200
        assert not server.faults
        assert server.faults.pending() == []


def test_url_before_start_is_an_error_and_stop_without_start_is_harmless() -> None:
    server = Echo()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.stop()
    server.start()
    try:
        assert httpx.get(server.url + "/ping").json()["path"] == "/ping"
    finally:
        server.stop()


def test_callbacks_are_posted_and_a_dead_target_answers_zero() -> None:
    with Echo() as target:
        status = post_callback(target.url + "/cb", b'{"a": 1}', {"Content-Type": "application/json"})
        assert status == 200
        assert target.seen == [("POST", "/cb", b'{"a": 1}')]
        with Echo() as pusher:
            pusher.push_later(post_callback, target.url + "/later", b"x", {})
            pusher.wait_pushes()
        assert target.seen[-1] == ("POST", "/later", b"x")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    assert post_callback(f"http://127.0.0.1:{dead}/cb", b"{}", {}, timeout=2.0) == 0


def test_transient_is_seeded_and_never_draws_at_zero() -> None:
    draws = [transient(random.Random(7), 0.3) for _ in range(1)]
    assert draws == [transient(random.Random(7), 0.3)]
    rng = random.Random(1)
    assert not any(transient(rng, 0.0) for _ in range(100))
    assert rng.random() == random.Random(1).random()  # rate 0 drew nothing
    share = sum(transient(random.Random(i), 0.3) for i in range(2000)) / 2000
    assert 0.25 < share < 0.35


def test_json_reply_sends_bytes_as_given() -> None:
    class Raw(EmulatorServer):
        def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
            json_reply(request, 201, b'{"raw":true}', content_type="application/json")

    with Raw(name="raw") as server:
        answer = httpx.post(server.url + "/", content=b"")
        assert (answer.status_code, json.loads(answer.content)) == (201, {"raw": True})


class Store(EmulatorServer):
    """Keeps what it is POSTed, by path; durable through dump_state/load_state."""

    def __init__(self, **service: Any) -> None:
        super().__init__(name="store", **service)
        self.kept: dict[str, str] = {}

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        body = read_body(request)
        if method == "POST":
            self.kept[request.path] = body.decode()
        json_reply(request, 200, {"kept": len(self.kept)})

    def describe_request(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        return {"text": body.decode()} if body else {}

    def dump_state(self) -> dict[str, Any]:
        return {"kept": self.kept}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.kept.update(state["kept"])


def test_a_fixed_port_and_a_state_dir_make_the_emulator_restartable(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = Store(port=port, state_dir=tmp_path)
    assert first.url == f"http://127.0.0.1:{port}"  # known before it binds
    with first, httpx.Client(base_url=first.url) as http:
        # several requests on one kept-alive connection: the emulator reads each body, the next one follows
        for n in range(3):
            assert http.post(f"/a{n}", content=f"body {n}").json() == {"kept": n + 1}
        assert http.get("/other").status_code == 200
        listed = http.get("/_sandbox/received").json()
        assert listed["name"] == "store"
        assert [(r["seq"], r["method"], r["path"], r["status"]) for r in listed["received"]] == [
            (1, "POST", "/a0", 200),
            (2, "POST", "/a1", 200),
            (3, "POST", "/a2", 200),
            (4, "GET", "/other", 200),
        ]
        assert listed["received"][0]["text"] == "body 0"
        assert http.get("/_sandbox/state").json()["state"] == {
            "kept": {"/a0": "body 0", "/a1": "body 1", "/a2": "body 2"}
        }
        assert http.get("/_sandbox/nothing").status_code == 404
    with Store(port=port, state_dir=tmp_path) as again, httpx.Client(base_url=again.url) as http:
        assert again.kept == {"/a0": "body 0", "/a1": "body 1", "/a2": "body 2"}
        http.post("/a3", content="more")
        # asked on the same connection: the server notes a request after it answered it, before the next one
        listed = http.get("/_sandbox/received").json()["received"]
        assert [r["seq"] for r in listed] == [1, 2, 3, 4, 5]
    assert len((tmp_path / "received.jsonl").read_text().splitlines()) == 5


def test_without_a_state_dir_nothing_touches_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as server:
        httpx.post(server.url + "/x", content=b"y")
        assert len(server.received()) == 1
    assert list(tmp_path.iterdir()) == []
