"""Chinese legal citations (delivery_sdk.law.citations): the numerals, the instruments, the composed basis
strings, the fallback, and every basis the SDK records rendered fully in Chinese."""

from __future__ import annotations

import importlib
import pkgutil
import re
import string
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import delivery_sdk.law
from delivery_sdk.law.citations import EXACT, EXPLANATIONS, INSTRUMENTS, chinese, chinese_numeral, is_chinese
from delivery_sdk.model import ContactKind, ServiceMethod

CPL = "《中华人民共和国民事诉讼法》"
RULES = "《人民法院在线诉讼规则》"
INTERPRETATION = "《最高人民法院关于适用〈中华人民共和国民事诉讼法〉的解释》"
OPINION = "《最高人民法院关于进一步加强民事送达工作的若干意见》（法发〔2017〕19号）"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "零"),
        (1, "一"),
        (9, "九"),
        (10, "十"),
        (11, "十一"),
        (15, "十五"),
        (20, "二十"),
        (29, "二十九"),
        (90, "九十"),
        (100, "一百"),
        (101, "一百零一"),
        (110, "一百一十"),
        (128, "一百二十八"),
        (135, "一百三十五"),
        (202, "二百零二"),
        (283, "二百八十三"),
        (1000, "一千"),
        (1001, "一千零一"),
        (1010, "一千零一十"),
        (1260, "一千二百六十"),
        (10000, "一万"),
        (10001, "一万零一"),
        (10010, "一万零一十"),
        (11000, "一万一千"),
        (100000, "十万"),
        (120034, "十二万零三十四"),
        (99999999, "九千九百九十九万九千九百九十九"),
    ],
)
def test_chinese_numerals(n: int, text: str) -> None:
    assert chinese_numeral(n) == text


@pytest.mark.parametrize("bad", [-1, 10**8, True, 1.5])
def test_chinese_numerals_refuse_what_they_cannot_write(bad: object) -> None:
    with pytest.raises(ValueError, match="no Chinese numeral"):
        chinese_numeral(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("basis", "expected"),
    [
        ("CPL Art. 90; SPC Online Litigation Rules Art. 31", f"{CPL}第九十条；{RULES}第三十一条"),
        ("CPL Art. 91", f"{CPL}第九十一条"),
        ("SPC Interpretation Art. 135", f"{INTERPRETATION}第一百三十五条"),
        ("Civil Code Art. 202", "《中华人民共和国民法典》第二百零二条"),
        ("Measures on National Holidays Art. 2", "《全国年节及纪念日放假办法》第二条"),
        ("CPL 2017 Art. 87", "《中华人民共和国民事诉讼法》（2017年修正）第八十七条"),
        (
            "SPC Provisions on Court Express Post Art. 11",
            "《最高人民法院关于以法院专递方式邮寄送达民事诉讼文书的若干规定》第十一条",
        ),
        # items of Rules Art. 29 are 项; elsewhere (n) is a paragraph (款), and (p)(i) a paragraph's item
        ("SPC Online Litigation Rules Art. 29(4)", f"{RULES}第二十九条第（四）项"),
        ("Rules Art. 31(2)", f"{RULES}第三十一条第二款"),
        ("Rules Art. 31(2)(1)", f"{RULES}第三十一条第二款第（一）项"),
        ("CPL Art. 90(1)", f"{CPL}第九十条第一款"),
        # several articles: 、 for a list or two neighbours, 至 for a span
        ("CPL Arts. 88 and 91", f"{CPL}第八十八条、第九十一条"),
        ("CPL Arts. 87-88", f"{CPL}第八十七条、第八十八条"),
        ("CPL Arts. 87-91", f"{CPL}第八十七条至第九十一条"),
        ("CPL Arts. 128, 171, 285 and 286", f"{CPL}第一百二十八条、第一百七十一条、第二百八十五条、第二百八十六条"),
        ("SPC Opinion 2017 No. 19", OPINION),
        ("SPC 2017 Opinion", OPINION),
        # the explanations
        (
            "CPL Arts. 88 and 91 (signed for by a co-resident adult family member)",
            f"{CPL}第八十八条、第九十一条（由同住成年家属签收）",
        ),
        ("CPL Art. 283 (post abroad: deemed served 3 months after mailing)", None),
        (
            "SPC Opinion 2017 No. 19 (assisted person search: address from postal_database)",
            f"{OPINION}（协助查找：地址来源于邮政数据库）",
        ),
        (
            "CPL Art. 95 (service by the other methods failed: 2 postal round(s) came back)",
            f"{CPL}第九十五条（采用其他方式无法送达：邮寄送达二次均被退回）",
        ),
        ("CPL Art. 95 (period of 45 days as configured)", f"{CPL}第九十五条（按配置的四十五日期间计算）"),
        (
            "CPL Art. 283 (publication abroad: deemed served after 60 days) "
            "(no holiday calendar for that year: the period was not rolled over)",
            f"{CPL}第二百八十三条（涉外公告送达：自公告之日起满六十日即视为送达）（无该年度节假日安排：期间未予顺延）",
        ),
        # the paper copy is in Art. 90's first paragraph; the stored English says 90(2)
        ("CPL Art. 90(2) (paper copy on request)", f"{CPL}第九十条第一款（受送达人要求提供纸质文书）"),
    ],
)
def test_citations(basis: str, expected: str | None) -> None:
    rendered = chinese(basis)
    if expected is not None:
        assert rendered == expected
    assert is_chinese(basis)
    assert not re.search(r"[A-Za-z]", rendered), rendered


def test_the_template_keeps_its_placeholder() -> None:
    from delivery_sdk.policy import BASIS_PUBLICATION_FAILED

    assert "邮寄送达{rounds}次均被退回" in chinese(BASIS_PUBLICATION_FAILED)
    assert "邮寄送达三次均被退回" in chinese(BASIS_PUBLICATION_FAILED.format(rounds=3))


@pytest.mark.parametrize(
    "basis",
    [
        "",
        "whatever",
        "CPL",  # an instrument alone is not an article; but a string the SDK never records anyway
        "CPL Art.",
        "CPL Art. 90 (an explanation nobody translated)",
        "CPL Art. 90; Unknown Regulation Art. 5",  # one unknown part: the whole string stays English
        "CPL Art. 95 (unbalanced",
        "CPL Art. 95 (a) trailing",
        "CPL Art. 90(1)(2)(3)",
        "CPL Art. 900000000",
        "SPC Opinion 2017 No. 19 (assisted person search: address from a_source_we_do_not_know)",
        "CPL Arts. 88 and 91 (signed for by a neighbour)",
        "ＣＰＬ Art. 90",
    ],
)
def test_what_is_not_understood_stays_english(basis: str) -> None:
    if basis == "CPL":
        assert chinese(basis) == CPL
        return
    assert chinese(basis) == basis
    assert not is_chinese(basis)


@given(st.text(max_size=80))
def test_chinese_never_raises(text: str) -> None:
    rendered = chinese(text)
    assert rendered == text or "Art." not in rendered


@given(st.integers(min_value=1, max_value=2000))
def test_any_article_number_renders(n: int) -> None:
    assert chinese(f"CPL Art. {n}") == f"{CPL}第{chinese_numeral(n)}条"


# ---------------------------------------------------------------------------------------------------
# every basis the SDK records has a full Chinese rendering
# ---------------------------------------------------------------------------------------------------

_OTHER_MODULES = ("delivery_sdk.policy", "delivery_sdk.printing.package")


def _modules() -> Iterator[ModuleType]:
    for info in pkgutil.iter_modules(delivery_sdk.law.__path__, "delivery_sdk.law."):
        yield importlib.import_module(info.name)
    for name in _OTHER_MODULES:
        yield importlib.import_module(name)


def _is_basis_name(name: str) -> bool:
    return name.startswith("BASIS_") or name.endswith("_BASIS") or "_BASIS_" in name


def _constants() -> dict[str, str]:
    """Every module-level str named BASIS_* / *_BASIS (and the str values of such mappings)."""
    out: dict[str, str] = {}
    for module in _modules():
        for name, value in vars(module).items():
            if not _is_basis_name(name):
                continue
            if isinstance(value, str):
                out[f"{module.__name__}.{name}"] = value
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    if isinstance(item, str):
                        out[f"{module.__name__}.{name}[{getattr(key, 'value', key)}]"] = item
    return out


def _filled(template: str) -> str:
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    return template.format(**dict.fromkeys(fields, 2)) if fields else template


def _composed() -> dict[str, str]:
    """The bases the code composes at run time, by calling the code that composes them."""
    from delivery_sdk.law.addresses import ADDRESS_RANK, SEARCH_AID_RANK, address_basis, contact_basis
    from delivery_sdk.law.consent import BASIS_PAPER, CONSENT_BASIS
    from delivery_sdk.law.evidence import required_evidence
    from delivery_sdk.model import Contact
    from delivery_sdk.policy import PolicyConfig, publication_effective
    from delivery_sdk.records import AddressCandidate

    out: dict[str, str] = {}
    for method in ServiceMethod:
        for confirmed in (True, False):
            for r in required_evidence(method, address_confirmed=confirmed):
                out[f"evidence {method.value} {confirmed} {r.basis}"] = r.basis
    for consent, basis in CONSENT_BASIS.items():  # consent_status, paper copy requested
        out[f"consent+paper {consent.value}"] = f"{basis}; {BASIS_PAPER}"
    for source in (*ADDRESS_RANK, *SEARCH_AID_RANK):
        for confirmed in (True, False):
            address = Contact(kind=ContactKind.POSTAL, value="湖北省武汉市武昌区中北路1号", confirmed=confirmed)
            candidate = AddressCandidate(contact=address, source=source)
            out[f"address {source} {confirmed}"] = address_basis(candidate)
        for kind in (ContactKind.MOBILE, ContactKind.EMAIL):
            out[f"contact {source} {kind.value}"] = contact_basis(kind, source)
    for year in (2026, 2150):  # 2150: no holiday calendar, the period is not rolled over
        for days in (30, 60, 45):
            moment = datetime(year, 3, 1, tzinfo=UTC)
            _, basis = publication_effective(moment, PolicyConfig(publication_period=timedelta(days=days)))
            out[f"publication {year} {days}"] = basis
    return out


ALL_BASES = {**_constants(), **_composed()}


def test_the_enumeration_finds_the_known_constants() -> None:
    names = set(ALL_BASES)
    for expected in (
        "delivery_sdk.law.service.BASIS_ELECTRONIC",
        "delivery_sdk.law.service.BASIS_REFUSED",
        "delivery_sdk.law.consent.BASIS_NO_CONSENT",
        "delivery_sdk.law.consent.CONSENT_BASIS[express]",
        "delivery_sdk.law.addresses.ADDRESS_BASIS[contract]",
        "delivery_sdk.law.periods.BASIS_DEFENCE",
        "delivery_sdk.policy.BASIS_PUBLICATION_FAILED",
        "delivery_sdk.law.addresses.BASIS_NO_ADDRESS_LEFT",
    ):
        assert expected in names
    assert len(ALL_BASES) > 60


@pytest.mark.parametrize("where", sorted(ALL_BASES))
def test_every_basis_the_sdk_records_has_a_full_chinese_citation(where: str) -> None:
    basis = _filled(ALL_BASES[where])
    rendered = chinese(basis)
    assert rendered != basis, (
        f"{where}: {basis!r} has no Chinese rendering; add its explanation to "
        "delivery_sdk.law.citations.EXPLANATIONS (or the whole string to EXACT)"
    )
    assert not re.search(r"[A-Za-z]", rendered), rendered  # no "Art.", no English left
    assert rendered.startswith("《"), rendered


def test_the_tables_hold_no_english_in_their_chinese() -> None:
    for table in (INSTRUMENTS, EXPLANATIONS, EXACT):
        for english, text in table.items():
            assert not re.search(r"[A-Za-z]", text), (english, text)
    # every exact entry is a string the SDK records, or recorded before a correction (stores still hold it)
    recorded = {_filled(b) for b in ALL_BASES.values()} | STORED_BEFORE
    assert set(EXACT) <= recorded


# Basis strings the SDK recorded in earlier versions, which stores still hold and pages still show.
STORED_BEFORE = frozenset({"CPL Art. 90(2) (paper copy on request)"})


def test_corrected_bases_keep_their_chinese_for_older_stores() -> None:
    from delivery_sdk.law.consent import BASIS_PAPER

    assert BASIS_PAPER == "CPL Art. 90(1) (paper copy on request)"
    assert chinese("CPL Art. 90(2) (paper copy on request)") == chinese(BASIS_PAPER)
    assert chinese(BASIS_PAPER) == f"{CPL}第九十条第一款（受送达人要求提供纸质文书）"


@pytest.mark.parametrize("where", sorted(ALL_BASES))
def test_the_dashboard_scrubber_leaves_citations_readable(where: str) -> None:
    from delivery_sdk.supervision import scrub

    rendered = chinese(_filled(ALL_BASES[where]))
    assert scrub(rendered) == rendered  # no article or document number taken for personal data


def test_the_legal_reference_table_matches_the_code() -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "legal-reference.md"
    section = page.read_text(encoding="utf-8").split("## Citations in Chinese", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| [^|]+ \| `([^`]+)` \| ([^|]+) \|$", section, flags=re.M)
    assert len(rows) >= 20
    for english, text in rows:
        assert chinese(english) == text.strip(), english
