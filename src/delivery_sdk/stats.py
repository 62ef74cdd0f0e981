"""Statistics computed from tasks (folded from events): shares by method, cycle times, channel success.

Figures use the published Hubei numbers where the SDK cannot know better: about 20 yuan of postage saved
for every service done electronically instead of by post (DOMAIN.md section 1).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

import attrs

from .lifecycle import Task
from .model import ChannelKind, DispatchStatus, ServiceMethod

__all__ = ["POSTAGE_SAVED_PER_ESERVICE_YUAN", "ChannelStats", "Summary", "summarize"]

POSTAGE_SAVED_PER_ESERVICE_YUAN = 20.0


@attrs.frozen(kw_only=True)
class ChannelStats:
    """The attempts and deliveries of one kind of channel."""

    kind: ChannelKind
    attempts: int
    delivered: int

    @property
    def success_rate(self) -> float:
        """Delivered over attempted (0 when nothing was attempted)."""
        return self.delivered / self.attempts if self.attempts else 0.0


@attrs.frozen(kw_only=True)
class Summary:
    """The figures of a set of tasks: states, methods of service, cycle times and each channel's success."""

    tasks: int
    by_state: dict[str, int]
    by_method: dict[str, int]
    served: int
    cycle_mean: timedelta | None
    cycle_median: timedelta | None
    cycle_p90: timedelta | None
    channels: tuple[ChannelStats, ...]
    postage_saved_yuan: float

    def share(self, method: ServiceMethod) -> float:
        """The share of served tasks that were served by ``method`` (0 when none was served)."""
        return self.by_method.get(method.value, 0) / self.served if self.served else 0.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(tasks: Iterable[Task]) -> Summary:
    """The :class:`Summary` of ``tasks``."""
    states: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    attempts: Counter[ChannelKind] = Counter()
    delivered: Counter[ChannelKind] = Counter()
    cycles: list[float] = []
    count = 0
    for task in tasks:
        count += 1
        states[task.state.value] += 1
        if task.served_method is not None and task.served_at is not None:
            methods[task.served_method.value] += 1
            cycles.append((task.served_at - task.created_at).total_seconds())
        for d in task.dispatches:
            kind = ChannelKind.POST if d.kind is ChannelKind.PRINT else d.kind
            if d.status is DispatchStatus.QUEUED:
                continue
            attempts[kind] += 1
            if d.delivered_at is not None and d.status in (DispatchStatus.DELIVERED, DispatchStatus.READ):
                delivered[kind] += 1
    served = sum(methods.values())

    def td(seconds: float | None) -> timedelta | None:
        return None if seconds is None else timedelta(seconds=seconds)

    return Summary(
        tasks=count,
        by_state=dict(states),
        by_method=dict(methods),
        served=served,
        cycle_mean=td(statistics.fmean(cycles) if cycles else None),
        cycle_median=td(statistics.median(cycles) if cycles else None),
        cycle_p90=td(_percentile(cycles, 0.9) if cycles else None),
        channels=tuple(  # declared kinds in their order, then any a removed plugin left in the store
            ChannelStats(kind=k, attempts=attempts[k], delivered=delivered[k])
            for k in (*ChannelKind, *(k for k in attempts if not k.declared))
            if attempts[k]
        ),
        postage_saved_yuan=methods.get(ServiceMethod.ELECTRONIC.value, 0) * POSTAGE_SAVED_PER_ESERVICE_YUAN,
    )
