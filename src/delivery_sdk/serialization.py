"""The one place where objects become bytes and back (cattrs).

Wire rules (for everything stored or sent):

- JSON objects with the attrs field names as keys; no extra keys are accepted on the way in.
- ``datetime``: ISO 8601 with its UTC offset (``2026-11-26T09:30:00+08:00``); a naive datetime is refused
  both ways, because a service moment without a zone is not a legal fact.
- Enums by value (``"sms"``, ``"delivered"``), and so the open kinds (:class:`~delivery_sdk.ChannelKind`,
  :class:`~delivery_sdk.ContactKind`); a stored channel kind no installed plugin declares reads as a
  placeholder (``ChannelKind.stored``), so a store outlives a removed plugin; tuples as JSON arrays.
- No coercion on the way in: a string field takes a JSON string, a flag a JSON boolean, a tuple a JSON array.
- Events: a tagged union, the tag ``"type"`` holding the class's ``TYPE`` (``"dispatch.delivered"``).
- Text is UTF-8 and written without ASCII escaping, so Chinese stays readable in the store.

Adapters and plugins never call cattrs themselves: they use :data:`DEFAULT_CONVERTER` or the helpers here.
"""

from __future__ import annotations

import enum
import operator
import types
import typing
from datetime import datetime
from typing import Any, TypeVar

import cattrs
import orjson
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from ._exceptions import ValidationError
from .events import EVENT_BY_TYPE, Event
from .model import _READING_STORED, ChannelKind, ContactKind

__all__ = [
    "DEFAULT_CONVERTER",
    "dumps",
    "encode_event",
    "event_body",
    "event_from_dict",
    "event_to_dict",
    "loads",
    "make_converter",
]

T = TypeVar("T")


# The engine stamps a whole batch with one "now": remember the last one formatted. One tuple, replaced as a
# whole, so a reader in another thread never pairs a datetime with another one's text.
_last_dt: tuple[datetime | None, str] = (None, "")


def _dt_out(value: datetime) -> str:
    global _last_dt
    last = _last_dt
    known = last[0]
    if value is known:
        return last[1]
    # the same moment in another object (a receipt's time, the service moment): the same text when the
    # wall time, the zone and the fold are the same (same tzinfo: == compares the wall time)
    if known is not None and value.tzinfo is known.tzinfo and value == known and value.fold == known.fold:
        return last[1]
    if value.tzinfo is None:
        raise ValidationError("refusing to serialise a naive datetime: give it a timezone (UTC or +08:00)")
    text = value.isoformat()
    _last_dt = (value, text)
    return text


def _dt_in(value: Any, _: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(f"{value!r} is not an ISO 8601 datetime") from exc
    else:
        raise ValidationError(f"expected an ISO 8601 datetime string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValidationError(f"datetime {value!r} has no UTC offset; add one, e.g. +08:00")
    return parsed


def _strict(kind: type) -> Any:
    # cattrs would call str()/bool() on anything: null would become the task "None", "false" a confirmed address.
    def hook(value: Any, _: Any) -> Any:
        if kind is float and type(value) is int:
            return float(value)
        if type(value) is not kind:
            raise ValidationError(f"expected a JSON {kind.__name__}, got {type(value).__name__}")
        return value

    return hook


def _kind_in(lookup: Any) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if type(value) is not str:
            raise ValidationError(f"expected a kind as a JSON string, got {type(value).__name__}")
        return lookup(value)

    return hook


def _optional_identity(conv: cattrs.Converter, t: Any) -> bool:
    if not isinstance(t, types.UnionType) and typing.get_origin(t) is not typing.Union:
        return False
    args = typing.get_args(t)
    if len(args) != 2 or type(None) not in args:
        return False
    other = args[0] if args[1] is type(None) else args[1]
    return other in (str, int, bool, float) and conv.get_unstructure_hook(other) == identity


def _is_tuple(t: Any) -> bool:
    return typing.get_origin(t) is tuple


def _is_variadic_tuple(t: Any) -> bool:
    args = typing.get_args(t)
    return typing.get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _list_of(hook: Any) -> Any:
    if hook is identity:
        return list

    def unstructure(values: Any) -> list[Any]:
        return [hook(v) for v in values]

    return unstructure


def configure_converter(conv: cattrs.Converter) -> None:
    """Install delivery-sdk's wire rules on ``conv``."""
    conv.register_unstructure_hook(datetime, _dt_out)
    # Enums by value: the member's ``_value_`` slot, read in C (``member.value`` is a Python-level property).
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), operator.attrgetter("_value_")
    )
    conv.register_structure_hook(datetime, _dt_in)
    # The open kinds: by value both ways (the same ``_value_`` slot); read through their lookups.
    conv.register_unstructure_hook(ChannelKind, operator.attrgetter("_value_"))
    conv.register_unstructure_hook(ContactKind, operator.attrgetter("_value_"))
    conv.register_structure_hook(ChannelKind, _kind_in(ChannelKind.stored))
    conv.register_structure_hook(ContactKind, _kind_in(ContactKind.stored))
    for kind in (str, bool, int, float):
        conv.register_structure_hook(kind, _strict(kind))
    # ``X | None`` where X passes through as is (str, int...): pass it through too, so the generated
    # unstructure functions read the attribute inline instead of calling a wrapper per field.
    conv.register_unstructure_hook_factory(lambda t: _optional_identity(conv, t), lambda _: identity)
    # ``tuple[X, ...]`` to a JSON array through one list comprehension (cattrs' hook feeds a generator to
    # list(): two frames more per element list, and a request holds three of them).
    conv.register_unstructure_hook_factory(
        _is_variadic_tuple, lambda t: _list_of(conv.get_unstructure_hook(t.__args__[0]))
    )

    # Generated per event class on first use: generating all of them at import costs ~10 ms.
    unstructure_fns: dict[type[Event], Any] = {}
    structure_fns: dict[str, Any] = {}

    def unstructure_event(event: Event) -> dict[str, Any]:
        cls = type(event)
        fn = unstructure_fns.get(cls)
        if fn is None:
            fn = unstructure_fns[cls] = make_dict_unstructure_fn(cls, conv)
        data: dict[str, Any] = fn(event)
        data["type"] = type(event).TYPE
        return data

    def structure_event(data: Any, _: Any) -> Event:
        if not isinstance(data, dict):
            raise ValidationError(f"an event must be a JSON object, got {type(data).__name__}")
        tag = data.get("type")
        if tag not in EVENT_BY_TYPE:
            raise ValidationError(f"unknown event type {tag!r}; known: {', '.join(sorted(EVENT_BY_TYPE))}")
        body = {k: v for k, v in data.items() if k != "type"}
        cls = EVENT_BY_TYPE[tag]
        fn = structure_fns.get(tag)
        if fn is None:
            fn = structure_fns[tag] = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)
        event: Event = fn(body, cls)
        return event

    conv.register_unstructure_hook_func(lambda t: isinstance(t, type) and issubclass(t, Event), unstructure_event)
    conv.register_structure_hook_func(lambda t: isinstance(t, type) and issubclass(t, Event), structure_event)

    # Tuples come from JSON arrays only (cattrs would split the string "abc" into ("a", "b", "c")); the
    # element work is left to the hooks cattrs generates, which report the failing index.
    elements = conv.copy()

    def tuple_hook(t: Any) -> Any:
        inner = elements.get_structure_hook(t)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise ValidationError(f"expected a JSON array, got {type(value).__name__}")
            return inner(value, t)

        return hook

    conv.register_structure_hook_factory(_is_tuple, tuple_hook)


def make_converter() -> cattrs.Converter:
    """A cattrs converter for the SDK's types that refuses unknown keys."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    configure_converter(conv)
    return conv


DEFAULT_CONVERTER = make_converter()


def _flatten(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else "; ".join(_flatten(e) for e in exc.exceptions)
        )
    return str(exc)


def structure(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from plain data; any problem becomes a :class:`~delivery_sdk.ValidationError`."""
    try:
        return DEFAULT_CONVERTER.structure(data, cls)
    except ValidationError:
        raise
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValidationError(f"cannot read {cls.__name__}: {_flatten(exc)}") from exc


def unstructure(value: Any) -> Any:
    """``value`` as plain dicts, lists and strings, with the default converter's rules."""
    return DEFAULT_CONVERTER.unstructure(value)


_EVENT_FNS: dict[type, Any] = {}  # the default converter's generated unstructure function per event class


def event_to_dict(event: Event) -> dict[str, Any]:
    """An event's wire JSON as a dict (its ``"type"`` tag included)."""
    cls = type(event)
    fn = _EVENT_FNS.get(cls)
    if fn is None:
        fn = _EVENT_FNS[cls] = make_dict_unstructure_fn(cls, DEFAULT_CONVERTER)
    data: dict[str, Any] = fn(event)
    data["type"] = cls.TYPE
    return data


_SORTED = orjson.OPT_SORT_KEYS


def encode_event(event: Event) -> tuple[str, bytes]:
    """An event's ``at`` as wire text and its stored body: :func:`event_body`, as UTF-8 bytes."""
    cls = type(event)  # event_to_dict, inlined: this runs for every event the engine writes
    fn = _EVENT_FNS.get(cls)
    if fn is None:
        fn = _EVENT_FNS[cls] = make_dict_unstructure_fn(cls, DEFAULT_CONVERTER)
    data: dict[str, Any] = fn(event)
    data["type"] = cls.TYPE
    return data["at"], orjson.dumps(data, option=_SORTED)


def event_body(event: Event) -> str:
    """The form the stores keep an event in: its wire JSON, compact, with keys sorted at every level.

    Sorted keys are the evidence log's canonical order (:mod:`delivery_sdk.evidence.canonical`), so an
    event's leaf input is this text inside a fixed frame and is never encoded a second time. A reader
    takes any key order (stores written by earlier releases hold the attrs field order).
    """
    return orjson.dumps(event_to_dict(event), option=_SORTED).decode()


def event_from_dict(data: Any) -> Event:
    """A stored event back from its wire JSON.

    A store may predate a rule of the model (the limits, control characters, ``|`` in a case): an event
    the rules refuse is read once more with those later rules relaxed, so every store written before them
    still reads. The rules that always held are checked both times.
    """
    try:
        return structure(data, Event)
    except ValidationError:
        token = _READING_STORED.set(True)
        try:
            return structure(data, Event)
        finally:
            _READING_STORED.reset(token)


def dumps(value: Any) -> str:
    """Compact JSON with the wire rules (UTF-8 text, no ASCII escaping)."""
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON text or bytes; :class:`ValidationError` when it is not valid JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}") from exc
