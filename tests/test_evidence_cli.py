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


def _copy(store: Path, tmp_path: Path, name: str = "copy.sqlite3") -> Path:
    copy = tmp_path / name
    copy.write_bytes(store.read_bytes())
    return copy


def test_verify_checks_the_columns_beside_the_signed_bodies(
    store: Path, keys: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed type, time, supervision column or task state moves stats and the dashboard: verify says where."""
    copy = _copy(store, tmp_path)
    with sqlite3.connect(copy) as db:
        served = db.execute("SELECT seq FROM events WHERE type = 'service.served' LIMIT 1").fetchone()[0]
        db.execute("UPDATE events SET sv_time = '2030-01-01T00:00:00+00:00' WHERE seq = ?", (served,))
        db.execute("UPDATE events SET type = 'task.cancelled' WHERE seq = 12")
        db.execute("UPDATE events SET at = '2030-01-01T00:00:00+00:00' WHERE seq = 13")
        task_id = db.execute("SELECT task_id FROM tasks ORDER BY task_id LIMIT 1").fetchone()[0]
        db.execute("UPDATE tasks SET state = 'cancelled' WHERE task_id = ?", (task_id,))
    assert main(["verify", str(copy), "--key", keys[1]]) == 1
    out = capsys.readouterr().out
    assert f"FAIL: event seq {served}: its supervision columns say" in out
    assert "FAIL: event seq 12: its type column says 'task.cancelled'" in out
    assert "FAIL: event seq 13: its at column says '2030-01-01T00:00:00+00:00'" in out
    assert f"FAIL: task {task_id}: its row says state 'cancelled', its events fold to 'filed'" in out


def test_verify_locates_a_body_that_is_not_utf8_instead_of_crashing(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(store, tmp_path)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE events SET body = CAST(X'7B22FFFE22' AS TEXT) WHERE seq = 9")
    assert main(["verify", str(copy)]) == 1
    assert "FAIL: event seq 9: its body is not valid UTF-8" in capsys.readouterr().out


def test_verify_counts_the_events_no_signed_checkpoint_covers(
    store: Path, keys: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(store, tmp_path)
    with sqlite3.connect(copy) as db:
        sizes = [r[0] for r in db.execute("SELECT size FROM evidence_checkpoints ORDER BY size DESC LIMIT 2")]
        db.execute("DELETE FROM evidence_checkpoints WHERE size = ?", (sizes[0],))
    assert main(["verify", str(copy), "--key", keys[1]]) == 0
    assert f"note: {sizes[0] - sizes[1]} events not covered by any signed checkpoint yet" in capsys.readouterr().out
    assert main(["verify", str(copy), "--key", keys[1], "--require-signed"]) == 1
    assert f"FAIL: {sizes[0] - sizes[1]} events not covered by any signed checkpoint" in capsys.readouterr().out
    assert main(["verify", str(store), "--key", keys[1], "--require-signed"]) == 0


def test_verify_follows_the_key_name_for_the_origin(
    store: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(store), "--key", keys[1], "--origin", "court.example/other"]) == 1
    assert "expected 'court.example/other'" in capsys.readouterr().out


def test_an_auditor_checks_a_later_checkpoint_against_the_one_kept(
    store: Path, keys: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store) as db:
        notes = [r[0] for r in db.execute("SELECT note FROM evidence_checkpoints ORDER BY size")]
    kept = tmp_path / "kept.note"
    kept.write_text(notes[1], encoding="utf-8")
    proof = tmp_path / "consistency.json"
    assert main(["proof", "--store", str(store), "--consistency", str(kept), "--out", str(proof)]) == 0
    bundle = json.loads(proof.read_text(encoding="utf-8"))
    assert bundle["new_checkpoint"] == notes[-1]
    args = ["verify-consistency", str(proof), "--trusted-checkpoint", str(kept), "--key", keys[1]]
    assert main(args) == 0
    assert "extends the trusted checkpoint" in capsys.readouterr().out
    # a tampered proof, or a proof from another starting point, fails
    bad = json.loads(json.dumps(bundle))
    bad["proof"]["path"][0] = bad["proof"]["path"][0][::-1]
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    assert main(["verify-consistency", str(tmp_path / "bad.json"), *args[2:]]) == 1
    assert "FAIL: " in capsys.readouterr().out
    # --to: between two given checkpoints; --update keeps the newer one
    newer = tmp_path / "newer.note"
    newer.write_text(notes[-2], encoding="utf-8")
    assert (
        main(["proof", "--store", str(store), "--consistency", str(kept), "--to", str(newer), "--out", str(proof)]) == 0
    )
    assert main([*args, "--update"]) == 0
    assert kept.read_text(encoding="utf-8") == notes[-2]
    # backwards, or a task and --consistency at once, is refused
    assert main(["proof", "--store", str(store), "--consistency", str(newer), "--to", str(tmp_path / "x")]) == 2
    old = tmp_path / "old.note"
    old.write_text(notes[0], encoding="utf-8")
    assert main(["proof", "--store", str(store), "--consistency", str(kept), "--to", str(old)]) == 1
    assert "larger than the new" in capsys.readouterr().err
    assert main(["proof", "T0000001", "--store", str(store), "--consistency", str(kept)]) == 2


def test_proof_consistency_refuses_a_store_that_no_longer_extends_the_checkpoint(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store) as db:
        note = db.execute("SELECT note FROM evidence_checkpoints ORDER BY size DESC LIMIT 1").fetchone()[0]
    kept = tmp_path / "kept.note"
    kept.write_text(note, encoding="utf-8")
    copy = _copy(store, tmp_path)
    with sqlite3.connect(copy) as db:  # the history rewritten: another leaf, and every node above it
        db.execute("UPDATE evidence_nodes SET hash = zeroblob(32) WHERE level > 0")
    assert main(["proof", "--store", str(copy), "--consistency", str(kept)]) == 1
    assert "rolled back or forked" in capsys.readouterr().err
