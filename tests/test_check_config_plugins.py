"""``delivery-sdk check-config`` for every configurable plugin: a complete minimal configuration passes, and
each required variable removed makes it exit 2 with a problem line naming that variable (issue 23).

The required variables are taken from each plugin's own settings code: the names it passes to
:meth:`PluginSettings.require` and to :meth:`PluginSettings.secret` with ``required=True`` while it loads the
complete configuration (recorded by wrapping those two methods), plus the variables its problems name when it
is given only an optional variable. A short floor per plugin (the variables its documentation calls required)
keeps the test failing if a plugin stops checking one of them at all.

The settings go through a settings file as a deployment would give them: secrets by ``{ file = ... }``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from delivery_sdk.cli import main
from delivery_sdk.settings import PluginSettings, is_secret_name


def _centres(tmp: Path) -> str:
    path = tmp / "centres.toml"
    path.write_text(
        '[[centre]]\nid = "PC-420100"\nname = "武汉打印中心"\nroute_keys = ["420100"]\nhours = "08:00-18:00"\n'
        'days = "all"\ncutoffs = ["12:00"]\nendpoint = "https://print.example"\n',
        encoding="utf-8",
    )
    return str(path)


# (entry point, prefix, complete minimal configuration, an optional variable that keeps the plugin
# "configured" when a required one is removed, the floor of required variables)
Config = Callable[[Path], dict[str, str]]
PLUGINS: dict[str, tuple[str, Config, str, frozenset[str]]] = {
    "sms": (
        "DELIVERY_SDK_SMS_",
        lambda t: {
            "DELIVERY_SDK_SMS_URL": "https://sms.example",
            "DELIVERY_SDK_SMS_ACCESS_KEY_ID": "LTAI-1",
            "DELIVERY_SDK_SMS_ACCESS_KEY_SECRET": "s1",
            "DELIVERY_SDK_SMS_SIGN_NAME": "法院",
            "DELIVERY_SDK_SMS_TEMPLATE_CODE": "SMS_1",
            "DELIVERY_SDK_SMS_LINK_TEMPLATE": "https://ssfw.example/s/{token}",
            "DELIVERY_SDK_SMS_CALLBACK_SECRET": "cb",
        },
        "DELIVERY_SDK_SMS_RATE",
        frozenset({"URL", "ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SIGN_NAME", "TEMPLATE_CODE", "CALLBACK_SECRET"}),
    ),
    "wechat": (
        "DELIVERY_SDK_WECHAT_",
        lambda t: {
            "DELIVERY_SDK_WECHAT_APPID": "wx0001",
            "DELIVERY_SDK_WECHAT_SECRET": "s1",
            "DELIVERY_SDK_WECHAT_TEMPLATE_ID": "tpl-1",
            "DELIVERY_SDK_WECHAT_LINK_TEMPLATE": "https://ssfw.example/w/{token}",
            "DELIVERY_SDK_WECHAT_SERVER_TOKEN": "tok",
            "DELIVERY_SDK_WECHAT_READ_SECRET": "rs",
            "DELIVERY_SDK_WECHAT_SENT_LOG": str(t / "wechat-sent.sqlite3"),
        },
        "DELIVERY_SDK_WECHAT_RATE",
        frozenset({"APPID", "SECRET", "TEMPLATE_ID", "SERVER_TOKEN"}),
    ),
    "email": (
        "DELIVERY_SDK_EMAIL_",
        lambda t: {
            "DELIVERY_SDK_EMAIL_HOST": "smtp.example",
            "DELIVERY_SDK_EMAIL_SENDER": "court@court.example",
            "DELIVERY_SDK_EMAIL_LINK_TEMPLATE": "https://ssfw.example/e/{token}",
            "DELIVERY_SDK_EMAIL_LINK_SECRET": "ls",
            "DELIVERY_SDK_EMAIL_SENT_LOG": str(t / "email-sent.sqlite3"),
        },
        "DELIVERY_SDK_EMAIL_RATE",
        frozenset({"HOST", "SENDER", "LINK_TEMPLATE", "LINK_SECRET"}),
    ),
    "eservice": (
        "DELIVERY_SDK_ESERVICE_",
        lambda t: {
            "DELIVERY_SDK_ESERVICE_URL": "https://ssfw.platform.example",
            "DELIVERY_SDK_ESERVICE_APP_KEY": "ak",
            "DELIVERY_SDK_ESERVICE_APP_SECRET": "as",
        },
        "DELIVERY_SDK_ESERVICE_RATE",
        frozenset({"URL", "APP_KEY", "APP_SECRET"}),
    ),
    "staffcalls": (
        "DELIVERY_SDK_STAFFCALLS_",
        lambda t: {"DELIVERY_SDK_STAFFCALLS_QUEUE": str(t / "calls.sqlite3")},
        "",  # its only variable: removed, the plugin is not configured (below: an unusable one is named)
        frozenset({"QUEUE"}),
    ),
    "ems": (
        "DELIVERY_SDK_EMS_",
        lambda t: {
            "DELIVERY_SDK_EMS_URL": "https://api.ems.example",
            "DELIVERY_SDK_EMS_TOKEN": "t",
            "DELIVERY_SDK_EMS_SENDER_ADDRESS": "湖北省武汉市江岸区沿江大道1号",
            "DELIVERY_SDK_EMS_SENDER_PHONE": "027-00000000",
        },
        "DELIVERY_SDK_EMS_RATE",
        # the return address and phone go together: each is required once the other is set
        frozenset({"URL", "TOKEN", "SENDER_ADDRESS", "SENDER_PHONE"}),
    ),
    "printcentre": (
        "DELIVERY_SDK_PRINTCENTRE_",
        lambda t: {
            "DELIVERY_SDK_PRINTCENTRE_CENTRES": _centres(t),
            "DELIVERY_SDK_PRINTCENTRE_TOKEN": "t",
            "DELIVERY_SDK_PRINTCENTRE_SPOOL": str(t / "spool"),
            "DELIVERY_SDK_PRINTCENTRE_DOCUMENTS": str(t / "documents"),
        },
        "DELIVERY_SDK_PRINTCENTRE_RATE",
        frozenset({"CENTRES", "TOKEN", "SPOOL", "DOCUMENTS"}),
    ),
    "notary": (
        "DELIVERY_SDK_NOTARY_",
        lambda t: {"DELIVERY_SDK_NOTARY_URL": "https://notary.example", "DELIVERY_SDK_NOTARY_QUEUE": "court-1"},
        "DELIVERY_SDK_NOTARY_QUEUE",
        frozenset({"URL"}),
    ),
    "registry": (
        "DELIVERY_SDK_REGISTRY_",
        lambda t: {"DELIVERY_SDK_REGISTRY_URL": "https://registry.example", "DELIVERY_SDK_REGISTRY_SOURCE": "hr"},
        "DELIVERY_SDK_REGISTRY_SOURCE",
        frozenset({"URL"}),
    ),
    "aliyun-sms": (
        "DELIVERY_SDK_ALIYUN_SMS_",
        lambda t: {
            "DELIVERY_SDK_ALIYUN_SMS_ACCESS_KEY_ID": "LTAI-1",
            "DELIVERY_SDK_ALIYUN_SMS_ACCESS_KEY_SECRET": "s1",
            "DELIVERY_SDK_ALIYUN_SMS_SIGN_NAME": "法院",
            "DELIVERY_SDK_ALIYUN_SMS_TEMPLATE_CODE": "SMS_1",
            "DELIVERY_SDK_ALIYUN_SMS_LINK_TEMPLATE": "https://ssfw.example/s/{token}",
            "DELIVERY_SDK_ALIYUN_SMS_CALLBACK_TOKEN": "cb",
        },
        "DELIVERY_SDK_ALIYUN_SMS_RATE",
        frozenset({"ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SIGN_NAME", "TEMPLATE_CODE", "CALLBACK_TOKEN"}),
    ),
    "tencent-sms": (
        "DELIVERY_SDK_TENCENT_SMS_",
        lambda t: {
            "DELIVERY_SDK_TENCENT_SMS_SECRET_ID": "AKID1",
            "DELIVERY_SDK_TENCENT_SMS_SECRET_KEY": "sk",
            "DELIVERY_SDK_TENCENT_SMS_SDK_APP_ID": "1400000001",
            "DELIVERY_SDK_TENCENT_SMS_SIGN_NAME": "法院",
            "DELIVERY_SDK_TENCENT_SMS_TEMPLATE_ID": "100001",
            "DELIVERY_SDK_TENCENT_SMS_LINK_TEMPLATE": "https://ssfw.example/s/{token}",
            "DELIVERY_SDK_TENCENT_SMS_CALLBACK_TOKEN": "cb",
        },
        "DELIVERY_SDK_TENCENT_SMS_RATE",
        frozenset({"SECRET_ID", "SECRET_KEY", "SDK_APP_ID", "SIGN_NAME", "TEMPLATE_ID", "CALLBACK_TOKEN"}),
    ),
    "logchannel": (
        "DELIVERY_SDK_LOGCHANNEL_",
        lambda t: {"DELIVERY_SDK_LOGCHANNEL_KIND": "sms", "DELIVERY_SDK_LOGCHANNEL_PATH": str(t / "log.jsonl")},
        "DELIVERY_SDK_LOGCHANNEL_PATH",
        frozenset({"KIND"}),
    ),
}

_OPTIONAL_VALUE = {"RATE": "5", "QUEUE": "court-1", "SOURCE": "hr"}


def _optional_value(complete: Mapping[str, str], prefix: str, name: str) -> str:
    return complete.get(name) or _OPTIONAL_VALUE[name.removeprefix(prefix)]


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _settings_file(tmp: Path, plugin: str, env: Mapping[str, str]) -> Path:
    """A settings file in the documented format: the store, the plugin chosen, its variables, secrets by file."""
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    lines = ["[store]", f"path = {_toml_string(str(tmp / 'service.sqlite3'))}", "", "[env]"]
    lines.append(f"DELIVERY_SDK_PLUGINS = {_toml_string(plugin)}")
    for name, value in env.items():
        if is_secret_name(name):
            file = secrets / name.lower()
            file.write_text(value + "\n", encoding="utf-8")
            lines.append(f"{name} = {{ file = {_toml_string(str(file))} }}")
        else:
            lines.append(f"{name} = {_toml_string(value)}")
    path = tmp / f"settings-{len(list(tmp.glob('settings-*.toml')))}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DELIVERY_SDK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # any default file a plugin writes lands here


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """The variables each plugin's settings code declares required: ``{prefix: {names}}``."""
    seen: dict[str, set[str]] = {}
    require, secret = PluginSettings.require, PluginSettings.secret

    def recording_require(self: PluginSettings, name: str, what: str = "") -> str:
        seen.setdefault(self.prefix, set()).add(name)
        return require(self, name, what)

    def recording_secret(self: PluginSettings, name: str, *, required: bool = False) -> str | None:
        if required:
            seen.setdefault(self.prefix, set()).add(name)
        return secret(self, name, required=required)

    monkeypatch.setattr(PluginSettings, "require", recording_require)
    monkeypatch.setattr(PluginSettings, "secret", recording_secret)
    return seen


def _check(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, list[str]]:
    code = main(["check-config", "--log-level", "ERROR", "--config", str(config)])
    out, err = capsys.readouterr()
    problems = [line.strip() for line in out.splitlines() if line.strip().startswith("problem:")]
    return code, out + err, problems


def _named(problems: list[str]) -> set[str]:
    return {name for line in problems for name in re.findall(r"\bDELIVERY_SDK_[A-Z0-9_]+", line)}


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
def test_check_config_names_each_missing_required_variable(
    plugin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: dict[str, set[str]]
) -> None:
    prefix, make, optional, floor = PLUGINS[plugin]
    complete = make(tmp_path)

    # the complete minimal configuration passes, and the plugin is loaded
    code, out, problems = _check(capsys, _settings_file(tmp_path, plugin, complete))
    assert code == 0, out
    assert problems == []
    assert plugin in out.split("plugins", 1)[1].splitlines()[0], out
    assert out.rstrip().endswith("configuration OK")

    # what the plugin's settings code declares required (PluginSettings.require / secret(required=True)),
    # and what it names when configured by an optional variable alone
    required = set(recorded.get(prefix, set()))
    if optional:
        code, out, problems = _check(
            capsys, _settings_file(tmp_path, plugin, {optional: _optional_value(complete, prefix, optional)})
        )
        assert code == 2, out
        required |= {n for n in _named(problems) if n.startswith(prefix) and n != optional}
    derived = set(required)
    # the floor is tested whether or not the settings code still declares it: a plugin that stops checking
    # one of these fails below, when that variable is removed and no problem names it
    required |= {prefix + name for name in floor}
    assert derived, f"{plugin}: its settings code declared no required variable"
    assert required <= set(complete), f"{plugin}: the minimal configuration lacks {sorted(required - set(complete))}"

    for name in sorted(required):
        env = {k: v for k, v in complete.items() if k != name}
        if optional and optional not in env:
            env[optional] = _optional_value(complete, prefix, optional)
        if not any(k.startswith(prefix) for k in env):
            continue  # staffcalls: its only variable gone, the plugin is not configured (tested below)
        code, out, problems = _check(capsys, _settings_file(tmp_path, plugin, env))
        assert code == 2, f"{plugin} without {name}:\n{out}"
        assert any(name in line for line in problems), f"{plugin} without {name}: no problem names it:\n{out}"
        assert "configuration OK" not in out


def test_staffcalls_without_its_one_variable_is_not_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Staff calls have one variable, the queue: removed, the plugin is not configured (nothing registered, no
    problem), the documented rule for an installed plugin none of whose variables is set."""
    code, out, problems = _check(capsys, _settings_file(tmp_path, "staffcalls", {}))
    assert code == 0, out
    assert problems == []
    assert "staff-calls" not in out
    code, out, _ = _check(capsys, _settings_file(tmp_path, "staffcalls", PLUGINS["staffcalls"][1](tmp_path)))
    assert code == 0, out
    assert "  phone     staff-calls" in out


def test_every_configurable_plugin_is_covered() -> None:
    """Each installed plugin entry point that reads ``DELIVERY_SDK_<NAME>_*`` settings has a case above."""
    from importlib.metadata import entry_points

    installed = {ep.name for ep in entry_points(group="delivery_sdk")}
    expected = {
        "sms",
        "wechat",
        "email",
        "eservice",
        "staffcalls",
        "ems",
        "printcentre",
        "notary",
        "registry",
        "aliyun-sms",
        "tencent-sms",
        "logchannel",
    }
    assert expected <= installed | set(PLUGINS)
    assert set(PLUGINS) == expected
    extra: Any = sorted(installed - expected)
    assert not extra, f"plugins without a check-config case: {extra}"
