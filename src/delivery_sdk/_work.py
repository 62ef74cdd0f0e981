"""One task's progress through one engine step (:class:`Work`), and the write it ends in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .events import Event, StoredEvent
from .lifecycle import TERMINAL, Task
from .model import Dispatch
from .policy import Action
from .store import OutboxEntry, TaskWrite


class Work:
    """One task's progress through one engine step (a plain slotted class: one is made per task a step
    claims, and attrs' generated __init__ with its list factories cost several times this one)."""

    __slots__ = (
        "base_version",
        "bundle",
        "done",
        "due_at",
        "events",
        "file_after_commit",
        "io",
        "outbox",
        "outbox_done",
        "receipt_keys",
        "task",
        "timeline",
    )

    def __init__(self, task: Task, base_version: int) -> None:
        self.task = task
        self.base_version = base_version
        self.events: list[Event] = []
        self.io: list[tuple[Action, Dispatch | None]] = []
        self.done: list[Action] = []
        self.due_at: datetime | None = None
        self.outbox: list[OutboxEntry] = []
        self.outbox_done: list[str] = []
        self.receipt_keys: list[str] = []
        self.timeline: tuple[StoredEvent, ...] = ()
        self.bundle: dict[str, Any] | None = None
        self.file_after_commit = False

    def reset(self, *, keep_io: bool = False) -> None:
        """Start a new write on top of what was just committed."""
        self.base_version = self.task.version
        self.events, self.outbox, self.outbox_done, self.receipt_keys = [], [], [], []
        if not keep_io:
            self.io = []

    def write(self, *, release: bool) -> TaskWrite:
        """The task's write: what was recorded since the last commit, expected at the version it was read at."""
        return TaskWrite(
            task_id=self.task.task_id,
            expected_version=self.base_version,
            events=tuple(self.events),
            state=self.task.state._value_,  # .value is a Python-level property; _value_ is the member's slot
            due_at=None if self.task.state in TERMINAL else self.due_at,
            release=release,
            outbox=tuple(self.outbox),
            outbox_done=tuple(self.outbox_done),
            receipt_keys=tuple(self.receipt_keys),
        )
