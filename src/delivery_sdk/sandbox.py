"""A local provider sandbox: every emulator the installed plugins ship, as restartable services on a laptop.

::

    delivery-sdk sandbox --base-port 18000 --state-dir ./sandbox --callback-url http://127.0.0.1:8080/callbacks
    eval "$(delivery-sdk sandbox --base-port 18000 --env)"      # in the worker's shell: DELIVERY_SDK_* for each
    delivery-sdk worker --store court.sqlite3 --callbacks-port 8080
    delivery-sdk sandbox --state-dir ./sandbox --received      # what each provider received

**Discovery.** A plugin declares its emulator in the ``delivery_sdk.emulators`` entry-point group: a factory
called as ``factory(host=, port=, state_dir=, callback_url=)`` that returns an emulator with ``start()``,
``stop()``, ``url``, ``name``, ``received()`` and ``sandbox_env()`` (:class:`delivery_sdk.testing.emulator.
ServiceEmulator`; every :class:`~delivery_sdk.testing.emulator.EmulatorServer` is one). ``callback_url`` is the
receiver's base (``.../callbacks``): each emulator pushes its reports to ``{callback_url}/{channel}``.

**Ports.** The status page listens on ``--base-port``; each emulator on ``base + n``, ``n`` fixed per name
(:data:`PORT_OFFSETS`: e-mail +1, e-service +2, EMS +3, print centre +4, SMS +5, WeChat +6; others from +10
in name order), so the printed variables stay right across restarts.

**State.** Each emulator keeps its state in ``--state-dir/<name>/`` (what it received, the messages it
holds), so the sandbox can be stopped, to rehearse a provider outage, and started again where it left off.

**Time.** Providers take their real time: a print centre prints two hours after a batch and mails three
hours later; the EMS emulator signs for an item a minute after its order. ``--time-scale N`` runs those
delays ``N`` times faster (``3600``: an hour a second), so the postal path can be followed end to end in
seconds; an emulator whose factory takes no ``time_scale`` keyword runs as it is.

**Loopback only.** Everything binds ``127.0.0.1`` and the callback URL must name a loopback host: the sandbox
never contacts an outside address.

The status page (``GET /``, plain HTML, no external assets) lists each provider, its URL and the last
requests it received; ``GET /received.json`` is the same as JSON and ``GET /env`` the shell variables.
SIGTERM or SIGINT (Ctrl-C) stops every emulator and exits 0.
"""

from __future__ import annotations

import argparse
import html
import inspect
import ipaddress
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the CLI builds its parser without importing the testing package
    from .testing.emulator import ServiceEmulator

__all__ = [
    "ENTRY_POINT_GROUP",
    "PORT_OFFSETS",
    "Sandbox",
    "add_sandbox_arguments",
    "discover",
    "port_plan",
    "run_from_args",
    "shell_env",
]

log = logging.getLogger("delivery_sdk.sandbox")

ENTRY_POINT_GROUP = "delivery_sdk.emulators"
PORT_OFFSETS: Mapping[str, int] = {"email": 1, "eservice": 2, "ems": 3, "printcentre": 4, "sms": 5, "wechat": 6}
_OTHERS_FROM = 10
_SHOWN = 50  # requests per provider on the status page

Factory = Callable[..., "ServiceEmulator"]


def discover(only: Sequence[str] | None = None) -> dict[str, Factory]:
    """The emulator factories of the installed plugins, by entry-point name (sorted); ``only`` picks some."""
    found: dict[str, Factory] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if only and ep.name not in only:
            continue
        if ep.name in found:
            continue  # the same plugin installed twice: the first one wins
        found[ep.name] = ep.load()
    missing = sorted(set(only or ()) - set(found))
    if missing:
        raise LookupError(f"no installed plugin ships an emulator named {', '.join(missing)}")
    return found


def port_plan(names: Sequence[str], base_port: int) -> dict[str, int]:
    """The fixed port of each emulator: ``base_port + PORT_OFFSETS[name]``, others from ``base + 10``."""
    others = iter(range(base_port + _OTHERS_FROM, base_port + _OTHERS_FROM + len(names)))
    return {name: base_port + PORT_OFFSETS[name] if name in PORT_OFFSETS else next(others) for name in sorted(names)}


def check_loopback_url(url: str) -> str:
    """``url`` when it is ``http(s)`` to a loopback host, else ``ValueError`` (the sandbox stays on this machine)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http URL: {url!r}")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the sandbox pushes only to this machine (127.0.0.1, ::1, localhost), not {host!r}")
    return url


def _takes_time_scale(factory: Factory) -> bool:
    try:
        return "time_scale" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - a factory without a signature
        return False


def shell_env(env: Mapping[str, str]) -> str:
    """``export NAME=VALUE`` lines (quoted for a POSIX shell), for ``eval`` or an env file."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(env.items()))


class Sandbox:
    """The emulators of ``factories`` on fixed ports from ``base_port``, with a status page on ``base_port``."""

    def __init__(
        self,
        factories: Mapping[str, Factory],
        *,
        base_port: int = 18000,
        state_dir: Path | None = None,
        callback_url: str | None = None,
        host: str = "127.0.0.1",
        time_scale: float = 1.0,
    ) -> None:
        if callback_url:
            check_loopback_url(callback_url)
        if not time_scale > 0 or time_scale == float("inf"):
            raise ValueError(f"the time scale must be a positive number, not {time_scale!r}")
        self.base_port = base_port
        self.host = host
        self.state_dir = state_dir
        self.callback_url = callback_url
        self.ports = port_plan(list(factories), base_port)
        self.emulators: dict[str, ServiceEmulator] = {
            name: factories[name](
                host=host,
                port=self.ports[name],
                state_dir=None if state_dir is None else state_dir / name,
                callback_url=callback_url,
                **({"time_scale": time_scale} if time_scale != 1.0 and _takes_time_scale(factories[name]) else {}),
            )
            for name in sorted(factories)
        }
        self._page: ThreadingHTTPServer | None = None
        self._started: list[ServiceEmulator] = []

    @property
    def url(self) -> str:
        """The status page."""
        return f"http://{self.host}:{self.base_port}/"

    def env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point every plugin at its emulator."""
        merged: dict[str, str] = {}
        for emulator in self.emulators.values():
            merged.update(emulator.sandbox_env())
        return merged

    def received(self) -> dict[str, Any]:
        """What each provider received: ``{name: {"url", "received": [...]}}``."""
        return {
            name: {"url": emulator.url, "received": emulator.received()} for name, emulator in self.emulators.items()
        }

    def start(self) -> Sandbox:
        """Start every emulator and the status page; return the sandbox (everything started is stopped on a failure)."""
        try:
            for emulator in self.emulators.values():
                emulator.start()
                self._started.append(emulator)
            page = _PageServer((self.host, self.base_port), _PageHandler)
            page.sandbox = self
            self._page = page
            threading.Thread(target=page.serve_forever, name="sandbox-page", daemon=True).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the status page and every started emulator, the last started first."""
        page, self._page = self._page, None
        if page is not None:
            page.shutdown()
            page.server_close()
        while self._started:
            emulator = self._started.pop()
            try:
                emulator.stop()
            except Exception as exc:  # stop the others all the same
                log.warning("stopping %s failed: %s", emulator.name, type(exc).__name__)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def page(self) -> str:
        """The status page: each provider, its URL and the last requests it received (newest first)."""
        rows = []
        for name, entry in self.received().items():
            got: list[dict[str, Any]] = entry["received"]
            items = "".join(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in ("seq", "at", "method", "path", "status")
                )
                + "<td><code>"
                + html.escape(
                    json.dumps(
                        {k: v for k, v in r.items() if k not in ("seq", "at", "method", "path", "status", "bytes")},
                        ensure_ascii=False,
                    )
                )
                + "</code></td></tr>"
                for r in reversed(got[-_SHOWN:])
            )
            rows.append(
                f"<h2>{html.escape(name)} <small>{html.escape(entry['url'])} · {len(got)} received</small></h2>"
                "<table><tr><th>#</th><th>at</th><th>method</th><th>path</th><th>status</th><th>detail</th></tr>"
                f"{items or '<tr><td colspan=6>nothing yet</td></tr>'}</table>"
            )
        callbacks = html.escape(self.callback_url or "none (start with --callback-url)")
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8><meta http-equiv=refresh content=5>"
            "<title>delivery-sdk sandbox</title><style>body{font:14px sans-serif;margin:1em 2em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
            "small{color:#666;font-weight:normal}</style></head><body><h1>delivery-sdk sandbox</h1>"
            f"<p>callbacks pushed to {callbacks}/{{channel}} · <a href=/received.json>received.json</a> · "
            f"<a href=/env>env</a></p>{''.join(rows)}</body></html>"
        )


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: Sandbox


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        sandbox = self.server.sandbox
        if path == "/":
            body, kind = sandbox.page().encode(), "text/html; charset=utf-8"
        elif path == "/received.json":
            body, kind = json.dumps(sandbox.received(), ensure_ascii=False).encode(), "application/json"
        elif path == "/env":
            body, kind = shell_env(sandbox.env()).encode(), "text/plain; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


# -- the command -------------------------------------------------------------------------------------


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``delivery-sdk sandbox`` options (ports, state folder, callback URL...) to ``parser``."""
    parser.add_argument(
        "--base-port", type=int, default=18000, help="status page port; emulators on base+1... (default 18000)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("delivery-sdk-sandbox"),
        help="durable state, one folder per emulator (default ./delivery-sdk-sandbox)",
    )
    parser.add_argument("--memory", action="store_true", help="keep no state on disk (a fresh sandbox every start)")
    parser.add_argument(
        "--callback-url",
        help="push reports to URL/{channel}: the receiver's base, e.g. http://127.0.0.1:8080/callbacks (loopback)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="N",
        help="run the providers' delays N times faster (print centre, EMS; 3600: an hour a second; default 1)",
    )
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="start only these emulators")
    parser.add_argument("--env", action="store_true", help="print the DELIVERY_SDK_* variables and exit")
    parser.add_argument("--env-file", type=Path, help="also write the variables to this file when starting")
    parser.add_argument("--received", action="store_true", help="print what each provider received (JSON) and exit")


def run_from_args(args: argparse.Namespace) -> int:
    """``delivery-sdk sandbox``: start the emulators, print their variables, serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's line per connection
    if not 1 <= args.base_port <= 65535 - _OTHERS_FROM - 20:
        print("delivery-sdk sandbox: --base-port must leave room for the emulators' ports", file=sys.stderr)
        return 2
    try:
        factories = discover(args.only)
        state_dir = None if args.memory else args.state_dir
        sandbox = Sandbox(
            factories,
            base_port=args.base_port,
            state_dir=state_dir,
            callback_url=args.callback_url,
            time_scale=args.time_scale,
        )
    except (LookupError, ValueError) as exc:
        print(f"delivery-sdk sandbox: {exc}", file=sys.stderr)
        return 2
    if not factories:
        print("delivery-sdk sandbox: no installed plugin ships an emulator", file=sys.stderr)
        return 2
    if args.env:
        sys.stdout.write(shell_env(sandbox.env()))
        return 0
    if args.received:  # read from the state folders: works whether or not the sandbox is running
        print(json.dumps(_received_on_disk(sandbox), ensure_ascii=False, indent=2))
        return 0
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            sandbox.start()
        except OSError as exc:
            print(
                f"delivery-sdk sandbox: cannot listen ({exc.strerror or exc}); try another --base-port", file=sys.stderr
            )
            return 2
        try:
            env = shell_env(sandbox.env())
            if args.env_file is not None:
                args.env_file.write_text(env, encoding="utf-8")
            lines = [f"# {name:<12} {emulator.url}" for name, emulator in sandbox.emulators.items()]
            lines.append(f"# status page  {sandbox.url}")
            sys.stdout.write("\n".join(lines) + "\n" + env + "# ready\n")
            sys.stdout.flush()
            while not stop.wait(0.2):
                pass
        finally:
            sandbox.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _received_on_disk(sandbox: Sandbox) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, emulator in sandbox.emulators.items():
        entries: list[Any] = []
        if sandbox.state_dir is not None:
            log_file = sandbox.state_dir / name / "received.jsonl"
            if log_file.exists():
                entries = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines() if line]
        out[name] = {"url": emulator.url, "received": entries}
    return out
