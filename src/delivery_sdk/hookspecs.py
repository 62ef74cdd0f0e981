"""Every hook delivery-sdk calls, in one module (pluggy).

Plugins implement these with ``@delivery_sdk.hookimpl`` and are found through the ``delivery_sdk``
entry-point group, or registered directly with ``DeliveryClient(plugins=[...])``. Only
:class:`delivery_sdk.plugins.PluginHost` calls them. Hook names carry the ``delivery_`` prefix.

To extend a hook, add an argument (pluggy passes only the arguments an implementation asks for, so old
plugins keep working) rather than a near-duplicate hook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .channels import PrintCentreInfo
    from .clock import Clock
    from .events import StoredEvent
    from .model import ChannelKind, Contact, Party
    from .plugins import ChannelRegistry, PrintCentreRegistry
    from .records import AddressCandidate, AnchorReceipt, EvidenceBatch, PrintJob, RouteDecision, ServiceRecord

PROJECT = "delivery_sdk"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------
# Registration: called once when a PluginHost is built (and again after a plugin is added later).
# ---------------------------------------------------------------------------------------------------


@hookspec
def delivery_configure(environ: Mapping[str, str], clock: Clock) -> None:
    """Check this plugin's settings in ``environ`` (and prepare what they describe) when the host loads.

    Called once per :class:`~delivery_sdk.plugins.PluginHost` by :meth:`~delivery_sdk.plugins.PluginHost.load`
    (the worker and ``delivery-sdk check-config`` call it at start; a client calls it before its plugins'
    registries are first used). ``environ`` is the client's ``environ=`` mapping, or ``os.environ`` when
    the client was given none (with ``--config``, the settings file's ``[env]`` under the process's own
    variables). For plugins without a registration hook (evidence sinks, address providers) this is where
    settings are checked at start. A plugin none of whose variables is set is *not configured*: it does
    nothing and raises nothing. A partial or invalid configuration raises :class:`~delivery_sdk.PluginError`
    naming every missing or invalid variable. Return nothing.
    """


@hookspec
def delivery_channel_kinds() -> Sequence[ChannelKind] | None:
    """The channel kinds this plugin brings: each made once with :meth:`ChannelKind.declare
    <delivery_sdk.ChannelKind.declare>` (its value, Chinese label, legal nature and contact kind), usually
    as a module constant, and returned here.

    The built-in kinds are declared the same way (``delivery_sdk.builtins.kinds``). An adapter may only be
    registered with a kind some plugin of the host declares; the host refuses anything but
    :class:`~delivery_sdk.ChannelKind` objects (:class:`~delivery_sdk.PluginError`). Called when the host
    builds its channel registry; return the same kinds every time (or None).
    """


@hookspec
def delivery_register_channels(register: ChannelRegistry, clock: Clock, environ: Mapping[str, str]) -> None:
    """Register channel adapters: ``register(adapter)``.

    ``clock`` is the client's clock (a :class:`~delivery_sdk.VirtualClock` in tests and the demo); an
    adapter that stamps times itself should use it. ``environ`` is the client's settings mapping (see
    ``delivery_configure``): read every setting from it, never from ``os.environ`` directly.
    Implementations that do not need an argument leave it out. A plugin that is installed but not
    configured registers nothing; a partial configuration raises :class:`~delivery_sdk.PluginError`.

    Called once per :class:`~delivery_sdk.plugins.PluginHost`. ``adapter`` implements
    :class:`~delivery_sdk.channels.ChannelAdapter` (SMS, WeChat, e-mail, the e-service platform, staff
    phone calls, the postal carrier). Registering a name twice raises :class:`~delivery_sdk.PluginError`.
    Return nothing.
    """


@hookspec
def delivery_register_print_centres(register: PrintCentreRegistry, clock: Clock, environ: Mapping[str, str]) -> None:
    """Register print/mail centres: ``register(info, adapter)``; ``clock`` and ``environ`` as for channels.

    ``info`` is a :class:`~delivery_sdk.channels.PrintCentreInfo` (id, name, route keys, neighbours);
    ``adapter`` is a channel adapter of kind ``PRINT`` that receives print jobs. Called once per host;
    a duplicate centre id raises :class:`~delivery_sdk.PluginError`. Return nothing.
    """


# ---------------------------------------------------------------------------------------------------
# Decisions: called by the engine while it works a task.
# ---------------------------------------------------------------------------------------------------


@hookspec
def delivery_address_candidates(
    party: Party, known: Sequence[Contact], environ: Mapping[str, str]
) -> Sequence[AddressCandidate] | None:
    """Offer postal addresses for ``party`` during assisted person search (协查找人).

    ``environ`` is the client's settings mapping (as for ``delivery_configure``); leave it out if unused.

    Called when mail came back or no usable address is known; ``known`` holds the addresses already
    tried. Every implementation's results are merged; the core orders them (SPC 2017 Opinion order by
    source, then confidence) and records the chosen one as an event. Return a sequence of
    :class:`~delivery_sdk.records.AddressCandidate`, or None for nothing.
    """


@hookspec(firstresult=True)
def delivery_route_print_job(
    job: PrintJob, centres: Sequence[PrintCentreInfo], routed_today: Mapping[str, int]
) -> RouteDecision | None:
    """Choose the print/mail centre for ``job`` among the registered ``centres``.

    ``routed_today`` maps centre ids to the print jobs routed to them on the current Beijing day (counted
    from the store's ``print.routed`` events; absent means none), to compare with ``daily_capacity``.
    Stops at the first non-None result. The built-in router (registered ``trylast``) routes by the
    address's division code and fails over to a configured neighbour when a centre is down or full. Return a
    :class:`~delivery_sdk.records.RouteDecision`, or None to leave the choice to the next implementation
    (when nobody chooses, the task goes to a person).
    """


# ---------------------------------------------------------------------------------------------------
# After commit: called with facts that are already durable. Each implementation is called on its own:
# an exception is logged, never keeps the other plugins from the facts, and never undoes the commit.
# ---------------------------------------------------------------------------------------------------


@hookspec
def delivery_record_evidence(batch: EvidenceBatch, environ: Mapping[str, str]) -> Sequence[AnchorReceipt] | None:
    """Receive every committed event, in commit order, as an :class:`~delivery_sdk.records.EvidenceBatch`,
    and every newly signed checkpoint (``batch.checkpoint``). ``environ``: the client's settings mapping.

    Called by every registered sink (chains, notaries, external logs) after each commit. A sink that anchors
    checkpoints elsewhere may return the :class:`~delivery_sdk.records.AnchorReceipt` objects it obtained
    (for this checkpoint or earlier queued ones); the store keeps them in the evidence log. Otherwise return
    None.
    """


@hookspec
def delivery_file_service_record(record: ServiceRecord) -> str | None:
    """File the proof of service of a served task into the case file (入卷).

    Called once per served task by every registered filing sink; ``record.record_id`` is stable, so a sink
    called twice for it (after a crash) must treat the second call as a no-op. Return the case-file
    reference, or None. An exception leaves the task served-but-unfiled; the engine retries later.
    """


@hookspec
def delivery_task_event(event: StoredEvent) -> None:
    """Observe one committed event (notify a judge, feed metrics). Called for every event, in order.

    Return nothing.
    """
