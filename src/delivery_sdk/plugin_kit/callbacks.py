"""Verifying a provider's callbacks, and shaping the reply it expects.

What an adapter's ``verify_callback(headers, body, now[, query]) -> str`` uses (it returns a replay key,
or raises :class:`~delivery_sdk.CallbackRejected`), re-exported from :mod:`delivery_sdk.callbacks`:

- :func:`lower_headers` ``(headers) -> dict[str, str]``: the headers with lower-case names;
- :func:`check_timestamp` ``(value, now, window=5 min) -> datetime``: a Unix timestamp (seconds or
  milliseconds) within ``window`` of ``now``; raises ``CallbackRejected("forged")`` when missing or
  unreadable, ``CallbackRejected("stale")`` when outside the window;
- :func:`verify_hmac_sha256` ``(secret, signature, *parts) -> None``: checks a hex (or base64) HMAC-SHA256 of
  the parts joined by newlines in constant time; raises ``CallbackRejected("forged")``;
- :func:`hmac_sha256_hex` and :func:`signature_matches`, its two halves;
- :func:`link_token` ``(key, dispatch_id) -> str``: the unguessable token of a dispatch's document link;
- :func:`require_secret` ``(value, what) -> secret``: a usable secret or ``ValueError``;
- :class:`CallbackReply`: the body an adapter's optional ``callback_reply(response)`` gives the provider.
"""

from __future__ import annotations

from .._exceptions import CallbackRejected, MalformedReceipt
from ..callbacks import (
    CallbackReply,
    CallbackResponse,
    check_timestamp,
    hmac_sha256_hex,
    link_token,
    lower_headers,
    require_secret,
    signature_matches,
    verify_hmac_sha256,
)

__all__ = [
    "CallbackRejected",
    "CallbackReply",
    "CallbackResponse",
    "MalformedReceipt",
    "check_timestamp",
    "hmac_sha256_hex",
    "link_token",
    "lower_headers",
    "require_secret",
    "signature_matches",
    "verify_hmac_sha256",
]
