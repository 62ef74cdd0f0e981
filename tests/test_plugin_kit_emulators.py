"""BearerApiEmulator and MessageFault (delivery_sdk.testing.emulator): the request flow the EMS and
print-centre emulators share, the gateway faults of the SMS emulators, and every refusal."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from delivery_sdk.testing.emulator import Answer, BearerApiEmulator, MessageFault, PathFault


class _Api(BearerApiEmulator):
    def __init__(self) -> None:
        super().__init__(
            name="api",
            token="t0ken",
            callback_secret="s",
            now=lambda: datetime(2024, 3, 1, tzinfo=UTC),
            callback_url=None,
        )
        self.down = False
        self.seen_headers: dict[str, str] = {}

    def unavailable(self) -> Answer | None:
        return (503, b'{"error": "DOWN"}', (("Retry-After", "7"),)) if self.down else None

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        if method == "POST" and path == "/things":
            self.seen_headers = headers
            return 201, json.dumps({"got": raw.decode()}).encode(), ()
        return None

    def push_request(self, key: str) -> tuple[dict[str, str], bytes]:
        return {"X-Key": key}, b"{}"


AUTH = {"Authorization": "Bearer t0ken"}


def test_bearer_api_answers_an_authorised_request() -> None:
    with _Api() as api:
        assert api.url.startswith("http://127.0.0.1:")  # bound before start, too
        answer = httpx.post(f"{api.url}/things", content=b"abc", headers={**AUTH, "X-Mixed": "1"})
        assert (answer.status_code, answer.json()) == (201, {"got": "abc"})
        assert api.seen_headers["x-mixed"] == "1"  # route gets lower-case names
        assert api.requests == [("POST", "/things")]
        assert api.errors == []
        assert api.now() == datetime(2024, 3, 1, tzinfo=UTC)


def test_bearer_api_refuses_a_wrong_token_and_an_unknown_path() -> None:
    with _Api() as api:
        assert httpx.post(f"{api.url}/things", headers={"Authorization": "Bearer nope"}).status_code == 400
        assert httpx.post(f"{api.url}/things").status_code == 400
        unknown = httpx.get(f"{api.url}/things", headers=AUTH)
        assert (unknown.status_code, unknown.json()) == (400, {"error": "BAD_REQUEST"})
        assert api.errors == ["authorization", "authorization", "path GET /things"]


def test_bearer_api_scripted_faults_and_down() -> None:
    with _Api() as api:
        api.fail(PathFault(path_prefix="/things", status=429, headers=(("Retry-After", "3"),)))
        api.fail(PathFault(path_prefix="/things", delay=0.2))
        busy = httpx.post(f"{api.url}/things", headers=AUTH)
        assert (busy.status_code, busy.headers["retry-after"]) == (429, "3")
        started = time.monotonic()
        assert httpx.post(f"{api.url}/things", headers=AUTH).status_code == 201  # done, then late
        assert time.monotonic() - started >= 0.2
        api.down = True
        down = httpx.post(f"{api.url}/things", headers={"Authorization": "wrong"})
        assert (down.status_code, down.headers["retry-after"]) == (503, "7")  # before the token is read
        assert len(api.requests) == 3
        assert api.errors == []


def test_bearer_api_push_reports_the_receivers_status() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/callbacks"
    api = _Api()
    try:
        assert api.push(dead, "K1") == 0  # nothing answered: no exception
    finally:
        api.stop()


def test_bearer_api_subclass_must_route_and_push() -> None:
    class _Bare(BearerApiEmulator):
        pass

    bare = _Bare(name="bare", token="t", callback_secret="s", now=None, callback_url=None)
    try:
        assert bare.now().tzinfo is UTC
        with pytest.raises(NotImplementedError):
            bare.route("GET", "/", {}, b"")
        with pytest.raises(NotImplementedError):
            bare.push_request("K")
    finally:
        bare.stop()


class _GatewayFault(MessageFault):
    """A plugin's own fault type."""


def test_message_fault_constructors() -> None:
    assert MessageFault.http() == MessageFault("http", status=503)
    assert MessageFault.http(429, "2") == MessageFault("http", status=429, retry_after="2")
    assert MessageFault.refuse("isv.OUT_OF_SERVICE") == MessageFault("code", code="isv.OUT_OF_SERVICE")
    late = MessageFault.timeout(1.5, accept=False)
    assert (late.kind, late.seconds, late.accept) == ("timeout", 1.5, False)
    assert MessageFault.timeout(1.0).accept is True
    assert type(_GatewayFault.refuse("X")) is _GatewayFault  # the subclass's own type
    with pytest.raises(AttributeError):
        late.seconds = 0.0  # type: ignore[misc]


def test_bearer_api_defaults_come_from_the_class() -> None:
    class _Carrier(BearerApiEmulator):
        default_token = "carrier-token"

    carrier = _Carrier(name="carrier")
    try:
        assert (carrier.token, carrier.callback_secret, carrier.callback_url) == (
            "carrier-token",
            "emulator-callback-secret",
            None,
        )
        given = _Carrier(name="carrier", token="given", port=0)
        given.stop()
        assert given.token == "given"
    finally:
        carrier.stop()
