"""Batches: print packages wait per centre in a durable spool and are released together, at the centre's
cut-off times or when a batch reaches its size, each release with a manifest.

The spool is a folder (``<root>/<centre_id>/``): a package waits as ``pending/<dispatch_id>.pdf`` with its
entry ``pending/<dispatch_id>.json``; a release moves them into ``released/<batch_id>/`` and then writes
``released/<batch_id>/manifest.json`` atomically. A crash between the moves and the manifest leaves a
batch folder without a manifest, which :class:`BatchSpool` completes when it next opens: nothing accepted
is lost and nothing is released twice.

When a batch is due (:meth:`BatchSpool.due`): when it holds ``batch_size`` packages and the centre is open
(Beijing time, its working days), or when the first cut-off at or after its oldest package's arrival has
passed (cut-offs fall on the centre's working days only, so a package that arrives on a Friday evening or
before a holiday waits for the next working day's first cut-off).

Manifest format (``delivery-sdk/print-manifest/v1``), JSON, UTF-8, keys in this order::

    {"format": "delivery-sdk/print-manifest/v1", "batch_id": "PC-420100-20260303-1100-1a2b3c4d",
     "centre_id": "PC-420100", "released_at": "2026-03-03T11:00:00+08:00", "reason": "cut-off 11:00",
     "count": 2, "total_pages": 8,
     "jobs": [{"dispatch_id": "T000001.3", "task_id": "T000001", "file": "T000001.3.pdf", "pages": 4,
               "bytes": 31822, "sha256": "<hex digest of the package PDF>"}, ...]}

No name, address or phone number: the centre reads those from the packages it prints. ``batch_id`` is
the centre, the Beijing release minute and the first 8 hex digits of the SHA-256 of the sorted dispatch
ids, so a re-sent release names the same batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from .._exceptions import ValidationError
from ..law.holidays import BEIJING
from .centres import CentreConfig
from .package import PrintPackage

__all__ = ["MANIFEST_FORMAT", "BatchSpool", "Manifest", "SpooledJob"]

MANIFEST_FORMAT = "delivery-sdk/print-manifest/v1"
_SAFE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


@attrs.frozen(kw_only=True)
class SpooledJob:
    """A print job waiting in (or released from) a centre's spool: its dispatch, task, arrival, size and digest."""

    dispatch_id: str
    task_id: str
    arrived_at: datetime
    pages: int
    bytes: int
    sha256: str

    @property
    def file(self) -> str:
        """The file name of the job's PDF in the spool."""
        return f"{self.dispatch_id}.pdf"

    def to_json(self) -> dict[str, Any]:
        """The job as JSON-ready data."""
        return {
            "dispatch_id": self.dispatch_id,
            "task_id": self.task_id,
            "arrived_at": self.arrived_at.isoformat(),
            "pages": self.pages,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpooledJob:
        """A job from :meth:`to_json`'s data."""
        return cls(
            dispatch_id=data["dispatch_id"],
            task_id=data["task_id"],
            arrived_at=datetime.fromisoformat(data["arrived_at"]),
            pages=int(data["pages"]),
            bytes=int(data["bytes"]),
            sha256=data["sha256"],
        )


@attrs.frozen(kw_only=True)
class Manifest:
    """A released batch of print jobs: its id, centre, release time, why it was released, and its jobs."""

    batch_id: str
    centre_id: str
    released_at: datetime
    reason: str
    jobs: tuple[SpooledJob, ...]

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data (times in Beijing time)."""
        return {
            "format": MANIFEST_FORMAT,
            "batch_id": self.batch_id,
            "centre_id": self.centre_id,
            "released_at": self.released_at.astimezone(BEIJING).isoformat(),
            "reason": self.reason,
            "count": len(self.jobs),
            "total_pages": sum(j.pages for j in self.jobs),
            "jobs": [
                {
                    "dispatch_id": j.dispatch_id,
                    "task_id": j.task_id,
                    "file": j.file,
                    "pages": j.pages,
                    "bytes": j.bytes,
                    "sha256": j.sha256,
                }
                for j in self.jobs
            ],
        }

    def to_json(self) -> bytes:
        """The manifest as UTF-8 JSON (indented, Chinese kept as is)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2).encode("utf-8")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def batch_id(centre_id: str, at: datetime, dispatch_ids: list[str]) -> str:
    """``<centre>-<Beijing date>-<time>-<hash>``: the same for the same jobs in any order."""
    digest = hashlib.sha256("\n".join(sorted(dispatch_ids)).encode()).hexdigest()[:8]
    return f"{centre_id}-{at.astimezone(BEIJING):%Y%m%d-%H%M}-{digest}"


class BatchSpool:
    """Durable per-centre batches in a folder; see the module docstring."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._recover()

    def _pending_dir(self, centre_id: str) -> Path:
        return self.root / centre_id / "pending"

    def _released_dir(self, centre_id: str) -> Path:
        return self.root / centre_id / "released"

    def add(self, centre_id: str, package: PrintPackage, at: datetime) -> bool:
        """Spool a package (idempotent on its dispatch id); False if it was spooled or released before."""
        if not _SAFE.fullmatch(package.dispatch_id) or not _SAFE.fullmatch(centre_id):
            raise ValidationError("dispatch and centre ids must be 1-200 letters, digits or _.:- to be spooled")
        if self.where(package.dispatch_id, centre_id) is not None:
            return False
        folder = self._pending_dir(centre_id)
        folder.mkdir(parents=True, exist_ok=True)
        job = SpooledJob(
            dispatch_id=package.dispatch_id,
            task_id=package.task_id,
            arrived_at=at,
            pages=package.pages,
            bytes=len(package.pdf),
            sha256=package.sha256,
        )
        _write_atomic(folder / job.file, package.pdf)
        _write_atomic(folder / f"{job.dispatch_id}.json", json.dumps(job.to_json()).encode())  # last: the commit
        return True

    def pending(self, centre_id: str) -> list[SpooledJob]:
        """The jobs waiting at centre ``centre_id``, oldest first."""
        folder = self._pending_dir(centre_id)
        if not folder.exists():
            return []
        jobs = [SpooledJob.from_json(json.loads(p.read_bytes())) for p in folder.glob("*.json")]
        return sorted(jobs, key=lambda j: (j.arrived_at, j.dispatch_id))

    def where(self, dispatch_id: str, centre_id: str) -> str | None:
        """``"pending"``, the batch id it was released in, or None if this spool never had it."""
        if (self._pending_dir(centre_id) / f"{dispatch_id}.json").exists():
            return "pending"
        released = self._released_dir(centre_id)
        if released.exists():
            for batch in released.iterdir():
                if (batch / f"{dispatch_id}.json").exists():
                    return batch.name
        return None

    def due(self, centre: CentreConfig, now: datetime) -> str | None:
        """Why the centre's pending batch is to be released now ("size", "cut-off HH:MM"), or None."""
        jobs = self.pending(centre.centre_id)
        if not jobs:
            return None
        if len(jobs) >= centre.batch_size and centre.is_open(now):
            return "size"
        cutoff = centre.next_cutoff(jobs[0].arrived_at)
        if now >= cutoff:
            return f"cut-off {cutoff.astimezone(BEIJING):%H:%M}"
        return None

    def release(self, centre: CentreConfig, now: datetime, reason: str) -> Manifest | None:
        """Release the pending batch (at most ``batch_size`` packages, oldest first) with its manifest."""
        jobs = self.pending(centre.centre_id)[: centre.batch_size]
        if not jobs:
            return None
        manifest = Manifest(
            batch_id=batch_id(centre.centre_id, now, [j.dispatch_id for j in jobs]),
            centre_id=centre.centre_id,
            released_at=now,
            reason=reason,
            jobs=tuple(jobs),
        )
        target = self._released_dir(centre.centre_id) / manifest.batch_id
        target.mkdir(parents=True, exist_ok=True)
        pending = self._pending_dir(centre.centre_id)
        for job in jobs:  # the entry first: a crash after it leaves the PDF for _recover to bring over
            os.replace(pending / f"{job.dispatch_id}.json", target / f"{job.dispatch_id}.json")
            os.replace(pending / job.file, target / job.file)
        _write_atomic(target / "manifest.json", manifest.to_json())
        return manifest

    def released(self, centre_id: str) -> list[Manifest]:
        """The manifests of the batches released to centre ``centre_id``, in batch order."""
        folder = self._released_dir(centre_id)
        if not folder.exists():
            return []
        return [self.manifest(centre_id, b.name) for b in sorted(folder.iterdir()) if b.is_dir()]

    def manifest(self, centre_id: str, batch: str) -> Manifest:
        """The manifest of released batch ``batch`` of centre ``centre_id``."""
        data = json.loads((self._released_dir(centre_id) / batch / "manifest.json").read_bytes())
        folder = self._released_dir(centre_id) / batch
        jobs = tuple(
            SpooledJob.from_json(json.loads((folder / f"{j['dispatch_id']}.json").read_bytes())) for j in data["jobs"]
        )
        return Manifest(
            batch_id=data["batch_id"],
            centre_id=data["centre_id"],
            released_at=datetime.fromisoformat(data["released_at"]),
            reason=data["reason"],
            jobs=jobs,
        )

    def package_path(self, centre_id: str, batch: str, dispatch_id: str) -> Path:
        """Where the PDF of a dispatch in a released batch lies."""
        return self._released_dir(centre_id) / batch / f"{dispatch_id}.pdf"

    def _recover(self) -> None:
        """Finish releases a crash interrupted: a batch folder without its manifest gets one."""
        for released in self.root.glob("*/released"):
            centre_id = released.parent.name
            for batch in released.iterdir():
                if not batch.is_dir() or (batch / "manifest.json").exists():
                    continue
                jobs = sorted(
                    (SpooledJob.from_json(json.loads(p.read_bytes())) for p in batch.glob("*.json")),
                    key=lambda j: (j.arrived_at, j.dispatch_id),
                )
                pending = self._pending_dir(centre_id)
                for job in jobs:  # an entry moved before its PDF: bring the PDF over
                    if not (batch / job.file).exists() and (pending / job.file).exists():
                        os.replace(pending / job.file, batch / job.file)
                manifest = Manifest(
                    batch_id=batch.name,
                    centre_id=centre_id,
                    released_at=datetime.now(BEIJING),
                    reason="recovered after an interrupted release",
                    jobs=tuple(jobs),
                )
                _write_atomic(batch / "manifest.json", manifest.to_json())
