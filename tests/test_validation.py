"""Bad input is refused with the SDK's typed errors, messages that say what is wrong, and no trace in the store.

Every rejected client call is checked against a snapshot of the store taken just before it: the task rows,
the counts by state and the whole event log must be exactly as they were.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from delivery_sdk import (
    AgentRole,
    Case,
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    DeliveryError,
    Document,
    DocumentKind,
    IdempotencyConflict,
    IllegalTransition,
    InvalidContact,
    InvalidRequest,
    Party,
    Representative,
    ServiceRequest,
    SQLiteStore,
    UnknownChannel,
    UnknownTask,
    ValidationError,
)
from delivery_sdk.model import mask
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

MOBILE = "13912345678"
EMAIL = "zhang.san@example.cn"
ADDRESS = "湖北省武汉市武昌区中北路1号3栋502室"
ID_NUMBER = "420106199001011234"
SHA = hashlib.sha256(b"summons").hexdigest()


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def doc(document_id: str = "D1", sha256: str = SHA) -> Document:
    return Document(document_id=document_id, title="传票", kind=DocumentKind.SUMMONS, sha256=sha256)


def case() -> Case:
    return Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1234号")


# -- constructors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "fragments"),
    [
        (ContactKind.MOBILE, "1391234567", ["mobile number", "11-digit"]),  # 10 digits
        (ContactKind.MOBILE, "12912345678", ["mobile number", "starting 13-19"]),
        (ContactKind.MOBILE, "139123456789", ["mobile number", "11-digit"]),
        (ContactKind.MOBILE, "phone-number", ["mobile number"]),
        (ContactKind.MOBILE, "", ["mobile number"]),
        (ContactKind.MOBILE, "13９１２３４５６７８", ["mobile number"]),  # full-width digits: no SMS gateway takes them
        (ContactKind.MOBILE, "١٣٩١٢٣٤٥٦٧٨", ["mobile number"]),  # Arabic-Indic digits match \d too
        (ContactKind.EMAIL, "zhang.san.example.cn", ["e-mail address", "name@domain.tld"]),
        (ContactKind.EMAIL, "zhang san@example.cn", ["e-mail address"]),
        (ContactKind.EMAIL, "zhang@localhost", ["e-mail address"]),
        (ContactKind.EMAIL, "a" * 250 + "@example.cn", ["e-mail address"]),
        (ContactKind.WECHAT, "wx openid", ["wechat account", "1-128 letters"]),
        (ContactKind.WECHAT, "", ["wechat account"]),
        (ContactKind.WECHAT, "x" * 129, ["wechat account", "1-128"]),
        (ContactKind.ESERVICE, "账号", ["eservice account"]),
        (ContactKind.ESERVICE, "acc/123", ["eservice account"]),
        (ContactKind.POSTAL, "", ["postal address", "1-300 characters"]),
        (ContactKind.POSTAL, "   \t", ["postal address"]),
        (ContactKind.POSTAL, "湖" * 301, ["postal address", "1-300"]),
        (ContactKind.POSTAL, "湖北省\x00武汉市", ["postal address"]),
    ],
)
def test_contact_refuses_bad_value(kind: ContactKind, value: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidContact) as info:
        Contact(kind=kind, value=value)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    if len(value) > 4:
        assert value not in message  # personal data never in clear


def test_bad_mobile_message_masks_the_number() -> None:
    with pytest.raises(InvalidContact) as info:
        Contact(kind=ContactKind.MOBILE, value="1291234567899")
    assert "1291234567899" not in str(info.value)
    assert repr(mask("1291234567899")) in str(info.value)


@pytest.mark.parametrize("value", ["+86 139 1234 5678", "0086-139-1234-5678", "139-1234-5678", MOBILE])
def test_mobile_is_normalised(value: str) -> None:
    assert Contact(kind=ContactKind.MOBILE, value=value).value == MOBILE


@pytest.mark.parametrize("code", ["42010", "4201061", "42010a", "", "４２０１０６"])
def test_contact_refuses_bad_division_code(code: str) -> None:
    with pytest.raises(InvalidContact, match=r"division code .* must be 6 digits \(GB/T 2260\)"):
        Contact(kind=ContactKind.POSTAL, value=ADDRESS, division_code=code)


@pytest.mark.parametrize(
    ("changes", "exc", "fragment"),
    [
        ({"kind": "mobile"}, InvalidContact, "contact kind must be a ContactKind"),
        ({"value": 13912345678}, InvalidContact, "contact value must be a string, got int"),
        ({"division_code": 420106}, InvalidContact, "division code"),
        ({"confirmed": "yes"}, InvalidContact, "confirmed must be True or False"),
        ({"source": ""}, InvalidContact, "contact source must be a non-empty string"),
    ],
)
def test_contact_refuses_bad_types(changes: dict[str, Any], exc: type[Exception], fragment: str) -> None:
    kwargs: dict[str, Any] = {"kind": ContactKind.MOBILE, "value": MOBILE, **changes}
    with pytest.raises(exc) as info:
        Contact(**kwargs)
    assert fragment in str(info.value)


def test_consent_refuses_naive_datetime() -> None:
    with pytest.raises(InvalidRequest, match="consent given_at must be a timezone-aware datetime"):
        Consent(method=ConsentMethod.EXPRESS, given_at=datetime(2026, 11, 2, 9, 30))
    with pytest.raises(InvalidRequest, match="timezone-aware"):
        Consent(method=ConsentMethod.EXPRESS, given_at="2026-11-02T09:30:00+08:00")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="consent method must be a ConsentMethod"):
        Consent(method="express")  # type: ignore[arg-type]
    aware = Consent(
        method=ConsentMethod.EXPRESS, given_at=datetime(2026, 11, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    )
    assert aware.given_at is not None
    assert aware.given_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"party_id": ""}, "party_id must be 1-128"),
        ({"party_id": "P 1"}, "party_id must be 1-128"),
        ({"party_id": None}, "party_id must be"),
        ({"name": "  "}, "needs a name of 1-200 characters"),
        ({"name": "张" * 201}, "needs a name of 1-200 characters"),
        ({"kind": "person"}, "party kind must be a PartyKind"),
        ({"consent": ConsentMethod.EXPRESS}, "party consent must be a Consent or None"),
        ({"contacts": Contact(kind=ContactKind.MOBILE, value=MOBILE)}, "contacts must be a sequence of Contact"),
        ({"contacts": [MOBILE]}, "contacts must be Contact instances, got str"),
        ({"agents": ["agent"]}, "agents must be Representative instances, got str"),
    ],
)
def test_party_refuses_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {"party_id": "P1", "name": "张三", **kwargs}
    with pytest.raises(InvalidRequest) as info:
        Party(**base)
    assert fragment in str(info.value)


def test_representative_refuses_bad_input() -> None:
    with pytest.raises(InvalidRequest, match="a representative needs a name"):
        Representative(name=" ", role=AgentRole.LITIGATION_AGENT)
    with pytest.raises(InvalidRequest, match="representative role must be an AgentRole"):
        Representative(name="李四", role="agent")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="contacts must be Contact instances"):
        Representative(name="李四", role=AgentRole.DESIGNATED_RECEIVER, contacts=[EMAIL])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"sha256": "0" * 63}, "sha256 must be 64 lowercase hex digits"),
        ({"sha256": SHA.upper()}, "sha256 must be 64 lowercase hex digits"),
        ({"sha256": "g" * 64}, "sha256 must be 64 lowercase hex digits"),
        ({"sha256": hashlib.sha256(b"x").digest()}, "sha256 must be 64 lowercase hex digits"),
        ({"document_id": ""}, "document_id must be 1-128"),
        ({"document_id": "D 1"}, "document_id must be 1-128"),
        ({"title": ""}, "needs a title of 1-300 characters"),
        ({"title": "传" * 301}, "needs a title of 1-300 characters"),
        ({"kind": "summons"}, "document kind must be a DocumentKind"),
    ],
)
def test_document_refuses_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {"document_id": "D1", "title": "传票", "kind": DocumentKind.SUMMONS, "sha256": SHA, **kwargs}
    with pytest.raises(InvalidRequest) as info:
        Document(**base)
    assert fragment in str(info.value)


def test_bad_sha256_message_names_the_document() -> None:
    with pytest.raises(InvalidRequest, match=r"document D7 sha256 must be 64 lowercase hex digits \(hashlib"):
        doc("D7", sha256="abc")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"court": ""}, "case court must be 1-200 characters"),
        ({"case_number": " "}, "case number must be 1-100 characters"),
        ({"case_number": "号" * 101}, "case number must be 1-100 characters"),
        ({"case_type": "civil"}, "case type must be a CaseType"),
    ],
)
def test_case_refuses_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {"court": "武汉市武昌区人民法院", "case_number": "(2026)鄂0106民初1号", **kwargs}
    with pytest.raises(InvalidRequest) as info:
        Case(**base)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"documents": ()}, "needs at least one document"),
        ({"documents": []}, "needs at least one document"),
        ({"documents": doc()}, "documents must be a sequence of Document"),
        ({"documents": None}, "documents must be a sequence of Document"),
        ({"documents": (doc(), "D2")}, "documents must be Document instances, got str"),
        ({"documents": (doc("D1"), doc("D2"), doc("D1"))}, "document id 'D1' appears twice in one request"),
        ({"client_key": ""}, "client_key must be a string of 1-200 characters"),
        ({"client_key": "k" * 201}, "client_key must be a string of 1-200 characters"),
        ({"client_key": 17}, "client_key must be a string"),
        ({"channels": (ChannelKind.POST,)}, "preferred channels must be electronic ChannelKinds"),
        ({"channels": (ChannelKind.PRINT,)}, "preferred channels must be electronic ChannelKinds"),
        ({"channels": ("sms",)}, "preferred channels must be electronic ChannelKinds, got 'sms'"),
        ({"channels": (ChannelKind.SMS, ChannelKind.SMS)}, "preferred channels list a channel twice"),
        ({"case": "(2026)鄂0106民初1号"}, "case must be a Case"),
        ({"party": "P1"}, "party must be a Party"),
    ],
)
def test_service_request_refuses_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {"case": case(), "party": make_party("P1"), "documents": (doc(),), **kwargs}
    with pytest.raises(InvalidRequest) as info:
        ServiceRequest(**base)
    assert fragment in str(info.value)


def test_every_refusal_is_a_delivery_error_and_a_value_error() -> None:
    with pytest.raises(ValidationError) as info:
        Contact(kind=ContactKind.EMAIL, value="nope")
    assert isinstance(info.value, DeliveryError)
    assert isinstance(info.value, ValueError)


# -- personal data in reprs ----------------------------------------------------------------------------


def test_contact_repr_masks_the_value() -> None:
    for contact in (
        Contact(kind=ContactKind.MOBILE, value=MOBILE),
        Contact(kind=ContactKind.EMAIL, value=EMAIL),
        Contact(kind=ContactKind.POSTAL, value=ADDRESS, division_code="420106"),
        Contact(kind=ContactKind.WECHAT, value="wx_openid_0123456789"),
    ):
        text = repr(contact)
        assert contact.value not in text
        assert repr(mask(contact.value)) in text
        assert str(contact) == text


def test_party_repr_shows_no_personal_data() -> None:
    agent = Representative(
        name="李律师",
        role=AgentRole.LITIGATION_AGENT,
        contacts=(Contact(kind=ContactKind.MOBILE, value="13800138000"),),
    )
    party = Party(
        party_id="P1",
        name="张三丰",
        id_number=ID_NUMBER,
        contacts=(
            Contact(kind=ContactKind.MOBILE, value=MOBILE),
            Contact(kind=ContactKind.EMAIL, value=EMAIL),
            Contact(kind=ContactKind.POSTAL, value=ADDRESS, division_code="420106"),
        ),
        agents=(agent,),
        consent=Consent(method=ConsentMethod.EXPRESS),
    )
    for text in (
        repr(party),
        repr(make_request(party)),
        repr(ServiceRequest(case=case(), party=party, documents=[doc()])),
    ):
        for secret in (MOBILE, EMAIL, ADDRESS, ID_NUMBER, "13800138000", "张三丰", "李律师"):
            assert secret not in text
        # the middle of a number must not leak either (a prefix/suffix of 2 characters is all that shows)
        assert MOBILE[2:-2] not in text
        assert ID_NUMBER[2:-2] not in text
        assert repr(mask(ID_NUMBER)) in text
        assert "P1" in text  # ids are not personal data: they stay readable


def test_mask() -> None:
    assert mask("") == ""
    assert mask("1234") == "****"
    assert mask(MOBILE) == "13*******78"
    assert mask(ADDRESS).startswith("湖北")
    assert mask(ADDRESS).endswith("2室")
    assert len(mask(ADDRESS)) == len(ADDRESS)


# -- client calls: refused, and the store untouched -----------------------------------------------------

Snapshot = tuple[dict[str, int], list[Any], list[Any], list[Any]]


def snapshot(store: SQLiteStore) -> Snapshot:
    rows = [store.task_row(task_id) for task_id in store.all_task_ids()]
    return (store.count_by_state(), store.events_after(0, 10**6), rows, store.pending_outbox())


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A harness whose store already holds work: one task with its SMS sent and one that fell back to post."""
    h = Harness()
    h.sms.enqueue(Outcome.no_answer())
    run(_seed(h))
    yield h
    assert h.unused() == {}
    run(h.aclose())


async def _seed(h: Harness) -> None:
    await h.client.submit(make_request(make_party("P-post", mobile=None, consent=False), client_key="seed-1"))
    await h.client.run_until_idle(until=h.clock.now() + timedelta(hours=13))  # printed and mailed by now
    await h.client.submit(make_request(make_party("P-sent"), client_key="seed-2"))
    await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=1))


def _store(h: Harness) -> SQLiteStore:
    assert isinstance(h.store, SQLiteStore)
    return h.store


def refused(h: Harness, exc: type[BaseException], call: Callable[[], Any], *fragments: str) -> BaseException:
    """Run ``call`` (sync or returning a coroutine), expect ``exc`` with ``fragments``; the store is unchanged."""
    store = _store(h)
    before = snapshot(store)

    def attempt() -> None:
        result = call()
        if asyncio.iscoroutine(result):
            run(result)

    with pytest.raises(exc) as info:
        attempt()
    for fragment in fragments:
        assert fragment in str(info.value)
    assert snapshot(store) == before
    return info.value


def test_seeded_store_holds_work(harness: Harness) -> None:
    store = _store(harness)
    assert store.count_by_state() == {"electronic": 1, "mailed": 1}
    assert [s.event.TYPE for s in store.events_after(0, 10**6)] == [
        "task.created",
        "service.fell_back_to_post",
        "print.routed",
        "dispatch.queued",
        "dispatch.sent",
        "print.printed",
        "post.mailed",
        "task.created",
        "dispatch.queued",
        "dispatch.sent",
    ]
    assert store.pending_outbox() == []


def test_unknown_channel_at_submit() -> None:
    harness = Harness(kinds=(ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.WECHAT, ChannelKind.ESERVICE))
    request = make_request(make_party("P9"), channels=(ChannelKind.PHONE,))
    error = refused(
        harness, UnknownChannel, lambda: harness.client.submit(request), "'phone'", "delivery_register_channels"
    )
    assert isinstance(error, UnknownChannel)
    assert error.name == "phone"
    assert "sms (fake-sms)" in error.known
    # a submit_many with one bad request among good ones creates none of them
    good = make_request(make_party("P10"))
    refused(harness, UnknownChannel, lambda: harness.client.submit_many([good, request]), "phone")


def test_channel_registered_later_is_accepted(harness: Harness) -> None:
    request = make_request(make_party("P9"), channels=(ChannelKind.WECHAT, ChannelKind.SMS))
    task_id = run(harness.client.submit(request))
    assert harness.client.task(task_id).request.channels == (ChannelKind.WECHAT, ChannelKind.SMS)


def test_idempotent_submit(harness: Harness) -> None:
    store = _store(harness)
    request = make_request(make_party("P7"), client_key="judge-42/P7")
    first = run(harness.client.submit(request))
    before = snapshot(store)
    again = run(harness.client.submit(make_request(make_party("P7"), client_key="judge-42/P7")))
    assert again == first
    assert snapshot(store) == before  # no new events, no new task
    assert run(harness.client.submit_many([request, make_request(make_party("P8"), client_key="k-8")]))[0] == first

    different = make_request(make_party("P7", email="p7@example.cn"), client_key="judge-42/P7")
    error = refused(
        harness,
        IdempotencyConflict,
        lambda: harness.client.submit(different),
        "'judge-42/P7'",
        "already used for a different request",
        first,
    )
    assert isinstance(error, IdempotencyConflict)
    assert error.client_key == "judge-42/P7"
    assert error.task_id == first
    # a conflicting key anywhere in a batch refuses the whole batch, new requests included
    fresh = make_request(make_party("P11"), client_key="k-11")
    refused(harness, IdempotencyConflict, lambda: harness.client.submit_many([fresh, different]), "judge-42/P7")
    assert all(row.client_key != "k-11" for row in (store.task_row(t) for t in store.all_task_ids()))


def test_duplicate_client_key_within_one_submission(harness: Harness) -> None:
    a = make_request(make_party("P1"), client_key="same")
    b = make_request(make_party("P2"), client_key="same")
    refused(harness, InvalidRequest, lambda: harness.client.submit_many([a, b]), "share a client_key")
    # even two identical requests: the caller made a mistake, nothing is created
    refused(harness, InvalidRequest, lambda: harness.client.submit_many([a, a]), "share a client_key")
    refused(harness, InvalidRequest, lambda: harness.client.submit_case(case(), [], [doc()]), "at least one party")
    party = make_party("P3")
    refused(
        harness, InvalidRequest, lambda: harness.client.submit_case(case(), [party, party], [doc()], client_key="c")
    )


def test_submit_refuses_what_is_not_a_request(harness: Harness) -> None:
    refused(
        harness, InvalidRequest, lambda: harness.client.submit("a request"), "submit takes a ServiceRequest, got str"
    )
    refused(harness, InvalidRequest, lambda: harness.client.submit_many([make_request(), None]), "got NoneType")


def test_cancel_needs_a_reason(harness: Harness) -> None:
    task_id = _store(harness).all_task_ids()[0]
    for reason in ("", "   ", None):
        refused(harness, ValidationError, lambda r=reason: harness.client.cancel(task_id, r), "cancel needs a reason")


def test_cancel_refused_by_the_lifecycle(harness: Harness) -> None:
    mailed = next(t for t in _store(harness).all_task_ids() if harness.client.status(t).state.value == "mailed")
    refused(
        harness, IllegalTransition, lambda: harness.client.cancel(mailed, "withdrawn"), "'mailed'", "task.cancelled"
    )


def test_unknown_task(harness: Harness) -> None:
    client = harness.client
    for call in (
        lambda: client.status("T-missing"),
        lambda: client.timeline("T-missing"),
        lambda: client.task("T-missing"),
        lambda: client.cancel("T-missing", "withdrawn"),
        lambda: client.resume("T-missing"),
        lambda: client.set_address("T-missing", Contact(kind=ContactKind.POSTAL, value=ADDRESS)),
    ):
        error = refused(harness, UnknownTask, call, "no task 'T-missing'")
        assert isinstance(error, UnknownTask)
        assert isinstance(error, LookupError)
        assert error.task_id == "T-missing"


def test_set_address_needs_a_postal_contact(harness: Harness) -> None:
    task_id = _store(harness).all_task_ids()[0]
    refused(
        harness,
        ValidationError,
        lambda: harness.client.set_address(task_id, Contact(kind=ContactKind.MOBILE, value=MOBILE)),
        "postal Contact",
    )
    refused(harness, ValidationError, lambda: harness.client.set_address(task_id, ADDRESS), "postal Contact")  # type: ignore[arg-type]


def test_resume_refused_unless_needs_attention(harness: Harness) -> None:
    task_id = _store(harness).all_task_ids()[0]
    refused(harness, IllegalTransition, lambda: harness.client.resume(task_id), "task.resumed")


def test_evolve_revalidates() -> None:
    contact = Contact(kind=ContactKind.MOBILE, value=MOBILE)
    with pytest.raises(InvalidContact):
        attrs.evolve(contact, value="123")
    with pytest.raises(InvalidRequest, match="needs at least one document"):
        attrs.evolve(make_request(), documents=())


def test_utc_and_offsets_accepted() -> None:
    for tz in (UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))):
        assert Consent(method=ConsentMethod.PLATFORM, given_at=datetime(2026, 1, 1, tzinfo=tz)).given_at is not None
