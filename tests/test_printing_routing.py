"""Print centres (configuration, TOML, hours) and routing: all 17 Hubei units, failover when a centre is
down or full (the day's count read back from the store, across a restart), and a vendor router taking over."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import attrs
import pytest

from delivery_sdk import (
    AsyncDeliveryClient,
    Contact,
    ContactKind,
    PrintCentreInfo,
    PrintJob,
    RouteDecision,
    TaskState,
    hookimpl,
)
from delivery_sdk.address.hubei import HUBEI_NEIGHBOURS, HUBEI_UNITS
from delivery_sdk.clock import Clock
from delivery_sdk.events import PrintRouted
from delivery_sdk.law.holidays import beijing_date
from delivery_sdk.plugins import PluginHost
from delivery_sdk.printing.centres import (
    CentreConfig,
    CentreConfigError,
    Centres,
    centres_plugin,
    default_centres,
    load_centres,
)
from delivery_sdk.printing.load import RoutedToday
from delivery_sdk.store import SQLiteStore
from delivery_sdk.testing import FakeCarrier, FakePrintCentre, Outcome, VirtualClock, channels_plugin
from delivery_sdk.testing.harness import make_party, make_request

BJ_0900 = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # Tuesday 09:00 in Beijing


def _fake(config: CentreConfig, clock: Clock) -> FakePrintCentre:
    return FakePrintCentre(config.info(), clock=clock)


def _host(centres: Centres, *plugins: object) -> PluginHost:
    return PluginHost([*plugins, centres_plugin(centres, _fake)], load_entry_points=False, environ={})


def _job(code: str, task_id: str = "T1", exclude: tuple[str, ...] = ()) -> PrintJob:
    request = make_request()
    return PrintJob(
        task_id=task_id,
        case=request.case,
        address=Contact(kind=ContactKind.POSTAL, value="湖北省某地某路1号", division_code=code),
        documents=request.documents,
        round=1,
        exclude=exclude,
    )


def _county(unit: str) -> str:
    """A county-level code inside a unit (province-administered units are county-level themselves)."""
    return unit if unit.startswith("4290") else unit[:4] + "02"


# -- configuration ----------------------------------------------------------------------------------


def test_default_centres_are_hubeis_17_units_with_their_neighbours() -> None:
    centres = default_centres()
    assert len(centres) == 17
    assert {c.centre_id for c in centres} == {f"PC-{code}" for code in HUBEI_UNITS}
    for code, name in HUBEI_UNITS.items():
        config = centres.get(f"PC-{code}")
        assert config.route_keys == frozenset({code})
        assert config.name == f"{name}集约送达打印中心"
        assert config.neighbours == tuple(f"PC-{n}" for n in HUBEI_NEIGHBOURS[code])
        assert config.cutoffs == (time(11, 0), time(16, 0))
        assert (config.opens, config.closes, config.days) == (time(8, 30), time(17, 30), "working")
    assert centres.get("PC-420100").daily_capacity == 6000
    assert centres.get("PC-420200").info() == PrintCentreInfo(
        centre_id="PC-420200",
        name="黄石市集约送达打印中心",
        route_keys=frozenset({"420200"}),
        neighbours=("PC-420700", "PC-421100"),
        daily_capacity=2000,
    )


GOOD = """
[defaults]
hours = "09:00-17:00"
cutoffs = ["10:00", "15:00"]

[[centre]]
id = "PC-420100"
name = "武汉"
route_keys = ["420100"]
neighbours = ["PC-420900"]
daily_capacity = 5
endpoint = "http://127.0.0.1:9/centre/"

[[centre]]
id = "PC-420900"
name = "孝感"
route_keys = ["420900"]
up = false
days = "all"
batch_size = 10
"""


def test_load_centres_reads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "centres.toml"
    path.write_text(GOOD, encoding="utf-8")
    centres = load_centres(path)
    wuhan, xiaogan = centres
    assert wuhan == CentreConfig(
        centre_id="PC-420100",
        name="武汉",
        route_keys=frozenset({"420100"}),
        neighbours=("PC-420900",),
        daily_capacity=5,
        opens=time(9),
        closes=time(17),
        cutoffs=(time(10), time(15)),
        endpoint="http://127.0.0.1:9/centre",
    )
    assert (xiaogan.up, xiaogan.days, xiaogan.batch_size, xiaogan.daily_capacity) == (False, "all", 10, 2000)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("daily_capacity = 5", "daily_capacity = -1"),
            "centre 'PC-420100' ([[centre]] entry 1): field 'daily_capacity'",
        ),
        (("daily_capacity = 5", "daily_capacity = 5\ncolour = 1"), "field 'colour' is not a known field"),
        (('route_keys = ["420100"]', 'route_keys = ["420106"]'), "not a route key (its route key is 420100)"),
        (('route_keys = ["420100"]', 'route_keys = ["429000"]'), "429000 is not an administrative division"),
        (('route_keys = ["420900"]', 'route_keys = ["420100"]'), "already served by 'PC-420100'"),
        (('neighbours = ["PC-420900"]', 'neighbours = ["PC-421000"]'), "names 'PC-421000', which is not configured"),
        (('neighbours = ["PC-420900"]', 'neighbours = ["PC-420100"]'), "names the centre itself"),
        (('hours = "09:00-17:00"', 'hours = "17:00-09:00"'), "field 'hours' closes (09:00) before it opens (17:00)"),
        (('hours = "09:00-17:00"', 'hours = "9-5"'), 'must be a 24-hour time "HH:MM"'),
        (('cutoffs = ["10:00", "15:00"]', 'cutoffs = ["10:00", "18:00"]'), "holds 18:00, outside the opening hours"),
        (('days = "all"', 'days = "sundays"'), "field 'days' must be one of ['working', 'weekdays', 'all']"),
        (("up = false", 'up = "no"'), "field 'up' must be true or false"),
        (('id = "PC-420900"', 'id = "PC-420100"'), "field 'id' repeats entry 1"),
        (
            ('endpoint = "http://127.0.0.1:9/centre/"', 'endpoint = "ftp://x"'),
            "field 'endpoint' must be an http(s) URL",
        ),
        (('name = "武汉"', "name = 1"), "field 'name' must be a non-empty string"),
        (('route_keys = ["420900"]\n', ""), "centre 'PC-420900' ([[centre]] entry 2): field 'route_keys' is missing"),
        (("[defaults]", "[defaults]\nname = 'x'"), "[defaults] field 'name' cannot have a default"),
        (("[defaults]", "[default]"), "unknown top-level key 'default'"),
        (("[[centre]]", "[[centre]"), "centres.toml: invalid TOML"),
    ],
)
def test_load_centres_errors_name_the_centre_the_field_and_the_fix(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    old, new = edit
    assert old in GOOD
    path = tmp_path / "centres.toml"
    path.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CentreConfigError) as info:
        load_centres(path)
    assert message in str(info.value)
    assert str(info.value).startswith("centres.toml: ")


def test_load_centres_missing_file_and_no_centres(tmp_path: Path) -> None:
    with pytest.raises(CentreConfigError, match="cannot read the print-centre file"):
        load_centres(tmp_path / "absent.toml")
    empty = tmp_path / "empty.toml"
    empty.write_text("[defaults]\nbatch_size = 3\n", encoding="utf-8")
    with pytest.raises(CentreConfigError, match=r"no \[\[centre\]\] entries"):
        load_centres(empty)


def test_working_hours_follow_the_official_calendar() -> None:
    wuhan = default_centres().get("PC-420100")
    tuesday_0900 = BJ_0900
    assert wuhan.is_open(tuesday_0900)
    assert wuhan.next_opening(tuesday_0900) == tuesday_0900
    # 18:00 Tuesday: closed, opens Wednesday 08:30 Beijing time
    evening = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert not wuhan.is_open(evening)
    assert wuhan.next_opening(evening) == datetime(2026, 3, 4, 0, 30, tzinfo=UTC)
    # 07:00 Saturday 2026-03-07: next opening Monday 08:30
    saturday = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)
    assert wuhan.next_opening(saturday) == datetime(2026, 3, 9, 0, 30, tzinfo=UTC)
    # National Day week 2025 (Oct 1-8 are holidays; Sat Oct 11 is an adjusted working day)
    national_day = datetime(2025, 10, 1, 2, 0, tzinfo=UTC)
    assert not wuhan.is_open(national_day)
    assert wuhan.next_opening(national_day) == datetime(2025, 10, 9, 0, 30, tzinfo=UTC)
    assert wuhan.is_open(datetime(2025, 10, 11, 2, 0, tzinfo=UTC))
    # cut-offs: the next 11:00 or 16:00 on a working day
    assert wuhan.next_cutoff(tuesday_0900) == datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    assert wuhan.next_cutoff(datetime(2026, 3, 3, 3, 1, tzinfo=UTC)) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert wuhan.next_cutoff(saturday) == datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
    every_day = attrs.evolve(wuhan, days="all")
    assert every_day.next_opening(saturday) == datetime(2026, 3, 7, 0, 30, tzinfo=UTC)
    weekdays = attrs.evolve(wuhan, days="weekdays")
    assert weekdays.is_open(national_day)  # Monday-Friday, whatever the holidays


# -- the built-in router ----------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(HUBEI_UNITS))
def test_route_print_job_routes_each_of_the_17_units_to_its_own_centre(unit: str) -> None:
    host = _host(default_centres())
    decision = host.route_print_job(_job(_county(unit)))
    assert decision == RouteDecision(centre_id=f"PC-{unit}", reason=f"route key {unit}")


def test_route_print_job_fails_over_when_the_home_centre_is_down_and_when_it_is_full() -> None:
    host = _host(default_centres())
    host.print_centres.set_up("PC-420100", False)
    down = host.route_print_job(_job("420106"))
    assert down == RouteDecision(centre_id="PC-420900", reason="route key 420100: PC-420100 down, failover")
    host.print_centres.set_up("PC-420100", True)
    full = host.route_print_job(_job("420106"), routed_today={"PC-420100": 6000})
    assert full == RouteDecision(
        centre_id="PC-420900", reason="route key 420100: PC-420100 full (6000/6000 routed today), failover"
    )
    # the first neighbour full too: the second one
    both = host.route_print_job(_job("420106"), routed_today={"PC-420100": 6000, "PC-420900": 2000})
    assert both is not None
    assert both.centre_id == "PC-420700"
    # one below capacity still takes it
    assert host.route_print_job(_job("420106"), routed_today={"PC-420100": 5999}) == RouteDecision(
        centre_id="PC-420100", reason="route key 420100"
    )
    nowhere = host.route_print_job(
        _job("420106"), routed_today={"PC-420100": 6000, "PC-420900": 2000, "PC-420700": 2000}
    )
    assert nowhere is None


def test_route_print_job_set_up_of_an_unknown_centre_is_refused() -> None:
    host = _host(default_centres())
    with pytest.raises(LookupError, match="PC-999999"):
        host.print_centres.set_up("PC-999999", False)


# -- through the engine: the day's count comes from the store -------------------------------------


def _client(store: SQLiteStore, clock: VirtualClock, centres: Centres, *extra: object) -> AsyncDeliveryClient:
    carrier = FakeCarrier(clock=clock, default=Outcome.signed())
    ids = itertools.count(len(store.all_task_ids()) + 1)
    return AsyncDeliveryClient(
        store,
        plugins=[channels_plugin(carrier), centres_plugin(centres, _fake), *extra],
        clock=clock,
        load_entry_points=False,
        id_factory=lambda: f"T{next(ids):04d}",
    )


def _postal(n: int) -> object:
    return make_request(make_party(f"P{n}", mobile=None, consent=False), client_key=f"k{n}")


def _routed(store: SQLiteStore, task_id: str) -> list[PrintRouted]:
    return [s.event for s in store.load_events([task_id])[task_id] if isinstance(s.event, PrintRouted)]


def test_route_print_job_fails_over_when_full_counting_from_the_store_across_a_restart(tmp_path: Path) -> None:
    small = Centres(
        tuple(attrs.evolve(c, daily_capacity=2) if c.centre_id == "PC-420100" else c for c in default_centres())
    )
    path = tmp_path / "tasks.db"
    clock = VirtualClock(BJ_0900)

    async def submit(client: AsyncDeliveryClient, n: int) -> str:
        task_id = await client.submit(_postal(n))  # type: ignore[arg-type]
        await client.run_until_idle(until=clock.now() + timedelta(hours=1))
        return task_id

    async def scenario() -> None:
        store = SQLiteStore(path)
        client = _client(store, clock, small)
        first = [await submit(client, n) for n in (1, 2)]
        third = await submit(client, 3)
        assert [_routed(store, t)[0].centre_id for t in first] == ["PC-420100", "PC-420100"]
        [routed] = _routed(store, third)
        assert routed.centre_id == "PC-420900"
        assert routed.reason == "route key 420100: PC-420100 full (2/2 routed today), failover"
        await client.aclose()
        store.close()

        # a new engine on the same store knows what was routed today (it reads the events back)
        store = SQLiteStore(path)
        client = _client(store, clock, small)
        fourth = await submit(client, 4)
        assert _routed(store, fourth)[0].centre_id == "PC-420900"
        assert client.engine.routed_today.counts(store, clock.now())["PC-420100"] == 2
        # the next Beijing day, Wuhan has room again
        clock.advance_to(datetime(2026, 3, 4, 1, 0, tzinfo=UTC))
        fifth = await submit(client, 5)
        assert _routed(store, fifth)[0].centre_id == "PC-420100"
        await client.run_until_idle()
        # (the fake centres forgot the jobs of the first engine; those after the restart go all the way)
        assert [client.status(t).state for t in (fourth, fifth)] == [TaskState.FILED, TaskState.FILED]
        await client.aclose()
        store.close()

    asyncio.run(scenario())


def test_route_print_job_down_centre_through_the_engine() -> None:
    clock = VirtualClock(BJ_0900)

    async def scenario() -> None:
        store = SQLiteStore(":memory:")
        client = _client(store, clock, default_centres())
        client.engine.host.print_centres.set_up("PC-420100", False)
        task_id = await client.submit(_postal(1))  # type: ignore[arg-type]
        await client.run_until_idle()
        [routed] = _routed(store, task_id)
        assert (routed.centre_id, routed.reason) == ("PC-420900", "route key 420100: PC-420100 down, failover")
        assert client.status(task_id).state is TaskState.FILED
        await client.aclose()

    asyncio.run(scenario())


class OverflowRouter:
    """A vendor's router: everything to Wuhan until it has 1 job today, then to Xiaogan."""

    def __init__(self) -> None:
        self.seen: list[dict[str, int]] = []

    @hookimpl
    def delivery_route_print_job(
        self, job: PrintJob, centres: Sequence[PrintCentreInfo], routed_today: Mapping[str, int]
    ) -> RouteDecision | None:
        self.seen.append(dict(routed_today))
        if routed_today.get("PC-420100", 0) < 1:
            return RouteDecision(centre_id="PC-420100", reason="vendor: Wuhan first")
        return RouteDecision(centre_id="PC-420900", reason="vendor: overflow to Xiaogan")


def test_route_print_job_custom_router_plugin_takes_over() -> None:
    clock = VirtualClock(BJ_0900)
    vendor = OverflowRouter()

    async def scenario() -> None:
        store = SQLiteStore(":memory:")
        client = _client(store, clock, default_centres(), vendor)
        tasks = [await client.submit(_postal(n)) for n in (1, 2)]  # type: ignore[arg-type]
        await client.run_until_idle()
        routed = [_routed(store, t)[0] for t in tasks]
        assert [(r.centre_id, r.reason) for r in routed] == [
            ("PC-420100", "vendor: Wuhan first"),
            ("PC-420900", "vendor: overflow to Xiaogan"),
        ]
        assert vendor.seen == [{}, {"PC-420100": 1}]
        assert all(client.status(t).state is TaskState.FILED for t in tasks)
        await client.aclose()

    asyncio.run(scenario())


# -- the day's count: read incrementally, starting where the day starts ------------------------------


def test_routed_today_reads_only_the_days_events() -> None:
    store = SQLiteStore(":memory:")
    clock = VirtualClock(datetime(2026, 3, 1, 1, 0, tzinfo=UTC))

    async def scenario() -> None:
        client = _client(store, clock, default_centres())
        for n in range(1, 41):  # ten days of four tasks each
            await client.submit(_postal(n))  # type: ignore[arg-type]
            await client.run_until_idle(until=clock.now() + timedelta(hours=1))
            if n % 4 == 0:
                clock.advance_to(clock.now() + timedelta(days=1))
        await client.aclose()

    asyncio.run(scenario())
    everything = store.events_after(0, 100_000)
    routed = [s.event for s in everything if isinstance(s.event, PrintRouted)]
    assert len(routed) == 40
    moment = routed[20].at  # a day in the middle of the log
    day = beijing_date(moment)
    expected = sum(1 for e in routed if beijing_date(e.at) == day)
    assert expected >= 3
    counter = RoutedToday(page=50)
    assert dict(counter.counts(store, moment)) == {"PC-420100": expected}
    total = store.count_events()
    assert counter.reads < 30  # a gallop and a binary search, then today's events: not a scan of all
    assert total > 40 * 8
    # a day with nothing routed, and the same counter reused
    assert dict(RoutedToday().counts(store, datetime(2026, 1, 1, tzinfo=UTC))) == {}
    assert dict(RoutedToday().counts(store, datetime(2027, 1, 1, tzinfo=UTC))) == {}
