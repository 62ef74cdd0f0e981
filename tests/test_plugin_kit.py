"""The plugin kit (delivery_sdk.plugin_kit): each helper's contract and every failure path."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from delivery_sdk import (
    BaseChannel,
    ChannelError,
    ChannelKind,
    ContactKind,
    DeliveryClient,
    InvalidContact,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    ServiceNature,
    TransientChannelError,
    VirtualClock,
)
from delivery_sdk.callbacks import CallbackReceiver, CallbackResponse, asgi_app, sign_callback
from delivery_sdk.plugin_kit import (
    RETRYABLE_ERRORS,
    AccessToken,
    CallbackReply,
    EnvChannelPlugin,
    PluginError,
    PluginSettings,
    RetryableResponse,
    RetryConfig,
    SettingsError,
    SideLog,
    TokenCache,
    TokenRefused,
    aretrying,
    fetch_document,
    make_client,
    plugin_settings,
    read_json_object,
    read_rate_and_timeout,
    read_values,
    retry_after_or_backoff,
    retrying,
)
from delivery_sdk.plugin_kit.testing import make_dispatch, make_document, parse_callback
from delivery_sdk.retry import set_testing
from delivery_sdk.testing import channels_plugin
from delivery_sdk.testing.emulator import EmulatorServer, json_reply, read_body

# -- http -------------------------------------------------------------------------------------------


def test_make_client_uses_the_given_transport_and_base_url() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async def go() -> Any:
        async with make_client("https://sms.example/api/", transport=httpx.MockTransport(answer), timeout=3) as http:
            assert http.timeout.read == 3
            return (await http.get("/status")).json()

    assert asyncio.run(go()) == {"ok": True}
    assert str(seen[0].url) == "https://sms.example/api/status"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://x"}, r"DELIVERY_SDK_X_URL must be an http\(s\) URL"),
        ({"base_url": "https://x", "timeout": 0}, "timeout must be a positive"),
        ({"base_url": "https://x", "max_connections": 0}, "max_connections must be at least 1"),
    ],
)
def test_make_client_refuses_unusable_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_client(what="DELIVERY_SDK_X_URL", **kwargs)


# -- retry ------------------------------------------------------------------------------------------


def test_retrying_retries_transient_errors_then_gives_the_last_one() -> None:
    calls: list[int] = []
    waits: list[float] = []
    config = RetryConfig(attempts=3, initial=0.5, maximum=1.0, jitter=0.0)

    def call() -> None:
        for attempt in retrying(config, sleep=waits.append):
            with attempt:
                calls.append(1)
                raise TransientChannelError(["first", "second", "third"][len(calls) - 1])

    with pytest.raises(TransientChannelError, match="third"):
        call()
    assert (len(calls), waits) == (3, [0.5, 1.0])


def test_retrying_lets_a_permanent_error_through_at_once() -> None:
    calls: list[int] = []

    def call() -> None:
        for attempt in retrying(RetryConfig(attempts=5), sleep=lambda _: None):
            with attempt:
                calls.append(1)
                raise ChannelError("refused")

    with pytest.raises(ChannelError):
        call()
    assert calls == [1]


def test_retrying_obeys_set_testing_and_refuses_bad_settings() -> None:
    calls: list[int] = []

    def call() -> None:
        for attempt in retrying(RetryConfig(attempts=9)):
            with attempt:
                calls.append(1)
                raise TransientChannelError("down")

    with set_testing(attempts=1), pytest.raises(TransientChannelError):
        call()
    assert calls == [1]
    with pytest.raises(ValueError, match="at least 1"):
        retrying(RetryConfig(attempts=0))
    with pytest.raises(ValueError, match="deadline"):
        aretrying(deadline=0)


def test_aretrying_retries_coroutines() -> None:
    calls: list[int] = []

    async def go() -> str:
        async for attempt in aretrying(RetryConfig(attempts=2, initial=0.0, maximum=0.0, jitter=0.0)):
            with attempt:
                calls.append(1)
                if len(calls) == 1:
                    raise TransientChannelError("once")
                return "done"
        raise AssertionError("unreachable")

    assert asyncio.run(go()) == "done"
    assert calls == [1, 1]


# -- tokens -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_cache_shares_one_fetch_between_concurrent_calls_and_refreshes_before_expiry() -> None:
    clock = Clock()
    fetched: list[str | None] = []

    async def fetch(stale: str | None) -> AccessToken:
        fetched.append(stale)
        await asyncio.sleep(0)
        return AccessToken(f"T{len(fetched)}", 600)

    cache = TokenCache(fetch, refresh_margin=60, monotonic=clock, name="demo")

    async def go() -> list[str]:
        return list(await asyncio.gather(*(cache.get() for _ in range(20))))

    assert asyncio.run(go()) == ["T1"] * 20
    clock.now = 539
    assert asyncio.run(cache.get()) == "T1"
    clock.now = 541  # within the margin of expiry
    assert asyncio.run(cache.get()) == "T2"
    assert (cache.fetches, fetched) == (2, [None, None])
    assert "T2" not in repr(cache)
    assert "T2" not in repr(AccessToken("T2", 1))


def test_token_cache_refreshes_once_on_refusal_then_gives_up_transiently() -> None:
    tokens = iter(["old", "new", "newer"])
    stales: list[str | None] = []

    async def fetch(stale: str | None) -> AccessToken:
        stales.append(stale)
        return AccessToken(next(tokens), 7200)

    cache = TokenCache(fetch)
    used: list[str] = []

    async def refuse_old(token: str) -> str:
        used.append(token)
        if token == "old":
            raise TokenRefused
        return f"sent with {token}"

    assert asyncio.run(cache.call(refuse_old)) == "sent with new"
    assert (used, stales) == (["old", "new"], [None, "old"])

    async def refuse_all(token: str) -> str:
        raise TokenRefused

    with pytest.raises(TransientChannelError, match="fresh access token was refused too"):
        asyncio.run(cache.call(refuse_all))


def test_token_cache_refuses_bad_settings_and_bad_tokens() -> None:
    async def fetch(stale: str | None) -> AccessToken:
        return "not a token"  # type: ignore[return-value]

    with pytest.raises(ValueError, match="refresh_margin"):
        TokenCache(fetch, refresh_margin=-1)
    with pytest.raises(TypeError, match="must return an AccessToken"):
        asyncio.run(TokenCache(fetch).get())
    with pytest.raises(ValueError, match="non-empty"):
        AccessToken("", 10)
    with pytest.raises(ValueError, match="positive"):
        AccessToken("x", 0)


# -- settings ---------------------------------------------------------------------------------------

REQUIRED = ("DELIVERY_SDK_DEMO_URL", "DELIVERY_SDK_DEMO_SECRET")


def test_plugin_settings_not_configured_is_not_an_error() -> None:
    settings = plugin_settings("demo", "DELIVERY_SDK_DEMO_", environ={"OTHER": "1"}, required=REQUIRED)
    assert not settings.configured


def test_plugin_settings_names_every_missing_variable() -> None:
    with pytest.raises(PluginError) as caught:
        plugin_settings("demo", "DELIVERY_SDK_DEMO_", environ={"DELIVERY_SDK_DEMO_RATE": "2"}, required=REQUIRED)
    assert caught.value.problems == (
        "DELIVERY_SDK_DEMO_URL is required",
        "DELIVERY_SDK_DEMO_SECRET is required (a secret: set it, or reference a file in the settings file)",
    )


def test_plugin_settings_reads_a_settings_file_under_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[env]\nDELIVERY_SDK_DEMO_URL = "https://file.example"\nDELIVERY_SDK_DEMO_SECRET = {{ file = "{secret}" }}\n'
    )
    settings = plugin_settings(
        "demo",
        "DELIVERY_SDK_DEMO_",
        environ={"DELIVERY_SDK_DEMO_URL": "https://env.example"},
        settings_file=config,
        required=REQUIRED,
    )
    assert settings.get("DELIVERY_SDK_DEMO_URL") == "https://env.example"  # the environment wins
    assert settings.secret("DELIVERY_SDK_DEMO_SECRET") == "s3cret"
    config.write_text('[env]\nDELIVERY_SDK_DEMO_SECRET = "inline"\n')
    with pytest.raises(SettingsError):
        plugin_settings("demo", "DELIVERY_SDK_DEMO_", environ={}, settings_file=config)


def test_plugin_settings_refuses_a_bad_prefix_or_a_foreign_required_name() -> None:
    with pytest.raises(ValueError, match="DELIVERY_SDK_NAME_"):
        plugin_settings("demo", "demo_", environ={})
    with pytest.raises(ValueError, match="does not start with"):
        plugin_settings("demo", "DELIVERY_SDK_DEMO_", environ={}, required=["DELIVERY_SDK_OTHER_URL"])


# -- side-log ---------------------------------------------------------------------------------------

SCHEMA = "CREATE TABLE IF NOT EXISTS demo_sent (dispatch_id TEXT PRIMARY KEY, ref TEXT);"


def test_side_log_survives_reopening_and_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "side.sqlite3"
    with SideLog(path, SCHEMA) as log:
        assert log.execute("INSERT INTO demo_sent VALUES (?, ?)", ("T1.1", "r1")) == 1
        with pytest.raises(sqlite3.IntegrityError):
            log.executemany("INSERT INTO demo_sent VALUES (?, ?)", [("T1.2", "r2"), ("T1.1", "dup")])
    with SideLog(path, SCHEMA) as log:
        assert log.all("SELECT dispatch_id, ref FROM demo_sent") == [("T1.1", "r1")]
        assert log.one("SELECT ref FROM demo_sent WHERE dispatch_id = ?", ("T9",)) is None
        assert "side.sqlite3" in repr(log)


def test_side_log_with_a_broken_schema_raises_and_closes() -> None:
    with pytest.raises(sqlite3.OperationalError):
        SideLog(":memory:", "CREATE TABLE broken (")


# -- documents --------------------------------------------------------------------------------------


def test_fetch_document_checks_the_digest() -> None:
    document = make_document(b"the summons")

    async def async_source(_: Any) -> bytes:
        return b"the summons"

    assert asyncio.run(fetch_document(lambda _: b"the summons", document, what="demo")) == b"the summons"
    assert asyncio.run(fetch_document(async_source, document, what="demo")) == b"the summons"
    with pytest.raises(ChannelError, match="does not match its SHA-256"):
        asyncio.run(fetch_document(lambda _: b"another text", document, what="demo"))
    with pytest.raises(ChannelError, match="gave no bytes"):
        asyncio.run(fetch_document(lambda _: "text", document, what="demo"))  # type: ignore[arg-type,return-value]

    def down(_: Any) -> bytes:
        raise OSError("store down")

    with pytest.raises(TransientChannelError, match="document source failed for D1 \\(OSError\\)"):
        asyncio.run(fetch_document(down, document, what="demo"))


# -- testing helpers --------------------------------------------------------------------------------


def test_make_dispatch_defaults_and_errors() -> None:
    dispatch = make_dispatch("sms")
    assert (dispatch.kind, dispatch.channel, dispatch.contact.kind) == (ChannelKind.SMS, "sms", ContactKind.MOBILE)
    assert dispatch.task_id == "T000001"
    email = make_dispatch(ChannelKind.EMAIL, channel="mail-2", contact="a@example.com")
    assert (email.channel, email.contact.value) == ("mail-2", "a@example.com")
    with pytest.raises(ValueError, match="unknown channel kind 'pigeon'"):
        make_dispatch("pigeon")
    with pytest.raises(ValueError, match="needs contact="):
        make_dispatch("print")


def test_make_dispatch_takes_a_plugin_kinds_declared_contact_kind() -> None:
    account = ContactKind.declare("kitaccount", label="测试账号")
    kind = ChannelKind.declare("kitim", label="测试消息", nature=ServiceNature.INSTANT_MESSAGE, contact=account)
    dispatch = make_dispatch(kind, contact="user-1")
    assert (dispatch.kind, dispatch.contact.kind, dispatch.contact.value) == (kind, account, "user-1")
    with pytest.raises(ValueError, match="'kitim' dispatch needs contact="):
        make_dispatch(kind)
    with pytest.raises(InvalidContact):
        make_dispatch("sms", contact="12")


# -- the callback reply -----------------------------------------------------------------------------

SECRET = "push-secret"


class ReplyingChannel(BaseChannel):
    """A pushing provider that wants ``success`` as the answer (as WeChat does)."""

    name = "wx-push"
    kind = ChannelKind.WECHAT

    def __init__(self, reply: object = None) -> None:
        self.reply = reply if reply is not None else CallbackReply(b"success")
        self.seen: list[CallbackResponse] = []

    async def send(self, dispatch: Any) -> Any:
        raise AssertionError("not used")

    async def status(self, dispatch: Any) -> Any:
        raise AssertionError("not used")

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        event = json.loads(body)
        return [
            Receipt(
                dispatch_id=event["dispatch_id"],
                kind=ReceiptKind.DELIVERED,
                at=datetime.fromisoformat(event["at"]),
                provider_event_id=event["id"],
            )
        ]

    def callback_reply(self, response: CallbackResponse) -> object:
        self.seen.append(response)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


@pytest.fixture
def receiver_world() -> Iterator[tuple[DeliveryClient, ReplyingChannel, VirtualClock]]:
    clock = VirtualClock()
    channel = ReplyingChannel()
    client = DeliveryClient(
        ":memory:",
        plugins=[channels_plugin(channel)],
        clock=clock,
        load_entry_points=False,  # type: ignore[arg-type]
    )
    yield client, channel, clock
    client.close()


def _push(clock: VirtualClock, event_id: str = "e1") -> tuple[dict[str, str], bytes]:
    body = json.dumps({"dispatch_id": "T9.1", "id": event_id, "at": clock.now().isoformat()}).encode()
    return sign_callback(SECRET, body, timestamp=clock.now()), body


def test_an_adapter_shapes_the_reply_of_an_accepted_callback_only(
    receiver_world: tuple[DeliveryClient, ReplyingChannel, VirtualClock],
) -> None:
    client, channel, clock = receiver_world
    receiver = CallbackReceiver(client, secrets={"wx-push": SECRET})
    headers, body = _push(clock)
    response = receiver.handle("wx-push", headers, body)
    assert (response.status, response.content(), response.content_type) == (
        200,
        b"success",
        "text/plain; charset=utf-8",
    )
    assert channel.seen[0].body["receipts"] == 1
    forged = receiver.handle("wx-push", {**headers, "X-Delivery-Signature": "00"}, body)
    assert (forged.status, forged.content(), forged.content_type) == (401, b'{"error":"rejected"}', "application/json")
    assert len(channel.seen) == 1  # a refusal keeps the receiver's own answer

    async def over_asgi() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi_app(receiver))
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
            headers, body = _push(clock, "e2")
            return await http.post("/callbacks/wx-push", headers=headers, content=body)

    answer = asyncio.run(over_asgi())
    assert (answer.status_code, answer.text, answer.headers["content-type"]) == (
        200,
        "success",
        "text/plain; charset=utf-8",
    )


@pytest.mark.parametrize("bad", [RuntimeError("boom"), "success", 42])
def test_a_broken_callback_reply_falls_back_to_the_default_body(
    receiver_world: tuple[DeliveryClient, ReplyingChannel, VirtualClock], bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    client, channel, clock = receiver_world
    channel.reply = bad
    receiver = CallbackReceiver(client, secrets={"wx-push": SECRET})
    headers, body = _push(clock)
    with caplog.at_level(logging.ERROR, logger="delivery_sdk.callbacks"):
        response = receiver.handle("wx-push", headers, body)
    assert (response.status, response.content_type) == (200, "application/json")
    assert json.loads(response.content())["ok"] is True
    assert "callback_reply" in caplog.text
    assert "boom" not in caplog.text


def test_callback_reply_refuses_a_body_that_is_not_bytes_or_a_bad_content_type() -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        CallbackReply("success")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one line of ASCII"):
        CallbackReply(b"x", "text/plain\r\nX-Evil: 1")


def test_parse_callback_helper_reads_receipts_as_the_receiver_does() -> None:
    receipts = parse_callback(
        ReplyingChannel(), {}, b'{"dispatch_id": "T1.1", "id": "e", "at": "2026-01-01T00:00:00+08:00"}'
    )
    assert [r.dispatch_id for r in receipts] == ["T1.1"]


# -- EmulatorServer.transport() ---------------------------------------------------------------------


class EchoEmulator(EmulatorServer):
    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        if request.path.startswith("/drop"):
            return  # an emulated dropped connection: no answer
        if request.path.startswith("/boom"):
            raise KeyError("a bug in the emulator")
        body = read_body(request)
        json_reply(
            request,
            201,
            {"method": method, "path": request.path, "body": body.decode(), "x": request.headers["x-demo"]},
        )


def test_emulator_transport_serves_the_same_handler_without_a_socket() -> None:
    emulator = EchoEmulator(name="echo")

    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://emulator") as http:
            posted = await http.post("/send?a=1", content=b"hello", headers={"X-Demo": "yes"})
            listing = await http.get("/_sandbox/received")
            with pytest.raises(httpx.RemoteProtocolError, match="without an answer"):
                await http.get("/drop")
            with pytest.raises(httpx.RemoteProtocolError, match="failed \\(KeyError\\)"):
                await http.get("/boom")
            return posted, listing

    posted, listing = asyncio.run(go())
    assert posted.status_code == 201
    assert posted.json() == {"method": "POST", "path": "/send?a=1", "body": "hello", "x": "yes"}
    assert [r["path"] for r in listing.json()["received"]] == ["/send"]
    assert listing.json()["url"] is None
    assert [r["path"] for r in emulator.received()] == ["/send", "/drop", "/boom"]
    with httpx.Client(transport=emulator.transport(), base_url="http://emulator") as http:  # sync clients too
        assert http.put("/x", content=b"", headers={"X-Demo": "s"}).json()["method"] == "PUT"


def test_side_log_transaction_commits_or_rolls_back() -> None:
    with SideLog(":memory:", SCHEMA) as log:
        with log.transaction() as db:
            db.execute("INSERT INTO demo_sent VALUES ('T1.1', NULL)")
            db.execute("UPDATE demo_sent SET ref = 'r' WHERE dispatch_id = 'T1.1'")

        def half_way() -> None:
            with log.transaction() as db:
                db.execute("INSERT INTO demo_sent VALUES ('T1.2', 'x')")
                raise RuntimeError("half way")

        with pytest.raises(RuntimeError):
            half_way()
        assert log.all("SELECT * FROM demo_sent") == [("T1.1", "r")]


def test_retry_after_or_backoff_and_the_hooks_of_retrying() -> None:
    wait = retry_after_or_backoff(0.5, 3.0)
    assert [wait(n, None) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert wait(1, TransientChannelError("busy", retry_after=7)) == 7.0
    with pytest.raises(ValueError, match="initial <= maximum"):
        retry_after_or_backoff(2.0, 1.0)
    told: list[tuple[int, str, float]] = []
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    def call() -> None:
        raise TransientChannelError("down")

    retry = retrying(
        RetryConfig(attempts=10),
        sleep=sleep,
        wait=wait,
        stop_when=lambda upcoming: clock["now"] + upcoming >= 4.0,  # a budget of 4 s on the caller's clock
        on_retry=lambda attempt, error, seconds: told.append((attempt, type(error).__name__, seconds)),
    )
    with pytest.raises(TransientChannelError):
        retry(call)
    # waits of 0.5, 1 and 2 s fit the budget; the fourth (3 s) would end at 6.5 s: no fifth attempt
    assert told == [
        (1, "TransientChannelError", 0.5),
        (2, "TransientChannelError", 1.0),
        (3, "TransientChannelError", 2.0),
    ]
    assert (retry.statistics["attempt_number"], clock["now"]) == (4, 3.5)


class DemoPlugin(EnvChannelPlugin[ReplyingChannel]):
    title = "demo"
    prefix = "DELIVERY_SDK_DEMO_"
    main_variable = "DELIVERY_SDK_DEMO_URL"

    def read(self, settings: PluginSettings, clock: Any) -> Any:
        values = read_values(
            settings, {"url": "DELIVERY_SDK_DEMO_URL", "key": "DELIVERY_SDK_DEMO_KEY"}, ["url", "key"], secrets=["key"]
        )
        read_rate_and_timeout(settings, {"rate": "DELIVERY_SDK_DEMO_RATE", "timeout": "DELIVERY_SDK_DEMO_TIMEOUT"})

        def build() -> ReplyingChannel:
            if not values["url"].startswith("https://"):
                raise ValueError("the URL must be https")
            return ReplyingChannel()

        return build


def test_env_channel_plugin_registers_nothing_unconfigured_and_names_every_problem() -> None:
    assert DemoPlugin({}).configured() is None
    assert repr(DemoPlugin()) == "DemoPlugin()"
    with pytest.raises(PluginError) as caught:
        DemoPlugin({"DELIVERY_SDK_DEMO_RATE": "fast"}).configured()
    assert caught.value.problems == (
        "DELIVERY_SDK_DEMO_URL is required",
        "DELIVERY_SDK_DEMO_KEY is required (a secret: set it, or reference a file in the settings file)",
        "DELIVERY_SDK_DEMO_RATE must be a number, not 'fast'",
    )
    with pytest.raises(PluginError, match=r"DELIVERY_SDK_DEMO_URL and friends\) is not usable: the URL must be https"):
        DemoPlugin({"DELIVERY_SDK_DEMO_URL": "http://x", "DELIVERY_SDK_DEMO_KEY": "k"}).configured()
    good = {"DELIVERY_SDK_DEMO_URL": "https://x", "DELIVERY_SDK_DEMO_KEY": "k"}
    assert isinstance(DemoPlugin(good).configured(), ReplyingChannel)
    client = DeliveryClient(":memory:", plugins=[DemoPlugin(good)], load_entry_points=False)
    try:
        assert client.host.channels.get("wx-push").name == "wx-push"
    finally:
        client.close()


def test_read_json_object_refuses_what_is_not_a_small_json_object() -> None:
    assert read_json_object(b'{"a": 1}', what="demo push") == {"a": 1}
    with pytest.raises(MalformedReceipt, match="demo push body is larger than 1 MiB"):
        read_json_object(b" " * ((1 << 20) + 1), what="demo push")
    with pytest.raises(MalformedReceipt, match="larger than 10 bytes"):
        read_json_object(b'{"a": 12345678}', what="demo push", max_bytes=10)
    with pytest.raises(MalformedReceipt, match="is not JSON"):
        read_json_object(b"{", what="demo push")
    with pytest.raises(MalformedReceipt, match="is not a JSON object"):
        read_json_object(b"[1]", what="demo push")


def test_retryable_response_says_only_the_status() -> None:
    error = RetryableResponse(503, 2.0)
    assert (str(error), error.status, error.retry_after) == ("HTTP 503", 503, 2.0)
    assert RetryableResponse in RETRYABLE_ERRORS
