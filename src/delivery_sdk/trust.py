"""Trust in what providers report: who may report what about a dispatch, and which reported times are believable.

Pure rules (no I/O, no clock, no globals): the engine asks them about every receipt, from a callback or from
its own polls, before any fact of it is recorded. See ARCHITECTURE.md, "Trust boundaries".

**Provenance.** A receipt comes through one adapter (its *source*: a channel adapter's name, or a print
centre's id). Only the dispatch's own adapters may report on it, and each only what it can know:

========================  ==========================  ==============================================
dispatch kind             its own adapter(s)          may report
========================  ==========================  ==============================================
SMS, WeChat, e-mail,      the channel it went out on  delivered, read, failed
e-service platform
staff calls (phone)       the staff-calls channel     delivered, read, failed, consented
print job                 its print centre            printed, enveloped, mailed, failed
print job                 the postal carrier (the     mailed, signed, returned
                          engine's ``POST`` adapter)
post (a ``POST`` kind)    its carrier channel         mailed, signed, returned, failed
========================  ==========================  ==============================================

Anything else is *refused*: it changes no task and is counted (see :func:`provenance_refusal`). The court's
document page (:mod:`delivery_sdk.portal`) is part of an electronic dispatch's own message (the link in it):
what the party does there is ingested with the dispatch's channel as the source, so it is that channel's
report (delivered, read) and passes these same checks.

**Plausible times.** The time a receipt claims for a legal fact (arrival, reading, signature, return,
consent, enveloping) must lie between the moment the dispatch was queued and now, give or take the
configured clock skew (:attr:`EngineConfig.clock_skew <delivery_sdk.engine.EngineConfig.clock_skew>`): a
report of a delivery in 1999, or in 2099, is not applied (see :func:`implausible_time`). The times of
``failed``, ``printed`` and ``mailed`` reports are not recorded as facts, so they are not checked.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from .channels import ReceiptKind
from .model import ChannelKind, DispatchRecord

__all__ = [
    "REPORTS",
    "TIMED_KINDS",
    "Refusal",
    "Reporter",
    "allowed_reports",
    "implausible_time",
    "provenance_refusal",
    "reporter",
]


class Reporter(enum.Enum):
    """The part an adapter plays for one dispatch."""

    CHANNEL = "channel"  # the channel the dispatch went out on (electronic, staff calls, a post channel)
    CENTRE = "centre"  # the print centre the print job went to
    CARRIER = "carrier"  # the postal carrier that carries the print job's mail


class Refusal(enum.Enum):
    """Why a receipt was not applied (the codes supervision counts refusals by)."""

    WRONG_ADAPTER = "wrong_adapter"  # the source is none of the dispatch's own adapters
    NOT_ITS_REPORT = "not_its_report"  # the dispatch's own adapter, reporting what it cannot know
    OTHER_DISPATCH = "other_dispatch"  # a poll or send about one dispatch answered about another
    IMPLAUSIBLE_TIME = "implausible_time"  # a time before the dispatch was queued, or in the future


_ELECTRONIC = frozenset({ReceiptKind.DELIVERED, ReceiptKind.READ, ReceiptKind.FAILED})

REPORTS: dict[tuple[ChannelKind, Reporter], frozenset[ReceiptKind]] = {
    **{
        (kind, Reporter.CHANNEL): _ELECTRONIC
        for kind in (ChannelKind.SMS, ChannelKind.WECHAT, ChannelKind.EMAIL, ChannelKind.ESERVICE)
    },
    (ChannelKind.PHONE, Reporter.CHANNEL): _ELECTRONIC | {ReceiptKind.CONSENTED},
    (ChannelKind.PRINT, Reporter.CENTRE): frozenset(
        {ReceiptKind.PRINTED, ReceiptKind.ENVELOPED, ReceiptKind.MAILED, ReceiptKind.FAILED}
    ),
    (ChannelKind.PRINT, Reporter.CARRIER): frozenset({ReceiptKind.MAILED, ReceiptKind.SIGNED, ReceiptKind.RETURNED}),
    (ChannelKind.POST, Reporter.CHANNEL): frozenset(
        {ReceiptKind.MAILED, ReceiptKind.SIGNED, ReceiptKind.RETURNED, ReceiptKind.FAILED}
    ),
}
"""What each of a dispatch's own adapters may report about it, by the dispatch's kind."""

_NOTHING: frozenset[ReceiptKind] = frozenset()
# What a trusted in-process caller (no source named) may record: whatever any of the dispatch's adapters may.
_ANY_OWN: dict[ChannelKind, frozenset[ReceiptKind]] = {}
for (_kind, _who), _reports in REPORTS.items():
    _ANY_OWN[_kind] = _ANY_OWN.get(_kind, _NOTHING) | _reports

# Receipt kinds whose time becomes a fact of the dispatch (and so, maybe, the legal service moment).
TIMED_KINDS = frozenset(
    {
        ReceiptKind.DELIVERED,
        ReceiptKind.READ,
        ReceiptKind.ENVELOPED,
        ReceiptKind.CONSENTED,
        ReceiptKind.SIGNED,
        ReceiptKind.RETURNED,
    }
)


def reporter(record: DispatchRecord, source: str, carrier: str | None) -> Reporter | None:
    """The part ``source`` plays for the dispatch, or None when it is none of the dispatch's own adapters.

    ``carrier`` is the name of the postal carrier adapter the engine tracks print jobs' mail with (its
    ``POST`` adapter), or None when there is none.
    """
    if record.kind is ChannelKind.PRINT:
        if source == record.centre_id or source == record.channel:
            return Reporter.CENTRE
        if carrier is not None and source == carrier:
            return Reporter.CARRIER
        return None
    return Reporter.CHANNEL if source == record.channel else None


def allowed_reports(kind: ChannelKind, who: Reporter | None) -> frozenset[ReceiptKind]:
    """What ``who`` may report about a dispatch of ``kind``; ``who=None``: a trusted in-process caller, who
    may record what any of the dispatch's own adapters may."""
    found = _ANY_OWN.get(kind) if who is None else REPORTS.get((kind, who))
    if found is None and who in (None, Reporter.CHANNEL) and kind.carries_documents:
        return _ELECTRONIC  # a plugin's kind: what any channel that carries documents may report (its nature)
    return found or _NOTHING


def provenance_refusal(
    record: DispatchRecord, kind: ReceiptKind, source: str | None, carrier: str | None
) -> tuple[Refusal, str] | None:
    """Why a receipt of ``kind`` about ``record``'s dispatch, come through ``source``, must be refused; None
    when it may be applied.

    ``source=None`` is a trusted in-process caller (code of the application itself, which speaks for the
    dispatch's own adapter): only the kind is checked against what the dispatch's adapters can report.
    """
    if source is None:
        if kind in allowed_reports(record.kind, None):
            return None
        return Refusal.NOT_ITS_REPORT, f"no adapter of a {record.kind.value} dispatch reports {kind.value!r}"
    who = reporter(record, source, carrier)
    if who is None:
        return (
            Refusal.WRONG_ADAPTER,
            f"{source!r} is not an adapter of dispatch {record.dispatch_id} (sent through {record.channel!r})",
        )
    if kind not in allowed_reports(record.kind, who):
        return (
            Refusal.NOT_ITS_REPORT,
            f"the {who.value} {source!r} does not report {kind.value!r} on a {record.kind.value} dispatch",
        )
    return None


def implausible_time(
    kind: ReceiptKind, at: datetime, queued_at: datetime, now: datetime, skew: timedelta
) -> str | None:
    """Why the time a receipt claims cannot be a fact of its dispatch, or None when it can.

    A time is plausible from ``skew`` before the dispatch was queued to ``skew`` after ``now`` (the
    provider's clock and ours may differ by that much). Only the kinds in :data:`TIMED_KINDS` are checked:
    the others' times are not recorded as facts.
    """
    if kind not in TIMED_KINDS:
        return None
    if at < queued_at - skew:
        return f"{kind.value} at {at.isoformat()}, before the dispatch was queued ({queued_at.isoformat()})"
    if at > now + skew:
        return f"{kind.value} at {at.isoformat()}, in the future (more than {skew} ahead of our clock)"
    return None
