"""Who is acting: actors, roles, courts, and the tamper-evident record of who looked at personal data.

One centre serves many courts from one store. Every task belongs to exactly one court, named by its court
code (the prefix of its case number: ``(2026)鄂0106民初1234号`` belongs to ``鄂0106``). Every call of the
client and every CLI command acts for an :class:`Actor`: a staff member with a role and the courts it may
act for. A role is a set of :class:`Permission`:

=============  =========================================================================================
role           may
=============  =========================================================================================
``clerk``      read and act on the tasks of its own courts, personal data in clear; their statistics
``operator``   the centre's operational work for every court (ingest, print jobs, staff calls, address
               search, running the engine): task status with masked contacts; personal data only where
               the work needs it (and then recorded)
``supervisor`` statistics and the dashboard of its courts (or the province): never personal data
``auditor``    verify the evidence, export proofs, read the access records
``local``      everything, for every court: the default of a single-court installation (``LOCAL_ACTOR``)
=============  =========================================================================================

More roles come from configuration (:func:`load_roles`, :func:`roles_with`). A read or an action outside
an actor's role or courts raises :class:`~delivery_sdk.AccessDenied` and changes nothing. Every read of
personal data is an :class:`AccessRecord` in the store's access log, a hash chain that ``verify`` checks
(see ``docs/access.md``).
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import orjson

from .._exceptions import AccessDenied, InvalidRequest, ValidationError

__all__ = [
    "ACCESS_CHAIN_START",
    "ACCESS_SHOWN",
    "ACTOR_ENV",
    "ALL_COURTS",
    "DEFAULT_ROLES",
    "LOCAL_ACTOR",
    "ROLES_ENV",
    "AccessRecord",
    "Actor",
    "Permission",
    "chain_hash",
    "check_court",
    "court_code",
    "court_of_request",
    "load_roles",
    "parse_actor",
    "parse_head",
    "roles_with",
    "verify_chain",
]

ACTOR_ENV = "DELIVERY_SDK_ACTOR"
# what an access record says was shown: the folded task, its timeline (the events whole), a proof bundle
ACCESS_SHOWN = ("task", "timeline", "proof")
ROLES_ENV = "DELIVERY_SDK_ROLES"
ALL_COURTS = "*"
# the chain's value before its first record
ACCESS_CHAIN_START = bytes(32)

# A court code: the province's one-character abbreviation, then 0, 2 or 4 digits (鄂 the high court,
# 鄂01 an intermediate court, 鄂0106 a basic court), as in the SPC's case numbers (法〔2015〕148号).
_CODE = re.compile(r"[\u3400-\u9fff](?:[0-9]{2}){0,2}")
# the code at the start of a case number: (2026)鄂0106民初1234号, with ASCII or full-width brackets
_NUMBER = re.compile(r"[(（][0-9]{4}[)）]([\u3400-\u9fff](?:[0-9]{2}){0,2})(?![0-9])")


class Permission(enum.Enum):
    """What a role allows."""

    READ = "read"  # a task's status and lists of tasks (contacts masked)
    PERSONAL = "personal"  # personal data in clear: the folded task, its timeline (the request, contacts)
    ACT = "act"  # submit, cancel, resume, contacts, consent: change a task of its courts
    OPERATE = "operate"  # the centre's work: ingest, print jobs, staff calls, address search, run the engine
    STATISTICS = "statistics"  # counts, the supervision queries, the dashboard (no personal data)
    AUDIT = "audit"  # verify the evidence, export proof bundles, read the access records


def _perms(*names: str) -> frozenset[Permission]:
    return frozenset(Permission(n) for n in names)


DEFAULT_ROLES: Mapping[str, frozenset[Permission]] = {
    "clerk": _perms("read", "personal", "act", "statistics"),
    "operator": _perms("read", "operate", "statistics"),
    "supervisor": _perms("statistics"),
    "auditor": _perms("audit"),
    "local": frozenset(Permission),
}


def roles_with(
    extra: Mapping[str, Iterable[str]], base: Mapping[str, frozenset[Permission]] = DEFAULT_ROLES
) -> dict[str, frozenset[Permission]]:
    """``base`` plus the roles of ``extra`` (role name → permission names); a name in both is replaced.

    Raises :class:`~delivery_sdk.ValidationError` naming an unknown permission or a bad role name."""
    roles = dict(base)
    for name, perms in extra.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name):
            raise ValidationError(f"role name {name!r} must be 1-32 lowercase letters, digits, '-' or '_'")
        if isinstance(perms, str) or not isinstance(perms, Iterable):
            raise ValidationError(f'role {name!r}: give a list of permissions, e.g. ["read", "act"]')
        found = set()
        for perm in perms:
            try:
                found.add(Permission(perm))
            except ValueError:
                known = ", ".join(p.value for p in Permission)
                raise ValidationError(f"role {name!r}: unknown permission {perm!r} (known: {known})") from None
        roles[name] = frozenset(found)
    return roles


def load_roles(path: str | os.PathLike[str]) -> dict[str, frozenset[Permission]]:
    """The default roles plus those of a TOML file's ``[roles]`` table (``registrar = ["read", "act"]``)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read the roles file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"the roles file {path} is not valid TOML: {exc}") from None
    roles = data.get("roles")
    if not isinstance(roles, dict):
        raise ValidationError(f'the roles file {path} needs a [roles] table: registrar = ["read", "act"]')
    return roles_with(roles)


def check_court(code: object) -> str:
    """``code`` if it is a court code (``鄂``, ``鄂01``, ``鄂0106``); else :class:`~delivery_sdk.ValidationError`."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValidationError(
            f"{code!r} is not a court code: the province's abbreviation and 0, 2 or 4 digits, as in a case number "
            "(鄂, 鄂01, 鄂0106)"
        )
    return code


def court_code(case_number: str) -> str | None:
    """The court code a case number carries (``(2026)鄂0106民初1234号`` → ``鄂0106``), or None."""
    match = _NUMBER.match(case_number.strip())
    return None if match is None else match.group(1)


def court_of_request(case_number: str) -> str:
    """The court of a new task: its case number's court code; :class:`~delivery_sdk.InvalidRequest` without."""
    code = court_code(case_number)
    if code is None:
        raise InvalidRequest(
            "the case number carries no court code: every task belongs to one court, read from its case number's "
            "prefix; write it as the court assigned it, e.g. '(2026)鄂0106民初1234号'"
        )
    return code


def _courts(value: object) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise ValidationError("an actor's courts are court codes (鄂0106) or '*' for every court")
    courts = frozenset(value)
    if not courts:
        raise ValidationError("an actor needs at least one court (a court code such as 鄂0106, or '*' for all)")
    if ALL_COURTS in courts:
        return frozenset({ALL_COURTS})
    for code in courts:
        check_court(code)
    return courts


@attrs.frozen(kw_only=True)
class Actor:
    """Who is acting: a staff member, its role and the courts it may act for.

    ``courts``: court codes (``鄂0106``); a code with fewer digits covers the courts under it (``鄂01``
    covers ``鄂0106``; ``鄂`` the whole province); ``"*"`` covers every court, and tasks whose court is
    unknown (stores migrated from case numbers without a code). ``roles`` is the role table the role is
    looked up in (:data:`DEFAULT_ROLES`, or one from :func:`load_roles`).
    """

    staff_id: str
    role: str
    courts: frozenset[str] = attrs.field(converter=_courts)
    name: str = ""
    roles: Mapping[str, frozenset[Permission]] = attrs.field(default=DEFAULT_ROLES, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        sid = self.staff_id
        if not isinstance(sid, str) or not sid.strip() or len(sid) > 64 or not sid.isprintable() or ":" in sid:
            raise ValidationError("an actor's staff_id is 1-64 characters of plain text without ':' (e.g. c0106-01)")
        if self.role not in self.roles:
            raise ValidationError(f"unknown role {self.role!r}: one of {', '.join(sorted(self.roles))}")
        if not isinstance(self.name, str) or len(self.name) > 64 or not self.name.isprintable():
            raise ValidationError("an actor's display name is at most 64 characters of plain text")

    @property
    def permissions(self) -> frozenset[Permission]:
        """What the actor's role allows."""
        return self.roles[self.role]

    @property
    def all_courts(self) -> bool:
        """Whether the actor acts for every court."""
        return ALL_COURTS in self.courts

    def covers(self, court: str) -> bool:
        """Whether ``court`` is one of the actor's courts (or lies under one)."""
        if ALL_COURTS in self.courts:
            return True
        return bool(court) and any(court.startswith(c) for c in self.courts)

    def can(self, permission: Permission) -> bool:
        """Whether the actor's role allows ``permission``."""
        return permission in self.roles[self.role]

    def require(self, permission: Permission, court: str | None = None, what: str = "this") -> None:
        """Raise :class:`~delivery_sdk.AccessDenied` unless the role allows ``permission`` (on ``court``)."""
        if permission not in self.roles[self.role]:
            raise AccessDenied(
                f"actor {self.staff_id} (role {self.role}) may not {what}: the role lacks the "
                f"{permission.value!r} permission; ask someone whose role has it",
                staff_id=self.staff_id,
                role=self.role,
                permission=permission.value,
            )
        if court is not None and not self.covers(court):
            raise AccessDenied(
                f"actor {self.staff_id} (role {self.role}) may not {what}: the task belongs to court "
                f"{court or '(unknown)'}, which is not one of its courts ({', '.join(sorted(self.courts))})",
                staff_id=self.staff_id,
                role=self.role,
                permission=permission.value,
                court=court,
            )

    def court_filter(self) -> tuple[str, ...] | None:
        """The court-code prefixes of the actor's courts, or None for every court."""
        return None if self.all_courts else tuple(sorted(self.courts))

    def describe(self) -> str:
        """``role:staff_id@courts``: the form :func:`parse_actor` reads."""
        return f"{self.role}:{self.staff_id}@{','.join(sorted(self.courts))}"


LOCAL_ACTOR = Actor(staff_id="local", role="local", courts=ALL_COURTS, name="本地")


def parse_actor(text: str, roles: Mapping[str, frozenset[Permission]] = DEFAULT_ROLES) -> Actor:
    """An actor from ``role:staff_id@court[,court...]`` (``clerk:c0106-01@鄂0106``, ``supervisor:s1@*``), with
    an optional display name after a ``/`` (``clerk:c01@鄂0106/张三``). ``local`` alone is :data:`LOCAL_ACTOR`."""
    if not isinstance(text, str):
        raise ValidationError("an actor is given as role:staff_id@courts, e.g. clerk:c0106-01@鄂0106")
    text = text.strip()
    if text == "local":
        return LOCAL_ACTOR
    body, _, name = text.partition("/")
    head, at, courts = body.partition("@")
    role, colon, staff = head.partition(":")
    if not at or not colon or not courts:
        raise ValidationError(
            f"actor {text!r} is not role:staff_id@courts: write e.g. clerk:c0106-01@鄂0106 or supervisor:s1@* "
            "('*' for every court)"
        )
    return Actor(staff_id=staff, role=role, courts=frozenset(courts.split(",")), name=name, roles=roles)


@attrs.frozen(kw_only=True)
class AccessRecord:
    """One read of a task's personal data: who, when, which task (and court), what was shown.

    ``what``: one of :data:`ACCESS_SHOWN` (``task``, ``timeline``, ``proof``). ``chain``: SHA-256 over the
    previous record's chain and this record's canonical bytes (:func:`chain_hash`), filled by the store;
    ``seq`` its position in the log (1 first).
    """

    at: datetime
    staff_id: str
    role: str
    task_id: str
    court: str
    what: str
    seq: int = 0
    chain: bytes = b""

    def leaf(self) -> bytes:
        """The canonical bytes the chain hashes (JSON, keys sorted, the time in UTC to the microsecond)."""
        return orjson.dumps(
            {
                "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
                "court": self.court,
                "role": self.role,
                "staff_id": self.staff_id,
                "task_id": self.task_id,
                "what": self.what,
            },
            option=orjson.OPT_SORT_KEYS,
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the time as ISO 8601 in UTC, the chain in hex."""
        return {
            "seq": self.seq,
            "at": self.at.astimezone(UTC).isoformat(),
            "staff_id": self.staff_id,
            "role": self.role,
            "task_id": self.task_id,
            "court": self.court,
            "what": self.what,
            "chain": self.chain.hex(),
        }


def chain_hash(previous: bytes, record: AccessRecord) -> bytes:
    """The chain value after ``record``: SHA-256 of a domain tag, the previous value and the record's bytes."""
    return hashlib.sha256(b"delivery-sdk access v1\n" + previous + record.leaf()).digest()


def parse_head(text: str) -> tuple[int, bytes]:
    """An access log head kept earlier, ``SEQ:CHAIN`` (a record's ``seq`` and its ``chain`` in hex, as
    ``delivery-sdk access --json`` prints them); :class:`~delivery_sdk.ValidationError` if malformed."""
    seq, _, chain = text.strip().partition(":")
    try:
        value = (int(seq), bytes.fromhex(chain))
    except ValueError:
        value = (0, b"")
    if value[0] < 1 or len(value[1]) != 32:
        raise ValidationError(
            f"{text!r} is not an access log head: give SEQ:CHAIN, a record's seq and its 64-hex-digit chain "
            "(delivery-sdk access --json prints both)"
        )
    return value


def verify_chain(records: Sequence[AccessRecord], limit: int = 20, head: tuple[int, bytes] | None = None) -> list[str]:
    """The problems of an access log read in ``seq`` order: a gap in the numbering (a deleted record), a
    chain value that does not follow (an edited, inserted or deleted record), and with ``head`` (a record's
    ``seq`` and ``chain`` kept earlier, :func:`parse_head`) a log cut short or rewritten since. Empty when it
    holds."""
    problems: list[str] = []
    if head is not None:
        kept = next((r for r in records if r.seq == head[0]), None)
        if kept is None:
            problems.append(f"access record {head[0]}, the head kept, is missing: the log was cut short")
        elif kept.chain != head[1]:
            problems.append(f"access record {head[0]} does not match the head kept: the log was rewritten")
    previous = ACCESS_CHAIN_START
    expected = 1
    for record in records:
        if record.seq != expected:
            problems.append(f"access record {expected} is missing (the next one is {record.seq}): deleted")
            expected = record.seq
        if chain_hash(previous, record) != record.chain:
            problems.append(f"access record {record.seq} does not match its chain value: edited, or one before it was")
        previous = record.chain
        expected += 1
        if len(problems) >= limit:
            break
    return problems
