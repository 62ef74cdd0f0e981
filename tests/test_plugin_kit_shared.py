"""The kit's shared helpers (json_answer, LoopClient, check_settings, request_json,
aware_datetime, configured_or_none, EnvChannelPlugin.environ_or): contract and failure paths."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from delivery_sdk import ChannelError, MalformedReceipt, PluginError, TransientChannelError
from delivery_sdk.plugin_kit import (
    EnvChannelPlugin,
    LoopClient,
    RateLimiter,
    aware_datetime,
    check_base_url,
    check_settings,
    configured_or_none,
    json_answer,
    make_client,
    request_json,
)


def test_json_answer_returns_the_object() -> None:
    assert json_answer(httpx.Response(200, json={"a": 1}), "x.send") == {"a": 1}


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, text="<html>"), r"^x.send: the carrier's answer is not JSON$"),
        (httpx.Response(200, json=[1, 2]), r"^x.send: the carrier's answer is not a JSON object$"),
        (httpx.Response(200, json="text"), r"^x.send: the carrier's answer is not a JSON object$"),
    ],
)
def test_json_answer_refuses_what_is_not_a_json_object(response: httpx.Response, message: str) -> None:
    with pytest.raises(ChannelError, match=message) as caught:
        json_answer(response, "x.send", party="the carrier")
    assert not isinstance(caught.value, TransientChannelError)  # the same answer would come again


def test_json_answer_names_the_service_by_default() -> None:
    with pytest.raises(ChannelError, match="the service's answer is not JSON"):
        json_answer(httpx.Response(200, text=""), "x.status")


def _factory(made: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    client = make_client("http://127.0.0.1:9", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    made.append(client)
    return client


def test_loop_client_makes_one_client_per_event_loop() -> None:
    made: list[httpx.AsyncClient] = []
    news: list[int] = []
    holder = LoopClient(lambda: _factory(made), on_new=lambda: news.append(len(made)))

    async def twice() -> httpx.AsyncClient:
        first = holder.get()
        assert holder.get() is first  # same loop: same client
        assert (await first.get("/")).status_code == 204
        return first

    one = asyncio.run(twice())
    two = asyncio.run(twice())  # a new loop: a new client
    assert one is not two
    assert made == [one, two]
    assert news == [1, 2]

    async def close_then_get() -> None:
        await holder.aclose()
        assert two.is_closed
        await holder.aclose()  # nothing to close: no error
        again = holder.get()
        assert again is made[-1]
        await holder.aclose()

    asyncio.run(close_then_get())
    assert len(made) == 3
    assert not one.is_closed  # dropped with its loop, never closed by the holder (its loop is gone)


def test_loop_client_needs_a_running_loop() -> None:
    holder = LoopClient(lambda: _factory([]))
    with pytest.raises(RuntimeError):
        holder.get()


def test_check_settings_returns_the_checked_base_url() -> None:
    assert check_settings("https://api.example.com/v1/") == check_base_url("https://api.example.com/v1/")
    assert (
        check_settings(
            "http://127.0.0.1:8080",
            required=(("app_id", "a"),),
            secrets=(("secret", "s"),),
            link_template="https://c.example/s/{token}",
        )
        == "http://127.0.0.1:8080"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "ftp://x.example"}, "http"),
        ({"required": (("app_id", "a"), ("template_id", ""))}, r"^template_id must not be empty$"),
        ({"required": (("app_id", None),)}, r"^app_id must not be empty$"),
        ({"secrets": (("server_token", "  "),)}, "server_token"),
        ({"secrets": (("server_token", None),)}, "server_token"),
        ({"link_template": "https://c.example/s/"}, r"link_template must contain '\{token\}', e.g. 'https://court"),
        (
            {"link_template": "https://c.example/w/", "link_example": "https://court.example/w/{token}"},
            r"e.g. 'https://court.example/w/\{token\}'",
        ),
    ],
)
def test_check_settings_names_the_first_unusable_setting(options: dict[str, Any], message: str) -> None:
    base_url = options.pop("base_url", "https://api.example.com")
    with pytest.raises(ValueError, match=message) as caught:
        check_settings(base_url, **options)
    assert "  " not in str(caught.value)  # never the secret's value


def test_check_settings_checks_in_order() -> None:
    with pytest.raises(ValueError, match="app_id"):
        check_settings("https://a.example", required=(("app_id", ""),), secrets=(("s", ""),), link_template="x")
    with pytest.raises(ValueError, match="link_template"):
        check_settings("https://a.example", required=(("app_id", "a"),), secrets=(("s", "k"),), link_template="x")


def _answering(status: int, content: bytes, seen: list[httpx.Request] | None = None) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=content, headers={"retry-after": "4"})

    return httpx.AsyncClient(base_url="http://api.example", transport=httpx.MockTransport(answer))


def test_request_json_sends_and_reads() -> None:
    async def run() -> None:
        seen: list[httpx.Request] = []
        limiter = RateLimiter(None)
        async with _answering(200, b'{"code": "OK"}', seen) as client:
            response, data = await request_json(
                client, "POST", "/send", what="x.send", limiter=limiter, content=b"body", headers={"X-A": "1"}
            )
        assert (response.status_code, data) == (200, {"code": "OK"})
        assert (seen[0].method, seen[0].url.path, seen[0].content, seen[0].headers["x-a"]) == (
            "POST",
            "/send",
            b"body",
            "1",
        )
        async with _answering(200, b"<html>") as client:
            assert (await request_json(client, "GET", "/", what="x.status"))[1] is None  # not JSON: None
        async with _answering(200, b"[1]") as client:
            assert (await request_json(client, "GET", "/", what="x.status"))[1] == [1]  # any JSON

    asyncio.run(run())


def test_request_json_maps_failures() -> None:
    async def run() -> None:
        async with _answering(503, b"{}") as client:
            with pytest.raises(TransientChannelError, match=r"x\.send") as busy:
                await request_json(client, "POST", "/", what="x.send")
            assert busy.value.retry_after == 4.0
        async with _answering(403, b"{}") as client:
            with pytest.raises(ChannelError) as refused:
                await request_json(client, "POST", "/", what="x.send")
            assert not isinstance(refused.value, TransientChannelError)
        async with _answering(400, b'{"Code": "Throttling"}') as client:  # check=False: the caller reads it
            response, data = await request_json(client, "POST", "/", what="x.send", check=False)
            assert (response.status_code, data) == (400, {"Code": "Throttling"})

        def hang_up(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectTimeout("timed out", request=request)

        async with httpx.AsyncClient(base_url="http://api.example", transport=httpx.MockTransport(hang_up)) as client:
            with pytest.raises(TransientChannelError):
                await request_json(client, "GET", "/", what="x.status")

    asyncio.run(run())


def test_aware_datetime_reads_an_iso_time_with_its_offset() -> None:
    moment = aware_datetime("2024-03-01T08:00:00+08:00", "x at")
    assert moment == datetime(2024, 3, 1, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(hours=8)


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, r"^x at must be an ISO 8601 string$"),
        (1709251200, r"^x at must be an ISO 8601 string$"),
        ("yesterday", r"^x at is not ISO 8601$"),
        ("2024-03-01T08:00:00", r"^x at has no UTC offset$"),
    ],
)
def test_aware_datetime_refuses_anything_else(value: object, message: str) -> None:
    with pytest.raises(MalformedReceipt, match=message):
        aware_datetime(value, "x at")
    with pytest.raises(_Stop, match=message):
        aware_datetime(value, "x at", error=_Stop)


def test_configured_or_none_logs_a_broken_configuration(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.plugin")
    assert configured_or_none(lambda: "adapter", "x plugin", logger) == "adapter"
    assert configured_or_none(lambda: None, "x plugin", logger) is None

    def broken() -> str:
        raise PluginError("x is broken", problems=["DELIVERY_SDK_X_URL is not a URL"])

    with caplog.at_level(logging.WARNING, logger="test.plugin"):
        assert configured_or_none(broken, "x plugin", logger) is None
    assert caplog.messages == ["x plugin not configured: DELIVERY_SDK_X_URL is not a URL"]

    def failing() -> str:
        raise OSError("disk")

    with pytest.raises(OSError, match="disk"):  # only a configuration problem is swallowed
        configured_or_none(failing, "x plugin", logger)


def test_env_channel_plugin_environ_or_prefers_its_own() -> None:
    class _Plugin(EnvChannelPlugin[str]):
        title = "x"
        prefix = "DELIVERY_SDK_X_"
        main_variable = "DELIVERY_SDK_X_URL"

    host = {"A": "1"}
    assert _Plugin().environ_or(host) is host
    own = {"B": "2"}
    assert _Plugin(own).environ_or(host) is own
    assert _Plugin().environ_or(None) is None
