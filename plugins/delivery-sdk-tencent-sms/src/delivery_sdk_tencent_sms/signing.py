"""Tencent Cloud API 3.0 request signing, ``TC3-HMAC-SHA256``, as the "Signature v3" document (签名方法 v3)
describes it (the same page is published under every product, e.g.
https://www.tencentcloud.com/document/product/267/37447 or https://tencentcloud.com/document/api/614/42761).

::

    CanonicalRequest = METHOD \\n "/" \\n CanonicalQueryString \\n CanonicalHeaders \\n SignedHeaders \\n
                       hex(SHA256(payload))
    StringToSign     = "TC3-HMAC-SHA256" \\n X-TC-Timestamp \\n <date>/<service>/tc3_request \\n
                       hex(SHA256(CanonicalRequest))
    SecretSigning    = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
    Signature        = hex(HMAC-SHA256(SecretSigning, StringToSign))
    Authorization:     TC3-HMAC-SHA256 Credential=<SecretId>/<date>/<service>/tc3_request,
                       SignedHeaders=content-type;host, Signature=<Signature>

``<date>`` is the UTC date (``YYYY-MM-DD``) of the timestamp; header names *and values* are lower-cased and
trimmed; the query is empty for ``POST``. Pure functions shared by the adapter and the emulator, pinned to
the document's worked example by ``tests/test_signing.py``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from delivery_sdk.plugin_kit.cloudsms import authorization_fields

__all__ = [
    "ALGORITHM",
    "authorization",
    "canonical_headers",
    "canonical_request",
    "credential_scope",
    "parse_authorization",
    "sha256_hex",
    "sign",
    "signing_key",
    "string_to_sign",
    "utc_date",
]

ALGORITHM = "TC3-HMAC-SHA256"


def sha256_hex(data: bytes) -> str:
    """The SHA-256 hex digest of ``data`` (lower case)."""
    return hashlib.sha256(data).hexdigest()


def utc_date(timestamp: int) -> str:
    """The UTC date of a Unix timestamp, ``YYYY-MM-DD`` (the credential scope's date)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def credential_scope(timestamp: int, service: str) -> str:
    """The credential scope ``DATE/SERVICE/tc3_request`` of a request signed at ``timestamp``."""
    return f"{utc_date(timestamp)}/{service}/tc3_request"


def canonical_headers(headers: Mapping[str, str], signed: tuple[str, ...]) -> tuple[str, str]:
    """``(CanonicalHeaders, SignedHeaders)`` for the header names ``signed`` (names and values lower-cased
    and trimmed, sorted by name)."""
    low = {k.lower(): v for k, v in headers.items()}
    names = sorted(name.lower() for name in signed)
    return "".join(f"{n}:{low.get(n, '').strip().lower()}\n" for n in names), ";".join(names)


def canonical_request(
    method: str, query: str, headers: Mapping[str, str], signed: tuple[str, ...], payload: bytes
) -> str:
    """The canonical request TC3-HMAC-SHA256 signs (method, path, query, headers, payload digest)."""
    canonical, names = canonical_headers(headers, signed)
    return "\n".join([method.upper(), "/", query, canonical, names, sha256_hex(payload)])


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    """The string TC3-HMAC-SHA256 signs: algorithm, timestamp, credential scope and the canonical request's digest."""
    return "\n".join(
        [ALGORITHM, str(timestamp), credential_scope(timestamp, service), sha256_hex(canonical.encode("utf-8"))]
    )


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    """The derived key: HMAC-SHA256 chained over the date, the service and ``tc3_request``."""
    key = ("TC3" + secret_key).encode("utf-8")
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign(secret_key: str, timestamp: int, service: str, canonical: str) -> str:
    """The hex signature of a canonical request (the ``Signature=`` of the Authorization header)."""
    key = signing_key(secret_key, utc_date(timestamp), service)
    return hmac.new(key, string_to_sign(timestamp, service, canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    payload: bytes,
    *,
    signed: tuple[str, ...] = ("content-type", "host"),
    method: str = "POST",
    query: str = "",
) -> str:
    """The ``Authorization`` header value of a request with these headers and payload."""
    canonical = canonical_request(method, query, headers, signed, payload)
    _, names = canonical_headers(headers, signed)
    signature = sign(secret_key, timestamp, service, canonical)
    scope = credential_scope(timestamp, service)
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={names}, Signature={signature}"


def parse_authorization(value: str) -> dict[str, str] | None:
    """``{"SecretId", "Date", "Service", "SignedHeaders", "Signature"}`` of an ``Authorization`` header, or
    None if it is not a well-formed ``TC3-HMAC-SHA256`` one."""
    fields = authorization_fields(value, ALGORITHM)
    if fields is None:
        return None
    scope = fields["Credential"].split("/")
    if len(scope) != 4 or scope[3] != "tc3_request":
        return None
    return {
        "SecretId": scope[0],
        "Date": scope[1],
        "Service": scope[2],
        "SignedHeaders": fields["SignedHeaders"],
        "Signature": fields["Signature"],
    }
