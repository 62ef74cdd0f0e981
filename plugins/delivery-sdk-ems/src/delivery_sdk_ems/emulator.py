"""A local court-express-post (EMS) server speaking the plugin's protocol, for tests and demos.

:class:`EmsEmulator` runs a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (an ephemeral port) and answers
``POST /v1/orders``, ``GET /v1/orders/{order_no}`` and ``GET /v1/waybills/{waybill}/traces`` exactly as the
module docstring of :mod:`delivery_sdk_ems` describes; :meth:`EmsEmulator.push` posts signed traces to a
callback URL the way the carrier does.

What happens to an item is scripted with :class:`Plan` (``enqueue`` per order, or a ``default``), in times
relative to the order; the emulator shows a trace once ``now()`` has reached it, so a test can drive it with
the same virtual clock as the engine. Faults are scripted per request with :meth:`EmsEmulator.fail`: an HTTP
status (with headers, say ``Retry-After``) or a delay longer than the client's timeout. Every request is
checked against the protocol (token, idempotency key, body schema); violations answer 400 and are kept in
``errors``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import unquote

import attrs

from delivery_sdk.plugin_kit import hmac_sha256_hex
from delivery_sdk.testing.emulator import (
    Answer,
    BearerApiEmulator,
    BearerApiOptions,
    PathFault,
    join_callback,
    serve_sandbox_main,
)

__all__ = ["EmsEmulator", "Fault", "Plan", "main", "sandbox", "sign_push"]


@attrs.frozen(kw_only=True)
class Plan:
    """What becomes of one item: accepted ``accept_after`` the order, then ``op`` (SIGNED or RETURNED)
    ``after`` the order, with a signer type or return reason; ``op=None``: stays in transit."""

    op: str | None
    after: timedelta = timedelta(days=2)
    accept_after: timedelta = timedelta(hours=12)
    signer_type: str = "SELF"
    return_reason: str = "ADDRESS_UNKNOWN"
    attempts: int = 0  # failed delivery attempts shown before a return

    @classmethod
    def signed(cls, signer_type: str = "SELF", after: timedelta = timedelta(days=2)) -> Plan:
        """A plan: the item is signed for ``after`` the order (by ``signer_type``)."""
        return cls(op="SIGNED", signer_type=signer_type, after=after)

    @classmethod
    def returned(cls, reason: str = "ADDRESS_UNKNOWN", after: timedelta = timedelta(days=3), attempts: int = 3) -> Plan:
        """A plan: the item goes back to the sender ``after`` the order, after ``attempts`` failed deliveries."""
        return cls(op="RETURNED", return_reason=reason, after=after, attempts=attempts)

    @classmethod
    def in_transit(cls) -> Plan:
        """A plan: the item stays in transit."""
        return cls(op=None)


Fault = PathFault  # a scripted answer for the next request to a path (see delivery_sdk.testing.emulator)


@attrs.define
class _Order:
    order_no: str
    waybill: str
    body: dict[str, Any]
    created_at: datetime
    plan: Plan


def sign_push(secret: str | bytes, body: bytes, *, timestamp: int, nonce: str) -> dict[str, str]:
    """The headers the carrier signs a push with."""
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json",
        "X-Ems-Timestamp": stamp,
        "X-Ems-Nonce": nonce,
        "X-Ems-Signature": hmac_sha256_hex(secret, stamp, nonce, body),
    }


_ORDER_KEYS = {"order_no", "product", "return_receipt", "reference", "sender", "receiver"}


class EmsEmulator(BearerApiEmulator):
    """The carrier on 127.0.0.1 (see the module docstring). Use as a context manager; ``url`` is its base."""

    default_token = "ems-token"
    default_callback_secret = "ems-callback-secret"

    def __init__(self, *, default: Plan | None = None, **options: Unpack[BearerApiOptions]) -> None:
        self.default = default
        self.plans: list[Plan] = []
        self.orders: dict[str, _Order] = {}
        self.order_calls = 0
        super().__init__(name="ems-emulator", **options)  # callback_url: every order no is pushed there

    # -- scripting -------------------------------------------------------------------------------------

    def enqueue(self, *plans: Plan) -> None:
        """Plans for the next orders, in order (then ``default``)."""
        with self._lock:
            self.plans.extend(plans)

    def waybill_of(self, order_no: str) -> str:
        """The waybill number of an order."""
        return self.orders[order_no].waybill

    # -- the protocol ----------------------------------------------------------------------------------

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {
            "DELIVERY_SDK_EMS_URL": self.url,
            "DELIVERY_SDK_EMS_TOKEN": self.token,
            "DELIVERY_SDK_EMS_CALLBACK_SECRET": self.callback_secret,
            "DELIVERY_SDK_EMS_SENDER_ADDRESS": "湖北省武汉市江岸区沿江大道1号",
            "DELIVERY_SDK_EMS_SENDER_PHONE": "027-00000000",
        }

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        """The carrier's answer to an authorised request, or None for a path it does not have."""
        if method == "POST" and path == "/v1/orders":
            return self._order(headers, raw)
        if method == "GET" and path.startswith("/v1/orders/"):
            return self._order_status(unquote(path.removeprefix("/v1/orders/")))
        if method == "GET" and path.startswith("/v1/waybills/") and path.endswith("/traces"):
            return self._traces(unquote(path.removeprefix("/v1/waybills/").removesuffix("/traces")))
        return None

    def _order(self, h: dict[str, str], raw: bytes) -> tuple[int, bytes, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reject("order body is not JSON")
        if not isinstance(body, dict) or set(body) != _ORDER_KEYS:
            return self._reject("order keys")
        order_no = body["order_no"]
        if h.get("idempotency-key") != order_no:
            return self._reject("idempotency-key")
        receiver = body["receiver"]
        if set(receiver) != {"name", "mobile", "address", "division_code"} or not receiver["address"]:
            return self._reject("receiver")
        if set(body["sender"]) != {"name", "address", "phone"}:
            return self._reject("sender")
        with self._lock:
            self.order_calls += 1
            known = self.orders.get(order_no)
            if known is not None:
                if known.body != body:
                    return 409, b'{"error": "ORDER_CONFLICT"}', ()
                return 200, json.dumps({"order_no": order_no, "waybill_no": known.waybill}).encode(), ()
            if receiver.get("mobile") is None:
                return 422, b'{"error": "RECEIVER_PHONE_REQUIRED"}', ()
            digest = int.from_bytes(hashlib.sha256(order_no.encode()).digest()[:6], "big")
            waybill = f"11{digest % 10**11:011d}"
            plan = self.plans.pop(0) if self.plans else self.default
            if plan is None:
                self.errors.append(f"unscripted order {order_no}")
                plan = Plan.in_transit()
            self.orders[order_no] = _Order(
                order_no=order_no, waybill=waybill, body=body, created_at=self.now(), plan=plan
            )
        if self.callback_url:
            self.push_later(self.push, self.callback_url, order_no)
        return 200, json.dumps({"order_no": order_no, "waybill_no": waybill}).encode(), ()

    def _order_status(self, order_no: str) -> tuple[int, bytes, Any]:
        with self._lock:
            order = self.orders.get(order_no)
        if order is None:
            return 404, b'{"error": "NOT_FOUND"}', ()
        return 200, json.dumps({"order_no": order_no, "waybill_no": order.waybill}).encode(), ()

    def _by_waybill(self, waybill: str) -> _Order | None:
        with self._lock:
            return next((o for o in self.orders.values() if o.waybill == waybill), None)

    def traces(self, order: _Order, now: datetime | None = None) -> list[dict[str, Any]]:
        """The traces of an order visible at ``now``."""
        now = now or self.now()
        plan, start, wb = order.plan, order.created_at, order.waybill
        all_: list[tuple[datetime, dict[str, Any]]] = [
            (start + plan.accept_after, {"trace_id": f"{wb}-acc", "op_code": "ACCEPT"}),
            (start + plan.accept_after + timedelta(hours=6), {"trace_id": f"{wb}-trn", "op_code": "TRANSIT"}),
        ]
        if plan.op == "SIGNED":
            all_.append(
                (start + plan.after, {"trace_id": f"{wb}-sig", "op_code": "SIGNED", "signer_type": plan.signer_type})
            )
        elif plan.op == "RETURNED":
            for i in range(plan.attempts):
                moment = start + plan.accept_after + timedelta(days=1 + i)
                all_.append((moment, {"trace_id": f"{wb}-att{i + 1}", "op_code": "ATTEMPT_FAILED"}))
            all_.append(
                (
                    start + plan.after,
                    {"trace_id": f"{wb}-ret", "op_code": "RETURNED", "return_reason": plan.return_reason},
                )
            )
        return [dict(t, op_time=moment.isoformat()) for moment, t in sorted(all_, key=lambda x: x[0]) if moment <= now]

    def _traces(self, waybill: str) -> tuple[int, bytes, Any]:
        order = self._by_waybill(waybill)
        if order is None:
            return 404, b'{"error": "NOT_FOUND"}', ()
        body = {"waybill_no": waybill, "order_no": order.order_no, "traces": self.traces(order)}
        return 200, json.dumps(body, ensure_ascii=False).encode(), ()

    # -- pushes ----------------------------------------------------------------------------------------

    def push_request(self, order_no: str, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """The signed push of an order's visible traces: ``(headers, body)``."""
        with self._lock:
            order = self.orders[order_no]
            self._nonce += 1
            nonce = f"n-{self._nonce}-{order.waybill}"
        body = json.dumps(
            {"waybill_no": order.waybill, "order_no": order_no, "traces": self.traces(order)}, ensure_ascii=False
        ).encode()
        stamp = int(self.now().timestamp()) if timestamp is None else timestamp
        return sign_push(self.callback_secret, body, timestamp=stamp, nonce=nonce), body


def sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | Path | None = None,
    callback_url: str | None = None,
    time_scale: float = 1.0,
) -> EmsEmulator:
    """The emulator as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): what it
    takes is pushed to ``{callback_url}/ems`` (signed) as soon as it is created; every item is signed for a
    minute after its order (accepted after 12 hours), both ``time_scale`` times sooner (``--time-scale``)."""
    return EmsEmulator(
        host=host,
        port=port,
        state_dir=state_dir,
        callback_url=join_callback(callback_url, "ems"),
        default=Plan(
            op="SIGNED", after=timedelta(minutes=1) / time_scale, accept_after=timedelta(hours=12) / time_scale
        ),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_ems.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_ems.emulator")


if __name__ == "__main__":
    main()
