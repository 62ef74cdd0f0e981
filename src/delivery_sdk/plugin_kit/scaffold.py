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

A channel of a kind the SDK does not know (``--new-kind --nature NATURE [--label 中文名] [--contact
CONTACT_KIND] [--contact-label 中文名]``, :class:`NewKind` in code) also gets ``src/delivery_sdk_NAME/kind.py``,
the kind's declaration (:meth:`~delivery_sdk.ChannelKind.declare`, with its contact kind), returned by the
entry-point plugin's ``delivery_channel_kinds`` hook, and ``tests/test_kind.py``: the kind is declared, and
a task is served through it end to end with the testing :class:`~delivery_sdk.testing.Harness`.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import string
from importlib import resources
from pathlib import Path

import attrs

from .._exceptions import ValidationError

__all__ = [
    "NAME_PATTERN",
    "NewKind",
    "ScaffoldError",
    "add_arguments",
    "declarable_natures",
    "known_kinds",
    "new_plugin",
    "run_from_args",
]

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
# and for a kind of the plugin's own
_NEW_KIND_FILES = {
    "kind.py.tmpl": "src/MODULE/kind.py",
    "test_kind.py.tmpl": "tests/test_kind.py",
}
_MAX_LABEL = 32
# a made-up contact value for the built-in contact kinds a new channel kind may reuse
_SAMPLE_CONTACTS = {
    "mobile": "13800138000",
    "wechat": "oWx_test_openid_0001",
    "email": "party@example.com",
    "eservice": "ES-ACCOUNT-0001",
}


class ScaffoldError(ValidationError):
    """A plugin name or kind that cannot be used, or a target folder that already exists; nothing was written."""


def known_kinds() -> list[str]:
    """The channel kinds the installed SDK knows, by name (``sms``, ``wechat``...), print and post aside."""
    from ..model import ChannelKind

    return [kind.value for kind in ChannelKind if kind.value not in ("print", "post")]


def declarable_natures() -> list[str]:
    """The natures a plugin's kind may declare, by value (``text_message``, ``instant_message``...)."""
    from ..model import DECLARABLE_NATURES, ServiceNature

    return [n.value for n in ServiceNature if n in DECLARABLE_NATURES]


@attrs.frozen
class NewKind:
    """A channel kind the plugin declares itself (``--new-kind``); checked by :func:`new_plugin`.

    :param nature: its legal nature, a value of :func:`declarable_natures` (``"instant_message"``) or the
        :class:`~delivery_sdk.ServiceNature` itself.
    :param label: what court staff read and the proof of service names (``"钉钉工作通知"``); default: the
        plugin's title, marked ``TODO`` in the generated code.
    :param contact: the contact kind a dispatch goes to: a built-in one (``mobile``, ``wechat``, ``email``,
        ``eservice``) or a new one the package declares too (default: one named like the kind).
    :param contact_label: the new contact kind's label (default: the label followed by ``账号``); only
        for a new contact kind.
    """

    nature: object
    label: str | None = None
    contact: str | None = None
    contact_label: str | None = None


def _check_label(label: object, what: str, example: str) -> str:
    if not isinstance(label, str) or not label.strip() or len(label) > _MAX_LABEL or not label.isprintable():
        raise ScaffoldError(
            f"the {what} label {label!r} is not usable: give 1-{_MAX_LABEL} printable characters on one line,"
            f" in Chinese as court staff read it ({example})"
        )
    return label


def _check_new_kind(kind: str, spec: NewKind, title: str) -> dict[str, str]:
    """The new kind's template values; raises :class:`ScaffoldError` for anything ``ChannelKind.declare``
    would refuse (without declaring anything: the check changes no registry)."""
    from ..model import _KIND_VALUE, ChannelKind, ContactKind, ServiceNature

    if not isinstance(kind, str) or not _KIND_VALUE.fullmatch(kind):
        raise ScaffoldError(
            f"the new kind {kind!r} is not a kind value: 2-32 characters, a lowercase letter, then lowercase"
            " letters, digits or _ (say --kind dingtalk); it is what stored events hold"
        )
    builtins = [k.value for k in ChannelKind if k.builtin]
    if kind in builtins:
        raise ScaffoldError(
            f"{kind!r} is a built-in channel kind: drop --new-kind to write another adapter of it, or choose"
            " another value for a kind of your own"
        )
    natures = declarable_natures()
    nature = spec.nature
    if isinstance(nature, str):
        nature = nature.strip().lower().replace("-", "_")
    if isinstance(nature, ServiceNature):
        nature = nature.value
    if nature not in natures:
        raise ScaffoldError(
            f"the nature {spec.nature!r} cannot be declared by a plugin: use one of {', '.join(natures)}"
            " (--nature instant_message); a phone line, print centre or carrier is another adapter of the"
            " built-in phone, print or post kind (drop --new-kind)"
        )
    label = _check_label(spec.label, "channel kind", "--label 钉钉工作通知") if spec.label is not None else title
    contact = spec.contact if spec.contact is not None else kind
    existing_contacts = {c.value: c for c in ContactKind}
    if contact == "postal":
        raise ScaffoldError(
            "the contact kind 'postal' is the post's: a plugin's kind carries documents electronically; use"
            f" {', '.join(_SAMPLE_CONTACTS)} or a new contact kind (--contact {kind})"
        )
    builtin_contact = contact in existing_contacts and existing_contacts[contact].builtin
    if builtin_contact:
        if spec.contact_label is not None:
            raise ScaffoldError(
                f"--contact-label is only for a new contact kind; {contact!r} is built in"
                f" ({existing_contacts[contact].label}): drop --contact-label"
            )
        contact_expr = f"ContactKind({_literal(contact)})"
        contact_label = existing_contacts[contact].label
    else:
        if not isinstance(contact, str) or not _KIND_VALUE.fullmatch(contact):
            raise ScaffoldError(
                f"the contact kind {contact!r} is not usable: use {', '.join(_SAMPLE_CONTACTS)}, or a new value"
                " of 2-32 characters, a lowercase letter, then lowercase letters, digits or _ (say --contact dingtalk)"
            )
        if spec.contact_label is not None:
            contact_label = _check_label(spec.contact_label, "contact kind", "--contact-label 钉钉账号")
        else:
            contact_label = _check_label(
                label + "账号", "contact kind", "by default the kind's label + 账号: give --contact-label 钉钉账号"
            )
        other = existing_contacts.get(contact)
        if other is not None and other.label != contact_label:
            raise ScaffoldError(
                f"the contact kind {contact!r} is already declared here as {other.label!r}: give that label"
                " (--contact-label) or another value (--contact)"
            )
        contact_expr = f"ContactKind.declare({_literal(contact)}, label={_literal(contact_label)})"
    declared = {k.value: k for k in ChannelKind}.get(kind)
    if declared is not None and (declared.label, declared.nature.value, declared.contact_kind.value) != (
        label,
        nature,
        contact,
    ):
        raise ScaffoldError(
            f"channel kind {kind!r} is already declared here as {declared.label!r} ({declared.nature.value}, to a"
            f" {declared.contact_kind.value} contact): declare it identically, or choose another value"
        )
    return {
        "nature": str(nature),
        "nature_name": str(nature).upper(),
        "label": label,
        "label_literal": _literal(label),
        "label_todo": "" if spec.label is not None else "  # TODO: the kind's Chinese name, as court staff read it",
        "contact": contact,
        "contact_label": contact_label,
        "label_md": label.replace("|", "\\|"),
        "contact_label_md": contact_label.replace("|", "\\|"),
        "contact_expr": contact_expr,
        "contact_sample": _SAMPLE_CONTACTS.get(contact, "account-0001"),
    }


def _literal(text: str) -> str:
    """A double-quoted Python string literal of ``text`` (printable text: JSON's escapes are Python's)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def _check(name: str, kind: str, new_kind: bool = False) -> None:
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
    if new_kind:
        return
    kinds = known_kinds()
    if kind not in kinds:
        raise ScaffoldError(
            f"unknown channel kind {kind!r}: the installed delivery-sdk knows {', '.join(kinds)}; for a kind of"
            " the plugin's own, add --new-kind --nature NATURE (one of " + ", ".join(declarable_natures()) + ")"
        )


def _names(names: list[str]) -> str:
    """``__all__``'s literal, in the order ruff keeps it (constants, classes, functions)."""
    ordered = sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    return "[" + ", ".join(f'"{n}"' for n in ordered) + "]"


def new_plugin(
    name: str, kind: str, directory: str | os.PathLike[str] = ".", *, new_kind: NewKind | None = None
) -> Path:
    """Write the package of plugin ``name`` (channel kind ``kind``) under ``directory``; returns its folder.

    With ``new_kind``, ``kind`` is a kind the package declares itself (its value, with the nature, label
    and contact kind ``new_kind`` gives); nothing is declared in this process.

    :raises ScaffoldError: ``name`` is not a usable plugin name (see :data:`NAME_PATTERN`), ``kind`` is
        not a kind the installed SDK knows (without ``new_kind``) or not a usable new one (with it: a
        built-in value, a bad value, a nature a plugin may not declare, a bad label or contact kind), or
        the folder ``directory/delivery-sdk-NAME`` already exists (never overwritten). Nothing is written
        then.
    :raises OSError: ``directory`` cannot be written (a partly written package is removed).
    """
    _check(name, kind, new_kind is not None)
    from .. import __version__

    words = name.split("-")
    cls = "".join(w.capitalize() for w in words)
    title = " ".join(w.capitalize() for w in words)
    declared = _check_new_kind(kind, new_kind, title) if new_kind is not None else None
    target = Path(directory) / f"delivery-sdk-{name}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another --dir, or remove it first (nothing was written)")
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
        "all_names": _names(
            ["ENV", "KIND", f"Env{cls}Plugin", f"{cls}Channel", "plugin"]
            + (["CHANNEL_KIND", "CONTACT_KIND"] if declared else [])
        ),
        "sdk_version": ".".join(__version__.split(".")[:2]),
        "command": f"delivery-sdk new-plugin {name} --kind {kind}",
        "kind_import": "",
        "kind_expr": "ChannelKind(KIND)",
        "kinds_hook": "",
        "contact_args": "",
        "kind_section": "",
    }
    files = dict(_FILES)
    if declared is not None:
        values.update(declared)
        values["command"] += f" --new-kind --nature {declared['nature']}"
        values.update(
            kind_import="\nfrom .kind import CHANNEL_KIND, CONTACT_KIND\n",
            kind_expr="CHANNEL_KIND",
            kinds_hook=_KINDS_HOOK,
            contact_args=(
                f", contact={_literal(declared['contact_sample'])}, contact_kind={_literal(declared['contact'])}"
            ),
        )
        values["kind_section"] = string.Template(_KIND_SECTION).substitute(values)
        files.update(_NEW_KIND_FILES)
    templates = resources.files(__package__).joinpath("templates")
    rendered = {
        where.replace("MODULE", values["module"])
        .replace("DOCNAME", name)
        .replace("NAME", name.replace("-", "_")): string.Template(
            templates.joinpath(template).read_text(encoding="utf-8")
        ).substitute(values)
        for template, where in files.items()
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


_KINDS_HOOK = '''    @hookimpl
    def delivery_channel_kinds(self) -> tuple[ChannelKind, ...]:
        """Declare the plugin's kind to every host, configured or not (stored events name it)."""
        return (CHANNEL_KIND,)

'''

_KIND_SECTION = """
## The kind

The plugin declares a channel kind of its own (`src/${module}/kind.py`), returned by its
`delivery_channel_kinds` hook whether or not it is configured:

| | |
|---|---|
| value (what stored events hold: never change it) | `${kind}` |
| label (what court staff and the proof of service read) | ${label_md} |
| nature (how the law treats it) | `${nature}` |
| contact kind (a party's contact it serves to) | `${contact}` (${contact_label_md}) |

Installing the plugin never sends anything on the kind: the court's policy must name it, for instance in
the settings file:

```toml
[policy]
electronic_order = ["${kind}", "eservice", "sms"]
```
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``new-plugin`` subcommand's arguments: ``NAME``, ``--kind KIND``, ``--dir DIR``."""
    parser.add_argument("name", metavar="NAME", help="the plugin's name, e.g. dingtalk (package delivery-sdk-NAME)")
    parser.add_argument("--kind", required=True, help="the channel kind it serves: " + ", ".join(known_kinds()))
    parser.add_argument("--dir", default=".", help="where to write the package folder (default: here)")
    new = parser.add_argument_group("a kind of the plugin's own (--kind names its value)")
    new.add_argument("--new-kind", action="store_true", help="declare KIND in the package: the SDK does not know it")
    new.add_argument("--nature", help="its legal nature: " + ", ".join(declarable_natures()))
    new.add_argument("--label", help="its Chinese name, as court staff read it (钉钉工作通知)")
    new.add_argument(
        "--contact",
        metavar="CONTACT_KIND",
        help="the contact kind it serves to: mobile, wechat, email, eservice or a new one (default: KIND)",
    )
    new.add_argument("--contact-label", help="a new contact kind's Chinese name (default: the label + 账号)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``new-plugin``: 0 when written, 2 on a bad name or kind or an existing folder (said on stderr)."""
    import sys

    try:
        new_kind = _new_kind_from_args(args)
        target = new_plugin(args.name, args.kind, args.dir, new_kind=new_kind)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    print(f"next: cd {target} && python -m pytest tests && mypy --strict src")
    return 0


def _new_kind_from_args(args: argparse.Namespace) -> NewKind | None:
    options = {"--nature": "nature", "--label": "label", "--contact": "contact", "--contact-label": "contact_label"}
    given = {option: getattr(args, attr, None) for option, attr in options.items()}
    if not getattr(args, "new_kind", False):
        extra = [option for option, value in given.items() if value is not None]
        if extra:
            raise ScaffoldError(
                f"{', '.join(extra)} describe a kind of the plugin's own: add --new-kind, or drop them to write an"
                f" adapter of the known kind {args.kind!r}"
            )
        return None
    if args.nature is None:
        raise ScaffoldError("--new-kind needs --nature NATURE, one of " + ", ".join(declarable_natures()))
    return NewKind(nature=args.nature, label=args.label, contact=args.contact, contact_label=args.contact_label)
