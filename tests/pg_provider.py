"""The worker-side test plugin for the multi-worker tests (``tests/test_workers_pg.py``).

Loaded into each ``delivery-sdk worker`` process with ``--plugin pg_provider:plugin`` (the test puts
``tests/`` on ``PYTHONPATH``) and configured through the environment:

- ``PGW_JOURNAL_DIR``: the folder shared by every worker; ``sends.journal`` gets one line per ``send`` call
  ``dispatch_id<TAB>channel<TAB>worker pid<TAB>unix time`` (``O_APPEND``, a single ``os.write``, ``fsync``
  before the provider answers: that is the moment the provider has the dispatch) and ``filings.journal``
  one line per proof of service filed;
- ``PGW_SEED``: salts the outcomes;
- ``PGW_LATENCY_MS``: one-way network latency to a provider (default 1).

A provider never deduplicates: a second send of one dispatch id (the idempotency key) shows as a second
journal line, which the test refuses. ``status`` answers from the shared journal (re-read when a dispatch
is not known yet), so a worker that takes over a task from a killed one learns the truth about an in-doubt
dispatch. Outcomes are a pure function of the seed and the dispatch id and settle at once (the workers run
on the system clock): the first two electronic attempts of a task are delivered, failed (accepted, then
a failure report with the send result) or refused (not accepted); the third is always delivered, so every
task ends served electronically and filed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from delivery_sdk import hookimpl
from delivery_sdk.channels import BaseChannel, Receipt, ReceiptKind, SendResult, StatusReport
from delivery_sdk.model import ChannelKind, Dispatch
from delivery_sdk.plugins import ChannelRegistry
from delivery_sdk.records import ServiceRecord

SENDS = "sends.journal"
FILINGS = "filings.journal"
CHANNELS = {"pgw-eservice": ChannelKind.ESERVICE, "pgw-sms": ChannelKind.SMS, "pgw-email": ChannelKind.EMAIL}
OUTCOMES: tuple[tuple[str, int], ...] = (("delivered", 50), ("failed", 25), ("refused", 25))


def outcome(seed: int, dispatch_id: str) -> str:
    """What the provider does with a dispatch: delivered, failed or refused (the third attempt: delivered)."""
    if dispatch_id.endswith(".3"):
        return "delivered"
    digest = hashlib.sha256(f"{seed}:{dispatch_id}".encode()).digest()
    roll = int.from_bytes(digest[:4], "big") % 100
    for name, weight in OUTCOMES:
        if roll < weight:
            return name
        roll -= weight
    raise AssertionError("unreachable")  # pragma: no cover


class SharedJournal:
    """The providers' memory, shared by every worker process through one append-only file."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / SENDS
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.known: dict[str, float] = {}

    def record(self, dispatch_id: str, channel: str) -> float:
        at = time.time()
        os.write(self._fd, f"{dispatch_id}\t{channel}\t{os.getpid()}\t{at:.6f}\n".encode())
        os.fsync(self._fd)
        self.known.setdefault(dispatch_id, at)
        return at

    def received(self, dispatch_id: str) -> bool:
        if dispatch_id not in self.known:  # another worker's send: read the file again
            for line in self.path.read_text(encoding="utf-8").splitlines():
                parts = line.split("\t")
                if len(parts) == 4:
                    self.known.setdefault(parts[0], float(parts[3]))
        return dispatch_id in self.known

    def close(self) -> None:
        os.close(self._fd)


class JournaledChannel(BaseChannel):
    def __init__(self, name: str, kind: ChannelKind, journal: SharedJournal, seed: int, latency: float) -> None:
        self.name = name
        self.kind = kind
        self.journal = journal
        self.seed = seed
        self.latency = latency

    def _receipts(self, dispatch_id: str) -> tuple[Receipt, ...]:
        at = datetime.fromtimestamp(self.journal.known[dispatch_id], UTC)
        result = outcome(self.seed, dispatch_id)
        if result == "delivered":
            kind, pid, reason = ReceiptKind.DELIVERED, "dlv", None
        else:
            kind, pid, reason = ReceiptKind.FAILED, "fail", "recipient unknown"
        return (
            Receipt(dispatch_id=dispatch_id, kind=kind, at=at, reason=reason, provider_event_id=f"{pid}-{dispatch_id}"),
        )

    async def send(self, dispatch: Dispatch) -> SendResult:
        await asyncio.sleep(self.latency)
        self.journal.record(dispatch.dispatch_id, self.name)
        await asyncio.sleep(self.latency)
        if outcome(self.seed, dispatch.dispatch_id) == "refused":
            return SendResult(accepted=False, reason="rejected by the provider")
        return SendResult(
            accepted=True,
            provider_ref=f"{self.name}:{dispatch.dispatch_id}",
            receipts=self._receipts(dispatch.dispatch_id),
        )

    async def status(self, dispatch: Dispatch) -> StatusReport:
        await asyncio.sleep(2 * self.latency)
        if not self.journal.received(dispatch.dispatch_id):
            return StatusReport(found=False)
        return StatusReport(
            found=True,
            provider_ref=f"{self.name}:{dispatch.dispatch_id}",
            receipts=self._receipts(dispatch.dispatch_id),
        )


class Providers:
    """The plugin: three journaled electronic channels and a case-file system that logs each filing."""

    def __init__(self) -> None:
        folder = Path(os.environ["PGW_JOURNAL_DIR"])
        seed = int(os.environ.get("PGW_SEED", "0"))
        latency = float(os.environ.get("PGW_LATENCY_MS", "1")) / 1000
        self.journal = SharedJournal(folder)
        self.channels = [JournaledChannel(name, kind, self.journal, seed, latency) for name, kind in CHANNELS.items()]
        self._filings = os.open(folder / FILINGS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        for channel in self.channels:
            register(channel)

    @hookimpl
    def delivery_file_service_record(self, record: ServiceRecord) -> str:
        os.write(self._filings, f"{record.record_id}\t{record.dispatch_id}\t{os.getpid()}\n".encode())
        os.fsync(self._filings)
        return f"casefile:{record.record_id}"


class _Lazy:
    """Built on first use, so importing the module (the test reads ``outcome``) needs no environment."""

    _providers: Providers | None = None

    def _get(self) -> Providers:
        if self._providers is None:
            self._providers = Providers()
        return self._providers

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        self._get().delivery_register_channels(register)

    @hookimpl
    def delivery_file_service_record(self, record: ServiceRecord) -> str:
        return self._get().delivery_file_service_record(record)


plugin = _Lazy()
