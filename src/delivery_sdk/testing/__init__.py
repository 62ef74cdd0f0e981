"""Test doubles for users of delivery-sdk: fakes, a virtual clock and a harness.

The pytest plugin (``delivery_sdk.testing.pytest_plugin``, registered under ``pytest11``) offers the
fixtures ``delivery_harness`` and ``virtual_clock``; none is autouse.
"""

from ..clock import VirtualClock
from .fakes import (
    FakeAddressSource,
    FakeCarrier,
    FakeChannel,
    FakePrintCentre,
    Outcome,
    RecordingSink,
    channels_plugin,
    print_centres_plugin,
)
from .harness import Harness, hubei_centres, make_party, make_request

__all__ = [
    "FakeAddressSource",
    "FakeCarrier",
    "FakeChannel",
    "FakePrintCentre",
    "Harness",
    "Outcome",
    "RecordingSink",
    "VirtualClock",
    "channels_plugin",
    "hubei_centres",
    "make_party",
    "make_request",
    "print_centres_plugin",
]
