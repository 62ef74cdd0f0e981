"""delivery_sdk.httpchannel: the status mapping, Retry-After, transport errors and the rate limiter."""

from __future__ import annotations

import asyncio
import itertools
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from delivery_sdk import ChannelError, TransientChannelError
from delivery_sdk.httpchannel import RateLimiter, check_response, parse_retry_after, translate_errors

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body, request=httpx.Request("POST", "http://127.0.0.1/x"))


# -- check_response --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_check_response_passes_2xx_through(status: int) -> None:
    answer = response(status)
    assert check_response(answer, what="sms.send") is answer


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_check_response_transient_statuses(status: int) -> None:
    with pytest.raises(TransientChannelError) as caught:
        check_response(response(status), what="sms.send")
    assert caught.value.retry_after is None
    assert str(caught.value) == f"sms.send: provider answered HTTP {status}"


@pytest.mark.parametrize("status", [301, 304, 400, 401, 403, 404, 409, 410, 422])
def test_check_response_permanent_statuses(status: int) -> None:
    with pytest.raises(ChannelError) as caught:
        check_response(response(status), what="wechat.send")
    assert not isinstance(caught.value, TransientChannelError)
    assert f"HTTP {status}" in str(caught.value)


def test_check_response_never_echoes_the_body() -> None:
    body = b'{"error": "no such number 13800138000"}'
    for status in (400, 503):
        with pytest.raises(ChannelError) as caught:
            check_response(response(status, body=body), what="sms.send")
        assert "13800138000" not in str(caught.value)


def test_check_response_429_carries_retry_after_seconds() -> None:
    with pytest.raises(TransientChannelError) as caught:
        check_response(response(429, {"Retry-After": "7"}), what="sms.send")
    assert caught.value.retry_after == 7.0


def test_check_response_503_carries_retry_after_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    with pytest.raises(TransientChannelError) as caught:
        check_response(response(503, {"Retry-After": format_datetime(later, usegmt=True)}), what="sms.send")
    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 121


# -- parse_retry_after -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("3", 3.0), (" 120 ", 120.0), ("86400", 86400.0)])
def test_parse_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Mon, 02 Nov 2026 09:00:30 GMT", now=NOW) == 30.0
    assert parse_retry_after(format_datetime(NOW + timedelta(minutes=2), usegmt=True), now=NOW) == 120.0


def test_parse_retry_after_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Mon, 02 Nov 2026 08:00:00 GMT", now=NOW) == 0.0


def test_parse_retry_after_naive_date_is_utc() -> None:
    assert parse_retry_after("Mon, 02 Nov 2026 09:01:00", now=NOW) == 60.0


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "1.5", "1e3", "²", "١٢", "Mon, 02 Nov 99999 09:00:00 GMT"])
def test_parse_retry_after_unreadable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


# -- translate_errors ------------------------------------------------------------------------------


def _raise_inside(exc: Exception) -> Exception:
    async def scenario() -> None:
        async with translate_errors("sms.send"):
            raise exc

    try:
        asyncio.run(scenario())
    except Exception as raised:
        return raised
    raise AssertionError("translate_errors swallowed the error")


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("closed"),
    ],
)
def test_translate_errors_makes_transport_errors_transient(exc: httpx.TransportError) -> None:
    raised = _raise_inside(exc)
    assert isinstance(raised, TransientChannelError)
    assert raised.__cause__ is exc
    assert str(raised).startswith("sms.send: ")
    assert type(exc).__name__ in str(raised)


def test_translate_errors_leaves_other_errors_alone() -> None:
    error = ValueError("not httpx")
    assert _raise_inside(error) is error
    permanent = ChannelError("refused")
    assert _raise_inside(permanent) is permanent


def test_translate_errors_over_a_real_socket() -> None:
    """A port nobody listens on, and a server that accepts but never answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        silent_port = silent.getsockname()[1]

        async def call(port: int) -> None:
            async with httpx.AsyncClient(timeout=0.2) as client, translate_errors("sms.status"):
                await client.get(f"http://127.0.0.1:{port}/")

        with pytest.raises(TransientChannelError, match=r"sms.status: transport error \(ConnectError\)"):
            asyncio.run(call(closed_port))
        with pytest.raises(TransientChannelError, match=r"sms.status: timed out \(ReadTimeout\)"):
            asyncio.run(call(silent_port))


# -- RateLimiter -----------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock and a sleep that moves it (an async sleep, as asyncio.sleep is)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limiter_none_never_waits() -> None:
    fake = FakeTime()
    limiter = RateLimiter(None, monotonic=fake.monotonic, sleep=fake.sleep)

    async def scenario() -> None:
        for _ in range(1000):
            await limiter.acquire()

    asyncio.run(scenario())
    assert fake.sleeps == []


def test_rate_limiter_burst_then_steady_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10.0, burst=3, monotonic=fake.monotonic, sleep=fake.sleep)
    stamps: list[float] = []

    async def scenario() -> None:
        for _ in range(7):
            await limiter.acquire()
            stamps.append(fake.now)

    asyncio.run(scenario())
    assert stamps[:3] == [100.0, 100.0, 100.0]  # the burst
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(stamps[2:])]
    assert gaps == [0.1, 0.1, 0.1, 0.1]  # then one every 1/rate seconds
    assert fake.sleeps == pytest.approx([0.1] * 4)


def test_rate_limiter_refills_while_idle_but_not_beyond_burst() -> None:
    fake = FakeTime()
    limiter = RateLimiter(2.0, burst=2, monotonic=fake.monotonic, sleep=fake.sleep)

    async def scenario() -> None:
        await limiter.acquire()
        await limiter.acquire()
        fake.now += 60.0  # a minute idle refills two tokens, not 120
        await limiter.acquire()
        await limiter.acquire()
        assert fake.sleeps == []
        await limiter.acquire()
        assert fake.sleeps == pytest.approx([0.5])

    asyncio.run(scenario())


def test_rate_limiter_serves_concurrent_waiters_in_order_at_the_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(4.0, burst=1, monotonic=fake.monotonic, sleep=fake.sleep)
    order: list[tuple[int, float]] = []

    async def worker(i: int) -> None:
        await limiter.acquire()
        order.append((i, fake.now))

    async def scenario() -> None:
        await asyncio.gather(*(worker(i) for i in range(5)))

    asyncio.run(scenario())
    assert [i for i, _ in order] == [0, 1, 2, 3, 4]
    assert [t for _, t in order] == pytest.approx([100.0, 100.25, 100.5, 100.75, 101.0])


def test_rate_limiter_accepts_a_plain_sleep_function() -> None:
    fake = FakeTime()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.now += seconds

    limiter = RateLimiter(1.0, monotonic=fake.monotonic, sleep=sleep)

    async def scenario() -> None:
        await limiter.acquire()
        await limiter.acquire()

    asyncio.run(scenario())
    assert slept == pytest.approx([1.0])


def test_rate_limiter_with_the_real_clock() -> None:
    limiter = RateLimiter(50.0, burst=1)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(6):
            await limiter.acquire()
        return loop.time() - start

    assert asyncio.run(scenario()) >= 0.09  # five waits of 20 ms


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_rate_limiter_refuses_bad_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(rate, burst=burst)


@pytest.mark.parametrize("bad", ["ftp://host/x", "http://", "not a url", "/relative/path", "https:///nohost"])
def test_check_base_url_refuses_what_is_not_an_http_url_with_a_host(bad: str) -> None:
    from delivery_sdk.httpchannel import check_base_url

    with pytest.raises(ValueError, match=r"^the endpoint (must be an http\(s\) URL with a host|is not a valid URL)"):
        check_base_url(bad, what="the endpoint")


def test_check_base_url_drops_the_trailing_slash() -> None:
    from delivery_sdk.httpchannel import check_base_url

    assert check_base_url("https://gw.example/api/") == "https://gw.example/api"
    assert check_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
