"""Optimistic writes: read a task, decide, commit if it has not moved on meanwhile, else read it again.

Every write loop of the engine (a step's results, an ingested receipt, an event a person recorded) goes
through :func:`until_committed`, which gives up after a few rounds with
:class:`~delivery_sdk.TaskKeptChanging` naming the tasks that kept moving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from ._exceptions import TaskKeptChanging

T = TypeVar("T")

#: How many times a write is redone on a task that moved on before it gives up.
ATTEMPTS = 5


class Conflict:
    """What an attempt returns when its write lost to another writer: the tasks that had moved on."""

    __slots__ = ("task_ids",)

    def __init__(self, task_ids: Iterable[str]) -> None:
        self.task_ids = tuple(task_ids)


def until_committed(attempt: Callable[[], T | Conflict], what: str, *, attempts: int = ATTEMPTS) -> T:
    """Run ``attempt`` (read, decide, commit) until it returns something other than a :class:`Conflict`, at
    most ``attempts`` times; then :class:`~delivery_sdk.TaskKeptChanging` (``what`` says which write it was)."""
    last: tuple[str, ...] = ()
    for _ in range(attempts):
        result = attempt()
        if not isinstance(result, Conflict):
            return result
        last = result.task_ids
    raise TaskKeptChanging(last, attempts, what)
