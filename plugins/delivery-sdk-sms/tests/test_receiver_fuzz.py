"""Fuzz the SMS delivery-report receiver: whatever arrives, CallbackReceiver answers 2xx/4xx, never raises,
and a refused push changes nothing in the store. Bodies are signed with the right secret most of the time,
so the fuzz reaches the report parser, not only the signature check."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_sdk_sms import H_NONCE, H_SIGNATURE, H_TIMESTAMP, callback_signature
from delivery_sdk_sms.emulator import SmsGatewayEmulator
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


class World:
    def __init__(self, gateway: SmsGatewayEmulator) -> None:
        self.gateway = gateway
        self.clock = VirtualClock()
        gateway.clock = self.clock.now  # report times on the engine's clock
        self.client = DeliveryClient(
            ":memory:", plugins=[channels_plugin(gateway.channel())], clock=self.clock, load_entry_points=False
        )
        self.task_ids = [
            self.client.submit(make_request(make_party(mobile=f"1391234567{i}"), channels=[ChannelKind.SMS]))
            for i in range(2)
        ]
        self.client.run_until_idle(until=self.clock.now())
        self.dispatch_ids = [d.dispatch_id for t in self.task_ids for d in self.client.status(t).dispatches]
        self.receiver = CallbackReceiver(self.client)

    def facts(self) -> list[tuple[str, int]]:
        return [(self.client.status(t).state.value, len(self.client.timeline(t))) for t in self.task_ids]


@pytest.fixture
def world() -> Iterator[World]:
    with SmsGatewayEmulator() as gateway:
        w = World(gateway)
        yield w
        w.client.close()


def reports(dispatch_ids: list[str], now_iso: str) -> st.SearchStrategy[bytes]:
    """Report arrays of the gateway's shape with every field fuzzed (real dispatch ids among them)."""
    field = st.one_of(hostile_text(32), json_values(4))
    report = st.fixed_dictionaries(
        {},
        optional={
            "status": st.one_of(st.sampled_from(["DELIVERED", "FAILED", "SENDING", "delivered"]), field),
            "out_id": st.one_of(st.sampled_from(dispatch_ids), field),
            "report_id": st.one_of(st.from_regex(r"r-[0-9]{1,6}", fullmatch=True), field),
            "report_time": st.one_of(st.sampled_from([now_iso, "2026-01-01T00:00:00", "yesterday"]), field),
            "err_code": field,
            "biz_id": field,
        },
    )
    valid = st.fixed_dictionaries(
        {
            "status": st.sampled_from(["DELIVERED", "FAILED", "SENDING"]),
            "out_id": st.sampled_from(dispatch_ids),
            "report_id": st.from_regex(r"r-[0-9]{1,6}", fullmatch=True),
            "report_time": st.sampled_from([now_iso, "2026-01-01T00:00:00+08:00"]),
            "err_code": st.sampled_from(["", "UNDELIV", "签名"]),
        }
    )
    return st.one_of(st.lists(st.one_of(valid, report), max_size=3), report, valid).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )


def test_sms_receiver_answers_every_push(world: World) -> None:
    secret = world.gateway.callback_secret
    now = world.clock.now()
    seen: Counter[str] = Counter()
    # a genuine push first: the world is set up so that a well-formed, well-signed report is recorded
    headers, body = world.gateway.deliver(world.dispatch_ids[0], push=False)
    ts = str(int(now.timestamp()))
    headers = {**headers, H_TIMESTAMP: ts, H_SIGNATURE: callback_signature(secret, ts, headers[H_NONCE], body)}
    assert assert_answered(world.receiver, "sms", headers, body, facts=world.facts).body["recorded"] == 1

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        body = data.draw(st.one_of(reports(world.dispatch_ids, now.isoformat()), hostile_bodies()), label="body")
        ts = data.draw(timestamps(now), label="timestamp")
        nonce = data.draw(nonces(), label="nonce")
        signature = data.draw(
            st.one_of(
                st.just(sign_or_garble(lambda: callback_signature(secret, ts, nonce, body))),
                st.just(sign_or_garble(lambda: callback_signature(secret, ts, nonce, body)).upper()),
                hostile_text(),
            ),
            label="signature",
        )
        headers = {H_TIMESTAMP: ts, H_NONCE: nonce, H_SIGNATURE: signature, "Content-Type": "application/json"}
        drop = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(sorted(headers)))), label="drop")
        headers = {k: v for k, v in headers.items() if k not in drop}
        headers.update(data.draw(header_noise(), label="noise"))
        response = assert_answered(world.receiver, "sms", headers, body, facts=world.facts)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert seen["400 malformed"], seen  # the fuzz got past the signature, into the parser
