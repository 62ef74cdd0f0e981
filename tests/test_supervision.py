"""The supervision query API, the dashboard's numbers and the report/stats commands.

Two stores: a finished demo day (``delivery_sdk.demo.run_demo``, 300 tasks) whose figures are checked
against ``stats.summarize`` and against tasks folded independently from the event log; and a small store
left in progress (an e-service dispatch nobody answers, a print job the centre has not printed, a task
needing attention) for the overdue rules.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import html as html_lib
import io
import json
import re
import sqlite3
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk import StoreError, UnknownTask
from delivery_sdk.cli import main
from delivery_sdk.demo import DemoResult, run_demo
from delivery_sdk.law.citations import chinese
from delivery_sdk.lifecycle import Task, fold
from delivery_sdk.locale import centre_name, label
from delivery_sdk.model import ChannelKind, ContactKind, DispatchStatus
from delivery_sdk.store import SQLiteStore
from delivery_sdk.store.sqlite import MIGRATIONS, SUPERVISION_BACKFILL
from delivery_sdk.supervision import (
    CostRates,
    Scope,
    ServiceLevels,
    Supervisor,
    render_html,
    report_data,
    to_csv,
    write_report,
)
from delivery_sdk.supervision.query import SUPERVISION_INDEXES
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    return asyncio.run(run_demo(tasks=300, seed=7, store_path=path, progress=None))


@pytest.fixture(scope="module")
def folded(demo: DemoResult) -> dict[str, Task]:
    """Every demo task folded from its events by the lifecycle: the independent reference."""
    with SQLiteStore(demo.store_path) as store:
        events = store.load_events(store.all_task_ids())
    return {task_id: fold([s.event for s in stored]) for task_id, stored in events.items()}


START = datetime.fromisoformat("2026-03-02T00:00:00+00:00")


@pytest.fixture(scope="module")
def in_progress(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four tasks one hour into the day: e-service unanswered (A), print job not printed (B), no print
    centre for the address (C, needs attention), served by SMS and filed (D)."""
    path = tmp_path_factory.mktemp("progress") / "progress.sqlite3"

    async def build() -> None:
        h = Harness(SQLiteStore(path), start=START)
        h.eservice.default = Outcome.no_answer()
        h.sms.default = Outcome.delivered()
        for centre in h.centres:
            centre.print_after = timedelta(days=10)
        await h.client.submit(make_request(make_party("P-A", mobile=None, eservice="acct-9"), client_key="a"))
        await h.client.submit(make_request(make_party("P-B", mobile=None, consent=False), client_key="b"))
        far = make_party("P-C", mobile=None, consent=False, address="北京市东城区东四北大街1号", division_code="110101")
        await h.client.submit(make_request(far, client_key="c", court="武汉市江岸区人民法院"))
        await h.client.submit(make_request(make_party("P-D"), client_key="d"))
        await h.client.run_until_idle(until=START + timedelta(hours=1))
        await h.aclose()

    asyncio.run(build())
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- statistics against summarize() and the folded tasks ----------------------------------------------


def test_statistics_equal_summarize_on_the_demo_store(demo: DemoResult) -> None:
    s = demo.summary
    with Supervisor(demo.store_path) as sup:
        st = sup.statistics()
    assert st.tasks == s.tasks == 300
    assert st.by_state == s.by_state
    assert st.served == s.served
    assert st.by_method == s.by_method
    assert st.cost["postage_avoided_yuan"] == s.postage_saved_yuan
    assert s.cycle_median is not None
    assert st.cycle_served.median_hours is not None
    assert st.cycle_served.median_hours == pytest.approx(s.cycle_median.total_seconds() / 3600, abs=1e-3)
    assert s.cycle_mean is not None
    assert st.cycle_served.mean_hours is not None
    assert st.cycle_served.mean_hours == pytest.approx(s.cycle_mean.total_seconds() / 3600, abs=1e-3)
    assert s.cycle_p90 is not None
    assert st.cycle_served.p90_hours is not None
    assert st.cycle_served.p90_hours == pytest.approx(s.cycle_p90.total_seconds() / 3600, abs=1e-3)
    # per channel kind, the print jobs counted as post, the way summarize() does
    attempts: Counter[str] = Counter()
    delivered: Counter[str] = Counter()
    for row in st.channels:
        kind = "post" if row.kind == "print" else row.kind
        attempts[kind] += row.attempts
        delivered[kind] += row.delivered
    assert {c.kind.value: (c.attempts, c.delivered) for c in s.channels} == {
        k: (attempts[k], delivered[k]) for k in attempts
    }


def test_funnel_centres_and_cycle_times_match_the_folded_tasks(demo: DemoResult, folded: dict[str, Task]) -> None:
    tasks = list(folded.values())
    with Supervisor(demo.store_path) as sup:
        st = sup.statistics()
    funnel = dict(st.funnel)
    assert funnel["submitted"] == len(tasks)
    assert funnel["electronic attempted"] == sum(any(d.kind.electronic for d in t.dispatches) for t in tasks)
    assert funnel["fell back to post"] == sum(t.fallback_reason is not None for t in tasks)
    assert funnel["publication"] == sum(t.published_at is not None for t in tasks)
    assert funnel["served by publication"] == sum(
        t.served_method is not None and t.served_method.value == "publication" for t in tasks
    )
    assert funnel["fell back to post"] > 0
    assert funnel["publication"] > 0
    assert st.fallback_rate == pytest.approx(funnel["fell back to post"] / len(tasks))
    jobs: Counter[str] = Counter(d.channel for t in tasks for d in t.dispatches if d.kind is ChannelKind.PRINT)
    signed: Counter[str] = Counter(
        d.channel
        for t in tasks
        for d in t.dispatches
        if d.kind is ChannelKind.PRINT and d.status is DispatchStatus.DELIVERED
    )
    assert {c.centre_id: c.jobs for c in st.centres} == dict(jobs)
    assert {c.centre_id: c.signed for c in st.centres if c.signed} == dict(signed)
    assert all(c.open == 0 and c.printed == c.jobs for c in st.centres)  # the day is over
    # served -> filed, from the folded tasks and the filed event times
    with SQLiteStore(demo.store_path) as store:
        filed_at = {
            tid: next(s.event.at for s in evs if s.event.TYPE == "service.filed")
            for tid, evs in store.load_events(list(folded)).items()
        }
    expected = sorted((filed_at[t.task_id] - t.served_at).total_seconds() / 3600 for t in tasks if t.served_at)
    assert st.cycle_filed.count == len(expected)
    assert st.cycle_filed.max_hours == pytest.approx(expected[-1], abs=1e-3)
    assert sum(n for _, n in st.cycle_served.histogram) == st.served
    day_total = sum(c for _, c, _ in st.volume)
    assert day_total == st.tasks
    assert sum(s for _, _, s in st.volume) == st.served


def test_costs_against_the_all_postal_baseline(demo: DemoResult) -> None:
    with Supervisor(demo.store_path) as sup:
        default = sup.statistics()
        custom = sup.statistics(costs=CostRates(postal_yuan=25.0, electronic_yuan=0.5, publication_yuan=300.0))
    mailed = sum(c.mailed for c in default.centres)
    electronic_attempts = sum(c.attempts for c in default.channels if c.kind != "print")
    published = dict(default.funnel)["publication"]
    assert default.cost["baseline_all_postal_yuan"] == 20.0 * default.served
    assert default.cost["actual_yuan"] == 20.0 * mailed
    assert default.cost["savings_yuan"] == 20.0 * (default.served - mailed)
    assert custom.cost["baseline_all_postal_yuan"] == 25.0 * default.served
    assert custom.cost["actual_yuan"] == pytest.approx(25.0 * mailed + 0.5 * electronic_attempts + 300.0 * published)
    assert custom.cost["savings_yuan"] == pytest.approx(
        custom.cost["baseline_all_postal_yuan"] - custom.cost["actual_yuan"]
    )


def test_scope_restricts_every_figure_to_one_court(demo: DemoResult, folded: dict[str, Task]) -> None:
    court = next(iter(folded.values())).request.case.court
    mine = [t for t in folded.values() if t.request.case.court == court]
    with Supervisor(demo.store_path) as sup:
        st = sup.statistics(scope=Scope(court=court))
    assert 0 < st.tasks == len(mine) < len(folded)
    assert st.by_method == dict(Counter(t.served_method.value for t in mine if t.served_method))
    assert sum(c.jobs for c in st.centres) == sum(1 for t in mine for d in t.dispatches if d.kind is ChannelKind.PRINT)


# -- tasks and timelines ------------------------------------------------------------------------------


def test_tasks_by_court_case_state_channel_centre_and_date(demo: DemoResult, folded: dict[str, Task]) -> None:
    tasks = list(folded.values())
    sample = max(tasks, key=lambda t: (t.version, t.task_id))
    case = sample.request.case
    with Supervisor(demo.store_path) as sup:
        by_court = sup.tasks(court=case.court, limit=10_000)
        assert {r.task_id for r in by_court} == {t.task_id for t in tasks if t.request.case.court == case.court}
        by_case = sup.tasks(case_number=case.case_number)
        assert {r.task_id for r in by_case} == {t.task_id for t in tasks if t.request.case == case}
        assert sup.tasks(court=case.court, case_number=case.case_number) == by_case
        row = next(r for r in by_case if r.task_id == sample.task_id)
        assert row.court == case.court
        assert row.case_number == case.case_number
        assert row.state == sample.state.value
        assert sample.served_method is not None
        assert row.served_method == sample.served_method.value
        assert row.served_at == sample.served_at
        assert row.centre_id == sample.centre_id
        assert set(row.channels) == {d.channel for d in sample.dispatches}
        assert sup.tasks(state="filed", limit=10_000) == sup.tasks(limit=10_000)
        assert sup.tasks(state="cancelled") == []
        sms = {t.task_id for t in tasks if any(d.channel == "sms-gateway" for d in t.dispatches)}
        assert {r.task_id for r in sup.tasks(channel="sms-gateway", limit=10_000)} == sms
        assert {r.task_id for r in sup.tasks(channel="sms", limit=10_000)} == sms  # by kind too
        centre = sample.centre_id or "PC-420100"
        routed = {t.task_id for t in tasks if any(d.channel == centre for d in t.dispatches)}
        assert routed
        assert {r.task_id for r in sup.tasks(centre=centre, limit=10_000)} == routed
        start = min(t.created_at for t in tasks)
        window = (start + timedelta(hours=2), start + timedelta(hours=4))
        expected = {t.task_id for t in tasks if window[0] <= t.created_at < window[1]}
        got = sup.tasks(created_from=window[0], created_to=window[1], limit=10_000)
        assert expected
        assert {r.task_id for r in got} == expected
        page1, page2 = sup.tasks(limit=5), sup.tasks(limit=5, offset=5)
        assert len(page1) == len(page2) == 5
        assert not {r.task_id for r in page1} & {r.task_id for r in page2}
        assert sup.count_tasks(court=case.court) == len(by_court)


def test_timeline_has_actor_and_meaning_and_masks_personal_data(demo: DemoResult, folded: dict[str, Task]) -> None:
    sample = max(folded.values(), key=lambda t: (t.version, t.task_id))
    with Supervisor(demo.store_path) as sup:
        timeline = sup.timeline(sample.task_id)
        with pytest.raises(UnknownTask):
            sup.timeline("T-nope")
    assert len(timeline) == sample.version
    assert [e.task_seq for e in timeline] == list(range(1, sample.version + 1))
    assert timeline[0].type == "task.created"
    assert timeline[0].actor == "court"
    assert timeline[-1].type == "service.filed"
    assert "电子卷宗" in timeline[-1].meaning  # Chinese for court staff
    with Supervisor(demo.store_path, lang="en") as sup:
        assert "case file" in sup.timeline(sample.task_id)[-1].meaning  # English for integrators
    actors = {e.type: e.actor for e in timeline}
    assert actors["dispatch.queued"] == "engine"
    assert actors["dispatch.sent"] == "provider"
    served = next(e for e in timeline if e.type == "service.served")
    assert sample.served_basis is not None
    # the meaning cites the law in Chinese, for court staff; the event keeps the English basis
    assert chinese(sample.served_basis) in served.meaning
    assert "《中华人民共和国民事诉讼法》" in served.meaning
    assert sample.served_basis not in served.meaning
    text = " ".join(e.meaning for e in timeline)
    for contact in sample.request.party.contacts:
        assert contact.value not in text
    assert "**" in text  # the contacts are there, masked


def test_nothing_personal_reaches_the_report_or_the_exports(
    demo: DemoResult, folded: dict[str, Task], tmp_path: Path
) -> None:
    html, js, cs = tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.csv"
    write_report(demo.store_path, html, json_path=js, csv_path=cs)
    outputs = html.read_text() + js.read_text() + cs.read_text()
    secrets = {
        c.value
        for t in folded.values()
        for c in t.request.party.contacts
        if c.kind in (ContactKind.MOBILE, ContactKind.POSTAL)
    }
    assert len(secrets) > 300
    assert not [s for s in secrets if s in outputs]
    assert not re.search(r"1[3-9]\d{9}", outputs)  # no mobile number at all


# -- overdue work -------------------------------------------------------------------------------------


def test_overdue_rules_fire_after_their_service_levels(in_progress: Path) -> None:
    levels = ServiceLevels(eservice_unconfirmed_hours=6, print_not_printed_hours=12)
    with Supervisor(in_progress) as sup:
        assert sup.by_state() == {"electronic": 1, "routed": 1, "needs_attention": 1, "filed": 1}
        early = sup.overdue(levels=levels, as_of=START + timedelta(hours=5))
        assert [(o.rule, o.task_id) for o in early] == [("needs_attention", "T000003")]
        assert "print centre" not in early[0].detail  # the detail is generic; the reason is in the timeline
        mid = sup.overdue(levels=levels, as_of=START + timedelta(hours=8))
        assert sorted(o.rule for o in mid) == ["eservice_unconfirmed", "needs_attention"]
        late = sup.overdue(levels=levels, as_of=START + timedelta(hours=13))
        assert sorted(o.rule for o in late) == ["eservice_unconfirmed", "needs_attention", "print_not_printed"]
        item = {o.rule: o for o in late}
        assert item["eservice_unconfirmed"].task_id == "T000001"
        assert item["eservice_unconfirmed"].since == START
        assert item["eservice_unconfirmed"].hours == 13
        assert item["print_not_printed"].task_id == "T000002"
        # the print centre by its name, with its code
        assert item["print_not_printed"].detail.startswith("武汉市集约送达打印中心 (PC-420100)")
        assert item["needs_attention"].court == "武汉市江岸区人民法院"
        assert [o.hours for o in late] == sorted((o.hours for o in late), reverse=True)
        quiet = sup.overdue(levels=ServiceLevels(needs_attention=False), as_of=START + timedelta(hours=13))
        assert [o.rule for o in quiet] == []  # 48 h and 24 h defaults not reached, attention switched off
        assert len(sup.overdue(levels=levels, as_of=START + timedelta(hours=13), limit=2)) == 2
        st = sup.statistics(levels=levels, as_of=START + timedelta(hours=13))
        assert st.overdue == {"eservice_unconfirmed": 1, "needs_attention": 1, "print_not_printed": 1}
        assert [c.open for c in st.centres] == [1]
        assert sup.statistics().as_of == sup.latest_event_time()
        attention = sup.timeline("T000003")
        assert attention[-1].type == "task.needs_attention"
        assert "110101" in attention[-1].meaning


# -- opening ------------------------------------------------------------------------------------------


def test_the_store_is_opened_read_only(demo: DemoResult) -> None:
    before = _digest(demo.store_path)
    with Supervisor(demo.store_path) as sup:
        sup.statistics()
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            sup._db.execute("DELETE FROM tasks")
    assert _digest(demo.store_path) == before
    with pytest.raises(FileNotFoundError):
        Supervisor(demo.store_path.with_name("missing.sqlite3"))


def test_the_supervision_columns_the_store_writes_equal_those_derived_from_the_bodies(
    demo: DemoResult, tmp_path: Path
) -> None:
    """The store fills sv_ref, sv_key and sv_time from the event it writes; SUPERVISION_BACKFILL (migration 5)
    derives them from the JSON bodies of older rows. Both must agree on every event of a whole demo day."""
    copy = tmp_path / "copy.sqlite3"
    source = sqlite3.connect(demo.store_path)
    source.backup(target := sqlite3.connect(copy))
    source.close()
    written = target.execute("SELECT seq, sv_ref, sv_key, sv_time FROM events ORDER BY seq").fetchall()
    assert sum(1 for row in written if row[2] is not None) > 300  # every task queued something: keys exist
    target.execute("UPDATE events SET sv_ref = NULL, sv_key = NULL, sv_time = NULL")
    target.execute(SUPERVISION_BACKFILL)
    assert target.execute("SELECT seq, sv_ref, sv_key, sv_time FROM events ORDER BY seq").fetchall() == written
    target.close()


@pytest.mark.parametrize("version", [1, 4])
def test_an_older_store_is_upgraded_on_open(demo: DemoResult, tmp_path: Path, version: int) -> None:
    """Version 1 had no supervision columns; version 4 had them as virtual columns, maybe indexed."""
    assert len(MIGRATIONS) >= 5
    old = tmp_path / f"v{version}.sqlite3"
    db = sqlite3.connect(old)
    for migration in MIGRATIONS[:version]:
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
    if version == 4:
        for statement in SUPERVISION_INDEXES.values():
            db.execute(statement)
    db.execute("ATTACH DATABASE ? AS src", (str(demo.store_path),))
    columns = "task_id, client_key, fingerprint, case_key, state, version, due_at, created_at, updated_at"
    db.execute(f"INSERT INTO tasks ({columns}) SELECT {columns} FROM src.tasks")
    db.execute(
        "INSERT INTO events (seq, task_id, task_seq, type, at, body)"
        " SELECT seq, task_id, task_seq, type, at, body FROM src.events"
    )
    db.commit()
    db.execute("DETACH DATABASE src")
    db.execute(f"PRAGMA user_version={version}")
    db.close()
    if version == 1:
        with pytest.raises(StoreError, match="older than this SDK's"):
            Supervisor(old, upgrade=False)  # a reader never migrates
    with Supervisor(old) as sup, Supervisor(demo.store_path) as ref:
        assert sup.statistics().to_dict() == ref.statistics().to_dict()
    with SQLiteStore(old) as store:
        assert store.schema_version == len(MIGRATIONS)


# -- the dashboard shows the API's numbers ------------------------------------------------------------


def _page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="supervision-data">(.*?)</script>', html, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1).replace("<\\/", "</"))
    return data


def _chart_values(html: str, chart: str) -> dict[str, float]:
    match = re.search(rf'<svg [^>]*data-chart="{chart}".*?</svg>', html, re.S)
    assert match is not None, chart
    return {
        html_lib.unescape(label): float(value)
        for label, value in re.findall(r'data-label="([^"]*)" data-value="([^"]*)"', match.group(0))
    }


def test_dashboard_numbers_equal_the_query_api(in_progress: Path, tmp_path: Path) -> None:
    out = tmp_path / "dash.html"
    as_of = START + timedelta(hours=13)
    levels = ServiceLevels(eservice_unconfirmed_hours=6, print_not_printed_hours=12)
    stats = write_report(in_progress, out, levels=levels, as_of=as_of, json_path=tmp_path / "d.json")
    html = out.read_text()
    with Supervisor(in_progress) as sup:
        api = sup.statistics(levels=levels, as_of=as_of)
        overdue = sup.overdue(levels=levels, as_of=as_of)
    assert stats == api
    data = _page_data(html)
    assert {k: data[k] for k in api.to_dict()} == api.to_dict()
    assert data["overdue_list"] == [o.to_dict() for o in overdue]
    assert json.loads((tmp_path / "d.json").read_text()) == data
    for o in overdue:
        assert f'data-task="{o.task_id}"' in html


def test_demo_dashboard_figures_charts_and_exports(demo: DemoResult, tmp_path: Path) -> None:
    out, js, cs = tmp_path / "demo.html", tmp_path / "demo.json", tmp_path / "demo.csv"
    write_report(demo.store_path, out, json_path=js, csv_path=cs)
    html = out.read_text()
    with Supervisor(demo.store_path) as sup:
        api = sup.statistics()
        stats, data = report_data(sup)
        assert render_html(sup, stats, data) == html
    assert _page_data(html) == data == json.loads(js.read_text())
    metrics = dict(re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', html))
    assert float(metrics["tasks"]) == api.tasks
    assert float(metrics["served"]) == api.served
    assert float(metrics["filed"]) == api.filed
    assert float(metrics["electronic_share"]) == pytest.approx(api.electronic_share, abs=1e-6)
    assert float(metrics["fallback_rate"]) == pytest.approx(api.fallback_rate, abs=1e-6)
    assert float(metrics["cycle_median_hours"]) == api.cycle_served.median_hours
    assert float(metrics["savings_yuan"]) == pytest.approx(api.cost["savings_yuan"])
    assert float(metrics["overdue"]) == sum(api.overdue.values()) == 0
    # the charts' labels are what staff read: Chinese, centres by name; the figures are the API's
    assert _chart_values(html, "method-mix") == {label("method", k): float(v) for k, v in api.by_method.items()}
    assert _chart_values(html, "funnel") == {label("funnel", k.replace(" ", "_")): float(v) for k, v in api.funnel}
    assert _chart_values(html, "centre-load") == {
        centre_name(c.centre_id, code=False): float(c.jobs) for c in api.centres
    }
    assert _chart_values(html, "cycle-histogram") == {
        k.replace("d", "天").replace("h", "小时"): float(v) for k, v in api.cycle_served.histogram
    }
    assert "武汉市集约送达打印中心" in html
    volume = re.findall(
        r'data-series="新建" data-label="([^"]*)" data-value="([^"]*)"',
        re.search(r'data-chart="volume".*?</svg>', html, re.S).group(0),  # type: ignore[union-attr]
    )
    assert [(label, float(v)) for label, v in volume] == [(d[5:], float(c)) for d, c, _ in api.volume]
    assert len(re.findall(r'data-chart="timeline"', html)) == len(data["timelines"]) >= 3
    assert "<script src" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    rows = dict(csv.reader(io.StringIO(cs.read_text())))
    assert rows["tasks"] == str(api.tasks)
    assert rows["by_method.electronic"] == str(api.by_method["electronic"])
    assert rows["funnel[3].stage"] == "fell back to post"
    assert cs.read_text() == to_csv(data)


# -- the commands -------------------------------------------------------------------------------------


def test_stats_and_report_commands(demo: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--store", str(demo.store_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with Supervisor(demo.store_path) as sup:
        assert printed == sup.statistics().to_dict()
    assert main(["stats", "--store", str(demo.store_path)]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"^  送达任务 +{printed['tasks']:,}$", text, re.M)
    assert "转邮寄比例" in text
    assert "短信平台 (sms-gateway)" in text
    assert "节省" in text
    assert "北京时间 UTC+8" in text
    assert main(["stats", "--store", str(demo.store_path), "--lang", "en"]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"^  tasks +{printed['tasks']:,}$", text, re.M)
    assert "fell back to post" in text
    assert "SMS gateway (sms-gateway)" in text
    assert "saved" in text
    out = tmp_path / "out.html"
    args = ["report", "--store", str(demo.store_path), "--out", str(out), "--json", str(tmp_path / "a.json")]
    assert main([*args, "--csv", str(tmp_path / "a.csv"), "--eservice-hours", "1", "--postal-yuan", "30"]) == 0
    said = capsys.readouterr().out
    assert f"report written to {out.resolve()}" in said
    assert (tmp_path / "a.csv").exists()
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["cost"]["postal_unit_yuan"] == 30.0
    assert data["service_levels"]["eservice_unconfirmed_hours"] == 1.0
    assert main(["stats", "--store", str(tmp_path / "missing.sqlite3")]) == 2
    assert "no store at" in capsys.readouterr().err


def test_demo_ends_by_writing_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "d.sqlite3"
    assert main(["demo", "--tasks", "40", "--store", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    report = store.with_suffix(".html")
    assert f"report written to {report.resolve()}" in out
    assert _page_data(report.read_text())["tasks"] == 40


def test_statistics_queries_read_indexes_not_the_whole_event_table(demo: DemoResult) -> None:
    """Every statement the statistics, the overdue list and the task filters run has a query plan without a
    full scan of ``events`` (the partial indexes of schema version 2 are stated and used)."""
    statements: list[str] = []
    with Supervisor(demo.store_path) as sup:
        sup._db.set_trace_callback(statements.append)
        list(sup.served_cycles())
        sup.dispatch_outcomes()
        sup._tasks_with("service.fell_back_to_post", Scope())
        sup._electronic_tasks(Scope())
        sup.overdue()
        sup.tasks(channel="sms", centre="PC-420100", state="filed")
        sup._db.set_trace_callback(None)
        plans = {
            sql: [row[3] for row in sup._db.execute("EXPLAIN QUERY PLAN " + sql)]
            for sql in statements
            if sql.lstrip().upper().startswith("SELECT") and "events" in sql
        }
    assert len(plans) >= 6
    for sql, plan in plans.items():
        full = [step for step in plan if re.fullmatch(r"SCAN (events|e|q|f|r)", step)]
        assert not full, (sql, plan)
    used = " ".join(step for plan in plans.values() for step in plan)
    assert "events_supervision" in used
    assert "events_dispatch" in used


def test_an_empty_store_reports_zeros(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.sqlite3"
    SQLiteStore(path).close()
    with Supervisor(path) as sup:
        st = sup.statistics()
        assert sup.tasks() == []
        assert sup.overdue() == []
    assert st.tasks == st.served == 0
    assert st.cycle_served.count == 0
    assert st.cycle_served.median_hours is None
    assert st.fallback_rate == 0.0
    assert st.channels == ()
    out = tmp_path / "empty.html"
    assert main(["report", "--store", str(path), "--out", str(out), "--as-of", "2026-11-03T00:00"]) == 0
    data = _page_data(out.read_text())
    assert data["tasks"] == 0
    assert data["as_of"] == "2026-11-03T00:00:00+00:00"  # a time without a zone is UTC
    assert data["overdue_list"] == []
    assert "没有超期事项" in out.read_text()
    assert main(["stats", "--store", str(path)]) == 0
    assert re.search(r"^  送达任务 +0$", capsys.readouterr().out, re.M)


def test_supervision_indexes_come_with_the_first_supervision_not_with_the_store(tmp_path: Path) -> None:
    """The two event indexes cost every insert, so the engine's store does not carry them until someone
    supervises it."""
    import sqlite3

    from delivery_sdk.store import SQLiteStore
    from delivery_sdk.supervision.query import SUPERVISION_INDEXES, Supervisor

    path = tmp_path / "fresh.sqlite3"
    SQLiteStore(path).close()

    def indexes() -> set[str]:
        with sqlite3.connect(path) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    assert not set(SUPERVISION_INDEXES) & indexes()
    Supervisor(path).close()
    assert set(SUPERVISION_INDEXES) <= indexes()


def test_per_court_figures_add_up_to_the_province(demo: DemoResult, tmp_path: Path) -> None:
    """Every court of the province has its row; the rows add up to the province, and one court's scope
    (--court) gives that court's row alone, with the same figures."""
    with Supervisor(demo.store_path) as sup:
        province = sup.statistics()
        courts = {c.court: c for c in province.courts}
        assert set(courts) == set(sup.courts())
        assert len(courts) == 10  # the demo's courts: the centre serves every court of the province
        assert sum(c.tasks for c in courts.values()) == province.tasks
        assert sum(c.served for c in courts.values()) == province.served
        assert sum(c.electronic for c in courts.values()) == province.by_method.get("electronic", 0)
        assert [c.tasks for c in province.courts] == sorted((c.tasks for c in province.courts), reverse=True)
        name = province.courts[0].court
        one = sup.statistics(scope=Scope(court=name))
    assert one.court == name
    assert one.courts == (courts[name],)
    assert one.tasks == courts[name].tasks
    assert one.electronic_share == pytest.approx(courts[name].electronic_share)
    assert one.cycle_served.median_hours == courts[name].median_hours
    data = province.to_dict()
    assert data["scope"] == {"court": None}
    assert data["courts"][0] == province.courts[0].to_dict()
    out = tmp_path / "court.html"
    assert main(["report", "--store", str(demo.store_path), "--court", name, "--out", str(out)]) == 0
    page = _page_data(out.read_text())
    assert page["scope"] == {"court": name}
    assert page["tasks"] == courts[name].tasks
    assert {o["court"] for o in page["overdue_list"]} <= {name}
    assert main(["report", "--store", str(demo.store_path), "--court", "某某法院", "--out", str(out)]) == 2


def test_the_dashboard_in_english_has_the_same_data(demo: DemoResult, tmp_path: Path) -> None:
    zh, en = tmp_path / "zh.html", tmp_path / "en.html"
    write_report(demo.store_path, zh)
    write_report(demo.store_path, en, lang="en")
    zh_html, en_html = zh.read_text(), en.read_text()
    assert '<html lang="zh-CN">' in zh_html
    assert "<title>送达监督看板</title>" in zh_html
    assert '<html lang="en">' in en_html
    assert "<title>Service supervision dashboard</title>" in en_html
    assert "(Beijing time, UTC+8)" in en_html
    zh_data, en_data = _page_data(zh_html), _page_data(en_html)
    # machine-readable: the same English keys and figures; only the texts written for people differ
    for data in (zh_data, en_data):
        for entries in data["timelines"].values():
            for entry in entries:
                entry.pop("meaning")
    assert zh_data == en_data
