"""Several adapters per kind, by choice (issue 19, part 2): the policy's adapter routes (ordered lists,
routing by court and prefecture), failover on transient failure, and an installed adapter nobody chose
never taking traffic. The choice is pure (``delivery_sdk.adapters``), table-tested; the engine sends where
the policy says."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk import (
    BaseChannel,
    ChannelKind,
    ChannelRegistry,
    Contact,
    ContactKind,
    Dispatch,
    DispatchStatus,
    PolicyConfig,
    SendResult,
    SettingsError,
    StatusReport,
    TaskState,
    TransientChannelError,
    ValidationError,
    hookimpl,
)
from delivery_sdk.adapters import (
    FAILED_TRANSIENT,
    AdapterRoute,
    adapter_order,
    adapter_routes,
    failover_adapter,
    first_adapter,
)
from delivery_sdk.events import DispatchFailed, DispatchQueued, TaskCreated
from delivery_sdk.lifecycle import Task, fold
from delivery_sdk.policy import Send, decide
from delivery_sdk.settings import load_settings
from delivery_sdk.testing import FakeChannel, Harness, Outcome, make_party, make_request

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
SMS = ChannelKind.SMS
WUHAN = "武汉市武昌区人民法院"
YICHANG = "宜昌市西陵区人民法院"


def task(
    *,
    court: str = WUHAN,
    division: str | None = "420106",
    sent: Sequence[tuple[str, str | None]] = (),
) -> Task:
    """A task of one SMS-reachable party; ``sent``: SMS dispatches (adapter, failed_by or "" for failed by
    the provider, None for still queued)."""
    party = make_party(address="湖北省某地某路1号" if division else None, division_code=division)
    request = make_request(party, court=court)
    events: list[Any] = [TaskCreated(task_id="T1", at=T0, request=request)]
    for i, (channel, failed_by) in enumerate(sent, start=1):
        contact = Contact(kind=ContactKind.MOBILE, value="13800138000")
        events.append(
            DispatchQueued(task_id="T1", at=T0, dispatch_id=f"T1.{i}", channel=channel, kind=SMS, contact=contact)
        )
        if failed_by is not None:
            events.append(
                DispatchFailed(task_id="T1", at=T0, dispatch_id=f"T1.{i}", reason="down", failed_by=failed_by or None)
            )
    return fold(events)


TWO = {SMS: ("sms-a", "sms-b")}
ROUTES = adapter_routes(
    {
        "sms": [
            {"courts": [YICHANG], "adapters": ["sms-yichang"]},
            {"prefectures": ["4201"], "adapters": ["sms-a", "sms-b"]},
            {"adapters": ["sms-b"]},
        ]
    }
)
AVAILABLE = {SMS: ("sms-a", "sms-b", "sms-yichang", "log")}


@pytest.mark.parametrize(
    ("case", "routes", "available", "kwargs", "order"),
    [
        ("no routes: the host's first adapter alone", {}, TWO, {}, ("sms-a",)),
        ("no routes, one adapter named as a string", {}, {SMS: "sms-a"}, {}, ("sms-a",)),
        ("kind not registered", {}, {}, {}, ()),
        ("ordered list", adapter_routes({"sms": ["sms-b", "sms-a"]}), TWO, {}, ("sms-b", "sms-a")),
        ("route names an adapter not registered", adapter_routes({"sms": ["sms-x", "sms-a"]}), TWO, {}, ("sms-a",)),
        ("by court", ROUTES, AVAILABLE, {"court": YICHANG}, ("sms-yichang",)),
        ("by prefecture", ROUTES, AVAILABLE, {}, ("sms-a", "sms-b")),
        ("neither: the catch-all", ROUTES, AVAILABLE, {"division": "420500"}, ("sms-b",)),
        ("no postal division: the catch-all", ROUTES, AVAILABLE, {"division": None}, ("sms-b",)),
        (
            "no route matches: no adapter",
            adapter_routes({"sms": [{"prefectures": ["4205"], "adapters": ["sms-a"]}]}),
            TWO,
            {},
            (),
        ),
    ],
)
def test_adapter_order(
    case: str,
    routes: Mapping[ChannelKind, tuple[AdapterRoute, ...]],
    available: Mapping[ChannelKind, Any],
    kwargs: dict[str, Any],
    order: tuple[str, ...],
) -> None:
    t = task(**kwargs)
    assert adapter_order(t, SMS, routes, available) == order, case
    assert first_adapter(t, SMS, routes, available) == (order[0] if order else None), case


LIST = adapter_routes({"sms": ["sms-a", "sms-b"]})


@pytest.mark.parametrize(
    ("case", "routes", "sent", "failed", "expected"),
    [
        ("no routes: never", {}, [("sms-a", FAILED_TRANSIENT)], None, None),
        ("transient failure: the next", LIST, [("sms-a", FAILED_TRANSIENT)], None, "sms-b"),
        ("the provider refused: no failover", LIST, [("sms-a", "")], None, None),
        ("still queued: not yet", LIST, [("sms-a", None)], None, None),
        ("both failed: none left", LIST, [("sms-a", FAILED_TRANSIENT), ("sms-b", FAILED_TRANSIENT)], None, None),
        ("nothing sent", LIST, [], None, None),
        ("the engine asks before failing sms-a", LIST, [("sms-a", None)], "sms-a", "sms-b"),
        (
            "the engine asks before failing the last",
            LIST,
            [("sms-a", FAILED_TRANSIENT), ("sms-b", None)],
            "sms-b",
            None,
        ),
    ],
)
def test_failover_adapter(
    case: str,
    routes: Mapping[ChannelKind, tuple[AdapterRoute, ...]],
    sent: list[tuple[str, str | None]],
    failed: str | None,
    expected: str | None,
) -> None:
    assert failover_adapter(task(sent=sent), SMS, routes, TWO, failed=failed) == expected, case


def test_the_policy_fails_over_then_moves_on() -> None:
    config = PolicyConfig(electronic_order=(SMS, ChannelKind.EMAIL), adapters={"sms": ["sms-a", "sms-b"]})
    channels = {SMS: ("sms-a", "sms-b"), ChannelKind.EMAIL: ("smtp",)}
    assert decide(task(), T0, config, channels).actions == (Send(channel="sms-a", kind=SMS),)
    failed = task(sent=[("sms-a", FAILED_TRANSIENT)])
    assert decide(failed, T0, config, channels).actions == (Send(channel="sms-b", kind=SMS),)
    refused = task(sent=[("sms-a", "")])  # a permanent refusal: no failover; the party has no e-mail: post
    assert [type(a).__name__ for a in decide(refused, T0, config, channels).actions] == ["Emit"]


def test_adapter_routes_refuse_bad_configuration_with_what_to_fix() -> None:
    for value, message in [
        ({"sms": []}, "give a list of adapter names or of routes"),
        ({"sms": "sms-a"}, "give a list of adapter names or of routes"),
        ({"sms": ["sms-a", "sms-a"]}, "lists a name twice"),
        ({"telex": ["x"]}, "not a declared channel kind"),
        ({"print": ["PC-420100"]}, "print centres are chosen by the print router"),
        ({"sms": [{"adapters": []}]}, "at least one adapter"),
        ({"sms": [{"prefecture": ["4201"], "adapters": ["a"]}]}, "unknown keys ['prefecture']"),
        ({"sms": [{"prefectures": ["42"], "adapters": ["a"]}]}, "4-digit GB/T 2260 prefecture codes"),
        ({"sms": [{"courts": ["x"]}]}, "needs adapters"),
        ({"sms": [3]}, "a route is a table"),
        ([], "must map a channel kind"),
    ]:
        with pytest.raises(ValidationError) as caught:
            PolicyConfig(adapters=value)  # type: ignore[arg-type]
        assert message in str(caught.value), (value, str(caught.value))


def test_adapter_routes_from_a_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        """
[policy.adapters]
sms = ["sms-primary", "sms-backup"]
email = [
  { prefectures = ["4201"], adapters = ["smtp-wuhan", "smtp-backup"] },
  { adapters = ["smtp-backup"] },
]
""",
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})
    policy = PolicyConfig(**settings.policy)
    assert policy.adapters[SMS] == (AdapterRoute(adapters=("sms-primary", "sms-backup")),)
    assert policy.adapters[ChannelKind.EMAIL][0].prefectures == ("4201",)
    path.write_text('[policy.adapters]\nsms = [{ adapters = ["a"], prefectures = ["wuhan"] }]\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="4-digit GB/T 2260"):
        load_settings(path, environ={})


# -- end to end ------------------------------------------------------------------------------------------


class DownGateway(BaseChannel):
    """An SMS gateway whose every send fails transiently (a 503), and which never received anything."""

    kind = SMS

    def __init__(self, name: str) -> None:
        self.name = name
        self.attempts = 0

    async def send(self, dispatch: Dispatch) -> SendResult:
        self.attempts += 1
        raise TransientChannelError("503 Service Unavailable")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=False)


class Gateways:
    def __init__(self, *adapters: Any) -> None:
        self.adapters = adapters

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        for adapter in self.adapters:
            register(adapter)


def test_two_adapters_of_one_kind_fail_over_under_the_policy(tmp_path: Path) -> None:
    primary = DownGateway("sms-primary")

    async def main() -> None:
        h = Harness(
            policy=PolicyConfig(electronic_order=(SMS,), adapters={"sms": ["sms-primary", "fake-sms"]}),
            kinds={SMS},
            extra_plugins=[Gateways(primary)],
        )
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        first, second = status.dispatches
        assert (first.channel, first.status) == ("sms-primary", DispatchStatus.FAILED)
        assert "retries exhausted" in (first.detail or "")
        assert (second.channel, second.status) == ("fake-sms", DispatchStatus.DELIVERED)
        assert primary.attempts >= 2  # the engine's retries ran before it failed over
        assert h.sms.idempotency_keys == [second.dispatch_id]
        # the evidence log holds both attempts: the failure (by the engine, transient) and the service
        logged = [s.event for s in h.sink.evidence if s.event.task_id == task_id]
        failed = [e for e in logged if isinstance(e, DispatchFailed)]
        assert [(e.dispatch_id, e.failed_by) for e in failed] == [(first.dispatch_id, FAILED_TRANSIENT)]
        queued = [(e.channel, e.kind) for e in logged if isinstance(e, DispatchQueued)]
        assert queued == [("sms-primary", SMS), ("fake-sms", SMS)]
        record = h.sink.filed[f"{task_id}:proof"]
        assert record.dispatch_id == second.dispatch_id
        await h.aclose()

    asyncio.run(main())


class TimedOutGateway(DownGateway):
    """Every send times out, yet the provider got the first one: its status says so."""

    def __init__(self, name: str, *, status_fails: bool = False) -> None:
        super().__init__(name)
        self.status_fails = status_fails

    async def status(self, dispatch: Dispatch) -> StatusReport:
        if self.status_fails:
            raise TransientChannelError("status: 503 Service Unavailable")
        return StatusReport(found=self.attempts > 0, provider_ref="gw-1")


@pytest.mark.parametrize("status_fails", [False, True])
def test_a_send_that_arrived_after_all_is_not_failed_over(status_fails: bool) -> None:
    """Never sent twice: before failing over, the engine asks the first provider whether it has the dispatch;
    only when it has not (or cannot answer) does the backup take it."""
    primary = TimedOutGateway("sms-primary", status_fails=status_fails)

    async def main() -> None:
        h = Harness(
            policy=PolicyConfig(electronic_order=(SMS,), adapters={"sms": ["sms-primary", "fake-sms"]}),
            kinds={SMS},
            extra_plugins=[Gateways(primary)],
        )
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=5))
        dispatches = h.client.status(task_id).dispatches
        if status_fails:
            assert [(d.channel, d.status) for d in dispatches] == [
                ("sms-primary", DispatchStatus.FAILED),
                ("fake-sms", DispatchStatus.DELIVERED),
            ]
        else:
            assert [(d.channel, d.status) for d in dispatches] == [("sms-primary", DispatchStatus.SENT)]
            assert h.sms.idempotency_keys == []
        await h.aclose()

    asyncio.run(main())


def test_without_routes_a_transient_failure_stays_in_doubt_and_no_other_adapter_takes_it() -> None:
    """Two adapters of a kind in the host's order (DELIVERY_SDK_CHANNEL_ORDER, or a reference log plugin
    beside the real one) do not make a backup: only the policy's routes do."""
    primary = DownGateway("sms-primary")
    standby = FakeChannel("log", SMS, default=Outcome.delivered())

    async def main() -> None:
        h = Harness(
            policy=PolicyConfig(electronic_order=(SMS,)), kinds=set(), extra_plugins=[Gateways(primary, standby)]
        )
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=30))
        status = h.client.status(task_id)
        assert [(d.channel, d.status) for d in status.dispatches] == [("sms-primary", DispatchStatus.QUEUED)]
        assert standby.history == []
        await h.aclose()

    asyncio.run(main())


def test_an_installed_adapter_no_route_names_never_takes_traffic() -> None:
    chosen = FakeChannel("sms-chosen", SMS, default=Outcome.delivered())
    installed = FakeChannel("sms-installed", SMS, default=Outcome.delivered())

    async def main() -> None:
        h = Harness(
            policy=PolicyConfig(electronic_order=(SMS,), adapters={"sms": ["sms-chosen"]}),
            kinds=set(),
            extra_plugins=[Gateways(installed, chosen)],
        )
        task_ids = [
            await h.client.submit(make_request(make_party(), case_number=f"(2026)鄂0106民初{i}号")) for i in range(3)
        ]
        await h.client.run_until_idle()
        assert all(h.client.status(t).state is TaskState.FILED for t in task_ids)
        assert len(chosen.history) == 3
        assert installed.history == []
        await h.aclose()

    asyncio.run(main())
