"""Alibaba Cloud SMS (短信服务, dysmsapi, API version 2017-05-25) as a delivery-sdk channel.

What goes out: ``SendSms`` (one dispatch, one number) with the approved sign name (``SignName``), the
approved template (``TemplateCode``) and its parameters (``TemplateParam``: the court, the case number and
the document link, never a name), and ``OutId`` = the dispatch id. Every request is an RPC-style
``POST /`` signed with Alibaba Cloud's signature V3 (``ACS3-HMAC-SHA256``, :mod:`.signing`); its
parameters travel form-encoded in the *body*, so the phone number is never in a URL (and never in a log).

What comes back: the ``SmsReport`` push (a JSON array of reports POSTed to the URL configured in the
console) and ``QuerySendDetails`` (by phone number and send date) for reconciliation. The push carries no
signature of any kind (the documentation specifies none), so the plugin authenticates it by a secret
token in the callback URL's query (``?token=...``, compared in constant time before the body is read) and
trusts a report only for a dispatch of its own (the engine's provenance rule); see ``docs/plugins/aliyun-sms.md``.

``SendSms`` is **not idempotent** (the API reference says so): a second call with the same ``OutId`` sends a
second message. A send in doubt (a timeout, a crash) is therefore never repeated blindly: the engine asks
:meth:`AliyunSmsChannel.status`, which looks the ``OutId`` up with ``QuerySendDetails`` (a message the
service took shows there at once, with ``SendStatus`` 1 while it waits for its carrier report).

The entry point (``aliyun-sms = "delivery_sdk_aliyun_sms:plugin"``) registers a channel configured from
``DELIVERY_SDK_ALIYUN_SMS_*`` and nothing while none of them is set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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
    check_base_url,
    check_response,
    link_token,
    make_client,
    parse_retry_after,
    read_rate_and_timeout,
    read_values,
    require_secret,
    signature_matches,
    translate_errors,
)

from . import signing

__all__ = [
    "API_VERSION",
    "AUTH_CODES",
    "BEIJING",
    "DEFAULT_URL",
    "ENV",
    "PERMANENT_CODES",
    "TRANSIENT_CODES",
    "AliyunSmsChannel",
    "EnvAliyunSmsPlugin",
    "link_token",
    "plugin",
    "signing",
    "token_matches",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_aliyun_sms")

API_VERSION = "2017-05-25"
DEFAULT_URL = "https://dysmsapi.aliyuncs.com"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # the service's report times are Beijing time

# Codes worth another try, with how long to wait at least. isv.BUSINESS_LIMIT_CONTROL is the per-number
# flow control (by default 1 a minute, 5 an hour to one number): a minute. Throttling: the API's QPS limit.
TRANSIENT_CODES: Mapping[str, float] = {
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,
    "Throttling": 1.0,
    "Throttling.User": 1.0,
    "Throttling.Api": 1.0,
    "Throttling.AntiFlood": 1.0,
    "isp.SYSTEM_ERROR": 1.0,
    "isp.GATEWAY_ERROR": 1.0,
    "ServiceUnavailable": 1.0,
    "InternalError": 1.0,
    "SignatureNonceUsed": 0.0,  # our nonce collided (or a proxy replayed us): a fresh one will do
}
# Refusals for good: the number, the template, the sign name, the account. Any code not listed here or
# above is treated as one too (the dispatch fails over to the next channel rather than looping).
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.DAY_LIMIT_CONTROL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.EXTEND_CODE_ERROR",
    }
)
# The request itself is not accepted (credentials, signature, clock): the configuration is wrong.
AUTH_CODES = frozenset(
    {
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidTimeStamp.Expired",
        "InvalidTimeStamp.Format",
        "isp.RAM_PERMISSION_DENY",
        "Forbidden.RAM",
    }
)
_MAX_CALLBACK = 1 << 20
_MAX_PAGES = 10
_PAGE_SIZE = 50

ENV = {
    "url": "DELIVERY_SDK_ALIYUN_SMS_URL",
    "access_key_id": "DELIVERY_SDK_ALIYUN_SMS_ACCESS_KEY_ID",
    "access_key_secret": "DELIVERY_SDK_ALIYUN_SMS_ACCESS_KEY_SECRET",
    "sign_name": "DELIVERY_SDK_ALIYUN_SMS_SIGN_NAME",
    "template_code": "DELIVERY_SDK_ALIYUN_SMS_TEMPLATE_CODE",
    "link_template": "DELIVERY_SDK_ALIYUN_SMS_LINK_TEMPLATE",
    "callback_token": "DELIVERY_SDK_ALIYUN_SMS_CALLBACK_TOKEN",
    "link_key": "DELIVERY_SDK_ALIYUN_SMS_LINK_KEY",
    "rate": "DELIVERY_SDK_ALIYUN_SMS_RATE",
    "timeout": "DELIVERY_SDK_ALIYUN_SMS_TIMEOUT",
    "name": "DELIVERY_SDK_ALIYUN_SMS_NAME",
}
_REQUIRED = ("access_key_id", "access_key_secret", "sign_name", "template_code", "link_template", "callback_token")

ParamsFactory = Callable[[Dispatch, str], Mapping[str, str]]


def _safe_code(value: object) -> str:
    """A service code fit for a reason string: short, printable ASCII, nothing else echoed."""
    text = str(value) if value is not None else "no code"
    text = "".join(c for c in text if c.isascii() and (c.isalnum() or c in "._:-"))[:64]
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


def _beijing(text: object, what: str) -> datetime:
    """``"2017-01-01 00:00:00"`` (the service's Beijing-time format) as an aware datetime."""
    if not isinstance(text, str) or len(text) > 32:
        raise MalformedReceipt(f"aliyun-sms report: {what} is not a time")
    try:
        when = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MalformedReceipt(f"aliyun-sms report: {what} is not 'YYYY-MM-DD HH:MM:SS'") from None
    return when.replace(tzinfo=BEIJING)


def _default_params(dispatch: Dispatch, link: str) -> dict[str, str]:
    return {"court": dispatch.case.court, "case_no": dispatch.case.case_number, "url": link}


class AliyunSmsChannel(BaseChannel):
    """The Alibaba Cloud SMS adapter (see the module docstring).

    - ``base_url``: the endpoint (``https://dysmsapi.aliyuncs.com``; a regional one, or the emulator);
    - ``access_key_id`` / ``access_key_secret``: a RAM user's AccessKey, signs every request (V3);
    - ``sign_name``, ``template_code``: the approved sign name (签名) and template (模板 Code);
      ``params(dispatch, link)`` gives the template parameters (default ``court``, ``case_no``, ``url``);
    - ``link_template``: the document page URL with ``{token}``; ``link_key`` keys the token (default:
      derived from the AccessKey secret);
    - ``callback_token``: the secret the ``SmsReport`` URL carries in its query (``?token=``);
    - ``query_days``: how many Beijing calendar days back ``status`` looks (``QuerySendDetails`` asks one
      date per call; 2 covers a send just before midnight);
    - ``rate`` / ``burst``: this channel's request rate (calls per second; None: none);
    - ``clock``: the time ``status`` computes send dates from (default the system clock);
    - ``transport`` or ``http``: an injectable ``httpx`` transport, or a whole ``AsyncClient``;
    - ``timeout``: seconds per request (the service recommends at least 1 s).
    """

    kind = ChannelKind.SMS

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        link_template: str,
        callback_token: str,
        link_key: bytes | str | None = None,
        params: ParamsFactory | None = None,
        name: str = "aliyun-sms",
        query_days: int = 2,
        rate: float | None = None,
        burst: int = 1,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        base_url = check_base_url(base_url)
        for what, value in (
            ("access_key_id", access_key_id),
            ("access_key_secret", access_key_secret),
            ("sign_name", sign_name),
            ("template_code", template_code),
        ):
            if not value:
                raise ValueError(f"{what} must not be empty")
        require_secret(callback_token, "callback_token")
        if "{token}" not in link_template:
            raise ValueError("link_template must contain '{token}', e.g. 'https://court.example/s/{token}'")
        if timeout <= 0 or max_connections < 1 or not 1 <= query_days <= 30:
            raise ValueError("timeout must be positive, max_connections at least 1, query_days 1 to 30")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.host = httpx.URL(self.base_url).netloc.decode("ascii")
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self._callback_token = callback_token
        self.sign_name = sign_name
        self.template_code = template_code
        self.link_template = link_template
        self._link_key: bytes | str = (
            link_key
            if link_key is not None
            else hashlib.sha256(f"delivery-sdk link token key\n{access_key_secret}".encode()).hexdigest()
        )
        self._params = params or _default_params
        self.query_days = query_days
        self.clock = clock or (lambda: datetime.now(UTC))
        self.limiter = RateLimiter(rate, burst=burst)
        self._owns_http = http is None
        self._http = http or make_client(
            self.base_url, transport=transport, timeout=timeout, max_connections=max_connections
        )

    def __repr__(self) -> str:
        return f"AliyunSmsChannel({self.base_url!r}, name={self.name!r}, access_key_id={self.access_key_id!r})"

    # -- what goes out ---------------------------------------------------------------------------------

    def link_for(self, dispatch_id: str) -> str:
        """The document page link a dispatch's message carries."""
        return self.link_template.replace("{token}", link_token(self._link_key, dispatch_id))

    def send_params(self, dispatch: Dispatch) -> dict[str, str]:
        """The ``SendSms`` parameters of a dispatch (the mobile number is its addressee, and only that)."""
        params = {str(k): str(v) for k, v in self._params(dispatch, self.link_for(dispatch.dispatch_id)).items()}
        return {
            "PhoneNumbers": dispatch.contact.value,
            "SignName": self.sign_name,
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            "OutId": dispatch.dispatch_id,
        }

    def signed_request(
        self, action: str, params: Mapping[str, str], *, date: str | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The headers and form body of an RPC call (``POST /``), signed with signature V3."""
        body = signing.form_body(params)
        headers = {
            "host": self.host,
            "content-type": "application/x-www-form-urlencoded",
            "x-acs-action": action,
            "x-acs-version": API_VERSION,
            "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-content-sha256": signing.sha256_hex(body),
        }
        headers["Authorization"] = signing.authorization(
            self.access_key_id, self._secret, "POST", "/", {}, headers, body
        )
        return headers, body

    async def _call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        what = f"{self.name}.{action}"
        headers, body = self.signed_request(action, params)
        headers["Accept"] = "application/json"
        await self.limiter.acquire()
        async with translate_errors(what):
            response = await self._http.post("/", content=body, headers=headers)
        try:
            data = response.json()
        except ValueError:
            data = None
        code = data.get("Code") if isinstance(data, dict) else None
        if isinstance(code, str) and code in TRANSIENT_CODES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise TransientChannelError(
                f"{what}: the service is busy ({_safe_code(code)})",
                retry_after=max(retry_after or 0.0, TRANSIENT_CODES[code]) or None,
            )
        if isinstance(code, str) and code in AUTH_CODES:
            raise ChannelError(f"{what}: the service refused the request ({_safe_code(code)}): check the AccessKey")
        check_response(response, what=what)
        if not isinstance(data, dict):
            # It answered, but unreadably: it may hold the message. In doubt, so transient: the engine
            # asks status() before it would send again.
            raise TransientChannelError(f"{what}: the service's answer is not a JSON object")
        return data

    # -- the adapter contract --------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Send one dispatch to the provider (the dispatch id is the idempotency key); transient failures raise
        ``TransientChannelError``, refusals ``ChannelError``."""
        if dispatch.contact.kind is not ContactKind.MOBILE:
            raise ChannelError(f"{self.name}: dispatch {dispatch.dispatch_id} has no mobile number to text")
        data = await self._call("SendSms", self.send_params(dispatch))
        code = data.get("Code")
        if code == "OK":
            biz_id = data.get("BizId")
            if not isinstance(biz_id, str) or not biz_id:
                raise TransientChannelError(f"{self.name}.send: accepted without a BizId")
            return SendResult(accepted=True, provider_ref=biz_id)
        log.info("%s: dispatch %s refused (%s)", self.name, dispatch.dispatch_id, _safe_code(code))
        return SendResult(accepted=False, reason=f"{self.name}: refused by Alibaba Cloud SMS ({_safe_code(code)})")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """``QuerySendDetails`` for the dispatch's number on each of the last ``query_days`` Beijing dates;
        the messages whose ``OutId`` is the dispatch id are this dispatch's."""
        today = self.clock().astimezone(BEIJING).date()
        mine: list[Mapping[str, Any]] = []
        for back in range(self.query_days):
            send_date = (today - timedelta(days=back)).strftime("%Y%m%d")
            for page in range(1, _MAX_PAGES + 1):
                data = await self._call(
                    "QuerySendDetails",
                    {
                        "PhoneNumber": dispatch.contact.value,
                        "SendDate": send_date,
                        "PageSize": str(_PAGE_SIZE),
                        "CurrentPage": str(page),
                    },
                )
                if data.get("Code") != "OK":
                    raise ChannelError(f"{self.name}.status: the query was refused ({_safe_code(data.get('Code'))})")
                holder = data.get("SmsSendDetailDTOs")
                details = holder.get("SmsSendDetailDTO") if isinstance(holder, dict) else None
                if not isinstance(details, list):
                    raise TransientChannelError(f"{self.name}.status: the answer has no SmsSendDetailDTO list")
                mine += [d for d in details if isinstance(d, dict) and d.get("OutId") == dispatch.dispatch_id]
                total = data.get("TotalCount")
                if not isinstance(total, int) or page * _PAGE_SIZE >= total:
                    break
        if not mine:
            return StatusReport(found=False)
        try:
            receipts = [r for d in mine if (r := self._detail_receipt(dispatch.dispatch_id, d)) is not None]
        except MalformedReceipt as exc:
            raise TransientChannelError(f"{self.name}.status: unreadable detail ({exc})") from exc
        return StatusReport(found=True, receipts=tuple(receipts))

    def _detail_receipt(self, dispatch_id: str, detail: Mapping[str, Any]) -> Receipt | None:
        status = detail.get("SendStatus")
        if status == 1:
            return None  # waiting for the carrier's report
        if status == 3:
            return Receipt(
                dispatch_id=dispatch_id,
                kind=ReceiptKind.DELIVERED,
                at=_beijing(detail.get("ReceiveDate"), "ReceiveDate"),
                provider_event_id=f"{dispatch_id}:delivered",
            )
        if status == 2:
            at = detail.get("ReceiveDate") or detail.get("SendDate")
            return Receipt(
                dispatch_id=dispatch_id,
                kind=ReceiptKind.FAILED,
                at=_beijing(at, "ReceiveDate"),
                provider_event_id=f"{dispatch_id}:failed",
                reason=f"{self.name}: not delivered ({_safe_code(detail.get('ErrCode'))})",
            )
        raise MalformedReceipt(f"{self.name} detail: SendStatus must be 1, 2 or 3")

    # -- the SmsReport push ----------------------------------------------------------------------------

    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime, *, query: Mapping[str, str] | None = None
    ) -> str:
        """Check the callback URL's ``token`` (the push itself is unsigned); return the replay key, a digest
        of the body (the push has no nonce: the same reports pushed again are the same push).

        The body is not parsed here: nothing of a push is read before its token holds.
        """
        if not token_matches(self._callback_token, (query or {}).get("token")):
            raise CallbackRejected("forged", "missing or wrong callback token")
        return f"{self.name}:{hashlib.sha256(body).hexdigest()[:40]}"

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> Sequence[Receipt]:
        """The receipts of an ``SmsReport`` push (the token is checked here too). Reports without an
        ``out_id`` were not sent by delivery-sdk and are skipped."""
        if not token_matches(self._callback_token, (query or {}).get("token")):
            raise MalformedReceipt(f"{self.name} callback: missing or wrong callback token")
        if len(body) > _MAX_CALLBACK:
            raise MalformedReceipt(f"{self.name} callback: larger than {_MAX_CALLBACK} bytes")
        try:
            reports = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedReceipt(f"{self.name} callback: the body is not JSON") from None
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise MalformedReceipt(f"{self.name} callback: expected a JSON array of report objects")
        return [r for report in reports if (r := self._report_receipt(report)) is not None]

    def _report_receipt(self, report: Mapping[str, Any]) -> Receipt | None:
        out_id, success = report.get("out_id"), report.get("success")
        if out_id in (None, ""):
            return None
        if not isinstance(out_id, str) or not out_id.isascii() or len(out_id) > 200 or not isinstance(success, bool):
            raise MalformedReceipt(f"{self.name} report: needs out_id and a boolean success")
        at = _beijing(report.get("report_time"), "report_time")
        if success:
            return Receipt(
                dispatch_id=out_id, kind=ReceiptKind.DELIVERED, at=at, provider_event_id=f"{out_id}:delivered"
            )
        return Receipt(
            dispatch_id=out_id,
            kind=ReceiptKind.FAILED,
            at=at,
            provider_event_id=f"{out_id}:failed",
            reason=f"{self.name}: not delivered ({_safe_code(report.get('err_code'))})",
        )

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (when it made its own)."""
        if self._owns_http:
            await self._http.aclose()


# -- the entry point ---------------------------------------------------------------------------------


class EnvAliyunSmsPlugin(EnvChannelPlugin[AliyunSmsChannel]):
    """The entry-point plugin: an :class:`AliyunSmsChannel` from ``DELIVERY_SDK_ALIYUN_SMS_*``, or nothing.

    None of the variables set: registers nothing. Any set: every required one must be too (the URL
    defaults to ``https://dysmsapi.aliyuncs.com``), or loading the plugins raises one
    :class:`~delivery_sdk.PluginError` naming every missing or invalid variable. ``environ`` given here
    wins over the host's (for tests).
    """

    title = "Alibaba Cloud SMS"
    prefix = "DELIVERY_SDK_ALIYUN_SMS_"
    main_variable = ENV["url"]

    def read(self, settings: PluginSettings, clock: Clock | None) -> Callable[[], AliyunSmsChannel]:
        """Read ``DELIVERY_SDK_ALIYUN_SMS_*``; what builds the :class:`AliyunSmsChannel` they describe."""
        values = read_values(settings, ENV, _REQUIRED, secrets=("access_key_secret", "callback_token"))
        rate, timeout = read_rate_and_timeout(settings, ENV)
        return lambda: AliyunSmsChannel(
            values["url"] or DEFAULT_URL,
            access_key_id=values["access_key_id"],
            access_key_secret=values["access_key_secret"],
            sign_name=values["sign_name"],
            template_code=values["template_code"],
            link_template=values["link_template"],
            callback_token=values["callback_token"],
            link_key=values["link_key"] or None,
            name=values["name"] or "aliyun-sms",
            rate=rate,
            timeout=timeout,
        )


plugin = EnvAliyunSmsPlugin()
"""The object the ``aliyun-sms`` entry point registers with every plugin host."""
