"""An access-token cache: one fetch shared by concurrent calls, refreshed once when the provider refuses it.

Providers that hand out short-lived access tokens (WeChat, DingTalk, WeCom, most postal APIs) want them
fetched rarely, and fetched *once* when many sends start together. :class:`TokenCache` keeps one token
and its expiry; :meth:`TokenCache.call` runs a provider call with the token and, when the call says the
token was refused, fetches a fresh one and tries exactly once more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from .._exceptions import TransientChannelError

__all__ = ["AccessToken", "TokenCache", "TokenRefused"]

T = TypeVar("T")


@attrs.frozen
class AccessToken:
    """A token and how many seconds it lives from when it was fetched (``expires_in``, positive)."""

    value: str = attrs.field(repr=False)
    expires_in: float

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise ValueError("AccessToken.value must be a non-empty string")
        if not self.expires_in > 0:
            raise ValueError(f"AccessToken.expires_in must be a positive number of seconds, not {self.expires_in!r}")


class TokenRefused(Exception):
    """Raised by the function given to :meth:`TokenCache.call` when the provider refused the token it was
    given (expired, revoked, replaced by another server); the cache then fetches a fresh one."""


class TokenCache:
    """Holds one access token, fetched by ``fetch`` when missing, about to expire or refused.

    :param fetch: a coroutine function that asks the provider for a token; it is given the token the
        provider just refused (``None`` on an ordinary fetch), so that a provider answering that very token
        again can be asked to force a new one; it raises the provider's errors
        (:class:`~delivery_sdk.TransientChannelError`, :class:`~delivery_sdk.ChannelError`) itself.
    :param refresh_margin: fetch anew this many seconds before the token expires (at most half its life).
    :param monotonic: the clock that times the token's life (tests).
    :param name: names the provider in error messages.
    :raises ValueError: ``refresh_margin`` is negative.

    Concurrent callers share one fetch; a token another caller already replaced is not fetched again.
    ``fetches`` counts the fetches (tests, metrics). The token itself never appears in a repr or message.
    """

    def __init__(
        self,
        fetch: Callable[[str | None], Awaitable[AccessToken]],
        *,
        refresh_margin: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        name: str = "provider",
    ) -> None:
        if refresh_margin < 0:
            raise ValueError(f"refresh_margin must be zero or more seconds, not {refresh_margin!r}")
        self._fetch = fetch
        self.refresh_margin = refresh_margin
        self._monotonic = monotonic
        self.name = name
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TokenCache(name={self.name!r}, fetches={self.fetches})"

    def invalidate(self) -> None:
        """Forget the cached token: the next :meth:`get` fetches one."""
        self._token = None

    async def get(self, *, stale: str | None = None) -> str:
        """The cached token; fetched when there is none, when it is about to expire, or when it equals
        ``stale`` (a token the provider just refused).

        :raises Exception: whatever ``fetch`` raises (nothing is cached then).
        """
        async with self._lock:
            if self._token is not None and self._token != stale and self._monotonic() < self._expires:
                return self._token
            token = await self._fetch(stale)
            if not isinstance(token, AccessToken):
                raise TypeError(f"{self.name}: the token fetch must return an AccessToken, not {type(token).__name__}")
            self.fetches += 1
            margin = min(self.refresh_margin, token.expires_in / 2)
            self._token, self._expires = token.value, self._monotonic() + token.expires_in - margin
            return token.value

    async def call(self, fn: Callable[[str], Awaitable[T]]) -> T:
        """``await fn(token)``; when it raises :class:`TokenRefused`, fetch a fresh token and call once more.

        :raises TransientChannelError: the fresh token was refused too (the provider is confused; the
            engine retries later).
        """
        token = await self.get()
        try:
            return await fn(token)
        except TokenRefused:
            token = await self.get(stale=token)
        try:
            return await fn(token)
        except TokenRefused as exc:
            raise TransientChannelError(f"{self.name}: a fresh access token was refused too") from exc
