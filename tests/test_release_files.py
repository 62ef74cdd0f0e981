"""What a vendor's legal and release people look for: the licence, the version in one place, the changelog,
the security policy, the contributing guide, the docs site's configuration. The builds themselves are checked
by ``scripts/check-dist.sh`` in CI (and ``nox -s dist``)."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import delivery_sdk

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_the_licence_file_is_the_licence_pyproject_names() -> None:
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    text = _read("LICENSE")
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    for plugin in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        licence = tomllib.loads(plugin.read_text(encoding="utf-8"))["project"].get("license")
        assert licence in (None, {"text": "Apache-2.0"}, "Apache-2.0"), f"{plugin}: {licence}"


def test_the_version_is_kept_in_one_place() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/delivery_sdk/__init__.py"
    tree = ast.parse(_read("src/delivery_sdk/__init__.py"))
    assigned = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert assigned == [delivery_sdk.__version__]
    assert version("delivery-sdk") == delivery_sdk.__version__, "reinstall: the installed metadata is stale"


def test_the_changelog_has_the_version_in_keep_a_changelog_form() -> None:
    text = _read("CHANGELOG.md")
    assert "[Keep a Changelog]" in text
    assert "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(delivery_sdk.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)
    kinds = set(re.findall(r"^### (\w+)$", text, re.M))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds


def test_the_security_policy_says_how_to_report_and_points_at_the_threat_model() -> None:
    text = _read("SECURITY.md")
    assert "## Reporting a vulnerability" in text
    assert "(docs/security.md)" in text
    assert (ROOT / "docs" / "security.md").exists()


def test_contributing_names_every_nox_session_and_the_test_set_ups() -> None:
    text = _read("CONTRIBUTING.md")
    sessions = re.findall(r"^@nox\.session\ndef (\w+)\(", _read("noxfile.py"), re.M)
    assert len(sessions) >= 7, sessions
    for session in sessions:
        assert f"nox -s {session}" in text, f"CONTRIBUTING.md does not name the nox session {session}"
    for needed in ("DELIVERY_SDK_TEST_PG", "throwaway", "chromium", "pdftoppm"):
        assert needed in text


def test_the_docs_site_is_strict_and_covers_the_public_modules() -> None:
    config = _read("mkdocs.yml")
    assert re.search(r"^strict: true$", config, re.M)
    assert "mkdocstrings" in config
    reference = _read("docs/reference.md")
    for module in (
        "delivery_sdk",
        "delivery_sdk.channels",
        "delivery_sdk.store",
        "delivery_sdk.law",
        "delivery_sdk.supervision",
        "delivery_sdk.printing",
        "delivery_sdk.evidence",
        "delivery_sdk.proof",
        "delivery_sdk.testing",
    ):
        assert f"::: {module}\n" in reference, f"the API reference leaves out {module}"


def test_the_docstring_rule_covers_the_public_modules() -> None:
    lint = PYPROJECT["tool"]["ruff"]["lint"]
    assert {"D100", "D101", "D102", "D103", "D104"} <= set(lint["select"])
    # D1 is ignored everywhere but the core's modules and the plugins' (issue 18: plugins/*/src too)
    assert lint["per-file-ignores"]["!{src/delivery_sdk/**,plugins/*/src/**}"] == ["D1"]


def test_requirements_dev_installs_every_plugin() -> None:
    """README's first command installs requirements-dev.txt: every package under plugins/ must be in it, or its
    tests fail to import on a fresh machine."""
    lines = {line.strip() for line in _read("requirements-dev.txt").splitlines()}
    for plugin in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        assert f"-e plugins/{plugin.parent.name}" in lines, f"requirements-dev.txt leaves out {plugin.parent.name}"
