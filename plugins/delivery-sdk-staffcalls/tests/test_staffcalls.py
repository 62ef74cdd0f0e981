"""Staff phone calls: the queue (SQLite and PostgreSQL), the channel, the staff's API, the CLI, the engine.

Run after ``pip install -e plugins/delivery-sdk-staffcalls`` (the entry points must be installed).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from delivery_sdk_staffcalls import (
    ENV_QUEUE,
    CallClosed,
    CallOutcome,
    CallQueue,
    CallState,
    LeaseLost,
    RetrySchedule,
    StaffCallChannel,
    StaffCallError,
    StaffCalls,
    StaffCallsPlugin,
    UnknownCall,
    queue_path_beside,
)

from delivery_sdk import (
    AccessDenied,
    AsyncDeliveryClient,
    Case,
    ChannelKind,
    ConsentMethod,
    Contact,
    ContactKind,
    DeliveryClient,
    Dispatch,
    Document,
    DocumentKind,
    IngestOutcome,
    PluginError,
    ReceiptKind,
    ServiceMethod,
    TaskState,
    ValidationError,
    VirtualClock,
)
from delivery_sdk.access import parse_actor
from delivery_sdk.cli import main as cli_main
from delivery_sdk.model import mask
from delivery_sdk.testing import FakeChannel, Harness, Outcome, channels_plugin, make_party, make_request

PHONE = "13912345678"
NAME = "李四光"
PARTY = "张三"  # the name make_party gives
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
NON_PHONE = frozenset(set(ChannelKind) - {ChannelKind.PHONE})


def dispatch(n: int = 1, *, phone: str = PHONE) -> Dispatch:
    return Dispatch(
        dispatch_id=f"T{n:06d}.1",
        task_id=f"T{n:06d}",
        channel="staff-calls",
        kind=ChannelKind.PHONE,
        contact=Contact(kind=ContactKind.MOBILE, value=phone),
        case=Case(court="武汉市武昌区人民法院", case_number=f"(2026)鄂0106民初{n}号"),
        recipient_name=NAME,
        documents=(Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256="a" * 64),),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallQueue]:
    target = request.getfixturevalue("pg_dsn") if request.param == "postgres" else str(tmp_path / "calls.sqlite3")
    q = CallQueue(target)
    yield q
    q.close()


# -- the queue ----------------------------------------------------------------------------------------


def test_enqueue_is_idempotent_on_the_dispatch_id(queue: CallQueue) -> None:
    assert queue.enqueue(dispatch(1), T0)
    assert not queue.enqueue(dispatch(1), T0 + timedelta(hours=1))
    assert queue.lookup("T000001.1") == (True, None)
    assert queue.lookup("T000009.1") == (False, None)
    [call] = queue.calls(T0)
    assert (call.call_id, call.due_at, call.attempts, call.max_attempts) == ("T000001.1", T0, 0, 3)
    assert call.phone == mask(PHONE)
    assert call.recipient == mask(NAME)


def test_claim_leases_a_call_to_one_person_until_it_expires_or_is_released(queue: CallQueue) -> None:
    queue.enqueue(dispatch(1), T0)
    queue.enqueue(dispatch(2), T0 + timedelta(seconds=1))
    now = T0 + timedelta(minutes=1)
    first = queue.claim("wang", now, lease=timedelta(minutes=10))
    assert first is not None
    assert (first.call_id, first.phone, first.recipient, first.documents) == ("T000001.1", PHONE, NAME, ("传票",))
    assert PHONE not in repr(first)
    assert first.token not in repr(first)
    second = queue.claim("li", now)
    assert second is not None
    assert second.call_id == "T000002.1"  # the first is invisible to others while leased
    assert queue.claim("zhao", now) is None
    assert [c.call_id for c in queue.calls(now)] == []  # leased calls are not listed...
    assert len(queue.calls(now, include_claimed=True)) == 2  # ...unless asked for
    # wang's lease runs out; zhao takes the call over, and wang can no longer record it
    later = now + timedelta(minutes=10)
    taken = queue.claim("zhao", later)
    assert taken is not None
    assert taken.call_id == "T000001.1"
    with pytest.raises(LeaseLost, match="claim a call again"):
        queue.record(first.call_id, first.token, CallOutcome.REFUSED, later, staff="wang")
    # li releases: visible to everyone at once, attempt count unchanged
    queue.release(second.call_id, second.token, later)
    again = queue.claim("wang", later)
    assert again is not None
    assert (again.call_id, again.attempts) == ("T000002.1", 0)
    with pytest.raises(LeaseLost):
        queue.release(second.call_id, second.token, later)  # the old token is worthless now
    with pytest.raises(UnknownCall):
        queue.release("nope", "x", later)
    with pytest.raises(ValidationError, match="who claims"):
        queue.claim(" ", later)


@pytest.mark.parametrize(
    ("outcome", "kind", "reason"),
    [
        (CallOutcome.REACHED_CONSENTED, ReceiptKind.CONSENTED, None),
        (CallOutcome.REFUSED, ReceiptKind.FAILED, "staff call: the party refused electronic service"),
        (CallOutcome.WRONG_NUMBER, ReceiptKind.FAILED, "staff call: wrong number (it does not reach the party)"),
    ],
)
def test_final_outcomes_become_receipts(
    queue: CallQueue, outcome: CallOutcome, kind: ReceiptKind, reason: str | None
) -> None:
    queue.enqueue(dispatch(1), T0)
    call = queue.claim("wang", T0)
    assert call is not None
    scope = ("sms", "eservice") if outcome is CallOutcome.REACHED_CONSENTED else ()
    done = queue.record(call.call_id, call.token, outcome, T0 + timedelta(minutes=3), staff="wang", scope=scope)
    assert done.state is CallState.DONE
    assert done.next_due_at is None
    assert done.consent_scope == scope
    assert done.receipt is not None
    assert (done.receipt.kind, done.receipt.reason, done.receipt.at) == (kind, reason, T0 + timedelta(minutes=3))
    assert queue.lookup(call.call_id) == (True, done.receipt)  # what status() will report
    with pytest.raises(CallClosed):
        queue.record(call.call_id, call.token, outcome, T0, staff="wang")
    assert queue.claim("li", T0 + timedelta(days=9)) is None
    assert [a[1] for a in queue.attempts(call.call_id)] == [outcome]


def test_no_answer_follows_the_retry_schedule_up_to_max_attempts(queue: CallQueue) -> None:
    queue.enqueue(dispatch(1), T0)
    now = T0
    expected_waits = [timedelta(hours=2), timedelta(days=1)]
    for attempt in (1, 2):
        call = queue.claim("wang", now)
        assert call is not None
        assert call.attempts == attempt - 1
        result = queue.record(call.call_id, call.token, CallOutcome.NO_ANSWER, now, staff="wang", note="busy")
        assert result.state is CallState.OPEN
        assert result.receipt is None
        assert result.next_due_at == now + expected_waits[attempt - 1]
        assert queue.claim("wang", result.next_due_at - timedelta(seconds=1)) is None  # not due yet
        [listed] = queue.calls(now)  # still listed: scheduled later
        assert not listed.due(now)
        now = result.next_due_at
    call = queue.claim("wang", now)
    assert call is not None
    last = queue.record(call.call_id, call.token, CallOutcome.NO_ANSWER, now, staff="wang")
    assert last.state is CallState.DONE
    assert last.receipt is not None
    assert last.receipt.kind is ReceiptKind.FAILED
    assert last.receipt.reason == "staff call: no answer after 3 attempts"
    assert [a[0] for a in queue.attempts(call.call_id)] == [1, 2, 3]


def test_consent_scope_only_with_consent(queue: CallQueue) -> None:
    queue.enqueue(dispatch(1), T0)
    call = queue.claim("wang", T0)
    assert call is not None
    with pytest.raises(ValidationError, match="scope"):
        queue.record(call.call_id, call.token, CallOutcome.REFUSED, T0, staff="wang", scope=("sms",))


def test_concurrent_claims_on_postgres_never_share_a_call(pg_dsn: str) -> None:
    setup = CallQueue(pg_dsn)
    for n in range(1, 41):
        setup.enqueue(dispatch(n), T0)
    claimed: list[str] = []
    lock = threading.Lock()
    queues = [CallQueue(pg_dsn) for _ in range(4)]
    start = threading.Barrier(len(queues))

    def worker(q: CallQueue, who: str) -> None:
        start.wait()
        while (call := q.claim(who, T0 + timedelta(minutes=1))) is not None:
            with lock:
                claimed.append(call.call_id)

    threads = [threading.Thread(target=worker, args=(q, f"staff-{i}")) for i, q in enumerate(queues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for q in (setup, *queues):
        q.close()
    assert sorted(claimed) == sorted(f"T{n:06d}.1" for n in range(1, 41))


def test_retry_schedule_validation_and_span() -> None:
    assert RetrySchedule().span == timedelta(hours=26)
    assert RetrySchedule(delays=(timedelta(hours=1),), max_attempts=4).span == timedelta(hours=3)
    with pytest.raises(ValidationError, match="positive timedelta"):
        RetrySchedule(delays=())
    with pytest.raises(ValidationError, match="max_attempts"):
        RetrySchedule(max_attempts=0)


def test_queue_path_beside_the_store(tmp_path: Path) -> None:
    assert queue_path_beside(tmp_path / "service.sqlite3") == tmp_path / "service.staffcalls.sqlite3"
    assert queue_path_beside(tmp_path / "service") == tmp_path / "service.staffcalls.sqlite3"
    with pytest.raises(ValidationError, match="in-memory"):
        queue_path_beside(":memory:")


# -- the channel --------------------------------------------------------------------------------------


def test_send_is_idempotent_and_status_answers_from_the_queue(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = VirtualClock(T0)
        channel = StaffCallChannel(tmp_path / "q.sqlite3", clock=clock)
        d = dispatch(1)
        assert (await channel.status(d)).found is False
        first = await channel.send(d)
        again = await channel.send(d)  # the engine reconciling after a crash would not, but a retry might
        assert first.accepted
        assert (first.provider_ref, first.receipts) == ("call:T000001.1", ())
        assert again == first
        assert len(channel.queue.calls(clock.now())) == 1
        call = channel.queue.claim("wang", clock.now())
        assert call is not None
        channel.queue.record(call.call_id, call.token, CallOutcome.REACHED_CONSENTED, clock.now(), staff="wang")
        report = await channel.status(d)
        assert report.found
        assert [r.kind for r in report.receipts] == [ReceiptKind.CONSENTED]
        assert [r.kind for r in (await channel.send(d)).receipts] == [ReceiptKind.CONSENTED]
        email = _with_contact(d, Contact(kind=ContactKind.EMAIL, value="a@b.cn"))
        refused = await channel.send(email)
        assert not refused.accepted
        await channel.aclose()

    asyncio.run(scenario())


def _fields(d: Dispatch) -> dict[str, object]:
    return {a.name: getattr(d, a.name) for a in Dispatch.__attrs_attrs__}


def _with_contact(d: Dispatch, contact: Contact) -> Dispatch:
    return Dispatch(**{**_fields(d), "dispatch_id": "T000777.1", "contact": contact})  # type: ignore[arg-type]


def test_plugin_needs_a_queue_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_QUEUE, raising=False)
    with pytest.raises(StaffCallError, match="say where the staff-call queue is"):
        StaffCallsPlugin()
    assert StaffCallsPlugin(store=tmp_path / "s.sqlite3").queue_spec == tmp_path / "s.staffcalls.sqlite3"
    monkeypatch.setenv(ENV_QUEUE, str(tmp_path / "env.sqlite3"))
    assert StaffCallsPlugin().queue_spec == str(tmp_path / "env.sqlite3")


def test_entry_point_registers_the_channel_only_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"DELIVERY_SDK_PLUGINS": "staffcalls"}
    monkeypatch.delenv(ENV_QUEUE, raising=False)
    with DeliveryClient(":memory:", environ=env) as client:
        assert client.host.channels.of_kind(ChannelKind.PHONE) == []
        with pytest.raises(StaffCallError, match="no staff-call channel"):
            StaffCalls(client)
    monkeypatch.setenv(ENV_QUEUE, str(tmp_path / "ignored.sqlite3"))  # environ= wins: never read
    with DeliveryClient(":memory:", environ=env) as client:
        assert client.host.channels.of_kind(ChannelKind.PHONE) == []
    env[ENV_QUEUE] = str(tmp_path / "calls.sqlite3")
    with DeliveryClient(":memory:", environ=env) as client:
        [channel] = client.host.channels.of_kind(ChannelKind.PHONE)
        assert isinstance(channel, StaffCallChannel)
        assert channel.name == "staff-calls"
        assert StaffCalls(client).channel is channel
    assert not (tmp_path / "ignored.sqlite3").exists()
    del env[ENV_QUEUE]
    env["DELIVERY_SDK_STAFFCALLS_QUEU"] = str(tmp_path / "calls.sqlite3")  # a typo: configured, in part
    with (
        DeliveryClient(":memory:", environ=env) as client,
        pytest.raises(PluginError, match=f"{ENV_QUEUE} is required"),
    ):
        client.host.load()


# -- with the engine ----------------------------------------------------------------------------------


class World:
    """The Harness (fakes for every other channel, the print centres, the carrier) plus staff calls."""

    def __init__(self, tmp_path: Path, *, hook: bool = True) -> None:
        bare = StaffCallChannel(tmp_path / "calls.sqlite3")
        if hook:
            self.plugin: object = StaffCallsPlugin(tmp_path / "calls.sqlite3")
        else:  # the channel alone: nothing closes calls when tasks move on, claim() has to notice
            self.plugin = channels_plugin(bare)
        self.h = Harness(extra_plugins=[self.plugin], kinds=NON_PHONE)
        bare.clock = self.h.clock
        self.client = self.h.client
        self.calls = StaffCalls(self.client)

    def submit(self, **party: object) -> str:
        args: dict[str, object] = {"mobile": PHONE, "eservice": "acct-1", "consent": False, **party}
        return asyncio.run(self.client.submit(make_request(make_party(**args))))  # type: ignore[arg-type]

    def run(self, *, now_only: bool = False) -> None:
        clock = self.h.clock
        asyncio.run(self.client.run_until_idle(until=clock.now() if now_only else None))

    def close(self) -> None:
        asyncio.run(self.h.aclose())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_engine_phones_for_consent_then_serves_electronically(world: World) -> None:
    # consent on the call confirms the number called, not the platform account: it serves once read
    # (SPC Online Litigation Rules Art. 31(2); see docs/legal-reference.md)
    world.h.eservice.enqueue(Outcome.delivered(timedelta(minutes=5), read_after=timedelta(hours=1)))
    task_id = world.submit()
    world.run(now_only=True)
    [call_dispatch] = world.client.status(task_id).dispatches
    assert (call_dispatch.kind, call_dispatch.status.value) == (ChannelKind.PHONE, "sent")
    [listed] = world.calls.open_calls()
    assert listed.phone == mask(PHONE)
    world.h.clock.advance(timedelta(minutes=20))
    call = world.calls.claim("wang")
    assert call is not None
    assert (call.call_id, call.phone) == (call_dispatch.dispatch_id, PHONE)
    world.h.clock.advance(timedelta(minutes=4))
    recorded, ingested = world.calls.record(call, "reached_consented", scope=[ChannelKind.ESERVICE, "sms"])
    assert recorded.consent_scope == ("eservice", "sms")
    assert ingested is not None
    assert ingested.outcome is IngestOutcome.ACCEPTED
    world.run()
    status = world.client.status(task_id)
    assert status.state is TaskState.FILED
    assert status.method is ServiceMethod.ELECTRONIC
    assert [(d.kind, d.status.value) for d in status.dispatches] == [
        (ChannelKind.PHONE, "delivered"),
        (ChannelKind.ESERVICE, "read"),
    ]
    task = world.client.task(task_id)
    assert task.consent is not None
    assert task.consent.method is ConsentMethod.PHONE
    assert recorded.receipt is not None
    assert task.consent.given_at == recorded.receipt.at
    assert "consent.recorded" in [e.event.TYPE for e in world.client.timeline(task_id)]
    assert world.h.unused() == {}


@pytest.mark.parametrize("outcome", ["refused", "wrong_number"])
def test_refused_or_wrong_number_goes_by_post(world: World, outcome: str) -> None:
    world.h.carrier.enqueue(Outcome.signed())
    task_id = world.submit()
    world.run(now_only=True)
    call = world.calls.claim("wang")
    assert call is not None
    _, ingested = world.calls.record(call, outcome)
    assert ingested is not None
    assert ingested.outcome is IngestOutcome.ACCEPTED
    world.run()
    status = world.client.status(task_id)
    assert status.method is ServiceMethod.POSTAL
    assert status.fallback_reason == "no consent to electronic service (the staff call did not obtain it)"
    assert status.dispatches[0].detail is not None
    assert status.dispatches[0].detail.startswith("staff call: ")
    assert world.client.task(task_id).consent is None


def test_no_answer_three_times_then_post(world: World) -> None:
    world.h.carrier.enqueue(Outcome.signed())
    task_id = world.submit()
    world.run(now_only=True)
    for attempt in (1, 2, 3):
        call = world.calls.claim("wang")
        assert call is not None
        assert call.attempts == attempt - 1
        recorded, ingested = world.calls.record(call, CallOutcome.NO_ANSWER)
        if attempt < 3:
            assert ingested is None
            assert recorded.next_due_at is not None
            world.h.clock.advance_to(recorded.next_due_at)
            world.run(now_only=True)  # the engine polls the call meanwhile and learns nothing new
            assert world.client.status(task_id).state is TaskState.ELECTRONIC
    world.run()
    status = world.client.status(task_id)
    assert status.dispatches[0].detail == "staff call: no answer after 3 attempts"
    assert status.method is ServiceMethod.POSTAL


def test_a_call_nobody_makes_times_out_and_is_closed(world: World) -> None:
    world.h.carrier.enqueue(Outcome.signed())
    task_id = world.submit()
    world.run()  # 48 virtual hours pass without a call: the engine gives up and goes by post
    status = world.client.status(task_id)
    assert status.dispatches[0].status.value == "timed_out"
    assert status.method is ServiceMethod.POSTAL
    assert world.calls.open_calls() == []
    assert world.calls.claim("wang") is None
    [closed] = world.calls.queue.calls(world.h.clock.now(), include_finished=True)
    assert closed.state is CallState.CLOSED


def test_claim_skips_calls_the_engine_no_longer_needs(tmp_path: Path) -> None:
    w = World(tmp_path, hook=False)
    try:
        first = w.submit()
        second = w.submit()
        w.run(now_only=True)
        asyncio.run(w.client.cancel(first, "withdrawn"))
        assert len(w.calls.open_calls()) == 2  # nobody closed it...
        call = w.calls.claim("wang")
        assert call is not None
        assert call.task_id == second  # ...claim noticed and closed it
        assert [c.task_id for c in w.calls.open_calls(include_claimed=True)] == [second]
    finally:
        w.close()


def test_a_centre_operator_works_the_desk_without_reading_personal_data(tmp_path: Path) -> None:
    """An operator (no ``personal`` permission) claims and records calls: the desk asks the engine's view of a
    task through its status (no personal data), so nothing is refused and nothing lands in the access log."""
    w = World(tmp_path, hook=False)
    try:
        first = w.submit()
        second = w.submit()
        w.run(now_only=True)
        asyncio.run(w.client.cancel(first, "withdrawn"))
        calls = StaffCalls(w.client.as_actor(parse_actor("operator:op-1@鄂")))
        call = calls.claim("op-1")
        assert call is not None
        assert call.task_id == second  # the cancelled task's call was noticed and closed
        _, ingested = calls.record(call, "refused")
        assert ingested is not None
        assert ingested.outcome is IngestOutcome.ACCEPTED
        assert w.client.access_records() == []
    finally:
        w.close()


def test_the_desk_is_scoped_to_the_actors_courts(tmp_path: Path) -> None:
    """Issue 20: a clerk of one court sees, claims and records only its court's calls; another court's call
    goes back to the queue unseen, and recording it is refused with nothing recorded."""
    w = World(tmp_path)
    try:
        party: dict[str, object] = {"mobile": PHONE, "eservice": "acct-1", "consent": False}
        a_task, b_task = (
            asyncio.run(w.client.submit(make_request(make_party(**party), case_number=number)))  # type: ignore[arg-type]
            for number in ("(2026)鄂0106民初1号", "(2026)鄂0502民初2号")
        )
        w.run(now_only=True)
        desk_a = StaffCalls(w.client.as_actor(parse_actor("clerk:a-1@鄂0106")))
        desk_b = StaffCalls(w.client.as_actor(parse_actor("clerk:b-1@鄂0502")))
        assert [c.task_id for c in desk_a.open_calls()] == [a_task]
        assert [c.task_id for c in desk_b.open_calls()] == [b_task]
        call_a = desk_a.claim("a-1")
        assert call_a is not None
        assert call_a.task_id == a_task
        assert desk_a.claim("a-1") is None  # B's call is not A's to make...
        call_b = desk_b.claim("b-1")  # ...and went back to the queue for B
        assert call_b is not None
        assert call_b.task_id == b_task
        with pytest.raises(AccessDenied, match="鄂0502"):
            desk_a.record(call_b.call_id, "refused", token=call_b.token, staff="a-1")
        assert w.calls.queue.attempts(call_b.call_id) == []  # nothing recorded
        supervisor = StaffCalls(w.client.as_actor(parse_actor("supervisor:s-1@鄂")))
        with pytest.raises(AccessDenied, match="act"):
            supervisor.record(call_a, "refused")
        _, ingested = desk_b.record(call_b, "refused")
        assert ingested is not None
        assert ingested.outcome is IngestOutcome.ACCEPTED
    finally:
        w.close()


def test_record_needs_the_lease(world: World) -> None:
    world.submit()
    world.run(now_only=True)
    call = world.calls.claim("wang", lease=timedelta(minutes=5))
    assert call is not None
    with pytest.raises(LeaseLost, match="token"):
        world.calls.record(call.call_id, "refused", staff="wang")
    world.h.clock.advance(timedelta(minutes=6))
    taken = world.calls.claim("li")
    assert taken is not None
    with pytest.raises(LeaseLost):
        world.calls.record(call, "refused")
    world.calls.release(taken)
    with pytest.raises(ValueError, match="not a valid CallOutcome"):
        world.calls.record(taken, "maybe")


def test_resync_after_a_crash_between_record_and_ingest(world: World) -> None:
    world.h.eservice.enqueue(Outcome.read())  # read at once: the account was not named on the call
    task_id = world.submit()
    world.run(now_only=True)
    call = world.calls.claim("wang")
    assert call is not None
    # the queue took the outcome, then the process died before the ingest
    world.calls.queue.record(call.call_id, call.token, CallOutcome.REACHED_CONSENTED, world.h.clock.now(), staff="w")
    [result] = world.calls.resync()
    assert result.outcome is IngestOutcome.ACCEPTED
    assert world.calls.resync()[0].outcome is IngestOutcome.DUPLICATE
    world.run()
    assert world.client.status(task_id).method is ServiceMethod.ELECTRONIC


def test_the_engine_polls_an_outcome_that_was_never_ingested(world: World) -> None:
    world.h.eservice.enqueue(Outcome.read())  # read at once: the account was not named on the call
    task_id = world.submit()
    world.run(now_only=True)
    call = world.calls.claim("wang")
    assert call is not None
    world.calls.queue.record(call.call_id, call.token, CallOutcome.REACHED_CONSENTED, world.h.clock.now(), staff="w")
    world.run()  # no ingest at all: the engine's status polls find the consent
    status = world.client.status(task_id)
    assert status.method is ServiceMethod.ELECTRONIC
    assert world.client.task(task_id).consent is not None


def test_staff_calls_with_the_async_client(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = VirtualClock(T0)
        async with AsyncDeliveryClient(
            ":memory:",
            plugins=[
                StaffCallsPlugin(tmp_path / "calls.sqlite3"),
                channels_plugin(FakeChannel("e", ChannelKind.ESERVICE, clock=clock, default=Outcome.delivered())),
            ],
            clock=clock,
            load_entry_points=False,
        ) as client:
            task_id = await client.submit(make_request(make_party(mobile=PHONE, eservice="acct", consent=False)))
            await client.run_until_idle(until=clock.now())
            calls = StaffCalls(client)
            call = calls.claim("wang")
            assert call is not None
            _, ingested = calls.record(call, "reached_consented")
            assert ingested is not None
            assert client.task(task_id).consent is not None

    asyncio.run(scenario())


# -- the CLI ------------------------------------------------------------------------------------------


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "service.sqlite3"
    start = datetime.now(UTC) - timedelta(minutes=5)  # the CLI runs on the system clock
    clock = VirtualClock(start)
    with DeliveryClient(
        str(store_path),
        plugins=[
            StaffCallsPlugin(store=store_path),
            channels_plugin(FakeChannel("mail", ChannelKind.EMAIL, clock=clock, default=Outcome.delivered())),
        ],
        clock=clock,
        load_entry_points=False,
    ) as client:
        client.submit(make_request(make_party(mobile=PHONE, email="p@example.cn", consent=False)))
        client.run_until_idle(until=clock.now())
        assert queue_path_beside(store_path).exists()

        assert cli_main(["calls", "list", "--store", str(store_path)]) == 0
        out = capsys.readouterr().out
        assert mask(PHONE) in out
        assert PHONE not in out
        assert PARTY not in out

        assert cli_main(["calls", "claim", "--store", str(store_path), "--staff", "wang", "--json"]) == 0
        claimed = json.loads(capsys.readouterr().out)
        assert (claimed["phone"], claimed["recipient"], claimed["attempt"]) == (PHONE, PARTY, 1)
        assert cli_main(["calls", "claim", "--store", str(store_path), "--staff", "li"]) == 1
        assert "no call is due now" in capsys.readouterr().err

        base = ["calls", "record", claimed["call_id"], "--store", str(store_path), "--staff", "wang"]
        assert cli_main([*base, "--token", "forged", "--outcome", "refused"]) == 1
        assert "do not hold the lease" in capsys.readouterr().err
        assert cli_main([*base, "--token", claimed["token"], "--outcome", "no_answer", "--note", "busy"]) == 0
        assert "next attempt from" in capsys.readouterr().out

        # two hours later (system time) the call is due again
        queue = CallQueue(queue_path_beside(store_path))
        assert [c.attempts for c in queue.calls(datetime.now(UTC))] == [1]
        queue.close()

        assert cli_main(["calls", "list", "--store", str(store_path), "--json"]) == 0
        [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert (row["phone"], row["due"], row["attempts"]) == (mask(PHONE), False, 1)

        # the console script itself, in a process of its own
        done = subprocess.run(
            [str(Path(sys.executable).with_name("delivery-sdk")), "calls", "list", "--store", str(store_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0
        assert mask(PHONE) in done.stdout


def test_cli_record_consent_moves_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "service.sqlite3"
    queue_path = tmp_path / "elsewhere" / "calls.sqlite3"
    clock = VirtualClock(datetime.now(UTC) - timedelta(minutes=5))
    with DeliveryClient(
        str(store_path),
        plugins=[
            StaffCallsPlugin(queue_path),
            channels_plugin(FakeChannel("sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())),
        ],
        clock=clock,
        load_entry_points=False,
    ) as client:
        task_id = client.submit(make_request(make_party(mobile=PHONE, consent=False, address=None)))
        client.run_until_idle(until=clock.now())
        common = ["--store", str(store_path), "--queue", str(queue_path)]
        assert cli_main(["calls", "claim", *common, "--staff", "wang", "--json"]) == 0
        claimed = json.loads(capsys.readouterr().out)
        args = ["calls", "record", claimed["call_id"], *common, "--token", claimed["token"], "--staff", "wang"]
        assert cli_main([*args, "--outcome", "reached_consented", "--scope", "sms,bogus"]) == 1
        assert "bogus" in capsys.readouterr().err
        assert cli_main([*args, "--outcome", "reached_consented", "--scope", "sms"]) == 0
        assert "engine: accepted" in capsys.readouterr().out
        clock.advance_to(datetime.now(UTC))
        assert client.task(task_id).consent is not None
        assert cli_main(["calls", "list", *common, "--store", str(tmp_path / "missing.sqlite3")]) == 2
