"""Chinese legal citations for the English basis strings the SDK records.

Every rule in :mod:`delivery_sdk.law` (and the policy and engine) records its legal basis as a short English
string ("CPL Art. 90; SPC Online Litigation Rules Art. 31"). Events store those strings, so they never
change. Court staff read Chinese: :func:`chinese` renders any basis string the SDK produces as a formal
citation::

    >>> chinese("CPL Art. 90; SPC Online Litigation Rules Art. 31")
    '《中华人民共和国民事诉讼法》第九十条；《人民法院在线诉讼规则》第三十一条'

How a string is rendered, in order:

1. :data:`EXACT` — a whole basis string mapped to its Chinese citation. Use it when the Chinese must say
   something the structure of the English does not (see ``BASIS_PAPER`` below).
2. The structured parser — the string is split at top-level ``;`` into citations of the form
   ``<instrument> [Art. N | Arts. N and M | Arts. N-M] [(explanation)]``. The instrument comes from
   :data:`INSTRUMENTS`, the article numbers become Chinese numerals (``Art. 29(4)`` of the Online Litigation
   Rules is an item, 第二十九条第（四）项; elsewhere ``(n)`` is a paragraph, 第n款), and the explanation comes
   from :data:`EXPLANATIONS` (exact English text) or :data:`_NOTE_PATTERNS` (the composed ones, e.g.
   "signed for by ...").
3. Anything not fully understood comes back **unchanged** (English): never a half-translated citation,
   never an exception. ``tests/test_citations.py`` enumerates every basis constant and every basis the
   policy and engine compose and requires a full Chinese rendering, so a new constant without its
   rendering fails there: add its explanation to :data:`EXPLANATIONS` (or the whole string to
   :data:`EXACT`).

Developer-facing output (reprs, logs, API fields such as ``TaskStatus.basis``) keeps the English.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

__all__ = ["EXACT", "EXPLANATIONS", "INSTRUMENTS", "chinese", "chinese_numeral", "is_chinese"]

CPL = "《中华人民共和国民事诉讼法》"
RULES = "《人民法院在线诉讼规则》"
INTERPRETATION = "《最高人民法院关于适用〈中华人民共和国民事诉讼法〉的解释》"
OPINION = "《最高人民法院关于进一步加强民事送达工作的若干意见》（法发〔2017〕19号）"
EXPRESS_POST = "《最高人民法院关于以法院专递方式邮寄送达民事诉讼文书的若干规定》"
CIVIL_CODE = "《中华人民共和国民法典》"
HOLIDAY_MEASURES = "《全国年节及纪念日放假办法》"

# English instrument names (as the basis strings spell them) -> Chinese title. Matched longest first.
INSTRUMENTS: Mapping[str, str] = MappingProxyType(
    {
        "CPL": CPL,
        "CPL 2017": "《中华人民共和国民事诉讼法》（2017年修正）",
        "Civil Procedure Law": CPL,
        "SPC Online Litigation Rules": RULES,
        "Online Litigation Rules": RULES,
        "Rules": RULES,
        "SPC Interpretation": INTERPRETATION,
        "Interpretation": INTERPRETATION,
        "SPC Opinion 2017 No. 19": OPINION,
        "SPC 2017 Opinion": OPINION,
        "SPC Opinion": OPINION,
        "SPC Provisions on Court Express Post": EXPRESS_POST,
        "Civil Code": CIVIL_CODE,
        "Measures on National Holidays": HOLIDAY_MEASURES,
        "National Holidays Measures": HOLIDAY_MEASURES,
        "State Council Measures on National Holidays": HOLIDAY_MEASURES,
    }
)

# The instruments whose "(n)" after an article number is an item (项) rather than a paragraph (款).
_ITEMS: frozenset[tuple[str, int]] = frozenset({(RULES, 29)})

# Who signed the return receipt (delivery_sdk.law.service.SIGNER_ROLES values) -> Chinese.
_SIGNERS: Mapping[str, str] = MappingProxyType(
    {
        "the recipient": "受送达人本人",
        "a co-resident adult family member": "同住成年家属",
        "the entity's mail handler": "法人或者其他组织负责收件的人",
        "the litigation agent or designated receiver": "诉讼代理人或者代收人",
        "the entity's legal representative or principal person in charge": ("法人的法定代表人或者其他组织的主要负责人"),
    }
)

# Where assisted person search found an address (law.addresses.candidate_order's sources) -> Chinese.
_SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "confirmation_form": "送达地址确认书",
        "contract": "合同约定",
        "own_filings": "当事人提交的诉讼材料",
        "litigation": "一年内其他诉讼",
        "common_use": "一年内经常使用",
        "registry": "登记机关",
        "household_registry": "户籍登记",
        "business_registry": "工商登记",
        "postal_database": "邮政数据库",
        "operator": "通信运营商",
    }
)

# The explanation in parentheses after a citation, exact English text -> Chinese (without the brackets).
EXPLANATIONS: Mapping[str, str] = MappingProxyType(
    {
        # law/service.py
        "refused to sign: deemed served on the day the mail came back": "受送达人拒绝签收：以文书退回之日视为送达",
        "confirmed address proved wrong: deemed served on return": "确认的送达地址不准确：以文书退回之日视为送达",
        "unconfirmed address: effective on reply or act": (
            "受送达人未确认的电子地址：受送达人回复已收悉或者作出相应诉讼行为时送达生效"
        ),
        "unconfirmed address: presumed on read, rebuttable": (
            "受送达人未确认的电子地址：系统反馈受送达人已阅知的，推定完成送达，受送达人可以反证推翻"
        ),
        "publication abroad: deemed served after 60 days": "涉外公告送达：自公告之日起满六十日即视为送达",
        "post abroad: deemed served 3 months after mailing": "涉外邮寄送达：自邮寄之日起满三个月即视为送达",
        "signing date on the proof of service": "以送达回证上的签收日期为送达日期",
        "retained service: deemed served": "留置送达：视为送达",
        # policy.py
        "whereabouts unknown: no address left to serve at": "受送达人下落不明：已无可送达的地址",
        "no holiday calendar for that year: the period was not rolled over": "无该年度节假日安排：期间未予顺延",
        # law/consent.py
        "express consent": "受送达人明确表示同意",
        "pre-suit agreement": "受送达人在诉讼前已作出约定或者承诺",
        "e-address given in a pleading": "受送达人在起诉状、上诉状、申请书、答辩状中主动提供电子地址",
        "accepted a completed e-service without objecting": "受送达人接受已经完成的电子送达，且未明确表示不同意",
        "confirmed by phone": "经电话确认",
        "confirmed on the platform": "经诉讼平台确认",
        "address-confirmation form": "送达地址确认书",
        "electronic service needs the recipient's consent": "电子送达须经受送达人同意",
        "judgments, rulings and mediation documents not served electronically": (
            "判决书、裁定书、调解书不适用电子送达"
        ),
        "paper copy on request": "受送达人要求提供纸质文书",
        "the recipient objected to electronic service": "受送达人明确表示不同意电子送达",
        "completed e-service accepted without objecting: effective at the acceptance": (
            "受送达人接受已经完成的电子送达，且未明确表示不同意：自受送达人接受时送达生效"
        ),
        "completed e-service accepted without objecting: effective from its arrival": (
            "受送达人接受已经完成的电子送达，且未明确表示不同意：自送达信息到达受送达人特定系统时送达生效"
        ),
        # law/evidence.py
        "unconfirmed address": "受送达人未确认的电子地址",
        "reason and process recorded in the case file": "公告送达的原因和经过记入案卷",
        # law/addresses.py, engine.py
        "confirmed on the address-confirmation form": "经送达地址确认书确认",
        "address agreed in a contract": "当事人在合同中约定的送达地址",
        "address in the party's own filings": "当事人在诉讼中提交的书面材料载明的地址",
        "address used in litigation within the past year": "当事人一年内进行其他诉讼时使用的地址",
        "address commonly used within the past year": "当事人一年内进行民事活动时经常使用的地址",
        "household-registration address": "户籍登记地址",
        "business-registration address": "工商登记或者其他依法登记、备案的地址",
        "assisted person search: no untried address in any source": "协助查找：各来源均无尚未尝试的地址",
        # law/periods.py
        "defence within 15 days of service of the complaint": "被告在收到起诉状副本之日起十五日内提出答辩状",
        "appeal within 15 days of service of the judgment": "不服判决的，在判决书送达之日起十五日内提起上诉",
        "appeal within 10 days of service of the ruling": "不服裁定的，在裁定书送达之日起十日内提起上诉",
        "no domicile in the PRC: defence within 30 days": (
            "被告在中华人民共和国领域内没有住所的，在收到起诉状副本后三十日内提出答辩状"
        ),
        "no domicile in the PRC: appeal within 30 days": (
            "在中华人民共和国领域内没有住所的当事人，在判决书、裁定书送达之日起三十日内提起上诉"
        ),
        "notice of the hearing at least 3 days before it": "在开庭三日前通知当事人和其他诉讼参与人",
    }
)

# Whole basis strings whose Chinese is not what the parser would build from the English.
EXACT: Mapping[str, str] = MappingProxyType(
    {
        # law/consent.py's BASIS_PAPER said "Art. 90(2)" before it was corrected to 90(1): in the 2021/2023
        # text the paper copy on request is the second sentence of Art. 90's first paragraph (the second
        # paragraph fixes the service date). Stores keep the old English; the Chinese cites the right paragraph.
        "CPL Art. 90(2) (paper copy on request)": f"{CPL}第九十条第一款（受送达人要求提供纸质文书）",
    }
)

_DIGITS = "零一二三四五六七八九"
_UNITS = ("", "十", "百", "千")


def chinese_numeral(n: int) -> str:
    """``n`` (0 <= n < 10**8) in Chinese numerals as statutes write article numbers: 10 十, 15 十五,
    101 一百零一, 110 一百一十, 202 二百零二, 1001 一千零一, 10000 一万."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 10**8:
        raise ValueError(f"no Chinese numeral for {n!r} (0 <= n < 100000000)")
    if n == 0:
        return "零"
    high, low = divmod(n, 10_000)
    if not high:
        return _below_10000(low, leading=True)
    text = _below_10000(high, leading=True) + "万"
    if low:
        text += ("零" if low < 1000 else "") + _below_10000(low, leading=False)
    return text


def _below_10000(n: int, *, leading: bool) -> str:
    digits = [int(d) for d in f"{n:04d}"]  # thousands, hundreds, tens, ones
    out: list[str] = []
    zero = False
    started = False
    for position, digit in enumerate(digits):
        unit = _UNITS[3 - position]
        if digit == 0:
            zero = started
            continue
        if zero:
            out.append("零")
            zero = False
        if not (leading and not started and digit == 1 and unit == "十"):  # 十五, not 一十五, at the start
            out.append(_DIGITS[digit])
        out.append(unit)
        started = True
    return "".join(out)


_NUMBER = r"\d+(?:\(\d+\))*"
_REF = re.compile(rf"Arts?\.\s+(?P<refs>{_NUMBER}(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*[-–]\s*){_NUMBER})*)")
_INSTRUMENT = re.compile("|".join(re.escape(k) for k in sorted(INSTRUMENTS, key=len, reverse=True)))
_PART = re.compile(r"(\d+)((?:\(\d+\))*)")
_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s*[-–]\s*")


def _signed_for(m: re.Match[str]) -> str | None:
    who = _SIGNERS.get(m["who"])
    return None if who is None else f"由{who}签收"


def _failed_rounds(m: re.Match[str]) -> str | None:
    rounds = m["rounds"]
    count = rounds if rounds.startswith("{") else chinese_numeral(int(rounds))
    return f"采用其他方式无法送达：邮寄送达{count}次均被退回"


def _found_at(m: re.Match[str]) -> str | None:
    source = _SOURCES.get(m["source"])
    return None if source is None else f"协助查找：地址来源于{source}"


# The electronic contacts assisted person search may find (ContactKind values) -> Chinese.
_CONTACT_KINDS: Mapping[str, str] = MappingProxyType(
    {"mobile": "手机号码", "email": "电子邮箱", "wechat": "微信账号", "eservice": "电子送达账户"}
)


def _contact_found(m: re.Match[str]) -> str | None:
    kind, source = _CONTACT_KINDS.get(m["kind"]), _SOURCES.get(m["source"])
    return None if kind is None or source is None else f"协助查找：{kind}来源于{source}"


def _configured_period(m: re.Match[str]) -> str | None:
    return f"按配置的{chinese_numeral(int(m['days']))}日期间计算"


# The explanations the code composes (f-strings), as patterns -> a function that renders a match or refuses.
_NOTE_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = (
    (re.compile(r"signed for by (?P<who>.+)"), _signed_for),
    (
        re.compile(r"service by the other methods failed: (?P<rounds>\d+|\{rounds\}) postal round\(s\) came back"),
        _failed_rounds,
    ),
    (re.compile(r"assisted person search: address from (?P<source>\w+)"), _found_at),
    (re.compile(r"assisted person search: (?P<kind>\w+) from (?P<source>\w+)"), _contact_found),
    (re.compile(r"period of (?P<days>\d+) days as configured"), _configured_period),
)


def _explanation(note: str) -> str | None:
    found = EXPLANATIONS.get(note)
    if found is not None:
        return found
    for pattern, render in _NOTE_PATTERNS:
        m = pattern.fullmatch(note)
        if m is not None:
            return render(m)
    return None


def _article(instrument: str, part: str) -> str | None:
    m = _PART.fullmatch(part)
    if m is None:
        return None
    number = int(m[1])
    text = f"第{chinese_numeral(number)}条"
    subs = [int(sub) for sub in re.findall(r"\((\d+)\)", m[2])]
    # Art. N(p)(i): paragraph p (款), item i (项); the articles in _ITEMS number their items directly.
    levels = ("项",) if (instrument, number) in _ITEMS else ("款", "项")
    if len(subs) > len(levels):
        return None
    for sub, level in zip(subs, levels, strict=False):
        text += f"第（{chinese_numeral(sub)}）项" if level == "项" else f"第{chinese_numeral(sub)}款"
    return text


def _articles(instrument: str, refs: str) -> str | None:
    parts = _SEPARATOR.split(refs)
    seps = _SEPARATOR.findall(refs)
    rendered = [_article(instrument, p) for p in parts]
    if any(r is None for r in rendered):
        return None
    out = rendered[0] or ""
    numbers = [int(p.split("(", 1)[0]) for p in parts]  # each part is N or N(p)...: _article rendered it
    for i, (sep, r) in enumerate(zip(seps, rendered[1:], strict=True)):
        span = sep.strip() in ("-", "–") and numbers[i + 1] - numbers[i] > 1  # 87-88: 第八十七条、第八十八条
        out += ("至" if span else "、") + (r or "")
    return out


def _citation(segment: str) -> str | None:
    m = _INSTRUMENT.match(segment)
    if m is None:
        return None
    instrument = INSTRUMENTS[m[0]]
    rest = segment[m.end() :]
    text = instrument
    ref = re.match(r"\s+", rest) and _REF.match(rest.lstrip())
    if ref:
        articles = _articles(instrument, ref["refs"])
        if articles is None:
            return None
        text += articles
        rest = rest.lstrip()[ref.end() :]
    notes = _notes(rest)
    if notes is None:
        return None
    for english in notes:
        note = _explanation(english)
        if note is None:
            return None
        text += f"（{note}）"
    return text


def _notes(rest: str) -> list[str] | None:
    """The explanations in `` (...)`` groups that make up ``rest`` (nested brackets kept), or None."""
    notes: list[str] = []
    while rest:
        if not rest.startswith(" ("):
            return None
        depth = 0
        for i, ch in enumerate(rest[1:], start=1):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                notes.append(rest[2:i])
                rest = rest[i + 1 :]
                break
        else:
            return None
    return notes


def _segments(basis: str) -> list[str]:
    """Split at the ``;`` outside parentheses."""
    out: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(basis):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == ";" and depth == 0:
            out.append(basis[start:i].strip())
            start = i + 1
    out.append(basis[start:].strip())
    return out


def chinese(basis: str) -> str:
    """The formal Chinese citation for ``basis``, an English basis string the SDK records; ``basis``
    unchanged when it is not one this module understands (never raises)."""
    exact = EXACT.get(basis)
    if exact is not None:
        return exact
    try:
        rendered = [_citation(s) for s in _segments(basis)]
    except (ValueError, KeyError):  # pragma: no cover - defensive: a number beyond the numerals, say
        return basis
    if not rendered or any(r is None for r in rendered):
        return basis
    return "；".join(r for r in rendered if r is not None)


def is_chinese(basis: str) -> bool:
    """Whether :func:`chinese` renders ``basis`` fully (rather than returning the English unchanged)."""
    return chinese(basis) != basis
