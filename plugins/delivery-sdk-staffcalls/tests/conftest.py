"""A throwaway PostgreSQL server for the queue's PostgreSQL backend (initdb + pg_ctl on 127.0.0.1).

``DELIVERY_SDK_TEST_PG_DSN`` points the tests at an existing (empty, disposable) database instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres_user() -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres user then
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    return []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    preset = os.environ.get("DELIVERY_SDK_TEST_PG_DSN")
    if preset:
        yield preset
        return
    initdb = shutil.which("initdb")
    pg_ctl = shutil.which("pg_ctl")
    assert initdb, "PostgreSQL server binaries (initdb, pg_ctl) are needed, or DELIVERY_SDK_TEST_PG_DSN"
    assert pg_ctl, "PostgreSQL server binaries (initdb, pg_ctl) are needed, or DELIVERY_SDK_TEST_PG_DSN"
    folder = Path(tempfile.mkdtemp(prefix="staffcalls-pg-"))
    prefix = _as_postgres_user()
    if prefix:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh schema on the session's server (first on the search path of the DSN), dropped afterwards."""
    name = f"calls_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    yield f"{pg_server}?options=-csearch_path%3D{name}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{name}" CASCADE')
