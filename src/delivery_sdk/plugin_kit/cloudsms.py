"""What every cloud SMS adapter shares: the set-up, the error codes, the token-guarded report push.

A cloud SMS service (Alibaba Cloud, Tencent Cloud) takes a signed ``POST /``, answers with a code, and
pushes carrier reports, unsigned, to a URL the court configures in its console. The provider's own
protocol (how a request is signed, where the code stands in the answer, what a report looks like) stays in
its plugin; :class:`CloudSmsChannel` owns the rest so that both adapters validate, fail and authenticate
the push the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    TransientChannelError,
)

from .callbacks import link_token, signature_matches
from .http import RateLimiter, check_settings, make_client, parse_retry_after

__all__ = ["BEIJING", "CloudSmsChannel", "authorization_fields", "beijing_time", "safe_code", "token_matches"]

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
"""Beijing time (UTC+8), the zone the cloud SMS services write their report times in."""

MAX_CALLBACK = 1 << 20


def safe_code(value: object, *, limit: int = 64) -> str:
    """A service code fit for a reason string: at most ``limit`` printable ASCII characters (letters,
    digits, ``._:-``), nothing else echoed; ``"nocode"`` for None, ``"unreadable code"`` when nothing is
    left. Never raises."""
    text = str(value) if value is not None else "no code"
    text = "".join(c for c in text if c.isascii() and (c.isalnum() or c in "._:-"))[:limit]
    return text or "unreadable code"


def _digest(text: str | bytes) -> bytes:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return hashlib.sha256(raw).hexdigest().encode("ascii")


def token_matches(expected: str, given: str | None) -> bool:
    """Whether the callback URL's ``token`` is the configured one: both hashed, then compared in constant
    time as bytes (any text, any length, never an exception)."""
    if not given or not expected:
        return False
    return signature_matches(_digest(expected), _digest(given))


def authorization_fields(value: str, algorithm: str) -> dict[str, str] | None:
    """The ``Credential``, ``SignedHeaders`` and ``Signature`` of an ``Authorization`` header value
    ``"<algorithm> Credential=..., SignedHeaders=..., Signature=..."`` (commas, optional spaces), as the
    cloud services' signature schemes write it; None (never an exception) for another algorithm, a part
    without ``=``, a part twice, or any other set of parts."""
    prefix = algorithm + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        name, sep, val = part.strip().partition("=")
        if not sep or name in fields:
            return None
        fields[name] = val
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    return fields


def beijing_time(text: object, what: str) -> datetime:
    """``"2017-01-01 00:00:00"`` (the services' Beijing-time format) as an aware datetime.

    Raises :class:`~delivery_sdk.MalformedReceipt` (``"{what} is not a time"``, or ``"... is not
    'YYYY-MM-DD HH:MM:SS'"``) for anything else; ``what`` names the field and its source
    (``"aliyun-sms report: report_time"``).
    """
    if not isinstance(text, str) or len(text) > 32:
        raise MalformedReceipt(f"{what} is not a time")
    try:
        when = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MalformedReceipt(f"{what} is not 'YYYY-MM-DD HH:MM:SS'") from None
    return when.replace(tzinfo=BEIJING)


class CloudSmsChannel(BaseChannel):
    """The base of a cloud SMS adapter: a subclass calls :meth:`setup` from its ``__init__`` and adds the
    provider's signing, ``send``, ``status`` and report parsing.

    Class attributes a subclass sets: ``transient_codes`` (a code worth another try, with the least wait
    in seconds), ``auth_codes`` (the request itself refused: the configuration is wrong), ``auth_hint``
    (what the refusal tells the operator to check) and ``code_limit`` (how much of a code a reason shows).
    """

    kind = ChannelKind.SMS
    transient_codes: ClassVar[Mapping[str, float]] = {}
    auth_codes: ClassVar[frozenset[str]] = frozenset()
    auth_hint: ClassVar[str] = "check the key"
    code_limit: ClassVar[int] = 64

    name: str
    base_url: str
    host: str
    link_template: str
    clock: Callable[[], datetime]
    limiter: RateLimiter

    def setup(
        self,
        base_url: str,
        *,
        name: str,
        required: Sequence[tuple[str, str]],
        secret: str,
        callback_token: str,
        link_template: str,
        link_key: bytes | str | None,
        clock: Callable[[], datetime] | None,
        rate: float | None,
        burst: int,
        transport: httpx.AsyncBaseTransport | None,
        http: httpx.AsyncClient | None,
        timeout: float,
        max_connections: int,
    ) -> None:
        """Check and keep what every cloud SMS adapter is configured with; make its HTTP client.

        ``required`` pairs each setting that must not be empty with its name; ``secret`` is the signing
        key (it also derives the link key when ``link_key`` is None); a subclass checks its own settings
        first. Raises ``ValueError``, naming the setting and what it must be, for an unusable base URL, an
        empty required setting, a blank ``callback_token``, a ``link_template`` without ``{token}``, a
        timeout that is not positive or fewer than one connection (:func:`check_settings`); nothing is
        made then.
        """
        base_url = check_settings(
            base_url, required=required, secrets=(("callback_token", callback_token),), link_template=link_template
        )
        if timeout <= 0 or max_connections < 1:
            raise ValueError("timeout must be positive, max_connections at least 1")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.host = httpx.URL(self.base_url).netloc.decode("ascii")
        self._secret = secret
        self._callback_token = callback_token
        self.link_template = link_template
        self._link_key: bytes | str = (
            link_key
            if link_key is not None
            else hashlib.sha256(f"delivery-sdk link token key\n{secret}".encode()).hexdigest()
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.limiter = RateLimiter(rate, burst=burst)
        self._owns_http = http is None
        self._http = http or make_client(
            self.base_url, transport=transport, timeout=timeout, max_connections=max_connections
        )

    def safe_code(self, value: object) -> str:
        """:func:`safe_code` cut at this adapter's ``code_limit``."""
        return safe_code(value, limit=self.code_limit)

    def link_token_for(self, dispatch_id: str) -> str:
        """The link token of a dispatch (keyed by ``link_key``)."""
        return link_token(self._link_key, dispatch_id)

    def link_for(self, dispatch_id: str) -> str:
        """The document page link a dispatch's message carries (or leads to)."""
        return self.link_template.replace("{token}", self.link_token_for(dispatch_id))

    def busy(self, what: str, code: str, response: httpx.Response) -> TransientChannelError:
        """The transient error for a ``transient_codes`` code: it waits for the longer of the answer's
        ``Retry-After`` and the code's least wait."""
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return TransientChannelError(
            f"{what}: the service is busy ({self.safe_code(code)})",
            retry_after=max(retry_after or 0.0, self.transient_codes[code]) or None,
        )

    def check_code(self, what: str, code: object, response: httpx.Response) -> None:
        """Raise for a request-level code: ``TransientChannelError`` (:meth:`busy`) for a transient one,
        ``ChannelError`` (naming the code and ``auth_hint``) for a refused request; return for any other."""
        if isinstance(code, str) and code in self.transient_codes:
            raise self.busy(what, code, response)
        if isinstance(code, str) and code in self.auth_codes:
            raise ChannelError(f"{what}: the service refused the request ({self.safe_code(code)}): {self.auth_hint}")

    def receipt(self, dispatch_id: str, success: bool, at: datetime, detail: object) -> Receipt:
        """A carrier report as a receipt: delivered, or failed with the (sanitised) ``detail`` as reason."""
        if success:
            return Receipt(
                dispatch_id=dispatch_id, kind=ReceiptKind.DELIVERED, at=at, provider_event_id=f"{dispatch_id}:delivered"
            )
        return Receipt(
            dispatch_id=dispatch_id,
            kind=ReceiptKind.FAILED,
            at=at,
            provider_event_id=f"{dispatch_id}:failed",
            reason=f"{self.name}: not delivered ({self.safe_code(detail)})",
        )

    # -- the report push -------------------------------------------------------------------------------

    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime, *, query: Mapping[str, str] | None = None
    ) -> str:
        """Check the callback URL's ``token`` (the push itself is unsigned); return the replay key, a digest
        of the body (the push has no nonce: the same reports pushed again are the same push).

        Raises :class:`~delivery_sdk.CallbackRejected` (``forged``) for a missing or wrong token. The body
        is not parsed here: nothing of a push is read before its token holds.
        """
        if not token_matches(self._callback_token, (query or {}).get("token")):
            raise CallbackRejected("forged", "missing or wrong callback token")
        return f"{self.name}:{hashlib.sha256(body).hexdigest()[:40]}"

    def callback_reports(self, body: bytes, query: Mapping[str, str] | None) -> list[dict[str, Any]]:
        """The report objects of a push, its token checked again. Raises
        :class:`~delivery_sdk.MalformedReceipt` for a wrong token, a body over 1 MiB, one that is not
        JSON, or not a JSON array of objects."""
        if not token_matches(self._callback_token, (query or {}).get("token")):
            raise MalformedReceipt(f"{self.name} callback: missing or wrong callback token")
        if len(body) > MAX_CALLBACK:
            raise MalformedReceipt(f"{self.name} callback: larger than {MAX_CALLBACK} bytes")
        try:
            reports = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedReceipt(f"{self.name} callback: the body is not JSON") from None
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise MalformedReceipt(f"{self.name} callback: expected a JSON array of report objects")
        return reports

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (when it made its own)."""
        if self._owns_http:
            await self._http.aclose()
