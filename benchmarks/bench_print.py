"""Print packages rendered per second for a 3-page document set, beside the raw limit.

Each package is the front page (address block, QR code of the task id, 送达回证 with a subset-embedded CJK
TrueType font) followed by a 3-page document set (a 1-page summons and a 2-page complaint), both inputs'
SHA-256 checked, merged with pypdf. Measured in this process and with a process pool of one worker per
core (``PackageRenderer(workers=...)``: rendering is CPU-bound). The raw limit is the pypdf merge alone
(the same 3 input pages into one PDF, no front page, no digest check). Results go to
benchmarks/results/print.json.

    python benchmarks/bench_print.py [--packages 300] [--workers N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen.canvas import Canvas

from delivery_sdk.model import Case, Contact, ContactKind, Document, DocumentKind
from delivery_sdk.printing.package import FolderDocumentSource, PackageRenderer, PackageRequest, cjk_font

RESULTS = Path(__file__).parent / "results"
FLOOR = 50.0


def _pdf(marker: str, pages: int) -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out, invariant=True)
    for i in range(1, pages + 1):
        canvas.setFont("Helvetica", 12)
        for line in range(40):
            canvas.drawString(72, 760 - line * 16, f"{marker} page {i} line {line}: lorem ipsum dolor sit amet")
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _requests(source: FolderDocumentSource, count: int) -> list[PackageRequest]:
    documents = (
        Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=source.put(_pdf("SUMMONS", 1))),
        Document(
            document_id="D2", title="起诉状副本", kind=DocumentKind.COMPLAINT, sha256=source.put(_pdf("COMPLAINT", 2))
        ),
    )
    case = Case(court="武汉市武昌区人民法院", case_number="(2026)鄂0106民初1234号")
    return [
        PackageRequest(
            task_id=f"T{n:06d}",
            dispatch_id=f"T{n:06d}.3",
            case=case,
            recipient="张三丰",
            address=Contact(kind=ContactKind.POSTAL, value=f"湖北省武汉市武昌区中北路{n}号", division_code="420106"),
            documents=documents,
        )
        for n in range(count)
    ]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    font = cjk_font()
    with tempfile.TemporaryDirectory() as folder:
        source = FolderDocumentSource(folder)
        requests = _requests(source, args.packages)
        renderer = PackageRenderer(source)
        renderer.render_many(requests[:5])  # warm up: font parsing, imports
        start = time.perf_counter()
        packages = renderer.render_many(requests)
        single = time.perf_counter() - start
        pages = {getattr(p, "pages", 0) for p in packages}
        with PackageRenderer(source, workers=args.workers) as pool:
            pool.render_many(requests[: args.workers * 2])  # start the workers
            start = time.perf_counter()
            pool.render_many(requests)
            pooled = time.perf_counter() - start
        inputs = [source.fetch(d) for d in requests[0].documents]
        start = time.perf_counter()
        for _ in range(args.packages):
            writer = PdfWriter()
            for data in inputs:
                writer.append(PdfReader(io.BytesIO(data)))
            writer.write(io.BytesIO())
        raw = time.perf_counter() - start
    result = {
        "benchmark": "print packages (front page + 3-page document set)",
        "packages": args.packages,
        "pages_per_package": sorted(pages),
        "font": {"name": font.name, "embedded": font.embedded, "path": font.path},
        "packages_per_s": round(_rate(args.packages, single), 1),
        "workers": args.workers,
        "packages_per_s_pool": round(_rate(args.packages, pooled), 1),
        "raw_merge_per_s": round(_rate(args.packages, raw), 1),
        "ratio_to_raw": round(raw / single, 3),
        "ratio_pool_to_raw": round(raw / pooled, 3),
        "floor_per_s": FLOOR,
        "meets_floor": max(_rate(args.packages, single), _rate(args.packages, pooled)) >= FLOOR,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "print.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
