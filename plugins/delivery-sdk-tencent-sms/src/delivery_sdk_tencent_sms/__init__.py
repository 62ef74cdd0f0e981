"""Tencent Cloud SMS (短信, API 3.0, version 2021-01-11) as a delivery-sdk channel.

What goes out: ``SendSms`` (one dispatch, one number) with the application (``SmsSdkAppId``), the approved
sign name (``SignName``), the approved template (``TemplateId``) and its parameters (``TemplateParamSet``:
the court, the case number and the link token, never a name: Tencent refuses URLs in template parameters,
``InvalidParameterValue.ProhibitedUseUrlInTemplateParameter``, so the template text holds the page's
address and the parameter its token), and ``SessionContext`` = the dispatch id. Requests are JSON
``POST /`` signed with ``TC3-HMAC-SHA256`` (:mod:`.signing`); the phone number is only in the body.

What comes back: status callbacks (a JSON array of reports POSTed to the URL configured in the console),
``PullSmsSendStatusByPhoneNumber`` for a dispatch's status (reconciliation), and ``PullSmsSendStatus``
(:meth:`TencentSmsChannel.pull_receipts`) for draining the app's reports without callbacks. The callback
carries no signature (the documentation specifies none): the plugin authenticates it by a secret token in
the callback URL's query (``?token=...``, compared in constant time before the body is read), and
resolves its ``sid`` (the ``SerialNo``) to a dispatch only for messages this process sent or looked up;
reports it cannot place are left to the status poll (see ``docs/plugins/tencent-sms.md``).

``SendSms`` is not idempotent, and Tencent shows a message to the status queries only once its carrier
report is in. So :meth:`TencentSmsChannel.status` believes "never received" only after ``report_grace``
seconds without a report (until then it raises a transient error: the engine asks again later rather than
sending twice).

The entry point (``tencent-sms = "delivery_sdk_tencent_sms:plugin"``) registers a channel configured from
``DELIVERY_SDK_TENCENT_SMS_*`` and nothing while none of them is set.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
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
    "SERVICE",
    "TRANSIENT_CODES",
    "EnvTencentSmsPlugin",
    "TencentSmsChannel",
    "e164",
    "link_token",
    "plugin",
    "signing",
    "token_matches",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_tencent_sms")

API_VERSION = "2021-01-11"
SERVICE = "sms"
DEFAULT_URL = "https://sms.tencentcloudapi.com"
SIGNED_HEADERS = ("content-type", "host", "x-tc-action")

# Codes worth another try, with how long to wait at least: the per-number frequency limits (30 s, 1 h),
# the API's request rate, the service's internal errors.
TRANSIENT_CODES: Mapping[str, float] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "RequestLimitExceeded": 1.0,
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded": 1.0,
    "RequestLimitExceeded.UinLimitExceeded": 1.0,
    "InternalError.Timeout": 1.0,
    "InternalError.RequestTimeException": 1.0,
    "InternalError.SendAndRecvFail": 1.0,
    "InternalError.OtherError": 1.0,
    "InternalError.UnknownError": 1.0,
    "InternalError": 1.0,
}
# Refusals for good (the number, the template, the sign name, a daily cap, the balance). Any code not
# listed here or above is treated as one too: the dispatch fails over to the next channel.
PERMANENT_CODES = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberParseFail",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        "FailedOperation.TemplateUnapprovedOrNotExist",
        "FailedOperation.MissingSignature",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "FailedOperation.ContainSensitiveWord",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.TemplateParameterFormatError",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DailyLimit",
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.AppMainlandChinaDailyLimit",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
    }
)
# The request is not accepted at all: credentials, signature, clock, the app id, the caller's IP.
AUTH_CODES = frozenset(
    {
        "AuthFailure.SignatureFailure",
        "AuthFailure.SignatureExpire",
        "AuthFailure.SecretIdNotFound",
        "AuthFailure.InvalidSecretId",
        "AuthFailure.InvalidAuthorization",
        "AuthFailure.MFAFailure",
        "AuthFailure.TokenFailure",
        "AuthFailure.UnauthorizedOperation",
        "InvalidParameterValue.SdkAppIdNotExist",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
        "UnauthorizedOperation.RequestIpNotInWhitelist",
        "UnauthorizedOperation.RequestPermissionDeny",
        "UnauthorizedOperation.SdkAppIdIsDisabled",
        "UnauthorizedOperation.ServiceSuspendDueToArrears",
    }
)
_KNOWN_SERIALS = 100_000  # SerialNo -> dispatch id kept for placing callbacks (oldest forgotten first)

ENV = {
    "url": "DELIVERY_SDK_TENCENT_SMS_URL",
    "secret_id": "DELIVERY_SDK_TENCENT_SMS_SECRET_ID",
    "secret_key": "DELIVERY_SDK_TENCENT_SMS_SECRET_KEY",
    "sdk_app_id": "DELIVERY_SDK_TENCENT_SMS_SDK_APP_ID",
    "sign_name": "DELIVERY_SDK_TENCENT_SMS_SIGN_NAME",
    "template_id": "DELIVERY_SDK_TENCENT_SMS_TEMPLATE_ID",
    "link_template": "DELIVERY_SDK_TENCENT_SMS_LINK_TEMPLATE",
    "callback_token": "DELIVERY_SDK_TENCENT_SMS_CALLBACK_TOKEN",
    "region": "DELIVERY_SDK_TENCENT_SMS_REGION",
    "link_key": "DELIVERY_SDK_TENCENT_SMS_LINK_KEY",
    "rate": "DELIVERY_SDK_TENCENT_SMS_RATE",
    "timeout": "DELIVERY_SDK_TENCENT_SMS_TIMEOUT",
    "name": "DELIVERY_SDK_TENCENT_SMS_NAME",
}
_REQUIRED = (
    "secret_id",
    "secret_key",
    "sdk_app_id",
    "sign_name",
    "template_id",
    "link_template",
    "callback_token",
)

ParamsFactory = Callable[[Dispatch, str], Sequence[str]]


def e164(mobile: str) -> str:
    """A mainland mobile number in E.164 (``+8613912345678``), as ``PhoneNumberSet`` wants it."""
    digits = mobile.strip().removeprefix("+").removeprefix("0086")
    digits = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    return f"+86{digits}"


def _default_params(dispatch: Dispatch, token: str) -> list[str]:
    return [dispatch.case.court, dispatch.case.case_number, token]


class TencentSmsChannel(CloudSmsChannel):
    """The Tencent Cloud SMS adapter (see the module docstring).

    - ``base_url``: the endpoint (``https://sms.tencentcloudapi.com``, or the emulator); ``region``: the
      ``X-TC-Region`` (``ap-guangzhou``);
    - ``secret_id`` / ``secret_key``: a CAM key, signs every request (TC3-HMAC-SHA256);
    - ``sdk_app_id``: the SMS application (``SmsSdkAppId``); ``sign_name``, ``template_id``: the approved
      sign name and template; ``params(dispatch, token)`` gives ``TemplateParamSet`` (default court, case
      number, link token);
    - ``link_template``: the document page URL with ``{token}`` (the approved template's text must hold
      the same address); ``link_key`` keys the token (default: derived from the secret key);
    - ``callback_token``: the secret the callback URL carries in its query (``?token=``);
    - ``lookback``: how far back ``status`` searches (at most the API's 7 days); ``report_grace``: how long
      ``status`` waits for a report before it believes a message never reached Tencent;
    - ``rate`` / ``burst``; ``clock`` (default the system clock); ``transport`` or ``http``; ``timeout``.
    """

    transient_codes = TRANSIENT_CODES
    auth_codes = AUTH_CODES
    code_limit = 80

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        template_id: str,
        link_template: str,
        callback_token: str,
        region: str = "ap-guangzhou",
        link_key: bytes | str | None = None,
        params: ParamsFactory | None = None,
        name: str = "tencent-sms",
        lookback: timedelta = timedelta(days=2),
        report_grace: timedelta = timedelta(minutes=10),
        rate: float | None = None,
        burst: int = 1,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        if not timedelta(0) < lookback <= timedelta(days=7) or report_grace < timedelta(0):
            raise ValueError("lookback must be up to 7 days (the API's limit), report_grace not negative")
        self.setup(
            base_url,
            name=name,
            required=(
                ("secret_id", secret_id),
                ("secret_key", secret_key),
                ("sdk_app_id", sdk_app_id),
                ("sign_name", sign_name),
                ("template_id", template_id),
                ("region", region),
            ),
            secret=secret_key,
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
        self.secret_id = secret_id
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.template_id = template_id
        self.region = region
        self._params = params or _default_params
        self.lookback = lookback
        self.report_grace = report_grace
        self._serials: OrderedDict[str, str] = OrderedDict()  # SerialNo -> dispatch id
        self._missing_since: dict[str, datetime] = {}  # dispatch id -> first status() that found nothing

    def __repr__(self) -> str:
        return f"TencentSmsChannel({self.base_url!r}, name={self.name!r}, secret_id={self.secret_id!r})"

    # -- what goes out ---------------------------------------------------------------------------------

    def send_payload(self, dispatch: Dispatch) -> dict[str, Any]:
        """The ``SendSms`` request body (the number is its addressee, and only that)."""
        token = self.link_token_for(dispatch.dispatch_id)
        return {
            "PhoneNumberSet": [e164(dispatch.contact.value)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": self.template_id,
            "TemplateParamSet": [str(p) for p in self._params(dispatch, token)],
            "SessionContext": dispatch.dispatch_id,
        }

    def signed_request(
        self, action: str, payload: Mapping[str, Any], *, timestamp: int | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The headers and JSON body of an API call, signed with TC3-HMAC-SHA256."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Host": self.host,
            "X-TC-Action": action,
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(ts),
            "X-TC-Region": self.region,
        }
        headers["Authorization"] = signing.authorization(
            self.secret_id, self._secret, SERVICE, ts, headers, body, signed=SIGNED_HEADERS
        )
        return headers, body

    async def _call(self, action: str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], httpx.Response]:
        """The ``Response`` object of a call; a request-level ``Error`` is raised (transient, or a
        ``ChannelError`` for credentials) or returned in it for the caller to judge."""
        what = f"{self.name}.{action}"
        headers, body = self.signed_request(action, payload)
        response, data = await request_json(
            self._http, "POST", "/", what=what, limiter=self.limiter, content=body, headers=headers
        )
        inner = data.get("Response") if isinstance(data, dict) else None
        if not isinstance(inner, dict):
            raise TransientChannelError(f"{what}: the service's answer has no Response object")
        error = inner.get("Error")
        code = error.get("Code") if isinstance(error, dict) else None
        self.check_code(what, code, response)
        return inner, response

    # -- the adapter contract --------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """``SendSms`` for one dispatch, ``SessionContext`` its id; the ``SerialNo`` is remembered to place
        callbacks. A busy code or a call in doubt raises ``TransientChannelError``; another code is
        ``accepted=False``; a contact that is not a mobile number raises ``ChannelError``."""
        if dispatch.contact.kind is not ContactKind.MOBILE:
            raise ChannelError(f"{self.name}: dispatch {dispatch.dispatch_id} has no mobile number to text")
        data, response = await self._call("SendSms", self.send_payload(dispatch))
        error = data.get("Error")
        if isinstance(error, dict):
            code = error.get("Code")
        else:
            statuses = data.get("SendStatusSet")
            status = statuses[0] if isinstance(statuses, list) and statuses else None
            if not isinstance(status, dict):
                raise TransientChannelError(f"{self.name}.send: the answer has no SendStatusSet")
            code = status.get("Code")
            if code == "Ok":
                serial = status.get("SerialNo")
                if not isinstance(serial, str) or not serial:
                    raise TransientChannelError(f"{self.name}.send: accepted without a SerialNo")
                self._remember(serial, dispatch.dispatch_id)
                return SendResult(accepted=True, provider_ref=serial)
            if isinstance(code, str) and code in TRANSIENT_CODES:
                raise self.busy(f"{self.name}.send", code, response)
        log.info("%s: dispatch %s refused (%s)", self.name, dispatch.dispatch_id, self.safe_code(code))
        return SendResult(accepted=False, reason=f"{self.name}: refused by Tencent Cloud SMS ({self.safe_code(code)})")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """``PullSmsSendStatusByPhoneNumber`` over the last ``lookback``: the reports whose
        ``SessionContext`` is the dispatch id. None: the message may still be waiting for its report, so
        "never received" is believed only after ``report_grace`` (a transient error until then)."""
        now = self.clock()
        data, _ = await self._call(
            "PullSmsSendStatusByPhoneNumber",
            {
                "BeginTime": int((now - self.lookback).timestamp()),
                "EndTime": int(now.timestamp()) + 1,
                "Offset": 0,
                "Limit": 100,
                "PhoneNumber": e164(dispatch.contact.value),
                "SmsSdkAppId": self.sdk_app_id,
            },
        )
        if isinstance(data.get("Error"), dict):
            raise ChannelError(
                f"{self.name}.status: the query was refused ({self.safe_code(data['Error'].get('Code'))})"
            )
        items = data.get("PullSmsSendStatusSet")
        if not isinstance(items, list):
            raise TransientChannelError(f"{self.name}.status: the answer has no PullSmsSendStatusSet")
        mine = [i for i in items if isinstance(i, dict) and i.get("SessionContext") == dispatch.dispatch_id]
        if not mine:
            first = self._missing_since.setdefault(dispatch.dispatch_id, now)
            waited = now - first
            if waited < self.report_grace:
                raise TransientChannelError(
                    f"{self.name}.status: no report yet for {dispatch.dispatch_id}; it may still be on its way",
                    retry_after=(self.report_grace - waited).total_seconds(),
                )
            del self._missing_since[dispatch.dispatch_id]
            return StatusReport(found=False)
        self._missing_since.pop(dispatch.dispatch_id, None)
        try:
            receipts = [self._pulled_receipt(dispatch.dispatch_id, i) for i in mine]
        except MalformedReceipt as exc:
            raise TransientChannelError(f"{self.name}.status: unreadable report ({exc})") from exc
        serial = mine[0].get("SerialNo")
        if isinstance(serial, str) and serial:
            self._remember(serial, dispatch.dispatch_id)
        return StatusReport(
            found=True,
            provider_ref=serial if isinstance(serial, str) else None,
            receipts=tuple(r for r in receipts if r is not None),
        )

    async def pull_receipts(self, limit: int = 100) -> list[Receipt]:
        """``PullSmsSendStatus``: the app's reports not pulled before (each is handed out once), as receipts
        for the dispatches that sent them (``SessionContext``); feed them to ``client.ingest``."""
        data, _ = await self._call(
            "PullSmsSendStatus", {"Limit": max(1, min(limit, 100)), "SmsSdkAppId": self.sdk_app_id}
        )
        items = data.get("PullSmsSendStatusSet")
        if not isinstance(items, list):
            raise TransientChannelError(f"{self.name}.pull_receipts: the answer has no PullSmsSendStatusSet")
        out = []
        for item in items:
            context = item.get("SessionContext") if isinstance(item, dict) else None
            if isinstance(context, str) and context and context.isascii() and len(context) <= 200:
                receipt = self._pulled_receipt(context, item)
                if receipt is not None:
                    out.append(receipt)
        return out

    def _pulled_receipt(self, dispatch_id: str, item: Mapping[str, Any]) -> Receipt | None:
        status, at = item.get("ReportStatus"), item.get("UserReceiveTime")
        if status not in ("SUCCESS", "FAIL"):
            return None
        if not isinstance(at, int) or isinstance(at, bool) or not 0 < at < 10**11:
            raise MalformedReceipt(f"{self.name} report: UserReceiveTime is not a Unix time")
        return self.receipt(dispatch_id, status == "SUCCESS", datetime.fromtimestamp(at, UTC), item.get("Description"))

    def _remember(self, serial: str, dispatch_id: str) -> None:
        self._serials[serial] = dispatch_id
        self._serials.move_to_end(serial)
        while len(self._serials) > _KNOWN_SERIALS:
            self._serials.popitem(last=False)

    # -- status callbacks ------------------------------------------------------------------------------

    # (the token: CloudSmsChannel.verify_callback)

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> Sequence[Receipt]:
        """The receipts of a status callback (the token is checked here too). A report whose ``sid`` this
        process cannot place (a message sent by another process, or before a restart) is skipped: the
        status poll finds it by ``SessionContext``."""
        reports = self.callback_reports(body, query)
        out, unplaced = [], 0
        for report in reports:
            sid, status, at = report.get("sid"), report.get("report_status"), report.get("user_receive_time")
            if not isinstance(sid, str) or not sid or status not in ("SUCCESS", "FAIL"):
                raise MalformedReceipt(f"{self.name} report: needs sid and report_status SUCCESS or FAIL")
            when = _beijing(at)
            dispatch_id = self._serials.get(sid)
            if dispatch_id is None:
                unplaced += 1
                continue
            out.append(self.receipt(dispatch_id, status == "SUCCESS", when, report.get("errmsg")))
        if unplaced:
            log.debug(
                "%s callback: %d report(s) of messages this process did not send, left to the poll", self.name, unplaced
            )
        return out


def _beijing(text: object) -> datetime:
    return beijing_time(text, "tencent-sms report: user_receive_time")


# -- the entry point ---------------------------------------------------------------------------------


class EnvTencentSmsPlugin(EnvChannelPlugin[TencentSmsChannel]):
    """The entry-point plugin: a :class:`TencentSmsChannel` from ``DELIVERY_SDK_TENCENT_SMS_*``, or nothing.

    None of the variables set: registers nothing. Any set: every required one must be too (the URL
    defaults to ``https://sms.tencentcloudapi.com``, the region to ``ap-guangzhou``), or loading the
    plugins raises one :class:`~delivery_sdk.PluginError` naming every missing or invalid variable.
    """

    title = "Tencent Cloud SMS"
    prefix = "DELIVERY_SDK_TENCENT_SMS_"
    main_variable = ENV["url"]

    def read(self, settings: PluginSettings, clock: Clock | None) -> Callable[[], TencentSmsChannel]:
        """Read ``DELIVERY_SDK_TENCENT_SMS_*``; what builds the :class:`TencentSmsChannel` they describe."""
        values = read_values(settings, ENV, _REQUIRED, secrets=("secret_key", "callback_token"))
        rate, timeout = read_rate_and_timeout(settings, ENV)
        return lambda: TencentSmsChannel(
            values["url"] or DEFAULT_URL,
            secret_id=values["secret_id"],
            secret_key=values["secret_key"],
            sdk_app_id=values["sdk_app_id"],
            sign_name=values["sign_name"],
            template_id=values["template_id"],
            link_template=values["link_template"],
            callback_token=values["callback_token"],
            region=values["region"] or "ap-guangzhou",
            link_key=values["link_key"] or None,
            name=values["name"] or "tencent-sms",
            rate=rate,
            timeout=timeout,
        )


plugin = EnvTencentSmsPlugin()
"""The object the ``tencent-sms`` entry point registers with every plugin host."""
