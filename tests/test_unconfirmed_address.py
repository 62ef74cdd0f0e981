"""The service moment at an electronic address the party did not confirm, through the engine (virtual clock).

SPC Online Litigation Rules Art. 31: at an address the party gave or confirmed, service is the arrival in
its system (31(1)); at an address the court verified but the party never named, arrival is not service:
the reply is, and a "read" report is presumed to be (31(2), rebuttable). ``PolicyConfig(require_consent=
False)`` makes the engine serve parties without consent; a staff call's consent confirms the number it
reached, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from delivery_sdk import ChannelKind, DispatchStatus, PolicyConfig, ServiceMethod, TaskState
from delivery_sdk.events import FellBackToPost, Served
from delivery_sdk.law.service import BASIS_ELECTRONIC, BASIS_ELECTRONIC_READ
from delivery_sdk.testing import Harness, Outcome, make_party, make_request

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # the Harness's virtual clock starts here
NO_CONSENT = PolicyConfig(require_consent=False)
OPENID = "wx_openid_found_by_the_court"


def run(scenario: Callable[[Harness], Awaitable[None]], **harness_kwargs: Any) -> None:
    async def main() -> None:
        harness = Harness(start=T0, **harness_kwargs)
        harness.carrier.default = Outcome.signed()
        try:
            await scenario(harness)
            assert harness.unused() == {}
        finally:
            await harness.aclose()

    asyncio.run(main())


def types_of(h: Harness, task_id: str) -> list[str]:
    return [stored.event.TYPE for stored in h.client.timeline(task_id)]


def only(h: Harness, task_id: str, cls: type[object]) -> object:
    [event] = [s.event for s in h.client.timeline(task_id) if isinstance(s.event, cls)]
    return event


def test_delivered_but_never_read_serves_nothing_and_falls_through_to_post() -> None:
    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))  # arrives; nobody ever reads it
        party = make_party(mobile=None, wechat=OPENID, consent=False)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle(until=T0 + timedelta(hours=5))
        status = h.client.status(task_id)
        assert status.state is TaskState.ELECTRONIC  # delivered 5 h ago, yet not served: waiting for the read
        assert status.served_at is None
        assert [(d.kind, d.status) for d in status.dispatches] == [(ChannelKind.WECHAT, DispatchStatus.DELIVERED)]

        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        fallback = only(h, task_id, FellBackToPost)
        assert isinstance(fallback, FellBackToPost)
        assert fallback.at == T0 + timedelta(hours=6)  # the WeChat response window, counted from sending
        assert "Art. 31(2)" in fallback.reason
        assert status.fallback_reason == fallback.reason
        timeline = types_of(h, task_id)
        assert timeline[:4] == ["task.created", "dispatch.queued", "dispatch.sent", "dispatch.delivered"]
        assert "dispatch.timed_out" not in timeline  # the dispatch was delivered: it stays so, serving nothing
        assert timeline.index("service.fell_back_to_post") < timeline.index("service.served")
        served = only(h, task_id, Served)
        assert isinstance(served, Served)
        assert served.method is ServiceMethod.POSTAL
        assert served.dispatch_id != f"{task_id}.1"

    run(scenario, policy=NO_CONSENT)


def test_read_is_the_service_moment() -> None:
    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3), read_after=timedelta(hours=2)))
        party = make_party(mobile=None, wechat=OPENID, consent=False)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()

        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.basis == BASIS_ELECTRONIC_READ
        read_at = T0 + timedelta(minutes=3, hours=2)
        assert status.served_at == read_at  # not the arrival 2 h earlier
        [d] = h.client.task(task_id).dispatches
        assert (d.status, d.delivered_at, d.read_at) == (DispatchStatus.READ, T0 + timedelta(minutes=3), read_at)
        served = only(h, task_id, Served)
        assert isinstance(served, Served)
        assert (served.effective_at, served.basis, served.dispatch_id) == (
            read_at,
            BASIS_ELECTRONIC_READ,
            d.dispatch_id,
        )
        record = h.sink.filed[f"{task_id}:proof"]
        assert (record.basis, record.effective_at) == (BASIS_ELECTRONIC_READ, read_at)

    run(scenario, policy=NO_CONSENT)


def test_phone_consent_confirms_the_number_called_not_the_other_addresses() -> None:
    """Consent on the call (Rules Art. 30) makes the number it reached a confirmed address: an SMS there
    serves on arrival; the WeChat openid the party never named needed a read, which never came."""

    async def scenario(h: Harness) -> None:
        h.phone.enqueue(Outcome.consented(after=timedelta(minutes=10)))
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=1)))  # delivered, never read
        h.sms.enqueue(Outcome.delivered(after=timedelta(minutes=2)))
        party = make_party(wechat=OPENID, consent=False)
        request = make_request(party, channels=[ChannelKind.WECHAT, ChannelKind.SMS])
        task_id = await h.client.submit(request)
        await h.client.run_until_idle()

        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.basis == BASIS_ELECTRONIC
        kinds = [(d.kind, d.status) for d in status.dispatches]
        assert kinds == [
            (ChannelKind.PHONE, DispatchStatus.DELIVERED),
            (ChannelKind.WECHAT, DispatchStatus.DELIVERED),
            (ChannelKind.SMS, DispatchStatus.DELIVERED),
        ]
        phone, wechat, sms = h.client.task(task_id).dispatches
        assert sms.sent_at is not None
        assert wechat.sent_at is not None
        assert sms.sent_at >= wechat.sent_at + timedelta(hours=6)  # the WeChat window ran out first
        assert status.served_at == sms.delivered_at
        assert h.client.task(task_id).served_dispatch_id == sms.dispatch_id
        assert phone.contact == sms.contact  # the number the call reached

    run(scenario)


def test_consented_address_still_serves_on_arrival() -> None:
    async def scenario(h: Harness) -> None:
        h.wechat.enqueue(Outcome.delivered(after=timedelta(minutes=3)))
        task_id = await h.client.submit(make_request(make_party(mobile=None, wechat=OPENID)))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert (status.method, status.basis) == (ServiceMethod.ELECTRONIC, BASIS_ELECTRONIC)
        assert status.served_at == T0 + timedelta(minutes=3)

    run(scenario)
