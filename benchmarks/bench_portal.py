"""Page views per second of the recipient's document page, beside a static-file server, on this machine.

Both servers are real uvicorn processes on 127.0.0.1 (one worker each, started by this script with
``--serve``), measured in the same run by the same load generator (httpx, ``--concurrency`` requests in
flight, ``--seconds`` per measurement after a warm-up), alternating which goes first over ``--rounds``:

- ``static``: Starlette's ``StaticFiles`` serving the verify page's HTML as a file (the static-file
  baseline: a stat and a file read in a worker thread per request);
- ``floor``: the same bytes from memory by a bare ASGI callable in the same process (uvicorn's own cost:
  no framework, no file);
- ``link``: ``GET /s/{token}``, a link opened: token lookup, the task folded from the store, the identity
  check page rendered;
- ``documents``: ``GET /s/{token}/docs`` in a verified session: the session checked too, and the documents
  page rendered.

``ratio_to_static`` is the median over the rounds of views/s / static views/s, ``ratio_to_floor`` the
same against the floor. The load generator (a bare
HTTP/1.1 client on asyncio streams, keep-alive) shares the machine (and, on a 2-core machine, the cores)
with the server: the absolute numbers are this
machine's, the ratio is the point. Results go to benchmarks/results/portal.json.

    python benchmarks/bench_portal.py [--seconds 3] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
LINK_KEY = b"bench-portal-link-key-0123456789abcdef"
SECRET = b"bench-portal-session-secret-0123456789abcdef"
ID_NUMBER = "42010619900101123X"


def _config() -> Any:
    from delivery_sdk.portal import IdentityMethod, PortalConfig

    return PortalConfig(
        court_name="武汉市武昌区人民法院",
        court_phone="027-8888-0000",
        link_keys=(LINK_KEY,),
        session_secret=SECRET,
        identity=IdentityMethod.ID_DIGITS,
        secure_cookies=False,
        session_ttl=__import__("datetime").timedelta(hours=1),
    )


def _channel() -> Any:
    from delivery_sdk import ChannelKind
    from delivery_sdk.testing import FakeChannel, Outcome

    channel = FakeChannel("bench-sms", ChannelKind.SMS)
    channel.default = Outcome.delivered()
    return channel


def prepare(folder: Path) -> str:
    """A store with one task sent by SMS, its documents in ``folder/documents``; returns the link token."""
    from delivery_sdk import AsyncDeliveryClient, PolicyConfig, SQLiteStore
    from delivery_sdk.callbacks import link_token
    from delivery_sdk.model import Case, Contact, ContactKind, Document, DocumentKind, Party, ServiceRequest
    from delivery_sdk.printing.package import FolderDocumentSource
    from delivery_sdk.testing import channels_plugin

    source = FolderDocumentSource(folder / "documents")
    docs = tuple(
        Document(document_id=f"D{i}", title=title, kind=DocumentKind.OTHER, sha256=source.put(f"%PDF {i}".encode()))
        for i, title in enumerate(("传票", "起诉状副本", "举证通知书"), 1)
    )
    party = Party(
        party_id="P1",
        name="张三",
        id_number=ID_NUMBER,
        contacts=(Contact(kind=ContactKind.MOBILE, value="13912345678"),),
    )
    request = ServiceRequest(
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"), party=party, documents=docs
    )

    async def run() -> str:
        store = SQLiteStore(folder / "store.sqlite3")
        try:
            async with AsyncDeliveryClient(
                store,
                plugins=[channels_plugin(_channel())],
                policy=PolicyConfig(require_consent=False),
                load_entry_points=False,
            ) as client:
                task_id = await client.submit(request)
                await client.run_until_idle()
                [dispatch] = client.task(task_id).dispatches
                return link_token(LINK_KEY, dispatch.dispatch_id)
        finally:
            store.close()

    return asyncio.run(run())


def serve(kind: str, folder: Path, port: int) -> None:
    import uvicorn

    if kind == "static":
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        files = Starlette(routes=[Mount("/", StaticFiles(directory=folder / "static"))])
        page = (folder / "static" / "verify.html").read_bytes()
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(page)).encode())],
        }

        async def app(scope: Any, receive: Any, send: Any) -> None:
            # /floor: the same bytes from memory by a bare ASGI callable (uvicorn's own floor); else the files
            if scope["type"] == "http" and scope["path"] == "/floor":
                await send(start)
                await send({"type": "http.response.body", "body": page})
                return
            await files(scope, receive, send)

    else:
        from delivery_sdk import PolicyConfig
        from delivery_sdk.portal import create_app
        from delivery_sdk.printing.package import FolderDocumentSource
        from delivery_sdk.testing import channels_plugin

        app = create_app(
            _config(),
            FolderDocumentSource(folder / "documents"),
            store=str(folder / "store.sqlite3"),
            client_options={
                "plugins": [channels_plugin(_channel())],
                "policy": PolicyConfig(require_consent=False),
                "load_entry_points": False,
            },
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, kind: str, folder: Path) -> None:
        self.port = _port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--folder", str(folder), "--port", str(self.port)], env=env
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"the {kind} server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def _connection(host: str, port: int, request: bytes, stop: float) -> int:
    """One keep-alive connection sending ``request`` until ``stop``; the number of 200 answers."""
    reader, writer = await asyncio.open_connection(host, port)
    count = 0
    try:
        while time.perf_counter() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            assert status == b"200", head[:200]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            count += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return count


async def load(url: str, seconds: float, concurrency: int, headers: dict[str, str]) -> float:
    """Views per second of ``url`` with ``concurrency`` keep-alive connections, each one request in flight.

    A bare HTTP/1.1 client on asyncio streams (not httpx): the load generator must cost far less than the
    servers it measures, or it measures itself.
    """
    parts = httpx.URL(url)
    lines = [f"GET {parts.raw_path.decode()} HTTP/1.1", f"Host: {parts.host}:{parts.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    started = time.perf_counter()
    stop = started + seconds
    counts = await asyncio.gather(
        *(_connection(parts.host, parts.port or 80, request, stop) for _ in range(concurrency))
    )
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", choices=["static", "portal"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "portal.json"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, Path(args.folder), args.port)
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        token = prepare(folder)
        portal, static = Server("portal", folder), None
        try:
            verify_page = httpx.get(f"{portal.url}/s/{token}")
            assert verify_page.status_code == 200
            (folder / "static").mkdir()
            (folder / "static" / "verify.html").write_text(verify_page.text, encoding="utf-8")
            csrf = verify_page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            verified = httpx.post(f"{portal.url}/s/{token}/verify", data={"csrf": csrf, "answer": ID_NUMBER[-4:]})
            assert verified.status_code == 303, verified.status_code
            cookie = {"cookie": f"ds_session={verified.cookies['ds_session']}"}
            static = Server("static", folder)
            targets = {
                "floor": (f"{static.url}/floor", {}),
                "static": (f"{static.url}/verify.html", {}),
                "link": (f"{portal.url}/s/{token}", {}),
                "documents": (f"{portal.url}/s/{token}/docs", cookie),
            }
            for url, headers in targets.values():  # warm-up
                asyncio.run(load(url, 0.5, args.concurrency, headers))
            rounds: list[dict[str, float]] = []
            for n in range(args.rounds):
                order = list(targets) if n % 2 == 0 else list(reversed(targets))
                result = {}
                for name in order:
                    url, headers = targets[name]
                    result[name] = asyncio.run(load(url, args.seconds, args.concurrency, headers))
                rounds.append(result)
                print(f"round {n + 1}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in result.items()), flush=True)
        finally:
            portal.stop()
            if static is not None:
                static.stop()

    summary = {
        "benchmark": "portal page views per second beside a static-file server (uvicorn, 127.0.0.1)",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "rounds": rounds,
        "median_views_per_second": {k: round(statistics.median(r[k] for r in rounds), 1) for k in rounds[0]},
        "ratio_to_static": {
            k: round(statistics.median(r[k] / r["static"] for r in rounds), 3) for k in ("floor", "link", "documents")
        },
        "ratio_to_floor": {
            k: round(statistics.median(r[k] / r["floor"] for r in rounds), 3) for k in ("static", "link", "documents")
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        json.dumps({k: summary[k] for k in ("median_views_per_second", "ratio_to_static", "ratio_to_floor")}, indent=2)
    )


if __name__ == "__main__":
    main()
