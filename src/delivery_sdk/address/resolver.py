"""Free-text Chinese address to its 6-digit division code (GB/T 2260), with a confidence and its evidence.

``resolve(text)`` finds the names of provinces, prefectures, counties, townships and functional zones in the
text and picks the deepest division that every confident name agrees with. The rules, in the order they act
(docs/addresses.md explains each with examples):

0. **Normalisation first.** NFKC (full-width digits and letters), every kind of space and zero-width
   character removed, traditional characters of division names mapped to simplified (荊州 -> 荆州, 區, 鎮),
   and postal codes, phone numbers and building/room parts masked, so none of them can be read as a place.
1. **Names.** Each division is known by its full name (湖北省, 武昌区, 长阳土家族自治县), the forms people write
   for autonomous units (恩施州, 长阳县) and its historical names, each mapped to the division that succeeded
   it (襄樊市 -> 420600, 武昌县 -> 江夏区 420115); these are *strong*. The name without its suffix (湖北, 武汉,
   武昌) is *weak*: it counts only when another name confirms it, and never when a township, village or farm
   word follows it (洪山镇 is not 洪山区). Townships and subdistricts (樟村坪镇, 小溪塔街道) and functional
   zones (东湖新技术开发区) are strong names whose candidates are the counties (or the prefecture) they lie in.
2. **Longest match**, left to right; a weak name gives way to a strong one that starts inside it.
3. **Roads are not places.** A name followed by 路/街/大道/巷/... (北京中路, 中山大道, 江汉二路) is ignored.
4. **Hierarchy.** A candidate division is kept only if every strong name in the text lies on its path. The
   deepest kept candidate wins; a tie goes to the one more names agree with. A township that contradicts
   the counties named beside it is set aside (the named county stands, with less confidence).
5. **Home province.** A tie that remains is broken by the home province when exactly one candidate lies in
   it (``ASSUMED_HOME_PROVINCE``); otherwise ``AMBIGUOUS``.
6. **Corrections last.** Only when the word after a known province or prefecture is *no* known name at all
   and one character away from exactly one of its children (孝感市云孟县 -> 云梦县) is it corrected
   (``FUZZY``, ``corrections``). A correction that would decide the prefecture must be confirmed by another
   name in the text, or it is refused.

Every answer carries a ``confidence`` and its ``evidence``; :attr:`Resolution.ok` (a code and a confidence of
at least :data:`ROUTING_THRESHOLD`) is what a router may act on. Everything else goes to a person with the
candidates.

The data (``data/divisions.tsv`` from ``scripts/build_divisions.py``, ``data/zones.tsv`` by hand) is read
once, lazily, on first use; after that ``resolve`` is pure and does no I/O.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

import attrs

from .._exceptions import ValidationError
from . import route_key

__all__ = [
    "MAX_ADDRESS_CHARS",
    "ROUTING_THRESHOLD",
    "Candidate",
    "DivisionTable",
    "InvalidAddress",
    "Resolution",
    "ResolutionFlag",
    "ResolutionStatus",
    "division_table",
    "normalise",
    "resolve",
]

MAX_ADDRESS_CHARS = 500
"""Longer input is refused: no postal address is that long, and the resolver's cost grows with the text."""

ROUTING_THRESHOLD = 0.8
"""The one place the routing threshold lives: an answer with a code and at least this confidence may be routed
(:attr:`Resolution.ok`); anything less goes to a person (``needs_attention`` with the candidates).

The confidences the resolver gives (docs/addresses.md, "Confidence"): 0.97 for a county confirmed by another
name, 0.92 for a county found through its township inside a named province/prefecture/county, 0.9 for a lone
county name unique in the country or a prefecture, 0.82 for a home-province tie-break; minus 0.05 for an old
name and 0.12 for a correction; a township with nothing around it (0.6), a township contradicting the named
county across prefectures (0.6) and a home-province guess on a township alone (0.55) stay below it."""


class InvalidAddress(ValidationError):
    """The address given to the resolver is not text it can read (not a str, empty, too long, not UTF-8)."""


class ResolutionStatus(enum.Enum):
    """How the resolver decided; only ``RESOLVED``, ``ASSUMED_HOME_PROVINCE`` and ``FUZZY`` carry a code."""

    RESOLVED = "resolved"
    """Every confident name in the text agrees on one division."""
    ASSUMED_HOME_PROVINCE = "assumed_home_province"
    """The names fit divisions in several provinces; the one in the home province was taken."""
    FUZZY = "fuzzy"
    """A one-character typo in a division's name was corrected inside a known province or prefecture."""
    AMBIGUOUS = "ambiguous"
    """Several divisions fit, or the names contradict each other; a person must choose among the candidates."""
    UNRESOLVED = "unresolved"
    """No division below province level was found."""


class ResolutionFlag(enum.Enum):
    """What a clerk should know about how an answer was reached (``Resolution.flags``)."""

    OLD_NAME = "old_name"
    """A historical name was used (襄樊市, 监利县); the answer is its successor."""
    CORRECTED = "corrected"
    """A misspelt name was corrected (see ``Resolution.corrections``)."""
    CORRECTION_REFUSED = "correction_refused"
    """A correction would have decided the prefecture and nothing else in the text confirmed it."""
    TOWNSHIP = "township"
    """A township or subdistrict decided or confirmed the county."""
    TOWNSHIP_CONFLICT = "township_conflict"
    """A township named in the text lies outside the county named beside it; the county was kept."""
    ZONE = "zone"
    """A functional zone (开发区, 管理区, 农场) was read through the zone table."""
    PREFECTURE_ONLY = "prefecture_only"
    """The code is a prefecture's: enough to route, not to know the county."""
    HOME_PROVINCE = "home_province"
    """A tie between provinces was broken by the home province."""
    NUMBERS_IGNORED = "numbers_ignored"
    """A postal code, phone number or building/room part was masked before matching."""
    NORMALISED = "normalised"
    """Spaces, full-width forms or traditional characters were normalised before matching."""


_WITH_CODE = frozenset(
    {ResolutionStatus.RESOLVED, ResolutionStatus.ASSUMED_HOME_PROVINCE, ResolutionStatus.FUZZY},
)


@attrs.frozen(kw_only=True)
class Candidate:
    """A division the address may mean."""

    code: str
    name: str
    """The division's own name (武昌区)."""
    path: str
    """Province to division (湖北省武汉市武昌区)."""


@attrs.frozen(kw_only=True)
class Resolution:
    """The outcome of :func:`resolve`.

    ``code`` and ``route_key`` are set only when the status is ``RESOLVED``, ``ASSUMED_HOME_PROVINCE`` or
    ``FUZZY``; ``span`` is the ``(start, end)`` slice of the address that the decision rests on.
    ``confidence`` (0-1) and ``evidence`` (one line per fact used) say how sure the answer is and why;
    ``corrections`` lists ``(as written, corrected)`` pairs; ``flags`` what a clerk should see.
    """

    address: str = attrs.field(repr=False)
    code: str | None
    route_key: str | None
    status: ResolutionStatus
    candidates: tuple[Candidate, ...]
    span: tuple[int, int] | None
    confidence: float = 0.0
    evidence: tuple[str, ...] = attrs.field(default=(), repr=False)
    corrections: tuple[tuple[str, str], ...] = ()
    flags: frozenset[ResolutionFlag] = frozenset()

    @property
    def ok(self) -> bool:
        """True when the address may be routed without a person: a code and ``confidence >= ROUTING_THRESHOLD``."""
        return self.code is not None and self.status in _WITH_CODE and self.confidence >= ROUTING_THRESHOLD


# --- the division table -----------------------------------------------------------------------------------

# Minority names as they appear in autonomous units' names, longest first so 土家族 wins over 土族.
_ETHNIC = sorted(
    [
        "蒙古",
        "回",
        "藏",
        "维吾尔",
        "苗",
        "彝",
        "壮",
        "布依",
        "朝鲜",
        "满",
        "侗",
        "瑶",
        "白",
        "土家",
        "哈尼",
        "哈萨克",
        "傣",
        "黎",
        "傈僳",
        "佤",
        "畲",
        "高山",
        "拉祜",
        "水",
        "东乡",
        "纳西",
        "景颇",
        "柯尔克孜",
        "土",
        "达斡尔",
        "仫佬",
        "羌",
        "布朗",
        "撒拉",
        "毛南",
        "仡佬",
        "锡伯",
        "阿昌",
        "普米",
        "塔吉克",
        "怒",
        "乌孜别克",
        "俄罗斯",
        "鄂温克",
        "德昂",
        "保安",
        "裕固",
        "京",
        "塔塔尔",
        "独龙",
        "鄂伦春",
        "赫哲",
        "门巴",
        "珞巴",
        "基诺",
        "各",
    ],
    key=len,
    reverse=True,
)
_AUTONOMOUS = (("自治州", "州"), ("自治县", "县"), ("自治旗", "旗"), ("自治区", ""))
_SUFFIXES = ("特别行政区", "地区", "林区", "新区", "省", "市", "区", "县", "盟", "旗")
# Names of real divisions that are also everyday words; they never count on their own.
_GENERIC = frozenset({"城区", "郊区", "矿区", "新区", "市中区", "新城区", "老城区", "开发区", "高新区"})


def _autonomous_base(name: str) -> tuple[str, str] | None:
    """恩施土家族苗族自治州 -> ("恩施", "州"); None when the name is not autonomous or has no base left."""
    for suffix, short in _AUTONOMOUS:
        if name.endswith(suffix):
            whole = rest = name[: -len(suffix)]
            changed = True
            while changed:
                changed = False
                for eth in _ETHNIC:
                    for token in (eth + "族", eth if len(eth) > 1 else None):
                        if token and rest.endswith(token) and len(rest) > len(token):
                            rest = rest[: -len(token)]
                            changed = True
                            break
                    if changed:
                        break
            if len(rest) < 2:  # 内蒙古自治区, 鄂伦春自治旗: the people's name is the place's name
                rest = whole
            return (rest, short) if len(rest) >= 2 else None
    return None


def _name_forms(name: str) -> Iterable[tuple[str, bool]]:
    """Every way an address may write ``name``, with True for a strong form."""
    yield name, name not in _GENERIC
    auto = _autonomous_base(name)
    if auto is not None:
        base, short = auto
        if short:
            yield base + short, True
        yield base, False
        return
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            yield name[: -len(suffix)], False
            return


_ZONE_ROUTE = "zone"


@attrs.frozen(kw_only=True)
class DivisionTable:
    """Today's divisions and the name index the resolver matches against (built once from the data files)."""

    names: dict[str, str]
    levels: dict[str, int]
    paths: dict[str, tuple[str, ...]]
    """Code -> the codes from the division itself up to its province."""
    index: dict[str, tuple[tuple[str, bool], ...]]
    """Written form of a division, an old name or a zone -> (code, strong) pairs."""
    kinds: dict[str, str]
    """Written form -> ``D`` (today's division), ``A`` (historical name) or ``Z`` (functional zone)."""
    info: dict[str, tuple[tuple[tuple[str, bool], ...], bool, str]]
    """Written form -> (entries, any of them strong, kind): what the scanner needs in one look-up."""
    townships: dict[str, str]
    """Written form of a township or subdistrict -> the codes of the counties that have one, comma-separated."""
    lengths: dict[str, tuple[int, ...]]
    """First two characters -> lengths of the forms (divisions, aliases, zones) starting with them."""
    town_lengths: dict[str, tuple[int, ...]]
    """Last two characters -> lengths of the township forms ending with them (townships are found by suffix)."""
    children: dict[str, tuple[tuple[str, str], ...]]
    """Code -> (strong form, child code) for the one-typo rule."""
    aliases: dict[str, str]
    """Old name's form -> what to tell a clerk (when it was used, what succeeded it and when)."""
    zones: dict[str, str]
    """Zone form -> what to tell a clerk (the divisions that administer it and the row's source)."""
    translate: dict[int, str | None]
    """``str.translate`` table: spaces and zero-width characters out, traditional name characters simplified."""
    to_translate: re.Pattern[str]
    """Finds a character ``translate`` changes (most addresses have none, and a search is cheaper)."""
    header: tuple[str, ...]
    """The data file's provenance lines."""

    def candidate(self, code: str) -> Candidate:
        """The candidate for a division code: its name and its full path of names (province first), cached."""
        found = _CANDIDATES.get(code)
        if found is None:
            path = "".join(self.names[c] for c in reversed(self.paths[code]))
            found = _CANDIDATES[code] = Candidate(code=code, name=self.names[code], path=path)
        return found


_CANDIDATES: dict[str, Candidate] = {}


# Every kind of space and the invisible characters that creep into pasted text.
_SPACES = (
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)
_ETHNIC_TOWNSHIP = re.compile(r"^(.{2,}?)(?:[\u4e00-\u9fff]{1,3}族)+(镇|乡|苏木)$")


def _township_forms(name: str) -> Iterable[str]:
    yield name
    if name.endswith("街道") and len(name) > 3:
        base = name[:-2]
        yield base + "街道办事处"
        yield base + "办事处"
    elif (m := _ETHNIC_TOWNSHIP.match(name)) is not None:
        yield m.group(1) + m.group(2)  # 下谷坪土家族乡 -> 下谷坪乡, 沔城回族镇 -> 沔城镇


def _build(lines: Iterable[str], zone_lines: Iterable[str] = ()) -> DivisionTable:
    header: list[str] = []
    names: dict[str, str] = {}
    parents: dict[str, str] = {}
    levels: dict[str, int] = {}
    aliases: list[tuple[str, str, str, str, str]] = []  # code, years, changed, old name, check
    town_rows: list[tuple[str, str]] = []
    translate: dict[int, str | None] = dict.fromkeys(map(ord, _SPACES))
    for line in lines:
        if line.startswith("#"):
            header.append(line[1:].strip())
            continue
        if not line.strip():
            continue
        row = line.rstrip("\n").split("\t")
        kind = row[0]
        if kind == "D":
            _, code, parent, level, name = row
            names[code] = name
            parents[code] = parent
            levels[code] = int(level)
        elif kind == "A":
            aliases.append((row[1], row[2], row[3], row[4], row[7]))
        elif kind == "T":
            town_rows.append((row[1], row[2]))
        elif kind == "S":
            translate.update({ord(t): s for t, s in zip(row[1], row[2], strict=True)})
    paths: dict[str, tuple[str, ...]] = {}
    for code in names:
        chain = [code]
        while parents[chain[-1]]:
            chain.append(parents[chain[-1]])
        paths[code] = tuple(chain)

    index: dict[str, dict[str, bool]] = {}
    kinds: dict[str, str] = {}
    for code, name in names.items():
        for form, strong in _name_forms(name):
            slot = index.setdefault(form, {})
            slot[code] = slot.get(code, False) or strong
            kinds[form] = "D"
    current = set(index)
    alias_notes: dict[str, list[str]] = {}
    # Today's names always win: an old name that is also a current form is not added as an alias.
    for code, years, changed, old, _check in aliases:
        if code not in names:
            continue
        when = f"used {years}, " if years else ""
        since = f"since {changed} " if changed else ""
        note = f"old name {old} ({when}{since}{names[code]} {code})"
        for form, strong in _name_forms(old):
            if form in current:
                continue
            slot = index.setdefault(form, {})
            slot[code] = slot.get(code, False) or strong
            kinds[form] = "A"
            alias_notes.setdefault(form, []).append(note)

    zones: dict[str, str] = {}
    for line in zone_lines:
        if line.startswith("#") or not line.strip():
            continue
        zone_forms, codes_text, source = line.rstrip("\n").split("\t")
        codes = codes_text.split(",")
        keys = {route_key(c) for c in codes}
        targets = codes if len(codes) == 1 else sorted(keys) if len(keys) == 1 else codes
        spread = "" if len(codes) == 1 else ", ".join(f"{names[c]} {c}" for c in codes)
        for form in zone_forms.split("|"):
            if form in index:
                continue
            index[form] = dict.fromkeys(targets, True)
            kinds[form] = "Z"
            zones[form] = f"zone {form}" + (f" (spans {spread})" if spread else "") + f"; source: {source}"

    townships: dict[str, str] = {}  # form -> county code(s), comma-separated (most names are unique)
    for county, packed in town_rows:
        for item in packed.split("|"):
            name = item[item.index(" ") + 1 :]
            forms: Iterable[str] = _township_forms(name) if name.endswith("街道") or "族" in name else (name,)
            for form in forms:
                have = townships.get(form)
                if have is None:
                    if form not in index:
                        townships[form] = county
                elif not have.endswith(county):
                    townships[form] = have + "," + county
    firsts: dict[str, set[int]] = {}
    for first, length in {(f[:2], len(f)) for f in index}:
        firsts.setdefault(first, set()).add(length)
    lasts: dict[str, set[int]] = {}
    for last, length in {(f[-2:], len(f)) for f in townships}:
        lasts.setdefault(last, set()).add(length)
    children: dict[str, list[tuple[str, str]]] = {}
    for form, entries in index.items():
        if len(form) < 3 or kinds[form] == "Z":
            continue
        for code, strong in entries.items():
            if strong and levels[code] > 1:
                children.setdefault(parents[code], []).append((form, code))
    final_index = {form: tuple(sorted(entries.items())) for form, entries in index.items()}
    return DivisionTable(
        names=names,
        levels=levels,
        paths=paths,
        index=final_index,
        info={form: (entries, any(s for _, s in entries), kinds[form]) for form, entries in final_index.items()},
        kinds=kinds,
        townships=townships,
        lengths={ch: tuple(sorted(ls, reverse=True)) for ch, ls in firsts.items()},
        town_lengths={ch: tuple(sorted(ls, reverse=True)) for ch, ls in lasts.items()},
        children={code: tuple(forms) for code, forms in children.items()},
        aliases={form: "; ".join(notes) for form, notes in alias_notes.items()},
        zones=zones,
        translate=translate,
        to_translate=re.compile("[" + re.escape("".join(map(chr, translate))) + "]"),
        header=tuple(header),
    )


@cache
def division_table() -> DivisionTable:
    """The shipped table, read from the package data on first call."""
    data = resources.files(__package__).joinpath("data")
    text = data.joinpath("divisions.tsv").read_text(encoding="utf-8")
    zones = data.joinpath("zones.tsv").read_text(encoding="utf-8")
    return _build(text.splitlines(), zones.splitlines())


# --- normalising ------------------------------------------------------------------------------------------

# Postal codes, phone numbers and building/room parts: masked (same length, so spans stay right) before matching.
_NUMBERS = re.compile(
    r"(?:\+?86-?)?(?<![0-9])(?:1[3-9][0-9]{9}|0[0-9]{2,3}-[0-9]{7,8}|[0-9]{6})(?![0-9])"
    r"|[0-9]+(?:号楼|栋|幢|单元|层|楼|室)"
)
_DIGIT = re.compile(r"[0-9]")


def normalise(text: str) -> str:
    """The text the resolver matches: NFKC, no spaces, division-name characters simplified, numbers masked."""
    return _normalise(text, division_table())[0]


def _normalise(text: str, table: DivisionTable) -> tuple[str, list[int] | None, bool, bool]:
    """(normalised text, original index of each of its characters or None when 1:1, changed, numbers masked)."""
    tr = table.translate
    positions: list[int] | None = None
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        norm = text.translate(tr) if table.to_translate.search(text) is not None else text
        if len(norm) != len(text):
            positions = [i for i, ch in enumerate(text) if tr.get(ord(ch), ch) is not None]
    else:
        out: list[str] = []
        positions = []
        for i, ch in enumerate(text):
            for c in unicodedata.normalize("NFKC", ch).translate(tr):
                out.append(c)
                positions.append(i)
        norm = "".join(out)
    changed = norm != text
    masked = False
    if _DIGIT.search(norm) is not None:
        masked_text = _NUMBERS.sub(lambda m: "#" * len(m.group()), norm)
        masked = masked_text != norm
        norm = masked_text
    return norm, positions, changed, masked


# --- scanning ---------------------------------------------------------------------------------------------

# What follows a name that is really a road: an optional direction or ordinal, then a road word.
_ROAD = re.compile(
    r"[东西南北中]?[一二三四五六七八九十0-9]*"
    r"(?:大道|大街|街(?!道)|路|巷|弄|胡同|道(?!路)|公路|隧道|桥|广场)"
)
# What follows a bare name that is really a township, village or farm named after a place (洪山镇, 天门村).
_LOWER = re.compile(r"(?:镇|乡|村|街道|社区|居委会|组|大队|林场|农场|管理区|办事处|苏木|嘎查)")
# Words of functional zones that administer no single county (宜昌市高新区 resolves to its prefecture).
_ZONE_WORD = re.compile(r"开发区|高新区|经开区|新区|管理区|工业园|产业园|园区|林场|农场|原种场|渔场|风景区|管委会")
_SKIP = ",，、;；:：()（）#"


class _Match:
    """A name found in the text (a plain slotted class: the scanner makes many of them)."""

    __slots__ = ("codes", "end", "entries", "kind", "start", "strong", "written")

    def __init__(
        self, start: int, end: int, entries: tuple[tuple[str, bool], ...], strong: bool, kind: str, written: str
    ) -> None:
        self.start = start
        self.end = end
        self.entries = entries
        self.strong = strong
        self.kind = kind
        """D (a division), A (an old name), Z (a zone), T (a township: entries are its counties), F (a correction)."""
        self.written = written
        # The codes that count for _on_path: the strong ones of a strong name, all of a weak one.
        codes = _CODES.get(entries)
        if codes is None:
            codes = frozenset(c for c, s in entries if s or not strong)
            if len(_CODES) < 100_000:
                _CODES[entries] = codes
        self.codes = codes


_CODES: dict[tuple[tuple[str, bool], ...], frozenset[str]] = {}
"""Entries -> the codes that count for ``_on_path`` (a pure cache, bounded: entries come from the table)."""


_TOWN_ENTRIES: dict[str, tuple[tuple[str, bool], ...]] = {}
"""Township county lists as match entries, made on first use (a pure cache: the same input, the same tuple)."""

# The last character of every township form (镇, 乡, 街道, 办事处, 苏木): townships are found from their end.
_TOWN_END = re.compile(r"[镇乡道处木]")


def _scan(text: str, table: DivisionTable) -> list[_Match]:
    info, lengths = table.info, table.lengths
    n = len(text)
    found: list[_Match | None] = [None] * n
    i = 0
    while i < n - 1:
        lens = lengths.get(text[i : i + 2])
        i += 1
        if lens is None:
            continue
        start = i - 1
        for length in lens:
            end = start + length
            if end > n:
                continue
            form = text[start:end]
            known = info.get(form)
            if known is None:
                continue
            entries, strong, kind = known
            if not _ROAD.match(text, end) and (strong or not _LOWER.match(text, end)):
                found[start] = _Match(start, end, entries, strong, kind, form)
                if strong:
                    i = end  # nothing starting inside a strong name is ever read (see below)
            break
    townships, town_lengths = table.townships, table.town_lengths
    for hit in _TOWN_END.finditer(text):
        end = hit.end()
        for length in town_lengths.get(text[end - 2 : end], ()):
            start = end - length
            if start < 0:
                continue
            form = text[start:end]
            counties = townships.get(form)
            if counties is None:
                continue
            here = found[start]
            if here is None or here.end < end:  # the longest name starting here wins, as for divisions
                town = _TOWN_ENTRIES.get(counties)
                if town is None:
                    town = _TOWN_ENTRIES[counties] = tuple((c, True) for c in counties.split(","))
                found[start] = _Match(start, end, town, True, "T", form)
            break
    matches: list[_Match] = []
    i = 0
    while i < n:
        m = found[i]
        if m is None:
            i += 1
            continue
        if not m.strong and any(
            (o := found[j]) is not None and o.strong and o.end > m.end for j in range(i + 1, m.end)
        ):
            i += 1  # a weak name gives way to a strong one starting inside it
            continue
        matches.append(m)
        i = m.end
    return matches


def _on_path(m: _Match, path: tuple[str, ...]) -> bool:
    return not m.codes.isdisjoint(path)


def _known_at(text: str, pos: int, table: DivisionTable) -> bool:
    """Whether some known name (division, old name, zone, township, weak or strong) starts at ``pos``."""
    for length in table.lengths.get(text[pos : pos + 2], ()):
        form = text[pos : pos + length]
        if len(form) == length and form in table.index:
            return True
    return any(text[pos:end] in table.townships for end in range(pos + 2, min(len(text), pos + 12) + 1))


def _typo(text: str, pos: int, anchor: str, table: DivisionTable) -> tuple[str, int, int, str] | None:
    """The child of ``anchor`` one character away from the text at ``pos``: (code, start, end, its form).

    Never when the text at ``pos`` is itself a known name: a correction never beats a real name.
    """
    while pos < len(text) and text[pos] in _SKIP:
        pos += 1
    if _known_at(text, pos, table):
        return None
    hits: dict[str, tuple[int, str]] = {}
    for form, code in table.children.get(anchor, ()):
        seg = text[pos : pos + len(form)]
        if len(seg) == len(form) and seg[-1] == form[-1] and sum(a != b for a, b in zip(seg, form, strict=True)) == 1:
            hits[code] = (pos + len(form), form)
    if len(hits) != 1:
        return None
    ((code, (end, form)),) = hits.items()
    return code, pos, end, form


def _with_typos(text: str, matches: list[_Match], table: DivisionTable) -> list[_Match]:
    """Add a corrected name after a province or prefecture when the next word is one character off a child's.

    Names found inside the corrected word (孟县 in 云孟县) are dropped: they are part of the misspelt word.
    """
    starts = {m.start for m in matches}
    out: list[_Match] = []
    skip_until = -1
    for m in matches:
        if m.start < skip_until:
            continue
        out.append(m)
        if m.end in starts or m.kind not in {"D", "A"}:
            continue
        anchors = {c for c, strong in m.entries if table.levels[c] == 1 or (strong and table.levels[c] == 2)}
        fixes = {fix for a in anchors if (fix := _typo(text, m.end, a, table)) is not None}
        if len(fixes) == 1:
            code, start, end, _form = fixes.pop()
            out.append(_Match(start, end, ((code, True),), True, "F", text[start:end]))
            skip_until = end
    return out


# --- deciding ---------------------------------------------------------------------------------------------

_MAX_CANDIDATES = 30
_PROVINCE = re.compile(r"[0-9]{2}0000")


def _check(text: object, home_province: object) -> str:
    if not isinstance(text, str):
        raise InvalidAddress(f"an address must be a str, not {type(text).__name__}")
    if home_province != "420000" and (not isinstance(home_province, str) or not _PROVINCE.fullmatch(home_province)):
        raise InvalidAddress("home_province must be a 6-digit province code such as '420000'")
    if len(text) > MAX_ADDRESS_CHARS:
        raise InvalidAddress(f"an address of {len(text)} characters is too long (at most {MAX_ADDRESS_CHARS})")
    if not text.strip():
        raise InvalidAddress("the address is empty")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidAddress("the address contains a lone surrogate; decode the input as UTF-8") from None
    return text


_Ranked = tuple[int, int, str, list[_Match]]  # (level, support, code, the matches on its path)


def _rank(matches: list[_Match], table: DivisionTable) -> list[_Ranked]:
    """Every division that all strong names agree with, with its level and how many names support it."""
    strong = [m.codes for m in matches if m.strong]
    best: list[_Ranked] = []
    seen: set[str] = set()
    paths, levels = table.paths, table.levels
    for m in matches:
        for code, is_strong in m.entries:
            if code in seen:
                continue
            seen.add(code)
            path = paths[code]
            for codes in strong:
                if codes.isdisjoint(path):
                    break
            else:
                support = [o for o in matches if not o.codes.isdisjoint(path)]
                if not is_strong and not any(o is not m and not o.codes.isdisjoint(path[1:]) for o in support):
                    continue  # a weak name needs a name above it to count
                best.append((levels[code], len(support), code, support))
    return best


@attrs.define
class _Outcome:
    code: str | None
    status: ResolutionStatus
    candidates: list[str]
    support: list[_Match]
    confidence: float
    flags: set[ResolutionFlag] = attrs.Factory(set)
    evidence: list[str] = attrs.Factory(list)


def _in_home(codes: Iterable[str], home_province: str) -> list[str]:
    return [c for c in codes if c[:2] == home_province[:2]]


def _level_support(b: _Ranked) -> tuple[int, int]:
    return b[0], b[1]


def _code_of(b: _Ranked) -> str:
    return b[2]


def _divisions_only(matches: list[_Match], table: DivisionTable, home_province: str) -> _Outcome:
    """Phase 1: decide on the names of divisions, old names, zones and corrections (townships come after)."""
    ranked = _rank(matches, table)
    if not ranked:
        codes = sorted({code for m in matches for code, _ in m.entries})
        only_provinces = all(table.levels[c] == 1 for c in codes)
        status = ResolutionStatus.UNRESOLVED if only_provinces else ResolutionStatus.AMBIGUOUS
        return _Outcome(None, status, codes, [], 0.0)
    if len(ranked) == 1:
        tied = ranked
    else:
        first = max(ranked, key=_level_support)
        tied = sorted((b for b in ranked if b[0] == first[0] and b[1] == first[1]), key=_code_of)
    codes = [b[2] for b in tied]
    if len(tied) > 1:
        support = [m for b in tied for m in b[3]]
        home = [b for b in tied if b[2][:2] == home_province[:2]]
        if len(home) != 1:
            return _Outcome(None, ResolutionStatus.AMBIGUOUS, codes, support, 0.0)
        chosen = home[0]
        others = [c for c in codes if c != chosen[2]]
        out = _Outcome(chosen[2], ResolutionStatus.ASSUMED_HOME_PROVINCE, [chosen[2], *others], chosen[3], 0.82)
        out.flags.add(ResolutionFlag.HOME_PROVINCE)
        out.evidence.append(f"home province {home_province} chosen among {', '.join(codes)}")
        return out
    level, count, code, on_path = tied[0]
    if level == 1:
        return _Outcome(None, ResolutionStatus.UNRESOLVED, codes, on_path, 0.0)
    named = any(code in m.codes for m in on_path)
    confidence = 0.97 if count >= 2 and named else 0.9
    status = ResolutionStatus.RESOLVED
    return _Outcome(code, status, [code], on_path, confidence if level == 3 else min(confidence, 0.9))


def _townships(
    out: _Outcome, towns: list[_Match], others: list[_Match], table: DivisionTable, home_province: str
) -> _Outcome:
    """Phase 2: let the townships named in the text decide, confirm or question phase 1's answer."""
    counties = set.intersection(*({c for c, _ in t.entries} for t in towns))
    written = "、".join(t.written for t in towns)
    if out.code is not None and table.levels[out.code] == 3:
        if out.code in counties:
            out.flags.add(ResolutionFlag.TOWNSHIP)
            out.evidence.append(f"township {written} lies in {table.names[out.code]} {out.code}")
            out.support = [*out.support, *towns]
            return out
        if out.status is ResolutionStatus.ASSUMED_HOME_PROVINCE:
            settled = [c for c in out.candidates if c in counties]
            if len(settled) == 1:
                return _via_township(settled[0], towns, out.support, table, named=True)
        out.flags.add(ResolutionFlag.TOWNSHIP_CONFLICT)
        key = route_key(out.code)
        same_route = key in counties if key.startswith("4290") else any(c.startswith(key[:4]) for c in counties)
        out.evidence.append(
            f"township {written} is not in {table.names[out.code]} (it is in {len(counties)} other counties); "
            "the named county was kept"
        )
        # A township in one to three counties is real evidence; 城关镇 (in a hundred) hardly any.
        if len(counties) > 3 or same_route:
            out.confidence -= 0.05
        elif len(out.support) >= 2:
            out.confidence -= 0.1
        else:
            out.confidence = min(out.confidence, 0.6)
        return out
    scope = out.candidates if out.candidates else []
    if out.status is ResolutionStatus.AMBIGUOUS and out.support and all(table.levels[c] == 3 for c in scope):
        settled = [c for c in scope if c in counties]  # the township settles a tie between counties
        if len(settled) == 1:
            return _via_township(settled[0], towns, out.support, table, named=True)
        return out
    if out.support or out.code is not None:  # a prefecture, or a province alone
        inside = sorted(c for c in counties if any(s in table.paths[c] for s in scope))
    elif out.status is ResolutionStatus.AMBIGUOUS and any(m.strong for m in others):
        return out  # the division names contradict each other; a township does not settle that
    else:
        weak = [c for c in counties if any(_on_path(m, table.paths[c]) for m in others)]
        if len(weak) == 1:
            return _via_township(weak[0], towns, others, table, named=True)
        inside = sorted(counties)
        if len(inside) == 1:
            return _via_township(inside[0], towns, [], table, named=False)
        home = _in_home(inside, home_province)
        if len(home) == 1:
            res = _via_township(home[0], towns, [], table, named=False)
            res.status = ResolutionStatus.ASSUMED_HOME_PROVINCE
            res.confidence = 0.55
            res.flags.add(ResolutionFlag.HOME_PROVINCE)
            res.candidates = [home[0], *(c for c in inside if c != home[0])]
            return res
        return _Outcome(None, ResolutionStatus.AMBIGUOUS, inside, towns, 0.0, evidence=[_shared(written, inside)])
    if len(inside) == 1:
        return _via_township(inside[0], towns, out.support, table, named=True)
    if not inside:
        out.flags.add(ResolutionFlag.TOWNSHIP_CONFLICT)
        out.evidence.append(f"township {written} is not inside {', '.join(scope)}")
        if out.code is not None:
            out.confidence = min(out.confidence, 0.6)
        return out
    out.evidence.append(_shared(written, inside))
    if out.code is None:
        return _Outcome(None, ResolutionStatus.AMBIGUOUS, inside, [*out.support, *towns], 0.0, evidence=out.evidence)
    out.candidates = [out.code, *inside]
    return out


def _shared(written: str, counties: list[str]) -> str:
    return f"township {written} exists in {len(counties)} counties here: {', '.join(counties[:10])}"


def _via_township(
    code: str, towns: list[_Match], support: list[_Match], table: DivisionTable, *, named: bool
) -> _Outcome:
    out = _Outcome(code, ResolutionStatus.RESOLVED, [code], [*support, *towns], 0.92 if named else 0.6)
    out.flags.add(ResolutionFlag.TOWNSHIP)
    written = "、".join(t.written for t in towns)
    scope = "inside the divisions named" if named else "with no division named around it"
    out.evidence.append(f"township {written} -> {table.names[code]} {code}, the only one {scope}")
    return out


def _finish(out: _Outcome, matches: list[_Match], norm: str, table: DivisionTable) -> _Outcome:
    """Corrections (confirm or refuse), old names, zones: flags, evidence and confidence."""
    if out.code is None:
        return out
    for m in out.support:
        if m.kind == "F":
            corrected = m.entries[0][0]
            key = route_key(corrected)
            confirmed = any(
                o.kind != "F" and any(table.levels[c] >= 2 and route_key(c) == key for c, _ in o.entries)
                for o in out.support
            )
            if not confirmed:
                refused = _Outcome(None, ResolutionStatus.AMBIGUOUS, [corrected], out.support, 0.0)
                refused.flags.add(ResolutionFlag.CORRECTION_REFUSED)
                refused.evidence.append(
                    f"correction {m.written} -> {table.names[corrected]} refused: it would decide the prefecture "
                    "and nothing else in the text confirms it"
                )
                return refused
            out.flags.add(ResolutionFlag.CORRECTED)
            out.status = ResolutionStatus.FUZZY if out.status is ResolutionStatus.RESOLVED else out.status
            out.confidence -= 0.12
            out.evidence.append(f"corrected: {m.written} → {table.names[corrected]}")
        elif m.kind == "A":
            out.flags.add(ResolutionFlag.OLD_NAME)
            out.confidence -= 0.05
            out.evidence.append(table.aliases.get(m.written, f"old name {m.written}"))
        elif m.kind == "Z":
            out.flags.add(ResolutionFlag.ZONE)
            out.evidence.append(table.zones[m.written])
        elif m.kind == "D" and m.strong and len(out.evidence) < 8:
            out.evidence.append(f"name {m.written}")
    if table.levels[out.code] == 2:
        out.flags.add(ResolutionFlag.PREFECTURE_ONLY)
        if ResolutionFlag.ZONE not in out.flags and _ZONE_WORD.search(norm) is not None:
            out.flags.add(ResolutionFlag.ZONE)
            out.evidence.append("functional zone without a county: resolved to the prefecture it names")
    out.confidence = round(max(out.confidence, 0.0), 2)
    return out


def resolve(text: str, *, home_province: str = "420000") -> Resolution:
    """Resolve a free-text address to its county (or, for functional zones and typos, prefecture) code.

    Raises :class:`InvalidAddress` (a :class:`~delivery_sdk.ValidationError`) for input that is not a
    non-empty ``str`` of at most :data:`MAX_ADDRESS_CHARS` characters. Never raises for any such text.
    """
    _check(text, home_province)
    table = division_table()
    if home_province not in table.names:
        raise InvalidAddress(f"home_province {home_province!r} is not a province code")
    norm, positions, changed, masked = _normalise(text, table)
    matches = _with_typos(norm, _scan(norm, table), table) if norm else []
    towns = [m for m in matches if m.kind == "T"]
    others = [m for m in matches if m.kind != "T"] if towns else matches
    out = _divisions_only(others, table, home_province) if others else None
    if towns:
        if out is None:
            out = _Outcome(None, ResolutionStatus.UNRESOLVED, [], [], 0.0)
        out = _townships(out, towns, others, table, home_province)
    if out is None:
        return Resolution(
            address=text,
            code=None,
            route_key=None,
            status=ResolutionStatus.UNRESOLVED,
            candidates=(),
            span=None,
            flags=_prep_flags(changed, masked),
        )
    out = _finish(out, matches, norm, table)
    if changed or masked:
        out.flags |= _prep_flags(changed, masked)
        if masked:
            out.evidence.append("ignored: a postal code, phone number or building/room part")
    spanned = out.support or matches
    start = min([m.start for m in spanned])
    end = max([m.end for m in spanned])
    if positions is not None:
        start, end = positions[start], positions[end - 1] + 1
    code = out.code
    chosen = out.candidates
    if len(chosen) == 1:
        candidates: tuple[Candidate, ...] = (table.candidate(chosen[0]),)
    else:
        candidates = tuple([table.candidate(c) for c in dict.fromkeys(chosen[:_MAX_CANDIDATES])])
    corrections: tuple[tuple[str, str], ...] = ()
    if code is not None and ResolutionFlag.CORRECTED in out.flags:
        corrections = tuple([(m.written, table.names[m.entries[0][0]]) for m in out.support if m.kind == "F"])
    return Resolution(
        address=text,
        code=code,
        route_key=None if code is None else code if code.startswith("4290") else code[:4] + "00",
        status=out.status,
        candidates=candidates,
        span=(start, end),
        confidence=out.confidence if code is not None else 0.0,
        evidence=tuple(out.evidence),
        corrections=corrections,
        flags=frozenset(out.flags),
    )


_NO_FLAGS: frozenset[ResolutionFlag] = frozenset()


def _prep_flags(changed: bool, masked: bool) -> frozenset[ResolutionFlag]:
    if not (changed or masked):
        return _NO_FLAGS
    flags: set[ResolutionFlag] = set()
    if changed:
        flags.add(ResolutionFlag.NORMALISED)
    if masked:
        flags.add(ResolutionFlag.NUMBERS_IGNORED)
    return frozenset(flags)
