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
- :class:`CallbackReply`: the body an adapter's optional ``callback_reply(response)`` gives the provider;

and, for ``parse_callback``, :func:`read_json_object` ``(body, *, what, max_bytes=1 MiB) -> dict`` and
:func:`aware_datetime` ``(value, what) -> datetime``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

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
    "aware_datetime",
    "check_timestamp",
    "hmac_sha256_hex",
    "link_token",
    "lower_headers",
    "read_json_object",
    "require_secret",
    "signature_matches",
    "verify_hmac_sha256",
]


def aware_datetime(value: object, what: str, *, error: type[Exception] = MalformedReceipt) -> datetime:
    """An ISO 8601 time with a UTC offset (``"2024-03-01T08:00:00+08:00"``), as a provider reports when
    something happened.

    Raises ``error`` (default :class:`~delivery_sdk.MalformedReceipt`) with ``"{what} must be an ISO 8601
    string"``, ``"{what} is not ISO 8601"`` or ``"{what} has no UTC offset"`` (a time without one cannot be
    placed: it is refused, never guessed); ``what`` names the field (``"EMS trace op_time"``).
    """
    if not isinstance(value, str):
        raise error(f"{what} must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise error(f"{what} is not ISO 8601") from None
    if moment.utcoffset() is None:
        raise error(f"{what} has no UTC offset")
    return moment


MAX_CALLBACK_BYTES = 1 << 20
"""The largest push :func:`read_json_object` reads by default (1 MiB; a delivery report is a few hundred bytes)."""


def read_json_object(body: bytes, *, what: str, max_bytes: int = MAX_CALLBACK_BYTES) -> dict[str, Any]:
    """A push's body as a JSON object.

    :param what: names the push in messages (``"EMS push"``).
    :raises MalformedReceipt: the body is larger than ``max_bytes``, is not JSON, or is not a JSON object
        (the message never quotes the body).
    """
    if len(body) > max_bytes:
        size = f"{max_bytes >> 20} MiB" if max_bytes % (1 << 20) == 0 else f"{max_bytes} bytes"
        raise MalformedReceipt(f"{what} body is larger than {size}")
    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedReceipt(f"{what} body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedReceipt(f"{what} body is not a JSON object")
    return payload
