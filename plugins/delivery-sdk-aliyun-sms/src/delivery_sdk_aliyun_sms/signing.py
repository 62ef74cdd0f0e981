"""Alibaba Cloud's request signature V3 (``ACS3-HMAC-SHA256``), as the "Request syntax and signature method
V3" document describes it (https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature,
English: https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature).

::

    CanonicalRequest = METHOD \\n CanonicalURI \\n CanonicalQueryString \\n CanonicalHeaders \\n SignedHeaders \\n
                       hex(SHA256(body))
    StringToSign     = "ACS3-HMAC-SHA256" \\n hex(SHA256(CanonicalRequest))
    Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
    Authorization:     ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2...>,Signature=<Signature>

Names and values are percent-encoded by RFC 3986 (``A-Z a-z 0-9 - _ . ~`` kept, a space is ``%20``, ``*`` is
``%2A``); the query is sorted by name; the signed headers are ``host``, ``content-type`` and every ``x-acs-*``
header, lower-cased, trimmed and sorted. Pure functions: the adapter signs with them and the emulator checks
with them, so the two cannot drift apart, and ``tests/test_signing.py`` pins them to the document's worked
example.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

from delivery_sdk.plugin_kit.cloudsms import authorization_fields

__all__ = [
    "ALGORITHM",
    "authorization",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "encode",
    "form_body",
    "parse_authorization",
    "sha256_hex",
    "sign",
    "string_to_sign",
]

ALGORITHM = "ACS3-HMAC-SHA256"


def encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 text: unreserved characters kept, everything else ``%XX``."""
    return quote(value, safe="-_.~")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 hex digest of ``data`` (lower case)."""
    return hashlib.sha256(data).hexdigest()


def canonical_query(query: Mapping[str, str]) -> str:
    """The query parameters sorted by name, each ``encode(name)=encode(value)``, joined by ``&``."""
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(query.items()))


def form_body(params: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` body of the parameters, encoded as the signature encodes them."""
    return canonical_query(params).encode("ascii")


def _signed(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in ("host", "content-type") or low.startswith("x-acs-"):
            out[low] = value.strip()
    return out


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """``(CanonicalHeaders, SignedHeaders)`` of the headers that take part (``host``, ``content-type``,
    ``x-acs-*``; never ``Authorization``)."""
    signed = _signed(headers)
    names = sorted(signed)
    return "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names)


def canonical_request(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> str:
    """The canonical request (``path`` is ``/`` for RPC-style APIs such as dysmsapi)."""
    canonical, signed = canonical_headers(headers)
    uri = "/".join(encode(part) for part in path.split("/")) or "/"
    return "\n".join([method.upper(), uri, canonical_query(query), canonical, signed, sha256_hex(body)])


def string_to_sign(canonical: str) -> str:
    """The string Alibaba Cloud's ACS3-HMAC-SHA256 signs: the algorithm and the canonical request's digest."""
    return f"{ALGORITHM}\n{sha256_hex(canonical.encode('utf-8'))}"


def sign(secret: str, canonical: str) -> str:
    """The hex HMAC-SHA256 of the string to sign under the AccessKey secret."""
    return hmac.new(secret.encode("utf-8"), string_to_sign(canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    access_key_id: str,
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The ``Authorization`` header value for a request whose other headers (``host``, ``x-acs-*``, and
    ``x-acs-content-sha256`` = ``sha256_hex(body)``) are already set."""
    canonical = canonical_request(method, path, query, headers, body)
    _, signed = canonical_headers(headers)
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={sign(secret, canonical)}"


def parse_authorization(value: str) -> dict[str, str] | None:
    """``{"Credential", "SignedHeaders", "Signature"}`` of an ``Authorization`` header, or None if it is not
    an ``ACS3-HMAC-SHA256`` one."""
    return authorization_fields(value, ALGORITHM)
