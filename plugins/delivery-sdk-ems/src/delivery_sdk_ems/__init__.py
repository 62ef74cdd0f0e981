"""Court express post (法院专递, EMS) as a delivery-sdk carrier plugin.

:class:`EmsCarrier` is a channel adapter of kind :attr:`~delivery_sdk.ChannelKind.POST`. It does three things:

- **electronic waybills** (``send``): the engine orders each print job's waybill here before the job goes
  to the print centre (``orders_waybills = True``), so the centre prints the label and nobody writes a slip.
  Every waybill needs the receiver's mobile number (``requires = {"receiver_phone"}``): the client warns at
  submit about a party without one, and the engine orders no waybill until the task has one (found by
  assisted person search, or added by a clerk with ``set_contact``).
  The order is idempotent on the dispatch id (``order_no`` and the ``Idempotency-Key`` header): a job sent
  again after a crash or a timeout gets the same waybill number back;
- **tracking by polling** (``status``): once the centre reports the item mailed, the engine polls the
  waybill's traces;
- **tracking by push** (``verify_callback`` + ``parse_callback``): the carrier posts the same traces to the
  court's callback receiver, signed with HMAC-SHA256.

Wire protocol (JSON, UTF-8; every request carries ``Authorization: Bearer <token>`` and, when configured,
``X-Ems-Partner: <partner id>``)::

    POST {base_url}/v1/orders                       Idempotency-Key: <dispatch id>
      {"order_no": "T000001.4", "product": "court_express", "return_receipt": true,
       "reference": {"task_id": "T000001", "case_number": "(2026)鄂0106民初1号", "documents": 2},
       "sender": {"name": "<court>", "address": "<court's return address>", "phone": "<court's phone>"},
       "receiver": {"name": "...", "mobile": "...", "address": "...", "division_code": "420106"}}
      200 {"order_no": "T000001.4", "waybill_no": "1151234567890"}      (the same for a repeated order)
      4xx {"error": "ADDRESS_UNSERVICEABLE"}                            the order is refused for good

    GET {base_url}/v1/orders/{order_no}            200 {"order_no": ..., "waybill_no": ...} | 404
    GET {base_url}/v1/waybills/{waybill_no}/traces
      200 {"waybill_no": ..., "order_no": ..., "traces": [TRACE, ...]} | 404

    TRACE = {"trace_id": "t-1", "op_code": "SIGNED", "op_time": "2026-11-05T10:20:00+08:00",
             "signer_type": "FAMILY"}                                   (signer_type for SIGNED only)
          | {"trace_id": "t-2", "op_code": "RETURNED", "op_time": ..., "return_reason": "REFUSED"}

    callback: POST <the court's receiver>, body {"waybill_no": ..., "order_no": ..., "traces": [TRACE, ...]}
      X-Ems-Timestamp: <Unix seconds>   X-Ems-Nonce: <unique per push>
      X-Ems-Signature: hex(HMAC-SHA256(callback_secret, timestamp + "\\n" + nonce + "\\n" + body))

Traces become receipts: ``ACCEPT`` (the carrier scanned the item in) → ``mailed`` with the waybill;
``SIGNED`` → ``signed`` with the signer's role (:data:`SIGNER_TYPES`: the recipient, a co-resident adult
family member, an entity's mail room or legal representative, an agent — CPL Arts. 87-88; anyone else
``other:<code>``, and a trace without ``signer_type`` no role: the core's ``law.postal_service`` decides
whether the signature serves, and those serve nothing); ``RETURNED`` (back at the court) → ``returned``
with the reason (:data:`RETURN_REASONS`).
Other traces (in transit, a failed attempt) carry no legal effect and are skipped. The trace id is the
receipt's ``provider_event_id``, so a trace seen by a poll and again in a push is recorded once.

Failures (through :mod:`delivery_sdk.httpchannel`): timeouts, connection errors, 408/425/429 (honouring
``Retry-After``) and 5xx raise :class:`~delivery_sdk.TransientChannelError` (the engine retries; an order in
doubt is looked up with ``GET /v1/orders/{order_no}`` before it is placed again); any other 4xx is
permanent. Nothing personal is logged: the receiver's name, phone and address go to the carrier only.

The entry point (``ems = "delivery_sdk_ems:plugin"``) is :data:`plugin`, an :class:`EnvEmsPlugin` that
registers an :class:`EmsCarrier` configured from ``DELIVERY_SDK_EMS_URL`` and friends (see
:class:`EnvEmsPlugin`); while the URL is unset it registers nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Dispatch,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
)
from delivery_sdk.clock import Clock
from delivery_sdk.model import mask
from delivery_sdk.plugin_kit import (
    EnvChannelPlugin,
    LoopClient,
    PluginSettings,
    RateLimiter,
    aware_datetime,
    check_base_url,
    check_response,
    check_timestamp,
    json_answer,
    lower_headers,
    make_client,
    read_json_object,
    require_secret,
    translate_errors,
    verify_hmac_sha256,
)

__all__ = [
    "ENV_CALLBACK_SECRET",
    "ENV_NAME",
    "ENV_PARTNER",
    "ENV_RATE",
    "ENV_SENDER_ADDRESS",
    "ENV_SENDER_PHONE",
    "ENV_TOKEN",
    "ENV_URL",
    "RETURN_REASONS",
    "SIGNER_TYPES",
    "EmsCarrier",
    "EnvEmsPlugin",
    "Sender",
    "plugin",
    "traces_to_receipts",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_ems")

ENV_URL = "DELIVERY_SDK_EMS_URL"
ENV_TOKEN = "DELIVERY_SDK_EMS_TOKEN"
ENV_PARTNER = "DELIVERY_SDK_EMS_PARTNER"
ENV_CALLBACK_SECRET = "DELIVERY_SDK_EMS_CALLBACK_SECRET"
ENV_SENDER_ADDRESS = "DELIVERY_SDK_EMS_SENDER_ADDRESS"
ENV_SENDER_PHONE = "DELIVERY_SDK_EMS_SENDER_PHONE"
ENV_NAME = "DELIVERY_SDK_EMS_NAME"
ENV_RATE = "DELIVERY_SDK_EMS_RATE"

# The carrier's signer types, as the roles delivery-sdk's policy knows (CPL Art. 88).
SIGNER_TYPES: Mapping[str, str] = {
    "SELF": "recipient",  # 本人签收
    "FAMILY": "family_member",  # 同住成年家属代收
    "UNIT_MAILROOM": "mail_room",  # 单位收发部门
    "LEGAL_REP": "legal_representative",  # 法定代表人 / 主要负责人签收
    "AGENT": "agent",  # 诉讼代理人 / 指定代收人
}
# The carrier's return reasons, as delivery-sdk's return reasons.
RETURN_REASONS: Mapping[str, str] = {
    "REFUSED": "refused",  # 拒收
    "ADDRESS_UNKNOWN": "address_wrong",  # 地址不详 / 查无此址
    "RECIPIENT_UNKNOWN": "address_wrong",  # 查无此人
    "MOVED": "moved",  # 迁移新址不明
    "UNCLAIMED": "unclaimed",  # 投递三次未果 / 逾期无人领取
}
_CODE = re.compile(r"[A-Z0-9_]{1,40}")
_NONCE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MAX_BODY = 1 << 20
_TRANSIENT_4XX = frozenset({408, 425, 429})


@attrs.frozen(kw_only=True)
class Sender:
    """The sender on every waybill: the court's return address (returned mail comes back there) and phone.

    ``name`` overrides the court named in the case (say, a service centre serving for several courts).
    """

    address: str = attrs.field(repr=lambda v: repr(mask(v)))
    phone: str = attrs.field(repr=lambda v: repr(mask(v)))
    name: str | None = None


def _code(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise MalformedReceipt(f"EMS trace {what} must be an upper-case code, got {type(value).__name__}")
    return value


def _when(value: Any) -> datetime:
    return aware_datetime(value, "EMS trace op_time")


def traces_to_receipts(dispatch_id: str, waybill: str, traces: Any) -> list[Receipt]:
    """The receipts a list of EMS traces gives (see the module docstring); MalformedReceipt if unreadable."""
    if not isinstance(traces, list):
        raise MalformedReceipt("EMS 'traces' must be a JSON array")
    out: list[Receipt] = []
    for trace in traces:
        if not isinstance(trace, dict):
            raise MalformedReceipt("an EMS trace must be a JSON object")
        trace_id = trace.get("trace_id")
        if not isinstance(trace_id, str) or not 1 <= len(trace_id) <= 200:
            raise MalformedReceipt("an EMS trace needs a 'trace_id' of 1-200 characters")
        op = _code(trace.get("op_code"), "op_code")
        at = _when(trace.get("op_time"))
        common: dict[str, Any] = {"dispatch_id": dispatch_id, "at": at, "provider_event_id": f"ems:{trace_id}"}
        if op == "ACCEPT":
            out.append(Receipt(kind=ReceiptKind.MAILED, waybill=waybill, **common))
        elif op == "SIGNED":
            # no signer_type: the carrier did not say who signed, and nobody is presumed to have (CPL Art. 88)
            signer = trace.get("signer_type")
            role = None if signer is None else SIGNER_TYPES.get(_code(signer, "signer_type"), f"other:{signer}")
            out.append(Receipt(kind=ReceiptKind.SIGNED, signer_role=role, **common))
        elif op == "RETURNED":
            code = _code(trace.get("return_reason"), "return_reason")
            reason = RETURN_REASONS.get(code)
            if reason is None:
                # came back after failed attempts for a reason we have no name for: not a refusal, not a
                # wrong address, so it neither serves nor proves the address wrong
                log.warning("EMS return reason %s is unknown; recorded as unclaimed", code)
                reason = "unclaimed"
            out.append(Receipt(kind=ReceiptKind.RETURNED, reason=reason, **common))
    return out


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    return json_answer(response, what, party="the carrier")


class EmsCarrier(BaseChannel):
    """The court express post carrier (see the module docstring for the protocol).

    - ``base_url``: ``http(s)://host[:port][/prefix]``; ``token``: the bearer token (never in a ``repr``);
    - ``partner_id``: the court's customer number with the carrier (``X-Ems-Partner``);
    - ``sender``: the return address and phone on every waybill (required to order waybills);
    - ``callback_secret``: the HMAC key of pushed traces (without it every push is refused as unsigned);
    - ``callback_window``: how far a push's timestamp may be from now;
    - ``transport``: an ``httpx.AsyncBaseTransport`` (tests); ``timeout``: seconds per request;
    - ``rate`` / ``burst``: the carrier's request rate limit (requests per second; None: unlimited).
    """

    kind = ChannelKind.POST
    orders_waybills = True
    # what every waybill needs (delivery_sdk.channels.WAYBILL_REQUIREMENTS): the carrier refuses an order
    # without the receiver's mobile number (422 RECEIVER_PHONE_REQUIRED), so the client warns at submit about
    # a party without one and the engine finds one (assisted person search) or asks a person before ordering
    requires: frozenset[str] = frozenset({"receiver_phone"})

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        sender: Sender | None = None,
        partner_id: str | None = None,
        callback_secret: str | bytes | None = None,
        callback_window: timedelta = timedelta(minutes=5),
        name: str = "ems",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        rate: float | None = None,
        burst: int = 1,
        product: str = "court_express",
    ) -> None:
        base_url = check_base_url(base_url)
        if not token:
            raise ValueError("the carrier needs a token (DELIVERY_SDK_EMS_TOKEN)")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if callback_secret is not None:  # None: pushes are refused as unsigned; empty: a mistake
            require_secret(callback_secret, f"callback_secret ({ENV_CALLBACK_SECRET})")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.partner_id = partner_id
        self.callback_window = callback_window
        self.transport = transport
        self.timeout = timeout
        self.product = product
        self.limiter = RateLimiter(rate, burst=burst)
        self._token = token
        self._secret = callback_secret
        self._client = LoopClient(self._make_client)

    def __repr__(self) -> str:
        return f"EmsCarrier({self.base_url!r}, name={self.name!r})"

    # -- HTTP ------------------------------------------------------------------------------------------

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if self.partner_id:
            headers["X-Ems-Partner"] = self.partner_id
        return make_client(self.base_url, headers=headers, transport=self.transport, timeout=self.timeout)

    def _http(self) -> httpx.AsyncClient:
        return self._client.get()

    async def _request(
        self, method: str, path: str, what: str, *, refusals: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """The answer (2xx, 404, and with ``refusals`` any permanent 4xx); transient ones raise."""
        await self.limiter.acquire()
        async with translate_errors(what):
            response = await self._http().request(method, path, **kwargs)
        status = response.status_code
        if status == 404 or (refusals and 400 <= status < 500 and status not in _TRANSIENT_4XX):
            return response
        return check_response(response, what=what)

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (when it made its own)."""
        await self._client.aclose()

    # -- waybills --------------------------------------------------------------------------------------

    def order(self, dispatch: Dispatch) -> dict[str, Any]:
        """The waybill order for a print job (personal data: sent to the carrier only, never logged)."""
        if self.sender is None:
            raise ChannelError(f"carrier {self.name!r} has no sender address/phone configured ({ENV_SENDER_ADDRESS})")
        return {
            "order_no": dispatch.dispatch_id,
            "product": self.product,
            "return_receipt": True,
            "reference": {
                "task_id": dispatch.task_id,
                "case_number": dispatch.case.case_number,
                "documents": len(dispatch.documents),
            },
            "sender": {
                "name": self.sender.name or dispatch.case.court,
                "address": self.sender.address,
                "phone": self.sender.phone,
            },
            "receiver": {
                "name": dispatch.recipient_name,
                "mobile": dispatch.recipient_phone,
                "address": dispatch.contact.value,
                "division_code": dispatch.contact.division_code,
            },
        }

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Order the electronic waybill for a print job; ``provider_ref`` is the waybill number."""
        what = f"{self.name}.order"
        response = await self._request(
            "POST",
            "/v1/orders",
            what,
            json=self.order(dispatch),
            headers={"Idempotency-Key": dispatch.dispatch_id},
            refusals=True,
        )
        if response.status_code >= 400:
            try:
                code = response.json().get("error")
            except (ValueError, AttributeError):
                code = None
            label = code if isinstance(code, str) and _CODE.fullmatch(code) else "no error code"
            return SendResult(accepted=False, reason=f"{what}: refused with HTTP {response.status_code} ({label})")
        payload = _json(response, what)
        waybill = payload.get("waybill_no")
        if not isinstance(waybill, str) or not _CODE.fullmatch(waybill):
            raise ChannelError(f"{what}: the carrier's answer has no waybill_no")
        log.info("%s: waybill %s ordered for dispatch %s", self.name, mask(waybill), dispatch.dispatch_id)
        return SendResult(accepted=True, provider_ref=waybill)

    # -- tracking --------------------------------------------------------------------------------------

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """With a waybill: its traces as receipts. Without: whether the carrier has the order at all."""
        if dispatch.waybill is None:
            what = f"{self.name}.order_status"
            response = await self._request("GET", f"/v1/orders/{quote(dispatch.dispatch_id, safe='')}", what)
            if response.status_code == 404:
                return StatusReport(found=False)
            waybill = _json(response, what).get("waybill_no")
            return StatusReport(found=True, provider_ref=waybill if isinstance(waybill, str) else None)
        what = f"{self.name}.track"
        response = await self._request("GET", f"/v1/waybills/{quote(dispatch.waybill, safe='')}/traces", what)
        if response.status_code == 404:
            return StatusReport(found=False)
        payload = _json(response, what)
        try:
            receipts = traces_to_receipts(dispatch.dispatch_id, dispatch.waybill, payload.get("traces"))
        except MalformedReceipt as exc:
            raise ChannelError(f"{what}: {exc}") from None
        return StatusReport(found=True, provider_ref=dispatch.waybill, receipts=tuple(receipts))

    # -- callbacks -------------------------------------------------------------------------------------

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """Check a pushed trace's signature and timestamp; the replay key is the push's nonce."""
        if not self._secret:
            raise CallbackRejected("unsigned", f"carrier {self.name!r} has no callback secret configured")
        h = lower_headers(headers)
        stamp = h.get("x-ems-timestamp")
        nonce = h.get("x-ems-nonce")
        if nonce is None or not _NONCE.fullmatch(nonce):
            raise CallbackRejected("forged", "missing or unreadable nonce")
        verify_hmac_sha256(self._secret, h.get("x-ems-signature"), stamp or "", nonce, body)
        check_timestamp(stamp, now, self.callback_window)
        return f"{self.name}:{nonce}"

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """The receipts in a pushed trace (call :meth:`verify_callback` first)."""
        payload = read_json_object(body, what="EMS push", max_bytes=_MAX_BODY)
        order_no = payload.get("order_no")
        waybill = payload.get("waybill_no")
        if not isinstance(order_no, str) or not 1 <= len(order_no) <= 200:
            raise MalformedReceipt("EMS push needs the 'order_no' (the dispatch id)")
        if not isinstance(waybill, str) or not _CODE.fullmatch(waybill):
            raise MalformedReceipt("EMS push needs the 'waybill_no'")
        return traces_to_receipts(order_no, waybill, payload.get("traces"))


class EnvEmsPlugin(EnvChannelPlugin[EmsCarrier]):
    """The entry-point plugin: registers an :class:`EmsCarrier` configured from its variables, or nothing.

    ``DELIVERY_SDK_EMS_URL`` and ``DELIVERY_SDK_EMS_TOKEN`` (required), ``DELIVERY_SDK_EMS_PARTNER``,
    ``DELIVERY_SDK_EMS_CALLBACK_SECRET``, ``DELIVERY_SDK_EMS_SENDER_ADDRESS`` and ``DELIVERY_SDK_EMS_SENDER_PHONE``
    (both or neither: needed to order waybills), ``DELIVERY_SDK_EMS_NAME`` (``ems``), ``DELIVERY_SDK_EMS_RATE``
    (requests per second). None of them set: nothing is registered (installed, not configured); any set: a
    configuration that cannot work raises one :class:`~delivery_sdk.PluginError` naming every missing or
    invalid variable. Read from the host's ``environ`` when it registers channels (``environ`` given here
    wins, for tests).
    """

    title = "EMS"
    prefix = "DELIVERY_SDK_EMS_"
    main_variable = ENV_URL

    def read(self, settings: PluginSettings, clock: Clock | None) -> Callable[[], EmsCarrier]:
        """Read ``DELIVERY_SDK_EMS_*``; what builds the :class:`EmsCarrier` they describe."""
        s = settings
        url = s.require(ENV_URL, "the carrier's API base URL")
        token = s.secret(ENV_TOKEN, required=True)
        callback_secret = s.secret(ENV_CALLBACK_SECRET)
        address, phone = s.get(ENV_SENDER_ADDRESS), s.get(ENV_SENDER_PHONE)
        if (address is None) != (phone is None):
            missing = ENV_SENDER_PHONE if phone is None else ENV_SENDER_ADDRESS
            s.problem(
                f"{missing} is required with {ENV_SENDER_ADDRESS if phone is None else ENV_SENDER_PHONE} "
                "(the court's return address and phone go together, to order waybills)"
            )
        rate = s.number(ENV_RATE, None, positive=True)
        return lambda: EmsCarrier(
            url,
            token=(token or "").strip(),
            partner_id=s.get(ENV_PARTNER),
            callback_secret=callback_secret,
            sender=Sender(address=address, phone=phone) if address and phone else None,
            name=s.get(ENV_NAME) or "ems",
            rate=rate,
        )


plugin = EnvEmsPlugin()
"""The object the ``ems`` entry point registers with every plugin host."""
