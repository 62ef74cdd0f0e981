"""The typed facade over pluggy: nothing else in the SDK touches ``pm.hook``.

One :class:`PluginHost` per client (there is no global plugin manager). It registers the built-in plugins,
loads the ``delivery_sdk`` entry points, registers the plugins passed in, and calls ``check_pending()`` so
a misspelt hook fails loudly.

Environment switches (read when a host is built):

- ``DELIVERY_SDK_PLUGINS=name1,name2``: load only these entry points (``none`` loads none);
- ``DELIVERY_SDK_BLOCK_PLUGINS=name1,name2``: never load these (entry points or built-ins, by name);
- ``DELIVERY_SDK_TRACE_PLUGINS=1``: log every hook call and result to the ``delivery_sdk.plugins`` logger;
- ``DELIVERY_SDK_CASE_FOLDER=PATH``: register the built-in case-file sink, which files each proof of service
  (JSON and PDF) into ``PATH/<court>/<case>/``;
- ``DELIVERY_SDK_CHANNEL_ORDER=email=smtp,log;sms=sms``: the order of the adapters of one kind (the first is
  the one the engine uses, unless ``PolicyConfig.adapters`` chooses: :mod:`delivery_sdk.adapters`). Two
  adapters of one kind without such an order are refused (:class:`~delivery_sdk.PluginError`): a second
  adapter never takes a kind over by being installed.

The host hands its ``environ`` (the client's ``environ=``, else ``os.environ`` itself) to every hook that asks
for it (``delivery_configure``, the registration hooks, ``delivery_address_candidates``,
``delivery_record_evidence``): plugins read their settings from it. :meth:`PluginHost.load` configures every
plugin and builds the registries at once, collecting every plugin's problems into one ``PluginError``; the
worker and ``delivery-sdk check-config`` call it at start, a client on first use of its channels.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._exceptions import PluginError, UnknownChannel
from .channels import ChannelAdapter, PrintCentreInfo
from .clock import Clock, SystemClock
from .events import StoredEvent
from .model import ChannelKind, Contact, Party
from .records import AddressCandidate, AnchorReceipt, EvidenceBatch, PrintJob, RouteDecision, ServiceRecord
from .settings import CHANNEL_ORDER_ENV, parse_channel_order

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "ChannelRegistry", "PluginHost", "PrintCentreRegistry"]

ENTRY_POINT_GROUP = "delivery_sdk"
BUILTIN_PLUGINS = (
    "delivery_sdk.builtins.kinds",
    "delivery_sdk.builtins.router",
    "delivery_sdk.builtins.request_addresses",
)
log = logging.getLogger("delivery_sdk.plugins")


def _check_adapter(adapter: object) -> None:
    for attr in ("name", "kind", "send", "status", "parse_callback", "aclose"):
        if not hasattr(adapter, attr):
            raise PluginError(
                f"{type(adapter).__name__} is not a channel adapter: it has no {attr!r} "
                "(subclass delivery_sdk.BaseChannel or implement ChannelAdapter)"
            )
    if not isinstance(getattr(adapter, "kind"), ChannelKind):  # noqa: B009
        raise PluginError(f"channel adapter {getattr(adapter, 'name', '?')!r} has a kind that is not a ChannelKind")
    name = getattr(adapter, "name")  # noqa: B009
    if not isinstance(name, str) or not name:
        raise PluginError(f"channel adapter {type(adapter).__name__} needs a non-empty string name")


class ChannelRegistry:
    """Channel adapters by name; handed to ``delivery_register_channels`` as ``register``."""

    def __init__(self) -> None:
        self._by_name: dict[str, ChannelAdapter] = {}
        self.installed: set[str] = set()  # adapters registered by installed plugins (entry points)
        self._from_entry_point = False

    def __call__(self, adapter: ChannelAdapter) -> None:
        """Register ``adapter`` under its name; :class:`PluginError` when it is malformed or the name is taken."""
        _check_adapter(adapter)
        if adapter.name in self._by_name:
            raise PluginError(
                f"channel {adapter.name!r} is registered twice; give one of the adapters another name "
                "or block one plugin with DELIVERY_SDK_BLOCK_PLUGINS"
            )
        if adapter.kind in (ChannelKind.PRINT,):
            raise PluginError(
                f"channel {adapter.name!r} is a print centre: register it through "
                "delivery_register_print_centres(register) with its PrintCentreInfo"
            )
        self._by_name[adapter.name] = adapter
        if self._from_entry_point:
            self.installed.add(adapter.name)

    def get(self, name: str) -> ChannelAdapter:
        """The adapter named ``name``; :class:`UnknownChannel` (listing the known names) if there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownChannel(name, list(self._by_name)) from None

    def names(self) -> list[str]:
        """The registered channel names, in registration order."""
        return list(self._by_name)

    def of_kind(self, kind: ChannelKind) -> list[ChannelAdapter]:
        """The adapters of ``kind``, in the order chosen (``DELIVERY_SDK_CHANNEL_ORDER``); the first is used."""
        return [a for a in self._by_name.values() if a.kind is kind]

    def apply_order(self, order: Mapping[str, Sequence[str]]) -> None:
        """Put each kind's adapters in the explicit ``order`` (kind value -> names) and refuse two adapters of
        one kind, one of them from an installed plugin (an entry point), that the order does not both name:
        which adapter serves a kind is a choice, never the accident of what is installed. (Plugins passed in
        code, ``plugins=[...]``, are the integrator's explicit choice: without an order, the one registered
        last is asked first and wins the kind.) Raises :class:`PluginError` listing every problem."""
        problems: list[str] = []
        kinds: dict[ChannelKind, list[str]] = {}
        for adapter in self._by_name.values():
            kinds.setdefault(adapter.kind, []).append(adapter.name)
        for kind_value, names in order.items():
            for name in names:
                listed = self._by_name.get(name)
                if listed is None:
                    problems.append(
                        f"{CHANNEL_ORDER_ENV} names channel {name!r} for {kind_value}, but no such channel is "
                        f"registered (registered: {', '.join(self._by_name) or 'none'})"
                    )
                elif listed.kind.value != kind_value:
                    problems.append(
                        f"{CHANNEL_ORDER_ENV} lists channel {name!r} under {kind_value}, but it is a "
                        f"{listed.kind.value} channel"
                    )
        for kind, names in kinds.items():
            if len(names) < 2 or not self.installed.intersection(names):
                continue
            chosen = order.get(kind.value, ())
            unlisted = [n for n in names if n not in chosen]
            if unlisted:
                problems.append(
                    f"{len(names)} {kind.value} channels are registered ({', '.join(names)}) and "
                    f"{CHANNEL_ORDER_ENV} does not order {', '.join(unlisted)}: choose, e.g. "
                    f"{CHANNEL_ORDER_ENV}={kind.value}={','.join(names)}, or block a plugin with "
                    "DELIVERY_SDK_BLOCK_PLUGINS"
                )
        if problems:
            raise PluginError("; ".join(problems), problems=problems)
        rank = {name: i for names in order.values() for i, name in enumerate(names)}
        ordered = sorted(self._by_name.values(), key=lambda a: rank.get(a.name, 0))  # stable: others keep theirs
        self._by_name = {a.name: a for a in ordered}

    def __iter__(self) -> Iterator[ChannelAdapter]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


class PrintCentreRegistry:
    """Print centres by id; handed to ``delivery_register_print_centres`` as ``register``."""

    def __init__(self) -> None:
        self._centres: dict[str, tuple[PrintCentreInfo, ChannelAdapter]] = {}

    def __call__(self, info: PrintCentreInfo, adapter: ChannelAdapter) -> None:
        """Register a print centre: its description and its adapter (of kind ``ChannelKind.PRINT``);
        :class:`PluginError` when malformed or already registered."""
        if not isinstance(info, PrintCentreInfo):
            raise PluginError("register(info, adapter): info must be a PrintCentreInfo")
        _check_adapter(adapter)
        if adapter.kind is not ChannelKind.PRINT:
            raise PluginError(f"print centre {info.centre_id!r}: its adapter must have kind ChannelKind.PRINT")
        if info.centre_id in self._centres:
            raise PluginError(f"print centre {info.centre_id!r} is registered twice")
        self._centres[info.centre_id] = (info, adapter)

    def infos(self) -> list[PrintCentreInfo]:
        """The description of every registered print centre."""
        return [info for info, _ in self._centres.values()]

    def set_up(self, centre_id: str, up: bool) -> None:
        """Mark a centre up or down at run time (routers see it from the next routing decision on)."""
        try:
            info, adapter = self._centres[centre_id]
        except KeyError:
            raise UnknownChannel(f"print centre {centre_id}", list(self._centres)) from None
        self._centres[centre_id] = (attrs.evolve(info, up=up), adapter)

    def adapter(self, centre_id: str) -> ChannelAdapter:
        """The adapter of print centre ``centre_id``; :class:`UnknownChannel` if there is none."""
        try:
            return self._centres[centre_id][1]
        except KeyError:
            raise UnknownChannel(f"print centre {centre_id}", list(self._centres)) from None

    def __contains__(self, centre_id: object) -> bool:
        return centre_id in self._centres

    def __len__(self) -> int:
        return len(self._centres)


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginHost:
    """One typed method per hook, over one private pluggy ``PluginManager``."""

    def __init__(
        self,
        plugins: Sequence[object] = (),
        *,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.environ: Mapping[str, str] = env
        self._entry_points: set[str] = set()
        self.clock: Clock = clock or SystemClock()
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        only = _names(env.get("DELIVERY_SDK_PLUGINS"))
        blocked = _names(env.get("DELIVERY_SDK_BLOCK_PLUGINS")) or set()
        for name in blocked:
            self._pm.set_blocked(name)
        for module_name in BUILTIN_PLUGINS:
            if module_name not in blocked:
                self._pm.register(importlib.import_module(module_name), name=module_name)
        folder = env.get("DELIVERY_SDK_CASE_FOLDER")
        if folder and "delivery_sdk.builtins.case_folder" not in blocked:
            # the built-in case-file sink: proofs of service (JSON + PDF) into one folder per case
            from .builtins.case_folder import CaseFolderSink

            self._pm.register(CaseFolderSink(Path(folder)), name="delivery_sdk.builtins.case_folder")
        if load_entry_points and only != {"none"}:
            self._load_entry_points(only, blocked)
        for plugin in plugins:
            self.register(plugin)
        self._tracing = env.get("DELIVERY_SDK_TRACE_PLUGINS", "").lower() in {"1", "true", "yes"}
        if self._tracing:
            self._pm.add_hookcall_monitoring(self._trace_before, self._trace_after)
        self._check_pending()
        self._channels: ChannelRegistry | None = None
        self._centres: PrintCentreRegistry | None = None
        self._kinds: dict[str, ChannelKind] | None = None
        self._configured = False

    def _load_entry_points(self, only: set[str] | None, blocked: set[str]) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (only is not None and ep.name not in only):
                continue
            if self._pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"cannot load plugin entry point {ep.name!r} ({ep.value}): {exc}") from exc
            try:
                self._pm.register(plugin, name=ep.name)
                self._entry_points.add(ep.name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(
                    f"plugin entry point {ep.name!r} ({ep.value}) breaks the hook contract: {exc}"
                ) from exc

    @staticmethod
    def _trace_before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        log.debug("hook %s -> %s", hook_name, [impl.plugin_name for impl in impls])

    @staticmethod
    def _trace_after(
        outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        error = outcome.exception
        log.debug("hook %s <- %s", hook_name, type(error).__name__ if error else "ok")

    # -- registration --------------------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin (an object or module with ``@hookimpl`` functions); registries are rebuilt."""
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"cannot register plugin: {exc}") from exc
        self._check_pending()
        self._channels = None
        self._centres = None
        self._kinds = None
        self._configured = False

    def _check_pending(self) -> None:
        # A hookimpl whose name matches no hookspec (a misspelt hook) would otherwise never be called.
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{exc}; hook names are listed in delivery_sdk.hookspecs") from exc

    def plugin_names(self) -> list[str]:
        """The names of the loaded plugins (blocked ones are not listed)."""
        # pluggy lists a blocked name with plugin None: it is not loaded, so it is not listed here
        return [name for name, plugin in self._pm.list_name_plugin() if plugin is not None]

    def _each(self, name: str, problems: list[str], **kwargs: Any) -> None:
        """Call every implementation of a start-up hook on its own, so that every plugin's problems are
        found in one go; a plugin's error becomes a line of ``problems`` (its message kept: configuration
        errors name variables, never personal data)."""
        kwargs.setdefault("environ", self.environ)
        kwargs.setdefault("clock", self.clock)
        register = kwargs.get("register")
        impls = list(reversed(getattr(self._pm.hook, name).get_hookimpls()))
        if self._tracing:  # called one by one, past pluggy's monitoring: traced here the same way
            log.debug("hook %s -> %s", name, [impl.plugin_name for impl in impls])
        before = len(problems)
        for impl in impls:
            # a plugin object registered without a name is known by its id: say its class instead
            label = impl.plugin_name if not impl.plugin_name.isdigit() else type(impl.plugin).__name__
            if isinstance(register, ChannelRegistry):
                register._from_entry_point = impl.plugin_name in self._entry_points
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except PluginError as exc:
                problems.extend(f"{label}: {p}" for p in exc.problems or (type(exc).__name__,))
            except Exception as exc:
                detail = str(exc).strip() or "no message"
                problems.append(f"{label}: {type(exc).__name__}: {detail}")
        if self._tracing:
            log.debug("hook %s <- %s", name, "PluginError" if len(problems) > before else "ok")

    @staticmethod
    def _raise(problems: list[str]) -> None:
        if problems:
            lines = "".join(f"\n  - {p}" for p in problems)
            raise PluginError(f"the plugins cannot start:{lines}", problems=problems)

    def _configure(self) -> None:
        if not self._configured:
            problems: list[str] = []
            self._each("delivery_configure", problems)
            self._raise(problems)
            self._configured = True

    def load(self) -> None:
        """Configure every plugin (``delivery_configure``) and build the channel and print-centre registries
        now, raising one :class:`PluginError` whose ``problems`` name every plugin's every problem. The
        worker and ``delivery-sdk check-config`` call this at start."""
        problems: list[str] = []
        if not self._configured:
            self._each("delivery_configure", problems)
        self._configured = True  # the registrations run even so: every plugin's problems are found at once
        for build in (self._build_channels, self._build_centres):
            try:
                build()
            except PluginError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
        if problems:  # nothing half-loaded is kept: the next use raises again
            self._configured = False
            self._channels = self._centres = None
        self._raise(problems)

    def channel_kinds(self) -> dict[str, ChannelKind]:
        """Every channel kind the host's plugins declare (``delivery_channel_kinds``), by value, built-ins
        first; :class:`PluginError` when a plugin returns anything but declared :class:`ChannelKind` objects."""
        if self._kinds is None:
            kinds: dict[str, ChannelKind] = {}
            problems: list[str] = []
            for impl in reversed(self._pm.hook.delivery_channel_kinds.get_hookimpls()):
                label = impl.plugin_name if not impl.plugin_name.isdigit() else type(impl.plugin).__name__
                try:
                    result: Any = impl.function()
                except Exception as exc:  # a declaration refused (ValidationError) or a broken plugin
                    problems.append(f"{label}: {type(exc).__name__}: {str(exc).strip() or 'no message'}")
                    continue
                for kind in result or ():
                    if not isinstance(kind, ChannelKind) or not kind.declared:
                        problems.append(
                            f"{label}: delivery_channel_kinds returned {kind!r}; return kinds made with "
                            "ChannelKind.declare(value, label=..., nature=..., contact=...)"
                        )
                        continue
                    kinds.setdefault(kind.value, kind)
            self._raise(problems)
            self._kinds = kinds
        return self._kinds

    def _build_channels(self) -> ChannelRegistry:
        if self._channels is None:
            self._configure()
            registry = ChannelRegistry()
            problems: list[str] = []
            self._each("delivery_register_channels", problems, register=registry)
            if not problems:
                declared = self.channel_kinds()
                for adapter in registry:
                    if declared.get(adapter.kind.value) is not adapter.kind:
                        problems.append(
                            f"channel {adapter.name!r} has kind {adapter.kind.value!r}, which no plugin of this "
                            "host declares: return it from the plugin's delivery_channel_kinds hook"
                        )
            if not problems:
                try:
                    registry.apply_order(parse_channel_order(self.environ.get(CHANNEL_ORDER_ENV)))
                except PluginError as exc:
                    problems.extend(exc.problems)
            self._raise(problems)
            self._channels = registry
        return self._channels

    def _build_centres(self) -> PrintCentreRegistry:
        if self._centres is None:
            self._configure()
            registry = PrintCentreRegistry()
            problems: list[str] = []
            self._each("delivery_register_print_centres", problems, register=registry)
            self._raise(problems)
            self._centres = registry
        return self._centres

    def implementations(self, hook: str) -> list[str]:
        """The plugins that implement ``hook`` (``"delivery_record_evidence"``...), by name, in call order."""
        impls = reversed(getattr(self._pm.hook, hook).get_hookimpls())
        return [i.plugin_name if not i.plugin_name.isdigit() else type(i.plugin).__name__ for i in impls]

    def built_adapters(self) -> list[ChannelAdapter]:
        """The channel and print-centre adapters built so far (none are built to answer: for closing)."""
        adapters: list[ChannelAdapter] = list(self._channels or ())
        if self._centres is not None:
            adapters.extend(self._centres.adapter(info.centre_id) for info in self._centres.infos())
        return adapters

    @property
    def channels(self) -> ChannelRegistry:
        """The channel registry, built from the plugins on first use."""
        return self._build_channels()

    @property
    def print_centres(self) -> PrintCentreRegistry:
        """The print-centre registry, built from the plugins on first use."""
        return self._build_centres()

    # -- decisions -----------------------------------------------------------------------------------

    def address_candidates(self, party: Party, known: Sequence[Contact]) -> list[AddressCandidate]:
        """Every plugin's address candidates for ``party`` (``delivery_address_candidates``), merged."""
        results = self._pm.hook.delivery_address_candidates(party=party, known=tuple(known), environ=self.environ)
        merged: list[AddressCandidate] = []
        for result in results:
            if result is None:
                continue
            for candidate in result:
                if not isinstance(candidate, AddressCandidate):
                    raise PluginError(
                        f"delivery_address_candidates returned {type(candidate).__name__}; "
                        "return AddressCandidate objects"
                    )
                merged.append(candidate)
        return merged

    def route_print_job(self, job: PrintJob, routed_today: Mapping[str, int] | None = None) -> RouteDecision | None:
        """The first router's decision for ``job`` (``delivery_route_print_job``), or None when no router decides."""
        centres = self.print_centres.infos()
        decision = self._pm.hook.delivery_route_print_job(job=job, centres=centres, routed_today=routed_today or {})
        if decision is not None and not isinstance(decision, RouteDecision):
            raise PluginError(f"delivery_route_print_job returned {type(decision).__name__}, not a RouteDecision")
        return decision

    # -- after commit --------------------------------------------------------------------------------

    def _call_each(self, name: str, **kwargs: Any) -> tuple[list[Any], list[tuple[str, Exception]]]:
        """Call every implementation of an after-commit hook on its own, in pluggy's order, so that one
        failing plugin does not keep the others from the facts (pluggy stops a call at the first error)."""
        hook = getattr(self._pm.hook, name)
        impls = hook.get_hookimpls()
        if any(impl.hookwrapper or impl.wrapper for impl in impls):
            return [r for r in hook(**kwargs) if r is not None], []
        results: list[Any] = []
        errors: list[tuple[str, Exception]] = []
        for impl in reversed(impls):
            try:
                result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                log.exception("plugin %s failed in %s", impl.plugin_name, name)
                errors.append((impl.plugin_name, exc))
            else:
                if result is not None:
                    results.append(result)
        return results, errors

    def record_evidence(self, batch: EvidenceBatch) -> list[AnchorReceipt]:
        """Give committed events to every evidence sink (a failing sink is logged and skipped); returns the
        anchor receipts the sinks handed back."""
        results, _ = self._call_each("delivery_record_evidence", batch=batch, environ=self.environ)
        receipts: list[AnchorReceipt] = []
        for result in results:
            for receipt in result:
                if not isinstance(receipt, AnchorReceipt):
                    raise PluginError(
                        f"delivery_record_evidence returned {type(receipt).__name__}; return AnchorReceipt objects"
                    )
                receipts.append(receipt)
        return receipts

    def has_evidence_sinks(self) -> bool:
        """True when a plugin implements ``delivery_record_evidence``."""
        return bool(self._pm.hook.delivery_record_evidence.get_hookimpls())

    def file_service_record(self, record: ServiceRecord) -> list[str]:
        """File with every case-file sink; if any failed, raise :class:`PluginError` after calling all (the
        engine retries, and sinks deduplicate on ``record.record_id``)."""
        results, errors = self._call_each("delivery_file_service_record", record=record)
        if errors:
            names = ", ".join(f"{plugin} ({type(exc).__name__})" for plugin, exc in errors)
            raise PluginError(f"filing {record.record_id} failed in {names}")
        return [str(r) for r in results]

    def has_filing_sinks(self) -> bool:
        """True when a plugin implements ``delivery_file_service_record``."""
        return bool(self._pm.hook.delivery_file_service_record.get_hookimpls())

    def task_event(self, event: StoredEvent) -> None:
        """Tell every observer (``delivery_task_event``) about a committed event."""
        self._call_each("delivery_task_event", event=event)

    def has_observers(self) -> bool:
        """True when a plugin implements ``delivery_task_event``."""
        return bool(self._pm.hook.delivery_task_event.get_hookimpls())
