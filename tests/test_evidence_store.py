"""The evidence log inside the SQLite store: leaves with the events, checkpoints, audits, tampering, bundles."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from delivery_sdk import SQLiteStore, TaskState
from delivery_sdk.evidence.audit import export_bundle, verify_bundle, verify_store
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.evidence.merkle import CompactRange
from delivery_sdk.evidence.verify import VerificationError, leaf_hash
from delivery_sdk.testing import Harness, Outcome, RecordingSink, make_party, make_request

SIGNER = Signer.generate("court.example/delivery")
OTHER = Signer.generate("court.example/delivery")  # same name, another key: an impostor


def _run(
    path: Path, *, tasks: int = 6, evidence: bool = True, signers: tuple[Signer, ...] = (SIGNER,), prefix: str = "T"
) -> list[str]:
    async def main() -> list[str]:
        store = SQLiteStore(path, evidence=evidence)
        h = Harness(store)
        numbers = iter(range(1, 10**6))
        h.client._ids = lambda: f"{prefix}{next(numbers):04d}"
        h.client.engine.signers = signers
        h.client.engine.origin = "court.example/delivery"
        for channel in h.channels:
            channel.default = Outcome.delivered()
        h.eservice.default = Outcome.failed("no account")
        h.carrier.default = Outcome.signed()
        ids = [
            await h.client.submit(make_request(make_party(f"{prefix}P{i}", consent=i % 3 != 0, eservice="acct")))
            for i in range(tasks)
        ]
        await h.client.run_until_idle()
        assert {h.client.status(t).state for t in ids} == {TaskState.FILED}
        await h.aclose()
        return ids

    return asyncio.run(main())


@pytest.fixture(scope="module")
def signed_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("evidence") / "store.sqlite3"
    return path, _run(path)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def test_every_event_is_a_leaf_and_the_idle_engine_signed_a_checkpoint(signed_store: tuple[Path, list[str]]) -> None:
    path, _ = signed_store
    report = verify_store(path, [SIGNER.vkey], origin="court.example/delivery")
    assert report.ok, report.problems
    with sqlite3.connect(path) as db:
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        leaves = db.execute("SELECT COUNT(*) FROM evidence_nodes WHERE level = 0").fetchone()[0]
        sizes = [r[0] for r in db.execute("SELECT size FROM evidence_checkpoints")]
    assert report.events == events == leaves
    assert sizes[-1] == events  # the last checkpoint covers everything


def test_reopening_continues_the_same_tree(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, tasks=3)
    store = SQLiteStore(path)
    assert store.evidence is not None
    before = store.evidence.size
    assert store.evidence.root() == store.evidence.root(before)
    store.close()
    _run(path, tasks=3, prefix="U")  # the second client reopens the file, appends, signs again
    report = verify_store(path, [SIGNER.vkey])
    assert report.ok, report.problems
    assert report.events > before
    assert report.checkpoints >= 2  # at least one per run (the engine also signs every minute of virtual time)


def test_a_store_written_without_evidence_is_backfilled_when_it_is_turned_on(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, tasks=3, evidence=False, signers=())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM evidence_nodes").fetchone()[0] == 0
    SQLiteStore(path).close()
    report = verify_store(path)
    assert report.ok, report.problems
    assert report.events > 0


def test_checkpoints_go_to_evidence_sinks() -> None:
    async def main() -> None:
        sink = RecordingSink()
        notes: list[str] = []

        class Anchor:
            from delivery_sdk import hookimpl

            @hookimpl
            def delivery_record_evidence(self, batch):  # type: ignore[no-untyped-def]
                if batch.checkpoint:
                    notes.append(batch.checkpoint)

        h = Harness(extra_plugins=[sink, Anchor()])
        h.client.engine.signers = (SIGNER,)
        h.sms.enqueue(Outcome.delivered())
        await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        # one before filing (so the proof of service carries its proofs), one at idle covering the filing
        assert len(notes) == 2
        assert all(n.startswith(f"{SIGNER.name}\n") for n in notes)  # the origin defaults to the key's name
        assert f"\n— {SIGNER.name} " in notes[-1]
        await h.aclose()

    asyncio.run(main())


# -- tampering ------------------------------------------------------------------------------------------


def _mutate(path: Path, rng: random.Random) -> str:
    """Apply one random mutation to a copy of a store; return what was done."""
    db = sqlite3.connect(path)
    try:
        n = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        seq = rng.randint(1, n)
        kind = rng.choice(["byte", "field", "delete", "swap", "insert", "leaf", "node", "checkpoint"])
        if kind == "byte":
            body = db.execute("SELECT body FROM events WHERE seq = ?", (seq,)).fetchone()[0]
            # one changed character of content (a letter or digit); a change that leaves no valid JSON is refused
            # by the store's JSON indexes, and whitespace is not content (leaves hash the canonical form)
            i = rng.choice([k for k, ch in enumerate(body) if ch.isalnum()])
            new = body[:i] + ("7" if body[i] != "7" else "8") + body[i + 1 :]
            try:
                db.execute("UPDATE events SET body = ? WHERE seq = ?", (new, seq))
            except sqlite3.OperationalError:
                db.execute("UPDATE events SET body = ? WHERE seq = ?", (body.replace('"at":"', '"at":"1', 1), seq))
        elif kind == "field":
            data = json.loads(db.execute("SELECT body FROM events WHERE seq = ?", (seq,)).fetchone()[0])
            data["at"] = (
                "2030-01-01T00:00:00+00:00"
                if data["at"] != "2030-01-01T00:00:00+00:00"
                else "2031-01-01T00:00:00+00:00"
            )
            db.execute("UPDATE events SET body = ? WHERE seq = ?", (json.dumps(data, ensure_ascii=False), seq))
        elif kind == "delete":
            db.execute("DELETE FROM events WHERE seq = ?", (seq,))
        elif kind == "swap":
            other = seq % n + 1
            a = db.execute("SELECT body FROM events WHERE seq = ?", (seq,)).fetchone()[0]
            b = db.execute("SELECT body FROM events WHERE seq = ?", (other,)).fetchone()[0]
            if a == b:
                db.execute("UPDATE events SET body = ? WHERE seq = ?", (a.replace('"', "'", 1), seq))
            else:
                db.execute("UPDATE events SET body = ? WHERE seq = ?", (b, seq))
                db.execute("UPDATE events SET body = ? WHERE seq = ?", (a, other))
        elif kind == "insert":
            row = db.execute("SELECT task_id, task_seq, type, at, body FROM events WHERE seq = ?", (seq,)).fetchone()
            db.execute(
                "INSERT INTO events (seq, task_id, task_seq, type, at, body) VALUES (?, ?, ?, ?, ?, ?)",
                (n + 1, row[0], row[1] + 1000, row[2], row[3], row[4]),
            )
        elif kind == "leaf":
            db.execute("UPDATE evidence_nodes SET hash = ? WHERE level = 0 AND idx = ?", (bytes(32), seq - 1))
        elif kind == "node":
            level, idx = db.execute(
                "SELECT level, idx FROM evidence_nodes WHERE level > 0 ORDER BY random() LIMIT 1"
            ).fetchone()
            db.execute("UPDATE evidence_nodes SET hash = ? WHERE level = ? AND idx = ?", (bytes(32), level, idx))
        else:
            size, note = db.execute("SELECT size, note FROM evidence_checkpoints ORDER BY random() LIMIT 1").fetchone()
            lines = note.split("\n")
            root_line = lines[2]
            forged = ("A" if root_line[0] != "A" else "B") + root_line[1:]
            db.execute(
                "UPDATE evidence_checkpoints SET note = ? WHERE size = ?",
                ("\n".join([*lines[:2], forged, *lines[3:]]), size),
            )
        db.commit()
        return f"{kind} at seq {seq}"
    finally:
        db.close()


def test_a_thousand_random_mutations_are_all_detected(signed_store: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, _ = signed_store
    rng = random.Random(9162)
    copy = tmp_path / "copy.sqlite3"
    for trial in range(1000):
        _copy(path, copy)
        what = _mutate(copy, rng)
        report = verify_store(copy, [SIGNER.vkey])
        assert not report.ok, f"trial {trial}: {what} went unnoticed"
        assert report.problems[0]  # names the offending event, node or checkpoint


def test_the_first_changed_event_is_named(signed_store: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, _ = signed_store
    copy = _copy(path, tmp_path / "c.sqlite3")
    with sqlite3.connect(copy) as db:
        task_id, task_seq, body = db.execute("SELECT task_id, task_seq, body FROM events WHERE seq = 7").fetchone()
        db.execute("UPDATE events SET body = ? WHERE seq = 7", (body.replace("T0", "T9", 1),))
    report = verify_store(copy)
    assert report.problems[0] == (
        f"event seq 7 (task {task_id}, #{task_seq}) does not match its leaf in the evidence log (changed after commit)"
    )


def test_a_rewritten_history_is_refused_against_a_trusted_older_checkpoint(
    signed_store: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """An attacker who changes an event and recomputes every leaf, node and checkpoint with the log's own key
    produces a self-consistent store; the auditor's older trusted checkpoint still catches it."""
    path, _ = signed_store
    with sqlite3.connect(path) as db:
        trusted = db.execute("SELECT note FROM evidence_checkpoints ORDER BY size DESC LIMIT 1").fetchone()[0]
    copy = _copy(path, tmp_path / "rewritten.sqlite3")
    db = sqlite3.connect(copy)
    body = db.execute("SELECT body FROM events WHERE seq = 3").fetchone()[0]
    # a fact no column repeats (the party's name), so the rows beside the events still agree with it
    assert '"name":"' in body
    db.execute("UPDATE events SET body = ? WHERE seq = 3", (body.replace('"name":"', '"name":"X', 1),))
    db.execute("DELETE FROM evidence_nodes")
    db.execute("DELETE FROM evidence_checkpoints")
    db.commit()
    db.close()
    SQLiteStore(copy).close()  # the backfill recomputes the whole tree over the rewritten events
    store = SQLiteStore(copy)
    assert store.evidence is not None
    from datetime import UTC, datetime

    assert store.checkpoint("court.example/delivery", [SIGNER], datetime.now(UTC)) is not None
    store.close()
    assert verify_store(copy, [SIGNER.vkey]).ok  # self-consistent...
    report = verify_store(copy, [SIGNER.vkey], trusted_checkpoint=trusted)
    assert not report.ok  # ...but not consistent with what was trusted
    assert "rewrote history" in report.problems[0]


def test_a_checkpoint_signed_by_an_impostor_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _run(path, tasks=2, signers=(OTHER,))
    report = verify_store(path, [SIGNER.vkey])
    assert not report.ok
    assert "stored checkpoint" in report.problems[0]


# -- proof bundles --------------------------------------------------------------------------------------


def test_a_tasks_proof_bundle_verifies_offline_and_tampering_fails(signed_store: tuple[Path, list[str]]) -> None:
    path, ids = signed_store
    bundle = export_bundle(path, ids[0])
    proven = verify_bundle(json.loads(json.dumps(bundle)), [SIGNER.vkey], origin="court.example/delivery")
    assert proven == len(bundle["events"]) >= 5
    tampered = json.loads(json.dumps(bundle))
    tampered["events"][1]["event"]["at"] = "2030-01-01T00:00:00+00:00"
    with pytest.raises(VerificationError):
        verify_bundle(tampered, [SIGNER.vkey])
    dropped = json.loads(json.dumps(bundle))
    del dropped["events"][1]
    with pytest.raises(VerificationError, match="is not event #2"):
        verify_bundle(dropped, [SIGNER.vkey])
    with pytest.raises(VerificationError):
        verify_bundle(bundle, [OTHER.vkey])


def test_bundle_needs_a_checkpoint_covering_the_task(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    ids = _run(path, tasks=1, signers=())
    with pytest.raises(LookupError, match="no signed checkpoint covers"):
        export_bundle(path, ids[0])
    with pytest.raises(LookupError, match="no task"):
        export_bundle(path, "T-none")


def test_leaf_hash_matches_the_compact_range_root(signed_store: tuple[Path, list[str]]) -> None:
    path, _ = signed_store
    store = SQLiteStore(path)
    assert store.evidence is not None
    with sqlite3.connect(path) as db:
        leaves = [bytes(h) for (h,) in db.execute("SELECT hash FROM evidence_nodes WHERE level = 0 ORDER BY idx")]
    edge = CompactRange()
    edge.append_many(leaves)
    assert edge.root() == store.evidence.root()
    assert len(leaf_hash(b"x")) == 32
    store.close()


def test_anchor_receipts_returned_by_a_sink_are_kept_in_the_evidence_log() -> None:
    from datetime import UTC, datetime

    from delivery_sdk import hookimpl
    from delivery_sdk.records import AnchorReceipt, EvidenceBatch

    class Notary:
        @hookimpl
        def delivery_record_evidence(self, batch: EvidenceBatch) -> list[AnchorReceipt] | None:
            if batch.checkpoint is None:
                return None
            size = int(batch.checkpoint.split("\n")[1])
            return [
                AnchorReceipt(
                    notary="notary.test", size=size, receipt=f"tx-{size}", anchored_at=datetime(2026, 11, 2, tzinfo=UTC)
                )
            ]

    async def main() -> None:
        h = Harness(extra_plugins=[Notary()])
        h.client.engine.signers = (SIGNER,)
        h.sms.enqueue(Outcome.delivered())
        await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        assert isinstance(h.store, SQLiteStore)
        anchors = h.store.anchors()
        assert [a.receipt for a in anchors] == [f"tx-{a.size}" for a in anchors]
        assert len(anchors) == 2  # one per signed checkpoint
        await h.aclose()

    asyncio.run(main())
