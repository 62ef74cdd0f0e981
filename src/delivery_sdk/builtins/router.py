"""The default print-centre router: by the address's division code, failing over to a neighbour."""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import ValidationError
from ..address import route_key
from ..channels import PrintCentreInfo
from ..hookspecs import hookimpl
from ..records import PrintJob, RouteDecision


@hookimpl(trylast=True)
def delivery_route_print_job(job: PrintJob, centres: Sequence[PrintCentreInfo]) -> RouteDecision | None:
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
    if home.up and home.centre_id not in job.exclude:
        return RouteDecision(centre_id=home.centre_id, reason=f"route key {key}")
    for neighbour_id in home.neighbours:
        neighbour = by_id.get(neighbour_id)
        if neighbour is not None and neighbour.up and neighbour_id not in job.exclude:
            why = "down" if not home.up else "refused the job"
            return RouteDecision(centre_id=neighbour_id, reason=f"route key {key}: {home.centre_id} {why}, failover")
    return None
