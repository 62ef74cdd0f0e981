"""Delivery status notifications (RFC 3464) and how a message is named (Message-ID, ENVID).

A DSN is a ``multipart/report; report-type=delivery-status`` message: a human-readable part, a
``message/delivery-status`` part (per-message fields, then one block of fields per recipient) and, usually,
the returned message or its headers (``message/rfc822`` or ``text/rfc822-headers``).

A DSN is matched to its dispatch by, in order: the ``Original-Envelope-Id`` (the ENVID the adapter gave at
``MAIL FROM`` when the server offered DSN), the ``X-Delivery-Dispatch-Id`` header of the returned message, the
returned message's ``Message-ID``, then the DSN's own ``In-Reply-To`` / ``References``.

What a recipient block becomes (RFC 3464 §2.3.3, RFC 3463 status classes):

- ``Action: failed`` - the reporting MTA gave up: a FAILED receipt (whatever the status class: a 4.x.x with
  ``failed`` means the temporary failure lasted until the MTA stopped trying);
- ``Action: delivered`` - delivered to the recipient's mailbox: a DELIVERED receipt (arrival at the
  recipient's system, CPL Art. 90), at the block's ``Last-Attempt-Date``;
- ``Action: delayed`` (status 4.x.x) and ``relayed`` / ``expanded`` - nothing yet: no receipt;
- no ``Action`` field: a 5.x.x status counts as failed, anything else as no news.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import Message

import attrs

from delivery_sdk import MalformedReceipt, Receipt, ReceiptKind
from delivery_sdk.model import mask

__all__ = [
    "DISPATCH_HEADER",
    "Bounce",
    "DsnRecipient",
    "bounce_receipts",
    "dispatch_from_message_id",
    "message_id_for",
    "parse_bounce",
    "xtext",
]

DISPATCH_HEADER = "X-Delivery-Dispatch-Id"
_MAX_BOUNCE = 5_000_000
# RFC 5322 dot-atom-text minus "=" (our escape character): what an id-left may hold as it is.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/?^_`{|}~]")
_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_ANGLE = re.compile(r"<([^<>\s]+)>")


def _escape_char(char: str) -> str:
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def message_id_for(dispatch_id: str, domain: str) -> str:
    """The Message-ID of a dispatch's e-mail: ``<dispatch-id@domain>``, the same on every (re)send.

    Characters that may not appear in a Message-ID's left part (and ``=``) are written ``=XX`` per UTF-8
    byte, and dots are kept only between other characters, so the mapping is reversible
    (:func:`dispatch_from_message_id`).
    """
    out: list[str] = []
    last = len(dispatch_id) - 1
    for i, char in enumerate(dispatch_id):
        inner_dot = char == "." and 0 < i < last and "." not in (dispatch_id[i - 1], dispatch_id[i + 1])
        out.append(char if inner_dot or _ATEXT.fullmatch(char) else _escape_char(char))
    return f"<{''.join(out)}@{domain}>"


def dispatch_from_message_id(message_id: str, domain: str | None = None) -> str | None:
    """The dispatch id a :func:`message_id_for` Message-ID names (``None`` if it is not one of ours)."""
    match = _ANGLE.search(message_id)
    text = match.group(1) if match else message_id.strip()
    left, at, right = text.rpartition("@")
    if not at or not left or (domain is not None and right.lower() != domain.lower()):
        return None
    try:
        raw = re.sub(rb"=([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), left.encode("ascii"))
        return raw.decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


def xtext(value: str) -> str:
    """RFC 3461 xtext, for ENVID and ORCPT: ``+XX`` for ``+``, ``=``, and anything outside ``!``..``~``."""
    out = []
    for byte in value.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (ord("+"), ord("=")):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def _unxtext(value: str) -> str:
    raw = re.sub(rb"\+([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), value.encode("ascii", "replace"))
    return raw.decode("utf-8", "replace")


@attrs.frozen(kw_only=True)
class DsnRecipient:
    """One per-recipient block of a DSN; the address is masked in ``repr``."""

    final_recipient: str = attrs.field(repr=lambda v: repr(mask(v)))
    action: str  # failed, delayed, delivered, relayed, expanded (lower case), or "" when absent
    status: str  # "5.1.1"; "" when absent or unreadable
    last_attempt: datetime | None = None

    @property
    def outcome(self) -> ReceiptKind | None:
        """FAILED, DELIVERED or None (no news yet) per the module's rules."""
        if self.action == "failed":
            return ReceiptKind.FAILED
        if self.action == "delivered":
            return ReceiptKind.DELIVERED
        if not self.action and self.status.startswith("5."):
            return ReceiptKind.FAILED
        return None


@attrs.frozen(kw_only=True)
class Bounce:
    """A parsed delivery status notification."""

    dispatch_id: str | None  # None when nothing in it names one of our dispatches
    dsn_id: str  # the DSN's own Message-ID, or a digest of its bytes: the provider event id's stem
    envelope_id: str | None
    original_message_id: str | None
    arrival_date: datetime | None
    date: datetime | None  # the DSN's Date header
    recipients: tuple[DsnRecipient, ...]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _field_value(value: str | None) -> str:
    """``type; value`` fields (``rfc822; a@b``, ``smtp; 550 ...``): the part after the type."""
    if value is None:
        return ""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return []
    return [
        email.message_from_bytes(chunk.strip() + b"\n") for chunk in re.split(rb"\r?\n\r?\n", text) if chunk.strip()
    ]


def _parts(message: Message) -> list[Message]:
    payload = message.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _returned_headers(report: Message) -> Message | None:
    for part in _parts(report):
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        elif ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return email.message_from_bytes(raw)
    return None


def _report(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == "multipart/report":
            return part
    return None


def _from_references(message: Message, domain: str | None) -> str | None:
    for name in ("In-Reply-To", "References"):
        for candidate in _ANGLE.findall(str(message.get(name, ""))):
            found = dispatch_from_message_id(f"<{candidate}>", domain)
            if found:
                return found
    return None


def parse_bounce(raw: bytes, *, domain: str | None = None) -> Bounce:
    """Parse a raw DSN message (RFC 3464). ``domain`` restricts Message-ID matching to our own domain.

    Raises :class:`~delivery_sdk.MalformedReceipt` when ``raw`` is not a delivery status notification.
    """
    if not isinstance(raw, bytes | bytearray) or not raw:
        raise MalformedReceipt("bounce: expected the raw message as bytes")
    if len(raw) > _MAX_BOUNCE:
        raise MalformedReceipt(f"bounce: larger than {_MAX_BOUNCE} bytes")
    message = email.message_from_bytes(bytes(raw), policy=email.policy.default)
    report = _report(message)
    if report is None:
        raise MalformedReceipt("bounce: not a multipart/report message (RFC 3464)")
    status_part = next((p for p in _parts(report) if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        raise MalformedReceipt("bounce: the report has no message/delivery-status part")
    blocks = _blocks(status_part)
    if not blocks:
        raise MalformedReceipt("bounce: the delivery-status part is empty")
    per_message, per_recipient = blocks[0], blocks[1:]
    if per_message.get("Final-Recipient") is not None:  # no per-message block at all
        per_message, per_recipient = email.message_from_string(""), blocks
    recipients = []
    for block in per_recipient:
        final = _field_value(block.get("Final-Recipient")) or _field_value(block.get("Original-Recipient"))
        status_match = _STATUS.search(str(block.get("Status", "")))
        recipients.append(
            DsnRecipient(
                final_recipient=final,
                action=str(block.get("Action", "")).strip().lower(),
                status=status_match.group(0) if status_match else "",
                last_attempt=_date(block.get("Last-Attempt-Date")),
            )
        )
    if not recipients:
        raise MalformedReceipt("bounce: the delivery-status part names no recipient")

    envelope = per_message.get("Original-Envelope-Id")
    envelope_id = _unxtext(str(envelope).strip()) if envelope else None
    returned = _returned_headers(report)
    original_mid = str(returned.get("Message-ID", "")).strip() if returned is not None else ""
    header_dispatch = str(returned.get(DISPATCH_HEADER, "")).strip() if returned is not None else ""
    dispatch_id = envelope_id or header_dispatch or None
    if dispatch_id is None and original_mid:
        dispatch_id = dispatch_from_message_id(original_mid, domain)
    if dispatch_id is None:
        dispatch_id = _from_references(message, domain)
    own_id = str(message.get("Message-ID", "")).strip()
    dsn_id = own_id.strip("<>") if own_id else "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
    return Bounce(
        dispatch_id=dispatch_id or None,
        dsn_id=dsn_id,
        envelope_id=envelope_id,
        original_message_id=original_mid or None,
        arrival_date=_date(per_message.get("Arrival-Date")),
        date=_date(message.get("Date")),
        recipients=tuple(recipients),
    )


def bounce_receipts(bounce: Bounce, *, now: datetime) -> Sequence[Receipt]:
    """The receipts a DSN carries: FAILED / DELIVERED per recipient block, nothing for "delayed".

    Every receipt is for ``bounce.dispatch_id`` (one dispatch is one recipient); its provider event id is
    ``dsn:<DSN message id>:<block number>``, so a DSN fed in twice is recorded once. The reason names the
    status code only (the diagnostic text of a remote server may echo the address).
    """
    if bounce.dispatch_id is None:
        raise MalformedReceipt("bounce: it names none of our dispatches (no ENVID, dispatch header or Message-ID)")
    receipts: list[Receipt] = []
    for number, recipient in enumerate(bounce.recipients, start=1):
        kind = recipient.outcome
        if kind is None:
            continue
        at = recipient.last_attempt or bounce.date or bounce.arrival_date or now
        reason = None
        if kind is ReceiptKind.FAILED:
            reason = f"email bounced: status {recipient.status or 'unknown'} ({recipient.action or 'no action'})"
        receipts.append(
            Receipt(
                dispatch_id=bounce.dispatch_id,
                kind=kind,
                at=at,
                provider_event_id=f"dsn:{bounce.dsn_id}:{number}"[:200],
                reason=reason,
            )
        )
    return receipts
