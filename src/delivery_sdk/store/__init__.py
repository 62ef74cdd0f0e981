"""Persistence: the :class:`TaskStore` protocol and its embedded SQLite implementation."""

from ._base import CommitResult, CreateResult, NewTask, OutboxEntry, TaskRow, TaskStore, TaskWrite
from .sqlite import SQLiteStore

__all__ = ["CommitResult", "CreateResult", "NewTask", "OutboxEntry", "SQLiteStore", "TaskRow", "TaskStore", "TaskWrite"]
