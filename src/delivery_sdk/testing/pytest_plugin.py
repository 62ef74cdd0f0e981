"""pytest fixtures for code that embeds delivery-sdk (registered under the ``pytest11`` entry point).

- ``virtual_clock``: a :class:`~delivery_sdk.VirtualClock`;
- ``delivery_harness``: a :class:`~delivery_sdk.testing.Harness` on an in-memory store. At teardown it fails
  the test if scripted outcomes were left unused (a script that did not happen is a test that lies).

Neither is autouse. The harness is async-friendly: drive it with ``asyncio.run`` or your async plugin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ..clock import VirtualClock
from .harness import Harness


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A fresh :class:`VirtualClock` (the pytest fixture)."""
    return VirtualClock()


@pytest.fixture
def delivery_harness() -> Iterator[Harness]:
    """A :class:`Harness`, closed afterwards; the test fails if scripted outcomes were never used (the pytest
    fixture)."""
    harness = Harness()
    yield harness
    leftover = harness.unused()
    asyncio.run(harness.aclose())
    if leftover:
        pytest.fail(f"scripted outcomes were never used: {leftover}", pytrace=False)
