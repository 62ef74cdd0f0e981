"""The README's script example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.startswith("filed electronic CPL Art. 90")
    assert (tmp_path / "service.sqlite3").exists()


def _readme_commands() -> tuple[str, str]:
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    return commands[0], commands[1]


def test_readme_commands_match_ci() -> None:
    """CI proves the README: .ci/run runs the README's two commands as written, and no set-up of its own."""
    install, tests = _readme_commands()
    assert install == "./scripts/setup.sh"
    assert tests == ".venv/bin/python -m pytest"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert install in ci_lines
    assert tests in ci_lines
    assert ci_lines.index(install) < ci_lines.index(tests)
    commands = [line for line in ci_lines if line and not line.startswith("#")]
    for forbidden in ("apt-get", "pip install", "-m venv", "pg_ctl", "pg_isready", "rm -rf .venv"):
        assert not any(forbidden in line for line in commands), f".ci/run sets up on its own: {forbidden}"


def _setup(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_setup_script_names_in_the_readme_every_package_it_installs() -> None:
    script = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    packages = re.findall(r'^check "?\$?(\S+?)"? have_', script, re.M)
    assert len(packages) >= 5, packages
    text = README.read_text(encoding="utf-8")
    for package in packages:
        name = "chromium" if package == "chromium_package" else package
        assert re.search(rf"^\| `{name}` \| \S", text, re.M), f"README's table does not say why {name} is installed"


def test_setup_script_installs_what_is_missing() -> None:
    """The install path, with every package taken as missing (--dry-run: nothing is installed)."""
    everything = "chromium chromium-browser poppler-utils fonts-wqy-microhei postgresql python3-venv"
    done = _setup("--dry-run", DELIVERY_SDK_SETUP_ASSUME_MISSING=everything)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("setup: would run:"))
    assert "apt-get update && apt-get install -y" in line
    for package in ("poppler-utils", "fonts-wqy-microhei", "postgresql", "python3-venv"):
        assert package in line.split()
    assert "chromium" in line or "chromium-browser" in line


def test_setup_script_refuses_an_old_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    done = _setup("--dry-run", PYTHON=str(fake))
    assert done.returncode == 2
    assert "3.11" in done.stderr
