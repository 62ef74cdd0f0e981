"""A filing sink that files each proof of service into a folder per case (入卷), as JSON and PDF.

::

    <root>/<court>/<case number>/<task_id>.json   the record (delivery-sdk/proof-of-service/v1)
    <root>/<court>/<case number>/<task_id>.pdf    送达回证 / 电子送达凭证

Not registered by default: pass ``CaseFolderSink(path)`` in ``plugins=[...]``. Each file is written to a
temporary file in the same folder, flushed to disk and moved into place with :func:`os.replace`, so a reader
never sees half a record. The PDF goes first and the JSON last: the JSON is the mark that the record is
filed. A second call for the same ``record_id`` (the engine retries after a crash) finds the JSON and
returns the same reference without writing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path

from ..hookspecs import hookimpl
from ..proof.record import build_record, record_to_json
from ..records import ServiceRecord

__all__ = ["CaseFolderSink", "safe_name"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def safe_name(text: str) -> str:
    """``text`` as one path component on any common file system: separators and reserved characters become
    ``_``, and a name of dots only or with leading dots or spaces is prefixed so it stays inside its folder."""
    name = _UNSAFE.sub("_", text).strip()
    if not name or name.strip(".") == "" or name.startswith("."):
        name = "_" + name
    return name[:150]


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class CaseFolderSink:
    """Files proofs of service under ``root``; ``pdf=False`` writes the JSON record only."""

    def __init__(self, root: str | Path, *, pdf: bool = True) -> None:
        self.root = Path(root)
        self.pdf = pdf

    def folder(self, record: ServiceRecord) -> Path:
        """The case's folder under the root: ``<court>/<case number>``, each made safe as a file name."""
        return self.root / safe_name(record.case.court) / safe_name(record.case.case_number)

    def paths(self, record: ServiceRecord) -> tuple[Path, Path]:
        """The JSON and PDF paths of ``record``."""
        stem = safe_name(record.task_id)
        folder = self.folder(record)
        return folder / f"{stem}.json", folder / f"{stem}.pdf"

    @hookimpl
    def delivery_file_service_record(self, record: ServiceRecord) -> str:
        """File the record (JSON and PDF) into the case's folder and return the JSON's path; filing the same record
        again is a no-op, and another record at that path is never overwritten (``FileExistsError``)."""
        json_path, pdf_path = self.paths(record)
        if json_path.exists():
            filed = json.loads(json_path.read_text(encoding="utf-8"))
            if filed.get("record_id") == record.record_id:
                return str(json_path)
            raise FileExistsError(f"{json_path} holds another record ({filed.get('record_id')!r}); not overwritten")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        proof = build_record(record, bundle=record.proof_bundle)
        if self.pdf:
            from ..proof.pdf import render_pdf

            _write_atomic(pdf_path, render_pdf(proof))
        _write_atomic(json_path, record_to_json(proof).encode("utf-8"))
        log.info("filed proof of service %s of task %s", record.record_id, record.task_id)
        return str(json_path)
