"""redact_url and RedactSecretsFilter: secrets in URLs hidden in log records, opt-in, never installed by
the SDK itself."""

from __future__ import annotations

import logging

import httpx
import pytest

from delivery_sdk.httpchannel import RedactSecretsFilter, redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'HTTP Request: POST https://wx.test/cgi-bin/send?access_token=AT12_x-y "HTTP/1.1 200 OK"',
            'HTTP Request: POST https://wx.test/cgi-bin/send?access_token=REDACTED "HTTP/1.1 200 OK"',
        ),
        (
            "GET /t?grant_type=client_credential&appid=wx1&secret=s3cr3t",
            "GET /t?grant_type=client_credential&appid=wx1&secret=REDACTED",
        ),
        ("/x?Sign=ab&nonce=1&SIGNATURE=cd&api_key=k", "/x?Sign=REDACTED&nonce=1&SIGNATURE=REDACTED&api_key=REDACTED"),
        ("/x?appid=wx1&openid=o1&page=2", "/x?appid=wx1&openid=o1&page=2"),  # not secrets: untouched
        ("/x?token=", "/x?token="),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_the_filter_redacts_httpx_records_and_leaves_the_rest_alone() -> None:
    redactor = RedactSecretsFilter()
    url = httpx.URL("https://api.example/send?access_token=AT-1&x=1")
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("POST", url), None)
    assert redactor.filter(record)
    assert record.getMessage() == "HTTP Request: POST https://api.example/send?access_token=REDACTED&x=1"
    mine = logging.LogRecord("myapp", logging.INFO, __file__, 1, "see %s", ("?secret=abc",), None)
    assert redactor.filter(mine)
    assert mine.getMessage() == "see ?secret=abc"  # another logger: not this filter's business
    assert RedactSecretsFilter(loggers=None).filter(mine)
    assert mine.getMessage() == "see ?secret=REDACTED"


def test_attached_to_a_handler_it_hides_the_token_httpx_logs(caplog: pytest.LogCaptureFixture) -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    caplog.set_level(logging.INFO, logger="httpx")
    caplog.handler.addFilter(RedactSecretsFilter())
    try:
        with httpx.Client(transport=httpx.MockTransport(ok)) as client:
            client.get("https://api.example/x", params={"access_token": "AT-SECRET-9"})
    finally:
        caplog.handler.filters.clear()
    assert "access_token=REDACTED" in caplog.text
    assert "AT-SECRET-9" not in caplog.text


def test_the_sdk_and_its_plugins_install_no_logging_filter() -> None:
    """An embeddable library leaves its host's logging alone: building channels attaches nothing."""
    from delivery_sdk_sms.emulator import SmsGatewayEmulator
    from delivery_sdk_wechat.emulator import WeChatEmulator

    with WeChatEmulator() as wechat, SmsGatewayEmulator() as gateway:
        wechat.channel()
        gateway.channel()
    for name in ("", "httpx", "httpcore", "delivery_sdk", "delivery_sdk_wechat"):
        logger = logging.getLogger(name)
        assert not any(isinstance(f, RedactSecretsFilter) for f in logger.filters)
        for handler in logger.handlers:
            assert not any(isinstance(f, RedactSecretsFilter) for f in handler.filters)
