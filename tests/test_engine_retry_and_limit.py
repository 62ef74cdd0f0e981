"""Retries as documented, and one limit per adapter (issue 18, part 3).

- Every retry waits ``initial * 2**(n-1)`` (capped at ``maximum``) plus a jitter in ``[0, jitter)``, the first
  retry included: calls that failed together do not retry in lock-step, and no back-off step repeats.
- ``EngineConfig.channel_concurrency`` bounds an adapter's calls in flight whatever the operation: a status
  poll and a send share the adapter's slots. Both are checked through the engine's own ``_call``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from delivery_sdk import TransientChannelError
from delivery_sdk.engine import EngineConfig
from delivery_sdk.retry import RetryConfig, backoff, call_with_retries
from delivery_sdk.testing import Harness


def _waits(config: RetryConfig) -> list[float]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def always() -> None:
        raise TransientChannelError("503")

    with pytest.raises(TransientChannelError):
        asyncio.run(call_with_retries("x", always, config=config, sleep=sleep))
    return waits


def test_every_retry_doubles_and_carries_jitter_the_first_included() -> None:
    config = RetryConfig(attempts=5, initial=0.2, maximum=1.0, jitter=0.1)
    runs = [_waits(config) for _ in range(200)]
    assert all(len(w) == 4 for w in runs)
    bases = [0.2, 0.4, 0.8, 1.0]  # doubled per retry, capped at maximum: no step repeats
    for n, base in enumerate(bases):
        column = [w[n] for w in runs]
        assert all(base <= w < base + 0.1 for w in column), (n, min(column), max(column))
        # jitter on every retry: spread over the interval, not a constant (the first retry had none before)
        assert max(column) - min(column) > 0.05, n
        assert abs(sum(column) / len(column) - (base + 0.05)) < 0.02, n


def test_retry_after_is_honoured_up_to_the_maximum() -> None:
    config = RetryConfig(attempts=3, initial=0.1, maximum=5.0, jitter=0.1)
    assert 2.0 <= backoff(config, 1, TransientChannelError("429", retry_after=2.0)) < 2.1
    assert backoff(config, 1, TransientChannelError("429", retry_after=60.0)) == 5.0
    assert backoff(RetryConfig(maximum=0.0), 3) == 0.0


def test_the_limit_is_per_adapter_across_operations() -> None:
    """Two operations of one adapter in flight share its channel_concurrency slots (they were two limits,
    so an adapter could have twice the calls in flight)."""

    async def main() -> None:
        h = Harness(config=EngineConfig(channel_concurrency=2))
        try:
            engine = h.client.engine
            inside = 0
            most = 0

            async def call() -> None:
                nonlocal inside, most
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

            calls: list[Any] = []
            for i in range(6):
                operation = "send" if i % 2 else "status"
                calls.append(engine._call("fake-sms", operation, call))
            calls.append(engine._call("fake-wechat", "send", call))  # another adapter: its own slots
            await asyncio.gather(*calls)
            assert most == 3  # two of fake-sms (send and status together) and one of fake-wechat
            assert engine._limit("fake-sms").free == 2
        finally:
            await h.aclose()

    asyncio.run(main())
