"""The engine's witness: the last checkpoint it signed, kept outside the database it protects.

A log must never sign a checkpoint that does not extend one it signed before (C2SP tlog-checkpoint: that is
a fork). The database alone cannot tell: restored from last week's backup, it is a perfectly consistent
log that simply forgot a week. So the engine keeps the last checkpoint it signed in a file of its own (by
default ``<store>.checkpoint`` beside a SQLite store; for PostgreSQL, a path given explicitly) and, before
signing, checks that the log still extends it:

- the same origin (a renamed log is another log);
- a size at least the witness's;
- the root the stored tree gives at the witness's size is the witness's root, and a consistency proof
  (RFC 9162 §2.1.4) from it to the new root, read from the stored nodes, verifies.

On any mismatch :func:`check_extends` raises :class:`~delivery_sdk.EvidenceForkError` and nothing is
signed. The store runs the same check against its own latest checkpoint inside the signing transaction
(:meth:`~delivery_sdk.store.SQLiteStore.checkpoint` with ``extends=``). The file is replaced atomically
(temporary file, fsync, rename, fsync of the folder) after the checkpoint committed: a crash in between
leaves the older witness, which the newer log still extends.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._exceptions import EvidenceForkError, ValidationError
from .merkle import NodeStore, consistency_proof, root
from .verify import Checkpoint, VerificationError, parse_note, verify_consistency

__all__ = [
    "WITNESS_ENV",
    "WITNESS_SUFFIX",
    "check_extends",
    "default_witness_path",
    "read_witness",
    "resolve_witness",
    "write_witness",
]

WITNESS_ENV = "DELIVERY_SDK_EVIDENCE_WITNESS"
WITNESS_SUFFIX = ".checkpoint"
_OFF = {"", "off", "none", "no", "0", "false"}


def default_witness_path(store: Any) -> Path | None:
    """``<file>.checkpoint`` beside a SQLite store's file; None for a store in memory or elsewhere (PostgreSQL)."""
    from ..store.sqlite import SQLiteStore

    inner = store if isinstance(store, SQLiteStore) else getattr(store, "inner", None)
    if not isinstance(inner, SQLiteStore) or inner.path == ":memory:" or inner.path.startswith("file:"):
        return None
    return Path(inner.path + WITNESS_SUFFIX)


def resolve_witness(
    setting: str | os.PathLike[str] | bool | None, store: Any, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Where the engine keeps its witness: ``setting`` if given (False: nowhere, True: the default), else
    ``$DELIVERY_SDK_EVIDENCE_WITNESS`` (a path, or ``off``), else :func:`default_witness_path`."""
    if setting is None:
        value = (os.environ if environ is None else environ).get(WITNESS_ENV)
        if value is not None:
            return None if value.strip().lower() in _OFF else Path(value)
        return default_witness_path(store)
    if setting is False:
        return None
    if setting is True:
        path = default_witness_path(store)
        if path is None:
            raise ValidationError("no default witness file for this store: give its path (evidence_witness=PATH)")
        return path
    return Path(setting)


def read_witness(path: str | os.PathLike[str]) -> tuple[str, Checkpoint] | None:
    """The signed note kept at ``path`` and its checkpoint; None when there is no file yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceForkError(f"the witness {os.fspath(path)!r} cannot be read: {exc}", witness=str(path)) from None
    try:
        return text, Checkpoint.parse(parse_note(text).text)
    except VerificationError as exc:
        raise EvidenceForkError(
            f"the witness {os.fspath(path)!r} is not a signed checkpoint ({exc}); the engine will not sign "
            "until it is restored or moved aside",
            witness=str(path),
        ) from None


def write_witness(path: str | os.PathLike[str], note: str) -> None:
    """Replace the witness with ``note`` atomically and durably."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(note)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    try:
        folder = os.open(target.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def check_extends(
    previous: Checkpoint, origin: str, size: int, new_root: bytes, nodes: NodeStore, *, what: str, witness: str | None
) -> None:
    """Raise :class:`~delivery_sdk.EvidenceForkError` unless the tree of ``size`` leaves (root ``new_root``,
    nodes in ``nodes``) extends ``previous`` under the same ``origin``."""
    where = f"{what} (size {previous.size})"
    if previous.origin != origin:
        raise EvidenceForkError(
            f"refusing to sign: {where} names log {previous.origin!r}, this engine signs as {origin!r}; a log "
            f"keeps its name (set evidence_origin={previous.origin!r}, or start a new log on purpose)",
            witness=witness,
        )
    if size < previous.size:
        raise EvidenceForkError(
            f"refusing to sign: the evidence log holds {size} events, fewer than {where}: the database was "
            "rolled back or restored from an older backup",
            witness=witness,
        )
    try:
        old_root = root(nodes, previous.size)
        proof = consistency_proof(nodes, previous.size, size)
    except (LookupError, ValueError) as exc:
        raise EvidenceForkError(
            f"refusing to sign: the stored tree cannot prove {where}: {exc}", witness=witness
        ) from None
    if old_root != previous.root:
        raise EvidenceForkError(
            f"refusing to sign: the stored tree at size {previous.size} is not {where}: the database was rolled "
            "back, restored or rewritten since that checkpoint was signed",
            witness=witness,
        )
    try:
        verify_consistency(previous.size, size, previous.root, new_root, proof.path)
    except VerificationError as exc:
        raise EvidenceForkError(
            f"refusing to sign: the new tree of {size} events does not extend {where}: {exc}", witness=witness
        ) from None
