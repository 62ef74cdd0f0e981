"""Print packages read back: page count, the recipient's Chinese name and the task id as text, the
documents' pages in order, the CJK font embedded, and a rendered page whose Chinese glyphs are real glyphs
(not empty boxes); digests checked before anything is printed."""

from __future__ import annotations

import io
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from delivery_sdk import _fonts as fonts
from delivery_sdk.model import Case, Contact, ContactKind, Document, DocumentKind
from delivery_sdk.printing.package import (
    DocumentDigestMismatch,
    DocumentMissing,
    DocumentUnreadable,
    FolderDocumentSource,
    PackageRenderer,
    PackageRequest,
    PrintPackageError,
    cjk_font,
    render_package,
)

NAME = "张三丰"
ADDRESS = "湖北省武汉市武昌区中北路1号"  # one line in the window
CASE = Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1号")
TASK = "T000123"
DPI = 50


def marker_pdf(marker: str, pages: int) -> bytes:
    """A PDF whose page i carries the text ``<marker>-PAGE-<i>``."""
    # imported here, not at collection: tests/test_docs.py's in-process pytester runs drop the reportlab
    # modules they import first, and a reportlab half kept, half re-imported loses its font mappings
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, invariant=True)
    for i in range(1, pages + 1):
        canvas.drawString(72, 720, f"{marker}-PAGE-{i}")
        canvas.showPage()
    canvas.save()
    return out.getvalue()


@pytest.fixture
def source(tmp_path: Path) -> FolderDocumentSource:
    return FolderDocumentSource(tmp_path / "documents")


def documents(source: FolderDocumentSource) -> tuple[Document, ...]:
    specs = [("SUMMONS", 1, "传票", DocumentKind.SUMMONS), ("COMPLAINT", 2, "起诉状副本", DocumentKind.COMPLAINT)]
    return tuple(
        Document(document_id=f"D{n}", title=title, kind=kind, sha256=source.put(marker_pdf(marker, pages)))
        for n, (marker, pages, title, kind) in enumerate(specs, start=1)
    )


def render(source: FolderDocumentSource, docs: tuple[Document, ...], name: str = NAME) -> bytes:
    return render_package(
        task_id=TASK,
        dispatch_id=f"{TASK}.3",
        case=CASE,
        recipient=name,
        address=Contact(kind=ContactKind.POSTAL, value=ADDRESS, division_code="420106"),
        documents=docs,
        source=source,
    ).pdf


def test_package_pages_text_and_order(source: FolderDocumentSource) -> None:
    docs = documents(source)
    pkg = render_package(
        task_id=TASK,
        dispatch_id=f"{TASK}.3",
        case=CASE,
        recipient=NAME,
        address=Contact(kind=ContactKind.POSTAL, value=ADDRESS),
        documents=docs,
        source=source,
    )
    reader = PdfReader(io.BytesIO(pkg.pdf))
    assert len(reader.pages) == pkg.pages == 1 + 1 + 2
    front = reader.pages[0].extract_text()
    for text in ("送 达 回 证", NAME, TASK, f"{TASK}.3", CASE.case_number, CASE.court, ADDRESS, "传票；起诉状副本"):
        assert text in front
    for blank in ("受送达人签名或盖章", "签收日期", "代收人及代收理由", "送达人"):
        assert blank in front
    # the receipt form cites the law in Chinese, for the court staff who read it (not "CPL Art. 91")
    flat = re.sub(r"\s+", "", front)
    assert "邮寄送达，依据《中华人民共和国民事诉讼法》第九十一条" in flat
    assert "签收日期为送达日期，依据《中华人民共和国民事诉讼法》第八十七条" in flat
    assert not re.search(r"Arts?\.|CPL", front)
    markers = [re.findall(r"[A-Z]+-PAGE-\d", p.extract_text()) for p in reader.pages[1:]]
    assert markers == [["SUMMONS-PAGE-1"], ["COMPLAINT-PAGE-1"], ["COMPLAINT-PAGE-2"]]
    # the reverse order of documents gives the reverse order of pages
    again = PdfReader(io.BytesIO(render(source, docs[::-1])))
    assert [p.extract_text().strip() for p in again.pages[1:]] == [
        "COMPLAINT-PAGE-1",
        "COMPLAINT-PAGE-2",
        "SUMMONS-PAGE-1",
    ]


def test_package_embeds_the_cjk_font(source: FolderDocumentSource, tmp_path: Path) -> None:
    font = cjk_font()
    assert font.embedded, "install fonts-wqy-microhei (or set DELIVERY_SDK_CJK_FONT) for the print tests"
    path = tmp_path / "p.pdf"
    path.write_bytes(render(source, documents(source)))
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:]]
    cjk = [r for r in rows if "WenQuanYi" in r[0] or "Hei" in r[0] or "Ming" in r[0] or "Kai" in r[0]]
    assert cjk, listing
    name, kind, _encoding, emb, sub, _uni = cjk[0][:6]
    assert re.match(r"[A-Z]{6}\+", name)  # a subset
    assert (kind, emb, sub) == ("TrueType", "yes", "yes")


def _page1_png(pdf: bytes, tmp_path: Path, stem: str) -> Image.Image:
    path = tmp_path / f"{stem}.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / stem)], check=True
    )
    [png] = sorted(tmp_path.glob(f"{stem}*.png"))
    return Image.open(png).convert("L")


def _word_box(pdf: bytes, tmp_path: Path, word: str) -> tuple[float, float, float, float]:
    """The bounding box (points, from the top left) of ``word`` on page 1, by ``pdftotext -bbox``."""
    path = tmp_path / "bbox.pdf"
    path.write_bytes(pdf)
    html = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for match in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html
    ):
        if match[5] == word:
            return float(match[1]), float(match[2]), float(match[3]), float(match[4])
    raise AssertionError(f"{word!r} not on page 1")


def _cells(image: Image.Image, box: tuple[float, float, float, float], count: int) -> Iterator[bytes]:
    """The pixels of the first ``count`` full-width glyph cells of the word in ``box``."""
    scale = DPI / 72
    x0, y0, _x1, y1 = box
    size = y1 - y0  # a CJK glyph is one em wide: as wide as the line is high
    for i in range(count):
        left = round((x0 + i * size) * scale)
        cell = image.crop((left, round(y0 * scale), left + round(size * scale), round(y1 * scale)))
        yield cell.tobytes()


def test_rendered_name_shows_real_glyphs_not_empty_boxes(source: FolderDocumentSource, tmp_path: Path) -> None:
    """A font without the glyphs draws the same box (or nothing) for every character: so the name's three
    glyph cells must carry ink and differ from each other, and from the same cells of a package whose name
    is three characters no font has (private use area), which is exactly what tofu looks like."""
    docs = documents(source)
    pdf = render(source, docs)
    image = _page1_png(pdf, tmp_path, "name")
    box = _word_box(pdf, tmp_path, f"{NAME}（收）")
    cells = list(_cells(image, box, 3))
    ink = [sum(255 - p for p in cell) for cell in cells]
    assert all(i > 255 * 8 for i in ink), ink  # every glyph has ink
    assert len(set(cells)) == 3  # three different shapes: a box font draws three identical boxes

    tofu_pdf = render(source, docs, name="\ue000\ue001\ue002")
    tofu = list(_cells(_page1_png(tofu_pdf, tmp_path, "tofu"), box, 3))  # the same place: same layout
    assert len(set(tofu)) <= 1  # the control: missing glyphs all look alike (this is what the check detects)
    assert not set(cells) & set(tofu)


def test_digests_are_checked_before_anything_is_printed(source: FolderDocumentSource) -> None:
    docs = documents(source)
    forged = Document(document_id="D9", title="判决书", kind=DocumentKind.JUDGMENT, sha256=docs[1].sha256)
    # the bytes under D9's digest are replaced: the file no longer hashes to it
    source.path(forged.sha256).write_bytes(marker_pdf("TAMPERED", 1))
    with pytest.raises(DocumentDigestMismatch, match=r"document D9: SHA-256 .* is not the requested .*nothing printed"):
        render(source, (docs[0], forged))
    missing = Document(document_id="D8", title="通知书", kind=DocumentKind.NOTICE, sha256="0" * 64)
    with pytest.raises(DocumentMissing, match="document D8: no file 0000"):
        render(source, (missing,))
    junk = Document(document_id="D7", title="其他", kind=DocumentKind.OTHER, sha256=source.put(b"not a pdf at all"))
    with pytest.raises(DocumentUnreadable, match="document D7: not a readable PDF"):
        render(source, (junk,))
    assert issubclass(DocumentDigestMismatch, PrintPackageError)


def test_fallback_font_warns_once_and_logs_no_personal_data(
    source: FolderDocumentSource, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fonts, "_fonts", {})
    monkeypatch.setattr(fonts, "_warned", False)
    caplog.set_level(logging.DEBUG, logger="delivery_sdk")
    missing = "/nonexistent/font.ttf"
    first = cjk_font(missing)
    assert (first.name, first.embedded) == ("STSong-Light", False)
    monkeypatch.setattr(fonts, "_fonts", {})
    cjk_font(missing)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "DELIVERY_SDK_CJK_FONT" in warnings[0].getMessage()
    pkg = render_package(
        task_id=TASK,
        dispatch_id="x",
        case=CASE,
        recipient=NAME,
        address=Contact(kind=ContactKind.POSTAL, value=ADDRESS),
        documents=documents(source),
        source=source,
        font=first,
    )
    assert NAME in PdfReader(io.BytesIO(pkg.pdf)).pages[0].extract_text()
    assert all(NAME not in r.getMessage() and ADDRESS not in r.getMessage() for r in caplog.records)


def test_renderer_in_a_process_pool_matches_in_process(source: FolderDocumentSource) -> None:
    docs = documents(source)
    bad = Document(document_id="D5", title="x", kind=DocumentKind.OTHER, sha256="1" * 64)
    requests = [
        PackageRequest(
            task_id=f"T{n}",
            dispatch_id=f"T{n}.1",
            case=CASE,
            recipient=NAME,
            address=Contact(kind=ContactKind.POSTAL, value=ADDRESS),
            documents=docs if n != 2 else (bad,),
        )
        for n in range(4)
    ]
    assert "张" not in repr(requests[0])
    local = PackageRenderer(source).render_many(requests)
    with PackageRenderer(source, workers=2) as pool:
        pooled = pool.render_many(requests)
    assert isinstance(local[2], DocumentMissing)
    assert isinstance(pooled[2], DocumentMissing)
    for a, b in zip(local, pooled, strict=True):
        if not isinstance(a, PrintPackageError):
            assert not isinstance(b, PrintPackageError)
            assert (a.sha256, a.pages) == (b.sha256, b.pages)  # invariant rendering: the same bytes anywhere
