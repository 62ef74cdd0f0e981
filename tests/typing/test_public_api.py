"""Exercises the public API the way an integrator would; checked by ``mypy --strict`` and run by pytest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest

import delivery_sdk
from delivery_sdk import (
    BaseChannel,
    Case,
    ChannelKind,
    ChannelRegistry,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    DeliveryClient,
    Dispatch,
    Document,
    DocumentKind,
    EngineConfig,
    IngestOutcome,
    Party,
    PolicyConfig,
    Receipt,
    ReceiptKind,
    SendResult,
    ServiceMethod,
    ServiceRequest,
    SQLiteStore,
    StatusReport,
    TaskState,
    VirtualClock,
    hookimpl,
)


class EchoSms(BaseChannel):
    """A channel that reports delivery a minute after each send."""

    name = "echo-sms"
    kind = ChannelKind.SMS

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sent: dict[str, Dispatch] = {}

    async def send(self, dispatch: Dispatch) -> SendResult:
        self.sent[dispatch.dispatch_id] = dispatch
        return SendResult(accepted=True, provider_ref=f"ref-{dispatch.dispatch_id}")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        if dispatch.dispatch_id not in self.sent:
            return StatusReport(found=False)
        at = self.clock.now()
        receipt = Receipt(
            dispatch_id=dispatch.dispatch_id,
            kind=ReceiptKind.DELIVERED,
            at=at,
            provider_event_id=f"dlv-{dispatch.dispatch_id}",
        )
        return StatusReport(found=True, receipts=(receipt,))

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        return ()


class EchoPlugin:
    def __init__(self, channel: EchoSms) -> None:
        self.channel = channel

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        register(self.channel)


def test_public_api_round_trip() -> None:
    clock = VirtualClock()
    channel = EchoSms(clock)
    party = Party(
        party_id="P-1",
        name="李四",
        contacts=(Contact(kind=ContactKind.MOBILE, value="+86 139 0000 0000"),),
        consent=Consent(method=ConsentMethod.EXPRESS, given_at=clock.now()),
    )
    request = ServiceRequest(
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初7号"),
        party=party,
        documents=(
            Document(
                document_id="D-1", title="传票", kind=DocumentKind.SUMMONS, sha256=hashlib.sha256(b"x").hexdigest()
            ),
        ),
        client_key="typing-1",
    )
    with DeliveryClient(
        SQLiteStore(":memory:"),
        plugins=[EchoPlugin(channel)],
        clock=clock,
        policy=PolicyConfig(poll_offsets=(timedelta(minutes=1),)),
        load_entry_points=False,
    ) as client:
        task_id: str = client.submit(request)
        assert client.submit(request) == task_id  # idempotent on the client key
        client.run_until_idle()
        status = client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.cycle_time == timedelta(minutes=1)
        result = client.ingest(Receipt(dispatch_id=f"{task_id}.1", kind=ReceiptKind.READ, at=clock.now()))
        assert result.outcome is IngestOutcome.LATE
        assert [e.event.TYPE for e in client.timeline(task_id)][-1] == "dispatch.read"
        assert delivery_sdk.__version__


def test_the_sync_clients_keywords_are_checked() -> None:
    # Every keyword, spelt as the signature spells it: a type checker sees each one (no ``**kwargs``).
    with DeliveryClient(
        SQLiteStore(":memory:"),
        plugins=(),
        clock=VirtualClock(),
        policy=PolicyConfig(),
        config=EngineConfig(),
        load_entry_points=False,
        environ={},
        id_factory=lambda: "task-1",
        evidence_signers=[],
        evidence_origin="typing",
        evidence_witness=False,
    ) as client:
        assert sum(client.count_by_state().values()) == 0
    # A misspelt keyword is a type error; were the signature ``**kwargs: Any`` again, this ignore would be
    # unused, which ``mypy --strict`` (warn_unused_ignores) reports.
    with pytest.raises(TypeError):
        DeliveryClient(":memory:", plugin=[], load_entry_points=False)  # type: ignore[call-arg]
