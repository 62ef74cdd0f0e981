"""What each event means: who acted (the court, the engine, a provider, staff) and its legal effect, in words.

Contact values and waybills are masked here (:func:`delivery_sdk.model.mask`), and every free text an event
carries (reasons, bases, sources, a party id) goes through :func:`scrub`: nothing this module returns holds a
phone number, an e-mail address, a street address or an ID number in clear.

The law is cited in Chinese (:func:`delivery_sdk.law.citations.chinese`), as court staff read it; the
events keep their English basis.
"""

from __future__ import annotations

import re
from datetime import datetime

from ..events import (
    AddressSearchFailed,
    AddressUpdated,
    Cancelled,
    ContactUpdated,
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
from ..law.citations import chinese
from ..locale import beijing, catalogue, centre_name, channel_name, label
from ..model import mask

__all__ = ["ACTORS", "actor_of", "describe", "scrub"]

ACTORS = ("court", "engine", "provider", "staff")

# -- the free-text scrubber ----------------------------------------------------------------------------
#
# Free text (a provider's failure reason, a staff note, a routing reason) may hold personal data in any
# spelling. What is masked, in this order (numbers with :func:`mask`: their first and last two kept):
#
# 1. e-mail addresses (``name@domain.tld``, a full-width ＠ or a Chinese name too), all but the domain's
#    last two letters;
# 2. street addresses: a road, street, lane, village or estate with a house, building, unit or room number
#    (``中北路1号``, ``红星村3组``, ``3栋2单元502室``) is replaced by as many ``*``; the divisions before it
#    (``湖北省武汉市武昌区``) stay, as does a place without a number (a court's name, a road name alone):
#    they are not personal data;
# 3. phone numbers: mainland mobiles and landlines in any common spelling (``139-1234-5678``,
#    ``+86 139 1234 5678``, ``0086...``, ``027-87654321``, ``(027) 8765 4321``), full-width digits too;
# 4. resident ID numbers (18 characters, the last may be X; written whole or in 6-8-4 groups);
# 5. any other run of 7 or more digits (an account, a bank card, an ID of another kind).
#
# Numbers are only taken whole: a digit run inside a longer run of ASCII letters and digits (a dispatch or
# task id such as ``a3f09171234567b.2``) is an identifier, not a phone. Dates and times (2026-11-02 08:07),
# amounts (1,280.50 元), article numbers (CPL Art. 90, 第九十条), six-digit division codes and case numbers
# ((2026)鄂0106民初1234号) stay readable.

_D = "[0-9０-９]"  # a digit, ASCII or full-width
_SEP = r"[ \-－.．\u3000]"  # what people put between the groups of a phone number
_START = "(?<![0-9０-９A-Za-z])"  # a number starts here: not inside a longer number or identifier
_END = "(?![0-9０-９A-Za-z])"
_CC = r"(?:(?:\+|＋|00)\s?86[ \-－]?)"  # the country code, +86 or 0086

_EMAIL_TEXT = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}|[\u4e00-\u9fff]{1,8})[@＠][A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}"
)

_CJK = "[\u4e00-\u9fff]"
_PROVINCES = (
    "北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|广西|海南|"
    "重庆|四川|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|香港|澳门|台湾"
)
# words that lead up to an address: kept in clear, and never taken for part of a place name
_LEAD = "寄往|寄至|寄送至|寄到|送达至|送达到|送至|送往|送到|迁往|迁至|住址|地址|住所地|住所|现住|居住|户籍地|位于|退回"
_NAME_CHAR = f"(?:(?!{_PROVINCES}|{_LEAD}){_CJK})"
_DIVISION = (
    f"(?:(?:{_PROVINCES})(?:省|市|自治区|特别行政区)?"
    f"|{_NAME_CHAR}{{1,7}}?(?:自治州|自治县|地区|新区|省|市|州|盟|区|县|旗|镇|乡|街道))"
)
# Every part is bounded (at most 6 divisions, names of at most 7 or 12 characters, numbers of at most 6
# digits) and each division is taken whole ((?>...)): a failed match gives back whole divisions, never
# re-splits them, so the work per position is bounded and a scrub is linear in the text's length.
_STREET = f"{_NAME_CHAR}{{1,12}}?(?:大道|大街|胡同|小区|花园|公寓|大厦|新村|社区|路|街|巷|弄|道|村|里|苑|园|屯|庄)"
_NUMBER = f"(?:{_D}{{1,6}}(?:[-－之]{_D}{{1,6}})?|[一二三四五六七八九十百〇零]{{1,6}})"
_UNIT = "(?:号院|号楼|號|号|组|弄|栋|幢|座|单元|室|楼|层|户)"
_ADDRESS = re.compile(
    f"(?P<lead>{_LEAD})?"
    f"(?P<divisions>(?>{_DIVISION}){{0,6}})"
    f"(?P<place>{_STREET}(?:{_NUMBER}{_UNIT}){{1,6}}|(?<![0-9０-９]){_NUMBER}(?:栋|幢|座|号楼)(?:{_NUMBER}(?:单元|层|楼))?{_NUMBER}(?:室|户))"
)

_MOBILE_TEXT = f"{_CC}?[1１][3-9３-９]{_D}(?:{_SEP}?{_D}){{8}}"
_AREA = f"(?:{_CC}[(（]?0?{_D}{{2,3}}[)）]?|[(（]0{_D}{{2,3}}[)）]|0{_D}{{2,3}})"  # +86 27, (027), 027
_LANDLINE = f"{_AREA}{_SEP}{{0,2}}{_D}{{3,4}}{_SEP}?{_D}{{4}}"
_ID_GROUPED = f"{_D}{{6}}{_SEP}{_D}{{8}}{_SEP}{_D}{{3}}[0-9０-９Xx]"
_AMOUNT = r"(?![.．]\d|\s?(?:元|yuan|RMB|CNY))"  # 12345678.50 or 12345678元 is an amount, not an account
_NUMBERS = re.compile(f"{_START}(?:{_ID_GROUPED}|{_MOBILE_TEXT}|{_LANDLINE}|{_D}{{7,}}[Xx]?{_AMOUNT}){_END}")
# a cheap first look: no digit and no @ means nothing to mask
_MAYBE = re.compile("[0-9０-９@＠一二三四五六七八九十〇零]")


def _masked(match: re.Match[str]) -> str:
    return mask(match.group())


def _masked_email(match: re.Match[str]) -> str:
    text = match.group()  # the name part may be a person's name: nothing of it is kept, only the domain's end
    return "*" * (len(text) - 2) + text[-2:]


def _masked_address(match: re.Match[str]) -> str:
    place = match.group("place")
    return f"{match.group('lead') or ''}{match.group('divisions')}{'*' * len(place)}"


def scrub(text: str) -> str:
    """Free text with every phone number, e-mail address, street address and ID number masked (the rules
    are listed above this function in :mod:`delivery_sdk.supervision.meaning`)."""
    if not _MAYBE.search(text):
        return text
    if "@" in text or "＠" in text:
        text = _EMAIL_TEXT.sub(_masked_email, text)
    text = _ADDRESS.sub(_masked_address, text)
    return _NUMBERS.sub(_masked, text)


# The articles the meanings cite, in Chinese for the staff who read the dashboard.
_LAW_ARRIVAL = chinese("CPL Art. 90")
_LAW_READ = chinese("SPC Online Litigation Rules Art. 31")
_LAW_POSTAL = chinese("CPL Art. 91")
_LAW_SIGNED = chinese("CPL Arts. 87-88, 91")
_LAW_PUBLICATION = chinese("CPL Art. 95")


def _law(basis: str) -> str:
    """A basis an event recorded, as a Chinese citation (scrubbed: an unknown one stays as recorded)."""
    return scrub(chinese(basis))


def actor_of(event: Event) -> str:
    """Who produced the fact: ``court`` (the request), ``engine``, ``provider`` (a channel, print centre,
    carrier or address source) or ``staff``."""
    if isinstance(event, TaskCreated):
        return "court"
    if isinstance(event, Cancelled | ResumedByStaff):
        return "staff"
    if isinstance(event, AddressUpdated):
        return "staff" if event.source in ("staff", "manual", "court") else "provider"
    if isinstance(event, ContactUpdated):
        return "staff" if event.actor is not None or event.source in ("staff", "manual", "court") else "provider"
    if isinstance(event, DispatchSent | DispatchDelivered | DispatchRead | DispatchFailed):
        return "provider"
    if isinstance(event, Printed | Enveloped | Mailed | PostSigned | PostReturned):
        return "provider"
    return "engine"


def describe(event: Event, lang: str | None = None) -> str:
    """The event's legal meaning in one sentence (Chinese by default, ``lang="en"`` for English), with
    personal data masked and times in Beijing time (:func:`delivery_sdk.locale.beijing`)."""
    m = catalogue(lang)
    if isinstance(event, TaskCreated):
        case = event.request.case
        return m(
            "meaning.task_created",
            documents=len(event.request.documents),
            case=scrub(case.case_number),
            party=scrub(event.request.party.party_id),
        )
    if isinstance(event, DispatchQueued):
        return m(
            "meaning.dispatch_queued",
            dispatch=event.dispatch_id,
            kind=label("kind", event.kind.value, lang),
            channel=scrub(channel_name(event.kind.value, event.channel, lang)),
            contact=mask(event.contact.value),
        )
    if isinstance(event, DispatchSent):
        return m("meaning.dispatch_sent", dispatch=event.dispatch_id)
    if isinstance(event, DispatchDelivered):
        return m(
            "meaning.dispatch_delivered",
            dispatch=event.dispatch_id,
            at=beijing(event.delivered_at, lang),
            law=_LAW_ARRIVAL,
        )
    if isinstance(event, DispatchRead):
        return m("meaning.dispatch_read", dispatch=event.dispatch_id, law=_LAW_READ)
    if isinstance(event, DispatchFailed):
        return m("meaning.dispatch_failed", dispatch=event.dispatch_id, reason=scrub(event.reason))
    if isinstance(event, DispatchTimedOut):
        return m("meaning.dispatch_timed_out", dispatch=event.dispatch_id)
    if isinstance(event, FellBackToPost):
        return m("meaning.fell_back_to_post", reason=scrub(event.reason), law=_LAW_POSTAL)
    if isinstance(event, AddressUpdated):
        return m(
            "meaning.address_updated",
            contact=mask(event.contact.value),
            source=scrub(event.source),
            confidence=f"{event.confidence:.0%}",
        )
    if isinstance(event, ContactUpdated):
        kind = label("contact", event.contact.kind.value, lang)
        by = "" if event.actor is None else m("meaning.contact_by", actor=scrub(event.actor))
        contact, source = mask(event.contact.value), scrub(event.source)
        if event.replaces is None:
            return m("meaning.contact_updated", kind=kind, contact=contact, source=source, by=by)
        replaced = mask(event.replaces.value)
        return m("meaning.contact_replaced", kind=kind, replaced=replaced, contact=contact, source=source, by=by)
    if isinstance(event, AddressSearchFailed):
        return m("meaning.address_search_failed", reason=scrub(event.reason))
    if isinstance(event, PrintRouted):
        return m("meaning.print_routed", centre=scrub(centre_name(event.centre_id)), reason=scrub(event.reason))
    if isinstance(event, Printed):
        return m("meaning.printed", dispatch=event.dispatch_id)
    if isinstance(event, Enveloped):
        return m("meaning.enveloped", dispatch=event.dispatch_id, at=beijing(event.enveloped_at, lang))
    if isinstance(event, Mailed):
        return m("meaning.mailed", waybill=mask(event.waybill))
    if isinstance(event, PostSigned):
        return m(
            "meaning.post_signed",
            signer=label("signer", scrub(event.signer_role), lang).replace("_", " "),
            day=_day(event.signed_at),
            law=_LAW_SIGNED,
        )
    if isinstance(event, PostReturned):
        return m("meaning.post_returned", reason=label("returned", event.reason.value, lang).replace("_", " "))
    if isinstance(event, PublicationStarted):
        return m(
            "meaning.publication_started",
            day=_day(event.published_at),
            law=_law(event.basis) if event.basis else _LAW_PUBLICATION,
        )
    if isinstance(event, Served):
        return m(
            "meaning.served",
            method=label("method", event.method.value, lang),
            law=_law(event.basis),
            at=beijing(event.effective_at, lang),
        )
    if isinstance(event, Filed):
        return m("meaning.filed")
    if isinstance(event, Cancelled):
        return m("meaning.cancelled", reason=scrub(event.reason))
    if isinstance(event, NeedsAttention):
        return m("meaning.needs_attention", reason=scrub(event.reason))
    if isinstance(event, ResumedByStaff):
        return m("meaning.resumed_by_staff")
    return label("event", event.TYPE, lang)


def _day(moment: datetime) -> str:
    """The calendar day of ``moment`` in Beijing (a signing or publication date)."""
    return beijing(moment, zone=False)[:10]
