"""The court e-service platform adapter (人民法院送达平台 shape): JSON over HTTPS, signed both ways."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Dispatch,
    Document,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TransientChannelError,
)
from delivery_sdk.model import mask
from delivery_sdk.plugin_kit import (
    DocumentSource,
    RateLimiter,
    check_base_url,
    check_response,
    check_timestamp,
    fetch_document,
    hmac_sha256_hex,
    lower_headers,
    make_client,
    require_secret,
    translate_errors,
    verify_hmac_sha256,
)

__all__ = [
    "EVENT_KINDS",
    "SERVICES_PATH",
    "DocumentSource",
    "EServiceChannel",
    "sign_callback",
    "sign_request",
]

log = logging.getLogger("delivery_sdk_eservice")

SERVICES_PATH = "/api/v1/services"
EVENT_KINDS = {"arrived": ReceiptKind.DELIVERED, "read": ReceiptKind.READ, "failed": ReceiptKind.FAILED}
"""The platform's event names and the receipts they mean."""

_CODE = re.compile(r"[A-Z0-9_]{1,64}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def sign_request(secret: bytes | str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """``X-Signature`` of a request to the platform: hex HMAC-SHA256 over
    ``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))`` (``PATH`` with its query string, if any)."""
    return hmac_sha256_hex(secret, method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest())


def sign_callback(secret: bytes | str, timestamp: str, nonce: str, body: bytes) -> str:
    """``X-Signature`` of a callback from the platform: hex HMAC-SHA256 over ``TIMESTAMP\\nNONCE\\nBODY``."""
    return hmac_sha256_hex(secret, timestamp, nonce, body)


def _code(payload: Any, default: str) -> str:
    """The platform's error code, if it is a plain code (never echo free text: it may hold personal data)."""
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and _CODE.fullmatch(code) else default


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ChannelError(f"{what}: the platform's answer is not JSON (HTTP {response.status_code})") from None


class EServiceChannel(BaseChannel):
    """Serve documents to the recipient's account on the court e-service platform.

    - ``base_url``: the platform's API root; ``app_key``/``app_secret``: the court's application
      credentials (every request is signed, every callback verified, with ``app_secret``);
    - ``documents``: a :data:`DocumentSource` to push the documents' content (base64, digests checked);
      without it only the documents' metadata and SHA-256 digests go, and the platform fetches them;
    - ``callback_url``: where the platform pushes "arrived"/"read" events (sent with each push);
    - ``transport``: an ``httpx.AsyncBaseTransport`` (tests); ``timeout``: seconds per request;
    - ``rate``/``burst``: at most ``rate`` requests per second (``None``: no limit);
    - ``callback_window``: how far a callback's timestamp may be from now.
    """

    kind = ChannelKind.ESERVICE

    def __init__(
        self,
        base_url: str,
        *,
        app_key: str,
        app_secret: str,
        name: str = "eservice",
        documents: DocumentSource | None = None,
        callback_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        rate: float | None = None,
        burst: int = 1,
        callback_window: timedelta = timedelta(minutes=5),
        max_document_bytes: int = 50_000_000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        base_url = check_base_url(base_url)
        if not app_key or not app_secret:
            raise ValueError("app_key and app_secret are required (the platform signs both ways)")
        require_secret(app_secret, "app_secret")  # ValidationError (a ValueError) when blank
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self.callback_url = callback_url
        self.callback_window = callback_window
        self.max_document_bytes = max_document_bytes
        self._secret = app_secret
        self._documents = documents
        self._wall_clock = wall_clock
        self._limiter = RateLimiter(rate, burst=burst)
        self._http = make_client(self.base_url, transport=transport, timeout=timeout)
        # pushes whose answer was lost (timeout, 5xx): asked about before they are pushed again
        self._in_doubt: set[str] = set()

    def __repr__(self) -> str:
        return f"EServiceChannel({self.base_url!r}, name={self.name!r}, app_key={self.app_key!r})"

    # -- requests -------------------------------------------------------------------------------------

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._wall_clock()))
        nonce = uuid.uuid4().hex
        return {
            "X-App-Key": self.app_key,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": sign_request(self._secret, method, path, timestamp, nonce, body),
            "Accept": "application/json",
        }

    async def _request(
        self, method: str, path: str, body: bytes = b"", extra: Mapping[str, str] | None = None
    ) -> httpx.Response:
        headers = self._headers(method, path, body)
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        await self._limiter.acquire()
        async with translate_errors(f"{self.name}: {method} {path.split('?')[0]}"):
            return await self._http.request(method, self.base_url + path, content=body, headers=headers)

    # -- the adapter contract ------------------------------------------------------------------------

    async def payload(self, dispatch: Dispatch) -> dict[str, Any]:
        """The push body: the account, the case and each document with its SHA-256 digest (and content)."""
        documents = []
        total = 0
        for document in dispatch.documents:
            item: dict[str, Any] = {
                "document_id": document.document_id,
                "title": document.title,
                "kind": document.kind.value,
                "sha256": document.sha256,
            }
            if self._documents is not None:
                content = await self._load(document)
                total += len(content)
                if total > self.max_document_bytes:
                    raise ChannelError(f"{self.name}: the documents exceed {self.max_document_bytes} bytes")
                item["size"] = len(content)
                item["content"] = base64.b64encode(content).decode("ascii")
            documents.append(item)
        body: dict[str, Any] = {
            "service_id": dispatch.dispatch_id,
            "account": dispatch.contact.value,
            "court": dispatch.case.court,
            "case_number": dispatch.case.case_number,
            "case_type": dispatch.case.case_type.value,
            "documents": documents,
        }
        if self.callback_url is not None:
            body["callback_url"] = self.callback_url
        return body

    async def _load(self, document: Document) -> bytes:
        assert self._documents is not None
        return await fetch_document(self._documents, document, what=self.name)

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Push the documents; the dispatch id is the service id and the idempotency key."""
        dispatch_id = dispatch.dispatch_id
        if dispatch_id in self._in_doubt:
            report = await self.status(dispatch)
            if report.found:
                self._in_doubt.discard(dispatch_id)
                return SendResult(accepted=True, provider_ref=report.provider_ref, receipts=report.receipts)
        body = json.dumps(await self.payload(dispatch), ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = await self._request("POST", SERVICES_PATH, body, {"Idempotency-Key": dispatch_id})
        except TransientChannelError as exc:
            if not isinstance(exc.__cause__, httpx.ConnectError):  # a refused connection never carried it
                self._in_doubt.add(dispatch_id)
            raise
        what = f"{self.name}: push"
        status = response.status_code
        if status in (400, 404, 410, 422):
            code = _code(_json(response, what), f"HTTP_{status}")
            log.info(
                "%s: %s refused by the platform (%s) for %s", self.name, dispatch_id, code, mask(dispatch.contact.value)
            )
            return SendResult(accepted=False, reason=f"{self.name}: the platform refused the service ({code})")
        if status in (401, 403):
            # our credentials or clock, not this recipient: retried, and a person is asked if it persists
            raise TransientChannelError(f"{what}: the platform refused our credentials (HTTP {status})")
        if status >= 500 or status in (408, 425, 429):
            self._in_doubt.add(dispatch_id)
        check_response(response, what=what)
        data = _json(response, what)
        self._in_doubt.discard(dispatch_id)
        return SendResult(
            accepted=True, provider_ref=self._ref(data, what), receipts=self._events(data, dispatch_id, what)
        )

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """The platform's record of the service, by dispatch id (``found=False`` if it never got it)."""
        what = f"{self.name}: status"
        path = f"{SERVICES_PATH}/{urllib.parse.quote(dispatch.dispatch_id, safe='')}"
        response = await self._request("GET", path)
        if response.status_code == 404:
            return StatusReport(found=False)
        if response.status_code in (401, 403):
            raise TransientChannelError(f"{what}: the platform refused our credentials (HTTP {response.status_code})")
        check_response(response, what=what)
        data = _json(response, what)
        return StatusReport(
            found=True,
            provider_ref=self._ref(data, what),
            receipts=self._events(data, dispatch.dispatch_id, what),
        )

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """Check a callback's app key, signature, then timestamp; return the platform's event id (replay key).

        Nothing of the callback is interpreted before its signature holds: not the timestamp, not the body
        (whose event id is the replay key; a signed body without one is ``MalformedReceipt``).
        """
        h = lower_headers(headers)
        if h.get("x-app-key") != self.app_key:
            raise CallbackRejected("forged", "unknown app key")
        timestamp = h.get("x-timestamp")
        verify_hmac_sha256(self._secret, h.get("x-signature"), timestamp or "", h.get("x-nonce", ""), body)
        check_timestamp(timestamp, now, self.callback_window)
        event = self._event_body(body)
        return str(event["event_id"])

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """An "arrived", "read" or "failed" event pushed by the platform (signature checked)."""
        h = lower_headers(headers)
        try:
            verify_hmac_sha256(self._secret, h.get("x-signature"), h.get("x-timestamp", ""), h.get("x-nonce", ""), body)
        except CallbackRejected:
            raise MalformedReceipt(f"{self.name} callback: the signature does not match") from None
        event = self._event_body(body)
        receipt = self._receipt(event, str(event["service_id"]), f"{self.name} callback")
        return [receipt] if receipt is not None else []

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reading the platform's answers --------------------------------------------------------------

    def _event_body(self, body: bytes) -> dict[str, Any]:
        try:
            event = json.loads(body)
        except ValueError:
            raise MalformedReceipt(f"{self.name} callback: the body is not JSON") from None
        if not isinstance(event, dict):
            raise MalformedReceipt(f"{self.name} callback: the body is not a JSON object")
        event_id, service_id = event.get("event_id"), event.get("service_id")
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise MalformedReceipt(f"{self.name} callback: no readable event_id")
        if not isinstance(service_id, str) or not service_id:
            raise MalformedReceipt(f"{self.name} callback: no service_id")
        return event

    @staticmethod
    def _ref(data: Any, what: str) -> str:
        ref = data.get("receipt_no") if isinstance(data, dict) else None
        if not isinstance(ref, str) or not ref:
            raise ChannelError(f"{what}: the platform's answer has no receipt_no")
        return ref

    def _events(self, data: Any, dispatch_id: str, what: str) -> tuple[Receipt, ...]:
        events = data.get("events", []) if isinstance(data, dict) else []
        if not isinstance(events, list):
            raise ChannelError(f"{what}: 'events' is not a list")
        out = []
        for event in events:
            try:
                receipt = self._receipt(event, dispatch_id, what)
            except MalformedReceipt as exc:
                raise ChannelError(str(exc)) from None
            if receipt is not None:
                out.append(receipt)
        return tuple(out)

    @staticmethod
    def _receipt(event: Any, dispatch_id: str, what: str) -> Receipt | None:
        if not isinstance(event, dict):
            raise MalformedReceipt(f"{what}: an event is not an object")
        kind = EVENT_KINDS.get(str(event.get("type")))
        if kind is None:  # "pushed", "notified"...: nothing the service decision needs
            return None
        try:
            at = datetime.fromisoformat(str(event["at"]))
        except (KeyError, ValueError):
            raise MalformedReceipt(f"{what}: an event has no ISO 8601 'at'") from None
        if at.utcoffset() is None:
            raise MalformedReceipt(f"{what}: an event's 'at' has no UTC offset")
        reason = event.get("reason")
        if kind is ReceiptKind.FAILED:
            code = reason if isinstance(reason, str) and _CODE.fullmatch(reason) else "FAILED"
            reason = f"e-service platform: {code}"
        return Receipt(
            dispatch_id=dispatch_id,
            kind=kind,
            at=at,
            provider_event_id=str(event.get("event_id")) if event.get("event_id") else None,
            reason=reason if isinstance(reason, str) else None,
        )
