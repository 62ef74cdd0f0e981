"""A reference channel plugin for delivery-sdk: every dispatch becomes one JSON line in a log file.

Installing the distribution registers nothing: the plugin is opt-in, so a demo adapter never serves anyone
by being installed. Set ``DELIVERY_SDK_LOGCHANNEL_KIND`` (``email`` or ``sms``: the kind is always an explicit
choice) and every :class:`~delivery_sdk.DeliveryClient` built with entry points gets a channel named
``"log"`` of that kind. If another adapter of that kind is registered too, the host refuses to start until
``DELIVERY_SDK_CHANNEL_ORDER`` says which comes first. It is meant for demos, local development and as a
template for real adapters, so it shows the whole adapter contract:

- ``send`` is idempotent on ``dispatch.dispatch_id`` (the idempotency key): a second send of the same id
  writes nothing and answers as the first did;
- ``status`` reads the file, so after a crash the engine learns that an in-doubt dispatch was in fact
  "sent" and does not send it again;
- the contact and the recipient's name are written masked (:func:`delivery_sdk.model.mask`), never in clear;
- the "provider" delivers at once: the send result carries a ``delivered`` receipt.

The file is ``$DELIVERY_SDK_LOGCHANNEL_PATH``, or ``./delivery-logchannel.jsonl``; ``$DELIVERY_SDK_LOGCHANNEL_NAME``
renames the channel. The variables are read from the host's ``environ`` when it registers channels; any of
them set without ``..._KIND`` is refused with a :class:`~delivery_sdk.PluginError`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from delivery_sdk import (
    BaseChannel,
    ChannelKind,
    ChannelRegistry,
    Clock,
    Dispatch,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    SystemClock,
    hookimpl,
)
from delivery_sdk.model import mask
from delivery_sdk.plugin_kit import PluginSettings

__all__ = [
    "DEFAULT_PATH",
    "ENV_KIND",
    "ENV_NAME",
    "ENV_PATH",
    "LINE_FORMAT",
    "LogChannel",
    "channel_from_env",
    "delivery_register_channels",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_logchannel")

ENV_PATH = "DELIVERY_SDK_LOGCHANNEL_PATH"
ENV_KIND = "DELIVERY_SDK_LOGCHANNEL_KIND"
ENV_NAME = "DELIVERY_SDK_LOGCHANNEL_NAME"
ENV_PREFIX = "DELIVERY_SDK_LOGCHANNEL_"
_KINDS = {"email": ChannelKind.EMAIL, "sms": ChannelKind.SMS}
DEFAULT_PATH = "delivery-logchannel.jsonl"
LINE_FORMAT = 1  # bump when a line's fields change meaning


class LogChannel(BaseChannel):
    """A channel adapter whose "provider" is an append-only JSON Lines file.

    ``kind`` is :attr:`ChannelKind.EMAIL` (the default) or :attr:`ChannelKind.SMS`; ``clock`` stamps the
    delivery receipts (the system clock unless given).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        name: str = "log",
        kind: ChannelKind = ChannelKind.EMAIL,
        clock: Clock | None = None,
    ) -> None:
        if kind not in (ChannelKind.EMAIL, ChannelKind.SMS):
            raise ValueError(f"LogChannel kind must be EMAIL or SMS, not {kind.value}")
        self.name = name
        self.kind = kind
        self.path = Path(path if path is not None else os.environ.get(ENV_PATH) or DEFAULT_PATH)
        self.clock: Clock = clock or SystemClock()

    # -- the "provider" ------------------------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        """Every line of the log, parsed (a line torn by a crash mid-write is skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def _find(self, dispatch_id: str) -> dict[str, Any] | None:
        for entry in self.entries():
            if entry.get("dispatch_id") == dispatch_id and entry.get("channel") == self.name:
                return entry
        return None

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
        with self.path.open("a+b") as handle:
            # Start on a fresh line if a crash left the last one unfinished, so only that line is lost.
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def _receipts(self, entry: dict[str, Any]) -> tuple[Receipt, ...]:
        dispatch_id = str(entry["dispatch_id"])
        return (
            Receipt(
                dispatch_id=dispatch_id,
                kind=ReceiptKind.DELIVERED,
                at=datetime.fromisoformat(str(entry["logged_at"])),
                provider_event_id=f"{dispatch_id}:delivered",
            ),
        )

    # -- the adapter contract ------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Send one dispatch to the provider (the dispatch id is the idempotency key); transient failures raise
        ``TransientChannelError``, refusals ``ChannelError``."""
        entry = self._find(dispatch.dispatch_id)
        if entry is None:
            entry = {
                "format": LINE_FORMAT,
                "dispatch_id": dispatch.dispatch_id,
                "task_id": dispatch.task_id,
                "channel": self.name,
                "kind": self.kind.value,
                "contact": mask(dispatch.contact.value),
                "recipient": mask(dispatch.recipient_name),
                "court": dispatch.case.court,
                "case_number": dispatch.case.case_number,
                "documents": [
                    {"document_id": d.document_id, "title": d.title, "kind": d.kind.value, "sha256": d.sha256}
                    for d in dispatch.documents
                ],
                "provider_ref": f"log:{dispatch.dispatch_id}",
                "logged_at": self.clock.now().isoformat(),
            }
            self._append(entry)
        return SendResult(accepted=True, provider_ref=str(entry["provider_ref"]), receipts=self._receipts(entry))

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """What the provider knows of a dispatch (``found=False``: it never got it, so sending again is safe)."""
        entry = self._find(dispatch.dispatch_id)
        if entry is None:
            return StatusReport(found=False)
        return StatusReport(found=True, provider_ref=str(entry["provider_ref"]), receipts=self._receipts(entry))


def channel_from_env(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> LogChannel | None:
    """The channel ``DELIVERY_SDK_LOGCHANNEL_*`` in ``environ`` (``os.environ`` when None) describe, or None
    when none of them is set. ``..._KIND`` is required once any is set; a problem raises
    :class:`~delivery_sdk.PluginError` naming every variable at fault."""
    settings = PluginSettings("logchannel", environ, ENV_PREFIX)
    if not settings.configured:
        return None
    raw = settings.get(ENV_KIND)
    if raw is None:
        settings.problem(
            f"{ENV_KIND} is required (email or sms): the reference log channel never takes a kind by default"
        )
    elif raw.lower() not in _KINDS:
        settings.problem(f"{ENV_KIND} must be email or sms, not {raw!r}")
    name = settings.get(ENV_NAME, "log") or "log"
    settings.check()
    assert raw is not None
    return LogChannel(settings.get(ENV_PATH, DEFAULT_PATH), name=name, kind=_KINDS[raw.lower()], clock=clock)


@hookimpl
def delivery_register_channels(register: ChannelRegistry, clock: Clock, environ: Mapping[str, str]) -> None:
    """Register one :class:`LogChannel` when ``DELIVERY_SDK_LOGCHANNEL_KIND`` asks for it; else nothing."""
    channel = channel_from_env(environ, clock)
    if channel is None:
        log.debug("logchannel installed but not configured (%s unset): nothing registered", ENV_KIND)
        return
    register(channel)
