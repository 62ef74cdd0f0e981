"""Fuzz a callback receiver: hypothesis strategies for hostile requests and the one property they must keep.

Needs ``hypothesis`` (a test dependency; this module is not imported by :mod:`delivery_sdk.testing`).
A plugin's fuzz test draws a body (:func:`hostile_bodies`, or its provider's own shape with fuzzed
fields), a timestamp (:func:`timestamps`) and a nonce, signs the lot with the right secret most of the time
(so the fuzz gets past the signature and into the parsers, :func:`sign_or_garble` never raises), adds
:func:`header_noise`, and hands the request to :func:`assert_answered`, which checks:

- the receiver answers (no exception escapes), with a 2xx or a 4xx;
- a call the receiver refuses (:data:`RECEIVER_REFUSALS`: malformed, forged, stale, replayed...) changes
  nothing: ``facts()`` (say, each task's state and number of events) is the same after as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from hypothesis import strategies as st

from ..callbacks import CallbackReceiver, CallbackResponse, Query

__all__ = [
    "RECEIVER_REFUSALS",
    "UNICODE_DIGITS",
    "assert_answered",
    "header_noise",
    "hostile_bodies",
    "hostile_text",
    "json_values",
    "nonces",
    "sign_or_garble",
    "timestamps",
]

UNICODE_DIGITS = "٠١٢٣٤٥٦٧٨٩۰۱۲۳०१२३०１２３４５６７８９²³¹߀߁"
"""Characters ``str.isdigit()`` accepts that are not ASCII digits."""

RECEIVER_REFUSALS = frozenset({"malformed", "forged", "stale", "replayed", "unsigned", "unknown_channel", "too_large"})
"""The receiver's own refusals (before anything is ingested): a call refused so records nothing at all.
(A verified receipt the engine refuses, ``refused`` or ``implausible_time``, is counted in the store for
supervision, by design.)"""

_ASCII_TO = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def hostile_text(max_size: int = 64) -> st.SearchStrategy[str]:
    """Text a header or field should never hold: non-ASCII, Unicode digits, control characters, lone
    surrogates, very long runs, and ordinary text too."""
    return st.one_of(
        st.text(max_size=max_size),
        st.text(alphabet=UNICODE_DIGITS, min_size=1, max_size=20),
        st.text(alphabet="éü签名\u0000\r\n\t \u3000\u202e\ufeff", min_size=1, max_size=max_size),
        st.sampled_from(["\ud800", "a\udfffb", "", " ", "null", "-1", "0x10", "1e9", "NaN"]),
        st.integers(min_value=1, max_value=70_000).map(lambda n: "9" * n),
    )


def nonces() -> st.SearchStrategy[str]:
    """Mostly a fresh valid nonce, sometimes a hostile one."""
    return st.one_of(
        st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True),
        hostile_text(),
    )


def timestamps(now: datetime) -> st.SearchStrategy[str]:
    """A callback timestamp: fresh (Unix seconds or milliseconds), stale, in the future, the same number in
    Unicode digits or with a sign or a fraction, far too long, or any hostile text."""
    seconds = int(now.timestamp())
    fresh = st.integers(min_value=seconds - 240, max_value=seconds + 240)
    return st.one_of(
        fresh.map(str),
        fresh.map(str),
        fresh.map(lambda s: str(s * 1000)),
        fresh.map(lambda s: str(s).translate(_ASCII_TO)),
        fresh.map(lambda s: f"+{s}"),
        fresh.map(lambda s: f"{s}.0"),
        fresh.map(lambda s: f" {s} "),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.just(str(int((now - timedelta(days=1)).timestamp()))),
        hostile_text(),
    )


def json_values(max_leaves: int = 20) -> st.SearchStrategy[object]:
    """Any JSON value (objects, arrays, strings with escapes, big numbers, nesting)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text(32),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def hostile_bodies() -> st.SearchStrategy[bytes]:
    """Bodies no provider sends: random bytes, JSON that is not an object, very deep nesting, invalid
    UTF-8, XML with entities, an empty body, one just over a typical size limit."""
    depth = st.integers(min_value=1, max_value=100_000)
    return st.one_of(
        st.binary(max_size=256),
        json_values().map(_dumps),
        st.sampled_from(
            [
                b"",
                b"[]",
                b"null",
                b"42",
                b'"x"',
                b"true",
                b"{}",
                b"[{}]",
                b"\xff\xfe",
                b'{"a":\xff}',
                b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;&a;</xml>',
                b" " * ((1 << 20) + 1),  # just over the receiver's default max_body
            ]
        ),
        st.one_of(
            depth.map(lambda n: b"[" * n + b"]" * n),
            depth.map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
            depth.map(lambda n: b"[" * n),
            depth.map(lambda n: b"<a>" * min(n, 5000) + b"</a>" * min(n, 5000)),
        ),
    )


def header_noise(max_headers: int = 8) -> st.SearchStrategy[dict[str, str]]:
    """Extra headers with hostile names and values; now and then more than the receiver takes."""
    few = st.dictionaries(st.text(min_size=1, max_size=20), hostile_text(40), max_size=max_headers)
    many = st.integers(min_value=120, max_value=300).map(lambda n: {f"x-noise-{i}": "1" for i in range(n)})
    return st.one_of(few, few, few, many)


def sign_or_garble(sign: Callable[[], str]) -> str:
    """``sign()``, or a signature that is certainly wrong when the fields cannot be signed (a lone
    surrogate cannot be encoded): the fuzz generates such fields on purpose."""
    try:
        return sign()
    except (UnicodeEncodeError, ValueError):
        return "0" * 64


def assert_answered(
    receiver: CallbackReceiver,
    channel: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    facts: Callable[[], object],
    query: Query = None,
) -> CallbackResponse:
    """Hand the request to ``receiver.handle`` and check the property (see the module docstring)."""
    before = facts()
    response = receiver.handle(channel, headers, body, query=query)
    assert 200 <= response.status < 300 or 400 <= response.status < 500, (response.status, response.reason)
    assert isinstance(response.json(), bytes)
    if response.reason in RECEIVER_REFUSALS:
        after = facts()
        assert after == before, f"a call answered {response.status} ({response.reason}) changed the store"
    return response
