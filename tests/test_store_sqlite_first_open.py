"""Several processes opening one new SQLite file at once all get the same, migrated store (issue 23).

Before: about one round in three failed with ``table tasks already exists`` (two openers both saw schema
version 0 and both ran the migrations) or ``database is locked`` (the journal-mode switch ran before the
busy timeout was set), and the worker that hit it exited.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from delivery_sdk.store import SQLiteStore
from delivery_sdk.store.sqlite import MIGRATIONS

OPEN = """
import sys, time
from delivery_sdk.store import SQLiteStore
start = float(sys.argv[2])
while time.time() < start:
    pass
store = SQLiteStore(sys.argv[1])
print(store.schema_version)
store.close()
"""


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    import time

    for round_ in range(6):
        path = tmp_path / f"new-{round_}.sqlite3"
        start = time.time() + 1.0  # every process is imported and spinning by then
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(path), str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err
            assert out.strip() == str(len(MIGRATIONS))
        with SQLiteStore(path) as store:
            assert store.all_task_ids() == []
            assert store.schema_version == len(MIGRATIONS)
