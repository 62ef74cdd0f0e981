"""What leaves the core after commit: evidence batches, service records for the case file, print jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .events import StoredEvent
from .model import Case, Contact, Document, ServiceMethod

__all__ = ["AddressCandidate", "AnchorReceipt", "EvidenceBatch", "PrintJob", "RouteDecision", "ServiceRecord"]


@attrs.frozen(kw_only=True)
class EvidenceBatch:
    """Events that were just committed, in commit order, for evidence sinks."""

    events: tuple[StoredEvent, ...]
    checkpoint: str | None = None  # a newly signed checkpoint of the evidence log (C2SP signed note), if any


@attrs.frozen(kw_only=True)
class AnchorReceipt:
    """What an external notary or chain returned for an anchored checkpoint (kept in the evidence log)."""

    notary: str  # who anchored it (a URL or a name)
    size: int  # the tree size of the anchored checkpoint
    receipt: str  # the notary's receipt, as it returned it (a transaction id, a signed statement...)
    anchored_at: datetime


@attrs.frozen(kw_only=True)
class ServiceRecord:
    """The proof of service filed into the case file (入卷): how, when and on which basis a task was served.

    ``record_id`` is stable for a task, so a sink that receives it twice (after a crash) can deduplicate.
    """

    record_id: str
    task_id: str
    case: Case
    party_id: str
    documents: tuple[Document, ...]
    method: ServiceMethod
    basis: str
    effective_at: datetime
    dispatch_id: str | None
    timeline: tuple[StoredEvent, ...]
    # the task's events with inclusion proofs against a signed checkpoint (delivery_sdk.evidence.audit bundle
    # format), when the store keeps an evidence log and a signing key is configured
    proof_bundle: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class PrintJob:
    """A task's documents to print and mail to one address."""

    task_id: str
    case: Case
    address: Contact
    documents: tuple[Document, ...]
    round: int
    exclude: tuple[str, ...] = ()  # centres that already refused this job


@attrs.frozen(kw_only=True)
class RouteDecision:
    """A router's choice of print centre for a print job, and why."""

    centre_id: str
    reason: str


@attrs.frozen(kw_only=True)
class AddressCandidate:
    """A contact offered by a source during assisted person search (协查找人): a postal address, or another
    contact it knows (a registry's mobile number, recorded as ``contact.updated`` for the waybill)."""

    contact: Contact
    source: str  # confirmation_form, contract, own_filings, litigation, common_use, registry, operator...
    confidence: float = 0.5
    observed_at: datetime | None = None
