"""Time, injected: the engine never reads the system clock directly.

:class:`SystemClock` is the real one; :class:`VirtualClock` lets tests and the demo run thirty days of
service in seconds (the engine jumps it to the next due moment when nothing is due now).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from ._exceptions import ValidationError

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the engine reads the time from and sleeps on: the system's clock, or a virtual one."""

    @property
    def virtual(self) -> bool:
        """True when the engine may jump this clock forward instead of waiting."""
        ...

    def now(self) -> datetime:
        """The current moment (timezone-aware, UTC)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a virtual clock moves forward instead)."""

    def advance_to(self, moment: datetime) -> None:
        """Move the clock forward to ``moment`` (a virtual clock only; never backwards)."""


class SystemClock:
    """Wall-clock time in UTC."""

    virtual = False

    def now(self) -> datetime:
        """The wall-clock time, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of real time (a negative wait is no wait)."""
        await asyncio.sleep(max(0.0, seconds))

    def advance_to(self, moment: datetime) -> None:
        """Refuse: the system clock cannot be moved (:class:`ValidationError`)."""
        raise ValidationError("the system clock cannot be moved; use a VirtualClock in tests and demos")


class VirtualClock:
    """A clock that only moves when told to (or when the engine jumps it to the next due moment)."""

    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValidationError("VirtualClock start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        """The clock's current (virtual) moment."""
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds) and return the new moment; never backwards."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValidationError("a VirtualClock cannot go backwards")
        self._now += timedelta(seconds=seconds)
        return self._now

    def advance_to(self, moment: datetime) -> None:
        """Move the clock to ``moment`` if that is later; an earlier moment changes nothing."""
        if moment > self._now:
            self._now = moment

    async def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` at once, then yield to the event loop."""
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"
