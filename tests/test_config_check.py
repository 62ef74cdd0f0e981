"""One configuration, checked at start (issue 23): the settings file, secrets by reference, ``environ``
reaching every plugin, ``delivery_configure``, problems collected into one PluginError, the explicit
order of two adapters of one kind, and ``delivery-sdk check-config``'s output and exit codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from delivery_sdk import (
    AddressCandidate,
    ChannelKind,
    ChannelRegistry,
    Contact,
    DeliveryClient,
    EvidenceBatch,
    Party,
    PluginError,
    PluginHost,
    PrintCentreRegistry,
    SettingsError,
    hookimpl,
)
from delivery_sdk.cli import main
from delivery_sdk.evidence.keys import Signer
from delivery_sdk.settings import PluginSettings, is_secret_name, load_runtime, load_settings, parse_channel_order
from delivery_sdk.testing import FakeChannel, channels_plugin


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DELIVERY_SDK_"):
            monkeypatch.delenv(name)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the settings file -------------------------------------------------------------------------------


def test_settings_file_holds_what_the_environment_holds(tmp_path: Path) -> None:
    _write(tmp_path / "sms.secret", "key-secret\n")
    path = _write(
        tmp_path / "settings.toml",
        """
[store]
path = "service.sqlite3"

[engine]
batch_size = 64
lease = 120

[policy]
retry_after_error = 300
electronic_order = ["sms", "email"]
require_consent = false

[evidence]
origin = "court.example/delivery"
key_file = "keys/evidence.key"

[channels]
email = ["smtp", "log"]

[env]
DELIVERY_SDK_SMS_URL = "https://sms.example"
DELIVERY_SDK_SMS_RATE = 50
DELIVERY_SDK_TRACE_PLUGINS = true
DELIVERY_SDK_SMS_ACCESS_KEY_SECRET = { file = "sms.secret" }
DELIVERY_SDK_SMS_CALLBACK_SECRET = { env = "SMS_CALLBACK" }
""",
    )
    settings = load_settings(path, environ={"SMS_CALLBACK": "cb-secret"})
    assert settings.store == "service.sqlite3"
    assert settings.engine == {"batch_size": 64, "lease": timedelta(seconds=120)}
    assert settings.policy == {
        "retry_after_error": timedelta(seconds=300),
        "electronic_order": (ChannelKind.SMS, ChannelKind.EMAIL),
        "require_consent": False,
    }
    assert settings.evidence_origin == "court.example/delivery"
    assert settings.evidence_key_file == tmp_path / "keys" / "evidence.key"
    assert settings.env == {
        "DELIVERY_SDK_SMS_URL": "https://sms.example",
        "DELIVERY_SDK_SMS_RATE": "50",
        "DELIVERY_SDK_TRACE_PLUGINS": "1",
        "DELIVERY_SDK_SMS_ACCESS_KEY_SECRET": "key-secret",  # the file's text, its newline dropped
        "DELIVERY_SDK_SMS_CALLBACK_SECRET": "cb-secret",
        "DELIVERY_SDK_CHANNEL_ORDER": "email=smtp,log",
    }


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        (
            '[env]\nDELIVERY_SDK_SMS_ACCESS_KEY_SECRET = "inline"\n',
            "[env] DELIVERY_SDK_SMS_ACCESS_KEY_SECRET",
            "secret",
        ),
        ('[env]\nDELIVERY_SDK_EMS_TOKEN = "inline"\n', "[env] DELIVERY_SDK_EMS_TOKEN", "by reference"),
        ('[env]\nDELIVERY_SDK_EMAIL_PASSWORD = "x"\n', "[env] DELIVERY_SDK_EMAIL_PASSWORD", "never inline"),
        ('[env]\nDELIVERY_SDK_SMS_LINK_KEY = "x"\n', "[env] DELIVERY_SDK_SMS_LINK_KEY", "secret"),
        ('[env]\nX_TOKEN = { file = "nope.txt" }\n', "[env] X_TOKEN", "cannot read"),
        ('[env]\nX_TOKEN = { env = "UNSET_VARIABLE_X" }\n', "[env] X_TOKEN", "not set"),
        ('[env]\nX_TOKEN = { path = "x" }\n', "[env] X_TOKEN", "a reference is"),
        ('[env]\nlower = "x"\n', "[env] lower", "not an environment variable name"),
        ("[env]\nX = [1, 2]\n", "[env] X", "must be a string"),
        ("[policy]\nretry_after_eror = 5\n", "[policy] retry_after_eror", "is no PolicyConfig setting"),
        ('[policy]\nretry_after_error = "ten"\n', "[policy] retry_after_error", "a number of seconds"),
        ('[policy]\nelectronic_order = ["pigeon"]\n', "[policy] electronic_order", "a channel kind"),
        ("[policy]\nlaw = 1\n", "[policy] law", "cannot be set from a settings file"),
        ("[engine]\nbatch_size = 1.5\n", "[engine] batch_size", "a whole number"),
        ('[store]\ndsn = "postgresql://svc:pw@db/x"\n', "[store] dsn", "holds a password"),
        ('[store]\npath = "a"\ndsn = "b"\n', "[store] dsn", "not both"),
        ('[evidence]\nkey = "x"\n', "[evidence] key", "unknown key"),
        ('[channels]\nemail = "log"\n', "[channels] email", "a list of channel names"),
        ('[channels]\npigeon = ["x"]\n', "[channels] pigeon", "not a channel kind"),
        ("[plugins]\nx = 1\n", "[plugins]", "unknown section"),
        ("[env\n", "", "not valid TOML"),
    ],
)
def test_settings_file_errors_name_the_file_section_and_key(tmp_path: Path, text: str, where: str, says: str) -> None:
    path = _write(tmp_path / "bad.toml", text)
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert message.startswith(f"{path}: {where}")
    assert says in message
    assert isinstance(info.value, PluginError)
    assert "inline" not in message.split(":", 1)[1] or "never inline" in message  # the value is never echoed


def test_a_missing_settings_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read the settings file"):
        load_settings(tmp_path / "none.toml")


def test_secret_names() -> None:
    for name in ("X_SECRET", "A_TOKEN", "DB_PASSWORD", "SMS_LINK_KEY", "ESERVICE_APP_KEY", "SECRET_X"):
        assert is_secret_name(name), name
    for name in ("DELIVERY_SDK_SMS_ACCESS_KEY_ID", "DELIVERY_SDK_SMS_URL", "KEYBOARD", "TOKENS_URL"):
        assert not is_secret_name(name), name


def test_the_process_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.toml", '[store]\npath = "file.sqlite3"\n[env]\nDELIVERY_SDK_X = "file"\nDELIVERY_SDK_Y = "f"\n'
    )
    runtime = load_runtime(path, environ={"DELIVERY_SDK_X": "process"})
    assert runtime.environ["DELIVERY_SDK_X"] == "process"
    assert runtime.environ["DELIVERY_SDK_Y"] == "f"
    assert runtime.store == "file.sqlite3"
    assert load_runtime(path, environ={"DELIVERY_SDK_STORE": "env.sqlite3"}).store == "env.sqlite3"
    via_env = load_runtime(environ={"DELIVERY_SDK_CONFIG": str(path)})
    assert via_env.settings.path == path
    assert load_runtime(environ={}).store is None


def test_plugin_settings_collects_every_problem() -> None:
    s = PluginSettings("demo", {"P_A": "x", "P_N": "fast", "P_S": " ", "P_M": "-1"}, "P_")
    assert s.configured
    s.require("P_URL")
    s.number("P_N", None)
    s.number("P_M", None, positive=True)
    s.secret("P_S")
    s.secret("P_T", required=True)
    with pytest.raises(PluginError) as info:
        s.check()
    assert len(info.value.problems) == 5
    assert [p.split()[0] for p in info.value.problems] == ["P_URL", "P_N", "P_M", "P_S", "P_T"]
    assert not PluginSettings("demo", {"OTHER": "1", "P_X": "  "}, "P_").configured


def test_channel_order_parsing() -> None:
    assert parse_channel_order("email=smtp, log; sms=sms") == {"email": ["smtp", "log"], "sms": ["sms"]}
    assert parse_channel_order(None) == {}
    with pytest.raises(PluginError, match="'pigeon' is not a channel kind"):
        parse_channel_order("pigeon=x")
    with pytest.raises(PluginError, match="lists a channel twice"):
        parse_channel_order("email=a,a")


# -- environ reaches every plugin; delivery_configure; problems collected ----------------------------


class EnvironSpy:
    """Implements every hook that takes ``environ`` and records what it got."""

    def __init__(self) -> None:
        self.seen: dict[str, Mapping[str, str]] = {}

    @hookimpl
    def delivery_configure(self, environ: Mapping[str, str]) -> None:
        self.seen["configure"] = environ

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry, environ: Mapping[str, str]) -> None:
        self.seen["channels"] = environ

    @hookimpl
    def delivery_register_print_centres(self, register: PrintCentreRegistry, environ: Mapping[str, str]) -> None:
        self.seen["centres"] = environ

    @hookimpl
    def delivery_address_candidates(
        self, party: Party, known: Sequence[Contact], environ: Mapping[str, str]
    ) -> list[AddressCandidate] | None:
        self.seen["addresses"] = environ
        return None

    @hookimpl
    def delivery_record_evidence(self, batch: EvidenceBatch, environ: Mapping[str, str]) -> None:
        self.seen["evidence"] = environ


def test_configure_and_every_hook_get_the_clients_environ() -> None:
    spy = EnvironSpy()
    environ = {"DELIVERY_SDK_DEMO_URL": "https://demo.example"}
    with DeliveryClient(":memory:", plugins=[spy], load_entry_points=False, environ=environ) as client:
        client.host.load()
        client.host.address_candidates(Party(party_id="P1", name="张三"), ())
        client.host.record_evidence(EvidenceBatch(events=()))
    assert set(spy.seen) == {"configure", "channels", "centres", "addresses", "evidence"}
    assert all(seen is environ for seen in spy.seen.values())


def test_configure_without_environ_gets_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_SDK_DEMO_URL", "from-process")
    spy = EnvironSpy()
    PluginHost([spy], load_entry_points=False).load()
    assert spy.seen["configure"]["DELIVERY_SDK_DEMO_URL"] == "from-process"


def test_configure_problems_of_every_plugin_are_collected_into_one_plugin_error() -> None:
    class Partial:
        @hookimpl
        def delivery_configure(self, environ: Mapping[str, str]) -> None:
            s = PluginSettings("partial", environ, "DELIVERY_SDK_PARTIAL_")
            s.require("DELIVERY_SDK_PARTIAL_URL")
            s.require("DELIVERY_SDK_PARTIAL_NAME")
            s.check()

    class Raw:
        @hookimpl
        def delivery_register_channels(self, register: ChannelRegistry) -> None:
            raise ValueError("DELIVERY_SDK_RAW_RATE must be a number")

    host = PluginHost([Partial(), Raw()], load_entry_points=False, environ={})
    with pytest.raises(PluginError) as info:
        host.load()
    assert info.value.problems == (
        "Partial: DELIVERY_SDK_PARTIAL_URL is required",
        "Partial: DELIVERY_SDK_PARTIAL_NAME is required",
        "Raw: ValueError: DELIVERY_SDK_RAW_RATE must be a number",  # a ValueError, its message kept
    )
    # the lazy path raises a PluginError too, never the bare ValueError
    with pytest.raises(PluginError, match="DELIVERY_SDK_RAW_RATE must be a number"):
        PluginHost([Raw()], load_entry_points=False, environ={}).channels  # noqa: B018


def test_a_route_that_fails_on_plugin_configuration_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    """The engine logs a configuration error's message (it names variables, never personal data)."""
    from delivery_sdk._exceptions import log_summary

    error = PluginError("x", problems=["print centre: DELIVERY_SDK_PRINTCENTRE_TOKEN is required"])
    assert log_summary(error) == "PluginError: print centre: DELIVERY_SDK_PRINTCENTRE_TOKEN is required"
    assert log_summary(ValueError("13800138000")) == "ValueError"  # anything else: its type only


# -- two adapters of one kind ------------------------------------------------------------------------


def test_two_adapters_of_one_kind_from_an_installed_plugin_need_an_explicit_order(tmp_path: Path) -> None:
    env = {"DELIVERY_SDK_PLUGINS": "logchannel", "DELIVERY_SDK_LOGCHANNEL_KIND": "email"}
    env["DELIVERY_SDK_LOGCHANNEL_PATH"] = str(tmp_path / "log.jsonl")
    mine = channels_plugin(FakeChannel("court-email", ChannelKind.EMAIL))
    with pytest.raises(PluginError, match="2 email channels are registered") as info:
        PluginHost([mine], environ=env).load()
    assert "DELIVERY_SDK_CHANNEL_ORDER=email=" in str(info.value)
    ordered = PluginHost([mine], environ={**env, "DELIVERY_SDK_CHANNEL_ORDER": "email=log,court-email"})
    assert [a.name for a in ordered.channels.of_kind(ChannelKind.EMAIL)] == ["log", "court-email"]
    with DeliveryClient(
        ":memory:", plugins=[mine], environ={**env, "DELIVERY_SDK_CHANNEL_ORDER": "email=court-email,log"}
    ) as c:
        assert c.engine.channel_kinds[ChannelKind.EMAIL] == "court-email"
    with pytest.raises(PluginError, match="no such channel is registered"):
        PluginHost([mine], environ={**env, "DELIVERY_SDK_CHANNEL_ORDER": "email=log,court-email,smtp"}).load()
    with pytest.raises(PluginError, match="but it is a email channel"):
        PluginHost([mine], environ={**env, "DELIVERY_SDK_CHANNEL_ORDER": "sms=log"}).load()


# -- delivery-sdk check-config -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _importable_test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # --plugin worker_plugins:...


def _check(capsys: pytest.CaptureFixture[str], *args: str, caplog: pytest.LogCaptureFixture) -> tuple[int, str, str]:
    caplog.clear()
    code = main(["check-config", "--log-level", "ERROR", *args])
    out, err = capsys.readouterr()
    return code, out, err + caplog.text  # problems before the plugins load are logged (stderr)


def test_check_config_prints_what_is_registered_and_exits_0(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = Signer.generate("court.test/log")
    (tmp_path / "evidence.key").write_text(signer.skey() + "\n", encoding="utf-8")
    config = _write(
        tmp_path / "settings.toml",
        f"""
[store]
dsn = {{ env = "TEST_STORE" }}
[evidence]
key_file = "evidence.key"
origin = "court.test/log"
[channels]
email = ["log", "court-email"]
[policy.adapters]
email = [{{ prefectures = ["4201"], adapters = ["court-email", "log"] }}, {{ adapters = ["court-email"] }}]
[env]
DELIVERY_SDK_PLUGINS = "logchannel"
DELIVERY_SDK_LOGCHANNEL_KIND = "email"
DELIVERY_SDK_LOGCHANNEL_PATH = "{tmp_path / "log.jsonl"}"
""",
    )
    monkeypatch.setenv("TEST_STORE", str(tmp_path / "service.sqlite3"))
    code, out, err = _check(capsys, "--config", str(config), "--plugin", "worker_plugins:court_email", caplog=caplog)
    assert code == 0, out + err
    assert "  email     log, court-email  (policy: prefecture 4201: court-email > log; court-email)" in out
    assert f"store         {tmp_path / 'service.sqlite3'}" in out
    assert "signer        court.test/log (key id " in out
    assert signer.skey() not in out
    assert "carriers      none" in out
    assert out.rstrip().endswith("configuration OK")


def test_check_config_exits_2_with_each_problem_on_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = _write(
        tmp_path / "settings.toml",
        f"""
[store]
path = "{tmp_path / "service.sqlite3"}"
[env]
DELIVERY_SDK_PLUGINS = "logchannel,sms"
DELIVERY_SDK_LOGCHANNEL_PATH = "{tmp_path / "log.jsonl"}"
DELIVERY_SDK_SMS_URL = "https://sms.example"
DELIVERY_SDK_SMS_TIMEOUT = "soon"
""",
    )
    code, out, _ = _check(capsys, "--config", str(config), caplog=caplog)
    assert code == 2
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("problem:")]
    assert "problem: logchannel: DELIVERY_SDK_LOGCHANNEL_KIND is required" in " ".join(lines)
    for variable in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SIGN_NAME", "TEMPLATE_CODE", "CALLBACK_SECRET", "TIMEOUT"):
        assert sum(f"DELIVERY_SDK_SMS_{variable}" in line for line in lines) == 1, variable
    assert "configuration OK" not in out


def test_check_config_two_adapters_of_one_kind_without_an_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = _write(
        tmp_path / "settings.toml",
        f"""
[store]
path = "{tmp_path / "service.sqlite3"}"
[env]
DELIVERY_SDK_PLUGINS = "logchannel"
DELIVERY_SDK_LOGCHANNEL_KIND = "email"
DELIVERY_SDK_LOGCHANNEL_PATH = "{tmp_path / "log.jsonl"}"
""",
    )
    code, out, _ = _check(capsys, "--config", str(config), "--plugin", "worker_plugins:court_email", caplog=caplog)
    assert code == 2
    assert "2 email channels are registered (court-email, log)" in out


def test_check_config_settings_and_store_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bad = _write(tmp_path / "bad.toml", '[env]\nDELIVERY_SDK_SMS_ACCESS_KEY_SECRET = "abc123"\n')
    code, out, err = _check(capsys, "--config", str(bad), caplog=caplog)
    assert code == 2
    assert "[env] DELIVERY_SDK_SMS_ACCESS_KEY_SECRET: is a secret" in err
    assert "abc123" not in out + err
    code, out, err = _check(capsys, "--store", str(tmp_path / "nowhere" / "x" / "s.sqlite3"), caplog=caplog)
    assert code == 2
    code, out, err = _check(capsys, caplog=caplog)
    assert code == 2
    assert "no store" in err
