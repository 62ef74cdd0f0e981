"""The ``delivery-sdk`` command: a demo of a provincial service centre, and reading a store.

::

    delivery-sdk demo [--tasks N] [--seed S] [--store PATH] [--no-progress]
    delivery-sdk status TASK_ID --store PATH
    delivery-sdk verify STORE [--key VKEY]... [--trusted-checkpoint FILE] [--origin NAME] [--require-signed]
    delivery-sdk proof TASK_ID --store PATH [--out FILE]
    delivery-sdk proof --consistency OLD_NOTE [--to NEW_NOTE] --store PATH [--out FILE]
    delivery-sdk verify-consistency PROOF --trusted-checkpoint OLD_NOTE --key VKEY... [--update]
    delivery-sdk verify-record FILE [--key VKEY]... [--origin NAME] [--document PATH]...
    delivery-sdk keygen NAME
    delivery-sdk tasks --case CASE_NUMBER --store PATH [--court COURT]
    delivery-sdk resolve-address [ADDRESS... | - | --file PATH] [--home-province CODE]
    delivery-sdk report --store PATH [--out report.html] [--json PATH] [--csv PATH]
    delivery-sdk stats --store PATH [--json]
    delivery-sdk migrate --store PATH_OR_DSN
    delivery-sdk worker --store PATH_OR_DSN [--health-file FILE] [--health-port PORT] [--lease S]
                        [--poll-after S[,S...]] [--callbacks-port PORT [--callbacks-host HOST]]
                        [--config SETTINGS.toml]
    delivery-sdk check-config [--config SETTINGS.toml] [--store PATH_OR_DSN] [--plugin MODULE[:NAME]]...
    delivery-sdk sandbox [--base-port 18000] [--state-dir DIR] [--callback-url URL] [--env | --received]
    delivery-sdk calendar show [YEAR]
    delivery-sdk calendar import NOTICE.toml [--dir DIR] [--force]

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

from ._exceptions import StoreError

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


def _open(path: str) -> object:
    from .client import DeliveryClient
    from .store import is_dsn, open_store

    if not is_dsn(path) and not Path(path).exists():
        raise FileNotFoundError(f"no store at {path}; give the path the demo printed (--store PATH)")
    # a command that reads opens the store read-only: nothing is created, migrated or written
    return DeliveryClient(open_store(path, readonly=True), load_entry_points=False)


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
    from ._exceptions import UnknownTask
    from .client import DeliveryClient
    from .law.citations import chinese

    client = _open(args.store)
    assert isinstance(client, DeliveryClient)
    with client:
        try:
            st = client.status(args.task_id)
        except UnknownTask as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"task {_shown(st.task_id)}  {_shown(st.court)} {_shown(st.case_number)}  party {_shown(st.party_id)}")
        print(f"  state     {st.state.value}")
        if st.method is not None:
            print(f"  served    {st.method.value} on {st.served_at:%Y-%m-%d %H:%M %Z} ({_shown(st.basis_zh)})")
        for deadline in st.deadlines:
            label = " [暂定 provisional]" if deadline.provisional else ""
            basis = _shown(chinese(deadline.basis))  # the law in Chinese, for court staff
            print(f"  deadline  {_shown(deadline.name)} by {deadline.due:%Y-%m-%d}{label} ({basis})")
            if deadline.provisional:  # the calendar of its last day rests on no State Council notice yet
                print(f"            {_shown(deadline.calendar)}")
        if st.deadlines_note:
            print(f"  deadlines {_shown(st.deadlines_note)}")
        if st.attention_reason:
            print(f"  attention {_shown(st.attention_reason)}")
        for d in st.dispatches:
            print(
                f"  dispatch  {_shown(d.dispatch_id):<14} {d.kind.value:<9} {_shown(d.channel):<20} "
                f"{d.status.value:<10} {_shown(d.contact)}"
            )
        print("  timeline")
        for stored in client.timeline(args.task_id):
            ev = stored.event
            print(f"    {stored.task_seq:>3}  {ev.at:%Y-%m-%d %H:%M}  {ev.TYPE}")
        client.store.close()
    return 0


def _calendar(args: argparse.Namespace) -> int:
    """``calendar show YEAR``: a year's rest and makeup working days, official or provisional;
    ``calendar import FILE``: check a State Council notice and put it where the SDK reads notices."""
    from ._exceptions import ValidationError
    from .law.holidays import BEIJING, CALENDAR_DIR_ENV, describe_year, import_notice

    if args.calendar_command == "show":
        year = args.year if args.year is not None else datetime.now(BEIJING).year
        try:
            print(describe_year(year), end="")
        except ValidationError as exc:  # CalendarNotCovered: a year beyond every calendar
            print(f"error: {exc}", file=sys.stderr)
            return 1
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
    from .client import DeliveryClient
    from .store import SQLiteStore

    client = _open(args.store)
    assert isinstance(client, DeliveryClient)
    with client:
        store = cast(SQLiteStore, client.store)  # or a PostgresStore: both have case_keys
        keys = [f"{args.court}|{args.case}"] if args.court else store.case_keys(args.case)
        rows = [st for key in keys for st in client.tasks_of_case(key)]
        if not rows:
            print(f"no tasks for case {args.case!r}", file=sys.stderr)
            store.close()
            return 1
        for st in rows:
            served = f"{st.method.value} {st.served_at:%Y-%m-%d %H:%M}" if st.method and st.served_at else ""
            print(f"{_shown(st.task_id)}  {_shown(st.court)}  {_shown(st.party_id):<10} {st.state.value:<16} {served}")
        store.close()
    return 0


def _resolve_address(args: argparse.Namespace) -> int:
    import json

    from ._exceptions import ValidationError
    from .address.resolver import resolve

    if args.file and args.addresses:
        print("error: give addresses as arguments or --file, not both", file=sys.stderr)
        return 2
    if args.file or args.addresses == ["-"]:
        name = args.file or "-"
        if name == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(name).read_text(encoding="utf-8", errors="replace").splitlines()
        addresses = [line.strip() for line in lines if line.strip()]
    else:
        addresses = list(args.addresses)
    if not addresses:
        print("error: no address given (ADDRESS..., '-' for stdin, or --file PATH)", file=sys.stderr)
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


def _hours(value: float | None) -> str:
    return "-" if value is None else _fmt(timedelta(hours=value))


def _report(args: argparse.Namespace) -> int:
    from .store import is_dsn
    from .supervision import write_report

    if not is_dsn(args.store) and not Path(args.store).exists():
        raise FileNotFoundError(f"no store at {args.store}; give the path the demo printed (--store PATH)")
    out = Path(args.out) if args.out else Path(args.store).with_suffix(".html")
    options = _supervision_options(args)
    write_report(args.store, out, json_path=args.json, csv_path=args.csv, upgrade=False, **options)
    print(f"report written to {out.resolve()}")
    for extra in (args.json, args.csv):
        if extra:
            print(f"export written to {Path(extra).resolve()}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    import json

    from .store import is_dsn
    from .supervision import Supervisor

    if not is_dsn(args.store) and not Path(args.store).exists():
        raise FileNotFoundError(f"no store at {args.store}; give the path the demo printed (--store PATH)")
    options = _supervision_options(args)
    with Supervisor(args.store, upgrade=False) as sup:
        if not sup.indexed:
            _note_unindexed(args.store)
        s = sup.statistics(**options)
    if args.json:
        print(json.dumps(s.to_dict(), ensure_ascii=False, indent=1, sort_keys=True))
        return 0
    print(f"as of {s.as_of:%Y-%m-%d %H:%M %Z}")
    print(f"  tasks                     {s.tasks:>10,}")
    for state, n in sorted(s.by_state.items()):
        print(f"    {state:<22}  {n:>10,}")
    print(f"  served                    {s.served:>10,}")
    for method, n in sorted(s.by_method.items(), key=lambda kv: -kv[1]):
        print(f"    {method:<22}  {n:>10,}  ({n / s.served if s.served else 0:6.1%})")
    print(f"  fell back to post         {s.fallback_rate:>10.1%}")
    print("  funnel")
    for stage, n in s.funnel:
        print(f"    {stage:<24}{n:>10,}")
    for name, d in (("created to served", s.cycle_served), ("served to filed", s.cycle_filed)):
        print(
            f"  cycle {name}: n {d.count:,}  mean {_hours(d.mean_hours)}  median {_hours(d.median_hours)}"
            f"  p90 {_hours(d.p90_hours)}"
        )
    print("  success per channel")
    for ch in s.channels:
        print(f"    {ch.kind:<9}{ch.channel:<20}{ch.delivered:>9,}/{ch.attempts:<9,} ({ch.success_rate:6.1%})")
    print("  load per print centre (jobs / not printed)")
    for c in s.centres:
        refused = f"   (carrier refused {c.carrier_refused:,} before the centre)" if c.carrier_refused else ""
        print(f"    {c.centre_id:<20}{c.jobs:>9,} / {c.open:,}{refused}")
    print("  overdue " + ", ".join(f"{rule} {n:,}" for rule, n in sorted(s.overdue.items())))
    cost = s.cost
    print(
        f"  cost {cost['actual_yuan']:,.0f} yuan vs all-postal {cost['baseline_all_postal_yuan']:,.0f}: "
        f"saved {cost['savings_yuan']:,.0f} yuan"
    )
    # provider reports the engine would not apply (an attack, or a misconfigured adapter): see docs/security.md
    print(f"  refused provider reports  {s.refused:>10,}")
    for row in s.refused_receipts:
        print(f"    {_shown(row.source):<20}{row.reason:<18}{row.count:>9,}  last {row.last_at:%Y-%m-%d %H:%M %Z}")
    return 0


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


def _add_supervision_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True)
    parser.add_argument("--as-of", help="ISO time overdue work is measured at (default: the latest event)")
    parser.add_argument("--eservice-hours", type=float, default=48.0, help="e-service unconfirmed after (48)")
    parser.add_argument("--print-hours", type=float, default=24.0, help="print job not printed after (24)")
    parser.add_argument("--postal-yuan", type=float, default=20.0, help="cost of one postal service (20)")
    parser.add_argument("--electronic-yuan", type=float, default=0.0, help="cost of one electronic attempt (0)")


def _verify(args: argparse.Namespace) -> int:
    from .evidence.audit import verify_store

    trusted = Path(args.trusted_checkpoint).read_text(encoding="utf-8") if args.trusted_checkpoint else None
    report = verify_store(args.store, args.key or (), trusted_checkpoint=trusted, origin=args.origin)
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
        f"checkpoints; every event, column, task row, tree node and checkpoint matches ({signed})"
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

    from .evidence.audit import export_bundle, export_consistency

    if (args.task_id is None) == (args.consistency is None):
        print("error: give a TASK_ID (inclusion proofs) or --consistency OLD (a consistency proof)", file=sys.stderr)
        return 2
    if args.to and not args.consistency:
        print("error: --to goes with --consistency", file=sys.stderr)
        return 2
    try:
        if args.consistency:
            old = _read_note(args.consistency)
            bundle = export_consistency(args.store, old, _read_note(args.to) if args.to else None)
            proof = bundle["proof"]
            what = f"consistency proof from size {proof['size1']} to {proof['size2']}"
        else:
            bundle = export_bundle(args.store, args.task_id)
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
        print(f"FAIL: {reason}")
        return 1
    print(f"ok: log {new.origin!r} at size {new.size} extends the trusted checkpoint; nothing before it changed")
    if args.update:
        write_witness(args.trusted_checkpoint, bundle["new_checkpoint"])
        print(f"kept the new checkpoint in {args.trusted_checkpoint}")
    return 0


def _verify_record(args: argparse.Namespace) -> int:
    from .proof.verify import verify_record

    path = Path(args.file)
    if not path.exists():
        raise FileNotFoundError(f"no record at {path}")
    check = verify_record(path.read_bytes(), args.key or (), origin=args.origin, documents=args.document or ())
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


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import run_from_args

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
    parser = argparse.ArgumentParser(prog="delivery-sdk", description="Service of court documents (送达), end to end.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a day of a provincial service centre on a fresh SQLite store")
    demo.add_argument("--tasks", type=int, default=3000, help="number of service tasks (default 3000)")
    demo.add_argument("--seed", type=int, default=2024, help="random seed (default 2024)")
    demo.add_argument("--store", help="SQLite file to write (default: a new file in the current folder)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)
    status = sub.add_parser("status", help="show one task: state, dispatches, timeline")
    status.add_argument("task_id")
    status.add_argument("--store", required=True)
    status.set_defaults(func=_status)
    tasks = sub.add_parser("tasks", help="list the tasks of a case")
    tasks.add_argument("--case", required=True, help="case number, e.g. '(2026)鄂0106民初1001号'")
    tasks.add_argument("--court", help="court name (needed outside the demo's courts)")
    tasks.add_argument("--store", required=True)
    tasks.set_defaults(func=_tasks)
    res = sub.add_parser("resolve-address", help="resolve addresses to division codes, one JSON object a line")
    res.add_argument("addresses", nargs="*", metavar="ADDRESS", help="addresses, or '-' to read one a line from stdin")
    res.add_argument("--file", help="read one address a line from this file ('-' for stdin)")
    res.add_argument("--home-province", default="420000", help="province code that breaks ties (default 420000)")
    res.set_defaults(func=_resolve_address)
    report = sub.add_parser("report", help="write the supervision dashboard (static HTML) and JSON/CSV exports")
    _add_supervision_options(report)
    report.add_argument("--out", help="HTML file to write (default: beside the store, .html)")
    report.add_argument("--json", help="also write the dashboard's data as JSON here")
    report.add_argument("--csv", help="also write the dashboard's figures as CSV here")
    report.set_defaults(func=_report)
    stats = sub.add_parser("stats", help="print the supervision statistics")
    _add_supervision_options(stats)
    stats.add_argument("--json", action="store_true", help="print them as JSON")
    stats.set_defaults(func=_stats)
    verify = sub.add_parser("verify", help="audit a store's evidence log: every event, tree node and checkpoint")
    verify.add_argument("store")
    verify.add_argument("--key", action="append", help="a trusted verifier key (name+hash+base64); repeatable")
    verify.add_argument("--trusted-checkpoint", help="a signed checkpoint trusted earlier: refuse a rewritten history")
    verify.add_argument("--origin", help="the log's name in its checkpoints (default: the name of the key that signed)")
    verify.add_argument(
        "--require-signed", action="store_true", help="fail when events are not yet covered by a signed checkpoint"
    )
    verify.set_defaults(func=_verify)
    proof = sub.add_parser(
        "proof",
        help="export a task's events with inclusion proofs, or a consistency proof between two checkpoints",
    )
    proof.add_argument("task_id", nargs="?", help="the task whose events to prove (or give --consistency)")
    proof.add_argument("--store", required=True)
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
    vcon.set_defaults(func=_verify_consistency)
    vrec = sub.add_parser("verify-record", help="check a proof-of-service record (JSON) offline")
    vrec.add_argument("file")
    vrec.add_argument("--key", action="append", help="a trusted verifier key for its proof bundle; repeatable")
    vrec.add_argument("--origin", help="the evidence log's name in the bundle's checkpoint")
    vrec.add_argument("--document", action="append", help="a served document's file: its SHA-256 must be listed")
    vrec.set_defaults(func=_verify_record)
    migrate = sub.add_parser(
        "migrate", help="upgrade a store to this SDK's schema and add the supervision indexes (writes to it)"
    )
    migrate.add_argument("--store", required=True)
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
    from .sandbox import add_sandbox_arguments

    sandbox = sub.add_parser(
        "sandbox", help="run the installed plugins' provider emulators on fixed local ports (integration tests)"
    )
    add_sandbox_arguments(sandbox)
    sandbox.set_defaults(func=_sandbox)
    register_cli_plugins(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:  # the reader (head, less) went away: not an error of ours
        sys.stderr.close()
        return 0
    except FileNotFoundError as exc:
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
