"""``delivery-sdk new-plugin NAME --kind KIND``: a new channel plugin package, ready to be filled in.

:func:`new_plugin` writes, under ``DIR/delivery-sdk-NAME``:

- ``pyproject.toml`` with the ``delivery_sdk`` and ``delivery_sdk.emulators`` entry points;
- ``src/delivery_sdk_NAME/__init__.py``: an adapter on :mod:`delivery_sdk.plugin_kit` (client, rate
  limit, error mapping, settings, signed callbacks, a shaped callback reply) for a made-up provider API;
- ``src/delivery_sdk_NAME/emulator.py``: that API's emulator (an :class:`~delivery_sdk.testing.EmulatorServer`);
- ``tests/test_NAME.py``: tests that pass as generated (the emulator's ``transport()``, no socket);
- ``docs/NAME.md`` and ``README.md``.

The package passes its tests and ``mypy --strict`` as generated; the author then replaces the made-up API
with the provider's, where the code says ``TODO``. The kind is passed through as a string: any kind the
installed SDK knows is accepted.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import string
from importlib import resources
from pathlib import Path

from .._exceptions import ValidationError

__all__ = ["NAME_PATTERN", "ScaffoldError", "add_arguments", "known_kinds", "new_plugin", "run_from_args"]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
"""A plugin name: lower-case ASCII letters and digits, words joined by single hyphens (``dingtalk``,
``wecom-notify``), starting with a letter, at most 40 characters."""

_MAX_NAME = 40

# template -> where it goes (NAME and MODULE replaced)
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "adapter.py.tmpl": "src/MODULE/__init__.py",
    "emulator.py.tmpl": "src/MODULE/emulator.py",
    "test_adapter.py.tmpl": "tests/test_NAME.py",
    "docs.md.tmpl": "docs/DOCNAME.md",
}


class ScaffoldError(ValidationError):
    """A plugin name or kind that cannot be used, or a target folder that already exists; nothing was written."""


def known_kinds() -> list[str]:
    """The channel kinds the installed SDK knows, by name (``sms``, ``wechat``...), print and post aside."""
    from ..model import ChannelKind

    return [kind.value for kind in ChannelKind if kind.value not in ("print", "post")]


def _check(name: str, kind: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > _MAX_NAME:
        raise ScaffoldError(
            f"the plugin name {name!r} is not usable: use lower-case ASCII letters and digits, words joined by"
            f" single hyphens, starting with a letter, at most {_MAX_NAME} characters (say 'dingtalk')"
        )
    if name.startswith("delivery-sdk"):
        short = name.removeprefix("delivery-sdk-")
        raise ScaffoldError(f"give the name without the 'delivery-sdk-' prefix (say {short!r})")
    if keyword.iskeyword(name.replace("-", "_")):
        raise ScaffoldError(f"the plugin name {name!r} is a Python keyword; choose another")
    kinds = known_kinds()
    if kind not in kinds:
        raise ScaffoldError(
            f"unknown channel kind {kind!r}: the installed delivery-sdk knows {', '.join(kinds)}"
            " (a plugin of a new kind needs the kind registered first)"
        )


def _names(names: list[str]) -> str:
    """``__all__``'s literal, in the order ruff keeps it (constants, classes, functions)."""
    ordered = sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    return "[" + ", ".join(f'"{n}"' for n in ordered) + "]"


def new_plugin(name: str, kind: str, directory: str | os.PathLike[str] = ".") -> Path:
    """Write the package of plugin ``name`` (channel kind ``kind``) under ``directory``; returns its folder.

    :raises ScaffoldError: ``name`` is not a usable plugin name (see :data:`NAME_PATTERN`), ``kind`` is
        not a kind the installed SDK knows, or the folder ``directory/delivery-sdk-NAME`` already exists
        (never overwritten). Nothing is written then.
    :raises OSError: ``directory`` cannot be written (a partly written package is removed).
    """
    _check(name, kind)
    from .. import __version__

    target = Path(directory) / f"delivery-sdk-{name}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another --dir, or remove it first (nothing was written)")
    words = name.split("-")
    cls = "".join(w.capitalize() for w in words)
    values = {
        "name": name,
        "kind": kind,
        "dist": f"delivery-sdk-{name}",
        "module": "delivery_sdk_" + "_".join(words),
        "cls": cls,
        "title": " ".join(w.capitalize() for w in words),
        "header": "-".join(w.capitalize() for w in words),
        "header_lower": name,
        "prefix": "DELIVERY_SDK_" + "_".join(w.upper() for w in words) + "_",
        "all_names": _names(["ENV", "KIND", f"Env{cls}Plugin", f"{cls}Channel", "plugin"]),
        "sdk_version": ".".join(__version__.split(".")[:2]),
    }
    templates = resources.files(__package__).joinpath("templates")
    rendered = {
        where.replace("MODULE", values["module"])
        .replace("DOCNAME", name)
        .replace("NAME", name.replace("-", "_")): string.Template(
            templates.joinpath(template).read_text(encoding="utf-8")
        ).substitute(values)
        for template, where in _FILES.items()
    }
    target.mkdir(parents=True)
    try:
        for where, text in rendered.items():
            path = target / where
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (target / "src" / values["module"] / "py.typed").write_text("", encoding="utf-8")
    except BaseException:
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``new-plugin`` subcommand's arguments: ``NAME``, ``--kind KIND``, ``--dir DIR``."""
    parser.add_argument("name", metavar="NAME", help="the plugin's name, e.g. dingtalk (package delivery-sdk-NAME)")
    parser.add_argument("--kind", required=True, help="the channel kind it serves: " + ", ".join(known_kinds()))
    parser.add_argument("--dir", default=".", help="where to write the package folder (default: here)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``new-plugin``: 0 when written, 2 on a bad name or kind or an existing folder (said on stderr)."""
    import sys

    try:
        target = new_plugin(args.name, args.kind, args.dir)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    print(f"next: cd {target} && python -m pytest tests && mypy --strict src")
    return 0
