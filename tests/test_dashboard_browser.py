"""The dashboard in a real headless browser (Debian's ``chromium``, installed by ``.ci/run``).

The page is rendered twice: ``--dump-dom`` (the DOM after rendering, to count the charts) and
``--screenshot`` (saved for review: to ``$DELIVERY_SDK_ARTIFACTS`` when set, else the test's temporary
folder). Chromium's log (``--enable-logging=stderr``) carries every console message as a ``CONSOLE`` line;
the page must produce none. A page that does log an error is caught by the same check (the control).
Without chromium the test fails: it is not optional.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from delivery_sdk.demo import run_demo
from delivery_sdk.store import SQLiteStore
from delivery_sdk.supervision import ServiceLevels, Supervisor, write_report
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

CHARTS = {"volume", "method-mix", "funnel", "cycle-histogram", "filing-histogram", "centre-load", "channel-success"}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium is not installed: the dashboard test needs a real headless browser. "
        "Install it with `apt-get install -y chromium` (.ci/run does)."
    )


def _run(page: Path, work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dashboard of a demo day plus, on another store, one with overdue work."""
    folder = tmp_path_factory.mktemp("browser")
    store = folder / "demo.sqlite3"
    asyncio.run(run_demo(tasks=400, seed=11, store_path=store, progress=None))
    out = folder / "dashboard.html"
    write_report(store, out)
    return out


@pytest.fixture(scope="module")
def overdue_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser-overdue")
    store = folder / "open.sqlite3"

    async def build() -> None:
        h = Harness(SQLiteStore(store))
        h.eservice.default = Outcome.no_answer()
        for centre in h.centres:
            centre.print_after = timedelta(days=10)
        for i in range(3):
            await h.client.submit(make_request(make_party(f"P-E{i}", mobile=None, eservice=f"acct-{i}")))
            await h.client.submit(make_request(make_party(f"P-P{i}", mobile=None, consent=False)))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(hours=1))
        await h.aclose()

    asyncio.run(build())
    out = folder / "overdue.html"
    with Supervisor(store) as sup:
        as_of = sup.latest_event_time() + timedelta(days=3)
    write_report(store, out, levels=ServiceLevels(), as_of=as_of)
    return out


def test_dashboard_renders_in_chromium_with_charts_and_no_console_errors(page: Path, tmp_path: Path) -> None:
    dom = _run(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    charts = set(re.findall(r'<svg [^>]*data-chart="([^"]+)"', dom.stdout))
    assert charts >= CHARTS | {"timeline"}
    assert len(re.findall(r"<svg\b", dom.stdout)) >= len(CHARTS) + 3
    assert len(re.findall(r"<rect\b", dom.stdout)) > 50  # the bars are there, not empty frames
    assert 'id="supervision-data"' in dom.stdout
    artifacts = Path(os.environ.get("DELIVERY_SDK_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "dashboard.png"
    shot.unlink(missing_ok=True)
    run = _run(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console(run.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a rendered page, not a blank one


def test_overdue_rows_render(overdue_page: Path, tmp_path: Path) -> None:
    dom = _run(overdue_page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    rules = re.findall(r'data-rule="(eservice_unconfirmed|print_not_printed)"', dom.stdout)
    assert sorted(rules) == ["eservice_unconfirmed"] * 3 + ["print_not_printed"] * 3
    # the rules by their Chinese names, the print centre by its name
    assert len(re.findall(r"<td>电子送达未确认</td>", dom.stdout)) == 3
    assert len(re.findall(r"<td>打印任务未打印</td>", dom.stdout)) == 3
    assert "武汉市集约送达打印中心 (PC-420100)尚未打印" in dom.stdout


# Where the page puts its labels: headings, table heads, figures' captions, notes, chart texts.
_LABELS = re.compile(
    r"<(h1|h2|th|summary)\b[^>]*>(.*?)</\1>|<div class=\"(?:note|sub)\">(.*?)</div>|<span>(.*?)</span>"
    r"|<text\b[^>]*>(.*?)</text>|<title>(.*?)</title>",
    re.S,
)


def _untranslated(dom: str, store: str) -> list[str]:
    """English words in the page's labels: none may be left but codes in brackets (PC-420100, sms-gateway),
    the zone's UTC, the store's file name and the --court option."""
    words = []
    for groups in _LABELS.findall(dom):
        text = html_lib.unescape(re.sub(r"<[^>]+>", " ", "".join(groups[1:])))  # the first group: the tag
        text = text.replace(store, " ").replace("--court", " ").replace("UTC+8", " ")
        text = re.sub(r"\([A-Za-z0-9._-]+\)", " ", text)  # a code beside a name
        words += re.findall(r"[A-Za-z]{2,}", text)
    return words


def test_dashboard_speaks_chinese_in_beijing_time(page: Path, tmp_path: Path) -> None:
    """What staff read: every label Chinese (from the catalogue, no key left untranslated), every time in
    Beijing time with its zone, centres and channels by their names."""
    from datetime import datetime

    from delivery_sdk.locale import beijing, catalogue

    dom = _run(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<html lang="zh-CN">' in html
    assert _untranslated(html, "demo.sqlite3") == []
    shown = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    keys = catalogue().messages
    left = [key for key in keys if re.search(rf"(?<![\w.-]){re.escape(key)}(?![\w-])", shown)]
    assert left == []  # a key shown as it is: its translation is missing
    for heading in ("送达监督看板", "各法院送达情况", "超期事项", "任务时间线", "各打印中心负荷"):
        assert heading in html
    assert "武汉市集约送达打印中心" in html
    assert "人民法院电子送达平台 (eservice-platform)" in html
    # the "as of" time in Beijing time, its zone shown; the data keeps the UTC time with its offset
    as_of = re.search(r'<span data-as-of="([^"]+)">([^<]+)</span>', html)
    assert as_of is not None
    moment = datetime.fromisoformat(as_of.group(1))
    assert moment.utcoffset() is not None
    assert as_of.group(2) == beijing(moment)
    assert as_of.group(2).endswith("(北京时间 UTC+8)")
    # the timeline tables: headed Beijing time, each row eight hours ahead of the stored UTC time
    assert "时间（北京时间）" in html
    data = json.loads(re.search(r'id="supervision-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    task_id, entries = next(iter(data["timelines"].items()))
    rows = re.findall(r"<tr><td>(\d+)</td><td>([0-9-]+ [0-9:]+)</td>", html.split(f'data-task="{task_id}"', 1)[1])
    first = datetime.fromisoformat(entries[0]["at"])
    assert rows[0] == ("1", beijing(first, zone=False))
    # the per-court table: every court of the demo, most tasks first, with their figures
    courts = re.findall(r'<tr data-court="([^"]+)"><td>[^<]+</td><td class="?n"?>([\d,]+)</td>', html)
    assert len(courts) == len(data["courts"]) == 10
    assert [int(n.replace(",", "")) for _, n in courts] == [c["tasks"] for c in data["courts"]]


def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><svg></svg><script>console.error("boom"); nope();</script></body></html>'
    )
    dom = _run(bad, tmp_path, "--dump-dom")
    lines = _console(dom.stderr)
    assert any('"boom"' in line for line in lines)
    assert any("nope is not defined" in line for line in lines)
