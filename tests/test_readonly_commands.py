"""Tools that only read, read (issue 15, part 4).

Every command that reads a store (``status``, ``tasks``, ``stats``, ``report``, ``verify``, ``proof``) opens it
read-only and never migrates it. Pointed at something that is not a delivery-sdk store — another
application's SQLite file, an empty file, a text file, a folder, a store of a newer or older schema — each
says so in one line on stderr and exits 2: no traceback, and the file's bytes (or the folder's listing) are
exactly what they were.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from delivery_sdk import NotAStore, SchemaVersionError, StoreError
from delivery_sdk.cli import main
from delivery_sdk.demo import DemoResult, run_demo
from delivery_sdk.store import SQLiteStore, open_store
from delivery_sdk.store.sqlite import MIGRATIONS, connect_readonly
from delivery_sdk.supervision.query import SUPERVISION_INDEXES, Supervisor


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    path = tmp_path_factory.mktemp("ro-demo") / "demo.sqlite3"
    return asyncio.run(run_demo(tasks=40, seed=11, store_path=path, progress=None))


def _other_app(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    db.execute("INSERT INTO notes (text) VALUES ('not a store')")
    db.commit()
    db.close()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("task_id,state\nT1,filed\n" * 50, encoding="utf-8")


def _folder(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("x", encoding="utf-8")


def _copy_with_version(source: Path, path: Path, version: int) -> None:
    shutil.copy(source, path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={version}")
    db.commit()
    db.close()


def _older(path: Path) -> None:
    """A store as schema version 4 left it (before the plain supervision columns)."""
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:4]:
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("PRAGMA user_version=4")
    db.commit()
    db.close()


BAD_STORES: dict[str, Callable[[Path], None]] = {
    "other_app.sqlite3": _other_app,
    "empty.sqlite3": _empty,
    "notes.txt": _text,
    "a_folder": _folder,
    "older.sqlite3": _older,
}

READ_COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "status": lambda store: ["status", "--store", store, "T0000001"],
    "tasks": lambda store: ["tasks", "--store", store, "--case", "(2026)鄂0102民初1001号"],
    "stats": lambda store: ["stats", "--store", store],
    "report": lambda store: ["report", "--store", store, "--out", os.devnull],
    "verify": lambda store: ["verify", store],
    "proof": lambda store: ["proof", "--store", store, "T0000001"],
}


def _snapshot(path: Path) -> dict[str, str]:
    """Every file at or under ``path`` (and the store's -wal/-shm/-journal neighbours) with its digest."""
    found: dict[str, str] = {}
    paths = [path] if not path.is_dir() else sorted(path.rglob("*"))
    for p in paths:
        if p.is_file():
            found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    for suffix in ("-journal",):
        side = path.with_name(path.name + suffix)
        if side.exists():
            found[str(side)] = hashlib.sha256(side.read_bytes()).hexdigest()
    return found


@pytest.mark.parametrize("command", sorted(READ_COMMANDS))
@pytest.mark.parametrize("kind", sorted(BAD_STORES))
def test_a_read_command_refuses_what_is_not_a_store_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, command: str
) -> None:
    target = tmp_path / kind
    BAD_STORES[kind](target)
    before = _snapshot(target)
    assert main(READ_COMMANDS[command](str(target))) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    assert _snapshot(target) == before
    if kind == "older.sqlite3":
        assert "delivery-sdk migrate" in lines[0]
    if target.is_file():
        assert not target.with_name(target.name + "-journal").exists()


@pytest.mark.parametrize("command", sorted(READ_COMMANDS))
def test_a_store_of_a_newer_schema_is_refused_unchanged(
    demo: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    newer = tmp_path / "newer.sqlite3"
    _copy_with_version(demo.store_path, newer, len(MIGRATIONS) + 1)
    before = _snapshot(newer)
    assert main(READ_COMMANDS[command](str(newer))) == 2
    err = capsys.readouterr().err
    assert "newer than this SDK knows" in err
    assert "Traceback" not in err
    assert _snapshot(newer) == before
    with sqlite3.connect(f"file:{newer}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1


def test_the_read_commands_leave_a_good_store_byte_for_byte(
    demo: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "copy.sqlite3"
    shutil.copy(demo.store_path, store)
    # a store nobody supervised yet: stats and report must not add the supervision indexes to it
    with sqlite3.connect(store) as db:
        for name in SUPERVISION_INDEXES:
            db.execute(f"DROP INDEX IF EXISTS {name}")
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _snapshot(store)
    for command in ("status", "stats", "report", "verify"):
        assert main(READ_COMMANDS[command](str(store))) == 0, command
    assert main(["tasks", "--store", str(store), "--case", demo.example_case]) == 0
    err = capsys.readouterr().err
    assert "no supervision indexes" in err  # stats says how to make it faster, and does not do it itself
    assert _snapshot(store) == before
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not set(SUPERVISION_INDEXES) & names


def test_migrate_is_the_command_that_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    older = tmp_path / "older.sqlite3"
    _older(older)
    assert main(["stats", "--store", str(older)]) == 2
    assert "delivery-sdk migrate" in capsys.readouterr().err
    assert main(["migrate", "--store", str(older)]) == 0
    assert f"schema version {len(MIGRATIONS)}" in capsys.readouterr().out
    assert main(["stats", "--store", str(older)]) == 0
    assert "no supervision indexes" not in capsys.readouterr().err
    other = tmp_path / "other.sqlite3"
    _other_app(other)
    before = _snapshot(other)
    assert main(["migrate", "--store", str(other)]) == 2  # another application's file is never taken over
    assert "another application" in capsys.readouterr().err
    assert _snapshot(other) == before


def test_a_store_that_is_read_only_to_the_reader_can_be_read(demo: DemoResult) -> None:
    """A copy on read-only media, or a file owned by another user in a folder the reader cannot write: SQLite
    cannot create the WAL index beside it, and the reader still gets its answers."""
    base = Path(tempfile.mkdtemp(prefix="delivery-ro-"))  # under /tmp: reachable by another user
    try:
        base.chmod(0o755)
        folder = base / "ro"
        folder.mkdir()
        store = folder / "demo.sqlite3"
        shutil.copy(demo.store_path, store)
        with sqlite3.connect(store) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for side in ("-wal", "-shm"):
            store.with_name(store.name + side).unlink(missing_ok=True)
        store.chmod(0o644)
        folder.chmod(0o555)  # nobody but root may create the WAL index beside the store
        before = _snapshot(store)
        command = [sys.executable, "-m", "delivery_sdk.cli", "status", "--store", str(store), "T0000001"]
        if os.geteuid() == 0:  # root writes anywhere: read as an unprivileged user instead
            setpriv = shutil.which("setpriv")
            as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else []
            probe = [*as_nobody, sys.executable, "-c", "import delivery_sdk"]
            if as_nobody and subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0:
                command = [*as_nobody, *command]
            else:
                # this checkout is out of an unprivileged user's reach: make the WAL index impossible to create
                # for root too (a folder where SQLite would put it), which fails SQLite's open the same way
                folder.chmod(0o755)
                store.with_name(store.name + "-shm").mkdir()
        run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        assert "T0000001" in run.stdout
        assert _snapshot(store) == before
        assert not store.with_name(store.name + "-shm").is_file()
    finally:
        (base / "ro").chmod(0o755)
        shutil.rmtree(base)


def test_library_readers_refuse_without_writing(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    _other_app(other)
    before = _snapshot(other)
    with pytest.raises(NotAStore, match="not a delivery-sdk store"):
        open_store(str(other), readonly=True)
    with pytest.raises(NotAStore, match="another application"):
        SQLiteStore(other)  # a writer does not take another application's file over either
    with pytest.raises(NotAStore):
        Supervisor(other)  # not even the supervisor that upgrades stores by default
    with pytest.raises(NotAStore):
        connect_readonly(":memory:")
    assert _snapshot(other) == before
    with pytest.raises(FileNotFoundError):
        open_store(str(tmp_path / "missing.sqlite3"), readonly=True)
    assert not (tmp_path / "missing.sqlite3").exists()


def test_a_read_only_store_refuses_writes_with_a_clear_error(demo: DemoResult, tmp_path: Path) -> None:
    store = tmp_path / "copy.sqlite3"
    shutil.copy(demo.store_path, store)
    before = _snapshot(store)
    with SQLiteStore(store, readonly=True) as ro:
        assert ro.all_task_ids()[:1] == ["T0000001"]
        with pytest.raises(StoreError, match="read-only"):
            ro.create_tasks([])
    assert _snapshot(store) == before


def test_an_older_store_is_refused_by_a_reader_and_upgraded_by_a_writer(tmp_path: Path) -> None:
    older = tmp_path / "older.sqlite3"
    _older(older)
    with pytest.raises(SchemaVersionError, match="older than this SDK"):
        open_store(str(older), readonly=True)
    with SQLiteStore(older) as store:
        assert store.schema_version == len(MIGRATIONS)
    with open_store(str(older), readonly=True) as store:  # type: ignore[attr-defined]
        assert store.all_task_ids() == []


def test_postgres_read_only_opens_create_nothing(pg_dsn: str) -> None:
    import psycopg

    from delivery_sdk.store.postgres import PostgresStore

    name = pg_dsn.rsplit("schema=", 1)[1]
    admin_dsn = pg_dsn.split("?", 1)[0]

    def schema_exists() -> bool:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone() is not None

    with pytest.raises(NotAStore, match="does not exist"):
        PostgresStore(pg_dsn, readonly=True)
    assert not schema_exists()
    assert main(["status", "--store", pg_dsn, "T1"]) == 2
    assert not schema_exists()
    PostgresStore(pg_dsn).close()  # a writer creates it
    with PostgresStore(pg_dsn, readonly=True) as store:  # type: ignore[attr-defined]
        assert store.all_task_ids() == []
        with pytest.raises(StoreError, match="read-only"):
            store.create_tasks([])
