"""MkDocs hook: links from a page to files outside ``docs/`` (a plugin's README, a source file).

The site holds only ``docs/``, so such a link has no page to go to; it becomes the link text followed by the
file's path in the repository. tests/test_docs.py checks that each of these files exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_LINK = re.compile(r"\[([^\]]+)\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite the links of ``page`` that leave ``docs/`` into plain text naming the repository path."""
    docs = Path(config["docs_dir"]).resolve()
    here = (docs / page.file.src_path).parent

    def rewrite(match: re.Match[str]) -> str:
        target = (here / match.group(2)).resolve()
        if target.is_relative_to(docs):
            return match.group(0)
        return f"{match.group(1)} (`{target.relative_to(docs.parent)}` in the repository)"

    return _LINK.sub(rewrite, markdown)
