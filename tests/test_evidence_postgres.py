"""The store audit and the engine's witness on PostgreSQL: the same checks as on SQLite, read in pages."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from delivery_sdk import ChannelKind, DeliveryClient, TaskState
from delivery_sdk.clock import VirtualClock
from delivery_sdk.evidence import audit
from delivery_sdk.evidence.audit import verify_store
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.testing import FakeChannel, Outcome, RecordingSink, channels_plugin, make_party, make_request

SIGNER = Signer.generate("court.example/pg")


def _fill(dsn: str, witness: Path) -> list[str]:
    from datetime import UTC, datetime

    clock = VirtualClock(datetime(2026, 11, 2, tzinfo=UTC))
    sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())
    with DeliveryClient(
        dsn,
        plugins=[channels_plugin(sms), RecordingSink()],
        clock=clock,
        load_entry_points=False,
        evidence_signers=[SIGNER],
        evidence_witness=witness,
    ) as client:
        ids = [client.submit(make_request(make_party(f"P-{i}"))) for i in range(3)]
        client.run_until_idle()
        assert {client.status(t).state for t in ids} == {TaskState.FILED}
    return ids


def _execute(dsn: str, statement: str) -> None:
    base, _, schema = dsn.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        db.execute(statement.encode())


def test_the_audit_rederives_every_column_on_postgresql(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    witness = tmp_path / "pg.checkpoint"
    ids = _fill(pg_dsn, witness)
    assert witness.read_text(encoding="utf-8").startswith(f"{SIGNER.name}\n")  # kept where it was told
    monkeypatch.setattr(audit, "_PAGE", 1)  # a page a row: events, leaves and nodes
    report = verify_store(pg_dsn, [SIGNER.vkey])
    assert report.ok, report.problems
    assert report.tasks == 3
    assert report.unsigned == 0
    _execute(pg_dsn, "UPDATE events SET type = 'task.cancelled' WHERE seq = 5")
    _execute(pg_dsn, "UPDATE events SET at = at + interval '1 day' WHERE seq = 6")
    _execute(pg_dsn, f"UPDATE tasks SET state = 'cancelled' WHERE task_id = '{ids[1]}'")
    _execute(pg_dsn, f"UPDATE tasks SET updated_at = updated_at + interval '1 hour' WHERE task_id = '{ids[2]}'")
    _execute(pg_dsn, "DELETE FROM evidence_nodes WHERE level = 0 AND idx = 2")
    problems = verify_store(pg_dsn, [SIGNER.vkey]).problems
    assert any(p.startswith("event seq 5: its type column says 'task.cancelled'") for p in problems), problems
    assert any(p.startswith("event seq 6: its at column says") for p in problems), problems
    assert f"task {ids[1]}: its row says state 'cancelled', its events fold to 'filed'" in problems
    assert any(p.startswith(f"task {ids[2]}: its row says updated_at") for p in problems), problems
    assert any(p.startswith("event seq 3 ") and "has no leaf" in p for p in problems), problems
