"""Which adapter of a channel kind serves a task: ordered lists, routing rules and failover. Pure functions.

A kind may have several adapters (two SMS gateways: a primary and a backup contract, or one per
prefecture). Which one serves a task is a choice written in the policy configuration
(``PolicyConfig.adapters``), never the accident of what is installed:

- no routes for a kind: its one adapter (the first in the host's order, ``DELIVERY_SDK_CHANNEL_ORDER``), and
  no failover;
- routes for a kind (:class:`AdapterRoute`): the first route that matches the task (by the case's court, by
  the prefecture of the party's postal address) gives the adapters in order, primary first. A task no route
  matches is not served on that kind. An adapter a route names but the host has not registered (a plugin
  installed but not configured registers nothing) is skipped: it never takes traffic; a registered adapter
  no route names never does either.

Failover: when the engine's send on an adapter fails transiently and its retries are exhausted, and the
route names a next adapter not yet tried for that kind in this round, the engine records the dispatch as
failed (``failed_by = FAILED_TRANSIENT``) and the policy sends the next dispatch of that kind on the next
adapter (:func:`failover_adapter`). A provider's permanent refusal does not fail over (the policy moves on to
the next kind, as with one adapter). Both dispatches stay in the task and the evidence log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._exceptions import ValidationError
from .model import ChannelKind, ContactKind

if TYPE_CHECKING:
    from datetime import datetime

    from .events import DispatchFailed
    from .lifecycle import Task
    from .model import Dispatch
    from .policy import PolicyConfig

__all__ = [
    "FAILED_TRANSIENT",
    "AdapterRoute",
    "adapter_order",
    "adapter_routes",
    "failover_adapter",
    "first_adapter",
    "transient_failover",
]

# DispatchFailed.failed_by of a dispatch the engine failed after the adapter's transient failures exhausted
# its retries: the policy fails it over to the kind's next adapter (and only such a dispatch)
FAILED_TRANSIENT = "transient"

_PREFECTURE = re.compile(r"\d{4}")


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a list of strings, got {type(value).__name__}")
    names = tuple(value)
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise ValidationError(f"{what} must be a list of non-empty strings, got {list(names)!r}")
    if len(set(names)) != len(names):
        raise ValidationError(f"{what} lists a name twice: {list(names)!r}")
    return names


def _adapters(value: Any) -> tuple[str, ...]:
    names = _names(value, "AdapterRoute.adapters")
    if not names:
        raise ValidationError("AdapterRoute.adapters must name at least one adapter, primary first")
    return names


def _prefectures(value: Any) -> tuple[str, ...]:
    codes = _names(value, "AdapterRoute.prefectures")
    bad = [c for c in codes if not _PREFECTURE.fullmatch(c)]
    if bad:
        raise ValidationError(
            f"AdapterRoute.prefectures must be 4-digit GB/T 2260 prefecture codes (e.g. '4201' for Wuhan), got {bad!r}"
        )
    return codes


def _courts(value: Any) -> tuple[str, ...]:
    return _names(value, "AdapterRoute.courts")


@attrs.frozen(kw_only=True)
class AdapterRoute:
    """The adapters that serve one kind, in order (primary, then backups), for the tasks this route matches.

    ``courts`` (``Case.court`` values) and ``prefectures`` (the first four digits of the division code of the
    party's postal address) narrow it; empty means any. A route with neither matches every task: put it last.
    """

    adapters: tuple[str, ...] = attrs.field(converter=_adapters)
    courts: tuple[str, ...] = attrs.field(default=(), converter=_courts)
    prefectures: tuple[str, ...] = attrs.field(default=(), converter=_prefectures)

    def matches(self, task: Task) -> bool:
        """Whether this route applies to ``task`` (its court and its party's prefecture)."""
        if self.courts and task.request.case.court not in self.courts:
            return False
        if self.prefectures:
            postal = task.first_contact(ContactKind.POSTAL)
            code = postal.division_code if postal is not None else None
            if code is None or code[:4] not in self.prefectures:
                return False
        return True


def _route(value: Any, kind: str) -> AdapterRoute:
    if isinstance(value, AdapterRoute):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"adapters", "courts", "prefectures"}
        if unknown:
            raise ValidationError(
                f"adapters for {kind}: a route has unknown keys {sorted(unknown)} "
                "(known: adapters, courts, prefectures)"
            )
        if "adapters" not in value:
            raise ValidationError(f"adapters for {kind}: a route needs adapters = [primary, backup...]")
        return AdapterRoute(**value)
    raise ValidationError(f"adapters for {kind}: a route is a table (adapters, courts, prefectures), got {value!r}")


def adapter_routes(value: Any) -> Mapping[ChannelKind, tuple[AdapterRoute, ...]]:
    """``PolicyConfig.adapters`` from what a caller or a settings file gives: kind (or its value) ->
    a list of adapter names (one route for every task), or a list of routes (:class:`AdapterRoute` or
    tables with ``adapters``, ``courts``, ``prefectures``). :class:`~delivery_sdk.ValidationError` says
    what is wrong."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"adapters must map a channel kind to its adapters, got {type(value).__name__}")
    out: dict[ChannelKind, tuple[AdapterRoute, ...]] = {}
    for key, routes in value.items():
        kind = key if isinstance(key, ChannelKind) else ChannelKind(key)
        if not kind.declared:
            raise ValidationError(f"adapters: {kind.value!r} is not a declared channel kind")
        if kind is ChannelKind.PRINT:
            raise ValidationError("adapters: print centres are chosen by the print router, not by adapter routes")
        if isinstance(routes, str) or not isinstance(routes, Sequence) or not routes:
            raise ValidationError(f"adapters for {kind.value}: give a list of adapter names or of routes")
        if all(isinstance(r, str) for r in routes):
            out[kind] = (AdapterRoute(adapters=tuple(routes)),)
        else:
            out[kind] = tuple(_route(r, kind.value) for r in routes)
    return out


def _registered(names: str | Sequence[str]) -> Sequence[str]:
    return (names,) if isinstance(names, str) else names


def adapter_order(
    task: Task,
    kind: ChannelKind,
    routes: Mapping[ChannelKind, tuple[AdapterRoute, ...]],
    available: Mapping[ChannelKind, str | Sequence[str]],
) -> tuple[str, ...]:
    """The adapters that may serve ``task`` on ``kind``, in order; empty when none may.

    ``available`` is what the host registered (kind -> adapter names, in the host's order). Without routes
    for ``kind``, its first registered adapter alone. With routes, the first route matching the task, less
    the adapters the host has not registered.
    """
    names = available.get(kind)
    if not names:
        return ()
    registered = _registered(names)
    kind_routes = routes.get(kind)
    if not kind_routes:
        return (registered[0],)
    for route in kind_routes:
        if route.matches(task):
            return tuple(n for n in route.adapters if n in registered)
    return ()


def first_adapter(
    task: Task,
    kind: ChannelKind,
    routes: Mapping[ChannelKind, tuple[AdapterRoute, ...]],
    available: Mapping[ChannelKind, str | Sequence[str]],
) -> str | None:
    """The adapter a first dispatch of ``kind`` goes to for ``task``, or None when no adapter may serve it."""
    if not routes:  # the usual configuration: one adapter per kind, no routing to evaluate
        names = available.get(kind)
        if not names:
            return None
        return names if isinstance(names, str) else names[0]
    order = adapter_order(task, kind, routes, available)
    return order[0] if order else None


def failover_adapter(
    task: Task,
    kind: ChannelKind,
    routes: Mapping[ChannelKind, tuple[AdapterRoute, ...]],
    available: Mapping[ChannelKind, str | Sequence[str]],
    *,
    failed: str | None = None,
) -> str | None:
    """The adapter the next dispatch of ``kind`` fails over to in the task's current electronic round, or
    None.

    ``failed=None``: the round's last dispatch of ``kind`` must have been failed by the engine after
    transient failures (``failed_by == FAILED_TRANSIENT``). ``failed="name"``: the engine asks, before
    failing a send on adapter ``name``, whether there is anywhere to fail over to. Either way the answer is
    the first adapter of the task's route not yet used for ``kind`` in this round.
    """
    if not routes or kind not in routes:
        return None
    used: list[str] = []
    last = None
    for d in task.electronic_dispatches:
        if d.kind is kind:
            used.append(d.channel)
            last = d
    if failed is None:
        if last is None or last.failed_by != FAILED_TRANSIENT:
            return None
    else:
        used.append(failed)
    for name in adapter_order(task, kind, routes, available):
        if name not in used:
            return name
    return None


def transient_failover(
    task: Task,
    dispatch: Dispatch,
    policy: PolicyConfig,
    available: Mapping[ChannelKind, str | Sequence[str]],
    error: Exception,
    now: datetime,
) -> DispatchFailed | None:
    """What the engine records when a send on ``dispatch.channel`` failed transiently and its retries are
    exhausted: the dispatch failed (``failed_by = FAILED_TRANSIENT``) when the policy's route names a next
    adapter for the kind, so the policy fails over to it; None when there is none (the dispatch stays in
    doubt and is reconciled through the adapter's status, as with a single adapter)."""
    from .events import DispatchFailed

    kind = dispatch.kind
    if not kind.electronic or failover_adapter(task, kind, policy.adapters, available, failed=dispatch.channel) is None:
        return None
    return DispatchFailed(
        task_id=task.task_id,
        at=now,
        dispatch_id=dispatch.dispatch_id,
        reason=f"{dispatch.channel}: transient failures, retries exhausted ({error}); failing over",
        failed_by=FAILED_TRANSIENT,
    )
