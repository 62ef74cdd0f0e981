"""Fuzz the e-service platform's callback receiver: whatever arrives, CallbackReceiver answers 2xx/4xx,
never raises, and a refused callback changes nothing in the store. Most bodies are signed with the app
secret, so the fuzz reaches the event parser (which also gives the replay key), not only the signature."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_sdk_eservice import EServiceChannel, sign_callback
from delivery_sdk_eservice.emulator import PlatformEmulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery_sdk import ChannelKind, DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver
from delivery_sdk.testing import channels_plugin, make_party, make_request
from delivery_sdk.testing.fuzz import (
    assert_answered,
    header_noise,
    hostile_bodies,
    hostile_text,
    json_values,
    nonces,
    sign_or_garble,
    timestamps,
)

APP_KEY = "court-app"
SECRET = "platform-secret"


class World:
    def __init__(self, platform: PlatformEmulator, clock: VirtualClock) -> None:
        self.platform = platform
        self.clock = clock
        adapter = EServiceChannel(platform.url, app_key=APP_KEY, app_secret=SECRET, timeout=3.0)
        self.client = DeliveryClient(
            ":memory:", plugins=[channels_plugin(adapter)], clock=clock, load_entry_points=False
        )
        self.task_ids = [
            self.client.submit(
                make_request(make_party(mobile=None, eservice=f"ES-{i}"), channels=[ChannelKind.ESERVICE])
            )
            for i in range(2)
        ]
        self.client.run_until_idle(until=clock.now())
        self.dispatch_ids = [d.dispatch_id for t in self.task_ids for d in self.client.status(t).dispatches]
        self.receiver = CallbackReceiver(self.client)

    def facts(self) -> list[tuple[str, int]]:
        return [(self.client.status(t).state.value, len(self.client.timeline(t))) for t in self.task_ids]


@pytest.fixture
def world() -> Iterator[World]:
    clock = VirtualClock()
    with PlatformEmulator(app_key=APP_KEY, app_secret=SECRET, clock=clock.now) as platform:
        w = World(platform, clock)
        yield w
        w.client.close()


def platform_events(world: World) -> st.SearchStrategy[bytes]:
    field = st.one_of(hostile_text(32), json_values(4))
    now = world.clock.now().isoformat()
    event = st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.one_of(st.from_regex(r"ev-[0-9]{1,8}", fullmatch=True), field),
            "service_id": st.one_of(st.sampled_from(world.dispatch_ids), field),
            "type": st.one_of(st.sampled_from(["arrived", "read", "failed", "pushed"]), field),
            "at": st.one_of(st.sampled_from([now, "2026-11-02T01:00:00", "2099-01-01T00:00:00+00:00"]), field),
            "reason": st.one_of(st.sampled_from(["ACCOUNT_CLOSED", "失败"]), field),
        },
    )
    valid = st.fixed_dictionaries(
        {
            "event_id": st.from_regex(r"ev-[0-9]{1,8}", fullmatch=True),
            "service_id": st.sampled_from(world.dispatch_ids),
            "type": st.sampled_from(["arrived", "read", "failed"]),
            "at": st.just(now),
        }
    )
    return st.one_of(event, valid).map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_eservice_receiver_answers_every_callback(world: World) -> None:
    now = world.clock.now()
    seen: Counter[str] = Counter()
    headers, body = world.platform.arrive(world.dispatch_ids[0])
    assert assert_answered(world.receiver, "eservice", headers, body, facts=world.facts).body["recorded"] == 1

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        body = data.draw(st.one_of(platform_events(world), hostile_bodies()), label="body")
        ts = data.draw(timestamps(now), label="timestamp")
        nonce = data.draw(nonces(), label="nonce")
        good = sign_or_garble(lambda: sign_callback(SECRET, ts, nonce, body))
        signature = data.draw(st.one_of(st.just(good), st.just(good.upper()), hostile_text()), label="signature")
        app_key = data.draw(st.one_of(st.just(APP_KEY), hostile_text()), label="app_key")
        headers = {"X-App-Key": app_key, "X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": signature}
        drop = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(sorted(headers)))), label="drop")
        headers = {k: v for k, v in headers.items() if k not in drop}
        headers.update(data.draw(header_noise(), label="noise"))
        response = assert_answered(world.receiver, "eservice", headers, body, facts=world.facts)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert seen["400 malformed"], seen  # the fuzz got past the signature, into the parser


def test_the_signature_is_checked_before_the_timestamp_or_the_body_is_read(world: World) -> None:
    headers, body = world.platform.arrive(world.dispatch_ids[1])
    adapter = world.client.host.channels.get("eservice")
    assert isinstance(adapter, EServiceChannel)
    before = world.facts()
    for forged_headers, forged_body in (
        ({**headers, "X-Timestamp": "1"}, body),  # stale and forged: forged (the timestamp was not read first)
        ({**headers, "X-Timestamp": "²"}, body),
        (headers, b"[1, 2]"),  # a body that is not an object, unsigned: forged, not malformed
    ):
        response = world.receiver.handle("eservice", forged_headers, forged_body)
        assert (response.status, response.reason) == (401, "forged")
    assert world.facts() == before
