"""``delivery-sdk sandbox``: the plugins' emulators as local services, end to end with a worker.

The sandbox runs in a subprocess on fixed free ports with a state folder; a worker configured by the
variables the sandbox prints (and serving callbacks the sandbox pushes to) sends an SMS and an e-mail; both
show up in the sandbox's received list; the sandbox is stopped and started again and still has them.
Needs the SMS and e-mail plugins installed (requirements-dev.txt installs every plugin editable).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from delivery_sdk import AsyncDeliveryClient
from delivery_sdk.sandbox import check_loopback_url, discover, port_plan, shell_env
from delivery_sdk.testing import make_party, make_request

pytest.importorskip("delivery_sdk_sms.emulator")
pytest.importorskip("delivery_sdk_email.emulator")

CLI = [sys.executable, "-m", "delivery_sdk.cli"]


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000, 20)
        if all(_free(base + n) for n in range(8)):
            return base
    raise AssertionError("no free range of ports")


def _wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


@contextmanager
def _sandbox(args: list[str], log: IO[bytes]) -> Iterator[dict[str, str]]:
    """The sandbox in a subprocess; yields the variables it printed (``export NAME=VALUE``)."""
    proc = subprocess.Popen([*CLI, "sandbox", *args], stdout=subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    env: dict[str, str] = {}
    try:
        for raw in proc.stdout:
            line = raw.decode().strip()
            if line == "# ready":
                break
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                env[name] = shlex.split(value)[0] if value else ""
        else:
            raise AssertionError(f"the sandbox stopped before it was ready (status {proc.wait(10)})")
        yield env
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _submit(store: Path) -> None:
    async def go() -> None:
        async with AsyncDeliveryClient(store, load_entry_points=False) as client:
            await client.submit_many(
                [
                    make_request(make_party(address=None), client_key="by-sms"),
                    make_request(make_party(mobile=None, email="zs@example.cn", address=None), client_key="by-mail"),
                ]
            )

    asyncio.run(go())


def test_a_worker_against_the_sandbox_and_the_sandbox_restarted(tmp_path: Path) -> None:
    base, callbacks = _free_base(), _free_base()
    state = tmp_path / "sandbox"
    args = ["--base-port", str(base), "--state-dir", str(state), "--only", "sms", "--only", "email"]
    args += ["--callback-url", f"http://127.0.0.1:{callbacks}/callbacks"]
    store, health = tmp_path / "court.sqlite3", tmp_path / "health.json"
    _submit(store)
    with open(tmp_path / "sandbox.log", "wb") as log, _sandbox(args, log) as printed:
        assert printed["DELIVERY_SDK_SMS_URL"] == f"http://127.0.0.1:{base + 5}"
        assert printed["DELIVERY_SDK_EMAIL_PORT"] == str(base + 1)
        env = {**os.environ, **printed, "DELIVERY_SDK_PLUGINS": "sms,email"}
        with open(tmp_path / "worker.log", "wb") as worker_log:
            worker = subprocess.Popen(
                [
                    *CLI,
                    "worker",
                    "--store",
                    str(store),
                    "--callbacks-port",
                    str(callbacks),
                    "--idle-poll",
                    "0.05",
                    "--health-file",
                    str(health),
                    "--health-every",
                    "0.1",
                    "--counts-every",
                    "0.1",
                ],
                env=env,
                cwd=tmp_path,  # the e-mail plugin's sent log goes to the working folder
                stderr=worker_log,
            )
        try:

            def both_received() -> bool:
                got = _get_json(f"http://127.0.0.1:{base}/received.json")
                return any(r["method"] == "POST" for r in got["sms"]["received"]) and bool(got["email"]["received"])

            _wait_for(both_received, 30, "an SMS and an e-mail at the sandbox")
            # the SMS report pushed to the worker's receiver serves the task (no poll for five minutes)
            _wait_for(
                lambda: (
                    json.loads(health.read_text()).get("state_counts", {}).get("filed", 0) >= 1
                    if health.exists()
                    else False
                ),
                30,
                "the SMS task served",
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=15) == 0
        page = urllib.request.urlopen(f"http://127.0.0.1:{base}/", timeout=5).read().decode()
        assert "<h2>sms" in page
        assert "<h2>email" in page
        assert "138****8000" in page
        assert "13800138000" not in page
        sms = _get_json(f"http://127.0.0.1:{base + 5}/_sandbox/received")["received"]
        sent = [r for r in sms if r["method"] == "POST"]
        assert sent[0]["status"] == 200
        assert sent[0]["template_code"] == "SMS_SANDBOX"
        out_id = sent[0]["out_id"]
        mail = _get_json(f"http://127.0.0.1:{base}/received.json")["email"]["received"]
        assert mail[0]["to"] == "z***@example.cn"
        assert mail[0]["status"] == "250"

    # stopped: what it received is on disk, and the CLI lists it
    listed = subprocess.run([*CLI, "sandbox", *args, "--received"], capture_output=True, timeout=30, check=True).stdout
    assert out_id in json.loads(listed)["sms"]["received"][0]["out_id"]

    # started again on the same ports: the received list and the gateway's messages survived
    with open(tmp_path / "sandbox2.log", "wb") as log, _sandbox(args, log):
        again = _get_json(f"http://127.0.0.1:{base}/received.json")
        assert [r["seq"] for r in again["sms"]["received"]] == [r["seq"] for r in sms]
        assert again["email"]["received"] == mail
        held = _get_json(f"http://127.0.0.1:{base + 5}/_sandbox/state")["state"]["messages"]
        assert [m["out_id"] for m in held] == [out_id]
        assert held[0]["reports"][0]["status"] == "DELIVERED"


def test_env_and_discovery_without_starting(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "sandbox", "--base-port", "19000", "--only", "sms", "--env", "--state-dir", str(tmp_path)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert "export DELIVERY_SDK_SMS_URL=http://127.0.0.1:19005\n" in done.stdout.decode()
    assert not _free(19005) or not (tmp_path / "sms").exists()  # --env starts nothing
    names = set(discover())
    assert {"sms", "email"} <= names  # and every other installed plugin's (wechat, eservice, ems, printcentre)
    assert port_plan(["sms", "zz-other", "email"], 18000) == {"email": 18001, "sms": 18005, "zz-other": 18010}
    assert shell_env({"A": "x y", "B": "{token}"}) == "export A='x y'\nexport B='{token}'\n"
    bad = subprocess.run(
        [*CLI, "sandbox", "--only", "no-such-provider", "--env"], capture_output=True, timeout=30, check=False
    )
    assert bad.returncode == 2
    assert b"no-such-provider" in bad.stderr


def test_the_sandbox_pushes_only_to_this_machine() -> None:
    for url in ("http://127.0.0.1:8080/callbacks", "http://localhost:1/x", "http://[::1]:80/c"):
        assert check_loopback_url(url) == url
    for url in ("http://example.com/callbacks", "http://10.0.0.1/c", "ftp://127.0.0.1/"):
        with pytest.raises(ValueError, match=r"not an http URL|only to this machine"):
            check_loopback_url(url)


@pytest.mark.parametrize(
    "module", ["delivery_sdk_eservice.emulator", "delivery_sdk_ems.emulator", "delivery_sdk_sms.emulator"]
)
def test_an_emulator_module_runs_as_a_service(module: str, tmp_path: Path) -> None:
    """``python -m <plugin>.emulator --port N --state DIR``: the URL, the variables, SIGTERM ends it with 0."""
    pytest.importorskip(module)
    port = _free_base()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--state", str(tmp_path)],
        stdin=subprocess.DEVNULL,  # not a pipe: it serves until a signal, as under systemd
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}"
        assert f"=http://127.0.0.1:{port}" in proc.stdout.readline() + proc.stdout.readline()
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/nowhere", method="POST"), timeout=5)
    except urllib.error.HTTPError:
        pass  # the emulator's own answer to an unknown path
    finally:
        received = _get_json(f"http://127.0.0.1:{port}/_sandbox/received")["received"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        proc.stdout.close()
    assert [(r["method"], r["path"]) for r in received] == [("POST", "/nowhere")]
    assert (tmp_path / "received.jsonl").exists()
