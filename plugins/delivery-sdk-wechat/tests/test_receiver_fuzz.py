"""Fuzz the WeChat receiver (template-send events signed in the URL query, H5 read callbacks signed in
headers): whatever arrives, CallbackReceiver answers 2xx/4xx, never raises, and a refused callback changes
nothing in the store. Most bodies are signed with the right token or secret, so the XML and JSON parsers
are fuzzed too, not only the signature checks."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_sdk_wechat import read_callback, wechat_signature
from delivery_sdk_wechat.emulator import WeChatEmulator
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
    json_values,
    nonces,
    sign_or_garble,
    timestamps,
)

READ_SECRET = "emulator-read-secret"


class World:
    def __init__(self, wechat: WeChatEmulator) -> None:
        self.wechat = wechat
        self.clock = VirtualClock()
        wechat.clock = self.clock.now
        self.channel = wechat.channel(clock=self.clock, read_secret=READ_SECRET)
        self.client = DeliveryClient(
            ":memory:", plugins=[channels_plugin(self.channel)], clock=self.clock, load_entry_points=False
        )
        self.task_ids = [
            self.client.submit(
                make_request(make_party(mobile=None, wechat=f"oWx_fuzz_{i}"), channels=[ChannelKind.WECHAT])
            )
            for i in range(2)
        ]
        self.client.run_until_idle(until=self.clock.now())
        self.dispatch_ids = [d.dispatch_id for t in self.task_ids for d in self.client.status(t).dispatches]
        self.msgids = [str(wechat.message(d).msgid) for d in self.dispatch_ids]
        self.receiver = CallbackReceiver(self.client)

    def facts(self) -> list[tuple[str, int]]:
        return [(self.client.status(t).state.value, len(self.client.timeline(t))) for t in self.task_ids]


@pytest.fixture
def world() -> Iterator[World]:
    with WeChatEmulator() as wechat:
        w = World(wechat)
        yield w
        w.client.close()


def events(world: World) -> st.SearchStrategy[bytes]:
    """TEMPLATESENDJOBFINISH pushes with every field fuzzed (real msgids and openids among them)."""
    created = str(int(world.clock.now().timestamp()))
    text = hostile_text(24).map(lambda t: t.replace("]]>", ""))
    fields = st.fixed_dictionaries(
        {
            "FromUserName": st.one_of(st.sampled_from(["oWx_fuzz_0", "oWx_fuzz_1"]), text),
            "CreateTime": st.one_of(
                st.just(created), st.just(created.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))), text
            ),
            "MsgType": st.sampled_from(["event", "text", ""]),
            "Event": st.sampled_from(["TEMPLATESENDJOBFINISH", "subscribe", ""]),
            "MsgID": st.one_of(st.sampled_from(world.msgids), text),
            "Status": st.one_of(st.sampled_from(["success", "failed:user block", "failed: system failed"]), text),
        }
    )
    return fields.map(
        lambda f: ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in f.items()) + "</xml>").encode(
            "utf-8", "surrogatepass"
        )
    )


def reads(world: World) -> st.SearchStrategy[bytes]:
    """H5 read callbacks: genuine ones (the right link token) and ones with fuzzed fields."""
    genuine = st.sampled_from(world.dispatch_ids).map(
        lambda d: read_callback(READ_SECRET, world.channel._link_key, d, world.clock.now())[1]
    )
    field = st.one_of(hostile_text(32), json_values(4))
    fuzzed = st.fixed_dictionaries(
        {},
        optional={
            "event": st.one_of(st.just("read"), field),
            "event_id": st.one_of(st.from_regex(r"e-[0-9]{1,6}", fullmatch=True), field),
            "dispatch_id": st.one_of(st.sampled_from(world.dispatch_ids), field),
            "token": field,
            "opened_at": st.one_of(st.just(world.clock.now().isoformat()), field),
        },
    ).map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return st.one_of(genuine, fuzzed)


def test_wechat_receiver_answers_every_callback(world: World) -> None:
    server_token = world.wechat.server_token
    now = world.clock.now()
    seen: Counter[str] = Counter()
    # a genuine event first: the world is set up so that a well-signed TEMPLATESENDJOBFINISH is recorded
    params, body = world.wechat.event_push(
        "oWx_fuzz_0", int(world.msgids[0]), "success", timestamp=int(now.timestamp())
    )
    first = assert_answered(
        world.receiver, "wechat", {"Content-Type": "text/xml"}, body, facts=world.facts, query=params
    )
    assert first.body["recorded"] == 1

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def fuzz(data: Any) -> None:
        scheme = data.draw(st.sampled_from(["event", "read"]), label="scheme")
        own = events(world) if scheme == "event" else reads(world)
        body = data.draw(st.one_of(own, hostile_bodies()), label="body")
        ts = data.draw(timestamps(now), label="timestamp")
        nonce = data.draw(nonces(), label="nonce")
        if scheme == "event":
            good = sign_or_garble(lambda: wechat_signature(server_token, ts, nonce))
        else:
            good = sign_or_garble(lambda: hmac_sha256_hex(READ_SECRET, ts, nonce, body))
        signature = data.draw(st.one_of(st.just(good), st.just(good.upper()), hostile_text()), label="signature")
        headers: dict[str, str] = {"Content-Type": "text/xml" if scheme == "event" else "application/json"}
        query: dict[str, str] = {}
        fields = {"timestamp": ts, "nonce": nonce, "signature": signature}
        drop = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(sorted(fields)))), label="drop")
        fields = {k: v for k, v in fields.items() if k not in drop}
        if scheme == "event":
            query = {**fields, "openid": "oWx_fuzz_0"}
        else:
            headers.update({f"X-Court-{k.capitalize()}": v for k, v in fields.items()})
        if data.draw(st.booleans(), label="swap"):  # the other scheme's place: never looked at
            headers, query = {**headers, **query}, {k: v for k, v in headers.items() if k.startswith("X-")}
        headers.update(data.draw(header_noise(), label="noise"))
        response = assert_answered(world.receiver, "wechat", headers, body, facts=world.facts, query=query)
        seen[f"{response.status} {response.reason}"] += 1

    fuzz()
    assert seen["400 malformed"], seen  # the fuzz got past the signatures, into the parsers
