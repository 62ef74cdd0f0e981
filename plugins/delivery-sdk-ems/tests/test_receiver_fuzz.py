"""Fuzz the EMS tracking-push receiver: whatever arrives, CallbackReceiver answers 2xx/4xx, never raises,
and a refused push changes nothing in the store. Most pushes are signed with the carrier's secret, so the
trace parser is fuzzed too (real order and waybill numbers among the fuzzed fields)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from delivery_sdk_ems import EmsCarrier, Sender
from delivery_sdk_ems.emulator import EmsEmulator, Plan, sign_push
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery_sdk import DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver, hmac_sha256_hex
from delivery_sdk.testing import FakeAddressSource, hubei_centres, make_party, make_request
from delivery_sdk.testing.fakes import channels_plugin, print_centres_plugin
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

TOKEN = "ems-token"
SECRET = "ems-callback-secret"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


class World:
    def __init__(self, ems: EmsEmulator, clock: VirtualClock) -> None:
        self.ems = ems
        self.clock = clock
        carrier = EmsCarrier(
            ems.url,
            token=TOKEN,
            callback_secret=SECRET,
            sender=Sender(address="湖北省武汉市武昌区法院路1号", phone="027-88886666"),
        )
        self.client = DeliveryClient(
            ":memory:",
            plugins=[channels_plugin(carrier), print_centres_plugin(*hubei_centres(clock)), FakeAddressSource()],
            clock=clock,
            load_entry_points=False,
        )
        self.task_ids = [self.client.submit(make_request(make_party(f"P-fuzz-{i}", consent=False))) for i in range(2)]
        self.client.run_until_idle(until=T0 + timedelta(hours=13))
        self.orders = sorted(ems.orders)
        self.waybills = [ems.orders[o].waybill for o in self.orders]
        assert self.orders, "the fuzz needs orders the carrier knows"
        self.receiver = CallbackReceiver(self.client)

    def facts(self) -> list[tuple[str, int]]:
        return [(self.client.status(t).state.value, len(self.client.timeline(t))) for t in self.task_ids]


@pytest.fixture
def world() -> Iterator[World]:
    clock = VirtualClock(T0)
    with EmsEmulator(
        token=TOKEN, callback_secret=SECRET, now=clock.now, default=Plan.signed("SELF", after=timedelta(days=1))
    ) as ems:
        w = World(ems, clock)
        yield w
        w.client.close()


def pushes(world: World) -> st.SearchStrategy[bytes]:
    field = st.one_of(hostile_text(32), json_values(4))
    now = world.clock.now().isoformat()
    trace = st.fixed_dictionaries(
        {
            "trace_id": st.one_of(st.from_regex(r"t-[0-9]{1,6}", fullmatch=True), field),
            "op_code": st.one_of(st.sampled_from(["ACCEPT", "SIGNED", "RETURNED", "TRANSIT", "accept"]), field),
            "op_time": st.one_of(st.sampled_from([now, "2026-11-02T01:00:00", "2099-01-01T00:00:00+00:00"]), field),
        },
        optional={
            "signer_type": st.one_of(st.sampled_from(["SELF", "FAMILY", "AGENT", "PROXY"]), field),
            "return_reason": st.one_of(st.sampled_from(["MOVED", "REFUSED", "NO_SUCH_ADDRESS"]), field),
        },
    )
    push = st.fixed_dictionaries(
        {},
        optional={
            "order_no": st.one_of(st.sampled_from(world.orders), field),
            "waybill_no": st.one_of(st.sampled_from(world.waybills), field),
            "traces": st.one_of(st.lists(trace, max_size=3), field),
        },
    )
    return push.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_ems_receiver_answers_every_push(world: World) -> None:
    now = world.clock.now()
    seen: Counter[str] = Counter()
    headers, body = world.ems.push_request(world.orders[0])
    genuine = assert_answered(world.receiver, "ems", headers, body, facts=world.facts)
    assert genuine.status == 200

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        body = data.draw(st.one_of(pushes(world), hostile_bodies()), label="body")
        ts = data.draw(timestamps(now), label="timestamp")
        nonce = data.draw(nonces(), label="nonce")
        good = sign_or_garble(lambda: hmac_sha256_hex(SECRET, ts, nonce, body))
        signature = data.draw(st.one_of(st.just(good), st.just(good.upper()), hostile_text()), label="signature")
        headers = {"X-Ems-Timestamp": ts, "X-Ems-Nonce": nonce, "X-Ems-Signature": signature}
        drop = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(sorted(headers)))), label="drop")
        headers = {k: v for k, v in headers.items() if k not in drop}
        headers.update(data.draw(header_noise(), label="noise"))
        response = assert_answered(world.receiver, "ems", headers, body, facts=world.facts)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert seen["400 malformed"], seen  # the fuzz got past the signature, into the parser


@pytest.mark.parametrize("secret", ["", "  ", b""])
def test_an_empty_callback_secret_is_refused(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="callback_secret"):
        EmsCarrier("http://127.0.0.1:9", token=TOKEN, callback_secret=secret)
    body = b"{}"
    assert sign_push(SECRET, body, timestamp=1, nonce="n")  # the helper still signs for tests


def test_a_set_but_blank_secret_variable_is_refused() -> None:
    from delivery_sdk_ems import ENV_CALLBACK_SECRET, ENV_TOKEN, ENV_URL, EnvEmsPlugin

    from delivery_sdk import PluginError

    env = {ENV_URL: "http://127.0.0.1:9", ENV_TOKEN: TOKEN, ENV_CALLBACK_SECRET: " "}
    with pytest.raises(PluginError, match=f"{ENV_CALLBACK_SECRET} is set but empty"):
        EnvEmsPlugin(env).configured()
    assert EnvEmsPlugin({ENV_URL: "http://127.0.0.1:9", ENV_TOKEN: TOKEN}).configured() is not None
