"""Properties: whatever the input, public constructors, the wire reader and ingestion fail only with the SDK's
typed errors; what they accept survives the wire unchanged; a refused call leaves the store as it was."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery_sdk import (
    AgentRole,
    Case,
    CaseType,
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    DeliveryError,
    Document,
    DocumentKind,
    Party,
    PartyKind,
    Receipt,
    ReceiptKind,
    Representative,
    ServiceRequest,
    SQLiteStore,
    ValidationError,
)
from delivery_sdk.engine import IngestOutcome
from delivery_sdk.events import EVENT_BY_TYPE
from delivery_sdk.lifecycle import fold
from delivery_sdk.records import AddressCandidate
from delivery_sdk.serialization import dumps, event_from_dict, event_to_dict, loads, structure, unstructure
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies --------------------------------------------------------------------------------------

texts = st.text(max_size=40)
junk = st.one_of(
    st.none(),
    st.integers(min_value=-(10**12), max_value=10**12),
    texts,
    st.booleans(),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(texts, st.integers(), max_size=2),
)


def maybe(valid: st.SearchStrategy[Any], junky: bool = True) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes junk: so that both the happy path and every check get exercised."""
    return st.one_of(valid, valid, junk) if junky else valid


mobiles = st.one_of(
    st.from_regex(r"\+?(86)?1[3-9][0-9]{9}", fullmatch=True), st.from_regex(r"[0-9 +-]{5,16}", fullmatch=True)
)
emails = st.one_of(st.emails(), texts)
accounts = st.from_regex(r"[A-Za-z0-9_.:@-]{1,20}", fullmatch=True)
division_codes = st.one_of(
    st.none(), st.from_regex(r"[0-9]{6}", fullmatch=True), st.from_regex(r"[0-9]{1,8}", fullmatch=True)
)
ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_.:/()\-]{1,12}", fullmatch=True), st.text(alphabet="案号鄂民初（）-0123", min_size=1)
)
sha256s = st.one_of(
    st.binary().map(lambda b: hashlib.sha256(b).hexdigest()), st.from_regex(r"[0-9a-fA-F]{60,66}", fullmatch=True)
)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]),
)
moments = st.one_of(aware, aware, st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))


@st.composite
def contact_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(maybe(st.sampled_from(list(ContactKind))))
    value_for = {
        ContactKind.MOBILE: mobiles,
        ContactKind.EMAIL: emails,
        ContactKind.WECHAT: accounts,
        ContactKind.ESERVICE: accounts,
        ContactKind.POSTAL: st.text(min_size=1, max_size=60),
    }
    valid_value = value_for.get(kind, texts) if isinstance(kind, ContactKind) else texts
    kwargs: dict[str, Any] = {"kind": kind, "value": draw(maybe(valid_value))}
    if draw(st.booleans()):
        kwargs["confirmed"] = draw(maybe(st.booleans()))
    if draw(st.booleans()):
        kwargs["division_code"] = draw(maybe(division_codes))
    if draw(st.booleans()):
        kwargs["source"] = draw(maybe(st.sampled_from(["request", "household_registry", "operator"])))
    return kwargs


def build(cls: type, kwargs: dict[str, Any]) -> Any:
    """Construct; a refusal must be a DeliveryError (anything else propagates and fails the test)."""
    try:
        return cls(**kwargs)
    except DeliveryError:
        return None


contacts = st.builds(lambda kw: build(Contact, kw), contact_kwargs()).filter(lambda c: c is not None)


@st.composite
def consents(draw: st.DrawFn, junky: bool = True) -> Any:
    return build(
        Consent,
        {
            "method": draw(maybe(st.sampled_from(ConsentMethod), junky)),
            "given_at": draw(maybe(st.one_of(st.none(), aware) if not junky else moments, junky)),
        },
    )


@st.composite
def representatives(draw: st.DrawFn, junky: bool = True) -> Any:
    return build(
        Representative,
        {
            "name": draw(maybe(st.text(min_size=1, max_size=20) if not junky else texts, junky)),
            "role": draw(maybe(st.sampled_from(AgentRole), junky)),
            "contacts": draw(maybe(st.lists(contacts, max_size=2), junky)),
        },
    )


@st.composite
def party_kwargs(draw: st.DrawFn, junky: bool = True) -> dict[str, Any]:
    return {
        "party_id": draw(maybe(ids, junky)),
        "name": draw(maybe(st.text(min_size=1, max_size=30), junky)),
        "kind": draw(maybe(st.sampled_from(PartyKind), junky)),
        "id_number": draw(maybe(st.one_of(st.none(), st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True)), junky)),
        "contacts": draw(maybe(st.lists(contacts, max_size=3), junky)),
        "agents": draw(maybe(st.lists(representatives(junky), max_size=2), junky)),
        "consent": draw(maybe(st.one_of(st.none(), consents(junky)), junky)),
    }


@st.composite
def document_kwargs(draw: st.DrawFn, junky: bool = True) -> dict[str, Any]:
    return {
        "document_id": draw(maybe(ids, junky)),
        "title": draw(maybe(st.text(min_size=1, max_size=30), junky)),
        "kind": draw(maybe(st.sampled_from(DocumentKind), junky)),
        "sha256": draw(maybe(sha256s, junky)),
    }


@st.composite
def case_kwargs(draw: st.DrawFn, junky: bool = True) -> dict[str, Any]:
    return {
        "court": draw(maybe(st.text(min_size=1, max_size=30), junky)),
        "case_number": draw(maybe(st.text(min_size=1, max_size=30), junky)),
        "case_type": draw(maybe(st.sampled_from(CaseType), junky)),
    }


def built(cls: type, kwargs: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Instances of ``cls`` built from plausible arguments (the ones it refused are left out)."""
    return st.builds(lambda kw: build(cls, kw), kwargs).filter(lambda x: x is not None)


@st.composite
def request_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    junky = draw(st.booleans())  # half the requests are plausible throughout, half have junk anywhere
    valid_documents = st.lists(
        built(Document, document_kwargs(junky=False)), min_size=1, max_size=3, unique_by=lambda d: d.document_id
    )
    any_documents = st.lists(st.builds(lambda kw: build(Document, kw), document_kwargs()), max_size=3)
    electronic = st.sampled_from([k for k in ChannelKind if k.electronic])
    any_channels = st.lists(st.sampled_from(list(ChannelKind)), max_size=4)
    return {
        "case": draw(maybe(built(Case, case_kwargs(junky=False)), junky)),
        "party": draw(maybe(built(Party, party_kwargs(junky=False)), junky)),
        "documents": draw(maybe(valid_documents if not junky else st.one_of(valid_documents, any_documents), junky)),
        "client_key": draw(maybe(st.one_of(st.none(), st.text(min_size=1, max_size=40)), junky)),
        "channels": draw(
            maybe(st.one_of(st.none(), st.lists(electronic, max_size=4, unique=True), any_channels), junky)
        ),
    }


def assert_survives_the_wire(value: Any) -> None:
    back = structure(loads(dumps(unstructure(value))), type(value))
    assert back == value


# -- constructors ---------------------------------------------------------------------------------------


@SETTINGS
@given(contact_kwargs())
def test_contact_fails_only_with_delivery_errors(kwargs: dict[str, Any]) -> None:
    contact = build(Contact, kwargs)
    if contact is not None:
        assert isinstance(contact.kind, ContactKind)
        assert isinstance(contact.value, str)
        if len(contact.value) > 4:
            assert contact.value not in repr(contact)
        assert_survives_the_wire(contact)


@SETTINGS
@given(party_kwargs())
def test_party_fails_only_with_delivery_errors(kwargs: dict[str, Any]) -> None:
    party = build(Party, kwargs)
    if party is not None:
        assert all(isinstance(c, Contact) for c in party.contacts)
        assert all(isinstance(a, Representative) for a in party.agents)
        assert_survives_the_wire(party)


@SETTINGS
@given(document_kwargs())
def test_document_fails_only_with_delivery_errors(kwargs: dict[str, Any]) -> None:
    document = build(Document, kwargs)
    if document is not None:
        assert len(document.sha256) == 64
        assert_survives_the_wire(document)


@SETTINGS
@given(case_kwargs())
def test_case_fails_only_with_delivery_errors(kwargs: dict[str, Any]) -> None:
    case = build(Case, kwargs)
    if case is not None:
        assert_survives_the_wire(case)


@SETTINGS
@given(request_kwargs())
def test_service_request_fails_only_with_delivery_errors(kwargs: dict[str, Any]) -> None:
    request = build(ServiceRequest, kwargs)
    if request is not None:
        assert request.documents
        assert len({d.document_id for d in request.documents}) == len(request.documents)
        assert_survives_the_wire(request)


@st.composite
def receipt_kwargs(draw: st.DrawFn, dispatch_ids: st.SearchStrategy[Any] = texts) -> dict[str, Any]:
    junky = draw(st.booleans())
    return {
        "dispatch_id": draw(maybe(dispatch_ids, junky)),
        "kind": draw(maybe(st.sampled_from(ReceiptKind), junky)),
        "at": draw(maybe(moments if junky else aware, junky)),
        "provider_event_id": draw(maybe(st.one_of(st.none(), st.sampled_from(["e1", "e2", "e3"]), texts), junky)),
        "reason": draw(
            maybe(st.one_of(st.none(), st.sampled_from(["refused", "address_wrong", "unclaimed", "moved"])), junky)
        ),
        "waybill": draw(maybe(st.one_of(st.none(), st.from_regex(r"EMS[0-9]{10}CN", fullmatch=True)), junky)),
        "signer_role": draw(
            maybe(st.one_of(st.none(), st.sampled_from(["recipient", "family_member", "agent"])), junky)
        ),
    }


@SETTINGS
@given(receipt_kwargs())
def test_receipt_fails_only_with_delivery_errors(kwargs: dict[str, Any]) -> None:
    receipt = build(Receipt, kwargs)
    if receipt is not None:
        assert receipt.at.tzinfo is not None
        if receipt.kind is ReceiptKind.MAILED:
            assert receipt.waybill
        if receipt.kind is ReceiptKind.RETURNED:
            assert receipt.reason in {"refused", "address_wrong", "unclaimed", "moved"}


# -- the wire reader ------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts, st.sampled_from(list(EVENT_BY_TYPE))
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)),
    max_leaves=20,
)
event_keys = st.sampled_from(
    ["type", "task_id", "at", "dispatch_id", "request", "contact", "kind", "reason", "delivered_at", "filed_by"]
)


@st.composite
def json_event_dicts(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = draw(st.dictionaries(st.one_of(event_keys, texts), json_values, max_size=6))
    if draw(st.booleans()):
        data["type"] = draw(st.sampled_from(list(EVENT_BY_TYPE)))
    return data


def _valid_event_dicts() -> list[dict[str, Any]]:
    """The wire form of every event a realistic run produces: electronic failures, the post, a return."""

    async def scenario() -> list[dict[str, Any]]:
        h = Harness()
        h.sms.enqueue(Outcome.failed("no such number"))
        h.email.enqueue(Outcome.no_answer())
        h.wechat.enqueue(Outcome.delivered(read_after=timedelta(minutes=1)))
        h.carrier.enqueue(Outcome.returned("address_wrong"), Outcome.signed())
        h.addresses.candidates["P-post"] = [
            AddressCandidate(
                contact=Contact(
                    kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区发展大道57号", division_code="420506"
                ),
                source="household_registry",
                confidence=0.8,
            )
        ]
        await h.client.submit(make_request(make_party("P-e", email="e@example.cn", wechat="wx_1")))
        await h.client.submit(make_request(make_party("P-post", mobile=None, consent=False)))
        await h.client.run_until_idle()
        events = h.store.events_after(0, 10**6)
        await h.aclose()
        return [loads(dumps(event_to_dict(s.event))) for s in events]

    data: list[dict[str, Any]] = asyncio.run(scenario())
    return data


VALID_EVENT_DICTS = _valid_event_dicts()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated_event_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event's wire form with one value replaced, one key dropped or one key added, anywhere inside."""
    data = loads(dumps(draw(st.sampled_from(VALID_EVENT_DICTS))))
    path = draw(st.sampled_from(_paths(data)))
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(json_values)
    elif action == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(texts)] = draw(json_values)
    return data


def _read(data: Any) -> None:
    try:
        event = event_from_dict(data)
    except ValidationError:
        return
    # what the reader accepts, the writer writes back and the reader reads again as the same event
    assert event_from_dict(loads(dumps(event_to_dict(event)))) == event


@SETTINGS
@given(st.one_of(json_event_dicts(), json_values))
def test_event_from_dict_raises_only_validation_error(data: Any) -> None:
    _read(data)


@SETTINGS
@given(mutated_event_dicts())
def test_event_from_dict_on_mutated_events_raises_only_validation_error(data: dict[str, Any]) -> None:
    _read(data)


# -- ingestion ------------------------------------------------------------------------------------------

Snapshot = tuple[dict[str, int], list[Any], list[Any], list[Any]]


def snapshot(store: SQLiteStore) -> Snapshot:
    rows = [store.task_row(t) for t in store.all_task_ids()]
    return (store.count_by_state(), store.events_after(0, 10**6), rows, store.pending_outbox())


async def _one_sent_task() -> tuple[Harness, str]:
    h = Harness()
    h.sms.enqueue(Outcome.no_answer())
    task_id = await h.client.submit(make_request(make_party("P1", email="p1@example.cn")))
    await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=1))
    return h, task_id


@SETTINGS
@given(
    st.lists(
        receipt_kwargs(st.sampled_from(["T000001.1", "T000001.1", "T000001.1", "T000001.2", "T000001", "nope"])),
        min_size=1,
        max_size=6,
    )
)
def test_ingest_fails_only_with_delivery_errors_and_refusals_write_nothing(batch: list[dict[str, Any]]) -> None:
    async def scenario() -> None:
        h, task_id = await _one_sent_task()
        store = h.store
        assert isinstance(store, SQLiteStore)
        for kwargs in batch:
            before = snapshot(store)
            try:
                result = await h.client.ingest(Receipt(**kwargs))
            except DeliveryError:
                assert snapshot(store) == before
                continue
            after = snapshot(store)
            nothing = (IngestOutcome.DUPLICATE, IngestOutcome.UNKNOWN_DISPATCH, IngestOutcome.REFUSED)
            if result.outcome in nothing or (
                result.outcome is IngestOutcome.IMPLAUSIBLE_TIME and result.event_type is None
            ):
                assert after == before  # a refused receipt, or an implausible one asking nobody twice
            else:
                assert result.task_id == task_id
                new = after[1][len(before[1]) :]
                assert [s.event.TYPE for s in new] == [result.event_type]
                assert new[0].task_seq == before[1][-1].task_seq + 1
        # whatever came in, the engine can still work the task and its history still folds
        h.sms.default = Outcome.no_answer()
        h.email.default = Outcome.no_answer()
        h.carrier.default = Outcome.signed()
        await h.client.run_until_idle(until=h.clock.now() + timedelta(days=60))
        events = [s.event for s in h.client.timeline(task_id)]
        assert fold(events).state is h.client.status(task_id).state
        assert [s.task_seq for s in h.client.timeline(task_id)] == list(range(1, len(events) + 1))
        await h.aclose()

    asyncio.run(scenario())


def test_strategies_reach_both_outcomes() -> None:
    # A guard against strategies that only ever produce junk (or only valid input): both must occur.
    outcomes = {"ok": 0, "refused": 0}

    @settings(max_examples=100, deadline=None, database=None)
    @given(request_kwargs())
    def probe(kwargs: dict[str, Any]) -> None:
        outcomes["ok" if build(ServiceRequest, kwargs) is not None else "refused"] += 1

    probe()
    assert outcomes["ok"] > 0
    assert outcomes["refused"] > 0


def test_valid_requests_are_accepted_whole() -> None:
    request = make_request(make_party("P1", email="p1@example.cn", wechat="wx_1"))
    assert attrs.evolve(request) == request
    assert_survives_the_wire(request)
