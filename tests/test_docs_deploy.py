"""The snippets of the deployment pages that are not Python, checked (the Python ones run in test_docs.py).

- every ```toml block of ``docs/deploy.md`` parses and names only settings that exist: the sections of the
  settings file, ``EngineConfig``/``PolicyConfig`` fields, and ``DELIVERY_SDK_*`` variables that some part of
  delivery-sdk or its plugins reads; a variable named like a secret is given by reference, never inline;
- every ```sh block there is an environment file: ``NAME=value`` lines of known variables;
- every ``$ delivery-sdk ...`` line of a ```console block on the pages below parses with the real command
  line parser (the subcommand and every option exist), and ``docs/deploy.md`` names no other tools than
  the few it means to (``sqlite3``, ``systemctl``...).
"""

from __future__ import annotations

import functools
import re
import shlex
import tomllib
from pathlib import Path

import attrs
import pytest

from delivery_sdk import EngineConfig, PolicyConfig
from delivery_sdk.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONSOLE_PAGES = ["deploy.md", "operations.md", "callbacks.md", "testing.md"]
OTHER_COMMANDS = {"sqlite3", "pg_dump", "pg_restore", "systemctl", "eval", "python", "curl", "pip", "psql"}
SECTIONS = {
    "store": {"path", "dsn"},
    "evidence": {"origin", "key_file", "witness"},
    "engine": {f.name for f in attrs.fields(EngineConfig)},
    "policy": {f.name for f in attrs.fields(PolicyConfig)},
    "channels": None,  # adapter names by channel kind
    "env": None,  # checked against the known variables
}
_SECRET_WORDS = {"SECRET", "TOKEN", "PASSWORD", "PASSWD"}


def _blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


@functools.cache
def _known_variables() -> frozenset[str]:
    """Every ``DELIVERY_SDK_*`` name written out in delivery-sdk's or a plugin's source."""
    names: set[str] = set()
    for path in [*ROOT.glob("src/delivery_sdk/**/*.py"), *ROOT.glob("plugins/*/src/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"DELIVERY_SDK_[A-Z0-9_]*[A-Z0-9]", text))
        # a plugin that reads ENV_PREFIX + "NAME" (the e-mail and e-service plugins: p = ENV_PREFIX)
        prefix = re.search(r'^ENV_PREFIX = "(DELIVERY_SDK_[A-Z0-9_]*_)"', text, flags=re.M)
        if prefix:
            names.update(prefix[1] + n for n in re.findall(r'\b(?:p|ENV_PREFIX) \+ "([A-Z][A-Z0-9_]*)"', text))
    return frozenset(names)


def _is_secret(name: str) -> bool:
    return bool(_SECRET_WORDS & set(name.split("_"))) or name.endswith("_KEY")


def test_the_deploy_page_has_each_kind_of_snippet() -> None:
    assert _blocks("deploy.md", "toml")
    assert _blocks("deploy.md", "sh")
    assert _blocks("deploy.md", "console")
    assert "DELIVERY_SDK_SMS_URL" in _known_variables()


@pytest.mark.parametrize("block", _blocks("deploy.md", "toml"))
def test_settings_files_parse_and_name_only_known_settings(block: str) -> None:
    data = tomllib.loads(block)
    for section, table in data.items():
        assert section in SECTIONS, f"[{section}] is no section of the settings file"
        assert isinstance(table, dict)
        known = SECTIONS[section]
        if known is not None:
            unknown = set(table) - known
            assert not unknown, f"[{section}] has no {sorted(unknown)}"
    for name, value in data.get("env", {}).items():
        assert name in _known_variables(), f"nothing reads {name}"
        if _is_secret(name):
            assert isinstance(value, dict), f"{name} is a secret: give it as {{ file = ... }} or {{ env = ... }}"
            assert set(value) in ({"file"}, {"env"})
    policy = data.get("policy", {})
    if "poll_offsets" in policy:
        offsets = policy["poll_offsets"]
        assert offsets == sorted(offsets)
        assert all(isinstance(o, int | float) and o > 0 for o in offsets)


@pytest.mark.parametrize("block", _blocks("deploy.md", "sh"))
def test_environment_files_set_only_known_variables(block: str) -> None:
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\S*)", line)
        assert match, f"not a NAME=value line: {line!r}"
        assert match.group(1) in _known_variables(), f"nothing reads {match.group(1)}"
        assert not _is_secret(match.group(1)), f"{match.group(1)} is a secret: not in an environment file"


def _commands(page: str) -> list[str]:
    commands = []
    for block in _blocks(page, "console"):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line[2:] for line in joined.splitlines() if line.startswith("$ ")]
    return commands


@pytest.mark.parametrize("page", CONSOLE_PAGES)
def test_console_blocks_name_commands_and_options_that_exist(page: str) -> None:
    parser = build_parser()
    subcommands = set(next(a for a in parser._actions if a.dest == "command").choices or ())
    for command in _commands(page):
        words = shlex.split(command.replace("$(date +%F)", "2026-11-28"))
        if words[0] != "delivery-sdk":
            if page == "deploy.md":  # the deployment page names only these tools besides ours
                assert words[0] in OTHER_COMMANDS, f"{page}: {words[0]!r} is not a command we mean to name"
            continue
        assert words[1] in subcommands, f"{page}: no subcommand {words[1]!r}"
        try:
            parser.parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"{page}: `{command}` does not parse")
