"""The vocabulary of service: cases, parties, contacts, documents, requests, tasks and dispatches.

Every class here is a frozen, keyword-only attrs class; change one with ``attrs.evolve``. Constructors
validate their input and raise :class:`~delivery_sdk.InvalidContact` / :class:`~delivery_sdk.InvalidRequest`
with a message that says what is wrong. Personal data (phone numbers, ID numbers, addresses, e-mail
addresses, account ids) never appears in clear in a ``repr``: see :func:`mask`.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

import attrs

from ._exceptions import InvalidContact, InvalidRequest

__all__ = [
    "AgentRole",
    "Case",
    "CaseType",
    "ChannelKind",
    "Consent",
    "ConsentMethod",
    "Contact",
    "ContactKind",
    "Dispatch",
    "DispatchRecord",
    "DispatchStatus",
    "Document",
    "DocumentKind",
    "Party",
    "PartyKind",
    "Representative",
    "ServiceMethod",
    "ServiceRequest",
    "mask",
]


class CaseType(enum.Enum):
    CIVIL = "civil"
    COMMERCIAL = "commercial"
    ADMINISTRATIVE = "administrative"
    CRIMINAL = "criminal"
    ENFORCEMENT = "enforcement"


class PartyKind(enum.Enum):
    PERSON = "person"
    ORGANISATION = "organisation"


class ContactKind(enum.Enum):
    __hash__ = object.__hash__  # identity: members are singletons (see lifecycle.TaskState)

    MOBILE = "mobile"
    WECHAT = "wechat"
    EMAIL = "email"
    ESERVICE = "eservice"  # court e-service platform account
    POSTAL = "postal"


class ChannelKind(enum.Enum):
    """What a channel adapter does; the policy chooses channels by kind."""

    __hash__ = object.__hash__  # identity: members are singletons (see lifecycle.TaskState)

    SMS = "sms"
    WECHAT = "wechat"
    EMAIL = "email"
    ESERVICE = "eservice"
    PHONE = "phone"  # staff phone calls (human in the loop)
    PRINT = "print"  # a regional print/mail centre
    POST = "post"  # the postal carrier (court express post)

    @property
    def electronic(self) -> bool:
        return self in ELECTRONIC_KINDS

    @property
    def contact_kind(self) -> ContactKind:
        return _CONTACT_FOR_CHANNEL[self]


ELECTRONIC_KINDS = frozenset(  # hot paths test membership here: ``kind.electronic`` is a Python-level property
    {ChannelKind.SMS, ChannelKind.WECHAT, ChannelKind.EMAIL, ChannelKind.ESERVICE, ChannelKind.PHONE}
)
_CONTACT_FOR_CHANNEL = {
    ChannelKind.SMS: ContactKind.MOBILE,
    ChannelKind.PHONE: ContactKind.MOBILE,
    ChannelKind.WECHAT: ContactKind.WECHAT,
    ChannelKind.EMAIL: ContactKind.EMAIL,
    ChannelKind.ESERVICE: ContactKind.ESERVICE,
    ChannelKind.PRINT: ContactKind.POSTAL,
    ChannelKind.POST: ContactKind.POSTAL,
}


class DocumentKind(enum.Enum):
    SUMMONS = "summons"
    NOTICE = "notice"
    COMPLAINT = "complaint"
    JUDGMENT = "judgment"
    RULING = "ruling"
    MEDIATION = "mediation"
    OTHER = "other"


class ServiceMethod(enum.Enum):
    """How a task was served (CPL Arts. 88-95)."""

    DIRECT = "direct"  # Art. 88
    RETAINED = "retained"  # Art. 89
    ELECTRONIC = "electronic"  # Art. 90
    POSTAL = "postal"  # Art. 91
    PUBLICATION = "publication"  # Art. 95


class ConsentMethod(enum.Enum):
    """How consent to e-service was given (SPC Online Litigation Rules Arts. 29-30)."""

    EXPRESS = "express"
    PRE_SUIT_AGREEMENT = "pre_suit_agreement"
    PLEADING_ADDRESS = "pleading_address"
    ACCEPTED_WITHOUT_OBJECTION = "accepted_without_objection"
    PHONE = "phone"
    PLATFORM = "platform"
    CONFIRMATION_FORM = "confirmation_form"


class AgentRole(enum.Enum):
    """Who may receive for a party (CPL Art. 88)."""

    LITIGATION_AGENT = "litigation_agent"
    DESIGNATED_RECEIVER = "designated_receiver"  # 代收人
    LEGAL_REPRESENTATIVE = "legal_representative"
    MAIL_HANDLER = "mail_handler"


class DispatchStatus(enum.Enum):
    """Where one attempt on one channel stands."""

    __hash__ = object.__hash__  # identity: members are singletons (see lifecycle.TaskState)

    QUEUED = "queued"  # intent committed; the provider may or may not have it yet (in doubt after a crash)
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # arrived at the recipient's system (or signed for, for post)
    READ = "read"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    PRINTED = "printed"
    MAILED = "mailed"
    RETURNED = "returned"
    SUPERSEDED = "superseded"  # another channel served first; this one no longer matters

    @property
    def settled(self) -> bool:
        """True when nothing more is expected from the provider for the service decision."""
        return self in _SETTLED


_SETTLED = frozenset(
    {
        DispatchStatus.DELIVERED,
        DispatchStatus.READ,
        DispatchStatus.FAILED,
        DispatchStatus.TIMED_OUT,
        DispatchStatus.RETURNED,
        DispatchStatus.SUPERSEDED,
    }
)


def mask(value: str) -> str:
    """Return a form of ``value`` safe for logs and reprs: at most the first and last 2 characters."""
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:2]}{'*' * (len(value) - 4)}{value[-2:]}"


def _encodable(error: type[Exception], *values: object) -> None:
    """Refuse text that cannot be stored or sent (a lone surrogate from a broken decoder, say)."""
    for value in values:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise error(f"text {mask(value)!r} is not valid Unicode (it holds a lone surrogate)") from None


def _masked_repr(value: Any) -> str:
    return repr(mask(str(value)))


_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)  # ASCII: \d would also take full-width and Arabic-Indic digits
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_ACCOUNT = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_DIVISION = re.compile(r"\d{6}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def normalise_mobile(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits


@attrs.frozen(kw_only=True)
class Contact:
    """One contact point of a party: a mobile number, WeChat openid, e-mail, platform account or address.

    ``confirmed`` means the party confirmed it on an address-confirmation form (送达地址确认书); for a
    postal address ``division_code`` is its 6-digit GB/T 2260 code when known.
    """

    kind: ContactKind
    value: str = attrs.field(repr=_masked_repr)
    confirmed: bool = False
    division_code: str | None = None
    source: str = "request"

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidContact, self.value, self.source)
        if not isinstance(self.kind, ContactKind):
            raise InvalidContact(f"contact kind must be a ContactKind, got {type(self.kind).__name__}")
        if not isinstance(self.value, str):
            raise InvalidContact(f"{self.kind.value} contact value must be a string, got {type(self.value).__name__}")
        value = self.value
        if self.kind is ContactKind.MOBILE:
            normal = normalise_mobile(value)
            if not _MOBILE.fullmatch(normal):
                raise InvalidContact(
                    f"mobile number {mask(value)!r} is not an 11-digit mainland number starting 13-19; "
                    "give the number without spaces, optionally with +86"
                )
            object.__setattr__(self, "value", normal)
        elif self.kind is ContactKind.EMAIL:
            if len(value) > 254 or not _EMAIL.fullmatch(value):
                raise InvalidContact(f"e-mail address {mask(value)!r} is not of the form name@domain.tld")
        elif self.kind in (ContactKind.WECHAT, ContactKind.ESERVICE):
            if not _ACCOUNT.fullmatch(value):
                raise InvalidContact(
                    f"{self.kind.value} account {mask(value)!r} must be 1-128 letters, digits or _.:@-"
                )
        elif self.kind is ContactKind.POSTAL and (not value.strip() or len(value) > 300 or "\x00" in value):
            raise InvalidContact("postal address must be 1-300 characters of text")
        if self.division_code is not None and (
            not isinstance(self.division_code, str) or not _DIVISION.fullmatch(self.division_code)
        ):
            raise InvalidContact(f"division code {self.division_code!r} must be 6 digits (GB/T 2260)")
        if not isinstance(self.confirmed, bool):
            raise InvalidContact("confirmed must be True or False")
        if not isinstance(self.source, str) or not self.source:
            raise InvalidContact("contact source must be a non-empty string")


@attrs.frozen(kw_only=True)
class Consent:
    """Consent to electronic service (Online Litigation Rules Arts. 29-30; Interpretation Art. 136)."""

    method: ConsentMethod
    given_at: datetime | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.method, ConsentMethod):
            raise InvalidRequest("consent method must be a ConsentMethod")
        if self.given_at is not None and (not isinstance(self.given_at, datetime) or self.given_at.tzinfo is None):
            raise InvalidRequest("consent given_at must be a timezone-aware datetime")


def _contacts(value: Any) -> tuple[Contact, ...]:
    if isinstance(value, Contact) or not hasattr(value, "__iter__"):
        raise InvalidRequest("contacts must be a sequence of Contact")
    items = tuple(value)
    for c in items:
        if not isinstance(c, Contact):
            raise InvalidRequest(f"contacts must be Contact instances, got {type(c).__name__}")
    return items


@attrs.frozen(kw_only=True)
class Representative:
    """Someone who may receive for the party: a litigation agent, a designated receiver (代收人), ..."""

    name: str = attrs.field(repr=_masked_repr)
    role: AgentRole
    contacts: tuple[Contact, ...] = attrs.field(default=(), converter=_contacts)

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidRequest, self.name)
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidRequest("a representative needs a name")
        if not isinstance(self.role, AgentRole):
            raise InvalidRequest("representative role must be an AgentRole")


def _representatives(value: Any) -> tuple[Representative, ...]:
    if isinstance(value, Representative) or not hasattr(value, "__iter__"):
        raise InvalidRequest("agents must be a sequence of Representative")
    items = tuple(value)
    for r in items:
        if not isinstance(r, Representative):
            raise InvalidRequest(f"agents must be Representative instances, got {type(r).__name__}")
    return items


_ID = re.compile(r"[A-Za-z0-9_.:/()（）\-\u4e00-\u9fff]{1,128}")


def _check_id(what: str, value: Any) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidRequest(f"{what} must be 1-128 letters, digits, CJK characters or _.:/()- ; got {value!r}")


@attrs.frozen(kw_only=True)
class Party:
    """A recipient (受送达人): a person or an organisation, with contacts and representatives."""

    party_id: str
    name: str = attrs.field(repr=_masked_repr)
    kind: PartyKind = PartyKind.PERSON
    id_number: str | None = attrs.field(default=None, repr=lambda v: "None" if v is None else _masked_repr(v))
    contacts: tuple[Contact, ...] = attrs.field(default=(), converter=_contacts)
    agents: tuple[Representative, ...] = attrs.field(default=(), converter=_representatives)
    consent: Consent | None = None

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidRequest, self.name, self.id_number)
        _check_id("party_id", self.party_id)
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 200:
            raise InvalidRequest(f"party {self.party_id} needs a name of 1-200 characters")
        if not isinstance(self.kind, PartyKind):
            raise InvalidRequest("party kind must be a PartyKind")
        if self.id_number is not None and (not isinstance(self.id_number, str) or not 1 <= len(self.id_number) <= 64):
            raise InvalidRequest(f"party {self.party_id} id_number must be a string of 1-64 characters or None")
        if self.consent is not None and not isinstance(self.consent, Consent):
            raise InvalidRequest("party consent must be a Consent or None")

    def contacts_of(self, kind: ContactKind) -> tuple[Contact, ...]:
        """The party's own contacts of ``kind`` followed by its designated receivers' and agents'."""
        own = tuple(c for c in self.contacts if c.kind is kind)
        others = tuple(c for a in self.agents for c in a.contacts if c.kind is kind)
        return own + others

    def first_contact(self, kind: ContactKind) -> Contact | None:
        """``contacts_of(kind)[0]``, or None, without building the tuple."""
        for contact in self.contacts:
            if contact.kind is kind:
                return contact
        for agent in self.agents:
            for contact in agent.contacts:
                if contact.kind is kind:
                    return contact
        return None


@attrs.frozen(kw_only=True)
class Document:
    """One document to serve; ``sha256`` is the hex digest of its content, checked wherever it travels."""

    document_id: str
    title: str
    kind: DocumentKind
    sha256: str

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidRequest, self.title)
        _check_id("document_id", self.document_id)
        if not isinstance(self.title, str) or not self.title.strip() or len(self.title) > 300:
            raise InvalidRequest(f"document {self.document_id} needs a title of 1-300 characters")
        if not isinstance(self.kind, DocumentKind):
            raise InvalidRequest("document kind must be a DocumentKind")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise InvalidRequest(
                f"document {self.document_id} sha256 must be 64 lowercase hex digits (hashlib.sha256(...).hexdigest())"
            )


@attrs.frozen(kw_only=True)
class Case:
    """The case the documents belong to."""

    court: str
    case_number: str
    case_type: CaseType = CaseType.CIVIL

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidRequest, self.court, self.case_number)
        if not isinstance(self.court, str) or not self.court.strip() or len(self.court) > 200:
            raise InvalidRequest("case court must be 1-200 characters")
        if not isinstance(self.case_number, str) or not self.case_number.strip() or len(self.case_number) > 100:
            raise InvalidRequest("case number must be 1-100 characters, e.g. '(2026)鄂0106民初1234号'")
        if not isinstance(self.case_type, CaseType):
            raise InvalidRequest("case type must be a CaseType")

    @property
    def key(self) -> str:
        return f"{self.court}|{self.case_number}"


def _documents(value: Any) -> tuple[Document, ...]:
    if isinstance(value, Document) or not hasattr(value, "__iter__"):
        raise InvalidRequest("documents must be a sequence of Document")
    items = tuple(value)
    if not items:
        raise InvalidRequest("a service request needs at least one document; pass documents=[Document(...)]")
    ids = set()
    for d in items:
        if not isinstance(d, Document):
            raise InvalidRequest(f"documents must be Document instances, got {type(d).__name__}")
        if d.document_id in ids:
            raise InvalidRequest(f"document id {d.document_id!r} appears twice in one request")
        ids.add(d.document_id)
    return items


def _channel_kinds(value: Any) -> tuple[ChannelKind, ...] | None:
    if value is None:
        return None
    if not hasattr(value, "__iter__"):
        raise InvalidRequest(f"preferred channels must be a sequence of ChannelKind, got {type(value).__name__}")
    items = tuple(value)
    for k in items:
        if not isinstance(k, ChannelKind) or not k.electronic:
            raise InvalidRequest(f"preferred channels must be electronic ChannelKinds, got {k!r}")
    if len(set(items)) != len(items):
        raise InvalidRequest("preferred channels list a channel twice")
    return items


@attrs.frozen(kw_only=True)
class ServiceRequest:
    """What a judge asks for: serve these documents of this case on this party.

    ``client_key`` makes submission idempotent: submitting the same request with the same key returns the
    existing task; a different request with a used key raises :class:`~delivery_sdk.IdempotencyConflict`.
    ``channels`` optionally overrides the electronic channel order of the policy.
    """

    case: Case
    party: Party
    documents: tuple[Document, ...] = attrs.field(converter=_documents)
    client_key: str | None = None
    channels: tuple[ChannelKind, ...] | None = attrs.field(default=None, converter=_channel_kinds)

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidRequest, self.client_key)
        if not isinstance(self.case, Case):
            raise InvalidRequest("case must be a Case")
        if not isinstance(self.party, Party):
            raise InvalidRequest("party must be a Party")
        if self.client_key is not None and (
            not isinstance(self.client_key, str) or not 1 <= len(self.client_key) <= 200
        ):
            raise InvalidRequest("client_key must be a string of 1-200 characters")


@attrs.frozen(kw_only=True)
class Dispatch:
    """One attempt on one channel, as handed to a channel adapter.

    ``dispatch_id`` is stable across crashes and is the provider's idempotency key.
    """

    dispatch_id: str
    task_id: str
    channel: str
    kind: ChannelKind
    contact: Contact
    case: Case
    recipient_name: str = attrs.field(repr=_masked_repr)
    documents: tuple[Document, ...]
    centre_id: str | None = None
    waybill: str | None = None
    # For the postal leg only (print centre and carrier): the party's mobile number for the waybill.
    recipient_phone: str | None = attrs.field(default=None, repr=lambda v: "None" if v is None else _masked_repr(v))


@attrs.frozen(kw_only=True, slots=False)  # dict-based: the fold copies it for every receipt
class DispatchRecord:
    """A task's memory of one dispatch (folded from events)."""

    dispatch_id: str
    channel: str
    kind: ChannelKind
    contact: Contact
    status: DispatchStatus
    queued_at: datetime
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    settled_at: datetime | None = None
    provider_ref: str | None = None
    centre_id: str | None = None
    waybill: str | None = None
    detail: str | None = None
    enveloped_at: datetime | None = None  # when the print centre enveloped the package
