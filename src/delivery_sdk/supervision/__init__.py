"""Supervision: live status, statistics and a static dashboard over a SQLite store.

::

    from delivery_sdk.supervision import Supervisor, ServiceLevels, write_report

    with Supervisor("centre.sqlite3") as sup:          # opened read-only
        stats = sup.statistics(levels=ServiceLevels(eservice_unconfirmed_hours=24))
        late = sup.overdue()
        story = sup.timeline(late[0].task_id) if late else []
    write_report("centre.sqlite3", "report.html", json_path="report.json", csv_path="report.csv")
"""

from .meaning import actor_of, describe, scrub
from .query import (
    CYCLE_BUCKETS_HOURS,
    CentreLoad,
    ChannelRow,
    CostRates,
    CourtRow,
    Distribution,
    OverdueItem,
    Scope,
    ServiceLevels,
    Statistics,
    Supervisor,
    TaskRow,
    TimelineEntry,
)
from .report import render_html, report_data, to_csv, write_report

__all__ = [
    "CYCLE_BUCKETS_HOURS",
    "CentreLoad",
    "ChannelRow",
    "CostRates",
    "CourtRow",
    "Distribution",
    "OverdueItem",
    "Scope",
    "ServiceLevels",
    "Statistics",
    "Supervisor",
    "TaskRow",
    "TimelineEntry",
    "actor_of",
    "describe",
    "render_html",
    "report_data",
    "scrub",
    "to_csv",
    "write_report",
]
