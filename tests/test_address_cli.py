"""``delivery-sdk resolve-address``: arguments, a file, stdin, errors; one JSON object a line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from delivery_sdk.cli import main


def _rows(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_addresses_as_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve-address", "湖北省武汉市武昌区中北路1号", "鼓楼区中山路", "中北路1号"]) == 0
    first, second, third = _rows(capsys.readouterr().out)
    assert first == {
        "address": "湖北省武汉市武昌区中北路1号",
        "code": "420106",
        "route_key": "420100",
        "status": "resolved",
        "candidates": [{"code": "420106", "name": "武昌区", "path": "湖北省武汉市武昌区"}],
        "span": [0, 9],
        "confidence": 0.97,
        "ok": True,
        "flags": [],
        "corrections": [],
        "evidence": ["name 湖北省", "name 武汉市", "name 武昌区"],
    }
    assert (second["code"], second["route_key"], second["status"]) == (None, None, "ambiguous")
    assert isinstance(second["candidates"], list)
    assert {c["code"] for c in second["candidates"]} == {"320106", "320302", "350102", "410204"}
    assert (third["status"], third["candidates"], third["span"]) == ("unresolved", [], None)


def test_file_one_address_a_line_skipping_blank_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "addresses.txt"
    path.write_text("青山区和平大道\n\n  襄樊市樊城区人民路  \n", encoding="utf-8")
    assert main(["resolve-address", "--file", str(path)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [(r["code"], r["status"]) for r in rows] == [
        ("420107", "assumed_home_province"),
        ("420606", "resolved"),
    ]


def test_home_province_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve-address", "--home-province", "150000", "青山区"]) == 0
    (row,) = _rows(capsys.readouterr().out)
    assert (row["code"], row["route_key"], row["status"]) == ("150204", "150200", "assumed_home_province")


def test_stdin_with_dash(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("湖北省孝感市云孟县城关镇\n神农架林区松柏镇\n"))
    assert main(["resolve-address", "-"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [(r["code"], r["route_key"], r["status"]) for r in rows] == [
        ("420923", "420900", "fuzzy"),
        ("429021", "429021", "resolved"),
    ]


def test_bad_address_is_reported_on_its_line_and_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve-address", "武昌区", ""]) == 1
    good, bad = _rows(capsys.readouterr().out)
    assert good["code"] == "420106"
    assert bad == {"address": "", "error": "the address is empty"}


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no argument, an empty pipe: nothing to resolve
    assert main(["resolve-address"]) == 2
    assert "no address given" in capsys.readouterr().err
    assert main(["resolve-address", "--file", str(tmp_path / "missing.txt")]) == 2
    assert "error:" in capsys.readouterr().err
    path = tmp_path / "a.txt"
    path.write_text("武昌区\n", encoding="utf-8")
    assert main(["resolve-address", "--file", str(path), "江汉区"]) == 2
    assert "not both" in capsys.readouterr().err


def test_installed_command_runs_in_a_fresh_process() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "delivery_sdk.cli", "resolve-address", "-"],
        input="北京市海淀区中关村大街1号\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
        timeout=60,
    )
    (row,) = _rows(out.stdout)
    assert (row["code"], row["route_key"], row["status"]) == ("110108", "110100", "resolved")


def test_no_argument_and_a_pipe_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI convention: a command that takes lines reads standard input when given no arguments and stdin
    is not a terminal."""
    monkeypatch.setattr("sys.stdin", io.StringIO("武汉市武昌区中北路1号\n\n北京市海淀区中关村大街1号\n"))
    assert main(["resolve-address"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["code"] for r in rows] == ["420106", "110108"]
