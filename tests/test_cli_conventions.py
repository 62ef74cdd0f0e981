"""The command line's conventions (docs/user-guide.md, "Conventions"): Chinese by default with ``--lang en``,
times in Beijing time with the zone, ``--json`` on every read command, one way to name a store (``--store``,
the older positional form kept where it was), standard input when no argument is given and stdin is a pipe,
and the exit codes 0 (ok), 1 (a check failed), 2 (usage or bad input)."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from delivery_sdk.cli import build_parser, main
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

# 16:07 in Wuhan is 08:07 UTC
SERVED = datetime(2026, 11, 2, 8, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with one task served by SMS at 16:07 Wuhan time."""
    path = tmp_path_factory.mktemp("conventions") / "store.sqlite3"

    async def build() -> str:
        h = Harness(SQLiteStore(path), start=SERVED)
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        await h.aclose()
        return task_id

    return path, asyncio.run(build())


def test_status_shows_the_served_time_in_beijing_time(
    served: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, task_id = served
    assert main(["status", task_id, "--store", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["served_at"] == "2026-11-02T08:07:00+00:00"  # stored in UTC, with its offset
    assert main(["status", task_id, "--store", str(path)]) == 0
    out = capsys.readouterr().out
    served_line = next(line for line in out.splitlines() if line.startswith("  送达 "))
    assert "电子送达，2026-11-02 16:07 (北京时间 UTC+8)" in served_line
    assert "08:07" not in out
    assert "时间线 (北京时间 UTC+8)" in out
    assert main(["status", task_id, "--store", str(path), "--lang", "en"]) == 0
    assert "served    electronic on 2026-11-02 16:07 (Beijing time, UTC+8)" in capsys.readouterr().out


def test_tasks_lists_in_beijing_time(served: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, task_id = served
    data = json.loads(_run(capsys, "status", task_id, "--store", str(path), "--json"))
    assert main(["tasks", "--store", str(path), "--case", data["case_number"]]) == 0
    out = capsys.readouterr().out
    assert "送达时间（北京时间）" in out
    assert f"{task_id}" in out
    assert "电子送达 2026-11-02 16:07" in out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_every_read_command_has_json(served: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, task_id = served
    store = str(path)
    case = json.loads(_run(capsys, "status", task_id, "--store", store, "--json"))["case_number"]
    for argv in (
        ["status", task_id, "--store", store, "--json"],
        ["tasks", "--case", case, "--store", store, "--json"],
        ["stats", "--store", store, "--json"],
        ["verify", "--store", store, "--json"],
        ["calendar", "show", "2026", "--json"],
    ):
        json.loads(_run(capsys, *argv))  # one JSON document
    audit = json.loads(_run(capsys, "verify", "--store", store, "--json"))
    assert audit["ok"] is True
    assert audit["events"] > 0
    year = json.loads(_run(capsys, "calendar", "show", "2026", "--json"))
    assert "2026-10-01" in year["holidays"]
    assert year["provisional"] is False
    stats = json.loads(_run(capsys, "stats", "--store", store, "--json", "--lang", "en"))
    assert stats == json.loads(_run(capsys, "stats", "--store", store, "--json"))  # JSON is the same in any language
    assert [c["court"] for c in stats["courts"]] == ["武汉市武昌区人民法院"]


def test_every_command_with_a_store_takes_store(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    choices = sub.choices  # type: ignore[attr-defined]
    with_store = {name for name, p in choices.items() if any("--store" in a.option_strings for a in p._actions)}
    assert {"status", "tasks", "report", "stats", "verify", "proof", "migrate", "worker", "check-config"} <= with_store
    # no command names its store any other way
    for name, p in choices.items():
        for action in p._actions:
            if "store" in action.dest and action.dest not in ("store", "store_positional"):
                pytest.fail(f"{name}: {action.dest}")


def test_the_positional_store_stays_an_alias(served: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = served
    assert main(["verify", str(path)]) == 0
    assert main(["verify", "--store", str(path)]) == 0
    assert main(["verify", str(path), "--store", str(path)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(path), "--store", str(path) + "x"])
    assert exit_.value.code == 2
    assert "two stores" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["verify"])
    assert exit_.value.code == 2
    assert "--store" in capsys.readouterr().err


def test_exit_codes(served: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = served
    with pytest.raises(SystemExit) as exit_:  # usage: an unknown option, an unknown language
        main(["stats", "--store", str(path), "--no-such-option"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["stats", "--store", str(path), "--lang", "fr"])
    assert exit_.value.code == 2
    assert "zh_CN, en" in capsys.readouterr().err
    assert main(["status", "T-nope", "--store", str(path)]) == 2  # bad input: no such task
    assert main(["stats", "--store", str(path), "--court", "某某法院"]) == 2  # bad input: no such court
    assert "武汉市武昌区人民法院" in capsys.readouterr().err  # says which courts there are
    assert main(["stats", "--store", str(tmp_path / "missing.sqlite3")]) == 2
    assert main(["calendar", "show", "1990"]) == 2
    capsys.readouterr()
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    assert main(["verify-record", str(broken), "--json"]) == 1  # a check that failed
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_lines_from_a_pipe(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("武汉市武昌区中北路1号\n"))
    assert main(["resolve-address"]) == 0
    assert json.loads(capsys.readouterr().out)["code"] == "420106"


def test_language_from_the_environment(
    served: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, task_id = served
    monkeypatch.setenv("DELIVERY_SDK_LANG", "en")
    assert "(Beijing time, UTC+8)" in _run(capsys, "status", task_id, "--store", str(path))
    assert "(北京时间 UTC+8)" in _run(capsys, "status", task_id, "--store", str(path), "--lang", "zh")
