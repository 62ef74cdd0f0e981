"""Print packages: one print-ready PDF per print job.

Layout (A4 portrait, 210 x 297 mm):

- **page 1** — the front sheet and proof-of-service receipt form (送达回证, CPL Art. 87):
  - the **address block** in the window position of DIN 5008 form B: 20 mm from the left edge, 45 mm
    from the top, 85 x 45 mm (a 5 mm return-address line, then the recipient's address and name). An A4
    sheet folded in thirds shows it through the window of a DL envelope (window 90 x 45 mm, 20 mm from
    the left, 15 mm from the bottom, DIN 680); folded once, through the window of a C5 envelope with its
    window at the same place. Nothing else is printed in that area;
  - the **task id as a QR code** (reportlab.graphics.barcode.qr, error correction M) at the top right,
    the task id and dispatch id printed under it as text;
  - the **receipt form**: court, case number, the documents' titles, the recipient, the address, and
    blank fields for the signature (or seal), the signing date, an agent and the reason, and the server;
- **then the documents themselves**, each input PDF's pages in the order of the request, merged with
  pypdf. Before anything is drawn, each input's SHA-256 is checked against its
  :class:`~delivery_sdk.model.Document` digest: a mismatch raises :class:`DocumentDigestMismatch` and
  nothing is printed.

Chinese text is set in an embedded CJK TrueType font (subset-embedded by reportlab), found by
:func:`delivery_sdk._fonts.cjk_font`: the environment variable ``DELIVERY_SDK_CJK_FONT`` (a .ttf/.ttc path)
or the usual Debian paths (fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-uming/ukai; Noto CJK is
CFF-based, which reportlab cannot embed). Without one, reportlab's CID font ``STSong-Light`` is used (not
embedded: the reader must supply it) and a warning is logged once. The receipt form cites the law in
Chinese (:func:`delivery_sdk.law.citations.chinese`).

Where the documents' bytes come from is a :class:`DocumentSource` (``fetch(document) -> bytes``);
:class:`FolderDocumentSource` reads ``<folder>/<sha256>.pdf``. Logs never carry the name or the address.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .._exceptions import DeliveryError
from .._fonts import FALLBACK_FONT, FONT_CANDIDATES, FONT_ENV, FontChoice, cjk_font
from ..law.citations import chinese
from ..law.service import BASIS_POSTAL
from ..model import Case, Contact, Document

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

__all__ = [
    "ADDRESS_WINDOW_MM",
    "FALLBACK_FONT",
    "FONT_CANDIDATES",
    "FONT_ENV",
    "DocumentDigestMismatch",
    "DocumentMissing",
    "DocumentSource",
    "DocumentUnreadable",
    "FolderDocumentSource",
    "FontChoice",
    "PackageRenderer",
    "PackageRequest",
    "PrintPackage",
    "PrintPackageError",
    "cjk_font",
    "render_package",
]

log = logging.getLogger("delivery_sdk.printing")

# The receipt form's note: the law of postal service and of the receipt, cited in Chinese for court staff.
BASIS_RECEIPT = "CPL Art. 87"
RECEIPT_NOTE = f"邮寄送达，依据{chinese(BASIS_POSTAL)}；签收日期为送达日期，依据{chinese(BASIS_RECEIPT)}"
# x, y from the top-left corner, width, height (mm): DIN 5008 form B address field
ADDRESS_WINDOW_MM = (20.0, 45.0, 85.0, 45.0)


class PrintPackageError(DeliveryError):
    """A print package could not be made; nothing was printed."""


class DocumentMissing(PrintPackageError):
    """The document source has no bytes for a document."""


class DocumentDigestMismatch(PrintPackageError):
    """A document's bytes do not have the SHA-256 digest the request gave: it is not the document served."""


class DocumentUnreadable(PrintPackageError):
    """A document's bytes are not a PDF pypdf can read."""


@runtime_checkable
class DocumentSource(Protocol):
    """Where documents' bytes come from (the case-handling system's file store, a folder...)."""

    def fetch(self, document: Document) -> bytes:
        """The document's bytes; raise :class:`DocumentMissing` if there are none."""
        ...


class FolderDocumentSource:
    """Documents stored by digest: ``<folder>/<sha256>.pdf`` (content-addressed, so never stale)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, sha256: str) -> Path:
        """The path of the document with digest ``sha256`` (``<sha256>.pdf`` in the folder)."""
        return self.folder / f"{sha256}.pdf"

    def put(self, data: bytes) -> str:
        """Store ``data`` under its digest (atomically) and return the digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return digest

    def fetch(self, document: Document) -> bytes:
        """The document's bytes; raise :class:`DocumentMissing` if there are none."""
        try:
            return self.path(document.sha256).read_bytes()
        except FileNotFoundError:
            raise DocumentMissing(
                f"document {document.document_id}: no file {document.sha256}.pdf in the document folder"
            ) from None


# -- the package ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PrintPackage:
    """A rendered print package: the PDF and what a batch manifest says of it (no personal data)."""

    dispatch_id: str
    task_id: str
    pdf: bytes = attrs.field(repr=lambda v: f"<{len(v)} bytes>")
    pages: int
    sha256: str


def _check_documents(documents: Sequence[Document], source: DocumentSource) -> list[bytes]:
    """Every document's bytes, each checked against its digest before anything is printed."""
    out: list[bytes] = []
    for document in documents:
        data = source.fetch(document)
        actual = hashlib.sha256(data).hexdigest()
        if actual != document.sha256:
            raise DocumentDigestMismatch(
                f"document {document.document_id}: SHA-256 {actual[:16]}... is not the requested "
                f"{document.sha256[:16]}...; nothing printed"
            )
        out.append(data)
    return out


def _wrap(canvas: Canvas, text: str, font: str, size: float, width: float) -> list[str]:
    """Break ``text`` into lines that fit ``width`` (character by character: CJK has no spaces)."""
    lines: list[str] = []
    line: list[str] = []
    used = 0.0
    for char in text:
        w = canvas.stringWidth(char, font, size)
        if used + w > width and line:
            lines.append("".join(line))
            line, used = [], 0.0
        line.append(char)
        used += w
    if line:
        lines.append("".join(line))
    return lines


QR_MASK = 2  # any of the 8 masks is valid (ISO/IEC 18004 7.8); choosing the "best" one costs 8 trial encodings
QR_BORDER = 4  # the quiet zone, in modules


def _draw_qr(canvas: Canvas, text: str, x: float, y: float, side: float) -> None:
    """Draw ``text`` as a QR code (reportlab's encoder, error correction M) in a ``side`` square at x, y."""
    from reportlab.graphics.barcode import qrencoder  # the encoder behind reportlab.graphics.barcode.qr

    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(text)
    if code.version is None:
        code.version = code.calculate_version()  # type: ignore[no-untyped-call]
    code.makeImpl(False, QR_MASK)
    count = code.getModuleCount()  # type: ignore[no-untyped-call]
    box = side / (count + 2 * QR_BORDER)
    path = canvas.beginPath()
    for r, row in enumerate(code.modules):
        c = 0
        while c < count:
            if row[c]:
                start = c
                while c < count and row[c]:
                    c += 1
                path.rect(x + (start + QR_BORDER) * box, y + side - (r + QR_BORDER + 1) * box, (c - start) * box, box)
            else:
                c += 1
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def _front_page(
    *,
    task_id: str,
    dispatch_id: str,
    case: Case,
    recipient: str,
    address: Contact,
    documents: Sequence[Document],
    font: str,
) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    width, height = A4
    out = io.BytesIO()
    c = Canvas(out, pagesize=A4, invariant=True, pageCompression=1)
    c.setTitle(f"送达回证 {case.case_number}")
    c.setAuthor(case.court)
    c.setCreator("delivery-sdk")

    # The window: return address, then the recipient (address lines, name). Nothing else in this area.
    wx, wy, ww, _height = ADDRESS_WINDOW_MM
    left, top = wx * mm, height - wy * mm
    c.setFont(font, 7)
    c.drawString(left, top - 4 * mm, _wrap(c, f"{case.court} 法院专递", font, 7, ww * mm)[0])
    c.setLineWidth(0.3)
    c.line(left, top - 5.5 * mm, left + ww * mm, top - 5.5 * mm)
    y = top - 11 * mm
    for line in _wrap(c, address.value, font, 11, ww * mm)[:3]:
        c.setFont(font, 11)
        c.drawString(left, y, line)
        y -= 5.5 * mm
    c.setFont(font, 13)
    c.drawString(left, y - 1 * mm, f"{recipient}（收）")

    # The task id as a QR code, with the ids in clear below it.
    side = 30 * mm
    _draw_qr(c, task_id, width - 20 * mm - side, height - 15 * mm - side, side)
    c.setFont(font, 7)
    c.drawRightString(width - 20 * mm, height - 18 * mm - side, f"任务 {task_id}")
    c.drawRightString(width - 20 * mm, height - 21 * mm - side, f"投递 {dispatch_id}")

    # The receipt form (送达回证), below the window.
    c.setFont(font, 18)
    c.drawCentredString(width / 2, height - 105 * mm, "送 达 回 证")
    c.setFont(font, 11)
    c.drawCentredString(width / 2, height - 113 * mm, case.court)
    titles = "；".join(d.title for d in documents)
    rows: list[tuple[str, str, float]] = [
        ("案号", case.case_number, 12),
        ("送达文书", titles, 22),
        ("受送达人", recipient, 12),
        ("送达地址", address.value, 18),
        ("受送达人签名或盖章", "", 22),
        ("签收日期", "        年      月      日", 12),
        ("代收人及代收理由", "", 18),
        ("送达人", "", 12),
        ("备注", RECEIPT_NOTE, 14),
    ]
    x_left, x_mid, x_right = 20 * mm, 62 * mm, width - 20 * mm
    y = height - 120 * mm
    c.setLineWidth(0.6)
    c.line(x_left, y, x_right, y)
    for label, value, row_mm in rows:
        bottom = y - row_mm * mm
        c.setFont(font, 10)
        c.drawString(x_left + 2 * mm, y - 6 * mm, label)
        line_y = y - 6 * mm
        for line in _wrap(c, value, font, 10, x_right - x_mid - 4 * mm)[: max(1, int(row_mm // 5.5))]:
            c.drawString(x_mid + 2 * mm, line_y, line)
            line_y -= 5 * mm
        c.line(x_left, bottom, x_right, bottom)
        c.line(x_left, y, x_left, bottom)
        c.line(x_mid, y, x_mid, bottom)
        c.line(x_right, y, x_right, bottom)
        y = bottom
    c.setFont(font, 7)
    c.drawString(x_left, y - 5 * mm, f"任务编号 {task_id}　投递编号 {dispatch_id}")
    c.showPage()
    c.save()
    return out.getvalue()


def render_package(
    *,
    task_id: str,
    dispatch_id: str,
    case: Case,
    recipient: str,
    address: Contact,
    documents: Sequence[Document],
    source: DocumentSource,
    font: FontChoice | None = None,
) -> PrintPackage:
    """The print package of one job: the front page (address block, QR code, 送达回证), then every document.

    Raises :class:`DocumentMissing`, :class:`DocumentDigestMismatch` or :class:`DocumentUnreadable`
    before anything is rendered when an input is not exactly the document the request named.
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    inputs = _check_documents(documents, source)
    readers = []
    for document, data in zip(documents, inputs, strict=True):
        try:
            reader = PdfReader(io.BytesIO(data))
            _ = len(reader.pages)
        except (PyPdfError, ValueError, KeyError, OSError) as exc:
            raise DocumentUnreadable(
                f"document {document.document_id}: not a readable PDF ({type(exc).__name__})"
            ) from None
        readers.append(reader)
    choice = font or cjk_font()
    front = _front_page(
        task_id=task_id,
        dispatch_id=dispatch_id,
        case=case,
        recipient=recipient,
        address=address,
        documents=documents,
        font=choice.name,
    )
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(front)))
    for reader in readers:
        writer.append(reader)
    writer.add_metadata({"/Title": f"送达回证 {case.case_number}", "/Creator": "delivery-sdk", "/Subject": task_id})
    out = io.BytesIO()
    writer.write(out)
    pdf = out.getvalue()
    return PrintPackage(
        dispatch_id=dispatch_id,
        task_id=task_id,
        pdf=pdf,
        pages=len(writer.pages),
        sha256=hashlib.sha256(pdf).hexdigest(),
    )


def _no_personal_repr(value: object) -> str:
    return "'***'"


@attrs.frozen(kw_only=True)
class PackageRequest:
    """What one print package needs (picklable, so a process pool can render it)."""

    task_id: str
    dispatch_id: str
    case: Case
    recipient: str = attrs.field(repr=_no_personal_repr)
    address: Contact
    documents: tuple[Document, ...]


def _render_request(request: PackageRequest, source: DocumentSource, font_path: str | None) -> PrintPackage:
    return render_package(
        task_id=request.task_id,
        dispatch_id=request.dispatch_id,
        case=request.case,
        recipient=request.recipient,
        address=request.address,
        documents=request.documents,
        source=source,
        font=cjk_font(font_path),
    )


class PackageRenderer:
    """Renders print packages, in this process (``workers=0``) or in a pool of processes.

    Rendering is CPU-bound (reportlab, pypdf), so a batch renders ``workers`` times faster on as many
    cores. The pool uses the ``spawn`` start method (safe beside asyncio and httpx threads) and is made on
    first use; :meth:`close` ends it. ``source`` must be picklable for ``workers > 0``
    (:class:`FolderDocumentSource` is).
    """

    def __init__(self, source: DocumentSource, *, workers: int = 0, font_path: str | None = None) -> None:
        self.source = source
        self.workers = workers
        self.font_path = font_path
        self._pool: Any = None

    def render(self, request: PackageRequest) -> PrintPackage:
        """Render the print package for ``request``: the documents, the 送达回证 and the envelope sheet."""
        return _render_request(request, self.source, self.font_path)

    def render_many(self, requests: Sequence[PackageRequest]) -> list[PrintPackage | PrintPackageError]:
        """Render every request, in order; a request that fails yields its error (the others still render)."""
        if self.workers <= 0 or len(requests) < 2:
            out: list[PrintPackage | PrintPackageError] = []
            for request in requests:
                try:
                    out.append(self.render(request))
                except PrintPackageError as exc:
                    out.append(exc)
            return out
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        futures = [self._pool.submit(_render_request, r, self.source, self.font_path) for r in requests]
        results: list[PrintPackage | PrintPackageError] = []
        for future in futures:
            try:
                results.append(future.result())
            except PrintPackageError as exc:
                results.append(exc)
        return results

    def close(self) -> None:
        """Shut the renderer's worker pool down, if it has one."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> PackageRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
