"""The free-text scrubber (``delivery_sdk.supervision.scrub``) and what reaches the dashboard through it.

The table says, for each input, exactly what the dashboard shows: phones in every common spelling, e-mail
addresses, resident ID numbers and street addresses are masked; case numbers, dispatch ids, dates and
times, amounts, article numbers, division codes and court names are left as they are.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from delivery_sdk.events import NeedsAttention
from delivery_sdk.model import ChannelKind
from delivery_sdk.store import SQLiteStore
from delivery_sdk.supervision import Supervisor, report_data, scrub, write_report
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

MASKED = [
    # phones: mobiles in every common spelling
    ("13912345678", "13*******78"),
    ("电话：13912345678。", "电话：13*******78。"),
    ("call 139-1234-5678 now", "call 13*********78 now"),
    ("139 1234 5678", "13*********78"),
    ("+86 139 1234 5678", "+8*************78"),
    ("+86-139-1234-5678", "+8*************78"),
    ("0086 13912345678", "00************78"),
    ("008613912345678", "00***********78"),
    ("１３９１２３４５６７８", "１３*******７８"),  # full-width digits
    ("１３９－１２３４－５６７８", "１３*********７８"),
    # landlines
    ("027-87654321", "02********21"),
    ("(027) 8765 4321", "(0***********21"),
    ("（027）87654321", "（0*********21"),
    ("0710-3456789", "07********89"),
    ("+86 27 8765 4321", "+8************21"),
    # e-mail addresses: nothing of the name part is kept
    ("zhang.san@example.cn bounced", "******************cn bounced"),
    ("退信：张三＠example.com.cn", "退信：***************cn"),
    ("mailbox li_si+court@mail.hubei.gov.cn is full", "mailbox ***************************cn is full"),
    # resident ID numbers
    ("ID 42010619900101123X", "ID 42**************3X"),
    ("身份证号420106199001011234", "身份证号42**************34"),
    ("420106 19900101 123x", "42****************3x"),
    # other long numbers
    ("bank card 6222021234567890123", "bank card 62***************23"),
    # street addresses: the place with its number goes, the divisions before it stay
    ("寄往湖北省武汉市武昌区中北路1号退回", "寄往湖北省武汉市武昌区*****退回"),
    ("北京市东城区东四北大街1号", "北京市东城区*******"),
    ("原告住湖北省武汉市武昌区中北路1号3栋502室", "原告住湖北省武汉市武昌区***********"),
    ("查无此人：黄冈市红安县七里坪镇红星村3组", "查无此人：黄冈市红安县七里坪镇*****"),
    ("3栋2单元502室", "*********"),
    ("地址湖北省武汉市江汉区解放大道688号武汉广场", "地址湖北省武汉市江汉区********武汉广场"),
    ("送达至恩施土家族苗族自治州恩施市舞阳大街18号", "送达至恩施土家族苗族自治州恩施市*******"),
    ("中北路一号", "*****"),
    ("湖北省武汉市新市路12号", "湖北省武汉市******"),
    # several in one reason
    (
        "退回：寄往湖北省武汉市武昌区中北路1号，电话139-1234-5678，邮箱a.b@c.cn",
        "退回：寄往湖北省武汉市武昌区*****，电话13*********78，邮箱******cn",  # the label 邮箱 stays
    ),
]

KEPT = [
    "(2026)鄂0106民初1234号",  # case numbers
    "（2025）鄂01民终567号",
    "2026-11-02 08:07",  # dates and times
    "2026-11-02T08:07:00+08:00",
    "CPL Art. 90",  # article numbers
    "依据民事诉讼法第九十条",
    "法释〔2021〕12号",
    "武汉市武昌区人民法院",  # courts and places without a number
    "湖北省武汉市中级人民法院",
    "湖北省武汉市武昌区",
    "中北路",
    "T000001.1",  # dispatch and task ids
    "a3f09171234567b2c4d6e8f0a1b2c3d4.2",
    "waybill EMS1234567890CN",
    "no print centre for division 110101",  # division codes
    "postage 1,280.50 元",  # amounts
    "amount 12345678.50",
    "罚款12345678元",
    "retry after 3600 s (HTTP 429)",
    "SMS gateway error 40001",
    "failed: mailbox full",
    "",
]


@pytest.mark.parametrize(("text", "expected"), MASKED + [(t, t) for t in KEPT])
def test_scrub_table(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_the_table_is_large_and_covers_both_ways() -> None:
    assert len(MASKED) + len(KEPT) >= 40
    assert len(KEPT) >= 15


@pytest.mark.parametrize(
    "text",
    [
        "市区县" * 700 + "1",  # every character a division suffix
        "路街道村" * 500 + "1",
        "1" * 2000,
        "a." * 1000 + "@",
        "a" * 1000 + "@" + "b-" * 500,
        "1-" * 1000,
    ],
)
def test_scrub_is_linear_on_hostile_text(text: str) -> None:
    start = time.perf_counter()
    scrub(text * 5)
    assert time.perf_counter() - start < 2.0  # bounded work per position: milliseconds, not minutes


# -- what reaches the dashboard ------------------------------------------------------------------------

START = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
SECRETS = [
    "139-1234-5678",
    "13912345678",
    "zhang.san@example.cn",
    "中北路1号",
    "3栋502室",
    "420106199001011234",
    "8765 4321",
    "87654321",
    "红星村3组",
]


@pytest.fixture(scope="module")
def reasons_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tasks whose events carry personal data in free text: a provider's failure reason and a person's note."""
    path = tmp_path_factory.mktemp("scrub") / "reasons.sqlite3"

    async def build() -> None:
        h = Harness(SQLiteStore(path), start=START, kinds=(ChannelKind.SMS,))
        h.sms.default = Outcome.failed("user 139-1234-5678 unreachable, mail zhang.san@example.cn")
        failing = make_party("P-sms", address="湖北省武汉市武昌区中北路1号3栋502室")
        await h.client.submit(make_request(failing, client_key="a"))
        held = await h.client.submit(make_request(make_party("P-held"), client_key="b"))
        await h.client.run_until_idle(until=START + timedelta(minutes=5))
        reason = (
            "退回：寄往湖北省武汉市武昌区中北路1号3栋502室，身份证420106199001011234，"
            "电话(027) 8765 4321，另址黄冈市红安县七里坪镇红星村3组"
        )
        h.client.engine.record(held, NeedsAttention(task_id=held, at=h.clock.now(), reason=reason))
        await h.client.run_until_idle(until=START + timedelta(hours=30))
        await h.aclose()

    asyncio.run(build())
    return path


def test_no_personal_data_reaches_the_dashboard_html_json_or_csv(reasons_store: Path, tmp_path: Path) -> None:
    html, js, cs = tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.csv"
    write_report(reasons_store, html, json_path=js, csv_path=cs)
    outputs = html.read_text(encoding="utf-8") + js.read_text(encoding="utf-8") + cs.read_text(encoding="utf-8")
    data = json.loads(js.read_text(encoding="utf-8"))
    meanings = " ".join(e["meaning"] for entries in data["timelines"].values() for e in entries)
    # the reasons are there (scrubbed), so the test looks at them
    assert "寄往湖北省武汉市武昌区" in meanings
    assert "unreachable" in meanings
    assert "身份证42**************34" in meanings
    assert any(o["rule"] == "needs_attention" for o in data["overdue_list"])
    for secret in SECRETS:
        assert secret not in outputs, secret
    assert not re.search(r"1[3-9]\d{9}", outputs)
    assert not re.search(r"[\w.]+@[\w.]+\.(cn|com)", outputs)


def test_every_timeline_meaning_is_scrubbed(reasons_store: Path) -> None:
    with Supervisor(reasons_store) as sup:
        stats, _ = report_data(sup)
        tasks = [row.task_id for row in sup.tasks()]
        text = " ".join(e.meaning for t in tasks for e in sup.timeline(t))
    assert "unreachable" in text
    for secret in SECRETS:
        assert secret not in text, secret
    assert stats.tasks == len(tasks) == 2
