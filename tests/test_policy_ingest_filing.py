"""The policy's decisions the engine acts on for reports, filing and assisted person search (pure; one table
each): what an ingested report comes to, who looks at an implausible report, when the proof of service is filed
and what it holds, what search candidates come to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from delivery_sdk import IllegalTransition
from delivery_sdk.channels import Receipt, ReceiptKind
from delivery_sdk.events import AddressSearchFailed, AddressUpdated, NeedsAttention, TaskCreated
from delivery_sdk.law.addresses import ADDRESS_BASIS, BASIS_NO_ADDRESS_LEFT
from delivery_sdk.lifecycle import Task, TaskState, fold
from delivery_sdk.model import ChannelKind, Contact, ContactKind, DispatchRecord, DispatchStatus, ServiceMethod
from delivery_sdk.policy import (
    IngestOutcome,
    address_search_result,
    file_with_service,
    found_contacts,
    implausible_report_needs_person,
    ingest_outcome,
    service_record,
)
from delivery_sdk.records import AddressCandidate
from delivery_sdk.testing import make_party, make_request

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
S, R, Out = DispatchStatus, ReceiptKind, IngestOutcome


def _task(state: TaskState = TaskState.ELECTRONIC, **changes: Any) -> Task:
    task = fold([TaskCreated(task_id="T1", at=T0, request=make_request(make_party("P-1")))])
    return attrs.evolve(task, state=state, **changes)


def _record(status: DispatchStatus, **changes: Any) -> DispatchRecord:
    record = DispatchRecord(
        dispatch_id="T1.1",
        channel="sms",
        kind=ChannelKind.SMS,
        contact=Contact(kind=ContactKind.MOBILE, value="13800138000"),
        status=status,
        queued_at=T0,
    )
    return attrs.evolve(record, **changes)


@pytest.mark.parametrize(
    ("state", "status", "kind", "keyed", "outcome"),
    [
        (TaskState.ELECTRONIC, S.SENT, R.DELIVERED, True, Out.ACCEPTED),
        (TaskState.ELECTRONIC, S.SENT, R.READ, True, Out.OUT_OF_ORDER),  # read, never delivered
        (TaskState.ELECTRONIC, S.DELIVERED, R.DELIVERED, True, Out.DUPLICATE),  # already shows it
        (TaskState.SERVED, S.SENT, R.DELIVERED, True, Out.LATE),  # the service is decided
        (TaskState.FILED, S.SENT, R.READ, False, Out.LATE),
        (TaskState.CANCELLED, S.SENT, R.DELIVERED, False, Out.LATE),
        (TaskState.ELECTRONIC, S.DELIVERED, R.FAILED, True, Out.LATE),  # contradicts a delivery: evidence only
        (TaskState.ELECTRONIC, S.DELIVERED, R.FAILED, False, Out.DUPLICATE),  # ...unless it is no distinct report
        (TaskState.ELECTRONIC, S.FAILED, R.FAILED, True, Out.DUPLICATE),
        (TaskState.ELECTRONIC, S.TIMED_OUT, R.FAILED, True, Out.DUPLICATE),
    ],
)
def test_ingest_outcome_table(
    state: TaskState, status: DispatchStatus, kind: ReceiptKind, keyed: bool, outcome: IngestOutcome
) -> None:
    delivered_at = T0 if status in (S.DELIVERED, S.READ) else None
    record = _record(status, delivered_at=delivered_at)
    receipt = Receipt(dispatch_id="T1.1", kind=kind, at=T1, provider_event_id="e-1" if keyed else None)
    assert ingest_outcome(_task(state), record, receipt, keyed=keyed) is outcome


@pytest.mark.parametrize(
    ("state", "attention", "needs_person"),
    [
        (TaskState.ELECTRONIC, None, True),
        (TaskState.NEEDS_ATTENTION, "the same reason", False),  # asked once per reason
        (TaskState.NEEDS_ATTENTION, "another reason", True),
        (TaskState.SERVED, None, False),  # decided: the report is evidence only
        (TaskState.FILED, None, False),
        (TaskState.CANCELLED, None, False),
    ],
)
def test_implausible_report_needs_person_table(state: TaskState, attention: str | None, needs_person: bool) -> None:
    task = _task(state, attention_reason=attention)
    assert implausible_report_needs_person(task, "the same reason") is needs_person


@pytest.mark.parametrize(
    ("served_now", "sinks", "with_service"),
    [(True, True, False), (True, False, True), (False, True, True), (False, False, True)],
)
def test_file_with_service_table(served_now: bool, sinks: bool, with_service: bool) -> None:
    assert file_with_service(served_now, sinks) is with_service


def test_the_service_record_holds_how_when_and_why() -> None:
    task = _task(
        TaskState.SERVED,
        served_method=ServiceMethod.ELECTRONIC,
        served_at=T1,
        served_basis="CPL Art. 90",
        served_dispatch_id="T1.1",
    )
    record = service_record(task, (), None)
    assert (record.record_id, record.method, record.effective_at, record.basis, record.dispatch_id) == (
        "T1:proof",
        ServiceMethod.ELECTRONIC,
        T1,
        "CPL Art. 90",
        "T1.1",
    )
    assert record.case == task.request.case
    with pytest.raises(IllegalTransition, match="not served"):
        service_record(_task(TaskState.ELECTRONIC), (), None)


def _postal(value: str, source: str, confidence: float = 0.5, *, confirmed: bool = False) -> AddressCandidate:
    contact = Contact(kind=ContactKind.POSTAL, value=value, confirmed=confirmed)
    return AddressCandidate(contact=contact, source=source, confidence=confidence)


A, B = "湖北省武汉市江岸区沿江大道1号", "湖北省武汉市洪山区珞喻路2号"


@pytest.mark.parametrize(
    ("candidates", "tried", "expected"),
    [
        ([], (), (AddressSearchFailed, BASIS_NO_ADDRESS_LEFT)),
        ([_postal(A, "contract")], (A,), (AddressSearchFailed, BASIS_NO_ADDRESS_LEFT)),
        ([_postal(A, "household_registry"), _postal(B, "contract")], (), (AddressUpdated, ADDRESS_BASIS["contract"])),
        ([_postal(A, "contract"), _postal(B, "contract")], (), (NeedsAttention, None)),  # equal: a person chooses
        ([_postal(A, "contract", 0.9), _postal(B, "contract", 0.5)], (), (AddressUpdated, ADDRESS_BASIS["contract"])),
        ([_postal(A, "operator"), _postal(B, "postal_database")], (), (AddressUpdated, "postal_database")),
    ],
)
def test_address_search_result_table(
    candidates: list[AddressCandidate], tried: tuple[str, ...], expected: tuple[type, str | None]
) -> None:
    task = _task(TaskState.RETURNED, tried_addresses=tried)
    event = address_search_result(task, T1, candidates)
    assert type(event) is expected[0]
    if isinstance(event, AddressSearchFailed | AddressUpdated):
        assert expected[1] is not None
        assert expected[1] in event.basis
    if isinstance(event, NeedsAttention):
        assert "equally ranked" in event.reason
        assert A not in event.reason  # the sources are named, never the addresses


def test_found_contacts_records_new_electronic_contacts_only() -> None:
    task = _task()  # make_party has mobile 13800138000 and a postal address
    phone = AddressCandidate(contact=Contact(kind=ContactKind.MOBILE, value="13900139000"), source="operator")
    known = AddressCandidate(contact=Contact(kind=ContactKind.MOBILE, value="13800138000"), source="registry")
    events = found_contacts(task, T1, [phone, known, _postal(A, "contract")])
    assert [(e.contact.value, e.source) for e in events] == [("13900139000", "operator")]
    assert "assisted person search" in events[0].basis
