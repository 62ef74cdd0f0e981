"""How many print jobs were routed to each centre today (Beijing day): the capacity check's input.

The count comes from the store's events (``print.routed``), not from a counter of its own: the event log is
the truth, so the count survives restarts and includes what other engine workers routed (several workers
share a PostgreSQL store). :class:`RoutedToday` reads the log incrementally through the store protocol's
``events_after`` (only ``print.routed`` events it has not seen: the store filters by type before it decodes
anything), and on the first call of a day finds where the day starts
by a binary search over ``seq`` (``events_after(seq, 1)``, a logarithmic number of one-row reads) with an
hour of slack for clocks that differ between workers; so a restart reads only today's events, never the
whole log.

Decisions taken in the current step are counted at once (:meth:`RoutedToday.note`), before they commit, so
one step cannot overfill a centre; the key of a decision (task, moment, centre) is the key of the event it
becomes, so the later read does not count it twice. A decision whose commit conflicts is never recorded
and stays counted until the day ends: the count errs on the full side, never on the empty side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

from ..events import PrintRouted, StoredEvent
from ..law.holidays import BEIJING, beijing_date

__all__ = ["RoutedToday"]

SLACK = timedelta(hours=1)
_ROUTED = (PrintRouted.TYPE,)


class _EventLog(Protocol):
    def events_after(self, seq: int, limit: int, *, types: Sequence[str] | None = None) -> list[StoredEvent]: ...


class RoutedToday:
    """Print jobs routed per centre on the current Beijing day, read from the store's ``print.routed`` events."""

    def __init__(self, *, page: int = 2000) -> None:
        self.page = page
        self._day: date | None = None
        self._seq = 0
        self._counts: Counter[str] = Counter()
        self._seen: set[tuple[str, str, str]] = set()
        self.reads = 0  # events_after calls, for tests and tuning

    def counts(self, store: _EventLog, now: datetime) -> Mapping[str, int]:
        """Jobs routed to each centre on ``now``'s Beijing day, up to what the store has committed."""
        day = beijing_date(now)
        if day != self._day:
            self._day = day
            self._counts = Counter()
            self._seen = set()
            self._seq = self._day_start(store, datetime.combine(day, datetime.min.time(), BEIJING) - SLACK)
        self._scan(store)
        return self._counts

    def note(self, task_id: str, at: datetime, centre_id: str) -> None:
        """Count a routing decision taken now (its event is not committed yet)."""
        if self._day is None or beijing_date(at) != self._day:
            return
        self._add(task_id, at, centre_id)

    def _add(self, task_id: str, at: datetime, centre_id: str) -> None:
        key = (task_id, at.isoformat(), centre_id)
        if key not in self._seen:
            self._seen.add(key)
            self._counts[centre_id] += 1

    def _first_after(self, store: _EventLog, seq: int) -> StoredEvent | None:
        self.reads += 1
        found = store.events_after(seq, 1)
        return found[0] if found else None

    def _day_start(self, store: _EventLog, since: datetime) -> int:
        """The smallest ``seq`` after which every event is of the day (at or after ``since``).

        Events are in commit order and ``at`` follows it up to clock differences between workers, which
        the slack covers; so "the next event after s is of the day" is false, then true, as s grows.
        """

        def of_day(seq: int) -> bool:
            nxt = self._first_after(store, seq)
            return nxt is None or nxt.event.at >= since

        low = self._seq
        if of_day(low):
            return low
        step = 1
        high = low + step
        while not of_day(high):  # gallop past the day's start (or the end of the log)
            low, step = high, step * 2
            high = low + step
        while high - low > 1:
            mid = (low + high) // 2
            if of_day(mid):
                high = mid
            else:
                low = mid
        return high

    def _scan(self, store: _EventLog) -> None:
        assert self._day is not None
        while True:
            self.reads += 1
            batch = store.events_after(self._seq, self.page, types=_ROUTED)  # the store skips every other event
            for stored in batch:
                event = stored.event
                if isinstance(event, PrintRouted) and beijing_date(event.at) == self._day:
                    self._add(event.task_id, event.at, event.centre_id)
            if batch:
                self._seq = batch[-1].seq
            if len(batch) < self.page:
                return
