"""The proof of service (送达回证 / 电子送达凭证): a versioned JSON record, its PDF, and its offline check.

- :mod:`.record`: :func:`build_record` turns a :class:`~delivery_sdk.records.ServiceRecord` into a
  :class:`ProofOfService` (format ``delivery-sdk/proof-of-service/v1``), optionally with a proof bundle.
- :mod:`.pdf`: :func:`render_pdf` (reportlab, imported only when a PDF is rendered).
- :mod:`.verify`: :func:`verify_record`, behind ``delivery-sdk verify-record``.

See ``docs/proof-of-service.md``.
"""

from __future__ import annotations

from .pdf import CJKFontMissing, render_pdf, write_pdf
from .record import (
    PROOF_FORMAT,
    TITLE_ELECTRONIC,
    TITLE_PAPER,
    Attempt,
    CheckpointRef,
    DeadlineEntry,
    EvidenceCheck,
    ProofOfService,
    Recipient,
    build_record,
    canonical_digest,
    checkpoint_ref,
    record_from_json,
    record_to_json,
)
from .verify import RecordCheck, verify_record

__all__ = [
    "PROOF_FORMAT",
    "TITLE_ELECTRONIC",
    "TITLE_PAPER",
    "Attempt",
    "CJKFontMissing",
    "CheckpointRef",
    "DeadlineEntry",
    "EvidenceCheck",
    "ProofOfService",
    "Recipient",
    "RecordCheck",
    "build_record",
    "canonical_digest",
    "checkpoint_ref",
    "record_from_json",
    "record_to_json",
    "render_pdf",
    "verify_record",
    "write_pdf",
]
