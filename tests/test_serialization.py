"""The wire form of events: every event type round-trips, datetimes keep their offset, bad input is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from delivery_sdk import (
    AgentRole,
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    Party,
    Representative,
    ServiceMethod,
    ValidationError,
)
from delivery_sdk.events import (
    EVENT_BY_TYPE,
    EVENT_TYPES,
    AddressSearchFailed,
    AddressUpdated,
    Cancelled,
    ConsentObjected,
    ConsentRecorded,
    ContactUpdated,
    DispatchDelivered,
    DispatchFailed,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    DispatchTimedOut,
    Enveloped,
    Event,
    FellBackToPost,
    Filed,
    Mailed,
    NeedsAttention,
    PostReturned,
    PostSigned,
    Printed,
    PrintRouted,
    PublicationStarted,
    ResumedByStaff,
    ReturnReason,
    Served,
    TaskCreated,
)
from delivery_sdk.serialization import dumps, event_from_dict, event_to_dict, loads
from delivery_sdk.testing import make_request

CST = timezone(timedelta(hours=8))
EST = timezone(timedelta(hours=-5))
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=CST)
T1 = datetime(2026, 11, 3, 1, 15, 30, 250000, tzinfo=UTC)
T2 = datetime(2026, 11, 4, 20, 0, tzinfo=EST)

ADDRESS = Contact(kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区小溪塔街道发展大道57号", division_code="420506")
MOBILE = Contact(kind=ContactKind.MOBILE, value="13912345678", confirmed=True, source="confirmation_form")


def _rich_request() -> Any:
    party = Party(
        party_id="P-湖北-1",
        name="湖北某某科技有限公司",
        id_number="91420100MA4KXXXX1X",
        contacts=(MOBILE, Contact(kind=ContactKind.EMAIL, value="legal@example.cn"), ADDRESS),
        agents=(
            Representative(
                name="王律师",
                role=AgentRole.LITIGATION_AGENT,
                contacts=(Contact(kind=ContactKind.ESERVICE, value="lawyer_0042"),),
            ),
        ),
        consent=Consent(method=ConsentMethod.PRE_SUIT_AGREEMENT, given_at=T2),
    )
    return attrs.evolve(
        make_request(party, client_key="法官-42/案-1"), channels=(ChannelKind.EMAIL, ChannelKind.ESERVICE)
    )


CREATED_RICH = TaskCreated(task_id="T1", at=T0, request=_rich_request())
QUEUED_SMS = DispatchQueued(
    task_id="T1", at=T0, dispatch_id="T1.1", channel="fake-sms", kind=ChannelKind.SMS, contact=MOBILE
)
QUEUED_PRINT = DispatchQueued(
    task_id="T1",
    at=T1,
    dispatch_id="T1.2",
    channel="PC-420500",
    kind=ChannelKind.PRINT,
    contact=ADDRESS,
    centre_id="PC-420500",
)
SENT = DispatchSent(task_id="T1", at=T1, dispatch_id="T1.1", provider_ref="ref-1")
DELIVERED = DispatchDelivered(task_id="T1", at=T1, dispatch_id="T1.1", delivered_at=T0, provider_event_id="e-1")
FAILED = DispatchFailed(task_id="T1", at=T1, dispatch_id="T1.1", reason="号码不存在", provider_event_id="e-2")
ADDRESS_UPDATED = AddressUpdated(task_id="T1", at=T1, contact=ADDRESS, source="household_registry", confidence=0.75)
FILED = Filed(task_id="T1", at=T1, record_id="T1:proof", filed_by=("casefile:T1:proof", "archive:7"))
CANCELLED = Cancelled(task_id="T1", at=T0, reason="案件已撤诉")

SAMPLES: list[Event] = [
    TaskCreated(task_id="T1", at=T0, request=make_request()),
    CREATED_RICH,
    QUEUED_SMS,
    QUEUED_PRINT,
    SENT,
    DispatchSent(task_id="T1", at=T1, dispatch_id="T1.1"),
    DELIVERED,
    DispatchRead(task_id="T1", at=T2, dispatch_id="T1.1", read_at=T2),
    FAILED,
    DispatchTimedOut(task_id="T1", at=T1, dispatch_id="T1.1"),
    FellBackToPost(task_id="T1", at=T1, reason="every electronic channel failed"),
    ADDRESS_UPDATED,
    ContactUpdated(
        task_id="T1",
        at=T1,
        contact=Contact(kind=ContactKind.MOBILE, value="13800138000", source="staff"),
        source="staff",
        replaces=MOBILE,
        actor="clerk-07",
        note="电话核实：原号码已停机",
    ),
    ContactUpdated(
        task_id="T1", at=T1, contact=MOBILE, source="household_registry", confidence=0.5, basis="SPC Opinion 2017"
    ),
    AddressSearchFailed(task_id="T1", at=T1, reason="no untried address among 0 candidate(s)"),
    PrintRouted(task_id="T1", at=T1, centre_id="PC-420500", reason="route key 420500"),
    Printed(task_id="T1", at=T1, dispatch_id="T1.2", provider_event_id="T1.2-prt"),
    Enveloped(task_id="T1", at=T1, dispatch_id="T1.2", enveloped_at=T0, provider_event_id="T1.2-env"),
    Mailed(task_id="T1", at=T1, dispatch_id="T1.2", waybill="EMS0123456789CN"),
    PostSigned(task_id="T1", at=T2, dispatch_id="T1.2", signed_at=T2, signer_role="family_member"),
    PostReturned(task_id="T1", at=T2, dispatch_id="T1.2", returned_at=T1, reason=ReturnReason.REFUSED),
    PublicationStarted(task_id="T1", at=T0, published_at=T0, reason="mail returned (moved) after 2 round(s)"),
    Served(
        task_id="T1",
        at=T1,
        method=ServiceMethod.ELECTRONIC,
        basis="CPL Art. 90; SPC Online Litigation Rules Art. 31",
        effective_at=T0,
        dispatch_id="T1.1",
    ),
    Served(task_id="T1", at=T1, method=ServiceMethod.PUBLICATION, basis="CPL Art. 95", effective_at=T2),
    FILED,
    Filed(task_id="T1", at=T1, record_id="T1:proof"),
    CANCELLED,
    NeedsAttention(task_id="T1", at=T0, reason="no print centre serves this address"),
    ResumedByStaff(task_id="T1", at=T0, note="new number from the clerk"),
    ResumedByStaff(task_id="T1", at=T0),
    ConsentRecorded(task_id="T1", at=T0, method=ConsentMethod.PHONE, given_at=T0, via_dispatch="T1.1"),
    ConsentRecorded(task_id="T1", at=T0, method=ConsentMethod.CONFIRMATION_FORM, given_at=T0),
    ConsentObjected(task_id="T1", at=T0, objected_at=T0, via_dispatch="T1.1"),
    ConsentObjected(task_id="T1", at=T0, objected_at=T0),
]


def _ids(event: Event) -> str:
    return event.TYPE


def datetimes(value: Any, path: str = "") -> dict[str, datetime]:
    """Every datetime inside an attrs object, by path (to compare offsets, which == ignores)."""
    out: dict[str, datetime] = {}
    if isinstance(value, datetime):
        out[path] = value
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            out.update(datetimes(getattr(value, field.name), f"{path}.{field.name}"))
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            out.update(datetimes(item, f"{path}[{i}]"))
    return out


def test_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(EVENT_TYPES)
    assert set(EVENT_BY_TYPE) == {cls.TYPE for cls in EVENT_TYPES}
    assert len(EVENT_BY_TYPE) == len(EVENT_TYPES)  # no two classes share a tag


@pytest.mark.parametrize("event", SAMPLES, ids=_ids)
def test_round_trip(event: Event) -> None:
    data = event_to_dict(event)
    assert data["type"] == event.TYPE
    assert set(data) == {"type"} | {f.name for f in attrs.fields(type(event))}
    back = event_from_dict(data)
    assert type(back) is type(event)
    assert back == event
    text = dumps(data)
    assert loads(text) == data
    again = event_from_dict(loads(text))
    assert again == event
    assert dumps(event_to_dict(again)) == text  # the wire form is stable
    assert {p: d.utcoffset() for p, d in datetimes(again).items()} == {
        p: d.utcoffset() for p, d in datetimes(event).items()
    }


def test_datetimes_keep_their_offset() -> None:
    event = DispatchDelivered(task_id="T1", at=T1, dispatch_id="T1.1", delivered_at=T0)
    data = event_to_dict(event)
    assert data["at"] == "2026-11-03T01:15:30.250000+00:00"
    assert data["delivered_at"] == "2026-11-02T09:30:00+08:00"
    back = event_from_dict(loads(dumps(data)))
    assert isinstance(back, DispatchDelivered)
    assert back.delivered_at.utcoffset() == timedelta(hours=8)
    assert back.delivered_at.hour == 9  # not converted to UTC
    assert back.at.utcoffset() == timedelta(0)
    assert back.at.microsecond == 250000


def test_z_suffix_is_read_as_utc() -> None:
    data = event_to_dict(Cancelled(task_id="T1", at=T1, reason="x"))
    data["at"] = "2026-11-03T01:15:30Z"
    back = event_from_dict(data)
    assert back.at == datetime(2026, 11, 3, 1, 15, 30, tzinfo=UTC)


def test_enums_by_value_and_tuples_as_arrays() -> None:
    queued = event_to_dict(QUEUED_PRINT)
    assert queued["kind"] == "print"
    assert queued["contact"]["kind"] == "postal"
    returned = event_to_dict(
        PostReturned(task_id="T1", at=T1, dispatch_id="T1.2", returned_at=T1, reason=ReturnReason.MOVED)
    )
    assert returned["reason"] == "moved"
    filed = event_to_dict(FILED)
    assert filed["filed_by"] == ["casefile:T1:proof", "archive:7"]
    created = event_to_dict(CREATED_RICH)
    assert created["request"]["channels"] == ["email", "eservice"]
    assert created["request"]["party"]["consent"] == {
        "method": "pre_suit_agreement",
        "given_at": "2026-11-04T20:00:00-05:00",
    }


@pytest.mark.parametrize("event", [CREATED_RICH, FAILED, CANCELLED], ids=_ids)
def test_chinese_text_stays_unescaped(event: Event) -> None:
    text = dumps(event_to_dict(event))
    assert "\\u" not in text
    assert text == json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
    assert '": ' not in text  # compact separators
    assert '", "' not in text
    assert event_from_dict(loads(text.encode("utf-8"))) == event


def test_chinese_text_readable_in_dumps() -> None:
    text = dumps(event_to_dict(Cancelled(task_id="T1", at=T0, reason="案件已撤诉")))
    assert '"reason":"案件已撤诉"' in text


# -- refused on the way out ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Cancelled(task_id="T1", at=datetime(2026, 11, 2, 9, 30), reason="x"),
        DispatchDelivered(task_id="T1", at=T0, dispatch_id="T1.1", delivered_at=datetime(2026, 11, 2, 9, 30)),
    ],
    ids=["at", "delivered_at"],
)
def test_naive_datetime_refused_on_the_way_out(event: Event) -> None:
    with pytest.raises(ValidationError, match="naive datetime"):
        event_to_dict(event)


# -- refused on the way in -------------------------------------------------------------------------------


def _valid(event: Event | None = None) -> dict[str, Any]:
    data: dict[str, Any] = loads(dumps(event_to_dict(event or CREATED_RICH)))
    return data


@pytest.mark.parametrize("value", ["2026-11-02T09:30:00", "2026-11-02 09:30", "2026-11-02"])
def test_naive_datetime_refused_on_the_way_in(value: str) -> None:
    data = _valid(DELIVERED)
    data["delivered_at"] = value
    with pytest.raises(ValidationError, match="delivered_at"):
        event_from_dict(data)
    data = _valid(DELIVERED)
    data["at"] = value
    with pytest.raises(ValidationError, match=r"\$\.at"):
        event_from_dict(data)


def test_naive_datetime_deep_inside_refused() -> None:
    data = _valid()
    data["request"]["party"]["consent"]["given_at"] = "2026-11-04T20:00:00"
    with pytest.raises(ValidationError, match="given_at"):
        event_from_dict(data)


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00+08:00", 1762046400, None, [], {}])
def test_non_datetime_refused(value: Any) -> None:
    data = _valid(SENT)
    data["at"] = value
    with pytest.raises(ValidationError):
        event_from_dict(data)


@pytest.mark.parametrize("tag", ["dispatch.exploded", "", "Dispatch.Sent", None, 7, ["dispatch.sent"]])
def test_unknown_type_refused(tag: Any) -> None:
    data = _valid(SENT)
    data["type"] = tag
    with pytest.raises(ValidationError) as info:
        event_from_dict(data)
    if isinstance(tag, str):
        assert f"unknown event type {tag!r}" in str(info.value)
        assert "dispatch.sent" in str(info.value)  # the message lists the known tags


def test_missing_type_refused() -> None:
    data = _valid(SENT)
    del data["type"]
    with pytest.raises(ValidationError, match="unknown event type None"):
        event_from_dict(data)


@pytest.mark.parametrize("value", [[], "event", 7, None])
def test_non_object_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="an event must be a JSON object"):
        event_from_dict(value)


def test_extra_keys_refused() -> None:
    data = _valid(SENT)
    data["note"] = "hello"
    with pytest.raises(ValidationError, match=r"extra fields found \(note\)"):
        event_from_dict(data)
    data = _valid()
    data["request"]["party"]["contacts"][0]["nickname"] = "老张"
    with pytest.raises(ValidationError, match=r"nickname.*\$\.request\.party\.contacts\[0\]"):
        event_from_dict(data)
    data = _valid()
    data["request"]["case"]["judge"] = "李法官"
    with pytest.raises(ValidationError, match="judge"):
        event_from_dict(data)


@pytest.mark.parametrize("key", ["task_id", "at", "dispatch_id"])
def test_missing_keys_refused(key: str) -> None:
    data = _valid(DELIVERED)
    del data[key]
    with pytest.raises(ValidationError, match=key):
        event_from_dict(data)


def test_optional_keys_may_be_left_out() -> None:
    data = _valid(DELIVERED)
    del data["provider_event_id"]
    back = event_from_dict(data)
    assert isinstance(back, DispatchDelivered)
    assert back.provider_event_id is None


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("kind",), "carrier-pigeon"),
        (("contact", "kind"), "tel-ex"),  # a plugin's kind no longer installed reads (test_channel_kinds)
        (("contact", "value"), "12345"),  # model validation runs on the way in
        (("contact", "division_code"), "4205"),
    ],
)
def test_bad_values_inside_refused(where: tuple[str, ...], value: Any) -> None:
    data = _valid(QUEUED_SMS if where != ("contact", "division_code") else QUEUED_PRINT)
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(ValidationError):
        event_from_dict(data)


def test_invalid_request_inside_task_created_refused() -> None:
    data = _valid()
    data["request"]["documents"] = []
    with pytest.raises(ValidationError):
        event_from_dict(data)
    data = _valid()
    data["request"]["documents"][0]["sha256"] = "ABC"
    with pytest.raises(ValidationError):
        event_from_dict(data)


@pytest.mark.parametrize(
    ("event", "key", "value"),
    [
        (SENT, "task_id", None),  # would otherwise become the task "None"
        (SENT, "task_id", 17),
        (SENT, "dispatch_id", {"id": "T1.1"}),
        (FILED, "filed_by", "casefile:T1"),  # a string is not a list of strings
        (ADDRESS_UPDATED, "confidence", "0.9"),
        (ADDRESS_UPDATED, "confidence", True),
    ],
)
def test_wrong_json_types_refused(event: Event, key: str, value: Any) -> None:
    data = _valid(event)
    data[key] = value
    with pytest.raises(ValidationError, match=key):
        event_from_dict(data)


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_confirmed_must_be_a_json_boolean(value: Any) -> None:
    # An address read as confirmed changes the law applied when mail comes back: never guess.
    data = _valid()
    data["request"]["party"]["contacts"][0]["confirmed"] = value
    with pytest.raises(ValidationError, match="confirmed"):
        event_from_dict(data)


def test_integer_confidence_is_read_as_float() -> None:
    data = _valid(ADDRESS_UPDATED)
    data["confidence"] = 1
    back = event_from_dict(data)
    assert isinstance(back, AddressUpdated)
    assert back.confidence == 1.0
    assert isinstance(back.confidence, float)


def test_datetime_text_cache_tells_equal_moments_apart_by_zone_and_fold() -> None:
    """The formatter remembers the last datetime it wrote; an equal moment in another object reuses the text
    only when the zone and the fold are the same too (the same instant in +08:00 is other text)."""
    from zoneinfo import ZoneInfo

    utc = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    same = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # equal, not identical
    east8 = utc.astimezone(timezone(timedelta(hours=8)))  # the same instant, other zone
    assert same is not utc
    assert same == east8
    first = DispatchDelivered(task_id="T1", at=utc, dispatch_id="T1.1", delivered_at=same)
    assert event_to_dict(first)["delivered_at"] == "2026-11-02T01:00:00+00:00"
    second = DispatchDelivered(task_id="T1", at=utc, dispatch_id="T1.1", delivered_at=east8)
    assert event_to_dict(second)["delivered_at"] == "2026-11-02T09:00:00+08:00"
    berlin = ZoneInfo("Europe/Berlin")  # 2026-10-25 02:30 happened twice: +02:00, then +01:00
    before = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)
    after = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1)
    texts = [
        event_to_dict(DispatchDelivered(task_id="T1", at=utc, dispatch_id="T1.1", delivered_at=d))["delivered_at"]
        for d in (before, after)
    ]
    assert texts == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]
