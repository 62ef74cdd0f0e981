"""Where to serve a party that has not confirmed an address (SPC 2017 Opinion, 法发〔2017〕19号).

The Opinion's order, after the address the party confirmed on the address-confirmation form (SPC
Interpretation Art. 136): the address agreed in a contract; the address in the party's own filings; an
address used in litigation within the past year; an address commonly used within the past year; then the
household-registration address (natural persons) or the business-registration address (entities).

The names are the ``source`` names of address candidates; the two registries share one rank, as a party has
only one of them. :func:`candidate_order` ranks what assisted person search offers (search aids the Opinion
does not name come after the ranked sources), :func:`choose_address` picks the address to serve at next (or
says a person must choose), and :func:`address_basis` says why it may be served at. The engine asks these;
it ranks nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from ..model import ContactKind

if TYPE_CHECKING:
    from ..records import AddressCandidate

__all__ = [
    "ADDRESS_BASIS",
    "ADDRESS_ORDER",
    "ADDRESS_RANK",
    "BASIS_NO_ADDRESS_LEFT",
    "AddressChoice",
    "address_basis",
    "address_rank",
    "candidate_order",
    "choose_address",
    "contact_basis",
    "new_contacts",
]

ADDRESS_ORDER: tuple[str, ...] = (
    "confirmation_form",
    "contract",
    "own_filings",
    "litigation",
    "common_use",
    "household_registry",
    "business_registry",
)

ADDRESS_RANK: Mapping[str, int] = MappingProxyType(
    {
        "confirmation_form": 0,
        "contract": 1,
        "own_filings": 2,
        "litigation": 3,
        "common_use": 4,
        "household_registry": 5,
        "business_registry": 5,
    }
)

ADDRESS_BASIS: Mapping[str, str] = MappingProxyType(
    {
        "confirmation_form": "SPC Interpretation Art. 136 (confirmed on the address-confirmation form)",
        "contract": "SPC Opinion 2017 No. 19 (address agreed in a contract)",
        "own_filings": "SPC Opinion 2017 No. 19 (address in the party's own filings)",
        "litigation": "SPC Opinion 2017 No. 19 (address used in litigation within the past year)",
        "common_use": "SPC Opinion 2017 No. 19 (address commonly used within the past year)",
        "household_registry": "SPC Opinion 2017 No. 19 (household-registration address)",
        "business_registry": "SPC Opinion 2017 No. 19 (business-registration address)",
    }
)


def address_rank(source: str) -> int | None:
    """The rank of an address source in the SPC 2017 order (lower first), ``None`` if the Opinion does not
    name it (postal database, mobile operators: search aids, not addresses the Opinion ranks)."""
    return ADDRESS_RANK.get(source)


# Search aids after the Opinion's sources: a registry of unknown kind ranks with the registries; the postal
# database and the mobile operators only help find a party, so they come last. Unknown sources come after all.
SEARCH_AID_RANK: Mapping[str, int] = MappingProxyType({"registry": 5, "postal_database": 6, "operator": 7})
_UNRANKED = 9

BASIS_NO_ADDRESS_LEFT = "SPC Opinion 2017 No. 19 (assisted person search: no untried address in any source)"


def candidate_order(candidate: AddressCandidate) -> tuple[int, float, float]:
    """The sort key of an address found by assisted person search: SPC 2017 Opinion order by source (a
    confirmed address first), then the higher confidence, then the most recently observed."""
    if candidate.contact.confirmed:
        rank = 0
    else:
        rank = ADDRESS_RANK.get(candidate.source, SEARCH_AID_RANK.get(candidate.source, _UNRANKED))
    seen = candidate.observed_at.timestamp() if candidate.observed_at is not None else 0.0
    return (rank, -candidate.confidence, -seen)


def address_basis(candidate: AddressCandidate) -> str:
    """Why an address found by assisted person search may be served at (SPC 2017 Opinion order)."""
    if candidate.contact.confirmed:
        return ADDRESS_BASIS["confirmation_form"]
    ranked = ADDRESS_BASIS.get(candidate.source)
    if ranked is not None:
        return ranked
    return f"SPC Opinion 2017 No. 19 (assisted person search: address from {candidate.source})"


def contact_basis(kind: ContactKind, source: str) -> str:
    """Why an electronic contact found by assisted person search may be used (a registry's phone, say)."""
    return f"SPC Opinion 2017 No. 19 (assisted person search: {kind.value} from {source})"


@attrs.frozen(kw_only=True)
class AddressChoice:
    """What assisted person search's candidates give: the address to serve at next (``best``), or the equally
    ranked different addresses a person must choose between (``rivals``, ``best`` among them), or nothing
    untried (``best`` None, no rivals)."""

    best: AddressCandidate | None
    rivals: tuple[AddressCandidate, ...] = ()
    basis: str = BASIS_NO_ADDRESS_LEFT

    @property
    def needs_person(self) -> bool:
        """Whether a person must choose (equally ranked, different addresses)."""
        return bool(self.rivals)


def choose_address(candidates: Sequence[AddressCandidate], tried: Sequence[str]) -> AddressChoice:
    """The postal address to try next among ``candidates``, skipping those already ``tried``: the first in
    :func:`candidate_order`, unless another, different address ranks exactly as high (then a person chooses)."""
    done = set(tried)
    fresh = [c for c in candidates if c.contact.kind is ContactKind.POSTAL and c.contact.value not in done]
    if not fresh:
        return AddressChoice(best=None)
    ranked = sorted(fresh, key=candidate_order)
    best = ranked[0]
    top = candidate_order(best)
    rivals = tuple(c for c in ranked[1:] if candidate_order(c) == top and c.contact.value != best.contact.value)
    if rivals:
        return AddressChoice(best=best, rivals=rivals, basis="")
    return AddressChoice(best=best, basis=address_basis(best))


def new_contacts(
    candidates: Sequence[AddressCandidate], known: Mapping[ContactKind, Sequence[str]]
) -> dict[ContactKind, AddressCandidate]:
    """The best new contact of each electronic kind among ``candidates`` (in :func:`candidate_order`), leaving
    out postal addresses and values already ``known`` for their kind."""
    best: dict[ContactKind, AddressCandidate] = {}
    for candidate in sorted(candidates, key=candidate_order):
        kind = candidate.contact.kind
        if kind is ContactKind.POSTAL or kind in best or candidate.contact.value in known.get(kind, ()):
            continue
        best[kind] = candidate
    return best
