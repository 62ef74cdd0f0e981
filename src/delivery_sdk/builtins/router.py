"""The default print-centre router: by the address's division code, failing over to a neighbour.

The home centre is the one whose route keys hold the address's route key. It is skipped when it is down,
when it already refused this job (``job.exclude``) or when it is full: ``routed_today`` (jobs routed to
it on this Beijing day, counted from the store's ``print.routed`` events by the engine) has reached its
``daily_capacity``. Then the first neighbour, in the configured order, that is none of these gets the job.
The decision's reason says which route key chose the centre and, on failover, which centre was skipped and
why ("down", "refused the job", "full (n/capacity routed today)"); the engine records it in the
``print.routed`` event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._exceptions import ValidationError
from ..address import route_key
from ..channels import PrintCentreInfo
from ..hookspecs import hookimpl
from ..records import PrintJob, RouteDecision


def unavailable(centre: PrintCentreInfo, job: PrintJob, routed_today: Mapping[str, int]) -> str | None:
    """Why ``centre`` cannot take ``job`` now, or None when it can."""
    if not centre.up:
        return "down"
    if centre.centre_id in job.exclude:
        return "refused the job"
    routed = routed_today.get(centre.centre_id, 0)
    if routed >= centre.daily_capacity:
        return f"full ({routed}/{centre.daily_capacity} routed today)"
    return None


@hookimpl(trylast=True)
def delivery_route_print_job(
    job: PrintJob, centres: Sequence[PrintCentreInfo], routed_today: Mapping[str, int]
) -> RouteDecision | None:
    """Route a print job to the centre that serves its address's route key (by division code); ``None`` when the job has
    no usable division code, so that another router may decide."""
    code = job.address.division_code
    if code is None:
        return None
    try:
        key = route_key(code)
    except ValidationError:
        return None
    by_id = {c.centre_id: c for c in centres}
    home = next((c for c in centres if key in c.route_keys), None)
    if home is None:
        return None
    why = unavailable(home, job, routed_today)
    if why is None:
        return RouteDecision(centre_id=home.centre_id, reason=f"route key {key}")
    for neighbour_id in home.neighbours:
        neighbour = by_id.get(neighbour_id)
        if neighbour is not None and unavailable(neighbour, job, routed_today) is None:
            return RouteDecision(centre_id=neighbour_id, reason=f"route key {key}: {home.centre_id} {why}, failover")
    return None
