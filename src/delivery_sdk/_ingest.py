"""The engine's orchestration of providers' reports: ingesting a receipt (a callback, a relayed report) and
applying what an adapter answered to a send or a status call, refusals counted for supervision.

What a report becomes and whether it is news is the lifecycle's (``lifecycle.receipt_event``,
``fact_is_news``); what an ingest comes to is the policy's (``policy.ingest_outcome``); who may report what
is ``delivery_sdk.trust``'s. This module reads, asks them, writes and counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from ._conflicts import Conflict, until_committed
from ._exceptions import IllegalTransition, MalformedReceipt
from .channels import ChannelAdapter, Receipt
from .events import NeedsAttention
from .lifecycle import Task, apply, fact_is_news, receipt_event
from .model import ChannelKind, Dispatch
from .policy import IngestOutcome, implausible_report_needs_person, ingest_outcome
from .store import RefusedReceipt
from .store._base import RefusalStore
from .trust import Refusal, Reporter, allowed_reports, implausible_time, provenance_refusal

if TYPE_CHECKING:
    from ._work import Work as _Work
    from .engine import Engine

__all__ = ["IngestResult"]

log = logging.getLogger("delivery_sdk.engine")

_PRINT, _POST = ChannelKind.PRINT, ChannelKind.POST


@attrs.frozen(kw_only=True)
class IngestResult:
    """The result of ingesting one report: its outcome, the task and event type it touched, and why it was refused if it
    was."""

    outcome: IngestOutcome
    task_id: str | None = None
    event_type: str | None = None
    message: str = ""
    refusal: str | None = None  # REFUSED / IMPLAUSIBLE_TIME: the reason code (a delivery_sdk.trust.Refusal value)


def implausible_reason(source: str, dispatch_id: str, wrong_time: str) -> str:
    """Why a task waits for a person after a report with an unbelievable time (the same report, the same
    reason: a retried report asks nobody twice)."""
    return (
        f"a report on dispatch {dispatch_id} from {source!r} was not applied: it claims {wrong_time}; "
        "check the provider's clock or the report, then resume the task"
    )


class Refusals:
    """Refused receipts counted until :meth:`keep` hands them to the store (a store without a
    :class:`~delivery_sdk.store._base.RefusalStore` keeps none: the log has them). Only the adapter's name, the
    reason and the dispatch id named are kept: never the report's content."""

    def __init__(self, keeper: RefusalStore | None) -> None:
        self.keeper = keeper
        self.pending: list[RefusedReceipt] = []

    def refuse(self, why: Refusal, source: str | None, dispatch_id: str, detail: str, now: datetime) -> None:
        """Count one refused receipt."""
        log.warning("refused a receipt on dispatch %s from %r (%s): %s", dispatch_id, source, why.value, detail)
        self.pending.append(
            RefusedReceipt(
                at=now,
                source=(source or "")[:100],
                reason=why.value,
                dispatch_id=dispatch_id[:200],
                detail=detail[:300],
            )
        )

    def refused_answer(self, channel: str, dispatch: Dispatch, receipt: Receipt, now: datetime) -> None:
        """An adapter's answer about ``dispatch`` carried a receipt it may not give: about another dispatch,
        or of a kind that adapter does not report."""
        if receipt.dispatch_id != dispatch.dispatch_id:
            detail = f"asked about dispatch {dispatch.dispatch_id}, {channel!r} answered about another dispatch"
            self.refuse(Refusal.OTHER_DISPATCH, channel, dispatch.dispatch_id, detail, now)
        else:
            detail = f"{channel!r} does not report {receipt.kind.value!r} on a {dispatch.kind.value} dispatch"
            self.refuse(Refusal.NOT_ITS_REPORT, channel, dispatch.dispatch_id, detail, now)

    def implausible(self, source: str, dispatch_id: str, wrong_time: str, now: datetime) -> str:
        """Count a receipt whose time was not believed; returns the attention reason."""
        self.refuse(Refusal.IMPLAUSIBLE_TIME, source, dispatch_id, wrong_time, now)
        return implausible_reason(source, dispatch_id, wrong_time)

    def keep(self) -> None:
        """Hand the refusals counted so far to the store."""
        refusals, self.pending = self.pending, []
        if self.keeper is not None:
            self.keeper.record_refusals(refusals)


def apply_answer(
    engine: Engine, work: _Work, adapter: ChannelAdapter, dispatch: Dispatch, receipts: Sequence[Receipt], now: datetime
) -> None:
    """Apply what ``adapter`` answered to a send or status call about ``dispatch``: only receipts about that
    dispatch, of the kinds that adapter reports (delivery_sdk.trust), still news and with a believable time;
    the rest are refused and counted."""
    if not receipts:
        return
    channel = adapter.name
    dispatch_id = dispatch.dispatch_id
    kind = dispatch.kind
    if kind is _PRINT:  # the engine asked the carrier (a waybill to track) or the print centre
        allowed = allowed_reports(kind, Reporter.CARRIER if adapter.kind is _POST else Reporter.CENTRE)
    else:
        allowed = allowed_reports(kind, Reporter.CHANNEL)
    skew = engine.config.clock_skew
    for receipt in receipts:
        if receipt.dispatch_id != dispatch_id or receipt.kind not in allowed:
            engine.refusals.refused_answer(channel, dispatch, receipt, now)
            continue
        record = work.task.dispatch(dispatch_id)
        if record is None:
            continue
        event = receipt_event(work.task.task_id, now, receipt)
        if not fact_is_news(record, event):
            continue
        wrong_time = implausible_time(receipt.kind, receipt.at, record.queued_at, now, skew)
        if wrong_time is not None:
            reason = engine.refusals.implausible(channel, dispatch_id, wrong_time, now)
            if implausible_report_needs_person(work.task, reason):
                engine.apply_event(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=reason))
            continue
        key = f"{channel}:{receipt.provider_event_id}" if receipt.provider_event_id else None
        if key is not None and key in work.receipt_keys:
            continue
        if engine.apply_event(work, event) and key is not None:
            work.receipt_keys.append(key)


def ingest(engine: Engine, receipt: Receipt, channel: str | None) -> IngestResult:
    """:meth:`Engine.ingest <delivery_sdk.engine.Engine.ingest>`."""
    if not isinstance(receipt, Receipt):
        raise MalformedReceipt(f"ingest takes a Receipt, got {type(receipt).__name__}")
    task_id = engine.store.dispatch_task(receipt.dispatch_id)
    if task_id is None:
        return IngestResult(
            outcome=IngestOutcome.UNKNOWN_DISPATCH, message=f"no dispatch {receipt.dispatch_id!r} in this store"
        )
    return until_committed(
        lambda: _ingest_once(engine, task_id, receipt, channel),
        f"ingesting a report on dispatch {receipt.dispatch_id}",
    )


def _ingest_once(engine: Engine, task_id: str, receipt: Receipt, channel: str | None) -> IngestResult | Conflict:
    task = engine.load_task(task_id)
    record = task.dispatch(receipt.dispatch_id)
    if record is None:  # intent committed by a crashed engine before its event? cannot happen
        return IngestResult(outcome=IngestOutcome.UNKNOWN_DISPATCH, task_id=task_id)
    refused = provenance_refusal(record, receipt.kind, channel, engine.channel_kinds.get(_POST))
    if refused is not None:
        why, message = refused
        engine.refusals.refuse(why, channel, record.dispatch_id, message, engine.clock.now())
        engine.refusals.keep()
        return IngestResult(outcome=IngestOutcome.REFUSED, task_id=task_id, message=message, refusal=why.value)
    source = channel or record.channel
    key = f"{source}:{receipt.provider_event_id}" if receipt.provider_event_id else None
    if key is not None and engine.store.receipt_seen(key):
        return IngestResult(
            outcome=IngestOutcome.DUPLICATE,
            task_id=task_id,
            message=f"provider event {receipt.provider_event_id!r} was recorded before",
        )
    now = engine.clock.now()
    wrong_time = implausible_time(receipt.kind, receipt.at, record.queued_at, now, engine.config.clock_skew)
    if wrong_time is not None:
        return _ingest_implausible(engine, task, source, record.dispatch_id, wrong_time, now)
    outcome = ingest_outcome(task, record, receipt, keyed=key is not None)
    if outcome is IngestOutcome.DUPLICATE:
        return IngestResult(
            outcome=outcome, task_id=task_id, message=f"dispatch {receipt.dispatch_id} already shows this"
        )
    event = receipt_event(task_id, now, receipt)
    try:
        after = apply(task, event)
    except IllegalTransition as exc:
        return IngestResult(outcome=IngestOutcome.LATE, task_id=task_id, event_type=event.TYPE, message=str(exc))
    written = engine.write_one(
        task, after, event, due_at=None if after.terminal else now, receipt_keys=(key,) if key else ()
    )
    if isinstance(written, Conflict):
        return written
    return IngestResult(outcome=outcome, task_id=task_id, event_type=event.TYPE)


def _ingest_implausible(
    engine: Engine, task: Task, source: str, dispatch_id: str, wrong_time: str, now: datetime
) -> IngestResult | Conflict:
    """A receipt whose time cannot be a fact of its dispatch: nothing of it is applied; the task goes to a
    person (once per reason) unless its service is decided already."""
    reason = implausible_reason(source, dispatch_id, wrong_time)
    result = IngestResult(
        outcome=IngestOutcome.IMPLAUSIBLE_TIME,
        task_id=task.task_id,
        message=reason,
        refusal=Refusal.IMPLAUSIBLE_TIME.value,
    )
    if implausible_report_needs_person(task, reason):
        event = NeedsAttention(task_id=task.task_id, at=now, reason=reason)
        written = engine.write_one(task, apply(task, event), event, due_at=now)
        if isinstance(written, Conflict):
            return written  # the task moved on meanwhile: look again
        result = attrs.evolve(result, event_type=event.TYPE)
    engine.refusals.refuse(Refusal.IMPLAUSIBLE_TIME, source, dispatch_id, wrong_time, now)
    engine.refusals.keep()
    return result
