"""Input limits of the public model (``delivery_sdk.LIMITS``), control characters, and unambiguous case keys.

Every string and collection of the model has a documented maximum; identifiers and names take no control
or format character; court and case number take no ``|`` (it separates them in the case key). All of it is
checked when the object is built, so both stores see the same refusals and nothing reaches either. Stores
written before these rules still read (and the CLI prints what they hold safely).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk import (
    LIMITS,
    AgentRole,
    Case,
    Contact,
    ContactKind,
    Document,
    DocumentKind,
    IdempotencyConflict,
    InvalidRequest,
    Party,
    Representative,
    ServiceRequest,
    ValidationError,
)
from delivery_sdk.cli import _shown, main
from delivery_sdk.model import _CF, _UNSAFE, ELECTRONIC_KINDS, case_key
from delivery_sdk.store import SQLiteStore, TaskStore
from delivery_sdk.supervision import Supervisor
from delivery_sdk.testing import Harness, make_party, make_request

SHA = hashlib.sha256(b"summons").hexdigest()
START = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
COURT = "武汉市武昌区人民法院"
NUMBER = "(2026)鄂0106民初1234号"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def doc(document_id: str = "D1", title: str = "传票") -> Document:
    return Document(document_id=document_id, title=title, kind=DocumentKind.SUMMONS, sha256=SHA)


def postal(value: str = "湖北省武汉市武昌区中北路1号") -> Contact:
    return Contact(kind=ContactKind.POSTAL, value=value)


def mobile() -> Contact:
    return Contact(kind=ContactKind.MOBILE, value="13912345678")


# Each string field: a builder taking the value, and a character that is valid there (to build a value of
# exactly the limit and one over it).
STRING_FIELDS: dict[str, tuple[Callable[[str], object], str]] = {
    "Case.court": (lambda v: Case(court=v, case_number=NUMBER), "法"),
    "Case.case_number": (lambda v: Case(court=COURT, case_number=v), "号"),
    "Party.party_id": (lambda v: Party(party_id=v, name="张三"), "P"),
    "Party.name": (lambda v: Party(party_id="P1", name=v), "张"),
    "Party.id_number": (lambda v: Party(party_id="P1", name="张三", id_number=v), "1"),
    "Representative.name": (lambda v: Representative(name=v, role=AgentRole.LITIGATION_AGENT), "李"),
    "Contact.value (mobile, as given)": (lambda v: Contact(kind=ContactKind.MOBILE, value=v), " "),
    "Contact.value (email)": (lambda v: Contact(kind=ContactKind.EMAIL, value=v), "a"),
    "Contact.value (wechat, eservice)": (lambda v: Contact(kind=ContactKind.WECHAT, value=v), "w"),
    "Contact.value (postal)": (lambda v: Contact(kind=ContactKind.POSTAL, value=v), "湖"),
    "Contact.source": (lambda v: Contact(kind=ContactKind.MOBILE, value="13912345678", source=v), "s"),
    "Document.document_id": (lambda v: doc(document_id=v), "D"),
    "Document.title": (lambda v: doc(title=v), "传"),
    "ServiceRequest.client_key": (
        lambda v: ServiceRequest(
            case=Case(court=COURT, case_number=NUMBER), party=make_party(), documents=(doc(),), client_key=v
        ),
        "k",
    ),
}
COLLECTIONS: dict[str, tuple[Callable[[int], object], str]] = {
    "Party.contacts": (lambda n: Party(party_id="P1", name="张三", contacts=[mobile()] * n), "contacts"),
    "Party.agents": (
        lambda n: Party(
            party_id="P1", name="张三", agents=[Representative(name="李四", role=AgentRole.LITIGATION_AGENT)] * n
        ),
        "representatives",
    ),
    "Representative.contacts": (
        lambda n: Representative(name="李四", role=AgentRole.LITIGATION_AGENT, contacts=[mobile()] * n),
        "contacts",
    ),
    "ServiceRequest.documents": (
        lambda n: ServiceRequest(
            case=Case(court=COURT, case_number=NUMBER),
            party=make_party(),
            documents=[doc(f"D{i}") for i in range(n)],
        ),
        "documents",
    ),
}


def test_every_limit_is_tested_and_documented() -> None:
    tested = set(STRING_FIELDS) | set(COLLECTIONS) | {"note", "ServiceRequest.channels"}
    assert tested == set(LIMITS)
    # channels: each electronic kind at most once, so never more than there are electronic kinds
    assert len(ELECTRONIC_KINDS) == LIMITS["ServiceRequest.channels"]
    guide = (Path(__file__).parent.parent / "docs" / "user-guide.md").read_text(encoding="utf-8")
    section = guide.split("## Limits", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `([^`]+)` \| ([\d,]+) \|", section, re.MULTILINE))
    assert {k: int(v.replace(",", "")) for k, v in documented.items()} == dict(LIMITS)


@pytest.mark.parametrize("field", sorted(set(STRING_FIELDS) - {"Contact.value (email)", "Party.party_id"}))
def test_a_string_at_its_limit_passes(field: str) -> None:
    build, char = STRING_FIELDS[field]
    if field == "Contact.value (mobile, as given)":
        build("13912345678".ljust(LIMITS[field]))  # trailing spaces are stripped by normalisation
    else:
        build(char * LIMITS[field])


@pytest.mark.parametrize("field", sorted(STRING_FIELDS))
def test_a_string_over_its_limit_is_refused_naming_field_length_and_limit(field: str) -> None:
    build, char = STRING_FIELDS[field]
    size = LIMITS[field] + 1
    with pytest.raises(ValidationError) as info:
        build(char * size)
    message = str(info.value)
    if field not in ("Party.party_id", "Document.document_id", "Contact.value (wechat, eservice)"):
        # the identifiers' message gives their pattern and bounds (1-128) instead
        assert field in message
        assert f"{size:,}" in message
        assert f"{LIMITS[field]:,}" in message
    else:
        assert "1-128" in message


@pytest.mark.parametrize("field", sorted(STRING_FIELDS))
def test_a_20_mb_string_is_refused_at_once_with_a_short_message(field: str) -> None:
    build, char = STRING_FIELDS[field]
    huge = char * 20_000_000
    start = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        build(huge)
    assert time.perf_counter() - start < 1.0
    assert len(str(info.value)) < 400  # the value is never echoed


@pytest.mark.parametrize("field", sorted(COLLECTIONS))
def test_collections_are_bounded(field: str) -> None:
    build, unit = COLLECTIONS[field]
    build(LIMITS[field])
    with pytest.raises(InvalidRequest) as info:
        build(LIMITS[field] + 1)
    assert f"{field} is {LIMITS[field] + 1:,} {unit}, over its limit of {LIMITS[field]:,}" in str(info.value)


def test_fifty_thousand_contacts_are_refused_fast() -> None:
    contacts = [mobile()] * 50_000
    start = time.perf_counter()
    with pytest.raises(InvalidRequest, match=r"Party\.contacts is 50,000 contacts"):
        Party(party_id="P1", name="张三", contacts=contacts)
    assert time.perf_counter() - start < 0.5


# -- control and format characters ---------------------------------------------------------------------

BAD_CHARS = ["\x00", "\x07", "\x1b", "\r", "\n", "\t", "\x7f", "\x85", "\u200b", "\u202e", "\u2066", "\ufeff", "\u2028"]
NAMED: dict[str, Callable[[str], object]] = {
    "court": lambda v: Case(court=f"武汉{v}法院", case_number=NUMBER),
    "case number": lambda v: Case(court=COURT, case_number=f"(2026){v}鄂0106民初1号"),
    "party name": lambda v: Party(party_id="P1", name=f"张{v}三"),
    "id number": lambda v: Party(party_id="P1", name="张三", id_number=f"4201{v}06"),
    "representative": lambda v: Representative(name=f"李{v}四", role=AgentRole.LITIGATION_AGENT),
    "title": lambda v: doc(title=f"传{v}票"),
    "client key": lambda v: ServiceRequest(
        case=Case(court=COURT, case_number=NUMBER), party=make_party(), documents=(doc(),), client_key=f"k{v}1"
    ),
    "source": lambda v: Contact(kind=ContactKind.MOBILE, value="13912345678", source=f"s{v}1"),
    "party id": lambda v: Party(party_id=f"P{v}1", name="张三"),
    "document id": lambda v: doc(document_id=f"D{v}1"),
}


@pytest.mark.parametrize("char", BAD_CHARS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", sorted(NAMED))
def test_identifiers_and_names_refuse_control_and_format_characters(where: str, char: str) -> None:
    with pytest.raises(ValidationError) as info:
        NAMED[where](char)
    if where not in ("party id", "document id"):  # those give their pattern
        assert f"U+{ord(char):04X}" in str(info.value)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\x85"], ids=lambda c: f"U+{ord(c):04X}")
def test_a_postal_address_refuses_control_characters(char: str) -> None:
    with pytest.raises(ValidationError, match="postal address"):
        postal(f"湖北省武汉市{char}武昌区中北路1号")


@pytest.mark.parametrize("char", ["\n", "\r\n", "\t", "\u200b", "\u3000"], ids=repr)
def test_a_postal_address_may_break_lines_and_hold_format_characters(char: str) -> None:
    postal(f"湖北省武汉市{char}武昌区中北路1号")  # pasted from a form: the print centre sees whitespace


def test_the_refused_characters_are_exactly_cc_cf_and_the_separators() -> None:
    cf = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    assert all(re.fullmatch(f"[{_CF}]", c) for c in cf)
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        category = unicodedata.category(c)
        if _UNSAFE.match(c):
            assert category in ("Cc", "Cf", "Zl", "Zp", "Cn"), hex(code)  # Cn: Cf code points of later Unicode
        else:
            assert category not in ("Cc", "Cf", "Zl", "Zp"), hex(code)
        if category in ("Cc", "Cf", "Zl", "Zp"):
            assert not c.isprintable()  # the fast path (isprintable) never lets one through


def test_full_width_spaces_and_cjk_punctuation_are_plain_text() -> None:
    Case(court="武汉市　武昌区人民法院", case_number="（2026）鄂0106民初1234号")
    Party(party_id="P1", name="欧阳·娜娜")
    doc(title="传票（第一次）")


# -- case keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"court": "A|B", "case_number": "C"}, {"court": "A", "case_number": "B|C"}], ids=["court", "number"]
)
def test_the_case_key_separator_is_refused_in_both_parts(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match=r"holds '\|' at position 1: the case key is court\|case_number"):
        Case(**kwargs)


def test_case_key_is_court_bar_number() -> None:
    case = Case(court=COURT, case_number=NUMBER)
    assert case.key == case_key(COURT, NUMBER) == f"{COURT}|{NUMBER}"


def _snapshot(store: TaskStore) -> tuple[Any, ...]:
    events = [(s.seq, s.event.task_id, s.event.TYPE) for s in store.events_after(0, 10**6)]
    return store.count_by_state(), events, store.pending_outbox()


def test_case_keys_of_courts_that_share_a_prefix_stay_apart(store_factory: Any, tmp_path: Path) -> None:
    store = store_factory()
    h = Harness(store, start=START)
    branch = COURT + "分院"

    async def submit() -> None:
        await h.client.submit(make_request(make_party("P1"), court=COURT, case_number=NUMBER))
        await h.client.submit(make_request(make_party("P2"), court=branch, case_number=NUMBER))
        await h.client.submit(make_request(make_party("P3"), court=COURT, case_number="(2026)鄂0106民初1号"))

    run(submit())
    assert store.case_keys(NUMBER) == sorted([case_key(COURT, NUMBER), case_key(branch, NUMBER)])
    assert [s.party_id for s in h.client.tasks_of_case(Case(court=branch, case_number=NUMBER))] == ["P2"]
    if not store_factory.postgres:
        run(h.aclose())
        with Supervisor(store_factory.spec) as sup:
            assert sorted(r.case_number for r in sup.tasks(court=COURT)) == sorted([NUMBER, "(2026)鄂0106民初1号"])
            assert [r.court for r in sup.tasks(court=branch)] == [branch]
            assert sorted(r.court for r in sup.tasks(case_number=NUMBER)) == sorted([COURT, branch])
    else:
        run(h.aclose())


# -- the same refusals on both stores, before either is touched ----------------------------------------

BAD_REQUESTS: dict[str, Callable[[], ServiceRequest]] = {
    "NUL in the court": lambda: make_request(court="武汉\x00法院"),
    "NUL in the case number": lambda: make_request(case_number="(2026)\x00鄂0106民初1号"),
    "escape in the party's name": lambda: ServiceRequest(
        case=Case(court=COURT, case_number=NUMBER),
        party=Party(party_id="P1", name="张三\x1b[2J"),
        documents=(doc(),),
    ),
    "a 20 MB name": lambda: make_request(Party(party_id="P1", name="张" * 20_000_000)),
    "50,000 contacts": lambda: make_request(Party(party_id="P1", name="张三", contacts=[mobile()] * 50_000)),
    "| in the case number": lambda: make_request(case_number="(2026)鄂0106民初1|2号"),
    "NUL in a postal address": lambda: make_request(make_party(address="湖北省武汉市\x00武昌区中北路1号")),
}


@pytest.mark.parametrize("bad", sorted(BAD_REQUESTS))
def test_bad_input_is_refused_before_either_store(store_factory: Any, bad: str) -> None:
    store = store_factory()
    h = Harness(store, start=START)
    good = make_request(make_party("P-good"), client_key="good")
    run(h.client.submit(good))
    before = _snapshot(store)

    async def attempt() -> None:
        await h.client.submit_many([make_request(make_party("P-also"), client_key="also"), BAD_REQUESTS[bad]()])

    with pytest.raises(ValidationError):
        run(attempt())
    assert _snapshot(store) == before
    run(h.aclose())


def test_a_batch_refused_by_the_store_leaves_nothing_half_written(store_factory: Any) -> None:
    store = store_factory()
    h = Harness(store, start=START)
    run(h.client.submit(make_request(make_party("P1"), client_key="used")))
    before = _snapshot(store)
    fresh = [make_request(make_party(f"P-new-{i}"), client_key=f"new-{i}") for i in range(3)]
    conflicting = make_request(make_party("P1", email="p1@example.cn"), client_key="used")
    with pytest.raises(IdempotencyConflict):
        run(h.client.submit_many([*fresh[:2], conflicting, fresh[2]]))
    assert _snapshot(store) == before
    # the same batch without the conflict goes in whole
    assert len(run(h.client.submit_many(fresh))) == 3
    run(h.aclose())


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda c, t: c.cancel(t, "withdrawn\x00"), "U+0000"),
        (lambda c, t: c.cancel(t, "x" * (LIMITS["note"] + 1)), "over its limit of 2,000"),
        (lambda c, t: c.resume(t, "ok\x1b[2J"), "U+001B"),
        (lambda c, t: c.set_address(t, postal(), source="staff\x00"), "U+0000"),
        (lambda c, t: c.set_address(t, postal(), source="s" * 65), "over its limit of 64"),
    ],
    ids=["cancel NUL", "cancel too long", "resume escape", "source NUL", "source too long"],
)
def test_notes_given_to_the_client_are_checked_before_the_store(
    store_factory: Any, call: Callable[[Any, str], Any], fragment: str
) -> None:
    store = store_factory()
    h = Harness(store, start=START)
    task_id = run(h.client.submit(make_request(make_party("P1"))))
    before = _snapshot(store)
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        run(call(h.client, task_id))
    assert _snapshot(store) == before
    run(h.client.cancel(task_id, "withdrawn by the court\n(duplicate request)\tsee file"))  # \n and \t are fine
    run(h.aclose())


# -- stores written before the rules ---------------------------------------------------------------------


def _old_request() -> ServiceRequest:
    """A request as an earlier release accepted it: control characters, a '|' and more contacts than now."""
    request = make_request(make_party("P-old"), case_number="(2026)鄂0106民初9号")
    object.__setattr__(request.case, "court", "武汉\x1b[31m法院|分庭")
    object.__setattr__(request.party, "name", "张三\u202e")
    object.__setattr__(request.party, "contacts", (mobile(),) * (LIMITS["Party.contacts"] + 5))
    return request


def test_a_store_written_before_the_rules_still_reads(store_factory: Any) -> None:
    with pytest.raises(ValidationError):
        make_request(court="武汉\x1b[31m法院")
    store = store_factory()
    h = Harness(store, start=START)
    task_id = run(h.client.submit(_old_request()))
    run(h.aclose())
    again = Harness(store_factory(), start=START)
    status = again.client.status(task_id)
    assert status.court == "武汉\x1b[31m法院|分庭"
    task = again.client.task(task_id)
    assert len(task.request.party.contacts) == LIMITS["Party.contacts"] + 5
    assert task.request.party.name == "张三\u202e"
    assert again.client.timeline(task_id)[0].event.TYPE == "task.created"
    run(again.aclose())


def test_status_and_tasks_print_control_characters_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.sqlite3"
    h = Harness(SQLiteStore(path), start=START)
    request = make_request(make_party("P-old"), case_number="(2026)鄂0106民初9号")
    object.__setattr__(request.case, "court", "武汉\x1b[2J\r法院\u202e")
    task_id = run(h.client.submit(request))
    run(h.aclose())
    assert main(["status", task_id, "--store", str(path)]) == 0
    assert main(["tasks", "--case", "(2026)鄂0106民初9号", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    for raw in ("\x1b", "\r", "\u202e"):
        assert raw not in out
    assert out.count("武汉\\x1b[2J\\r法院\\u202e") == 2


def test_shown_escapes_only_what_a_terminal_would_act_on() -> None:
    assert _shown("武汉市　武昌区人民法院 (2026)") == "武汉市　武昌区人民法院 (2026)"
    assert _shown("a\x1b[31mb\x00c\u2028d\u200be") == "a\\x1b[31mb\\x00c\\u2028d\\u200be"
    assert _shown(None) == "None"
