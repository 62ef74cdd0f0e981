"""``delivery-sdk worker --callbacks-port``: the worker serves the callback receiver itself (one process on SQLite).

The SMS gateway emulator delivers every message at once and pushes the signed report to the worker's port;
the status-poll schedule stays at its default (the first poll five minutes after a send), so a task served
within seconds was served by the pushed report, not by a poll. ``--poll-after`` is checked the same way with
no callbacks at all. Needs the SMS plugin installed (``pip install -e plugins/delivery-sdk-sms``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from delivery_sdk import AsyncDeliveryClient
from delivery_sdk.policy import PolicyConfig
from delivery_sdk.testing import make_party, make_request
from delivery_sdk.worker import parse_poll_after

SmsGatewayEmulator = pytest.importorskip("delivery_sdk_sms.emulator").SmsGatewayEmulator


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _health(path: Path) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data


def _done(report: dict[str, object], count: int) -> bool:
    """Every task served (and its proof of service filed, the state a served task ends in)."""
    counts = report.get("state_counts")
    return isinstance(counts, dict) and set(counts) <= {"served", "filed"} and sum(counts.values()) == count


def _submit(store: Path, count: int) -> None:
    async def go() -> None:
        party = make_party(address=None)  # a mobile number only: SMS is the one way to serve it
        async with AsyncDeliveryClient(store, load_entry_points=False) as client:
            await client.submit_many([make_request(party, client_key=f"k{i}") for i in range(count)])

    asyncio.run(go())


def _env(gateway: object) -> dict[str, str]:
    env = dict(os.environ)
    env.update(gateway.sandbox_env())  # type: ignore[attr-defined]
    env["DELIVERY_SDK_PLUGINS"] = "sms"
    for name in ("DELIVERY_SDK_POLL_AFTER", "DELIVERY_SDK_CALLBACKS_PORT", "DELIVERY_SDK_CALLBACKS_HOST"):
        env.pop(name, None)
    return env


def _run_worker(tmp_path: Path, env: dict[str, str], extra: list[str], count: int) -> dict[str, object]:
    store, health = tmp_path / "s.sqlite3", tmp_path / "health.json"
    command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", str(store), "--health-file", str(health)]
    command += ["--health-every", "0.1", "--counts-every", "0.1", "--idle-poll", "0.05", *extra]
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stderr=log)
    try:
        _wait_for(
            lambda: _done(_health(health), count) or proc.poll() is not None,
            30,
            f"{count} served tasks",
        )
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()
        report = _health(health)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return report


def test_an_sms_report_pushed_to_the_worker_serves_the_task_without_a_poll(tmp_path: Path) -> None:
    port = _free_port()
    _submit(tmp_path / "s.sqlite3", 3)
    with SmsGatewayEmulator(callback_url=f"http://127.0.0.1:{port}/callbacks/sms", auto_deliver=True) as gateway:
        started = time.monotonic()
        report = _run_worker(tmp_path, _env(gateway), ["--callbacks-port", str(port)], 3)
        elapsed = time.monotonic() - started
        gateway.wait_pushes()
        assert gateway.pushes == [200, 200, 200]  # each report recorded by the worker's receiver
        assert gateway.queries == []  # never polled: the first poll is five minutes after a send
    assert elapsed < 60
    assert report["callbacks_port"] == port
    log = (tmp_path / "worker.log").read_text()
    assert f"callbacks at http://127.0.0.1:{port}/callbacks/{{channel}}" in log
    assert "13800138000" not in log


def test_the_poll_schedule_comes_from_the_command_line(tmp_path: Path) -> None:
    """No callbacks: ``--poll-after 0.5`` polls the gateway half a second after each send."""
    _submit(tmp_path / "s.sqlite3", 2)
    with SmsGatewayEmulator(auto_deliver=True) as gateway:
        _run_worker(tmp_path, _env(gateway), ["--poll-after", "0.5,1"], 2)
        assert gateway.queries  # served by a status poll
        assert gateway.pushes == []


def test_a_taken_callbacks_port_ends_the_worker_with_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", str(tmp_path / "s.sqlite3")]
        done = subprocess.run(
            [*command, "--callbacks-port", str(port)],
            env={**os.environ, "DELIVERY_SDK_PLUGINS": "none"},
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 2, done.stderr.decode()
    assert b"cannot serve callbacks" in done.stderr


def test_poll_after_parses_and_the_policy_checks_its_schedule() -> None:
    assert parse_poll_after("300") == (timedelta(minutes=5),)
    assert parse_poll_after("60, 600,3600") == (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1))
    for bad in ("", "x", "0", "-5", "600,60", "nan", "inf"):
        with pytest.raises(ValueError, match=r"seconds|increase"):
            parse_poll_after(bad)
    assert PolicyConfig(poll_offsets=(timedelta(seconds=30),)).poll_offsets == (timedelta(seconds=30),)
    with pytest.raises(ValueError, match="increase"):
        PolicyConfig(poll_offsets=(timedelta(hours=1), timedelta(minutes=1)))
    with pytest.raises(ValueError, match="positive"):
        PolicyConfig(poll_offsets=())
