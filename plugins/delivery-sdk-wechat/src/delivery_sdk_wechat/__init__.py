"""A WeChat official-account channel for delivery-sdk: template messages with a link to the document page.

WeChat's own request and response shapes (see ``docs/plugins/wechat.md``)::

    POST /cgi-bin/stable_token                 (getStableAccessToken: the secret in the JSON body, not the URL)
         {"grant_type": "client_credential", "appid": "APPID", "secret": "APPSECRET", "force_refresh": false}
         {"access_token": "...", "expires_in": 7200}          or {"errcode": 40125, "errmsg": "..."}
    POST /cgi-bin/message/template/send?access_token=TOKEN
         {"touser": "<openid>", "template_id": "...", "url": "<document page link>",
          "data": {"first": {"value": "..."}, ...}, "client_msg_id": "<dispatch id>"}
         {"errcode": 0, "errmsg": "ok", "msgid": 200228332}   or {"errcode": 43004, ...}

The access token is cached until a little before it expires (``refresh_margin``), fetched once for all
concurrent sends, and refreshed once, with the send retried, when WeChat says it expired or is invalid
(errcodes 40001, 42001, 40014). The stable token is shared by every server of the account: in normal mode
WeChat answers the token it holds, so one server never invalidates another's. Only when WeChat answers
the very token it just refused does the adapter ask with ``force_refresh`` (WeChat allows that 20 times a
day, 30 s apart; the adapter forces at most once per 30 s). ``client_msg_id`` is the dispatch id: WeChat
sends one message per openid and ``client_msg_id`` (within its de-duplication window).

Secrets stay out of logs: the app secret travels in the token request's JSON body (httpx logs URLs, never
bodies), and the access token, which the message API takes only in the URL query, is added to the URL by
the adapter's own transport (:class:`AccessTokenTransport`), below the point where httpx logs the request:
the line httpx logs at INFO has no ``access_token``. (With your own ``http=`` client the token is in the
URL httpx logs: attach :class:`delivery_sdk.httpchannel.RedactSecretsFilter` to your log handlers.)

Callbacks, both to :meth:`WeChatChannel.parse_callback` under the channel's name:

- WeChat's ``TEMPLATESENDJOBFINISH`` event (XML): delivered (``success``) or failed (``failed:user block``,
  ``failed: system failed``). Signed as WeChat signs: ``signature`` = SHA-1 of the sorted, concatenated
  server token, ``timestamp`` and ``nonce``, which WeChat puts in the URL **query**: both methods take
  them from their ``query`` argument, which :class:`~delivery_sdk.callbacks.CallbackReceiver` (and so its
  ASGI app) and ``DeliveryClient.ingest_callback(..., query=...)`` pass; never from the headers.
- the court's H5 document page (the message's link) reports that the party opened it: a JSON body
  ``{"event": "read", "event_id", "dispatch_id", "token", "opened_at"}``, signed with the read secret
  (``X-Court-Signature`` = hex HMAC-SHA256 of ``X-Court-Timestamp``, ``X-Court-Nonce`` and the body,
  newline-joined; :func:`read_callback` builds one).

WeChat has no status API: :meth:`WeChatChannel.status` answers from the adapter's own :class:`SentLog`.

The entry point (``wechat = "delivery_sdk_wechat:plugin"``) registers a :class:`WeChatChannel` configured
from ``DELIVERY_SDK_WECHAT_*`` variables, and nothing while none of them is set (a partial configuration raises
:class:`~delivery_sdk.PluginError` naming every missing variable).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sqlite3
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Clock,
    ContactKind,
    Dispatch,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    SystemClock,
    TransientChannelError,
)
from delivery_sdk.plugin_kit import (
    AccessToken,
    EnvChannelPlugin,
    PluginSettings,
    RateLimiter,
    TokenCache,
    TokenRefused,
    check_settings,
    check_timestamp,
    hmac_sha256_hex,
    link_token,
    lower_headers,
    make_client,
    read_rate_and_timeout,
    read_values,
    request_json,
    signature_matches,
    verify_hmac_sha256,
)

from .sentlog import SentEntry, SentLog

__all__ = [
    "ENV",
    "ERRCODES",
    "FORCE_REFRESH_SPACING",
    "SEND_PATH",
    "TOKEN_ERRCODES",
    "TOKEN_PATH",
    "AccessTokenTransport",
    "EnvWeChatPlugin",
    "SentLog",
    "WeChatChannel",
    "link_token",
    "plugin",
    "read_callback",
    "wechat_signature",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_wechat")

TOKEN_PATH = "/cgi-bin/stable_token"
FORCE_REFRESH_SPACING = 30.0  # seconds between two force_refresh calls (WeChat refuses them closer)
_TOKEN_EXTENSION = "delivery_sdk_wechat.access_token"
SEND_PATH = "/cgi-bin/message/template/send"
TOKEN_ERRCODES = frozenset({40001, 42001, 40014})  # invalid credential, access token expired, invalid token
# errcode -> (what it means, transient?). Codes not listed are refusals for good.
ERRCODES: dict[int, tuple[str, bool]] = {
    -1: ("system busy", True),
    45009: ("api daily quota reached", True),
    45011: ("api minute quota reached", True),
    43004: ("not subscribed", False),
    43019: ("user in blacklist", False),
    43101: ("user refused to receive", False),
    40003: ("invalid openid", False),
    40037: ("invalid template_id", False),
    47003: ("invalid template data", False),
    40013: ("invalid appid", False),
    40125: ("invalid appsecret", False),
    40164: ("caller IP not whitelisted", False),
}
_MAX_CALLBACK = 64 * 1024

ENV = {
    "appid": "DELIVERY_SDK_WECHAT_APPID",
    "secret": "DELIVERY_SDK_WECHAT_SECRET",
    "template_id": "DELIVERY_SDK_WECHAT_TEMPLATE_ID",
    "link_template": "DELIVERY_SDK_WECHAT_LINK_TEMPLATE",
    "server_token": "DELIVERY_SDK_WECHAT_SERVER_TOKEN",
    "read_secret": "DELIVERY_SDK_WECHAT_READ_SECRET",
    "link_key": "DELIVERY_SDK_WECHAT_LINK_KEY",
    "base_url": "DELIVERY_SDK_WECHAT_BASE_URL",
    "sent_log": "DELIVERY_SDK_WECHAT_SENT_LOG",
    "rate": "DELIVERY_SDK_WECHAT_RATE",
    "timeout": "DELIVERY_SDK_WECHAT_TIMEOUT",
    "name": "DELIVERY_SDK_WECHAT_NAME",
}
_REQUIRED = ("secret", "template_id", "link_template", "server_token", "read_secret")
DEFAULT_BASE_URL = "https://api.weixin.qq.com"
DEFAULT_SENT_LOG = "./delivery-sdk-wechat-sent.sqlite3"

DataFactory = Callable[[Dispatch], Mapping[str, str]]


# -- signatures and links ----------------------------------------------------------------------------


def wechat_signature(server_token: str, timestamp: str, nonce: str) -> str:
    """WeChat's callback signature: SHA-1 hex of the sorted, concatenated token, timestamp and nonce."""
    return hashlib.sha1("".join(sorted([server_token, timestamp, nonce])).encode()).hexdigest()


def read_callback(
    read_secret: str,
    link_key: bytes | str,
    dispatch_id: str,
    opened_at: datetime,
    *,
    event_id: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """The signed read callback the court's H5 page sends when a party opens a dispatch's link."""
    body = json.dumps(
        {
            "event": "read",
            "event_id": event_id or uuid.uuid4().hex,
            "dispatch_id": dispatch_id,
            "token": link_token(link_key, dispatch_id),
            "opened_at": opened_at.isoformat(),
        },
        ensure_ascii=False,
    ).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or uuid.uuid4().hex
    headers = {
        "X-Court-Timestamp": ts,
        "X-Court-Nonce": nonce,
        "X-Court-Signature": hmac_sha256_hex(read_secret, ts, nonce, body),
        "Content-Type": "application/json",
    }
    return headers, body


def _default_data(dispatch: Dispatch) -> dict[str, str]:
    return {
        "first": "您有一份法院文书待查收",
        "keyword1": dispatch.case.court,
        "keyword2": dispatch.case.case_number,
        "remark": "请点击查看并签收",
    }


# -- the transport that adds the access token --------------------------------------------------------


class AccessTokenTransport(httpx.AsyncBaseTransport):
    """Adds ``access_token`` to a request's URL query just before it leaves, from the request extension
    ``"delivery_sdk_wechat.access_token"``.

    httpx logs ``request.url`` of the request the client built, so the URL in httpx's INFO line (and in
    ``response.request``) never carries the token; the wire request does, as WeChat requires.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with the access token added to its URL query (the logged request has none)."""
        token = request.extensions.get(_TOKEN_EXTENSION)
        if isinstance(token, str):
            extensions = {k: v for k, v in request.extensions.items() if k != _TOKEN_EXTENSION}
            url = request.url.copy_merge_params({"access_token": token})
            try:  # a body given as bytes stays readable (request.content) for the transports below
                content = request.content
            except httpx.RequestNotRead:
                request = httpx.Request(
                    request.method, url, headers=request.headers, stream=request.stream, extensions=extensions
                )
            else:
                request = httpx.Request(
                    request.method, url, headers=request.headers, content=content, extensions=extensions
                )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def _env_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), as
    httpx itself would use it: the adapter builds its own transport, which would otherwise ignore them."""
    url = httpx.URL(base_url)
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(url.scheme) or proxies.get("all") or None


# -- the adapter -------------------------------------------------------------------------------------


class WeChatChannel(BaseChannel):
    """The WeChat official-account adapter (see the module docstring).

    - ``appid`` / ``secret``: fetch the access token; ``base_url``: WeChat's API (or an emulator);
    - ``template_id``; ``data(dispatch)`` gives the template's fields (default: ``first``, ``keyword1``
      = the court, ``keyword2`` = the case number, ``remark``: no name, no personal data);
    - ``link_template``: the document page URL with ``{token}``, sent as the message's ``url``;
      ``link_key`` keys the token (default: derived from ``read_secret``);
    - ``server_token``: checks WeChat's event pushes; ``read_secret``: checks the H5 page's read callbacks;
    - ``sent_log``: a :class:`SentLog` or a SQLite path (default ``":memory:"``: lost with the process;
      give a file in production so :meth:`status` still knows after a crash);
    - ``refresh_margin``: refresh the token this many seconds before it expires;
    - ``dedup_window``: how long WeChat de-duplicates ``client_msg_id`` (see :meth:`status`);
    - ``rate_limit_wait``: the retry-after given with errcodes 45009/45011 (WeChat sends no Retry-After);
    - ``rate`` / ``burst``, ``transport`` / ``http``, ``timeout``, ``max_connections``, ``clock`` as usual;
      ``monotonic`` times the token's life (tests).
    """

    kind = ChannelKind.WECHAT

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        template_id: str,
        link_template: str,
        server_token: str,
        read_secret: str,
        link_key: bytes | str | None = None,
        data: DataFactory | None = None,
        base_url: str = DEFAULT_BASE_URL,
        sent_log: SentLog | str | os.PathLike[str] | None = None,
        name: str = "wechat",
        rate: float | None = None,
        burst: int = 1,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_connections: int = 64,
        refresh_margin: float = 300.0,
        dedup_window: timedelta = timedelta(minutes=10),
        rate_limit_wait: float = 60.0,
        callback_window: float = 300.0,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        base_url = check_settings(
            base_url,
            required=(("appid", appid), ("template_id", template_id)),
            # ValidationError (a ValueError) when empty or blank
            secrets=(("secret", secret), ("server_token", server_token), ("read_secret", read_secret)),
            link_template=link_template,
            link_example="https://court.example/w/{token}",
        )
        if timeout <= 0 or max_connections < 1 or refresh_margin < 0 or callback_window <= 0:
            raise ValueError("timeout and callback_window must be positive, refresh_margin not negative")
        self.name = name
        self.appid = appid
        self._secret = secret
        self.template_id = template_id
        self.link_template = link_template
        self._server_token = server_token
        self._read_secret = read_secret
        self._link_key: bytes | str = (
            link_key if link_key is not None else hmac_sha256_hex(read_secret, "delivery-sdk link token key")
        )
        self._data = data or _default_data
        self.base_url = base_url.rstrip("/")
        self.sent_log = sent_log if isinstance(sent_log, SentLog) else SentLog(sent_log or ":memory:")
        self._owns_log = not isinstance(sent_log, SentLog)
        self.limiter = RateLimiter(rate, burst=burst)
        self.refresh_margin = refresh_margin
        self.dedup_window = dedup_window
        self.rate_limit_wait = rate_limit_wait
        self.callback_window = callback_window
        self.clock: Clock = clock or SystemClock()
        self._monotonic = monotonic
        self.tokens = TokenCache(
            self._fetch_access_token, refresh_margin=refresh_margin, monotonic=monotonic, name=name
        )
        self._forced_at: float | None = None
        self.token_fetches = 0
        self._owns_http = http is None
        # Our own client: the access token is added by AccessTokenTransport, below httpx's request log.
        # A client given to us: the token goes in params (the host's client, the host's logging).
        self._token_by_transport = http is None
        if http is None:
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            inner = transport or httpx.AsyncHTTPTransport(limits=limits, proxy=_env_proxy(self.base_url))
            http = make_client(
                self.base_url, transport=AccessTokenTransport(inner), timeout=timeout, max_connections=max_connections
            )
        self._http = http

    def __repr__(self) -> str:
        return f"WeChatChannel(appid={self.appid!r}, name={self.name!r}, base_url={self.base_url!r})"

    def link_for(self, dispatch_id: str) -> str:
        """The document link of a dispatch (the message's ``url``)."""
        return self.link_template.replace("{token}", link_token(self._link_key, dispatch_id))

    def message_body(self, dispatch: Dispatch) -> dict[str, Any]:
        """The template message (``touser`` is the openid, the addressee; nothing else personal)."""
        return {
            "touser": dispatch.contact.value,
            "template_id": self.template_id,
            "url": self.link_for(dispatch.dispatch_id),
            "data": {str(k): {"value": str(v)} for k, v in self._data(dispatch).items()},
            "client_msg_id": dispatch.dispatch_id,
        }

    # -- the access token ------------------------------------------------------------------------------

    async def access_token(self, *, stale: str | None = None) -> str:
        """The cached token, fetched when missing, about to expire, or equal to ``stale`` (refused by WeChat).

        Concurrent callers share one fetch; a token another caller already replaced is not fetched again.
        The fetch is WeChat's stable token (``POST /cgi-bin/stable_token``, the secret in the JSON body). When
        WeChat answers the ``stale`` token itself again, the adapter asks once more with ``force_refresh``
        (at most once per :data:`FORCE_REFRESH_SPACING` seconds; sooner, the stale token is a transient error).
        """
        return await self.tokens.get(stale=stale)

    async def _fetch_access_token(self, stale: str | None) -> AccessToken:
        """The :class:`TokenCache`'s fetch: the stable token, forced once when WeChat answers ``stale`` again."""
        token, expires_in = await self._fetch_token(force=False)
        if stale is not None and token == stale:
            now = self._monotonic()
            if self._forced_at is not None and now - self._forced_at < FORCE_REFRESH_SPACING:
                raise TransientChannelError(f"{self.name}: WeChat keeps answering a refused access token")
            self._forced_at = now
            log.info("%s: WeChat answered the refused access token again; forcing a refresh", self.name)
            token, expires_in = await self._fetch_token(force=True)
        return AccessToken(token, max(expires_in, 1e-6))  # 0: already expiring, used once and fetched again

    async def _fetch_token(self, *, force: bool) -> tuple[str, float]:
        payload: dict[str, Any] = {"grant_type": "client_credential", "appid": self.appid, "secret": self._secret}
        if force:
            payload["force_refresh"] = True
        body = json.dumps(payload, separators=(",", ":")).encode()
        data = await self._request(
            "POST",
            TOKEN_PATH,
            what=f"{self.name}.token",
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        errcode = _errcode(data)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if errcode or not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            meaning, transient = ERRCODES.get(errcode, ("no token in the answer", errcode == 0))
            message = f"{self.name}: access token refused (errcode {errcode}, {meaning})"
            if transient:
                raise TransientChannelError(message)
            raise ChannelError(message)
        self.token_fetches += 1
        return token, float(expires_in)

    async def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        _, data = await request_json(self._http, method, path, what=what, limiter=self.limiter, **kwargs)
        if not isinstance(data, dict):
            raise TransientChannelError(f"{what}: WeChat's answer is not a JSON object")
        return data

    def _with_token(self, token: str) -> dict[str, Any]:
        """How a request carries the access token: a request extension our transport turns into the query
        parameter below httpx's log, or (with a client given to us) the query parameter itself."""
        if self._token_by_transport:
            return {"extensions": {_TOKEN_EXTENSION: token}}
        return {"params": {"access_token": token}}

    async def _post_with_token(self, path: str, body: bytes, *, what: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/json; charset=utf-8"}

        async def post(token: str) -> dict[str, Any]:
            data = await self._request(
                "POST", path, what=what, content=body, headers=headers, **self._with_token(token)
            )
            if _errcode(data) in TOKEN_ERRCODES:
                log.info("%s: access token refused (errcode %d); fetching a new one", self.name, _errcode(data))
                raise TokenRefused
            return data

        return await self.tokens.call(post)

    # -- the adapter contract --------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """One template message for one dispatch, its id as ``client_msg_id`` (WeChat drops a repeat);
        transient failures raise ``TransientChannelError``, a contact that is not an OpenID ``ChannelError``."""
        if dispatch.contact.kind is not ContactKind.WECHAT:
            raise ChannelError(f"{self.name}: dispatch {dispatch.dispatch_id} has no WeChat openid")
        what = f"{self.name}.send"
        body = json.dumps(self.message_body(dispatch), ensure_ascii=False, separators=(",", ":")).encode()
        self.sent_log.begin(dispatch.dispatch_id, dispatch.contact.value, self.clock.now())
        data = await self._post_with_token(SEND_PATH, body, what=what)
        errcode = _errcode(data)
        if errcode == 0:
            msgid = data.get("msgid")
            if not isinstance(msgid, int | str) or isinstance(msgid, bool) or not str(msgid):
                raise TransientChannelError(f"{what}: accepted without a msgid")
            self.sent_log.sent(dispatch.dispatch_id, str(msgid))
            return SendResult(accepted=True, provider_ref=str(msgid))
        meaning, transient = ERRCODES.get(errcode, ("refused", False))
        if transient:
            wait = self.rate_limit_wait if errcode in (45009, 45011) else None
            raise TransientChannelError(f"{what}: WeChat answered errcode {errcode} ({meaning})", retry_after=wait)
        self.sent_log.forget(dispatch.dispatch_id)
        log.info("%s: dispatch %s refused (errcode %d)", self.name, dispatch.dispatch_id, errcode)
        return SendResult(accepted=False, reason=f"{self.name}: {meaning} (errcode {errcode})")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """WeChat has no status API: the answer comes from the adapter's :class:`SentLog`.

        - never begun: not found (the engine sends it);
        - answered with a msgid: found, with the receipts the callbacks brought;
        - begun but never answered (a timeout, a crash), within ``dedup_window``: not found, so the engine
          sends again under the same ``client_msg_id``, which WeChat de-duplicates;
        - ...and older than that: found without a reference. Sending again could reach the party twice;
          the engine waits for a callback instead and, without one, the channel's response window ends it.
        """
        entry: SentEntry | None = self.sent_log.lookup(dispatch.dispatch_id)
        if entry is None:
            return StatusReport(found=False)
        if entry.msgid is not None:
            return StatusReport(found=True, provider_ref=entry.msgid, receipts=entry.receipts)
        if self.clock.now() - entry.began_at < self.dedup_window:
            return StatusReport(found=False)
        return StatusReport(found=True, provider_ref=None, receipts=entry.receipts)

    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime, *, query: Mapping[str, str] | None = None
    ) -> str:
        """Check a callback's signature, then its timestamp; return its replay key (timestamp and nonce).

        A WeChat event (XML) is signed in the URL query (``signature``, ``timestamp``, ``nonce``): pass the
        request's query parameters as ``query``. A read callback (JSON) is signed in its ``X-Court-*`` headers.
        Signatures are compared as bytes (one that is not ASCII is forged); the body is not parsed here.
        """
        h = lower_headers(headers)
        window = timedelta(seconds=self.callback_window)
        if body.lstrip().startswith(b"<"):
            q = query or {}
            timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
            signature = q.get("signature", "")
            if not signature or not nonce or len(nonce) > 128 or len(timestamp) > 32:
                raise CallbackRejected("forged", "no signature")
            try:
                expected = wechat_signature(self._server_token, timestamp, nonce)
            except UnicodeEncodeError:  # a lone surrogate: nothing WeChat could have signed
                raise CallbackRejected("forged", "signature does not match") from None
            if not signature_matches(expected, signature):
                raise CallbackRejected("forged", "signature does not match")
            check_timestamp(timestamp, now, window)
            return f"{self.name}:{timestamp}:{nonce}"
        timestamp, nonce = h.get("x-court-timestamp", ""), h.get("x-court-nonce", "")
        if not nonce:
            raise CallbackRejected("forged", "no nonce")
        verify_hmac_sha256(self._read_secret, h.get("x-court-signature"), timestamp, nonce, body)
        check_timestamp(timestamp, now, window)
        return f"{self.name}:read:{nonce}"

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None
    ) -> Sequence[Receipt]:
        """Receipts from a WeChat event push (XML, signed in ``query``) or an H5 read callback (JSON);
        signatures are checked here too (the timestamp window is :meth:`verify_callback`'s). Receipts are
        kept for :meth:`status`."""
        if len(body) > _MAX_CALLBACK:
            raise MalformedReceipt(f"{self.name} callback: larger than {_MAX_CALLBACK} bytes")
        try:
            self.verify_callback(headers, body, _signed_at(headers, body, query), query=query)
        except CallbackRejected as exc:
            raise MalformedReceipt(f"{self.name} callback: {exc.detail}") from None
        receipts = self._parse_event(body) if body.lstrip().startswith(b"<") else self._parse_read(body)
        for receipt in receipts:
            self.sent_log.add_receipt(receipt)
        return receipts

    def _parse_event(self, body: bytes) -> list[Receipt]:
        if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
            raise MalformedReceipt(f"{self.name} callback: XML with a DOCTYPE or entities is refused")
        try:
            root = ET.fromstring(body)  # no DOCTYPE/entities (checked above), size bounded
        except ET.ParseError:
            raise MalformedReceipt(f"{self.name} callback: unreadable XML") from None
        fields = {child.tag: (child.text or "").strip() for child in root}
        if fields.get("MsgType") != "event" or fields.get("Event") != "TEMPLATESENDJOBFINISH":
            return []  # subscribe, menu clicks...: nothing the service needs
        msgid, status, created = fields.get("MsgID", ""), fields.get("Status", ""), fields.get("CreateTime", "")
        if not msgid or not status or not (created.isascii() and created.isdigit() and len(created) <= 12):
            raise MalformedReceipt(f"{self.name} callback: TEMPLATESENDJOBFINISH needs MsgID, Status, CreateTime")
        try:
            at = datetime.fromtimestamp(int(created), UTC)
        except (OverflowError, OSError, ValueError):
            raise MalformedReceipt(f"{self.name} callback: CreateTime is out of range") from None
        dispatch_id = self.sent_log.by_msgid(msgid, fields.get("FromUserName") or None)
        if dispatch_id is None:
            log.warning(
                "%s: delivery event for msgid %r, which this adapter never sent; ignored", self.name, msgid[:40]
            )
            return []
        if status == "success":
            return [
                Receipt(dispatch_id=dispatch_id, kind=ReceiptKind.DELIVERED, at=at, provider_event_id=f"tmpl:{msgid}")
            ]
        detail = status.removeprefix("failed:").strip() or "failed"
        detail = "".join(c for c in detail if c.isascii() and (c.isalnum() or c in " ._-"))[:64]
        return [
            Receipt(
                dispatch_id=dispatch_id,
                kind=ReceiptKind.FAILED,
                at=at,
                provider_event_id=f"tmpl:{msgid}",
                reason=f"{self.name}: not delivered ({detail})",
            )
        ]

    def _parse_read(self, body: bytes) -> list[Receipt]:
        try:
            payload = json.loads(body)
        except ValueError:
            raise MalformedReceipt(f"{self.name} read callback: the body is not JSON") from None
        if not isinstance(payload, dict) or payload.get("event") != "read":
            raise MalformedReceipt(f"{self.name} read callback: expected an object with event 'read'")
        dispatch_id, token = payload.get("dispatch_id"), payload.get("token")
        event_id, opened = payload.get("event_id"), payload.get("opened_at")
        if not all(isinstance(v, str) and v for v in (dispatch_id, token, event_id, opened)):
            raise MalformedReceipt(f"{self.name} read callback: needs dispatch_id, token, event_id, opened_at")
        assert isinstance(dispatch_id, str)
        assert isinstance(token, str)
        assert isinstance(opened, str)
        try:
            expected = link_token(self._link_key, dispatch_id).encode("ascii")
        except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape: no dispatch id has one
            raise MalformedReceipt(f"{self.name} read callback: the dispatch_id is not text") from None
        if not token.isascii() or not hmac.compare_digest(expected, token.encode("ascii")):
            raise MalformedReceipt(f"{self.name} read callback: the token is not this dispatch's link")
        try:
            at = datetime.fromisoformat(opened)
        except ValueError:
            raise MalformedReceipt(f"{self.name} read callback: opened_at is not ISO 8601") from None
        if at.tzinfo is None:
            raise MalformedReceipt(f"{self.name} read callback: opened_at has no UTC offset")
        return [Receipt(dispatch_id=dispatch_id, kind=ReceiptKind.READ, at=at, provider_event_id=f"h5:{event_id}")]

    async def aclose(self) -> None:
        """Close the adapter's HTTP client (when it made its own)."""
        if self._owns_http:
            await self._http.aclose()
        if self._owns_log:
            self.sent_log.close()


def _errcode(data: Mapping[str, Any]) -> int:
    value = data.get("errcode", 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _signed_at(headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None) -> datetime:
    """The callback's own timestamp as "now": parse_callback checks signatures, not freshness."""
    if body.lstrip().startswith(b"<"):
        stamp = (query or {}).get("timestamp", "")
    else:
        stamp = lower_headers(headers).get("x-court-timestamp", "")
    if stamp.isascii() and stamp.isdigit():
        try:
            return datetime.fromtimestamp(int(stamp) // (1000 if int(stamp) > 10**11 else 1), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)


# -- the entry point ---------------------------------------------------------------------------------


class EnvWeChatPlugin(EnvChannelPlugin[WeChatChannel]):
    """The entry-point plugin: a :class:`WeChatChannel` from ``DELIVERY_SDK_WECHAT_*``, or nothing.

    None of the variables set: registers nothing (installed, not configured). Any set: ``..._APPID`` and the
    other required variables must be too, or loading the client's plugins raises one
    :class:`~delivery_sdk.PluginError` naming every missing or invalid variable. The sent log defaults to
    ``./delivery-sdk-wechat-sent.sqlite3``. The variables are read from the host's ``environ``;
    ``environ`` given here wins (for tests).
    """

    title = "WeChat"
    prefix = "DELIVERY_SDK_WECHAT_"
    main_variable = ENV["appid"]
    construct_errors = (ValueError, OSError, sqlite3.Error)

    def read(self, settings: PluginSettings, clock: Clock | None) -> Callable[[], WeChatChannel]:
        """Read ``DELIVERY_SDK_WECHAT_*``; what builds the :class:`WeChatChannel` they describe."""
        appid = settings.require(ENV["appid"], "the official account's AppID")
        values = read_values(settings, ENV, _REQUIRED, secrets=("secret", "server_token", "read_secret"))
        rate, timeout = read_rate_and_timeout(settings, ENV)
        return lambda: WeChatChannel(
            appid,
            values["secret"],
            template_id=values["template_id"],
            link_template=values["link_template"],
            server_token=values["server_token"],
            read_secret=values["read_secret"],
            link_key=values["link_key"] or None,
            base_url=values["base_url"] or DEFAULT_BASE_URL,
            sent_log=values["sent_log"] or DEFAULT_SENT_LOG,
            name=values["name"] or "wechat",
            rate=rate,
            timeout=timeout,
            clock=clock,
        )


plugin = EnvWeChatPlugin()
"""The object the ``wechat`` entry point registers with every plugin host."""
