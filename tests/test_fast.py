"""The speed tricks' preconditions (delivery_sdk._fast): the fast copier refuses, when it is defined, a class whose
``__init__`` does work, and, when called, keys the class does not have; and what the engine's real step and the
fold build is exactly what the classes' own constructors and attrs.evolve build."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from delivery_sdk import lifecycle
from delivery_sdk._fast import FastBuildError, evolver
from delivery_sdk.events import TaskCreated
from delivery_sdk.lifecycle import Task, fold
from delivery_sdk.model import Contact
from delivery_sdk.testing import Harness, Outcome, make_party, make_request


@attrs.frozen(kw_only=True, slots=False)
class _Plain:
    a: int
    b: str = "x"


@attrs.frozen(kw_only=True, slots=False)
class _PostInit:
    a: int

    def __attrs_post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@attrs.frozen(kw_only=True, slots=False)
class _Validated:
    a: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen(kw_only=True, slots=False)
class _Converted:
    a: int = attrs.field(converter=int)


@attrs.frozen(kw_only=True, slots=False)
class _Factory:
    a: list[int] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class _Slotted:
    a: int


class _NotAttrs:
    pass


@pytest.mark.parametrize(
    ("cls", "why"),
    [
        (_PostInit, "__attrs_post_init__"),
        (_Validated, "validator"),
        (_Converted, "converter"),
        (_Factory, "factory"),
        (_Slotted, "dict-based"),
        (_NotAttrs, "not an attrs class"),
        (Contact, "dict-based"),  # the model's validated classes are slotted: refused before anything else
    ],
)
def test_the_copier_refuses_at_definition_a_class_whose_init_does_work(cls: type, why: str) -> None:
    with pytest.raises(FastBuildError, match=why):
        evolver(cls)


def test_the_copier_refuses_unknown_keys_at_call_time() -> None:
    evolve = evolver(_Plain)
    assert evolve(_Plain(a=1), {"b": "z"}) == _Plain(a=1, b="z")
    assert evolve(_Plain(a=1), {}) == _Plain(a=1)
    with pytest.raises(FastBuildError, match=r"no field \['bb'\]"):
        evolve(_Plain(a=1), {"bb": "z"})  # a misspelt key
    assert isinstance(FastBuildError("x"), TypeError)  # a programming error, as attrs' own would be


def test_the_folds_copies_refuse_a_misspelt_change() -> None:
    """The fold's own copiers check their keys (a misspelt change would silently add an attribute)."""
    task = fold([TaskCreated(task_id="T1", at=datetime(2026, 11, 28, tzinfo=UTC), request=make_request(make_party()))])
    with pytest.raises(FastBuildError, match="statte"):
        lifecycle._evolve_task(task, {"statte": "served"})
    assert lifecycle._evolve_task(task, {"version": 7}).version == 7


def test_the_fold_of_the_engines_events_equals_the_fold_through_attrs_evolve() -> None:
    """The events of a task the engine's real step served and filed, folded with the fast copier and with
    attrs.evolve in its place: the same task."""

    async def main() -> list[Any]:
        h = Harness()
        h.sms.default = Outcome.delivered()
        h.eservice.default = Outcome.delivered()
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        events = [s.event for s in h.store.load_events([task_id])[task_id]]
        await h.aclose()
        return events

    events = asyncio.run(main())
    fast = fold(events)
    assert fast.state.value == "filed"
    assert any(d.status.value == "delivered" for d in fast.dispatches)  # dispatch records were copied too
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lifecycle, "_evolve_task", lambda task, changes: attrs.evolve(task, **changes))
        patch.setattr(lifecycle, "_evolve_record", lambda record, changes: attrs.evolve(record, **changes))
        slow = fold(events)
    assert isinstance(fast, Task)
    assert (fast, repr(fast)) == (slow, repr(slow))
