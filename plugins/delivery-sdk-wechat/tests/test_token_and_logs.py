"""The stable access token (POST, the secret in the body) and what reaches the logs: neither the app
secret nor the access token is in any log line, httpx's own INFO request lines included."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from delivery_sdk_wechat import TOKEN_PATH, AccessTokenTransport, WeChatChannel
from delivery_sdk_wechat.emulator import Fault, WeChatEmulator

from delivery_sdk import ChannelKind, Dispatch, TransientChannelError
from delivery_sdk.model import Contact, ContactKind
from delivery_sdk.testing import make_party, make_request


@pytest.fixture
def wechat() -> Iterator[WeChatEmulator]:
    with WeChatEmulator() as emulator:
        yield emulator


def dispatch(dispatch_id: str = "T1.1") -> Dispatch:
    request = make_request(make_party(mobile=None, wechat="oWx_token_test"))
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.split(".")[0],
        channel="wechat",
        kind=ChannelKind.WECHAT,
        contact=Contact(kind=ContactKind.WECHAT, value="oWx_token_test"),
        case=request.case,
        recipient_name="张三",
        documents=request.documents,
    )


async def send(channel: WeChatChannel, *dispatches: Dispatch) -> list[Any]:
    async with channel:
        return [await channel.send(d) for d in dispatches]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)


def test_the_token_is_a_post_with_the_secret_in_the_body_and_no_secret_is_logged(
    wechat: WeChatEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    [result] = asyncio.run(send(wechat.channel(), dispatch()))
    assert result.accepted  # the wire request carried the token: the emulator accepted it
    assert wechat.token_requests == 1
    tokens = list(wechat._tokens)
    text = everything_logged(caplog)
    assert f"POST {wechat.url}{TOKEN_PATH}" in text  # httpx's INFO line for the token request...
    assert "/cgi-bin/message/template/send" in text  # ...and for the send
    assert wechat.secret not in text
    assert "access_token" not in text
    assert not any(token in text for token in tokens)


def test_a_query_string_on_the_token_endpoint_is_refused(wechat: WeChatEmulator) -> None:
    answer = httpx.post(
        f"{wechat.url}{TOKEN_PATH}?secret={wechat.secret}",
        json={"grant_type": "client_credential", "appid": wechat.appid, "secret": wechat.secret},
    )
    assert answer.json()["errcode"] == 40097


def test_force_refresh_at_most_once_per_30_seconds(wechat: WeChatEmulator) -> None:
    now = [1000.0]
    channel = wechat.channel(monotonic=lambda: now[0])
    wechat.fail_next(Fault.errcode(40001))
    assert asyncio.run(send(channel, dispatch("T1.1")))[0].accepted
    assert wechat.forced_refreshes == 1
    now[0] += 5
    wechat.fail_next(Fault.errcode(40001))
    channel = wechat.channel(monotonic=lambda: now[0])
    channel._forced_at = 1000.0  # the same process forced 5 s ago
    with pytest.raises(TransientChannelError, match="keeps answering a refused access token"):
        asyncio.run(send(channel, dispatch("T2.1")))
    assert wechat.forced_refreshes == 1


def test_with_a_client_of_your_own_the_token_goes_in_params(wechat: WeChatEmulator) -> None:
    async def scenario() -> bool:
        async with httpx.AsyncClient(base_url=wechat.url) as http:
            channel = wechat.channel(http=http)
            result = await channel.send(dispatch())
            return result.accepted

    assert asyncio.run(scenario())


def test_the_transport_adds_the_token_only_on_the_wire() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={})

    async def scenario() -> httpx.Response:
        transport = AccessTokenTransport(httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport, base_url="http://wechat.test") as client:
            return await client.post(
                "/x?a=1", content=b"{}", extensions={"delivery_sdk_wechat.access_token": "TOKEN-1"}
            )

    response = asyncio.run(scenario())
    assert seen == ["http://wechat.test/x?a=1&access_token=TOKEN-1"]
    assert "access_token" not in str(response.request.url)


@pytest.mark.parametrize("field", ["secret", "server_token", "read_secret"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_secrets_are_refused_at_construction(wechat: WeChatEmulator, field: str, value: str) -> None:
    options = {"secret": wechat.secret, "server_token": "s", "read_secret": "r", field: value}
    secret = options.pop("secret")
    with pytest.raises(ValueError, match=f"{field} is empty"):
        WeChatChannel(
            wechat.appid,
            secret,
            template_id="T",
            link_template="https://c.example/{token}",
            base_url=wechat.url,
            **options,
        )
