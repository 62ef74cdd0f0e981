"""Provider callbacks (delivery reports, read receipts, carrier tracking): verify, de-duplicate, ingest.

:class:`CallbackReceiver` is the one framework-agnostic entry point: ``handle(channel, headers, body, query=)``
finds the channel's adapter, checks that the push is authentic, fresh and not a replay, parses it into
receipts and ingests each (idempotently), and returns a :class:`CallbackResponse` (an HTTP status and a
small JSON body) for whatever web framework carries it. :func:`asgi_app` wraps a receiver into a plain
ASGI 3 application that any ASGI server (uvicorn, hypercorn, daphne...) or framework mount can serve.

Three layers keep a callback from being recorded twice or forged:

1. **signature and timestamp**: the adapter's ``verify_callback`` (the provider's own scheme) or, for an
   adapter without one, the generic scheme below with a per-channel secret. A captured callback is refused
   once its timestamp is more than ``window`` from now;
2. **replay cache**: the key ``verify_callback`` returns (a nonce or provider message id) is remembered for
   twice the window (a callback stamped ``ts`` passes layer 1 until ``ts + window``, and may have arrived
   as early as ``ts - window``); the same key again is refused as ``replayed``. The cache is bounded and in
   memory (one per process), so it is a fast first line, not the guarantee;
3. **the store's receipt keys**: ingest is idempotent on ``(channel, provider_event_id)``, durably and
   across processes, and a receipt that tells a dispatch nothing new is not recorded either. Whatever gets
   past layer 2 (a replay to another worker, an entry evicted from a full cache, a provider retrying with a
   fresh nonce) is recorded once.

Past the three layers, the engine judges every receipt it parses (:mod:`delivery_sdk.trust`): a receipt
about a dispatch that the channel it came through did not carry, or that channel cannot report, is
refused (403, ``refused``), and one whose time is before the dispatch was queued or after now is not
applied (422, ``implausible_time``; the task goes to needs-attention). Both are counted in supervision.

The generic scheme (for adapters without ``verify_callback``, and for integrators' own pushes)::

    X-Delivery-Timestamp: <Unix seconds>
    X-Delivery-Nonce:     <1-128 characters of A-Z a-z 0-9 _ . : -, unique per callback>
    X-Delivery-Signature: hex(HMAC-SHA256(secret, timestamp + "\\n" + nonce + "\\n" + body))

:func:`sign_callback` produces these headers.

Contract for adapters that take callbacks: besides ``parse_callback(headers, body)``, implement::

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        '''Check the provider's signature and timestamp; return a key unique to this callback
        (the provider's message id or nonce) for replay protection.
        Raise CallbackRejected("forged" | "stale", detail) otherwise.'''

Header names are matched case-insensitively (pass any mapping; :func:`lower_headers` normalises).

**The URL query.** Some providers sign in the query string, not in headers (WeChat puts ``signature``,
``timestamp`` and ``nonce`` there). The receiver takes the request's query (``handle(..., query=...)``: a
mapping, or the raw query string, which :func:`parse_query` decodes) and passes it, as a
``dict[str, str]`` (empty when the request had none), to every adapter method that declares a ``query``
parameter::

    def verify_callback(self, headers, body, now, *, query: Mapping[str, str] | None = None) -> str: ...
    def parse_callback(self, headers, body, *, query: Mapping[str, str] | None = None) -> Sequence[Receipt]: ...

Adapters whose scheme lives in headers do not declare it and are called as before. Headers and query stay
apart: a query parameter is never visible as a header, nor the other way round. A raw query string naming
a parameter twice, or more than :data:`MAX_QUERY_FIELDS` of them, is refused as ``malformed`` (which copy
would the signature have covered?).
"""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import hmac
import inspect
import json
import logging
import re
import secrets as _secrets
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ._exceptions import CallbackRejected, MalformedReceipt, StoreError, UnknownChannel, ValidationError

if TYPE_CHECKING:
    from .channels import ChannelAdapter, Receipt
    from .clock import Clock
    from .engine import Engine

__all__ = [
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_FIELDS",
    "MAX_QUERY_FIELDS",
    "CallbackReceiver",
    "CallbackReply",
    "CallbackResponse",
    "ReplayCache",
    "ReplayGuard",
    "asgi_app",
    "check_timestamp",
    "hmac_sha256_hex",
    "link_token",
    "lower_headers",
    "parse_callback_with_query",
    "parse_query",
    "require_secret",
    "sign_callback",
    "signature_matches",
    "takes_query",
    "verify_hmac_sha256",
    "verify_signed_callback",
]

log = logging.getLogger("delivery_sdk.callbacks")

HEADER_TIMESTAMP = "X-Delivery-Timestamp"
HEADER_NONCE = "X-Delivery-Nonce"
HEADER_SIGNATURE = "X-Delivery-Signature"
DEFAULT_WINDOW = timedelta(minutes=5)
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a delivery report is a few hundred bytes
_NONCE = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)
_CHANNEL = re.compile(r"[A-Za-z0-9_.:-]{1,100}", re.ASCII)
MAX_QUERY_FIELDS = 64  # a provider's query carries a handful of parameters
MAX_HEADER_FIELDS = 128  # a provider's push carries a few dozen headers at most
MAX_HEADER_BYTES = 64 * 1024  # names and values together
MAX_SIGNATURE_LENGTH = 512  # a hex SHA-512 HMAC is 128 characters; anything much longer is not a signature
MAX_TIMESTAMP_DIGITS = 16  # Unix milliseconds have 13 digits until the year 2286
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_BLANK = " \t\r\n"  # the whitespace a header value may be padded with (ASCII only)


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with lower-case names (HTTP header names are case-insensitive)."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


Query = Mapping[str, str] | str | bytes | None
"""A callback's URL query: a mapping, the raw query string (``a=1&b=2``, percent-encoded), or none."""


def parse_query(query: Query) -> dict[str, str]:
    """The callback's query parameters as a ``dict`` (names as given: query names are case-sensitive).

    A raw string or bytes (ASGI's ``scope["query_string"]``) is percent-decoded as UTF-8, blank values kept.
    Raises ``ValueError`` for a name given twice, more than :data:`MAX_QUERY_FIELDS` parameters, or text
    that is not UTF-8 once decoded.
    """
    if query is None:
        return {}
    if isinstance(query, Mapping):
        if len(query) > MAX_QUERY_FIELDS:
            raise ValueError(f"more than {MAX_QUERY_FIELDS} query parameters")
        return {str(k): str(v) for k, v in query.items()}
    raw = query.decode("latin-1") if isinstance(query, bytes) else query
    if not isinstance(raw, str):
        raise TypeError(f"query must be a mapping, str or bytes, not {type(query).__name__}")
    try:
        pairs = urllib.parse.parse_qsl(
            raw, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=MAX_QUERY_FIELDS
        )
    except UnicodeDecodeError:
        raise ValueError("a query parameter is not UTF-8") from None
    except ValueError:
        raise ValueError(f"more than {MAX_QUERY_FIELDS} query parameters") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise ValueError(f"query parameter {name[:40]!r} appears twice")
        params[name] = value
    return params


@functools.lru_cache(maxsize=1024)
def _declares_query(func: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a builtin or an odd callable: no introspection, no query
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "query" and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
        for p in parameters
    )


def takes_query(method: Callable[..., Any]) -> bool:
    """Whether an adapter method declares a ``query`` parameter (or ``**kwargs``): the receiver passes the
    request's query to those only."""
    func = getattr(method, "__func__", method)  # a bound method: its function, so the answer is cached
    try:
        return _declares_query(func)
    except TypeError:  # an unhashable callable object
        return _declares_query.__wrapped__(func)


def parse_callback_with_query(
    adapter: ChannelAdapter, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
) -> Sequence[Receipt]:
    """``adapter.parse_callback(headers, body)``, given ``query=`` too when the adapter declares it."""
    parse = adapter.parse_callback
    if takes_query(parse):
        return parse(headers, body, query=dict(query or {}))  # type: ignore[call-arg]
    return parse(headers, body)


def link_token(key: bytes | str, dispatch_id: str) -> str:
    """The opaque token in a dispatch's document link: 22 base64url characters (132 bits) of
    HMAC-SHA256(key, dispatch id).

    Every channel that sends a link (SMS, WeChat, e-mail) uses this one function, so the court's document
    page recomputes tokens the same way whatever channel carried the link. Deterministic (a resent message
    carries the same link) and unguessable without the key; it reveals nothing about the case or the party.
    """
    raw = key.encode() if isinstance(key, str) else key
    return base64.urlsafe_b64encode(hmac.new(raw, dispatch_id.encode("utf-8"), hashlib.sha256).digest()).decode()[:22]


def hmac_sha256_hex(secret: bytes | str, *parts: bytes | str) -> str:
    """HMAC-SHA256 over ``parts`` joined by newlines, as lower-case hex."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = b"\n".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_matches(expected: str | bytes, given: str | bytes | None) -> bool:
    """Whether ``given`` is the hex signature ``expected``, compared in constant time **as bytes**.

    ``given`` comes from the request: it is stripped of ASCII blanks and lower-cased (hex is
    case-insensitive). One that is missing, longer than :data:`MAX_SIGNATURE_LENGTH` or not ASCII does
    not match (no hex digest is anything else, so it is forged); this never raises, unlike
    ``hmac.compare_digest`` on a ``str`` that is not ASCII.
    """
    if given is None:
        return False
    if isinstance(given, str):
        if not given.isascii():
            return False
        given = given.encode("ascii")
    if not isinstance(given, bytes | bytearray) or len(given) > MAX_SIGNATURE_LENGTH:
        return False
    given = bytes(given).strip(_BLANK.encode()).lower()
    if isinstance(expected, str):
        if not expected.isascii():
            return False
        expected = expected.encode("ascii")
    return bool(given) and hmac.compare_digest(bytes(expected).lower(), given)


def verify_hmac_sha256(secret: bytes | str, signature: str | None, *parts: bytes | str) -> None:
    """Raise ``CallbackRejected("forged")`` unless ``signature`` is the hex HMAC-SHA256 of ``parts``.

    Compared in constant time as bytes (:func:`signature_matches`): a signature that is not ASCII, or a
    signed field that is not encodable text (a lone surrogate), is ``forged``, never an exception. An empty
    ``secret`` is refused as ``unsigned`` (anyone can compute an HMAC under the empty key).
    """
    if not secret:
        raise CallbackRejected("unsigned", "no callback secret is configured")
    if not signature:
        raise CallbackRejected("forged", "no signature")
    try:
        expected = hmac_sha256_hex(secret, *parts)
    except UnicodeEncodeError:
        raise CallbackRejected("forged", "a signed field is not text") from None
    if not signature_matches(expected, signature):
        raise CallbackRejected("forged", "signature does not match")


def check_timestamp(value: str | None, now: datetime, window: timedelta = DEFAULT_WINDOW) -> datetime:
    """Parse a callback timestamp (Unix seconds or milliseconds) and refuse one outside ``now ± window``.

    Only ASCII digits count (``str.isdigit`` also takes ``"١٢٣"`` and ``"²"``), at most
    :data:`MAX_TIMESTAMP_DIGITS` of them, optionally padded with ASCII blanks; anything else is ``forged``.
    """
    text = value.strip(_BLANK) if isinstance(value, str) else ""
    if not 0 < len(text) <= MAX_TIMESTAMP_DIGITS or not _DIGITS.fullmatch(text):
        raise CallbackRejected("forged", "missing or unreadable timestamp")
    number = int(text)
    if number > 10**11:  # milliseconds
        number //= 1000
    try:
        stamped = datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        raise CallbackRejected("stale", "timestamp out of range") from None
    if abs(stamped - now) > window:
        raise CallbackRejected("stale", f"timestamp more than {int(window.total_seconds())} s from now")
    return stamped


# -- the generic signature scheme ---------------------------------------------------------------------

Secret = bytes | str
Secrets = Secret | Sequence[Secret]


def require_secret(value: object, what: str) -> Secret:
    """``value`` if it can key an HMAC: a ``str`` or ``bytes`` with something besides whitespace.

    Otherwise raises :class:`~delivery_sdk.ValidationError` (a ``ValueError``) naming ``what`` (the
    setting, say ``"callback_secret"`` or an environment variable) and how to fix it, never the value.
    Adapters call it in their constructors, so an empty secret fails at start-up rather than on every
    callback (or, worse, verifies signatures anyone can make under the empty key).
    """
    if not isinstance(value, str | bytes):
        raise ValidationError(
            f"{what} must be a non-empty str or bytes, not {type(value).__name__}: "
            "set it to the secret the provider signs its callbacks with"
        )
    if not value.strip():
        raise ValidationError(
            f"{what} is empty: set it to the secret the provider signs its callbacks with "
            "(a long random string, the same on both sides); an empty key would let anyone sign"
        )
    return value


def _secret_list(value: Secrets, what: str = "a callback secret") -> list[Secret]:
    if isinstance(value, str | bytes):
        return [require_secret(value, what)]
    try:
        items: list[object] = list(value)
    except TypeError:
        items = [value]  # not a sequence: require_secret says what it is
    if not items:
        raise ValidationError(f"{what}: give a non-empty str or bytes, or a non-empty sequence of them")
    return [require_secret(item, what) for item in items]


def sign_callback(
    secret: Secret, body: bytes, *, timestamp: datetime | int, nonce: str | None = None
) -> dict[str, str]:
    """The headers of the generic scheme for ``body``: timestamp, nonce (random unless given), signature."""
    stamp = str(int(timestamp.timestamp()) if isinstance(timestamp, datetime) else int(timestamp))
    nonce = nonce if nonce is not None else _secrets.token_hex(16)
    if not _NONCE.fullmatch(nonce):
        raise ValueError("a callback nonce must be 1-128 characters of A-Z a-z 0-9 _ . : -")
    return {
        HEADER_TIMESTAMP: stamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: hmac_sha256_hex(secret, stamp, nonce, body),
    }


def verify_signed_callback(
    secrets: Secrets, headers: Mapping[str, str], body: bytes, now: datetime, window: timedelta = DEFAULT_WINDOW
) -> str:
    """Check a callback signed with the generic scheme; return its nonce (the replay key).

    ``secrets`` may list several secrets (the new one first while a provider rotates): any one that matches
    is accepted. Raises ``CallbackRejected("forged" | "stale")``.
    """
    lowered = lower_headers(headers)
    stamp = lowered.get(HEADER_TIMESTAMP.lower())
    nonce = lowered.get(HEADER_NONCE.lower())
    signature = lowered.get(HEADER_SIGNATURE.lower())
    if nonce is None or not _NONCE.fullmatch(nonce):
        raise CallbackRejected("forged", "missing or unreadable nonce")
    if not signature:
        raise CallbackRejected("forged", "no signature")
    # The signature first, so an attacker learns nothing from the timestamp check.
    for secret in _secret_list(secrets):
        try:
            verify_hmac_sha256(secret, signature, stamp or "", nonce, body)
        except CallbackRejected:
            continue
        break
    else:
        raise CallbackRejected("forged", "signature does not match")
    check_timestamp(stamp, now, window)
    return nonce


# -- replay protection --------------------------------------------------------------------------------


@runtime_checkable
class ReplayGuard(Protocol):
    """Remembers the callbacks seen recently (layer 2 of the module docstring).

    Implement it over a shared cache (Redis ``SET NX PX``, a database table) to share it between workers.
    """

    def claim(self, key: str, now: datetime) -> bool:
        """Remember ``key``; False if it was already claimed and has not expired."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key`` (its callback was not processed, so the provider's retry must get through)."""
        ...


class ReplayCache:
    """An in-memory, thread-safe, bounded :class:`ReplayGuard`.

    A key is kept for ``retention`` (twice the receiver's window by default). At most ``max_entries`` keys
    are kept; beyond that the oldest go first, which only weakens this layer: the store's receipt keys
    still record nothing twice.
    """

    def __init__(self, *, retention: timedelta = 2 * DEFAULT_WINDOW, max_entries: int = 100_000) -> None:
        if retention <= timedelta(0):
            raise ValueError("retention must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.retention = retention
        self.max_entries = max_entries
        self._expiry: collections.OrderedDict[str, datetime] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, key: str, now: datetime) -> bool:
        """Remember ``key``; False if it was already claimed and has not expired."""
        with self._lock:
            self._expire(now)
            expiry = self._expiry.get(key)
            if expiry is not None and expiry > now:
                return False
            self._expiry[key] = now + self.retention
            self._expiry.move_to_end(key)
            while len(self._expiry) > self.max_entries:
                self._expiry.popitem(last=False)
            return True

    def release(self, key: str) -> None:
        """Forget ``key`` (its callback was not processed, so the provider's retry must get through)."""
        with self._lock:
            self._expiry.pop(key, None)

    def _expire(self, now: datetime) -> None:
        # keys are appended in claim order and all live equally long: the expired ones are at the front
        while self._expiry:
            expiry = next(iter(self._expiry.values()))
            if expiry > now:
                break
            self._expiry.popitem(last=False)


# -- the receiver -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CallbackResponse:
    """What to answer the provider: an HTTP status and a JSON body without personal data.

    ``reason`` says why a callback was refused (``forged``, ``stale``, ``replayed``, ``unsigned``,
    ``unknown_channel``, ``malformed``, ``too_large``; ``refused`` and ``implausible_time`` for receipts the
    engine would not apply; ``store_unavailable`` and ``internal`` for 5xx answers); it is for logs and
    tests, the body does not carry it beyond a generic error.
    """

    status: int
    body: Mapping[str, Any]
    reason: str | None = None
    reply: CallbackReply | None = None

    def json(self) -> bytes:
        """The response body as compact JSON bytes (sorted keys)."""
        return json.dumps(dict(self.body), sort_keys=True, separators=(",", ":")).encode()

    def content(self) -> bytes:
        """The bytes to answer: the adapter's :class:`CallbackReply` when it shaped one, else :meth:`json`."""
        return self.reply.body if self.reply is not None else self.json()

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of :meth:`content`."""
        return self.reply.content_type if self.reply is not None else "application/json"


@attrs.frozen
class CallbackReply:
    """The body a provider expects in answer to a callback it pushed, when ``{"ok": true}`` will not do
    (WeChat wants ``success``, Alibaba Cloud ``{"code": 0, "msg": "成功"}``).

    An adapter shapes it with an optional method ``callback_reply(response: CallbackResponse) ->
    CallbackReply | None``, called only for a callback that was verified and ingested (a 2xx
    ``response``); refusals keep the receiver's own answer. ``None`` keeps the default body. The status
    code is never the adapter's to change: the provider must learn of a refusal.
    """

    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.body, bytes):
            raise TypeError(f"CallbackReply.body must be bytes, not {type(self.body).__name__}")
        if not isinstance(self.content_type, str) or not self.content_type.isascii() or "\n" in self.content_type:
            raise ValueError("CallbackReply.content_type must be one line of ASCII, say 'text/plain; charset=utf-8'")


_REJECTED_STATUS = {"unknown_channel": 403}


def _where(exc: BaseException) -> str:
    """Where ``exc`` was raised (``file.py:line in function``): for logs, without its message."""
    tb = exc.__traceback__
    if tb is None:
        return "unknown place"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} in {code.co_name}"


def _malformed(channel: object, why: str) -> CallbackResponse:
    log.warning("callback on channel %r is malformed: %s", str(channel)[:100], why)
    return CallbackResponse(status=400, body={"error": "malformed"}, reason="malformed")


def _unavailable(reason: str) -> CallbackResponse:
    return CallbackResponse(status=503, body={"error": "unavailable"}, reason=reason)


def _checked_headers(headers: object) -> dict[str, str]:
    """The request's headers as a plain ``dict`` of text (names as given; ``bytes`` decoded as Latin-1, as
    HTTP carries them), or ``ValueError`` for more than :data:`MAX_HEADER_FIELDS` of them, more than
    :data:`MAX_HEADER_BYTES` characters in all, or a name or value that is neither text nor bytes."""
    if not isinstance(headers, Mapping):
        raise ValueError("the headers are not a mapping")
    checked: dict[str, str] = {}
    size = 0
    for name, value in headers.items():
        if len(checked) >= MAX_HEADER_FIELDS:
            raise ValueError(f"more than {MAX_HEADER_FIELDS} headers")
        name = name.decode("latin-1") if isinstance(name, bytes) else name
        value = value.decode("latin-1") if isinstance(value, bytes) else value
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("a header name or value is neither text nor bytes")
        size += len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            raise ValueError(f"the headers exceed {MAX_HEADER_BYTES} characters")
        checked[name] = value
    return checked


def _engine_of(target: object) -> Engine:
    from .engine import Engine

    if isinstance(target, Engine):
        return target
    engine = getattr(target, "engine", None)
    if isinstance(engine, Engine):
        return engine
    raise TypeError(
        f"CallbackReceiver takes a DeliveryClient, an AsyncDeliveryClient or an Engine, not {type(target).__name__}"
    )


class CallbackReceiver:
    """Verify, de-duplicate and ingest provider callbacks; see the module docstring for the layers.

    ``target`` is a :class:`~delivery_sdk.DeliveryClient`, an :class:`~delivery_sdk.AsyncDeliveryClient` or
    their engine. ``secrets`` maps a channel name to the secret(s) of the generic scheme, used for adapters
    without a ``verify_callback`` of their own; a channel with neither is refused as ``unsigned``.
    ``clock`` defaults to the client's clock; ``max_body`` bounds the payload (413 above it).

    :meth:`handle` takes the request's headers, body and URL query (for adapters that declare ``query``;
    see the module docstring). It is synchronous and ingests in the caller's thread: call it where the
    client's engine lives (the ASGI app calls :meth:`ahandle` in the server's event loop, which is where an
    :class:`~delivery_sdk.AsyncDeliveryClient` running ``run_forever`` lives too).
    """

    def __init__(
        self,
        target: object,
        *,
        secrets: Mapping[str, Secrets] | None = None,
        window: timedelta = DEFAULT_WINDOW,
        replay: ReplayGuard | None = None,
        clock: Clock | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        if max_body < 1:
            raise ValueError("max_body must be at least 1 byte")
        self.engine = _engine_of(target)
        self.secrets: dict[str, list[Secret]] = {
            name: _secret_list(value, f"the callback secret of channel {name!r}")
            for name, value in (secrets or {}).items()
        }
        self.window = window
        self.replay: ReplayGuard = replay if replay is not None else ReplayCache(retention=2 * window)
        self.clock: Clock = clock or self.engine.clock
        self.max_body = max_body

    def _rejected(self, channel: str, exc: CallbackRejected) -> CallbackResponse:
        # the channel name comes from the URL: repr() and a bound keep it from forging log lines
        log.warning("callback on channel %r rejected: %s", channel[:100], exc)
        return CallbackResponse(
            status=_REJECTED_STATUS.get(exc.reason, 401), body={"error": "rejected"}, reason=exc.reason
        )

    def _adapter(self, channel: str) -> Any:
        """The channel adapter of that name, else the print centre of that id (centres push too)."""
        host = self.engine.host
        try:
            return host.channels.get(channel)
        except UnknownChannel:
            if channel in host.print_centres:
                return host.print_centres.adapter(channel)
            raise

    def _verify(
        self, channel: str, headers: Mapping[str, str], body: bytes, now: datetime, query: Mapping[str, str]
    ) -> str:
        if not _CHANNEL.fullmatch(channel):
            raise CallbackRejected("unknown_channel", "not a channel name")
        try:
            adapter = self._adapter(channel)
        except UnknownChannel:
            raise CallbackRejected("unknown_channel", "no adapter of that name") from None
        verify: Callable[..., str] | None = getattr(adapter, "verify_callback", None)
        if verify is not None:
            key = verify(headers, body, now, query=dict(query)) if takes_query(verify) else verify(headers, body, now)
            if not isinstance(key, str) or not key:
                raise CallbackRejected("forged", f"{channel}: verify_callback returned no replay key")
        elif channel in self.secrets:
            key = verify_signed_callback(self.secrets[channel], headers, body, now, self.window)
        else:
            raise CallbackRejected(
                "unsigned", "the adapter has no verify_callback and no secret is configured for the channel"
            )
        return f"{channel}\n{key}"

    def handle(self, channel: str, headers: Mapping[str, str], body: bytes, *, query: Query = None) -> CallbackResponse:
        """Verify ``body`` as a callback on ``channel`` and ingest its receipts; never raises.

        ``query`` is the request's URL query (a mapping or the raw query string), for adapters that declare
        a ``query`` parameter (see the module docstring); a malformed one is answered 400.

        Whatever the request holds, the answer is a :class:`CallbackResponse`: 413 (too large), 400
        (malformed: unusable headers, query or payload), 401/403 (refused: see ``reason``), 200, or 503
        when the store or the replay guard is unavailable (nothing was recorded: the provider should retry).
        An adapter's ``verify_callback`` that raises ``MalformedReceipt`` (a signed payload whose replay key
        cannot be read) counts as ``malformed``, anything else but ``CallbackRejected`` as ``forged`` (what
        cannot be verified is not trusted); its ``parse_callback`` raising anything counts as ``malformed``.
        Only the exception's type and where it was raised are logged, never its message (it may quote the
        payload). A bug in the SDK itself answers 500, logged the same way.
        """
        name = channel[:100] if isinstance(channel, str) else f"<{type(channel).__name__}>"
        try:
            return self._handle(channel, headers, body, query)
        except Exception as exc:  # the last line: an SDK bug, never a traceback to the provider
            log.error("callback on channel %r failed: %s (%s)", name, type(exc).__name__, _where(exc))
            return CallbackResponse(status=500, body={"error": "internal"}, reason="internal")

    def _handle(self, channel: object, raw_headers: object, raw_body: object, query: Query) -> CallbackResponse:
        # typed callers pass str, a mapping and bytes; an ASGI bridge or a framework might not: check, never trust
        if isinstance(raw_body, bytearray | memoryview):
            raw_body = bytes(raw_body)
        if not isinstance(raw_body, bytes):
            return _malformed(channel, "the body is not bytes")
        body = raw_body
        if len(body) > self.max_body:
            return CallbackResponse(status=413, body={"error": "payload_too_large"}, reason="too_large")
        if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
            return self._rejected(str(channel)[:100], CallbackRejected("unknown_channel", "not a channel name"))
        try:
            headers = _checked_headers(raw_headers)
        except ValueError as exc:
            return _malformed(channel, str(exc))
        try:
            params = parse_query(query)
        except (ValueError, TypeError) as exc:
            return _malformed(channel, f"unusable query: {exc}")
        now = self.clock.now()
        try:
            replay_key = self._verify(channel, headers, body, now, params)
        except CallbackRejected as exc:
            return self._rejected(channel, exc)
        except (MalformedReceipt, ValidationError) as exc:  # signed, but its replay key cannot be read
            return _malformed(channel, f"verify_callback raised {type(exc).__name__}")
        except Exception as exc:  # the adapter could not verify it: not trusted
            log.warning(
                "callback on channel %r: verify_callback raised %s (%s); refused as forged",
                channel,
                type(exc).__name__,
                _where(exc),
            )
            return CallbackResponse(status=401, body={"error": "rejected"}, reason="forged")
        try:
            fresh = self.replay.claim(replay_key, now)
        except Exception as exc:
            log.error("callback on channel %r: the replay guard failed (%s)", channel, type(exc).__name__)
            return _unavailable("replay_guard_unavailable")
        if not fresh:
            return self._rejected(channel, CallbackRejected("replayed", "seen within the window"))
        try:
            response = self._ingest(channel, headers, body, params)
        except StoreError as exc:
            # The SDK cannot record what the provider told it: a 5xx, so the provider retries (a 4xx would
            # make it give up, and the fact would be lost). Not a traceback: the type is logged.
            self._release(replay_key)
            log.error("callback on channel %r not recorded: the store failed (%s)", channel, type(exc).__name__)
            return _unavailable("store_unavailable")
        except (MalformedReceipt, ValidationError) as exc:
            self._release(replay_key)
            return _malformed(channel, f"{type(exc).__name__} while ingesting")
        except BaseException:
            self._release(replay_key)  # not processed: the provider's retry must get through
            raise
        if response.status != 200:
            self._release(replay_key)
        return response

    def _release(self, replay_key: str) -> None:
        try:
            self.replay.release(replay_key)
        except Exception as exc:  # a shared guard that is down: the key expires on its own
            log.error("could not release a replay key (%s)", type(exc).__name__)

    async def ahandle(
        self, channel: str, headers: Mapping[str, str], body: bytes, *, query: Query = None
    ) -> CallbackResponse:
        """:meth:`handle` for asyncio code (ingest is a short local transaction, done in the loop)."""
        return self.handle(channel, headers, body, query=query)

    def _ingest(
        self, channel: str, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> CallbackResponse:
        from .engine import IngestOutcome

        adapter = self._adapter(channel)
        try:
            receipts = list(parse_callback_with_query(adapter, headers, body, query))
        except MalformedReceipt as exc:
            log.warning("callback on channel %r is malformed: %s", channel, exc)
            return CallbackResponse(status=400, body={"error": "malformed"}, reason="malformed")
        except Exception as exc:  # a parser that tripped over odd input: the payload is at fault
            log.warning("callback on channel %r could not be parsed (%s)", channel, type(exc).__name__)
            return CallbackResponse(status=400, body={"error": "malformed"}, reason="malformed")
        # Every receipt is ingested on its own: one the engine refuses (not from the dispatch's own adapter, or
        # with a time outside the dispatch's life) changes nothing, and the others of the same push, which
        # their own adapter reported, are recorded as usual. The provider hears of a refusal by a 4xx: 403
        # when any receipt was refused for its provenance (an attack, or a misconfigured channel), else 422
        # when any claimed an implausible time. Both are counted in the store (supervision).
        counts = dict.fromkeys(("recorded", "duplicate", "late", "unknown_dispatch"), 0)
        refused = dict.fromkeys(("refused", "implausible_time"), 0)
        for receipt in receipts:
            outcome = self.engine.ingest(receipt, channel=channel).outcome
            if outcome in (IngestOutcome.ACCEPTED, IngestOutcome.OUT_OF_ORDER):
                counts["recorded"] += 1
            elif outcome in (IngestOutcome.REFUSED, IngestOutcome.IMPLAUSIBLE_TIME):
                refused[outcome.value] += 1
            else:
                counts[outcome.value] += 1
        if refused["refused"] or refused["implausible_time"]:
            why = "refused" if refused["refused"] else "implausible_time"
            log.warning(
                "callback on channel %r: %d receipt(s) refused, %d with an implausible time",
                channel,
                refused["refused"],
                refused["implausible_time"],
            )
            return CallbackResponse(
                status=403 if why == "refused" else 422,
                body={"error": why, "receipts": len(receipts), **counts, **refused},
                reason=why,
            )
        response = CallbackResponse(status=200, body={"ok": True, "receipts": len(receipts), **counts})
        return _shaped(adapter, channel, response)


def _shaped(adapter: object, channel: str, response: CallbackResponse) -> CallbackResponse:
    """``response`` with the adapter's own reply body, when it has a ``callback_reply`` that gives one.

    A ``callback_reply`` that raises or returns something other than a :class:`CallbackReply` or None is
    logged (type only) and ignored: the receipts are recorded, the provider gets the default body.
    """
    shape: Callable[[CallbackResponse], object] | None = getattr(adapter, "callback_reply", None)
    if shape is None:
        return response
    try:
        reply = shape(response)
    except Exception as exc:
        log.error("callback on channel %r: callback_reply failed: %s (%s)", channel, type(exc).__name__, _where(exc))
        return response
    if reply is None:
        return response
    if not isinstance(reply, CallbackReply):
        log.error(
            "callback on channel %r: callback_reply returned %s, not a CallbackReply", channel, type(reply).__name__
        )
        return response
    return attrs.evolve(response, reply=reply)


# -- ASGI ---------------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    content_type: bytes = b"application/json",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(receiver: CallbackReceiver, *, prefix: str = "/callbacks") -> ASGIApp:
    """A plain ASGI 3 application: ``POST {prefix}/{channel}`` goes to ``receiver.ahandle``, with the
    request's headers, body and raw query string (``scope["query_string"]``).

    No framework needed: serve it with ``uvicorn``, or mount it in Starlette/FastAPI (``app.mount``), Django
    (ASGI routing) or anything else that speaks ASGI. Other paths answer 404, other methods 405; a body
    larger than ``receiver.max_body`` is refused with 413 before it is read in full.
    """
    base = "/" + prefix.strip("/") if prefix.strip("/") else ""
    route = base + "/"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here: returning closes the connection
        path: str = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        channel = path[len(route) :] if path.startswith(route) else ""
        if not channel or "/" in channel:
            await _respond(send, 404, b'{"error":"not_found"}')
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b'{"error":"method_not_allowed"}', [(b"allow", b"POST")])
            return
        raw_headers = scope.get("headers") or []
        if len(raw_headers) > MAX_HEADER_FIELDS:
            await _respond(send, 400, b'{"error":"malformed"}', [(b"connection", b"close")])
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw_headers:
            # latin-1 decodes any bytes: a header can never make this fail (a name given twice: the last wins)
            headers[bytes(raw_name).decode("latin-1").lower()] = bytes(raw_value).decode("latin-1")
        declared = headers.get("content-length")
        if declared is not None:
            length = declared.strip(_BLANK)
            if not _DIGITS.fullmatch(length):  # "²" and "١٢" are str.isdigit() but no length
                await _respond(send, 400, b'{"error":"malformed"}', [(b"connection", b"close")])
                return
            if len(length) > 18 or int(length) > receiver.max_body:  # 18 digits: no int() of a huge string
                await _respond(send, 413, b'{"error":"payload_too_large"}', [(b"connection", b"close")])
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > receiver.max_body:
                await _respond(send, 413, b'{"error":"payload_too_large"}', [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            response = await receiver.ahandle(
                channel, headers, b"".join(chunks), query=bytes(scope.get("query_string") or b"")
            )
        except Exception as exc:  # handle never raises; should it ever, no traceback leaves this app
            log.error("callback on channel %r failed: %s (%s)", channel[:100], type(exc).__name__, _where(exc))
            await _respond(send, 500, b'{"error":"internal"}')
            return
        extra = [(b"retry-after", b"5")] if response.status == 503 else []
        await _respond(send, response.status, response.content(), extra, response.content_type.encode("ascii"))

    return app
