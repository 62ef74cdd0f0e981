"""A throwaway PostgreSQL server for the queue's PostgreSQL backend (:mod:`delivery_sdk.testing.postgres`).

``DELIVERY_SDK_TEST_PG_DSN`` points the tests at an existing (empty, disposable) database instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from delivery_sdk.testing.postgres import PostgresUnavailable, ThrowawayCluster


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    preset = os.environ.get("DELIVERY_SDK_TEST_PG_DSN")
    if preset:
        yield preset
        return
    try:
        cluster = ThrowawayCluster.start()  # finds Debian's /usr/lib/postgresql/*/bin; as root, runs unprivileged
    except PostgresUnavailable as exc:
        pytest.fail(f"no PostgreSQL server for the queue's tests: {exc}", pytrace=False)
    with cluster:
        yield cluster.dsn


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh schema on the session's server (first on the search path of the DSN), dropped afterwards."""
    name = f"calls_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    yield f"{pg_server}?options=-csearch_path%3D{name}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{name}" CASCADE')
