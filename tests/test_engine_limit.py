"""The engine's per-adapter limit on provider calls in flight (``delivery_sdk._fast.CallLimit``; the engine's own
use of it, two operations of one adapter in flight, is tested in test_engine_retry_and_limit.py)."""

from __future__ import annotations

import asyncio

import pytest

from delivery_sdk._fast import CallLimit


def test_the_call_limit_bounds_hands_over_in_order_and_survives_cancellation() -> None:
    """The engine's per-channel call limit: at most n holders, waiters served first come first served,
    and a waiter cancelled while waiting (or just as its slot arrived) loses no slot."""

    async def main() -> None:
        limit = CallLimit(2)
        inside: list[int] = []
        most = [0]
        order: list[int] = []

        async def call(i: int, hold: float) -> None:
            if not limit.try_acquire():  # the engine's own acquire (Engine._call)
                await limit.wait()
            order.append(i)
            inside.append(i)
            most[0] = max(most[0], len(inside))
            await asyncio.sleep(hold)
            inside.remove(i)
            limit.release()

        await asyncio.gather(*(call(i, 0.01) for i in range(6)))
        assert most[0] == 2
        assert order == list(range(6))
        assert limit.free == 2
        assert not limit.waiting

        # a waiter cancelled while it waits gives up its place; the others still get theirs
        limit.free = 0
        waiter = asyncio.ensure_future(limit.wait())
        other = asyncio.ensure_future(limit.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.sleep(0)
        assert list(limit.waiting) != []
        limit.release()
        await other
        assert limit.free == 0
        limit.release()
        assert limit.free == 1

        # a slot handed over just as its waiter is cancelled goes to the next waiter
        limit.free = 0
        first = asyncio.ensure_future(limit.wait())
        second = asyncio.ensure_future(limit.wait())
        await asyncio.sleep(0)
        limit.release()  # resolves first's future...
        first.cancel()  # ...but first is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        await second  # the slot was passed on
        limit.release()
        assert limit.free == 1
        assert not limit.waiting

    asyncio.run(main())
