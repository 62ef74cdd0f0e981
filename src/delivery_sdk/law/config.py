"""The interpretive choices the law leaves open, in one value object.

Every field is a choice documented in ``docs/legal-reference.md``; the defaults follow prevailing court
practice. Pass a :class:`LawConfig` to the functions of :mod:`delivery_sdk.law` to choose otherwise.
"""

from __future__ import annotations

import attrs

__all__ = ["LawConfig"]


@attrs.frozen(kw_only=True)
class LawConfig:
    """Interpretive choices of the service law (see ``docs/legal-reference.md``, "Interpretive choices")."""

    # CPL Art. 85 rolls a period that ends on a 法定休假日 over to the next working day. Practice (the SPC's
    # 2014 answer on period computation) counts ordinary Saturdays and Sundays as rest days too; False rolls
    # over only on the official holidays of the calendar.
    weekends_roll_over: bool = True
    # CPL Art. 95 / Art. 283: the publication period is a statutory period (法定期间, Art. 85), so by default
    # its last day rolls over a rest day like any other period; it is also the safe reading, as it can only make
    # service later, never cut a party's periods short. False: deemed served on the 30th (60th) day. Either way
    # the service day is the last day, from 00:00 Beijing time (law.service.deemed_moment). Engine: PolicyConfig.law.
    publication_rolls_over: bool = True
    # CPL Art. 283: post abroad is deemed served when three months from mailing have passed; roll-over as above.
    postal_abroad_rolls_over: bool = True
    # SPC Online Litigation Rules Art. 31: to an unconfirmed (but verified) electronic address, a "read" report
    # raises a rebuttable presumption of receipt. False: only a reply or a procedural act makes it effective.
    presume_on_read: bool = True
    # CPL Art. 90 as amended in 2021 lets judgments, rulings and mediation documents be served electronically
    # (paper on request). False applies the earlier text (2017 CPL Art. 87), which excluded them.
    judgments_electronic: bool = True
    # CPL Art. 139: notice "at least three days before" the hearing. False (default): service on the third day
    # before the hearing day is in time; True: three clear days must lie between service and hearing.
    hearing_notice_clear_days: bool = False
    hearing_notice_days: int = 3
    # Online Litigation Rules Art. 29-30: consent given after the service moment does not cover that service.
    consent_must_precede: bool = True
    # Online Litigation Rules Art. 29(4): an e-service sent without prior consent that the recipient accepts
    # (replies that it received it, takes part) takes effect at the acceptance (Art. 31(2)(1): the address was
    # not the recipient's confirmed one). True: the acceptance ratifies the completed service from its arrival.
    accepted_service_from_arrival: bool = False
