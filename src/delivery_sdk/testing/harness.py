"""A ready-made world for tests and the demo: a client on a store, a virtual clock, and fakes for every
channel, Hubei's 17 print centres, the carrier, an address source and a recording sink."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from ..address.hubei import HUBEI_NEIGHBOURS, HUBEI_UNITS
from ..channels import PrintCentreInfo
from ..client import AsyncDeliveryClient
from ..clock import VirtualClock
from ..engine import EngineConfig
from ..model import (
    Case,
    ChannelKind,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    Document,
    DocumentKind,
    Party,
    ServiceRequest,
)
from ..policy import PolicyConfig
from ..store import SQLiteStore, TaskStore
from .fakes import (
    FakeAddressSource,
    FakeCarrier,
    FakeChannel,
    FakePrintCentre,
    Outcome,
    RecordingSink,
    channels_plugin,
    print_centres_plugin,
)

__all__ = ["Harness", "make_party", "make_request"]

_counter = itertools.count(1)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_party(
    party_id: str | None = None,
    *,
    mobile: str | None = "13800138000",
    email: str | None = None,
    wechat: str | None = None,
    eservice: str | None = None,
    address: str | None = "湖北省武汉市武昌区中北路1号",
    division_code: str | None = "420106",
    address_confirmed: bool = False,
    consent: bool = True,
) -> Party:
    """A plausible party with the contacts asked for (every argument may be None to leave it out)."""
    contacts: list[Contact] = []
    if mobile:
        contacts.append(Contact(kind=ContactKind.MOBILE, value=mobile))
    if email:
        contacts.append(Contact(kind=ContactKind.EMAIL, value=email))
    if wechat:
        contacts.append(Contact(kind=ContactKind.WECHAT, value=wechat))
    if eservice:
        contacts.append(Contact(kind=ContactKind.ESERVICE, value=eservice))
    if address:
        contacts.append(
            Contact(kind=ContactKind.POSTAL, value=address, division_code=division_code, confirmed=address_confirmed)
        )
    return Party(
        party_id=party_id or f"P{next(_counter)}",
        name="张三",
        contacts=tuple(contacts),
        consent=Consent(method=ConsentMethod.CONFIRMATION_FORM) if consent else None,
    )


def make_request(
    party: Party | None = None,
    *,
    case_number: str = "(2026)鄂0106民初1号",
    court: str = "武汉市武昌区人民法院",
    client_key: str | None = None,
    channels: Sequence[ChannelKind] | None = None,
) -> ServiceRequest:
    """A service request of one summons for ``party`` (default :func:`make_party`) in a Wuhan case."""
    return ServiceRequest(
        case=Case(court=court, case_number=case_number),
        party=party or make_party(),
        documents=(Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=_digest("summons")),),
        client_key=client_key,
        channels=None if channels is None else tuple(channels),
    )


def hubei_centres(clock: VirtualClock, **kwargs: Any) -> list[FakePrintCentre]:
    """A fake print centre for each unit of Hubei (``HUBEI_UNITS``), with its neighbours; ``kwargs`` go to each."""
    return [
        FakePrintCentre(
            PrintCentreInfo(
                centre_id=f"PC-{code}",
                name=f"{name}集约送达打印中心",
                route_keys=frozenset({code}),
                neighbours=tuple(f"PC-{n}" for n in HUBEI_NEIGHBOURS[code]),
            ),
            clock=clock,
            **kwargs,
        )
        for code, name in HUBEI_UNITS.items()
    ]


class Harness:
    """Everything a test needs, wired: ``harness.client`` plus the fakes as attributes.

    Fakes have no default outcome: script them with ``enqueue`` (or set ``default``/``handler``).
    """

    def __init__(
        self,
        store: TaskStore | None = None,
        *,
        start: datetime | None = None,
        policy: PolicyConfig | None = None,
        config: EngineConfig | None = None,
        extra_plugins: Sequence[object] = (),
        kinds: Collection[ChannelKind] | None = None,
    ) -> None:
        self.clock = VirtualClock(start)
        c = self.clock
        self.eservice = FakeChannel("fake-eservice", ChannelKind.ESERVICE, clock=c)
        self.sms = FakeChannel("fake-sms", ChannelKind.SMS, clock=c)
        self.wechat = FakeChannel("fake-wechat", ChannelKind.WECHAT, clock=c)
        self.email = FakeChannel("fake-email", ChannelKind.EMAIL, clock=c)
        self.phone = FakeChannel("fake-staff-calls", ChannelKind.PHONE, clock=c)
        self.carrier = FakeCarrier(clock=c)
        self.centres = hubei_centres(c)
        self.addresses = FakeAddressSource()
        self.sink = RecordingSink()
        every = [self.eservice, self.sms, self.wechat, self.email, self.phone]
        # ``kinds`` registers only some of the fake channels (all by default)
        self.channels = every if kinds is None else [c for c in every if c.kind in kinds]
        self.store = store or SQLiteStore(":memory:")
        n = itertools.count(1)
        self.client = AsyncDeliveryClient(
            self.store,
            plugins=[
                channels_plugin(*self.channels, self.carrier),
                print_centres_plugin(*self.centres),
                self.addresses,
                self.sink,
                *extra_plugins,
            ],
            clock=c,
            policy=policy,
            config=config,
            load_entry_points=False,
            id_factory=lambda: f"T{next(n):06d}",
        )

    def centre(self, code: str) -> FakePrintCentre:
        """The fake print centre for division ``code`` (``PC-<code>``)."""
        return next(x for x in self.centres if x.info.centre_id == f"PC-{code}")

    def unused(self) -> dict[str, list[Outcome]]:
        """Scripted outcomes left unconsumed, by fake name."""
        fakes: list[FakeChannel | FakeCarrier] = [*self.channels, self.carrier]
        return {f.name: f.unused() for f in fakes if f.unused()}

    async def aclose(self) -> None:
        """Close the client and the store."""
        await self.client.aclose()
        self.store.close()
