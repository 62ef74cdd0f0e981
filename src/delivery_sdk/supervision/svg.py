"""Charts as inline SVG, drawn in Python: no JavaScript, no network, nothing to load."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "bar_chart", "hbar_chart", "stacked_bar"]

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() or value == 0 else f"{value:,.1f}"


def _nice(peak: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k (k >= 0) at or above ``peak``: round axis ticks."""
    scale = 1.0
    while True:
        for step in (1.0, 2.0, 2.5, 5.0):
            if step * scale >= peak:
                return step * scale
        scale *= 10


def _svg(name: str, width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def bar_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 560,
    height: int = 240,
) -> str:
    """Vertical grouped bars: one group per label, one bar per series."""
    left, right, top, bottom = 48, 10, 24, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice(max([v for _, values in series for v in values] + [1]))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#999"/>']
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_num(value)}</text>')
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee"/>')
    groups = max(len(labels), 1)
    group_w = plot_w / groups
    bar_w = max(1.0, group_w * 0.8 / max(len(series), 1))
    step = max(1, groups // 12)
    for g, label in enumerate(labels):
        x0 = left + g * group_w + group_w * 0.1
        for s, (sname, values) in enumerate(series):
            v = values[g]
            h = plot_h * v / peak
            body.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}" data-series="{escape(sname)}" data-label="{escape(label)}" '
                f'data-value="{v:g}"><title>{escape(sname)} {escape(label)}: {_num(v)}</title></rect>'
            )
        if g % step == 0:
            cx = left + g * group_w + group_w / 2
            body.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">{escape(label)}</text>'
            )
    for s, (sname, _) in enumerate(series):
        x = left + s * 130
        body.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>')
        body.append(f'<text x="{x + 14}" y="{height - 5}" font-size="11">{escape(sname)}</text>')
    return _svg(name, width, height, body, title)


def hbar_chart(
    name: str, title: str, rows: Sequence[tuple[str, float]], *, width: int = 560, unit: str = "", label_w: int = 170
) -> str:
    """Horizontal bars, one per row, with the value written after the bar."""
    bar_h, gap, top = 18, 6, 8
    height = top * 2 + max(len(rows), 1) * (bar_h + gap)
    plot_w = width - label_w - 70
    peak = max([v for _, v in rows] + [1])
    body = []
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = plot_w * value / peak
        body.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{PALETTE[i % len(PALETTE)]}" '
            f'data-label="{escape(label)}" data-value="{value:g}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="11">{_num(value)}{escape(unit)}</text>'
        )
    return _svg(name, width, height, body, title)


def stacked_bar(name: str, title: str, parts: Sequence[tuple[str, float]], *, width: int = 560) -> str:
    """One bar split into shares, with a legend (counts and percentages)."""
    height, left, bar_w = 70, 10, width - 20
    total = sum(v for _, v in parts) or 1
    body = []
    x = float(left)
    for i, (label, value) in enumerate(parts):
        w = bar_w * value / total
        body.append(
            f'<rect x="{x:.1f}" y="8" width="{w:.1f}" height="26" fill="{PALETTE[i % len(PALETTE)]}" '
            f'data-label="{escape(label)}" data-value="{value:g}"><title>{escape(label)}: {_num(value)}</title></rect>'
        )
        x += w
    lx = left
    for i, (label, value) in enumerate(parts):
        text = f"{label} {_num(value)} ({value / total:.1%})"
        body.append(f'<rect x="{lx}" y="46" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        body.append(f'<text x="{lx + 14}" y="55" font-size="11">{escape(text)}</text>')
        lx += 14 + 7 * len(text) + 16
    return _svg(name, width, height, body, title)
