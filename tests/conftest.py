"""Shared fixtures: one test suite, two stores.

- ``store_factory`` is parametrised over ``["sqlite", "postgres"]``: a test that takes it runs once on a
  SQLite file and once on PostgreSQL. Calling the factory opens the test's store (again: every call opens
  the same file, or the same PostgreSQL schema, through a new store object); every store it opened is
  closed at teardown.
- ``pg_dsn``: a DSN (``...?schema=NAME``) naming a fresh PostgreSQL schema of this test's own.

The PostgreSQL variant creates a schema per test (``t_<random>``) and drops it afterwards. It runs against
``$DELIVERY_SDK_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``); when that server does not
answer, the test FAILS with a message saying so: it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk.store import SQLiteStore, TaskStore

PG_DSN = os.environ.get("DELIVERY_SDK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL does not answer at {PG_DSN} ({str(exc).strip()}): the PostgreSQL store tests need it. "
            "Start it (pg_ctlcluster 15 main start) or point DELIVERY_SDK_TEST_PG at a server.",
            pytrace=False,
        )


class PgSchema:
    """A throwaway PostgreSQL schema: ``dsn`` names it (``?schema=``); :meth:`drop` removes it and its data."""

    def __init__(self) -> None:
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        sep = "&" if "?" in PG_DSN else "?"
        self.dsn = f"{PG_DSN}{sep}schema={self.name}"
        _pg_admin().close()  # fail clearly now if the server does not answer

    def drop(self) -> None:
        from psycopg import sql

        with _pg_admin() as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.name)))


class StoreFactory:
    """Opens this test's store: ``factory()`` (options go to the store's constructor)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.opened: list[Any] = []
        self.pg: PgSchema | None = None
        if kind == "postgres":
            self.pg = PgSchema()
            self.spec = self.pg.dsn
        else:
            self.spec = str(tmp_path / "store.sqlite3")

    @property
    def postgres(self) -> bool:
        return self.kind == "postgres"

    def __call__(self, **options: Any) -> TaskStore:
        store: TaskStore
        if self.pg is not None:
            from delivery_sdk.store.postgres import PostgresStore

            store = PostgresStore(self.pg.dsn, **options)
        else:
            store = SQLiteStore(self.spec, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()  # closing twice is harmless for both stores
        if self.pg is not None:
            self.pg.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = StoreFactory(request.param, tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    schema = PgSchema()
    try:
        yield schema.dsn
    finally:
        schema.drop()
