"""Table-driven tests of ``policy.decide``: pure, on tasks folded from hand-written events (no store, no engine).

The rules under test: e-service needs consent (CPL Art. 90; Online Litigation Rules Arts. 29-30); its moment
is the arrival in the recipient's system and the earliest of several channels counts (Rules Art. 31);
postal service is effective on signing (CPL Art. 91), a refusal or a confirmed address that proved wrong
on the day of return; publication is deemed served 30 days after it (CPL Art. 95).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from delivery_sdk import ChannelKind, Contact, ContactKind, DispatchStatus, Party, ServiceMethod, TaskState
from delivery_sdk.events import (
    AddressSearchFailed,
    AddressUpdated,
    Cancelled,
    ConsentObjected,
    ConsentRecorded,
    DispatchDelivered,
    DispatchFailed,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    DispatchTimedOut,
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
from delivery_sdk.law import BASIS_ACCEPTED_SERVICE, LawConfig
from delivery_sdk.law.service import BASIS_ELECTRONIC_READ, BASIS_PUBLICATION_ABROAD
from delivery_sdk.lifecycle import Task, fold
from delivery_sdk.model import AgentRole, Consent, ConsentMethod, DispatchRecord, DocumentKind, Representative
from delivery_sdk.policy import (
    BASIS_CONFIRMED_WRONG,
    BASIS_ELECTRONIC,
    BASIS_POSTAL,
    BASIS_PUBLICATION,
    BASIS_PUBLICATION_FAILED,
    BASIS_PUBLICATION_UNKNOWN,
    BASIS_REFUSED,
    Decision,
    Emit,
    File,
    PolicyConfig,
    Poll,
    Reconcile,
    Route,
    SearchAddress,
    Send,
    address_confirmed,
    decide,
    next_poll,
)
from delivery_sdk.testing import make_party, make_request

TASK = "T-1"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
CONFIG = PolicyConfig()
RETRY = CONFIG.retry_after_error  # 10 min
ES, SMS, WX, MAIL, PRINT, PHONE = (
    ChannelKind.ESERVICE,
    ChannelKind.SMS,
    ChannelKind.WECHAT,
    ChannelKind.EMAIL,
    ChannelKind.PRINT,
    ChannelKind.PHONE,
)
CHANNELS = {ES: "fake-eservice", SMS: "fake-sms", WX: "fake-wechat", MAIL: "fake-email"}
CONTACTS = {
    ES: Contact(kind=ContactKind.ESERVICE, value="acct-1"),
    SMS: Contact(kind=ContactKind.MOBILE, value="13800138000"),
    WX: Contact(kind=ContactKind.WECHAT, value="wx_openid_1"),
    MAIL: Contact(kind=ContactKind.EMAIL, value="party1@example.com"),
}
CENTRE = "PC-420100"
ADDRESS = Contact(kind=ContactKind.POSTAL, value="湖北省宜昌市夷陵区小溪塔街道发展大道57号", division_code="420506")


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def everyone() -> Party:
    """A party reachable on every electronic channel (and by post at make_party's Wuhan address)."""
    return make_party("P-1", eservice="acct-1", wechat="wx_openid_1", email="party1@example.com")


# -- hand-written events -----------------------------------------------------------------------------------


def created(party: Party | None = None, channels: list[ChannelKind] | None = None) -> TaskCreated:
    return TaskCreated(task_id=TASK, at=T0, request=make_request(party or everyone(), channels=channels))


def queued(dispatch_id: str, kind: ChannelKind, at: datetime) -> DispatchQueued:
    return DispatchQueued(
        task_id=TASK, at=at, dispatch_id=dispatch_id, channel=CHANNELS[kind], kind=kind, contact=CONTACTS[kind]
    )


def sent(dispatch_id: str, at: datetime) -> DispatchSent:
    return DispatchSent(task_id=TASK, at=at, dispatch_id=dispatch_id, provider_ref=f"ref-{dispatch_id}")


def attempt(dispatch_id: str, kind: ChannelKind, at: datetime) -> list[Event]:
    return [queued(dispatch_id, kind, at), sent(dispatch_id, at)]


def delivered(dispatch_id: str, at: datetime, delivered_at: datetime | None = None) -> DispatchDelivered:
    return DispatchDelivered(task_id=TASK, at=at, dispatch_id=dispatch_id, delivered_at=delivered_at or at)


def failed(dispatch_id: str, at: datetime) -> DispatchFailed:
    return DispatchFailed(task_id=TASK, at=at, dispatch_id=dispatch_id, reason="undeliverable")


def timed_out(dispatch_id: str, at: datetime) -> DispatchTimedOut:
    return DispatchTimedOut(task_id=TASK, at=at, dispatch_id=dispatch_id)


def fell_back(at: datetime, reason: str = "every electronic channel failed") -> FellBackToPost:
    return FellBackToPost(task_id=TASK, at=at, reason=reason)


def routed(at: datetime) -> PrintRouted:
    return PrintRouted(task_id=TASK, at=at, centre_id=CENTRE, reason="route key 420100")


def print_job(dispatch_id: str, at: datetime, contact: Contact | None = None) -> DispatchQueued:
    return DispatchQueued(
        task_id=TASK,
        at=at,
        dispatch_id=dispatch_id,
        channel=CENTRE,
        kind=PRINT,
        contact=contact or make_party().contacts_of(ContactKind.POSTAL)[0],
        centre_id=CENTRE,
    )


def in_post(dispatch_id: str, at: datetime, contact: Contact | None = None) -> list[Event]:
    """Routed, printed and mailed, all at ``at`` (the job accepted at ``at``)."""
    return [
        routed(at),
        print_job(dispatch_id, at, contact),
        sent(dispatch_id, at),
        Printed(task_id=TASK, at=at, dispatch_id=dispatch_id),
        Mailed(task_id=TASK, at=at, dispatch_id=dispatch_id, waybill=f"EMS-{dispatch_id}"),
    ]


def returned(dispatch_id: str, at: datetime, reason: ReturnReason, returned_at: datetime) -> PostReturned:
    return PostReturned(task_id=TASK, at=at, dispatch_id=dispatch_id, returned_at=returned_at, reason=reason)


def task_of(*events: Event | list[Event]) -> Task:
    flat: list[Event] = []
    for e in events:
        flat.extend(e if isinstance(e, list) else [e])
    return fold(flat)


def emits(event: Event, due_at: datetime) -> Decision:
    return Decision(actions=(Emit(event=event),), due_at=due_at)


# -- CREATED -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("party", "config", "request_channels", "expected"),
    [
        pytest.param(everyone(), CONFIG, None, [ES], id="consent-first-in-default-order"),
        pytest.param(make_party("P-2"), CONFIG, None, [SMS], id="mobile-only"),
        pytest.param(everyone(), PolicyConfig(parallel=True), None, [ES, SMS, WX, MAIL], id="parallel-all-at-once"),
        pytest.param(everyone(), CONFIG, [WX, SMS], [WX], id="request-overrides-order"),
        pytest.param(everyone(), PolicyConfig(parallel=True), [WX, SMS], [WX, SMS], id="request-order-parallel"),
        pytest.param(
            make_party("P-3", consent=False),
            PolicyConfig(require_consent=False),
            None,
            [SMS],
            id="consent-not-required",
        ),
    ],
)
def test_created_sends_on_electronic_channels(
    party: Party, config: PolicyConfig, request_channels: list[ChannelKind] | None, expected: list[ChannelKind]
) -> None:
    task = task_of(created(party, request_channels))
    decision = decide(task, T0, config, CHANNELS)
    assert decision == Decision(actions=tuple(Send(channel=CHANNELS[k], kind=k) for k in expected), due_at=T0)
    assert decision.io


@pytest.mark.parametrize(
    ("party", "channels", "reason"),
    [
        pytest.param(make_party("P-4", consent=False), CHANNELS, "no consent to electronic service", id="no-consent"),
        pytest.param(
            make_party("P-5", mobile=None), CHANNELS, "no usable electronic channel or contact", id="no-e-contacts"
        ),
        pytest.param(
            make_party("P-6", mobile=None, wechat="wx_openid_6"),
            {SMS: "fake-sms"},
            "no usable electronic channel or contact",
            id="contact-without-adapter",
        ),
        pytest.param(make_party("P-7"), {}, "no usable electronic channel or contact", id="no-adapters"),
    ],
)
def test_created_falls_back_to_post(party: Party, channels: dict[ChannelKind, str], reason: str) -> None:
    decision = decide(task_of(created(party)), T0, CONFIG, channels)
    assert decision == emits(FellBackToPost(task_id=TASK, at=T0, reason=reason), T0)
    assert not decision.io


def test_resumed_task_starts_a_new_electronic_round() -> None:
    first_round = [
        *attempt("T-1.1", ES, h(0)),
        failed("T-1.1", h(0)),
        *attempt("T-1.2", SMS, h(0)),
        timed_out("T-1.2", h(2)),
        fell_back(h(2)),
        NeedsAttention(task_id=TASK, at=h(2), reason="no print centre serves this address"),
        ResumedByStaff(task_id=TASK, at=h(30), note="party phoned in"),
    ]
    task = task_of(created(make_party("P-8", eservice="acct-8")), first_round)
    assert task.state is TaskState.CREATED
    assert decide(task, h(30), CONFIG, CHANNELS) == Decision(
        actions=(Send(channel="fake-eservice", kind=ES),), due_at=h(30)
    )
    # The new round's failures alone decide what is left to try: SMS again, though it timed out before.
    again = task_of(
        created(make_party("P-8", eservice="acct-8")), first_round, attempt("T-1.3", ES, h(30)), failed("T-1.3", h(30))
    )
    assert [d.dispatch_id for d in again.electronic_dispatches] == ["T-1.3"]
    assert decide(again, h(30), CONFIG, CHANNELS) == Decision(
        actions=(Send(channel="fake-sms", kind=SMS),), due_at=h(30)
    )


# -- ELECTRONIC ----------------------------------------------------------------------------------------------


def test_in_doubt_dispatch_is_reconciled_not_resent() -> None:
    task = task_of(created(), queued("T-1.1", ES, T0))
    assert task.dispatch("T-1.1").status is DispatchStatus.QUEUED  # type: ignore[union-attr]
    now = h(1)
    assert decide(task, now, CONFIG, CHANNELS) == Decision(
        actions=(Reconcile(dispatch_id="T-1.1"),), due_at=now + RETRY
    )


def test_in_doubt_and_sent_dispatches_side_by_side() -> None:
    task = task_of(created(), queued("T-1.1", ES, T0), attempt("T-1.2", SMS, T0))
    now = T0 + timedelta(minutes=5)
    decision = decide(task, now, PolicyConfig(parallel=True), CHANNELS)
    assert decision.actions == (Reconcile(dispatch_id="T-1.1"), Poll(dispatch_id="T-1.2"))
    assert decision.due_at == now + RETRY  # the reconcile retry comes before the next poll (at +30 min)


@pytest.mark.parametrize(
    ("kind", "after", "poll", "due_after"),
    [
        # SMS: response window 2 h; polls at +5 min, +30 min, then a last look just before the window closes.
        pytest.param(SMS, timedelta(0), False, timedelta(minutes=5), id="sms-just-sent"),
        pytest.param(SMS, timedelta(minutes=4), False, timedelta(minutes=5), id="sms-before-first-poll"),
        pytest.param(SMS, timedelta(minutes=5), True, timedelta(minutes=30), id="sms-first-poll"),
        pytest.param(SMS, timedelta(minutes=30), True, timedelta(hours=2) - timedelta(minutes=1), id="sms-second-poll"),
        pytest.param(SMS, timedelta(minutes=119), True, timedelta(hours=2), id="sms-last-look"),
        # e-service platform: window 24 h; the poll schedule repeats its last step (6 h).
        pytest.param(ES, timedelta(hours=2), True, timedelta(hours=6), id="es-third-poll"),
        pytest.param(ES, timedelta(hours=7), True, timedelta(hours=12), id="es-repeating-step"),
        pytest.param(ES, timedelta(hours=18), True, timedelta(hours=24) - timedelta(minutes=1), id="es-last-look"),
    ],
)
def test_sent_dispatch_poll_schedule(kind: ChannelKind, after: timedelta, poll: bool, due_after: timedelta) -> None:
    task = task_of(created(), attempt("T-1.1", kind, T0))
    decision = decide(task, T0 + after, CONFIG, CHANNELS)
    assert decision.actions == ((Poll(dispatch_id="T-1.1"),) if poll else ())
    assert decision.due_at == T0 + due_after


@pytest.mark.parametrize(
    ("kind", "window"),
    [(SMS, timedelta(hours=2)), (WX, timedelta(hours=6)), (MAIL, timedelta(hours=24)), (ES, timedelta(hours=24))],
    ids=lambda v: v.value if isinstance(v, ChannelKind) else None,
)
def test_response_window_elapsed_emits_timed_out(kind: ChannelKind, window: timedelta) -> None:
    task = task_of(created(), attempt("T-1.1", kind, T0))
    now = T0 + window
    assert decide(task, now, CONFIG, CHANNELS) == emits(
        DispatchTimedOut(task_id=TASK, at=now, dispatch_id="T-1.1"), now
    )
    # A custom window is honoured.
    custom = PolicyConfig(response_window={kind: timedelta(minutes=45)})
    later = T0 + timedelta(minutes=45)
    assert decide(task, later, custom, CHANNELS) == emits(
        DispatchTimedOut(task_id=TASK, at=later, dispatch_id="T-1.1"), later
    )


def test_window_counts_from_sending_not_queueing() -> None:
    task = task_of(created(), queued("T-1.1", SMS, T0), sent("T-1.1", h(1)))
    assert decide(task, h(2.5), CONFIG, CHANNELS).actions == (Poll(dispatch_id="T-1.1"),)
    assert decide(task, h(3), CONFIG, CHANNELS) == emits(
        DispatchTimedOut(task_id=TASK, at=h(3), dispatch_id="T-1.1"), h(3)
    )


@pytest.mark.parametrize(
    ("party", "first", "settled", "next_kind"),
    [
        pytest.param(everyone(), ES, failed("T-1.1", h(0.5)), SMS, id="failed"),
        pytest.param(everyone(), ES, timed_out("T-1.1", h(24)), SMS, id="timed-out"),
        # The next channel in the order whose contact the party has: no WeChat, so e-mail after SMS.
        pytest.param(make_party("P-12", email="p12@example.com"), SMS, failed("T-1.1", h(0.5)), MAIL, id="by-contact"),
    ],
)
def test_sequential_mode_tries_the_next_channel(
    party: Party, first: ChannelKind, settled: Event, next_kind: ChannelKind
) -> None:
    task = task_of(created(party), attempt("T-1.1", first, T0), settled)
    now = h(25)
    assert decide(task, now, CONFIG, CHANNELS) == Decision(
        actions=(Send(channel=CHANNELS[next_kind], kind=next_kind),), due_at=now
    )


def test_every_channel_tried_falls_back_to_post() -> None:
    events = [created()]
    for n, kind in enumerate([ES, SMS, WX, MAIL], start=1):
        events += [*attempt(f"T-1.{n}", kind, h(n)), failed(f"T-1.{n}", h(n))]
    task = task_of(events)
    now = h(5)
    assert decide(task, now, CONFIG, CHANNELS) == emits(
        FellBackToPost(task_id=TASK, at=now, reason="every electronic channel failed"), now
    )


def test_parallel_mode_falls_back_once_every_channel_settled_without_delivery() -> None:
    history: list[Event] = [
        created(make_party("P-9", eservice="acct-9")),
        queued("T-1.1", ES, T0),
        queued("T-1.2", SMS, T0),
        sent("T-1.1", T0),
        sent("T-1.2", T0),
        failed("T-1.2", h(0.1)),
    ]
    parallel = PolicyConfig(parallel=True)
    # Still waiting on the platform: poll it, do not fall back yet.
    assert decide(task_of(history), h(1), parallel, CHANNELS).actions == (Poll(dispatch_id="T-1.1"),)
    settled = task_of(history, timed_out("T-1.1", h(24)))
    assert decide(settled, h(24), parallel, CHANNELS) == emits(
        FellBackToPost(task_id=TASK, at=h(24), reason="every electronic channel failed"), h(24)
    )


def served_electronic(now: datetime, effective: datetime, dispatch_id: str) -> Decision:
    return emits(
        Served(
            task_id=TASK,
            at=now,
            method=ServiceMethod.ELECTRONIC,
            basis=BASIS_ELECTRONIC,
            effective_at=effective,
            dispatch_id=dispatch_id,
        ),
        now,
    )


def test_earliest_delivery_wins_across_channels() -> None:
    # Both arrived; the platform's report came first but the SMS had arrived earlier (Rules Art. 31).
    task = task_of(
        created(),
        queued("T-1.1", ES, T0),
        queued("T-1.2", SMS, T0),
        sent("T-1.1", T0),
        sent("T-1.2", T0),
        delivered("T-1.1", at=h(3), delivered_at=h(2)),
        delivered("T-1.2", at=h(6), delivered_at=h(1)),
    )
    assert decide(task, h(6), PolicyConfig(parallel=True), CHANNELS) == served_electronic(h(6), h(1), "T-1.2")


def test_one_delivery_serves_without_waiting_for_the_other_channels() -> None:
    task = task_of(
        created(),
        queued("T-1.1", ES, T0),
        queued("T-1.2", SMS, T0),
        sent("T-1.1", T0),
        sent("T-1.2", T0),
        delivered("T-1.2", at=h(0.5), delivered_at=h(0.25)),
    )
    assert decide(task, h(0.5), PolicyConfig(parallel=True), CHANNELS) == served_electronic(h(0.5), h(0.25), "T-1.2")


def test_read_report_without_delivery_report_presumes_arrival_at_reading() -> None:
    read = DispatchRead(task_id=TASK, at=h(4), dispatch_id="T-1.1", read_at=h(3))
    task = task_of(created(), attempt("T-1.1", WX, T0), read)
    assert decide(task, h(4), CONFIG, CHANNELS) == served_electronic(h(4), h(3), "T-1.1")


def test_earlier_repeated_delivery_report_moves_the_service_moment_back() -> None:
    task = task_of(
        created(),
        attempt("T-1.1", ES, T0),
        delivered("T-1.1", at=h(2), delivered_at=h(2)),
        delivered("T-1.1", at=h(3), delivered_at=h(1)),
    )
    assert decide(task, h(3), CONFIG, CHANNELS) == served_electronic(h(3), h(1), "T-1.1")


# -- addresses the party did not confirm (Rules Art. 31(2)) -----------------------------------------------------

NO_CONSENT = PolicyConfig(require_consent=False)  # the court serves at addresses it verified itself
PHONE_CHANNEL = "fake-staff-calls"


def stranger(*, mobile: str | None = "13800138000", email: str | None = None) -> Party:
    """A party that neither consented nor named an address: its e-addresses are the court's own findings."""
    return make_party("P-20", mobile=mobile, wechat="wx_openid_1", email=email, consent=False)


def read(dispatch_id: str, at: datetime, read_at: datetime | None = None) -> DispatchRead:
    return DispatchRead(task_id=TASK, at=at, dispatch_id=dispatch_id, read_at=read_at or at)


def phone_consent(dispatch_id: str, at: datetime) -> list[Event]:
    """A staff call to the party's mobile (CONTACTS[SMS]) that reached it and obtained consent (Rules Art. 30)."""
    call = DispatchQueued(
        task_id=TASK, at=at, dispatch_id=dispatch_id, channel=PHONE_CHANNEL, kind=PHONE, contact=CONTACTS[SMS]
    )
    consent = ConsentRecorded(task_id=TASK, at=at, method=ConsentMethod.PHONE, given_at=at, via_dispatch=dispatch_id)
    return [call, sent(dispatch_id, at), consent]


def served_as(now: datetime, effective: datetime, dispatch_id: str, basis: str) -> Decision:
    return emits(
        Served(
            task_id=TASK,
            at=now,
            method=ServiceMethod.ELECTRONIC,
            basis=basis,
            effective_at=effective,
            dispatch_id=dispatch_id,
        ),
        now,
    )


def record(task: Task, dispatch_id: str) -> DispatchRecord:
    found = task.dispatch(dispatch_id)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("events", "dispatch_id", "confirmed"),
    [
        # consent submitted with the request covers the e-addresses submitted with it (Rules Art. 31(1))
        pytest.param([created(), *attempt("T-1.1", WX, T0)], "T-1.1", True, id="request-consent-own-address"),
        pytest.param(
            [created(make_party("P-21", mobile=None, email="p21@example.com")), *attempt("T-1.1", WX, T0)],
            "T-1.1",
            False,
            id="request-consent-another-address",
        ),
        pytest.param([created(stranger()), *attempt("T-1.1", WX, T0)], "T-1.1", False, id="no-consent"),
        # consent on a staff call confirms the number the call reached, nothing else
        pytest.param(
            [created(stranger()), *phone_consent("T-1.1", T0), *attempt("T-1.2", SMS, h(1))],
            "T-1.2",
            True,
            id="phone-consent-number-called",
        ),
        pytest.param(
            [created(stranger()), *phone_consent("T-1.1", T0), *attempt("T-1.2", WX, h(1))],
            "T-1.2",
            False,
            id="phone-consent-other-address",
        ),
    ],
)
def test_address_confirmed(events: list[Event], dispatch_id: str, confirmed: bool) -> None:
    task = task_of(events)
    assert address_confirmed(task, record(task, dispatch_id)) is confirmed


def test_a_contact_confirmed_on_the_form_is_confirmed_without_consent() -> None:
    form = Contact(kind=ContactKind.WECHAT, value="wx_openid_1", confirmed=True)
    party = Party(party_id="P-22", name="张三", contacts=(form,))
    queued_form = DispatchQueued(task_id=TASK, at=T0, dispatch_id="T-1.1", channel=CHANNELS[WX], kind=WX, contact=form)
    task = task_of(created(party), queued_form, sent("T-1.1", T0), delivered("T-1.1", h(1)))
    assert address_confirmed(task, record(task, "T-1.1"))
    assert decide(task, h(1), NO_CONSENT, CHANNELS) == served_as(h(1), h(1), "T-1.1", BASIS_ELECTRONIC)


def test_a_representatives_address_is_covered_by_the_request_consent() -> None:
    receiver = Representative(name="李四", role=AgentRole.DESIGNATED_RECEIVER, contacts=(CONTACTS[WX],))
    party = attrs.evolve(make_party("P-23", mobile=None), agents=(receiver,))
    task = task_of(created(party), attempt("T-1.1", WX, T0))
    assert address_confirmed(task, record(task, "T-1.1"))


def test_unconfirmed_address_delivered_is_not_served_and_waits_for_the_read() -> None:
    task = task_of(created(stranger()), attempt("T-1.1", WX, T0), delivered("T-1.1", h(0.5), h(0.25)))
    # arrival is not service there: the dispatch stays open, polled until the response window (6 h) ends
    assert decide(task, h(1), NO_CONSENT, CHANNELS) == Decision(actions=(Poll(dispatch_id="T-1.1"),), due_at=h(2))
    assert decide(task, h(5.5), NO_CONSENT, CHANNELS) == Decision(
        actions=(Poll(dispatch_id="T-1.1"),), due_at=h(6) - timedelta(minutes=1)
    )


def test_unconfirmed_address_read_is_served_at_the_read_moment() -> None:
    task = task_of(
        created(stranger()), attempt("T-1.1", WX, T0), delivered("T-1.1", h(0.5), h(0.25)), read("T-1.1", h(4), h(3))
    )
    assert decide(task, h(4), NO_CONSENT, CHANNELS) == served_as(h(4), h(3), "T-1.1", BASIS_ELECTRONIC_READ)


def test_unconfirmed_address_read_without_delivery_report_is_served_at_the_read_moment() -> None:
    task = task_of(created(stranger()), attempt("T-1.1", WX, T0), read("T-1.1", h(4), h(3)))
    assert decide(task, h(4), NO_CONSENT, CHANNELS) == served_as(h(4), h(3), "T-1.1", BASIS_ELECTRONIC_READ)


@pytest.mark.parametrize(
    ("party", "expected"),
    [
        pytest.param(
            stranger(mobile=None),
            emits(
                FellBackToPost(
                    task_id=TASK,
                    at=h(6),
                    reason=(
                        "no electronic service took effect: delivered only to addresses the party did not "
                        "confirm, and not read within the response window (SPC Online Litigation Rules Art. 31(2))"
                    ),
                ),
                h(6),
            ),
            id="last-channel-falls-back-to-post",
        ),
        pytest.param(
            stranger(mobile=None, email="party1@example.com"),
            Decision(actions=(Send(channel=CHANNELS[MAIL], kind=MAIL),), due_at=h(6)),
            id="next-channel",
        ),
    ],
)
def test_unconfirmed_address_delivered_but_not_read_within_the_window_serves_nothing(
    party: Party, expected: Decision
) -> None:
    task = task_of(created(party), attempt("T-1.1", WX, T0), delivered("T-1.1", h(0.5), h(0.25)))
    assert decide(task, h(6), NO_CONSENT, CHANNELS) == expected


@pytest.mark.parametrize(
    ("wechat_read", "expected"),
    [
        # the WeChat openid was never named: its read at 1 h is earlier than the SMS arrival at 2 h
        pytest.param(h(1), served_as(h(3), h(1), "T-1.2", BASIS_ELECTRONIC_READ), id="read-before-arrival"),
        # read at 2.5 h: the called number's arrival at 2 h took effect first
        pytest.param(h(2.5), served_as(h(3), h(2), "T-1.3", BASIS_ELECTRONIC), id="arrival-before-read"),
    ],
)
def test_earliest_effective_service_across_confirmed_and_unconfirmed_addresses(
    wechat_read: datetime, expected: Decision
) -> None:
    task = task_of(
        created(stranger()),
        phone_consent("T-1.1", T0),
        queued("T-1.2", WX, T0),
        queued("T-1.3", SMS, T0),
        sent("T-1.2", T0),
        sent("T-1.3", T0),
        delivered("T-1.2", h(0.5), h(0.1)),  # earliest arrival of all, but not service there
        read("T-1.2", h(3), wechat_read),
        delivered("T-1.3", h(3), h(2)),
    )
    assert decide(task, h(3), PolicyConfig(parallel=True), CHANNELS) == expected


# -- next_poll -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (timedelta(0), timedelta(minutes=5)),
        (timedelta(minutes=4, seconds=59), timedelta(minutes=5)),
        (timedelta(minutes=5), timedelta(minutes=30)),
        (timedelta(minutes=29), timedelta(minutes=30)),
        (timedelta(minutes=30), timedelta(hours=2)),
        (timedelta(hours=2), timedelta(hours=6)),
        (timedelta(hours=5, minutes=59), timedelta(hours=6)),
        (timedelta(hours=6), timedelta(hours=12)),  # the last offset repeats
        (timedelta(hours=7), timedelta(hours=12)),
        (timedelta(hours=12), timedelta(hours=18)),
        (timedelta(hours=100), timedelta(hours=102)),
    ],
    ids=str,
)
def test_next_poll_schedule(now: timedelta, expected: timedelta) -> None:
    record = DispatchRecord(
        dispatch_id="T-1.1",
        channel="fake-sms",
        kind=SMS,
        contact=CONTACTS[SMS],
        status=DispatchStatus.SENT,
        queued_at=T0 - timedelta(hours=1),
        sent_at=T0,
    )
    assert next_poll(record, T0 + now, CONFIG.poll_offsets) == T0 + expected


def test_next_poll_counts_from_queueing_when_never_sent() -> None:
    record = DispatchRecord(
        dispatch_id="T-1.1",
        channel="fake-sms",
        kind=SMS,
        contact=CONTACTS[SMS],
        status=DispatchStatus.QUEUED,
        queued_at=T0,
    )
    assert next_poll(record, T0 + timedelta(minutes=10), CONFIG.poll_offsets) == T0 + timedelta(minutes=30)
    offsets = (timedelta(minutes=1), timedelta(minutes=3))
    assert next_poll(record, T0 + timedelta(minutes=3), offsets) == T0 + timedelta(minutes=6)


# -- POSTAL ----------------------------------------------------------------------------------------------------

NO_ADDRESS = make_party("P-10", address=None)


@pytest.mark.parametrize(
    ("events", "config", "expected"),
    [
        pytest.param([created()], CONFIG, Decision(actions=(Route(),), due_at=h(1) + RETRY), id="address-route"),
        pytest.param(
            [created(NO_ADDRESS)],
            CONFIG,
            Decision(actions=(SearchAddress(),), due_at=h(1) + RETRY),
            id="no-address-search",
        ),
        pytest.param(
            [created(NO_ADDRESS), AddressSearchFailed(task_id=TASK, at=h(0.5), reason="no candidate")],
            CONFIG,
            emits(
                PublicationStarted(
                    task_id=TASK,
                    at=h(1),
                    published_at=h(1),
                    reason="no postal address to try",
                    basis=BASIS_PUBLICATION_UNKNOWN,
                ),
                h(1),
            ),
            id="search-failed-publish",
        ),
        pytest.param(
            [created(NO_ADDRESS), AddressSearchFailed(task_id=TASK, at=h(0.5), reason="no candidate")],
            PolicyConfig(auto_publication=False),
            emits(
                NeedsAttention(
                    task_id=TASK,
                    at=h(1),
                    reason=f"no postal address to try; publication possible: {BASIS_PUBLICATION_UNKNOWN}",
                ),
                h(1),
            ),
            id="search-failed-ask-a-person",
        ),
    ],
)
def test_postal(events: list[Event], config: PolicyConfig, expected: Decision) -> None:
    task = task_of(events[0], fell_back(T0), events[1:])
    assert task.state is TaskState.POSTAL
    assert decide(task, h(1), config, CHANNELS) == expected


def test_postal_with_an_address_already_tried_searches_again() -> None:
    # Mail to the Wuhan address came back; a person re-entered the same address: it is not tried again.
    wuhan = make_party().contacts_of(ContactKind.POSTAL)[0]
    task = task_of(
        created(),
        fell_back(T0),
        in_post("T-1.1", T0),
        returned("T-1.1", h(72), ReturnReason.ADDRESS_WRONG, h(72)),
        AddressUpdated(task_id=TASK, at=h(73), contact=wuhan, source="staff"),
    )
    assert task.state is TaskState.POSTAL
    assert task.tried_addresses == (wuhan.value,)
    assert decide(task, h(73), CONFIG, CHANNELS) == Decision(actions=(SearchAddress(),), due_at=h(73) + RETRY)


# -- ROUTED / PRINTED / MAILED -----------------------------------------------------------------------------------


def test_routed_without_a_job_sends_it_to_the_centre() -> None:
    task = task_of(created(), fell_back(T0), routed(T0))
    assert decide(task, T0, CONFIG, CHANNELS) == Decision(
        actions=(Send(channel=CENTRE, kind=PRINT, centre_id=CENTRE),), due_at=T0
    )


def test_routed_job_in_doubt_is_reconciled() -> None:
    task = task_of(created(), fell_back(T0), routed(T0), print_job("T-1.1", T0))
    assert decide(task, h(1), CONFIG, CHANNELS) == Decision(
        actions=(Reconcile(dispatch_id="T-1.1"),), due_at=h(1) + RETRY
    )


def test_printed_job_is_polled_until_mailed() -> None:
    task = task_of(created(), fell_back(T0), in_post("T-1.1", T0)[:4])
    assert task.state is TaskState.PRINTED
    assert decide(task, h(1), CONFIG, CHANNELS) == Decision(actions=(Poll(dispatch_id="T-1.1"),), due_at=h(2))


@pytest.mark.parametrize(
    ("upto", "now", "reason"),
    [
        pytest.param(3, h(48), f"print centre {CENTRE} did not print and mail within 2 days", id="routed"),
        pytest.param(4, h(48), f"print centre {CENTRE} did not print and mail within 2 days", id="printed"),
        pytest.param(5, h(20 * 24), "the carrier reported no outcome within 20 days", id="mailed"),
    ],
)
def test_stuck_in_the_post_asks_a_person(upto: int, now: datetime, reason: str) -> None:
    task = task_of(created(), fell_back(T0), in_post("T-1.1", T0)[:upto])
    assert decide(task, now - timedelta(minutes=1), CONFIG, CHANNELS).actions == (Poll(dispatch_id="T-1.1"),)
    assert decide(task, now, CONFIG, CHANNELS) == emits(NeedsAttention(task_id=TASK, at=now, reason=reason), now)


def test_signed_mail_is_served_on_the_signing_date() -> None:
    signed = PostSigned(task_id=TASK, at=h(60), dispatch_id="T-1.1", signed_at=h(50))
    task = task_of(created(), fell_back(T0), in_post("T-1.1", T0), signed)
    assert task.state is TaskState.MAILED
    assert decide(task, h(60), CONFIG, CHANNELS) == emits(
        Served(
            task_id=TASK,
            at=h(60),
            method=ServiceMethod.POSTAL,
            basis=BASIS_POSTAL,
            effective_at=h(50),
            dispatch_id="T-1.1",
        ),
        h(60),
    )


# -- RETURNED --------------------------------------------------------------------------------------------------

RETURNED_AT = h(72)  # the carrier's return date
NOW = h(78)  # when the policy looks (the report came in later than the return)
CONFIRMED = make_party("P-11", address_confirmed=True)


def returned_task(party: Party | None, reason: ReturnReason, *extra: Event) -> Task:
    return task_of(
        created(party),
        fell_back(T0),
        in_post("T-1.1", T0),
        returned("T-1.1", NOW, reason, RETURNED_AT),
        *extra,
    )


def deemed_served(basis: str) -> Decision:
    return emits(
        Served(
            task_id=TASK,
            at=NOW,
            method=ServiceMethod.POSTAL,
            basis=basis,
            effective_at=RETURNED_AT,
            dispatch_id="T-1.1",
        ),
        NOW,
    )


@pytest.mark.parametrize(
    ("party", "reason", "config", "expected"),
    [
        pytest.param(None, ReturnReason.REFUSED, CONFIG, deemed_served(BASIS_REFUSED), id="refused"),
        pytest.param(CONFIRMED, ReturnReason.REFUSED, CONFIG, deemed_served(BASIS_REFUSED), id="refused-confirmed"),
        pytest.param(
            CONFIRMED, ReturnReason.ADDRESS_WRONG, CONFIG, deemed_served(BASIS_CONFIRMED_WRONG), id="confirmed-wrong"
        ),
        pytest.param(CONFIRMED, ReturnReason.MOVED, CONFIG, deemed_served(BASIS_CONFIRMED_WRONG), id="confirmed-moved"),
        pytest.param(
            None,
            ReturnReason.ADDRESS_WRONG,
            CONFIG,
            Decision(actions=(SearchAddress(),), due_at=NOW + RETRY),
            id="unconfirmed-search",
        ),
        pytest.param(
            None,
            ReturnReason.UNCLAIMED,
            PolicyConfig(max_postal_rounds=1),
            emits(
                PublicationStarted(
                    task_id=TASK,
                    at=NOW,
                    published_at=NOW,
                    reason="mail returned (unclaimed) after 1 round(s)",
                    basis=BASIS_PUBLICATION_FAILED.format(rounds=1),
                ),
                NOW,
            ),
            id="rounds-exhausted-publish",
        ),
        pytest.param(
            None,
            ReturnReason.UNCLAIMED,
            PolicyConfig(max_postal_rounds=1, auto_publication=False),
            emits(
                NeedsAttention(
                    task_id=TASK,
                    at=NOW,
                    reason="mail returned (unclaimed) after 1 round(s); publication possible: "
                    + BASIS_PUBLICATION_FAILED.format(rounds=1),
                ),
                NOW,
            ),
            id="rounds-exhausted-ask-a-person",
        ),
    ],
)
def test_returned(party: Party | None, reason: ReturnReason, config: PolicyConfig, expected: Decision) -> None:
    task = returned_task(party, reason)
    assert task.state is TaskState.RETURNED
    assert decide(task, NOW, config, CHANNELS) == expected


def test_returned_after_a_failed_search_publishes() -> None:
    task = returned_task(None, ReturnReason.ADDRESS_WRONG, AddressSearchFailed(task_id=TASK, at=NOW, reason="none"))
    assert decide(task, NOW, CONFIG, CHANNELS) == emits(
        PublicationStarted(
            task_id=TASK,
            at=NOW,
            published_at=NOW,
            reason="mail returned (address_wrong) after 1 round(s)",
            basis=BASIS_PUBLICATION_UNKNOWN,
        ),
        NOW,
    )


def test_returned_twice_publishes() -> None:
    second = [
        AddressUpdated(task_id=TASK, at=NOW, contact=ADDRESS, source="household_registry"),
        *in_post("T-1.2", NOW, ADDRESS),
        returned("T-1.2", h(150), ReturnReason.MOVED, h(150)),
    ]
    task = returned_task(None, ReturnReason.ADDRESS_WRONG, *second)
    assert task.postal_rounds == 2
    assert decide(task, h(150), CONFIG, CHANNELS) == emits(
        PublicationStarted(
            task_id=TASK,
            at=h(150),
            published_at=h(150),
            reason="mail returned (moved) after 2 round(s)",
            basis=BASIS_PUBLICATION_FAILED.format(rounds=2),
        ),
        h(150),
    )


# -- PUBLISHING ------------------------------------------------------------------------------------------------

PUBLISHED_AT = h(100)


def publishing_task() -> Task:
    publication = PublicationStarted(task_id=TASK, at=PUBLISHED_AT, published_at=PUBLISHED_AT, reason="post failed")
    return task_of(created(NO_ADDRESS), fell_back(T0), publication)


# Posted Fri 6 Nov 2026 (13:00 Beijing). CPL Art. 85: the posting day is not counted, so day 30 is Sun 6 Dec,
# a rest day, and the period ends on Mon 7 Dec; CPL Art. 95: deemed served on that day, whose moment is 00:00
# Beijing time of 7 Dec (law.deemed_moment), so the Beijing date of served_at is the service date.
BJ = timezone(timedelta(hours=8))
PUBLICATION_EFFECTIVE = datetime(2026, 12, 7, 0, 0, tzinfo=BJ)
# Without roll-over (LawConfig.publication_rolls_over=False): the 30th day itself, Sun 6 Dec.
PUBLICATION_NO_ROLL = datetime(2026, 12, 6, 0, 0, tzinfo=BJ)
# Abroad (CPL Art. 283): day 60 is Tue 5 Jan 2027, a year the shipped calendar does not cover: not rolled over.
PUBLICATION_ABROAD = datetime(2027, 1, 5, 0, 0, tzinfo=BJ)
ABROAD_BASIS = f"{BASIS_PUBLICATION_ABROAD} (no holiday calendar for that year: the period was not rolled over)"
NO_ROLL = PolicyConfig(law=LawConfig(publication_rolls_over=False))
ABROAD = PolicyConfig(publication_period=timedelta(days=60))


def deemed_published(
    now: datetime, effective: datetime = PUBLICATION_EFFECTIVE, basis: str = BASIS_PUBLICATION
) -> Decision:
    served = Served(
        task_id=TASK,
        at=now,
        method=ServiceMethod.PUBLICATION,
        basis=basis,
        effective_at=effective,
    )
    return emits(served, now)


@pytest.mark.parametrize(
    ("elapsed", "config", "expected"),
    [
        pytest.param(timedelta(0), CONFIG, Decision(due_at=PUBLICATION_EFFECTIVE), id="just-published"),
        pytest.param(
            PUBLICATION_EFFECTIVE - PUBLISHED_AT - timedelta(minutes=1),
            CONFIG,
            Decision(due_at=PUBLICATION_EFFECTIVE),
            id="a-minute-before-the-service-day",
        ),
        pytest.param(
            timedelta(days=30), CONFIG, Decision(due_at=PUBLICATION_EFFECTIVE), id="day-30-is-a-sunday-art-85"
        ),
        pytest.param(
            PUBLICATION_EFFECTIVE - PUBLISHED_AT,
            CONFIG,
            deemed_published(PUBLICATION_EFFECTIVE),
            id="on-the-rolled-over-last-day-art-95",
        ),
        pytest.param(timedelta(days=41), CONFIG, deemed_published(PUBLISHED_AT + timedelta(days=41)), id="looked-late"),
        pytest.param(timedelta(days=29), NO_ROLL, Decision(due_at=PUBLICATION_NO_ROLL), id="no-roll-over-early"),
        pytest.param(
            PUBLICATION_NO_ROLL - PUBLISHED_AT,
            NO_ROLL,
            deemed_published(PUBLICATION_NO_ROLL, PUBLICATION_NO_ROLL),
            id="no-roll-over-day-30-itself",
        ),
        pytest.param(timedelta(days=30), ABROAD, Decision(due_at=PUBLICATION_ABROAD), id="abroad-60-days-early"),
        pytest.param(
            PUBLICATION_ABROAD - PUBLISHED_AT,
            ABROAD,
            deemed_published(PUBLICATION_ABROAD, PUBLICATION_ABROAD, ABROAD_BASIS),
            id="abroad-60-days-art-283",
        ),
    ],
)
def test_publishing(elapsed: timedelta, config: PolicyConfig, expected: Decision) -> None:
    task = publishing_task()
    assert task.state is TaskState.PUBLISHING
    assert decide(task, PUBLISHED_AT + elapsed, config, CHANNELS) == expected


# -- SERVED, terminal, needs attention ---------------------------------------------------------------------------


def _served_events() -> list[Event]:
    return [
        created(),
        *attempt("T-1.1", ES, T0),
        delivered("T-1.1", h(1)),
        Served(
            task_id=TASK,
            at=h(1),
            method=ServiceMethod.ELECTRONIC,
            basis=BASIS_ELECTRONIC,
            effective_at=h(1),
            dispatch_id="T-1.1",
        ),
    ]


def test_served_files_the_proof_of_service() -> None:
    task = task_of(_served_events())
    assert task.state is TaskState.SERVED
    assert decide(task, h(1), CONFIG, CHANNELS) == Decision(actions=(File(),), due_at=h(1) + RETRY)


@pytest.mark.parametrize(
    ("events", "state"),
    [
        pytest.param(
            [*_served_events(), Filed(task_id=TASK, at=h(1), record_id="T-1:proof")], TaskState.FILED, id="filed"
        ),
        pytest.param(
            [created(), *attempt("T-1.1", ES, T0), Cancelled(task_id=TASK, at=h(1), reason="withdrawn")],
            TaskState.CANCELLED,
            id="cancelled",
        ),
        pytest.param(
            [
                created(),
                fell_back(T0),
                NeedsAttention(task_id=TASK, at=T0, reason="no print centre serves this address"),
            ],
            TaskState.NEEDS_ATTENTION,
            id="needs-attention",
        ),
        pytest.param(
            # A late delivery does not wake a task a person has to decide on, nor a cancelled one.
            [
                created(),
                *attempt("T-1.1", ES, T0),
                NeedsAttention(task_id=TASK, at=h(1), reason="sms failed 5 times"),
                delivered("T-1.1", h(2)),
            ],
            TaskState.NEEDS_ATTENTION,
            id="needs-attention-late-delivery",
        ),
        pytest.param(
            [
                created(),
                *attempt("T-1.1", ES, T0),
                Cancelled(task_id=TASK, at=h(1), reason="withdrawn"),
                delivered("T-1.1", h(2)),
            ],
            TaskState.CANCELLED,
            id="cancelled-late-delivery",
        ),
    ],
)
def test_nothing_to_do(events: list[Event], state: TaskState) -> None:
    task = task_of(events)
    assert task.state is state
    decision = decide(task, h(1000), CONFIG, CHANNELS)
    assert decision == Decision()
    assert decision.actions == ()
    assert decision.due_at is None
    assert not decision.io


def test_decide_is_pure() -> None:
    task = task_of(created(), attempt("T-1.1", SMS, T0))
    before = task
    first = decide(task, h(1), CONFIG, CHANNELS)
    assert decide(task, h(1), CONFIG, CHANNELS) == first
    assert task == before


def test_first_contact_is_the_first_of_contacts_of() -> None:
    """The engine addresses a send to ``Party.first_contact``: the party's own contact first, then its
    representatives' in order, and None when nobody has one of that kind."""
    own = Contact(kind=ContactKind.WECHAT, value="wx_own")
    receiver = Representative(
        name="李四", role=AgentRole.DESIGNATED_RECEIVER, contacts=(Contact(kind=ContactKind.WECHAT, value="wx_agent"),)
    )
    with_own = attrs.evolve(make_party("P-30"), contacts=(*make_party("P-30").contacts, own), agents=(receiver,))
    only_agent = attrs.evolve(make_party("P-31", wechat=None), agents=(receiver,))
    for party in (with_own, only_agent, make_party("P-32", wechat=None)):
        for kind in ContactKind:
            found = party.contacts_of(kind)
            assert party.first_contact(kind) == (found[0] if found else None)
    assert with_own.first_contact(ContactKind.WECHAT) == own
    assert only_agent.first_contact(ContactKind.WECHAT) == receiver.contacts[0]


# -- consent decides e-service through law.consent_status (issue 16, part 3) ---------------------------------

SUBJECT_TO_ACCEPTANCE = PolicyConfig(serve_subject_to_acceptance=True)


def _with_consent(party: Party, consent: Consent | None) -> Party:
    return attrs.evolve(party, consent=consent)


def objected(at: datetime) -> ConsentObjected:
    return ConsentObjected(task_id=TASK, at=at, objected_at=at)


def accepted(dispatch_id: str, at: datetime, given_at: datetime | None = None) -> ConsentRecorded:
    return ConsentRecorded(
        task_id=TASK,
        at=at,
        method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION,
        given_at=given_at or at,
        via_dispatch=dispatch_id,
    )


@pytest.mark.parametrize(
    ("party", "events", "config", "reason"),
    [
        pytest.param(
            _with_consent(make_party("P-40"), Consent(method=ConsentMethod.EXPRESS, given_at=h(24))),
            [],
            CONFIG,
            "consent given after the service moment (CPL Art. 90; SPC Online Litigation Rules Art. 29(1) "
            "(express consent))",
            id="consent-after-sending-rules-29-1",
        ),
        pytest.param(
            _with_consent(make_party("P-41"), Consent(method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, given_at=h(24))),
            [],
            CONFIG,
            "consent by accepting a completed e-service (Rules Art. 29(4)) covers that service and later ones, "
            "not one sent before the acceptance (CPL Art. 90; SPC Online Litigation Rules Art. 29(4) "
            "(accepted a completed e-service without objecting))",
            id="acceptance-cannot-justify-sending-rules-29-4",
        ),
        pytest.param(
            make_party("P-42"),
            [objected(T0)],
            SUBJECT_TO_ACCEPTANCE,
            "the recipient objected to electronic service (CPL Art. 90; SPC Online Litigation Rules Art. 29(4) "
            "(the recipient objected to electronic service))",
            id="objection-bars-e-service-cpl-90",
        ),
        pytest.param(
            make_party("P-43"),
            [],
            PolicyConfig(law=LawConfig(judgments_electronic=False)),
            "judgment documents are not served electronically under the configured rule (CPL 2017 Art. 87 "
            "(judgments, rulings and mediation documents not served electronically))",
            id="judgment-excluded-cpl-2017-87",
        ),
    ],
)
def test_created_asks_consent_status(party: Party, events: list[Event], config: PolicyConfig, reason: str) -> None:
    request = make_request(party)
    if party.party_id == "P-43":
        judgment = attrs.evolve(request.documents[0], document_id="J1", kind=DocumentKind.JUDGMENT)
        request = attrs.evolve(request, documents=(*request.documents, judgment))
    task = task_of(TaskCreated(task_id=TASK, at=T0, request=request), events)
    assert decide(task, T0, config, CHANNELS) == emits(FellBackToPost(task_id=TASK, at=T0, reason=reason), T0)


def test_created_without_consent_serves_subject_to_acceptance() -> None:
    # Rules Art. 29(4): the court may send; the service takes effect only on the party's acceptance
    task = task_of(created(make_party("P-44", consent=False)))
    assert decide(task, T0, SUBJECT_TO_ACCEPTANCE, CHANNELS) == Decision(
        actions=(Send(channel="fake-sms", kind=SMS),), due_at=T0
    )
    assert decide(task, T0, attrs.evolve(SUBJECT_TO_ACCEPTANCE, parallel=True), CHANNELS).actions == (
        Send(channel="fake-sms", kind=SMS),
    )


def test_sent_without_consent_serves_only_on_the_acceptance() -> None:
    """Rules Arts. 29(4), 31(2)(1): delivered and read, no service; accepted, service at the acceptance."""
    events: list[Event] = [created(make_party("P-45", consent=False)), *attempt("T-1.1", SMS, T0)]
    read = DispatchRead(task_id=TASK, at=h(1), dispatch_id="T-1.1", read_at=h(1))
    task = task_of(events, delivered("T-1.1", h(0.1)), read)
    decision = decide(task, h(2), SUBJECT_TO_ACCEPTANCE, CHANNELS)
    assert decision.due_at is not None
    assert not any(isinstance(a, Emit) for a in decision.actions)  # waiting for the acceptance
    window_over = decide(task, T0 + SUBJECT_TO_ACCEPTANCE.acceptance_window, SUBJECT_TO_ACCEPTANCE, CHANNELS)
    [action] = window_over.actions
    assert isinstance(action, Emit)
    assert isinstance(action.event, FellBackToPost)
    assert "Art. 29(4)" in action.event.reason

    task = task_of(events, delivered("T-1.1", h(0.1)), read, accepted("T-1.1", h(5), h(4)))
    assert task.consent == Consent(method=ConsentMethod.ACCEPTED_WITHOUT_OBJECTION, given_at=h(4))
    assert decide(task, h(5), SUBJECT_TO_ACCEPTANCE, CHANNELS) == emits(
        Served(
            task_id=TASK,
            at=h(5),
            method=ServiceMethod.ELECTRONIC,
            basis=BASIS_ACCEPTED_SERVICE,
            effective_at=h(4),
            dispatch_id="T-1.1",
        ),
        h(5),
    )
    # an objection at or before the acceptance: not "without objecting", no service, and no more waiting
    task = task_of(events, delivered("T-1.1", h(0.1)), objected(h(3)), accepted("T-1.1", h(5), h(4)))
    [action] = decide(task, h(5), SUBJECT_TO_ACCEPTANCE, CHANNELS).actions
    assert isinstance(action, Emit)
    assert isinstance(action.event, FellBackToPost)
    assert "objected" in action.event.reason


def test_a_later_consent_does_not_replace_the_first() -> None:
    # the first consent covers the most: a later acceptance adds a dispatch fact, not a new ground
    task = task_of(created(everyone()), *attempt("T-1.1", SMS, T0), accepted("T-1.1", h(1)))
    assert task.consent == everyone().consent
    assert task.dispatches[0].accepted_at == h(1)


def test_a_consent_is_not_given_after_it_was_recorded() -> None:
    # a provider's clock ahead of ours: the consent existed when it was recorded (the dispatch after it is covered)
    call = DispatchQueued(task_id=TASK, at=T0, dispatch_id="T-1.1", channel="calls", kind=PHONE, contact=CONTACTS[SMS])
    phone = ConsentRecorded(task_id=TASK, at=h(1), method=ConsentMethod.PHONE, given_at=h(1.01), via_dispatch="T-1.1")
    task = task_of(created(make_party("P-46", consent=False)), call, phone)
    assert task.consent == Consent(method=ConsentMethod.PHONE, given_at=h(1))
    assert decide(task, h(1), CONFIG, CHANNELS).actions == (Send(channel="fake-sms", kind=SMS),)
