"""``delivery-sdk check-config``: load everything exactly as ``delivery-sdk worker`` would, print what is
registered, exit 0, or 2 with each problem on its own line.

It takes the worker's own options (``--config``, ``--store``, ``--plugin``...) and goes through the worker's
own code path (:func:`delivery_sdk.worker.run_from_args` with ``check=``): the settings file and the
environment are merged the same way, the store is opened, the client is built, and every plugin is
configured and registered (:meth:`~delivery_sdk.plugins.PluginHost.load`). Nothing is sent, claimed or
written. Secrets are never printed: the store's DSN is masked and the signer shows its key name only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, TextIO

from ._exceptions import PluginError
from .model import ChannelKind

if TYPE_CHECKING:
    from .adapters import AdapterRoute
    from .worker import Worker

__all__ = ["check_config", "describe"]


def describe(worker: Worker, out: TextIO, *, settings: str | None = None) -> list[str]:
    """Load the worker's plugins and write what is registered to ``out``; returns the problems found."""
    problems: list[str] = []
    try:
        worker.load()
    except PluginError as exc:
        problems.extend(exc.problems)
    client = worker.client
    host = client.host
    engine = worker.engine

    def line(text: str = "") -> None:
        print(text, file=out)

    line(f"store         {worker.store_label or '?'}")
    if settings:
        line(f"settings      {settings}")
    line(f"plugins       {', '.join(host.plugin_names()) or 'none'}")
    adapters = {a.name: a for a in host.built_adapters()}
    channels = [a for a in adapters.values() if a.kind not in (ChannelKind.PRINT, ChannelKind.POST)]
    line("channels      (by kind; the first of each is used unless the policy chooses: [policy.adapters])")
    if problems:
        line("  (the registries are not built while there are problems: see below)")
    elif not channels:
        line("  none")
    routes = getattr(getattr(engine, "policy", None), "adapters", None) or {}
    for kind in ChannelKind:
        names = [a.name for a in channels if a.kind is kind]
        if names:
            chosen = "; ".join(_route_text(r) for r in routes.get(kind, ()))
            line(f"  {kind.value:<10}{', '.join(names)}" + (f"  (policy: {chosen})" if chosen else ""))
    carriers = [a.name for a in adapters.values() if a.kind is ChannelKind.POST]
    line(f"carriers      {', '.join(carriers) or 'none'}")
    try:
        centres = host.print_centres.infos() if not problems else []
    except PluginError:  # pragma: no cover - load() already said so
        centres = []
    line(f"print centres {len(centres) or 'none'}")
    for info in centres:
        route_keys = sorted(info.route_keys)
        keys = ", ".join(route_keys[:6]) + (" ..." if len(route_keys) > 6 else "")
        line(f"  {info.centre_id:<14}{info.name}  [{keys}]")
    line(f"evidence      {', '.join(host.implementations('delivery_record_evidence')) or 'none'}")
    line(f"filing        {', '.join(host.implementations('delivery_file_service_record')) or 'none'}")
    line(f"addresses     {', '.join(host.implementations('delivery_address_candidates')) or 'none'}")
    signers = list(getattr(engine, "signers", ()))
    if signers:
        keys = ", ".join(f"{s.name} (key id {s.key_id:08x})" for s in signers)
        line(f"signer        {keys}")
        line(f"origin        {engine.origin or signers[0].name}")
    else:
        line("signer        none (no evidence checkpoints are signed)")
    witness = getattr(engine, "witness", None)
    if witness is not None:
        line(f"witness       {witness}")
    policy = engine.policy
    order = ", ".join(k.value for k in policy.electronic_order)
    line(f"policy        electronic order {order}; retry after error {policy.retry_after_error}")
    electronic = {a.kind for a in channels}
    unserved = [k.value for k in policy.electronic_order if k not in electronic]
    if unserved and not problems:
        line(f"              (no channel registered for {', '.join(unserved)}: those steps are skipped)")
    return problems


def check_config(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The command: 0 when everything loads, 2 with each problem on its own line (stdout) otherwise."""
    from .worker import run_from_args

    stream = out or sys.stdout
    if not logging.getLogger().handlers:  # settings and store errors: one line each, on stderr
        logging.basicConfig(level=logging.ERROR, format="problem: %(message)s", stream=sys.stderr)

    def check(worker: Worker) -> int:
        problems = describe(worker, stream, settings=getattr(args, "config", None))
        if problems:
            print("problems", file=stream)
            for problem in problems:
                print(f"  problem: {problem}", file=stream)
            return 2
        print("configuration OK", file=stream)
        return 0

    return run_from_args(args, check=check)


def _route_text(route: AdapterRoute) -> str:
    """One adapter route, as check-config prints it: ``court X, prefecture 4201: a > b``."""
    where = [f"court {c}" for c in route.courts] + [f"prefecture {p}" for p in route.prefectures]
    return (", ".join(where) + ": " if where else "") + " > ".join(route.adapters)
