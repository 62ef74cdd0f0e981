"""The dashboard: one self-contained static HTML page (inline CSS and SVG, no script, no network), plus
JSON and CSV exports of the same numbers.

The page embeds its data as JSON (``<script type="application/json" id="supervision-data">``, never
executed) and every headline figure carries ``data-metric``/``data-value`` attributes, so a test or another
tool can read exactly what the page shows.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from .meaning import scrub
from .query import CostRates, OverdueItem, ServiceLevels, Statistics, Supervisor, TimelineEntry, _sv
from .svg import bar_chart, hbar_chart, stacked_bar

__all__ = ["render_html", "report_data", "to_csv", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:24px;color:#1a202c;
background:#f7fafc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}.sub{color:#4a5568;font-size:13px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}.kpi{background:#fff;border:1px solid #e2e8f0;
border-radius:6px;padding:8px 12px;min-width:120px}.kpi b{display:block;font-size:20px}.kpi span{font-size:12px;
color:#4a5568}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(590px,1fr));gap:14px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:12px;margin-bottom:14px}
table{border-collapse:collapse;font-size:12px;width:100%}td,th{border-bottom:1px solid #edf2f7;padding:3px 6px;
text-align:left}th{background:#edf2f7}td.n{text-align:right}details{margin:6px 0}summary{cursor:pointer}
.actor{font-weight:600}.note{font-size:12px;color:#4a5568;margin-top:6px}
"""


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _hours(h: float | None) -> str:
    if h is None:
        return "-"
    return f"{h / 24:.1f} d" if h >= 48 else f"{h:.1f} h"


def _example_tasks(sup: Supervisor, overdue: list[OverdueItem], count: int) -> list[str]:
    """Tasks whose timelines the page shows: the longest story, one of each way of service, overdue ones."""
    db = sup._db
    chosen: list[str] = []
    row = db.execute("SELECT task_id FROM tasks ORDER BY version DESC, task_id LIMIT 1").fetchone()
    if row:
        chosen.append(row[0])
    for method in ("electronic", "postal", "publication"):
        row = db.execute(
            f"SELECT task_id FROM events WHERE {_sv()} AND type = 'service.served' AND sv_key = ? LIMIT 1", (method,)
        ).fetchone()
        if row:
            chosen.append(row[0])
    chosen += [o.task_id for o in overdue]
    return list(dict.fromkeys(chosen))[:count]


def report_data(
    sup: Supervisor,
    *,
    levels: ServiceLevels | None = None,
    costs: CostRates | None = None,
    as_of: datetime | None = None,
    overdue_limit: int = 200,
    timelines: int = 6,
) -> tuple[Statistics, dict[str, Any]]:
    """The statistics and the page's whole data (statistics, overdue list, example timelines) as JSON-ready."""
    levels = levels or ServiceLevels()
    as_of = as_of or sup.latest_event_time()
    every = sup.overdue(levels=levels, as_of=as_of)
    stats = sup.statistics(levels=levels, costs=costs or CostRates(), as_of=as_of, overdue=every)
    overdue = every[:overdue_limit]
    data = stats.to_dict()
    data["service_levels"] = {
        "eservice_unconfirmed_hours": levels.eservice_unconfirmed_hours,
        "print_not_printed_hours": levels.print_not_printed_hours,
        "needs_attention": levels.needs_attention,
    }
    data["overdue_list"] = [_scrubbed(o.to_dict()) for o in overdue]
    data["timelines"] = {
        task_id: [e.to_dict() for e in sup.timeline(task_id)] for task_id in _example_tasks(sup, overdue, timelines)
    }
    return stats, data


def _scrubbed(item: dict[str, Any]) -> dict[str, Any]:
    """An overdue item with its texts through :func:`~delivery_sdk.supervision.scrub` (the timelines' meanings
    are scrubbed where they are written, in :func:`~delivery_sdk.supervision.describe`)."""
    for key in ("court", "case_number", "detail"):
        item[key] = scrub(item[key])
    return item


def _kpi(metric: str, value: float, label: str, shown: str) -> str:
    return (
        f'<div class="kpi" data-metric="{metric}" data-value="{value:g}"><b>{escape(shown)}</b>'
        f"<span>{escape(label)}</span></div>"
    )


def _timeline_svg(task_id: str, entries: list[TimelineEntry]) -> str:
    """A horizontal time axis with one dot per event, coloured by actor."""
    colours = {"court": "#718096", "engine": "#2b6cb0", "provider": "#dd6b20", "staff": "#38a169"}
    width, height, left, right = 560, 56, 14, 14
    start, end = entries[0].at, entries[-1].at
    span = max((end - start).total_seconds(), 1.0)
    body = [f'<line x1="{left}" y1="24" x2="{width - right}" y2="24" stroke="#a0aec0"/>']
    for e in entries:
        x = left + (width - left - right) * (e.at - start).total_seconds() / span
        body.append(
            f'<circle cx="{x:.1f}" cy="24" r="5" fill="{colours.get(e.actor, "#000")}" data-type="{escape(e.type)}">'
            f"<title>{e.at:%Y-%m-%d %H:%M} {escape(e.type)} ({e.actor})</title></circle>"
        )
    body.append(f'<text x="{left}" y="48" font-size="10">{start:%Y-%m-%d %H:%M}</text>')
    body.append(f'<text x="{width - right}" y="48" font-size="10" text-anchor="end">{end:%Y-%m-%d %H:%M}</text>')
    return (
        f'<svg class="chart" data-chart="timeline" data-task="{escape(task_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">' + "".join(body) + "</svg>"
    )


def render_html(sup: Supervisor, stats: Statistics, data: dict[str, Any], *, title: str | None = None) -> str:
    """The dashboard page for ``data`` (from :func:`report_data`)."""
    title = title or "Service supervision dashboard"
    s = stats
    kpis = "".join(
        [
            _kpi("tasks", s.tasks, "service tasks", f"{s.tasks:,}"),
            _kpi("served", s.served, "served", f"{s.served:,}"),
            _kpi("filed", s.filed, "proof filed", f"{s.filed:,}"),
            _kpi("electronic_share", round(s.electronic_share, 6), "served electronically", _pct(s.electronic_share)),
            _kpi("fallback_rate", round(s.fallback_rate, 6), "fell back to post", _pct(s.fallback_rate)),
            _kpi(
                "cycle_median_hours",
                s.cycle_served.median_hours or 0,
                "median created to served",
                _hours(s.cycle_served.median_hours),
            ),
            _kpi(
                "cycle_mean_hours",
                s.cycle_served.mean_hours or 0,
                "mean created to served",
                _hours(s.cycle_served.mean_hours),
            ),
            _kpi(
                "savings_yuan",
                round(s.cost["savings_yuan"], 2),
                "saved vs all-postal (yuan)",
                f"{s.cost['savings_yuan']:,.0f}",
            ),
            _kpi("overdue", sum(s.overdue.values()), "overdue now", f"{sum(s.overdue.values()):,}"),
        ]
    )
    days = [d for d, _, _ in s.volume]
    volume = bar_chart(
        "volume",
        "Tasks created and served per day",
        [d[5:] for d in days],
        [("created", [c for _, c, _ in s.volume]), ("served", [v for _, _, v in s.volume])],
    )
    mix = stacked_bar("method-mix", "How tasks were served", sorted(s.by_method.items(), key=lambda kv: -kv[1]))
    funnel = hbar_chart("funnel", "From electronic service to post to publication", list(s.funnel), label_w=190)
    hist = bar_chart(
        "cycle-histogram",
        "Created to served (hours)",
        [label for label, _ in s.cycle_served.histogram],
        [("created to served", [n for _, n in s.cycle_served.histogram])],
    )
    filed_hist = bar_chart(
        "filing-histogram",
        "Served to filed (hours)",
        [label for label, _ in s.cycle_filed.histogram],
        [("served to filed", [n for _, n in s.cycle_filed.histogram])],
        height=200,
    )
    centres = hbar_chart("centre-load", "Print jobs per print centre", [(c.centre_id, c.jobs) for c in s.centres])
    channels = hbar_chart(
        "channel-success",
        "Success rate per channel (%)",
        [(f"{c.kind} {c.channel}", round(100 * c.success_rate, 1)) for c in s.channels],
        unit="%",
        label_w=200,
    )
    channel_rows = "".join(
        f"<tr><td>{escape(c.kind)}</td><td>{escape(c.channel)}</td><td class=n>{c.dispatches:,}</td>"
        f"<td class=n>{c.attempts:,}</td><td class=n>{c.delivered:,}</td><td class=n>{_pct(c.success_rate)}</td></tr>"
        for c in s.channels
    )
    centre_rows = "".join(
        f"<tr><td>{escape(c.centre_id)}</td><td class=n>{c.jobs:,}</td><td class=n>{c.printed:,}</td>"
        f"<td class=n>{c.mailed:,}</td><td class=n>{c.signed:,}</td><td class=n>{c.returned:,}</td>"
        f"<td class=n>{c.open:,}</td></tr>"
        for c in s.centres
    )
    overdue_rows = (
        "".join(
            f'<tr data-task="{escape(o["task_id"])}"><td>{escape(o["task_id"])}</td><td>{escape(o["court"])}</td>'
            f"<td>{escape(o['case_number'])}</td><td>{escape(o['rule'])}</td><td>{escape(o['since'][:16])}</td>"
            f"<td class=n>{_hours(o['hours'])}</td><td>{escape(o['detail'])}</td></tr>"
            for o in data["overdue_list"]
        )
        or '<tr><td colspan="7">nothing is overdue</td></tr>'
    )
    lv = data["service_levels"]
    cost_rows = "".join(
        f"<tr><td>{escape(k.replace('_', ' '))}</td><td class=n>{v:,.2f}</td></tr>" for k, v in s.cost.items()
    )
    timelines = []
    for task_id, entries in data["timelines"].items():
        objs = sup.timeline(task_id)
        rows = "".join(
            f"<tr><td>{e['task_seq']}</td><td>{escape(e['at'][:16].replace('T', ' '))}</td>"
            f"<td>{escape(e['type'])}</td><td class=actor>{escape(e['actor'])}</td><td>{escape(e['meaning'])}</td></tr>"
            for e in entries
        )
        timelines.append(
            f'<details data-task="{escape(task_id)}"><summary>{escape(task_id)}: {len(entries)} events, '
            f"{escape(entries[-1]['type'])}</summary>{_timeline_svg(task_id, objs)}"
            f"<table><tr><th>#</th><th>time (UTC)</th><th>event</th><th>actor</th><th>legal meaning</th></tr>{rows}"
            "</table></details>"
        )
    blob = json.dumps(data, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<div class="sub">store {escape(scrub(sup.path.name))} &middot; as of {s.as_of:%Y-%m-%d %H:%M %Z}</div>
<div class="kpis">{kpis}</div>
<div class="grid">
<section id="volume"><h2>Volume over time</h2>{volume}</section>
<section id="method-mix"><h2>Method mix</h2>{mix}
<div class="note">Served tasks by the way service took effect.</div></section>
<section id="funnel"><h2>Funnel: electronic, post, publication</h2>{funnel}</section>
<section id="cycle"><h2>Cycle time</h2>{hist}{filed_hist}
<div class="note">median {_hours(s.cycle_served.median_hours)}, p90 {_hours(s.cycle_served.p90_hours)},
mean {_hours(s.cycle_served.mean_hours)}; served to filed median {_hours(s.cycle_filed.median_hours)}</div></section>
<section id="centres"><h2>Load per print centre</h2>{centres}
<table><tr><th>centre</th><th>jobs</th><th>printed</th><th>mailed</th><th>signed</th><th>returned</th>
<th>not printed</th></tr>{centre_rows}</table></section>
<section id="channels"><h2>Success per channel</h2>{channels}
<table><tr><th>kind</th><th>channel</th><th>dispatches</th><th>answered</th><th>delivered</th><th>success</th></tr>
{channel_rows}</table></section>
<section id="cost"><h2>Cost and savings</h2><table>{cost_rows}</table>
<div class="note">Baseline: every served task by post at the postal unit cost.</div></section>
</div>
<section id="overdue"><h2>Overdue work</h2>
<div class="note">e-service unconfirmed after {lv["eservice_unconfirmed_hours"]:g} h; print job not printed after
{lv["print_not_printed_hours"]:g} h; tasks needing attention.</div>
<table><tr><th>task</th><th>court</th><th>case</th><th>rule</th><th>since (UTC)</th><th>waiting</th><th>detail</th></tr>
{overdue_rows}</table></section>
<section id="timelines"><h2>Task timelines</h2>{"".join(timelines)}</section>
<script type="application/json" id="supervision-data">{blob}</script>
</body></html>
"""


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out.append((prefix, "" if value is None else str(value)))


def to_csv(data: dict[str, Any]) -> str:
    """The page's data as ``metric,value`` rows (nested keys joined with dots)."""
    rows: list[tuple[str, str]] = []
    _flatten("", {k: v for k, v in data.items() if k != "timelines"}, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("metric", "value"))
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(
    store: str | Path,
    out: str | Path,
    *,
    json_path: str | Path | None = None,
    csv_path: str | Path | None = None,
    levels: ServiceLevels | None = None,
    costs: CostRates | None = None,
    as_of: datetime | None = None,
    upgrade: bool = True,
) -> Statistics:
    """Write the dashboard for ``store`` to ``out`` (and the JSON/CSV exports); returns its statistics.

    ``upgrade`` is :class:`Supervisor`'s: ``False`` never writes to the store (the ``report`` command).
    """
    with Supervisor(store, upgrade=upgrade) as sup:
        stats, data = report_data(sup, levels=levels, costs=costs, as_of=as_of)
        Path(out).write_text(render_html(sup, stats, data), encoding="utf-8")
    if json_path is not None:
        Path(json_path).write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    if csv_path is not None:
        Path(csv_path).write_text(to_csv(data), encoding="utf-8")
    return stats
