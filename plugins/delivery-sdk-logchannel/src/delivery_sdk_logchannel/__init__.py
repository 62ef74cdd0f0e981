"""A reference channel plugin for delivery-sdk: every dispatch becomes one JSON line in a log file.

Install the distribution and every :class:`~delivery_sdk.DeliveryClient` built with entry points (the
default) gets an e-mail channel named ``"log"``; nothing else to configure. It is meant for demos, local
development and as a template for real adapters, so it shows the whole adapter contract:

- ``send`` is idempotent on ``dispatch.dispatch_id`` (the idempotency key): a second send of the same id
  writes nothing and answers as the first did;
- ``status`` reads the file, so after a crash the engine learns that an in-doubt dispatch was in fact
  "sent" and does not send it again;
- the contact and the recipient's name are written masked (:func:`delivery_sdk.model.mask`), never in clear;
- the "provider" delivers at once: the send result carries a ``delivered`` receipt.

The file is ``$DELIVERY_SDK_LOGCHANNEL_PATH``, or ``./delivery-logchannel.jsonl``; it is read when a
:class:`LogChannel` is built (once per plugin host).
"""

from __future__ import annotations

import json
import os
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

__all__ = ["DEFAULT_PATH", "ENV_PATH", "LINE_FORMAT", "LogChannel", "delivery_register_channels"]

__version__ = "0.1.0"

ENV_PATH = "DELIVERY_SDK_LOGCHANNEL_PATH"
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
        entry = self._find(dispatch.dispatch_id)
        if entry is None:
            return StatusReport(found=False)
        return StatusReport(found=True, provider_ref=str(entry["provider_ref"]), receipts=self._receipts(entry))


@hookimpl
def delivery_register_channels(register: ChannelRegistry) -> None:
    """Register one :class:`LogChannel` (e-mail, named ``"log"``) with every plugin host."""
    register(LogChannel())
