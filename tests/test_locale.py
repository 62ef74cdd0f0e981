"""The message catalogue (delivery_sdk.locale): every key translated in both languages and used in the code,
and Beijing time with its zone wherever a person reads a time."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from delivery_sdk import events
from delivery_sdk.access import ACCESS_SHOWN, DEFAULT_ROLES
from delivery_sdk.events import ReturnReason
from delivery_sdk.law.service import SignerRole
from delivery_sdk.lifecycle import TaskState
from delivery_sdk.locale import (
    LANGUAGES,
    beijing,
    catalogue,
    centre_name,
    channel_name,
    label,
    normalise_lang,
    parse_po,
    t,
)
from delivery_sdk.model import ChannelKind, ContactKind, DispatchStatus, ServiceMethod
from delivery_sdk.supervision import ServiceLevels, Statistics, Supervisor
from delivery_sdk.supervision.meaning import ACTORS
from delivery_sdk.trust import Refusal

SRC = Path(__file__).resolve().parents[1] / "src" / "delivery_sdk"
CJK = re.compile("[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")  # ideographs and full-width punctuation

# Keys reached through label(prefix, value) or f"{prefix}.{value}": the values each prefix takes.
ENUMERATED: dict[str, set[str]] = {
    "state": {s.value for s in TaskState},
    "method": {m.value for m in ServiceMethod},
    # the built-in kinds: a plugin's kind is labelled by its declaration (test_channel_kinds)
    "kind": {k.value for k in ChannelKind if k.builtin},
    "contact": {k.value for k in ContactKind if k.builtin},
    "dstatus": {s.value for s in DispatchStatus},
    "event": {cls.TYPE for cls in vars(events).values() if isinstance(cls, type) and issubclass(cls, events.Event)}
    - {"event"},
    "actor": set(ACTORS),
    "signer": {r.value for r in SignerRole},
    "returned": {r.value for r in ReturnReason},
    "refusal": {r.value for r in Refusal},
    "deadline": {"defence", "appeal"},
    "role": set(DEFAULT_ROLES),
    "shown": set(ACCESS_SHOWN),
    "rule": {"eservice_unconfirmed", "print_not_printed", "needs_attention"},
    # the channels of the demo and the harness (a plugin's channel is shown by its kind and code)
    "channel": {"eservice-platform", "sms-gateway", "wechat-oa", "court-express-post"},
}


def _keys(lang: str) -> set[str]:
    return set(catalogue(lang).messages)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in SRC.rglob("*.py"))


def test_both_languages_have_the_same_keys_every_one_translated() -> None:
    zh, en = (catalogue(lang) for lang in LANGUAGES)
    assert zh.lang == "zh_CN"
    assert _keys("zh_CN") == _keys("en")
    assert len(zh.messages) > 200
    for key in zh.messages:
        assert zh.messages[key].strip(), key
        assert en.messages[key].strip(), key
        # the placeholders are the same in both
        assert _fields(zh.messages[key]) == _fields(en.messages[key]), key
        # Chinese is Chinese (a label left in English is untranslated) ...
        assert CJK.search(zh.messages[key]), (key, zh.messages[key])
    # ... and English is English, but for the term of art kept beside its translation
    chinese_in_english = {key for key, text in en.messages.items() if CJK.search(text)}
    assert chinese_in_english == {"meaning.filed"}  # "filed into the electronic case file (入卷)"


def test_every_key_is_used_in_the_code() -> None:
    code = _code()
    prefixes = set(re.findall(r"""label\(\s*["']([a-z_]+)["']""", code))
    prefixes |= {"channel"}  # channel_name(): f"channel.{channel}"
    unused = []
    for key in sorted(_keys("zh_CN")):
        prefix, _, value = key.partition(".")
        if f'"{key}"' in code or f"'{key}'" in code:
            continue
        if prefix == "funnel" and value.replace("_", " ") in code:  # Statistics.funnel's stages, by name
            continue
        if prefix == "cost" and f'"{value}"' in code:  # Statistics.cost's keys
            continue
        if prefix in prefixes and value in ENUMERATED.get(prefix, ()):
            continue
        unused.append(key)
    assert unused == []


def test_every_enumerated_value_has_a_label_in_both_languages() -> None:
    for lang in LANGUAGES:
        cat = catalogue(lang)
        for prefix, values in ENUMERATED.items():
            for value in values:
                assert f"{prefix}.{value}" in cat, (lang, prefix, value)


def test_every_statistic_label_is_there(tmp_path: Path) -> None:
    """The funnel stages and cost keys the statistics produce (English keys in JSON) all have labels."""
    from delivery_sdk.store import SQLiteStore

    path = tmp_path / "empty.sqlite3"
    SQLiteStore(path).close()
    with Supervisor(path) as sup:
        stats: Statistics = sup.statistics(levels=ServiceLevels())
    for lang in LANGUAGES:
        cat = catalogue(lang)
        for stage, _ in stats.funnel:
            assert f"funnel.{stage.replace(' ', '_')}" in cat
        for key in stats.cost:
            assert f"cost.{key}" in cat
        for rule in stats.overdue:
            assert f"rule.{rule}" in cat


def test_po_reader() -> None:
    text = """# comment
msgid ""
msgstr "Language: zh_CN\\n"

msgid "a.b"
msgstr "一"
"二 \\"{x}\\""

#, fuzzy
msgid "c"
msgstr "not yet"
"""
    assert parse_po(text) == {"a.b": '一二 "{x}"'}
    with pytest.raises(ValueError, match="twice"):
        parse_po('msgid "a"\nmsgstr "1"\nmsgid "a"\nmsgstr "2"\n')
    with pytest.raises(ValueError, match="plural"):
        parse_po('msgid "a"\nmsgid_plural "as"\n')


def test_languages_and_fallbacks() -> None:
    assert normalise_lang(None) == normalise_lang("zh") == normalise_lang("zh-CN") == "zh_CN"
    assert normalise_lang("en_US") == normalise_lang("EN") == "en"
    with pytest.raises(ValueError, match="zh_CN, en"):
        normalise_lang("fr")
    assert t("dash.title") == "送达监督看板"
    assert t("dash.title", "en") == "Service supervision dashboard"
    assert t("unit.hours", "zh_CN", n="3.5") == "3.5 小时"
    assert label("state", "served") == "已送达"
    assert label("kind", "fax") == "未安装的渠道（fax）"  # a kind no installed plugin declares: said so


def test_names_with_codes() -> None:
    assert centre_name("PC-420100") == "武汉市集约送达打印中心 (PC-420100)"
    assert centre_name("PC-420100", code=False) == "武汉市集约送达打印中心"
    assert centre_name("PC-999999") == "PC-999999"
    assert channel_name("sms", "sms-gateway") == "短信平台 (sms-gateway)"
    assert channel_name("print", "PC-420500") == "宜昌市集约送达打印中心 (PC-420500)"
    assert channel_name("email", "acme-mail", "en") == "e-mail (acme-mail)"


def test_beijing_time_with_its_zone() -> None:
    served = datetime(2026, 11, 2, 8, 7, tzinfo=UTC)  # 16:07 in Wuhan
    assert beijing(served) == "2026-11-02 16:07 (北京时间 UTC+8)"
    assert beijing(served, "en") == "2026-11-02 16:07 (Beijing time, UTC+8)"
    assert beijing(served, zone=False, seconds=True) == "2026-11-02 16:07:00"
    assert beijing(served.astimezone(timezone(timedelta(hours=-5)))) == "2026-11-02 16:07 (北京时间 UTC+8)"
    assert beijing(datetime(2026, 11, 2, 8, 7)) == "2026-11-02 16:07 (北京时间 UTC+8)"  # naive: stored UTC
    assert beijing(datetime(2026, 12, 31, 20, 0, tzinfo=UTC), zone=False) == "2027-01-01 04:00"
    assert beijing(None) == "-"


def test_the_catalogue_ships_as_po_files_in_the_package() -> None:
    for lang in LANGUAGES:
        assert (SRC / "locale" / lang / "LC_MESSAGES" / "delivery_sdk.po").is_file()
