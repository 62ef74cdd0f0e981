"""A local WeChat API for tests, end-to-end runs and benchmarks: ``POST /cgi-bin/stable_token`` and
``/cgi-bin/message/template/send`` with WeChat's shapes, over a real socket (``ThreadingHTTPServer`` on
``127.0.0.1``, an ephemeral port, in a thread), and ``TEMPLATESENDJOBFINISH`` event pushes.

The token endpoint speaks getStableAccessToken: a JSON body ``{"grant_type": "client_credential", "appid",
"secret", "force_refresh"}`` (a query string on it is refused: the secret belongs in the body). In normal
mode it answers the account's current token while more than 5 minutes of it are left (with the seconds
left as ``expires_in``), a new one otherwise; ``force_refresh`` ends the current token and issues a new one
(counted in ``forced_refreshes``). Tokens live ``token_ttl`` seconds; :meth:`WeChatEmulator.expire_tokens`
ends every token now (the next send gets errcode 42001, as WeChat answers). A template message is kept per ``(touser,
client_msg_id)``: a second send answers with the first ``msgid``. Scripting::

    with WeChatEmulator() as wechat:
        wechat.fail_next(Fault.errcode(-1), Fault.errcode(45009), Fault.http(503), Fault.timeout(1.0))
        wechat.unsubscribed.add("o-openid")                # errcode 43004
        channel = wechat.channel()                         # a WeChatChannel pointed at it
        ...
        params, body = wechat.deliver(client_msg_id)       # the event push: query parameters and XML body

``attempts`` lists the ``client_msg_id`` of every send that reached the API with a valid token (faulted
ones included), ``messages`` what WeChat accepted; ``token_requests`` counts token fetches.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from delivery_sdk.testing.emulator import (
    ScriptedEmulator,
    join_callback,
    json_reply,
    read_body,
    serve_sandbox_main,
    transient,
)

from . import SEND_PATH, TOKEN_PATH, WeChatChannel, wechat_signature

__all__ = ["EmulatedTemplateMessage", "Fault", "WeChatEmulator", "main", "sandbox"]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour for the next template send."""

    kind: str  # "errcode" | "http" | "timeout"
    code: int = 0
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    accept: bool = True

    @classmethod
    def errcode(cls, errcode: int) -> Fault:
        """Answer ``{"errcode": errcode}`` (-1 busy, 45009 quota, 43004 not subscribed, 42001 expired...)."""
        return cls("errcode", code=errcode)

    @classmethod
    def http(cls, status: int = 503, retry_after: str | None = None) -> Fault:
        """A fault: answer with HTTP ``status`` (and ``Retry-After``)."""
        return cls("http", status=status, retry_after=retry_after)

    @classmethod
    def timeout(cls, seconds: float, *, accept: bool = True) -> Fault:
        """Answer after ``seconds``; with ``accept`` the message was taken first (the client is in doubt)."""
        return cls("timeout", seconds=seconds, accept=accept)


@dataclass
class EmulatedTemplateMessage:
    """One template message the emulated WeChat API took, with the events it pushed."""

    msgid: int
    touser: str
    template_id: str
    url: str
    data: dict[str, Any]
    client_msg_id: str
    events: list[str] = field(default_factory=list)


class WeChatEmulator(ScriptedEmulator[Fault]):
    """The WeChat API (see the module docstring). ``clock`` stamps event pushes' ``CreateTime``."""

    def __init__(
        self,
        *,
        appid: str = "wx-emulator-appid",
        secret: str = "emulator-appsecret",
        server_token: str = "emulator-server-token",
        account: str = "gh_emulator",
        callback_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        token_ttl: int = 7200,
        auto_deliver: bool = False,
        transient_rate: float = 0.0,
        seed: int = 0,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
    ) -> None:
        super().__init__(name="wechat-emulator", host=host, port=port, state_dir=state_dir)
        self.appid = appid
        self.secret = secret
        self.server_token = server_token
        self.account = account
        self.callback_url = callback_url
        self.clock = clock or (lambda: datetime.now(UTC))
        self.token_ttl = token_ttl
        self.auto_deliver = auto_deliver
        self.transient_rate = transient_rate
        self.latency = latency
        self.unsubscribed: set[str] = set()
        self.messages: dict[tuple[str, str], EmulatedTemplateMessage] = {}
        self.token_requests = 0
        self.forced_refreshes = 0
        self._current: str | None = None  # the stable token normal mode answers
        self.refused_tokens: list[int] = []  # errcodes given to sends with a bad token
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._random = random.Random(seed)
        self._msgids = 200_228_000

    # -- running ---------------------------------------------------------------------------------------

    def channel(self, **kwargs: Any) -> WeChatChannel:
        """A :class:`WeChatChannel` configured for this emulator (keyword arguments override)."""
        options: dict[str, Any] = {
            "template_id": "TPL-service-notice",
            "link_template": "https://ssfw.court.example/w/{token}",
            "server_token": self.server_token,
            "read_secret": "emulator-read-secret",
            "base_url": self.url,
        }
        options.update(kwargs)
        return WeChatChannel(self.appid, self.secret, **options)

    # -- scripting and inspecting ----------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def message(self, client_msg_id: str) -> EmulatedTemplateMessage:
        """The template message sent with ``client_msg_id`` (``KeyError`` when none was)."""
        with self._lock:
            return next(m for m in self.messages.values() if m.client_msg_id == client_msg_id)

    def deliver(
        self, client_msg_id: str, status: str = "success", *, push: bool = True
    ) -> tuple[dict[str, str], bytes]:
        """The ``TEMPLATESENDJOBFINISH`` event for a message (``success``, ``failed:user block``, ``failed:
        system failed``), posted to ``callback_url`` when set; returns (the URL query parameters, the XML body)."""
        message = self.message(client_msg_id)
        with self._lock:
            message.events.append(status)
        params, body = self.event_push(message.touser, message.msgid, status)
        if push and self.callback_url:
            self._push(params, body)
        return params, body

    def event_push(
        self, openid: str, msgid: int, status: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """WeChat's ``TEMPLATESENDJOBFINISH`` push for a message: the signed query parameters and the XML body."""
        created = int(self.clock().timestamp())
        body = (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID>"
            f"<Status><![CDATA[{status}]]></Status></xml>"
        ).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or str(self._random.randrange(10**9, 10**10))
        params = {
            "signature": wechat_signature(self.server_token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "openid": openid,  # WeChat adds the sender's openid; it is not signed
        }
        return params, body

    # -- internals -------------------------------------------------------------------------------------

    def _push(self, params: dict[str, str], body: bytes) -> None:
        """POST the event as WeChat does: the signature in the URL query, the XML as the body."""
        assert self.callback_url is not None
        joiner = "&" if "?" in self.callback_url else "?"
        url = self.callback_url + joiner + urlencode(params)
        self.push(url, body, {"Content-Type": "text/xml"})

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_*`` variables that point the plugin at this emulator (``delivery-sdk sandbox``)."""
        return {
            "DELIVERY_SDK_WECHAT_APPID": self.appid,
            "DELIVERY_SDK_WECHAT_SECRET": self.secret,
            "DELIVERY_SDK_WECHAT_BASE_URL": self.url,
            "DELIVERY_SDK_WECHAT_SERVER_TOKEN": self.server_token,
            "DELIVERY_SDK_WECHAT_TEMPLATE_ID": "sandbox-template",
            "DELIVERY_SDK_WECHAT_LINK_TEMPLATE": "http://127.0.0.1/w/{token}",
            "DELIVERY_SDK_WECHAT_READ_SECRET": "sandbox-read-secret",
        }

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request of the emulated provider's API (runs in a server thread)."""
        body = read_body(handler)
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query))
        if self.latency:
            time.sleep(self.latency)
        if method == "POST" and parts.path == TOKEN_PATH:
            self._token(handler, parts.query, body)
        elif method == "POST" and parts.path == SEND_PATH:
            self._send(handler, query, body)
        else:
            json_reply(handler, 404, {"errcode": 404, "errmsg": "not found"})

    def _token(self, handler: BaseHTTPRequestHandler, raw_query: str, body: bytes) -> None:
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            json_reply(handler, 200, {"errcode": 47001, "errmsg": "data format error"})
            return
        force = payload.get("force_refresh", False)
        if raw_query:  # getStableAccessToken takes no query string: nothing (the secret least) goes in the URL
            json_reply(handler, 200, {"errcode": 40097, "errmsg": "invalid args: no query string here"})
        elif payload.get("grant_type") != "client_credential":
            json_reply(handler, 200, {"errcode": 40002, "errmsg": "invalid grant_type"})
        elif payload.get("appid") != self.appid:
            json_reply(handler, 200, {"errcode": 40013, "errmsg": "invalid appid"})
        elif payload.get("secret") != self.secret:
            json_reply(handler, 200, {"errcode": 40125, "errmsg": "invalid appsecret"})
        elif not isinstance(force, bool):
            json_reply(handler, 200, {"errcode": 40097, "errmsg": "invalid args: force_refresh"})
        else:
            with self._lock:
                self.token_requests += 1
                now = time.monotonic()
                current = self._current
                left = self._tokens.get(current, 0.0) - now if current is not None else 0.0
                if force or left <= 300:  # WeChat renews the stable token in its last 5 minutes
                    if force and current is not None:
                        self.forced_refreshes += 1
                        self._tokens[current] = 0.0  # force_refresh ends the previous token
                    current = f"AT{self.token_requests:04d}{self._random.getrandbits(64):016x}"
                    self._tokens[current] = now + self.token_ttl
                    self._current = current
                    left = float(self.token_ttl)
            json_reply(handler, 200, {"access_token": current, "expires_in": int(left)})

    def _send(self, handler: BaseHTTPRequestHandler, query: dict[str, str], body: bytes) -> None:
        token = query.get("access_token", "")
        with self._lock:
            expiry = self._tokens.get(token)
            bad = 40001 if expiry is None else (42001 if time.monotonic() >= expiry else 0)
            if bad:
                self.refused_tokens.append(bad)
        if bad:
            json_reply(handler, 200, {"errcode": bad, "errmsg": "access_token invalid or expired"})
            return
        try:
            payload = json.loads(body)
            touser, client_msg_id = payload["touser"], payload["client_msg_id"]
            if not isinstance(touser, str) or not isinstance(client_msg_id, str) or not touser:
                raise ValueError("touser")
        except (ValueError, KeyError, TypeError):
            json_reply(handler, 200, {"errcode": 47001, "errmsg": "data format error"})
            return
        pushing: tuple[dict[str, str], bytes] | None = None
        with self._lock:
            self.attempts.append(client_msg_id)
            fault = self._script.pop()
            if fault is None and transient(self._random, self.transient_rate):
                fault = Fault.errcode(-1)
            answer: tuple[int, dict[str, Any], str | None]
            if fault is not None and fault.kind == "http":
                answer = (fault.status, {"errcode": -1, "errmsg": "scripted"}, fault.retry_after)
            elif fault is not None and fault.kind == "errcode":
                answer = (200, {"errcode": fault.code, "errmsg": "scripted"}, None)
            elif touser in self.unsubscribed:
                answer = (200, {"errcode": 43004, "errmsg": "require subscribe"}, None)
            elif fault is not None and not fault.accept:
                answer = (200, {"errcode": 0, "errmsg": "ok", "msgid": 0}, None)
            else:
                key = (touser, client_msg_id)
                message = self.messages.get(key)
                if message is None:
                    self._msgids += 1
                    message = self.messages[key] = EmulatedTemplateMessage(
                        msgid=self._msgids,
                        touser=touser,
                        template_id=str(payload.get("template_id", "")),
                        url=str(payload.get("url", "")),
                        data=dict(payload.get("data") or {}),
                        client_msg_id=client_msg_id,
                    )
                    if self.auto_deliver:
                        message.events.append("success")
                        if self.callback_url:
                            pushing = self.event_push(touser, message.msgid, "success")
                answer = (200, {"errcode": 0, "errmsg": "ok", "msgid": message.msgid}, None)
        if pushing is not None:
            self.push_later(self._push, *pushing)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.seconds)
        json_reply(handler, answer[0], answer[1], retry_after=answer[2])


def sandbox(
    *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None, callback_url: str | None = None
) -> WeChatEmulator:
    """The API as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): every template
    message delivered at once, the event pushed to ``{callback_url}/wechat``."""
    return WeChatEmulator(
        host=host, port=port, state_dir=state_dir, callback_url=join_callback(callback_url, "wechat"), auto_deliver=True
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_wechat.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_wechat.emulator")


if __name__ == "__main__":
    main()
