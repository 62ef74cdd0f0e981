"""Open channel kinds (issue 19, part 1): a plugin declares a kind with its legal nature, label and contact
kind; the built-ins are declared the same way; the law, the policy, supervision and the proof of service
treat a kind they have never seen by its nature; a store outlives a removed plugin."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk import (
    BaseChannel,
    ChannelKind,
    ChannelRegistry,
    Consent,
    ConsentMethod,
    Contact,
    ContactKind,
    Dispatch,
    DispatchStatus,
    Party,
    PluginError,
    PolicyConfig,
    Receipt,
    ReceiptKind,
    SendResult,
    ServiceMethod,
    ServiceNature,
    SQLiteStore,
    StatusReport,
    TaskState,
    UnknownKind,
    ValidationError,
    hookimpl,
)
from delivery_sdk.locale import label
from delivery_sdk.model import DECLARABLE_NATURES
from delivery_sdk.plugins import PluginHost
from delivery_sdk.proof import build_record, record_to_json
from delivery_sdk.proof.pdf import render_pdf
from delivery_sdk.serialization import event_from_dict
from delivery_sdk.supervision import Supervisor
from delivery_sdk.testing import Harness, make_request
from delivery_sdk.trust import Reporter, allowed_reports

# -- a plugin's kind: DingTalk work notifications to a DingTalk account -----------------------------------

DINGTALK_ACCOUNT = ContactKind.declare("dingtalk", label="钉钉账号")
DINGTALK = ChannelKind.declare(
    "dingtalk", label="钉钉工作通知", nature=ServiceNature.INSTANT_MESSAGE, contact=DINGTALK_ACCOUNT
)


class DingTalkChannel(BaseChannel):
    """A DingTalk work-notification adapter: accepts every send; delivery and read come by callback."""

    name = "dingtalk-notify"
    kind = DINGTALK

    def __init__(self) -> None:
        self.sent: list[Dispatch] = []

    async def send(self, dispatch: Dispatch) -> SendResult:
        assert dispatch.contact.kind is DINGTALK_ACCOUNT
        self.sent.append(dispatch)
        return SendResult(accepted=True, provider_ref=f"dt-{dispatch.dispatch_id}")

    async def status(self, dispatch: Dispatch) -> StatusReport:
        return StatusReport(found=any(d.dispatch_id == dispatch.dispatch_id for d in self.sent))

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        data = json.loads(body)
        from datetime import datetime

        return [
            Receipt(
                dispatch_id=data["biz_id"],
                kind=ReceiptKind(data["status"]),
                at=datetime.fromisoformat(data["time"]),
                provider_event_id=data["event_id"],
            )
        ]


class DingTalkPlugin:
    """The plugin: declares its kind and registers its adapter."""

    def __init__(self, adapter: DingTalkChannel) -> None:
        self.adapter = adapter

    @hookimpl
    def delivery_channel_kinds(self) -> tuple[ChannelKind, ...]:
        return (DINGTALK,)

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        register(self.adapter)


def dingtalk_party() -> Party:
    return Party(
        party_id="P-DT",
        name="李四",
        contacts=(
            Contact(kind=DINGTALK_ACCOUNT, value="manager4201"),
            Contact(kind=ContactKind.POSTAL, value="湖北省武汉市武昌区中北路1号", division_code="420106"),
        ),
        consent=Consent(method=ConsentMethod.CONFIRMATION_FORM),
    )


# -- declaring ---------------------------------------------------------------------------------------------


def test_builtins_keep_working_as_attributes_and_by_value() -> None:
    assert ChannelKind("sms") is ChannelKind.SMS
    assert ChannelKind(ChannelKind.SMS) is ChannelKind.SMS  # as the enum allowed
    assert ContactKind(ContactKind.POSTAL) is ContactKind.POSTAL
    assert ContactKind("mobile") is ContactKind.MOBILE
    assert ChannelKind.SMS.value == "sms"
    assert ChannelKind.SMS.name == "SMS"
    assert ChannelKind.SMS.contact_kind is ContactKind.MOBILE
    assert ChannelKind.SMS.electronic
    assert ChannelKind.PHONE.electronic
    assert not ChannelKind.POST.electronic
    assert ChannelKind.SMS.carries_documents
    assert not ChannelKind.PHONE.carries_documents
    assert ChannelKind.PRINT.nature is ServiceNature.PRINT
    assert ChannelKind.ESERVICE.label == "电子送达平台"
    assert {k.value for k in ChannelKind} >= {"sms", "wechat", "email", "eservice", "phone", "print", "post"}
    assert ChannelKind.SMS in set(ChannelKind)
    # singletons, whatever copies them
    assert copy.deepcopy(ChannelKind.SMS) is ChannelKind.SMS
    assert pickle.loads(pickle.dumps(DINGTALK)) is DINGTALK
    assert pickle.loads(pickle.dumps(ContactKind.MOBILE)) is ContactKind.MOBILE
    with pytest.raises(AttributeError):
        ChannelKind.SMS.label = "x"  # type: ignore[misc]


def test_a_declared_kind_is_looked_up_and_redeclared_identically() -> None:
    assert ChannelKind("dingtalk") is DINGTALK
    again = ChannelKind.declare(
        "dingtalk", label="钉钉工作通知", nature=ServiceNature.INSTANT_MESSAGE, contact=DINGTALK_ACCOUNT
    )
    assert again is DINGTALK
    assert DINGTALK in list(ChannelKind)
    assert DINGTALK_ACCOUNT in list(ContactKind)
    assert DINGTALK.declared
    assert not DINGTALK.builtin
    assert ChannelKind.SMS.builtin


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"value": "Ding Talk"}, "lowercase letter"),
        ({"value": "x"}, "2-32 characters"),
        ({"label": ""}, "label must be"),
        ({"nature": ServiceNature.POST}, "another adapter of ChannelKind.PHONE, PRINT or POST"),
        ({"nature": ServiceNature.PHONE_CALL}, "nature must be one of"),
        ({"nature": ServiceNature.UNDECLARED}, "nature must be one of"),
        ({"nature": "instant_message"}, "nature must be one of"),
        ({"contact": "dingtalk"}, "contact must be a ContactKind"),
        ({"value": "sms"}, "already declared"),  # a plugin cannot change what a stored value means
        ({"label": "钉钉"}, "already declared"),
        ({"nature": ServiceNature.EMAIL}, "already declared"),
    ],
)
def test_bad_declarations_are_refused_and_change_nothing(kwargs: dict[str, Any], message: str) -> None:
    before = list(ChannelKind)
    args: dict[str, Any] = {
        "value": "dingtalk",
        "label": "钉钉工作通知",
        "nature": ServiceNature.INSTANT_MESSAGE,
        "contact": DINGTALK_ACCOUNT,
        **kwargs,
    }
    value = args.pop("value")
    with pytest.raises(ValidationError, match=re.escape(message)):
        ChannelKind.declare(value, **args)
    assert list(ChannelKind) == before
    assert ChannelKind.SMS.label == "短信"


def test_contact_kind_declarations_are_checked() -> None:
    with pytest.raises(ValidationError, match="already declared"):
        ContactKind.declare("dingtalk", label="别的")
    with pytest.raises(ValidationError, match="lowercase letter"):
        ContactKind.declare("DingTalk", label="钉钉账号")
    with pytest.raises(ValidationError, match="label must be"):
        ContactKind.declare("wecom", label=" ")


def test_unknown_kinds_are_a_typed_error_naming_the_fix() -> None:
    with pytest.raises(UnknownKind, match="install and enable the plugin that declares it"):
        ChannelKind("telex")
    with pytest.raises(UnknownKind, match="not a declared contact kind"):
        ContactKind("telex")
    with pytest.raises(UnknownKind):
        ChannelKind(3)  # type: ignore[arg-type]
    assert issubclass(UnknownKind, ValueError)  # code that caught the enum's ValueError still does


def test_a_plugin_contact_kind_is_validated_as_an_account() -> None:
    with pytest.raises(ValidationError, match="dingtalk account"):
        Contact(kind=DINGTALK_ACCOUNT, value="not an account!")
    assert Contact(kind=DINGTALK_ACCOUNT, value="manager4201").value == "manager4201"


# -- stored kinds ------------------------------------------------------------------------------------------


def test_a_stored_kind_no_plugin_declares_reads_as_a_placeholder() -> None:
    placeholder = ChannelKind.stored("wecom_gone")
    assert placeholder is ChannelKind.stored("wecom_gone")
    assert not placeholder.declared
    assert placeholder.nature is ServiceNature.UNDECLARED
    # every plugin's kind carried documents: the history folds and is judged as the e-service it was
    assert placeholder.electronic
    assert placeholder.carries_documents
    assert ServiceNature.UNDECLARED not in DECLARABLE_NATURES
    assert placeholder.label == "未安装的渠道（wecom_gone）"
    assert placeholder not in list(ChannelKind)  # never offered, never sent to
    assert allowed_reports(placeholder, Reporter.CHANNEL) == allowed_reports(ChannelKind.SMS, Reporter.CHANNEL)
    assert label("kind", "wecom_gone") == "未安装的渠道（wecom_gone）"
    assert label("kind", "dingtalk") == "钉钉工作通知"
    assert label("contact", "dingtalk") == "钉钉账号"
    with pytest.raises(UnknownKind, match="not a kind value"):
        ChannelKind.stored("no such kind!")
    assert ContactKind.stored("wecom_gone").label == "未安装的联系方式（wecom_gone）"
    assert ContactKind.stored("mobile") is ContactKind.MOBILE


def test_stored_events_with_a_plugin_kind_read_back() -> None:
    body = {
        "type": "dispatch.queued",
        "task_id": "T1",
        "at": "2026-11-02T09:00:00+08:00",
        "dispatch_id": "T1.1",
        "channel": "wecom-app",
        "kind": "wecom_gone",
        "contact": {
            "kind": "wecom_gone",
            "value": "acct-1",
            "confirmed": False,
            "division_code": None,
            "source": "request",
        },
        "centre_id": None,
    }
    event = event_from_dict(body)
    assert event.kind is ChannelKind.stored("wecom_gone")  # type: ignore[attr-defined]
    assert event.contact.kind is ContactKind.stored("wecom_gone")  # type: ignore[attr-defined]


# -- the host ----------------------------------------------------------------------------------------------


def test_channel_kinds_hook_gives_the_host_every_declared_kind_builtins_included() -> None:
    host = PluginHost([DingTalkPlugin(DingTalkChannel())], load_entry_points=False, environ={})
    kinds = host.channel_kinds()
    assert kinds["sms"] is ChannelKind.SMS
    assert kinds["dingtalk"] is DINGTALK
    assert host.channels.get("dingtalk-notify").kind is DINGTALK
    bare = PluginHost(load_entry_points=False, environ={})
    assert "dingtalk" not in bare.channel_kinds()


def test_an_adapter_of_a_kind_no_plugin_of_the_host_declares_is_refused() -> None:
    class Undeclaring:
        @hookimpl
        def delivery_register_channels(self, register: ChannelRegistry) -> None:
            register(DingTalkChannel())

    host = PluginHost([Undeclaring()], load_entry_points=False, environ={})
    with pytest.raises(PluginError, match="no plugin of this host declares: return it from the plugin's"):
        host.load()


@pytest.mark.parametrize("returned", [("dingtalk",), (ChannelKind.stored("wecom_gone"),)])
def test_a_kinds_hook_returning_anything_but_declared_kinds_is_refused(returned: tuple[Any, ...]) -> None:
    class Bad:
        @hookimpl
        def delivery_channel_kinds(self) -> tuple[Any, ...]:
            return returned

    host = PluginHost([Bad()], load_entry_points=False, environ={})
    with pytest.raises(PluginError, match=re.escape("return kinds made with ChannelKind.declare")):
        host.channel_kinds()


def test_a_kinds_hook_that_raises_is_reported_by_plugin() -> None:
    class Raising:
        @hookimpl
        def delivery_channel_kinds(self) -> tuple[ChannelKind, ...]:
            return (
                ChannelKind.declare(
                    "sms", label="别的短信", nature=ServiceNature.TEXT_MESSAGE, contact=ContactKind.MOBILE
                ),
            )

    host = PluginHost([Raising()], load_entry_points=False, environ={})
    with pytest.raises(PluginError, match="Raising: ValidationError: channel kind 'sms' is already declared"):
        host.channel_kinds()


# -- the law by nature -------------------------------------------------------------------------------------


def test_receipts_a_plugin_kind_may_report_follow_its_nature() -> None:
    assert allowed_reports(DINGTALK, Reporter.CHANNEL) == allowed_reports(ChannelKind.WECHAT, Reporter.CHANNEL)
    assert allowed_reports(DINGTALK, None) == allowed_reports(ChannelKind.WECHAT, None)
    assert allowed_reports(DINGTALK, Reporter.CARRIER) == frozenset()


def test_response_window_of_a_plugin_kind_is_its_natures() -> None:
    assert ServiceNature.INSTANT_MESSAGE.default_window == PolicyConfig().response_window[ChannelKind.WECHAT]
    assert ServiceNature.TEXT_MESSAGE.default_window == PolicyConfig().response_window[ChannelKind.SMS]
    assert ServiceNature.PRINT.default_window == timedelta(hours=24)


# -- done when: a brand-new kind from a plugin serves a task end to end ------------------------------------


def test_a_plugin_kind_serves_a_task_end_to_end_and_the_proof_names_it(tmp_path: Path) -> None:
    adapter = DingTalkChannel()
    policy = PolicyConfig(electronic_order=(DINGTALK, ChannelKind.ESERVICE, ChannelKind.SMS))

    async def main() -> None:
        h = Harness(SQLiteStore(tmp_path / "dt.sqlite3"), policy=policy, extra_plugins=[DingTalkPlugin(adapter)])
        task_id = await h.client.submit(make_request(dingtalk_party()))
        await h.client.run_until_idle(until=h.clock.now() + timedelta(minutes=1))  # before the first poll
        assert [d.dispatch_id for d in adapter.sent] == [f"{task_id}.1"]
        status = h.client.status(task_id)
        assert status.state is TaskState.ELECTRONIC
        assert status.dispatches[0].kind is DINGTALK
        assert status.dispatches[0].status is DispatchStatus.SENT

        # the provider's signed push, through the adapter's own parse_callback
        at = h.clock.now()
        body = {"biz_id": f"{task_id}.1", "status": "delivered", "time": at.isoformat(), "event_id": "dt-ev-1"}
        results = await h.client.ingest_callback("dingtalk-notify", {}, json.dumps(body).encode())
        assert [r.outcome.value for r in results] == ["accepted"]
        await h.client.run_until_idle()

        status = h.client.status(task_id)
        assert status.state is TaskState.FILED
        assert status.method is ServiceMethod.ELECTRONIC
        assert status.served_at == at  # the consented address: served on arrival (CPL Art. 90)

        proof = build_record(h.sink.filed[f"{task_id}:proof"])
        assert [a.kind for a in proof.attempts] == [DINGTALK]
        assert json.loads(record_to_json(proof))["attempts"][0]["kind"] == "dingtalk"
        pdf = tmp_path / "proof.pdf"
        pdf.write_bytes(render_pdf(proof))
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "钉钉工作通知" in re.sub(r"\s+", "", text)

        await h.aclose()

    asyncio.run(main())

    # supervision counts it by its nature: an electronic attempt, served electronically
    with Supervisor(tmp_path / "dt.sqlite3") as sup:
        funnel = dict(sup.statistics().funnel)
    assert funnel["electronic attempted"] == 1
    assert funnel["served electronically"] == 1

    # the plugin is gone: another process (which never imported it) reads the store: status, report, evidence
    cli = str(Path(sys.executable).parent / "delivery-sdk")
    store = str(tmp_path / "dt.sqlite3")
    env = {**os.environ, "DELIVERY_SDK_PLUGINS": "none"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], capture_output=True, text=True, check=False, env=env)

    status = run("status", "--store", store, "--json", "T000001")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["state"] == "filed"
    assert data["dispatches"][0]["kind"] == "dingtalk"
    shown = run("status", "--store", store, "T000001")
    assert shown.returncode == 0, shown.stderr
    assert "未安装的渠道（dingtalk）" in shown.stdout, shown.stdout
    report = run("report", "--store", store, "--json", str(tmp_path / "report.json"), "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    figures = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert "未安装的渠道（dingtalk）" in (tmp_path / "r.html").read_text(encoding="utf-8")
    # without the plugin, the kind is still counted as the electronic attempt it was (by its placeholder)
    assert {"stage": "electronic attempted", "tasks": 1} in figures["funnel"]
    assert figures["cost"]["actual_yuan"] == figures["cost"]["electronic_unit_yuan"]
    verify = run("verify", "--store", store)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_stats_count_a_removed_plugins_kind_after_the_declared_ones() -> None:
    from datetime import UTC, datetime

    from delivery_sdk.events import DispatchDelivered, DispatchQueued, DispatchSent, TaskCreated
    from delivery_sdk.lifecycle import fold
    from delivery_sdk.stats import summarize

    at = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    gone = ChannelKind.stored("wecom_gone")
    contact = Contact(kind=ContactKind.stored("wecom_gone"), value="acct-1")
    task = fold(
        [
            TaskCreated(task_id="T1", at=at, request=make_request(dingtalk_party())),
            DispatchQueued(task_id="T1", at=at, dispatch_id="T1.1", channel="wecom-app", kind=gone, contact=contact),
            DispatchSent(task_id="T1", at=at, dispatch_id="T1.1"),
            DispatchDelivered(task_id="T1", at=at, dispatch_id="T1.1", delivered_at=at),
        ]
    )
    assert task.state is TaskState.ELECTRONIC  # folded as the e-service it was
    summary = summarize([task])
    assert [(c.kind, c.attempts, c.delivered) for c in summary.channels] == [(gone, 1, 1)]
