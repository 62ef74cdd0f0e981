"""Plausible times and settled facts (issue 15, part 2).

A time a provider reports is a claim: one before its dispatch was queued or after now (beyond
``EngineConfig.clock_skew``) is not applied to the legal facts, the task goes to a person, and nothing is
served on it; that holds for callbacks, for ``ingest`` and for the engine's own polls. Once a task is served,
a late or contradictory report is recorded as late evidence and never rewrites an earlier fact.

Every test runs on the SQLite store and on the PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from delivery_sdk import (
    BaseChannel,
    ChannelKind,
    Dispatch,
    DispatchStatus,
    EngineConfig,
    IngestOutcome,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TaskState,
)
from delivery_sdk.callbacks import CallbackReceiver, sign_callback
from delivery_sdk.testing import Harness, Outcome, channels_plugin, make_party, make_request
from delivery_sdk.trust import implausible_time

SECRET = "sms-secret"
Y1999 = datetime(1999, 3, 1, 8, 0, tzinfo=UTC)
Y2099 = datetime(2099, 3, 1, 8, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def sent_task(h: Harness) -> tuple[str, str]:
    """A task whose SMS went out a minute ago and was not answered yet: (task id, dispatch id)."""
    h.sms.enqueue(Outcome.no_answer())

    async def go() -> str:
        task_id = await h.client.submit(make_request(make_party(eservice=None)))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=1))
        return task_id

    task_id = run(go())
    record = h.client.task(task_id).dispatch(f"{task_id}.1")
    assert record is not None
    assert record.channel == "fake-sms"
    assert record.status is DispatchStatus.SENT
    return task_id, record.dispatch_id


def refusal_reasons(h: Harness) -> list[tuple[str, str, int]]:
    return [(r.source, r.reason, r.count) for r in h.store.refusals()]  # type: ignore[attr-defined]


@pytest.fixture
def harness(store_factory: Any) -> Any:
    h = Harness(store_factory(), kinds=(ChannelKind.SMS,))
    yield h
    run(h.aclose())


# -- implausible times -------------------------------------------------------------------------------------


@pytest.mark.parametrize("claimed", [Y1999, Y2099], ids=["1999", "2099"])
def test_a_delivery_in_1999_or_2099_is_not_the_service_moment(harness: Harness, claimed: datetime) -> None:
    h = harness
    task_id, did = sent_task(h)
    receipt = Receipt(dispatch_id=did, kind=ReceiptKind.DELIVERED, at=claimed, provider_event_id="dlr-1")
    result = run(h.client.ingest(receipt, channel="fake-sms"))
    assert result.outcome is IngestOutcome.IMPLAUSIBLE_TIME
    assert result.refusal == "implausible_time"
    assert result.event_type == "task.needs_attention"
    task = h.client.task(task_id)
    assert task.state is TaskState.NEEDS_ATTENTION
    assert task.attention_reason is not None
    assert did in task.attention_reason
    assert str(claimed.year) in task.attention_reason
    record = task.dispatch(did)
    assert record is not None
    assert record.delivered_at is None
    assert record.status is DispatchStatus.SENT
    assert not h.store.receipt_seen("fake-sms:dlr-1")  # not recorded as a receipt: a later true report counts

    run(h.client.run_until_idle(until=h.clock.now() + timedelta(days=3)))
    task = h.client.task(task_id)
    assert task.served_at is None
    assert task.state is TaskState.NEEDS_ATTENTION
    assert refusal_reasons(h) == [("fake-sms", "implausible_time", 1)]

    # the provider retries: refused and counted again, but the person is not asked twice
    events = len(h.client.timeline(task_id))
    again = run(h.client.ingest(receipt, channel="fake-sms"))
    assert again.outcome is IngestOutcome.IMPLAUSIBLE_TIME
    assert again.event_type is None
    assert len(h.client.timeline(task_id)) == events
    assert refusal_reasons(h) == [("fake-sms", "implausible_time", 2)]


def test_the_receiver_answers_422_for_an_implausible_time(store_factory: Any) -> None:
    class PushSms(BaseChannel):
        name = "push-sms"
        kind = ChannelKind.SMS

        async def send(self, dispatch: Dispatch) -> SendResult:
            return SendResult(accepted=True, provider_ref="ref")

        async def status(self, dispatch: Dispatch) -> StatusReport:
            return StatusReport(found=True)

        def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
            item = json.loads(body)
            return [
                Receipt(
                    dispatch_id=item["id"],
                    kind=ReceiptKind.DELIVERED,
                    at=datetime.fromisoformat(item["at"]),
                    provider_event_id="p-1",
                )
            ]

    h = Harness(store_factory(), kinds=(), extra_plugins=[channels_plugin(PushSms())])
    try:
        task_id = run(h.client.submit(make_request(make_party(eservice=None))))
        run(h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=1)))
        receiver = CallbackReceiver(h.client, secrets={"push-sms": SECRET})
        body = json.dumps({"id": f"{task_id}.1", "at": Y2099.isoformat()}).encode()
        response = receiver.handle("push-sms", sign_callback(SECRET, body, timestamp=h.clock.now()), body)
        assert response.status == 422
        assert response.reason == "implausible_time"
        assert response.body["implausible_time"] == 1
        assert h.client.task(task_id).state is TaskState.NEEDS_ATTENTION
        assert h.client.task(task_id).served_at is None
    finally:
        run(h.aclose())


def test_the_clock_skew_is_configurable(store_factory: Any) -> None:
    strict = Harness(store_factory(), kinds=(ChannelKind.SMS,), config=EngineConfig(clock_skew=timedelta(0)))
    try:
        _task_id, did = sent_task(strict)
        ahead = strict.clock.now() + timedelta(seconds=1)
        receipt = Receipt(dispatch_id=did, kind=ReceiptKind.READ, at=ahead)
        assert run(strict.client.ingest(receipt, channel="fake-sms")).outcome is IngestOutcome.IMPLAUSIBLE_TIME
    finally:
        run(strict.aclose())


def test_a_time_within_the_default_skew_is_believed(harness: Harness) -> None:
    h = harness
    task_id, did = sent_task(h)
    queued = h.client.task(task_id).dispatch(did).queued_at  # type: ignore[union-attr]
    early = queued - timedelta(minutes=2)  # the provider's clock is two minutes behind ours
    receipt = Receipt(dispatch_id=did, kind=ReceiptKind.DELIVERED, at=early)
    assert run(h.client.ingest(receipt, channel="fake-sms")).outcome is IngestOutcome.ACCEPTED
    run(h.client.run_until_idle())
    assert h.client.status(task_id).served_at == early
    assert refusal_reasons(h) == []


class ClockLiar(BaseChannel):
    """An SMS adapter whose status reports the dispatch delivered at ``at``."""

    name = "liar-sms"
    kind = ChannelKind.SMS

    def __init__(self, at: datetime) -> None:
        self.at = at

    async def send(self, dispatch: Dispatch) -> SendResult:
        return SendResult(accepted=True, provider_ref="ref")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        receipt = Receipt(dispatch_id=dispatch.dispatch_id, kind=ReceiptKind.DELIVERED, at=self.at)
        return StatusReport(found=True, provider_ref="ref", receipts=(receipt,))


@pytest.mark.parametrize("claimed", [Y1999, Y2099], ids=["1999", "2099"])
def test_times_from_polling_are_checked_too(store_factory: Any, claimed: datetime) -> None:
    h = Harness(store_factory(), kinds=(), extra_plugins=[channels_plugin(ClockLiar(claimed))])
    try:
        task_id = run(h.client.submit(make_request(make_party(eservice=None))))
        run(h.client.run_until_idle(until=h.clock.now() + timedelta(days=2)))
        task = h.client.task(task_id)
        assert task.state is TaskState.NEEDS_ATTENTION
        assert task.served_at is None
        record = task.dispatch(f"{task_id}.1")
        assert record is not None
        assert record.delivered_at is None
        assert task.attention_reason is not None
        assert str(claimed.year) in task.attention_reason
        assert [(s, r) for s, r, _ in refusal_reasons(h)] == [("liar-sms", "implausible_time")]
    finally:
        run(h.aclose())


def test_an_implausible_time_after_filing_changes_nothing(harness: Harness) -> None:
    h = harness
    task_id, did = sent_task(h)
    run(h.client.ingest(Receipt(dispatch_id=did, kind=ReceiptKind.DELIVERED, at=h.clock.now()), channel="fake-sms"))
    run(h.client.run_until_idle())
    assert h.client.status(task_id).state is TaskState.FILED
    before = h.client.timeline(task_id)
    result = run(h.client.ingest(Receipt(dispatch_id=did, kind=ReceiptKind.READ, at=Y1999), channel="fake-sms"))
    assert result.outcome is IngestOutcome.IMPLAUSIBLE_TIME
    assert result.event_type is None
    assert h.client.timeline(task_id) == before
    assert h.client.status(task_id).state is TaskState.FILED
    assert refusal_reasons(h) == [("fake-sms", "implausible_time", 1)]


def test_implausible_time_rule() -> None:
    queued = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    now = queued + timedelta(hours=1)
    skew = timedelta(minutes=5)
    assert implausible_time(ReceiptKind.DELIVERED, queued - timedelta(minutes=4), queued, now, skew) is None
    assert implausible_time(ReceiptKind.DELIVERED, now + timedelta(minutes=4), queued, now, skew) is None
    before = implausible_time(ReceiptKind.SIGNED, queued - timedelta(minutes=6), queued, now, skew)
    assert before is not None
    assert "before the dispatch was queued" in before
    after = implausible_time(ReceiptKind.CONSENTED, now + timedelta(minutes=6), queued, now, skew)
    assert after is not None
    assert "in the future" in after
    # a failure's or a printing's time is not recorded as a fact, so it is not judged
    assert implausible_time(ReceiptKind.FAILED, Y1999, queued, now, skew) is None
    assert implausible_time(ReceiptKind.PRINTED, Y2099, queued, now, skew) is None


# -- settled facts -----------------------------------------------------------------------------------------


def test_an_earlier_arrival_reported_after_filing_rewrites_nothing(harness: Harness) -> None:
    h = harness
    task_id, did = sent_task(h)
    arrived = h.clock.now()
    run(h.client.ingest(Receipt(dispatch_id=did, kind=ReceiptKind.DELIVERED, at=arrived), channel="fake-sms"))
    run(h.client.run_until_idle())
    filed = h.client.task(task_id)
    assert filed.state is TaskState.FILED
    assert filed.served_at == arrived

    earlier = Receipt(
        dispatch_id=did, kind=ReceiptKind.DELIVERED, at=arrived - timedelta(seconds=50), provider_event_id="late-1"
    )
    result = run(h.client.ingest(earlier, channel="fake-sms"))
    assert result.outcome is IngestOutcome.LATE
    task = h.client.task(task_id)
    record = task.dispatch(did)
    assert record is not None
    assert record.delivered_at == arrived
    assert task.served_at == arrived
    assert task.record_id == filed.record_id
    assert [s.event.TYPE for s in h.client.timeline(task_id)][-1] == "dispatch.delivered"  # kept as evidence
    # ...and folding the history again gives the same facts
    from delivery_sdk.lifecycle import fold

    refolded = fold([s.event for s in h.client.timeline(task_id)])
    assert refolded.dispatch(did).delivered_at == arrived  # type: ignore[union-attr]


def test_before_service_the_earliest_reported_arrival_still_counts(harness: Harness) -> None:
    h = harness
    task_id, did = sent_task(h)
    now = h.clock.now()
    run(h.client.ingest(Receipt(dispatch_id=did, kind=ReceiptKind.DELIVERED, at=now), channel="fake-sms"))
    earlier = Receipt(dispatch_id=did, kind=ReceiptKind.DELIVERED, at=now - timedelta(seconds=30))
    assert run(h.client.ingest(earlier, channel="fake-sms")).outcome is IngestOutcome.ACCEPTED
    run(h.client.run_until_idle())
    assert h.client.status(task_id).served_at == now - timedelta(seconds=30)


def test_a_signature_after_the_mail_came_back_serves_nothing(store_factory: Any) -> None:
    h = Harness(store_factory(), kinds=())
    h.carrier.default = Outcome.returned("unclaimed", after=timedelta(days=2))
    try:
        task_id = run(h.client.submit(make_request(make_party(mobile=None, consent=False))))
        run(h.client.run_until_idle(until=h.clock.now() + timedelta(days=10)))
        task = h.client.task(task_id)
        did = task.postal_dispatch_id
        assert did is not None
        record = task.dispatch(did)
        assert record is not None
        assert record.status is DispatchStatus.RETURNED
        state = task.state
        # the carrier's trace goes on: the returned item is signed for (by the court, its sender)
        signed = Receipt(
            dispatch_id=did,
            kind=ReceiptKind.SIGNED,
            at=h.clock.now(),
            signer_role="recipient",
            provider_event_id="sign-after-return",
        )
        result = run(h.client.ingest(signed, channel="fake-ems"))
        assert result.outcome is IngestOutcome.LATE
        task = h.client.task(task_id)
        record = task.dispatch(did)
        assert record is not None
        assert record.status is DispatchStatus.RETURNED
        assert record.delivered_at is None
        assert task.state is state
        assert task.served_at is None
    finally:
        run(h.aclose())
