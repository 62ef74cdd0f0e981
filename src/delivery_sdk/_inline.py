"""The engine's inline actions: the policy's requests that call a plugin hook and record its answer within the
step (route a print job, search for an address, file the proof of service).

Which address to try, why it may be served at and what a proof of service holds are decided by the pure
core (``policy.address_search_result``, ``policy.service_record``, through ``law.addresses``); this module
asks the hooks and records what they and those functions say.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .address.resolver import ResolutionStatus
from .address.resolver import resolve as resolve_address
from .channels import RECEIVER_PHONE, carrier_requires
from .events import Filed, NeedsAttention, PrintRouted
from .lifecycle import Task
from .model import ChannelKind, Contact, ContactKind, DispatchStatus
from .policy import address_search_result, service_record, service_record_id
from .policy import found_contacts as policy_found_contacts
from .records import AddressCandidate, PrintJob

if TYPE_CHECKING:
    from ._work import Work as _Work
    from .engine import Engine

_ROUTABLE = frozenset({ResolutionStatus.RESOLVED, ResolutionStatus.ASSUMED_HOME_PROVINCE, ResolutionStatus.FUZZY})

ADD_PHONE = "add one with client.set_contact(task_id, Contact(kind=ContactKind.MOBILE, value=...)) to go on by post"


def postal_phone(task: Task) -> str | None:
    """The mobile number the carrier needs on the waybill: the party's own (one added to the task first),
    else its agent's."""
    phone = task.first_contact(ContactKind.MOBILE)
    return None if phone is None else phone.value


def carrier_requirements(engine: Engine) -> tuple[str | None, frozenset[str]]:
    """:meth:`Engine.carrier_requirements <delivery_sdk.engine.Engine.carrier_requirements>`."""
    name = engine.channel_kinds.get(ChannelKind.POST)
    if name is None:
        return None, frozenset()
    return name, carrier_requires(engine.host.channels.get(name))


def _waybill_unmet(engine: Engine, work: _Work, now: datetime) -> str | None:
    """Why the carrier could not take this task's waybill (None: it could). A phone the carrier needs and
    the task lacks is asked of assisted person search first; found, it becomes the task's contact."""
    carrier, requires = carrier_requirements(engine)
    if RECEIVER_PHONE not in requires or postal_phone(work.task) is not None:
        return None
    found_contacts(engine, work, now, engine.host.address_candidates(work.task.request.party, ()))
    if postal_phone(work.task) is not None:
        return None
    return (
        f"carrier {carrier!r} needs the receiver's phone on the waybill (receiver_phone) and the party has no "
        f"mobile number, nor did assisted person search find one: {ADD_PHONE}"
    )


def found_contacts(engine: Engine, work: _Work, now: datetime, candidates: Sequence[AddressCandidate]) -> None:
    """Record the new contacts assisted person search offered (``policy.found_contacts``): the waybill and
    the policy use them from then on."""
    for event in policy_found_contacts(work.task, now, candidates):
        engine.apply_event(work, event)


def route(engine: Engine, work: _Work, now: datetime) -> None:
    """Ask the print router for a centre for the task's postal address (resolving its division first)."""
    unmet = _waybill_unmet(engine, work, now)
    if unmet is not None:
        engine.apply_event(work, NeedsAttention(task_id=work.task.task_id, at=now, reason=unmet))
        return
    task = work.task
    assert task.postal_address is not None
    address = task.postal_address
    refused = tuple(
        d.centre_id
        for d in task.dispatches
        if d.kind is ChannelKind.PRINT
        and d.status is DispatchStatus.FAILED
        and d.centre_id
        and d.failed_by is None  # the carrier's refusal of a waybill is not the centre's
        and d.contact.value == address.value
    )
    note = ""
    if address.division_code is None:
        # The built-in resolver supplies the division code a router needs; an address it is unsure about
        # goes to a person with the candidates, never to a guessed centre.
        resolution = resolve_address(address.value, home_province=engine.policy.home_province)
        if not resolution.ok or resolution.status not in _ROUTABLE:
            # Below ROUTING_THRESHOLD (delivery_sdk.address.resolver) a person chooses: never a guessed centre.
            names = "; ".join(f"{c.code} {c.path}" for c in resolution.candidates[:5]) or "none"
            sure = f", confidence {resolution.confidence:.2f}" if resolution.code is not None else ""
            reason = f"address is {resolution.status.value}{sure}: choose its division (candidates: {names})"
            engine.apply_event(work, NeedsAttention(task_id=task.task_id, at=now, reason=reason))
            return
        address = attrs.evolve(address, division_code=resolution.code)
        note = (
            f"; division {resolution.code} {resolution.status.value} by the resolver"
            f" (confidence {resolution.confidence:.2f}"
            + "".join(f", {f.value}" for f in sorted(resolution.flags, key=lambda f: f.value))
            + ")"
        )
    job = PrintJob(
        task_id=task.task_id,
        case=task.request.case,
        address=address,
        documents=task.request.documents,
        round=task.postal_rounds + 1,
        exclude=refused,
    )
    decision = engine.host.route_print_job(job, routed_today=engine.routed_today.counts(engine.store, now))
    if decision is None or decision.centre_id not in engine.host.print_centres:
        why = f"no print centre serves division {address.division_code}{note}"
        engine.apply_event(work, NeedsAttention(task_id=task.task_id, at=now, reason=why))
        return
    engine.routed_today.note(task.task_id, now, decision.centre_id)
    engine.apply_event(
        work, PrintRouted(task_id=task.task_id, at=now, centre_id=decision.centre_id, reason=decision.reason + note)
    )


def search_address(engine: Engine, work: _Work, now: datetime) -> None:
    """Ask assisted person search for the party's addresses and record what they come to
    (``policy.address_search_result``)."""
    task = work.task
    known = [Contact(kind=ContactKind.POSTAL, value=v, source="tried") for v in task.tried_addresses]
    candidates = engine.host.address_candidates(task.request.party, known)
    found_contacts(engine, work, now, candidates)  # a registry may know a phone too
    engine.apply_event(work, address_search_result(work.task, now, candidates))


def file(engine: Engine, work: _Work, now: datetime) -> None:
    """File the task's proof of service into the case file (the filing sinks), and record the filing."""
    task = work.task
    if not engine.host.has_filing_sinks():  # no case file to file into: the record would go nowhere
        engine.apply_event(work, Filed(task_id=task.task_id, at=now, record_id=service_record_id(task.task_id)))
        return
    record = service_record(task, work.timeline, work.bundle)
    refs = engine.host.file_service_record(record)
    engine.apply_event(work, Filed(task_id=task.task_id, at=now, record_id=record.record_id, filed_by=tuple(refs)))
