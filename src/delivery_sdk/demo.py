"""A realistic day at a provincial service centre, simulated with the fakes and a virtual clock.

Courts across Hubei submit cases hour by hour from 08:00; recipients vary the way real ones do: consented
e-service accounts that answer at once or only the next day, phones that cannot be reached, parties who
never consented (straight to post), wrong addresses corrected by assisted person search, refusals, and
parties nobody can find (publication). Everything is decided by a seeded random generator, so a seed
reproduces a run exactly.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import attrs

from .client import AsyncDeliveryClient
from .clock import VirtualClock
from .evidence.witness import WITNESS_SUFFIX
from .lifecycle import Task
from .model import (
    Case,
    CaseType,
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    Dispatch,
    Document,
    DocumentKind,
    Party,
    PartyKind,
    ServiceRequest,
)
from .records import AddressCandidate
from .stats import Summary, summarize
from .store import SQLiteStore
from .testing.fakes import (
    FakeAddressSource,
    FakeCarrier,
    FakeChannel,
    Outcome,
    channels_plugin,
    print_centres_plugin,
)
from .testing.harness import hubei_centres

__all__ = ["DemoResult", "run_demo"]

# (court, division code of its seat, case-number prefix)
COURTS: tuple[tuple[str, str, str], ...] = (
    ("武汉市武昌区人民法院", "420106", "鄂0106"),
    ("武汉市江岸区人民法院", "420102", "鄂0102"),
    ("武汉市中级人民法院", "420100", "鄂01"),
    ("宜昌市夷陵区人民法院", "420506", "鄂0506"),
    ("襄阳市樊城区人民法院", "420606", "鄂0606"),
    ("荆州市荆州区人民法院", "421003", "鄂1003"),
    ("黄冈市黄州区人民法院", "421102", "鄂1102"),
    ("恩施市人民法院", "422801", "鄂2801"),
    ("仙桃市人民法院", "429004", "鄂9004"),
    ("十堰市张湾区人民法院", "420303", "鄂0303"),
)
# Addresses by division code: (street address, code). The demo's recipients live near their court.
STREETS = ("中北路", "解放大道", "发展大道", "人民路", "荆中路", "舞阳大街", "沔阳大道", "东岳路", "北京路", "车城路")
SURNAMES = "张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


@attrs.frozen(kw_only=True)
class Profile:
    """How one recipient behaves."""

    consent: bool
    eservice: str | None  # outcome on the e-service platform: delivered / late / silent / None (no account)
    sms: str | None  # delivered / unreachable / None
    wechat: str | None
    post: str  # signed / wrong_then_found / wrong_lost / refused


def _profile(rng: random.Random) -> Profile:
    r = rng.random()
    if r < 0.40:
        return Profile(
            consent=True,
            eservice=rng.choice(["delivered"] * 8 + ["late", "silent"]),
            sms="delivered",
            wechat=None,
            post="signed",
        )
    if r < 0.58:
        return Profile(
            consent=True,
            eservice=None,
            sms=rng.choice(["delivered"] * 4 + ["unreachable"]),
            wechat=rng.choice([None, "delivered"]),
            post="signed",
        )
    if r < 0.68:
        return Profile(
            consent=True,
            eservice="silent",
            sms="unreachable",
            wechat=None,
            post=rng.choice(["signed"] * 3 + ["wrong_then_found"]),
        )
    post = rng.choices(["signed", "wrong_then_found", "wrong_lost", "refused"], weights=[70, 15, 8, 7])[0]
    return Profile(consent=False, eservice=None, sms="delivered", wechat=None, post=post)


@attrs.frozen(kw_only=True)
class DemoResult:
    """What a demo run produced: the store it wrote, its summary, the wall and virtual time it took, the number of
    events and a case to look at."""

    store_path: Path
    summary: Summary
    wall_seconds: float
    virtual_span: timedelta
    events: int
    example_case: str
    example_task: str


class _World:
    """The scripted outside world: every fake answers from the recipient's profile."""

    def __init__(self, rng: random.Random, clock: VirtualClock) -> None:
        self.rng = rng
        self.clock = clock
        self.by_contact: dict[str, Profile] = {}
        self.found_address: dict[str, Contact] = {}

    def e_handler(self, kind: ChannelKind) -> Callable[[Dispatch], Outcome]:
        field = {ChannelKind.ESERVICE: "eservice", ChannelKind.SMS: "sms", ChannelKind.WECHAT: "wechat"}[kind]

        def handler(dispatch: Dispatch) -> Outcome:
            behaviour = getattr(self.by_contact[dispatch.contact.value], field)
            if behaviour == "delivered":
                return Outcome.delivered(
                    timedelta(minutes=self._jitter(dispatch, 1, 40)),
                    read_after=timedelta(hours=self._jitter(dispatch, 1, 20)),
                )
            if behaviour == "late":
                return Outcome.delivered(timedelta(hours=self._jitter(dispatch, 3, 20)))
            if behaviour == "unreachable":
                return Outcome.failed("recipient number unreachable", timedelta(minutes=self._jitter(dispatch, 1, 30)))
            return Outcome.no_answer()

        return handler

    @staticmethod
    def _jitter(dispatch: Dispatch, low: int, high: int) -> int:
        digest = hashlib.sha256(dispatch.dispatch_id.encode()).digest()
        return low + digest[0] % (high - low + 1)

    def carrier(self, dispatch: Dispatch) -> Outcome:
        profile = self.by_contact.get(dispatch.contact.value)
        days = timedelta(days=1 + self._jitter(dispatch, 0, 3), hours=self._jitter(dispatch, 0, 9))
        if profile is None or profile.post == "signed":
            # CPL Art. 88: a family member signs for a person, the mail room for a company (the demo's end in 有限公司)
            other = "mail_room" if dispatch.recipient_name.endswith("有限公司") else "family_member"
            role = "recipient" if self._jitter(dispatch, 0, 9) < 8 else other
            return Outcome.signed(days, signer_role=role)
        if profile.post == "refused":
            return Outcome.returned("refused", days)
        return Outcome.returned("address_wrong", days)

    def candidates(self, party: Party, known: Sequence[Contact]) -> list[AddressCandidate]:
        found = self.found_address.get(party.party_id)
        if found is None:
            return []
        return [AddressCandidate(contact=found, source="household_registry", confidence=0.85)]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _requests(n_tasks: int, rng: random.Random, world: _World) -> list[ServiceRequest]:
    requests: list[ServiceRequest] = []
    case_no = 0
    while len(requests) < n_tasks:
        court, code, prefix = rng.choice(COURTS)
        case_no += 1
        kind = rng.choices(list(CaseType), weights=[70, 15, 5, 3, 7])[0]
        case = Case(court=court, case_number=f"(2026){prefix}民初{1000 + case_no}号", case_type=kind)
        documents = (
            Document(
                document_id=f"C{case_no}-summons",
                title="传票",
                kind=DocumentKind.SUMMONS,
                sha256=hashlib.sha256(f"summons-{case_no}".encode()).hexdigest(),
            ),
            Document(
                document_id=f"C{case_no}-complaint",
                title="起诉状副本",
                kind=DocumentKind.COMPLAINT,
                sha256=hashlib.sha256(f"complaint-{case_no}".encode()).hexdigest(),
            ),
        )
        for p in range(rng.choice((1, 1, 2, 2, 3))):
            if len(requests) >= n_tasks:
                break
            idx = len(requests)
            profile = _profile(rng)
            party_id = f"C{case_no}-P{p + 1}"
            contacts = []
            mobile = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
            contacts.append(Contact(kind=ContactKind.MOBILE, value=mobile))
            world.by_contact[mobile] = profile
            if profile.eservice is not None:
                account = f"hbcourt-{idx:06d}"
                contacts.append(Contact(kind=ContactKind.ESERVICE, value=account))
                world.by_contact[account] = profile
            if profile.wechat is not None:
                openid = f"o{hashlib.md5(party_id.encode()).hexdigest()[:20]}"
                contacts.append(Contact(kind=ContactKind.WECHAT, value=openid))
                world.by_contact[openid] = profile
            street = f"{rng.choice(STREETS)}{rng.randrange(1, 999)}号"
            address = f"湖北省{street}{rng.randrange(1, 30)}栋{rng.randrange(101, 2999)}室"
            postal = Contact(kind=ContactKind.POSTAL, value=address, division_code=code)
            contacts.append(postal)
            world.by_contact[address] = profile
            if profile.post == "wrong_then_found":
                better = f"湖北省{rng.choice(STREETS)}{rng.randrange(1, 999)}号(户籍地址)"
                world.found_address[party_id] = Contact(
                    kind=ContactKind.POSTAL, value=better, division_code=code, source="household_registry"
                )
                world.by_contact[better] = attrs.evolve(profile, post="signed")
            organisation = rng.random() < 0.15
            requests.append(
                ServiceRequest(
                    case=case,
                    party=Party(
                        party_id=party_id,
                        name=(_name(rng) + "有限公司") if organisation else _name(rng),
                        kind=PartyKind.ORGANISATION if organisation else PartyKind.PERSON,
                        contacts=tuple(contacts),
                        consent=Consent(method=ConsentMethod.CONFIRMATION_FORM) if profile.consent else None,
                    ),
                    documents=documents,
                    client_key=f"demo/{case.case_number}/{party_id}",
                    channels=(ChannelKind.ESERVICE, ChannelKind.SMS, ChannelKind.WECHAT),
                )
            )
    return requests


def _bar(done: int, total: int, out: TextIO, started: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(1e-9, time.perf_counter() - started)
    out.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} tasks settled  {rate:,.0f}/s ")
    out.flush()


async def run_demo(
    *,
    tasks: int = 3000,
    seed: int = 2024,
    store_path: Path,
    progress: TextIO | None = sys.stderr,
) -> DemoResult:
    """Run the simulated day to completion on a fresh SQLite store and summarise it."""
    if store_path.exists():
        raise FileExistsError(f"{store_path} already exists; the demo writes a fresh store (choose another --store)")
    witness = Path(str(store_path) + WITNESS_SUFFIX)
    if witness.exists():
        # the kept checkpoint of an earlier store of that name: a new log there would be a fork of it
        raise FileExistsError(
            f"{witness} holds the last checkpoint of an earlier store at {store_path}; the demo writes a fresh "
            "store (choose another --store, or remove that file if the earlier store is gone for good)"
        )
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # 08:00 in Hubei (UTC+8)
    clock = VirtualClock(start)
    world = _World(rng, clock)
    channels = [
        FakeChannel(
            "eservice-platform", ChannelKind.ESERVICE, clock=clock, handler=world.e_handler(ChannelKind.ESERVICE)
        ),
        FakeChannel("sms-gateway", ChannelKind.SMS, clock=clock, handler=world.e_handler(ChannelKind.SMS)),
        FakeChannel("wechat-oa", ChannelKind.WECHAT, clock=clock, handler=world.e_handler(ChannelKind.WECHAT)),
    ]
    carrier = FakeCarrier("court-express-post", clock=clock, handler=world.carrier)
    addresses = FakeAddressSource(handler=world.candidates)
    requests = _requests(tasks, rng, world)
    counter = iter(range(1, 10**9))
    store = SQLiteStore(store_path)
    client = AsyncDeliveryClient(
        store,
        plugins=[channels_plugin(*channels, carrier), print_centres_plugin(*hubei_centres(clock)), addresses],
        clock=clock,
        load_entry_points=False,
        id_factory=lambda: f"T{next(counter):07d}",
    )
    started = time.perf_counter()
    try:
        waves = 10  # 08:00 to 17:00, one wave an hour
        per_wave = -(-len(requests) // waves)
        for wave in range(waves):
            chunk = requests[wave * per_wave : (wave + 1) * per_wave]
            if chunk:
                await client.submit_many(chunk)
            await client.run_until_idle(until=start + timedelta(hours=wave + 1))
            if progress is not None:
                _bar(_settled(client), len(requests), progress, started)
        while store.next_due_at() is not None:
            await client.run_until_idle(max_steps=25)
            if progress is not None:
                _bar(_settled(client), len(requests), progress, started)
        if progress is not None:
            progress.write("\n")
        all_tasks: list[Task] = []
        ids = store.all_task_ids()
        for i in range(0, len(ids), 1000):
            rows = [(t, store.task_row(t).version) for t in ids[i : i + 1000]]
            all_tasks.extend(client.engine.load(rows).values())
        summary = summarize(all_tasks)
        events = store.count_events()
    finally:
        await client.aclose()
        store.close()
    example = max(all_tasks, key=lambda t: (t.version, t.task_id))  # the task with the longest story
    return DemoResult(
        store_path=store_path,
        summary=summary,
        wall_seconds=time.perf_counter() - started,
        virtual_span=clock.now() - start,
        events=events,
        example_case=example.request.case.case_number,
        example_task=example.task_id,
    )


def _settled(client: AsyncDeliveryClient) -> int:
    counts = client.count_by_state()
    return sum(counts.get(s, 0) for s in ("filed", "cancelled", "needs_attention"))
