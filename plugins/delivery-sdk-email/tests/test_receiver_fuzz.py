"""Fuzz the e-mail bounce receiver: whatever arrives, CallbackReceiver answers 2xx/4xx, never raises, and a
refused push changes nothing in the store. Most pushes are signed with the callback secret, and many are
genuine DSNs with fuzzed fields or mangled bytes, so the RFC 3464 parser is fuzzed too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from delivery_sdk_email import EmailChannel, MemorySentLog
from delivery_sdk_email.emulator import SmtpEmulator, sign_push
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery_sdk import ChannelKind, DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver, hmac_sha256_hex
from delivery_sdk.testing import channels_plugin, make_party, make_request
from delivery_sdk.testing.fuzz import (
    assert_answered,
    header_noise,
    hostile_bodies,
    hostile_text,
    nonces,
    sign_or_garble,
    timestamps,
)

SECRET = "bounce-secret"


class World:
    def __init__(self, mx: SmtpEmulator) -> None:
        self.mx = mx
        self.clock = VirtualClock()
        adapter = EmailChannel(
            mx.host,
            mx.port,
            sender="service@court.example",
            sent_log=MemorySentLog(),
            security="none",
            mode="direct",
            link_template="https://court.example/s/{token}",
            link_secret="link-secret",
            callback_secret=SECRET,
            timeout=3.0,
            clock=self.clock,
        )
        self.client = DeliveryClient(
            ":memory:", plugins=[channels_plugin(adapter)], clock=self.clock, load_entry_points=False
        )
        self.task_ids = [
            self.client.submit(
                make_request(make_party(mobile=None, email=f"party{i}@example.com"), channels=[ChannelKind.EMAIL])
            )
            for i in range(2)
        ]
        self.client.run_until_idle(until=self.clock.now())
        self.received = list(mx.messages)
        self.receiver = CallbackReceiver(self.client)

    def facts(self) -> list[tuple[str, int]]:
        return [(self.client.status(t).state.value, len(self.client.timeline(t))) for t in self.task_ids]

    def dsn(self, index: int, action: str, status: str, when: datetime | None = None, **kw: Any) -> bytes:
        return self.mx.make_dsn(self.received[index], action=action, status=status, when=when or self.clock.now(), **kw)


@pytest.fixture
def world() -> Iterator[World]:
    with SmtpEmulator() as mx:
        w = World(mx)
        yield w
        w.client.close()


def dsns(world: World) -> st.SearchStrategy[bytes]:
    genuine = st.builds(
        world.dsn,
        st.integers(min_value=0, max_value=len(world.received) - 1),
        st.sampled_from(["failed", "delayed", "delivered", "relayed", "expanded", "失败"]),
        st.one_of(st.sampled_from(["5.1.1", "4.4.7", "2.0.0", "9.9.9", "5.1"]), hostile_text(12)),
        include_envid=st.booleans(),
        include_headers=st.booleans(),
    )

    def mangle(body: bytes, start: int, length: int, junk: bytes) -> bytes:
        start %= max(len(body), 1)
        return body[:start] + junk + body[start + length :]

    mangled = st.builds(
        mangle,
        genuine,
        st.integers(min_value=0, max_value=5000),
        st.integers(min_value=0, max_value=200),
        st.one_of(st.binary(max_size=64), hostile_text(32).map(lambda t: t.encode("utf-8", "surrogatepass"))),
    )
    return st.one_of(genuine, mangled, mangled)


def test_email_receiver_answers_every_push(world: World) -> None:
    now = world.clock.now()
    seen: Counter[str] = Counter()
    body = world.dsn(0, "failed", "5.1.1")
    headers = sign_push(SECRET, body, timestamp=int(now.timestamp()), nonce="genuine-1")
    genuine = assert_answered(world.receiver, "email", headers, body, facts=world.facts)
    assert (genuine.status, genuine.body["receipts"]) == (200, 1)  # late: direct delivery already served them

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        body = data.draw(st.one_of(dsns(world), hostile_bodies()), label="body")
        ts = data.draw(timestamps(now), label="timestamp")
        nonce = data.draw(nonces(), label="nonce")
        good = sign_or_garble(lambda: hmac_sha256_hex(SECRET, ts, nonce, body))
        signature = data.draw(st.one_of(st.just(good), st.just(good.upper()), hostile_text()), label="signature")
        headers = {"X-Delivery-Timestamp": ts, "X-Delivery-Nonce": nonce, "X-Delivery-Signature": signature}
        drop = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(sorted(headers)))), label="drop")
        headers = {k: v for k, v in headers.items() if k not in drop}
        headers.update(data.draw(header_noise(), label="noise"))
        response = assert_answered(world.receiver, "email", headers, body, facts=world.facts)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert sum(n for k, n in seen.items() if not k.startswith("401")), seen  # past the signature


def test_the_signature_is_checked_before_the_timestamp(world: World) -> None:
    body = world.dsn(1, "failed", "5.1.1")
    headers = sign_push("not-the-secret", body, timestamp=1, nonce="n-stale")
    before = world.facts()
    response = world.receiver.handle("email", headers, body)
    assert (response.status, response.reason) == (401, "forged")  # not "stale": the timestamp was not read first
    assert world.facts() == before


@pytest.mark.parametrize("secret", ["", "   ", b""])
def test_an_empty_callback_secret_is_refused_at_construction(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="callback_secret is empty"):
        EmailChannel(
            "127.0.0.1",
            25,
            sender="service@court.example",
            sent_log=MemorySentLog(),
            link_template="https://court.example/s/{token}",
            link_secret="k",
            callback_secret=secret,
        )
