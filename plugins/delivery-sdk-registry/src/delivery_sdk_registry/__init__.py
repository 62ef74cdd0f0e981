"""A generic registry-lookup plugin for delivery-sdk: address candidates over HTTP (协查找人).

:class:`RegistryLookup` implements the ``delivery_address_candidates`` hook by asking a vendor's registry
service (household registry, postal database, a mobile operator's gateway...) for postal addresses of a
party. It speaks one small JSON protocol, so a vendor connects a registry by serving one endpoint.

Request: ``POST {base_url}/v1/address-candidates`` with ``Content-Type: application/json`` and the headers
``Authorization: Bearer <api_key>`` (only when an ``api_key`` is configured), ``Idempotency-Key`` and
``X-Request-Id`` (both the ``request_id``; the same on every retry of one lookup)::

    {
      "request_id": "5f0c3b2e9a7d4c1e8b6a2f4d3c1b0a99",
      "party": {
        "party_id": "P-1",
        "name": "张三",
        "kind": "person",                  # or "organisation"
        "id_number": "..."                 # ONLY when send_id_number=True and the party has one
      },
      "known_addresses": [                 # addresses already tried: do not offer them again
        {"address": "湖北省武汉市武昌区中北路1号", "division_code": "420106"}   # division_code may be null
      ]
    }

Response (``200``)::

    {
      "candidates": [
        {
          "address": "湖北省宜昌市夷陵区小溪塔街道发展大道57号",   # required, 1-300 characters
          "division_code": "420506",                            # 6 digits (GB/T 2260), or null / absent
          "source": "household_registry",                        # or null / absent: the configured source
          "confidence": 0.8,                                     # 0..1, or absent: 0.5
          "observed_at": "2026-05-01T00:00:00+08:00"             # ISO 8601 with an offset, or null / absent
        }
      ]
    }

An empty ``candidates`` list means "nothing found". Other fields are ignored.

Failure handling: timeouts, connection errors, ``5xx`` and ``429`` are retried (``attempts`` in all, with
exponential back-off; a ``429``/``503`` ``Retry-After`` is honoured when it is at most ``max_retry_after``
seconds, and a longer one ends the lookup at once). Any other status, a body that is not the schema above,
or exhausted retries: a warning is logged and the hook returns ``[]``, so the engine's search simply finds
nothing from this source; the hook never raises into the engine. A candidate row that fails validation is
skipped on its own, and the skipped rows are counted in one warning. Logs and messages name the
``request_id``, never the party's name, ID number, addresses or phone numbers, and never a response body.

The entry point (``registry = "delivery_sdk_registry:plugin"``) is :data:`plugin`, an
:class:`EnvRegistryLookup`: configured from ``DELIVERY_SDK_REGISTRY_URL`` (plus ``DELIVERY_SDK_REGISTRY_TOKEN``
and ``DELIVERY_SDK_REGISTRY_SOURCE``), read at each call; while the URL is unset it contributes nothing.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from delivery_sdk import AddressCandidate, Contact, ContactKind, Party, hookimpl
from delivery_sdk.plugin_kit import (
    RETRYABLE_ERRORS,
    PluginSettings,
    RetryableResponse,
    RetryConfig,
    configured_or_none,
    parse_retry_after,
    retry_after_or_backoff,
)
from delivery_sdk.plugin_kit import retrying as kit_retrying

__all__ = [
    "DEFAULT_SOURCE",
    "ENDPOINT",
    "ENV_SOURCE",
    "ENV_TOKEN",
    "ENV_URL",
    "EnvRegistryLookup",
    "RegistryLookup",
    "plugin",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_registry")

ENDPOINT = "/v1/address-candidates"
DEFAULT_SOURCE = "household_registry"
ENV_URL = "DELIVERY_SDK_REGISTRY_URL"
ENV_TOKEN = "DELIVERY_SDK_REGISTRY_TOKEN"
ENV_SOURCE = "DELIVERY_SDK_REGISTRY_SOURCE"

_DIVISION = re.compile(r"\d{6}", re.ASCII)
_SOURCE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
_MAX_ADDRESS = 300  # Contact's own limit for a postal address


class _TooLongToWait(Exception):
    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(f"HTTP {status} with Retry-After {retry_after:g}s")
        self.status = status
        self.retry_after = retry_after


class _Refused(Exception):
    """A response that is not worth retrying (4xx other than 429, 3xx, 1xx...)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _Failed(Exception):
    """The request failed for good; the message is already free of anything the server or party supplied."""


class _Malformed(Exception):
    """The body is not the response schema; the message names what is wrong, never a value."""


def _describe(exc: BaseException) -> str:
    """What went wrong, without anything the server or the party supplied (type names and statuses only)."""
    if isinstance(exc, RetryableResponse | _Refused | _TooLongToWait | _Malformed | _Failed):
        return str(exc)
    return type(exc).__name__


class RegistryLookup:
    """The ``delivery_address_candidates`` hook over a registry's HTTP endpoint (see the module docstring).

    - ``base_url``: ``http(s)://host[:port][/prefix]``; requests go to ``{base_url}/v1/address-candidates``;
    - ``source``: the candidates' source when a row gives none (the engine ranks candidates by source in the
      SPC 2017 Opinion order: ``household_registry``/``registry``/``business_registry``, then
      ``postal_database``, then ``operator``);
    - ``api_key``: sent as ``Authorization: Bearer <api_key>``;
    - ``transport``: an ``httpx.BaseTransport`` (``httpx.MockTransport`` in tests); the default is httpx's;
    - ``timeout``: seconds for each attempt (connect, read, write and pool);
    - ``attempts``: attempts in all, at least 1;
    - ``send_id_number``: send the party's ID number (off by default: send it only to a registry that is
      entitled to it and needs it to match);
    - ``backoff``: the first wait between attempts, doubled each time (capped at ``max_retry_after``);
    - ``max_retry_after``: the longest wait honoured; a ``Retry-After`` beyond it ends the lookup;
    - ``max_candidates``: rows beyond this are ignored;
    - ``sleep``: how to wait (``time.sleep``; tests pass a recorder).

    The hook is synchronous and blocks the engine step for at most about
    ``attempts * timeout + (attempts - 1) * max_retry_after`` seconds. Each lookup uses its own
    ``httpx.Client`` (address searches are rare: one per returned letter), so nothing needs closing.
    """

    def __init__(
        self,
        base_url: str,
        *,
        source: str = DEFAULT_SOURCE,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        send_id_number: bool = False,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        max_candidates: int = 50,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            url = httpx.URL(base_url)
        except (TypeError, httpx.InvalidURL):
            raise ValueError("registry base_url is not a valid URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("registry base_url must be an http:// or https:// URL with a host")
        if not _SOURCE.fullmatch(source):
            raise ValueError("registry source must be 1-64 letters, digits or _.-")
        if api_key is not None and (not api_key or any(c in api_key for c in "\r\n")):
            raise ValueError("registry api_key must be a non-empty single-line string")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError("attempts must be an integer of at least 1")
        for name, value in (("timeout", timeout), ("backoff", backoff), ("max_retry_after", max_retry_after)):
            if not math.isfinite(value) or value < 0 or (name == "timeout" and value == 0):
                raise ValueError(f"{name} must be a finite number of seconds (positive for timeout)")
        if max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")
        self.base_url = str(base_url).rstrip("/")
        self.url = self.base_url + ENDPOINT
        self.source = source
        self._api_key = api_key
        self.transport = transport
        self.timeout = timeout
        self.attempts = attempts
        self.send_id_number = send_id_number
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.max_candidates = max_candidates
        self.sleep = sleep

    def __repr__(self) -> str:  # never the api key
        return f"RegistryLookup({self.base_url!r}, source={self.source!r}, attempts={self.attempts})"

    # -- the hook ------------------------------------------------------------------------------------

    @hookimpl
    def delivery_address_candidates(self, party: Party, known: Sequence[Contact]) -> list[AddressCandidate]:
        """Ask the registry for ``party``'s addresses; ``[]`` on any failure (logged, without personal data)."""
        request_id = uuid.uuid4().hex
        try:
            return self.lookup(party, known, request_id=request_id)
        except Exception as exc:
            log.warning(
                "registry lookup %s at %s failed (%s): no candidates from source %s",
                request_id,
                self.base_url,
                _describe(exc),
                self.source,
            )
            return []

    # -- the protocol --------------------------------------------------------------------------------

    def request_body(self, party: Party, known: Sequence[Contact], request_id: str) -> dict[str, Any]:
        """The JSON request for ``party`` (the module docstring has the schema)."""
        described: dict[str, Any] = {"party_id": party.party_id, "name": party.name, "kind": party.kind.value}
        if self.send_id_number and party.id_number is not None:
            described["id_number"] = party.id_number
        return {
            "request_id": request_id,
            "party": described,
            "known_addresses": [
                {"address": c.value, "division_code": c.division_code} for c in known if c.kind is ContactKind.POSTAL
            ],
        }

    def lookup(self, party: Party, known: Sequence[Contact], *, request_id: str) -> list[AddressCandidate]:
        """The lookup itself: raises on failure (the hook turns that into ``[]`` and a warning)."""
        body = self.request_body(party, known, request_id)
        headers = {
            "Accept": "application/json",
            "Idempotency-Key": request_id,
            "X-Request-Id": request_id,
            "User-Agent": f"delivery-sdk-registry/{__version__}",
        }
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        retrying = kit_retrying(
            RetryConfig(attempts=self.attempts),
            retry_on=RETRYABLE_ERRORS,
            sleep=self.sleep,
            wait=retry_after_or_backoff(min(self.backoff, self.max_retry_after), self.max_retry_after),
            on_retry=lambda attempt, exc, wait: log.info(
                "registry lookup %s: attempt %d of %d failed (%s); retrying in %.2fs",
                request_id,
                attempt,
                self.attempts,
                _describe(exc) if exc is not None else "?",
                wait,
            ),
        )
        with httpx.Client(transport=self.transport, timeout=self.timeout, follow_redirects=False) as client:
            try:
                response = retrying(self._post, client, headers, body)
            except Exception as exc:
                attempts = retrying.statistics.get("attempt_number", 1)
                raise _Failed(f"{_describe(exc)}, after {attempts} attempt(s)") from exc
        return self._candidates(response, request_id)

    def _post(self, client: httpx.Client, headers: Mapping[str, str], body: dict[str, Any]) -> httpx.Response:
        response = client.post(self.url, json=body, headers=headers)
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=datetime.now(UTC))
            if retry_after is not None and retry_after > self.max_retry_after:
                raise _TooLongToWait(status, retry_after)
            raise RetryableResponse(status, retry_after)
        if status != 200:
            raise _Refused(status)
        return response

    def _candidates(self, response: httpx.Response, request_id: str) -> list[AddressCandidate]:
        try:
            payload = response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            raise _Malformed("response body is not JSON") from None
        if not isinstance(payload, dict):
            raise _Malformed("response body is not a JSON object")
        rows = payload.get("candidates")
        if not isinstance(rows, list):
            raise _Malformed("response has no 'candidates' list")
        if len(rows) > self.max_candidates:
            log.warning(
                "registry lookup %s: %d candidate rows, only the first %d are used",
                request_id,
                len(rows),
                self.max_candidates,
            )
            rows = rows[: self.max_candidates]
        out: list[AddressCandidate] = []
        problems: list[str] = []
        for index, row in enumerate(rows):
            candidate = self._candidate(row)
            if isinstance(candidate, str):
                problems.append(f"row {index}: {candidate}")
            else:
                out.append(candidate)
        if problems:
            log.warning(
                "registry lookup %s: skipped %d of %d candidate row(s) that failed validation (%s)",
                request_id,
                len(problems),
                len(rows),
                "; ".join(problems),
            )
        return out

    def _candidate(self, row: object) -> AddressCandidate | str:
        """One row as a candidate, or what is wrong with it (a field name and a rule, never the value)."""
        if not isinstance(row, dict):
            return "not an object"
        address = row.get("address")
        if not isinstance(address, str) or not address.strip() or len(address) > _MAX_ADDRESS or "\x00" in address:
            return f"address must be 1-{_MAX_ADDRESS} characters of text"
        try:
            address.encode("utf-8")
        except UnicodeEncodeError:
            return "address is not valid Unicode"
        code = row.get("division_code")
        if code is not None and (not isinstance(code, str) or not _DIVISION.fullmatch(code)):
            return "division_code must be 6 digits or null"
        source = row.get("source")
        if source is None:
            source = self.source
        elif not isinstance(source, str) or not _SOURCE.fullmatch(source):
            return "source must be 1-64 letters, digits or _.- or null"
        confidence = row.get("confidence", 0.5)
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not math.isfinite(confidence)
            or not 0.0 <= confidence <= 1.0
        ):
            return "confidence must be a number from 0 to 1"
        observed = row.get("observed_at")
        observed_at: datetime | None = None
        if observed is not None:
            if not isinstance(observed, str):
                return "observed_at must be an ISO 8601 string or null"
            try:
                observed_at = datetime.fromisoformat(observed)
            except ValueError:
                return "observed_at must be an ISO 8601 string or null"
            if observed_at.tzinfo is None or observed_at.utcoffset() is None:
                return "observed_at must carry a UTC offset"
        try:
            contact = Contact(kind=ContactKind.POSTAL, value=address, division_code=code, source=source)
        except Exception as exc:  # the SDK's own validation; its message is masked, but say only the type
            return f"not a valid postal contact ({type(exc).__name__})"
        return AddressCandidate(contact=contact, source=source, confidence=float(confidence), observed_at=observed_at)


class EnvRegistryLookup:
    """The entry-point plugin: a :class:`RegistryLookup` configured from the environment, or nothing.

    ``DELIVERY_SDK_REGISTRY_URL`` is the base URL (unset or empty: the hook returns None, contributing
    nothing); ``DELIVERY_SDK_REGISTRY_TOKEN`` the bearer token; ``DELIVERY_SDK_REGISTRY_SOURCE`` the default
    source (``household_registry``). The variables are read from the host's ``environ`` (``environ`` given
    here wins, for tests). At start (``delivery_configure``) a partial or unusable configuration (a
    malformed URL, say) raises one :class:`~delivery_sdk.PluginError` naming every variable at fault, and
    none set means not configured (no candidates, no error); should it fail later, at a call, it logs a
    warning and contributes nothing.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, str | None, str], RegistryLookup] | None = None

    def __repr__(self) -> str:
        return "EnvRegistryLookup()"

    def configured(self, environ: Mapping[str, str] | None = None) -> RegistryLookup | None:
        """The lookup the variables describe now, or None when none of ``DELIVERY_SDK_REGISTRY_*`` is set;
        :class:`~delivery_sdk.PluginError` naming every variable at fault otherwise."""
        s = PluginSettings(
            "registry", self._environ if self._environ is not None else environ, "DELIVERY_SDK_REGISTRY_"
        )
        if not s.configured:
            return None
        url = s.require(ENV_URL, "the registry's base URL")
        token = s.secret(ENV_TOKEN)
        s.check()
        key = (url, token.strip() if token else None, s.get(ENV_SOURCE) or DEFAULT_SOURCE)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            try:
                lookup = RegistryLookup(key[0], api_key=key[1], source=key[2])
            except ValueError as exc:
                s.guard(f"the registry's configuration ({ENV_URL} and friends) is not usable", exc)
                s.check()
                raise
            self._cached = (key, lookup)
            return lookup

    @hookimpl
    def delivery_configure(self, environ: Mapping[str, str]) -> None:
        """Check the settings at start: a partial or unusable configuration stops the client from starting."""
        if self.configured(environ) is None:
            log.debug("registry plugin installed but not configured (no DELIVERY_SDK_REGISTRY_* variable)")

    @hookimpl
    def delivery_address_candidates(
        self, party: Party, known: Sequence[Contact], environ: Mapping[str, str]
    ) -> list[AddressCandidate] | None:
        """Address candidates for ``party`` from the registry (none when it is not configured or the lookup fails)."""
        lookup = configured_or_none(lambda: self.configured(environ), "registry plugin", log)
        if lookup is None:
            return None
        return lookup.delivery_address_candidates(party, known)


plugin = EnvRegistryLookup()
"""The object the ``registry`` entry point registers with every plugin host."""
