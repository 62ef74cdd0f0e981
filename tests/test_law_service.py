"""When service takes effect, per method, and which of several services counts (delivery_sdk.law.service).

Electronic: CPL Art. 90, SPC Interpretation Art. 135, Online Litigation Rules Art. 31. Postal: CPL Art. 91;
who may sign for the party: CPL Art. 88.
Returned mail: SPC 2017 Opinion, SPC Provisions on Court Express Post Art. 11. Publication: CPL Art. 95,
Interpretation Art. 138; abroad CPL Art. 283. Earliest effective service: Rules Art. 31.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery_sdk import ServiceMethod, ValidationError, policy
from delivery_sdk.law import (
    BASIS_CONFIRMED_WRONG,
    BASIS_DIRECT,
    BASIS_ELECTRONIC,
    BASIS_ELECTRONIC_READ,
    BASIS_ELECTRONIC_REPLY,
    BASIS_POSTAL,
    BASIS_POSTAL_ABROAD,
    BASIS_POSTAL_AGENT,
    BASIS_POSTAL_FAMILY,
    BASIS_POSTAL_LEGAL_REPRESENTATIVE,
    BASIS_POSTAL_MAIL_ROOM,
    BASIS_PUBLICATION,
    BASIS_PUBLICATION_ABROAD,
    BASIS_REFUSED,
    BASIS_RETAINED,
    BEIJING,
    SIGNER_ROLES,
    DeemedService,
    LawConfig,
    ReturnGround,
    SignerRole,
    beijing_date,
    deadlines_after_service,
    deemed_moment,
    direct_service,
    earliest_effective,
    electronic_service,
    postal_abroad_service,
    postal_service,
    publication_service,
    retained_service,
    returned_mail_service,
)
from delivery_sdk.model import AgentRole, DocumentKind


def bj(y: int, m: int, d: int, h: int = 12, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=BEIJING)


def test_basis_strings_match_what_the_policy_records_today() -> None:
    assert (BASIS_ELECTRONIC, BASIS_POSTAL, BASIS_REFUSED, BASIS_CONFIRMED_WRONG, BASIS_PUBLICATION) == (
        policy.BASIS_ELECTRONIC,
        policy.BASIS_POSTAL,
        policy.BASIS_REFUSED,
        policy.BASIS_CONFIRMED_WRONG,
        policy.BASIS_PUBLICATION,
    )


# (kwargs, expected moment or None, expected basis, config, citation)
ELECTRONIC = [
    ({"arrived_at": bj(2025, 3, 3, 9)}, bj(2025, 3, 3, 9), BASIS_ELECTRONIC, LawConfig(), "CPL Art. 90: on arrival"),
    (
        {"arrived_at": datetime(2025, 3, 2, 17, 30, tzinfo=UTC)},
        datetime(2025, 3, 2, 17, 30, tzinfo=UTC),
        BASIS_ELECTRONIC,
        LawConfig(),
        "CPL Art. 90; Interpretation Art. 135: the day of arrival, in Beijing time (3 Mar)",
    ),
    ({"arrived_at": None}, None, "", LawConfig(), "CPL Art. 90: nothing arrived, nothing served"),
    (
        {"arrived_at": bj(2025, 3, 3, 9), "address_confirmed": False},
        None,
        "",
        LawConfig(),
        "Rules Art. 31(2): arrival at an unconfirmed address is not enough",
    ),
    (
        {"arrived_at": bj(2025, 3, 3, 9), "address_confirmed": False, "read_at": bj(2025, 3, 4, 8)},
        bj(2025, 3, 4, 8),
        BASIS_ELECTRONIC_READ,
        LawConfig(),
        "Rules Art. 31(2): a read report is presumed receipt (rebuttable)",
    ),
    (
        {"arrived_at": bj(2025, 3, 3, 9), "address_confirmed": False, "read_at": bj(2025, 3, 4, 8)},
        None,
        "",
        LawConfig(presume_on_read=False),
        "Rules Art. 31(2): read alone is not enough if the presumption is off",
    ),
    (
        {"arrived_at": bj(2025, 3, 3), "address_confirmed": False, "replied_at": bj(2025, 3, 5, 10)},
        bj(2025, 3, 5, 10),
        BASIS_ELECTRONIC_REPLY,
        LawConfig(presume_on_read=False),
        "Rules Art. 31(2): effective on the recipient's reply",
    ),
    (
        {
            "arrived_at": bj(2025, 3, 3),
            "address_confirmed": False,
            "replied_at": bj(2025, 3, 5, 10),
            "read_at": bj(2025, 3, 4, 8),
        },
        bj(2025, 3, 4, 8),
        BASIS_ELECTRONIC_READ,
        LawConfig(),
        "Rules Art. 31(2): read before the reply, the earlier counts",
    ),
    (
        {
            "arrived_at": bj(2025, 3, 3),
            "address_confirmed": False,
            "replied_at": bj(2025, 3, 5, 10),
            "read_at": bj(2025, 3, 4, 8),
        },
        bj(2025, 3, 5, 10),
        BASIS_ELECTRONIC_REPLY,
        LawConfig(presume_on_read=False),
        "Rules Art. 31(2): without the presumption, the reply counts",
    ),
    (
        {
            "arrived_at": None,
            "address_confirmed": False,
            "replied_at": bj(2025, 3, 4, 7),
            "read_at": bj(2025, 3, 4, 8),
        },
        bj(2025, 3, 4, 7),
        BASIS_ELECTRONIC_REPLY,
        LawConfig(),
        "Rules Art. 31(2): a reply before the read report",
    ),
]


@pytest.mark.parametrize(("kwargs", "moment", "basis", "config", "cite"), ELECTRONIC)
def test_electronic_service(
    kwargs: dict[str, object], moment: datetime | None, basis: str, config: LawConfig, cite: str
) -> None:
    served = electronic_service(config=config, **kwargs)  # type: ignore[arg-type]
    if moment is None:
        assert served is None, cite
        return
    assert served is not None, cite
    assert served.method is ServiceMethod.ELECTRONIC
    assert served.effective_at == moment, cite
    assert served.served_on == moment.astimezone(BEIJING).date(), cite
    assert served.basis == basis, cite


def _signed_by_recipient(moment: datetime, *, channel: str | None = None) -> DeemedService | None:
    return postal_service(moment, SignerRole.RECIPIENT, channel=channel)


ARRIVALS = [
    (_signed_by_recipient, ServiceMethod.POSTAL, BASIS_POSTAL, "CPL Art. 91: the receipt date on the return receipt"),
    (direct_service, ServiceMethod.DIRECT, BASIS_DIRECT, "CPL Arts. 87-88: the signing date"),
    (retained_service, ServiceMethod.RETAINED, BASIS_RETAINED, "CPL Art. 89: deemed served when left"),
]


@pytest.mark.parametrize(("fn", "method", "basis", "cite"), ARRIVALS)
def test_services_effective_at_the_moment_of_the_act(fn: object, method: ServiceMethod, basis: str, cite: str) -> None:
    moment = datetime(2025, 1, 27, 16, 30, tzinfo=UTC)  # 00:30 on 28 Jan 2025 in Beijing
    served = fn(moment, channel="ems-1")  # type: ignore[operator]
    assert (served.method, served.basis, served.effective_at, served.channel) == (method, basis, moment, "ems-1"), cite
    assert served.served_on == date(2025, 1, 28), cite


RETURNS = [
    (ReturnGround.REFUSED, BASIS_REFUSED, "SPC Provisions on Court Express Post Art. 11: refused, served on return"),
    (ReturnGround.CONFIRMED_ADDRESS_WRONG, BASIS_CONFIRMED_WRONG, "SPC 2017 Opinion: confirmed address proved wrong"),
]


@pytest.mark.parametrize(("ground", "basis", "cite"), RETURNS)
def test_returned_mail_is_served_on_the_day_it_came_back(ground: ReturnGround, basis: str, cite: str) -> None:
    served = returned_mail_service(bj(2025, 10, 9, 15), ground)
    assert served.method is ServiceMethod.POSTAL, cite
    assert served.basis == basis, cite
    assert served.served_on == date(2025, 10, 9), cite
    assert served.effective_at == bj(2025, 10, 9, 15), cite


# (last posting, abroad, config, deemed served on, citation)
PUBLICATION = [
    (date(2025, 3, 3), False, LawConfig(), date(2025, 4, 2), "CPL Art. 95: 30 days, Wednesday 2 Apr 2025"),
    (date(2025, 9, 1), False, LawConfig(), date(2025, 10, 9), "CPL Arts. 95, 85: day 30 = 1 Oct 2025, National Day"),
    (
        date(2025, 9, 1),
        False,
        LawConfig(publication_rolls_over=False),
        date(2025, 10, 1),
        "CPL Art. 95: without roll-over, the 30th day itself",
    ),
    (date(2026, 1, 16), False, LawConfig(), date(2026, 2, 24), "CPL Arts. 95, 85: day 30 = 15 Feb 2026, Spring"),
    (date(2025, 12, 2), False, LawConfig(), date(2026, 1, 4), "CPL Arts. 95, 85: 1 Jan 2026 off; Sunday 4 Jan works"),
    (date(2025, 12, 29), False, LawConfig(), date(2026, 1, 28), "CPL Art. 95: across the year end, no roll-over"),
    (date(2025, 1, 1), False, LawConfig(), date(2025, 2, 5), "CPL Arts. 95, 85: day 30 = 31 Jan 2025, Spring"),
    (date(2025, 12, 17), True, LawConfig(), date(2026, 2, 24), "CPL Arts. 283, 85: 60 days abroad, Spring 2026"),
    (date(2026, 8, 2), True, LawConfig(), date(2026, 10, 8), "CPL Arts. 283, 85: 60 days abroad, National Day"),
    (
        date(2025, 3, 7),
        False,
        LawConfig(weekends_roll_over=False),
        date(2025, 4, 7),
        "CPL Art. 95: day 30 = 6 Apr 2025, Qingming, rolls even if weekends do not",
    ),
    (
        datetime(2025, 8, 31, 17, 0, tzinfo=UTC),
        False,
        LawConfig(),
        date(2025, 10, 9),
        "Interpretation Art. 138: posted 01:00 on 1 Sep Beijing time",
    ),
]


@pytest.mark.parametrize(("posted", "abroad", "config", "served_on", "cite"), PUBLICATION)
def test_publication(posted: date | datetime, abroad: bool, config: LawConfig, served_on: date, cite: str) -> None:
    served = publication_service(posted, config=config, abroad=abroad)
    assert served.method is ServiceMethod.PUBLICATION, cite
    assert served.basis == (BASIS_PUBLICATION_ABROAD if abroad else BASIS_PUBLICATION), cite
    assert served.served_on == served_on, cite
    # the moment that stands for "served on that day": 00:00 Beijing time of the day itself, so the task, the
    # proof of service and the deadlines (from the next day, CPL Art. 85) all show the day the law deems
    assert served.effective_at == datetime.combine(served_on, datetime.min.time(), BEIJING), cite
    assert beijing_date(served.effective_at) == served.served_on, cite
    assert served.by_period, cite


POST_ABROAD = [
    (date(2025, 7, 1), date(2025, 10, 9), "CPL Art. 283; Civil Code Art. 202: 1 Oct 2025, National Day"),
    (date(2025, 11, 30), date(2026, 2, 28), "CPL Art. 283: 28 Feb 2026, an adjusted working Saturday"),
    (date(2025, 10, 31), date(2026, 2, 2), "CPL Art. 283; Civil Code Art. 202: 31 Jan 2026 is a Saturday"),
    (date(2025, 3, 14), date(2025, 6, 16), "CPL Art. 283: 14 Jun 2025 is a Saturday"),
]


@pytest.mark.parametrize(("mailed", "served_on", "cite"), POST_ABROAD)
def test_post_abroad(mailed: date, served_on: date, cite: str) -> None:
    served = postal_abroad_service(mailed)
    assert (served.method, served.basis, served.served_on) == (ServiceMethod.POSTAL, BASIS_POSTAL_ABROAD, served_on), (
        cite
    )
    assert served.effective_at == datetime.combine(served_on, datetime.min.time(), BEIJING), cite
    assert beijing_date(served.effective_at) == served_on, cite
    no_roll = postal_abroad_service(mailed, config=LawConfig(postal_abroad_rolls_over=False))
    assert no_roll.served_on <= served_on, cite


def _e(at: datetime, channel: str) -> DeemedService | None:
    return electronic_service(at, channel=channel)


# (services, winning channel or None, citation)
PARALLEL = [
    ([_e(bj(2025, 3, 3, 10), "sms"), _e(bj(2025, 3, 3, 9), "platform")], "platform", "Rules Art. 31: earliest"),
    (
        [_e(bj(2025, 3, 3, 9), "sms"), postal_service(bj(2025, 3, 5), "recipient", channel="ems")],
        "sms",
        "Rules Art. 31",
    ),
    (
        [_e(bj(2025, 3, 3, 9), "sms"), postal_service(bj(2025, 3, 1), "recipient", channel="ems")],
        "ems",
        "Rules Art. 31; CPL 91",
    ),
    (
        [
            electronic_service(None, address_confirmed=False, read_at=bj(2025, 3, 3, 8), channel="wechat"),
            _e(bj(2025, 3, 3, 9), "platform"),
        ],
        "wechat",
        "Rules Art. 31: a presumed read at an unconfirmed address can be the earliest",
    ),
    (
        [
            electronic_service(bj(2025, 3, 3, 7), address_confirmed=False, channel="wechat"),
            _e(bj(2025, 3, 3, 9), "platform"),
        ],
        "platform",
        "Rules Art. 31: arrival at an unconfirmed address does not count",
    ),
    (
        [publication_service(date(2025, 9, 1), channel="notice"), _e(bj(2025, 10, 15), "sms")],
        "notice",
        "Rules Art. 31; CPL Art. 95: publication deemed served first",
    ),
    (
        [publication_service(date(2025, 9, 1), channel="notice"), _e(bj(2025, 10, 9, 23), "sms")],
        "sms",
        "Rules Art. 31; CPL Art. 95: arrival on the publication's service day (9 Oct) is an actual service "
        "that day: it counts before the deemed one",
    ),
    (
        [_e(bj(2025, 10, 9, 0, 0), "sms"), publication_service(date(2025, 9, 1), channel="notice")],
        "sms",
        "Rules Art. 31: the same day and the same moment (00:00): the actual service still counts",
    ),
    (
        [publication_service(date(2025, 9, 1), channel="notice"), _e(bj(2025, 10, 10, 0, 5), "sms")],
        "notice",
        "Rules Art. 31; CPL Arts. 95, 85: publication served on 9 Oct; an arrival just after midnight is later",
    ),
    (
        [
            postal_abroad_service(date(2025, 7, 1), channel="abroad"),
            postal_service(bj(2025, 10, 9, 16), "recipient", channel="ems"),
        ],
        "ems",
        "Rules Art. 31; CPL Arts. 283, 91: the receipt signed on the day post abroad is deemed: the receipt counts",
    ),
    (
        [
            postal_service(bj(2025, 10, 10, 9), "recipient", channel="ems"),
            postal_abroad_service(date(2025, 7, 1), channel="abroad"),
        ],
        "abroad",
        "Rules Art. 31; CPL Art. 283: deemed served on 9 Oct, before the receipt signed on 10 Oct",
    ),
    ([_e(bj(2025, 3, 3, 9), "sms"), _e(bj(2025, 3, 3, 9), "email")], "sms", "Rules Art. 31: a tie keeps the first"),
    ([None, None], None, "Rules Art. 31: nothing effective"),
    ([], None, "Rules Art. 31: no channel"),
]


@pytest.mark.parametrize(("services", "winner", "cite"), PARALLEL)
def test_earliest_effective_service_counts(services: list[DeemedService | None], winner: str | None, cite: str) -> None:
    best = earliest_effective(services)
    assert (best.channel if best else None) == winner, cite


def test_deadline_runs_from_the_earliest_service() -> None:
    # Rules Art. 31 + CPL Art. 171: the SMS arrived on 13 Jan 2025, the post was signed on 20 Jan
    best = earliest_effective([postal_service(bj(2025, 1, 20), "recipient"), _e(bj(2025, 1, 13), "sms")])
    assert best is not None
    [appeal] = deadlines_after_service(DocumentKind.JUDGMENT, best.served_on)
    assert appeal.due == date(2025, 2, 5)  # day 15 = 28 Jan, Spring Festival 2025 to 4 Feb


@pytest.mark.parametrize(
    "call",
    [
        lambda: electronic_service(datetime(2025, 3, 3, 9)),
        lambda: electronic_service(None, address_confirmed=False, read_at=datetime(2025, 3, 3)),
        lambda: postal_service(datetime(2025, 3, 3), "recipient"),
        lambda: postal_service(datetime(2025, 3, 3), "other:NEIGHBOUR"),
        lambda: returned_mail_service(datetime(2025, 3, 3), ReturnGround.REFUSED),
        lambda: publication_service(datetime(2025, 3, 3)),
    ],
)
def test_naive_moments_are_refused(call: object) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        call()  # type: ignore[operator]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
        max_size=6,
    )
)
def test_earliest_effective_is_the_minimum(moments: list[datetime]) -> None:
    # Rules Art. 31
    services = [electronic_service(m, channel=str(i)) for i, m in enumerate(moments)]
    best = earliest_effective(services)
    if not moments:
        assert best is None
    else:
        assert best is not None
        assert best.effective_at == min(moments)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 8, 1)), st.booleans())
def test_publication_is_never_earlier_than_its_period(posted: date, abroad: bool) -> None:
    # CPL Arts. 95, 283, 85
    served = publication_service(posted, abroad=abroad)
    assert served.served_on >= posted + timedelta(days=60 if abroad else 30)
    # CPL Art. 85: the periods that follow start the day after the service day, and the moment agrees
    assert beijing_date(served.effective_at) == served.served_on
    assert served.effective_at == deemed_moment(served.served_on)
    [appeal] = deadlines_after_service(DocumentKind.RULING, served.effective_at, config=LawConfig())
    assert appeal.start == served.served_on


LITIGATION = (AgentRole.LITIGATION_AGENT,)
RECEIVER = (AgentRole.DESIGNATED_RECEIVER,)
NOT_AGENTS = (AgentRole.LEGAL_REPRESENTATIVE, AgentRole.MAIL_HANDLER)

# (signer as reported, organisation?, the party's representatives' roles, basis or None (no service), citation)
SIGNERS: list[tuple[SignerRole | str | None, bool, tuple[AgentRole, ...], str | None, str]] = [
    ("recipient", False, (), BASIS_POSTAL, "CPL Arts. 88, 91: the recipient signs"),
    (SignerRole.RECIPIENT, True, (), BASIS_POSTAL, "CPL Arts. 88, 91: the entity signs (its stamp)"),
    ("family_member", False, (), BASIS_POSTAL_FAMILY, "CPL Art. 88: a co-resident adult family member of a person"),
    ("family_member", True, (), None, "CPL Art. 88: an entity has no family members"),
    ("mail_room", True, (), BASIS_POSTAL_MAIL_ROOM, "CPL Art. 88: the entity's mail handler (负责收件的人)"),
    ("mail_room", False, (), None, "CPL Art. 88: a mail room does not receive for a natural person"),
    (
        "legal_representative",
        True,
        (),
        BASIS_POSTAL_LEGAL_REPRESENTATIVE,
        "CPL Art. 88: the legal representative or principal person in charge of an entity",
    ),
    ("legal_representative", False, (), None, "CPL Art. 88: names no legal representative for a natural person"),
    ("agent", False, LITIGATION, BASIS_POSTAL_AGENT, "CPL Art. 88: the party's litigation agent"),
    ("agent", True, RECEIVER, BASIS_POSTAL_AGENT, "CPL Art. 88: the receiver the party designated (代收人)"),
    ("agent", False, (), None, "CPL Art. 88: an agent the party never appointed"),
    ("agent", True, NOT_AGENTS, None, "CPL Art. 88: a legal representative or mail handler on file is no agent"),
    ("agent", False, (AgentRole.MAIL_HANDLER, AgentRole.LITIGATION_AGENT), BASIS_POSTAL_AGENT, "CPL Art. 88"),
    ("other:NEIGHBOUR", False, LITIGATION, None, "CPL Art. 88: a neighbour may not receive for the party"),
    ("other:PROPERTY", True, (), None, "CPL Art. 88: property management is not the entity's mail handler"),
    ("neighbour", False, (), None, "CPL Art. 88: a role Art. 88 does not name"),
    (None, False, (), None, "CPL Art. 88: the carrier did not say who signed: nobody is presumed"),
    (SignerRole.UNKNOWN, True, RECEIVER, None, "CPL Art. 88: an unknown signer serves nobody"),
    ("", False, (), None, "CPL Art. 88: an empty role is no signer"),
    ("RECIPIENT", False, (), None, "CPL Art. 88: roles are the carrier's exact values, not guessed"),
]


@pytest.mark.parametrize(("signer", "organisation", "agents", "basis", "cite"), SIGNERS)
def test_postal_service_applies_who_may_sign(
    signer: SignerRole | str | None, organisation: bool, agents: tuple[AgentRole, ...], basis: str | None, cite: str
) -> None:
    signed_at = datetime(2025, 3, 4, 17, 30, tzinfo=UTC)  # 01:30 on 5 Mar 2025 in Beijing
    served = postal_service(signed_at, signer, organisation=organisation, agents=agents, channel="ems-1")
    if basis is None:
        assert served is None, cite
        return
    assert served is not None, cite
    assert (served.method, served.basis, served.effective_at, served.channel) == (
        ServiceMethod.POSTAL,
        basis,
        signed_at,
        "ems-1",
    ), cite
    assert served.served_on == date(2025, 3, 5), cite  # CPL Art. 91: the receipt date, in Beijing
    assert not served.by_period, cite


def test_every_role_that_may_sign_has_its_words() -> None:
    # CPL Art. 88: SIGNER_ROLES describes every role that can serve, and nothing else
    assert set(SIGNER_ROLES) == {r.value for r in SignerRole} - {SignerRole.UNKNOWN.value}
    for role in SIGNER_ROLES:
        for basis in (
            BASIS_POSTAL_FAMILY,
            BASIS_POSTAL_MAIL_ROOM,
            BASIS_POSTAL_LEGAL_REPRESENTATIVE,
            BASIS_POSTAL_AGENT,
        ):
            if SIGNER_ROLES[role] in basis:
                assert basis == f"CPL Arts. 88 and 91 (signed for by {SIGNER_ROLES[role]})"


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 8, 1)),
    st.booleans(),
    st.booleans(),
)
def test_deemed_moments_agree_with_their_service_day(posted: date, abroad: bool, rolls: bool) -> None:
    # CPL Arts. 95, 283, 85: served_on is the Beijing date of effective_at, for every config
    config = LawConfig(publication_rolls_over=rolls, postal_abroad_rolls_over=rolls)
    for served in (
        publication_service(posted, config=config, abroad=abroad),
        postal_abroad_service(posted, config=config),
    ):
        assert served.effective_at == deemed_moment(served.served_on)
        assert beijing_date(served.effective_at) == served.served_on
