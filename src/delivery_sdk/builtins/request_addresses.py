"""Address candidates from the request itself: the party's and its representatives' postal contacts.

Confirmed addresses (address-confirmation form) rank first; the SPC 2017 Opinion order is applied by the
engine over every source's candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..hookspecs import hookimpl
from ..model import Contact, ContactKind, Party
from ..records import AddressCandidate


@hookimpl
def delivery_address_candidates(party: Party, known: Sequence[Contact]) -> list[AddressCandidate]:
    """The party's own postal contacts as address candidates: confirmed ones (the confirmation form) first in
    confidence, the others as from the party's own filings."""
    return [
        AddressCandidate(
            contact=c,
            source="confirmation_form" if c.confirmed else "own_filings",
            confidence=0.9 if c.confirmed else 0.6,
        )
        for c in party.contacts_of(ContactKind.POSTAL)
    ]
