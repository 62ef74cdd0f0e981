"""The engine's I/O paths: retries, in-doubt sends and reconciliation, failures, filing retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from delivery_sdk import (
    ChannelError,
    ChannelKind,
    Dispatch,
    EngineConfig,
    MockChannel,
    PolicyConfig,
    Receipt,
    ReceiptKind,
    SendResult,
    ServiceMethod,
    StatusReport,
    TaskState,
    TransientChannelError,
)
from delivery_sdk.model import DispatchStatus
from delivery_sdk.retry import RetryConfig, call_with_retries, set_testing
from delivery_sdk.testing import Harness, Outcome, RecordingSink, channels_plugin, make_party, make_request

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


_store_factory: list[Any] = []  # this test's store_factory (tests/conftest.py)


@pytest.fixture(autouse=True)
def on_both_stores(store_factory: Any) -> Iterator[None]:
    """Every I/O path runs twice: on the SQLite store and on the PostgreSQL store."""
    _store_factory.append(store_factory)
    yield
    _store_factory.clear()


def harness(**kwargs: Any) -> Harness:
    return Harness(_store_factory[-1]() if _store_factory else None, **kwargs)


def types(h: Harness, task_id: str) -> list[str]:
    return [e.event.TYPE for e in h.client.timeline(task_id)]


def test_transient_send_errors_are_retried_and_sent_once() -> None:
    async def main() -> None:
        h = harness(config=EngineConfig(retry=RetryConfig(attempts=3, initial=0.0, maximum=0.0)))
        h.sms.enqueue(Outcome.transient(times=2, then=Outcome.delivered()))
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        # three calls reached the provider, all with the same idempotency key
        assert h.sms.idempotency_keys == [f"{task_id}.1"] * 3
        assert types(h, task_id).count("dispatch.queued") == 1
        await h.aclose()

    run(main())


def test_send_in_doubt_is_reconciled_through_status_not_resent() -> None:
    """A send whose outcome is unknown (the provider got it, then the connection died) stays queued; the
    next step asks the provider and records it as sent without sending again."""

    calls: list[str] = []
    received: set[str] = set()

    def handler(dispatch: Dispatch) -> SendResult:
        calls.append(dispatch.dispatch_id)
        received.add(dispatch.dispatch_id)
        raise TransientChannelError("connection reset after the request was written")

    def status(dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=dispatch.dispatch_id in received, provider_ref="p-1")

    async def main() -> None:
        sms = MockChannel(handler, name="flaky-sms", kind=ChannelKind.SMS, status_handler=status)
        policy = PolicyConfig(
            electronic_order=(ChannelKind.SMS,), response_window={ChannelKind.SMS: timedelta(hours=1)}
        )
        h = harness(extra_plugins=[channels_plugin(sms)], policy=policy)
        h.client.engine._kinds = {ChannelKind.SMS: "flaky-sms", ChannelKind.POST: "fake-ems"}
        h.carrier.enqueue(Outcome.signed())
        with set_testing(attempts=1):
            task_id = await h.client.submit(make_request(make_party()))
            await h.client.run_until_idle()
        timeline = types(h, task_id)
        assert calls == [f"{task_id}.1"], "sent exactly once"
        record = h.client.task(task_id).dispatches[0]
        assert record.status is DispatchStatus.TIMED_OUT
        assert timeline[:3] == ["task.created", "dispatch.queued", "dispatch.sent"]
        final = h.client.status(task_id)
        assert final.state is TaskState.FILED
        assert final.method is ServiceMethod.POSTAL  # the SMS never reported arrival: post took over
        await h.aclose()

    run(main())


def test_send_never_received_is_sent_after_reconciliation() -> None:
    attempts: list[str] = []

    def handler(dispatch: Dispatch) -> SendResult:
        attempts.append(dispatch.dispatch_id)
        if len(attempts) == 1:
            raise TransientChannelError("timeout before the provider saw it")
        return SendResult(accepted=True, provider_ref="ok")

    def status(dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=len(attempts) > 1)

    async def main() -> None:
        sms = MockChannel(handler, name="sms2", kind=ChannelKind.SMS, status_handler=status)
        h = harness(extra_plugins=[channels_plugin(sms)], policy=PolicyConfig(electronic_order=(ChannelKind.SMS,)))
        h.client.engine._kinds = {ChannelKind.SMS: "sms2"}
        with set_testing(attempts=1):
            task_id = await h.client.submit(make_request(make_party()))
            await h.client.run_until_idle(max_steps=3)
        assert attempts == [f"{task_id}.1", f"{task_id}.1"]
        assert types(h, task_id).count("dispatch.sent") == 1
        await h.aclose()

    run(main())


def test_permanent_channel_error_fails_the_dispatch_and_moves_on() -> None:
    def broken(dispatch: Dispatch) -> SendResult:
        raise ChannelError("account blocked")

    async def main() -> None:
        h = harness()
        h.client.host.register(channels_plugin(MockChannel(broken, name="broken-eservice", kind=ChannelKind.ESERVICE)))
        h.client.engine._kinds = {ChannelKind.ESERVICE: "broken-eservice", ChannelKind.SMS: "fake-sms"}
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request(make_party(eservice="acct")))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert [d.status for d in status.dispatches] == [DispatchStatus.FAILED, DispatchStatus.DELIVERED]
        assert status.dispatches[0].detail == "account blocked"
        assert status.state is TaskState.FILED
        await h.aclose()

    run(main())


def test_a_task_that_keeps_failing_goes_to_a_person(caplog: pytest.LogCaptureFixture) -> None:
    def down(dispatch: Dispatch) -> StatusReport:
        raise TransientChannelError("status endpoint down")

    def accept(dispatch: Dispatch) -> SendResult:
        raise TransientChannelError("gateway down")

    async def main() -> None:
        sms = MockChannel(accept, name="down-sms", kind=ChannelKind.SMS, status_handler=down)
        h = harness(
            extra_plugins=[channels_plugin(sms)],
            config=EngineConfig(max_io_errors=3),
            policy=PolicyConfig(electronic_order=(ChannelKind.SMS,)),
        )
        h.client.engine._kinds = {ChannelKind.SMS: "down-sms"}
        with set_testing(attempts=1), caplog.at_level(logging.WARNING, logger="delivery_sdk.engine"):
            task_id = await h.client.submit(make_request(make_party(mobile="13912345678")))
            await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert "failed 3 times" in (status.attention_reason or "")
        assert "13912345678" not in caplog.text  # never a phone number in the logs
        await h.aclose()

    run(main())


def test_filing_failure_leaves_task_served_and_is_retried() -> None:
    async def main() -> None:
        sink = RecordingSink(fail_filing=2)
        h = harness(extra_plugins=[sink])
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle(max_steps=2)
        assert h.client.status(task_id).state is TaskState.SERVED
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        assert sink.filing_calls == 3
        assert list(sink.filed) == [f"{task_id}:proof"]
        assert sink.filed[f"{task_id}:proof"].timeline[-1].event.TYPE == "service.served"
        await h.aclose()

    run(main())


def test_unknown_channel_at_send_time_fails_the_dispatch() -> None:
    async def main() -> None:
        h = harness()
        h.sms.enqueue(Outcome.delivered())
        h.client.engine._kinds = {ChannelKind.ESERVICE: "vanished", ChannelKind.SMS: "fake-sms"}
        task_id = await h.client.submit(make_request(make_party(eservice="acct")))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.dispatches[0].status is DispatchStatus.FAILED
        assert "vanished" in (status.dispatches[0].detail or "")
        assert status.state is TaskState.FILED
        await h.aclose()

    run(main())


def test_retry_config_honours_retry_after_and_gives_up() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    calls = 0

    async def always() -> None:
        nonlocal calls
        calls += 1
        raise TransientChannelError("429", retry_after=2.0)

    with pytest.raises(TransientChannelError):
        run(call_with_retries("x", always, config=RetryConfig(attempts=3, initial=0.1, maximum=5.0), sleep=sleep))
    assert calls == 3
    assert len(waits) == 2
    assert all(w >= 2.0 for w in waits)


def test_set_testing_switches_back() -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientChannelError("once")
        return calls

    with set_testing(attempts=1), pytest.raises(TransientChannelError):
        run(call_with_retries("x", flaky))
    calls = 0
    assert run(call_with_retries("x", flaky, config=RetryConfig(attempts=2, initial=0, maximum=0))) == 2


def test_filing_that_keeps_failing_goes_to_a_person_and_resume_files_it() -> None:
    async def main() -> None:
        sink = RecordingSink(fail_filing=4)
        h = harness(extra_plugins=[sink], config=EngineConfig(max_io_errors=4))
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.method is ServiceMethod.ELECTRONIC  # still served: only the filing is stuck
        assert "file failed 4 times" in (status.attention_reason or "")
        await h.client.resume(task_id, note="case-file system repaired")
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        assert types(h, task_id)[-3:] == ["task.needs_attention", "task.resumed", "service.filed"]
        # the other filing sink (the harness's) was called every time and deduplicated on the record id
        assert list(h.sink.filed) == [f"{task_id}:proof"]
        await h.aclose()

    run(main())


def test_registration_hooks_receive_the_clients_clock() -> None:
    from delivery_sdk import ChannelRegistry, Clock, hookimpl

    seen: list[Clock] = []

    class ClockAware:
        @hookimpl
        def delivery_register_channels(self, register: ChannelRegistry, clock: Clock) -> None:
            seen.append(clock)

    async def main() -> None:
        h = harness(extra_plugins=[ClockAware()])
        assert len(h.client.host.channels) == 6
        assert seen == [h.clock]
        await h.aclose()

    run(main())


def test_run_forever_on_the_system_clock_serves_what_is_submitted_while_it_runs() -> None:
    from delivery_sdk import AsyncDeliveryClient

    async def main() -> None:
        sms = MockChannel(
            lambda d: SendResult(accepted=True),
            name="live-sms",
            kind=ChannelKind.SMS,
            status_handler=lambda d: StatusReport(found=True),
        )
        policy = PolicyConfig(electronic_order=(ChannelKind.SMS,))
        async with AsyncDeliveryClient(
            _store_factory[-1](), plugins=[channels_plugin(sms)], policy=policy, load_entry_points=False
        ) as client:
            stop = asyncio.Event()
            runner = asyncio.create_task(client.run_forever(stop))
            task_id = await client.submit(make_request(make_party()))
            for _ in range(200):  # the engine wakes on submit; no need to wait for its idle poll
                if client.status(task_id).dispatches:
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(runner, timeout=5)
            status = client.status(task_id)
            assert status.state is TaskState.ELECTRONIC
            assert [d.status for d in status.dispatches] == [DispatchStatus.SENT]
            receipt = Receipt(
                dispatch_id=status.dispatches[0].dispatch_id,
                kind=ReceiptKind.DELIVERED,
                at=client.clock.now(),
                provider_event_id="dr-1",
            )
            assert (await client.ingest(receipt)).outcome.value == "accepted"
            await client.run_until_idle()
            assert client.status(task_id).state is TaskState.FILED

    run(main())


def test_without_consent_staff_call_obtains_it_then_e_service_follows() -> None:
    async def main() -> None:
        h = harness()
        h.phone.enqueue(Outcome.consented(timedelta(minutes=20)))
        h.sms.enqueue(Outcome.delivered(timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(make_party(consent=False)))
        await h.client.run_until_idle()
        timeline = types(h, task_id)
        assert timeline[:5] == [
            "task.created",
            "dispatch.queued",
            "dispatch.sent",
            "consent.recorded",
            "dispatch.queued",
        ]
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert [(d.kind, d.status) for d in status.dispatches] == [
            (ChannelKind.PHONE, DispatchStatus.DELIVERED),  # reached, but it served nothing itself
            (ChannelKind.SMS, DispatchStatus.DELIVERED),
        ]
        assert status.served_at is not None
        assert status.dispatches[1].delivered_at == status.served_at
        assert h.client.task(task_id).consent is not None
        await h.aclose()

    run(main())


def test_without_consent_a_refused_or_unanswered_call_goes_to_post_never_electronic() -> None:
    async def main() -> None:
        h = harness()
        h.phone.enqueue(Outcome.failed("party refused electronic service"), Outcome.no_answer())
        h.carrier.enqueue(Outcome.signed(), Outcome.signed())
        ids = [
            await h.client.submit(make_request(make_party(f"P{i}", consent=False, eservice="acct"))) for i in range(2)
        ]
        await h.client.run_until_idle()
        for task_id in ids:
            status = h.client.status(task_id)
            assert status.method is ServiceMethod.POSTAL
            assert "no consent" in (status.fallback_reason or "")
            assert {d.kind for d in status.dispatches} == {ChannelKind.PHONE, ChannelKind.PRINT}
            assert h.sms.history == []
            assert h.eservice.history == []
        await h.aclose()

    run(main())


def test_a_task_without_consent_is_never_served_electronically() -> None:
    """Whatever the providers do, no consent means no e-channel is used (CPL Art. 90)."""

    async def main() -> None:
        policy = PolicyConfig(seek_consent_by_phone=False)
        h = harness(policy=policy)
        for channel in h.channels:
            channel.default = Outcome.delivered()
        h.carrier.default = Outcome.signed()
        ids = [
            await h.client.submit(
                make_request(make_party(f"N{i}", consent=False, eservice="a", email="x@y.cn", wechat="wx1"))
            )
            for i in range(5)
        ]
        await h.client.run_until_idle()
        assert {h.client.status(t).method for t in ids} == {ServiceMethod.POSTAL}
        assert all(ch.history == [] for ch in h.channels)
        await h.aclose()

    run(main())


@pytest.mark.parametrize("limit", [1, 3])
def test_a_step_sends_concurrently_up_to_the_channel_limit(limit: int) -> None:
    """One step's sends on a channel run at once, up to ``channel_concurrency`` in flight and never more;
    a second channel's sends run beside them under their own limit."""
    from delivery_sdk import AsyncDeliveryClient, SQLiteStore
    from delivery_sdk.testing import VirtualClock

    in_flight: dict[str, int] = {"sms": 0, "email": 0}
    peak: dict[str, int] = {"sms": 0, "email": 0}
    both = [False]

    def handler_for(name: str) -> Any:
        async def handler(dispatch: Dispatch) -> SendResult:
            in_flight[name] += 1
            peak[name] = max(peak[name], in_flight[name])
            both[0] = both[0] or all(in_flight.values())
            await asyncio.sleep(0.005)  # a provider that takes real time to answer
            in_flight[name] -= 1
            return SendResult(accepted=True, provider_ref=f"{name}-{dispatch.dispatch_id}")

        return handler

    async def main() -> None:
        sms = MockChannel(handler_for("sms"), name="sms", kind=ChannelKind.SMS)
        email = MockChannel(handler_for("email"), name="email", kind=ChannelKind.EMAIL)
        client = AsyncDeliveryClient(
            SQLiteStore(),
            plugins=[channels_plugin(sms, email)],
            clock=VirtualClock(),
            load_entry_points=False,
            config=EngineConfig(batch_size=64, channel_concurrency=limit),
        )
        requests = [
            make_request(
                make_party(f"P{i}", email="p@example.cn"),
                client_key=f"k{i}",
                channels=[ChannelKind.SMS if i % 2 else ChannelKind.EMAIL],
            )
            for i in range(12)
        ]
        await client.submit_many(requests)
        await client.engine.step()
        assert (len(sms.sent), len(email.sent)) == (6, 6)
        assert peak == {"sms": limit, "email": limit}  # concurrent, and bounded per channel
        assert both[0]  # the two channels' queues ran at the same time
        await client.aclose()
        client.store.close()

    run(main())


@pytest.mark.parametrize("with_sink", [True, False])
def test_filing_waits_for_a_committed_service_only_when_a_case_file_sink_listens(with_sink: bool) -> None:
    """A case-file sink gets only a service that is committed, so the filing is a commit of its own; with
    no sink nothing leaves the engine, and the filing commits with the service."""
    from delivery_sdk import AsyncDeliveryClient, SQLiteStore
    from delivery_sdk.testing import FakeChannel, VirtualClock

    async def main() -> None:
        clock = VirtualClock()
        sms = FakeChannel("sms", ChannelKind.SMS, clock=clock, default=Outcome.delivered())
        sink = RecordingSink()
        store = SQLiteStore()
        client = AsyncDeliveryClient(
            store,
            plugins=[channels_plugin(sms), *([sink] if with_sink else [])],
            clock=clock,
            load_entry_points=False,
        )
        task_id = await client.submit(make_request(make_party()))
        before = store.transactions
        await client.engine.step()
        assert client.status(task_id).state is TaskState.FILED
        kinds = types_of(store, task_id)
        assert kinds[-2:] == ["service.served", "service.filed"]
        # the intent, then the send's results (+ the filing with no sink), then the filing after the sink
        assert store.transactions - before == (3 if with_sink else 2)
        assert len(sink.filed) == (1 if with_sink else 0)
        await client.aclose()
        store.close()

    run(main())


def types_of(store: Any, task_id: str) -> list[str]:
    return [s.event.TYPE for s in store.load_events([task_id])[task_id]]
