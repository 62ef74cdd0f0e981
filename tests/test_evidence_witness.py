"""The engine never signs a fork: its witness (the last checkpoint signed, kept outside the store), the
origin rule, and the witness file's placement."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from delivery_sdk import AsyncDeliveryClient, EvidenceForkError, SQLiteStore, TaskState
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.evidence.verify import Checkpoint, parse_note
from delivery_sdk.evidence.witness import (
    WITNESS_ENV,
    default_witness_path,
    read_witness,
    resolve_witness,
    write_witness,
)
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

SIGNER = Signer.generate("court.example/witness")
NOW = datetime(2026, 11, 2, tzinfo=UTC)


def _run(path: Path, prefix: str, tasks: int = 2, *, origin: str | None = None) -> Harness:
    async def main() -> Harness:
        h = Harness(SQLiteStore(path))
        try:
            numbers = iter(range(1, 10**6))
            h.client._ids = lambda: f"{prefix}{next(numbers):04d}"
            h.client.engine.signers = (SIGNER,)
            if origin is not None:
                h.client.engine.origin = origin
            h.sms.default = Outcome.delivered()
            ids = [await h.client.submit(make_request(make_party(f"{prefix}P{i}"))) for i in range(tasks)]
            await h.client.run_until_idle()
            assert {h.client.status(t).state for t in ids} == {TaskState.FILED}
        finally:
            await h.aclose()
        return h

    return asyncio.run(main())


def _checkpoint(note: str) -> Checkpoint:
    return Checkpoint.parse(parse_note(note).text)


def _latest(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("SELECT note FROM evidence_checkpoints ORDER BY size DESC LIMIT 1").fetchone()[0])


def _restore(backup: Path, path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copy(backup, path)


def _backup(path: Path, to: Path) -> Path:
    with closing(sqlite3.connect(path)) as src, closing(sqlite3.connect(to)) as dst:
        src.backup(dst)
    return to


def test_the_engine_keeps_the_last_checkpoint_it_signed_beside_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, "A")
    witness = Path(str(path) + ".checkpoint")
    assert witness.read_text(encoding="utf-8") == _latest(path)
    _run(path, "B")  # the log grew and extends the witness: signing goes on, the witness moves on
    assert witness.read_text(encoding="utf-8") == _latest(path)
    assert _checkpoint(_latest(path)).size > 10


def test_a_rolled_back_database_stops_the_engine_before_it_signs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, "A")
    backup = _backup(path, tmp_path / "backup.sqlite3")
    _run(path, "B")
    kept = Path(str(path) + ".checkpoint").read_text(encoding="utf-8")
    _restore(backup, path)
    with pytest.raises(EvidenceForkError, match="rolled back") as raised:
        _run(path, "C", tasks=1)
    assert raised.value.witness == str(path) + ".checkpoint"
    assert "evidence checkpoints stopped" in caplog.text
    # nothing was signed over the fork, and the witness still holds what was signed before
    assert _checkpoint(_latest(path)).size < _checkpoint(kept).size
    assert Path(str(path) + ".checkpoint").read_text(encoding="utf-8") == kept


def test_a_rewritten_database_of_the_same_size_is_a_fork(tmp_path: Path) -> None:
    """Restored from a backup and then grown past the witness's size with other events: same size or more,
    another root; the engine sees it from the stored tree at the witness's size."""
    path = tmp_path / "s.sqlite3"
    _run(path, "A")
    backup = _backup(path, tmp_path / "backup.sqlite3")
    _run(path, "B", tasks=1)
    _restore(backup, path)
    with pytest.raises(EvidenceForkError, match="is not the last checkpoint this engine signed"):
        _run(path, "C", tasks=3)


def test_the_store_refuses_to_sign_what_does_not_extend_its_own_latest_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, "A")
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE evidence_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 1")
        db.commit()
    store = SQLiteStore(path)
    try:
        with pytest.raises(EvidenceForkError, match="the store's latest checkpoint"):
            store.checkpoint(SIGNER.name, [SIGNER], NOW)
    finally:
        store.close()


def test_a_renamed_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, "A")
    with pytest.raises(EvidenceForkError, match="a log keeps its name"):
        _run(path, "B", origin="court.example/another-name")


def test_the_origin_defaults_to_the_key_name_and_an_explicit_one_wins(tmp_path: Path) -> None:
    _run(tmp_path / "a.sqlite3", "A")
    assert _checkpoint(_latest(tmp_path / "a.sqlite3")).origin == SIGNER.name
    _run(tmp_path / "b.sqlite3", "A", origin="court.example/explicit")
    assert _checkpoint(_latest(tmp_path / "b.sqlite3")).origin == "court.example/explicit"


def test_witness_placement() -> None:
    memory = SQLiteStore(":memory:")
    try:
        assert default_witness_path(memory) is None
        assert resolve_witness(None, memory, {}) is None
        assert resolve_witness("/x/w.note", memory, {}) == Path("/x/w.note")
        assert resolve_witness(None, memory, {WITNESS_ENV: "/y/w.note"}) == Path("/y/w.note")
        with pytest.raises(ValueError, match="give its path"):
            resolve_witness(True, memory, {})
    finally:
        memory.close()


def test_witness_on_a_file_store_env_and_opt_out(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    try:
        assert resolve_witness(None, store, {}) == Path(str(tmp_path / "s.sqlite3") + ".checkpoint")
        assert resolve_witness(None, store, {WITNESS_ENV: "off"}) is None
        assert resolve_witness(False, store, {}) is None
    finally:
        store.close()


def test_a_witness_that_cannot_be_read_stops_signing(tmp_path: Path) -> None:
    witness = tmp_path / "w.note"
    assert read_witness(witness) is None
    witness.write_text("not a note", encoding="utf-8")
    with pytest.raises(EvidenceForkError, match="not a signed checkpoint"):
        read_witness(witness)
    write_witness(witness, "x\n")
    assert witness.read_text(encoding="utf-8") == "x\n"
    assert [p.name for p in tmp_path.iterdir()] == ["w.note"]  # no temporary file left behind


def test_a_worker_stops_on_a_fork_instead_of_retrying(tmp_path: Path) -> None:
    from delivery_sdk.channels import ChannelKind
    from delivery_sdk.clock import SystemClock
    from delivery_sdk.testing import FakeChannel, channels_plugin
    from delivery_sdk.worker import Worker, WorkerConfig

    path = tmp_path / "s.sqlite3"
    _run(path, "A")
    backup = _backup(path, tmp_path / "backup.sqlite3")
    _run(path, "B")
    _restore(backup, path)

    async def scenario() -> None:
        store = SQLiteStore(path)
        sms = FakeChannel("sms", ChannelKind.SMS, clock=SystemClock(), default=Outcome.delivered())
        async with AsyncDeliveryClient(store, plugins=[], load_entry_points=False, environ={}) as submitter:
            await submitter.submit(make_request(make_party("W1")))
        config = WorkerConfig(worker_id="w", idle_poll=0.01, backoff_initial=0.01, backoff_max=0.02)
        worker = Worker(
            store,
            plugins=[channels_plugin(sms)],
            config=config,
            load_entry_points=False,
            environ={"DELIVERY_SDK_EVIDENCE_KEY": SIGNER.skey()},
        )
        with pytest.raises(EvidenceForkError):
            await asyncio.wait_for(worker.run(), 20)
        assert worker.status == "stopped"

    asyncio.run(scenario())
