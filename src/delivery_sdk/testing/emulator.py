"""The machinery of a local provider emulator: a real HTTP server on ``127.0.0.1`` for adapter tests.

Every provider emulator shipped with delivery-sdk's plugins (SMS gateway, WeChat API, court e-service
platform, EMS carrier, print centre) is built on :class:`EmulatorServer`, and an integrator writing an
adapter for another provider can build one the same way::

    class MyProvider(EmulatorServer):
        def __init__(self) -> None:
            super().__init__(name="my-provider")
            self.faults: FaultScript[int] = FaultScript()    # scripted HTTP statuses

        def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
            body = read_body(request)
            status = self.faults.pop()
            if status is not None:
                json_reply(request, status, {"error": "SCRIPTED"}, retry_after="1")
                return
            json_reply(request, 200, {"ok": True, "length": len(body)})

    with MyProvider() as provider:
        channel = MyChannel(provider.url)
        provider.faults.extend([503, 429])
        ...

What the base does: a ``ThreadingHTTPServer`` bound to ``127.0.0.1`` on an ephemeral port (``bind()``,
or ``start()`` binds it), served in a daemon thread; HTTP/1.1 keep-alive, ``TCP_NODELAY`` (headers and body
leave in two writes: no 40 ms delayed-ACK stall) and a backlog of 1024 (the default of 5 drops connects
under load, costing the client a 1 s SYN retry); a client that timed out and hung up is not reported.
``start()``/``stop()`` or a ``with`` block; ``url``, ``host``, ``port``. Every ``GET``, ``POST``, ``PUT``
and ``DELETE`` goes to :meth:`EmulatorServer.handle`.

Helpers: :func:`read_body`; :func:`json_reply` (a JSON answer with ``Content-Length``, extra headers and
``Retry-After``; a client that gave up is ignored); :class:`FaultScript` (a thread-safe queue of scripted
faults, taken in order or by a predicate) and :class:`PathFault` (a scripted answer keyed by path and
method); :func:`transient` (a seeded coin for "this share of requests fails"); :func:`post_callback` (POST
a signed callback, get the HTTP status, ``0`` when nothing answered); :meth:`EmulatorServer.push_later` and
:meth:`EmulatorServer.wait_pushes` (push a callback from a background thread, as a provider does after
answering, and wait for those pushes in a test). The emulator keeps its own state under its own lock; the
helpers only do the HTTP.

**As a service** (``delivery-sdk sandbox``, ``python -m <plugin>.emulator --port N --state DIR``): ``port``
fixes the port (``0``, the default, takes a free one) and ``state_dir`` makes the emulator durable: every
request it answered is appended to ``received.jsonl`` there and whatever :meth:`EmulatorServer.dump_state`
returns (the messages it holds, its scripted outcomes) is rewritten to ``state.json`` after each request and
handed to :meth:`EmulatorServer.load_state` when it starts again, so a provider outage can be rehearsed by
stopping and restarting it. Every emulator answers ``GET /_sandbox/received`` (JSON: what it received, the
newest last; ``describe_request`` adds a subclass's summary of each request) and ``GET /_sandbox/state``.
:func:`serve_main` is the ``__main__`` of an emulator module. Without ``state_dir`` nothing touches the disk
(the default for tests).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import signal
import stat
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar, Unpack, cast

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BearerApiEmulator",
    "BearerApiOptions",
    "CloudSmsEmulator",
    "CloudSmsEmulatorOptions",
    "EmulatorServer",
    "FaultScript",
    "MessageFault",
    "PathFault",
    "ScriptedEmulator",
    "ServiceEmulator",
    "join_callback",
    "json_reply",
    "mask",
    "post_callback",
    "read_body",
    "serve_main",
    "serve_sandbox_main",
    "transient",
]

RECEIVED_KEPT = 1000  # requests listed by GET /_sandbox/received (and kept in memory)


class ServiceEmulator(Protocol):
    """What ``delivery-sdk sandbox`` runs: an :class:`EmulatorServer`, or any emulator with these (the SMTP
    one). Plugins name a factory ``(*, host, port, state_dir, callback_url) -> ServiceEmulator`` in the
    ``delivery_sdk.emulators`` entry-point group."""

    name: str

    def start(self) -> Any:
        """Start serving (on a free port unless one was set); returns the emulator."""

    def stop(self) -> None:
        """Stop serving (state that is kept on disk stays)."""

    @property
    def url(self) -> str:
        """The base URL the emulator listens on."""

    def received(self) -> list[dict[str, Any]]:
        """What the emulator received, oldest first (for the sandbox's listing and tests)."""

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator."""


F = TypeVar("F")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # the default backlog of 5 drops connects under load (1 s SYN retries)
    emulator: EmulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left: nothing to report


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real provider
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between a response's writes
    # The answer is buffered and flushed after the request is noted (handle_one_request flushes after the
    # method returns), so whoever got the answer finds the request in received() at once.
    wbufsize = -1
    server: _Server

    answered: int = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.answered = code
        super().send_response(code, message)

    def _dispatch(self, method: str) -> None:
        emulator = self.server.emulator
        if self.path.startswith("/_sandbox/"):
            emulator._sandbox(self, method)
            return
        self.answered = 0
        body = read_body(self)
        connection, self.rfile = self.rfile, io.BytesIO(body)  # the emulator reads the body with read_body()
        try:
            emulator.handle(self, method)
        finally:
            self.rfile = connection  # the next request of a kept-alive connection
            emulator._note_request(method, self.path, self.answered, body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class EmulatorServer:
    """A local HTTP server for one emulated provider (see the module docstring). Subclasses implement
    :meth:`handle`; ``name`` names the serving thread; ``poll_interval`` is how often the server looks
    for a ``stop()``; ``host`` and ``port`` are where it listens (loopback; ``0``: a free port);
    ``state_dir`` makes it durable (see the module docstring)."""

    def __init__(
        self,
        *,
        name: str = "emulator",
        poll_interval: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self.bind_host = host
        self.bind_port = port
        self.state_dir = None if state_dir is None else Path(state_dir)
        self._received: deque[dict[str, Any]] = deque(maxlen=RECEIVED_KEPT)
        self._received_count = 0
        self._state_lock = threading.Lock()
        self._loaded = False
        self._server: _Server | None = None
        self._address: tuple[str, int] | None = None
        self._serving: threading.Thread | None = None
        self._pushers: list[threading.Thread] = []
        self._pushers_lock = threading.Lock()

    # -- the protocol (subclasses) ---------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request (``method`` is ``GET``, ``POST``, ``PUT`` or ``DELETE``); runs in a server
        thread, so guard shared state with a lock."""
        raise NotImplementedError

    def describe_request(self, method: str, path: str, body: bytes) -> Mapping[str, Any]:
        """What :meth:`received` shows of a request besides its method, path and answer (a subclass's
        summary: an id, a template; no full phone number). Runs after :meth:`handle`; never raises."""
        return {}

    def dump_state(self) -> Mapping[str, Any] | None:
        """The emulator's durable state (JSON-able), written to ``state_dir`` after every request; ``None``
        (the default): only the received requests are kept."""
        return None

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`dump_state` returned (called once, before serving, when ``state_dir`` has it)."""

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {}

    # -- what it received ------------------------------------------------------------------------------

    def received(self) -> list[dict[str, Any]]:
        """The requests answered (the last :data:`RECEIVED_KEPT`, oldest first): ``seq``, ``at``, ``method``,
        ``path``, ``status``, ``bytes`` and the subclass's :meth:`describe_request`."""
        with self._state_lock:
            return list(self._received)

    def _note_request(self, method: str, raw_path: str, status: int, body: bytes) -> None:
        path = raw_path.split("?", 1)[0]
        try:
            detail = dict(self.describe_request(method, raw_path, body))
        except Exception:  # a summary of a malformed request: not worth failing over
            detail = {}
        with self._state_lock:
            self._received_count += 1
            entry = {
                "seq": self._received_count,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "method": method,
                "path": path,
                "status": status,
                "bytes": len(body),
                **detail,
            }
            self._received.append(entry)
            if self.state_dir is not None:
                with open(self.state_dir / "received.jsonl", "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.save_state()

    def save_state(self) -> None:
        """Rewrite ``state_dir/state.json`` from :meth:`dump_state` (atomically; nothing without a state_dir)."""
        if self.state_dir is None:
            return
        state = self.dump_state()
        if state is None:
            return
        with self._state_lock:
            raw = json.dumps(state, ensure_ascii=False, indent=1, default=str)
            tmp = self.state_dir / f".state.{threading.get_ident()}.tmp"
            tmp.write_text(raw, encoding="utf-8")
            os.replace(tmp, self.state_dir / "state.json")

    def _load(self) -> None:
        if self._loaded or self.state_dir is None:
            return
        self._loaded = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.state_dir / "received.jsonl"
        if log.exists():
            for line in log.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    self._received.append(entry)
                    self._received_count = max(self._received_count, int(entry.get("seq", 0)))
        state = self.state_dir / "state.json"
        if state.exists():
            self.load_state(json.loads(state.read_text(encoding="utf-8")))

    def _sandbox(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = request.path.split("?", 1)[0]
        read_body(request)
        if method == "GET" and path == "/_sandbox/received":
            url = self.url if self._address is not None or self.bind_port else None  # None: served by transport()
            json_reply(request, 200, {"name": self.name, "url": url, "received": self.received()})
        elif method == "GET" and path == "/_sandbox/state":
            json_reply(request, 200, {"name": self.name, "state": self.dump_state()})
        else:
            json_reply(request, 404, {"error": "GET /_sandbox/received or /_sandbox/state"})

    # -- running ---------------------------------------------------------------------------------------

    def bind(self) -> None:
        """Open the listening socket now (``url`` is known before ``start()``); ``start()`` does it if needed."""
        if self._server is None:
            self._load()
            server = _Server((self.bind_host, self.bind_port), _Handler)
            server.emulator = self
            host, port = server.server_address[:2]
            self._server = server
            self._address = (str(host), int(port))

    def start(self) -> Self:
        """Serve in a daemon thread (binding first if needed); returns the emulator."""
        self.bind()
        assert self._server is not None
        if self._serving is None:
            self._serving = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=self.name,
                daemon=True,
            )
            self._serving.start()
        return self

    def stop(self) -> None:
        """Wait for background pushes, stop serving and close the socket (``url`` stays readable)."""
        self.wait_pushes()
        server, serving = self._server, self._serving
        self._server = self._serving = None
        if server is None:
            return
        if serving is not None:
            server.shutdown()
        server.server_close()
        if serving is not None:
            serving.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def httpd(self) -> ThreadingHTTPServer:
        """The underlying server (bound)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._server

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return self._bound()[0]

    @property
    def port(self) -> int:
        """The port the server is bound to."""
        return self._bound()[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the base URL to point an adapter at."""
        host, port = self._bound()
        return f"http://{host}:{port}"

    def _bound(self) -> tuple[str, int]:
        if self._address is None and self.bind_port:
            return (self.bind_host, self.bind_port)  # a fixed port: the URL is known before binding
        if self._address is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._address

    def transport(self) -> httpx.MockTransport:
        """The same :meth:`handle` served as an ``httpx.MockTransport``: no socket, no thread.

        Give it to an adapter (``transport=emulator.transport()``, or ``httpx.AsyncClient(transport=...)``)
        for unit tests that need no port. Each request runs :meth:`handle` in the caller's thread, is noted
        in :meth:`received` and answered with what the handler wrote. A handler that writes no answer (an
        emulated dropped connection) raises ``httpx.RemoteProtocolError``, as a real server closing the
        connection would. It works without :meth:`start`; a handler that reads :attr:`url` then needs the
        emulator bound (:meth:`bind`) or a fixed ``port``.
        """
        import httpx

        def serve(request: httpx.Request) -> httpx.Response:
            return _MockHandler(self, request).answer()

        self._load()
        return httpx.MockTransport(serve)

    # -- callbacks pushed in the background ------------------------------------------------------------

    def push_later(self, target: Callable[..., object], *args: Any) -> None:
        """Run ``target(*args)`` (a callback push) in a background thread; :meth:`wait_pushes` waits for it."""
        thread = threading.Thread(target=target, args=args, name=f"{self.name}-push", daemon=True)
        with self._pushers_lock:
            self._pushers.append(thread)
        thread.start()

    def wait_pushes(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout`` each) for the callbacks being pushed in the background."""
        with self._pushers_lock:
            pushers = list(self._pushers)
        for thread in pushers:
            thread.join(timeout)
        with self._pushers_lock:
            self._pushers = [t for t in self._pushers if t.is_alive()]


class FaultScript(Generic[F]):
    """Scripted faults, taken in order (thread-safe): ``extend`` them from the test, ``pop`` the next one
    (or the first that ``match`` accepts) in the handler; ``None`` when none is left."""

    def __init__(self) -> None:
        self._faults: deque[F] = deque()
        self._lock = threading.Lock()

    def extend(self, faults: Iterable[F]) -> None:
        """Queue more faults, after those already queued."""
        with self._lock:
            self._faults.extend(faults)

    def pop(self, match: Callable[[F], bool] | None = None) -> F | None:
        """Take the first queued fault (the first that ``match`` accepts, when given), or None."""
        with self._lock:
            if match is None:
                return self._faults.popleft() if self._faults else None
            for fault in self._faults:
                if match(fault):
                    self._faults.remove(fault)
                    return fault
            return None

    def pending(self) -> list[F]:
        """The faults not used yet, in order."""
        with self._lock:
            return list(self._faults)

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def __bool__(self) -> bool:
        return len(self) > 0


class ScriptedEmulator(EmulatorServer, Generic[F]):
    """An :class:`EmulatorServer` with what most provider emulators keep: two :class:`FaultScript` queues
    (``_script`` for sends, ``_query_script`` for status queries), the lists a test inspects
    (``attempts``: the idempotency key of every send; ``queries``; ``rejected``: the code of every refused
    request; ``pushes``: the HTTP status of every callback pushed) and ``_lock``, the lock that guards
    them and the subclass's own state."""

    def __init__(
        self,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(name=name, host=host, port=port, state_dir=state_dir)
        self.attempts: list[str] = []
        self.queries: list[str] = []
        self.rejected: list[str] = []
        self.pushes: list[int] = []
        self._script: FaultScript[F] = FaultScript()
        self._query_script: FaultScript[F] = FaultScript()
        self._lock = threading.Lock()

    def fail_next(self, *faults: F) -> None:
        """Apply these faults, in order, to the next sends."""
        self._script.extend(faults)

    def fail_next_query(self, *faults: F) -> None:
        """Apply these faults, in order, to the next status queries."""
        self._query_script.extend(faults)

    def attempts_for(self, key: str) -> int:
        """How many send attempts the emulator saw for this id (tests of idempotency)."""
        with self._lock:
            return self.attempts.count(key)

    def push(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST a callback (:func:`post_callback`) and record its HTTP status in ``pushes``; returns it
        (``0`` when nothing answered; never raises for the receiver's failure)."""
        status = post_callback(url, body, headers)
        with self._lock:
            self.pushes.append(status)
        return status


Answer = tuple[int, bytes, Any]
"""What :meth:`BearerApiEmulator.route` returns: the HTTP status, the JSON body as bytes, extra headers."""


class BearerApiOptions(TypedDict, total=False):
    """The keyword arguments every :class:`BearerApiEmulator` takes (a subclass passes them on)."""

    token: str
    callback_secret: str
    now: Callable[[], datetime] | None
    callback_url: str | None
    host: str
    port: int
    state_dir: str | os.PathLike[str] | None


class BearerApiEmulator(EmulatorServer):
    """The common part of an emulated REST API behind a bearer token (the EMS carrier, a print centre):
    every request is recorded in ``requests`` (method, path), a scripted :class:`PathFault` for its path
    is taken from ``faults`` (:meth:`fail`), a wrong ``Authorization`` is refused (HTTP 400, the problem
    kept in ``errors``), then the subclass's :meth:`route` answers; a fault's ``delay`` is slept after the
    work is done. ``now`` is its clock (default the system clock); pushes are signed with
    ``callback_secret`` by the subclass's ``push_request`` and sent with :meth:`push`; ``callback_url``,
    when set, is where the subclass pushes what is created. ``token`` and ``callback_secret`` default to
    the class's ``default_token`` and ``default_callback_secret``; ``host``, ``port`` and ``state_dir``
    are :class:`EmulatorServer`'s. The server is bound at once (``url`` is known before ``start``)."""

    default_token: ClassVar[str] = "emulator-token"
    default_callback_secret: ClassVar[str] = "emulator-callback-secret"

    def __init__(self, *, name: str, **options: Unpack[BearerApiOptions]) -> None:
        super().__init__(
            name=name,
            poll_interval=0.02,
            host=options.get("host", "127.0.0.1"),
            port=options.get("port", 0),
            state_dir=options.get("state_dir"),
        )
        self.callback_url = options.get("callback_url")
        self.token = options.get("token", self.default_token)
        self.callback_secret = options.get("callback_secret", self.default_callback_secret)
        self.now = options.get("now") or (lambda: datetime.now(UTC))
        self.faults: FaultScript[PathFault] = FaultScript()
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.errors: list[str] = []
        self._nonce = 0
        self._lock = threading.Lock()
        self.bind()  # the url is known before entering

    def fail(self, *faults: PathFault) -> None:
        """Apply these faults, in order, to the next requests."""
        self.faults.extend(faults)

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request of the emulated provider's API (runs in a server thread)."""
        headers = dict(request.headers.items())
        raw = read_body(request)
        status, body, extra = self._handle(method, request.path, headers, raw)
        json_reply(request, status, body, headers=extra)

    def unavailable(self) -> Answer | None:
        """An answer for every request before its token is even read (a provider that is down), or None
        (the default): answer normally. Called under ``_lock``."""
        return None

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        """The answer to an authorised request (``headers`` with lower-case names), or None: no such
        path (refused with HTTP 400)."""
        raise NotImplementedError

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        h = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append((method, path))
            fault = self.faults.pop(lambda f: f.matches(method, path))
            down = self.unavailable()
        if down is not None:
            return down
        if h.get("authorization") != f"Bearer {self.token}":
            return self._reject("authorization")
        if fault is not None and fault.status is not None:
            return fault.status, fault.body, fault.headers
        answer = self.route(method, path, h, raw)
        if answer is None:
            return self._reject(f"path {method} {path}")
        if fault is not None and fault.delay:
            time.sleep(fault.delay)  # the work is done: a client that gives up leaves it in doubt
        return answer

    def _reject(self, problem: str) -> Answer:
        with self._lock:
            self.errors.append(problem)
        return 400, b'{"error": "BAD_REQUEST"}', ()

    def push_request(self, key: str) -> tuple[dict[str, str], bytes]:
        """The signed push about ``key`` (an order, a job): ``(headers, body)``."""
        raise NotImplementedError

    def push(self, url: str, key: str) -> int:
        """POST the push about ``key`` to a callback receiver at ``url``; the HTTP status it answered
        (``0`` when nothing answered)."""
        headers, body = self.push_request(key)
        return post_callback(url, body, headers)


class _CloudSmsMessage(Protocol):
    send_time: datetime
    receive_time: datetime | None


M = TypeVar("M", bound=_CloudSmsMessage)


class CloudSmsEmulatorOptions(TypedDict, total=False):
    """The keyword arguments every :class:`CloudSmsEmulator` takes (a subclass passes them on)."""

    callback_token: str
    callback_url: str | None
    sign_names: set[str] | None
    qps: int
    clock: Callable[[], datetime] | None
    auto_deliver: bool
    seed: int
    host: str
    port: int
    state_dir: str | os.PathLike[str] | None


class CloudSmsEmulator(ScriptedEmulator[F], Generic[F, M]):
    """The common part of a cloud SMS service's emulator (Alibaba Cloud, Tencent Cloud): the messages it
    took (``messages``, of the dataclass ``message_type`` whose ``message_key`` field is the dispatch id),
    the registered ``sign_names``, ``illegal_numbers``, the API's ``qps`` limit, ``clock``,
    ``auto_deliver``, and the carrier report pushed, unsigned, as a JSON array to
    ``callback_url?token=<callback_token>``. A subclass adds the provider's signature check, its actions
    and its report format (``_report``).

    Defaults: ``callback_token`` ``"emulator-callback-token"``, no ``callback_url``, the sign name
    ``武汉中院``, ``qps`` the class's ``default_qps``, the system clock, no ``auto_deliver``, ``seed`` 0
    (the random ids), and :class:`EmulatorServer`'s ``host``, ``port`` and ``state_dir``."""

    message_type: type[M]
    message_key: str = "out_id"
    default_qps: ClassVar[int] = 1000

    def __init__(self, *, name: str, **options: Unpack[CloudSmsEmulatorOptions]) -> None:
        super().__init__(
            name=name,
            host=options.get("host", "127.0.0.1"),
            port=options.get("port", 0),
            state_dir=options.get("state_dir"),
        )
        self.callback_token = options.get("callback_token", "emulator-callback-token")
        self.callback_url = options.get("callback_url")
        sign_names = options.get("sign_names")
        self.sign_names = set(sign_names) if sign_names is not None else {"武汉中院"}
        self.qps = options.get("qps", self.default_qps)
        self.clock = options.get("clock") or (lambda: datetime.now(UTC))
        self.auto_deliver = options.get("auto_deliver", False)
        self.illegal_numbers: set[str] = set()  # numbers the service finds invalid (unassigned ranges...)
        self.messages: list[M] = []
        self._calls: deque[float] = deque()
        self._random = random.Random(options.get("seed", 0))
        self._requests = 0

    def messages_for(self, key: str) -> list[M]:
        """The messages taken under this dispatch id, oldest first (more than one: it was sent twice)."""
        with self._lock:
            return [m for m in self.messages if getattr(m, self.message_key) == key]

    def _report(self, message: M, success: bool, detail: str) -> dict[str, Any]:
        """Record the carrier's report on ``message`` (under ``_lock``); the report as the push carries it."""
        raise NotImplementedError

    def _deliver(self, key: str, success: bool, detail: str, push: bool) -> tuple[dict[str, str], bytes]:
        """Record the carrier's report for the latest message under ``key`` (``IndexError`` when there is
        none); push it when ``callback_url`` is set and ``push``. Returns the push's query and body."""
        with self._lock:
            message = [m for m in self.messages if getattr(m, self.message_key) == key][-1]
            report = self._report(message, success, detail)
        query, body = self.report_push([report])
        if push and self.callback_url:
            self._push(body)
        return query, body

    def report_push(self, reports: list[dict[str, Any]]) -> tuple[dict[str, str], bytes]:
        """A report push: the callback URL's query (the token) and the JSON array body."""
        return {"token": self.callback_token}, json.dumps(reports, ensure_ascii=False).encode()

    def _push(self, body: bytes) -> None:
        assert self.callback_url is not None
        url = f"{self.callback_url}?{urllib.parse.urlencode({'token': self.callback_token})}"
        self.push(url, body, {"Content-Type": "application/json"})

    def _push_later(self, reports: Iterable[dict[str, Any]]) -> None:
        """Push each report on its own, from a background thread, when ``callback_url`` is set."""
        for report in reports:
            if self.callback_url:
                self.push_later(self._push, self.report_push([report])[1])

    def _next_request(self) -> int:
        """The number of this request (1, 2, ...), for the request id."""
        with self._lock:
            self._requests += 1
            return self._requests

    def _throttled(self) -> bool:
        """Whether this call is over ``qps`` in the last second (counts it when not); hold ``_lock``."""
        now = time.monotonic()
        while self._calls and now - self._calls[0] > 1.0:
            self._calls.popleft()
        if len(self._calls) >= self.qps:
            return True
        self._calls.append(now)
        return False

    def dump_state(self) -> dict[str, Any]:
        """The emulator's durable state (JSON-able): the messages it holds."""
        with self._lock:
            return {
                "messages": [
                    {
                        **vars(m),
                        "send_time": m.send_time.isoformat(),
                        "receive_time": m.receive_time.isoformat() if m.receive_time else None,
                    }
                    for m in self.messages
                ]
            }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`dump_state` returned."""
        with self._lock:
            for raw in state.get("messages", []):
                received = raw.get("receive_time")
                self.messages.append(
                    self.message_type(
                        **{
                            **raw,
                            "send_time": datetime.fromisoformat(raw["send_time"]),
                            "receive_time": datetime.fromisoformat(received) if received else None,
                        }
                    )
                )


@dataclass(frozen=True)
class MessageFault:
    """One scripted misbehaviour of a message gateway (taken in order from a :class:`FaultScript` by the
    next send or status query): ``kind`` ``"http"`` (answer HTTP ``status``, with ``retry_after``; the
    message is not taken), ``"code"`` (HTTP 200 with the provider's error ``code``) or ``"timeout"``
    (answer ``seconds`` late; with ``accept`` the message was taken first, so the client is in doubt).
    A plugin subclasses it to name its own codes."""

    kind: str
    status: int = 200
    code: str = ""
    retry_after: str | None = None
    seconds: float = 0.0
    accept: bool = True

    @classmethod
    def http(cls, status: int = 503, retry_after: str | None = None) -> Self:
        """Answer with this HTTP status (and ``Retry-After``); the message is not taken."""
        return cls("http", status=status, retry_after=retry_after)

    @classmethod
    def refuse(cls, code: str) -> Self:
        """HTTP 200 with this provider code (a refusal for good, or a busy code)."""
        return cls("code", code=code)

    @classmethod
    def timeout(cls, seconds: float, *, accept: bool = True) -> Self:
        """Answer ``seconds`` late (longer than the client waits); with ``accept`` the message was taken
        first, so the client is left in doubt."""
        return cls("timeout", seconds=seconds, accept=accept)


@dataclass(frozen=True, kw_only=True)
class PathFault:
    """A scripted answer for the next request whose path starts with ``path_prefix`` (and, if given, whose
    method is ``method``): an HTTP ``status`` with ``headers`` and ``body``, or, with no status, ``delay``
    seconds of silence after the work is done (a client that gives up leaves the request in doubt).
    Script them in a ``FaultScript[PathFault]`` and take one with ``pop(lambda f: f.matches(method, path))``."""

    path_prefix: str
    method: str | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"error": "SCRIPTED"}'
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """True when this fault applies to a request of ``method`` on ``path``."""
        return path.startswith(self.path_prefix) and self.method in (None, method)


def transient(rng: random.Random, rate: float) -> bool:
    """True for a share ``rate`` of calls (seeded ``rng``: reproducible); never draws when ``rate`` is 0."""
    return bool(rate) and rng.random() < rate


class _MockHandler(_Handler):
    """A request handler without a socket: the request comes from httpx, the answer goes to a buffer."""

    def __init__(self, emulator: EmulatorServer, request: httpx.Request) -> None:  # no super(): no socket
        body = request.read()
        target = request.url.raw_path.decode("ascii")
        self.server = cast(_Server, _MockServer(emulator))
        self.client_address = ("127.0.0.1", 0)
        self.command = request.method
        self.path = target
        self.request_version = "HTTP/1.1"
        self.requestline = f"{request.method} {target} HTTP/1.1"
        self.close_connection = True
        headers = http.client.HTTPMessage()
        for name, value in request.headers.multi_items():
            headers[name] = value
        if body and "content-length" not in request.headers:
            headers["Content-Length"] = str(len(body))
        self.headers = headers
        self.rfile = io.BytesIO(body)
        self.wfile = io.BytesIO()

    def answer(self) -> httpx.Response:
        import httpx

        try:
            self._dispatch(self.command)
        except Exception as exc:  # as the socket server does: the connection closes without an answer
            raise httpx.RemoteProtocolError(f"the emulator failed ({type(exc).__name__})") from exc
        raw = cast(io.BytesIO, self.wfile).getvalue()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not self.answered or not lines[0].startswith("HTTP/"):
            raise httpx.RemoteProtocolError("the emulator closed the connection without an answer")
        status = int(lines[0].split()[1])
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
        pairs = [(name.strip(), value.strip()) for name, value in headers]
        length = next((v for n, v in pairs if n.lower() == "content-length"), None)
        if length is not None and length.isdigit():
            body = body[: int(length)]
        return httpx.Response(status, headers=pairs, content=body)


@dataclass
class _MockServer:
    emulator: EmulatorServer


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    """The request body (``Content-Length`` bytes; empty without one)."""
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def json_reply(
    request: BaseHTTPRequestHandler,
    status: int,
    payload: Mapping[str, Any] | bytes,
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    retry_after: str | None = None,
    content_type: str = "application/json; charset=utf-8",
) -> None:
    """Answer with ``status`` and ``payload`` (a JSON object, or bytes already encoded) plus ``headers``
    (and ``Retry-After`` when given). A client that gave up waiting (a scripted timeout) is ignored."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    if retry_after is not None:
        pairs.append(("Retry-After", retry_after))
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(raw)))
        for key, value in pairs:
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(raw)
    except OSError:
        pass  # the client gave up (a scripted timeout)


def mask(value: str) -> str:
    """A phone number or address as a sandbox page shows it: ``138****8000``, ``z***@example.com``."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return value[:3] + "****" + value[-4:] if len(value) > 7 else "****"


def join_callback(base: str | None, channel: str) -> str | None:
    """``{base}/{channel}``: the receiver's URL for one channel (``asgi_app`` routes ``POST {prefix}/{channel}``)."""
    return None if not base else base.rstrip("/") + "/" + channel


def serve_main(
    build: Callable[[argparse.Namespace], ServiceEmulator],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The ``__main__`` of an emulator module: ``--host`` (loopback), ``--port``, ``--state DIR``,
    ``--callback-url URL`` (the receiver's base: pushes go to ``URL/{channel}``) plus ``add_arguments``; builds
    the emulator with ``build(args)``, prints its URL on the first line of stdout, then the
    ``DELIVERY_SDK_*`` variables that point the plugin at it (``export NAME=VALUE``, one a line), and serves
    until SIGTERM or SIGINT (or, when stdin is a pipe, until it closes: a parent process that dies takes it
    along)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--state", type=Path, help="directory of durable state (default: in memory)")
    parser.add_argument("--callback-url", help="push callbacks to URL/{channel} (e.g. http://127.0.0.1:8080/callbacks)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    emulator = build(args)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    emulator.start()
    try:
        print(emulator.url, flush=True)
        for key, value in emulator.sandbox_env().items():
            print(f"export {key}={value}", flush=True)
        if _stdin_is_pipe():

            def until_eof() -> None:
                sys.stdin.read()
                stop.set()

            threading.Thread(target=until_eof, daemon=True).start()
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_sandbox_main(
    sandbox: Callable[..., ServiceEmulator], argv: Sequence[str] | None = None, *, prog: str
) -> None:
    """:func:`serve_main` for an emulator module whose ``sandbox(*, host, port, state_dir, callback_url)``
    factory (its ``delivery_sdk.emulators`` entry point) is all ``__main__`` needs: ``--host``, ``--port``,
    ``--state`` and ``--callback-url`` go to it as they are."""
    serve_main(
        lambda args: sandbox(host=args.host, port=args.port, state_dir=args.state, callback_url=args.callback_url),
        argv,
        prog=prog,
    )


def _stdin_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


def post_callback(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 5.0) -> int:
    """POST a callback to ``url`` as a provider does; the HTTP status answered, ``0`` when nothing answered."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0
