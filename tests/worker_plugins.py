"""Plugins for the worker's command-line tests: ``--plugin worker_plugins:failing`` (an SMS adapter that
fails every call: tests/test_worker_health.py) and ``--plugin worker_plugins:court_email`` (a second e-mail
adapter: tests/test_config_check.py)."""

from __future__ import annotations

from delivery_sdk import ChannelKind, ChannelRegistry, Dispatch, MockChannel, SendResult, StatusReport, hookimpl
from delivery_sdk.testing import FakeChannel, channels_plugin


def _send(dispatch: Dispatch) -> SendResult:
    raise RuntimeError("the gateway is misconfigured")


def _status(dispatch: Dispatch) -> StatusReport:
    raise RuntimeError("the gateway is misconfigured")


class FailingSms:
    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        register(MockChannel(_send, name="broken-sms", kind=ChannelKind.SMS, status_handler=_status))


failing = FailingSms()
court_email = channels_plugin(FakeChannel("court-email", ChannelKind.EMAIL))
