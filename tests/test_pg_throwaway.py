"""The PostgreSQL tests need no hand set-up: a throwaway cluster when nothing answers, one clear failure when
none can run (``tests/conftest.py``'s ``pg_server``, :mod:`delivery_sdk.testing.postgres`).

The inner runs point the default DSN at a port where nothing answers (``DELIVERY_SDK_TEST_PG_DEFAULT``) with
``DELIVERY_SDK_TEST_PG`` unset, as on a laptop with no PostgreSQL running.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from delivery_sdk.testing.postgres import PostgresUnavailable, ThrowawayCluster, find_server_bindir

ROOT = Path(__file__).resolve().parent.parent
INNER_TEST = """
def test_store_on_postgres(store_factory):
    if store_factory.postgres:
        store = store_factory()
        print("DSN", store_factory.spec)
"""


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def _leftovers() -> set[Path]:
    folders = {Path("/tmp"), Path(tempfile.gettempdir())}
    return {path for folder in folders for path in folder.glob("delivery-sdk-pg-*") if path.is_dir()}


def _inner(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TEST, encoding="utf-8")
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k != "DELIVERY_SDK_TEST_PG"}
    env["DELIVERY_SDK_TEST_PG_DEFAULT"] = f"postgresql://postgres@127.0.0.1:{_dead_port()}/test"
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-s", str(tmp_path / "test_inner.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_throwaway_cluster_starts_serves_and_is_removed() -> None:
    assert find_server_bindir() is not None, "the first README command installs the PostgreSQL server binaries"
    with ThrowawayCluster.start() as cluster:
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('data_directory'), current_user").fetchone()
        assert row is not None
        assert Path(row[0]) == cluster.data
        data_owner = cluster.data.stat().st_uid
        if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as an unprivileged user
            assert cluster.user in {"postgres", "nobody"}
            assert data_owner != 0
        cluster.restart()  # the data survives a restart
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        folder = cluster.folder
    assert not folder.exists(), "the throwaway cluster's folder was left behind"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.dsn, connect_timeout=2)


def test_the_session_starts_its_own_server_when_nothing_answers(tmp_path: Path) -> None:
    before = _leftovers()
    done = _inner(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout, done.stdout
    dsn = re.search(r"DSN (\S+)", done.stdout).group(1)  # type: ignore[union-attr]
    port = dsn.split("@127.0.0.1:")[1].split("/")[0]
    assert port != "5432"
    after = _leftovers()
    assert after <= before, f"left behind: {after - before}"
    with pytest.raises(psycopg.OperationalError):  # stopped at the end of the session
        psycopg.connect(dsn.split("?")[0], connect_timeout=2)


def test_no_server_binaries_is_one_clear_failure_never_a_skip(tmp_path: Path) -> None:
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    done = _inner(tmp_path, DELIVERY_SDK_PG_BINDIR=str(empty))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout, done.stdout  # the SQLite variant runs; PostgreSQL's fails
    assert "skipped" not in done.stdout
    assert "apt-get install postgresql" in done.stdout
    assert find_server_bindir({"DELIVERY_SDK_PG_BINDIR": str(empty)}) is None


def test_a_failing_initdb_says_why(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("initdb", "pg_ctl"):
        (fake / name).write_text("#!/bin/sh\necho 'no space left' >&2\nexit 1\n")
        (fake / name).chmod(0o755)
    with pytest.raises(PostgresUnavailable, match=r"initdb failed \(exit \d+\)"):
        ThrowawayCluster.start(fake)
