"""The dashboard: one self-contained static HTML page (inline CSS and SVG, no script, no network), plus
JSON and CSV exports of the same numbers.

The page embeds its data as JSON (``<script type="application/json" id="supervision-data">``, never
executed) and every headline figure carries ``data-metric``/``data-value`` attributes, so a test or another
tool can read exactly what the page shows.

The page speaks Chinese by default (``lang="en"`` for English): every label comes from the message catalogue
(:mod:`delivery_sdk.locale`), every time is shown in Beijing time, print centres and channels by their names.
The embedded data and the exports keep their English keys and UTC times with offsets.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from ..access import Actor
from ..locale import beijing, catalogue, centre_name, channel_name, label
from .meaning import scrub
from .query import CostRates, OverdueItem, Scope, ServiceLevels, Statistics, Supervisor, TimelineEntry, _sv
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
.court td:first-child{white-space:nowrap}
"""


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _hours(h: float | None, lang: str | None = None) -> str:
    """A duration for a person: hours below two days, days above (``3.5 小时``, ``2.1 天``)."""
    if h is None:
        return "-"
    if h >= 48:
        return catalogue(lang)("unit.days", n=f"{h / 24:.1f}")
    return catalogue(lang)("unit.hours", n=f"{h:.1f}")


def _example_tasks(sup: Supervisor, overdue: list[OverdueItem], count: int, court: str | None = None) -> list[str]:
    """Tasks whose timelines the page shows: the longest story, one of each way of service, overdue ones."""
    db = sup._db
    where, params = "", list[Any]()
    if court is not None or sup._codes is not None:  # the court asked for, within the actor's courts
        cond, params = sup._task_filter(court=court)
        where = f" AND task_id IN (SELECT task_id FROM tasks t WHERE {cond})"
    chosen: list[str] = []
    longest = f"SELECT task_id FROM tasks WHERE 1{where} ORDER BY version DESC, task_id LIMIT 1"
    row = db.execute(longest, params).fetchone()
    if row:
        chosen.append(row[0])
    for method in ("electronic", "postal", "publication"):
        row = db.execute(
            f"SELECT task_id FROM events WHERE {_sv()} AND type = 'service.served' AND sv_key = ?{where} LIMIT 1",
            (method, *params),
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
    court: str | None = None,
) -> tuple[Statistics, dict[str, Any]]:
    """The statistics and the page's whole data (statistics, overdue list, example timelines) as JSON-ready;
    ``court`` narrows every figure to one court (default: the whole province, with a row per court)."""
    levels = levels or ServiceLevels()
    as_of = as_of or sup.latest_event_time()
    scope = Scope(court=court)
    every = sup.overdue(levels=levels, as_of=as_of, scope=scope)
    stats = sup.statistics(scope=scope, levels=levels, costs=costs or CostRates(), as_of=as_of, overdue=every)
    overdue = every[:overdue_limit]
    data = stats.to_dict()
    data["service_levels"] = {
        "eservice_unconfirmed_hours": levels.eservice_unconfirmed_hours,
        "print_not_printed_hours": levels.print_not_printed_hours,
        "needs_attention": levels.needs_attention,
    }
    data["overdue_list"] = [_scrubbed(o.to_dict()) for o in overdue]
    # who looked at personal data, per court, and staff who read far more tasks than their peers (docs/access.md)
    data["access"] = {"per_court": sup.access_volume(), "unusual": sup.unusual_readers()}
    data["timelines"] = {
        task_id: [e.to_dict() for e in sup.timeline(task_id)]
        for task_id in _example_tasks(sup, overdue, timelines, court)
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


def _timeline_svg(task_id: str, entries: list[TimelineEntry], lang: str | None = None) -> str:
    """A horizontal time axis with one dot per event, coloured by actor (times in Beijing time)."""
    colours = {"court": "#718096", "engine": "#2b6cb0", "provider": "#dd6b20", "staff": "#38a169"}
    width, height, left, right = 560, 56, 14, 14
    start, end = entries[0].at, entries[-1].at
    span = max((end - start).total_seconds(), 1.0)
    body = [f'<line x1="{left}" y1="24" x2="{width - right}" y2="24" stroke="#a0aec0"/>']
    for e in entries:
        x = left + (width - left - right) * (e.at - start).total_seconds() / span
        body.append(
            f'<circle cx="{x:.1f}" cy="24" r="5" fill="{colours.get(e.actor, "#000")}" data-type="{escape(e.type)}">'
            f"<title>{escape(beijing(e.at, lang))} {escape(label('event', e.type, lang))} "
            f"({escape(label('actor', e.actor, lang))})</title>"
            "</circle>"
        )
    body.append(f'<text x="{left}" y="48" font-size="10">{escape(beijing(start, lang))}</text>')
    body.append(
        f'<text x="{width - right}" y="48" font-size="10" text-anchor="end">{escape(beijing(end, lang))}</text>'
    )
    return (
        f'<svg class="chart" data-chart="timeline" data-task="{escape(task_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">' + "".join(body) + "</svg>"
    )


def _th(*keys: str, lang: str | None) -> str:
    m = catalogue(lang)
    return "<tr>" + "".join(f"<th>{escape(m(k))}</th>" if k != "#" else "<th>#</th>" for k in keys) + "</tr>"


def _bucket(text: str, lang: str) -> str:
    """A histogram bucket (``1d-2d``) with its units in ``lang``."""
    return text if lang == "en" else text.replace("d", "天").replace("h", "小时")


def _funnel_key(stage: str) -> str:
    return stage.replace(" ", "_")


def render_html(
    sup: Supervisor, stats: Statistics, data: dict[str, Any], *, title: str | None = None, lang: str | None = None
) -> str:
    """The dashboard page for ``data`` (from :func:`report_data`), in ``lang`` (Chinese by default)."""
    m = catalogue(lang)
    lang = m.lang
    title = title or m("dash.title")
    s = stats

    def h(value: float | None) -> str:
        return _hours(value, lang)

    kpis = "".join(
        [
            _kpi("tasks", s.tasks, m("kpi.tasks"), f"{s.tasks:,}"),
            _kpi("served", s.served, m("kpi.served"), f"{s.served:,}"),
            _kpi("filed", s.filed, m("kpi.filed"), f"{s.filed:,}"),
            _kpi("electronic_share", round(s.electronic_share, 6), m("kpi.electronic_share"), _pct(s.electronic_share)),
            _kpi("fallback_rate", round(s.fallback_rate, 6), m("kpi.fallback_rate"), _pct(s.fallback_rate)),
            _kpi(
                "cycle_median_hours",
                s.cycle_served.median_hours or 0,
                m("kpi.cycle_median"),
                h(s.cycle_served.median_hours),
            ),
            _kpi("cycle_mean_hours", s.cycle_served.mean_hours or 0, m("kpi.cycle_mean"), h(s.cycle_served.mean_hours)),
            _kpi(
                "savings_yuan",
                round(s.cost["savings_yuan"], 2),
                m("kpi.savings"),
                f"{s.cost['savings_yuan']:,.0f}",
            ),
            _kpi("overdue", sum(s.overdue.values()), m("kpi.overdue"), f"{sum(s.overdue.values()):,}"),
        ]
    )
    days = [d for d, _, _ in s.volume]
    volume = bar_chart(
        "volume",
        m("chart.volume"),
        [d[5:] for d in days],
        [(m("series.created"), [c for _, c, _ in s.volume]), (m("series.served"), [v for _, _, v in s.volume])],
    )
    mix = stacked_bar(
        "method-mix",
        m("chart.method_mix"),
        [(label("method", k, lang), v) for k, v in sorted(s.by_method.items(), key=lambda kv: -kv[1])],
    )
    funnel = hbar_chart(
        "funnel",
        m("chart.funnel"),
        [(label("funnel", _funnel_key(stage), lang), n) for stage, n in s.funnel],
        label_w=190,
    )
    hist = bar_chart(
        "cycle-histogram",
        m("chart.cycle"),
        [_bucket(b, lang) for b, _ in s.cycle_served.histogram],
        [(m("series.cycle"), [n for _, n in s.cycle_served.histogram])],
    )
    filed_hist = bar_chart(
        "filing-histogram",
        m("chart.filing"),
        [_bucket(b, lang) for b, _ in s.cycle_filed.histogram],
        [(m("series.filing"), [n for _, n in s.cycle_filed.histogram])],
        height=200,
    )
    centres = hbar_chart(
        "centre-load",
        m("chart.centre_load"),
        [(centre_name(c.centre_id, code=False), c.jobs) for c in s.centres],
        label_w=240,
    )
    channels = hbar_chart(
        "channel-success",
        m("chart.channel_success"),
        [
            (
                centre_name(c.channel, code=False) if c.kind == "print" else channel_name(c.kind, c.channel, lang),
                round(100 * c.success_rate, 1),
            )
            for c in s.channels
        ],
        unit="%",
        label_w=230,
    )
    channel_rows = "".join(
        f'<tr data-channel="{escape(c.channel)}"><td>{escape(label("kind", c.kind, lang))}</td>'
        f"<td>{escape(channel_name(c.kind, c.channel, lang))}</td><td class=n>{c.dispatches:,}</td>"
        f"<td class=n>{c.attempts:,}</td><td class=n>{c.delivered:,}</td><td class=n>{_pct(c.success_rate)}</td></tr>"
        for c in s.channels
    )
    centre_rows = "".join(
        f'<tr data-centre="{escape(c.centre_id)}"><td>{escape(centre_name(c.centre_id))}</td>'
        f"<td class=n>{c.jobs:,}</td><td class=n>{c.printed:,}</td>"
        f"<td class=n>{c.mailed:,}</td><td class=n>{c.signed:,}</td><td class=n>{c.returned:,}</td>"
        f"<td class=n>{c.open:,}</td></tr>"
        for c in s.centres
    )
    court_rows = "".join(
        f'<tr data-court="{escape(scrub(c.court))}"><td>{escape(scrub(c.court))}</td><td class=n>{c.tasks:,}</td>'
        f"<td class=n>{c.served:,}</td><td class=n>{_pct(c.electronic_share)}</td>"
        f"<td class=n>{h(c.median_hours)}</td><td class=n>{c.open:,}</td><td class=n>{c.overdue:,}</td></tr>"
        for c in s.courts
    )
    overdue_rows = (
        "".join(
            f'<tr data-task="{escape(o["task_id"])}" data-rule="{escape(o["rule"])}"><td>{escape(o["task_id"])}</td>'
            f"<td>{escape(o['court'])}</td><td>{escape(o['case_number'])}</td>"
            f"<td>{escape(label('rule', o['rule'], lang))}</td>"
            f"<td>{escape(beijing(datetime.fromisoformat(o['since']), lang, zone=False))}</td>"
            f"<td class=n>{h(o['hours'])}</td><td>{escape(o['detail'])}</td></tr>"
            for o in data["overdue_list"]
        )
        or f'<tr><td colspan="7">{escape(m("overdue.none"))}</td></tr>'
    )
    lv = data["service_levels"]
    cost_rows = "".join(
        f'<tr data-cost="{escape(k)}"><td>{escape(label("cost", k, lang))}</td><td class=n>{v:,.2f}</td></tr>'
        for k, v in s.cost.items()
    )
    timelines = []
    for task_id, entries in data["timelines"].items():
        objs = sup.timeline(task_id)
        rows = "".join(
            f"<tr><td>{e['task_seq']}</td><td>{escape(beijing(datetime.fromisoformat(e['at']), lang, zone=False))}"
            f'</td><td data-type="{escape(e["type"])}">{escape(label("event", e["type"], lang))}</td>'
            f"<td class=actor>{escape(label('actor', e['actor'], lang))}</td>"
            f"<td>{escape(e['meaning'])}</td></tr>"
            for e in entries
        )
        summary = m("timeline.summary", task=task_id, n=len(entries), last=label("event", entries[-1]["type"], lang))
        timelines.append(
            f'<details data-task="{escape(task_id)}"><summary>{escape(summary)}</summary>'
            f"{_timeline_svg(task_id, objs, lang)}"
            f"<table>{_th('#', 'col.time', 'col.event', 'col.actor', 'col.meaning', lang=lang)}{rows}</table></details>"
        )
    scope = scrub(s.court) if s.court else m("dash.province")
    courts_head = _th(
        *("col.court", "col.tasks", "col.served", "col.electronic_share", "col.median", "col.open", "col.overdue"),
        lang=lang,
    )
    cycle_note = m(
        "note.cycle",
        median=h(s.cycle_served.median_hours),
        p90=h(s.cycle_served.p90_hours),
        mean=h(s.cycle_served.mean_hours),
        filed=h(s.cycle_filed.median_hours),
    )
    overdue_note = m("note.overdue", e=f"{lv['eservice_unconfirmed_hours']:g}", p=f"{lv['print_not_printed_hours']:g}")
    access_rows = "".join(
        f'<tr data-court="{escape(a["court"])}"><td>{escape(a["court"] or "-")}</td><td>{a["reads"]:,}</td>'
        f"<td>{a['tasks']:,}</td><td>{a['staff']:,}</td></tr>"
        for a in data.get("access", {}).get("per_court", [])
    )
    unusual = "".join(
        f'<li data-staff="{escape(u["staff_id"])}">'
        + escape(
            m(
                "dash.access_unusual_line",
                staff=u["staff_id"],
                role=label("role", u["role"], lang),
                n=f"{u['tasks']:,}",
                median=f"{u['peer_median']:g}",
            )
        )
        + "</li>"
        for u in data.get("access", {}).get("unusual", [])
    )
    access_section = (
        f'<section id="access"><h2>{escape(m("dash.access"))}</h2>'
        f"<table>{_th('col.court', 'col.reads', 'col.tasks', 'col.readers', lang=lang)}{access_rows}</table>"
        + (
            f'<div class="note">{escape(m("dash.access_unusual"))}</div><ul class="unusual">{unusual}</ul>'
            if unusual
            else ""
        )
        + "</section>"
    )
    blob = json.dumps(data, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    html_lang = "zh-CN" if lang == "zh_CN" else "en"
    return f"""<!DOCTYPE html>
<html lang="{html_lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<div class="sub">{escape(m("dash.scope"))} <span data-scope="{escape(s.court or "")}">{escape(scope)}</span> &middot;
{escape(m("dash.store"))} {escape(scrub(sup.path.name))} &middot;
{escape(m("dash.as_of"))} <span data-as-of="{s.as_of.isoformat()}">{escape(beijing(s.as_of, lang))}</span></div>
<div class="kpis">{kpis}</div>
<section id="courts" class="court"><h2>{escape(m("section.courts"))}</h2>
<table>{courts_head}
{court_rows}</table><div class="note">{escape(m("note.courts"))}</div></section>
<div class="grid">
<section id="volume"><h2>{escape(m("section.volume"))}</h2>{volume}</section>
<section id="method-mix"><h2>{escape(m("section.method_mix"))}</h2>{mix}
<div class="note">{escape(m("note.method_mix"))}</div></section>
<section id="funnel"><h2>{escape(m("section.funnel"))}</h2>{funnel}</section>
<section id="cycle"><h2>{escape(m("section.cycle"))}</h2>{hist}{filed_hist}
<div class="note">{escape(cycle_note)}</div></section>
<section id="centres"><h2>{escape(m("section.centres"))}</h2>{centres}
<table>{
        _th(
            "col.centre",
            "col.jobs",
            "col.printed",
            "col.mailed",
            "col.signed",
            "col.returned",
            "col.not_printed",
            lang=lang,
        )
    }{centre_rows}</table></section>
<section id="channels"><h2>{escape(m("section.channels"))}</h2>{channels}
<table>{_th("col.kind", "col.channel", "col.dispatches", "col.answered", "col.delivered", "col.success", lang=lang)}
{channel_rows}</table></section>
<section id="cost"><h2>{escape(m("section.cost"))}</h2><table>{cost_rows}</table>
<div class="note">{escape(m("note.cost"))}</div></section>
</div>
<section id="overdue"><h2>{escape(m("section.overdue"))}</h2>
<div class="note">{escape(overdue_note)}</div>
<table>{_th("col.task", "col.court", "col.case", "col.rule", "col.since", "col.waiting", "col.detail", lang=lang)}
{overdue_rows}</table></section>
<section id="timelines"><h2>{escape(m("section.timelines"))}</h2>{"".join(timelines)}</section>
{access_section}
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
    court: str | None = None,
    actor: Actor | None = None,
    lang: str | None = None,
) -> Statistics:
    """Write the dashboard for ``store`` to ``out`` (and the JSON/CSV exports); returns its statistics.

    ``upgrade`` is :class:`Supervisor`'s: ``False`` never writes to the store (the ``report`` command).
    ``court`` narrows the page to one court (default: the province, with its table of courts); ``lang`` is
    the page's language, ``zh_CN`` (the default) or ``en``: the exports' keys are English either way.
    """
    with Supervisor(store, upgrade=upgrade, lang=lang, actor=actor) as sup:
        stats, data = report_data(sup, levels=levels, costs=costs, as_of=as_of, court=court)
        Path(out).write_text(render_html(sup, stats, data, lang=lang), encoding="utf-8")
    if json_path is not None:
        Path(json_path).write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    if csv_path is not None:
        Path(csv_path).write_text(to_csv(data), encoding="utf-8")
    return stats
