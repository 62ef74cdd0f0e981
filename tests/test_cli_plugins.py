"""The CLI's extension point: ``delivery_sdk.cli`` entry points add subcommands; a broken one is skipped."""

from __future__ import annotations

import argparse
import types
from typing import Any

import pytest

from delivery_sdk import cli


class EntryPoint:
    """What ``importlib.metadata`` hands out, reduced to what the CLI uses."""

    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self._target = target

    def load(self) -> Any:
        if isinstance(self._target, BaseException):
            raise self._target
        return self._target


def _hello(sub: Any) -> None:
    parser = sub.add_parser("hello", help="say hello")
    parser.add_argument("--name", default="world")
    parser.set_defaults(func=lambda args: print(f"hello {args.name}") or 7)


def _clash(sub: Any) -> None:
    sub.add_parser("demo")  # a built-in: argparse refuses the duplicate


def _parser_with(entry_points: list[EntryPoint]) -> tuple[argparse.ArgumentParser, list[str]]:
    parser = argparse.ArgumentParser(prog="delivery-sdk")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo")
    return parser, cli.register_cli_plugins(sub, entry_points)


def test_plugins_add_subcommands_and_broken_ones_are_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    module = types.SimpleNamespace(register=_hello)
    parser, loaded = _parser_with(
        [
            EntryPoint("hello", module),
            EntryPoint("broken", ImportError("no module named nowhere")),
            EntryPoint("clash", _clash),
            EntryPoint("not-callable", types.SimpleNamespace()),
        ]
    )
    assert loaded == ["hello"]
    err = capsys.readouterr().err
    assert "CLI plugin 'broken' skipped: ImportError" in err
    assert "CLI plugin 'clash' skipped: ArgumentError" in err
    assert "CLI plugin 'not-callable' skipped: AttributeError" in err
    args = parser.parse_args(["hello", "--name", "court"])
    assert args.func(args) == 7
    assert capsys.readouterr().out == "hello court\n"


def test_blocked_cli_plugins_are_not_loaded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DELIVERY_SDK_BLOCK_PLUGINS", "hello, other")
    _, loaded = _parser_with([EntryPoint("hello", _hello), EntryPoint("other", RuntimeError("never loaded"))])
    assert loaded == []
    assert capsys.readouterr().err == ""  # not even loaded
