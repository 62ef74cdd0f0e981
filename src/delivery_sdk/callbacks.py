"""Provider callbacks (delivery reports, read receipts, carrier tracking): verify, de-duplicate, ingest.

This module holds the signing primitives every adapter uses for its ``verify_callback``; the receiver
(one framework-agnostic entry point) and the ASGI app factory build on them.

Contract for adapters that take callbacks: besides ``parse_callback(headers, body)``, implement::

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        '''Check the provider's signature and timestamp; return a key unique to this callback
        (the provider's message id or nonce) for replay protection.
        Raise CallbackRejected("forged" | "stale", detail) otherwise.'''

Header names are matched case-insensitively (pass any mapping; :func:`lower_headers` normalises).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ._exceptions import CallbackRejected

__all__ = ["check_timestamp", "hmac_sha256_hex", "lower_headers", "verify_hmac_sha256"]


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with lower-case names (HTTP header names are case-insensitive)."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


def hmac_sha256_hex(secret: bytes | str, *parts: bytes | str) -> str:
    """HMAC-SHA256 over ``parts`` joined by newlines, as lower-case hex."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = b"\n".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_hmac_sha256(secret: bytes | str, signature: str | None, *parts: bytes | str) -> None:
    """Raise ``CallbackRejected("forged")`` unless ``signature`` is the HMAC of ``parts`` (constant time)."""
    if not signature:
        raise CallbackRejected("forged", "no signature")
    expected = hmac_sha256_hex(secret, *parts)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise CallbackRejected("forged", "signature does not match")


def check_timestamp(value: str | None, now: datetime, window: timedelta = timedelta(minutes=5)) -> datetime:
    """Parse a callback timestamp (Unix seconds or milliseconds) and refuse one outside ``now ± window``."""
    if value is None or not value.strip().isdigit():
        raise CallbackRejected("forged", "missing or unreadable timestamp")
    number = int(value.strip())
    if number > 10**11:  # milliseconds
        number //= 1000
    try:
        stamped = datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        raise CallbackRejected("stale", "timestamp out of range") from None
    if abs(stamped - now) > window:
        raise CallbackRejected("stale", f"timestamp more than {int(window.total_seconds())} s from now")
    return stamped
