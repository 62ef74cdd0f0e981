"""The worker's health when a plugin keeps failing, its start-up checks, and SIGTERM in a failing state
(issue 23: "the worker's health turns unhealthy when a plugin keeps failing, and SIGTERM always exits
cleanly"; a print centre with missing settings used to start, then fail each route with a bare ValueError
whose message never reached the log)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from delivery_sdk import AsyncDeliveryClient, ChannelKind, MockChannel, SendResult
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import channels_plugin, make_party, make_request
from delivery_sdk.worker import Worker, WorkerConfig

TESTS = Path(__file__).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_SDK_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env["DELIVERY_SDK_PLUGINS"] = "none"
    env.update(extra)
    return env


def _health(path: Path) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data


def _submit(store_path: Path, n: int) -> None:
    async def submit() -> None:
        party = make_party(address=None)  # a mobile number only: the SMS channel
        async with AsyncDeliveryClient(store_path, load_entry_points=False, environ={}) as client:
            await client.submit_many([make_request(party, client_key=f"k{i}") for i in range(n)])

    asyncio.run(submit())


def test_health_turns_failing_while_a_channel_keeps_failing_and_ok_once_it_recovers(tmp_path: Path) -> None:
    broken = {"on": True}

    def send(dispatch: object) -> SendResult:
        if broken["on"]:
            raise RuntimeError("gateway down")
        return SendResult(accepted=True, provider_ref="p")

    sms = MockChannel(send, name="court-sms", kind=ChannelKind.SMS)
    store_path = tmp_path / "s.sqlite3"
    _submit(store_path, 4)
    store = SQLiteStore(store_path)
    worker = Worker(
        store,
        plugins=[channels_plugin(sms)],
        config=WorkerConfig(failing_after=3, idle_poll=0.01, health_every=0.01, counts_every=0),
        load_entry_points=False,
        environ={},
    )

    async def scenario() -> tuple[dict[str, object], dict[str, object]]:
        worker.load()
        run = asyncio.create_task(worker.run())
        for _ in range(500):
            await asyncio.sleep(0.01)
            if worker.status == "failing":
                break
        failing = worker.health()
        assert not worker.healthy
        broken["on"] = False
        worker.engine.failing.clear()  # the retry is 10 minutes away: the next success clears it as well
        await asyncio.sleep(0.1)
        recovered = worker.health()
        worker.stop()
        await run
        return failing, recovered

    failing, recovered = asyncio.run(scenario())
    assert failing["status"] == "failing"
    entry = failing["failing"]["channel court-sms"]  # type: ignore[index]
    assert entry["last_error"] == "RuntimeError"
    assert entry["failures"] >= 4  # each send failed (and each reconciling status call after it)
    assert recovered["status"] == "ok"
    assert recovered["failing"] == {}


def test_a_misconfigured_print_centre_stops_the_worker_at_start_naming_each_variable(tmp_path: Path) -> None:
    """It used to start, then fail each route with a bare ValueError whose message never reached the log."""
    centres = tmp_path / "centres.toml"
    centres.write_text(
        '[[centre]]\nid = "PC-420100"\nname = "武汉"\nroute_keys = ["420100"]\nendpoint = "http://127.0.0.1:9/api"\n',
        encoding="utf-8",
    )
    env = _env(DELIVERY_SDK_PLUGINS="printcentre", DELIVERY_SDK_PRINTCENTRE_CENTRES=str(centres))
    command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", str(tmp_path / "s.sqlite3")]
    done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    for variable in ("TOKEN", "SPOOL", "DOCUMENTS"):
        assert f"DELIVERY_SDK_PRINTCENTRE_{variable} is required" in err
    assert "Traceback" not in err
    assert "ValueError" not in err


def test_sigterm_while_failing_exits_cleanly(tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite3"
    _submit(store_path, 8)
    health_file = tmp_path / "health.json"
    command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", str(store_path)]
    command += ["--plugin", "worker_plugins:failing", "--health-file", str(health_file)]
    command += ["--health-every", "0.05", "--counts-every", "0", "--idle-poll", "0.05"]
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(command, env=_env(), stderr=log)
    try:
        deadline = time.monotonic() + 60
        while _health(health_file).get("status") != "failing":
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.05)
        report = _health(health_file)
        [(name, entry)] = report["failing"].items()  # type: ignore[attr-defined]
        assert name == "channel broken-sms"
        assert entry["last_error"] == "RuntimeError"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in text
    assert "failing: channel broken-sms (RuntimeError, " in text
    assert "stopped:" in text
    assert _health(health_file)["status"] == "stopped"


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_before_any_work_exits_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    command = [sys.executable, "-m", "delivery_sdk.cli", "worker", "--store", str(tmp_path / "s.sqlite3")]
    command += ["--health-file", str(tmp_path / "h.json"), "--health-every", "0.05", "--idle-poll", "0.05"]
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(command, env=_env(), stderr=log)
    try:
        deadline = time.monotonic() + 60
        while _health(tmp_path / "h.json").get("status") != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
