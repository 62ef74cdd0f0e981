"""Print/mail centres: their configuration (capacity, hours, cut-offs, neighbours) and its TOML form.

A :class:`CentreConfig` describes one regional centre: the route keys it serves, its failover neighbours,
its daily capacity, its opening hours (Beijing time, Asia/Shanghai) on working days, its batch cut-off
times and batch size, whether it is up, and optionally the HTTP endpoint the print-centre adapter pushes
jobs to. :func:`load_centres` reads a TOML file (format in ``docs/postal.md``); :func:`default_centres`
returns Hubei's 17 centres shipped as package data (``data/hubei.toml``, built from
:mod:`delivery_sdk.address.hubei`). Every error names the file, the centre, the field and how to fix it.

Working days: ``days = "working"`` follows the State Council holiday calendar of :mod:`delivery_sdk.law`
(for a year it does not cover, Monday to Friday); ``"weekdays"`` is Monday to Friday; ``"all"`` every day.

Centres reach the engine through the ``delivery_register_print_centres`` hook: :func:`centres_plugin`
registers each configured centre with an adapter made by a factory (the HTTP adapter, or a fake in tests).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from .._exceptions import ValidationError
from ..address import route_key
from ..channels import ChannelAdapter, PrintCentreInfo
from ..clock import Clock
from ..hookspecs import hookimpl
from ..law.holidays import BEIJING, default_calendar
from ..plugins import PrintCentreRegistry

__all__ = [
    "CentreConfig",
    "CentreConfigError",
    "Centres",
    "centres_plugin",
    "default_centres",
    "load_centres",
    "parse_centres",
]

DAYS = ("working", "weekdays", "all")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DEFAULTABLE = ("daily_capacity", "hours", "days", "cutoffs", "batch_size", "up")
_FIELDS = frozenset({"id", "name", "route_keys", "neighbours", "endpoint", *_DEFAULTABLE})


class CentreConfigError(ValidationError):
    """A print-centre configuration that cannot be used: the message names the file, centre and field."""


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


@attrs.frozen(kw_only=True)
class CentreConfig:
    """One print/mail centre. Times are Beijing wall-clock times (Asia/Shanghai)."""

    centre_id: str
    name: str
    route_keys: frozenset[str]
    neighbours: tuple[str, ...] = ()
    daily_capacity: int = 2000
    opens: time = time(8, 30)
    closes: time = time(17, 30)
    days: str = "working"
    cutoffs: tuple[time, ...] = (time(11, 0), time(16, 0))
    batch_size: int = 200
    up: bool = True
    endpoint: str | None = None

    def info(self) -> PrintCentreInfo:
        """What the router sees of this centre."""
        return PrintCentreInfo(
            centre_id=self.centre_id,
            name=self.name,
            route_keys=self.route_keys,
            neighbours=self.neighbours,
            daily_capacity=self.daily_capacity,
            up=self.up,
        )

    # -- working hours -------------------------------------------------------------------------------

    def works_on(self, day: date) -> bool:
        """Whether the centre works on this Beijing date."""
        if self.days == "all":
            return True
        if self.days == "working":
            calendar = default_calendar()
            if calendar.covers(day):
                return calendar.is_working_day(day)
        return day.weekday() < 5

    def is_open(self, moment: datetime) -> bool:
        """True when the centre works at ``moment`` (a working day, within its opening hours, in Beijing time)."""
        local = moment.astimezone(BEIJING)
        return self.works_on(local.date()) and self.opens <= local.time().replace(tzinfo=None) < self.closes

    def next_opening(self, moment: datetime) -> datetime:
        """``moment`` itself if the centre is open then, else the next moment it opens."""
        if self.is_open(moment):
            return moment
        local = moment.astimezone(BEIJING)
        day = local.date()
        if local.time().replace(tzinfo=None) >= self.opens:
            day += timedelta(days=1)
        for _ in range(400):
            if self.works_on(day):
                return datetime.combine(day, self.opens, BEIJING)
            day += timedelta(days=1)
        raise CentreConfigError(f"centre {self.centre_id!r} does not open within 400 days")  # pragma: no cover

    def next_cutoff(self, moment: datetime) -> datetime:
        """The first cut-off at or after ``moment`` on a day the centre works (when a waiting batch goes)."""
        local = moment.astimezone(BEIJING)
        day = local.date()
        for _ in range(400):
            if self.works_on(day):
                for cut in self.cutoffs:
                    at = datetime.combine(day, cut, BEIJING)
                    if at >= local:
                        return at
            day += timedelta(days=1)
        raise CentreConfigError(f"centre {self.centre_id!r} has no cut-off within 400 days")  # pragma: no cover


@attrs.frozen
class Centres:
    """A checked set of centres (ids unique, neighbours known, each route key served once)."""

    configs: tuple[CentreConfig, ...]

    def __iter__(self) -> Iterator[CentreConfig]:
        return iter(self.configs)

    def __len__(self) -> int:
        return len(self.configs)

    def get(self, centre_id: str) -> CentreConfig:
        """The configuration of centre ``centre_id``; ``KeyError`` if there is none."""
        for config in self.configs:
            if config.centre_id == centre_id:
                return config
        raise KeyError(centre_id)

    def for_route_key(self, key: str) -> CentreConfig | None:
        """The centre that serves route key ``key``, or None."""
        return next((c for c in self.configs if key in c.route_keys), None)

    def infos(self) -> list[PrintCentreInfo]:
        """The description of every configured centre, as the registry takes it."""
        return [c.info() for c in self.configs]


# -- parsing ----------------------------------------------------------------------------------------


class _Where:
    def __init__(self, origin: str, centre: str) -> None:
        self.origin = origin
        self.centre = centre

    def error(self, field: str, problem: str, fix: str) -> CentreConfigError:
        return CentreConfigError(f"{self.origin}: {self.centre}: field {field!r} {problem}; {fix}")


def _int(where: _Where, field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise where.error(
            field, f"must be an integer of at least {low}, got {value!r}", f"write e.g. {field} = {max(low, 200)}"
        )
    return value


def _time(where: _Where, field: str, value: Any) -> time:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise where.error(field, f'must be a 24-hour time "HH:MM", got {value!r}', 'write e.g. "08:30"')
    return time(int(match[1]), int(match[2]))


def _hours(where: _Where, value: Any) -> tuple[time, time]:
    if not isinstance(value, str) or value.count("-") != 1:
        raise where.error(
            "hours", f'must be "HH:MM-HH:MM" (Beijing time), got {value!r}', 'write e.g. hours = "08:30-17:30"'
        )
    first, last = value.split("-")
    opens, closes = _time(where, "hours", first.strip()), _time(where, "hours", last.strip())
    if closes <= opens:
        raise where.error(
            "hours", f"closes ({_hhmm(closes)}) before it opens ({_hhmm(opens)})", "give the opening time first"
        )
    return opens, closes


def _strings(where: _Where, field: str, value: Any, example: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(field, f"must be a list of strings, got {value!r}", f"write e.g. {field} = {example}")
    return tuple(value)


def _centre(origin: str, index: int, raw: Any, defaults: Mapping[str, Any]) -> CentreConfig:
    if not isinstance(raw, dict):
        raise CentreConfigError(f"{origin}: [[centre]] entry {index} must be a table")
    label = f"centre {raw.get('id')!r} ([[centre]] entry {index})" if "id" in raw else f"[[centre]] entry {index}"
    where = _Where(origin, label)
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise where.error(unknown[0], "is not a known field", f"use only {sorted(_FIELDS)}")
    data = {**defaults, **raw}
    centre_id = data.get("id")
    if not isinstance(centre_id, str) or not _ID.fullmatch(centre_id):
        raise where.error(
            "id", f"must be 1-64 letters, digits or _.:-, got {centre_id!r}", 'write e.g. id = "PC-420100"'
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise where.error(
            "name", "must be a non-empty string of at most 200 characters", 'write e.g. name = "武汉市集约送达打印中心"'
        )
    if "route_keys" not in data:
        raise where.error(
            "route_keys", "is missing", 'list the 6-digit route keys the centre serves, e.g. route_keys = ["420100"]'
        )
    keys = _strings(where, "route_keys", data["route_keys"], '["420100"]')
    if not keys:
        raise where.error("route_keys", "is empty", "a centre must serve at least one route key")
    for key in keys:
        try:
            normal = route_key(key)
        except ValidationError as exc:
            raise where.error("route_keys", f"holds {key!r}: {exc}", "use the unit's 6-digit GB/T 2260 code") from None
        if normal != key:
            raise where.error(
                "route_keys",
                f"holds {key!r}, which is not a route key (its route key is {normal})",
                f'write "{normal}"',
            )
    neighbours = _strings(where, "neighbours", data.get("neighbours", []), '["PC-420900", "PC-420700"]')
    if centre_id in neighbours:
        raise where.error("neighbours", "names the centre itself", "list other centres only")
    if len(set(neighbours)) != len(neighbours):
        raise where.error("neighbours", "lists a centre twice", "list each neighbour once, in failover order")
    opens, closes = _hours(where, data.get("hours", "08:30-17:30"))
    days = data.get("days", "working")
    if days not in DAYS:
        raise where.error(
            "days", f"must be one of {list(DAYS)}, got {days!r}", 'write days = "working" for official working days'
        )
    cutoffs = tuple(
        sorted(
            _time(where, "cutoffs", c)
            for c in _strings(where, "cutoffs", data.get("cutoffs", ["11:00", "16:00"]), '["11:00", "16:00"]')
        )
    )
    if not cutoffs:
        raise where.error("cutoffs", "is empty", "give at least one release time inside the opening hours")
    for cut in cutoffs:
        if not opens <= cut <= closes:
            raise where.error(
                "cutoffs",
                f"holds {_hhmm(cut)}, outside the opening hours {_hhmm(opens)}-{_hhmm(closes)}",
                "move the cut-off inside the hours (or widen the hours)",
            )
    up = data.get("up", True)
    if not isinstance(up, bool):
        raise where.error("up", f"must be true or false, got {up!r}", "write up = true")
    endpoint = data.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))):
        raise where.error(
            "endpoint", f"must be an http(s) URL, got {endpoint!r}", 'write e.g. endpoint = "https://print.example/api"'
        )
    return CentreConfig(
        centre_id=centre_id,
        name=name,
        route_keys=frozenset(keys),
        neighbours=neighbours,
        daily_capacity=_int(where, "daily_capacity", data.get("daily_capacity", 2000), 1),
        opens=opens,
        closes=closes,
        days=days,
        cutoffs=cutoffs,
        batch_size=_int(where, "batch_size", data.get("batch_size", 200), 1),
        up=up,
        endpoint=endpoint.rstrip("/") if endpoint else None,
    )


def parse_centres(data: Mapping[str, Any], origin: str = "<centres>") -> Centres:
    """Check parsed TOML (``[defaults]`` and ``[[centre]]``) and build the centres."""
    unknown = sorted(set(data) - {"defaults", "centre"})
    if unknown:
        raise CentreConfigError(f"{origin}: unknown top-level key {unknown[0]!r}; use [defaults] and [[centre]] only")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise CentreConfigError(f"{origin}: [defaults] must be a table")
    bad = sorted(set(defaults) - set(_DEFAULTABLE))
    if bad:
        raise CentreConfigError(
            f"{origin}: [defaults] field {bad[0]!r} cannot have a default; use only {list(_DEFAULTABLE)}"
        )
    raw = data.get("centre")
    if not isinstance(raw, list) or not raw:
        raise CentreConfigError(f"{origin}: no [[centre]] entries; add one [[centre]] table per print centre")
    configs = [_centre(origin, i, entry, defaults) for i, entry in enumerate(raw, start=1)]
    return _check_set(configs, origin)


def _check_set(configs: Sequence[CentreConfig], origin: str) -> Centres:
    ids: dict[str, int] = {}
    owner: dict[str, str] = {}
    for index, config in enumerate(configs, start=1):
        if config.centre_id in ids:
            raise CentreConfigError(
                f"{origin}: centre {config.centre_id!r} ([[centre]] entry {index}): field 'id' repeats entry "
                f"{ids[config.centre_id]}; give every centre its own id"
            )
        ids[config.centre_id] = index
        for key in config.route_keys:
            if key in owner:
                raise CentreConfigError(
                    f"{origin}: centre {config.centre_id!r}: field 'route_keys' holds {key}, already served by "
                    f"{owner[key]!r}; a route key belongs to one centre (list the other as a neighbour instead)"
                )
            owner[key] = config.centre_id
    for config in configs:
        for neighbour in config.neighbours:
            if neighbour not in ids:
                raise CentreConfigError(
                    f"{origin}: centre {config.centre_id!r}: field 'neighbours' names {neighbour!r}, which is not "
                    f"configured; add it as a [[centre]] or remove it (known: {', '.join(ids)})"
                )
    return Centres(tuple(configs))


def load_centres(path: str | Path) -> Centres:
    """Read print centres from a TOML file; raises :class:`CentreConfigError` naming what to fix."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise CentreConfigError(f"{target}: cannot read the print-centre file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CentreConfigError(f"{target.name}: not UTF-8 text; save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CentreConfigError(f"{target.name}: invalid TOML ({exc}); fix the syntax at that line") from None
    return parse_centres(data, target.name)


def default_centres() -> Centres:
    """Hubei's 17 centres (``printing/data/hubei.toml``), one per prefecture-level routing unit."""
    text = resources.files(__package__).joinpath("data", "hubei.toml").read_text(encoding="utf-8")
    return parse_centres(tomllib.loads(text), "hubei.toml")


AdapterFactory = Callable[[CentreConfig, Clock], ChannelAdapter]


class _CentresPlugin:
    def __init__(self, centres: Iterable[CentreConfig], factory: AdapterFactory) -> None:
        self.centres = tuple(centres)
        self.factory = factory
        self.adapters: dict[str, ChannelAdapter] = {}

    @hookimpl
    def delivery_register_print_centres(self, register: PrintCentreRegistry, clock: Clock) -> None:
        for config in self.centres:
            adapter = self.adapters.get(config.centre_id)
            if adapter is None:
                adapter = self.adapters[config.centre_id] = self.factory(config, clock)
            register(config.info(), adapter)


def centres_plugin(centres: Iterable[CentreConfig], factory: AdapterFactory) -> Any:
    """A plugin registering each centre with ``factory(config, clock)`` as its adapter (built once)."""
    return _CentresPlugin(centres, factory)
