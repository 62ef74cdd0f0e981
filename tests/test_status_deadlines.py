"""A served task's status shows the deadlines that follow its service (CPL Arts. 85, 128, 171)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime, timedelta

from delivery_sdk import Document, DocumentKind, ServiceRequest, TaskState
from delivery_sdk.testing import Harness, Outcome, make_party, make_request


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


def test_deadline_beyond_the_shipped_calendars_is_reported_unknown_not_guessed() -> None:
    state, deadlines, note = _served_with(DocumentKind.JUDGMENT, datetime(2026, 12, 28, 1, 0, tzinfo=UTC))
    assert state is TaskState.FILED
    assert deadlines == []
    assert note is not None
    assert note.startswith("deadlines unknown")


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
