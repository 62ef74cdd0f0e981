"""SQLiteStore's own: pragmas (WAL, synchronous), schema versions in ``user_version``, files that are not a
database, the engine lock, and a file store that resumes every unfinished task after it was closed and reopened.

The TaskStore contract (creating, committing, receipt keys, outbox, claiming and leases, reading) is tested on
SQLite and on PostgreSQL alike in ``test_store_contract.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from delivery_sdk import (
    ChannelKind,
    Contact,
    ContactKind,
    DeliveryClient,
    SchemaVersionError,
    SQLiteStore,
    StoreError,
    TaskState,
    VirtualClock,
)
from delivery_sdk.events import DispatchQueued, DispatchSent, StoredEvent, TaskCreated
from delivery_sdk.model import Dispatch
from delivery_sdk.records import AddressCandidate
from delivery_sdk.store import NewTask
from delivery_sdk.store.sqlite import MIGRATIONS
from delivery_sdk.testing import (
    FakeAddressSource,
    FakeCarrier,
    FakeChannel,
    Outcome,
    RecordingSink,
    channels_plugin,
    hubei_centres,
    make_party,
    make_request,
    print_centres_plugin,
)

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


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


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    with SQLiteStore() as s:
        yield s


# -- opening -------------------------------------------------------------------------------------------


def test_file_store_uses_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path) as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # WAL is a property of the file
    finally:
        raw.close()


@pytest.mark.parametrize(("mode", "value"), [("NORMAL", 1), ("FULL", 2), ("EXTRA", 3)])
def test_synchronous_modes(tmp_path: Path, mode: str, value: int) -> None:
    with SQLiteStore(tmp_path / "s.sqlite3", synchronous=mode) as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == value


@pytest.mark.parametrize("mode", ["OFF", "full", "0", ""])
def test_unsafe_synchronous_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(StoreError, match="synchronous must be FULL, NORMAL or EXTRA"):
        SQLiteStore(tmp_path / "s.sqlite3", synchronous=mode)
    assert not (tmp_path / "s.sqlite3").exists()


def test_schema_version_recorded(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path) as store:
        assert store.schema_version == len(MIGRATIONS) >= 1
        store.create_tasks([new_task("T1")])
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"tasks", "events", "outbox", "receipts"} <= tables
    finally:
        raw.close()
    with SQLiteStore(path) as again:  # reopening migrates nothing and keeps the data
        assert again.schema_version == len(MIGRATIONS)
        assert again.all_task_ids() == ["T1"]


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE future (x)")
    raw.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(SchemaVersionError) as info:
        SQLiteStore(path)
    assert isinstance(info.value, StoreError)
    message = str(info.value)
    assert f"schema version {len(MIGRATIONS) + 1}" in message
    assert "upgrade delivery-sdk" in message
    raw = sqlite3.connect(path)
    try:  # the newer file is left exactly as it was
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
        assert {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} == {"future"}
    finally:
        raw.close()


def test_not_a_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database, just some notes about a case\n" * 100)
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        SQLiteStore(path)


# -- the engine lock -----------------------------------------------------------------------------------


def test_engine_lock_is_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    first = SQLiteStore(path)
    second = SQLiteStore(path)
    try:
        first.acquire_engine_lock()
        first.acquire_engine_lock()  # the holder may ask again
        with pytest.raises(StoreError, match="another engine is already running"):
            second.acquire_engine_lock()
        second.create_tasks([new_task("T1")])  # others may still read and write
        assert first.all_task_ids() == ["T1"]
    finally:
        first.close()
    second.acquire_engine_lock()  # released with the store
    second.close()


def test_memory_store_needs_no_lock(store: SQLiteStore) -> None:
    store.acquire_engine_lock()
    with SQLiteStore() as other:
        other.acquire_engine_lock()


def test_two_clients_cannot_both_run_an_engine(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    clock = VirtualClock(NOW)
    with DeliveryClient(path, plugins=[], clock=clock, load_entry_points=False) as one:
        one.run_until_idle()
        with DeliveryClient(path, plugins=[], clock=clock, load_entry_points=False) as two:
            with pytest.raises(StoreError, match="another engine"):
                two.run_until_idle()
            assert two.count_by_state() == {}


# -- resuming after a restart ----------------------------------------------------------------------------


class World:
    """The outside world (providers, print centres, the carrier): it outlives our process."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.eservice = FakeChannel("fake-eservice", ChannelKind.ESERVICE, clock=clock, handler=self._electronic)
        self.sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=clock, handler=self._electronic)
        self.carrier = FakeCarrier(clock=clock, handler=self._post)
        self.centres = hubei_centres(clock)
        self.addresses = FakeAddressSource(
            {
                "P-return": [
                    AddressCandidate(
                        contact=Contact(
                            kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区发展大道57号", division_code="420506"
                        ),
                        source="household_registry",
                        confidence=0.9,
                    )
                ]
            }
        )
        self.returned: set[str] = set()

    def _electronic(self, dispatch: Dispatch) -> Outcome:
        party = dispatch.task_id
        return {
            "T1": Outcome.delivered(after=timedelta(hours=1)),
            "T2": Outcome.read(after=timedelta(minutes=40)),
            "T3": Outcome.failed("空号", after=timedelta(minutes=20)),
            "T5": Outcome.no_answer() if dispatch.kind.value == "eservice" else Outcome.delivered(),
        }.get(party, Outcome.no_answer())

    def _post(self, dispatch: Dispatch) -> Outcome:
        if dispatch.task_id == "T4" and dispatch.task_id not in self.returned:
            self.returned.add(dispatch.task_id)
            return Outcome.returned("address_wrong", after=timedelta(days=2))
        return Outcome.signed(after=timedelta(days=3))

    def client(self, path: Path, sink: RecordingSink, ids: Iterator[str]) -> DeliveryClient:
        return DeliveryClient(
            path,
            plugins=[
                channels_plugin(self.eservice, self.sms, self.carrier),
                print_centres_plugin(*self.centres),
                self.addresses,
                sink,
            ],
            clock=self.clock,
            load_entry_points=False,
            id_factory=lambda: next(ids),
        )


def _by_task(events: list[StoredEvent]) -> dict[str, list[StoredEvent]]:
    out: dict[str, list[StoredEvent]] = {}
    for stored in events:
        out.setdefault(stored.event.task_id, []).append(stored)
    return out


def test_reopened_store_resumes_every_unfinished_task(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3"
    clock = VirtualClock(NOW)
    world = World(clock)
    ids = iter(f"T{i}" for i in range(1, 100))
    first_sink = RecordingSink()
    with world.client(path, first_sink, ids) as client:
        task_ids = client.submit_many(
            [
                make_request(make_party("P-1")),  # T1: SMS delivered after an hour
                make_request(make_party("P-2")),  # T2: read (no delivery report) after 40 minutes
                make_request(make_party("P-3")),  # T3: SMS fails -> post, signed
                make_request(make_party("P-return", mobile=None, consent=False)),  # T4: post returned, new address
                make_request(make_party("P-5", eservice="acc_5")),  # T5: e-service silent, then SMS
            ]
        )
        assert task_ids == ["T1", "T2", "T3", "T4", "T5"]
        client.run_until_idle(until=NOW + timedelta(minutes=30))
        assert clock.now() == NOW + timedelta(minutes=30)
        states = {t: client.status(t).state for t in task_ids}
        assert all(not s.terminal for s in states.values())
        assert states["T4"] is TaskState.ROUTED
        assert states["T3"] is TaskState.ROUTED  # the SMS failure was polled at 30 minutes
        before_close = client.store.events_after(0, 10**6)
    assert {e.seq for e in first_sink.evidence} == {e.seq for e in before_close}
    sent_before = {name: list(f.idempotency_keys) for name, f in (("sms", world.sms), ("es", world.eservice))}

    second_sink = RecordingSink()
    with world.client(path, second_sink, ids) as client:
        assert client.store.events_after(0, 10**6) == before_close  # nothing lost in closing
        client.run_until_idle()
        assert {t: client.status(t).state for t in task_ids} == dict.fromkeys(task_ids, TaskState.FILED)
        everything = client.store.events_after(0, 10**6)
        assert client.store.pending_outbox() == []

        timelines = _by_task(everything)
        for task_id, events in _by_task(before_close).items():
            assert timelines[task_id][: len(events)] == events  # history is kept, continued, never rewritten
        for events in timelines.values():
            assert [s.task_seq for s in events] == list(range(1, len(events) + 1))
            types = [s.event.TYPE for s in events]
            assert types.count("task.created") == 1
            assert types.count("service.served") == 1
            assert types.count("service.filed") == 1
            queued = [s.event.dispatch_id for s in events if isinstance(s.event, DispatchQueued)]
            sent = [s.event.dispatch_id for s in events if isinstance(s.event, DispatchSent)]
            assert len(queued) == len(set(queued))
            assert sorted(sent) == sorted(queued)  # every dispatch sent once: none re-sent after reopening

        # the second session published only its own events, each once
        new = [e.seq for e in second_sink.evidence]
        assert new == sorted(set(new))
        assert min(new) == len(before_close) + 1
        assert max(new) == len(everything)

        served = {t: client.status(t) for t in task_ids}
        assert served["T1"].served_at == NOW + timedelta(hours=1)
        assert served["T2"].served_at == NOW + timedelta(minutes=40)
        assert served["T3"].method is not None
        assert served["T3"].method.value == "postal"
        assert served["T4"].postal_rounds == 2
        assert served["T5"].method is not None
        assert served["T5"].method.value == "electronic"

    # providers were never asked twice for the same dispatch: the reopened engine did not re-send
    for keys in (world.sms.idempotency_keys, world.eservice.idempotency_keys):
        assert len(keys) == len(set(keys))
    assert world.sms.idempotency_keys[: len(sent_before["sms"])] == sent_before["sms"]
    assert world.eservice.idempotency_keys[: len(sent_before["es"])] == sent_before["es"]
