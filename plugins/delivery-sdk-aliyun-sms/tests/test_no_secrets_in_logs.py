"""No secret and no personal data in any log record, every logger at DEBUG: sends that succeed, are refused
or time out, status queries, genuine and forged pushes through the receiver (httpx's request lines and
httpcore's traces included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import attrs
from delivery_sdk_aliyun_sms.emulator import AliyunSmsEmulator, Fault

from delivery_sdk import ChannelKind, DeliveryClient, VirtualClock
from delivery_sdk.callbacks import CallbackReceiver
from delivery_sdk.model import Party
from delivery_sdk.testing import channels_plugin, make_party, make_request
from delivery_sdk.testing.logcheck import LogLeakCheck

NAME = "李四光"
ID_NUMBER = "420106198001011234"
MOBILE = "13912345678"
HOME = "湖北省武汉市武昌区中北路1号"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def party(pid: str, **kwargs: object) -> Party:
    base = make_party(pid, address=HOME, **kwargs)  # type: ignore[arg-type]
    return attrs.evolve(base, name=NAME, id_number=ID_NUMBER)


def test_aliyun_sms_flows_log_no_secret_or_personal_data() -> None:
    clock = VirtualClock(T0)
    with AliyunSmsEmulator(clock=clock.now) as service:
        secrets = [service.access_key_secret, service.callback_token]
        with (
            LogLeakCheck(secrets=secrets, addresses=[HOME]) as check,
            DeliveryClient(
                ":memory:", plugins=[channels_plugin(service.channel())], clock=clock, load_entry_points=False
            ) as client,
        ):
            service.fail_next(Fault.http(503))
            ok = client.submit(make_request(party("P-s1", mobile=MOBILE), channels=[ChannelKind.SMS]))
            service.illegal_numbers.add("13700000000")
            client.submit(make_request(party("P-s2", mobile="13700000000"), channels=[ChannelKind.SMS]))
            client.run_until_idle(until=clock.now() + timedelta(minutes=5))
            receiver = CallbackReceiver(client)
            [dispatch] = client.status(ok).dispatches
            query, body = service.deliver(dispatch.dispatch_id, push=False)
            assert receiver.handle("aliyun-sms", {}, body, query=urlencode(query)).status == 200
            assert receiver.handle("aliyun-sms", {}, body, query="token=guess").status == 401
            assert receiver.handle("aliyun-sms", {}, b"[{]", query=urlencode(query)).status == 400
            client.run_until_idle()
    assert check.records
    assert {"httpx", "httpcore.http11"} <= {r.name for r in check.records}
    assert check.leaks() == []
