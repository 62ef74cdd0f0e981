"""Every hook in :mod:`delivery_sdk.hookspecs`, exercised through a PluginHost or a Harness.

``tests/test_docs.py`` requires a test here (or elsewhere in ``tests/``) whose name contains each hook's
name without the ``delivery_`` prefix, e.g. ``test_register_channels_...``. Also: the environment
switches (``DELIVERY_SDK_PLUGINS``, ``DELIVERY_SDK_BLOCK_PLUGINS``, ``DELIVERY_SDK_TRACE_PLUGINS``) and the
check that a misspelt hook fails at registration.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import attrs
import pytest

from delivery_sdk import (
    AddressCandidate,
    AsyncDeliveryClient,
    ChannelKind,
    Contact,
    ContactKind,
    EvidenceBatch,
    Party,
    PluginError,
    PluginHost,
    PolicyConfig,
    PrintCentreInfo,
    PrintJob,
    RouteDecision,
    ServiceMethod,
    ServiceRecord,
    SQLiteStore,
    StoredEvent,
    TaskState,
    VirtualClock,
    hookimpl,
)
from delivery_sdk.events import AddressUpdated, Event, Filed, PrintRouted, Served
from delivery_sdk.plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP
from delivery_sdk.testing import (
    FakeAddressSource,
    FakeCarrier,
    FakeChannel,
    FakePrintCentre,
    Harness,
    Outcome,
    RecordingSink,
    channels_plugin,
    hubei_centres,
    make_party,
    make_request,
    print_centres_plugin,
)

E = TypeVar("E", bound=Event)
NO_ENV: dict[str, str] = {}
WUHAN_CODE = "420106"  # make_party's default address: 湖北省武汉市武昌区中北路1号
YICHANG = "湖北省宜昌市夷陵区小溪塔街道发展大道57号"
HUANGGANG = "湖北省黄冈市黄州区东门路3号"


def _host(*plugins: object, environ: dict[str, str] | None = None) -> PluginHost:
    return PluginHost(plugins, load_entry_points=False, environ=NO_ENV if environ is None else environ)


def _centre(code: str, *, up: bool = True, neighbours: Sequence[str] = ()) -> FakePrintCentre:
    return FakePrintCentre(
        PrintCentreInfo(
            centre_id=f"PC-{code}",
            name=f"centre {code}",
            route_keys=frozenset({code}),
            neighbours=tuple(f"PC-{n}" for n in neighbours),
            up=up,
        )
    )


def _job(division_code: str | None = WUHAN_CODE, exclude: tuple[str, ...] = ()) -> PrintJob:
    request = make_request()
    return PrintJob(
        task_id="T1",
        case=request.case,
        address=Contact(kind=ContactKind.POSTAL, value="湖北省某地某路1号", division_code=division_code),
        documents=request.documents,
        round=1,
        exclude=exclude,
    )


def _postal_only_party(party_id: str = "P-post", **kwargs: object) -> Party:
    """A party without consent to e-service: the task falls back to post at once."""
    return make_party(party_id, mobile=None, consent=False, **kwargs)  # type: ignore[arg-type]


def _types(h: Harness, task_id: str) -> list[str]:
    return [e.event.TYPE for e in h.client.timeline(task_id)]


def _events_of(h: Harness, task_id: str, cls: type[E]) -> list[E]:
    return [e.event for e in h.client.timeline(task_id) if isinstance(e.event, cls)]


def _all_events(h: Harness) -> list[StoredEvent]:
    return h.store.events_after(0, 100_000)


# ---------------------------------------------------------------------------------------------------
# delivery_register_channels
# ---------------------------------------------------------------------------------------------------


def test_register_channels_adapters_are_found_by_name_and_kind() -> None:
    sms = FakeChannel("sms-a", ChannelKind.SMS)
    mail = FakeChannel("mail-a", ChannelKind.EMAIL)
    host = _host(channels_plugin(sms, mail))
    assert host.channels.names() == ["sms-a", "mail-a"]
    assert host.channels.get("mail-a") is mail
    assert host.channels.of_kind(ChannelKind.SMS) == [sms]


def test_register_channels_duplicate_name_is_a_plugin_error() -> None:
    host = _host(channels_plugin(FakeChannel("sms")), channels_plugin(FakeChannel("sms")))
    with pytest.raises(PluginError, match=r"channel 'sms' is registered twice"):
        _ = host.channels


def test_register_channels_refuses_print_adapters_and_non_adapters() -> None:
    with pytest.raises(PluginError, match="delivery_register_print_centres"):
        _ = _host(channels_plugin(_centre("420100"))).channels

    class NotAnAdapter:
        name = "broken"
        kind = ChannelKind.SMS

    with pytest.raises(PluginError, match="has no 'send'"):
        _ = _host(channels_plugin(NotAnAdapter())).channels  # type: ignore[arg-type]


def test_register_channels_a_later_plugin_wins_the_kind() -> None:
    """pluggy asks the most recently registered plugin first, and the engine uses the first adapter
    registered of each kind: a plugin passed to the client beats entry points and earlier plugins."""
    h = Harness(extra_plugins=[channels_plugin(FakeChannel("vendor-sms", ChannelKind.SMS))])
    try:
        assert h.client.engine.channel_kinds[ChannelKind.SMS] == "vendor-sms"
        assert h.client.engine.channel_kinds[ChannelKind.WECHAT] == "fake-wechat"
        assert {"vendor-sms", "fake-sms"} <= set(h.client.host.channels.names())
    finally:
        asyncio.run(h.aclose())


# ---------------------------------------------------------------------------------------------------
# delivery_register_print_centres
# ---------------------------------------------------------------------------------------------------


def test_register_print_centres_are_listed_with_their_infos() -> None:
    wuhan, xiaogan = _centre("420100", neighbours=("420900",)), _centre("420900")
    host = _host(print_centres_plugin(wuhan, xiaogan))
    assert [i.centre_id for i in host.print_centres.infos()] == ["PC-420100", "PC-420900"]
    assert host.print_centres.adapter("PC-420900") is xiaogan
    assert "PC-420100" in host.print_centres
    assert len(host.print_centres) == 2


def test_register_print_centres_duplicate_id_is_a_plugin_error() -> None:
    host = _host(print_centres_plugin(_centre("420100")), print_centres_plugin(_centre("420100")))
    with pytest.raises(PluginError, match=r"print centre 'PC-420100' is registered twice"):
        _ = host.print_centres


def test_register_print_centres_wrong_kind_is_a_plugin_error() -> None:
    info = PrintCentreInfo(centre_id="PC-X", name="x", route_keys=frozenset({"420100"}))

    class SmsAsCentre:
        @hookimpl
        def delivery_register_print_centres(self, register: object) -> None:
            register(info, FakeChannel("not-a-printer", ChannelKind.SMS))  # type: ignore[operator]

    with pytest.raises(PluginError, match=r"must have kind ChannelKind\.PRINT"):
        _ = _host(SmsAsCentre()).print_centres

    class NoInfo:
        @hookimpl
        def delivery_register_print_centres(self, register: object) -> None:
            register({"centre_id": "PC-X"}, _centre("420100"))  # type: ignore[operator]

    with pytest.raises(PluginError, match="info must be a PrintCentreInfo"):
        _ = _host(NoInfo()).print_centres


# ---------------------------------------------------------------------------------------------------
# delivery_address_candidates
# ---------------------------------------------------------------------------------------------------


def _candidate(value: str, code: str, source: str, confidence: float) -> AddressCandidate:
    return AddressCandidate(
        contact=Contact(kind=ContactKind.POSTAL, value=value, division_code=code), source=source, confidence=confidence
    )


def test_address_candidates_are_merged_from_every_plugin() -> None:
    party = _postal_only_party("P-merge")
    registry = FakeAddressSource({"P-merge": [_candidate(YICHANG, "420506", "household_registry", 0.8)]})
    operator = FakeAddressSource({"P-merge": [_candidate(HUANGGANG, "421102", "operator", 0.7)]})
    host = _host(registry, operator)
    merged = host.address_candidates(party, [])
    # both plugins plus the built-in that offers the request's own postal address
    assert sorted((c.source, c.contact.value) for c in merged) == sorted(
        [
            ("household_registry", YICHANG),
            ("operator", HUANGGANG),
            ("own_filings", "湖北省武汉市武昌区中北路1号"),
        ]
    )
    assert registry.calls == ["P-merge"]
    assert operator.calls == ["P-merge"]


def test_address_candidates_of_the_wrong_type_are_a_plugin_error() -> None:
    class Sloppy:
        @hookimpl
        def delivery_address_candidates(self, party: Party, known: Sequence[Contact]) -> list[str]:
            return ["湖北省武汉市某路"]

    with pytest.raises(PluginError, match="return AddressCandidate objects"):
        _host(Sloppy()).address_candidates(_postal_only_party(), [])


def test_address_candidates_engine_picks_by_spc_order_after_a_return() -> None:
    """Mail came back: the candidates of two sources are merged and the SPC 2017 Opinion order (contract
    before operator data) beats a higher confidence."""

    async def scenario() -> None:
        contract = FakeAddressSource({"P-post": [_candidate(YICHANG, "420506", "contract", 0.4)]})
        h = Harness(extra_plugins=[contract])
        h.addresses.candidates["P-post"] = [_candidate(HUANGGANG, "421102", "operator", 0.95)]
        h.carrier.enqueue(Outcome.returned("address_wrong"), Outcome.signed())
        task_id = await h.client.submit(make_request(_postal_only_party()))
        await h.client.run_until_idle()
        [update] = _events_of(h, task_id, AddressUpdated)
        assert (update.source, update.contact.value) == ("contract", YICHANG)
        routed = [e.centre_id for e in _events_of(h, task_id, PrintRouted)]
        assert routed == ["PC-420100", "PC-420500"]
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.POSTAL
        assert contract.calls == ["P-post"]
        assert h.addresses.calls == ["P-post"]
        await h.aclose()

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------------
# delivery_route_print_job (firstresult)
# ---------------------------------------------------------------------------------------------------


class VendorRouter:
    """A vendor's router: sends everything to one centre, or declines (None) when told to."""

    def __init__(self, centre_id: str | None) -> None:
        self.centre_id = centre_id
        self.jobs: list[PrintJob] = []

    @hookimpl
    def delivery_route_print_job(self, job: PrintJob, centres: Sequence[PrintCentreInfo]) -> RouteDecision | None:
        self.jobs.append(job)
        if self.centre_id is None:
            return None
        return RouteDecision(centre_id=self.centre_id, reason="vendor capacity plan")


def test_route_print_job_builtin_routes_on_the_division_code() -> None:
    host = _host(print_centres_plugin(_centre("420100"), _centre("429004")))
    assert host.route_print_job(_job("420106")) == RouteDecision(centre_id="PC-420100", reason="route key 420100")
    # province-administered units route on the whole code
    assert host.route_print_job(_job("429004")) == RouteDecision(centre_id="PC-429004", reason="route key 429004")


def test_route_print_job_vendor_router_overrides_the_builtin() -> None:
    async def scenario() -> None:
        vendor = VendorRouter("PC-421000")
        h = Harness(extra_plugins=[vendor])
        h.carrier.enqueue(Outcome.signed())
        task_id = await h.client.submit(make_request(_postal_only_party()))
        await h.client.run_until_idle()
        [routed] = _events_of(h, task_id, PrintRouted)
        assert routed == PrintRouted(
            task_id=task_id, at=routed.at, centre_id="PC-421000", reason="vendor capacity plan"
        )
        assert [j.task_id for j in vendor.jobs] == [task_id]
        assert [d.task_id for d in h.centre("421000").jobs] == [task_id]
        assert h.centre("420100").jobs == []
        assert h.client.status(task_id).state is TaskState.FILED
        await h.aclose()

    asyncio.run(scenario())


def test_route_print_job_a_vendor_returning_none_defers_to_the_builtin() -> None:
    vendor = VendorRouter(None)
    host = _host(vendor, print_centres_plugin(_centre("420100")))
    assert host.route_print_job(_job()) == RouteDecision(centre_id="PC-420100", reason="route key 420100")
    assert len(vendor.jobs) == 1


def test_route_print_job_builtin_fails_over_to_a_neighbour_when_a_centre_is_down() -> None:
    wuhan = _centre("420100", up=False, neighbours=("420900", "420700"))
    host = _host(print_centres_plugin(wuhan, _centre("420900", up=False), _centre("420700")))
    decision = host.route_print_job(_job())
    assert decision == RouteDecision(centre_id="PC-420700", reason="route key 420100: PC-420100 down, failover")
    # a centre that refused this job is skipped like a centre that is down
    up = _host(print_centres_plugin(_centre("420100", neighbours=("420900",)), _centre("420900")))
    refused = up.route_print_job(_job(exclude=("PC-420100",)))
    assert refused is not None
    assert refused.centre_id == "PC-420900"
    all_down = _host(
        print_centres_plugin(_centre("420100", up=False, neighbours=("420900",)), _centre("420900", up=False))
    )
    assert all_down.route_print_job(_job()) is None


def test_route_print_job_failover_through_the_engine() -> None:
    async def scenario() -> None:
        h = Harness()
        wuhan = h.centre("420100")
        wuhan.info = attrs.evolve(wuhan.info, up=False)  # before the first use: registries are built lazily
        h.carrier.enqueue(Outcome.signed())
        task_id = await h.client.submit(make_request(_postal_only_party()))
        await h.client.run_until_idle()
        [routed] = _events_of(h, task_id, PrintRouted)
        assert routed.centre_id == "PC-420900"
        assert "PC-420100 down, failover" in routed.reason
        assert wuhan.jobs == []
        assert h.client.status(task_id).state is TaskState.FILED
        await h.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("division_code", "reason"),
    [
        ("110105", "no print centre serves division 110105"),  # Beijing: no Hubei centre
        ("429000", "no print centre serves division 429000"),  # a statistics artefact, never routed
        # no code, and the resolver cannot place the text: a person chooses, nothing is guessed
        (None, "address is unresolved: choose its division (candidates: none)"),
    ],
)
def test_route_print_job_nobody_chooses_so_the_task_needs_attention(division_code: str | None, reason: str) -> None:
    async def scenario() -> None:
        h = Harness()
        party = _postal_only_party(address="某省某市某路1号", division_code=division_code)
        task_id = await h.client.submit(make_request(party))
        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason == reason
        assert _types(h, task_id) == [
            "task.created",
            "service.fell_back_to_post",
            "task.needs_attention",
        ]
        assert all(c.jobs == [] for c in h.centres)
        await h.aclose()

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------------
# delivery_record_evidence
# ---------------------------------------------------------------------------------------------------


class BatchSink:
    """Keeps the batches as they came, to check commit order across batches."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[EvidenceBatch] = []
        self.fail = fail

    @hookimpl
    def delivery_record_evidence(self, batch: EvidenceBatch) -> None:
        self.batches.append(batch)
        if self.fail:
            raise ConnectionError("chain node unreachable (scripted)")


async def _electronic_and_postal(h: Harness) -> list[str]:
    h.sms.enqueue(Outcome.failed("no such number"))
    h.wechat.enqueue(Outcome.delivered())
    h.carrier.enqueue(Outcome.signed())
    electronic = await h.client.submit(make_request(make_party("P-e", wechat="wx_openid_1")))
    postal = await h.client.submit(make_request(_postal_only_party()))
    await h.client.run_until_idle()
    return [electronic, postal]


def test_record_evidence_every_committed_event_reaches_the_sink_in_seq_order() -> None:
    async def scenario() -> None:
        batches = BatchSink()
        h = Harness(extra_plugins=[batches])
        task_ids = await _electronic_and_postal(h)
        stored = _all_events(h)
        assert len(stored) > 15
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
        assert h.sink.evidence == stored
        seqs = [e.seq for b in batches.batches for e in b.events]
        assert seqs == list(range(1, len(stored) + 1))
        assert len(batches.batches) > 1  # many commits, each its own batch, in commit order
        assert {h.client.status(t).state for t in task_ids} == {TaskState.FILED}
        await h.aclose()

    asyncio.run(scenario())


def test_record_evidence_a_failing_sink_never_undoes_the_commit(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        broken = BatchSink(fail=True)
        h = Harness(extra_plugins=[broken])
        task_ids = await _electronic_and_postal(h)
        assert {h.client.status(t).state for t in task_ids} == {TaskState.FILED}
        stored = _all_events(h)
        assert [e.seq for b in broken.batches for e in b.events] == [e.seq for e in stored]
        # the failing sink (registered last, so called first) does not keep the others from the facts
        assert [e.seq for e in h.sink.evidence] == [e.seq for e in stored]
        await h.aclose()

    with caplog.at_level(logging.ERROR, logger="delivery_sdk.plugins"):
        asyncio.run(scenario())
    assert any("failed in delivery_record_evidence" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------------
# delivery_file_service_record
# ---------------------------------------------------------------------------------------------------


def test_file_service_record_is_called_once_per_served_task() -> None:
    async def scenario() -> None:
        h = Harness()
        task_ids = await _electronic_and_postal(h)
        assert h.sink.filing_calls == 2
        assert sorted(h.sink.filed) == sorted(f"{t}:proof" for t in task_ids)
        electronic = h.sink.filed[f"{task_ids[0]}:proof"]
        assert isinstance(electronic, ServiceRecord)
        assert electronic.method is ServiceMethod.ELECTRONIC
        assert electronic.timeline[-1].event.TYPE == "service.served"
        assert h.sink.filed[f"{task_ids[1]}:proof"].method is ServiceMethod.POSTAL
        for task_id in task_ids:
            [filed] = _events_of(h, task_id, Filed)
            assert filed.filed_by == (f"casefile:{task_id}:proof",)
        h.clock.advance(86_400 * 30)
        await h.client.run_until_idle()
        assert h.sink.filing_calls == 2
        await h.aclose()

    asyncio.run(scenario())


def test_file_service_record_failing_sink_leaves_the_task_served_and_is_retried() -> None:
    async def scenario() -> None:
        flaky = RecordingSink(fail_filing=1)
        h = Harness(extra_plugins=[flaky])
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request())
        start = h.clock.now()
        await h.client.run_until_idle(until=start)
        status = h.client.status(task_id)
        assert status.state is TaskState.SERVED
        assert status.record_id is None
        assert flaky.filing_calls == 1
        assert flaky.filed == {}

        await h.client.run_until_idle()
        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.record_id == f"{task_id}:proof"
        assert flaky.filing_calls == 2
        assert list(flaky.filed) == [f"{task_id}:proof"]
        assert list(h.sink.filed) == [f"{task_id}:proof"]  # a sink called again for a record files it once
        [served] = _events_of(h, task_id, Served)
        [filed] = _events_of(h, task_id, Filed)
        assert filed.at - served.at == PolicyConfig().retry_after_error
        assert filed.filed_by == (f"casefile:{task_id}:proof",) * 2
        await h.aclose()

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------------
# delivery_task_event
# ---------------------------------------------------------------------------------------------------


def test_task_event_observer_sees_every_event_in_order() -> None:
    async def scenario() -> None:
        h = Harness()
        task_ids = await _electronic_and_postal(h)
        stored = _all_events(h)
        assert h.sink.observed == stored
        for task_id in task_ids:
            mine = [e.task_seq for e in h.sink.observed if e.event.task_id == task_id]
            assert mine == list(range(1, len(mine) + 1))
        await h.aclose()

    asyncio.run(scenario())


def test_task_event_a_failing_observer_never_breaks_the_engine(caplog: pytest.LogCaptureFixture) -> None:
    class Grumpy:
        calls = 0

        @hookimpl
        def delivery_task_event(self, event: StoredEvent) -> None:
            Grumpy.calls += 1
            raise RuntimeError("observer bug")

    async def scenario() -> None:
        h = Harness(extra_plugins=[Grumpy()])
        h.sms.enqueue(Outcome.delivered())
        task_id = await h.client.submit(make_request())
        await h.client.run_until_idle()
        assert h.client.status(task_id).state is TaskState.FILED
        assert Grumpy.calls == len(_all_events(h))
        assert len(h.sink.observed) == Grumpy.calls  # the other observer saw every event all the same
        await h.aclose()

    with caplog.at_level(logging.ERROR, logger="delivery_sdk.plugins"):
        asyncio.run(scenario())
    assert any("failed in delivery_task_event" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------------
# Environment switches and entry points
# ---------------------------------------------------------------------------------------------------


def _fake_distribution(root: Path, dist: str, entry_point: str, module: str, source: str) -> None:
    """A minimal installed distribution on ``root``: one module and one ``delivery_sdk`` entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point} = {module}\n", encoding="utf-8")


@pytest.fixture
def fake_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    module = "delivery_test_ep_wechat"
    _fake_distribution(
        tmp_path,
        "delivery_test_ep_wechat",
        "test-ep-wechat",
        module,
        """
        from delivery_sdk import ChannelKind, hookimpl
        from delivery_sdk.testing import FakeChannel

        @hookimpl
        def delivery_register_channels(register):
            register(FakeChannel("ep-wechat", ChannelKind.WECHAT))
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "test-ep-wechat"
    sys.modules.pop(module, None)


def _entry_point_plugins(host: PluginHost) -> set[str]:
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return names & set(host.plugin_names())


def test_entry_points_are_loaded_by_default(fake_entry_point: str) -> None:
    host = PluginHost(environ=NO_ENV)
    assert fake_entry_point in _entry_point_plugins(host)
    assert "ep-wechat" in host.channels.names()
    assert set(BUILTIN_PLUGINS) <= set(host.plugin_names())


def test_env_plugins_none_loads_no_entry_point(fake_entry_point: str) -> None:
    host = PluginHost(environ={"DELIVERY_SDK_PLUGINS": "none"})
    assert _entry_point_plugins(host) == set()
    assert "ep-wechat" not in host.channels.names()
    assert set(BUILTIN_PLUGINS) <= set(host.plugin_names())  # built-ins are not entry points


def test_env_plugins_lists_the_only_entry_points_to_load(fake_entry_point: str) -> None:
    host = PluginHost(environ={"DELIVERY_SDK_PLUGINS": f" {fake_entry_point} , "})
    assert _entry_point_plugins(host) == {fake_entry_point}
    assert PluginHost(environ={"DELIVERY_SDK_PLUGINS": "someone-else"}).channels.names() == []


def test_env_block_plugins_blocks_an_entry_point(fake_entry_point: str) -> None:
    host = PluginHost(environ={"DELIVERY_SDK_BLOCK_PLUGINS": f"{fake_entry_point},other"})
    assert fake_entry_point not in host.plugin_names()
    assert "ep-wechat" not in host.channels.names()


def test_env_block_plugins_blocks_a_builtin_by_name() -> None:
    centres = print_centres_plugin(_centre("420100"))
    assert _host(centres).route_print_job(_job()) is not None
    blocked = _host(
        print_centres_plugin(_centre("420100")),
        environ={"DELIVERY_SDK_BLOCK_PLUGINS": "delivery_sdk.builtins.router"},
    )
    assert "delivery_sdk.builtins.router" not in blocked.plugin_names()
    assert "delivery_sdk.builtins.request_addresses" in blocked.plugin_names()
    assert blocked.route_print_job(_job()) is None


def test_env_block_plugins_builtin_router_leaves_postal_tasks_to_a_person() -> None:
    async def scenario() -> None:
        clock = VirtualClock()
        carrier = FakeCarrier(clock=clock)
        client = AsyncDeliveryClient(
            SQLiteStore(":memory:"),
            plugins=[channels_plugin(carrier), print_centres_plugin(*hubei_centres(clock))],
            clock=clock,
            load_entry_points=False,
            environ={"DELIVERY_SDK_BLOCK_PLUGINS": "delivery_sdk.builtins.router"},
        )
        task_id = await client.submit(make_request(_postal_only_party()))
        await client.run_until_idle()
        status = client.status(task_id)
        assert status.state is TaskState.NEEDS_ATTENTION
        assert status.attention_reason == "no print centre serves division 420106"
        await client.aclose()

    asyncio.run(scenario())


def test_env_trace_plugins_logs_hook_calls(caplog: pytest.LogCaptureFixture) -> None:
    sms = FakeChannel("sms-a", ChannelKind.SMS)
    with caplog.at_level(logging.DEBUG, logger="delivery_sdk.plugins"):
        quiet = _host(channels_plugin(sms))
        _ = quiet.channels
        assert caplog.records == []
        traced = _host(channels_plugin(sms), environ={"DELIVERY_SDK_TRACE_PLUGINS": "1"})
        _ = traced.channels
        traced.route_print_job(_job())
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("hook delivery_register_channels -> [") for m in messages)
    assert "hook delivery_register_channels <- ok" in messages
    assert any(m.startswith("hook delivery_route_print_job -> [") for m in messages)
    assert "hook delivery_route_print_job <- ok" in messages
    assert all(r.name == "delivery_sdk.plugins" and r.levelno == logging.DEBUG for r in caplog.records)


# ---------------------------------------------------------------------------------------------------
# check_pending: a misspelt hook fails loudly at registration
# ---------------------------------------------------------------------------------------------------


class Misspelt:
    @hookimpl
    def delivery_register_chanels(self, register: object) -> None:  # sic: one "n"
        raise AssertionError("never called")


def test_check_pending_misspelt_hook_fails_when_the_host_is_built() -> None:
    with pytest.raises(PluginError, match="delivery_register_chanels"):
        _host(Misspelt())


def test_check_pending_misspelt_hook_fails_when_a_plugin_is_added_later() -> None:
    host = _host()
    with pytest.raises(PluginError, match="delivery_register_chanels"):
        host.register(Misspelt())


def test_check_pending_wrong_argument_name_fails_at_registration() -> None:
    class WrongArgument:
        @hookimpl
        def delivery_register_channels(self, registry: object) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError, match="registry"):
        _host(WrongArgument())


def test_check_pending_misspelt_hook_in_an_entry_point_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "delivery_test_ep_misspelt"
    _fake_distribution(
        tmp_path,
        "delivery_test_ep_misspelt",
        "test-ep-misspelt",
        module,
        """
        from delivery_sdk import hookimpl

        @hookimpl
        def delivery_task_evnt(event):
            pass
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(PluginError, match="delivery_task_evnt"):
            PluginHost(environ=NO_ENV)
        assert PluginHost(environ={"DELIVERY_SDK_BLOCK_PLUGINS": "test-ep-misspelt"}) is not None
    finally:
        sys.modules.pop(module, None)
