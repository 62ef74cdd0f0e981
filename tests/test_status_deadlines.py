"""A served task's status shows the deadlines that follow its service (CPL Arts. 85, 128, 171).

A deadline whose last day falls in a year without a State Council notice is computed on the provisional
calendar and labelled so, in the status, the ``status`` command and the proof of service (issue 16, part 2).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pypdf
import pytest

from delivery_sdk import Document, DocumentKind, ServiceRequest, TaskState
from delivery_sdk.cli import main
from delivery_sdk.client import TaskStatus
from delivery_sdk.law import CALENDAR_DIR_ENV
from delivery_sdk.proof import build_record, record_from_json, record_to_json, render_pdf
from delivery_sdk.proof.verify import verify_record
from delivery_sdk.records import ServiceRecord
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

# Test data in the format of the shipped notices, not the (unpublished) 2027 notice.
NOTICE_2027 = (Path(__file__).parent / "fixtures" / "notice-2027.toml").read_text(encoding="utf-8")


def _serve(kind: DocumentKind, start: datetime, store: Path | None = None) -> tuple[TaskStatus, ServiceRecord]:
    async def main() -> tuple[TaskStatus, ServiceRecord]:
        h = Harness(SQLiteStore(store) if store is not None else None, start=start)
        h.sms.enqueue(Outcome.delivered())
        base = make_request(make_party())
        document = Document(document_id="D1", title="文书", kind=kind, sha256=hashlib.sha256(b"d").hexdigest())
        task_id = await h.client.submit(ServiceRequest(case=base.case, party=base.party, documents=(document,)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        record = h.sink.filed[f"{task_id}:proof"]
        await h.aclose()
        return status, record

    return asyncio.run(main())


def _status_of(kind: DocumentKind, start: datetime, store: Path | None = None) -> TaskStatus:
    return _serve(kind, start, store)[0]


def _record_of(kind: DocumentKind, start: datetime) -> ServiceRecord:
    return _serve(kind, start)[1]


def _served_with(kind: DocumentKind, start: datetime) -> tuple[TaskState, list[tuple[str, date]], str | None]:
    async def main() -> tuple[TaskState, list[tuple[str, date]], str | None]:
        h = Harness(start=start)
        h.sms.enqueue(Outcome.delivered())
        base = make_request(make_party())
        document = Document(document_id="D1", title="文书", kind=kind, sha256=hashlib.sha256(b"d").hexdigest())
        task_id = await h.client.submit(ServiceRequest(case=base.case, party=base.party, documents=(document,)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        await h.aclose()
        return status.state, [(d.name, d.due) for d in status.deadlines], status.deadlines_note

    return asyncio.run(main())


def test_judgment_served_shows_the_appeal_deadline() -> None:
    # served Mon 2 Nov 2026 (Beijing): 15 days from the next day -> Tue 17 Nov (CPL Arts. 85, 171)
    state, deadlines, note = _served_with(DocumentKind.JUDGMENT, datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    assert state is TaskState.FILED
    assert deadlines == [("appeal", date(2026, 11, 17))]
    assert note is None


def test_ruling_appeal_is_ten_days_and_rolls_over_national_day() -> None:
    # served 25 Sep 2026: day 10 is 5 Oct, inside the National Day holiday (1-7 Oct) -> 8 Oct (CPL Art. 85)
    _, deadlines, _ = _served_with(DocumentKind.RULING, datetime(2026, 9, 25, 1, 0, tzinfo=UTC))
    assert deadlines == [("appeal", date(2026, 10, 8))]


def test_service_in_late_december_gets_a_provisional_deadline_in_the_next_year(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16: served 28 Dec 2026, the appeal period ends in 2027, whose State Council notice is not out.
    The deadline is computed on the provisional calendar (statutory holidays and weekends) and says so."""
    monkeypatch.delenv(CALENDAR_DIR_ENV, raising=False)
    status = _status_of(DocumentKind.JUDGMENT, datetime(2026, 12, 28, 1, 0, tzinfo=UTC))
    assert status.state is TaskState.FILED
    assert status.deadlines_note is None
    [appeal] = status.deadlines
    assert (appeal.name, appeal.due, appeal.provisional) == ("appeal", date(2027, 1, 12), True)
    assert "暂定" in appeal.calendar
    assert "2027" in appeal.calendar


@pytest.mark.parametrize("year", range(2025, 2031))
def test_every_year_to_2030_gets_deadlines_through_the_client(year: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CALENDAR_DIR_ENV, raising=False)
    status = _status_of(DocumentKind.COMPLAINT, datetime(year, 12, 28, 1, 0, tzinfo=UTC))
    [defence] = status.deadlines
    assert defence.name == "defence"
    assert defence.due.year == year + 1
    assert defence.provisional is (year + 1 >= 2027)
    assert status.deadlines_note is None


def test_an_imported_notice_makes_the_deadline_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notice = tmp_path / "notice.toml"
    notice.write_text(NOTICE_2027, encoding="utf-8")
    monkeypatch.setenv(CALENDAR_DIR_ENV, str(tmp_path / "calendars"))
    assert main(["calendar", "import", str(notice)]) == 0
    status = _status_of(DocumentKind.JUDGMENT, datetime(2027, 1, 21, 1, 0, tzinfo=UTC))
    [appeal] = status.deadlines
    # day 15 is 5 Feb 2027, in the (test) notice's Spring Festival holiday to Sat 13 Feb; Sun 14 Feb -> Mon 15
    assert (appeal.due, appeal.provisional) == (date(2027, 2, 15), False)


def test_status_command_labels_a_provisional_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CALENDAR_DIR_ENV, raising=False)
    path = tmp_path / "store.sqlite3"
    status = _status_of(DocumentKind.JUDGMENT, datetime(2026, 12, 28, 1, 0, tzinfo=UTC), store=path)
    assert main(["status", status.task_id, "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "期限      上诉期 至 2027-01-12 届满 [暂定]（" in out
    assert "暂定：2027年国务院放假安排通知尚未载入" in out
    assert main(["status", status.task_id, "--store", str(path), "--lang", "en"]) == 0
    assert "deadline  appeal by 2027-01-12 [provisional] (" in capsys.readouterr().out


def test_proof_of_service_lists_the_deadlines_and_says_provisional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CALENDAR_DIR_ENV, raising=False)
    record = _record_of(DocumentKind.JUDGMENT, datetime(2026, 12, 28, 1, 0, tzinfo=UTC))
    proof = build_record(record)
    [appeal] = proof.deadlines
    assert (appeal.name, appeal.due, appeal.days, appeal.provisional) == ("appeal", "2027-01-12", 15, True)
    assert proof.deadlines_note is None
    again = record_from_json(record_to_json(proof))
    assert again == proof
    assert verify_record(record_to_json(proof)).problems == ()
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render_pdf(proof))).pages)
    flat = re.sub(r"\s+", "", text)
    assert "上诉期（15日）" in flat
    assert "2027-01-12（暂定）" in flat
    assert "暂定：2027年国务院放假安排通知尚未载入" in flat


def test_proof_of_service_on_an_official_year_is_not_provisional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CALENDAR_DIR_ENV, raising=False)
    proof = build_record(_record_of(DocumentKind.RULING, datetime(2026, 9, 25, 1, 0, tzinfo=UTC)))
    [appeal] = proof.deadlines
    assert (appeal.due, appeal.provisional) == ("2026-10-08", False)
    assert "2026年部分节假日安排" in appeal.calendar


def test_unserved_task_has_no_deadlines() -> None:
    async def main() -> None:
        h = Harness()
        # nowhere to serve: publication, deemed served only after 30 days
        task_id = await h.client.submit(make_request(make_party(consent=False, mobile=None, address=None)))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(days=1))
        status = h.client.status(task_id)
        assert status.state is TaskState.PUBLISHING
        assert status.served_at is None
        assert status.deadlines == ()
        await h.aclose()

    asyncio.run(main())
