"""The CJK TrueType font the SDK's PDFs embed (the proof of service, print packages).

A font is found through, in order: an explicit path; the environment variable ``DELIVERY_SDK_CJK_FONT``
(a .ttf/.ttc path); the usual system paths (Debian's fonts-wqy-microhei first, then fonts-wqy-zenhei,
fonts-arphic-uming/ukai, macOS and Windows fonts). reportlab embeds only TrueType outlines, so Noto CJK
(CFF-based) is tried but will not register. The font is subset-embedded: the PDF shows the same glyphs in
every reader, which a court archive needs.

- :func:`embedded_cjk_font` raises :class:`CJKFontMissing` when no font can be embedded (the proof of
  service: an archived document must not depend on the reader's fonts);
- :func:`cjk_font` falls back to reportlab's non-embedded CID font ``STSong-Light`` with one warning per
  process (print packages: the print centre's reader supplies it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading

import attrs

from ._exceptions import DeliveryError

__all__ = [
    "FALLBACK_FONT",
    "FONT_CANDIDATES",
    "FONT_ENV",
    "CJKFontMissing",
    "FontChoice",
    "cjk_font",
    "embedded_cjk_font",
]

log = logging.getLogger("delivery_sdk.fonts")

FONT_ENV = "DELIVERY_SDK_CJK_FONT"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)
FALLBACK_FONT = "STSong-Light"


class CJKFontMissing(DeliveryError):
    """No CJK TrueType font could be embedded: install one (Debian/Ubuntu: ``apt-get install
    fonts-wqy-microhei``) or point ``DELIVERY_SDK_CJK_FONT`` at a .ttf/.ttc file with TrueType outlines."""


@attrs.frozen
class FontChoice:
    name: str  # the reportlab font name
    path: str | None  # the embedded font file; None for the non-embedded CID fallback

    @property
    def embedded(self) -> bool:
        return self.path is not None


_font_lock = threading.Lock()
_fonts: dict[str | None, FontChoice | None] = {}  # wanted path -> the embeddable font found (None: none)
_warned = False


def _register_ttf(path: str) -> str | None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    name = "DeliveryCJK-" + hashlib.sha256(path.encode()).hexdigest()[:8]
    if name in pdfmetrics.getRegisteredFontNames():
        return name
    try:
        pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
    except (TTFError, OSError, ValueError, KeyError) as exc:
        log.debug("font %s cannot be embedded: %s", path, type(exc).__name__)
        return None
    return name


def _find(path: str | None) -> tuple[str | None, FontChoice | None]:
    wanted = path or os.environ.get(FONT_ENV) or None
    with _font_lock:
        if wanted in _fonts:
            cached = _fonts[wanted]
            if cached is None or cached.path is None or _register_ttf(cached.path) == cached.name:
                return wanted, cached  # (registered again if reportlab was re-imported since)
        candidates = [wanted] if wanted else [p for p in FONT_CANDIDATES if os.path.exists(p)]
        choice: FontChoice | None = None
        for candidate in candidates:
            name = _register_ttf(candidate) if candidate and os.path.exists(candidate) else None
            if name is not None:
                choice = FontChoice(name, candidate)
                break
        _fonts[wanted] = choice
        return wanted, choice


def embedded_cjk_font(path: str | None = None) -> FontChoice:
    """The CJK TrueType font to embed: ``path``, else ``$DELIVERY_SDK_CJK_FONT``, else a system font.

    Raises :class:`CJKFontMissing` (saying what to install) when none can be embedded."""
    wanted, choice = _find(path)
    if choice is None:
        where = f"{wanted!r} is not a TrueType font reportlab can embed" if wanted else "none in the usual paths"
        raise CJKFontMissing(
            f"no embeddable CJK TrueType font: {where}. Install one (Debian/Ubuntu: apt-get install "
            f"fonts-wqy-microhei) or set {FONT_ENV} to a .ttf/.ttc file with TrueType outlines"
        )
    return choice


def cjk_font(path: str | None = None) -> FontChoice:
    """:func:`embedded_cjk_font`, else the non-embedded CID font ``STSong-Light`` (one warning per process)."""
    global _warned
    _wanted, choice = _find(path)
    if choice is not None:
        return choice
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    with _font_lock:
        if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
        if not _warned:
            _warned = True
            log.warning(
                "no embeddable CJK TrueType font found (set %s or install fonts-wqy-microhei); print packages "
                "use the non-embedded CID font %s, which the printer's PDF reader must supply",
                FONT_ENV,
                FALLBACK_FONT,
            )
    return FontChoice(FALLBACK_FONT, None)
