"""A local Alibaba Cloud SMS (dysmsapi 2017-05-25) for tests, end-to-end runs and the sandbox: the RPC API
over a real socket (``ThreadingHTTPServer`` on ``127.0.0.1``, an ephemeral port, in a thread).

It checks what the real service checks, in its order and with its codes:

- the signature V3 exactly as documented (:mod:`.signing`): an ``ACS3-HMAC-SHA256`` ``Authorization`` whose
  ``Credential`` is a known AccessKey id (``InvalidAccessKeyId.NotFound``), ``SignedHeaders`` covering
  ``host`` and every ``x-acs-*`` header sent (``IncompleteSignature``), ``x-acs-content-sha256`` equal to the
  body's SHA-256 and the signature recomputed over the request as received (``SignatureDoesNotMatch``),
  ``x-acs-date`` in ``yyyy-MM-ddTHH:mm:ssZ`` within 15 minutes (``InvalidTimeStamp.Expired``), and a nonce
  never seen before (``SignatureNonceUsed``);
- the API's rate limit (``qps`` calls a second: ``Throttling.User``) and the per-number flow control
  (``per_number``: 1 a minute, 5 an hour, 10 a day by default: ``isv.BUSINESS_LIMIT_CONTROL``);
- the registered sign names and templates (``isv.SMS_SIGNATURE_ILLEGAL``, ``isv.SMS_TEMPLATE_ILLEGAL``,
  ``isv.TEMPLATE_MISSING_PARAMETERS``) and the number's format (``isv.MOBILE_NUMBER_ILLEGAL``).

Like the real service it is **not idempotent**: a second ``SendSms`` with the same ``OutId`` is a second
message (``attempts_for`` / ``messages_for`` show it). ``QuerySendDetails`` answers by number and send
date (Beijing); ``deliver(out_id)`` records the carrier's report and pushes the ``SmsReport`` array to
``callback_url?token=<callback_token>``; ``auto_deliver`` does so for every message. Script faults with
``fail_next(Fault.http(503), Fault.refuse("isv.BUSINESS_LIMIT_CONTROL"), Fault.timeout(1.0))``. Nothing here
logs a phone number.

As a service (``delivery-sdk sandbox``, or ``python -m delivery_sdk_aliyun_sms.emulator --port N --state DIR
--callback-url http://127.0.0.1:8080/callbacks``): every message delivered at once, its report pushed to
``URL/aliyun-sms?token=...``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import parse_qsl

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

from . import API_VERSION, BEIJING, AliyunSmsChannel, signing

__all__ = ["AliyunSmsEmulator", "EmulatedMessage", "Fault", "sandbox"]

_MOBILE = re.compile(r"^(?:\+86|0086|86)?1[3-9][0-9]{9}$")
_DATE = "%Y-%m-%dT%H:%M:%SZ"
WINDOW = 15 * 60  # x-acs-date: "within 15 minutes of the request"


class Fault(MessageFault):
    """One scripted misbehaviour, applied to the next SendSms (or QuerySendDetails) in order: ``Fault.http(503)``
    (``ServiceUnavailable``), ``Fault.refuse("isv.BUSINESS_LIMIT_CONTROL")``, ``Fault.timeout(1.0)``."""


@dataclass
class EmulatedMessage:
    """A message the service took (one per SendSms call, even for an OutId it has already seen)."""

    biz_id: str
    out_id: str
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    send_time: datetime
    status: int = 1  # 1 waiting for the report, 2 failed, 3 delivered
    err_code: str = ""
    receive_time: datetime | None = None

    def detail(self) -> dict[str, Any]:
        """As QuerySendDetails shows it."""
        return {
            "PhoneNum": self.phone,
            "SendStatus": self.status,
            "ErrCode": self.err_code,
            "TemplateCode": self.template_code,
            "Content": "",
            "SendDate": _beijing(self.send_time),
            "ReceiveDate": _beijing(self.receive_time) if self.receive_time else "",
            "OutId": self.out_id,
        }


def _beijing(when: datetime) -> str:
    return when.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _error(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"Code": code, "Message": message, "RequestId": request_id}


class AliyunSmsEmulator(CloudSmsEmulator[Fault, EmulatedMessage]):
    """The service (see the module docstring). ``clock`` stamps messages and reports and drives the flow
    control (default: the system clock); signatures are checked against the system clock."""

    message_type = EmulatedMessage
    message_key = "out_id"

    default_qps = 5000

    def __init__(
        self,
        *,
        access_key_id: str = "LTAI-emulator-key",
        access_key_secret: str = "emulator-key-secret",
        templates: Mapping[str, set[str]] | None = None,
        per_number: Mapping[timedelta, int] | None = None,
        **options: Unpack[CloudSmsEmulatorOptions],
    ) -> None:
        super().__init__(name="aliyun-sms-emulator", **options)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.templates = {k: set(v) for k, v in (templates or {"SMS_0001": {"court", "case_no", "url"}}).items()}
        self.per_number = dict(
            per_number
            if per_number is not None
            else {timedelta(minutes=1): 1, timedelta(hours=1): 5, timedelta(days=1): 10}
        )
        # attempts: the OutId of every authenticated SendSms; queries: the SendDate of every
        # authenticated QuerySendDetails; rejected: the code of every refused request
        self._nonces: set[str] = set()

    # -- running ---------------------------------------------------------------------------------------

    def channel(self, **kwargs: Any) -> AliyunSmsChannel:
        """An :class:`AliyunSmsChannel` configured for this service (keyword arguments override)."""
        options: dict[str, Any] = {
            "access_key_id": self.access_key_id,
            "access_key_secret": self.access_key_secret,
            "callback_token": self.callback_token,
            "sign_name": "武汉中院",
            "template_code": "SMS_0001",
            "link_template": "https://ssfw.court.example/s/{token}",
            "clock": self.clock,
        }
        options.update(kwargs)
        return AliyunSmsChannel(self.url, **options)

    # -- scripting and inspecting ----------------------------------------------------------------------

    def deliver(
        self, out_id: str, *, success: bool = True, err_code: str = "", push: bool = True
    ) -> tuple[dict[str, str], bytes]:
        """Record the carrier's report for the latest message under ``out_id``; push the ``SmsReport`` to
        ``callback_url`` when set (and ``push``). Returns the push's query and body."""
        return self._deliver(out_id, success, err_code, push)

    # -- as a service ----------------------------------------------------------------------------------

    def describe_request(self, method: str, path: str, body: bytes) -> Mapping[str, Any]:
        """What :meth:`received` shows of a request besides its method, path and answer (no personal data in clear)."""
        params = dict(parse_qsl(body.decode("ascii", "replace")))
        phone = params.get("PhoneNumbers") or params.get("PhoneNumber") or ""
        return {"out_id": params.get("OutId"), "to": mask(phone), "template_code": params.get("TemplateCode")}

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {
            "DELIVERY_SDK_ALIYUN_SMS_URL": self.url,
            "DELIVERY_SDK_ALIYUN_SMS_ACCESS_KEY_ID": self.access_key_id,
            "DELIVERY_SDK_ALIYUN_SMS_ACCESS_KEY_SECRET": self.access_key_secret,
            "DELIVERY_SDK_ALIYUN_SMS_CALLBACK_TOKEN": self.callback_token,
            "DELIVERY_SDK_ALIYUN_SMS_SIGN_NAME": sorted(self.sign_names)[0],
            "DELIVERY_SDK_ALIYUN_SMS_TEMPLATE_CODE": sorted(self.templates)[0],
            "DELIVERY_SDK_ALIYUN_SMS_LINK_TEMPLATE": "http://127.0.0.1/s/{token}",
        }

    # -- internals -------------------------------------------------------------------------------------

    def _report(self, message: EmulatedMessage, success: bool, err_code: str) -> dict[str, Any]:
        message.status = 3 if success else 2
        message.err_code = "DELIVERED" if success else (err_code or "MK:0001")
        message.receive_time = self.clock()
        return {
            "phone_number": message.phone,
            "send_time": _beijing(message.send_time),
            "report_time": _beijing(message.receive_time),
            "success": success,
            "err_code": message.err_code,
            "err_msg": "用户接收成功" if success else "用户接收失败",
            "sms_size": "1",
            "biz_id": message.biz_id,
            "out_id": message.out_id,
        }

    def _authenticate(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, str] | None:
        """None when the request is signed as documented, else (HTTP status, error code)."""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        fields = signing.parse_authorization(headers.get("authorization", ""))
        if fields is None:
            return 400, "IncompleteSignature"
        if fields["Credential"] != self.access_key_id:
            return 404, "InvalidAccessKeyId.NotFound"
        signed = fields["SignedHeaders"].split(";")
        must = {"host"} | {h for h in headers if h.startswith("x-acs-")}
        if not must <= set(signed) or "x-acs-signature-nonce" not in signed or "x-acs-date" not in signed:
            return 400, "IncompleteSignature"
        try:
            at = datetime.strptime(headers.get("x-acs-date", ""), _DATE).replace(tzinfo=UTC)
        except ValueError:
            return 400, "InvalidTimeStamp.Format"
        if abs(time.time() - at.timestamp()) > WINDOW:
            return 400, "InvalidTimeStamp.Expired"
        if headers.get("x-acs-content-sha256") != signing.sha256_hex(body):
            return 400, "SignatureDoesNotMatch"
        taking_part = {name: headers.get(name, "") for name in signed}
        path, _, query = handler.path.partition("?")
        canonical = signing.canonical_request(handler.command, path, dict(parse_qsl(query)), taking_part, body)
        if signing.sign(self.access_key_secret, canonical) != fields["Signature"]:
            return 400, "SignatureDoesNotMatch"
        with self._lock:
            nonce = headers.get("x-acs-signature-nonce", "")
            if not nonce or nonce in self._nonces:
                return 400, "SignatureNonceUsed"
            self._nonces.add(nonce)
            if self._throttled():
                return 400, "Throttling.User"
        if headers.get("x-acs-version") != API_VERSION:
            return 400, "InvalidVersion"
        return None

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request of the emulated provider's API (runs in a server thread)."""
        body = read_body(handler)
        request_id = f"EMU-{self._next_request():08d}"
        if method != "POST" or handler.path.split("?", 1)[0] != "/":
            json_reply(handler, 404, _error("InvalidAction.NotFound", "RPC calls are POST /", request_id))
            return
        refused = self._authenticate(handler, body)
        if refused is not None:
            with self._lock:
                self.rejected.append(refused[1])
            json_reply(handler, refused[0], _error(refused[1], "refused", request_id))
            return
        # RPC parameters: the query's and the form body's (the signature covers both)
        params = dict(parse_qsl(handler.path.partition("?")[2], keep_blank_values=True))
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = handler.headers.get("x-acs-action", "")
        if action == "SendSms":
            self._send_sms(handler, params, request_id)
        elif action == "SendBatchSms":
            self._send_batch(handler, params, request_id)
        elif action == "QuerySendDetails":
            self._query(handler, params, request_id)
        else:
            json_reply(handler, 404, _error("InvalidAction.NotFound", "no such action", request_id))

    def _check_message(self, phone: str, sign_name: str, template: str, raw_params: str) -> str | dict[str, str]:
        """The error code a message earns, or its template parameters."""
        if not _MOBILE.match(phone) or phone in self.illegal_numbers:
            return "isv.MOBILE_NUMBER_ILLEGAL"
        if sign_name not in self.sign_names:
            return "isv.SMS_SIGNATURE_ILLEGAL"
        if template not in self.templates:
            return "isv.SMS_TEMPLATE_ILLEGAL"
        try:
            params = json.loads(raw_params) if raw_params else {}
        except ValueError:
            return "isv.INVALID_JSON_PARAM"
        if not isinstance(params, dict):
            return "isv.INVALID_JSON_PARAM"
        if not self.templates[template] <= set(params):
            return "isv.TEMPLATE_MISSING_PARAMETERS"
        return {str(k): str(v) for k, v in params.items()}

    def _flow_controlled(self, phone: str, now: datetime) -> bool:
        sent = [m.send_time for m in self.messages if m.phone == phone]
        return any(sum(1 for t in sent if now - t < span) >= limit for span, limit in self.per_number.items())

    def _take(self, phone: str, sign_name: str, template: str, params: dict[str, str], out_id: str) -> EmulatedMessage:
        message = EmulatedMessage(
            biz_id=f"{len(self.messages) + 1:06d}{self._random.getrandbits(32):010d}^0",
            out_id=out_id,
            phone=phone,
            sign_name=sign_name,
            template_code=template,
            params=params,
            send_time=self.clock(),
        )
        self.messages.append(message)
        return message

    def _send_sms(self, handler: BaseHTTPRequestHandler, params: dict[str, str], request_id: str) -> None:
        phones = [p for p in params.get("PhoneNumbers", "").split(",") if p]
        out_id = params.get("OutId", "")
        pushing: list[dict[str, Any]] = []
        with self._lock:
            self.attempts.append(out_id)
            fault = self._script.pop()
            if fault is not None and fault.kind == "http":
                code = "ServiceUnavailable" if fault.status >= 500 else "Throttling.User"
                answer: tuple[int, dict[str, Any], str | None] = (
                    fault.status,
                    _error(code, "scripted", request_id),
                    fault.retry_after,
                )
            elif fault is not None and fault.kind == "code":
                answer = (200, _error(fault.code, "scripted", request_id), fault.retry_after)
            elif not phones or len(phones) > 1000:
                answer = (200, _error("isv.MOBILE_NUMBER_ILLEGAL", "no number", request_id), None)
            elif fault is not None and not fault.accept:
                answer = (200, {"Code": "OK", "Message": "OK", "BizId": "never-taken", "RequestId": request_id}, None)
            else:
                answer = self._take_all(phones, params, out_id, request_id, pushing)
        self._push_later(pushing)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        json_reply(handler, answer[0], answer[1], retry_after=answer[2])

    def _take_all(
        self, phones: list[str], params: dict[str, str], out_id: str, request_id: str, pushing: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any], str | None]:
        now = self.clock()
        checked = []
        for phone in phones:
            result = self._check_message(
                phone, params.get("SignName", ""), params.get("TemplateCode", ""), params.get("TemplateParam", "")
            )
            if isinstance(result, str):
                return 200, _error(result, "refused", request_id), None
            if self._flow_controlled(phone, now):
                return 200, _error("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控", request_id), None
            checked.append((phone, result))
        first = None
        for phone, template_params in checked:
            message = self._take(phone, params["SignName"], params["TemplateCode"], template_params, out_id)
            first = first or message
            if self.auto_deliver:
                pushing.append(self._report(message, True, ""))
        assert first is not None
        return 200, {"Code": "OK", "Message": "OK", "BizId": first.biz_id, "RequestId": request_id}, None

    def _send_batch(self, handler: BaseHTTPRequestHandler, params: dict[str, str], request_id: str) -> None:
        try:
            phones = json.loads(params.get("PhoneNumberJson", "[]"))
            signs = json.loads(params.get("SignNameJson", "[]"))
            values = json.loads(params.get("TemplateParamJson", "[]"))
        except ValueError:
            json_reply(handler, 200, _error("isv.INVALID_JSON_PARAM", "bad JSON", request_id))
            return
        if not (isinstance(phones, list) and isinstance(signs, list) and isinstance(values, list)):
            json_reply(handler, 200, _error("isv.INVALID_JSON_PARAM", "bad JSON", request_id))
            return
        if not 0 < len(phones) <= 100 or not len(phones) == len(signs) == len(values):
            json_reply(handler, 200, _error("isv.INVALID_PARAMETERS", "counts differ", request_id))
            return
        template, out_id, now = params.get("TemplateCode", ""), params.get("OutId", ""), self.clock()
        pushing: list[dict[str, Any]] = []
        with self._lock:
            checked = []
            for phone, sign, value in zip(phones, signs, values, strict=True):
                result = self._check_message(str(phone), str(sign), template, json.dumps(value))
                if isinstance(result, str) or self._flow_controlled(str(phone), now):
                    code = result if isinstance(result, str) else "isv.BUSINESS_LIMIT_CONTROL"
                    json_reply(handler, 200, _error(code, "refused", request_id))
                    return
                checked.append((str(phone), str(sign), result))
            first = None
            for phone, sign, template_params in checked:
                self.attempts.append(out_id)
                message = self._take(phone, sign, template, template_params, out_id)
                first = first or message
                if self.auto_deliver:
                    pushing.append(self._report(message, True, ""))
        self._push_later(pushing)
        assert first is not None
        json_reply(handler, 200, {"Code": "OK", "Message": "OK", "BizId": first.biz_id, "RequestId": request_id})

    def _query(self, handler: BaseHTTPRequestHandler, params: dict[str, str], request_id: str) -> None:
        phone, send_date = params.get("PhoneNumber", ""), params.get("SendDate", "")
        with self._lock:
            self.queries.append(send_date)
            fault = self._query_script.pop()
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        elif fault is not None:
            json_reply(
                handler,
                fault.status,
                _error("ServiceUnavailable", "scripted", request_id),
                retry_after=fault.retry_after,
            )
            return
        try:
            day = datetime.strptime(send_date, "%Y%m%d").date()
            size, page = int(params.get("PageSize", "10")), int(params.get("CurrentPage", "1"))
        except ValueError:
            json_reply(handler, 200, _error("isv.INVALID_PARAMETERS", "SendDate is yyyyMMdd", request_id))
            return
        today = self.clock().astimezone(BEIJING).date()
        if not phone or not 1 <= size <= 50 or page < 1 or not timedelta(0) <= today - day <= timedelta(days=30):
            json_reply(handler, 200, _error("isv.INVALID_PARAMETERS", "PhoneNumber, SendDate, PageSize", request_id))
            return
        with self._lock:
            found = [
                m.detail() for m in self.messages if m.phone == phone and m.send_time.astimezone(BEIJING).date() == day
            ]
        json_reply(
            handler,
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": request_id,
                "TotalCount": len(found),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": found[(page - 1) * size : page * size]},
            },
        )


def sandbox(
    *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None, callback_url: str | None = None
) -> AliyunSmsEmulator:
    """The service as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): every
    message delivered at once, its SmsReport pushed to ``{callback_url}/aliyun-sms?token=...``."""
    return AliyunSmsEmulator(
        host=host,
        port=port,
        state_dir=state_dir,
        callback_url=join_callback(callback_url, "aliyun-sms"),
        auto_deliver=True,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_aliyun_sms.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_aliyun_sms.emulator")


if __name__ == "__main__":
    main()
