"""What the PostgreSQL store adds to the contract: many workers on one database.

Leases fenced between two store objects (two workers), ``SKIP LOCKED`` claims that never overlap, dense
``seq`` and one evidence tree under concurrent writers (the same tree SQLite builds), concurrent opening
(one migrates), recovery after the server drops its connections, DSNs (environment, masked passwords,
clear errors), opening by DSN in the clients and the command line, and two engines in threads sharing a
population of tasks with nothing sent twice. Each test works in a schema of its own (``pg_dsn``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from delivery_sdk import (
    AsyncDeliveryClient,
    ChannelKind,
    Contact,
    ContactKind,
    DeliveryClient,
    EngineConfig,
    PolicyConfig,
    SQLiteStore,
    StoreError,
    SystemClock,
    TaskState,
    VirtualClock,
)
from delivery_sdk.cli import main as cli_main
from delivery_sdk.events import Cancelled, NeedsAttention, TaskCreated
from delivery_sdk.evidence.audit import verify_store
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.model import Dispatch
from delivery_sdk.store import NewTask, TaskWrite, open_store
from delivery_sdk.store.postgres import MIGRATIONS, PostgresStore, mask_dsn
from delivery_sdk.testing import FakeChannel, Outcome, RecordingSink, channels_plugin, make_party, make_request

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
SIGNER = Signer.generate("court.example/delivery")


def new_task(task_id: str, *, due_at: datetime = NOW) -> NewTask:
    request = make_request(make_party(f"P-{task_id}"))
    return NewTask(
        task_id=task_id,
        client_key=None,
        fingerprint="fp",
        case_key=request.case.key,
        created=TaskCreated(task_id=task_id, at=NOW, request=request),
        due_at=due_at,
    )


def attention(task_id: str, version: int, *, release: bool = True, at: datetime = NOW) -> TaskWrite:
    event = NeedsAttention(task_id=task_id, at=at, reason="a person must look")
    return TaskWrite(
        task_id=task_id,
        expected_version=version,
        events=(event,),
        state="needs_attention",
        due_at=at,
        release=release,
    )


@pytest.fixture
def stores(pg_dsn: str) -> Iterator[list[PostgresStore]]:
    """Two store objects (two pools, two lease owners) on one schema: two workers."""
    opened = [PostgresStore(pg_dsn, owner="worker-a"), PostgresStore(pg_dsn, owner="worker-b")]
    try:
        yield opened
    finally:
        for store in opened:
            store.close()


# -- leases between workers --------------------------------------------------------------------------------


def test_a_worker_whose_lease_was_taken_over_gets_a_conflict_never_a_second_write(
    stores: list[PostgresStore],
) -> None:
    a, b = stores
    a.create_tasks([new_task("T")])
    assert a.claim_due(NOW, 10, NOW + LEASE) == [("T", 1)]
    assert b.claim_due(NOW + LEASE - timedelta(seconds=1), 10, NOW + 2 * LEASE) == []  # A's lease holds
    later = NOW + LEASE  # A's lease ran out (A hung, or died): B takes the task over
    assert b.claim_due(later, 10, later + LEASE) == [("T", 1)]
    stale = a.commit([attention("T", 1, release=False)])
    assert stale.conflicts == frozenset({"T"})  # same version, but the lease is B's: refused
    assert "T" not in a.held
    assert [s.event.TYPE for s in a.load_events(["T"])["T"]] == ["task.created"]
    a.release(["T"])  # only the owner ends a lease
    assert a.claim_due(later, 10, later + LEASE) == []
    fresh = b.commit([attention("T", 1, at=later)])
    assert fresh.conflicts == frozenset()
    assert b.task_row("T").version == 2
    assert a.claim_due(later, 10, later + LEASE) == [("T", 2)]  # B's commit ended B's lease


def test_an_expired_lease_nobody_took_still_lets_its_owner_write(stores: list[PostgresStore]) -> None:
    a, _ = stores
    a.create_tasks([new_task("T")])
    a.claim_due(NOW, 10, NOW + LEASE)
    assert a.commit([attention("T", 1)]).conflicts == frozenset()


def test_a_task_released_by_its_new_owner_is_still_fenced_from_the_old_one(stores: list[PostgresStore]) -> None:
    a, b = stores
    a.create_tasks([new_task("T")])
    a.claim_due(NOW, 10, NOW + LEASE)
    later = NOW + LEASE
    b.claim_due(later, 10, later + LEASE)
    moved = TaskWrite(task_id="T", expected_version=1, events=(), state="created", due_at=later + LEASE)
    assert b.commit([moved]).conflicts == frozenset()  # B only moved the due time: the version stays 1
    assert a.commit([attention("T", 1)]).conflicts == frozenset({"T"})


def test_writes_to_tasks_a_store_never_leased_are_checked_on_the_version_alone(stores: list[PostgresStore]) -> None:
    """An ingest or a cancel (no lease) goes in while a worker holds the lease; the worker then conflicts."""
    a, b = stores
    a.create_tasks([new_task("T")])
    a.claim_due(NOW, 10, NOW + LEASE)
    cancel = Cancelled(task_id="T", at=NOW, reason="withdrawn")
    ingest = TaskWrite(task_id="T", expected_version=1, events=(cancel,), state="cancelled", due_at=None, release=True)
    assert b.commit([ingest]).conflicts == frozenset()
    with a._read() as cur:  # B's release=True did not end A's lease (only the owner can)
        cur.execute("SELECT lease_owner FROM tasks WHERE task_id = 'T'")
        assert cur.fetchone() == ("worker-a",)
    assert a.commit([attention("T", 1)]).conflicts == frozenset({"T"})  # the version moved on
    assert a.task_row("T").state == "cancelled"


def test_claims_of_two_workers_never_overlap(stores: list[PostgresStore]) -> None:
    a, b = stores
    a.create_tasks([new_task(f"T{i:03d}", due_at=NOW - timedelta(seconds=i % 7)) for i in range(400)])
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claim(name: str, store: PostgresStore) -> None:
        start.wait()
        while batch := store.claim_due(NOW, 7, NOW + LEASE):
            claimed[name].extend(t for t, _ in batch)

    threads = [threading.Thread(target=claim, args=(n, s)) for n, s in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = claimed["a"] + claimed["b"]
    assert len(everything) == len(set(everything)) == 400
    assert claimed["a"]
    assert claimed["b"]
    assert set(a.held) == set(claimed["a"])


# -- one log, many writers ---------------------------------------------------------------------------------


def test_concurrent_writers_keep_seq_dense_and_one_tree(pg_dsn: str) -> None:
    writers = [PostgresStore(pg_dsn, owner=f"w{i}") for i in range(4)]
    try:
        for w, store in enumerate(writers):
            store.create_tasks([new_task(f"W{w}-{i}") for i in range(30)])
        errors: list[BaseException] = []

        def work(w: int, store: PostgresStore) -> None:
            try:
                for round_ in range(1, 6):
                    store.commit([attention(f"W{w}-{i}", round_, release=False) for i in range(0, 30, 2)])
                    store.commit([attention(f"W{w}-{i}", round_, release=False) for i in range(1, 30, 2)])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w, s)) for w, s in enumerate(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        events = writers[0].events_after(0, 10**6)
        assert [s.seq for s in events] == list(range(1, 4 * 30 * 6 + 1))  # dense: no gap, no duplicate
        per_task: dict[str, list[int]] = {}
        for s in events:
            per_task.setdefault(s.event.task_id, []).append(s.task_seq)
        assert all(seqs == list(range(1, 7)) for seqs in per_task.values())
        assert writers[1].checkpoint("court.example/delivery", [SIGNER], NOW) is not None
        report = verify_store(pg_dsn, [SIGNER.vkey])
        assert report.ok, report.problems
        assert report.events == len(events)
    finally:
        for store in writers:
            store.close()


def test_the_tree_is_the_one_sqlite_builds(pg_dsn: str) -> None:
    pg = PostgresStore(pg_dsn)
    lite = SQLiteStore()
    try:
        for store in (pg, lite):
            store.create_tasks([new_task(f"T{i}") for i in range(9)])
            store.commit([attention(f"T{i}", 1) for i in range(0, 9, 2)])
            store.create_tasks([new_task("late")])
            store.commit([attention(f"T{i}", 2 if i % 2 == 0 else 1) for i in range(9)])
        assert pg.events_after(0, 1000) == lite.events_after(0, 1000)
        assert pg.evidence is not None
        assert lite.evidence is not None
        assert pg.evidence.size == lite.evidence.size == 24
        for size in (1, 16, 17, 24):
            assert pg.evidence.root(size) == lite.evidence.root(size)
        assert pg.evidence.root() == lite.evidence.root()
        assert pg.evidence.inclusion_proof(5, 24) == lite.evidence.inclusion_proof(5, 24)
        assert pg.evidence.consistency_proof(7, 24) == lite.evidence.consistency_proof(7, 24)
        assert pg.checkpoint("o", [SIGNER], NOW) == lite.checkpoint("o", [SIGNER], NOW)
    finally:
        pg.close()
        lite.close()


# -- opening -----------------------------------------------------------------------------------------------


def test_workers_opening_a_new_schema_at_once_migrate_it_once(pg_dsn: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(PostgresStore(pg_dsn))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert [s.schema_version for s in opened] == [len(MIGRATIONS)] * 4
        with opened[0]._read() as cur:
            cur.execute("SELECT COUNT(*) FROM schema_version")
            assert cur.fetchone() == (1,)
            cur.execute("SELECT COUNT(*) FROM log_head")
            assert cur.fetchone() == (1,)
    finally:
        for store in opened:
            store.close()


def test_the_store_recovers_after_the_server_drops_its_connections(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, pool_size=2)
    try:
        store.create_tasks([new_task("T")])
        with psycopg.connect(pg_dsn.split("?")[0], autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (f"delivery-sdk:{store.schema}",),
            ).fetchall()
        assert killed  # the pool's idle connection is gone (as after a restart)
        assert store.task_row("T").version == 1  # the pool checked it, dropped it and connected again
        assert store.commit([attention("T", 1)]).conflicts == frozenset()
    finally:
        store.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_errors_are_store_errors_with_the_password_masked() -> None:
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{_closed_port()}/test?schema=x"
    with pytest.raises(StoreError) as info:
        PostgresStore(dsn, connect_timeout=2)
    message = str(info.value)
    assert "cannot connect to PostgreSQL" in message
    assert "postgres:***@127.0.0.1" in message
    assert "s3cret" not in message


def test_mask_dsn() -> None:
    assert mask_dsn("postgresql://u:pw@h:5432/db?schema=s") == "postgresql://u:***@h:5432/db?schema=s"
    assert mask_dsn("postgres://u@h/db?password=pw&sslmode=require") == "postgres://u@h/db?password=***&sslmode=require"
    assert mask_dsn("host=h user=u password='a b' dbname=d") == "host=h user=u password=*** dbname=d"
    assert mask_dsn("postgresql://h/db") == "postgresql://h/db"


def test_the_dsn_comes_from_the_environment(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError, match="DELIVERY_SDK_STORE"):
        PostgresStore(environ={})
    with pytest.raises(StoreError, match="DELIVERY_SDK_STORE"):
        open_store(environ={})
    store = PostgresStore(environ={"DELIVERY_SDK_STORE": pg_dsn})
    store.create_tasks([new_task("T")])
    store.close()
    monkeypatch.setenv("DELIVERY_SDK_STORE", pg_dsn)
    again = open_store()
    assert isinstance(again, PostgresStore)
    assert again.all_task_ids() == ["T"]
    again.close()
    with DeliveryClient(load_entry_points=False) as client:  # no store given: the environment's
        assert isinstance(client.store, PostgresStore)
        assert client.count_by_state() == {"created": 1}


def test_a_schema_keyword_wins_over_the_dsn(pg_dsn: str) -> None:
    other = pg_dsn.rsplit("=", 1)[1] + "_kw"
    store = PostgresStore(pg_dsn, schema=other)
    try:
        assert store.schema == other
        store.create_tasks([new_task("T")])
        with PostgresStore(pg_dsn) as plain:
            assert plain.all_task_ids() == []
    finally:
        store.close()
        with psycopg.connect(pg_dsn.split("?")[0], autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(other)))


# -- clients and the command line on a DSN ------------------------------------------------------------------


def test_the_client_and_the_commands_take_a_dsn(
    pg_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clock = VirtualClock(NOW)
    sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())
    with DeliveryClient(
        pg_dsn,
        plugins=[channels_plugin(sms), RecordingSink()],
        clock=clock,
        load_entry_points=False,
        evidence_signers=[SIGNER],
    ) as client:
        assert isinstance(client.store, PostgresStore)
        task_id = client.submit(make_request(make_party("P-1")))
        client.run_until_idle()
        assert client.status(task_id).state is TaskState.FILED
        case_number = client.status(task_id).case_number
    assert cli_main(["status", task_id, "--store", pg_dsn]) == 0
    assert "状态      已归档" in capsys.readouterr().out  # filed, in the Chinese court staff read
    assert cli_main(["tasks", "--case", case_number, "--store", pg_dsn]) == 0
    assert task_id in capsys.readouterr().out
    assert cli_main(["verify", pg_dsn, "--key", SIGNER.vkey]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    out = tmp_path / "bundle.json"
    assert cli_main(["proof", task_id, "--store", pg_dsn, "--out", str(out)]) == 0
    assert out.exists()
    capsys.readouterr()
    for command in (["stats", "--store", pg_dsn], ["report", "--store", pg_dsn, "--out", str(tmp_path / "r.html")]):
        assert cli_main(command) == 2
        assert "supervision reports need the SQLite store" in capsys.readouterr().err
    missing = pg_dsn.rsplit("=", 1)[0] + "=no_such_schema"
    assert cli_main(["verify", missing]) == 2
    assert "schema 'no_such_schema' does not exist" in capsys.readouterr().err


def test_the_async_client_takes_a_dsn_and_takes_no_engine_lock(pg_dsn: str) -> None:
    async def main() -> None:
        clock = VirtualClock(NOW)
        sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())
        one = AsyncDeliveryClient(pg_dsn, plugins=[channels_plugin(sms)], clock=clock, load_entry_points=False)
        two = AsyncDeliveryClient(pg_dsn, plugins=[channels_plugin(sms)], clock=clock, load_entry_points=False)
        try:
            ids = await one.submit_many([make_request(make_party(f"P-{i}")) for i in range(4)])
            await one.run_until_idle(max_steps=1)
            await two.run_until_idle()  # a second engine on the same database is fine
            await one.run_until_idle()
            assert {one.status(t).state for t in ids} == {TaskState.FILED}
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(main())


# -- two engines, one population ------------------------------------------------------------------------------


class Provider:
    """One fake SMS gateway and e-service platform that both engines talk to (a real provider is shared too).

    Outcomes are fixed by the task: every third party's e-service account fails, so that task falls back to
    SMS; everything else is delivered at once. Every send is recorded with its idempotency key.
    """

    def __init__(self) -> None:
        clock = SystemClock()
        self.eservice = FakeChannel("fake-eservice", ChannelKind.ESERVICE, clock=clock, handler=self._eservice)
        self.sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())
        self.sink = RecordingSink()

    @staticmethod
    def _eservice(dispatch: Dispatch) -> Outcome:
        number = int(dispatch.task_id.rsplit("-", 1)[1])
        return Outcome.failed("no such account") if number % 3 == 0 else Outcome.delivered()

    @property
    def keys(self) -> list[str]:
        return self.eservice.idempotency_keys + self.sms.idempotency_keys


def test_two_engines_share_a_population_and_nothing_is_sent_twice(pg_dsn: str) -> None:
    tasks = 300
    provider = Provider()
    policy = PolicyConfig(electronic_order=(ChannelKind.ESERVICE, ChannelKind.SMS))
    config = EngineConfig(batch_size=25)
    numbers = iter(range(10**6))
    lock = threading.Lock()

    def ids() -> str:
        with lock:
            return f"T-{next(numbers):04d}"

    def client() -> AsyncDeliveryClient:
        return AsyncDeliveryClient(
            PostgresStore(pg_dsn, pool_size=2),
            plugins=[channels_plugin(provider.eservice, provider.sms), provider.sink],
            policy=policy,
            config=config,
            load_entry_points=False,
            id_factory=ids,
            evidence_signers=[SIGNER],
        )

    async def submit() -> list[str]:
        submitter = client()
        try:
            return await submitter.submit_many(
                [make_request(make_party(f"P{i}", eservice=f"acct-{i}")) for i in range(tasks)]
            )
        finally:
            await submitter.aclose()
            submitter.store.close()

    task_ids = asyncio.run(submit())
    steps: Counter[str] = Counter()
    errors: list[BaseException] = []

    def engine(name: str) -> None:
        async def main() -> None:
            worker = client()
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    steps[name] += await worker.run_until_idle()
                    counts = worker.count_by_state()
                    if counts.get("filed", 0) == tasks:
                        return
                    await asyncio.sleep(0.01)  # the other engine holds the rest
            finally:
                await worker.aclose()
                worker.store.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=engine, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert steps["a"] > 0  # both engines did work
    assert steps["b"] > 0

    with PostgresStore(pg_dsn) as store:
        assert store.count_by_state() == {"filed": tasks}  # every task reached its end
        events = store.events_after(0, 10**7)
        assert [s.seq for s in events] == list(range(1, len(events) + 1))
        timelines: dict[str, list[Any]] = {}
        for s in events:
            timelines.setdefault(s.event.task_id, []).append(s)
        assert sorted(timelines) == sorted(task_ids)
        queued: list[str] = []
        for events_of_task in timelines.values():
            assert [s.task_seq for s in events_of_task] == list(range(1, len(events_of_task) + 1))
            types = Counter(s.event.TYPE for s in events_of_task)
            assert types["task.created"] == types["service.served"] == types["service.filed"] == 1
            queued.extend(s.event.dispatch_id for s in events_of_task if s.event.TYPE == "dispatch.queued")
            sent = [s.event.dispatch_id for s in events_of_task if s.event.TYPE == "dispatch.sent"]
            assert len(sent) == len(set(sent))  # no event recorded twice
        assert len(queued) == len(set(queued)) == tasks + tasks // 3  # every third task fell back to SMS
        assert len(store.pending_outbox()) == 0
    # the provider saw every dispatch exactly once: no idempotency key twice, none missing
    assert sorted(provider.keys) == sorted(queued)
    assert len(provider.sink.filed) == tasks
    published = [s.seq for s in provider.sink.evidence]
    assert sorted(published) == list(range(1, len(events) + 1))  # each event published once, by its writer
    report = verify_store(pg_dsn, [SIGNER.vkey])
    assert report.ok, report.problems
    assert report.events == len(events)


# -- leaf hashes started before the lock -------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [1.0, 1e-05, 0.1])
def test_a_leaf_started_before_its_seq_is_known_hashes_like_the_reference(confidence: float) -> None:
    from delivery_sdk.events import AddressUpdated, StoredEvent
    from delivery_sdk.evidence.canonical import stored_event_leaf_hash
    from delivery_sdk.serialization import encode_event
    from delivery_sdk.store.postgres import _Leaf

    contact = Contact(kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区发展大道57号", division_code="420506")
    events = [
        TaskCreated(task_id="T", at=NOW, request=make_request(make_party("P-q"))),
        AddressUpdated(task_id="T", at=NOW, contact=contact, source="registry", confidence=confidence),
        Cancelled(task_id="T", at=NOW, reason='引号"与\\反斜杠, 换行\n和\u001f控制字符'),
    ]
    for task_seq, event in enumerate(events, start=1):
        for seq in (1, 9, 10, 123456789):
            leaf = _Leaf(type(event), task_seq, encode_event(event)[1])
            assert leaf.finish(seq) == stored_event_leaf_hash(StoredEvent(seq=seq, task_seq=task_seq, event=event))
