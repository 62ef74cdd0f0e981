"""What each event means: who acted (the court, the engine, a provider, staff) and its legal effect, in words.

Contact values, waybills and free text are masked here (:func:`delivery_sdk.model.mask`): nothing this module
returns holds a phone number, an address or an ID number in clear.
"""

from __future__ import annotations

import re

from ..events import (
    AddressSearchFailed,
    AddressUpdated,
    Cancelled,
    DispatchDelivered,
    DispatchFailed,
    DispatchQueued,
    DispatchRead,
    DispatchSent,
    DispatchTimedOut,
    Enveloped,
    Event,
    FellBackToPost,
    Filed,
    Mailed,
    NeedsAttention,
    PostReturned,
    PostSigned,
    Printed,
    PrintRouted,
    PublicationStarted,
    ResumedByStaff,
    Served,
    TaskCreated,
)
from ..model import mask

__all__ = ["ACTORS", "actor_of", "describe", "scrub"]

ACTORS = ("court", "engine", "provider", "staff")

# digit runs that could be a phone or ID number (7 or more digits, an ID's closing X included); six-digit
# division codes stay readable
_DIGITS = re.compile(r"\d{7,}[\dXx]?")


def scrub(text: str) -> str:
    """Free text with every long digit run (a phone number, an ID number) masked."""
    return _DIGITS.sub(lambda m: mask(m.group(0)), text)


def actor_of(event: Event) -> str:
    """Who produced the fact: ``court`` (the request), ``engine``, ``provider`` (a channel, print centre,
    carrier or address source) or ``staff``."""
    if isinstance(event, TaskCreated):
        return "court"
    if isinstance(event, Cancelled | ResumedByStaff):
        return "staff"
    if isinstance(event, AddressUpdated):
        return "staff" if event.source in ("staff", "manual", "court") else "provider"
    if isinstance(event, DispatchSent | DispatchDelivered | DispatchRead | DispatchFailed):
        return "provider"
    if isinstance(event, Printed | Enveloped | Mailed | PostSigned | PostReturned):
        return "provider"
    return "engine"


def describe(event: Event) -> str:
    """The event's legal meaning in one sentence, with personal data masked."""
    if isinstance(event, TaskCreated):
        case = event.request.case
        return (
            f"Service request registered: {len(event.request.documents)} document(s) of case {case.case_number} "
            f"to serve on party {event.request.party.party_id}."
        )
    if isinstance(event, DispatchQueued):
        return (
            f"Dispatch {event.dispatch_id} decided and recorded before sending: {event.kind.value} via "
            f"{event.channel} to {mask(event.contact.value)}."
        )
    if isinstance(event, DispatchSent):
        return f"The provider accepted dispatch {event.dispatch_id}; sending is not yet service."
    if isinstance(event, DispatchDelivered):
        return (
            f"Dispatch {event.dispatch_id} reached the recipient's system at {event.delivered_at:%Y-%m-%d %H:%M}: "
            "for electronic service this is the moment of service (CPL Art. 90)."
        )
    if isinstance(event, DispatchRead):
        return (
            f"The recipient read dispatch {event.dispatch_id}: a read report presumes arrival "
            "(Online Litigation Rules Art. 31)."
        )
    if isinstance(event, DispatchFailed):
        return f"Dispatch {event.dispatch_id} failed ({scrub(event.reason)}): no service by this attempt."
    if isinstance(event, DispatchTimedOut):
        return f"No confirmation of dispatch {event.dispatch_id} in the waiting period: the attempt is given up."
    if isinstance(event, FellBackToPost):
        return f"Electronic service did not succeed ({scrub(event.reason)}): postal service next (CPL Art. 91)."
    if isinstance(event, AddressUpdated):
        return (
            f"New postal address {mask(event.contact.value)} from {event.source} "
            f"(confidence {event.confidence:.0%}): postal service is retried there."
        )
    if isinstance(event, AddressSearchFailed):
        return f"Assisted person search found no better address ({scrub(event.reason)})."
    if isinstance(event, PrintRouted):
        return f"Routed to print centre {event.centre_id} ({scrub(event.reason)})."
    if isinstance(event, Printed):
        return f"Print job {event.dispatch_id} printed at the print centre."
    if isinstance(event, Enveloped):
        return f"Print job {event.dispatch_id} enveloped at the print centre on {event.enveloped_at:%Y-%m-%d %H:%M}."
    if isinstance(event, Mailed):
        return f"Handed to the carrier (waybill {mask(event.waybill)})."
    if isinstance(event, PostSigned):
        return (
            f"Signed for by the {event.signer_role.replace('_', ' ')} on {event.signed_at:%Y-%m-%d}: postal "
            "service takes effect on the signing date (CPL Arts. 87-88, 91)."
        )
    if isinstance(event, PostReturned):
        return f"The post came back ({event.reason.value.replace('_', ' ')}): not served by this mailing."
    if isinstance(event, PublicationStarted):
        return (
            f"Public notice posted on {event.published_at:%Y-%m-%d}: deemed served when the publication "
            "period ends (CPL Art. 95)."
        )
    if isinstance(event, Served):
        return (
            f"Legally served by {event.method.value} service ({event.basis}), effective "
            f"{event.effective_at:%Y-%m-%d %H:%M}."
        )
    if isinstance(event, Filed):
        return "Proof of service filed into the electronic case file (入卷): the task is done."
    if isinstance(event, Cancelled):
        return f"Cancelled by the court or staff ({scrub(event.reason)})."
    if isinstance(event, NeedsAttention):
        return f"The engine stopped: a person must decide ({scrub(event.reason)})."
    if isinstance(event, ResumedByStaff):
        return "Sent back by staff: electronic service is tried again from the start."
    return event.TYPE
