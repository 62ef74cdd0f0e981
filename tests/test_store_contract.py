"""The TaskStore contract, on both stores: every test taking ``store_factory`` runs on SQLite and on PostgreSQL.

Creating (idempotency by client key and fingerprint), committing (version conflicts, follow-on writes,
outbox, receipt keys), claiming (leases, expiry, release), reading, schema versions, and the evidence log
(every event a leaf, proofs, checkpoints, bundles, the audit). The tests after those are PostgreSQL's own:
leases fenced between two workers, ``SKIP LOCKED`` claims, dense ``seq`` under concurrent writers, the
same tree as SQLite, DSNs and their errors, and opening by DSN wherever a store path is accepted.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from delivery_sdk import IdempotencyConflict, SchemaVersionError, StoreError, UnknownTask
from delivery_sdk.events import Cancelled, DispatchSent, NeedsAttention, TaskCreated
from delivery_sdk.evidence.audit import export_bundle, verify_bundle, verify_store
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.evidence.merkle import MerkleLog
from delivery_sdk.evidence.verify import (
    VerificationError,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from delivery_sdk.records import AnchorReceipt
from delivery_sdk.store import NewTask, OutboxEntry, TaskStore, TaskWrite, is_dsn, open_store
from delivery_sdk.testing import make_party, make_request

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
SIGNER = Signer.generate("court.example/delivery")


def new_task(
    task_id: str, *, client_key: str | None = None, fingerprint: str = "fp-1", due_at: datetime = NOW
) -> NewTask:
    request = make_request(make_party(f"P-{task_id}"), client_key=client_key)
    return NewTask(
        task_id=task_id,
        client_key=client_key,
        fingerprint=fingerprint,
        case_key=request.case.key,
        created=TaskCreated(task_id=task_id, at=NOW, request=request),
        due_at=due_at,
    )


def cancel(task_id: str, expected_version: int, **kwargs: Any) -> TaskWrite:
    event = Cancelled(task_id=task_id, at=NOW + timedelta(minutes=1), reason="withdrawn")
    return TaskWrite(
        task_id=task_id, expected_version=expected_version, events=(event,), state="cancelled", due_at=None, **kwargs
    )


def attention(task_id: str, expected_version: int, **kwargs: Any) -> TaskWrite:
    event = NeedsAttention(task_id=task_id, at=NOW + timedelta(minutes=1), reason="a person must look")
    kwargs.setdefault("due_at", None)
    return TaskWrite(
        task_id=task_id, expected_version=expected_version, events=(event,), state="needs_attention", **kwargs
    )


def snapshot(store: Any) -> tuple[Any, ...]:
    rows = [store.task_row(t) for t in store.all_task_ids()]
    return (store.count_by_state(), store.events_after(0, 10**6), rows, store.pending_outbox())


# -- opening and schema versions -------------------------------------------------------------------------


def test_open_store_picks_the_store_by_its_spec(store_factory: Any) -> None:
    store = open_store(store_factory.spec)
    store_factory.opened.append(store)
    assert type(store).__name__ == ("PostgresStore" if store_factory.postgres else "SQLiteStore")
    assert is_dsn(store_factory.spec) is store_factory.postgres
    assert isinstance(store, TaskStore)
    assert not hasattr(store, "acquire_engine_lock") or not store_factory.postgres  # one engine per file only


def test_schema_version_recorded_and_reopening_keeps_the_data(store_factory: Any) -> None:
    store = store_factory()
    version = store.schema_version
    assert version >= 1
    store.create_tasks([new_task("T1")])
    store.close()
    again = store_factory()
    assert again.schema_version == version  # nothing migrated twice
    assert again.all_task_ids() == ["T1"]
    assert [s.event.TYPE for s in again.events_after(0, 10)] == ["task.created"]


def _bump_schema(store_factory: Any, version: int) -> None:
    if store_factory.postgres:
        import psycopg
        from psycopg import sql

        with psycopg.connect(store_factory.spec.split("?")[0], autocommit=True) as db:
            db.execute(
                sql.SQL("UPDATE {}.schema_version SET version = %s").format(sql.Identifier(store_factory.pg.name)),
                (version,),
            )
    else:
        with sqlite3.connect(store_factory.spec) as db:
            db.execute(f"PRAGMA user_version={version}")


def test_a_newer_schema_is_refused_and_left_as_it_is(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("T1")])
    newer = store.schema_version + 1
    store.close()
    _bump_schema(store_factory, newer)
    with pytest.raises(SchemaVersionError) as info:
        store_factory()
    assert isinstance(info.value, StoreError)
    assert f"schema version {newer}" in str(info.value)
    assert "upgrade delivery-sdk" in str(info.value)
    _bump_schema(store_factory, newer - 1)
    assert store_factory().all_task_ids() == ["T1"]  # refused, not damaged


def test_missing_migrations_are_applied_on_open(store_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written by an older SDK gets the newer migrations when a newer SDK opens it."""
    store = store_factory()
    store.create_tasks([new_task("T1")])
    old = store.schema_version
    store.close()
    if store_factory.postgres:
        from delivery_sdk.store import postgres as module

        extra = "CREATE TABLE later_table (x INTEGER); INSERT INTO later_table VALUES (7)"
    else:
        from delivery_sdk.store import sqlite as module  # type: ignore[no-redef]

        extra = "CREATE TABLE later_table (x INTEGER); INSERT INTO later_table VALUES (7)"
    monkeypatch.setattr(module, "MIGRATIONS", (*module.MIGRATIONS, extra))
    upgraded = store_factory()
    assert upgraded.schema_version == old + 1
    assert upgraded.all_task_ids() == ["T1"]
    if store_factory.postgres:
        with upgraded._read() as cur:
            cur.execute("SELECT x FROM later_table")
            assert cur.fetchall() == [(7,)]
    else:
        assert upgraded._db.execute("SELECT x FROM later_table").fetchall() == [(7,)]


# -- creating ------------------------------------------------------------------------------------------


def test_create_tasks(store_factory: Any) -> None:
    store = store_factory()
    result = store.create_tasks([new_task("T1"), new_task("T2", client_key="k-2")])
    assert result.task_ids == ("T1", "T2")
    assert result.created == (True, True)
    assert [(s.seq, s.task_seq, s.event.task_id, s.event.TYPE) for s in result.stored] == [
        (1, 1, "T1", "task.created"),
        (2, 1, "T2", "task.created"),
    ]
    row = store.task_row("T2")
    assert (row.state, row.version, row.client_key, row.due_at) == ("created", 1, "k-2", NOW)
    assert row.created_at == row.updated_at == NOW
    assert row.case_key == new_task("T2").case_key
    assert store.count_by_state() == {"created": 2}
    assert store.load_events(["T1"])["T1"] == [result.stored[0]]
    assert store.tasks_of_case(row.case_key) == [store.task_row("T1"), row]  # one case, two parties
    assert store.latest_event_time() == NOW
    with pytest.raises(UnknownTask):
        store.task_row("T-none")


def test_same_client_key_same_request_returns_the_task(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("T1", client_key="k")])
    before = snapshot(store)
    again = store.create_tasks([new_task("T9", client_key="k")])
    assert (again.task_ids, again.created, again.stored) == (("T1",), (False,), ())
    assert snapshot(store) == before


def test_same_client_key_different_request_conflicts_and_writes_nothing(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("T1", client_key="k")])
    before = snapshot(store)
    with pytest.raises(IdempotencyConflict) as info:
        store.create_tasks([new_task("T2", client_key="other"), new_task("T3", client_key="k", fingerprint="fp-2")])
    assert (info.value.task_id, info.value.client_key) == ("T1", "k")
    assert snapshot(store) == before  # T2 was not created either


def test_client_key_repeated_within_one_call_writes_nothing(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("T1")])
    before = snapshot(store)
    with pytest.raises(StoreError, match="client key repeated within one submission"):
        store.create_tasks([new_task("T2", client_key="k"), new_task("T3", client_key="k")])
    assert snapshot(store) == before


def test_task_id_reused_refused(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("T1")])
    before = snapshot(store)
    with pytest.raises(StoreError):
        store.create_tasks([new_task("T1")])
    assert snapshot(store) == before


# -- committing ----------------------------------------------------------------------------------------


def test_commit_writes_every_write_that_does_not_conflict(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A"), new_task("B"), new_task("C")])
    result = store.commit([cancel("A", 1), cancel("B", 5), attention("C", 1)])
    assert result.conflicts == frozenset({"B"})
    assert [(s.seq, s.task_seq, s.event.task_id, s.event.TYPE) for s in result.stored] == [
        (4, 2, "A", "task.cancelled"),
        (5, 2, "C", "task.needs_attention"),
    ]
    assert (store.task_row("A").state, store.task_row("A").version) == ("cancelled", 2)
    assert (store.task_row("C").state, store.task_row("C").version) == ("needs_attention", 2)
    row_b = store.task_row("B")
    assert (row_b.state, row_b.version, row_b.due_at) == ("created", 1, NOW)  # nothing written for B
    assert [s.event.TYPE for s in store.load_events(["B"])["B"]] == ["task.created"]
    assert store.count_by_state() == {"cancelled": 1, "created": 1, "needs_attention": 1}
    assert store.task_row("A").updated_at == NOW + timedelta(minutes=1)
    assert store.latest_event_time() == NOW + timedelta(minutes=1)
    assert store.commit([]).stored == ()


def test_returning_false_skips_the_stored_events(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A")])
    result = store.commit([cancel("A", 1)], returning=False)
    assert result.stored == ()
    assert store.task_row("A").version == 2


def test_conflicting_write_leaves_no_outbox_or_receipt_key(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A"), new_task("B")])
    sent = DispatchSent(task_id="B", at=NOW, dispatch_id="B.1")
    stale = TaskWrite(
        task_id="B",
        expected_version=2,
        events=(sent,),
        state="electronic",
        due_at=NOW,
        outbox=(OutboxEntry(dispatch_id="B.1", task_id="B", channel="sms"),),
        receipt_keys=("sms:b-1",),
    )
    result = store.commit(
        [stale, attention("A", 1, outbox=(OutboxEntry(dispatch_id="A.1", task_id="A", channel="sms"),))]
    )
    assert result.conflicts == frozenset({"B"})
    assert store.dispatch_task("B.1") is None
    assert not store.receipt_seen("sms:b-1")
    assert store.dispatch_task("A.1") == "A"
    assert store.pending_outbox() == [OutboxEntry(dispatch_id="A.1", task_id="A", channel="sms")]


def test_two_writes_of_one_task_in_one_commit_follow_on(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A")])
    result = store.commit([attention("A", 1, due_at=NOW), cancel("A", 2)])
    assert result.conflicts == frozenset()
    assert [(s.task_seq, s.event.TYPE) for s in result.stored] == [(2, "task.needs_attention"), (3, "task.cancelled")]
    assert (store.task_row("A").version, store.task_row("A").state) == (3, "cancelled")


def test_a_write_with_no_events_keeps_the_version(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A")])
    later = NOW + timedelta(hours=1)
    result = store.commit([TaskWrite(task_id="A", expected_version=1, events=(), state="created", due_at=later)])
    assert result.stored == ()
    row = store.task_row("A")
    assert (row.version, row.due_at, row.updated_at) == (1, later, NOW)
    assert store.next_due_at() == later


def test_outbox(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A")])
    entry = OutboxEntry(dispatch_id="A.1", task_id="A", channel="fake-sms")
    store.commit([attention("A", 1, outbox=(entry,), release=False)])
    assert store.pending_outbox() == [entry]
    assert store.dispatch_task("A.1") == "A"
    assert store.dispatch_task("A.2") is None
    store.commit([cancel("A", 2, outbox_done=("A.1",))])
    assert store.pending_outbox() == []
    assert store.dispatch_task("A.1") == "A"  # a finished dispatch is still known (late receipts find it)


def test_receipt_keys(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A"), new_task("B")])
    first = store.commit([attention("A", 1, receipt_keys=("sms:e-1",))])
    assert len(first.stored) == 1
    assert store.receipt_seen("sms:e-1")
    assert not store.receipt_seen("mail:e-1")
    # a known key is simply not recorded twice; the write goes in
    again = store.commit([cancel("A", 2, receipt_keys=("sms:e-1", "sms:e-3")), cancel("B", 1)])
    assert again.conflicts == frozenset()
    assert sorted(s.event.task_id for s in again.stored) == ["A", "B"]
    assert store.task_row("A").version == 3
    assert store.receipt_seen("sms:e-3")
    # two ingests of one receipt on one task cannot both commit: the second one's version has moved on
    late = store.commit([cancel("A", 2, receipt_keys=("sms:e-1",))])
    assert late.conflicts == frozenset({"A"})
    assert late.stored == ()


# -- claiming and leases -------------------------------------------------------------------------------


def test_claimed_task_is_not_claimed_again_until_released(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A"), new_task("B", due_at=NOW + timedelta(seconds=1)), new_task("C")])
    assert store.claim_due(NOW, 10, NOW + LEASE) == [("A", 1), ("C", 1)]  # B is not due yet
    assert store.claim_due(NOW, 10, NOW + LEASE) == []
    later = NOW + timedelta(seconds=2)
    assert store.claim_due(later, 10, later + LEASE) == [("B", 1)]
    store.release(["A"])
    store.release([])
    assert store.claim_due(later, 10, later + LEASE) == [("A", 1)]
    # a leased task is claimable when its lease ends: an idle worker sleeps until then instead of spinning
    assert store.next_due_at(later) == NOW + LEASE  # C's lease, taken at NOW, ends first
    assert store.next_due_at(NOW + LEASE) == NOW  # ...and then C is due at once
    assert store.next_due_at(later + LEASE) == NOW


def test_claim_respects_the_limit_earliest_due_first(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task(f"T{i}", due_at=NOW + timedelta(seconds=5 - i)) for i in range(5)])
    at = NOW + timedelta(minutes=1)
    assert store.claim_due(at, 2, at + LEASE) == [("T4", 1), ("T3", 1)]
    assert store.claim_due(at, 2, at + LEASE) == [("T2", 1), ("T1", 1)]
    assert store.claim_due(at, 2, at + LEASE) == [("T0", 1)]


def test_lease_expires(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A")])
    assert store.claim_due(NOW, 10, NOW + LEASE) == [("A", 1)]
    assert store.claim_due(NOW + LEASE - timedelta(seconds=1), 10, NOW + 2 * LEASE) == []
    expired = NOW + LEASE
    assert store.claim_due(expired, 10, expired + LEASE) == [("A", 1)]


def test_commit_release_and_conflict_end_the_lease(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A"), new_task("B"), new_task("C")])
    assert len(store.claim_due(NOW, 10, NOW + LEASE)) == 3
    store.commit(
        [
            attention("A", 1, due_at=NOW, release=True),
            attention("B", 1, due_at=NOW, release=False),
            attention("C", 7, due_at=NOW, release=False),  # conflicts: the lease ends with it
        ]
    )
    assert store.claim_due(NOW, 10, NOW + LEASE) == [("A", 2), ("C", 1)]


def test_finished_task_is_never_claimed(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A")])
    store.commit([cancel("A", 1)])
    assert store.task_row("A").due_at is None
    assert store.claim_due(NOW + timedelta(days=365), 10, NOW + timedelta(days=366)) == []
    assert store.next_due_at() is None


# -- reading -------------------------------------------------------------------------------------------


def test_load_events_and_events_after(store_factory: Any) -> None:
    store = store_factory()
    store.create_tasks([new_task("A"), new_task("B")])
    store.commit([attention("A", 1, due_at=NOW), cancel("B", 1)])
    store.commit([cancel("A", 2)])
    loaded = store.load_events(["A", "B", "A", "nobody"])
    assert set(loaded) == {"A", "B"}  # a task with no events is absent
    assert [(s.seq, s.task_seq, s.event.TYPE) for s in loaded["A"]] == [
        (1, 1, "task.created"),
        (3, 2, "task.needs_attention"),
        (5, 3, "task.cancelled"),
    ]
    assert store.load_events([]) == {}
    everything = store.events_after(0, 100)
    assert [s.seq for s in everything] == [1, 2, 3, 4, 5]
    assert store.events_after(2, 2) == everything[2:4]
    assert store.events_after(5, 10) == []
    # filtered by type (before decoding): in order, after the given seq, up to the limit
    cancelled = store.events_after(0, 10, types=("task.cancelled",))
    assert [(s.seq, s.event.task_id) for s in cancelled] == [(4, "B"), (5, "A")]
    assert store.events_after(0, 1, types=("task.cancelled", "task.needs_attention")) == [everything[2]]
    assert store.events_after(4, 10, types=("task.cancelled",)) == [everything[4]]
    assert store.events_after(0, 10, types=("print.routed",)) == []
    assert store.count_events() == 5
    assert store.case_keys(new_task("A").case_key.split("|", 1)[1]) == [new_task("A").case_key]


def test_count_by_state_and_next_due_at(store_factory: Any) -> None:
    store = store_factory()
    assert (store.count_by_state(), store.next_due_at(), store.latest_event_time()) == ({}, None, None)
    store.create_tasks([new_task("A", due_at=NOW + timedelta(hours=2)), new_task("B", due_at=NOW + timedelta(hours=1))])
    assert store.next_due_at() == NOW + timedelta(hours=1)
    store.commit([cancel("B", 1)])
    assert store.next_due_at() == NOW + timedelta(hours=2)
    assert store.count_by_state() == {"created": 1, "cancelled": 1}


# -- the evidence log ------------------------------------------------------------------------------------


def _fill(store: Any) -> None:
    store.create_tasks([new_task(f"T{i}") for i in range(5)])
    store.commit([attention("T0", 1, due_at=NOW), cancel("T1", 1), cancel("T2", 1)])
    store.commit([cancel("T0", 2), attention("T3", 1, due_at=NOW)])


def _leaf_log(store: Any) -> MerkleLog:
    """The tree rebuilt from the events alone, with the reference leaf encoding."""
    from delivery_sdk.evidence.canonical import stored_event_leaf_hash

    log = MerkleLog()
    log.append_many([stored_event_leaf_hash(s) for s in store.events_after(0, 10**6)])
    return log


def test_every_event_is_a_leaf_and_proofs_verify(store_factory: Any) -> None:
    store = store_factory()
    _fill(store)
    evidence = store.evidence
    assert evidence is not None
    reference = _leaf_log(store)
    assert evidence.size == reference.size == 10
    assert evidence.root() == reference.root()
    for size in (1, 3, 8, 10):
        assert evidence.root(size) == reference.root(size)
    leaves = [reference.leaf_hash(i) for i in range(10)]
    for seq in (1, 4, 10):
        proof = evidence.inclusion_proof(seq, 10)
        verify_inclusion(seq - 1, 10, leaves[seq - 1], proof.path, reference.root())
    consistency = evidence.consistency_proof(3, 10)
    verify_consistency(3, 10, reference.root(3), reference.root(), consistency.path)


def test_checkpoints_bundles_anchors_and_the_audit(store_factory: Any) -> None:
    store = store_factory()
    _fill(store)
    assert store.checkpoint("court.example/delivery", [], NOW) is None  # no key: nothing signed
    note = store.checkpoint("court.example/delivery", [SIGNER], NOW)
    assert note is not None
    assert store.checkpoint("court.example/delivery", [SIGNER], NOW) is None  # nothing new since
    checkpoint, _ = open_checkpoint(note, [SIGNER.vkey], origin="court.example/delivery")
    assert (checkpoint.size, checkpoint.root) == (10, store.evidence.root())
    assert store.evidence.checkpoints() == [(10, note)]
    # a task's proof bundle verifies offline, from the store and through the audit module
    bundle = store.proof_bundle("T0")
    assert bundle is not None
    assert verify_bundle(bundle, [SIGNER.vkey], origin="court.example/delivery") == 3
    assert export_bundle(store_factory.spec, "T0") == bundle
    assert store.proof_bundle("T-none") is None
    with pytest.raises(VerificationError):
        verify_bundle(bundle, [Signer.generate("court.example/delivery").vkey])
    store.record_anchors([AnchorReceipt(notary="n.test", size=10, receipt="tx-10", anchored_at=NOW)] * 2)
    assert store.anchors() == [AnchorReceipt(notary="n.test", size=10, receipt="tx-10", anchored_at=NOW)]
    report = verify_store(store_factory.spec, [SIGNER.vkey], origin="court.example/delivery")
    assert report.ok, report.problems
    assert (report.events, report.checkpoints) == (10, 1)


def test_events_written_without_the_evidence_log_are_backfilled(store_factory: Any) -> None:
    store = store_factory(evidence=False)
    _fill(store)
    assert store.evidence is None
    assert store.checkpoint("o", [SIGNER], NOW) is None
    store.close()
    with_log = store_factory()
    assert with_log.evidence.size == 10
    assert with_log.evidence.root() == _leaf_log(with_log).root()
    with_log.commit([cancel("T4", 1)])
    assert verify_store(store_factory.spec).ok


def test_a_changed_event_is_found_by_the_audit(store_factory: Any) -> None:
    store = store_factory()
    _fill(store)
    store.close()
    statement = "UPDATE events SET body = replace(body, 'withdrawn', 'withdrawm') WHERE seq = 7"
    if store_factory.postgres:
        import psycopg
        from psycopg import sql

        with psycopg.connect(store_factory.spec.split("?")[0], autocommit=True) as db:
            db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(store_factory.pg.name)))
            db.execute(statement)
    else:
        with sqlite3.connect(store_factory.spec) as db:
            db.execute(statement)
    report = verify_store(store_factory.spec)
    assert not report.ok
    assert report.problems[0].startswith("event seq 7 ")
