"""Building blocks for channel adapters that talk HTTP to their provider (httpx).

Imported only by adapters (the core never imports httpx): the SMS, WeChat and e-service plugins use it,
and an integrator's own adapter should too, so that every adapter fails the same way:

- :func:`check_response` turns an answer into success, a :class:`~delivery_sdk.TransientChannelError`
  (timeouts, 408, 429 honouring ``Retry-After``, 5xx: the engine retries these through
  :mod:`delivery_sdk.retry` and, when a send stays in doubt, asks the provider's status instead of
  sending again) or a permanent :class:`~delivery_sdk.ChannelError` (any other 4xx);
- :func:`translate_errors` does the same for transport errors raised by httpx;
- :class:`RateLimiter` is an asyncio token bucket for a provider's per-channel rate limit;
- :func:`redact_url` and :class:`RedactSecretsFilter` keep credentials that a provider insists on in the
  URL (``access_token``, ``secret``, ``sign``...) out of log lines.

**Secrets and logs.** httpx logs every request line at INFO (``HTTP Request: POST https://... "HTTP/1.1 200
OK"``), URL and query included. An adapter must therefore never put a secret in a URL where the provider
offers another way (a header, a JSON body: the WeChat plugin fetches its token by POST and adds the access
token below httpx's log, in its own transport). For URLs that must carry one, :class:`RedactSecretsFilter`
rewrites such query parameters to ``REDACTED`` in log records. It is **opt-in**: a library must not change
its host's logging behind its back, so delivery-sdk never attaches it itself. Attach it where your
application configures logging, to the *handlers* (a filter on a handler sees every record it emits,
including those propagated from ``httpx`` and ``httpcore``)::

    from delivery_sdk.httpchannel import RedactSecretsFilter
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecretsFilter())
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx

from ._exceptions import ChannelError, TransientChannelError

__all__ = [
    "SECRET_QUERY_PARAMETERS",
    "RateLimiter",
    "RedactSecretsFilter",
    "check_base_url",
    "check_response",
    "parse_retry_after",
    "redact_url",
    "translate_errors",
]

SECRET_QUERY_PARAMETERS = re.compile(
    r"(?:access|refresh|id)?_?token|(?:app|client)?_?secret|secret_?key|sign(?:ature)?|sig|"
    r"password|passwd|pwd|api_?key|access_?key(?:_?secret)?|auth(?:orization)?|credential|ticket|code",
    re.IGNORECASE,
)
"""Query parameter names whose values :func:`redact_url` hides (matched in full, case-insensitively)."""

_QUERY_PAIR = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&#\s\"'<>]{1,64})=(?P<value>[^&#\s\"'<>]*)")
REDACTED = "REDACTED"

_TRANSIENT_STATUS = frozenset({408, 425, 429})


def redact_url(text: str, names: re.Pattern[str] = SECRET_QUERY_PARAMETERS) -> str:
    """``text`` with the value of every query parameter named like a secret replaced by ``REDACTED``.

    Works on a bare URL or any text holding URLs (a log line): ``...send?access_token=AT12&x=1`` becomes
    ``...send?access_token=REDACTED&x=1``. Names are matched in full against ``names``
    (:data:`SECRET_QUERY_PARAMETERS`: ``access_token``, ``secret``, ``sign``, ``signature``, ``api_key``...).
    """

    def hide(match: re.Match[str]) -> str:
        if not names.fullmatch(match["name"]) or not match["value"]:
            return match[0]
        return f"{match['sep']}{match['name']}={REDACTED}"

    return _QUERY_PAIR.sub(hide, text)


class RedactSecretsFilter(logging.Filter):
    """A logging filter that hides secret-looking query parameters (:func:`redact_url`) in the records of
    the loggers named in ``loggers`` (default ``httpx`` and ``httpcore``, and their children; ``None``: every
    record). It formats the record's message with its arguments, redacts, and keeps the result as the
    message (``args`` emptied); a record it does not touch is passed on unchanged. It never drops a record.

    Opt-in (see the module docstring): attach it to your handlers, or to a logger of your own; delivery-sdk
    never installs it process-wide.
    """

    def __init__(
        self, loggers: tuple[str, ...] | None = ("httpx", "httpcore"), names: re.Pattern[str] = SECRET_QUERY_PARAMETERS
    ) -> None:
        super().__init__()
        self.loggers = loggers
        self.names = names

    def _applies(self, name: str) -> bool:
        return self.loggers is None or any(name == n or name.startswith(n + ".") for n in self.loggers)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message if its logger is one this filter applies to; always keep the record (True)."""
        if not self._applies(record.name):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: leave it to the handler's own error path
            return True
        redacted = redact_url(message, self.names)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def check_base_url(base_url: str, *, what: str = "base_url") -> str:
    """``base_url`` without a trailing slash, or ``ValueError`` unless it is an http(s) URL with a host.

    ``what`` names the setting in the message (say ``"print centre 'PC-1': the endpoint"``).
    """
    try:
        url = httpx.URL(base_url)
    except (TypeError, httpx.InvalidURL):
        raise ValueError(f"{what} is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{what} must be an http(s) URL with a host")
    return base_url.rstrip("/")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit also takes "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def check_response(response: httpx.Response, *, what: str) -> httpx.Response:
    """Return ``response`` if it is a 2xx; otherwise raise the right channel error.

    ``what`` names the call in the message (say ``"sms.send"``); the message never echoes the body,
    which may hold personal data.
    """
    status = response.status_code
    if 200 <= status < 300:
        return response
    if status in _TRANSIENT_STATUS or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TransientChannelError(f"{what}: provider answered HTTP {status}", retry_after=retry_after)
    raise ChannelError(f"{what}: provider refused the request with HTTP {status}")


@contextlib.asynccontextmanager
async def translate_errors(what: str) -> AsyncIterator[None]:
    """Turn httpx transport errors (timeouts, refused or reset connections) into ``TransientChannelError``.

    A timeout after the request left is *in doubt*: the provider may have it. Raising a transient error
    keeps the dispatch queued, and the engine asks :meth:`status` before it would ever send it again.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientChannelError(f"{what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientChannelError(f"{what}: transport error ({type(exc).__name__})") from exc


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second on average, bursts of up to ``burst``.

    ``rate=None`` disables limiting. Waiters are served in arrival order.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive (acquisitions per second) or None, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a token is free (in arrival order), then take it; returns at once when limiting is off."""
        if self.rate is None:
            return
        async with self._lock:
            while True:
                now = self._monotonic()
                self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                # a hair under one token counts: with a coarse clock (or a fake one) the refill after a wait
                # can round to 0.999..., and waiting for the rest would never end
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                wait = (1.0 - self._tokens) / self.rate
                result = self._sleep(wait)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await result
