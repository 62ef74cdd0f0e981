"""The canonical bytes of a committed event: the leaf input of the evidence log, version 1.

An independent verifier must be able to recompute these bytes from the event as stored (or as carried in
a proof bundle), so they are specified exactly, here and in ``docs/evidence.md``:

    leaf input = b"delivery-sdk/event/v1\\n" || UTF-8( JSON({"event": E, "seq": S, "task_seq": T}) )

- ``E`` is the event's wire JSON (:func:`delivery_sdk.serialization.event_to_dict`: attrs field names as
  keys, the ``"type"`` tag, datetimes as ISO 8601 with their UTC offset, enums by value, tuples as arrays);
  ``S`` is the event's ``seq`` (its place in the whole store) and ``T`` its ``task_seq`` (1-based, in its
  task). Binding ``seq`` and ``task_seq`` into the leaf means a reordered or renumbered event changes hash.
- JSON is written with keys sorted at every level, no whitespace (``","`` and ``":"``), non-ASCII text as
  UTF-8 (not ``\\u`` escapes), control characters, ``"`` and ``\\`` escaped as JSON requires
  (``\\n``, ``\\u001f``...), ``true``/``false``/``null``, integers in decimal, and floats as the shortest
  text that reads back the same (Python's ``repr``; NaN and infinities refused). In one sentence: what
  ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` writes.
  :func:`delivery_sdk.evidence.verify.event_leaf_input` is that reference, with the standard library only.
- The first line names the encoding and its version. A new encoding gets a new prefix
  (``.../v2``); leaves already in the log keep the version they were written with.

The leaf hash is ``SHA-256(0x00 || leaf input)`` (RFC 9162 §2.1.1).

:func:`leaf_bytes` is the fast path the store uses: orjson, which writes exactly the same bytes as the
reference for every value the SDK stores except small floats (``1e-05`` vs ``0.00001``); the events whose
fields can hold a float go through the reference instead.

The stores keep each event's body in this canonical order already
(:func:`delivery_sdk.serialization.event_body`), so :func:`body_leaf_hash` hashes the stored body inside
the fixed frame ``{"event":`` ... ``,"seq":S,"task_seq":T}`` (``"event"`` < ``"seq"`` < ``"task_seq"``)
and never encodes the event a second time.
"""

from __future__ import annotations

import hashlib
import types
import typing
from collections.abc import Iterable
from typing import Any

import attrs
import orjson

from ..events import Event, StoredEvent
from ..serialization import event_to_dict
from .verify import LEAF_INPUT_PREFIX, event_leaf_input, leaf_hash

__all__ = [
    "LEAF_INPUT_PREFIX",
    "body_leaf_hash",
    "body_leaf_state",
    "event_record",
    "leaf_bytes",
    "leaf_hashes",
    "stored_event_leaf_hash",
]

_SORTED = orjson.OPT_SORT_KEYS
_holds_float: dict[type, bool] = {}


def _type_holds_float(tp: Any, seen: frozenset[type] = frozenset()) -> bool:
    if tp is float:
        return True
    origin = typing.get_origin(tp)
    if origin is not None or isinstance(tp, types.UnionType):
        return any(_type_holds_float(arg, seen) for arg in typing.get_args(tp) if arg is not Ellipsis)
    if isinstance(tp, type) and attrs.has(tp) and tp not in seen:
        hints = typing.get_type_hints(tp)
        return any(_type_holds_float(hints[f.name], seen | {tp}) for f in attrs.fields(tp))
    return False


def _event_holds_float(cls: type[Event]) -> bool:
    flag = _holds_float.get(cls)
    if flag is None:
        flag = _holds_float[cls] = _type_holds_float(cls)
    return flag


def event_record(stored: StoredEvent) -> dict[str, Any]:
    """The JSON object a leaf encodes: ``{"event": ..., "seq": ..., "task_seq": ...}``."""
    return {"event": event_to_dict(stored.event), "seq": stored.seq, "task_seq": stored.task_seq}


def leaf_bytes(stored: StoredEvent, event_dict: dict[str, Any] | None = None) -> bytes:
    """The canonical leaf input of a committed event (version 1, see the module docstring).

    ``event_dict`` is the event's wire JSON when the caller already has it (the store serialises each
    event once anyway); it must equal ``event_to_dict(stored.event)``.
    """
    event = event_to_dict(stored.event) if event_dict is None else event_dict
    if _event_holds_float(type(stored.event)):
        return event_leaf_input(stored.seq, stored.task_seq, event)
    record = {"event": event, "seq": stored.seq, "task_seq": stored.task_seq}
    return LEAF_INPUT_PREFIX + orjson.dumps(record, option=_SORTED)


def stored_event_leaf_hash(stored: StoredEvent) -> bytes:
    """``SHA-256(0x00 || leaf_bytes(stored))``."""
    return leaf_hash(leaf_bytes(stored))


def leaf_hashes(events: Iterable[StoredEvent]) -> list[bytes]:
    """The leaf hashes of committed events, in order (for :meth:`CompactRange.append_many`)."""
    return [leaf_hash(leaf_bytes(stored)) for stored in events]


_HEAD = b"\x00" + LEAF_INPUT_PREFIX + b'{"event":'


def body_leaf_state(cls: type[Event], task_seq: int, body: bytes) -> Any:
    """SHA-256 over a leaf's bytes up to its ``seq``: everything but ``,"seq":S,"task_seq":T}``.

    ``body`` must be the event's canonical body (:func:`delivery_sdk.serialization.encode_event`). Returns
    None for an event class that can hold a float (the reference encoder decides those, see above).
    """
    if _event_holds_float(cls):
        return None
    state = hashlib.sha256(_HEAD)
    state.update(body)
    return state


def body_leaf_hash(cls: type[Event], seq: int, task_seq: int, body: bytes) -> bytes:
    """The leaf hash of a committed event from its canonical stored body (the same as
    ``stored_event_leaf_hash(StoredEvent(seq, task_seq, event))``, without encoding the event again)."""
    if _event_holds_float(cls):
        return leaf_hash(event_leaf_input(seq, task_seq, orjson.loads(body)))
    return hashlib.sha256(b'%s%s,"seq":%d,"task_seq":%d}' % (_HEAD, body, seq, task_seq)).digest()
