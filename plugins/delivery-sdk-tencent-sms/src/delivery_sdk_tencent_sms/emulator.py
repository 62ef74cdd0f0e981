"""A local Tencent Cloud SMS (API 3.0, 2021-01-11) for tests, end-to-end runs and the sandbox, over a real
socket (``ThreadingHTTPServer`` on ``127.0.0.1``, an ephemeral port, in a thread).

It checks what the real service checks, with its codes (API 3.0 answers HTTP 200 with
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``):

- ``TC3-HMAC-SHA256`` exactly as documented (:mod:`.signing`): a known SecretId
  (``AuthFailure.SecretIdNotFound``), the credential scope's service ``sms`` and the UTC date of
  ``X-TC-Timestamp``, ``content-type`` and ``host`` among the signed headers, the signature recomputed over
  the request as received (``AuthFailure.SignatureFailure``), and a timestamp within 5 minutes
  (``AuthFailure.SignatureExpire``); ``X-TC-Version`` 2021-01-11;
- the API's request rate (``qps``: ``RequestLimitExceeded``) and the per-number frequency limits
  (``per_number``: 1 in 30 s, 5 an hour, 10 a day by default:
  ``LimitExceeded.PhoneNumberThirtySecondLimit`` / ``...OneHourLimit`` / ``...DailyLimit``, per number in
  ``SendStatusSet``);
- the application (``InvalidParameterValue.SdkAppIdNotExist``), the approved sign names and templates
  (``FailedOperation.SignatureIncorrectOrUnapproved``, ``FailedOperation.TemplateIncorrectOrUnapproved``,
  ``FailedOperation.TemplateParamSetNotMatchApprovedTemplate``), no URL in a template parameter
  (``InvalidParameterValue.ProhibitedUseUrlInTemplateParameter``) and the number's format
  (``InvalidParameterValue.IncorrectPhoneNumber``).

Not idempotent, like the service. A message is visible to ``PullSmsSendStatusByPhoneNumber`` and
``PullSmsSendStatus`` only once its report is in (as documented: status data comes with the carrier's
report). ``deliver(session_context)`` records the report and pushes the callback array to
``callback_url?token=<callback_token>``; ``auto_deliver`` does so for every message. Nothing here logs a
phone number.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Unpack

from delivery_sdk.testing.emulator import (
    CloudSmsEmulator,
    CloudSmsEmulatorOptions,
    MessageFault,
    join_callback,
    json_reply,
    mask,
    read_body,
    serve_sandbox_main,
)

from . import API_VERSION, BEIJING, SERVICE, TencentSmsChannel, signing

__all__ = ["EmulatedMessage", "Fault", "TencentSmsEmulator", "sandbox"]

_E164 = re.compile(r"^\+861[3-9][0-9]{9}$")
_URLISH = re.compile(r"(?i)https?:|://|www\.")
WINDOW = 5 * 60


class Fault(MessageFault):
    """One scripted misbehaviour, applied to the next SendSms (or status query) in order: ``Fault.http(502)``
    (a gateway in front of the API failing), ``Fault.refuse(code)`` (the code in the number's
    ``SendStatusSet`` entry), ``Fault.timeout(seconds)``."""


@dataclass
class EmulatedMessage:
    """One message the emulated gateway took."""

    serial_no: str
    session_context: str
    phone: str  # E.164
    sign_name: str
    template_id: str
    params: list[str]
    send_time: datetime
    report_status: str = ""  # "" until the carrier reports; SUCCESS or FAIL
    errmsg: str = ""
    receive_time: datetime | None = None
    pulled: bool = False

    def pulled_view(self) -> dict[str, Any]:
        """As PullSmsSendStatus / PullSmsSendStatusByPhoneNumber show it."""
        assert self.receive_time is not None
        return {
            "UserReceiveTime": int(self.receive_time.timestamp()),
            "CountryCode": "86",
            "SubscriberNumber": self.phone[3:],
            "PhoneNumber": self.phone,
            "SerialNo": self.serial_no,
            "ReportStatus": self.report_status,
            "Description": self.errmsg,
            "SessionContext": self.session_context,
        }


class TencentSmsEmulator(CloudSmsEmulator[Fault, EmulatedMessage]):
    """The service (see the module docstring). ``clock`` stamps messages and reports and drives the
    frequency limits; signatures are checked against the system clock."""

    message_type = EmulatedMessage
    message_key = "session_context"

    default_qps = 3000

    def __init__(
        self,
        *,
        secret_id: str = "AKID-emulator",
        secret_key: str = "emulator-secret-key",
        sdk_app_id: str = "1400006666",
        templates: Mapping[str, int] | None = None,
        per_number: Mapping[timedelta, tuple[int, str]] | None = None,
        **options: Unpack[CloudSmsEmulatorOptions],
    ) -> None:
        super().__init__(name="tencent-sms-emulator", **options)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.templates = dict(templates or {"1234567": 3})  # template id -> number of parameters
        self.per_number = dict(
            per_number
            if per_number is not None
            else {
                timedelta(seconds=30): (1, "LimitExceeded.PhoneNumberThirtySecondLimit"),
                timedelta(hours=1): (5, "LimitExceeded.PhoneNumberOneHourLimit"),
                timedelta(days=1): (10, "LimitExceeded.PhoneNumberDailyLimit"),
            }
        )
        # illegal_numbers: E.164; attempts: the SessionContext of every authenticated SendSms;
        # queries: the action of every authenticated status query

    def channel(self, **kwargs: Any) -> TencentSmsChannel:
        """A :class:`TencentSmsChannel` configured for this service (keyword arguments override)."""
        options: dict[str, Any] = {
            "secret_id": self.secret_id,
            "secret_key": self.secret_key,
            "sdk_app_id": self.sdk_app_id,
            "callback_token": self.callback_token,
            "sign_name": "武汉中院",
            "template_id": "1234567",
            "link_template": "https://ssfw.court.example/s/{token}",
            "clock": self.clock,
        }
        options.update(kwargs)
        return TencentSmsChannel(self.url, **options)

    # -- scripting and inspecting ----------------------------------------------------------------------

    def deliver(
        self, session_context: str, *, success: bool = True, errmsg: str = "", push: bool = True
    ) -> tuple[dict[str, str], bytes]:
        """Record the carrier's report for the latest message under this SessionContext; push the
        callback to ``callback_url`` when set (and ``push``). Returns the push's query and body."""
        return self._deliver(session_context, success, errmsg, push)

    # -- as a service ----------------------------------------------------------------------------------

    def describe_request(self, method: str, path: str, body: bytes) -> Mapping[str, Any]:
        """What :meth:`received` shows of a request besides its method, path and answer (no personal data in clear)."""
        payload = json.loads(body) if body else {}
        phones = payload.get("PhoneNumberSet") or [payload.get("PhoneNumber", "")]
        return {
            "session_context": payload.get("SessionContext"),
            "to": [mask(str(p)) for p in phones],
            "template_id": payload.get("TemplateId"),
        }

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {
            "DELIVERY_SDK_TENCENT_SMS_URL": self.url,
            "DELIVERY_SDK_TENCENT_SMS_SECRET_ID": self.secret_id,
            "DELIVERY_SDK_TENCENT_SMS_SECRET_KEY": self.secret_key,
            "DELIVERY_SDK_TENCENT_SMS_SDK_APP_ID": self.sdk_app_id,
            "DELIVERY_SDK_TENCENT_SMS_CALLBACK_TOKEN": self.callback_token,
            "DELIVERY_SDK_TENCENT_SMS_SIGN_NAME": sorted(self.sign_names)[0],
            "DELIVERY_SDK_TENCENT_SMS_TEMPLATE_ID": sorted(self.templates)[0],
            "DELIVERY_SDK_TENCENT_SMS_LINK_TEMPLATE": "http://127.0.0.1/s/{token}",
        }

    # -- internals -------------------------------------------------------------------------------------

    def _report(self, message: EmulatedMessage, success: bool, errmsg: str) -> dict[str, Any]:
        message.report_status = "SUCCESS" if success else "FAIL"
        message.errmsg = "DELIVRD" if success else (errmsg or "MK:0001")
        message.receive_time = self.clock()
        return {
            "user_receive_time": message.receive_time.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "nationcode": "86",
            "mobile": message.phone[3:],
            "report_status": message.report_status,
            "errmsg": message.errmsg,
            "description": "用户短信送达成功" if success else "用户短信接收失败",
            "sid": message.serial_no,
        }

    def _authenticate(self, handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
        """None when the request is signed as documented, else the error code."""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        fields = signing.parse_authorization(headers.get("authorization", ""))
        if fields is None:
            return "AuthFailure.InvalidAuthorization"
        if fields["SecretId"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        stamp = headers.get("x-tc-timestamp", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return "AuthFailure.InvalidAuthorization"
        timestamp = int(stamp)
        signed = tuple(fields["SignedHeaders"].split(";"))
        if fields["Service"] != SERVICE or fields["Date"] != signing.utc_date(timestamp):
            return "AuthFailure.SignatureFailure"
        if not {"content-type", "host"} <= set(signed):
            return "AuthFailure.SignatureFailure"
        path, _, query = handler.path.partition("?")
        if path != "/":
            return "AuthFailure.SignatureFailure"
        canonical = signing.canonical_request(handler.command, query, headers, signed, body)
        if signing.sign(self.secret_key, timestamp, SERVICE, canonical) != fields["Signature"]:
            return "AuthFailure.SignatureFailure"
        if abs(time.time() - timestamp) > WINDOW:
            return "AuthFailure.SignatureExpire"
        with self._lock:
            if self._throttled():
                return "RequestLimitExceeded"
        if headers.get("x-tc-version") != API_VERSION:
            return "InvalidAction"
        return None

    def _error(self, handler: BaseHTTPRequestHandler, code: str, request_id: str) -> None:
        json_reply(handler, 200, {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": request_id}})

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request of the emulated provider's API (runs in a server thread)."""
        body = read_body(handler)
        request_id = f"emu-{self._next_request():08d}"
        if method != "POST":
            self._error(handler, "UnsupportedProtocol", request_id)
            return
        refused = self._authenticate(handler, body)
        if refused is not None:
            with self._lock:
                self.rejected.append(refused)
            self._error(handler, refused, request_id)
            return
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            self._error(handler, "FailedOperation.JsonParseFail", request_id)
            return
        if payload.get("SmsSdkAppId") != self.sdk_app_id:
            self._error(handler, "InvalidParameterValue.SdkAppIdNotExist", request_id)
            return
        action = handler.headers.get("X-TC-Action", "")
        if action == "SendSms":
            self._send(handler, payload, request_id)
        elif action in ("PullSmsSendStatusByPhoneNumber", "PullSmsSendStatus"):
            self._pull(handler, action, payload, request_id)
        else:
            self._error(handler, "InvalidAction", request_id)

    def _request_error(self, payload: Mapping[str, Any]) -> str | None:
        phones, params = payload.get("PhoneNumberSet"), payload.get("TemplateParamSet", [])
        if not isinstance(phones, list) or not phones:
            return "MissingParameter.EmptyPhoneNumberSet"
        if len(phones) > 200:
            return "LimitExceeded.PhoneNumberCountLimit"
        if payload.get("SignName") not in self.sign_names:
            return "FailedOperation.SignatureIncorrectOrUnapproved"
        template = payload.get("TemplateId")
        if template not in self.templates:
            return "FailedOperation.TemplateIncorrectOrUnapproved"
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return "InvalidParameterValue.TemplateParameterFormatError"
        if len(params) != self.templates[str(template)]:
            return "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
        if any(_URLISH.search(p) for p in params):
            return "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter"
        context = payload.get("SessionContext", "")
        if not isinstance(context, str) or len(context.encode()) >= 512:
            return "InvalidParameterValue.ContentLengthLimit"
        return None

    def _number_code(self, phone: object, now: datetime) -> str | None:
        if not isinstance(phone, str) or not _E164.match(phone) or phone in self.illegal_numbers:
            return "InvalidParameterValue.IncorrectPhoneNumber"
        sent = [m.send_time for m in self.messages if m.phone == phone]
        for span, (limit, code) in sorted(self.per_number.items()):
            if sum(1 for t in sent if now - t < span) >= limit:
                return code
        return None

    def _send(self, handler: BaseHTTPRequestHandler, payload: dict[str, Any], request_id: str) -> None:
        error = self._request_error(payload)
        if error is not None:
            self._error(handler, error, request_id)
            return
        context = str(payload.get("SessionContext", ""))
        pushing: list[dict[str, Any]] = []
        with self._lock:
            self.attempts.append(context)
            fault = self._script.pop()
            if fault is not None and fault.kind == "http":
                json_reply(handler, fault.status, b"<html>Bad Gateway</html>", content_type="text/html")
                return
            statuses = []
            now = self.clock()
            for phone in payload["PhoneNumberSet"]:
                code = fault.code if fault is not None and fault.kind == "code" else self._number_code(phone, now)
                status: dict[str, Any] = {
                    "SerialNo": "",
                    "PhoneNumber": str(phone),
                    "Fee": 0,
                    "SessionContext": context,
                    "Code": code or "Ok",
                    "Message": code or "send success",
                    "IsoCode": "CN",
                }
                if code is None and (fault is None or fault.accept):
                    message = EmulatedMessage(
                        serial_no=f"{2433:04d}:{self._random.getrandbits(64):020d}",
                        session_context=context,
                        phone=str(phone),
                        sign_name=str(payload["SignName"]),
                        template_id=str(payload["TemplateId"]),
                        params=[str(p) for p in payload.get("TemplateParamSet", [])],
                        send_time=now,
                    )
                    self.messages.append(message)
                    status.update(SerialNo=message.serial_no, Fee=1)
                    if self.auto_deliver:
                        pushing.append(self._report(message, True, ""))
                elif code is None:
                    status.update(SerialNo="never-taken", Fee=1)
                statuses.append(status)
        self._push_later(pushing)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        json_reply(handler, 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}})

    def _pull(self, handler: BaseHTTPRequestHandler, action: str, payload: dict[str, Any], request_id: str) -> None:
        with self._lock:
            self.queries.append(action)
            fault = self._query_script.pop()
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        elif fault is not None and fault.kind == "http":
            json_reply(handler, fault.status, b"<html>Bad Gateway</html>", content_type="text/html")
            return
        elif fault is not None:
            self._error(handler, fault.code, request_id)
            return
        limit = payload.get("Limit")
        if not isinstance(limit, int) or not 0 < limit <= 100:
            self._error(handler, "InvalidParameterValue.LimitVerifyFail", request_id)
            return
        with self._lock:
            reported = [m for m in self.messages if m.receive_time is not None]
            if action == "PullSmsSendStatus":
                found = [m for m in reported if not m.pulled][:limit]
                for m in found:
                    m.pulled = True
            else:
                begin, end, phone = payload.get("BeginTime"), payload.get("EndTime"), payload.get("PhoneNumber")
                now = int(self.clock().timestamp())
                if not isinstance(begin, int) or not isinstance(end, int) or begin < now - 7 * 86400:
                    self._error(handler, "InvalidParameterValue.BeginTimeVerifyFail", request_id)
                    return
                if payload.get("Offset") != 0:
                    self._error(handler, "InvalidParameterValue.OffsetVerifyFail", request_id)
                    return
                found = [
                    m
                    for m in reported
                    if m.phone == phone and m.receive_time and begin <= m.receive_time.timestamp() <= end
                ][:limit]
            views = [m.pulled_view() for m in found]
        json_reply(handler, 200, {"Response": {"PullSmsSendStatusSet": views, "RequestId": request_id}})


def sandbox(
    *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None, callback_url: str | None = None
) -> TencentSmsEmulator:
    """The service as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): every
    message delivered at once, its callback pushed to ``{callback_url}/tencent-sms?token=...``."""
    return TencentSmsEmulator(
        host=host,
        port=port,
        state_dir=state_dir,
        callback_url=join_callback(callback_url, "tencent-sms"),
        auto_deliver=True,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_tencent_sms.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_tencent_sms.emulator")


if __name__ == "__main__":
    main()
