"""Fuzz the SmsReport receiver: whatever arrives, CallbackReceiver answers 2xx/4xx, never raises, and a
refused push changes nothing in the store. Most pushes carry the right token, so the fuzz reaches the
report parser, not only the token check."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from delivery_sdk_aliyun_sms.emulator import AliyunSmsEmulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery_sdk import ChannelKind, DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver
from delivery_sdk.testing import channels_plugin, make_party, make_request
from delivery_sdk.testing.fuzz import assert_answered, header_noise, hostile_bodies, hostile_text, json_values

MOBILE = "13912345678"


class World:
    def __init__(self, service: AliyunSmsEmulator) -> None:
        self.service = service
        self.clock = VirtualClock()
        service.clock = self.clock.now
        self.client = DeliveryClient(
            ":memory:", plugins=[channels_plugin(service.channel())], clock=self.clock, load_entry_points=False
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
    with AliyunSmsEmulator() as service:
        w = World(service)
        yield w
        w.client.close()


def reports(dispatch_ids: list[str], now_text: str) -> st.SearchStrategy[bytes]:
    """SmsReport arrays with every field fuzzed (real dispatch ids among them)."""
    field = st.one_of(hostile_text(32), json_values(4))
    report = st.fixed_dictionaries(
        {},
        optional={
            "success": st.one_of(st.booleans(), field),
            "out_id": st.one_of(st.sampled_from(dispatch_ids), field),
            "report_time": st.one_of(st.sampled_from([now_text, "2026-01-01T00:00:00", "yesterday"]), field),
            "err_code": field,
            "biz_id": field,
            "phone_number": st.just(MOBILE),
        },
    )
    valid = st.fixed_dictionaries(
        {
            "success": st.booleans(),
            "out_id": st.sampled_from(dispatch_ids),
            "report_time": st.sampled_from([now_text, "2026-11-02 09:00:00"]),
            "err_code": st.sampled_from(["DELIVERED", "MK:0012", "签名"]),
        }
    )
    return st.one_of(st.lists(st.one_of(valid, report), max_size=3), report, valid).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )


def test_aliyun_sms_receiver_answers_every_push(world: World) -> None:
    token = world.service.callback_token
    now_text = world.clock.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
    seen: Counter[str] = Counter()
    query, body = world.service.deliver(world.dispatch_ids[0], push=False)
    genuine = assert_answered(world.receiver, "aliyun-sms", {}, body, facts=world.facts, query=urlencode(query))
    assert genuine.body["recorded"] == 1

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        body = data.draw(st.one_of(reports(world.dispatch_ids, now_text), hostile_bodies()), label="body")
        given_token = data.draw(st.one_of(st.just(token), st.just(token), hostile_text()), label="token")
        query = data.draw(
            st.one_of(
                st.just("token=" + quote(given_token.encode("utf-8", "surrogatepass"))),
                st.just(f"token={given_token}&token={token}"),
                st.just(""),
                hostile_text(),
            ),
            label="query",
        )
        headers = {"Content-Type": "application/json"} | data.draw(header_noise(), label="noise")
        response = assert_answered(world.receiver, "aliyun-sms", headers, body, facts=world.facts, query=query)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert seen["400 malformed"], seen  # the fuzz got past the token, into the parser
    assert seen["401 forged"], seen
