"""A local court e-service platform for tests: a ``ThreadingHTTPServer`` on 127.0.0.1, an ephemeral port.

It speaks the protocol of :class:`~delivery_sdk_eservice.EServiceChannel` (see the plugin's docs) and checks
every request against it: the app key, a fresh timestamp, the HMAC signature, the idempotency key equal to
the service id, every pushed document's content against its SHA-256 digest. A request that breaks the
protocol is answered ``401``/``400`` and kept in :attr:`PlatformEmulator.errors`.

::

    with PlatformEmulator(app_key="court-app", app_secret="s3cret", clock=clock.now) as platform:
        channel = EServiceChannel(platform.url, app_key="court-app", app_secret="s3cret")
        platform.unknown_accounts.add("ES-404")         # refused for good: 404 ACCOUNT_NOT_FOUND
        platform.fail_next(2, status=503)               # the next two pushes: 503
        platform.fail_next(1, status=429, retry_after=7)
        platform.delay_next(2.0)                        # the next push is processed, answered 2 s late
        ...
        headers, body = platform.arrive("T000001.1")    # "arrived": recorded, and the signed callback
        assert platform.created["T000001.1"] == 1       # services created for that id (never more than 1)

``transient_rate`` (with ``seed``) answers that share of requests ``503`` or ``429`` (``Retry-After: 1``)
before looking at them, for soak and end-to-end tests. ``auto_arrive`` records an "arrived" event as soon as
a service is created. With ``callback_url``, every event is also POSTed there, signed; :attr:`pushed` keeps
the HTTP status of each such push.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from delivery_sdk.testing.emulator import (
    EmulatorServer,
    FaultScript,
    join_callback,
    json_reply,
    post_callback,
    read_body,
    serve_sandbox_main,
    transient,
)

from ._channel import SERVICES_PATH, sign_callback, sign_request

__all__ = ["PlatformEmulator", "main", "sandbox"]


class PlatformEmulator(EmulatorServer):
    """The emulated platform (see the module docstring). Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        *,
        app_key: str = "court-app",
        app_secret: str = "platform-secret",
        clock: Callable[[], datetime] | None = None,
        auto_arrive: bool = False,
        transient_rate: float = 0.0,
        seed: int = 0,
        callback_url: str | None = None,
        signature_window: float = 300.0,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
    ) -> None:
        super().__init__(name="eservice-emulator", host=host, port=port, state_dir=state_dir)
        self.app_key = app_key
        self.app_secret = app_secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.auto_arrive = auto_arrive
        self.transient_rate = transient_rate
        self.callback_url = callback_url
        self.signature_window = signature_window
        self.unknown_accounts: set[str] = set()
        self.services: dict[str, dict[str, Any]] = {}  # by service id: what was pushed, and its events
        self.created: collections.Counter[str] = collections.Counter()  # services created per id (at most 1)
        self.posts: list[str] = []  # the idempotency key of every push that reached the handler
        self.queries: list[str] = []  # the service id of every status query
        self.errors: list[str] = []  # protocol violations
        self.pushed: list[int] = []  # HTTP status of each callback POSTed to callback_url
        # ("status", code, retry_after) / ("delay", s, None)
        self._faults: FaultScript[tuple[str, float, float | None]] = FaultScript()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._events = 0
        self.bind()  # the url is known before start()

    # -- control --------------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``count`` pushes with ``status`` (and ``Retry-After``), without processing them."""
        self._faults.extend([("status", float(status), retry_after)] * count)

    def delay_next(self, seconds: float) -> None:
        """Process the next push, then wait ``seconds`` before answering (the client times out: in doubt)."""
        self._faults.extend([("delay", seconds, None)])

    # -- events ---------------------------------------------------------------------------------------

    def arrive(self, service_id: str, at: datetime | None = None) -> tuple[dict[str, str], bytes]:
        """The documents reached the recipient's account: record "arrived"; return the signed callback."""
        return self.event(service_id, "arrived", at=at)

    def read(self, service_id: str, at: datetime | None = None) -> tuple[dict[str, str], bytes]:
        """The recipient opened the documents: record "read"; return the signed callback."""
        return self.event(service_id, "read", at=at)

    def fail(self, service_id: str, reason: str = "ACCOUNT_CLOSED") -> tuple[dict[str, str], bytes]:
        """The platform gave up on the service: record "failed"; return the signed callback."""
        return self.event(service_id, "failed", reason=reason)

    def event(
        self, service_id: str, kind: str, *, at: datetime | None = None, reason: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """Record a platform event (``arrived``, ``read``, ``failed``) on a service, push it, and return the signed
        callback."""
        with self._lock:
            event = self._record(service_id, kind, at=at, reason=reason)
        headers, body = self.callback(event)
        self._push(headers, body)
        return headers, body

    def _record(
        self, service_id: str, kind: str, *, at: datetime | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        service = self.services[service_id]
        self._events += 1
        event: dict[str, Any] = {
            "event_id": f"EV{self._events:06d}-{kind}",
            "service_id": service_id,
            "type": kind,
            "at": (at or self.clock()).isoformat(),
        }
        if reason is not None:
            event["reason"] = reason
        service["events"].append(event)
        return event

    def callback(
        self, event: dict[str, Any], *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The signed callback for ``event`` (as the platform would POST it), stamped with ``clock``'s time
        (so a receiver on the same virtual clock finds it fresh)."""
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(self.clock().timestamp()) if timestamp is None else timestamp)
        nonce = nonce or uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            "X-App-Key": self.app_key,
            "X-Timestamp": ts,
            "X-Nonce": nonce,
            "X-Signature": sign_callback(self.app_secret, ts, nonce, body),
        }
        return headers, body

    def _push(self, headers: dict[str, str], body: bytes) -> None:
        if self.callback_url is None:
            return
        status = post_callback(self.callback_url, body, headers)
        with self._lock:
            self.pushed.append(status)

    # -- the protocol ---------------------------------------------------------------------------------

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {
            "DELIVERY_SDK_ESERVICE_URL": self.url,
            "DELIVERY_SDK_ESERVICE_APP_KEY": self.app_key,
            "DELIVERY_SDK_ESERVICE_APP_SECRET": self.app_secret,
        }

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request of the emulated provider's API (runs in a server thread)."""
        body = read_body(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.path
        with self._lock:
            problem = self._check_signature(method, path, headers, body)
            if problem:
                self.errors.append(problem)
                json_reply(request, 401, {"code": "SIGNATURE_INVALID"})
                return
            if transient(self._random, self.transient_rate):
                if self._random.random() < 0.5:
                    json_reply(request, 503, {"code": "BUSY"})
                else:
                    json_reply(request, 429, {"code": "RATE_LIMITED"}, retry_after="1")
                return
        if method == "POST" and path == SERVICES_PATH:
            self._push_service(request, headers, body)
        elif method == "GET" and path.startswith(SERVICES_PATH + "/"):
            service_id = urllib.parse.unquote(path[len(SERVICES_PATH) + 1 :])
            with self._lock:
                self.queries.append(service_id)
                service = self.services.get(service_id)
                answer = _view(service) if service is not None else None
            if answer is None:
                json_reply(request, 404, {"code": "SERVICE_NOT_FOUND"})
            else:
                json_reply(request, 200, answer)
        else:
            json_reply(request, 404, {"code": "NO_SUCH_ENDPOINT"})

    def _check_signature(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        if headers.get("x-app-key") != self.app_key:
            return "app key"
        timestamp = headers.get("x-timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > self.signature_window:
            return "timestamp"
        nonce = headers.get("x-nonce", "")
        if not nonce:
            return "nonce"
        expected = sign_request(self.app_secret, method, path, timestamp, nonce, body)
        if headers.get("x-signature") != expected:
            return "signature"
        return None

    def _push_service(self, request: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        try:
            data = json.loads(body)
            service_id = data["service_id"]
            account = data["account"]
            documents = data["documents"]
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.errors.append("push body")
            json_reply(request, 400, {"code": "BAD_REQUEST"})
            return
        delay = 0.0
        callbacks: list[tuple[dict[str, str], bytes]] = []
        with self._lock:
            self.posts.append(str(headers.get("idempotency-key")))
            if headers.get("idempotency-key") != service_id:
                self.errors.append("idempotency key")
                json_reply(request, 400, {"code": "IDEMPOTENCY_KEY_MISMATCH"})
                return
            fault = self._faults.pop()
            if fault is not None:
                kind, value, retry_after = fault
                if kind == "status":
                    extra = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                    json_reply(request, int(value), {"code": "SCRIPTED"}, headers=extra)
                    return
                delay = value
            for document in documents:
                content = document.get("content")
                if content is not None and hashlib.sha256(base64.b64decode(content)).hexdigest() != document.get(
                    "sha256"
                ):
                    json_reply(request, 422, {"code": "DOCUMENT_DIGEST_MISMATCH"})
                    return
            if account in self.unknown_accounts:
                json_reply(request, 404, {"code": "ACCOUNT_NOT_FOUND"})
                return
            existing = self.services.get(service_id)
            if existing is not None:
                if existing["request"] != data:
                    json_reply(request, 409, {"code": "IDEMPOTENCY_CONFLICT"})
                    return
                status, answer = 200, _view(existing)
            else:
                self.created[service_id] += 1
                service = {
                    "receipt_no": f"ES{len(self.services) + 1:08d}",
                    "request": data,
                    "events": [],
                    "created_at": self.clock().isoformat(),
                }
                self.services[service_id] = service
                if self.auto_arrive:
                    callbacks.append(self.callback(self._record(service_id, "arrived")))
                status, answer = 201, _view(service)
        if delay:
            time.sleep(delay)
        json_reply(request, status, answer)
        for headers_, body_ in callbacks:
            self._push(headers_, body_)


def _view(service: dict[str, Any]) -> dict[str, Any]:
    events = list(service["events"])
    kinds = {e["type"] for e in events}
    state = next((k for k in ("failed", "read", "arrived") if k in kinds), "pushed")
    return {
        "service_id": service["request"]["service_id"],
        "receipt_no": service["receipt_no"],
        "status": state,
        "events": events,
    }


def sandbox(
    *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None, callback_url: str | None = None
) -> PlatformEmulator:
    """The platform as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): every
    service arrives at once, its events pushed to ``{callback_url}/eservice``."""
    return PlatformEmulator(
        host=host,
        port=port,
        state_dir=state_dir,
        callback_url=join_callback(callback_url, "eservice"),
        auto_arrive=True,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_eservice.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_eservice.emulator")


if __name__ == "__main__":
    main()
