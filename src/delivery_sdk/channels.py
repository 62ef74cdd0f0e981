"""The seam to the outside world: channel adapters, print centres and what they report back.

A channel adapter follows httpx's transport shape: a small async interface, used as an async context
manager::

    class MySms(BaseChannel):
        name = "my-sms"
        kind = ChannelKind.SMS

        async def send(self, dispatch: Dispatch) -> SendResult: ...
        async def status(self, dispatch: Dispatch) -> StatusReport: ...
        def parse_callback(self, headers, body) -> list[Receipt]: ...

- ``send`` must pass ``dispatch.dispatch_id`` on as the provider's idempotency key;
- ``status`` answers "do you have this dispatch, and what happened to it?"; the engine calls it to poll and,
  after a crash, to learn whether a dispatch whose intent was committed ever reached the provider (it is
  then *not* sent again);
- ``parse_callback`` turns a provider's push (delivery report, read receipt) into :class:`Receipt` objects
  for :meth:`DeliveryClient.ingest`.

Print centres are adapters of kind ``PRINT`` registered with a :class:`PrintCentreInfo`; the postal carrier
is an adapter of kind ``POST`` whose ``status`` tracks a mailed item by its waybill.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, runtime_checkable

import attrs

from ._exceptions import MalformedReceipt
from .model import ChannelKind, Dispatch

__all__ = [
    "RECEIVER_PHONE",
    "WAYBILL_REQUIREMENTS",
    "BaseChannel",
    "ChannelAdapter",
    "MockChannel",
    "PrintCentreInfo",
    "Receipt",
    "ReceiptKind",
    "SendResult",
    "StatusReport",
]


class ReceiptKind(enum.Enum):
    """What a provider's report says happened to a dispatch: delivered, read, failed, printed, enveloped, mailed,
    returned, or consented (a staff call)."""

    DELIVERED = "delivered"  # reached the recipient's system
    READ = "read"
    FAILED = "failed"  # permanent: wrong number, blocked, bounced...
    PRINTED = "printed"
    ENVELOPED = "enveloped"  # the print centre put the printed package in its envelope (a fact; no state change)
    MAILED = "mailed"  # handed to the carrier (waybill)
    SIGNED = "signed"
    RETURNED = "returned"
    CONSENTED = "consented"  # a staff call reached the party, who consented to e-service (Rules Art. 30)


_RETURN_REASONS = {"refused", "address_wrong", "unclaimed", "moved"}
_MAILED, _RETURNED = ReceiptKind.MAILED, ReceiptKind.RETURNED


def _plain(text: str | None) -> bool:
    """None, or ASCII text of at most 500 characters in a plain str."""
    return text is None or (type(text) is str and len(text) <= 500 and text.isascii())


@attrs.frozen(kw_only=True)
class Receipt:
    """One thing a provider reported about one dispatch.

    ``provider_event_id`` makes ingestion idempotent: the same id twice is recorded once.
    """

    dispatch_id: str
    kind: ReceiptKind
    at: datetime
    provider_event_id: str | None = None
    reason: str | None = None  # failure detail, or the return reason (refused/address_wrong/unclaimed/moved)
    waybill: str | None = None  # for MAILED
    # for SIGNED: who signed (law.SignerRole: recipient, family_member, mail_room, legal_representative, agent;
    # anything else, e.g. "other:<code>", and None, "not said", serve nothing: CPL Art. 88, law.postal_service)
    signer_role: str | None = None

    def __attrs_post_init__(self) -> None:
        # The usual receipt (ASCII ids and text of plain str, an aware datetime, a kind that needs nothing
        # more) passes in one expression; anything else goes through every check, which names the problem.
        d, pid, at, kind = self.dispatch_id, self.provider_event_id, self.at, self.kind
        if (
            type(d) is str
            and 0 < len(d) <= 200
            and d.isascii()
            and (pid is None or (type(pid) is str and 0 < len(pid) <= 200 and pid.isascii()))
            and type(kind) is ReceiptKind
            and kind is not _MAILED
            and kind is not _RETURNED
            and type(at) is datetime
            and at.tzinfo is not None
            and _plain(self.reason)
            and _plain(self.waybill)
            and _plain(self.signer_role)
        ):
            return
        self._check()

    def _check(self) -> None:
        if not isinstance(self.dispatch_id, str) or not 1 <= len(self.dispatch_id) <= 200:
            raise MalformedReceipt("receipt dispatch_id must be a non-empty string of at most 200 characters")
        if not isinstance(self.kind, ReceiptKind):
            raise MalformedReceipt(f"receipt kind must be one of {[k.value for k in ReceiptKind]}")
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise MalformedReceipt("receipt time 'at' must be a timezone-aware datetime")
        if self.provider_event_id is not None and (
            not isinstance(self.provider_event_id, str) or not 1 <= len(self.provider_event_id) <= 200
        ):
            raise MalformedReceipt("provider_event_id must be a non-empty string of at most 200 characters")
        for text in (self.dispatch_id, self.provider_event_id, self.reason, self.waybill, self.signer_role):
            if isinstance(text, str) and not text.isascii():  # ASCII text cannot hold a lone surrogate
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise MalformedReceipt("receipt text is not valid Unicode (a lone surrogate)") from None
        for name, value in (("reason", self.reason), ("waybill", self.waybill), ("signer_role", self.signer_role)):
            if value is not None and (not isinstance(value, str) or len(value) > 500):
                raise MalformedReceipt(f"receipt {name} must be a string of at most 500 characters")
        if self.kind is ReceiptKind.MAILED and not self.waybill:
            raise MalformedReceipt("a 'mailed' receipt needs the waybill number")
        if self.kind is ReceiptKind.RETURNED and self.reason not in _RETURN_REASONS:
            raise MalformedReceipt(f"a 'returned' receipt needs a reason, one of {sorted(_RETURN_REASONS)}")


@attrs.frozen(kw_only=True)
class SendResult:
    """What the provider said to a send: accepted (with its reference) or refused for good.

    ``receipts`` carries anything already known (a synchronous delivery, a print acknowledgement).
    A transient failure is not a result: raise :class:`~delivery_sdk.TransientChannelError`.
    """

    accepted: bool
    provider_ref: str | None = None
    reason: str | None = None
    receipts: tuple[Receipt, ...] = ()


@attrs.frozen(kw_only=True)
class StatusReport:
    """The provider's knowledge of one dispatch; ``found=False`` means it never received it."""

    found: bool
    provider_ref: str | None = None
    receipts: tuple[Receipt, ...] = ()


@attrs.frozen(kw_only=True)
class PrintCentreInfo:
    """A regional print/mail centre and the area it serves (route keys: 6-digit division codes)."""

    centre_id: str
    name: str
    route_keys: frozenset[str] = frozenset()
    neighbours: tuple[str, ...] = ()  # failover order when this centre is down or full
    daily_capacity: int = 10_000
    up: bool = True


@runtime_checkable
class ChannelAdapter(Protocol):
    """The interface every channel adapter (and print centre, and carrier) implements."""

    name: str
    kind: ChannelKind

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Hand ``dispatch`` to the provider; idempotent on ``dispatch.dispatch_id`` (the provider's idempotency
        key)."""

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """Ask the provider what became of ``dispatch`` (after a crash, or when no report came)."""

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """Turn a provider's push (headers and raw body) into receipts; raise :class:`MalformedReceipt` when it is
        not one."""

    async def aclose(self) -> None:
        """Release the adapter's connections; the engine calls it once when it stops."""


class BaseChannel:
    """A convenient base: async context manager, no callbacks, nothing to close."""

    name: str = "base"
    kind: ChannelKind = ChannelKind.SMS

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Hand ``dispatch`` to the provider (subclasses implement it; idempotent on the dispatch id)."""
        raise NotImplementedError

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """Ask the provider what became of ``dispatch`` (subclasses implement it)."""
        raise NotImplementedError

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """Parse a provider's push; by default the channel takes no callbacks and refuses every push."""
        raise MalformedReceipt(f"channel {self.name!r} does not take callbacks")

    async def aclose(self) -> None:
        """Release the adapter's connections (nothing by default)."""

    async def __aenter__(self) -> BaseChannel:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


RECEIVER_PHONE = "receiver_phone"
WAYBILL_REQUIREMENTS: Mapping[str, str] = {
    RECEIVER_PHONE: (
        "a mobile number of the party or of a representative (a ContactKind.MOBILE contact), printed on the "
        "waybill as Dispatch.recipient_phone"
    ),
}
"""What a carrier adapter (kind ``POST``) may declare that a waybill needs, in ``requires`` (a frozenset of
these names; ``frozenset()`` when absent). The client warns at submit about a request that cannot meet them
(:meth:`~delivery_sdk.client.AsyncDeliveryClient.check_request`), and the engine routes no print job for a
task that does not (it asks assisted person search, then a person): docs/carrier-plugin.md."""


def carrier_requires(adapter: object) -> frozenset[str]:
    """The waybill requirements a carrier adapter declares (its ``requires``; none when absent)."""
    declared = getattr(adapter, "requires", None)
    return frozenset(declared) if declared else frozenset()


SendHandler = Callable[[Dispatch], "SendResult | Awaitable[SendResult]"]
StatusHandler = Callable[[Dispatch], "StatusReport | Awaitable[StatusReport]"]


class MockChannel(BaseChannel):
    """A channel whose behaviour is a function, like ``httpx.MockTransport``.

    ``handler(dispatch)`` returns the :class:`SendResult` (or raises); ``status_handler`` answers status
    calls (by default: found if it was sent through this mock, with no news).
    """

    def __init__(
        self,
        handler: SendHandler,
        *,
        name: str = "mock",
        kind: ChannelKind = ChannelKind.SMS,
        status_handler: StatusHandler | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self._handler = handler
        self._status_handler = status_handler
        self.sent: list[Dispatch] = []

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Answer with the handler's result for ``dispatch`` and remember the dispatch in :attr:`sent`."""
        result = self._handler(dispatch)
        if isinstance(result, Awaitable):
            result = await result
        self.sent.append(dispatch)
        return result

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """The status handler's report, or by default whether ``dispatch`` was sent through this mock."""
        if self._status_handler is not None:
            report = self._status_handler(dispatch)
            if isinstance(report, Awaitable):
                report = await report
            return report
        return StatusReport(found=any(d.dispatch_id == dispatch.dispatch_id for d in self.sent))
