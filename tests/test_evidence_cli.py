"""``delivery-sdk keygen``, ``verify`` and ``proof`` on a store the demo wrote."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from delivery_sdk.cli import main
from delivery_sdk.evidence.audit import verify_bundle


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    from delivery_sdk.evidence.keys import generate_key

    return generate_key("court.example/demo")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, keys: tuple[str, str]) -> Path:
    path = tmp_path_factory.mktemp("cli") / "demo.sqlite3"
    mp = pytest.MonkeyPatch()
    mp.setenv("DELIVERY_SDK_EVIDENCE_KEY", keys[0])
    try:
        assert main(["demo", "--tasks", "60", "--seed", "3", "--store", str(path), "--no-progress"]) == 0
    finally:
        mp.undo()
    return path


def test_keygen_prints_a_signer_and_a_verifier_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "court.example/demo"]) == 0
    out = capsys.readouterr().out
    assert "PRIVATE+KEY+court.example/demo+" in out
    assert "\ncourt.example/demo+" in out


def test_verify_passes_on_an_untouched_store(
    store: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(store), "--key", keys[1]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ")
    assert "signatures checked" in out


def test_verify_names_the_changed_event_and_fails(
    store: Path, keys: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "tampered.sqlite3"
    copy.write_bytes(store.read_bytes())
    with sqlite3.connect(copy) as db:
        body = db.execute("SELECT body FROM events WHERE seq = 10").fetchone()[0]
        db.execute("UPDATE events SET body = ? WHERE seq = 10", (body.replace('"at":"2', '"at":"1', 1),))
    assert main(["verify", str(copy), "--key", keys[1]]) == 1
    assert "FAIL: event seq 10 " in capsys.readouterr().out


def test_verify_with_a_trusted_checkpoint(store: Path, keys: tuple[str, str], tmp_path: Path) -> None:
    with sqlite3.connect(store) as db:
        note = db.execute("SELECT note FROM evidence_checkpoints ORDER BY size LIMIT 1").fetchone()[0]
    trusted = tmp_path / "trusted.note"
    trusted.write_text(note, encoding="utf-8")
    assert main(["verify", str(store), "--key", keys[1], "--trusted-checkpoint", str(trusted)]) == 0


def test_proof_bundle_for_a_task_verifies_offline(
    store: Path, keys: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store) as db:
        task_id = db.execute("SELECT task_id FROM tasks ORDER BY task_id LIMIT 1").fetchone()[0]
    out = tmp_path / "bundle.json"
    assert main(["proof", task_id, "--store", str(store), "--out", str(out)]) == 0
    bundle = json.loads(out.read_text(encoding="utf-8"))
    assert verify_bundle(bundle, [keys[1]]) == len(bundle["events"]) > 3
    assert main(["proof", "T-none", "--store", str(store)]) == 1
    assert "no task" in capsys.readouterr().err
