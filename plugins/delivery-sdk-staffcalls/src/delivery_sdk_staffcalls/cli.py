"""``delivery-sdk calls``: the staff-call queue from the command line (a ``delivery_sdk.cli`` entry point).

::

    delivery-sdk calls list    --store PATH [--queue PATH_OR_DSN] [--all] [--json]
    delivery-sdk calls claim   --store PATH --staff NAME [--lease-minutes 15] [--json]
    delivery-sdk calls release CALL_ID --token TOKEN --store PATH
    delivery-sdk calls record  CALL_ID --token TOKEN --outcome OUTCOME --staff NAME --store PATH
                               [--scope sms,eservice] [--note TEXT]

The queue defaults to the file next to the store (``service.sqlite3`` -> ``service.staffcalls.sqlite3``),
or ``$DELIVERY_SDK_STAFFCALLS_QUEUE``. ``list`` masks numbers and names; ``claim`` shows the full number
of the one call it leases to you, with the token that ``record`` and ``release`` need.

This module imports nothing heavy at import time: every ``delivery-sdk`` invocation loads it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import StaffCalls

__all__ = ["register"]

OUTCOMES = ("reached_consented", "refused", "wrong_number", "no_answer")


def register(subparsers: Any) -> None:
    """Add ``calls`` and its subcommands to the ``delivery-sdk`` parser."""
    calls = subparsers.add_parser("calls", help="staff phone calls: list, claim, release and record call tasks")
    sub = calls.add_subparsers(dest="calls_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--store", required=True, help="the SQLite store the engine runs on")
        parser.add_argument(
            "--queue",
            help="the call queue: a SQLite path or a postgresql:// DSN "
            "(default: $DELIVERY_SDK_STAFFCALLS_QUEUE, else the file next to the store)",
        )
        parser.add_argument("--channel", default="staff-calls", help="the staff-call channel's name")

    listing = sub.add_parser("list", help="the open calls (numbers masked), due ones first")
    common(listing)
    listing.add_argument("--all", action="store_true", help="also the calls someone has claimed")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.set_defaults(func=_list)

    claim = sub.add_parser("claim", help="lease the next due call to you and show it (with the full number)")
    common(claim)
    claim.add_argument("--staff", required=True, help="your name or staff id")
    claim.add_argument("--lease-minutes", type=float, default=15.0, help="how long the call stays yours (15)")
    claim.add_argument("--json", action="store_true", help="print the call as JSON")
    claim.set_defaults(func=_claim)

    release = sub.add_parser("release", help="give a claimed call back to the queue unmade")
    common(release)
    release.add_argument("call_id")
    release.add_argument("--token", required=True, help="the token 'claim' printed")
    release.set_defaults(func=_release)

    record = sub.add_parser("record", help="record the outcome of the call you made")
    common(record)
    record.add_argument("call_id")
    record.add_argument("--token", required=True, help="the token 'claim' printed")
    record.add_argument("--outcome", required=True, choices=OUTCOMES)
    record.add_argument("--staff", required=True, help="your name or staff id")
    record.add_argument("--scope", help="with reached_consented: channels agreed to, e.g. sms,eservice,email")
    record.add_argument("--note", help="kept in the queue's attempt history (never in the task's events)")
    record.set_defaults(func=_record)


def _open(args: argparse.Namespace) -> tuple[Any, StaffCalls]:
    from delivery_sdk import DeliveryClient

    from . import ENV_QUEUE, StaffCalls, StaffCallsPlugin, queue_path_beside

    if not Path(args.store).exists():
        raise FileNotFoundError(f"no store at {args.store}; give the store the engine runs on (--store PATH)")
    queue = args.queue or os.environ.get(ENV_QUEUE) or queue_path_beside(args.store)
    client = DeliveryClient(
        str(args.store),  # the client owns (and closes) the store it opens from a path
        plugins=[StaffCallsPlugin(queue, name=args.channel)],
        load_entry_points=False,
    )
    return client, StaffCalls(client, channel=args.channel)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _run(args: argparse.Namespace, action: Any) -> int:
    from . import StaffCallError

    client, calls = _open(args)
    try:
        code: int = action(calls)
        return code
    except (StaffCallError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _list(args: argparse.Namespace) -> int:
    def action(calls: StaffCalls) -> int:
        now = calls.client.clock.now()
        rows = calls.open_calls(include_claimed=args.all)
        for c in rows:
            if args.json:
                print(
                    json.dumps(
                        {
                            "call_id": c.call_id,
                            "task_id": c.task_id,
                            "phone": c.phone,
                            "recipient": c.recipient,
                            "court": c.court,
                            "case_number": c.case_number,
                            "attempts": c.attempts,
                            "max_attempts": c.max_attempts,
                            "due_at": c.due_at.isoformat(),
                            "due": c.due(now),
                            "leased_by": c.leased_by if c.leased(now) else None,
                        },
                        ensure_ascii=False,
                    )
                )
                continue
            when = "due now" if c.due(now) else (f"claimed by {c.leased_by}" if c.leased(now) else "due")
            print(
                f"{c.call_id:<16} {c.phone:<13} {c.recipient:<8} {c.case_number:<24} "
                f"attempt {c.attempts + 1}/{c.max_attempts}  {when} {_when(c.due_at)}"
            )
        if not rows and not args.json:
            print("no open calls", file=sys.stderr)
        return 0

    return _run(args, action)


def _claim(args: argparse.Namespace) -> int:
    def action(calls: StaffCalls) -> int:
        call = calls.claim(args.staff, lease=timedelta(minutes=args.lease_minutes))
        if call is None:
            print("no call is due now", file=sys.stderr)
            return 1
        if args.json:
            print(
                json.dumps(
                    {
                        "call_id": call.call_id,
                        "token": call.token,
                        "task_id": call.task_id,
                        "phone": call.phone,
                        "recipient": call.recipient,
                        "court": call.court,
                        "case_number": call.case_number,
                        "documents": list(call.documents),
                        "attempt": call.attempts + 1,
                        "max_attempts": call.max_attempts,
                        "lease_until": call.lease_until.isoformat(),
                    },
                    ensure_ascii=False,
                )
            )
            return 0
        print(f"call      {call.call_id}  (attempt {call.attempts + 1} of {call.max_attempts})")
        print(f"phone     {call.phone}")
        print(f"party     {call.recipient}")
        print(f"case      {call.court} {call.case_number}")
        print(f"documents {'、'.join(call.documents)}")
        print(f"yours until {_when(call.lease_until)}; token {call.token}")
        print(f"record:   delivery-sdk calls record {call.call_id} --token {call.token} --outcome OUTCOME ...")
        return 0

    return _run(args, action)


def _release(args: argparse.Namespace) -> int:
    def action(calls: StaffCalls) -> int:
        calls.release(args.call_id, token=args.token)
        print(f"call {args.call_id} released")
        return 0

    return _run(args, action)


def _record(args: argparse.Namespace) -> int:
    def action(calls: StaffCalls) -> int:
        scope = [s.strip() for s in (args.scope or "").split(",") if s.strip()]
        recorded, ingested = calls.record(
            args.call_id, args.outcome, token=args.token, staff=args.staff, scope=scope, note=args.note
        )
        if recorded.next_due_at is not None:
            print(
                f"call {recorded.call_id}: {recorded.outcome.value}, attempt {recorded.attempts}; "
                f"next attempt from {_when(recorded.next_due_at)}"
            )
        else:
            engine = f"; engine: {ingested.outcome.value}" if ingested is not None else ""
            print(f"call {recorded.call_id}: {recorded.outcome.value}, {recorded.state.value}{engine}")
        return 0

    return _run(args, action)
