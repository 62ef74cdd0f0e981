"""HTTP plumbing for adapters: one client factory and the shared response and error mapping.

Everything here is what :mod:`delivery_sdk.httpchannel` offered (kept importable from there), plus
:func:`make_client`, the one place a plugin's ``httpx.AsyncClient`` is built: timeouts, connection limits, an
injectable transport (an emulator's :meth:`~delivery_sdk.testing.EmulatorServer.transport`, a
``httpx.MockTransport``), an optional proxy, no redirects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from .._exceptions import ChannelError
from ..callbacks import require_secret
from ..httpchannel import (
    SECRET_QUERY_PARAMETERS,
    RateLimiter,
    RedactSecretsFilter,
    check_base_url,
    check_response,
    parse_retry_after,
    redact_url,
    translate_errors,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "RETRYABLE_ERRORS",
    "SECRET_QUERY_PARAMETERS",
    "LoopClient",
    "RateLimiter",
    "RedactSecretsFilter",
    "RetryableResponse",
    "check_base_url",
    "check_response",
    "check_settings",
    "json_answer",
    "make_client",
    "parse_retry_after",
    "redact_url",
    "request_json",
    "translate_errors",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a provider call may take (connect, read, write and pool) unless the plugin says otherwise."""


class RetryableResponse(Exception):
    """A provider's answer worth another attempt (429, 5xx) in an adapter's own retried calls
    (:func:`~delivery_sdk.plugin_kit.retrying`); ``status`` is the HTTP status and ``retry_after`` the seconds
    its ``Retry-After`` asked for (None: none, or unreadable). Its message is ``HTTP <status>``: nothing the
    provider wrote."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    RetryableResponse,
)
"""What is worth another attempt in an adapter's own calls: timeouts, connection and read/write errors, a
server that hung up, and a :class:`RetryableResponse`."""


def make_client(
    base_url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_connections: int = 20,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
    proxy: str | None = None,
    what: str = "base_url",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one provider.

    :param base_url: the provider's API root; checked with :func:`check_base_url` (trailing slash dropped).
    :param timeout: seconds for each of connect, read, write and pool; must be positive.
    :param max_connections: the connection pool's size (keep-alive connections included); at least 1.
    :param transport: serve requests with this transport instead of the network (an emulator's
        ``transport()``, ``httpx.MockTransport``, a transport wrapping httpx's); ``proxy`` is then ignored,
        and so are the proxy variables of the environment (give the transport its proxy).
    :param headers: sent with every request (never a secret that a log line could show: httpx logs URLs,
        not headers).
    :param proxy: an HTTP(S) proxy URL for this client only (read it from the ``environ`` the host gave
        the plugin); without one, httpx honours the usual ``HTTPS_PROXY``/``NO_PROXY`` variables.
    :param what: names the setting in error messages (``"DELIVERY_SDK_SMS_URL"``).
    :raises ValueError: ``base_url`` is not an http(s) URL with a host, ``timeout`` is not positive or
        ``max_connections`` is under 1 (the message names ``what``).

    Redirects are not followed (a provider that redirects a signed call is misconfigured). Close the client
    with ``await client.aclose()``. Logging: httpx logs each request line at INFO, URL included; attach
    :class:`RedactSecretsFilter` to your handlers when a provider insists on a secret in the URL.
    """
    url = check_base_url(base_url, what=what)
    if not timeout > 0:
        raise ValueError(f"{what}: the timeout must be a positive number of seconds, not {timeout!r}")
    if max_connections < 1:
        raise ValueError(f"{what}: max_connections must be at least 1, not {max_connections!r}")
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        base_url=url,
        transport=transport,
        proxy=proxy if transport is None else None,
        timeout=timeout,
        limits=limits,
        headers=dict(headers or {}),
        follow_redirects=False,
    )


def json_answer(response: httpx.Response, what: str, *, party: str = "the service") -> dict[str, Any]:
    """A provider's answer as a JSON object.

    Raises :class:`~delivery_sdk.ChannelError` (``"{what}: {party}'s answer is not JSON"``, or ``"... is
    not a JSON object"``) otherwise: a 2xx answer the adapter cannot read is the provider's fault, and
    another attempt would read the same. ``party`` names the provider in the message (``"the carrier"``).
    """
    try:
        payload = response.json()
    except ValueError:
        raise ChannelError(f"{what}: {party}'s answer is not JSON") from None
    if not isinstance(payload, dict):
        raise ChannelError(f"{what}: {party}'s answer is not a JSON object")
    return payload


class LoopClient:
    """An adapter's ``httpx.AsyncClient`` bound to the event loop that uses it.

    An ``AsyncClient``'s connections belong to one event loop; an adapter that may be driven from several
    (a test per loop, a worker restarted on a new loop) calls :meth:`get` for each request, which makes
    the client with ``factory`` on first use and again whenever the running loop has changed (the old
    client is dropped with its loop). ``on_new`` is called after each new client (to make per-loop state
    such as an ``asyncio.Lock``). :meth:`get` raises ``RuntimeError`` outside a running loop.
    """

    def __init__(self, factory: Callable[[], httpx.AsyncClient], *, on_new: Callable[[], object] | None = None) -> None:
        self._factory = factory
        self._on_new = on_new
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        """The running loop's client (made now when there is none for it)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._factory()
            self._loop = loop
            if self._on_new is not None:
                self._on_new()
        return self._client

    async def aclose(self) -> None:
        """Close the current client, if any (the next :meth:`get` makes another)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def check_settings(
    base_url: str,
    *,
    required: Iterable[tuple[str, object]] = (),
    secrets: Iterable[tuple[str, object]] = (),
    link_template: str | None = None,
    link_example: str = "https://court.example/s/{token}",
) -> str:
    """Check an adapter's constructor settings, in this order; returns ``base_url`` as
    :func:`check_base_url` gives it.

    :param required: ``(name, value)`` pairs that must not be empty.
    :param secrets: ``(name, value)`` pairs that must be usable secrets (:func:`require_secret`).
    :param link_template: the document page URL, which must contain ``{token}`` (None: the adapter has none).
    :param link_example: the example the ``link_template`` error shows.
    :raises ValueError: for the first unusable setting, naming it and what it must be (never a secret's
        value): ``base_url`` not an http(s) URL with a host, ``"{name} must not be empty"``, a blank or
        missing secret (:class:`~delivery_sdk.ValidationError`), ``"link_template must contain '{token}'..."``.
    """
    checked = check_base_url(base_url)
    for what, value in required:
        if not value:
            raise ValueError(f"{what} must not be empty")
    for what, value in secrets:
        require_secret(value, what)
    if link_template is not None and "{token}" not in link_template:
        raise ValueError(f"link_template must contain '{{token}}', e.g. '{link_example}'")
    return checked


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    what: str,
    limiter: RateLimiter | None = None,
    check: bool = True,
    **kwargs: Any,
) -> tuple[httpx.Response, Any]:
    """One provider call: wait for ``limiter`` (when given), send the request (``kwargs`` go to
    ``client.request``) under :func:`translate_errors`, check the status with :func:`check_response`
    (unless ``check`` is False: the caller reads a provider's error code first), and read the body as
    JSON. Returns the response and the parsed body, or None for a body that is not JSON (the caller
    decides what an unreadable answer means: a send in doubt is transient).

    Raises what :func:`translate_errors` and :func:`check_response` raise: ``TransientChannelError`` for
    a timeout, a network error, 429 or 5xx; ``ChannelError`` for another 4xx. ``what`` names the call in
    their messages (``"sms.send"``).
    """
    if limiter is not None:
        await limiter.acquire()
    async with translate_errors(what):
        response = await client.request(method, path, **kwargs)
    if check:
        check_response(response, what=what)
    try:
        data = response.json()
    except ValueError:
        data = None
    return response, data
