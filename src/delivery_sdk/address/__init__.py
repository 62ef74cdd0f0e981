"""Addresses: division codes and the print-centre route key (DOMAIN.md section 2).

The free-text resolver and assisted person search build on this package.
"""

from __future__ import annotations

import re

from .._exceptions import ValidationError

__all__ = ["route_key"]

_CODE = re.compile(r"\d{6}")


def route_key(division_code: str) -> str:
    """The print-centre route key of a 6-digit GB/T 2260 code.

    Province-administered units (codes under ``4290``) route on the whole code, everything else on the
    first four digits + ``00``. ``429000`` is a statistics-bureau artefact, not an MCA division, and is
    refused.
    """
    if not isinstance(division_code, str) or not _CODE.fullmatch(division_code):
        raise ValidationError(f"division code {division_code!r} must be 6 digits (GB/T 2260)")
    if division_code.startswith("4290"):
        if division_code == "429000":
            raise ValidationError("429000 is not an administrative division; resolve the address to its county")
        return division_code
    return division_code[:4] + "00"


# The free-text resolver (its data loads lazily, on the first resolve()).
from .resolver import Candidate, InvalidAddress, Resolution, ResolutionStatus, resolve  # noqa: E402

__all__ += ["Candidate", "InvalidAddress", "Resolution", "ResolutionStatus", "resolve"]
