"""End to end: the engine with all five real channel plugins against their local servers, 30% transient errors.

SMS, WeChat, e-mail and the e-service platform run against their emulators (real sockets on 127.0.0.1), each
answering 30% of sends with a transient error (503/429 over HTTP, ``451`` over SMTP); the staff-call channel
fails 30% of its calls transiently, before or after it queued the call. Delivery reports come back through
the callback receiver's ASGI app (signed as each provider signs them), some of them twice. A mixed
population runs to the end: every task must end filed, served the right way through the right channel, and
no provider may ever accept the same dispatch twice.

Run after installing the plugins (``pip install -e plugins/delivery-sdk-{sms,wechat,email,eservice,staffcalls}``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from delivery_sdk_email import EmailChannel, MemorySentLog
from delivery_sdk_email.emulator import SmtpEmulator
from delivery_sdk_eservice import SERVICES_PATH, EServiceChannel
from delivery_sdk_eservice.emulator import PlatformEmulator
from delivery_sdk_sms import SEND_PATH as SMS_SEND_PATH
from delivery_sdk_sms.emulator import SmsGatewayEmulator
from delivery_sdk_staffcalls import CallOutcome, StaffCallChannel, StaffCalls
from delivery_sdk_wechat import SEND_PATH as WECHAT_SEND_PATH
from delivery_sdk_wechat.emulator import WeChatEmulator

from delivery_sdk import (
    ChannelKind,
    ConsentMethod,
    Dispatch,
    EngineConfig,
    SendResult,
    ServiceMethod,
    StatusReport,
    SystemClock,
    TaskState,
    TransientChannelError,
)
from delivery_sdk.callbacks import CallbackReceiver, asgi_app
from delivery_sdk.law.service import BASIS_ELECTRONIC, BASIS_ELECTRONIC_READ
from delivery_sdk.retry import set_testing
from delivery_sdk.testing import Harness, Outcome, channels_plugin, make_party, make_request

TRANSIENT = 0.3
PER_GROUP = 5
UNKNOWN_ACCOUNT = "ES-UNKNOWN"
READS = "ES-0002"  # the platform account whose owner opens the documents (the others never do)


class CountingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that notes, for every send, the idempotency key and whether the provider took it."""

    def __init__(self, path: str, key: Callable[[httpx.Request], str], took: Callable[[httpx.Response], bool]):
        self._inner = httpx.AsyncHTTPTransport()
        self._path = path
        self._key = key
        self._took = took
        self.not_taken = 0  # sends the provider did not take (transient errors, refusals)
        self.accepted: collections.Counter[str] = collections.Counter()  # by idempotency key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != self._path:
            return response
        content = await response.aread()
        answer = httpx.Response(response.status_code, headers=response.headers, content=content, request=request)
        if self._took(answer):
            self.accepted[self._key(request)] += 1
        else:
            self.not_taken += 1
        return answer

    async def aclose(self) -> None:
        await self._inner.aclose()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class FlakyStaffCalls(StaffCallChannel):
    """The staff-call channel with 30% transient failures: before queuing, after queuing (the answer is lost),
    and on status calls. ``queued`` counts, per dispatch, the calls that really added a call task."""

    def __init__(self, path: Path, seed: int) -> None:
        super().__init__(path)
        self._random = random.Random(seed)
        self.queued: collections.Counter[str] = collections.Counter()
        self.failures = 0

    def _flaky(self) -> None:
        if self._random.random() < TRANSIENT / 2:
            self.failures += 1
            raise TransientChannelError("staff-call queue: database busy (injected)")

    async def send(self, dispatch: Dispatch) -> SendResult:
        self._flaky()
        if self.queue.enqueue(dispatch, self.clock.now()):
            self.queued[dispatch.dispatch_id] += 1
        self._flaky()  # the queue has it; the answer is lost
        return await super().send(dispatch)

    async def status(self, dispatch: Dispatch) -> StatusReport:
        self._flaky()
        return await super().status(dispatch)


# Who the parties are, and what happens to them. Each group: contacts, consent, and the expected result.
GROUPS: dict[str, dict[str, Any]] = {
    "eservice": {"party": {"eservice": "ES-0001"}, "method": ServiceMethod.ELECTRONIC, "by": ChannelKind.ESERVICE},
    "sms": {"party": {"mobile": "13800138000"}, "method": ServiceMethod.ELECTRONIC, "by": ChannelKind.SMS},
    "wechat": {"party": {"wechat": "o-openid-1"}, "method": ServiceMethod.ELECTRONIC, "by": ChannelKind.WECHAT},
    "email": {"party": {"email": "zs@example.com"}, "method": ServiceMethod.ELECTRONIC, "by": ChannelKind.EMAIL},
    "unknown-account": {
        "party": {"eservice": UNKNOWN_ACCOUNT, "mobile": "13800138001"},
        "method": ServiceMethod.ELECTRONIC,
        "by": ChannelKind.SMS,
    },
    "call-consents": {
        # consent on the call confirms the number called, not the platform account: served when read
        "party": {"eservice": READS, "mobile": "13800138002", "consent": False},
        "call": ["reached_consented"],
        "method": ServiceMethod.ELECTRONIC,
        "by": ChannelKind.ESERVICE,
        "basis": BASIS_ELECTRONIC_READ,
    },
    "call-second-try": {
        "party": {"email": "ls@example.com", "mobile": "13800138003", "consent": False},
        "call": ["no_answer", "reached_consented"],
        "method": ServiceMethod.ELECTRONIC,
        "by": ChannelKind.SMS,  # the policy's order after consent: e-service, SMS, WeChat, e-mail
    },
    "call-refused": {
        "party": {"mobile": "13800138004", "wechat": "o-openid-2", "consent": False},
        "call": ["refused"],
        "method": ServiceMethod.POSTAL,
        "by": ChannelKind.PRINT,
    },
}


@pytest.fixture
def fast_retries() -> Iterator[None]:
    # no backoff, and enough attempts that 30% transient errors rarely exhaust them (when they do, the
    # dispatch stays in doubt and is reconciled through status: that path is part of the test)
    with set_testing(attempts=6):
        yield


def test_all_five_channels_with_transient_errors(tmp_path: Path, fast_retries: None) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    sms_count = CountingTransport(
        SMS_SEND_PATH,
        key=lambda r: r.headers["Idempotency-Key"],
        took=lambda a: a.status_code == 200 and _json(a).get("code") == "OK",
    )
    wechat_count = CountingTransport(
        WECHAT_SEND_PATH,
        key=lambda r: json.loads(r.content)["client_msg_id"],
        took=lambda a: a.status_code == 200 and _json(a).get("errcode") == 0,
    )
    eservice_count = CountingTransport(
        SERVICES_PATH, key=lambda r: r.headers["Idempotency-Key"], took=lambda a: a.is_success
    )
    with (
        SmsGatewayEmulator(transient_rate=TRANSIENT, seed=11) as gateway,
        WeChatEmulator(transient_rate=TRANSIENT, seed=12) as wechat_api,
        PlatformEmulator(transient_rate=TRANSIENT, seed=13) as platform,
        SmtpEmulator(transient_rate=TRANSIENT, seed=14) as mx,
    ):
        platform.unknown_accounts.add(UNKNOWN_ACCOUNT)
        staff = FlakyStaffCalls(tmp_path / "calls.sqlite3", seed=15)
        channels = [
            gateway.channel(transport=sms_count),
            wechat_api.channel(transport=wechat_count, sent_log=tmp_path / "wechat.sqlite3"),
            EServiceChannel(
                platform.url,
                app_key=platform.app_key,
                app_secret=platform.app_secret,
                transport=eservice_count,
                timeout=5.0,
            ),
            EmailChannel(
                mx.host,
                mx.port,
                sender="service@court.example",
                sent_log=MemorySentLog(),
                security="none",
                mode="direct",
                link_template="https://court.example/s/{token}",
                link_secret="link-secret",
                timeout=5.0,
            ),
            staff,
        ]
        # The emulators stamp their reports with the wall clock while the engine runs on a virtual clock that
        # moves hours ahead: a clock skew of two days lets the engine believe them (delivery_sdk.trust).
        h = Harness(
            start=datetime.now(UTC),
            kinds=(),
            extra_plugins=[channels_plugin(*channels)],
            config=EngineConfig(clock_skew=timedelta(days=2)),
        )
        for channel in channels:  # the client's virtual clock stamps what the adapters record
            if hasattr(channel, "clock"):
                channel.clock = h.clock
        h.carrier.default = Outcome.signed()
        client = h.client
        calls = StaffCalls(client)
        # the providers sign their pushes with the wall clock; the engine runs on a virtual one
        receiver = CallbackReceiver(client, clock=SystemClock())
        app = asgi_app(receiver)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://court.test")
        responses: collections.Counter[str] = collections.Counter()

        async def push(channel: str, headers: dict[str, str], body: bytes, query: dict[str, str] | None = None) -> None:
            answer = await http.post(f"/callbacks/{channel}", content=body, headers=headers, params=query)
            assert answer.status_code == 200, (channel, answer.status_code, answer.text)
            for outcome in ("recorded", "duplicate", "late", "unknown_dispatch"):
                responses[outcome] += answer.json()[outcome]

        group_of: dict[str, str] = {}
        for name, group in GROUPS.items():
            for _ in range(PER_GROUP):
                party = make_party(**{"mobile": None, "address": "湖北省武汉市武昌区中北路1号", **group["party"]})
                task_id = await client.submit(make_request(party))
                group_of[task_id] = name
        scripts = {t: list(GROUPS[g].get("call", [])) for t, g in group_of.items()}

        async def providers_report() -> None:
            """Every message a provider accepted reaches its recipient; the report comes back by callback."""
            for out_id, message in list(gateway.messages.items()):
                if not message.reports:
                    headers, body = gateway.deliver(out_id, push=False)
                    await push("sms", headers, body)
                    # gateways retry pushes they think were lost: the same report, signed anew
                    again = gateway.signed_callback([message.reports[-1]])
                    await push("sms", *again)
            for message in list(wechat_api.messages.values()):
                if not message.events:
                    params, body = wechat_api.deliver(message.client_msg_id, push=False)
                    await push("wechat", {}, body, query=params)  # WeChat signs in the URL query
            for service_id, service in list(platform.services.items()):
                if not service["events"]:
                    headers, body = platform.arrive(service_id)
                    await push("eservice", headers, body)
                    if service["request"]["account"] == READS:
                        await push("eservice", *platform.read(service_id))

        def staff_work() -> None:
            while (call := calls.claim("wang")) is not None:
                outcome = scripts[call.task_id].pop(0)
                calls.record(call, CallOutcome(outcome))

        electronic = {TaskState.CREATED.value, TaskState.ELECTRONIC.value}
        for _ in range(60):
            await client.run_until_idle(until=h.clock.now())
            await providers_report()
            staff_work()
            await client.run_until_idle(until=h.clock.now())
            if not any(client.status(t).state.value in electronic for t in group_of):
                break
            h.clock.advance(timedelta(minutes=20))
        await client.run_until_idle()  # the postal tail: print, mail, sign, file

        # -- every task ended in the right state, served the right way, through the right channel
        wrong: list[str] = []
        for task_id, name in group_of.items():
            status = client.status(task_id)
            group = GROUPS[name]
            served_id = client.task(task_id).served_dispatch_id
            served_by = next((d for d in status.dispatches if d.dispatch_id == served_id), None)
            got = (status.state, status.method, served_by.kind if served_by else None)
            if got != (TaskState.FILED, group["method"], group["by"]):
                path = [(d.kind.value, d.status.value) for d in status.dispatches]
                wrong.append(f"{name} {task_id}: {got} {path}")
            if group["method"] is ServiceMethod.ELECTRONIC:
                basis = client.task(task_id).served_basis
                if basis != group.get("basis", BASIS_ELECTRONIC):
                    wrong.append(f"{name} {task_id}: served on the basis {basis!r}")
            if name.startswith("call-"):
                task = client.task(task_id)
                consented = GROUPS[name]["call"][-1] == "reached_consented"
                assert (task.consent is not None and task.consent.method is ConsentMethod.PHONE) == consented
                assert scripts[task_id] == [], f"{task_id}: staff never made every call"
            if name == "unknown-account":
                kinds = [(d.kind, d.status.value) for d in status.dispatches]
                assert kinds == [(ChannelKind.ESERVICE, "failed"), (ChannelKind.SMS, "delivered")], kinds
        assert not wrong, "\n".join(wrong)

        # -- no provider accepted a dispatch twice, and every dispatch it accepted is one the store knows
        sent = collections.defaultdict(set)
        for task_id in group_of:
            for d in client.status(task_id).dispatches:
                assert d.status.value != "queued", f"{d.dispatch_id} is still in doubt"
                sent[d.kind].add(d.dispatch_id)
        for kind, counter in (
            (ChannelKind.SMS, sms_count.accepted),
            (ChannelKind.WECHAT, wechat_count.accepted),
            (ChannelKind.ESERVICE, eservice_count.accepted),
        ):
            twice = [k for k, n in counter.items() if n > 1]
            assert not twice, f"{kind.value}: accepted twice: {twice}"
        assert set(sms_count.accepted) == sent[ChannelKind.SMS]
        assert set(wechat_count.accepted) == sent[ChannelKind.WECHAT]
        assert set(platform.created) <= sent[ChannelKind.ESERVICE]
        assert max(platform.created.values()) == 1
        email_ids = sent[ChannelKind.EMAIL]
        assert email_ids
        assert all(mx.seen(d) == 1 for d in email_ids), {d: mx.seen(d) for d in email_ids}
        phone_ids = sent[ChannelKind.PHONE]
        assert set(staff.queued) == phone_ids
        assert max(staff.queued.values()) == 1

        # -- the transient errors happened, and callbacks were recorded once
        for counter in (sms_count, wechat_count, eservice_count):
            assert counter.not_taken > 0
        assert staff.failures > 0
        assert responses["duplicate"] >= len(sent[ChannelKind.SMS])
        assert responses["unknown_dispatch"] == 0

        await http.aclose()
        await h.aclose()
