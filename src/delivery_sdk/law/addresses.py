"""Where to serve a party that has not confirmed an address (SPC 2017 Opinion, 法发〔2017〕19号).

The Opinion's order, after the address the party confirmed on the address-confirmation form (SPC
Interpretation Art. 136): the address agreed in a contract; the address in the party's own filings; an
address used in litigation within the past year; an address commonly used within the past year; then the
household-registration address (natural persons) or the business-registration address (entities).

The names are the ``source`` names of address candidates (the keys of ``delivery_sdk.engine.SOURCE_RANK``);
the two registries share one rank, as a party has only one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ADDRESS_BASIS", "ADDRESS_ORDER", "ADDRESS_RANK", "address_rank"]

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
