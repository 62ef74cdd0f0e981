"""What a provider's report becomes and whether it is news (delivery_sdk.lifecycle, pure): one table per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from delivery_sdk.channels import Receipt, ReceiptKind
from delivery_sdk.events import (
    ConsentRecorded,
    DispatchDelivered,
    DispatchFailed,
    DispatchRead,
    DispatchSent,
    Enveloped,
    Event,
    Mailed,
    PostReturned,
    PostSigned,
    Printed,
    ReturnReason,
)
from delivery_sdk.lifecycle import (
    PROVIDER_FACTS,
    fact_is_news,
    receipt_contradicts,
    receipt_event,
    receipt_is_news,
    receipt_out_of_order,
)
from delivery_sdk.model import ChannelKind, ConsentMethod, Contact, ContactKind, DispatchRecord, DispatchStatus

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
S = DispatchStatus
R = ReceiptKind


def _record(status: DispatchStatus = S.SENT, **changes: Any) -> DispatchRecord:
    base = DispatchRecord(
        dispatch_id="T1.1",
        channel="sms",
        kind=ChannelKind.SMS,
        contact=Contact(kind=ContactKind.MOBILE, value="13800138000"),
        status=status,
        queued_at=T0,
    )
    return attrs.evolve(base, **changes)


def _receipt(kind: ReceiptKind, **extra: Any) -> Receipt:
    return Receipt(dispatch_id="T1.1", kind=kind, at=T1, provider_event_id="e-1", **extra)


@pytest.mark.parametrize(
    ("receipt", "expected"),
    [
        (_receipt(R.DELIVERED), DispatchDelivered(task_id="T1", at=T1, dispatch_id="T1.1", delivered_at=T1)),
        (_receipt(R.FAILED), DispatchFailed(task_id="T1", at=T1, dispatch_id="T1.1", reason="failed")),
        (
            _receipt(R.FAILED, reason="blocked"),
            DispatchFailed(task_id="T1", at=T1, dispatch_id="T1.1", reason="blocked"),
        ),
        (_receipt(R.READ), DispatchRead(task_id="T1", at=T1, dispatch_id="T1.1", read_at=T1)),
        (_receipt(R.PRINTED), Printed(task_id="T1", at=T1, dispatch_id="T1.1")),
        (_receipt(R.ENVELOPED), Enveloped(task_id="T1", at=T1, dispatch_id="T1.1", enveloped_at=T1)),
        (_receipt(R.MAILED, waybill="EMS1"), Mailed(task_id="T1", at=T1, dispatch_id="T1.1", waybill="EMS1")),
        (_receipt(R.SIGNED), PostSigned(task_id="T1", at=T1, dispatch_id="T1.1", signed_at=T1, signer_role="unknown")),
        (
            _receipt(R.SIGNED, signer_role="recipient"),
            PostSigned(task_id="T1", at=T1, dispatch_id="T1.1", signed_at=T1, signer_role="recipient"),
        ),
        (
            _receipt(R.RETURNED, reason="refused"),
            PostReturned(task_id="T1", at=T1, dispatch_id="T1.1", returned_at=T1, reason=ReturnReason.REFUSED),
        ),
    ],
)
def test_receipt_event_table(receipt: Receipt, expected: Event) -> None:
    event = receipt_event("T1", T1, receipt)
    pid = getattr(expected, "provider_event_id", "absent")
    if pid != "absent":
        expected = attrs.evolve(expected, provider_event_id="e-1")  # type: ignore[misc]
    assert event == expected


def test_a_consent_receipt_is_a_phone_consent_through_its_dispatch() -> None:
    event = receipt_event("T1", T1, _receipt(R.CONSENTED))
    assert event == ConsentRecorded(task_id="T1", at=T1, method=ConsentMethod.PHONE, given_at=T1, via_dispatch="T1.1")


EARLIER = T0 + timedelta(minutes=30)


@pytest.mark.parametrize(
    ("record", "event", "news"),
    [
        (_record(S.QUEUED), DispatchSent(task_id="T1", at=T1, dispatch_id="T1.1", provider_ref="p"), True),
        (_record(S.DELIVERED), DispatchSent(task_id="T1", at=T1, dispatch_id="T1.1", provider_ref="p"), True),
        (
            _record(S.DELIVERED, provider_ref="p"),
            DispatchSent(task_id="T1", at=T1, dispatch_id="T1.1", provider_ref="p"),
            False,
        ),
        (_record(S.SENT), DispatchDelivered(task_id="T1", at=T1, dispatch_id="T1.1", delivered_at=T1), True),
        (
            _record(S.DELIVERED, delivered_at=T1),
            DispatchDelivered(task_id="T1", at=T1, dispatch_id="T1.1", delivered_at=T1),
            False,
        ),
        (  # an earlier arrival corrects the record
            _record(S.DELIVERED, delivered_at=T1),
            DispatchDelivered(task_id="T1", at=T1, dispatch_id="T1.1", delivered_at=EARLIER),
            True,
        ),
        (_record(S.DELIVERED), DispatchRead(task_id="T1", at=T1, dispatch_id="T1.1", read_at=T1), True),
        (_record(S.READ, read_at=T1), DispatchRead(task_id="T1", at=T1, dispatch_id="T1.1", read_at=T1), False),
        (_record(S.SENT), DispatchFailed(task_id="T1", at=T1, dispatch_id="T1.1", reason="x"), True),
        (_record(S.FAILED), DispatchFailed(task_id="T1", at=T1, dispatch_id="T1.1", reason="x"), False),
        (_record(S.QUEUED), Printed(task_id="T1", at=T1, dispatch_id="T1.1"), True),
        (_record(S.PRINTED), Printed(task_id="T1", at=T1, dispatch_id="T1.1"), False),
        (_record(S.PRINTED), Enveloped(task_id="T1", at=T1, dispatch_id="T1.1", enveloped_at=T1), True),
        (
            _record(S.PRINTED, enveloped_at=T1),
            Enveloped(task_id="T1", at=T1, dispatch_id="T1.1", enveloped_at=T1),
            False,
        ),
        (_record(S.PRINTED), Mailed(task_id="T1", at=T1, dispatch_id="T1.1", waybill="W"), True),
        (_record(S.MAILED, waybill="W"), Mailed(task_id="T1", at=T1, dispatch_id="T1.1", waybill="W"), False),
        (_record(S.MAILED), PostSigned(task_id="T1", at=T1, dispatch_id="T1.1", signed_at=T1, signer_role="x"), True),
        (
            _record(S.RETURNED),
            PostSigned(task_id="T1", at=T1, dispatch_id="T1.1", signed_at=T1, signer_role="x"),
            False,
        ),
        (
            _record(S.MAILED),
            PostReturned(task_id="T1", at=T1, dispatch_id="T1.1", returned_at=T1, reason=ReturnReason.MOVED),
            True,
        ),
        (
            _record(S.DELIVERED),
            PostReturned(task_id="T1", at=T1, dispatch_id="T1.1", returned_at=T1, reason=ReturnReason.MOVED),
            False,
        ),
    ],
)
def test_fact_is_news_table(record: DispatchRecord, event: Event, news: bool) -> None:
    assert fact_is_news(record, event) is news


@pytest.mark.parametrize(
    ("status", "kind", "contradicts"),
    [
        (S.DELIVERED, R.FAILED, True),
        (S.READ, R.FAILED, True),
        (S.SENT, R.FAILED, False),
        (S.DELIVERED, R.RETURNED, True),
        (S.MAILED, R.RETURNED, False),
        (S.RETURNED, R.SIGNED, True),
        (S.MAILED, R.SIGNED, False),
        (S.DELIVERED, R.READ, False),
    ],
)
def test_receipt_contradicts_table(status: DispatchStatus, kind: ReceiptKind, contradicts: bool) -> None:
    assert receipt_contradicts(_record(status), kind) is contradicts


@pytest.mark.parametrize(
    ("record", "kind", "out_of_order"),
    [
        (_record(S.SENT), R.READ, True),  # read before delivered
        (_record(S.DELIVERED, delivered_at=T1), R.READ, False),
        (_record(S.SENT), R.MAILED, True),  # mailed before printed
        (_record(S.QUEUED), R.ENVELOPED, True),
        (_record(S.PRINTED), R.MAILED, False),
        (_record(S.SENT), R.DELIVERED, False),
    ],
)
def test_receipt_out_of_order_table(record: DispatchRecord, kind: ReceiptKind, out_of_order: bool) -> None:
    assert receipt_out_of_order(record, kind) is out_of_order


def test_receipt_is_news_is_fact_is_news_of_its_event() -> None:
    assert receipt_is_news(_record(S.SENT), _receipt(R.DELIVERED))
    assert not receipt_is_news(_record(S.DELIVERED, delivered_at=T1), _receipt(R.DELIVERED))


def test_provider_facts_are_the_events_receipts_and_sends_become() -> None:
    kinds = [R.DELIVERED, R.FAILED, R.READ, R.PRINTED, R.ENVELOPED, R.SIGNED, R.CONSENTED]
    made = {type(receipt_event("T1", T1, _receipt(k))) for k in kinds}
    made |= {type(receipt_event("T1", T1, _receipt(R.MAILED, waybill="W")))}
    made |= {type(receipt_event("T1", T1, _receipt(R.RETURNED, reason="moved")))}
    assert made | {DispatchSent} == set(PROVIDER_FACTS)
