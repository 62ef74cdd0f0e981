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

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from delivery_sdk import (
    ChannelError,
    ContactKind,
    Dispatch,
    MalformedReceipt,
    Receipt,
    SendResult,
    StatusReport,
    TransientChannelError,
)
from delivery_sdk.clock import Clock
from delivery_sdk.plugin_kit import (
    EnvChannelPlugin,
    PluginSettings,
    check_response,
    link_token,
    read_rate_and_timeout,
    read_values,
    request_json,
)
from delivery_sdk.plugin_kit.cloudsms import BEIJING, CloudSmsChannel, beijing_time, token_matches

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


def _beijing(text: object, what: str) -> datetime:
    """``"2017-01-01 00:00:00"`` (the service's Beijing-time format) as an aware datetime."""
    return beijing_time(text, f"aliyun-sms report: {what}")


def _default_params(dispatch: Dispatch, link: str) -> dict[str, str]:
    return {"court": dispatch.case.court, "case_no": dispatch.case.case_number, "url": link}


class AliyunSmsChannel(CloudSmsChannel):
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

    transient_codes = TRANSIENT_CODES
    auth_codes = AUTH_CODES
    auth_hint = "check the AccessKey"

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
        if not 1 <= query_days <= 30:
            raise ValueError("query_days must be 1 to 30")
        self.setup(
            base_url,
            name=name,
            required=(
                ("access_key_id", access_key_id),
                ("access_key_secret", access_key_secret),
                ("sign_name", sign_name),
                ("template_code", template_code),
            ),
            secret=access_key_secret,
            callback_token=callback_token,
            link_template=link_template,
            link_key=link_key,
            clock=clock,
            rate=rate,
            burst=burst,
            transport=transport,
            http=http,
            timeout=timeout,
            max_connections=max_connections,
        )
        self.access_key_id = access_key_id
        self.sign_name = sign_name
        self.template_code = template_code
        self._params = params or _default_params
        self.query_days = query_days

    def __repr__(self) -> str:
        return f"AliyunSmsChannel({self.base_url!r}, name={self.name!r}, access_key_id={self.access_key_id!r})"

    # -- what goes out ---------------------------------------------------------------------------------

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
        # check=False: a throttling code comes with HTTP 400, and must be read as transient first
        response, data = await request_json(
            self._http, "POST", "/", what=what, limiter=self.limiter, check=False, content=body, headers=headers
        )
        self.check_code(what, data.get("Code") if isinstance(data, dict) else None, response)
        check_response(response, what=what)
        if not isinstance(data, dict):
            # It answered, but unreadably: it may hold the message. In doubt, so transient: the engine
            # asks status() before it would send again.
            raise TransientChannelError(f"{what}: the service's answer is not a JSON object")
        return data

    # -- the adapter contract --------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """``SendSms`` for one dispatch, ``OutId`` its id. The service is not idempotent: a call in doubt raises
        ``TransientChannelError`` (the engine asks :meth:`status` before sending again); a refusal code is
        ``accepted=False``; a contact that is not a mobile number raises ``ChannelError``."""
        if dispatch.contact.kind is not ContactKind.MOBILE:
            raise ChannelError(f"{self.name}: dispatch {dispatch.dispatch_id} has no mobile number to text")
        data = await self._call("SendSms", self.send_params(dispatch))
        code = data.get("Code")
        if code == "OK":
            biz_id = data.get("BizId")
            if not isinstance(biz_id, str) or not biz_id:
                raise TransientChannelError(f"{self.name}.send: accepted without a BizId")
            return SendResult(accepted=True, provider_ref=biz_id)
        log.info("%s: dispatch %s refused (%s)", self.name, dispatch.dispatch_id, self.safe_code(code))
        return SendResult(accepted=False, reason=f"{self.name}: refused by Alibaba Cloud SMS ({self.safe_code(code)})")

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
                    raise ChannelError(
                        f"{self.name}.status: the query was refused ({self.safe_code(data.get('Code'))})"
                    )
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
            return self.receipt(dispatch_id, True, _beijing(detail.get("ReceiveDate"), "ReceiveDate"), None)
        if status == 2:
            at = detail.get("ReceiveDate") or detail.get("SendDate")
            return self.receipt(dispatch_id, False, _beijing(at, "ReceiveDate"), detail.get("ErrCode"))
        raise MalformedReceipt(f"{self.name} detail: SendStatus must be 1, 2 or 3")

    # -- the SmsReport push (its token: CloudSmsChannel.verify_callback) --------------------------------

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> Sequence[Receipt]:
        """The receipts of an ``SmsReport`` push (the token is checked here too). Reports without an
        ``out_id`` were not sent by delivery-sdk and are skipped."""
        return [r for report in self.callback_reports(body, query) if (r := self._report_receipt(report)) is not None]

    def _report_receipt(self, report: Mapping[str, Any]) -> Receipt | None:
        out_id, success = report.get("out_id"), report.get("success")
        if out_id in (None, ""):
            return None
        if not isinstance(out_id, str) or not out_id.isascii() or len(out_id) > 200 or not isinstance(success, bool):
            raise MalformedReceipt(f"{self.name} report: needs out_id and a boolean success")
        return self.receipt(out_id, success, _beijing(report.get("report_time"), "report_time"), report.get("err_code"))


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
