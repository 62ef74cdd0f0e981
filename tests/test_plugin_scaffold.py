"""``delivery-sdk new-plugin``: the generated package passes its own tests and ``mypy --strict`` as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from delivery_sdk.cli import main
from delivery_sdk.plugin_kit.scaffold import ScaffoldError, known_kinds, new_plugin


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_generated_package_passes_its_tests_and_mypy_strict(tmp_path: Path) -> None:
    target = new_plugin("ding-talk", "wechat", tmp_path)
    assert target == tmp_path / "delivery-sdk-ding-talk"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "docs/ding-talk.md",
        "pyproject.toml",
        "src/delivery_sdk_ding_talk/__init__.py",
        "src/delivery_sdk_ding_talk/emulator.py",
        "src/delivery_sdk_ding_talk/py.typed",
        "tests/test_ding_talk.py",
    ]
    pyproject = (target / "pyproject.toml").read_text()
    assert 'ding-talk = "delivery_sdk_ding_talk:plugin"' in pyproject
    assert "DELIVERY_SDK_DING_TALK_URL" in (target / "docs/ding-talk.md").read_text()
    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], target)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout
    cache = tmp_path / "mypy-cache"
    typed = _run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "src", "tests"], target)
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_every_kind_of_today_is_accepted_and_passed_through(tmp_path: Path) -> None:
    assert set(known_kinds()) >= {"sms", "wechat", "email", "eservice", "phone"}
    for kind in known_kinds():
        target = new_plugin(f"k-{kind}", kind, tmp_path)
        assert f'KIND = "{kind}"' in (target / f"src/delivery_sdk_k_{kind}/__init__.py").read_text()


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("DingTalk", "sms", "lower-case ASCII letters"),
        ("ding_talk", "sms", "lower-case ASCII letters"),
        ("-x", "sms", "lower-case ASCII letters"),
        ("x" * 41, "sms", "at most 40"),
        ("钉钉", "sms", "lower-case ASCII letters"),
        ("delivery-sdk-ding", "sms", "without the 'delivery-sdk-' prefix"),
        ("class", "sms", "Python keyword"),
        ("ding", "pigeon", "unknown channel kind 'pigeon'"),
        ("ding", "print", "unknown channel kind 'print'"),
    ],
)
def test_a_bad_name_or_kind_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, kind: str, message: str
) -> None:
    with pytest.raises(ScaffoldError, match=message):
        new_plugin(name, kind, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "delivery-sdk-ding"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(ScaffoldError, match="already exists"):
        new_plugin("ding", "sms", tmp_path)
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "ding", "--kind", "sms", "--dir", str(tmp_path)]) == 0
    assert str(tmp_path / "delivery-sdk-ding") in capsys.readouterr().out
    assert main(["new-plugin", "ding", "--kind", "sms", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new-plugin", "ding2", "--kind", "pigeon", "--dir", str(tmp_path)]) == 2
    assert "unknown channel kind 'pigeon'" in capsys.readouterr().err


def test_the_command_line_does_not_need_httpx() -> None:
    """The core does not depend on httpx: building the CLI (new-plugin included) must not import it."""
    code = "import sys, delivery_sdk.cli as c; c.build_parser(); sys.exit(1 if 'httpx' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
