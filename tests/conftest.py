"""Shared fixtures: one test suite, two stores.

- ``store_factory`` is parametrised over ``["sqlite", "postgres"]``: a test that takes it runs once on a
  SQLite file and once on PostgreSQL. Calling the factory opens the test's store (again: every call opens
  the same file, or the same PostgreSQL schema, through a new store object); every store it opened is
  closed at teardown.
- ``pg_dsn``: a DSN (``...?schema=NAME``) naming a fresh PostgreSQL schema of this test's own.

The PostgreSQL variant creates a schema per test (``t_<random>``) and drops it afterwards, on the session's
server (the ``pg_server`` fixture):

- ``$DELIVERY_SDK_TEST_PG`` when it is set (a server you run; when it does not answer, the tests FAIL);
- else the default DSN ``postgresql://postgres@127.0.0.1:5432/test`` (``$DELIVERY_SDK_TEST_PG_DEFAULT``
  replaces it, e.g. with a dead port to try the next case) when a server answers there, as in CI;
- else a throwaway cluster of the session's own (:class:`delivery_sdk.testing.postgres.ThrowawayCluster`:
  initdb into a temporary folder, a free port, as an unprivileged user when run as root, stopped and removed
  at the end), from the server binaries ``./scripts/setup.sh`` installs. When none can be started, every
  PostgreSQL test FAILS with one message that says what to install: they are never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk.store import SQLiteStore, TaskStore
from delivery_sdk.testing.postgres import PostgresUnavailable, ThrowawayCluster

DEFAULT_PG_DSN = os.environ.get("DELIVERY_SDK_TEST_PG_DEFAULT", "postgresql://postgres@127.0.0.1:5432/test")


def _connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


class PgServer:
    """The session's PostgreSQL server: ``dsn`` names its database; :meth:`restart` restarts it (data kept)."""

    def __init__(self, dsn: str, cluster: ThrowawayCluster | None = None) -> None:
        self.dsn = dsn
        self.cluster = cluster

    def restart(self) -> None:
        if self.cluster is not None:
            self.cluster.restart()
            return
        with _connect(self.dsn) as conn:  # a Debian cluster (CI's): pg_ctlcluster VERSION main restart
            major = str(conn.execute("SHOW server_version_num").fetchone()[0])[:-4]
        subprocess.run(["pg_ctlcluster", major, "main", "restart"], check=True, capture_output=True, timeout=120)


def _answers(dsn: str) -> str | None:
    """``None`` when a server answers at ``dsn``, else why not."""
    import psycopg

    try:
        _connect(dsn).close()
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL server the session's tests use (see the module's docstring for which)."""
    explicit = os.environ.get("DELIVERY_SDK_TEST_PG")
    if explicit:
        problem = _answers(explicit)
        if problem:
            pytest.fail(
                f"PostgreSQL does not answer at DELIVERY_SDK_TEST_PG={explicit} ({problem}): start that server, "
                "or unset DELIVERY_SDK_TEST_PG to let the tests start a throwaway one.",
                pytrace=False,
            )
        yield PgServer(explicit)
        return
    if _answers(DEFAULT_PG_DSN) is None:
        yield PgServer(DEFAULT_PG_DSN)
        return
    try:
        cluster = ThrowawayCluster.start()
    except PostgresUnavailable as exc:
        pytest.fail(
            f"No PostgreSQL server for the PostgreSQL store tests: nothing answers at {DEFAULT_PG_DSN} and no "
            f"throwaway server could be started: {exc}",
            pytrace=False,
        )
    with cluster:
        yield PgServer(cluster.dsn, cluster)


class PgSchema:
    """A throwaway PostgreSQL schema: ``dsn`` names it (``?schema=``); :meth:`drop` removes it and its data."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        sep = "&" if "?" in server.dsn else "?"
        self.dsn = f"{server.dsn}{sep}schema={self.name}"

    def drop(self) -> None:
        from psycopg import sql

        with _connect(self.server.dsn) as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.name)))


class StoreFactory:
    """Opens this test's store: ``factory()`` (options go to the store's constructor)."""

    def __init__(self, kind: str, tmp_path: Path, server: PgServer | None = None) -> None:
        self.kind = kind
        self.opened: list[Any] = []
        self.pg: PgSchema | None = None
        if kind == "postgres":
            assert server is not None
            self.pg = PgSchema(server)
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
    server = request.getfixturevalue("pg_server") if request.param == "postgres" else None
    factory = StoreFactory(request.param, tmp_path, server)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    schema = PgSchema(pg_server)
    try:
        yield schema.dsn
    finally:
        schema.drop()
