"""The speed tricks' preconditions (delivery_sdk._fast): a fast builder refuses, when it is defined, a class whose
``__init__`` does work, and, when called, keys the class does not have or lacks; and what the engine and the fold
build through them is exactly what the classes' own constructors build."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from delivery_sdk import lifecycle
from delivery_sdk._fast import FastBuildError, builder, evolver
from delivery_sdk.lifecycle import Task, fold
from delivery_sdk.model import ChannelKind, Contact, ContactKind, DispatchRecord, DispatchStatus
from delivery_sdk.store import CommitResult, SQLiteStore, TaskWrite
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
def test_a_builder_refuses_at_definition_a_class_whose_init_does_work(cls: type, why: str) -> None:
    with pytest.raises(FastBuildError, match=why):
        builder(cls)
    with pytest.raises(FastBuildError, match=why):
        evolver(cls)


def test_a_builder_refuses_unknown_and_missing_keys_at_call_time() -> None:
    build = builder(_Plain)
    assert build(a=1) == _Plain(a=1)
    assert build(a=1, b="y") == _Plain(a=1, b="y")
    with pytest.raises(FastBuildError, match=r"unknown \['c'\]"):
        build(a=1, c=2)  # a misspelt key
    with pytest.raises(FastBuildError, match=r"missing \['a'\]"):
        build(b="y")
    evolve = evolver(_Plain)
    assert evolve(_Plain(a=1), {"b": "z"}) == _Plain(a=1, b="z")
    with pytest.raises(FastBuildError, match=r"no field \['bb'\]"):
        evolve(_Plain(a=1), {"bb": "z"})
    assert isinstance(FastBuildError("x"), TypeError)  # a programming error, as attrs' own would be


def test_the_fold_builds_what_the_constructor_builds() -> None:
    values: dict[str, Any] = {
        "dispatch_id": "T.1",
        "channel": "sms",
        "kind": ChannelKind.SMS,
        "contact": Contact(kind=ContactKind.MOBILE, value="13800138000"),
        "status": DispatchStatus.QUEUED,
        "queued_at": datetime(2026, 11, 28, tzinfo=UTC),
        "centre_id": None,
    }
    fast, slow = lifecycle._new_record(**values), DispatchRecord(**values)
    assert (fast, hash(fast), repr(fast)) == (slow, hash(slow), repr(slow))


class _Spy(SQLiteStore):
    """The store, keeping every write the engine commits."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.writes: list[TaskWrite] = []

    def commit(self, writes: Sequence[TaskWrite], *, returning: bool = True) -> CommitResult:
        self.writes.extend(writes)
        return super().commit(writes, returning=returning)


def test_the_engines_fast_writes_and_folds_equal_the_constructors() -> None:
    """Through the engine's real step: each TaskWrite it built without __init__ equals the one TaskWrite(...)
    builds from the same values, and the tasks the fold copied without attrs.evolve equal those attrs.evolve
    makes from the same events."""

    async def main() -> tuple[list[TaskWrite], list[Any]]:
        store = _Spy()
        h = Harness(store)
        h.sms.default = Outcome.delivered()
        h.eservice.default = Outcome.delivered()
        task_id = await h.client.submit(make_request(make_party()))
        await h.client.run_until_idle()
        events = [s.event for s in store.load_events([task_id])[task_id]]
        await h.aclose()
        return store.writes, events

    writes, events = asyncio.run(main())
    assert len(writes) >= 2
    for write in writes:
        again = TaskWrite(**{f.name: getattr(write, f.name) for f in attrs.fields(TaskWrite)})
        assert (write, hash(write), repr(write)) == (again, hash(again), repr(again))
    fast = fold(events)
    slow_evolve = lambda task, changes: attrs.evolve(task, **changes)  # noqa: E731
    record_evolve = lambda record, changes: attrs.evolve(record, **changes)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lifecycle, "_evolve_task", slow_evolve)
        patch.setattr(lifecycle, "_evolve_record", record_evolve)
        slow = fold(events)
    assert isinstance(fast, Task)
    assert fast == slow
    assert fast.state is slow.state
