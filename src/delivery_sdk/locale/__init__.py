"""What court staff read: one message catalogue (Chinese by default, English for integrators) and Beijing time.

The catalogue is two gettext ``.po`` files, ``locale/zh_CN/LC_MESSAGES/delivery_sdk.po`` and
``locale/en/LC_MESSAGES/delivery_sdk.po``, shipped in the wheel as they are and read by the small reader
below: no compiled ``.mo`` can go stale or be left out of a build, and no build step (Babel, ``msgfmt``) is
needed. Message ids are keys (``dashboard.title``, ``state.served``...) and every key is translated in both
files (``tests/test_locale.py`` checks it, and that every key is used somewhere in the code). Translators
edit the ``.po`` files with any gettext tool.

::

    from delivery_sdk.locale import beijing, t

    t("dashboard.title")                       # '送达监督看板'
    t("dashboard.title", "en")                 # 'Service supervision dashboard'
    beijing(event.at)                          # '2026-11-02 16:07 (北京时间 UTC+8)'

Only what a person reads is translated: JSON, CSV and the dashboard's embedded data keep their English
keys and values. Times are stored in UTC with their offset; :func:`beijing` shows them in Asia/Shanghai
time with the zone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BEIJING",
    "DEFAULT_LANG",
    "LANGUAGES",
    "LANG_ENV",
    "Catalogue",
    "beijing",
    "catalogue",
    "centre_name",
    "channel_name",
    "default_lang",
    "label",
    "normalise_lang",
    "parse_po",
    "t",
]

LANGUAGES = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"
# the language of the command line when --lang is not given
LANG_ENV = "DELIVERY_SDK_LANG"
DOMAIN = "delivery_sdk"

try:
    BEIJING: timezone | ZoneInfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # pragma: no cover - no tz database: China has kept UTC+8 without DST since 1991
    BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

_ALIASES = {"zh": "zh_CN", "zh_cn": "zh_CN", "zh-cn": "zh_CN", "zh_hans": "zh_CN", "zh-hans": "zh_CN", "cn": "zh_CN"}


def normalise_lang(lang: str | None) -> str:
    """``zh``, ``zh-CN``, ``zh_CN`` -> ``zh_CN``; ``en``, ``en_US``, ``en-GB`` -> ``en``; None -> the default.
    Anything else raises :class:`ValueError` naming the languages there are."""
    if lang is None:
        return DEFAULT_LANG
    key = lang.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key == "en" or key.startswith(("en_", "en-")):
        return "en"
    raise ValueError(f"no catalogue for language {lang!r}: choose one of {', '.join(LANGUAGES)}")


def default_lang() -> str:
    """The command line's language: ``$DELIVERY_SDK_LANG`` when set, else Chinese."""
    return normalise_lang(os.environ.get(LANG_ENV) or None)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"{where}: expected a quoted string, got {text!r}")
    out: list[str] = []
    chars = iter(text[1:-1])
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            if nxt not in _ESCAPES:
                raise ValueError(f"{where}: unknown escape \\{nxt}")
            out.append(_ESCAPES[nxt])
        else:
            out.append(c)
    return "".join(out)


def parse_po(text: str, origin: str = "<po>") -> dict[str, str]:
    """The messages of a gettext ``.po`` file (``msgid`` -> ``msgstr``; no plurals or contexts, which the
    catalogue does not use). The header (the empty ``msgid``) and fuzzy entries are left out."""
    messages: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None
    fuzzy = False
    pending_fuzzy = False

    def flush() -> None:
        if msgid is not None and msgstr is not None:
            key = "".join(msgid)
            if key and not fuzzy:
                if key in messages:
                    raise ValueError(f"{origin}: msgid {key!r} twice")
                messages[key] = "".join(msgstr)

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{origin}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                pending_fuzzy = True
            continue
        if line.startswith("msgid "):
            flush()
            fuzzy, pending_fuzzy = pending_fuzzy, False
            msgid, msgstr = [_unquote(line[6:], where)], None
            current = msgid
        elif line.startswith("msgstr "):
            if msgid is None:
                raise ValueError(f"{where}: msgstr without msgid")
            msgstr = [_unquote(line[7:], where)]
            current = msgstr
        elif line.startswith('"'):
            if current is None:
                raise ValueError(f"{where}: a string outside an entry")
            current.append(_unquote(line, where))
        else:
            raise ValueError(f"{where}: cannot read {line[:40]!r} (plural forms and contexts are not used)")
    flush()
    return messages


class Catalogue:
    """The messages of one language."""

    def __init__(self, lang: str, messages: Mapping[str, str]) -> None:
        self.lang = lang
        self.messages = dict(messages)

    def gettext(self, key: str) -> str:
        """The message for ``key``; an unknown key is returned as it is (gettext's way), so a missing
        translation shows, and ``tests/test_locale.py`` catches it."""
        return self.messages.get(key, key)

    def __call__(self, key: str, **values: object) -> str:
        """The message for ``key`` with its ``{name}`` fields filled from ``values``."""
        text = self.gettext(key)
        return text.format(**values) if values else text

    def __contains__(self, key: object) -> bool:
        return key in self.messages


@cache
def catalogue(lang: str | None = None) -> Catalogue:
    """The catalogue of ``lang`` (default Chinese), read once from the ``.po`` file shipped in the package."""
    code = normalise_lang(lang)
    path = resources.files(__package__).joinpath(code, "LC_MESSAGES", f"{DOMAIN}.po")
    return Catalogue(code, parse_po(path.read_text(encoding="utf-8"), f"{code}/{DOMAIN}.po"))


def t(key: str, lang: str | None = None, /, **values: object) -> str:
    """The message ``key`` in ``lang`` (default Chinese), with ``{name}`` fields filled from ``values``."""
    return catalogue(lang)(key, **values)


def label(prefix: str, value: str, lang: str | None = None) -> str:
    """The label of an enumerated value (``label("state", "served")`` -> ``已送达``); a value the catalogue
    does not know is shown as it is, except a channel or contact kind's (``kind``, ``contact``): a plugin's
    by the label it declares (``ChannelKind.label``), one no installed plugin declares as
    ``未安装的渠道（value）``."""
    cat = catalogue(lang)
    key = f"{prefix}.{value}"
    if key in cat:
        return cat.gettext(key)
    if prefix in ("kind", "contact"):
        from ..model import ChannelKind, ContactKind  # the model imports nothing from here: kept lazy anyway

        try:
            return (ChannelKind if prefix == "kind" else ContactKind).stored(value).label
        except ValueError:
            return value
    return value


def beijing(moment: datetime | None, lang: str | None = None, *, seconds: bool = False, zone: bool = True) -> str:
    """``moment`` in Beijing time with the zone shown: ``2026-11-02 16:07 (北京时间 UTC+8)``. A naive time is
    taken as UTC (the stores keep UTC); None is ``-``. ``zone=False`` leaves the zone out, for a table whose
    heading names it."""
    if moment is None:
        return "-"
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    text = aware.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} ({t('time.zone', lang)})" if zone else text


@cache
def _centre_names() -> dict[str, str]:
    from ..printing.centres import default_centres

    return {c.centre_id: c.name for c in default_centres()}


def centre_name(centre_id: str, *, code: bool = True) -> str:
    """A print centre by its name, with its code: ``武汉市集约送达打印中心 (PC-420100)``; an unknown centre
    (another province's, a vendor's) by its code."""
    name = _centre_names().get(centre_id)
    if name is None:
        return centre_id
    return f"{name} ({centre_id})" if code else name


def channel_name(kind: str, channel: str, lang: str | None = None) -> str:
    """A channel by its name: a print centre's name, or the catalogue's name for a known channel
    (``sms-gateway`` -> ``短信平台 (sms-gateway)``), else its kind's label and its code."""
    if kind == "print":
        return centre_name(channel)
    cat = catalogue(lang)
    key = f"channel.{channel}"
    if key in cat:
        return f"{cat.gettext(key)} ({channel})"
    return f"{label('kind', kind, lang)} ({channel})"
