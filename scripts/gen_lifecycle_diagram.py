#!/usr/bin/env python
"""Regenerate the lifecycle state diagram in docs/concepts.md from the transition table.

The diagram is :func:`delivery_sdk.lifecycle.mermaid`, written between the markers
``<!-- lifecycle:begin -->`` and ``<!-- lifecycle:end -->`` as a fenced ``mermaid`` block::

    python scripts/gen_lifecycle_diagram.py           # rewrite docs/concepts.md
    python scripts/gen_lifecycle_diagram.py --check   # exit 1 if the diagram is stale (CI, nox -s docs)

``tests/test_docs.py`` fails on a stale diagram too, so a change to ``lifecycle.TRANSITIONS`` cannot land
without its picture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from delivery_sdk.lifecycle import mermaid

BEGIN = "<!-- lifecycle:begin -->"
END = "<!-- lifecycle:end -->"
DEFAULT_DOC = Path(__file__).resolve().parent.parent / "docs" / "concepts.md"


def block(diagram: str) -> str:
    """The text that goes between the markers."""
    return f"\n```mermaid\n{diagram.rstrip(chr(10))}\n```\n"


def render(text: str, diagram: str) -> str:
    """``text`` with the part between the markers replaced by ``diagram``'s block."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"the document needs the markers {BEGIN} and {END}, in that order")
    return text[: start + len(BEGIN)] + block(diagram) + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("doc", nargs="?", type=Path, default=DEFAULT_DOC, help="the Markdown file to update")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the diagram is stale")
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    updated = render(text, mermaid())
    if args.check:
        if updated != text:
            print(f"{args.doc}: the lifecycle diagram is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        args.doc.write_text(updated, encoding="utf-8")
        print(f"{args.doc}: lifecycle diagram updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
