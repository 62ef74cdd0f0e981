"""Persistence: the :class:`TaskStore` protocol, the embedded SQLite store and the PostgreSQL store.

:func:`open_store` opens either from one string: a file path (or ``":memory:"``) is a
:class:`SQLiteStore`, a ``postgresql://`` or ``postgres://`` DSN a :class:`PostgresStore` (which needs the
``postgres`` extra: psycopg and psycopg_pool, imported only then).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import StoreError
from ._base import (
    CommitResult,
    CreateResult,
    NewTask,
    OutboxEntry,
    RefusalCount,
    RefusedReceipt,
    StoreCapabilities,
    TaskRow,
    TaskStore,
    TaskWrite,
)
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = [
    "STORE_ENV",
    "CommitResult",
    "CreateResult",
    "NewTask",
    "OutboxEntry",
    "PostgresStore",
    "RefusalCount",
    "RefusedReceipt",
    "SQLiteStore",
    "StoreCapabilities",
    "TaskRow",
    "TaskStore",
    "TaskWrite",
    "is_dsn",
    "open_store",
]

STORE_ENV = "DELIVERY_SDK_STORE"
"""The environment variable naming the store (a SQLite path or a PostgreSQL DSN) when none is given."""


def is_dsn(spec: object) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL: a PostgreSQL store, not a SQLite file."""
    return isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://"))


def open_store(
    spec: str | os.PathLike[str] | None = None,
    *,
    evidence: bool = True,
    environ: Mapping[str, str] | None = None,
    readonly: bool = False,
    **options: Any,
) -> TaskStore:
    """A :class:`PostgresStore` for a ``postgresql://`` / ``postgres://`` DSN, else a :class:`SQLiteStore`.

    Without ``spec`` the store named by ``$DELIVERY_SDK_STORE`` is opened. ``options`` go to the store's
    constructor (``schema``, ``pool_size``, ``owner``... for PostgreSQL; ``synchronous`` for SQLite).

    ``readonly=True`` opens an existing store for reading only, as every command that reads does: nothing
    is created, migrated or written (SQLite opens the file ``mode=ro``, PostgreSQL's sessions are
    ``default_transaction_read_only``), and a path that is no delivery-sdk store raises :class:`NotAStore`
    (see :func:`~delivery_sdk.store.sqlite.connect_readonly`) before anything touches it.
    """
    if spec is None:
        spec = (os.environ if environ is None else environ).get(STORE_ENV)
        if not spec:
            raise StoreError(f"no store given: pass a SQLite path or a postgresql:// DSN, or set {STORE_ENV}")
    if is_dsn(spec):
        return _postgres()(str(spec), evidence=evidence, readonly=readonly, **options)
    return SQLiteStore(spec, evidence=evidence, readonly=readonly, **options)


def _postgres() -> type[PostgresStore]:
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise StoreError(
            f"the PostgreSQL store needs psycopg and psycopg_pool ({exc}): pip install 'delivery-sdk[postgres]'"
        ) from exc
    return PostgresStore


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        return _postgres()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
