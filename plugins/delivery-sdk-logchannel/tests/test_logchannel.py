"""The reference log channel, installed (``pip install -e plugins/delivery-sdk-logchannel``)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
from datetime import UTC, datetime
from pathlib import Path

import delivery_sdk_logchannel
import pytest
from delivery_sdk_logchannel import LogChannel

from delivery_sdk import (
    Case,
    ChannelKind,
    ChannelRegistry,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    DeliveryClient,
    Dispatch,
    DispatchStatus,
    Document,
    DocumentKind,
    Party,
    PluginError,
    PluginHost,
    ReceiptKind,
    ServiceMethod,
    ServiceRequest,
    TaskState,
    VirtualClock,
    hookimpl,
)
from delivery_sdk.model import mask

EMAIL = "zhang.san@example.com"
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _request(client_key: str = "k-1") -> ServiceRequest:
    party = Party(
        party_id="P-mail",
        name="张三",
        contacts=(Contact(kind=ContactKind.EMAIL, value=EMAIL),),
        consent=Consent(method=ConsentMethod.CONFIRMATION_FORM),
    )
    document = Document(
        document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=hashlib.sha256(b"summons").hexdigest()
    )
    return ServiceRequest(
        case=Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号"),
        party=party,
        documents=(document,),
        client_key=client_key,
    )


def _dispatch(dispatch_id: str = "T1.1") -> Dispatch:
    request = _request()
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id="T1",
        channel="log",
        kind=ChannelKind.EMAIL,
        contact=request.party.contacts[0],
        case=request.case,
        recipient_name=request.party.name,
        documents=request.documents,
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_entry_point_is_discoverable() -> None:
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group="delivery_sdk")}
    assert "logchannel" in found, "run `pip install -e plugins/delivery-sdk-logchannel` first"
    assert found["logchannel"].value == "delivery_sdk_logchannel"
    assert found["logchannel"].load() is delivery_sdk_logchannel


def test_installed_but_not_configured_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DELIVERY_SDK_LOGCHANNEL_KIND", raising=False)
    host = PluginHost(environ={}, load_entry_points=True)
    assert "logchannel" in host.plugin_names()
    host.load()
    assert "log" not in host.channels.names()
    assert host.channels.of_kind(ChannelKind.EMAIL) == []
    assert delivery_sdk_logchannel.channel_from_env({}) is None


def test_a_path_without_a_kind_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {"DELIVERY_SDK_LOGCHANNEL_PATH": str(tmp_path / "log.jsonl")}
    host = PluginHost(environ=env, load_entry_points=True)
    with pytest.raises(PluginError, match="DELIVERY_SDK_LOGCHANNEL_KIND is required") as info:
        host.load()
    assert any("logchannel" in p and "DELIVERY_SDK_LOGCHANNEL_KIND" in p for p in info.value.problems)
    with pytest.raises(PluginError, match="must be email or sms"):
        delivery_sdk_logchannel.channel_from_env({"DELIVERY_SDK_LOGCHANNEL_KIND": "print"})


def test_plugin_host_registers_the_log_channel_once_configured(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    env = {"DELIVERY_SDK_LOGCHANNEL_KIND": "email", "DELIVERY_SDK_LOGCHANNEL_PATH": str(path)}
    host = PluginHost(environ=env, load_entry_points=True)
    adapter = host.channels.get("log")
    assert isinstance(adapter, LogChannel)
    assert adapter.kind is ChannelKind.EMAIL
    assert adapter.path == path
    sms = PluginHost(environ={**env, "DELIVERY_SDK_LOGCHANNEL_KIND": "SMS"}, load_entry_points=True)
    assert sms.channels.get("log").kind is ChannelKind.SMS
    blocked = PluginHost(environ={**env, "DELIVERY_SDK_BLOCK_PLUGINS": "logchannel"}, load_entry_points=True)
    assert "log" not in blocked.channels.names()


def test_a_second_email_adapter_needs_an_explicit_order(tmp_path: Path) -> None:
    env = {"DELIVERY_SDK_LOGCHANNEL_KIND": "email", "DELIVERY_SDK_LOGCHANNEL_PATH": str(tmp_path / "l.jsonl")}
    other = LogChannel(tmp_path / "other.jsonl", name="smtp")

    class Other:
        @hookimpl
        def delivery_register_channels(self, register: ChannelRegistry) -> None:
            register(other)

    host = PluginHost([Other()], environ=env, load_entry_points=True)
    with pytest.raises(PluginError, match="DELIVERY_SDK_CHANNEL_ORDER"):
        host.load()
    ordered = PluginHost(
        [Other()], environ={**env, "DELIVERY_SDK_CHANNEL_ORDER": "email=smtp,log"}, load_entry_points=True
    )
    assert [a.name for a in ordered.channels.of_kind(ChannelKind.EMAIL)] == ["smtp", "log"]


def test_client_serves_an_email_only_party_through_the_log_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "service.jsonl"
    # the environ= mapping reaches the plugin: nothing is read from the process environment
    monkeypatch.delenv("DELIVERY_SDK_LOGCHANNEL_KIND", raising=False)
    env = {"DELIVERY_SDK_LOGCHANNEL_KIND": "email", "DELIVERY_SDK_LOGCHANNEL_PATH": str(path)}
    clock = VirtualClock(datetime.now(UTC))
    with DeliveryClient(":memory:", clock=clock, load_entry_points=True, environ=env) as client:
        task_id = client.submit(_request())
        client.run_until_idle()
        status = client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        [dispatch] = status.dispatches
        assert dispatch.channel == "log"
        assert dispatch.kind is ChannelKind.EMAIL
        assert dispatch.status is DispatchStatus.DELIVERED
        assert dispatch.contact == mask(EMAIL)
        types = [e.event.TYPE for e in client.timeline(task_id)]
        assert types == [
            "task.created",
            "dispatch.queued",
            "dispatch.sent",
            "dispatch.delivered",
            "service.served",
            "service.filed",
        ]
    text = path.read_text(encoding="utf-8")
    assert EMAIL not in text
    [line] = _lines(path)
    assert line["dispatch_id"] == dispatch.dispatch_id
    assert line["task_id"] == task_id
    assert line["channel"] == "log"
    assert line["contact"] == mask(EMAIL) == "zh*****************om"
    assert line["recipient"] == mask("张三")
    assert line["case_number"] == "(2026)鄂0106民初1号"


def test_send_is_idempotent_on_the_dispatch_id(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    channel = LogChannel(path, clock=VirtualClock(START))
    first = asyncio.run(channel.send(_dispatch("T1.1")))
    again = asyncio.run(channel.send(_dispatch("T1.1")))
    other = asyncio.run(channel.send(_dispatch("T1.2")))
    assert [line["dispatch_id"] for line in _lines(path)] == ["T1.1", "T1.2"]
    assert first == again
    assert first.accepted
    assert first.provider_ref == "log:T1.1"
    assert [r.kind for r in first.receipts] == [ReceiptKind.DELIVERED]
    assert first.receipts[0].at == START
    assert other.provider_ref == "log:T1.2"


def test_status_reads_the_file_so_a_restarted_process_finds_the_dispatch(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    before_crash = LogChannel(path, clock=VirtualClock(START))
    asyncio.run(before_crash.send(_dispatch("T1.1")))
    after_restart = LogChannel(path)
    report = asyncio.run(after_restart.status(_dispatch("T1.1")))
    assert report.found
    assert report.provider_ref == "log:T1.1"
    assert [(r.kind, r.at) for r in report.receipts] == [(ReceiptKind.DELIVERED, START)]
    assert asyncio.run(after_restart.status(_dispatch("T9.1"))).found is False


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_one_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"dispatch_id": "T0.1", "chan', encoding="utf-8")
    channel = LogChannel(path, clock=VirtualClock(START))
    asyncio.run(channel.send(_dispatch("T1.1")))
    assert [e["dispatch_id"] for e in channel.entries()] == ["T1.1"]
    assert path.read_text(encoding="utf-8").splitlines()[0] == '{"dispatch_id": "T0.1", "chan'


def test_sms_kind_and_refused_kinds() -> None:
    assert LogChannel("x.jsonl", kind=ChannelKind.SMS).kind is ChannelKind.SMS
    with pytest.raises(ValueError, match="EMAIL or SMS"):
        LogChannel("x.jsonl", kind=ChannelKind.PRINT)
