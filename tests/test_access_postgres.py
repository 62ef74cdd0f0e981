"""Court scope on PostgreSQL (issue 20): the court column and the access log, and row-level security by court
for deployments where each court's software connects with a database role of its own (docs/operations.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from delivery_sdk import AccessDenied, Actor, DeliveryClient, UnknownTask
from delivery_sdk.clock import VirtualClock
from delivery_sdk.evidence.audit import verify_store
from delivery_sdk.store.postgres import PostgresStore
from delivery_sdk.testing import make_request

WUCHANG, HONGSHAN = "鄂0106", "鄂0111"


@pytest.fixture
def two_courts(pg_dsn: str) -> Iterator[tuple[DeliveryClient, str, str]]:
    clock = VirtualClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    client = DeliveryClient(PostgresStore(pg_dsn), clock=clock, load_entry_points=False)
    a = client.submit(make_request(case_number=f"(2026){WUCHANG}民初1号", client_key="a"))
    b = client.submit(make_request(case_number=f"(2026){HONGSHAN}民初2号", client_key="b"))
    yield client, a, b
    client.store.close()
    client.close()


def test_court_scope_and_the_access_log_on_postgres(two_courts: tuple[DeliveryClient, str, str], pg_dsn: str) -> None:
    client, a, b = two_courts
    assert client.store.task_row(b).court == HONGSHAN
    clerk = client.as_actor(Actor(staff_id="c1", role="clerk", courts=WUCHANG))
    assert clerk.count_by_state() == {"created": 1}
    with pytest.raises(AccessDenied):
        clerk.timeline(b)
    clerk.timeline(a)
    clerk.task(a)
    records = client.access_records()
    assert [(r.seq, r.task_id, r.what) for r in records] == [(1, a, "timeline"), (2, a, "task")]
    assert verify_store(pg_dsn).ok
    # a read-only store records the read all the same (the access log alone is written)
    with DeliveryClient(PostgresStore(pg_dsn, readonly=True), load_entry_points=False) as reader:
        reader.task(b)
        reader.store.close()
    assert [r.task_id for r in client.access_records()][-1] == b
    import psycopg

    with psycopg.connect(pg_dsn.split("?")[0], autocommit=True) as admin:
        schema = pg_dsn.rsplit("schema=", 1)[1]
        admin.execute(f"UPDATE \"{schema}\".access_log SET what = 'status' WHERE seq = 1")
    report = verify_store(pg_dsn)
    assert any("access record 1 does not match" in p for p in report.problems)


@pytest.fixture
def court_roles(pg_dsn: str, two_courts: tuple[DeliveryClient, str, str]) -> Iterator[dict[str, str]]:
    """Two login roles of unique names, one per court, granted as docs/operations.md says; dropped after."""
    import psycopg
    from psycopg import sql

    base, schema = pg_dsn.split("?")[0], pg_dsn.rsplit("schema=", 1)[1]
    suffix = uuid.uuid4().hex[:8]
    roles = {WUCHANG: f"court_a_{suffix}", HONGSHAN: f"court_b_{suffix}"}
    with psycopg.connect(base, autocommit=True) as admin:
        for court, role in roles.items():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            admin.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role))
            )
            admin.execute(
                sql.SQL(
                    "GRANT SELECT, UPDATE, INSERT ON {s}.tasks, {s}.events, {s}.outbox, {s}.access_log, "
                    "{s}.court_roles, {s}.schema_version TO {r}"
                ).format(s=sql.Identifier(schema), r=sql.Identifier(role))
            )
            admin.execute(
                sql.SQL("INSERT INTO {}.court_roles (role_name, court) VALUES (%s, %s)").format(sql.Identifier(schema)),
                (role, court),
            )
    try:
        yield {
            court: f"{base}{'&' if '?' in base else '?'}user={role}&schema={schema}" for court, role in roles.items()
        }
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            for role in roles.values():
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _rows(dsn: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    import psycopg

    base, schema = dsn.split("&schema=")[0], dsn.rsplit("schema=", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else [(cur.rowcount,)]


def test_row_level_security_keeps_each_courts_role_to_its_own_rows(
    two_courts: tuple[DeliveryClient, str, str], court_roles: dict[str, str]
) -> None:
    client, a, b = two_courts
    as_a, as_b = court_roles[WUCHANG], court_roles[HONGSHAN]
    assert _rows(as_a, "SELECT task_id FROM tasks") == [(a,)]
    assert _rows(as_b, "SELECT task_id FROM tasks") == [(b,)]
    assert {r[0] for r in _rows(as_a, "SELECT DISTINCT task_id FROM events")} == {a}
    # another court's rows can be neither changed nor made
    assert _rows(as_a, "UPDATE tasks SET state = 'cancelled' WHERE task_id = %s", (b,)) == [(0,)]
    assert client.store.task_row(b).state == "created"
    import psycopg

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        _rows(as_a, "UPDATE tasks SET court = %s WHERE task_id = %s", (HONGSHAN, a))
    # the SDK on a court's own role: the other court's task is simply not there
    with DeliveryClient(PostgresStore(as_a, readonly=True), load_entry_points=False) as court_a:
        assert court_a.status(a).task_id == a
        with pytest.raises(UnknownTask):
            court_a.status(b)
        court_a.store.close()
