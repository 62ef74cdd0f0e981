"""The moment service takes effect, per method, and which of several services counts.

- **Electronic** (CPL Art. 90; SPC Interpretation Art. 135; Online Litigation Rules Art. 31): to an address
  the recipient gave or confirmed, served when the message reaches the recipient's specific system (the
  day the court's system shows success, unless proven otherwise). To an address it did not confirm but the
  court verified, effective when the recipient replies or acts on it; a "read" report of the system raises
  a rebuttable presumption of receipt at that moment (:attr:`LawConfig.presume_on_read`).
- **Postal** (CPL Art. 91): the receipt date on the return receipt (回执), when the one who signed may
  receive for the party (CPL Art. 88): the recipient; a co-resident adult family member of a natural person;
  the legal representative, principal person in charge or mail handler of a legal person or organisation;
  the litigation agent or the designated receiver the party appointed. Anyone else (a neighbour, a guard,
  a parcel locker), or a signer the carrier did not name, serves nothing (:func:`postal_service`).
- **Returned mail** (SPC 2017 Opinion, 法发〔2017〕19号; SPC Provisions on Court Express Post Art. 11): a
  refusal, or mail to an address the party confirmed that proved wrong, is deemed served on the day the
  mail came back.
- **Publication** (CPL Art. 95; Interpretation Art. 138): deemed served 30 days after publication, counted
  from the last posting date; 60 days for a party abroad (CPL Art. 283).
- **Post abroad** (CPL Art. 283): without a return receipt, deemed served when three months from mailing
  have passed, where the circumstances show delivery.
- **Several channels** carrying the same content (Online Litigation Rules Art. 31): the earliest effective
  service counts (:func:`earliest_effective`).

A :class:`DeemedService` carries the legal service date (``served_on``, a Beijing date: the date on the
proof of service, from which periods run) and ``effective_at``, the moment that represents it: the
arrival, signing or return moment, or — for the periods of publication and post abroad, whose law knows
only the day — 00:00 Beijing time of the day the law deems service (``by_period``). Either way
``served_on`` is the Beijing date of ``effective_at``, so the task, its status, the proof of service and
the deadlines (which start the day after, CPL Art. 85) all show the same day.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

import attrs

from .._exceptions import ValidationError
from ..model import AgentRole, ServiceMethod
from .config import LawConfig
from .holidays import BEIJING, HolidayCalendar, beijing_date, default_calendar
from .periods import add_months

__all__ = [
    "BASIS_CONFIRMED_WRONG",
    "BASIS_DIRECT",
    "BASIS_ELECTRONIC",
    "BASIS_ELECTRONIC_READ",
    "BASIS_ELECTRONIC_REPLY",
    "BASIS_POSTAL",
    "BASIS_POSTAL_ABROAD",
    "BASIS_POSTAL_AGENT",
    "BASIS_POSTAL_FAMILY",
    "BASIS_POSTAL_LEGAL_REPRESENTATIVE",
    "BASIS_POSTAL_MAIL_ROOM",
    "BASIS_PUBLICATION",
    "BASIS_PUBLICATION_ABROAD",
    "BASIS_REFUSED",
    "BASIS_RETAINED",
    "PUBLICATION_DAYS",
    "PUBLICATION_DAYS_ABROAD",
    "SIGNER_ROLES",
    "DeemedService",
    "ReturnGround",
    "SignerRole",
    "deemed_moment",
    "direct_service",
    "earliest_effective",
    "electronic_service",
    "postal_abroad_service",
    "postal_service",
    "publication_service",
    "retained_service",
    "returned_mail_service",
]

# The first five are the strings delivery_sdk.policy records today, so events keep their wording.
BASIS_ELECTRONIC = "CPL Art. 90; SPC Online Litigation Rules Art. 31"
BASIS_POSTAL = "CPL Art. 91"
BASIS_REFUSED = (
    "CPL Arts. 89 and 91; SPC Provisions on Court Express Post Art. 11 "
    "(refused to sign: deemed served on the day the mail came back)"
)
BASIS_CONFIRMED_WRONG = "SPC Opinion 2017 No. 19 (confirmed address proved wrong: deemed served on return)"
BASIS_PUBLICATION = "CPL Art. 95"
BASIS_ELECTRONIC_REPLY = (
    "CPL Art. 90; SPC Online Litigation Rules Art. 31 (unconfirmed address: effective on reply or act)"
)
BASIS_ELECTRONIC_READ = (
    "CPL Art. 90; SPC Online Litigation Rules Art. 31 (unconfirmed address: presumed on read, rebuttable)"
)
BASIS_PUBLICATION_ABROAD = "CPL Art. 283 (publication abroad: deemed served after 60 days)"
BASIS_POSTAL_ABROAD = "CPL Art. 283 (post abroad: deemed served 3 months after mailing)"
BASIS_DIRECT = "CPL Arts. 87-88 (signing date on the proof of service)"
# Postal service signed for by someone other than the recipient (CPL Art. 88 who, Art. 91 when); the wording
# is the one events recorded before these were constants.
BASIS_POSTAL_FAMILY = "CPL Arts. 88 and 91 (signed for by a co-resident adult family member)"
BASIS_POSTAL_MAIL_ROOM = "CPL Arts. 88 and 91 (signed for by the entity's mail handler)"
BASIS_POSTAL_LEGAL_REPRESENTATIVE = (
    "CPL Arts. 88 and 91 (signed for by the entity's legal representative or principal person in charge)"
)
BASIS_POSTAL_AGENT = "CPL Arts. 88 and 91 (signed for by the litigation agent or designated receiver)"
BASIS_RETAINED = "CPL Art. 89 (retained service: deemed served)"

PUBLICATION_DAYS = 30  # CPL Art. 95
PUBLICATION_DAYS_ABROAD = 60  # CPL Art. 283
POSTAL_ABROAD_MONTHS = 3  # CPL Art. 283

_DEFAULT_CONFIG = LawConfig()


class ReturnGround(enum.Enum):
    """Why returned mail still counts as served."""

    REFUSED = "refused"  # SPC Provisions on Court Express Post Art. 11
    CONFIRMED_ADDRESS_WRONG = "confirmed_address_wrong"  # SPC 2017 Opinion


@attrs.frozen(kw_only=True)
class DeemedService:
    """A legally effective service: how, on which Beijing date, from which moment, on which basis."""

    method: ServiceMethod
    served_on: date
    effective_at: datetime
    basis: str
    channel: str | None = None  # free label (a channel or dispatch id) so callers can tell parallel services apart
    # Deemed by the end of a period (publication, post abroad): the law names the day, not a moment, and
    # ``effective_at`` is 00:00 Beijing time of ``served_on``.
    by_period: bool = False


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"{what} must be a timezone-aware datetime")
    return moment


def _at(moment: datetime, method: ServiceMethod, basis: str, channel: str | None) -> DeemedService:
    return DeemedService(
        method=method, served_on=beijing_date(moment), effective_at=moment, basis=basis, channel=channel
    )


def deemed_moment(day: date) -> datetime:
    """The moment that stands for "served on ``day``" when the law names only the day (a period's end):
    00:00 Beijing time of that day, so that its Beijing date is ``day`` itself and periods counted from the
    service start the day after (CPL Art. 85)."""
    return datetime.combine(day, time(0), tzinfo=BEIJING)


def _by_period(day: date, method: ServiceMethod, basis: str, channel: str | None) -> DeemedService:
    return DeemedService(
        method=method, served_on=day, effective_at=deemed_moment(day), basis=basis, channel=channel, by_period=True
    )


def electronic_service(
    arrived_at: datetime | None,
    *,
    address_confirmed: bool = True,
    replied_at: datetime | None = None,
    read_at: datetime | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
    channel: str | None = None,
) -> DeemedService | None:
    """When electronic service took effect, or ``None`` if it has not (yet).

    Confirmed address (given or confirmed by the recipient): at arrival in its system (CPL Art. 90;
    Interpretation Art. 135; Rules Art. 31(1)). Unconfirmed but verified address (Rules Art. 31(2)): at the
    reply or procedural act (``replied_at``); with :attr:`LawConfig.presume_on_read`, a "read" report
    (``read_at``) is presumed receipt; when both exist the earlier counts. Arrival alone is not enough there.
    """
    if address_confirmed:
        if arrived_at is None:
            return None
        return _at(_aware(arrived_at, "arrived_at"), ServiceMethod.ELECTRONIC, BASIS_ELECTRONIC, channel)
    candidates: list[tuple[datetime, str]] = []
    if replied_at is not None:
        candidates.append((_aware(replied_at, "replied_at"), BASIS_ELECTRONIC_REPLY))
    if read_at is not None and config.presume_on_read:
        candidates.append((_aware(read_at, "read_at"), BASIS_ELECTRONIC_READ))
    if not candidates:
        return None
    moment, basis = min(candidates, key=lambda c: c[0])
    return _at(moment, ServiceMethod.ELECTRONIC, basis, channel)


class SignerRole(enum.Enum):
    """Who signed the return receipt, as carriers report it (``Receipt.signer_role``, ``PostSigned``)."""

    RECIPIENT = "recipient"  # the party itself (for an entity: its stamp or an authorised signature)
    FAMILY_MEMBER = "family_member"  # 同住成年家属: a co-resident adult family member
    MAIL_ROOM = "mail_room"  # 负责收件的人: the entity's mail handler
    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代表人 / 主要负责人 of an entity
    AGENT = "agent"  # 诉讼代理人 / 代收人: the litigation agent or the designated receiver
    UNKNOWN = "unknown"  # the carrier did not say who signed: serves nothing until a person checks the receipt


# Who may sign the return receipt for a party (CPL Art. 88), by ``SignerRole`` value, in words.
SIGNER_ROLES: dict[str, str] = {
    "recipient": "the recipient",
    "family_member": "a co-resident adult family member",  # a natural person only
    "mail_room": "the entity's mail handler",  # a legal person or organisation only
    "legal_representative": "the entity's legal representative or principal person in charge",  # entities only
    "agent": "the litigation agent or designated receiver",  # only one the party appointed
}

_SIGNER_BY_VALUE = {role.value: role for role in SignerRole}
# The appointments that let a signature by an "agent" serve (CPL Art. 88: 诉讼代理人, 代收人). A party's
# legal representative or mail handler on file is no appointment of an agent to receive.
_RECEIVING_AGENTS = frozenset({AgentRole.LITIGATION_AGENT, AgentRole.DESIGNATED_RECEIVER})


def _signature_basis(signer: SignerRole | None, organisation: bool, agents: Iterable[AgentRole]) -> str | None:
    if signer is SignerRole.RECIPIENT:
        return BASIS_POSTAL
    if signer is SignerRole.FAMILY_MEMBER:
        return None if organisation else BASIS_POSTAL_FAMILY
    if signer is SignerRole.MAIL_ROOM:
        return BASIS_POSTAL_MAIL_ROOM if organisation else None
    if signer is SignerRole.LEGAL_REPRESENTATIVE:
        return BASIS_POSTAL_LEGAL_REPRESENTATIVE if organisation else None
    if signer is SignerRole.AGENT:
        return BASIS_POSTAL_AGENT if not _RECEIVING_AGENTS.isdisjoint(agents) else None
    return None  # a signer of no role Art. 88 names (or not named at all)


def postal_service(
    signed_at: datetime,
    signer: SignerRole | str | None,
    *,
    organisation: bool = False,
    agents: Iterable[AgentRole] = (),
    channel: str | None = None,
) -> DeemedService | None:
    """Postal service by a signed return receipt, or ``None`` when the signature serves nothing.

    When: the receipt date on the return receipt (CPL Art. 91). Who may sign (CPL Art. 88): the recipient
    always; a co-resident adult family member only for a natural person; the mail handler, or the legal
    representative / principal person in charge, only for a legal person or organisation
    (``organisation``); an agent only when the party appointed a litigation agent or a designated receiver
    (``agents``: the roles of the party's representatives). ``signer`` is a :class:`SignerRole` or its value
    as the carrier reported it; anyone else (a neighbour, a guard, a parcel locker, ``"other:<code>"``) or
    ``None`` (the carrier did not say who signed) serves nothing: the court must confirm receipt with the
    party or serve again.
    """
    role = signer if isinstance(signer, SignerRole) or signer is None else _SIGNER_BY_VALUE.get(signer)
    basis = _signature_basis(role, organisation, agents)
    if basis is None:
        _aware(signed_at, "signed_at")
        return None
    return _at(_aware(signed_at, "signed_at"), ServiceMethod.POSTAL, basis, channel)


def direct_service(signed_at: datetime, *, channel: str | None = None) -> DeemedService:
    """Direct service: the signing date on the proof of service is the service date (CPL Arts. 87-88)."""
    return _at(_aware(signed_at, "signed_at"), ServiceMethod.DIRECT, BASIS_DIRECT, channel)


def retained_service(left_at: datetime, *, channel: str | None = None) -> DeemedService:
    """Retained service (留置): deemed served when the documents were left (CPL Art. 89)."""
    return _at(_aware(left_at, "left_at"), ServiceMethod.RETAINED, BASIS_RETAINED, channel)


def returned_mail_service(returned_at: datetime, ground: ReturnGround, *, channel: str | None = None) -> DeemedService:
    """Mail that came back still served, on the day it came back: a refusal (SPC Provisions on Court Express
    Post Art. 11), or a confirmed address that proved wrong (SPC 2017 Opinion)."""
    basis = BASIS_REFUSED if ground is ReturnGround.REFUSED else BASIS_CONFIRMED_WRONG
    return _at(_aware(returned_at, "returned_at"), ServiceMethod.POSTAL, basis, channel)


def publication_service(
    last_posted: date | datetime,
    calendar: HolidayCalendar | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
    *,
    abroad: bool = False,
    channel: str | None = None,
) -> DeemedService:
    """Publication: deemed served when 30 days (60 abroad) from the last posting date have passed.

    CPL Art. 95 (30 days), Interpretation Art. 138 (the publication date is the last posting date), CPL
    Art. 283 (60 days for a party abroad). The posting day is not counted (CPL Art. 85), so the period's
    last day is the 30th (60th) day after the posting; with :attr:`LawConfig.publication_rolls_over` a last
    day on a rest day moves to the next working day. That last day is the service date (``served_on``); its
    moment is 00:00 Beijing time of that day (:func:`deemed_moment`), and periods run from the next day."""
    days = PUBLICATION_DAYS_ABROAD if abroad else PUBLICATION_DAYS
    basis = BASIS_PUBLICATION_ABROAD if abroad else BASIS_PUBLICATION
    end = beijing_date(last_posted) + timedelta(days=days)
    if config.publication_rolls_over:
        cal = default_calendar() if calendar is None else calendar
        end = cal.next_working_day(end, weekends=config.weekends_roll_over)
    return _by_period(end, ServiceMethod.PUBLICATION, basis, channel)


def postal_abroad_service(
    mailed: date | datetime,
    calendar: HolidayCalendar | None = None,
    config: LawConfig = _DEFAULT_CONFIG,
    *,
    channel: str | None = None,
) -> DeemedService:
    """Post abroad without a return receipt: deemed served when three months from mailing have passed,
    where the circumstances show delivery (CPL Art. 283). Months per Civil Code Art. 202; roll-over per
    :attr:`LawConfig.postal_abroad_rolls_over`. Whether the circumstances show delivery is for the court.
    The period's last day is the service date; its moment is 00:00 Beijing time of that day, as for
    publication (:func:`deemed_moment`)."""
    end = add_months(beijing_date(mailed), POSTAL_ABROAD_MONTHS)
    if config.postal_abroad_rolls_over:
        cal = default_calendar() if calendar is None else calendar
        end = cal.next_working_day(end, weekends=config.weekends_roll_over)
    return _by_period(end, ServiceMethod.POSTAL, BASIS_POSTAL_ABROAD, channel)


def earliest_effective(services: Iterable[DeemedService | None]) -> DeemedService | None:
    """Of several services of the same content, the one that took effect first (Rules Art. 31).

    Compared on ``served_on``, the legal service date; on the same day a service by an act (arrival,
    signature, return) counts before one deemed by a period (publication, post abroad: ``by_period``),
    which the law provides for when actual service fails; then on ``effective_at``. ``None`` entries
    (channels that have not served) are ignored. Ties keep the first given, so callers control the order."""
    best: DeemedService | None = None
    best_key: tuple[date, bool, datetime] | None = None
    for s in services:
        if s is None:
            continue
        key = (s.served_on, s.by_period, s.effective_at)
        if best_key is None or key < best_key:
            best, best_key = s, key
    return best
