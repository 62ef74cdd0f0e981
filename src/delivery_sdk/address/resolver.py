"""Free-text Chinese address to its 6-digit division code (GB/T 2260), without guessing.

``resolve(text)`` finds the names of provinces, prefectures and counties in the text and picks the deepest
division that every confident name agrees with. The rules, in the order they act:

1. **Names.** Each division is known by its full name (湖北省, 武昌区, 长阳土家族自治县), the forms people write
   for autonomous units (恩施州, 长阳县) and historical names mapped to today's code (襄樊市 -> 420600,
   监利县 -> 421088). These are *strong* names. The name without its suffix (湖北, 武汉, 武昌) is a *weak* name:
   it counts only when another name in the text confirms it (湖北武汉, 武汉市武昌), because bare words such as
   中山, 东湖 or 和平 are far more often something else.
2. **Longest match**, left to right; a weak name gives way to a strong one that starts inside it.
3. **Roads are not places.** A name followed by 路/街/大道/巷/... (optionally with a direction or a number:
   北京中路, 中山大道, 江汉二路) is a road and is ignored.
4. **Hierarchy.** A candidate division is kept only if every strong name in the text lies on its path
   (county -> prefecture -> province). The deepest kept candidate wins; a tie goes to the one more names
   agree with.
5. **Home province.** A tie that remains (青山区: Wuhan and Baotou) is broken by the home province when exactly
   one candidate lies in it; the result is flagged ``ASSUMED_HOME_PROVINCE``. Otherwise it is ``AMBIGUOUS``.
6. **One typo.** When the text stops at a known province or prefecture and the next word differs from one of
   its children by a single character (孝感市云孟县), the child is taken and the result flagged ``FUZZY``.
7. Functional zones (东湖新技术开发区) are not divisions: the address resolves to the city it names.

Anything else (conflicting names, a lone weak name, a province only) is ``AMBIGUOUS`` or ``UNRESOLVED`` with
the candidates for a person to choose from: a wrong code would send mail to the wrong province.

The data (``data/divisions.tsv``, see ``scripts/build_divisions.py``) is read once, lazily, on first use;
after that ``resolve`` is pure and does no I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

import attrs

from .._exceptions import ValidationError
from . import route_key

__all__ = [
    "MAX_ADDRESS_CHARS",
    "Candidate",
    "DivisionTable",
    "InvalidAddress",
    "Resolution",
    "ResolutionStatus",
    "division_table",
    "resolve",
]

MAX_ADDRESS_CHARS = 500
"""Longer input is refused: no postal address is that long, and the resolver's cost grows with the text."""


class InvalidAddress(ValidationError):
    """The address given to the resolver is not text it can read (not a str, empty, too long, not UTF-8)."""


class ResolutionStatus(enum.Enum):
    """How sure the resolver is; only ``RESOLVED``, ``ASSUMED_HOME_PROVINCE`` and ``FUZZY`` carry a code."""

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
    """

    address: str = attrs.field(repr=False)
    code: str | None
    route_key: str | None
    status: ResolutionStatus
    candidates: tuple[Candidate, ...]
    span: tuple[int, int] | None

    @property
    def ok(self) -> bool:
        """True when the address may be routed without a person looking at it (a flagged status still says why)."""
        return self.status in _WITH_CODE


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


@attrs.frozen(kw_only=True)
class DivisionTable:
    """Today's divisions and the name index the resolver matches against (built once from the data file)."""

    names: dict[str, str]
    levels: dict[str, int]
    paths: dict[str, tuple[str, ...]]
    """Code -> the codes from the division itself up to its province."""
    index: dict[str, tuple[tuple[str, bool], ...]]
    """Written form -> (code, strong) pairs."""
    lengths: dict[str, tuple[int, ...]]
    """First character -> lengths of the forms starting with it, longest first."""
    children: dict[str, tuple[tuple[str, str], ...]]
    """Code -> (strong form, child code) for the one-typo rule."""
    header: tuple[str, ...]
    """The data file's provenance lines."""

    def candidate(self, code: str) -> Candidate:
        path = "".join(self.names[c] for c in reversed(self.paths[code]))
        return Candidate(code=code, name=self.names[code], path=path)


def _build(lines: Iterable[str]) -> DivisionTable:
    header: list[str] = []
    names: dict[str, str] = {}
    parents: dict[str, str] = {}
    levels: dict[str, int] = {}
    aliases: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith("#"):
            header.append(line[1:].strip())
            continue
        if not line.strip():
            continue
        kind, code, parent, level, name = line.rstrip("\n").split("\t")
        if kind == "D":
            names[code] = name
            parents[code] = parent
            levels[code] = int(level)
        else:
            aliases.append((code, name))
    paths: dict[str, tuple[str, ...]] = {}
    for code in names:
        chain = [code]
        while parents[chain[-1]]:
            chain.append(parents[chain[-1]])
        paths[code] = tuple(chain)

    index: dict[str, dict[str, bool]] = {}
    for code, name in names.items():
        for form, strong in _name_forms(name):
            slot = index.setdefault(form, {})
            slot[code] = slot.get(code, False) or strong
    current = set(index)
    # Today's names always win: an old name that is also a current form is not added as an alias.
    for code, name in aliases:
        if code not in names:
            continue
        for form, strong in _name_forms(name):
            if form in current:
                continue
            slot = index.setdefault(form, {})
            slot[code] = slot.get(code, False) or strong

    lengths: dict[str, set[int]] = {}
    for form in index:
        lengths.setdefault(form[0], set()).add(len(form))
    children: dict[str, list[tuple[str, str]]] = {}
    for form, entries in index.items():
        if len(form) < 3:
            continue
        for code, strong in entries.items():
            if strong and levels[code] > 1:
                children.setdefault(parents[code], []).append((form, code))
    return DivisionTable(
        names=names,
        levels=levels,
        paths=paths,
        index={form: tuple(sorted(entries.items())) for form, entries in index.items()},
        lengths={ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()},
        children={code: tuple(forms) for code, forms in children.items()},
        header=tuple(header),
    )


@cache
def division_table() -> DivisionTable:
    """The shipped table, read from the package data on first call."""
    text = resources.files(__package__).joinpath("data", "divisions.tsv").read_text(encoding="utf-8")
    return _build(text.splitlines())


# --- resolving --------------------------------------------------------------------------------------------

# What follows a name that is really a road: an optional direction or ordinal, then a road word.
_ROAD = re.compile(
    r"[东西南北中]?[一二三四五六七八九十0-9０-９]*"
    r"(?:大道|大街|街(?!道)|路|巷|弄|胡同|道(?!路)|公路|隧道|桥|广场)"
)
_SKIP = " \t\u3000,，、;；:：()（）"


@attrs.frozen
class _Match:
    start: int
    end: int
    entries: tuple[tuple[str, bool], ...]
    strong: bool
    fuzzy: bool = False


def _scan(text: str, table: DivisionTable) -> list[_Match]:
    index, lengths = table.index, table.lengths
    n = len(text)
    found: list[_Match | None] = [None] * n
    for i in range(n):
        lens = lengths.get(text[i])
        if lens is None:
            continue
        for length in lens:
            if i + length > n:
                continue
            entries = index.get(text[i : i + length])
            if entries is not None:
                end = i + length
                if not _ROAD.match(text, end):
                    found[i] = _Match(i, end, entries, any(strong for _, strong in entries))
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
    return any(code in path and (strong or not m.strong) for code, strong in m.entries)


def _typo(text: str, pos: int, anchor: str, table: DivisionTable) -> tuple[str, int, int] | None:
    """The child of ``anchor`` whose name is one character away from the text at ``pos``, and its slice."""
    while pos < len(text) and text[pos] in _SKIP:
        pos += 1
    hits: dict[str, int] = {}
    for form, code in table.children.get(anchor, ()):
        seg = text[pos : pos + len(form)]
        if len(seg) == len(form) and seg[-1] == form[-1] and sum(a != b for a, b in zip(seg, form, strict=True)) == 1:
            hits[code] = pos + len(form)
    if len(hits) != 1:
        return None
    ((code, end),) = hits.items()
    return code, pos, end


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
        if m.end in starts:
            continue
        anchors = {c for c, strong in m.entries if table.levels[c] == 1 or (strong and table.levels[c] == 2)}
        fixes = {fix for a in anchors if (fix := _typo(text, m.end, a, table)) is not None}
        if len(fixes) == 1:
            code, start, end = fixes.pop()
            out.append(_Match(start, end, ((code, True),), True, True))
            skip_until = end
    return out


def _check(text: object, home_province: object) -> str:
    if not isinstance(text, str):
        raise InvalidAddress(f"an address must be a str, not {type(text).__name__}")
    if not isinstance(home_province, str) or not re.fullmatch(r"\d{2}0000", home_province):
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


def resolve(text: str, *, home_province: str = "420000") -> Resolution:
    """Resolve a free-text address to its county (or, for functional zones and typos, prefecture) code.

    Raises :class:`InvalidAddress` (a :class:`~delivery_sdk.ValidationError`) for input that is not a
    non-empty ``str`` of at most :data:`MAX_ADDRESS_CHARS` characters. Never raises for any such text.
    """
    _check(text, home_province)
    table = division_table()
    if home_province not in table.names:
        raise InvalidAddress(f"home_province {home_province!r} is not a province code")
    matches = _with_typos(text, _scan(text, table), table)
    if not matches:
        return Resolution(
            address=text, code=None, route_key=None, status=ResolutionStatus.UNRESOLVED, candidates=(), span=None
        )

    strong = [m for m in matches if m.strong]
    best: list[tuple[int, int, str, list[_Match]]] = []  # (level, support, code, supporting matches)
    seen: set[str] = set()
    for m in matches:
        for code, is_strong in m.entries:
            if code in seen:
                continue
            seen.add(code)
            path = table.paths[code]
            if not all(_on_path(s, path) for s in strong):
                continue
            support = [o for o in matches if _on_path(o, path)]
            if not is_strong and not any(o is not m and _on_path(o, path[1:]) for o in support):
                continue  # a weak name needs a name above it to count
            best.append((table.levels[code], len(support), code, support))

    if not best:
        codes = sorted({code for m in matches for code, _ in m.entries})
        only_provinces = all(table.levels[c] == 1 for c in codes)
        return Resolution(
            address=text,
            code=None,
            route_key=None,
            status=ResolutionStatus.UNRESOLVED if only_provinces else ResolutionStatus.AMBIGUOUS,
            candidates=tuple(table.candidate(c) for c in codes),
            span=(matches[0].start, matches[-1].end),
        )
    top = max(b[:2] for b in best)
    tied = sorted((b for b in best if b[:2] == top), key=lambda b: b[2])
    level = top[0]
    span = (min(m.start for b in tied for m in b[3]), max(m.end for b in tied for m in b[3]))
    candidates = tuple(table.candidate(b[2]) for b in tied)

    if len(tied) > 1:
        home = [b for b in tied if b[2][:2] == home_province[:2]]
        if len(home) != 1:
            return Resolution(
                address=text,
                code=None,
                route_key=None,
                status=ResolutionStatus.AMBIGUOUS,
                candidates=candidates,
                span=span,
            )
        code = home[0][2]
        others = tuple(c for c in candidates if c.code != code)
        return Resolution(
            address=text,
            code=code,
            route_key=route_key(code),
            status=ResolutionStatus.ASSUMED_HOME_PROVINCE,
            candidates=(table.candidate(code), *others),
            span=span,
        )

    code = tied[0][2]
    fuzzy = any(m.fuzzy and m.entries[0][0] == code for m in tied[0][3])
    if level == 1:
        return Resolution(
            address=text,
            code=None,
            route_key=None,
            status=ResolutionStatus.UNRESOLVED,
            candidates=candidates,
            span=span,
        )
    return Resolution(
        address=text,
        code=code,
        route_key=route_key(code),
        status=ResolutionStatus.FUZZY if fuzzy else ResolutionStatus.RESOLVED,
        candidates=candidates,
        span=span,
    )
