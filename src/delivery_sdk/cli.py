"""The ``delivery-sdk`` command: a demo of a provincial service centre, and reading a store.

::

    delivery-sdk demo [--tasks N] [--seed S] [--store PATH] [--no-progress]
    delivery-sdk status TASK_ID --store PATH [--json] [--lang zh_CN|en]
    delivery-sdk verify --store STORE [--key VKEY]... [--trusted-checkpoint FILE] [--origin NAME] [--require-signed]
                        [--access-head SEQ:CHAIN] [--json]   (or: verify STORE ..., the older form)
    delivery-sdk proof TASK_ID --store PATH [--out FILE]
    delivery-sdk proof --consistency OLD_NOTE [--to NEW_NOTE] --store PATH [--out FILE]
    delivery-sdk verify-consistency PROOF --trusted-checkpoint OLD_NOTE --key VKEY... [--update]
    delivery-sdk verify-record FILE [--key VKEY]... [--origin NAME] [--document PATH]...
    delivery-sdk keygen NAME
    delivery-sdk access --store PATH (--task TASK_ID | --actor STAFF_ID) [--as ACTOR] [--json] [--lang zh_CN|en]
    delivery-sdk tasks --case CASE_NUMBER --store PATH [--court COURT] [--json] [--lang zh_CN|en]
    delivery-sdk resolve-address [ADDRESS... | - | --file PATH] [--home-province CODE]   (no ADDRESS and a pipe: stdin)
    delivery-sdk report --store PATH [--court COURT] [--lang zh_CN|en] [--out report.html] [--json PATH] [--csv PATH]
    delivery-sdk stats --store PATH [--court COURT] [--json] [--lang zh_CN|en]
    delivery-sdk migrate --store PATH_OR_DSN
    delivery-sdk worker --store PATH_OR_DSN [--health-file FILE] [--health-port PORT] [--lease S]
                        [--poll-after S[,S...]] [--callbacks-port PORT [--callbacks-host HOST]]
                        [--config SETTINGS.toml]
    delivery-sdk check-config [--config SETTINGS.toml] [--store PATH_OR_DSN] [--plugin MODULE[:NAME]]...
    delivery-sdk sandbox [--base-port 18000] [--state-dir DIR] [--callback-url URL] [--env | --received]
    delivery-sdk calendar show [YEAR] [--json]
    delivery-sdk calendar import NOTICE.toml [--dir DIR] [--force]

Conventions (docs/user-guide.md, "Conventions"): what people read is in Chinese (``--lang en`` or
``$DELIVERY_SDK_LANG`` for English) with times in Beijing time and the zone shown; ``--json`` output keeps
English keys and UTC times with offsets; every command names its store with ``--store``; exit codes are 0 (ok),
1 (a check failed) and 2 (usage or bad input).

Plugins add subcommands through the ``delivery_sdk.cli`` entry-point group: each entry point names a
``register(subparsers)`` callable (or a module that has one) that adds its parsers with
``subparsers.add_parser(...)`` and sets ``func`` (``args -> exit code``) on each, as the built-ins do. A
plugin that fails to load, or whose names clash with a command already there, is skipped with a warning.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._exceptions import AccessDenied, StoreError, ValidationError

if TYPE_CHECKING:
    from .store import PostgresStore, SQLiteStore

__all__ = ["CLI_ENTRY_POINT_GROUP", "main"]

CLI_ENTRY_POINT_GROUP = "delivery_sdk.cli"


def _fmt(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h"


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .model import ServiceMethod
    from .store.sqlite import default_store_path

    path = Path(args.store) if args.store else default_store_path()
    if args.tasks < 1:
        print("error: --tasks must be at least 1", file=sys.stderr)
        return 2
    print(f"delivery-sdk demo: a day of a provincial service centre, {args.tasks} tasks, seed {args.seed}")
    try:
        result = asyncio.run(
            run_demo(
                tasks=args.tasks, seed=args.seed, store_path=path, progress=None if args.no_progress else sys.stderr
            )
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = result.summary
    print()
    print(f"  tasks                     {s.tasks:>8}")
    for state, n in sorted(s.by_state.items()):
        print(f"    {state:<22}  {n:>8}")
    print(f"  served                    {s.served:>8}")
    for method in (ServiceMethod.ELECTRONIC, ServiceMethod.POSTAL, ServiceMethod.PUBLICATION):
        print(f"    {method.value:<22}  {s.by_method.get(method.value, 0):>8}  ({s.share(method):6.1%})")
    print("  cycle time (created to effective service)")
    print(f"    mean {_fmt(s.cycle_mean)}   median {_fmt(s.cycle_median)}   p90 {_fmt(s.cycle_p90)}")
    print("  success rate per channel")
    for ch in s.channels:
        print(f"    {ch.kind.value:<10} {ch.delivered:>7}/{ch.attempts:<7} ({ch.success_rate:6.1%})")
    print(f"  postage avoided           {s.postage_saved_yuan:>10,.0f} yuan (20 yuan per electronic service)")
    print(f"  events recorded           {result.events:>8}")
    print(
        f"  simulated span            {_fmt(result.virtual_span)}; wall time {result.wall_seconds:.1f} s "
        f"({s.tasks / max(result.wall_seconds, 1e-9):,.0f} tasks/s)"
    )
    print(f"\nstore written to {result.store_path.resolve()}")
    from .supervision import write_report

    report = result.store_path.with_suffix(".html")
    write_report(result.store_path, report)
    print(f"report written to {report.resolve()}")
    print(f"try: delivery-sdk tasks --store {result.store_path} --case '{result.example_case}'")
    print(f"     delivery-sdk status --store {result.store_path} {result.example_task}")
    return 0


def _actor(args: argparse.Namespace) -> Any:
    """Who runs the command: ``--actor`` (``--as`` for ``access``), else ``$DELIVERY_SDK_ACTOR``, else the local
    default of a single-court installation (every court, every permission); the roles of the file in
    ``$DELIVERY_SDK_ROLES`` beside the built-in ones (docs/access.md)."""
    import os

    from .access import ACTOR_ENV, DEFAULT_ROLES, LOCAL_ACTOR, ROLES_ENV, load_roles, parse_actor

    text = getattr(args, "acting", None) or os.environ.get(ACTOR_ENV)
    if not text:
        return LOCAL_ACTOR
    roles_file = os.environ.get(ROLES_ENV)
    roles = load_roles(roles_file) if roles_file else DEFAULT_ROLES
    return parse_actor(text, roles)


def _open(path: str, args: argparse.Namespace | None = None) -> object:
    from .client import DeliveryClient
    from .store import is_dsn, open_store

    if not is_dsn(path) and not Path(path).exists():
        raise FileNotFoundError(f"no store at {path}; give the path the demo printed (--store PATH)")
    actor = _actor(args) if args is not None else None
    # a command that reads opens the store read-only: nothing is created, migrated or written (but the access
    # log, where a read of personal data is recorded: docs/access.md)
    return DeliveryClient(open_store(path, readonly=True), load_entry_points=False, actor=actor)


def _shown(value: object) -> str:
    """``value`` as text safe for a terminal: control and format characters (an escape sequence, a carriage
    return, a bidi override stored before the model refused them) are shown as ``\\x1b``, ``\\u202e``..."""
    text = str(value)
    if text.isprintable():
        return text
    import unicodedata

    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _UNSHOWN else c for c in text
    )


_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _status(args: argparse.Namespace) -> int:
    import json

    from ._exceptions import UnknownTask
    from .client import DeliveryClient
    from .law.citations import chinese
    from .locale import beijing, catalogue, channel_name, label

    lang = _lang(args)
    m = catalogue(lang)
    client = _open(args.store, args)
    assert isinstance(client, DeliveryClient)
    with client:
        try:
            st = client.status(args.task_id)
        except UnknownTask as exc:  # a task id that is not in the store: bad input
            print(f"error: {exc}", file=sys.stderr)
            return 2
        # only each event's number, time and type are shown (no personal data): read past client.timeline,
        # which returns the events whole and so is a recorded read of personal data
        timeline = client.store.load_events([args.task_id]).get(args.task_id, [])
        client.store.close()
    if args.json:
        data = _jsonable(st)
        data["timeline"] = [
            {"task_seq": e.task_seq, "at": e.event.at.isoformat(), "type": e.event.TYPE} for e in timeline
        ]
        print(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))
        return 0
    print(
        m(
            "status.task",
            task=_shown(st.task_id),
            court=_shown(st.court),
            case=_shown(st.case_number),
            party=_shown(st.party_id),
        )
    )
    print(f"  {_pad(m('status.state'))}{label('state', st.state.value, lang)}")
    if st.method is not None:
        basis = _shown(st.basis_zh) if lang == "zh_CN" else _shown(st.basis)
        served = m(
            "status.served_line",
            method=label("method", st.method.value, lang),
            at=beijing(st.served_at, lang),
            basis=basis,
        )
        print(f"  {_pad(m('status.served'))}{served}")
    for deadline in st.deadlines:
        # the law in Chinese for court staff, as recorded (English) for integrators
        basis = _shown(chinese(deadline.basis) if lang == "zh_CN" else deadline.basis)
        line = m(
            "status.deadline_line",
            name=_shown(label("deadline", deadline.name, lang)),
            due=f"{deadline.due:%Y-%m-%d}",
            provisional=m("status.provisional") if deadline.provisional else "",
            basis=basis,
        )
        print(f"  {_pad(m('status.deadline'))}{line}")
        if deadline.provisional:  # the calendar of its last day rests on no State Council notice yet
            print(f"  {_pad('')}{_shown(deadline.calendar)}")
    if st.deadlines_note:
        print(f"  {_pad(m('status.deadlines'))}{_shown(st.deadlines_note)}")
    if st.attention_reason:
        print(f"  {_pad(m('status.attention'))}{_shown(st.attention_reason)}")
    for d in st.dispatches:
        print(
            f"  {_pad(m('status.dispatch'))}{_shown(d.dispatch_id):<14} {label('kind', d.kind.value, lang)}  "
            f"{_shown(channel_name(d.kind.value, d.channel, lang))}  {label('dstatus', d.status.value, lang)}  "
            f"{_shown(d.contact)}"
        )
    print(f"  {m('status.timeline')} ({m('time.zone')})")
    for stored in timeline:
        ev = stored.event
        print(
            f"    {stored.task_seq:>3}  {beijing(ev.at, lang, zone=False)}  "
            f"{_pad(label('event', ev.TYPE, lang), 18)}{ev.TYPE}"
        )
    return 0


def _pad(text: str, width: int = 10) -> str:
    """``text`` padded to ``width`` terminal columns (a Chinese character takes two)."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, width - used)


def _jsonable(value: Any) -> Any:
    """An attrs object (a TaskStatus...) as JSON-ready data: times as ISO 8601 with their offset (UTC as
    stored), enums by value, dates as ISO dates."""
    import enum
    from datetime import date

    import attrs

    from .model import ChannelKind, ContactKind

    def convert(_inst: Any, _field: Any, item: Any) -> Any:
        if isinstance(item, datetime | date):
            return item.isoformat()
        if isinstance(item, enum.Enum | ChannelKind | ContactKind):
            return item.value
        return item

    return attrs.asdict(value, value_serializer=convert)


def _lang(args: argparse.Namespace) -> str:
    """The language of a command's output: ``--lang``, else ``$DELIVERY_SDK_LANG``, else Chinese."""
    from .locale import default_lang

    lang = getattr(args, "lang", None)
    return cast(str, lang) if lang else default_lang()


def _calendar(args: argparse.Namespace) -> int:
    """``calendar show YEAR``: a year's rest and makeup working days, official or provisional;
    ``calendar import FILE``: check a State Council notice and put it where the SDK reads notices."""
    from ._exceptions import ValidationError
    from .law.holidays import BEIJING, CALENDAR_DIR_ENV, describe_year, import_notice

    if args.calendar_command == "show":
        year = args.year if args.year is not None else datetime.now(BEIJING).year
        try:
            text = describe_year(year)
        except ValidationError as exc:  # CalendarNotCovered: a year beyond every calendar, bad input
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.json:
            import json

            from .law.holidays import effective_calendar

            cal = effective_calendar()
            data = {
                "year": year,
                "provisional": cal.is_provisional(year),
                "source": cal.sources.get(year),
                "holidays": sorted(d.isoformat() for d in cal.holidays if d.year == year),
                "working_days": sorted(d.isoformat() for d in cal.working_days if d.year == year),
            }
            print(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))
            return 0
        print(text, end="")
        return 0
    try:
        cal, target = import_notice(args.file, args.dir, force=args.force)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    (year,) = cal.years
    print(f"imported the notice for {year}: {target}")
    if args.dir is not None:
        print(f"the SDK reads notices from ${CALENDAR_DIR_ENV}: set it to {target.parent} where the engine runs")
    print(describe_year(year, cal), end="")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    import json

    from .client import DeliveryClient
    from .locale import beijing, catalogue, label
    from .store import SQLiteStore

    lang = _lang(args)

    client = _open(args.store, args)
    assert isinstance(client, DeliveryClient)
    with client:
        store = cast(SQLiteStore, client.store)  # or a PostgresStore: both have case_keys
        keys = [f"{args.court}|{args.case}"] if args.court else store.case_keys(args.case)
        rows = [st for key in keys for st in client.tasks_of_case(key)]
        store.close()
    if not rows:  # a case the store does not know: bad input
        print(f"error: {catalogue(lang)('tasks.none', case=repr(args.case))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([_jsonable(st) for st in rows], ensure_ascii=False, indent=1, sort_keys=True))
        return 0
    m = catalogue(lang)
    print(f"# {m('col.task')}  {m('col.court')}  {m('col.party')}  {m('col.state')}  {m('col.served_at')}")
    for st in rows:
        served = (
            f"{label('method', st.method.value, lang)} {beijing(st.served_at, lang, zone=False)}"
            if st.method and st.served_at
            else ""
        )
        state = label("state", st.state.value, lang)
        print(f"{_shown(st.task_id)}  {_shown(st.court)}  {_shown(st.party_id):<10} {_pad(state, 16)}{served}")
    return 0


def _resolve_address(args: argparse.Namespace) -> int:
    import json

    from ._exceptions import ValidationError
    from .address.resolver import resolve

    if args.file and args.addresses:
        print("error: give addresses as arguments or --file, not both", file=sys.stderr)
        return 2
    piped = not args.file and not args.addresses and not sys.stdin.isatty()
    if args.file or args.addresses == ["-"] or piped:
        name = args.file or "-"
        if name == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(name).read_text(encoding="utf-8", errors="replace").splitlines()
        addresses = [line.strip() for line in lines if line.strip()]
    else:
        addresses = list(args.addresses)
    if not addresses:
        print("error: no address given (ADDRESS..., '-' or a pipe for stdin, or --file PATH)", file=sys.stderr)
        return 2
    failed = 0
    for address in addresses:
        try:
            r = resolve(address, home_province=args.home_province)
        except ValidationError as exc:
            failed += 1
            row: dict[str, object] = {"address": address, "error": str(exc)}
        else:
            row = {
                "address": r.address,
                "code": r.code,
                "route_key": r.route_key,
                "status": r.status.value,
                "candidates": [{"code": c.code, "name": c.name, "path": c.path} for c in r.candidates],
                "span": list(r.span) if r.span else None,
                "confidence": r.confidence,
                "ok": r.ok,
                "flags": sorted(f.value for f in r.flags),
                "corrections": [list(c) for c in r.corrections],
                "evidence": list(r.evidence),
            }
        print(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8", "replace").decode("utf-8"))
    return 1 if failed else 0


def _supervision_options(args: argparse.Namespace) -> dict[str, Any]:
    from .supervision import CostRates, ServiceLevels

    return {
        "levels": ServiceLevels(
            eservice_unconfirmed_hours=args.eservice_hours, print_not_printed_hours=args.print_hours
        ),
        "costs": CostRates(postal_yuan=args.postal_yuan, electronic_yuan=args.electronic_yuan),
        "as_of": _aware(datetime.fromisoformat(args.as_of)) if args.as_of else None,
    }


def _aware(moment: datetime) -> datetime:
    """A time given without a zone is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _hours(value: float | None, lang: str | None = None) -> str:
    """Hours for a person, in ``lang``: hours below two days, days above."""
    from .supervision.report import _hours as hours

    return hours(value, lang)


def _report(args: argparse.Namespace) -> int:
    from .store import is_dsn
    from .supervision import write_report

    if not is_dsn(args.store) and not Path(args.store).exists():
        raise FileNotFoundError(f"no store at {args.store}; give the path the demo printed (--store PATH)")
    out = Path(args.out) if args.out else Path(args.store).with_suffix(".html")
    actor = _actor(args)
    if args.court is not None and not _known_court(args.store, args.court, _lang(args), actor):
        return 2
    options = _supervision_options(args)
    write_report(
        args.store,
        out,
        json_path=args.json,
        csv_path=args.csv,
        upgrade=False,
        court=args.court,
        actor=actor,
        lang=_lang(args),
        **options,
    )
    print(f"report written to {out.resolve()}")
    for extra in (args.json, args.csv):
        if extra:
            print(f"export written to {Path(extra).resolve()}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    import json

    from .locale import beijing, catalogue, centre_name, channel_name, label
    from .store import is_dsn
    from .supervision import Scope, Supervisor

    if not is_dsn(args.store) and not Path(args.store).exists():
        raise FileNotFoundError(f"no store at {args.store}; give the path the demo printed (--store PATH)")
    lang = _lang(args)
    m = catalogue(lang)
    options = _supervision_options(args)
    with Supervisor(args.store, upgrade=False, lang=lang, actor=_actor(args)) as sup:
        if not sup.indexed:
            _note_unindexed(args.store)
        if args.court is not None and not _known_court(sup, args.court, lang):
            return 2
        s = sup.statistics(scope=Scope(court=args.court), **options)
    if args.json:
        print(json.dumps(s.to_dict(), ensure_ascii=False, indent=1, sort_keys=True))
        return 0

    def h(value: float | None) -> str:
        return _hours(value, lang)

    def row(text: str, value: str, indent: int = 2, width: int = 30) -> str:
        return f"{' ' * indent}{_pad(text, width - indent)}{value}"

    print(m("stats.as_of", time=beijing(s.as_of, lang)))
    print(m("stats.scope", scope=_shown(s.court) if s.court else m("dash.province")))
    print(row(m("stats.tasks"), f"{s.tasks:>10,}"))
    for state, n in sorted(s.by_state.items()):
        print(row(label("state", state, lang), f"{n:>10,}", 4))
    print(row(m("stats.served"), f"{s.served:>10,}"))
    for method, n in sorted(s.by_method.items(), key=lambda kv: -kv[1]):
        print(row(label("method", method, lang), f"{n:>10,}  ({n / s.served if s.served else 0:6.1%})", 4))
    print(row(m("stats.fallback"), f"{s.fallback_rate:>10.1%}"))
    print(f"  {m('stats.funnel')}")
    for stage, n in s.funnel:
        print(row(label("funnel", stage.replace(" ", "_"), lang), f"{n:>10,}", 4))
    for key, d in (("series.cycle", s.cycle_served), ("series.filing", s.cycle_filed)):
        line = m(
            "stats.cycle",
            name=m(key),
            n=f"{d.count:,}",
            mean=h(d.mean_hours),
            median=h(d.median_hours),
            p90=h(d.p90_hours),
        )
        print(f"  {line}")
    if s.courts:
        print(f"  {m('stats.courts')}")
        for court in s.courts:
            print(
                f"    {_pad(_shown(court.court), 26)}{court.tasks:>8,} {court.served:>8,} "
                f"{court.electronic_share:>8.1%} {h(court.median_hours):>10} {court.overdue:>6,}"
            )
    print(f"  {m('stats.channels')}")
    for ch in s.channels:
        name = _shown(channel_name(ch.kind, ch.channel, lang))
        print(
            f"    {_pad(label('kind', ch.kind, lang), 14)}{_pad(name, 50)}{ch.delivered:>7,}/{ch.attempts:<7,} "
            f"({ch.success_rate:6.1%})"
        )
    print(f"  {m('stats.centres')}")
    for c in s.centres:
        refused = "   " + m("stats.carrier_refused", n=f"{c.carrier_refused:,}") if c.carrier_refused else ""
        print(f"    {_pad(_shown(centre_name(c.centre_id)), 50)}{c.jobs:>7,} / {c.open:,}{refused}")
    overdue = ", ".join(f"{label('rule', rule, lang)} {n:,}" for rule, n in sorted(s.overdue.items()))
    print(f"  {m('stats.overdue')} {overdue}")
    cost = s.cost
    print(
        "  "
        + m(
            "stats.cost",
            actual=f"{cost['actual_yuan']:,.0f}",
            baseline=f"{cost['baseline_all_postal_yuan']:,.0f}",
            saved=f"{cost['savings_yuan']:,.0f}",
        )
    )
    # provider reports the engine would not apply (an attack, or a misconfigured adapter): see docs/security.md
    print(row(m("stats.refused"), f"{s.refused:>10,}"))
    for r in s.refused_receipts:
        last = m("stats.last", time=beijing(r.last_at, lang))
        print(f"    {_pad(_shown(r.source), 20)}{_pad(label('refusal', r.reason, lang), 18)}{r.count:>9,}  {last}")
    return 0


def _known_court(store: Any, court: str, lang: str, actor: Any = None) -> bool:
    """Whether ``court`` has tasks in ``store`` (a path or an open Supervisor); if not, says which courts do
    (the caller exits with 2: bad input)."""
    from .locale import t
    from .supervision import Supervisor

    if isinstance(store, Supervisor):
        known = store.courts()
    else:
        with Supervisor(store, upgrade=False, actor=actor) as sup:
            known = sup.courts()
    if court in known:
        return True
    print(f"error: {t('stats.no_court', lang, court=court, courts='、'.join(known) or '-')}", file=sys.stderr)
    return False


def _note_unindexed(store: str) -> None:
    print(
        f"note: {store} has no supervision indexes, so large stores answer slowly; "
        f"'delivery-sdk migrate --store {store}' creates them (that writes)",
        file=sys.stderr,
    )


def _migrate(args: argparse.Namespace) -> int:
    """The one maintenance command that writes to a store on purpose: schema upgrade and supervision indexes."""
    from .store import is_dsn, open_store

    dsn = is_dsn(args.store)
    if not dsn and not Path(args.store).exists():
        raise FileNotFoundError(f"no store at {args.store}; migrate upgrades an existing store")
    # opening to write migrates; another application's file is refused
    store = cast("SQLiteStore | PostgresStore", open_store(args.store))
    try:
        version = store.schema_version
    finally:
        store.close()
    if dsn:
        print(f"store at schema version {version}")
        return 0
    from .supervision.query import _create_indexes

    _create_indexes(Path(args.store))
    print(f"store {args.store}: schema version {version}, supervision indexes in place")
    return 0


def _add_store(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """``--store PATH_OR_DSN``, the one way every command names its store; ``positional`` keeps the older
    ``COMMAND STORE`` form of a command that had it as an alias (:func:`_store_alias` merges the two)."""
    if positional:
        parser.add_argument("store_positional", nargs="?", metavar="STORE", help="the store (same as --store)")
        parser.add_argument("--store", help="SQLite file or PostgreSQL DSN")
        parser.set_defaults(_store_alias=True)
    else:
        parser.add_argument("--store", required=True, help="SQLite file or PostgreSQL DSN")


def _store_alias(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Merge ``COMMAND STORE`` into ``--store`` (a usage error, exit 2, when neither or two different)."""
    if not getattr(args, "_store_alias", False):
        return
    given = args.store_positional
    if given is not None and args.store is not None and given != args.store:
        parser.error(f"two stores given: {given} and --store {args.store}")
    args.store = args.store or given
    if args.store is None:
        parser.error(f"{args.command}: the store is required (--store PATH)")


def _add_lang(parser: argparse.ArgumentParser) -> None:
    from .locale import LANG_ENV

    parser.add_argument(
        "--lang",
        type=_lang_arg,
        help=f"language of what people read: zh_CN (the default, or ${LANG_ENV}) or en; JSON keys stay English",
    )


def _lang_arg(value: str) -> str:
    from .locale import normalise_lang

    try:
        return normalise_lang(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` (machine-readable, English keys, UTC times with offsets) and ``--lang`` for a read command."""
    parser.add_argument("--json", action="store_true", help="print JSON (English keys, times in UTC with offset)")
    _add_lang(parser)


def _add_supervision_options(parser: argparse.ArgumentParser) -> None:
    _add_store(parser)
    parser.add_argument("--court", help="one court, by its name (default: the whole province, a row per court)")
    parser.add_argument("--as-of", help="ISO time overdue work is measured at (default: the latest event)")
    parser.add_argument("--eservice-hours", type=float, default=48.0, help="e-service unconfirmed after (48)")
    parser.add_argument("--print-hours", type=float, default=24.0, help="print job not printed after (24)")
    parser.add_argument("--postal-yuan", type=float, default=20.0, help="cost of one postal service (20)")
    parser.add_argument("--electronic-yuan", type=float, default=0.0, help="cost of one electronic attempt (0)")


def _verify(args: argparse.Namespace) -> int:
    from .access import Permission
    from .evidence.audit import verify_store

    _actor(args).require(Permission.AUDIT, None, "verify the evidence log")
    trusted = Path(args.trusted_checkpoint).read_text(encoding="utf-8") if args.trusted_checkpoint else None
    from .access import parse_head

    head = parse_head(args.access_head) if args.access_head else None
    report = verify_store(args.store, args.key or (), trusted_checkpoint=trusted, origin=args.origin, access_head=head)
    failed = not report.ok or bool(report.unsigned and args.require_signed)
    if args.json:
        import json

        data = {
            "ok": not failed,
            "problems": list(report.problems),
            "events": report.events,
            "tasks": report.tasks,
            "nodes": report.nodes,
            "checkpoints": report.checkpoints,
            "unsigned": report.unsigned,
            "accesses": report.accesses,
            "signatures_checked": bool(args.key),
        }
        print(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))
        return 1 if failed else 0
    for problem in report.problems:
        print(f"FAIL: {problem}")
    unsigned = f"{report.unsigned} events not covered by any signed checkpoint"
    if report.unsigned and args.require_signed:
        print(f"FAIL: {unsigned} (--require-signed)")
    if not report.ok or (report.unsigned and args.require_signed):
        return 1
    signed = "signatures checked" if args.key else "signatures not checked: give --key"
    print(
        f"ok: {report.events} events, {report.tasks} tasks, {report.nodes} tree nodes, {report.checkpoints} "
        f"checkpoints; every event, column, task row, tree node and checkpoint matches ({signed}); "
        f"{report.accesses} access records, their chain unbroken"
    )
    if report.unsigned:
        print(f"note: {unsigned} yet")
    return 0


def _read_note(path: str) -> str:
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return file.read_text(encoding="utf-8")


def _proof(args: argparse.Namespace) -> int:
    import json

    from .evidence.audit import export_consistency

    if (args.task_id is None) == (args.consistency is None):
        print("error: give a TASK_ID (inclusion proofs) or --consistency OLD (a consistency proof)", file=sys.stderr)
        return 2
    if args.to and not args.consistency:
        print("error: --to goes with --consistency", file=sys.stderr)
        return 2
    try:
        if args.consistency:
            old = _read_note(args.consistency)
            from .access import Permission

            _actor(args).require(Permission.AUDIT, None, "export a consistency proof")
            bundle = export_consistency(args.store, old, _read_note(args.to) if args.to else None)
            proof = bundle["proof"]
            what = f"consistency proof from size {proof['size1']} to {proof['size2']}"
        else:
            bundle = _task_bundle(args)
            what = f"proof bundle for {args.task_id} ({len(bundle['events'])} events)"
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(bundle, ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"{what} written to {args.out}")
    else:
        print(text)
    return 0


def _task_bundle(args: argparse.Namespace) -> dict[str, Any]:
    """A task's proof bundle through the client: in the actor's courts, and recorded as a read."""
    from .client import DeliveryClient
    from .evidence.audit import export_bundle

    client = _open(args.store, args)
    assert isinstance(client, DeliveryClient)
    with client:
        try:
            bundle = client.proof_bundle(args.task_id)
        except StoreError:
            bundle = None
        client.store.close()
    # a store without an evidence log says why in export_bundle's words (the actor was checked above)
    return bundle if bundle is not None else export_bundle(args.store, args.task_id)


def _access(args: argparse.Namespace) -> int:
    """``access --task ID`` (who looked at this party) or ``--actor STAFF_ID`` (what this person looked at)."""
    import json

    from .client import DeliveryClient
    from .locale import beijing, catalogue, label

    if (args.task is None) == (args.staff is None):
        print(
            "error: give --task TASK_ID (who looked at it) or --actor STAFF_ID (what they looked at)", file=sys.stderr
        )
        return 2
    lang = _lang(args)
    m = catalogue(lang)
    client = _open(args.store, args)
    assert isinstance(client, DeliveryClient)
    with client:
        records = client.access_records(task_id=args.task, staff_id=args.staff)
        client.store.close()
    if args.json:
        print(json.dumps([r.to_dict() for r in records], ensure_ascii=False, indent=1, sort_keys=True))
        return 0
    subject = m("access.task", task=_shown(args.task)) if args.task else m("access.staff", staff=_shown(args.staff))
    print(m("access.title", subject=subject, n=len(records)))
    if records:
        print(f"  {m('access.columns')} ({m('time.zone')})")
    for r in records:
        print(
            f"  {r.seq:>6}  {beijing(r.at, lang, zone=False)}  {_pad(_shown(r.staff_id), 14)}"
            f"{_pad(label('role', r.role, lang), 10)}{_pad(_shown(r.court), 8)}{_pad(_shown(r.task_id), 14)}"
            f"{label('shown', r.what, lang)}"
        )
    return 0


def _verify_consistency(args: argparse.Namespace) -> int:
    import json

    from .evidence.audit import verify_consistency_bundle
    from .evidence.verify import VerificationError
    from .evidence.witness import write_witness

    trusted = _read_note(args.trusted_checkpoint)
    path = Path(args.file)
    if not path.exists():
        raise FileNotFoundError(f"no consistency proof at {path}")
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        new = verify_consistency_bundle(bundle, args.key or (), trusted_checkpoint=trusted, origin=args.origin)
    except (ValueError, KeyError, TypeError) as exc:  # VerificationError and unreadable JSON are ValueErrors
        reason = str(exc) if isinstance(exc, VerificationError) else f"unreadable proof: {exc}"
        if args.json:
            print(json.dumps({"ok": False, "problems": [reason]}, ensure_ascii=False, indent=1, sort_keys=True))
        else:
            print(f"FAIL: {reason}")
        return 1
    if args.update:
        write_witness(args.trusted_checkpoint, bundle["new_checkpoint"])
    if args.json:
        data = {"ok": True, "problems": [], "origin": new.origin, "size": new.size, "updated": bool(args.update)}
        print(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))
        return 0
    print(f"ok: log {new.origin!r} at size {new.size} extends the trusted checkpoint; nothing before it changed")
    if args.update:
        print(f"kept the new checkpoint in {args.trusted_checkpoint}")
    return 0


def _verify_record(args: argparse.Namespace) -> int:
    from .proof.verify import verify_record

    path = Path(args.file)
    if not path.exists():
        raise FileNotFoundError(f"no record at {path}")
    check = verify_record(path.read_bytes(), args.key or (), origin=args.origin, documents=args.document or ())
    if args.json:
        import json

        rec = check.record
        data = {
            "ok": check.ok,
            "problems": list(check.problems),
            "notes": list(check.notes),
            "record_id": None if rec is None else rec.record_id,
            "documents": None if rec is None else len(rec.documents),
            "events_proven": check.events_proven if rec is not None and rec.bundle is not None else None,
        }
        print(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True))
        return 0 if check.ok else 1
    for problem in check.problems:
        print(f"FAIL: {problem}")
    if not check.ok:
        return 1
    record = check.record
    assert record is not None
    proven = f"; {check.events_proven} events proven against the checkpoint" if record.bundle is not None else ""
    print(f"ok: {record.title} {record.record_id}, {len(record.documents)} documents{proven}")
    for note in check.notes:
        print(f"note: {note}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from .evidence.keys import generate_key

    skey, vkey = generate_key(args.name)
    print(f"# signer key: keep it secret (file or DELIVERY_SDK_EVIDENCE_KEY)\n{skey}")
    print(f"# verifier key: hand it to courts and auditors (delivery-sdk verify --key ...)\n{vkey}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from .worker import run_from_args

    return run_from_args(args)


def _receiver(args: argparse.Namespace) -> int:
    from .receiver import run_from_args

    return run_from_args(args)


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import run_from_args

    return run_from_args(args)


def _portal(args: argparse.Namespace) -> int:
    try:
        from .portal.serve import run_from_args
    except ImportError as exc:  # starlette / jinja2 / uvicorn not installed
        message = f"error: the portal needs the 'portal' extra (pip install 'delivery-sdk[portal]'): {exc}"
        print(message, file=sys.stderr)
        return 2
    return run_from_args(args)


def _check_config(args: argparse.Namespace) -> int:
    from .checkconfig import check_config

    return check_config(args)


def register_cli_plugins(sub: Any, entry_points: Sequence[Any] | None = None) -> list[str]:
    """Let every ``delivery_sdk.cli`` entry point add its subcommands to ``sub``; returns the names loaded.

    ``entry_points`` defaults to the installed ones (objects with ``name`` and ``load()``). Entry points
    blocked by ``DELIVERY_SDK_BLOCK_PLUGINS`` are skipped, as for the engine's plugins.
    """
    import importlib.metadata
    import os

    if entry_points is None:
        entry_points = list(importlib.metadata.entry_points(group=CLI_ENTRY_POINT_GROUP))
    blocked = {n.strip() for n in os.environ.get("DELIVERY_SDK_BLOCK_PLUGINS", "").split(",") if n.strip()}
    loaded: list[str] = []
    for ep in entry_points:
        if ep.name in blocked:
            continue
        try:
            target = ep.load()
            register = target if callable(target) else getattr(target, "register")  # noqa: B009
            register(sub)
        except Exception as exc:  # one broken plugin must not take the whole command down
            print(f"warning: CLI plugin {ep.name!r} skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        loaded.append(ep.name)
    return loaded


def build_parser() -> argparse.ArgumentParser:
    """The ``delivery-sdk`` command line: every built-in subcommand, then those the CLI plugins add."""
    parser = argparse.ArgumentParser(prog="delivery-sdk", description="Service of court documents (送达), end to end.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a day of a provincial service centre on a fresh SQLite store")
    demo.add_argument("--tasks", type=int, default=3000, help="number of service tasks (default 3000)")
    demo.add_argument("--seed", type=int, default=2024, help="random seed (default 2024)")
    demo.add_argument("--store", help="SQLite file to write (default: a new file in the current folder)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)
    status = sub.add_parser("status", help="show one task: state, dispatches, timeline (times in Beijing time)")
    status.add_argument("task_id")
    _add_store(status)
    _add_read_options(status)
    status.set_defaults(func=_status)
    tasks = sub.add_parser("tasks", help="list the tasks of a case")
    tasks.add_argument("--case", required=True, help="case number, e.g. '(2026)鄂0106民初1001号'")
    tasks.add_argument("--court", help="court name (needed outside the demo's courts)")
    _add_store(tasks)
    _add_read_options(tasks)
    tasks.set_defaults(func=_tasks)
    res = sub.add_parser("resolve-address", help="resolve addresses to division codes, one JSON object a line")
    res.add_argument(
        "addresses",
        nargs="*",
        metavar="ADDRESS",
        help="addresses, or '-' to read one a line from stdin (also read when none is given and stdin is no terminal)",
    )
    res.add_argument("--file", help="read one address a line from this file ('-' for stdin)")
    res.add_argument("--home-province", default="420000", help="province code that breaks ties (default 420000)")
    res.set_defaults(func=_resolve_address)
    report = sub.add_parser("report", help="write the supervision dashboard (static HTML) and JSON/CSV exports")
    _add_supervision_options(report)
    report.add_argument("--out", help="HTML file to write (default: beside the store, .html)")
    _add_lang(report)
    report.add_argument("--json", help="also write the dashboard's data as JSON here")
    report.add_argument("--csv", help="also write the dashboard's figures as CSV here")
    report.set_defaults(func=_report)
    stats = sub.add_parser("stats", help="print the supervision statistics")
    _add_supervision_options(stats)
    _add_read_options(stats)
    stats.set_defaults(func=_stats)
    verify = sub.add_parser("verify", help="audit a store's evidence log: every event, tree node and checkpoint")
    _add_store(verify, positional=True)
    verify.add_argument("--json", action="store_true", help="print the audit as JSON (exit code as without)")
    verify.add_argument("--key", action="append", help="a trusted verifier key (name+hash+base64); repeatable")
    verify.add_argument("--trusted-checkpoint", help="a signed checkpoint trusted earlier: refuse a rewritten history")
    verify.add_argument("--origin", help="the log's name in its checkpoints (default: the name of the key that signed)")
    verify.add_argument(
        "--access-head",
        metavar="SEQ:CHAIN",
        help="an access record's seq and chain kept earlier (access --json): refuse an access log cut short",
    )
    verify.add_argument(
        "--require-signed", action="store_true", help="fail when events are not yet covered by a signed checkpoint"
    )
    verify.set_defaults(func=_verify)
    proof = sub.add_parser(
        "proof",
        help="export a task's events with inclusion proofs, or a consistency proof between two checkpoints",
    )
    proof.add_argument("task_id", nargs="?", help="the task whose events to prove (or give --consistency)")
    _add_store(proof)
    proof.add_argument(
        "--consistency", metavar="OLD", help="a signed checkpoint (file) kept earlier: prove the log extends it"
    )
    proof.add_argument("--to", metavar="NEW", help="with --consistency: the later checkpoint (default: the latest)")
    proof.add_argument("--out", help="write the JSON here (default: standard output)")
    proof.set_defaults(func=_proof)
    vcon = sub.add_parser(
        "verify-consistency", help="check offline that a later checkpoint extends the one kept (proof --consistency)"
    )
    vcon.add_argument("file", help="the consistency proof (JSON) from delivery-sdk proof --consistency")
    vcon.add_argument("--trusted-checkpoint", required=True, help="the signed checkpoint kept from before (file)")
    vcon.add_argument("--key", action="append", help="the log's verifier key (name+hash+base64); repeatable")
    vcon.add_argument("--origin", help="the log's name (default: the trusted checkpoint's)")
    vcon.add_argument("--update", action="store_true", help="on success, keep the new checkpoint in its place")
    vcon.add_argument("--json", action="store_true", help="print the outcome as JSON (exit code as without)")
    vcon.set_defaults(func=_verify_consistency)
    vrec = sub.add_parser("verify-record", help="check a proof-of-service record (JSON) offline")
    vrec.add_argument("file")
    vrec.add_argument("--key", action="append", help="a trusted verifier key for its proof bundle; repeatable")
    vrec.add_argument("--origin", help="the evidence log's name in the bundle's checkpoint")
    vrec.add_argument("--document", action="append", help="a served document's file: its SHA-256 must be listed")
    vrec.add_argument("--json", action="store_true", help="print the outcome as JSON (exit code as without)")
    vrec.set_defaults(func=_verify_record)
    migrate = sub.add_parser(
        "migrate", help="upgrade a store to this SDK's schema and add the supervision indexes (writes to it)"
    )
    _add_store(migrate)
    migrate.set_defaults(func=_migrate)
    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair for signing evidence checkpoints")
    keygen.add_argument("name", help="the key's name, usually the log's origin, e.g. court.example/delivery")
    keygen.set_defaults(func=_keygen)
    calendar = sub.add_parser(
        "calendar", help="the holiday calendar of a year (official or provisional); import a State Council notice"
    )
    calendar_sub = calendar.add_subparsers(dest="calendar_command", required=True)
    cal_show = calendar_sub.add_parser("show", help="print a year's holidays and makeup working days (in Chinese)")
    cal_show.add_argument("year", type=int, nargs="?", help="the year (default: this year, Beijing time)")
    cal_show.add_argument("--json", action="store_true", help="print the year's rest and makeup working days as JSON")
    cal_import = calendar_sub.add_parser(
        "import", help="check a notice file (TOML, see docs/legal-reference.md) and install it for the SDK"
    )
    cal_import.add_argument("file", help="the notice as TOML, in the format of law/data/prc-YYYY.toml")
    cal_import.add_argument("--dir", help="where to install it (default: $DELIVERY_SDK_CALENDAR_DIR)")
    cal_import.add_argument(
        "--force", action="store_true", help="import even if a statutory holiday is missing from its holidays"
    )
    calendar.set_defaults(func=_calendar)
    from .worker import add_worker_arguments

    worker = sub.add_parser("worker", help="run the engine as a long-lived worker process (SIGTERM stops it cleanly)")
    add_worker_arguments(worker)
    worker.set_defaults(func=_worker)
    check = sub.add_parser(
        "check-config",
        help="load the settings and every plugin exactly as the worker would; print what is registered (exit 2 on "
        "any problem)",
    )
    add_worker_arguments(check)
    check.set_defaults(func=_check_config)
    from .receiver import add_receiver_arguments

    receiver = sub.add_parser(
        "receiver",
        help="serve the callback receiver apart from the worker (same settings file; never runs the engine)",
    )
    add_receiver_arguments(receiver)
    receiver.set_defaults(func=_receiver)
    from .sandbox import add_sandbox_arguments

    sandbox = sub.add_parser(
        "sandbox", help="run the installed plugins' provider emulators on fixed local ports (integration tests)"
    )
    add_sandbox_arguments(sandbox)
    sandbox.set_defaults(func=_sandbox)
    from .plugin_kit import scaffold

    new_plugin = sub.add_parser("new-plugin", help="write a new channel plugin package to fill in (plugin authors)")
    scaffold.add_arguments(new_plugin)
    new_plugin.set_defaults(func=scaffold.run_from_args)
    portal = sub.add_parser(
        "portal", help="serve the recipients' document page behind every link (needs the 'portal' extra)"
    )
    _add_store(portal)
    portal.add_argument("--documents", help="document folder (<sha256>.pdf; default $DELIVERY_SDK_PORTAL_DOCUMENTS)")
    portal.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: behind a proxy)")
    portal.add_argument("--port", type=int, default=8300)
    portal.add_argument("--root-path", default="", help="the path the proxy mounts the page under, e.g. /ssfw")
    portal.add_argument("--forwarded-allow-ips", default="127.0.0.1", help="proxies trusted for X-Forwarded-*")
    portal.set_defaults(func=_portal)
    access = sub.add_parser("access", help="who looked at a task's personal data, or what a staff member looked at")
    _add_store(access)
    access.add_argument("--task", help="the task: who looked at its party's data")
    access.add_argument("--actor", dest="staff", metavar="STAFF_ID", help="the staff member: what they looked at")
    access.add_argument(
        "--as", dest="acting", metavar="ACTOR", help="who asks (role:staff_id@courts; default $DELIVERY_SDK_ACTOR)"
    )
    _add_read_options(access)
    access.set_defaults(func=_access)
    for name in ("status", "tasks", "report", "stats", "verify", "proof"):
        _add_actor(sub.choices[name])
    register_cli_plugins(sub)
    return parser


def _add_actor(parser: argparse.ArgumentParser) -> None:
    """``--actor`` (and ``--as``): who runs the command (docs/access.md)."""
    parser.add_argument(
        "--actor",
        "--as",
        dest="acting",
        metavar="ACTOR",
        help="who acts: role:staff_id@courts, e.g. clerk:c0106-01@鄂0106 (default: $DELIVERY_SDK_ACTOR, else local)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code: 0 ok, 1 a check failed (a verification, an address that
    did not resolve), 2 usage or bad input (unknown option, missing store, unknown task or case...)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _store_alias(parser, args)
    try:
        code: int = args.func(args)
    except BrokenPipeError:  # the reader (head, less) went away: not an error of ours
        sys.stderr.close()
        return 0
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (AccessDenied, ValidationError) as exc:  # out of the actor's scope, a bad --actor: what, and the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:  # a store (or an output file) this user may not read or write
        print(f"error: {exc.strerror or 'permission denied'}: {exc.filename or ''}", file=sys.stderr)
        return 2
    except StoreError as exc:  # cannot connect, newer schema, supervision on PostgreSQL...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
