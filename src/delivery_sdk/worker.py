"""A long-lived worker process: the engine on the system clock, for ``delivery-sdk worker``.

::

    delivery-sdk worker --store postgresql://delivery@db.court.example/delivery \\
        --health-file /run/delivery-sdk/worker.json --health-port 8081

Any number of workers may run against one PostgreSQL database (the store leases due tasks to one worker at
a time with ``FOR UPDATE SKIP LOCKED``); a SQLite file takes one worker (it holds the file's engine lock).

- **Plugins** are loaded from the ``delivery_sdk`` entry points as everywhere else (``--plugin MODULE:NAME``
  adds one more by import path), and configured and registered at start (``PluginHost.load``): a partial
  or invalid configuration exits 2, each problem on a log line of its own. ``--config FILE`` (or
  ``DELIVERY_SDK_CONFIG``) names a settings file (:mod:`delivery_sdk.settings`); ``delivery-sdk
  check-config`` goes through the same start-up and prints what is registered.
- **Failing plugins**: a channel, the print routing, filing or address search that failed
  ``failing_after`` times in a row turns the health report ``failing`` (the component named) until it
  succeeds again.
- **Graceful shutdown** on SIGTERM or SIGINT: the batch in hand is finished and committed (which ends its
  leases), any lease still held is released, the channel adapters and the store are closed and the process
  exits 0. A second signal changes nothing (the supervisor's own timeout, then SIGKILL, is the backstop: a
  killed worker's leases simply expire and another worker takes the tasks over).
- **Store outages** never end the process: a step that fails (the database restarted, the network went
  away) is logged without personal data (the error's type and first line only), the worker backs off
  (exponential, capped, with jitter) and tries again; the health report says ``degraded`` meanwhile.
- **Health**: a JSON document with the worker id, counters (steps, tasks processed, errors), the last step
  time and the store's state counts, rewritten atomically every ``--health-every`` seconds to
  ``--health-file`` and/or served at ``GET /healthz`` on ``--health-port`` (HTTP 200 when ``ok``, 503
  otherwise; a plain ``GET /`` answers the same). See docs/operations.md.
- **Callbacks** (``--callbacks-port PORT [--callbacks-host 127.0.0.1]``): the callback receiver
  (:func:`delivery_sdk.callbacks.asgi_app` under uvicorn) served in the worker's own event loop, so a
  provider's delivery report is ingested by the process that holds the engine (one process for a SQLite
  store). See docs/callbacks.md.
- **The status-poll schedule** (``--poll-after 300,1800,7200,21600``, or ``DELIVERY_SDK_POLL_AFTER``): seconds
  after a send of each status poll (:attr:`~delivery_sdk.policy.PolicyConfig.poll_offsets`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import logging
import os
import random
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._exceptions import EvidenceForkError, PluginError, StoreError

if TYPE_CHECKING:  # the engine is imported when a worker is built, not when the CLI parses its arguments
    from .clock import Clock
    from .engine import EngineConfig
    from .events import StoredEvent
    from .policy import PolicyConfig
    from .store import (
        CommitResult,
        CreateResult,
        NewTask,
        OutboxEntry,
        StoreCapabilities,
        TaskRow,
        TaskStore,
        TaskWrite,
    )

__all__ = [
    "CallbacksUnavailable",
    "Worker",
    "WorkerConfig",
    "add_worker_arguments",
    "describe_store",
    "load_plugin",
    "parse_poll_after",
    "run_from_args",
]

log = logging.getLogger("delivery_sdk.worker")


def describe_store(spec: str | os.PathLike[str]) -> str:
    """A store's path or DSN fit for a log line: a DSN's password is masked."""
    text = str(spec)
    if "://" in text:
        parts = urlsplit(text)
        if parts.password is not None:
            host = parts.hostname or ""
            netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
            text = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return re.sub(r"(password=)[^&]*", r"\1***", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text)


def open_store_spec(spec: str | os.PathLike[str], *, owner: str | None = None) -> TaskStore:
    """A store from a SQLite path or a ``postgresql://`` DSN (:func:`delivery_sdk.store.open_store`); on
    PostgreSQL ``owner`` names this worker's leases."""
    from .store import is_dsn, open_store

    if is_dsn(str(spec)) and owner is not None:
        return open_store(str(spec), owner=owner)
    return open_store(spec)


def load_plugin(ref: str) -> object:
    """The plugin named ``package.module`` (the module itself) or ``package.module:attribute`` (an object in
    it, registered as it is)."""
    module_name, _, attribute = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import plugin module {module_name!r}: {exc}") from exc
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise PluginError(f"plugin module {module_name!r} has no attribute {attribute!r}") from None


class _LeaseTracker:
    """The store, seen through the leases this worker holds (so a shutdown or a failed step can end them).

    Every protocol call goes straight to the wrapped store; optional extras (``checkpoint``,
    ``record_anchors``, ``proof_bundle``...) are the wrapped store's, declared by its ``capabilities()``.
    """

    def __init__(self, inner: TaskStore) -> None:
        self.inner = inner
        self.held: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def capabilities(self) -> StoreCapabilities:
        """The wrapped store's optional features (they need no lease bookkeeping)."""
        return self.inner.capabilities()

    def create_tasks(self, tasks: Sequence[NewTask]) -> CreateResult:
        return self.inner.create_tasks(tasks)

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[tuple[str, int]]:
        claimed = self.inner.claim_due(now, limit, lease_until)
        self.held.update(task_id for task_id, _ in claimed)
        return claimed

    def release(self, task_ids: Sequence[str]) -> None:
        self.inner.release(task_ids)
        self.held.difference_update(task_ids)

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        result = self.inner.commit(writes, returning=returning)
        self.held.difference_update(w.task_id for w in writes if w.release and w.task_id not in result.conflicts)
        return result

    def load_events(self, task_ids: Sequence[str]) -> dict[str, list[StoredEvent]]:
        return self.inner.load_events(task_ids)

    def task_row(self, task_id: str) -> TaskRow:
        return self.inner.task_row(task_id)

    def tasks_of_case(self, case_key: str) -> list[TaskRow]:
        return self.inner.tasks_of_case(case_key)

    def dispatch_task(self, dispatch_id: str) -> str | None:
        return self.inner.dispatch_task(dispatch_id)

    def receipt_seen(self, key: str) -> bool:
        return self.inner.receipt_seen(key)

    def pending_outbox(self) -> list[OutboxEntry]:
        return self.inner.pending_outbox()

    def next_due_at(self, now: datetime | None = None) -> datetime | None:
        return self.inner.next_due_at(now)

    def count_by_state(self) -> dict[str, int]:
        return self.inner.count_by_state()

    def latest_event_time(self) -> datetime | None:
        return self.inner.latest_event_time()

    def events_after(self, seq: int, limit: int, *, types: Sequence[str] | None = None) -> list[StoredEvent]:
        return self.inner.events_after(seq, limit, types=types)

    def close(self) -> None:
        self.inner.close()


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How a worker runs; the defaults suit a production worker."""

    worker_id: str = attrs.field(factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    batch_size: int = 256
    lease: timedelta = timedelta(minutes=5)  # a worker that dies holds its tasks this long at most
    idle_poll: float = 1.0  # seconds between looks at the store when nothing is due
    backoff_initial: float = 0.5  # seconds after the first failed step; doubled per failure...
    backoff_max: float = 30.0  # ...up to this
    health_file: Path | None = None
    health_port: int | None = None  # 0: any free port (written into the health report)
    health_host: str = "127.0.0.1"
    health_every: float = 5.0  # seconds between health reports
    counts_every: float = 60.0  # seconds between the store's state counts in the report (0: never)
    degraded_after: int = 1  # consecutive failed steps that make the worker report "degraded"
    # failures in a row of one plugin or adapter (a channel, print routing, filing...) that make the worker
    # report "failing" (unhealthy, the component named) until it succeeds again
    failing_after: int = 5
    # serve the callback receiver (asgi_app under uvicorn) in the worker's own event loop on this port (0: any
    # free port, written into the health report); None: no receiver in this process
    callbacks_port: int | None = None
    callbacks_host: str = "127.0.0.1"
    callbacks_prefix: str = "/callbacks"


class _HealthHandler(BaseHTTPRequestHandler):
    server: _HealthServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in ("/", "/healthz"):
            self.send_error(404, "only GET /healthz")
            return
        body, healthy = self.server.snapshot
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health request: " + format, *args)


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True
    snapshot: tuple[bytes, bool] = (b'{"status": "starting"}', False)


class CallbacksUnavailable(RuntimeError):
    """``--callbacks-port`` cannot be served (the port is taken, uvicorn is missing)."""


def parse_poll_after(text: str) -> tuple[timedelta, ...]:
    """``"300"`` or ``"60,600,3600"``: the status-poll schedule (seconds after a send, increasing; the last
    repeats), as :attr:`~delivery_sdk.policy.PolicyConfig.poll_offsets`. ``ValueError`` when unusable."""
    try:
        seconds = [float(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise ValueError(f"not a list of seconds: {text!r} (e.g. 300 or 60,600,3600)") from None
    if any(not s > 0 or s != s or s == float("inf") for s in seconds):
        raise ValueError(f"poll offsets must be positive seconds: {text!r}")
    if any(b <= a for a, b in itertools.pairwise(seconds)):
        raise ValueError(f"poll offsets must increase: {text!r}")
    return tuple(timedelta(seconds=s) for s in seconds)


def _callback_server(config: Any) -> Any:
    """A ``uvicorn.Server`` without its own signal handling (the worker owns SIGTERM/SIGINT and stops it);
    uvicorn is imported only when ``--callbacks-port`` is given."""
    import uvicorn

    class CallbackServer(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            pass

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
            yield

    return CallbackServer(config)


class Worker:
    """The engine as a long-lived process; :meth:`run` until :meth:`stop` (or a signal, see :meth:`main`)."""

    def __init__(
        self,
        store: TaskStore,
        *,
        plugins: Sequence[object] = (),
        config: WorkerConfig | None = None,
        clock: Clock | None = None,
        engine_config: EngineConfig | None = None,
        policy: PolicyConfig | None = None,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        store_label: str = "",
        evidence_signers: Sequence[Any] | None = None,
        evidence_origin: str | None = None,
        evidence_witness: str | os.PathLike[str] | None = None,
    ) -> None:
        from .client import AsyncDeliveryClient
        from .clock import SystemClock
        from .engine import EngineConfig

        self.config = config or WorkerConfig()
        cfg = self.config
        self.store = _LeaseTracker(store)
        self.store_label = store_label
        # the worker owns its process: it may hold the collector off while a step works (see delivery_sdk._fast.GCPause)
        engine_config = engine_config or EngineConfig(batch_size=cfg.batch_size, lease=cfg.lease, pause_gc=True)
        self.client = AsyncDeliveryClient(
            self.store,
            plugins=plugins,
            clock=clock or SystemClock(),
            config=engine_config,
            policy=policy,
            load_entry_points=load_entry_points,
            environ=environ,
            evidence_signers=evidence_signers,
            evidence_origin=evidence_origin,
            evidence_witness=evidence_witness,
        )
        self.engine = self.client.engine
        self.started_at = datetime.now(UTC)
        self.status = "starting"
        self.steps = 0
        self.tasks_processed = 0
        self.errors = 0
        self.consecutive_errors = 0
        self.last_step_at: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.state_counts: dict[str, int] = {}
        self.health_port: int | None = None
        self.callbacks_port: int | None = None
        self._callbacks: tuple[Any, asyncio.Future[None], socket.socket] | None = None  # server, task, socket
        self._stop = asyncio.Event()
        self._server: _HealthServer | None = None
        self._last_health = 0.0
        self._last_counts: float | None = None

    # -- control -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand, then shut down (safe from a signal handler on the loop)."""
        if not self._stop.is_set():
            log.info("worker %s stopping: finishing the batch in hand", self.config.worker_id)
        self._stop.set()

    @property
    def healthy(self) -> bool:
        """True when the worker's status is "ok"."""
        return self.status == "ok"

    def load(self) -> None:
        """Configure every plugin and build the channel and print-centre registries now (the code path
        ``delivery-sdk check-config`` shares): a :class:`~delivery_sdk.PluginError` naming every problem
        rather than a worker that starts and fails each task."""
        self.client.host.load()

    def failing_components(self) -> dict[str, tuple[int, str]]:
        """The plugins/adapters that failed ``failing_after`` times in a row or more (engine.failing)."""
        limit = max(1, self.config.failing_after)
        failing: Mapping[str, tuple[int, str]] = getattr(self.engine, "failing", {})
        return {name: entry for name, entry in sorted(failing.items()) if entry[0] >= limit}

    def _check_components(self) -> None:
        """After a step the store took: "failing" while a plugin keeps failing, "ok" once it recovers."""
        failing = self.failing_components()
        if failing and self.status != "failing":
            names = ", ".join(f"{name} ({entry[1]}, {entry[0]} in a row)" for name, entry in failing.items())
            log.error("worker %s: failing: %s", self.config.worker_id, names)
            self.status = "failing"
            self.publish_health(force=True)
        elif not failing and self.status == "failing":
            log.info("worker %s: no plugin is failing any more", self.config.worker_id)
            self.status = "ok"
            self.publish_health(force=True)

    # -- health --------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The health report (no personal data: counts, times and error types only)."""
        return {
            "worker_id": self.config.worker_id,
            "pid": os.getpid(),
            "status": self.status,
            "store": self.store_label,
            "started_at": self.started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "steps": self.steps,
            "tasks_processed": self.tasks_processed,
            "errors": self.errors,
            "consecutive_errors": self.consecutive_errors,
            "last_step_at": None if self.last_step_at is None else self.last_step_at.isoformat(),
            "last_error": self.last_error,
            "last_error_at": None if self.last_error_at is None else self.last_error_at.isoformat(),
            "leases_held": len(self.store.held),
            "state_counts": dict(sorted(self.state_counts.items())),
            "health_port": self.health_port,
            "failing": {name: {"failures": n, "last_error": e} for name, (n, e) in self.failing_components().items()},
            "callbacks_port": self.callbacks_port,
        }

    def _refresh_counts(self, *, force: bool = False) -> None:
        every = self.config.counts_every
        now = time.monotonic()
        if every <= 0 or (not force and self._last_counts is not None and now - self._last_counts < every):
            return
        self._last_counts = now
        try:
            self.state_counts = self.store.count_by_state()
        except Exception as exc:  # the store is down: the report says so through the step errors
            log.debug("state counts unavailable: %s", type(exc).__name__)

    def publish_health(self, *, force: bool = False) -> None:
        """Write the health report to the health file and the health endpoint (at most every ``health_every``
        seconds, unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._last_health < self.config.health_every:
            return
        self._last_health = now
        if self.status in ("ok", "degraded", "failing"):
            self._refresh_counts()
        report = self.health()
        body = (json.dumps(report, indent=2) + "\n").encode()
        if self._server is not None:
            self._server.snapshot = (body, self.healthy)
        path = self.config.health_file
        if path is not None:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(body)
                os.replace(tmp, path)
            except OSError as exc:
                log.warning("cannot write the health file %s: %s", path, exc.strerror or type(exc).__name__)

    def _start_http(self) -> None:
        if self.config.health_port is None:
            return
        server = _HealthServer((self.config.health_host, self.config.health_port), _HealthHandler)
        self._server = server
        self.health_port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name="delivery-sdk-health", daemon=True)
        thread.start()
        log.info("health at http://%s:%d/healthz", self.config.health_host, self.health_port)

    def _stop_http(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- the callback receiver -----------------------------------------------------------------------

    async def _start_callbacks(self) -> None:
        """Serve :func:`~delivery_sdk.callbacks.asgi_app` on ``callbacks_port`` in this event loop: the receiver
        ingests where the engine runs (one process for a SQLite store)."""
        cfg = self.config
        if cfg.callbacks_port is None:
            return
        from .callbacks import CallbackReceiver, asgi_app

        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - uvicorn is not a dependency of delivery-sdk
            raise CallbacksUnavailable("--callbacks-port needs uvicorn: pip install uvicorn") from exc
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.callbacks_host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((cfg.callbacks_host, cfg.callbacks_port))
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            raise CallbacksUnavailable(
                f"cannot serve callbacks on {cfg.callbacks_host}:{cfg.callbacks_port}: {exc.strerror or exc}"
            ) from None
        sock.setblocking(False)
        self.callbacks_port = int(sock.getsockname()[1])
        receiver = CallbackReceiver(self.client)
        config = uvicorn.Config(
            asgi_app(receiver, prefix=cfg.callbacks_prefix), lifespan="off", log_config=None, access_log=False
        )
        server = _callback_server(config)
        task: asyncio.Future[None] = asyncio.ensure_future(server.serve(sockets=[sock]))
        self._callbacks = (server, task, sock)
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            self._callbacks = None
            sock.close()
            task.result()  # raises what stopped it
            raise CallbacksUnavailable("the callback receiver stopped as it started")
        log.info("callbacks at http://%s:%d%s/{channel}", cfg.callbacks_host, self.callbacks_port, cfg.callbacks_prefix)

    async def _stop_callbacks(self) -> None:
        running, self._callbacks = self._callbacks, None
        if running is None:
            return
        server, task, sock = running
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)
        sock.close()

    # -- the loop ------------------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> float:
        self.errors += 1
        self.consecutive_errors += 1
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        self.last_error = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
        self.last_error_at = datetime.now(UTC)
        if self.consecutive_errors >= self.config.degraded_after:
            self.status = "degraded"
        exponent = min(self.consecutive_errors - 1, 30)
        delay = min(self.config.backoff_max, self.config.backoff_initial * float(2**exponent))
        delay *= random.uniform(0.8, 1.2)
        log.warning(
            "worker %s: step failed (%s), retrying in %.1f s (failure %d in a row)",
            self.config.worker_id,
            self.last_error,
            delay,
            self.consecutive_errors,
        )
        log.debug("step failure", exc_info=exc)
        return delay

    def _release_held(self) -> None:
        held = sorted(self.store.held)
        if not held:
            return
        try:
            self.store.release(held)
        except Exception as exc:  # the store is down: the leases expire by themselves
            log.warning("could not release %d lease(s) (%s); they will expire", len(held), type(exc).__name__)
            self.store.held.clear()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def run(self) -> None:
        """Work due tasks until stopped; never returns on a store error."""
        lock = self.store.capabilities().engine_lock
        if lock is not None:
            lock.acquire_engine_lock()  # a SQLite file takes one engine; PostgreSQL stores have no such lock
        self._start_http()
        await self._start_callbacks()
        self.status = "ok"
        log.info("worker %s started on %s", self.config.worker_id, self.store_label or "the store")
        self.publish_health(force=True)
        engine = self.engine
        try:
            while not self._stop.is_set():
                try:
                    claimed = await engine.step()
                    if claimed:
                        self.steps += 1
                        self.tasks_processed += claimed
                        self.last_step_at = datetime.now(UTC)
                    else:
                        wait = self._idle_wait()
                except EvidenceForkError:
                    raise  # the log no longer extends what this worker signed: stop, never sign a fork (evidence.md)
                except Exception as exc:
                    delay = self._failed(exc)
                    self._release_held()
                    self.publish_health(force=True)
                    await self._pause(delay)
                    continue
                if self.consecutive_errors:
                    log.info("worker %s: the store answers again", self.config.worker_id)
                    self.consecutive_errors = 0
                    self.status = "ok"
                    self.publish_health(force=True)
                else:
                    self.publish_health()
                self._check_components()
                if not claimed:
                    await self._pause(wait)
                else:
                    await asyncio.sleep(0)  # let signal handlers and the loop breathe between batches
        finally:
            await self._shutdown()

    def _idle_wait(self) -> float:
        """Nothing due now: sign a checkpoint if events wait for one, and sleep until the next due time."""
        engine = self.engine
        if engine.unsigned_events:
            engine.checkpoint()
        now = engine.clock.now()
        nxt = self.store.next_due_at(now)
        idle = self.config.idle_poll
        return idle if nxt is None else max(0.0, min(idle, (nxt - now).total_seconds()))

    async def _shutdown(self) -> None:
        await self._stop_callbacks()  # no new receipts once the engine is closing
        self._refresh_counts(force=True)  # the last report carries the counts as this worker leaves them
        self.status = "stopping"
        self.publish_health(force=True)
        self._release_held()
        if self.engine.unsigned_events:
            with contextlib.suppress(Exception):
                self.engine.checkpoint()
        try:
            await self.engine.aclose()
        except Exception as exc:  # a shutdown always ends cleanly: say what failed, never a traceback
            log.warning("closing the channel adapters failed: %s", type(exc).__name__)
        with contextlib.suppress(Exception):
            self.store.close()
        self.status = "stopped"
        self.publish_health(force=True)
        self._stop_http()
        log.info(
            "worker %s stopped: %d steps, %d tasks processed, %d errors",
            self.config.worker_id,
            self.steps,
            self.tasks_processed,
            self.errors,
        )

    async def main(self) -> int:
        """Run with SIGTERM and SIGINT wired to :meth:`stop`; returns the exit status (0)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            await self.run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 0


# -- the command -------------------------------------------------------------------------------------


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``delivery-sdk worker`` options (store, worker id, plugins, lease, health...) to ``parser``."""
    parser.add_argument(
        "--store",
        default=os.environ.get("DELIVERY_SDK_STORE"),
        help="SQLite file or postgresql:// DSN (default: $DELIVERY_SDK_STORE)",
    )
    parser.add_argument("--worker-id", help="name in logs and the health report (default: host:pid:random)")
    parser.add_argument(
        "--config",
        default=os.environ.get("DELIVERY_SDK_CONFIG") or None,
        metavar="SETTINGS.toml",
        help="settings file (store, engine, policy, evidence, plugin variables; see docs/operations.md); "
        "default: $DELIVERY_SDK_CONFIG",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="tasks claimed per step (default: [engine], else 256)"
    )
    parser.add_argument(
        "--lease", type=float, default=None, help="seconds a claimed task stays this worker's (default 300)"
    )
    parser.add_argument("--idle-poll", type=float, default=1.0, help="seconds between looks when idle (default 1)")
    parser.add_argument(
        "--retry-after-error",
        type=float,
        default=None,
        help="seconds before a task whose last step failed (a filing, a provider error) is tried again (default 600)",
    )
    parser.add_argument(
        "--poll-after",
        default=os.environ.get("DELIVERY_SDK_POLL_AFTER") or None,
        metavar="SECONDS[,SECONDS...]",
        help="the status-poll schedule: seconds after a send of each poll, increasing, the last repeating "
        "(default 300,1800,7200,21600, or $DELIVERY_SDK_POLL_AFTER)",
    )
    parser.add_argument(
        "--callbacks-port",
        type=int,
        default=os.environ.get("DELIVERY_SDK_CALLBACKS_PORT") or None,  # argparse applies type=int to it
        help="serve the callback receiver (POST /callbacks/{channel}) in this process on this port "
        "(0: any free port; default: none, or $DELIVERY_SDK_CALLBACKS_PORT)",
    )
    parser.add_argument(
        "--callbacks-host",
        default=os.environ.get("DELIVERY_SDK_CALLBACKS_HOST") or "127.0.0.1",
        help="address for --callbacks-port (default 127.0.0.1, or $DELIVERY_SDK_CALLBACKS_HOST)",
    )
    parser.add_argument(
        "--callbacks-prefix", default="/callbacks", help="URL path before /{channel} (default /callbacks)"
    )
    parser.add_argument("--health-file", type=Path, help="rewrite this JSON health report periodically")
    parser.add_argument("--health-port", type=int, help="serve GET /healthz on this port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1", help="address for --health-port (default 127.0.0.1)")
    parser.add_argument("--health-every", type=float, default=5.0, help="seconds between health reports (default 5)")
    parser.add_argument(
        "--counts-every",
        type=float,
        default=60.0,
        help="seconds between the state counts in the health report (one scan of the tasks; 0: never; default 60)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:NAME]",
        help="also register this plugin (a module, or an object in it); entry points load as usual",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING... (default INFO)")


def run_from_args(
    args: argparse.Namespace, *, clock: Clock | None = None, check: Callable[[Worker], int] | None = None
) -> int:
    """``delivery-sdk worker``: load the settings, open the store, build the worker, load every plugin (a
    configuration problem exits 2 before any work), run it until a signal.

    ``check`` (``delivery-sdk check-config``): instead of loading the plugins and running, hand the worker,
    built exactly as it would run, to ``check`` and return what it returns (the store is closed after)."""
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .settings import load_runtime

    try:
        runtime = load_runtime(getattr(args, "config", None))
    except PluginError as exc:  # a SettingsError: the file, the section and the key
        log.error("%s", exc)
        return 2
    if not args.store:
        args.store = runtime.store
    if not args.store:
        log.error("no store: give --store PATH_OR_DSN, set DELIVERY_SDK_STORE or [store] in the settings file")
        return 2
    # the command line wins over the settings file, which wins over the defaults
    if args.batch_size is None:
        args.batch_size = runtime.engine.get("batch_size", 256)
    if args.lease is None:
        args.lease = runtime.engine.get("lease", timedelta(minutes=5)).total_seconds()
    if args.retry_after_error is None:
        args.retry_after_error = runtime.policy.get("retry_after_error", timedelta(minutes=10)).total_seconds()
    for name in ("batch_size",):
        if getattr(args, name) < 1:
            log.error("--batch-size must be at least 1")
            return 2
    if args.lease <= 0 or args.retry_after_error <= 0:
        log.error("--lease and --retry-after-error must be positive")
        return 2
    poll_offsets: tuple[timedelta, ...] | None = None
    if args.poll_after:
        try:
            poll_offsets = parse_poll_after(str(args.poll_after))
        except ValueError as exc:
            log.error("--poll-after: %s", exc)
            return 2
    if args.callbacks_port is not None and not 0 <= args.callbacks_port <= 65535:
        log.error("--callbacks-port must be 0 to 65535")
        return 2
    config = WorkerConfig(
        **({"worker_id": args.worker_id} if args.worker_id else {}),
        batch_size=args.batch_size,
        lease=timedelta(seconds=args.lease),
        idle_poll=args.idle_poll,
        health_file=args.health_file,
        health_port=args.health_port,
        health_host=args.health_host,
        health_every=args.health_every,
        counts_every=args.counts_every,
        callbacks_port=args.callbacks_port,
        callbacks_host=args.callbacks_host,
        callbacks_prefix=args.callbacks_prefix,
    )
    from .policy import PolicyConfig

    policy = PolicyConfig(**{**runtime.policy, "retry_after_error": timedelta(seconds=args.retry_after_error)})
    if poll_offsets is not None:
        policy = attrs.evolve(policy, poll_offsets=poll_offsets)
    label = describe_store(args.store)
    from ._exceptions import ValidationError
    from .engine import EngineConfig

    engine_config = None
    if runtime.engine:
        engine_config = EngineConfig(
            **{"pause_gc": True, **runtime.engine, "batch_size": config.batch_size, "lease": config.lease}
        )
    signers = None
    try:
        if runtime.evidence_key_file is not None:
            from .evidence.keys import load_signers

            signers = load_signers(path=runtime.evidence_key_file)
        plugins = [load_plugin(ref) for ref in args.plugin]
        store = open_store_spec(args.store, owner=config.worker_id)
    except (StoreError, PluginError, ValidationError) as exc:
        log.error("%s", exc)
        return 2
    try:
        worker = Worker(
            store,
            plugins=plugins,
            config=config,
            clock=clock,
            policy=policy,
            engine_config=engine_config,
            environ=runtime.environ,
            store_label=label,
            evidence_signers=signers,
            evidence_origin=runtime.evidence_origin,
            evidence_witness=runtime.evidence_witness,
        )
    except BaseException:
        store.close()
        raise
    if check is not None:
        try:
            return check(worker)
        finally:
            with contextlib.suppress(Exception):
                store.close()
    try:
        worker.load()
    except PluginError as exc:  # every plugin's every problem, one a line, before any work is done
        for problem in exc.problems:
            log.error("configuration: %s", problem)
        with contextlib.suppress(Exception):
            store.close()
        return 2
    try:
        return asyncio.run(worker.main())
    except (StoreError, CallbacksUnavailable) as exc:  # the engine lock of a SQLite file, a port taken
        log.error("%s", exc)
        with contextlib.suppress(Exception):
            store.close()
        return 2
