"""The engine's provider calls for one dispatch: send it (ordering a carrier's waybill first for a print
job), reconcile an in-doubt send through the provider's status, poll a dispatch's status. Every call goes
through the adapter's limit and the retry schedule (``Engine._call``); what the answers mean is the
lifecycle's and the policy's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from ._exceptions import ChannelError, TransientChannelError, UnknownChannel, UnsendableDispatch
from ._ingest import apply_answer
from ._inline import ADD_PHONE
from .adapters import transient_failover
from .channels import ChannelAdapter, SendResult, StatusReport
from .events import FAILED_BY_CARRIER, DispatchFailed, DispatchSent, NeedsAttention
from .model import ChannelKind, Dispatch

if TYPE_CHECKING:
    from ._work import Work as _Work
    from .engine import Engine

_PRINT, _POST = ChannelKind.PRINT, ChannelKind.POST


async def _provider_has_it(
    engine: Engine, work: _Work, adapter: ChannelAdapter, dispatch: Dispatch, now: datetime
) -> bool:
    """Ask the provider whether it has ``dispatch``; when it has, record it sent with what the provider
    reports and end its outbox entry."""
    report: StatusReport = await engine._call(adapter.name, "status", lambda: adapter.status(dispatch))
    if not report.found:
        return False
    event = DispatchSent(
        task_id=work.task.task_id, at=now, dispatch_id=dispatch.dispatch_id, provider_ref=report.provider_ref
    )
    engine.apply_event(work, event)
    apply_answer(engine, work, adapter, dispatch, report.receipts, now)
    work.outbox_done.append(dispatch.dispatch_id)
    return True


async def send_or_reconcile(engine: Engine, work: _Work, dispatch: Dispatch, now: datetime, *, reconcile: bool) -> None:
    """Send a dispatch (a print job with its waybill ordered first), or with ``reconcile`` first ask the
    provider whether an in-doubt send arrived; record the outcome and end the outbox entry."""
    try:
        adapter = engine._adapter(dispatch)
    except UnknownChannel as exc:
        engine.apply_event(
            work,
            DispatchFailed(task_id=work.task.task_id, at=now, dispatch_id=dispatch.dispatch_id, reason=str(exc)),
        )
        work.outbox_done.append(dispatch.dispatch_id)
        return
    name = adapter.name
    if reconcile and await _provider_has_it(engine, work, adapter, dispatch, now):
        return
    if dispatch.kind is _PRINT and dispatch.waybill is None:
        ordered = await _order_waybill(engine, work, dispatch, now)
        if ordered is None:
            work.outbox_done.append(dispatch.dispatch_id)
            return
        dispatch = ordered
    try:
        result: SendResult = await engine._call(name, "send", lambda: adapter.send(dispatch))
    except TransientChannelError as exc:
        failover = transient_failover(work.task, dispatch, engine.policy, engine.channel_adapters, exc, now)
        if failover is None:
            raise  # in doubt: stays queued; reconciled through status next time
        # never sent twice: a send that timed out may have arrived; only a provider that does not have it
        # (or cannot even answer whether it has) is failed over to the next adapter
        try:
            if await _provider_has_it(engine, work, adapter, dispatch, now):
                return
        except ChannelError:
            pass
        engine.apply_event(work, failover)  # retries exhausted, and the policy names a next adapter
        work.outbox_done.append(dispatch.dispatch_id)
        return
    except ChannelError as exc:
        engine.apply_event(
            work,
            DispatchFailed(
                task_id=work.task.task_id,
                at=now,
                dispatch_id=dispatch.dispatch_id,
                reason=str(exc) or type(exc).__name__,
            ),
        )
        if isinstance(exc, UnsendableDispatch):
            # no other provider would do better (the documents are wrong, say): a person, not a failover
            reason = f"dispatch {dispatch.dispatch_id} cannot be sent: {exc}"
            engine.apply_event(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=reason))
        work.outbox_done.append(dispatch.dispatch_id)
        return
    if result.accepted:
        engine.apply_event(
            work,
            DispatchSent(
                task_id=work.task.task_id,
                at=now,
                dispatch_id=dispatch.dispatch_id,
                provider_ref=result.provider_ref,
            ),
        )
        apply_answer(engine, work, adapter, dispatch, result.receipts, now)
    else:
        engine.apply_event(
            work,
            DispatchFailed(
                task_id=work.task.task_id,
                at=now,
                dispatch_id=dispatch.dispatch_id,
                reason=result.reason or "refused by the provider",
            ),
        )
    work.outbox_done.append(dispatch.dispatch_id)


async def _order_waybill(engine: Engine, work: _Work, dispatch: Dispatch, now: datetime) -> Dispatch | None:
    """The print job with the carrier's electronic waybill, ordered before the job goes to the centre, so
    the centre prints the label (no hand-written slips) and reports the item mailed under that number.

    Only for a carrier adapter (kind POST) that says ``orders_waybills = True``; its ``send`` is the order,
    idempotent on the dispatch id, so a job sent again after a crash gets the same waybill. Otherwise the
    job goes as it is and the centre supplies the waybill when it reports the item mailed. A carrier that
    refuses the order (an address or phone it cannot take) fails the job and asks a person.
    """
    carrier_name = engine.channel_kinds.get(_POST)
    if carrier_name is None:
        return dispatch
    carrier = engine.host.channels.get(carrier_name)
    if not getattr(carrier, "orders_waybills", False):
        return dispatch
    try:
        result: SendResult = await engine._call(carrier_name, "send", lambda: carrier.send(dispatch))
    except TransientChannelError:
        raise  # the job stays queued; reconciled (and the waybill ordered again, idempotently) next time
    except ChannelError as exc:
        result = SendResult(accepted=False, reason=str(exc) or type(exc).__name__)
    if result.accepted and result.provider_ref:
        return attrs.evolve(dispatch, waybill=result.provider_ref)
    task_id = work.task.task_id
    reason = f"the carrier refused the waybill order: {result.reason or 'no waybill number'}"
    if dispatch.recipient_phone is None:
        reason += f"; the party has no mobile number on the task: {ADD_PHONE}"
    failed = DispatchFailed(
        task_id=task_id, at=now, dispatch_id=dispatch.dispatch_id, reason=reason, failed_by=FAILED_BY_CARRIER
    )
    engine.apply_event(work, failed)
    engine.apply_event(work, NeedsAttention(task_id=task_id, at=now, reason=reason))
    return None


async def poll(engine: Engine, work: _Work, dispatch: Dispatch, now: datetime) -> None:
    """Ask the provider for a dispatch's status and apply its receipts."""
    adapter = engine._adapter(dispatch)
    report: StatusReport = await engine._call(adapter.name, "status", lambda: adapter.status(dispatch))
    apply_answer(engine, work, adapter, dispatch, report.receipts, now)
