"""A local SMS gateway for tests, end-to-end runs and benchmarks: the protocol of :mod:`delivery_sdk_sms`
over a real socket (``ThreadingHTTPServer`` on ``127.0.0.1``, an ephemeral port, in a thread).

It checks every request as a gateway would (access key, timestamp window, unused nonce, signature,
``Idempotency-Key`` equal to ``out_id``), keeps messages by ``out_id`` (a second send of an ``out_id`` it has
answers with the first ``biz_id``: the idempotency the adapter relies on), and can be scripted::

    with SmsGatewayEmulator() as gateway:
        gateway.fail_next(Fault.http(503), Fault.rate_limited(retry_after="2"))
        gateway.fail_next(Fault.timeout(1.0))             # take the message, answer too late
        gateway.refuse_numbers.add("13800000000")         # isv.MOBILE_NUMBER_ILLEGAL
        channel = gateway.channel()                        # an SmsChannel pointed at it
        ...
        headers, body = gateway.deliver(dispatch_id)       # a signed delivery report (pushed to callback_url)

``transient_rate`` answers that share of sends with a 503 at random (seeded), for soak runs; ``latency``
delays every answer by that many seconds (a real gateway's round trip, for benchmarks). Every send the
gateway authenticated is in ``attempts`` (faulted ones included); ``messages`` holds what it accepted.
Nothing here logs a phone number.

As a local service (``delivery-sdk sandbox``, or ``python -m delivery_sdk_sms.emulator --port 18005 --state
DIR --callback-url http://127.0.0.1:8080/callbacks``): a fixed port, its messages and reports kept in
``DIR/state.json`` (a restart answers status queries for the messages it took before), every message
delivered at once with the report pushed to ``URL/sms``; ``GET /_sandbox/received`` lists what it received.
"""

from __future__ import annotations

import hmac
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from delivery_sdk.testing.emulator import (
    MessageFault,
    ScriptedEmulator,
    join_callback,
    json_reply,
    mask,
    read_body,
    serve_main,
    transient,
)

from . import (
    H_KEY_ID,
    H_NONCE,
    H_SIGNATURE,
    H_TIMESTAMP,
    QUERY_PATH,
    SEND_PATH,
    SmsChannel,
    callback_signature,
    sign_request,
)

__all__ = ["EmulatedSms", "Fault", "SmsGatewayEmulator", "sandbox"]


class Fault(MessageFault):
    """One scripted misbehaviour, applied to the next send (or status query) in order."""

    @classmethod
    def rate_limited(cls, retry_after: str = "1") -> Fault:
        """HTTP 429 with ``Retry-After`` (seconds or an HTTP date)."""
        return cls("http", status=429, retry_after=retry_after)

    @classmethod
    def refuse(cls, code: str = "isv.MOBILE_NUMBER_ILLEGAL") -> Fault:
        """HTTP 200 with a gateway code other than OK (a refusal for good, or a busy code)."""
        return cls("code", code=code)

    @classmethod
    def busy(cls, retry_after: str | None = None) -> Fault:
        """HTTP 200 with ``isv.BUSINESS_LIMIT_CONTROL`` (flow control)."""
        return cls("code", code="isv.BUSINESS_LIMIT_CONTROL", retry_after=retry_after)


@dataclass
class EmulatedSms:
    """A message the gateway accepted."""

    out_id: str
    biz_id: str
    phone_numbers: str
    sign_name: str
    template_code: str
    template_param: dict[str, str]
    received_at: datetime
    reports: list[dict[str, str]] = field(default_factory=list)

    def view(self) -> dict[str, str]:
        """The message as the status query shows it (its latest report)."""
        latest = self.reports[-1] if self.reports else {}
        return {
            "biz_id": self.biz_id,
            "out_id": self.out_id,
            "status": latest.get("status", "SENDING"),
            "err_code": latest.get("err_code", ""),
            "report_id": latest.get("report_id", ""),
            "report_time": latest.get("report_time", ""),
        }


class SmsGatewayEmulator(ScriptedEmulator[Fault]):
    """The gateway (see the module docstring). ``clock`` stamps reports (default: the system clock)."""

    def __init__(
        self,
        *,
        access_key_id: str = "emulator-key-id",
        access_key_secret: str = "emulator-key-secret",
        callback_secret: str = "emulator-callback-secret",
        callback_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        auto_deliver: bool = False,
        transient_rate: float = 0.0,
        seed: int = 0,
        window: float = 300.0,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
    ) -> None:
        super().__init__(name="sms-emulator", host=host, port=port, state_dir=state_dir)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.callback_secret = callback_secret
        self.callback_url = callback_url
        self.clock = clock or (lambda: datetime.now(UTC))
        self.auto_deliver = auto_deliver
        self.transient_rate = transient_rate
        self.window = window
        self.latency = latency
        self.refuse_numbers: set[str] = set()
        self.messages: dict[str, EmulatedSms] = {}
        self._nonces: set[str] = set()
        self._random = random.Random(seed)
        self._reports = 0

    # -- running ---------------------------------------------------------------------------------------

    def channel(self, **kwargs: Any) -> SmsChannel:
        """An :class:`SmsChannel` configured for this gateway (keyword arguments override)."""
        options: dict[str, Any] = {
            "access_key_id": self.access_key_id,
            "access_key_secret": self.access_key_secret,
            "callback_secret": self.callback_secret,
            "sign_name": "武汉中院",
            "template_code": "SMS_0001",
            "link_template": "https://ssfw.court.example/s/{token}",
        }
        options.update(kwargs)
        return SmsChannel(self.url, **options)

    # -- scripting and inspecting ----------------------------------------------------------------------

    def deliver(
        self, out_id: str, *, success: bool = True, err_code: str = "", push: bool = True
    ) -> tuple[dict[str, str], bytes]:
        """Record a delivery report for an accepted message; push it to ``callback_url`` when set (and
        ``push``). Returns the signed push (headers, body) so a test can hand it in itself."""
        with self._lock:
            report = self._report(self.messages[out_id], success, err_code)
        headers, body = self.signed_callback([report])
        if push and self.callback_url:
            self._push(headers, body)
        return headers, body

    def signed_callback(
        self, reports: Iterable[dict[str, str]], *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """A delivery-report push as the gateway signs it."""
        body = json.dumps(list(reports), ensure_ascii=False).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or f"n{self._random.getrandbits(64):016x}"
        headers = {
            H_TIMESTAMP: ts,
            H_NONCE: nonce,
            H_SIGNATURE: callback_signature(self.callback_secret, ts, nonce, body),
            "Content-Type": "application/json",
        }
        return headers, body

    # -- as a service ----------------------------------------------------------------------------------

    def describe_request(self, method: str, path: str, body: bytes) -> Mapping[str, Any]:
        """What :meth:`received` shows of a request besides its method, path and answer (no personal data in clear)."""
        if method == "POST" and body:
            payload = json.loads(body)
            return {
                "out_id": payload.get("out_id"),
                "to": mask(str(payload.get("phone_numbers", ""))),
                "template_code": payload.get("template_code"),
                "params": payload.get("template_param"),
            }
        return {"query": dict(parse_qsl(urlsplit(path).query)).get("out_id", "")}

    def dump_state(self) -> dict[str, Any]:
        """The emulator's durable state (JSON-able): the messages it holds."""
        with self._lock:
            return {
                "reports": self._reports,
                "messages": [
                    {**vars(m), "received_at": m.received_at.isoformat(), "reports": list(m.reports)}
                    for m in self.messages.values()
                ],
            }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`dump_state` returned."""
        with self._lock:
            self._reports = int(state.get("reports", 0))
            for raw in state.get("messages", []):
                message = EmulatedSms(**{**raw, "received_at": datetime.fromisoformat(raw["received_at"])})
                self.messages[message.out_id] = message

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {
            "DELIVERY_SDK_SMS_URL": self.url,
            "DELIVERY_SDK_SMS_ACCESS_KEY_ID": self.access_key_id,
            "DELIVERY_SDK_SMS_ACCESS_KEY_SECRET": self.access_key_secret,
            "DELIVERY_SDK_SMS_CALLBACK_SECRET": self.callback_secret,
            "DELIVERY_SDK_SMS_SIGN_NAME": "sandbox",
            "DELIVERY_SDK_SMS_TEMPLATE_CODE": "SMS_SANDBOX",
            "DELIVERY_SDK_SMS_LINK_TEMPLATE": "http://127.0.0.1/s/{token}",
        }

    # -- internals -------------------------------------------------------------------------------------

    def _report(self, message: EmulatedSms, success: bool, err_code: str) -> dict[str, str]:
        self._reports += 1
        report = {
            "biz_id": message.biz_id,
            "out_id": message.out_id,
            "status": "DELIVERED" if success else "FAILED",
            "err_code": "DELIVERED" if success else (err_code or "MK:0001"),
            "report_id": f"rpt-{self._reports:08d}",
            "report_time": self.clock().isoformat(),
        }
        message.reports.append(report)
        return report

    def _push(self, headers: dict[str, str], body: bytes) -> None:
        assert self.callback_url is not None
        self.push(self.callback_url, body, headers)

    def _authenticate(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> str | None:
        """None if the request is properly signed, else the gateway's error code."""
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        key_id = handler.headers.get(H_KEY_ID, "")
        timestamp = handler.headers.get(H_TIMESTAMP, "")
        nonce = handler.headers.get(H_NONCE, "")
        signature = handler.headers.get(H_SIGNATURE, "")
        if key_id != self.access_key_id:
            return "InvalidAccessKeyId.NotFound"
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.window:
            return "InvalidTimeStamp.Expired"
        expected = sign_request(self.access_key_secret, method, parts.path, query, key_id, timestamp, nonce, body)
        if not hmac.compare_digest(expected, signature):
            return "SignatureDoesNotMatch"
        with self._lock:
            if not nonce or nonce in self._nonces:
                return "SignatureNonceUsed"
            self._nonces.add(nonce)
        return None

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request of the emulated provider's API (runs in a server thread)."""
        body = read_body(handler)
        path = urlsplit(handler.path).path
        if (method, path) not in (("POST", SEND_PATH), ("GET", QUERY_PATH)):
            json_reply(handler, 404, {"code": "NotFound"})
            return
        if self.latency:
            time.sleep(self.latency)  # a real gateway's network and processing time
        refused = self._authenticate(handler, method, body)
        if refused is not None:
            with self._lock:
                self.rejected.append(refused)
            json_reply(handler, 401, {"code": refused})
            return
        if method == "GET":
            self._query(handler)
        else:
            self._send(handler, body)

    def _query(self, handler: BaseHTTPRequestHandler) -> None:
        out_id = dict(parse_qsl(urlsplit(handler.path).query)).get("out_id", "")
        with self._lock:
            self.queries.append(out_id)
            fault = self._query_script.pop()
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        elif fault is not None:
            json_reply(handler, fault.status, {"code": "Fault"}, retry_after=fault.retry_after)
            return
        with self._lock:
            message = self.messages.get(out_id)
            messages = [message.view()] if message is not None else []
        json_reply(handler, 200, {"code": "OK", "messages": messages})

    def _send(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            payload = json.loads(body)
            out_id = payload["out_id"]
            phone = payload["phone_numbers"]
            params = payload["template_param"]
            if not all(isinstance(v, str) and v for v in (out_id, phone, payload["sign_name"])):
                raise ValueError("empty field")
            if not isinstance(params, dict):
                raise ValueError("template_param is not an object")
        except (ValueError, KeyError, TypeError):
            json_reply(handler, 400, {"code": "InvalidParameters"})
            return
        if handler.headers.get("Idempotency-Key") != out_id:
            json_reply(handler, 400, {"code": "IdempotencyKeyMismatch"})
            return
        pushing: tuple[dict[str, str], bytes] | None = None
        with self._lock:
            self.attempts.append(out_id)
            fault = self._script.pop()
            if fault is None and transient(self._random, self.transient_rate):
                fault = Fault.http(503)
            if fault is not None and fault.kind == "http":
                answer: tuple[int, dict[str, Any], str | None] = (fault.status, {"code": "Fault"}, fault.retry_after)
            elif fault is not None and fault.kind == "code":
                answer = (200, {"code": fault.code, "message": "scripted"}, fault.retry_after)
            elif phone in self.refuse_numbers:
                answer = (200, {"code": "isv.MOBILE_NUMBER_ILLEGAL", "message": "invalid number"}, None)
            elif fault is not None and not fault.accept:
                answer = (200, {"code": "OK", "biz_id": "never-taken"}, None)
            else:
                message = self.messages.get(out_id)
                if message is None:
                    message = self.messages[out_id] = EmulatedSms(
                        out_id=out_id,
                        biz_id=f"{len(self.messages) + 1:09d}^{self._random.getrandbits(32):08x}",
                        phone_numbers=phone,
                        sign_name=payload["sign_name"],
                        template_code=str(payload.get("template_code", "")),
                        template_param={str(k): str(v) for k, v in params.items()},
                        received_at=self.clock(),
                    )
                    if self.auto_deliver:
                        report = self._report(message, True, "")
                        if self.callback_url:
                            pushing = self.signed_callback([report])
                answer = (
                    200,
                    {"code": "OK", "biz_id": message.biz_id, "request_id": f"req-{len(self.attempts)}"},
                    None,
                )
        if pushing is not None:
            self.push_later(self._push, *pushing)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        json_reply(handler, answer[0], answer[1], retry_after=answer[2])


def sandbox(
    *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None, callback_url: str | None = None
) -> SmsGatewayEmulator:
    """The gateway as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): every
    message delivered at once, its report pushed to ``{callback_url}/sms``."""
    return SmsGatewayEmulator(
        host=host, port=port, state_dir=state_dir, callback_url=join_callback(callback_url, "sms"), auto_deliver=True
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_sms.emulator [--port N] [--state DIR] [--callback-url URL] [--latency S]
    [--auto-deliver]``: serve on 127.0.0.1, print the URL on the first line of stdout (then the
    ``DELIVERY_SDK_SMS_*`` variables), stop on SIGTERM/SIGINT or when a piped stdin closes (benchmarks)."""
    import argparse

    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
        parser.add_argument("--auto-deliver", action="store_true", help="record a delivery report for every message")

    def build(args: argparse.Namespace) -> SmsGatewayEmulator:
        return SmsGatewayEmulator(
            host=args.host,
            port=args.port,
            state_dir=args.state,
            callback_url=join_callback(args.callback_url, "sms"),
            latency=args.latency,
            auto_deliver=args.auto_deliver or bool(args.callback_url),
        )

    serve_main(build, argv, prog="python -m delivery_sdk_sms.emulator", add_arguments=options)


if __name__ == "__main__":
    main()
