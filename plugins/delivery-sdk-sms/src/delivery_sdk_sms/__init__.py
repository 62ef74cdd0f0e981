"""An SMS gateway channel for delivery-sdk: the common shape of Chinese SMS APIs (Aliyun, Tencent Cloud...).

A message is a *template* approved by the carriers (``template_code``) filled with *template parameters*,
under an approved *sign name* (签名, shown as 【...】). The message carries only a link to the court's
document page, never the document and no personal data: the parameters are the court, the case number and
the link (override ``params`` to change that). The link is ``link_template`` with ``{token}`` replaced by
:func:`link_token`, an opaque HMAC of the dispatch id: the page server recomputes it to find the dispatch.

The wire protocol (JSON over HTTP; see ``docs/plugins/sms.md``)::

    POST {base_url}/v1/sms/send            Idempotency-Key: <dispatch id>
         {"phone_numbers": "138...", "sign_name": "...", "template_code": "SMS_1",
          "template_param": {"court": ..., "case_no": ..., "url": ...}, "out_id": "<dispatch id>"}
         200 {"code": "OK", "biz_id": "...", "request_id": "..."}      accepted (the same biz_id again for
                                                                        an out_id the gateway already has)
         200 {"code": "isv.MOBILE_NUMBER_ILLEGAL", ...}                 refused for good
         200 {"code": "isv.BUSINESS_LIMIT_CONTROL"}, 429, 5xx           try again later (Retry-After)
    GET  {base_url}/v1/sms/messages?out_id=<dispatch id>
         200 {"code": "OK", "messages": [{"biz_id", "out_id", "status": "SENDING|DELIVERED|FAILED",
                                           "err_code", "report_id", "report_time"}]}   (empty: never received)
    delivery reports, pushed to us: a JSON array of such message objects

Every request is signed (:func:`canonical_request`): ``X-Sms-Signature`` is the hex HMAC-SHA256, under the
access key secret, of the method, path, sorted query, access key id, ``X-Sms-Timestamp`` (Unix seconds),
``X-Sms-Nonce`` and the SHA-256 of the body, joined by newlines. Delivery reports are signed by the gateway
with the callback secret over timestamp, nonce and body (:func:`callback_signature`).

The entry point (``sms = "delivery_sdk_sms:plugin"``) is :data:`plugin`, an :class:`EnvSmsPlugin`: it
registers an :class:`SmsChannel` configured from ``DELIVERY_SDK_SMS_*`` variables, and nothing while none of
them is set (a partial configuration raises :class:`~delivery_sdk.PluginError` naming every missing variable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    ContactKind,
    Dispatch,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    TransientChannelError,
)
from delivery_sdk.clock import Clock
from delivery_sdk.plugin_kit import (
    EnvChannelPlugin,
    PluginSettings,
    RateLimiter,
    check_settings,
    check_timestamp,
    hmac_sha256_hex,
    link_token,
    lower_headers,
    make_client,
    parse_retry_after,
    read_rate_and_timeout,
    read_values,
    request_json,
    verify_hmac_sha256,
)

__all__ = [
    "ENV",
    "PERMANENT_CODES",
    "QUERY_PATH",
    "SEND_PATH",
    "TRANSIENT_CODES",
    "EnvSmsPlugin",
    "SmsChannel",
    "callback_signature",
    "canonical_request",
    "link_token",
    "plugin",
    "sign_request",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_sms")

SEND_PATH = "/v1/sms/send"
QUERY_PATH = "/v1/sms/messages"
H_KEY_ID = "X-Sms-Access-Key-Id"
H_TIMESTAMP = "X-Sms-Timestamp"
H_NONCE = "X-Sms-Nonce"
H_SIGNATURE = "X-Sms-Signature"

# Gateway codes worth another try (flow control, a system error); with "OK" and
# these, every other code is a refusal for good (a wrong number, a blacklisted one, a template problem).
TRANSIENT_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isp.SERVICE_UNAVAILABLE", "Throttling"})
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.OUT_OF_SERVICE",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.AMOUNT_NOT_ENOUGH",
    }
)
_BUSY_RETRY_AFTER = 1.0  # flow control without a Retry-After: wait at least this long
_MAX_CALLBACK = 1 << 20

ENV = {
    "url": "DELIVERY_SDK_SMS_URL",
    "access_key_id": "DELIVERY_SDK_SMS_ACCESS_KEY_ID",
    "access_key_secret": "DELIVERY_SDK_SMS_ACCESS_KEY_SECRET",
    "sign_name": "DELIVERY_SDK_SMS_SIGN_NAME",
    "template_code": "DELIVERY_SDK_SMS_TEMPLATE_CODE",
    "link_template": "DELIVERY_SDK_SMS_LINK_TEMPLATE",
    "callback_secret": "DELIVERY_SDK_SMS_CALLBACK_SECRET",
    "link_key": "DELIVERY_SDK_SMS_LINK_KEY",
    "code_template_code": "DELIVERY_SDK_SMS_CODE_TEMPLATE_CODE",
    "rate": "DELIVERY_SDK_SMS_RATE",
    "timeout": "DELIVERY_SDK_SMS_TIMEOUT",
    "name": "DELIVERY_SDK_SMS_NAME",
}
_REQUIRED = ("access_key_id", "access_key_secret", "sign_name", "template_code", "link_template", "callback_secret")

ParamsFactory = Callable[[Dispatch, str], Mapping[str, str]]


# -- signing -----------------------------------------------------------------------------------------


def canonical_request(
    method: str, path: str, query: Mapping[str, str], access_key_id: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """The string a request signature covers: one field per line (query sorted and percent-encoded)."""
    sorted_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()))
    return "\n".join(
        [method.upper(), path, sorted_query, access_key_id, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    )


def sign_request(
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    access_key_id: str,
    timestamp: str,
    nonce: str,
    body: bytes,
) -> str:
    """Hex HMAC-SHA256 of :func:`canonical_request` under the access key secret."""
    return hmac_sha256_hex(secret, canonical_request(method, path, query, access_key_id, timestamp, nonce, body))


def callback_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``timestamp``, ``nonce`` and the body (newline-joined) under the callback secret."""
    return hmac_sha256_hex(secret, timestamp, nonce, body)


def _safe_code(value: object) -> str:
    """A gateway code fit for a reason string: short, printable ASCII, nothing else echoed."""
    text = str(value) if value is not None else "no code"
    text = "".join(c for c in text if c.isascii() and (c.isalnum() or c in "._:-"))[:64]
    return text or "unreadable code"


def _default_params(dispatch: Dispatch, link: str) -> dict[str, str]:
    return {"court": dispatch.case.court, "case_no": dispatch.case.case_number, "url": link}


# -- the adapter -------------------------------------------------------------------------------------


class SmsChannel(BaseChannel):
    """The SMS gateway adapter (see the module docstring for the protocol).

    - ``base_url``: the gateway, ``http(s)://host[:port][/prefix]``;
    - ``access_key_id`` / ``access_key_secret``: sign every request; ``callback_secret`` checks the
      delivery reports pushed back;
    - ``sign_name``, ``template_code``: the approved signature and template; ``params(dispatch, link)``
      gives the template parameters (default: court, case number, link: no name, no number);
    - ``link_template``: the document page URL with ``{token}``; ``link_key`` keys the token (default:
      derived from the access key secret);
    - ``rate`` / ``burst``: the gateway's rate limit for this channel (calls per second; None: none);
    - ``transport`` or ``http``: an injectable ``httpx`` transport, or a whole ``AsyncClient``;
    - ``timeout``: seconds per request; ``max_connections``: requests in flight.
    """

    kind = ChannelKind.SMS

    def __init__(
        self,
        base_url: str,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        link_template: str,
        callback_secret: str,
        link_key: bytes | str | None = None,
        params: ParamsFactory | None = None,
        name: str = "sms",
        rate: float | None = None,
        burst: int = 1,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_connections: int = 64,
        callback_window: float = 300.0,
        code_template_code: str | None = None,
    ) -> None:
        base_url = check_settings(
            base_url,
            required=(
                ("access_key_id", access_key_id),
                ("access_key_secret", access_key_secret),
                ("sign_name", sign_name),
                ("template_code", template_code),
            ),
            secrets=(("callback_secret", callback_secret),),  # ValidationError (a ValueError) when empty
            link_template=link_template,
        )
        if timeout <= 0 or max_connections < 1 or callback_window <= 0:
            raise ValueError("timeout and callback_window must be positive, max_connections at least 1")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self._callback_secret = callback_secret
        self.sign_name = sign_name
        self.template_code = template_code
        self.link_template = link_template
        self._link_key: bytes | str = (
            link_key if link_key is not None else hmac_sha256_hex(access_key_secret, "delivery-sdk link token key")
        )
        self._params = params or _default_params
        self.code_template_code = code_template_code
        self.callback_window = callback_window
        self.limiter = RateLimiter(rate, burst=burst)
        self._owns_http = http is None
        self._http = http or make_client(
            self.base_url, transport=transport, timeout=timeout, max_connections=max_connections
        )

    def __repr__(self) -> str:
        return f"SmsChannel({self.base_url!r}, name={self.name!r}, access_key_id={self.access_key_id!r})"

    # -- what goes out ---------------------------------------------------------------------------------

    def link_for(self, dispatch_id: str) -> str:
        """The document page link a dispatch's message carries."""
        return self.link_template.replace("{token}", link_token(self._link_key, dispatch_id))

    def message_body(self, dispatch: Dispatch) -> dict[str, Any]:
        """The send request's JSON body (what the gateway receives; the mobile number is its addressee)."""
        params = {str(k): str(v) for k, v in self._params(dispatch, self.link_for(dispatch.dispatch_id)).items()}
        return {
            "phone_numbers": dispatch.contact.value,
            "sign_name": self.sign_name,
            "template_code": self.template_code,
            "template_param": params,
            "out_id": dispatch.dispatch_id,
        }

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        query = dict(query or {})
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
        headers = {
            H_KEY_ID: self.access_key_id,
            H_TIMESTAMP: timestamp,
            H_NONCE: nonce,
            H_SIGNATURE: sign_request(self._secret, method, path, query, self.access_key_id, timestamp, nonce, body),
            "Accept": "application/json",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response, data = await request_json(
            self._http, method, path, what=what, limiter=self.limiter, params=query, content=body, headers=headers
        )
        if not isinstance(data, dict):
            # The gateway answered but we cannot read it: it may hold the message. In doubt, so transient:
            # the engine asks status() before it would send again.
            raise TransientChannelError(f"{what}: the gateway's answer is not a JSON object")
        code = data.get("code")
        if code in TRANSIENT_CODES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise TransientChannelError(
                f"{what}: gateway busy ({_safe_code(code)})",
                retry_after=retry_after if retry_after is not None else _BUSY_RETRY_AFTER,
            )
        return data

    async def send_code(self, mobile: str, code: str, *, reference: str) -> None:
        """Text a one-time code (the document page's identity check, :mod:`delivery_sdk.portal`).

        The message is the carriers' approved code template ``code_template_code`` with the one parameter
        ``code``; ``reference`` (no personal data) is its ``out_id`` and idempotency key. Raises
        :class:`~delivery_sdk.ChannelError` when no code template is configured or the gateway refuses.
        """
        if not self.code_template_code:
            raise ChannelError(f"{self.name}: no code template configured (code_template_code)")
        payload = {
            "phone_numbers": mobile,
            "sign_name": self.sign_name,
            "template_code": self.code_template_code,
            "template_param": {"code": code},
            "out_id": reference,
        }
        data = await self._call(
            "POST", SEND_PATH, what=f"{self.name}.send_code", payload=payload, idempotency_key=reference
        )
        if data.get("code") != "OK":
            raise ChannelError(f"{self.name}.send_code: refused by the gateway ({_safe_code(data.get('code'))})")

    # -- the adapter contract --------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Post one dispatch to the gateway with its id as ``Idempotency-Key`` (a repeat is the same message);
        transient failures raise ``TransientChannelError``, a contact that is not a mobile number
        ``ChannelError``; a refusal is ``accepted=False``."""
        if dispatch.contact.kind is not ContactKind.MOBILE:
            raise ChannelError(f"{self.name}: dispatch {dispatch.dispatch_id} has no mobile number to text")
        data = await self._call(
            "POST",
            SEND_PATH,
            what=f"{self.name}.send",
            payload=self.message_body(dispatch),
            idempotency_key=dispatch.dispatch_id,
        )
        code = data.get("code")
        if code == "OK":
            biz_id = data.get("biz_id")
            if not isinstance(biz_id, str) or not biz_id:
                raise TransientChannelError(f"{self.name}.send: accepted without a biz_id")
            return SendResult(accepted=True, provider_ref=biz_id)
        log.info("%s: dispatch %s refused (%s)", self.name, dispatch.dispatch_id, _safe_code(code))
        return SendResult(accepted=False, reason=f"{self.name}: refused by the gateway ({_safe_code(code)})")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """What the provider knows of a dispatch (``found=False``: it never got it, so sending again is safe)."""
        data = await self._call("GET", QUERY_PATH, what=f"{self.name}.status", query={"out_id": dispatch.dispatch_id})
        if data.get("code") != "OK":
            raise ChannelError(f"{self.name}.status: the gateway refused the query ({_safe_code(data.get('code'))})")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise TransientChannelError(f"{self.name}.status: the answer has no 'messages' list")
        mine = [m for m in messages if isinstance(m, dict) and m.get("out_id") == dispatch.dispatch_id]
        if not mine:
            return StatusReport(found=False)
        try:
            receipts = [r for m in mine if (r := self._receipt(m)) is not None]
        except MalformedReceipt as exc:
            raise TransientChannelError(f"{self.name}.status: unreadable report ({exc})") from exc
        biz_id = mine[0].get("biz_id")
        return StatusReport(
            found=True, provider_ref=biz_id if isinstance(biz_id, str) else None, receipts=tuple(receipts)
        )

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """Check a delivery report's signature, then its timestamp; return its nonce (the replay key).

        The body is not read here: nothing of a callback is interpreted before its signature holds.
        """
        h = lower_headers(headers)
        timestamp, nonce = h.get(H_TIMESTAMP.lower(), ""), h.get(H_NONCE.lower(), "")
        if not nonce or len(nonce) > 128:
            raise CallbackRejected("forged", "missing nonce")
        verify_hmac_sha256(self._callback_secret, h.get(H_SIGNATURE.lower()), timestamp, nonce, body)
        check_timestamp(timestamp, now, timedelta(seconds=self.callback_window))
        return f"{self.name}:{nonce}"

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """The receipts in a delivery-report push (its signature is checked too; the window is not)."""
        h = lower_headers(headers)
        try:
            verify_hmac_sha256(
                self._callback_secret,
                h.get(H_SIGNATURE.lower()),
                h.get(H_TIMESTAMP.lower(), ""),
                h.get(H_NONCE.lower(), ""),
                body,
            )
        except CallbackRejected as exc:
            raise MalformedReceipt(f"{self.name} callback: {exc.detail}") from None
        if len(body) > _MAX_CALLBACK:
            raise MalformedReceipt(f"{self.name} callback: larger than {_MAX_CALLBACK} bytes")
        try:
            reports = json.loads(body)
        except ValueError:
            raise MalformedReceipt(f"{self.name} callback: the body is not JSON") from None
        if isinstance(reports, dict):
            reports = [reports]
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise MalformedReceipt(f"{self.name} callback: expected a JSON array of report objects")
        return [r for report in reports if (r := self._receipt(report)) is not None]

    def _receipt(self, report: Mapping[str, Any]) -> Receipt | None:
        status = report.get("status")
        if status == "SENDING":
            return None
        kind = {"DELIVERED": ReceiptKind.DELIVERED, "FAILED": ReceiptKind.FAILED}.get(str(status))
        out_id, report_id, at = report.get("out_id"), report.get("report_id"), report.get("report_time")
        if kind is None or not isinstance(out_id, str) or not isinstance(report_id, str) or not isinstance(at, str):
            raise MalformedReceipt(f"{self.name} report: needs status DELIVERED/FAILED, out_id, report_id, report_time")
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise MalformedReceipt(f"{self.name} report: report_time is not ISO 8601") from None
        if when.tzinfo is None:
            raise MalformedReceipt(f"{self.name} report: report_time has no UTC offset")
        reason = None
        if kind is ReceiptKind.FAILED:
            reason = f"{self.name}: not delivered ({_safe_code(report.get('err_code'))})"
        return Receipt(dispatch_id=out_id, kind=kind, at=when, provider_event_id=report_id, reason=reason)

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (when it made its own)."""
        if self._owns_http:
            await self._http.aclose()


# -- the entry point ---------------------------------------------------------------------------------


class EnvSmsPlugin(EnvChannelPlugin[SmsChannel]):
    """The entry-point plugin: an :class:`SmsChannel` from ``DELIVERY_SDK_SMS_*``, or nothing.

    None of the variables set: registers nothing (installed, not configured). Any set: ``DELIVERY_SDK_SMS_URL``
    and every variable of ``_REQUIRED`` must be too, and the numbers must be numbers, or loading the client's
    plugins raises one :class:`~delivery_sdk.PluginError` naming every missing or invalid variable (a half
    configured gateway fails loudly rather than silently serving nobody). The variables are read from the
    host's ``environ``; ``environ`` given here wins (for tests).
    """

    title = "SMS"
    prefix = "DELIVERY_SDK_SMS_"
    main_variable = ENV["url"]

    def read(self, settings: PluginSettings, clock: Clock | None) -> Callable[[], SmsChannel]:
        """Read ``DELIVERY_SDK_SMS_*``; what builds the :class:`SmsChannel` they describe."""
        url = settings.require(ENV["url"], "the gateway's base URL")
        values = read_values(settings, ENV, _REQUIRED, secrets=("access_key_secret", "callback_secret"))
        rate, timeout = read_rate_and_timeout(settings, ENV)
        return lambda: SmsChannel(
            url,
            access_key_id=values["access_key_id"],
            access_key_secret=values["access_key_secret"],
            sign_name=values["sign_name"],
            template_code=values["template_code"],
            link_template=values["link_template"],
            callback_secret=values["callback_secret"],
            link_key=values["link_key"] or None,
            code_template_code=values["code_template_code"] or None,
            name=values["name"] or "sms",
            rate=rate,
            timeout=timeout,
        )


plugin = EnvSmsPlugin()
"""The object the ``sms`` entry point registers with every plugin host."""
