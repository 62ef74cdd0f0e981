"""The engine as a killable process, for the crash test (``tests/test_crash.py``).

::

    python tests/crash_worker.py STORE_PATH JOURNAL_DIR [--submit N] [--seed S] [--batch-size B]
        [--concurrency C] [--latency-ms L] [--kill-after-sends K | --kill-after-commits K | --kill-after-submits K]

Opens the SQLite store, (re)submits the same N requests (idempotent on their client keys), runs the engine
until nothing is due and prints a one-line JSON summary. The test kills it with SIGKILL at random moments
(or it kills itself right after a chosen send, commit or submission) and starts it again on the same files.

The providers are fakes whose memory survives the process: every ``send`` appends one line
``dispatch_id<TAB>channel<TAB>virtual send time`` to ``JOURNAL_DIR/sends.journal`` (``O_APPEND``, one
``os.write``, ``os.fsync`` before returning - that is the moment the provider has the dispatch), and
``status`` answers from that journal only, so after a crash it tells the truth about what was received.
What happens to a dispatch is a pure function of the seed and its dispatch id (and of virtual time since
its journaled send), so every restarted process gives the same answers; the test uses the same functions
to check each dispatch's events.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from delivery_sdk import hookimpl
from delivery_sdk.channels import BaseChannel, PrintCentreInfo, Receipt, ReceiptKind, SendResult, StatusReport
from delivery_sdk.client import AsyncDeliveryClient
from delivery_sdk.clock import VirtualClock
from delivery_sdk.engine import EngineConfig
from delivery_sdk.model import (
    Case,
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    Dispatch,
    Document,
    DocumentKind,
    Party,
    ServiceRequest,
)
from delivery_sdk.plugins import ChannelRegistry, PrintCentreRegistry
from delivery_sdk.records import ServiceRecord
from delivery_sdk.store import CommitResult, CreateResult, NewTask, SQLiteStore, TaskWrite

EPOCH = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
SENDS = "sends.journal"
FILINGS = "filings.journal"

# Electronic outcomes, by share of dispatches (out of 100).
ELECTRONIC_OUTCOMES: tuple[tuple[str, int], ...] = (
    ("delivered", 40),  # delivery report with the send result
    ("delivered_late", 15),  # delivered 3 minutes later: found by the first poll
    ("read_late", 5),  # a read receipt 25 minutes later, no delivery report
    ("failed", 15),  # permanent failure reported with the send result: the next channel is used
    ("failed_late", 5),  # failure reported 10 minutes later
    ("no_answer", 12),  # accepted, then silence: the response window times out
    ("refused", 8),  # not accepted (the provider still logged the request)
)
POSTAL_OUTCOMES: tuple[tuple[str, int], ...] = (("signed", 60), ("address_wrong", 28), ("refused", 12))
ELECTRONIC_DELAY = {"delivered_late": timedelta(minutes=3), "read_late": timedelta(minutes=25)}
FAILED_LATE = timedelta(minutes=10)
PRINT_AFTER = timedelta(hours=4)
MAIL_AFTER = timedelta(hours=8)
SIGNED_AFTER = timedelta(days=2)
RETURNED_AFTER = timedelta(days=3)
DELIVERING = frozenset({"delivered", "delivered_late", "read_late"})

CENTRES = {"PC-420100": "420100", "PC-420500": "420500"}
ADDRESSES = (("湖北省武汉市武昌区中北路{}号", "420106"), ("湖北省宜昌市夷陵区发展大道{}号", "420506"))


def _pick(seed: int, key: str, table: tuple[tuple[str, int], ...]) -> str:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    roll = int.from_bytes(digest[:4], "big") % sum(weight for _, weight in table)
    for name, weight in table:
        if roll < weight:
            return name
        roll -= weight
    raise AssertionError("unreachable")  # pragma: no cover


def electronic_outcome(seed: int, dispatch_id: str) -> str:
    return _pick(seed, dispatch_id, ELECTRONIC_OUTCOMES)


def postal_outcome(seed: int, dispatch_id: str) -> str:
    return _pick(seed, "post:" + dispatch_id, POSTAL_OUTCOMES)


def waybill(dispatch_id: str) -> str:
    return "EMS" + hashlib.sha256(dispatch_id.encode()).hexdigest()[:10].upper() + "CN"


# -- the requests ------------------------------------------------------------------------------------


def make_requests(count: int) -> list[ServiceRequest]:
    """The same ``count`` requests on every run (their client keys make resubmission idempotent).

    Every tenth party gave no consent (straight to post); two in ten have a mobile number only; the others
    have an e-service account, a mobile number and an e-mail address. Every third party has a second postal
    address for the second round of post.
    """
    summons = Document(
        document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=hashlib.sha256(b"summons").hexdigest()
    )
    requests = []
    for i in range(count):
        kind = i % 10
        contacts = [Contact(kind=ContactKind.MOBILE, value=f"138{i:08d}")]
        if kind >= 3:
            contacts.insert(0, Contact(kind=ContactKind.ESERVICE, value=f"acct-{i}"))
            contacts.append(Contact(kind=ContactKind.EMAIL, value=f"p{i}@example.cn"))
        for n, (template, code) in enumerate(ADDRESSES[: 2 if i % 3 == 0 else 1]):
            contacts.append(Contact(kind=ContactKind.POSTAL, value=template.format(i + 1 + n), division_code=code))
        party = Party(
            party_id=f"P{i}",
            name="张三",
            contacts=tuple(contacts),
            consent=None if kind == 0 else Consent(method=ConsentMethod.CONFIRMATION_FORM),
        )
        requests.append(
            ServiceRequest(
                case=Case(court="武汉市武昌区人民法院", case_number=f"(2026)鄂0106民初{i // 4 + 1}号"),
                party=party,
                documents=(summons,),
                client_key=f"crash-{i}",
            )
        )
    return requests


# -- the persistent fakes ----------------------------------------------------------------------------


class KillSwitch:
    """Dies by SIGKILL right after the n-th counted moment (for the test's chosen crash points)."""

    def __init__(self, after: int | None) -> None:
        self.left = after

    def tick(self) -> None:
        if self.left is None:
            return
        self.left -= 1
        if self.left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


class KillingStore(SQLiteStore):
    """The SQLite store, killed right after its n-th engine commit (or n-th submission) is durable."""

    def __init__(self, path: str, *, after_commits: KillSwitch, after_creates: KillSwitch) -> None:
        super().__init__(path)
        self.after_commits = after_commits
        self.after_creates = after_creates

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        result = super().commit(writes, returning=returning)
        self.after_commits.tick()
        return result

    def create_tasks(self, tasks: Sequence[NewTask]) -> CreateResult:
        result = super().create_tasks(tasks)
        self.after_creates.tick()
        return result


class Journal:
    """An append-only file of received dispatches; what a provider knows, durable before it answers."""

    def __init__(self, path: Path, kill: KillSwitch | None = None, *, latency: float = 0.0) -> None:
        self.kill = kill or KillSwitch(None)
        self.latency = latency  # one way, real seconds: the network between the engine and a provider
        self.sent: dict[str, tuple[str, datetime]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                dispatch_id, channel, at = line.split("\t")
                self.sent.setdefault(dispatch_id, (channel, datetime.fromisoformat(at)))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, dispatch_id: str, channel: str, at: datetime) -> None:
        os.write(self._fd, f"{dispatch_id}\t{channel}\t{at.isoformat()}\n".encode())
        os.fsync(self._fd)
        self.sent.setdefault(dispatch_id, (channel, at))
        self.kill.tick()

    async def receive(self, dispatch_id: str, channel: str, at: datetime) -> None:
        """A send over the network: the request travels, the provider journals it, the answer travels back."""
        await asyncio.sleep(self.latency)
        self.record(dispatch_id, channel, at)
        await asyncio.sleep(self.latency)

    async def wire(self) -> None:
        """A status request's round trip."""
        await asyncio.sleep(2 * self.latency)

    def latest(self) -> datetime | None:
        return max((at for _, at in self.sent.values()), default=None)

    def close(self) -> None:
        os.close(self._fd)


class JournaledChannel(BaseChannel):
    """An electronic provider: deduplicates nothing itself, so a second send of one id shows in the journal."""

    def __init__(self, name: str, kind: ChannelKind, *, journal: Journal, clock: VirtualClock, seed: int) -> None:
        self.name = name
        self.kind = kind
        self.journal = journal
        self.clock = clock
        self.seed = seed

    def _receipts(self, dispatch_id: str) -> tuple[Receipt, ...]:
        sent_at = self.journal.sent[dispatch_id][1]
        now = self.clock.now()
        outcome = electronic_outcome(self.seed, dispatch_id)
        if outcome in ("delivered", "delivered_late"):
            at = sent_at + ELECTRONIC_DELAY.get(outcome, timedelta(0))
            kind, pid = ReceiptKind.DELIVERED, "dlv"
        elif outcome == "read_late":
            at, kind, pid = sent_at + ELECTRONIC_DELAY[outcome], ReceiptKind.READ, "read"
        elif outcome in ("failed", "refused"):
            at, kind, pid = sent_at, ReceiptKind.FAILED, "fail"
        elif outcome == "failed_late":
            at, kind, pid = sent_at + FAILED_LATE, ReceiptKind.FAILED, "fail"
        else:
            return ()
        if now < at:
            return ()
        reason = "recipient unknown" if kind is ReceiptKind.FAILED else None
        return (
            Receipt(dispatch_id=dispatch_id, kind=kind, at=at, reason=reason, provider_event_id=f"{pid}-{dispatch_id}"),
        )

    async def send(self, dispatch: Dispatch) -> SendResult:
        await self.journal.receive(dispatch.dispatch_id, self.name, self.clock.now())
        if electronic_outcome(self.seed, dispatch.dispatch_id) == "refused":
            return SendResult(accepted=False, reason="rejected by the provider")
        return SendResult(
            accepted=True,
            provider_ref=f"{self.name}:{dispatch.dispatch_id}",
            receipts=self._receipts(dispatch.dispatch_id),
        )

    async def status(self, dispatch: Dispatch) -> StatusReport:
        await self.journal.wire()
        if dispatch.dispatch_id not in self.journal.sent:
            return StatusReport(found=False)
        return StatusReport(
            found=True,
            provider_ref=f"{self.name}:{dispatch.dispatch_id}",
            receipts=self._receipts(dispatch.dispatch_id),
        )


class JournaledCentre(BaseChannel):
    """A print/mail centre: prints 4 hours and mails 8 hours after it received a job."""

    kind = ChannelKind.PRINT

    def __init__(self, info: PrintCentreInfo, *, journal: Journal, clock: VirtualClock) -> None:
        self.info = info
        self.name = info.centre_id
        self.journal = journal
        self.clock = clock

    async def send(self, dispatch: Dispatch) -> SendResult:
        await self.journal.receive(dispatch.dispatch_id, self.name, self.clock.now())
        return SendResult(accepted=True, provider_ref=f"job-{dispatch.dispatch_id}")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        await self.journal.wire()
        entry = self.journal.sent.get(dispatch.dispatch_id)
        if entry is None:
            return StatusReport(found=False)
        did, sent_at, now = dispatch.dispatch_id, entry[1], self.clock.now()
        receipts = []
        if now >= sent_at + PRINT_AFTER:
            receipts.append(
                Receipt(
                    dispatch_id=did, kind=ReceiptKind.PRINTED, at=sent_at + PRINT_AFTER, provider_event_id=f"prt-{did}"
                )
            )
        if now >= sent_at + MAIL_AFTER:
            receipts.append(
                Receipt(
                    dispatch_id=did,
                    kind=ReceiptKind.MAILED,
                    at=sent_at + MAIL_AFTER,
                    waybill=waybill(did),
                    provider_event_id=f"mail-{did}",
                )
            )
        return StatusReport(found=True, provider_ref=f"job-{did}", receipts=tuple(receipts))


class JournaledCarrier(BaseChannel):
    """The carrier: tracks mailed items; signed 2 days or returned 3 days after the centre mailed them."""

    name = "crash-ems"
    kind = ChannelKind.POST

    def __init__(self, *, journal: Journal, clock: VirtualClock, seed: int) -> None:
        self.journal = journal
        self.clock = clock
        self.seed = seed

    async def send(self, dispatch: Dispatch) -> SendResult:
        raise AssertionError("the carrier takes items from print centres, never from the engine")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        await self.journal.wire()
        entry = self.journal.sent.get(dispatch.dispatch_id)
        if entry is None or dispatch.waybill != waybill(dispatch.dispatch_id):
            return StatusReport(found=False)
        did, mailed_at = dispatch.dispatch_id, entry[1] + MAIL_AFTER
        outcome = postal_outcome(self.seed, did)
        at = mailed_at + (SIGNED_AFTER if outcome == "signed" else RETURNED_AFTER)
        if self.clock.now() < at:
            return StatusReport(found=True, provider_ref=dispatch.waybill)
        if outcome == "signed":
            receipt = Receipt(
                dispatch_id=did,
                kind=ReceiptKind.SIGNED,
                at=at,
                signer_role="recipient",
                provider_event_id=f"sign-{did}",
            )
        else:
            receipt = Receipt(
                dispatch_id=did, kind=ReceiptKind.RETURNED, at=at, reason=outcome, provider_event_id=f"ret-{did}"
            )
        return StatusReport(found=True, provider_ref=dispatch.waybill, receipts=(receipt,))


class Providers:
    """The plugin: journaled channels, centres and carrier, and a case-file system that logs each filing."""

    def __init__(
        self, journal_dir: Path, clock: VirtualClock, seed: int, *, kill: KillSwitch | None = None, latency: float = 0.0
    ) -> None:
        self.journal = Journal(journal_dir / SENDS, kill, latency=latency)
        self.channels: list[BaseChannel] = [
            JournaledChannel("crash-eservice", ChannelKind.ESERVICE, journal=self.journal, clock=clock, seed=seed),
            JournaledChannel("crash-sms", ChannelKind.SMS, journal=self.journal, clock=clock, seed=seed),
            JournaledChannel("crash-email", ChannelKind.EMAIL, journal=self.journal, clock=clock, seed=seed),
            JournaledCarrier(journal=self.journal, clock=clock, seed=seed),
        ]
        self.centres = [
            JournaledCentre(
                PrintCentreInfo(centre_id=centre_id, name=centre_id, route_keys=frozenset({key})),
                journal=self.journal,
                clock=clock,
            )
            for centre_id, key in CENTRES.items()
        ]
        self._filings = os.open(journal_dir / FILINGS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        for channel in self.channels:
            register(channel)

    @hookimpl
    def delivery_register_print_centres(self, register: PrintCentreRegistry) -> None:
        for centre in self.centres:
            register(centre.info, centre)

    @hookimpl
    def delivery_file_service_record(self, record: ServiceRecord) -> str:
        os.write(self._filings, f"{record.record_id}\t{record.method.value}\t{record.dispatch_id}\n".encode())
        os.fsync(self._filings)
        return f"casefile:{record.record_id}"

    def close(self) -> None:
        self.journal.close()
        os.close(self._filings)


# -- the run -----------------------------------------------------------------------------------------


async def run(
    store_path: str,
    journal_dir: Path,
    *,
    submit: int,
    seed: int,
    batch_size: int = 64,
    concurrency: int = 8,
    latency: float = 0.001,
    kill_after_sends: int | None = None,
    kill_after_commits: int | None = None,
    kill_after_submits: int | None = None,
) -> dict[str, object]:
    journal_dir.mkdir(parents=True, exist_ok=True)
    store = KillingStore(
        store_path, after_commits=KillSwitch(kill_after_commits), after_creates=KillSwitch(kill_after_submits)
    )
    # Virtual time never goes backwards across restarts: resume from the latest committed event (or send).
    clock = VirtualClock(max(EPOCH, store.latest_event_time() or EPOCH))
    providers = Providers(journal_dir, clock, seed, kill=KillSwitch(kill_after_sends), latency=latency)
    clock.advance_to(providers.journal.latest() or EPOCH)
    ids = iter(range(1, 1 << 30))  # T000001... in submission order, the same on every run
    client = AsyncDeliveryClient(
        store,
        plugins=[providers],
        clock=clock,
        config=EngineConfig(batch_size=batch_size, channel_concurrency=concurrency),
        load_entry_points=False,
        environ={},
        id_factory=lambda: f"T{next(ids):06d}",
    )
    try:
        requests = make_requests(submit)
        for start in range(0, len(requests), 50):  # several transactions, so a kill can land between them
            await client.submit_many(requests[start : start + 50])
        steps = await client.run_until_idle()
        return {"tasks": len(store.all_task_ids()), "states": store.count_by_state(), "steps": steps}
    finally:
        await client.aclose()
        store.close()
        providers.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the engine on a store with journaled fake providers.")
    parser.add_argument("store")
    parser.add_argument("journal_dir", type=Path)
    parser.add_argument("--submit", type=int, default=0, help="(re)submit this many requests first")
    parser.add_argument("--seed", type=int, default=0, help="salts the providers' outcomes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8, help="in-flight calls per provider")
    parser.add_argument("--latency-ms", type=float, default=1.0, help="one-way network latency to a provider")
    parser.add_argument("--kill-after-sends", type=int, help="SIGKILL itself right after the n-th journaled send")
    parser.add_argument("--kill-after-commits", type=int, help="SIGKILL itself right after the n-th engine commit")
    parser.add_argument("--kill-after-submits", type=int, help="SIGKILL itself right after the n-th submit_many")
    args = parser.parse_args(argv)
    # Imports are done: the test times its random kill from here, so a slow interpreter start on a loaded
    # machine does not make every kill land before the worker has touched the store.
    print("ready", flush=True)
    summary = asyncio.run(
        run(
            args.store,
            args.journal_dir,
            submit=args.submit,
            seed=args.seed,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            latency=args.latency_ms / 1000,
            kill_after_sends=args.kill_after_sends,
            kill_after_commits=args.kill_after_commits,
            kill_after_submits=args.kill_after_submits,
        )
    )
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
