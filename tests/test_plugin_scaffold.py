"""``delivery-sdk new-plugin``: the generated package passes its own tests and ``mypy --strict`` as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from delivery_sdk import ChannelKind, ContactKind, ServiceNature, UnknownKind
from delivery_sdk.cli import main
from delivery_sdk.plugin_kit.scaffold import NewKind, ScaffoldError, declarable_natures, known_kinds, new_plugin


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_generated_package_passes_its_tests_and_mypy_strict(tmp_path: Path) -> None:
    target = new_plugin("ding-talk", "wechat", tmp_path)
    assert target == tmp_path / "delivery-sdk-ding-talk"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "docs/ding-talk.md",
        "pyproject.toml",
        "src/delivery_sdk_ding_talk/__init__.py",
        "src/delivery_sdk_ding_talk/emulator.py",
        "src/delivery_sdk_ding_talk/py.typed",
        "tests/test_ding_talk.py",
    ]
    pyproject = (target / "pyproject.toml").read_text()
    assert 'ding-talk = "delivery_sdk_ding_talk:plugin"' in pyproject
    assert "DELIVERY_SDK_DING_TALK_URL" in (target / "docs/ding-talk.md").read_text()
    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], target)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    cache = tmp_path / "mypy-cache"
    typed = _run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "src", "tests"], target)
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_every_kind_of_today_is_accepted_and_passed_through(tmp_path: Path) -> None:
    assert set(known_kinds()) >= {"sms", "wechat", "email", "eservice", "phone"}
    for kind in known_kinds():
        target = new_plugin(f"k-{kind}", kind, tmp_path)
        assert f'KIND = "{kind}"' in (target / f"src/delivery_sdk_k_{kind}/__init__.py").read_text()


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("DingTalk", "sms", "lower-case ASCII letters"),
        ("ding_talk", "sms", "lower-case ASCII letters"),
        ("-x", "sms", "lower-case ASCII letters"),
        ("x" * 41, "sms", "at most 40"),
        ("钉钉", "sms", "lower-case ASCII letters"),
        ("delivery-sdk-ding", "sms", "without the 'delivery-sdk-' prefix"),
        ("class", "sms", "Python keyword"),
        ("ding", "pigeon", "unknown channel kind 'pigeon'"),
        ("ding", "print", "unknown channel kind 'print'"),
    ],
)
def test_a_bad_name_or_kind_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, kind: str, message: str
) -> None:
    with pytest.raises(ScaffoldError, match=message):
        new_plugin(name, kind, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "delivery-sdk-ding"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(ScaffoldError, match="already exists"):
        new_plugin("ding", "sms", tmp_path)
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "ding", "--kind", "sms", "--dir", str(tmp_path)]) == 0
    assert str(tmp_path / "delivery-sdk-ding") in capsys.readouterr().out
    assert main(["new-plugin", "ding", "--kind", "sms", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new-plugin", "ding2", "--kind", "pigeon", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown channel kind 'pigeon'" in err
    assert "add --new-kind --nature NATURE" in err


# -- a kind of the plugin's own (--new-kind) ----------------------------------------------------------------


def test_a_new_kinds_package_declares_it_serves_a_task_through_it_and_passes_mypy_strict(tmp_path: Path) -> None:
    spec = NewKind(nature="instant_message", label="钉钉工作通知", contact_label="钉钉账号")
    target = new_plugin("ding-notify", "dingnotify", tmp_path, new_kind=spec)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "docs/ding-notify.md",
        "pyproject.toml",
        "src/delivery_sdk_ding_notify/__init__.py",
        "src/delivery_sdk_ding_notify/emulator.py",
        "src/delivery_sdk_ding_notify/kind.py",
        "src/delivery_sdk_ding_notify/py.typed",
        "tests/test_ding_notify.py",
        "tests/test_kind.py",
    ]
    kind_py = (target / "src/delivery_sdk_ding_notify/kind.py").read_text()
    assert 'CONTACT_KIND = ContactKind.declare("dingnotify", label="钉钉账号")' in kind_py
    assert 'label="钉钉工作通知",\n    nature=ServiceNature.INSTANT_MESSAGE,' in kind_py
    assert "def delivery_channel_kinds(self)" in (target / "src/delivery_sdk_ding_notify/__init__.py").read_text()
    docs = (target / "docs/ding-notify.md").read_text()
    assert "--kind dingnotify --new-kind --nature instant_message" in docs
    assert 'electronic_order = ["dingnotify", "eservice", "sms"]' in docs
    # nothing was declared in this process: the kind is the package's
    with pytest.raises(UnknownKind):
        ChannelKind("dingnotify")
    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], target)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout
    cache = tmp_path / "mypy-cache"
    typed = _run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "src", "tests"], target)
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_a_new_kind_may_serve_a_built_in_contact_kind(tmp_path: Path) -> None:
    target = new_plugin("sms-bis", "textbis", tmp_path, new_kind=NewKind(nature=ServiceNature.TEXT_MESSAGE))
    kind_py = (target / "src/delivery_sdk_sms_bis/kind.py").read_text()
    assert 'CONTACT_KIND = ContactKind("textbis")' not in kind_py
    assert 'label="Sms Bis",  # TODO: the kind\'s Chinese name' in kind_py  # no --label: marked to fill in
    mobile = new_plugin(
        "mobile-notify", "mobilenotify", tmp_path, new_kind=NewKind(nature="TEXT-MESSAGE", contact="mobile")
    )
    kind_py = (mobile / "src/delivery_sdk_mobile_notify/kind.py").read_text()
    assert 'CONTACT_KIND = ContactKind("mobile")' in kind_py
    assert "nature=ServiceNature.TEXT_MESSAGE," in kind_py
    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], mobile)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout


def test_a_kind_declared_identically_in_this_process_is_accepted_a_different_one_refused(tmp_path: Path) -> None:
    contact = ContactKind.declare("scaffoldtwin", label="孪生账号")
    ChannelKind.declare("scaffoldtwin", label="孪生通知", nature=ServiceNature.PLATFORM, contact=contact)
    same = NewKind(nature="platform", label="孪生通知", contact_label="孪生账号")
    assert new_plugin("twin", "scaffoldtwin", tmp_path, new_kind=same).is_dir()
    other = NewKind(nature="email", label="孪生通知", contact_label="孪生账号")
    with pytest.raises(ScaffoldError, match="already declared here as '孪生通知' \\(platform"):
        new_plugin("twin2", "scaffoldtwin", tmp_path, new_kind=other)
    with pytest.raises(ScaffoldError, match="contact kind 'scaffoldtwin' is already declared here as '孪生账号'"):
        new_plugin("twin3", "scaffoldtwin", tmp_path, new_kind=NewKind(nature="platform", label="孪生通知"))
    assert [p.name for p in tmp_path.iterdir()] == ["delivery-sdk-twin"]


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("Ding", NewKind(nature="instant_message"), "is not a kind value"),
        ("d", NewKind(nature="instant_message"), "2-32 characters"),
        ("sms", NewKind(nature="text_message"), "'sms' is a built-in channel kind: drop --new-kind"),
        ("post", NewKind(nature="text_message"), "built-in channel kind"),
        ("ding", NewKind(nature="phone_call"), "cannot be declared by a plugin: use one of text_message"),
        ("ding", NewKind(nature="print"), "another adapter of the built-in phone, print or post kind"),
        ("ding", NewKind(nature=ServiceNature.POST), "cannot be declared by a plugin"),
        ("ding", NewKind(nature=ServiceNature.UNDECLARED), "cannot be declared by a plugin"),
        ("ding", NewKind(nature="pigeon"), "the nature 'pigeon' cannot be declared"),
        ("ding", NewKind(nature=None), "cannot be declared"),
        ("ding", NewKind(nature="instant_message", label=""), "the channel kind label '' is not usable"),
        ("ding", NewKind(nature="instant_message", label="  "), "not usable"),
        ("ding", NewKind(nature="instant_message", label="钉" * 33), "1-32 printable characters"),
        ("ding", NewKind(nature="instant_message", label="钉钉\n通知"), "on one line"),
        ("ding", NewKind(nature="instant_message", label="钉" * 31), "contact kind label .* --contact-label"),
        ("ding", NewKind(nature="instant_message", contact="postal"), "'postal' is the post's"),
        ("ding", NewKind(nature="instant_message", contact="Ding Account"), "contact kind 'Ding Account' is not"),
        ("ding", NewKind(nature="instant_message", contact="mobile", contact_label="手机"), "only for a new contact"),
        ("ding", NewKind(nature="instant_message", contact_label="\t"), "contact kind label"),
    ],
)
def test_a_bad_new_kind_is_refused_and_nothing_is_written(
    tmp_path: Path, kind: str, spec: NewKind, message: str
) -> None:
    before = (list(ChannelKind), list(ContactKind))
    with pytest.raises(ScaffoldError, match=message):
        new_plugin("ding", kind, tmp_path, new_kind=spec)
    assert list(tmp_path.iterdir()) == []
    assert (list(ChannelKind), list(ContactKind)) == before


def test_the_command_line_for_a_new_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--dir", str(tmp_path)]
    new = ["--kind", "dingcli", "--new-kind"]
    assert main(["new-plugin", "ding", *new, "--nature", "instant_message", "--label", "钉钉工作通知", *where]) == 0
    assert str(tmp_path / "delivery-sdk-ding") in capsys.readouterr().out
    assert 'label="钉钉工作通知",' in (tmp_path / "delivery-sdk-ding/src/delivery_sdk_ding/kind.py").read_text()
    refused = [
        (["--kind", "dingcli", "--nature", "instant_message"], "--nature describe a kind of the plugin's own: add"),
        (["--kind", "sms", "--label", "短信"], "--label describe a kind of the plugin's own"),
        ([*new], "--new-kind needs --nature NATURE, one of text_message, instant_message, email, platform"),
        ([*new, "--nature", "post"], "cannot be declared by a plugin"),
        ([*new, "--nature", "email", "--contact", "postal"], "'postal' is the post's"),
    ]
    for args, message in refused:
        assert main(["new-plugin", "ding2", *args, *where]) == 2
        assert message in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["delivery-sdk-ding"]
    assert declarable_natures() == ["text_message", "instant_message", "email", "platform"]


def test_the_command_line_does_not_need_httpx() -> None:
    """The core does not depend on httpx: building the CLI (new-plugin included) must not import it."""
    code = "import sys, delivery_sdk.cli as c; c.build_parser(); sys.exit(1 if 'httpx' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
