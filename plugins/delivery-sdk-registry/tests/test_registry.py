"""The registry-lookup plugin against a real local HTTP server (and httpx.MockTransport).

Run after ``pip install -e plugins/delivery-sdk-registry`` (the entry-point test needs the installed
distribution).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import delivery_sdk_registry
import httpx
import pytest
from delivery_sdk_registry import ENV_SOURCE, ENV_TOKEN, ENV_URL, EnvRegistryLookup, RegistryLookup

from delivery_sdk import (
    AddressCandidate,
    ChannelKind,
    Contact,
    ContactKind,
    Party,
    PartyKind,
    PluginError,
    PluginHost,
    TaskState,
)
from delivery_sdk.events import AddressUpdated, DispatchQueued
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

TOKEN = "s3cret-token"
NAME = "张三丰"
ID_NUMBER = "420106198001011234"
MOBILE = "13912345678"
HOME = "湖北省武汉市武昌区中北路1号"
YICHANG = "湖北省宜昌市夷陵区小溪塔街道发展大道57号"
XIANGYANG = "湖北省襄阳市樊城区人民路8号"
PII = (NAME, ID_NUMBER, MOBILE, HOME, YICHANG, XIANGYANG, "中北路", "发展大道", "人民路")

GOOD_ROWS: list[dict[str, Any]] = [
    {
        "address": YICHANG,
        "division_code": "420506",
        "source": "household_registry",
        "confidence": 0.8,
        "observed_at": "2026-05-01T00:00:00+08:00",
    },
    {"address": XIANGYANG},
]


# ---------------------------------------------------------------------------------------------------
# A registry server that speaks the schema
# ---------------------------------------------------------------------------------------------------


class RegistryServer:
    """A scripted registry on 127.0.0.1: ``script`` holds the answers to give, in order, then ``rows``.

    An answer is ``("ok", rows)``, ``("status", code, headers)``, ``("raw", body_bytes)`` or
    ``("slow", seconds)`` (answer ``rows`` after that long). Every request is checked against the schema
    and the bearer token; a violation answers 400 and is kept in ``errors``.
    """

    def __init__(self, *, token: str | None = TOKEN, expect_id_number: str | None = None) -> None:
        self.token = token
        self.expect_id_number = expect_id_number
        self.rows: list[Any] = list(GOOD_ROWS)
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                action = server._record(self.path, dict(self.headers.items()), raw)
                kind = action[0]
                if kind == "reject":
                    self._send(action[1], b'{"error": "rejected"}')
                elif kind == "status":
                    self._send(action[1], b'{"error": "scripted"}', action[2] if len(action) > 2 else {})
                elif kind == "raw":
                    self._send(200, action[1])
                else:
                    if kind == "slow":
                        time.sleep(action[1])
                    rows = action[1] if kind == "ok" else server.rows
                    self._send(200, json.dumps({"candidates": rows}, ensure_ascii=False).encode("utf-8"))

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up: the slow handler's write fails, as expected

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def _record(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[Any, ...]:
        with self._lock:
            problems = self._check(path, headers, raw)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            self.requests.append({"path": path, "headers": headers, "body": body})
            if problems:
                self.errors.extend(problems)
                return ("reject", 401 if any("auth" in p for p in problems) else 400)
            return self.script.pop(0) if self.script else ("rows",)

    def _check(self, path: str, headers: dict[str, str], raw: bytes) -> list[str]:
        problems: list[str] = []
        lower = {k.lower(): v for k, v in headers.items()}
        if path != "/v1/address-candidates":
            problems.append(f"path {path}")
        expected_auth = None if self.token is None else f"Bearer {self.token}"
        if lower.get("authorization") != expected_auth:
            problems.append("auth header")
        if not lower.get("content-type", "").startswith("application/json"):
            problems.append("content-type")
        try:
            body = json.loads(raw)
        except ValueError:
            return [*problems, "body is not JSON"]
        if not isinstance(body, dict) or set(body) != {"request_id", "party", "known_addresses"}:
            return [*problems, f"body keys {sorted(body) if isinstance(body, dict) else type(body)}"]
        request_id = body["request_id"]
        if not (isinstance(request_id, str) and re.fullmatch(r"[0-9a-f]{32}", request_id)):
            problems.append("request_id")
        if lower.get("idempotency-key") != request_id or lower.get("x-request-id") != request_id:
            problems.append("idempotency headers")
        party = body["party"]
        keys = {"party_id", "name", "kind"} | ({"id_number"} if self.expect_id_number is not None else set())
        if not isinstance(party, dict) or set(party) != keys:
            problems.append(f"party keys {sorted(party) if isinstance(party, dict) else party}")
        elif party["kind"] not in ("person", "organisation") or not isinstance(party["name"], str):
            problems.append("party fields")
        elif self.expect_id_number is not None and party["id_number"] != self.expect_id_number:
            problems.append("id_number value")
        known = body["known_addresses"]
        if not isinstance(known, list) or not all(
            isinstance(k, dict)
            and set(k) == {"address", "division_code"}
            and isinstance(k["address"], str)
            and (k["division_code"] is None or isinstance(k["division_code"], str))
            for k in known
        ):
            problems.append("known_addresses")
        return problems

    def __enter__(self) -> RegistryServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[RegistryServer]:
    with RegistryServer() as s:
        yield s


class Sleeps:
    """Records the waits tenacity asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _party(**kwargs: Any) -> Party:
    contacts = (Contact(kind=ContactKind.MOBILE, value=MOBILE), Contact(kind=ContactKind.POSTAL, value=HOME))
    defaults: dict[str, Any] = {"party_id": "P-1", "name": NAME, "id_number": ID_NUMBER, "contacts": contacts}
    return Party(**{**defaults, **kwargs})


KNOWN = (Contact(kind=ContactKind.POSTAL, value=HOME, division_code="420106", source="tried"),)


def _lookup(server: RegistryServer, **kwargs: Any) -> RegistryLookup:
    options: dict[str, Any] = {"api_key": TOKEN, "sleep": Sleeps(), "timeout": 2.0}
    return RegistryLookup(server.url, **{**options, **kwargs})


def _assert_no_pii(text: str) -> None:
    for secret in (*PII, TOKEN):
        assert secret not in text


# ---------------------------------------------------------------------------------------------------
# The happy path
# ---------------------------------------------------------------------------------------------------


def test_happy_path_maps_the_response_to_address_candidates(server: RegistryServer) -> None:
    found = _lookup(server).delivery_address_candidates(_party(), KNOWN)

    assert server.errors == []
    assert len(server.requests) == 1
    body = server.requests[0]["body"]
    assert body["party"] == {"party_id": "P-1", "name": NAME, "kind": "person"}
    assert body["known_addresses"] == [{"address": HOME, "division_code": "420106"}]

    assert [type(c) for c in found] == [AddressCandidate, AddressCandidate]
    first, second = found
    assert first.contact == Contact(
        kind=ContactKind.POSTAL, value=YICHANG, division_code="420506", source="household_registry"
    )
    assert first.source == "household_registry"
    assert first.confidence == 0.8
    assert first.observed_at == datetime(2026, 5, 1, tzinfo=timezone(timedelta(hours=8)))
    # a minimal row: the configured source, the default confidence, no code, no date
    assert second.contact.value == XIANGYANG
    assert second.contact.division_code is None
    assert second.source == second.contact.source == "household_registry"
    assert second.confidence == 0.5
    assert second.observed_at is None


def test_source_comes_from_the_row_or_the_configured_default(server: RegistryServer) -> None:
    server.rows = [{"address": YICHANG, "source": "operator"}, {"address": XIANGYANG, "source": None}]
    found = _lookup(server, source="postal_database").delivery_address_candidates(_party(), ())
    assert [c.source for c in found] == ["operator", "postal_database"]
    assert server.requests[0]["body"]["known_addresses"] == []


def test_organisation_kind_and_non_postal_known_contacts(server: RegistryServer) -> None:
    party = _party(kind=PartyKind.ORGANISATION, id_number=None)
    known = (*KNOWN, Contact(kind=ContactKind.MOBILE, value=MOBILE))
    _lookup(server).delivery_address_candidates(party, known)
    body = server.requests[0]["body"]
    assert body["party"]["kind"] == "organisation"
    assert body["known_addresses"] == [{"address": HOME, "division_code": "420106"}]  # postal only


def test_no_authorization_header_without_an_api_key() -> None:
    with RegistryServer(token=None) as server:
        found = _lookup(server, api_key=None).delivery_address_candidates(_party(), KNOWN)
    assert server.errors == []
    assert "authorization" not in {k.lower() for k in server.requests[0]["headers"]}
    assert len(found) == 2


def test_wrong_token_is_a_4xx_and_not_retried(server: RegistryServer, caplog: pytest.LogCaptureFixture) -> None:
    lookup = _lookup(server, api_key="not-the-token")
    with caplog.at_level(logging.INFO, logger="delivery_sdk_registry"):
        assert lookup.delivery_address_candidates(_party(), KNOWN) == []
    assert len(server.requests) == 1
    assert server.errors == ["auth header"]
    assert "HTTP 401, after 1 attempt(s)" in caplog.text
    _assert_no_pii(caplog.text)
    assert "not-the-token" not in caplog.text


# ---------------------------------------------------------------------------------------------------
# ID numbers
# ---------------------------------------------------------------------------------------------------


def test_id_number_is_not_sent_by_default(server: RegistryServer) -> None:
    # the server asserts the body's party has exactly party_id, name and kind
    found = _lookup(server).delivery_address_candidates(_party(id_number=ID_NUMBER), KNOWN)
    assert server.errors == []
    assert "id_number" not in server.requests[0]["body"]["party"]
    assert len(found) == 2


def test_id_number_is_sent_when_asked() -> None:
    with RegistryServer(expect_id_number=ID_NUMBER) as server:
        found = _lookup(server, send_id_number=True).delivery_address_candidates(_party(), KNOWN)
    assert server.errors == []
    assert server.requests[0]["body"]["party"]["id_number"] == ID_NUMBER
    assert len(found) == 2


def test_send_id_number_without_one_on_the_party_leaves_the_field_out(server: RegistryServer) -> None:
    _lookup(server, send_id_number=True).delivery_address_candidates(_party(id_number=None), KNOWN)
    assert server.errors == []
    assert "id_number" not in server.requests[0]["body"]["party"]


# ---------------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff_then_succeeds(server: RegistryServer) -> None:
    server.script = [("status", 500), ("status", 502)]
    sleeps = Sleeps()
    found = _lookup(server, sleep=sleeps, backoff=0.25, attempts=3).delivery_address_candidates(_party(), KNOWN)
    assert [c.contact.value for c in found] == [YICHANG, XIANGYANG]
    assert len(server.requests) == 3
    assert sleeps.waits == [0.25, 0.5]
    ids = {r["body"]["request_id"] for r in server.requests}
    assert len(ids) == 1, "one request id (idempotency key) for every attempt of one lookup"
    assert {r["headers"]["Idempotency-Key"] for r in server.requests} == ids


def test_each_lookup_has_its_own_request_id(server: RegistryServer) -> None:
    lookup = _lookup(server)
    lookup.delivery_address_candidates(_party(), KNOWN)
    lookup.delivery_address_candidates(_party(), KNOWN)
    assert len({r["body"]["request_id"] for r in server.requests}) == 2


def test_429_retry_after_is_honoured(server: RegistryServer) -> None:
    server.script = [("status", 429, {"Retry-After": "2"}), ("status", 503, {"Retry-After": "1"})]
    sleeps = Sleeps()
    found = _lookup(server, sleep=sleeps, max_retry_after=3.0).delivery_address_candidates(_party(), KNOWN)
    assert len(found) == 2
    assert sleeps.waits == [2.0, 1.0]
    assert len(server.requests) == 3


def test_429_retry_after_as_an_http_date(server: RegistryServer) -> None:
    when = datetime.now(UTC) + timedelta(seconds=60)
    server.script = [("status", 429, {"Retry-After": format_datetime(when, usegmt=True)})]
    sleeps = Sleeps()
    found = _lookup(server, sleep=sleeps, max_retry_after=120.0).delivery_address_candidates(_party(), KNOWN)
    assert len(found) == 2
    assert len(sleeps.waits) == 1
    assert 55.0 <= sleeps.waits[0] <= 60.0


def test_429_retry_after_beyond_the_cap_ends_the_lookup(
    server: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = [("status", 429, {"Retry-After": "3600"})]
    sleeps = Sleeps()
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        found = _lookup(server, sleep=sleeps, max_retry_after=5.0).delivery_address_candidates(_party(), KNOWN)
    assert found == []
    assert sleeps.waits == []
    assert len(server.requests) == 1
    assert "Retry-After 3600s" in caplog.text


def test_429_retry_after_is_really_waited_for(server: RegistryServer) -> None:
    server.script = [("status", 429, {"Retry-After": "1"})]
    lookup = _lookup(server, sleep=time.sleep, max_retry_after=1.0)
    started = time.monotonic()
    found = lookup.delivery_address_candidates(_party(), KNOWN)
    assert time.monotonic() - started >= 0.95
    assert len(found) == 2


def test_exhausted_retries_return_nothing_and_warn_without_personal_data(
    server: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script = [("status", 503), ("status", 500), ("status", 504)]
    sleeps = Sleeps()
    with caplog.at_level(logging.DEBUG):
        found = _lookup(server, sleep=sleeps, attempts=3).delivery_address_candidates(_party(), KNOWN)
    assert found == []
    assert len(server.requests) == 3
    assert len(sleeps.waits) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "delivery_sdk_registry"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    request_id = server.requests[0]["body"]["request_id"]
    assert request_id in message
    assert "HTTP 504, after 3 attempt(s)" in message
    _assert_no_pii(caplog.text)  # every record, retries included (httpx logs the URL only)


def test_timeouts_are_retried(server: RegistryServer) -> None:
    server.script = [("slow", 0.6)]
    found = _lookup(server, timeout=0.2).delivery_address_candidates(_party(), KNOWN)
    assert len(found) == 2
    assert len(server.requests) == 2


def test_timeouts_exhaust_the_attempts(server: RegistryServer, caplog: pytest.LogCaptureFixture) -> None:
    server.script = [("slow", 0.5), ("slow", 0.5)]
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        found = _lookup(server, timeout=0.15, attempts=2).delivery_address_candidates(_party(), KNOWN)
    assert found == []
    assert len(server.requests) == 2
    assert "ReadTimeout, after 2 attempt(s)" in caplog.text


def test_connect_errors_are_retried_then_nothing() -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    lookup = RegistryLookup("https://registry.invalid", transport=httpx.MockTransport(refuse), sleep=Sleeps())
    assert lookup.delivery_address_candidates(_party(), KNOWN) == []
    assert len(calls) == 3


def test_connection_refused_by_a_real_socket() -> None:
    with RegistryServer() as gone:
        url = gone.url
    lookup = RegistryLookup(url, api_key=TOKEN, sleep=Sleeps(), attempts=2, timeout=1.0)
    assert lookup.delivery_address_candidates(_party(), KNOWN) == []


def test_mock_transport_sees_the_schema() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(500)
        return httpx.Response(200, json={"candidates": [{"address": YICHANG, "division_code": "420506"}]})

    lookup = RegistryLookup(
        "https://registry.example/api/", api_key=TOKEN, transport=httpx.MockTransport(answer), sleep=Sleeps()
    )
    found = lookup.delivery_address_candidates(_party(), ())
    assert [c.contact.division_code for c in found] == ["420506"]
    assert [str(r.url) for r in seen] == ["https://registry.example/api/v1/address-candidates"] * 2
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["X-Request-Id"]
    assert json.loads(seen[0].content)["party"] == {"party_id": "P-1", "name": NAME, "kind": "person"}


def test_an_unexpected_exception_never_reaches_the_engine(caplog: pytest.LogCaptureFixture) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"bug in a transport holding {NAME}")

    lookup = RegistryLookup("https://registry.example", transport=httpx.MockTransport(broken), sleep=Sleeps())
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        assert lookup.delivery_address_candidates(_party(), KNOWN) == []
    assert "RuntimeError, after 1 attempt(s)" in caplog.text
    _assert_no_pii(caplog.text)


# ---------------------------------------------------------------------------------------------------
# Malformed responses and invalid rows
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"candidates": [', "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b'[{"address": "x"}]', "not a JSON object"),
        (b'"candidates"', "not a JSON object"),
        (b'{"items": []}', "no 'candidates' list"),
        (b'{"candidates": {"address": "x"}}', "no 'candidates' list"),
        (b'{"candidates": null}', "no 'candidates' list"),
    ],
)
def test_malformed_responses_give_nothing(
    server: RegistryServer, caplog: pytest.LogCaptureFixture, body: bytes, why: str
) -> None:
    server.script = [("raw", body)]
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        assert _lookup(server).delivery_address_candidates(_party(), KNOWN) == []
    assert len(server.requests) == 1, "a malformed body is not retried"
    assert why in caplog.text


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 301])
def test_other_statuses_are_not_retried(server: RegistryServer, status: int) -> None:
    server.script = [("status", status, {"Location": "http://127.0.0.1:9/elsewhere"})]
    assert _lookup(server).delivery_address_candidates(_party(), KNOWN) == []
    assert len(server.requests) == 1


def test_invalid_rows_are_skipped_one_by_one(server: RegistryServer, caplog: pytest.LogCaptureFixture) -> None:
    server.rows = [
        GOOD_ROWS[0],
        {"address": HOME, "division_code": "4201"},
        {"address": HOME, "division_code": 420106},
        {"address": HOME, "confidence": 1.5},
        {"address": HOME, "confidence": True},
        {"address": HOME, "confidence": "0.9"},
        {"address": HOME, "observed_at": "2026-05-01T00:00:00"},  # no offset
        {"address": HOME, "observed_at": "yesterday"},
        {"address": "   "},
        {"address": "湖" * 301},
        {"division_code": "420106"},
        {"address": HOME, "source": "bad source!"},
        [HOME],
        None,
        {"address": XIANGYANG, "confidence": 1, "observed_at": "2026-05-01T08:00:00Z", "extra": "ignored"},
    ]
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        found = _lookup(server).delivery_address_candidates(_party(), KNOWN)
    assert [c.contact.value for c in found] == [YICHANG, XIANGYANG]
    assert found[1].confidence == 1.0
    assert found[1].observed_at == datetime(2026, 5, 1, 8, tzinfo=UTC)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 13 of 15 candidate row(s)" in warnings[0]
    for field in ("row 1: division_code", "row 3: confidence", "row 6: observed_at must carry", "row 12: not an"):
        assert field in warnings[0]
    _assert_no_pii(caplog.text)


def test_rows_beyond_max_candidates_are_ignored(server: RegistryServer) -> None:
    server.rows = [{"address": f"湖北省宜昌市夷陵区发展大道{n}号"} for n in range(10)]
    found = _lookup(server, max_candidates=3).delivery_address_candidates(_party(), KNOWN)
    assert [c.contact.value[-2:] for c in found] == ["0号", "1号", "2号"]


def test_an_empty_candidates_list_is_nothing_found(server: RegistryServer, caplog: pytest.LogCaptureFixture) -> None:
    server.rows = []
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        assert _lookup(server).delivery_address_candidates(_party(), KNOWN) == []
    assert caplog.records == []


# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://registry.example"},
        {"base_url": "registry.example"},
        {"base_url": "http://"},
        {"attempts": 0},
        {"attempts": True},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"max_retry_after": -1},
        {"source": ""},
        {"source": "has space"},
        {"api_key": "two\nlines"},
        {"max_candidates": 0},
    ],
)
def test_bad_configuration_is_refused_at_construction(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"base_url": "https://registry.example", **kwargs}
    with pytest.raises(ValueError, match=r"base_url|attempts|timeout|max_retry_after|source|api_key|max_candidates"):
        RegistryLookup(options.pop("base_url"), **options)


def test_repr_does_not_show_the_api_key() -> None:
    lookup = RegistryLookup("https://registry.example/", api_key=TOKEN)
    assert TOKEN not in repr(lookup)
    assert lookup.url == "https://registry.example/v1/address-candidates"


def test_entry_point_is_discoverable() -> None:
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group="delivery_sdk")}
    assert "registry" in found, "run `pip install -e plugins/delivery-sdk-registry` first"
    assert found["registry"].value == "delivery_sdk_registry:plugin"
    assert found["registry"].load() is delivery_sdk_registry.plugin
    assert isinstance(delivery_sdk_registry.plugin, EnvRegistryLookup)


def test_entry_point_contributes_nothing_without_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    assert delivery_sdk_registry.plugin.delivery_address_candidates(_party(), KNOWN, {}) is None
    host = PluginHost(environ={"DELIVERY_SDK_PLUGINS": "registry"})
    assert "registry" in host.plugin_names()
    # only the built-in source answers: the party's own postal address
    assert [c.source for c in host.address_candidates(_party(), KNOWN)] == ["own_filings"]


def test_entry_point_configured_from_the_environment(server: RegistryServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:9/not-read")  # the host's environ= wins
    env = {"DELIVERY_SDK_PLUGINS": "registry", ENV_URL: server.url, ENV_TOKEN: TOKEN, ENV_SOURCE: "postal_database"}
    host = PluginHost(environ=env)
    host.load()
    found = host.address_candidates(_party(), KNOWN)
    assert server.errors == []
    assert {(c.contact.value, c.source) for c in found} == {
        (HOME, "own_filings"),
        (YICHANG, "household_registry"),  # the row's own source
        (XIANGYANG, "postal_database"),  # the configured default
    }
    plugin = delivery_sdk_registry.plugin
    assert plugin.configured(env) is plugin.configured(env)  # cached


def test_entry_point_with_a_broken_url_contributes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    plugin = EnvRegistryLookup({ENV_URL: "not a url"})
    with caplog.at_level(logging.WARNING, logger="delivery_sdk_registry"):
        assert plugin.delivery_address_candidates(_party(), KNOWN, {}) is None
    assert "registry plugin not configured" in caplog.text


def test_configure_refuses_a_partial_or_broken_configuration_at_start() -> None:
    partial = PluginHost([EnvRegistryLookup()], load_entry_points=False, environ={ENV_SOURCE: "postal_database"})
    with pytest.raises(PluginError, match="DELIVERY_SDK_REGISTRY_URL is required"):
        partial.load()
    broken = PluginHost([EnvRegistryLookup()], load_entry_points=False, environ={ENV_URL: "not a url"})
    with pytest.raises(PluginError, match="not usable"):  # the lookup's own ValueError, message kept
        broken.load()
    PluginHost([EnvRegistryLookup()], load_entry_points=False, environ={}).load()  # not configured: fine


def test_blocking_the_entry_point(monkeypatch: pytest.MonkeyPatch, server: RegistryServer) -> None:
    monkeypatch.setenv(ENV_URL, server.url)
    host = PluginHost(environ={"DELIVERY_SDK_BLOCK_PLUGINS": "registry", ENV_URL: server.url})
    assert "registry" not in host.plugin_names()
    host.address_candidates(_party(), KNOWN)
    assert server.requests == []


# ---------------------------------------------------------------------------------------------------
# End to end: returned mail, the registry's address, the second letter
# ---------------------------------------------------------------------------------------------------


def test_returned_mail_is_remailed_to_the_registry_address(server: RegistryServer) -> None:
    async def scenario() -> None:
        h = Harness(extra_plugins=[_lookup(server)])
        h.carrier.enqueue(Outcome.returned("address_wrong"), Outcome.signed())
        party = make_party("P-reg", mobile=None, consent=False)  # postal only, at the Wuhan address
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()

        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.postal_rounds == 2
        events = [e.event for e in h.client.timeline(task_id)]
        updates = [e for e in events if isinstance(e, AddressUpdated)]
        assert len(updates) == 1
        assert updates[0].source == "household_registry"
        assert updates[0].confidence == 0.8
        assert updates[0].contact.value == YICHANG
        prints = [e for e in events if isinstance(e, DispatchQueued) and e.kind is ChannelKind.PRINT]
        assert len(prints) == 2
        assert (prints[0].contact.division_code, prints[0].centre_id) == ("420106", "PC-420100")
        assert (prints[1].contact.value, prints[1].contact.division_code) == (YICHANG, "420506")
        assert prints[1].centre_id == "PC-420500"
        assert h.unused() == {}
        await h.aclose()

    asyncio.run(scenario())
    assert server.errors == []
    assert len(server.requests) == 1
    body = server.requests[0]["body"]
    assert body["party"] == {"party_id": "P-reg", "name": "张三", "kind": "person"}
    assert body["known_addresses"] == [{"address": "湖北省武汉市武昌区中北路1号", "division_code": None}]


def test_equally_ranked_registry_addresses_go_to_a_person(server: RegistryServer) -> None:
    server.rows = [{"address": YICHANG, "confidence": 0.7}, {"address": XIANGYANG, "confidence": 0.7}]

    async def scenario() -> None:
        h = Harness(extra_plugins=[_lookup(server)])
        h.carrier.enqueue(Outcome.returned("address_wrong"))
        task_id = await h.client.submit(make_request(make_party("P-tie", mobile=None, consent=False)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason is not None
        assert "2 equally ranked addresses (household_registry)" in status.attention_reason
        _assert_no_pii(status.attention_reason)
        assert not any(isinstance(e.event, AddressUpdated) for e in h.client.timeline(task_id))
        await h.aclose()

    asyncio.run(scenario())
    assert server.errors == []


def test_no_secret_or_personal_data_in_any_log_record_at_debug() -> None:
    """Every logger at DEBUG (httpx's request lines and httpcore's traces included): lookups that succeed,
    are retried after a 5xx, are refused, and find nothing log no token, name, address, phone or ID number."""
    from delivery_sdk.testing.logcheck import LogLeakCheck

    with (
        RegistryServer(expect_id_number=ID_NUMBER) as server,
        LogLeakCheck(secrets=[TOKEN, ID_NUMBER, NAME], addresses=[HOME, YICHANG, XIANGYANG]) as check,
    ):
        lookup = _lookup(server, send_id_number=True)
        assert lookup.delivery_address_candidates(_party(), KNOWN)
        server.script.append(("status", 503, {}))
        assert lookup.delivery_address_candidates(_party(), KNOWN)
        server.script.append(("status", 403, {}))
        assert lookup.delivery_address_candidates(_party(), KNOWN) == []
        server.script.append(("raw", b'{"candidates": [{"address": "' + HOME.encode() + b'", "x": 1}'))
        lookup.delivery_address_candidates(_party(), KNOWN)
    assert any(r.name.startswith("httpx") for r in check.records)  # the lookups were logged, and checked
    assert check.leaks() == []
