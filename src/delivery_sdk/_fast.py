"""The engine's speed tricks, in one place, each with its preconditions checked.

- :func:`evolver`: ``attrs.evolve(instance, **changes)`` without attrs' generated ``__init__``, for the two
  dict-based classes the fold copies once per event (``Task``, ``DispatchRecord``). It refuses, when it is
  *defined* (at import), a class whose ``__init__`` does work (``__attrs_pre_init__``/``__attrs_post_init__``,
  validators, converters, factories), and, when it is *called*, a key the class does not have
  (:class:`FastBuildError`). (A builder of new instances the same way, ``cls(**values)`` without
  ``__init__``, was measured slower than attrs' own ``__init__`` for these frozen dict-based classes, and was
  removed: they are built through their constructors.)
- :class:`CallLimit`: at most ``n`` provider calls in flight per adapter, taken without a coroutine when a
  slot is free.
- :class:`GCPause`: the cyclic garbage collector held off while a step computes (off by default).

Each says, in its docstring, what it saves (relative figures: they age better than timings). Nothing here
decides anything about a task.
"""

from __future__ import annotations

import asyncio
import collections
import gc
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar, cast

import attrs

T = TypeVar("T")

# The longest the collector stays paused while a step waits on its providers (see GCPause).
GC_PAUSE_WAIT = 0.05

_FACTORY: type = type(attrs.Factory(list))


class FastBuildError(TypeError):
    """A fast copier was defined for a class it cannot copy faithfully, or called with keys the class does not
    have: a bug in the SDK, never a user's input."""


def _plain_fields(cls: type) -> tuple[Any, ...]:
    """The attrs fields of ``cls`` after checking that its ``__init__`` only stores them (else FastBuildError)."""
    if not attrs.has(cls):
        raise FastBuildError(f"{cls.__name__} is not an attrs class")
    if "__dict__" not in dir(cls) or getattr(cls, "__slots__", None) not in (None, ()):
        raise FastBuildError(f"{cls.__name__} must be a dict-based (slots=False) attrs class")
    for hook in ("__attrs_pre_init__", "__attrs_post_init__"):
        if hasattr(cls, hook):
            raise FastBuildError(f"{cls.__name__} has {hook}: it must be built through its __init__")
    fields: tuple[Any, ...] = attrs.fields(cast(Any, cls))
    for field in fields:
        if field.validator is not None or field.converter is not None or isinstance(field.default, _FACTORY):
            raise FastBuildError(f"{cls.__name__}.{field.name} has a validator, converter or factory: use __init__")
    return fields


def evolver(cls: type[T]) -> Callable[[T, Mapping[str, object]], T]:
    """A faster ``attrs.evolve(instance, changes)`` that runs no ``__init__``: the instance's dict, then the
    changes, into a new instance's dict (the values come from a valid instance and from recorded events).

    Refuses (:class:`FastBuildError`) a class whose ``__init__`` does more than store its fields, at once, and
    per call a key the class does not have. About five times as fast as ``attrs.evolve`` on a ``Task`` (which
    looks up the class's fields and runs ``__init__`` every call); the fold copies a task once per event, and
    bench_engine with ``attrs.evolve`` in its place ran some 10% below this (median of three alternated runs).
    """
    names = frozenset(f.name for f in _plain_fields(cls))
    new_instance = object.__new__

    def evolve(instance: T, changes: Mapping[str, object]) -> T:
        if not changes.keys() <= names:
            raise FastBuildError(f"{cls.__name__} has no field {sorted(changes.keys() - names)}")
        new = new_instance(cls)
        state = new.__dict__
        state.update(instance.__dict__)
        state.update(changes)
        return new

    evolve.__qualname__ = evolve.__name__ = f"evolve_{cls.__name__}"
    return evolve


class CallLimit:
    """At most ``n`` calls in flight: an ``asyncio.Semaphore`` whose uncontended acquire costs no coroutine
    (:meth:`try_acquire`), first come, first served when contended, and safe under cancellation.

    The engine takes one for every provider call (one limit per adapter, whatever the operation). An
    uncontended acquire and release costs about a third of ``async with asyncio.Semaphore``; with two provider
    calls per task in bench_engine that is around 1% of the engine's CPU per task, below what the benchmark
    resolves on a shared machine (kept: it is also the engine's one tested limit per adapter).
    """

    __slots__ = ("free", "waiting")

    def __init__(self, n: int) -> None:
        self.free = max(1, n)
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_acquire(self) -> bool:
        """Take a free slot at once if there is one and nobody waits (no coroutine); else :meth:`wait`."""
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Take a slot once one is free (first come, first served)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        try:
            await future  # release() hands its slot over by resolving the future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as the wait was cancelled: pass it on
            elif future in self.waiting:
                self.waiting.remove(future)
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the free count."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


class GCPause:
    """Holds Python's cyclic garbage collector off while a step works, and for at most ``GC_PAUSE_WAIT``
    seconds of a step's I/O (a slow provider never keeps it off longer).

    A batch keeps hundreds of tasks' objects alive at once (folded tasks, events, writes). With the collector
    on, every 700 allocations start a collection that walks the young ones, survivors move up, and full
    collections walk the whole heap again, finding nothing (the engine makes no cycles). Paused, the young
    objects are examined once, when the pause ends. Reference counting frees everything else as usual.
    Re-entrant; leaves the collector as it found it (an application that turned it off keeps it off). Off
    unless ``EngineConfig(pause_gc=True)``: the collector is process-wide, so an embedding application
    decides; ``delivery-sdk worker`` (a process the SDK owns) turns it on. It saves some 2-3% of the engine's
    instructions per task in bench_engine, more on a heap the host keeps large.
    """

    __slots__ = ("_depth", "_resume", "on")

    def __init__(self, on: bool) -> None:
        self.on = on
        self._depth = 0
        self._resume = False

    def __enter__(self) -> None:
        if self.on:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        if self.on:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()

    def time_up(self) -> None:
        """End the pause early (the step has waited ``GC_PAUSE_WAIT`` on its providers)."""
        if self._depth and self._resume:
            gc.enable()

    async def waiting(self, io: Coroutine[Any, Any, None]) -> None:
        """Await ``io`` (a step's provider calls) paused, for at most ``GC_PAUSE_WAIT`` seconds."""
        if not self.on:
            await io
            return
        with self:
            timer = asyncio.get_running_loop().call_later(GC_PAUSE_WAIT, self.time_up)
            try:
                await io
            finally:
                timer.cancel()
