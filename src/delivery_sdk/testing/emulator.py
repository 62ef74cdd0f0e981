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
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

__all__ = ["EmulatorServer", "FaultScript", "PathFault", "json_reply", "post_callback", "read_body", "transient"]

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
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.emulator.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.emulator.handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.emulator.handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.emulator.handle(self, "DELETE")


class EmulatorServer:
    """A local HTTP server for one emulated provider (see the module docstring). Subclasses implement
    :meth:`handle`; ``name`` names the serving thread; ``poll_interval`` is how often the server looks
    for a ``stop()``."""

    def __init__(self, *, name: str = "emulator", poll_interval: float = 0.05) -> None:
        self.name = name
        self.poll_interval = poll_interval
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

    # -- running ---------------------------------------------------------------------------------------

    def bind(self) -> None:
        """Open the listening socket now (``url`` is known before ``start()``); ``start()`` does it if needed."""
        if self._server is None:
            server = _Server(("127.0.0.1", 0), _Handler)
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
        return self._bound()[0]

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the base URL to point an adapter at."""
        host, port = self._bound()
        return f"http://{host}:{port}"

    def _bound(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self._address

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
        with self._lock:
            self._faults.extend(faults)

    def pop(self, match: Callable[[F], bool] | None = None) -> F | None:
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
        return path.startswith(self.path_prefix) and self.method in (None, method)


def transient(rng: random.Random, rate: float) -> bool:
    """True for a share ``rate`` of calls (seeded ``rng``: reproducible); never draws when ``rate`` is 0."""
    return bool(rate) and rng.random() < rate


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
