"""The integration walkthrough of issue 23, as a vendor runs it, with no workaround: three processes on the
documented settings file.

- ``delivery-sdk sandbox`` (a subprocess): the emulators of six real plugins (e-service platform, SMS,
  WeChat, e-mail, EMS, the print centre), pushing to the receiver; ``--time-scale`` makes the print centre's
  and the carrier's hours seconds;
- ``delivery-sdk receiver --config settings.toml`` (a subprocess): the callback receiver under uvicorn,
  apart from the engine;
- ``delivery-sdk worker --config settings.toml`` (a subprocess): the engine.

The settings file is the annotated one of docs/deploy.md ("The settings file"), taken from the page: its
``[env]`` values pointed at the sandbox (same names; the secrets written to files and given by the page's
own references, ``{ file = ... }`` or ``{ env = ... }``), the store and the key file in a temporary folder,
the status polls in seconds. Five parties are served: by the e-service platform, SMS, WeChat and e-mail
(served by the providers' pushes through the receiver), and one reachable only by post, which waits for a
phone the carrier needs, gets one from a clerk (``set_contact``), and is printed, mailed and signed for
(EMS + the print centre). Everything on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from delivery_sdk import AsyncDeliveryClient, DeliveryClient
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.model import (
    Case,
    Contact,
    ContactKind,
    Document,
    DocumentKind,
    ServiceMethod,
    ServiceRequest,
)
from delivery_sdk.settings import is_secret_name
from delivery_sdk.testing import make_party

PLUGINS = ("eservice", "sms", "wechat", "email", "ems", "printcentre")
for _plugin in PLUGINS:
    pytest.importorskip(f"delivery_sdk_{_plugin}.emulator")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "delivery_sdk.cli"]
TIME_SCALE = 3600  # the print centre's and the carrier's hours are seconds
POLL_OFFSETS = [1, 2]  # seconds after a send (the last repeats)


# -- processes (as tests/test_sandbox.py) --------------------------------------------------------------


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base(span: int = 8, avoid: range = range(0)) -> int:
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000, 20)
        if all(_free(base + n) for n in range(span)) and not set(range(base, base + span)) & set(avoid):
            return base
    raise AssertionError("no free range of ports")


def _wait_for(predicate: Callable[[], bool], seconds: float, what: str, *, logs: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}")


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


@contextmanager
def _process(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A ``delivery-sdk`` command in a subprocess; at the end, SIGTERM and exit 0 expected."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([*CLI, *argv], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
        assert proc.poll() is None, f"{argv[0]} exited early ({proc.returncode}):\n{log.read_text()}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, f"{argv[0]}:\n{log.read_text()}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- the documented settings file, pointed at the sandbox ----------------------------------------------


def documented_settings() -> dict[str, Any]:
    """The annotated settings file of docs/deploy.md (the ```toml block that starts with its path)."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"^```toml\n(.*?)^```", text, flags=re.M | re.S) if "settings.toml" in b]
    return tomllib.loads(block)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def write_settings(
    tmp: Path, sandbox: dict[str, str], store: Path, key_file: Path
) -> tuple[Path, dict[str, str], dict[str, Any]]:
    """The documented file with the sandbox's values: returns the file, the variables its ``{ env = ... }``
    references need in the processes' environment, and the settings as written."""
    data = documented_settings()
    secrets = tmp / "secrets"
    secrets.mkdir()
    referenced: dict[str, str] = {}
    env: dict[str, Any] = {}
    for name, documented in data["env"].items():
        value = sandbox.get(name)
        if value is None:  # not a provider setting (a shared sent log): the documented path, in our folder
            assert isinstance(documented, str)
            env[name] = str(tmp / "var" / Path(documented).name) if documented.startswith("/") else documented
            continue
        if isinstance(documented, dict):  # a secret, by the documented kind of reference
            assert is_secret_name(name), name
            if "file" in documented:
                file = secrets / Path(documented["file"]).name
                file.write_text(value + "\n", encoding="utf-8")
                env[name] = {"file": str(file)}
            else:
                referenced[documented["env"]] = value
                env[name] = documented
        else:
            assert not is_secret_name(name), f"{name} is inline in docs/deploy.md"
            env[name] = int(value) if isinstance(documented, int) else value
    (tmp / "var").mkdir()
    data["env"] = env
    data["store"] = {"path": str(store)}
    data["evidence"]["key_file"] = str(key_file)
    data["policy"]["poll_offsets"] = POLL_OFFSETS
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path = tmp / "settings.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, referenced, data


# -- the walkthrough -----------------------------------------------------------------------------------


def _summons_pdf() -> bytes:
    import io

    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, invariant=True)
    canvas.drawString(72, 720, "SUMMONS (2026)鄂0106民初1号")
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _requests(summons: Document) -> dict[str, ServiceRequest]:
    case = Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号")

    def request(key: str, **contacts: Any) -> ServiceRequest:
        party = make_party(f"P-{key}", **{"mobile": None, "address": None, **contacts})
        return ServiceRequest(case=case, party=party, documents=(summons,), client_key=key)

    return {
        "eservice": request("eservice", eservice="ssfw-account-0001"),
        "sms": request("sms", mobile="13800138000"),
        "wechat": request("wechat", wechat="oWX-openid-0001"),
        "email": request("email", email="zs@example.cn"),
        # reachable only by post, and no consent to electronic service
        "post": request("post", address="湖北省武汉市武昌区中北路1号", division_code="420106", consent=False),
    }


def test_the_walkthrough_five_real_plugins_a_receiver_and_a_worker_from_the_documented_settings(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    base = _free_base()
    callbacks = _free_base(1, avoid=range(base, base + 20))
    state, store, health = tmp_path / "sandbox", tmp_path / "service.sqlite3", tmp_path / "worker.json"
    origin = documented_settings()["evidence"]["origin"]
    key_file = tmp_path / "evidence.key"
    key_file.write_text(Signer.generate(origin).skey() + "\n", encoding="utf-8")
    sandbox_args = ["--base-port", str(base), "--state-dir", str(state), "--time-scale", str(TIME_SCALE)]
    sandbox_args += ["--callback-url", f"http://127.0.0.1:{callbacks}/callbacks"]
    for name in PLUGINS:
        sandbox_args += ["--only", name]
    receiver_log, worker_log = tmp_path / "receiver.log", tmp_path / "worker.log"

    def logs() -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in (receiver_log, worker_log, tmp_path / "sandbox.log", health)
            if p.exists()
        )

    with ExitStack() as stack:
        sandbox_log = stack.enter_context(open(tmp_path / "sandbox.log", "wb"))
        printed = stack.enter_context(_sandbox(sandbox_args, sandbox_log))
        # the documented settings file names every variable the sandbox gives these plugins
        documented = set(documented_settings()["env"])
        assert set(printed) <= documented, f"not in docs/deploy.md's settings file: {sorted(set(printed) - documented)}"
        config, referenced, settings = write_settings(tmp_path, printed, store, key_file)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_SDK_")}
        env.update(referenced)  # the secret store's variables ({ env = ... } references)

        # the configuration as the worker will load it
        checked = subprocess.run(
            [*CLI, "check-config", "--config", str(config)], env=env, cwd=tmp_path, capture_output=True, timeout=60
        )
        out = checked.stdout.decode()
        assert checked.returncode == 0, out + checked.stderr.decode()
        for kind, name in (("eservice", "eservice"), ("sms", "sms"), ("wechat", "wechat"), ("email", "email")):
            assert re.search(rf"^  {kind}\s+{name}$", out, flags=re.M), out
        assert "carriers      ems" in out
        assert "print centres 1" in out
        assert f"signer        {origin}" in out

        # the documents the court serves, where the print centre's renderer finds them (by digest)
        pdf = _summons_pdf()
        documents = Path(settings["env"]["DELIVERY_SDK_PRINTCENTRE_DOCUMENTS"])
        digest = hashlib.sha256(pdf).hexdigest()
        (documents / f"{digest}.pdf").write_bytes(pdf)
        summons = Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=digest)
        requests = _requests(summons)

        # the receiver, then the worker, each its own process on the same settings file
        stack.enter_context(
            _process(["receiver", "--config", str(config), "--port", str(callbacks)], env, tmp_path, receiver_log)
        )
        _wait_for(lambda: not _free(callbacks), 20, "the receiver to listen", logs=logs)

        async def submit() -> dict[str, str]:
            async with AsyncDeliveryClient(store, load_entry_points=False) as client:
                return {key: await client.submit(request) for key, request in requests.items()}

        tasks = asyncio.run(submit())
        stack.enter_context(
            _process(
                [
                    "worker",
                    "--config",
                    str(config),
                    "--idle-poll",
                    "0.1",
                    "--health-file",
                    str(health),
                    "--health-every",
                    "0.2",
                    "--counts-every",
                    "0.2",
                ],
                env,
                tmp_path,
                worker_log,
            )
        )

        def counts() -> dict[str, int]:
            if not health.exists():
                return {}
            report = json.loads(health.read_text())
            assert report["status"] in ("starting", "ok"), report
            return dict(report.get("state_counts", {}))

        def state_of(key: str) -> str:
            with DeliveryClient(store, load_entry_points=False) as client:
                return client.status(tasks[key]).state.value

        def timelines() -> str:
            with DeliveryClient(store, load_entry_points=False) as client:
                return "\n".join(
                    f"{key}: {[e.event.TYPE for e in client.timeline(task)]}" for key, task in tasks.items()
                )

        def everything() -> str:
            return logs() + "\n" + timelines()

        # the four electronic services are served by the providers' pushes to the receiver
        _wait_for(lambda: counts().get("filed", 0) >= 4, 25, "four tasks filed", logs=everything)
        # the postal-only party: the carrier needs a phone for the waybill; the task waits for a person
        _wait_for(
            lambda: state_of("post") == "needs_attention", 10, "the postal task to ask for a phone", logs=everything
        )
        with DeliveryClient(store, load_entry_points=False) as clerk:
            assert "receiver_phone" in (clerk.status(tasks["post"]).attention_reason or "")
            clerk.set_contact(tasks["post"], Contact(kind=ContactKind.MOBILE, value="13912345678"), actor="clerk-07")
        _wait_for(
            lambda: state_of("post") == "filed", 25, "the postal task printed, mailed and signed for", logs=everything
        )
        assert json.loads(health.read_text())["callbacks_port"] is None  # the worker served no callback itself

    # all three stopped with exit 0 (checked as they left); now the record, read from the store
    with DeliveryClient(store, load_entry_points=False) as client:
        for key, channel in (("eservice", "eservice"), ("sms", "sms"), ("wechat", "wechat"), ("email", "email")):
            status = client.status(tasks[key])
            assert status.state.value == "filed", (key, status)
            assert status.method is ServiceMethod.ELECTRONIC, (key, status)
            assert [d.channel for d in status.dispatches] == [channel], (key, status.dispatches)
        post = client.status(tasks["post"])
        assert post.method is ServiceMethod.POSTAL
        assert post.centre_id is not None
        types = [e.event.TYPE for e in client.timeline(tasks["post"])]
        for step in ("contact.updated", "print.routed", "print.printed", "post.mailed", "post.signed"):
            assert step in types, types
        assert types[-2:] == ["service.served", "service.filed"]

    # the providers pushed to the receiver process, which answered 200 (its access log)
    answered = re.findall(r"delivery_sdk\.receiver\.access: POST /callbacks/([\w-]+) (\d{3})", receiver_log.read_text())
    pushed = {channel for channel, code in answered if code == "200"}
    assert {"eservice", "sms", "wechat", "email", "ems", "PC-420100"} <= pushed, answered
    assert all(code == "200" for _, code in answered), answered
    assert "oWX-openid-0001" not in receiver_log.read_text()  # WeChat's query names the account: not logged
    # every provider received what it was sent (the sandbox's record, read from its state folder)
    received = json.loads(
        subprocess.run(
            [*CLI, "sandbox", *sandbox_args, "--received"], capture_output=True, timeout=30, check=True
        ).stdout
    )
    assert all(received[name]["received"] for name in PLUGINS), {n: len(r["received"]) for n, r in received.items()}
    assert time.monotonic() - started < 60


def test_the_receiver_refuses_a_configuration_problem_as_the_worker_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from delivery_sdk.cli import main

    for name in list(os.environ):
        if name.startswith("DELIVERY_SDK_"):
            monkeypatch.delenv(name)
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "service.sqlite3"}"\n[env]\nDELIVERY_SDK_SMS_URL = "https://sms.example"\n',
        encoding="utf-8",
    )
    assert main(["receiver", "--config", str(config), "--port", "0"]) == 2
    assert "configuration: sms: DELIVERY_SDK_SMS_ACCESS_KEY_ID is required" in caplog.text
    caplog.clear()
    assert main(["receiver", "--port", "0"]) == 2
    assert "no store" in caplog.text
