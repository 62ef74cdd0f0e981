"""The ``delivery-sdk`` command: demo, status, tasks, and their errors."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from delivery_sdk.cli import main


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "delivery_sdk.cli",
            "demo",
            "--tasks",
            "300",
            "--seed",
            "7",
            "--store",
            str(path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return path, out.stdout


def test_demo_summarises_a_completed_run(demo_store: tuple[Path, str]) -> None:
    path, out = demo_store
    assert re.search(r"tasks\s+300", out)
    assert re.search(r"filed\s+\d+", out)
    shares = {m: float(p) for m, p in re.findall(r"(electronic|postal|publication)\s+\d+\s+\(\s*([\d.]+)%\)", out)}
    assert set(shares) == {"electronic", "postal", "publication"}
    assert abs(sum(shares.values()) - 100.0) < 0.5
    assert shares["electronic"] > 30
    assert "median" in out
    assert "p90" in out
    assert re.search(r"postage avoided\s+[\d,]+ yuan", out)
    assert f"store written to {path.resolve()}" in out
    with sqlite3.connect(path) as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall())
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert sum(states.values()) == 300
    assert set(states) <= {"filed", "needs_attention"}
    assert events >= 300 * 6


def test_demo_is_reproducible_by_seed(tmp_path: Path, demo_store: tuple[Path, str]) -> None:
    _, _first = demo_store
    assert (
        main(["demo", "--tasks", "300", "--seed", "7", "--store", str(tmp_path / "again.sqlite3"), "--no-progress"])
        == 0
    )


def test_demo_refuses_an_existing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exists.sqlite3"
    path.write_bytes(b"")
    assert main(["demo", "--tasks", "5", "--store", str(path), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_demo_refuses_to_start_a_log_beside_an_earlier_stores_witness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store deleted while its witness checkpoint stayed: a new log at that path would fork the kept one."""
    path = tmp_path / "gone.sqlite3"
    witness = tmp_path / "gone.sqlite3.checkpoint"
    witness.write_text("court.example/demo\n7\nAAAA\n", encoding="utf-8")
    assert main(["demo", "--tasks", "5", "--store", str(path), "--no-progress"]) == 2
    assert "last checkpoint of an earlier store" in capsys.readouterr().err
    assert not path.exists()
    assert witness.read_text(encoding="utf-8") == "court.example/demo\n7\nAAAA\n"


def test_demo_rejects_zero_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--tasks", "0", "--store", str(tmp_path / "x.sqlite3")]) == 2
    assert "--tasks" in capsys.readouterr().err


def test_status_and_tasks_read_the_store(demo_store: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, out = demo_store
    case = re.search(r"--case '([^']+)'", out)
    task = re.search(r"status --store \S+ (T\d+)", out)
    assert case
    assert task
    assert main(["tasks", "--store", str(path), "--case", case.group(1)]) == 0
    listed = capsys.readouterr().out
    assert task.group(1) in listed
    assert main(["status", task.group(1), "--store", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "task.created" in shown
    assert "service.filed" in shown
    # the law is cited in Chinese for court staff: the service and the deadlines it starts
    served = next(line for line in shown.splitlines() if line.lstrip().startswith("送达 "))
    assert "《中华人民共和国民事诉讼法》" in served
    assert "CPL" not in served
    assert "(北京时间 UTC+8)" in served  # the served time in Beijing time, its zone shown
    assert not any("CPL" in line for line in shown.splitlines() if line.lstrip().startswith("期限"))
    assert "状态" in shown
    # contacts are masked
    assert not re.search(r"1[3-9]\d{9}", shown)
    # for integrators: English labels (the law as recorded) or JSON with English keys and UTC times
    assert main(["status", task.group(1), "--store", str(path), "--lang", "en"]) == 0
    english = capsys.readouterr().out
    assert next(line for line in english.splitlines() if line.lstrip().startswith("served"))
    assert "(Beijing time, UTC+8)" in english
    assert main(["status", task.group(1), "--store", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task_id"] == task.group(1)
    assert data["served_at"].endswith("+00:00")
    assert data["timeline"][0]["type"] == "task.created"
    assert main(["tasks", "--store", str(path), "--case", case.group(1), "--json"]) == 0
    assert task.group(1) in [row["task_id"] for row in json.loads(capsys.readouterr().out)]


def test_status_of_unknown_task_and_missing_store(
    tmp_path: Path, demo_store: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = demo_store
    assert main(["status", "T-nope", "--store", str(path)]) == 2  # bad input
    assert "no task 'T-nope'" in capsys.readouterr().err
    assert main(["status", "T1", "--store", str(tmp_path / "missing.sqlite3")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert main(["tasks", "--case", "(2026)鄂0000民初1号", "--store", str(path)]) == 2
