"""``delivery-sdk receiver``: the callback receiver as a process of its own, apart from the worker.

::

    delivery-sdk receiver --config /etc/delivery-sdk/settings.toml --port 8080

An :class:`~delivery_sdk.AsyncDeliveryClient` that never runs the engine (it takes no engine lock, so it runs
beside the one worker of a SQLite file), serving :func:`delivery_sdk.callbacks.asgi_app` under uvicorn
(``pip install uvicorn``): each provider's push is verified by its adapter and its receipts recorded in the
store; the worker acts on them at its next step. It loads the settings file and the plugins exactly as the
worker does (:func:`delivery_sdk.settings.load_runtime`; the adapters verify and parse the pushes), so give it
the same ``--config``: a configuration problem exits 2, each problem on a log line of its own. One access-log
line per request (logger ``delivery_sdk.receiver.access``: method, path, status; never the query string nor
the body). SIGTERM or SIGINT stops it cleanly (exit 0). See
docs/deploy.md ("Worker and callback receiver").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import Any

from ._exceptions import PluginError, StoreError, ValidationError

__all__ = ["add_receiver_arguments", "run_from_args"]

log = logging.getLogger("delivery_sdk.receiver")
access = logging.getLogger("delivery_sdk.receiver.access")


def add_receiver_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``delivery-sdk receiver`` options (settings file, store, port...) to ``parser``."""
    parser.add_argument(
        "--config",
        default=os.environ.get("DELIVERY_SDK_CONFIG") or None,
        metavar="SETTINGS.toml",
        help="settings file, the worker's (store, policy, plugin variables); default: $DELIVERY_SDK_CONFIG",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("DELIVERY_SDK_STORE"),
        help="SQLite file or postgresql:// DSN (default: $DELIVERY_SDK_STORE, else [store] in the settings file)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("DELIVERY_SDK_CALLBACKS_PORT") or 8080,  # argparse applies type=int to it
        help="listen on this port (default 8080, or $DELIVERY_SDK_CALLBACKS_PORT)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("DELIVERY_SDK_CALLBACKS_HOST") or "127.0.0.1",
        help="listen on this address (default 127.0.0.1, or $DELIVERY_SDK_CALLBACKS_HOST)",
    )
    parser.add_argument("--prefix", default="/callbacks", help="URL path before /{channel} (default /callbacks)")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:NAME]",
        help="also register this plugin (a module, or an object in it), as for the worker",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING... (default INFO)")


def run_from_args(args: argparse.Namespace) -> int:
    """``delivery-sdk receiver``: load the settings and the plugins as the worker does, serve until a signal."""
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .settings import load_runtime
    from .worker import describe_store, load_plugin, open_store_spec

    try:
        runtime = load_runtime(args.config)
    except PluginError as exc:  # a SettingsError: the file, the section and the key
        log.error("%s", exc)
        return 2
    spec = args.store or runtime.store
    if not spec:
        log.error("no store: give --store PATH_OR_DSN, set DELIVERY_SDK_STORE or [store] in the settings file")
        return 2
    if not 0 <= args.port <= 65535:
        log.error("--port must be 0 to 65535")
        return 2
    try:
        import uvicorn  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn is not a dependency of delivery-sdk
        log.error("the receiver needs uvicorn: pip install uvicorn")
        return 2
    from .client import AsyncDeliveryClient
    from .policy import PolicyConfig

    try:
        plugins = [load_plugin(ref) for ref in args.plugin]
        policy = PolicyConfig(**runtime.policy)
        store = open_store_spec(spec)
    except (StoreError, PluginError, ValidationError) as exc:
        log.error("%s", exc)
        return 2
    client = AsyncDeliveryClient(
        store, plugins=plugins, policy=policy, environ=runtime.environ, evidence_origin=runtime.evidence_origin
    )
    try:
        client.host.load()
    except PluginError as exc:  # every plugin's every problem, one a line
        for problem in exc.problems:
            log.error("configuration: %s", problem)
        with contextlib.suppress(Exception):
            store.close()
        return 2
    log.info("receiver on %s", describe_store(spec))
    try:
        return asyncio.run(_serve(client, args.host, args.port, args.prefix))
    except OSError as exc:
        log.error("cannot serve callbacks on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return 2
    finally:
        with contextlib.suppress(Exception):
            store.close()


def _access_logged(app: Any) -> Any:
    """``app`` logging one line per request: method, path and status (never the query string, which may
    carry an account id, nor the body)."""

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        status: list[int] = []

        async def sending(message: Any) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message.get("status", 0)))
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            path = str(scope.get("path", ""))[:200]
            access.info("%s %s %s", scope.get("method", "?"), path, status[0] if status else "-")

    return logged


async def _serve(client: object, host: str, port: int, prefix: str) -> int:
    import uvicorn

    from .callbacks import CallbackReceiver, asgi_app
    from .client import AsyncDeliveryClient
    from .worker import _callback_server

    assert isinstance(client, AsyncDeliveryClient)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    app = _access_logged(asgi_app(CallbackReceiver(client), prefix=prefix))
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    server = _callback_server(config)  # no signal handling of its own: SIGTERM is ours, and ends in exit 0
    loop = asyncio.get_running_loop()

    def stop() -> None:
        log.info("receiver stopping")
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        log.info("callbacks at http://%s:%d%s/{channel}", host, sock.getsockname()[1], prefix.rstrip("/"))
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sock.close()
        with contextlib.suppress(Exception):
            await client.aclose()
    log.info("receiver stopped")
    return 0
