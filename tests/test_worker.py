"""``delivery-sdk worker`` on the embedded SQLite store: store outages, graceful shutdown, health.

The multi-worker, kill and database-restart tests on PostgreSQL are in ``tests/test_workers_pg.py``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from delivery_sdk import AsyncDeliveryClient, ChannelKind, SystemClock
from delivery_sdk._exceptions import StoreError
from delivery_sdk.store import CommitResult, SQLiteStore, TaskWrite
from delivery_sdk.testing import FakeChannel, Outcome, channels_plugin, make_party, make_request
from delivery_sdk.worker import Worker, WorkerConfig, describe_store

TESTS = Path(__file__).parent


class FlakyStore(SQLiteStore):
    """A SQLite store whose connection "drops" on chosen calls (like a database restarted under load)."""

    def __init__(self, path: Path, *, fail_claims: Sequence[int], fail_commits: Sequence[int]) -> None:
        super().__init__(path)
        self.fail_claims, self.fail_commits = set(fail_claims), set(fail_commits)
        self.claims = self.commits = 0

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[tuple[str, int]]:
        self.claims += 1
        if self.claims in self.fail_claims:
            raise StoreError("connection to server lost\nDETAIL: the second line is never logged")
        return super().claim_due(now, limit, lease_until)

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        self.commits += 1
        if self.commits in self.fail_commits:
            raise StoreError("server closed the connection unexpectedly")
        return super().commit(writes, returning=returning)


def test_a_store_outage_mid_step_is_retried_without_a_second_send(tmp_path: Path) -> None:
    """The results commit of the first batch fails after the sends: the intents are committed, so the
    next try reconciles them through the provider's status instead of sending again."""
    # the fake reports on the wall clock, as the worker runs (the engine believes no report before its dispatch)
    sms = FakeChannel("sms", ChannelKind.SMS, clock=SystemClock(), default=Outcome.delivered())
    store = FlakyStore(tmp_path / "s.sqlite3", fail_claims=(3, 4), fail_commits=(2,))

    async def scenario() -> Worker:
        async with AsyncDeliveryClient(store, plugins=[], load_entry_points=False) as submitter:
            await submitter.submit_many([make_request(make_party(), client_key=f"k{i}") for i in range(40)])
        config = WorkerConfig(
            worker_id="w-test",
            batch_size=16,
            idle_poll=0.02,
            backoff_initial=0.01,
            backoff_max=0.05,
            health_file=tmp_path / "health.json",
            health_every=0.0,
        )
        worker = Worker(store, plugins=[channels_plugin(sms)], config=config, load_entry_points=False, environ={})
        run = asyncio.ensure_future(worker.run())
        deadline = time.monotonic() + 20
        while store.count_by_state() != {"filed": 40}:
            assert time.monotonic() < deadline, store.count_by_state()
            assert not run.done(), run
            await asyncio.sleep(0.02)
        worker.stop()
        await asyncio.wait_for(run, 10)
        return worker

    worker = asyncio.run(scenario())
    keys = collections.Counter(sms.idempotency_keys)
    assert len(keys) == 40
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    assert (worker.errors, worker.consecutive_errors, worker.status) == (3, 0, "stopped")
    assert worker.tasks_processed >= 40
    report = json.loads((tmp_path / "health.json").read_text())
    assert report["status"] == "stopped"
    assert report["errors"] == 3
    assert report["state_counts"] == {"filed": 40}
    assert report["last_error"] == "StoreError: connection to server lost"  # first line only
    assert report["leases_held"] == 0


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _health(path: Path) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data


def _worker_env(journal: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
        DELIVERY_SDK_PLUGINS="none",  # only the test's providers (no installed channel plugins)
        PGW_JOURNAL_DIR=str(journal),
        PGW_SEED="7",
        PGW_LATENCY_MS="0",
    )
    return env


def test_the_worker_command_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite3"

    async def submit() -> None:
        party = make_party(eservice="acct-1", email="p1@example.cn", address=None)
        async with AsyncDeliveryClient(store_path, load_entry_points=False) as client:
            await client.submit_many([make_request(party, client_key=f"k{i}") for i in range(30)])

    asyncio.run(submit())
    health_file = tmp_path / "health.json"
    command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", str(store_path)]
    command += ["--plugin", "pg_provider:plugin", "--health-file", str(health_file), "--health-port", "0"]
    command += ["--health-every", "0.1", "--counts-every", "0.1", "--idle-poll", "0.05", "--worker-id", "w-cli"]
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(command, env=_worker_env(tmp_path / "journal"), stderr=log)
    try:
        _wait_for(lambda: _health(health_file).get("state_counts") == {"filed": 30}, 30, "30 filed tasks")
        port = _health(health_file)["health_port"]
        assert isinstance(port, int)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            live = json.loads(response.read())
        assert live["worker_id"] == "w-cli"
        assert live["status"] == "ok"
        assert live["tasks_processed"] >= 30
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)

        # A second worker on the same SQLite file is refused (one engine per file), with exit status 2.
        second = subprocess.run(
            [*command[:6], "--log-level", "ERROR"],
            env=_worker_env(tmp_path / "journal"),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert second.returncode == 2, second.stderr.decode()
        assert b"engine" in second.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = _health(health_file)
    assert report["status"] == "stopped"
    assert report["errors"] == 0
    log_text = (tmp_path / "worker.log").read_text()
    assert "stopped:" in log_text
    assert "13800138000" not in log_text  # no contact in the logs
    assert "example.cn" not in log_text
    sends = (tmp_path / "journal" / "sends.journal").read_text().splitlines()
    ids = [line.split("\t")[0] for line in sends]
    assert len(ids) == len(set(ids)) >= 30


def test_a_worker_without_a_store_says_how_to_give_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DELIVERY_SDK_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "delivery_sdk.cli", "worker"], env=env, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert b"--store" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "delivery_sdk.cli",
            "worker",
            "--store",
            str(tmp_path / "s.sqlite3"),
            "--plugin",
            "no_such_mod",
        ],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"cannot import plugin module 'no_such_mod'" in done.stderr


def test_store_descriptions_never_show_a_password() -> None:
    assert describe_store("postgresql://svc:s3cret@db.example:5432/delivery") == (
        "postgresql://svc:***@db.example:5432/delivery"
    )
    assert "s3cret" not in describe_store("host=db user=svc password=s3cret dbname=delivery")
    assert "s3cret" not in describe_store("postgresql://db/delivery?password=s3cret&sslmode=require")
    assert describe_store("/var/lib/delivery/store.sqlite3") == "/var/lib/delivery/store.sqlite3"


def test_lease_length_and_batch_size_reach_the_engine(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    worker = Worker(
        store,
        config=WorkerConfig(batch_size=7, lease=timedelta(seconds=9)),
        load_entry_points=False,
        environ={},
    )
    assert (worker.engine.config.batch_size, worker.engine.config.lease) == (7, timedelta(seconds=9))
    assert worker.health()["status"] == "starting"
    store.close()
