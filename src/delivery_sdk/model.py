"""The vocabulary of service: cases, parties, contacts, documents, requests, tasks and dispatches.

Every class here is a frozen, keyword-only attrs class; change one with ``attrs.evolve``. Constructors
validate their input and raise :class:`~delivery_sdk.InvalidContact` / :class:`~delivery_sdk.InvalidRequest`
with a message that says what is wrong. Personal data (phone numbers, ID numbers, addresses, e-mail
addresses, account ids) never appears in clear in a ``repr``: see :func:`mask`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Final

import attrs

from ._exceptions import InvalidContact, InvalidRequest, UnknownKind, ValidationError

__all__ = [
    "LIMITS",
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
    "ServiceNature",
    "ServiceRequest",
    "case_key",
    "check_note",
    "check_source",
    "mask",
]


class CaseType(enum.Enum):
    """The kind of case: civil, commercial, administrative, criminal, enforcement..."""

    CIVIL = "civil"
    COMMERCIAL = "commercial"
    ADMINISTRATIVE = "administrative"
    CRIMINAL = "criminal"
    ENFORCEMENT = "enforcement"


class PartyKind(enum.Enum):
    """Whether a party is a natural person or an organisation."""

    PERSON = "person"
    ORGANISATION = "organisation"


class ServiceNature(enum.Enum):
    """The legal nature of a channel kind: what the service law makes of a dispatch on it.

    A kind declares one (:meth:`ChannelKind.declare`); the policy, the law, supervision, the dashboard and
    the proofs of service treat a kind they have never seen by its nature:

    - ``TEXT_MESSAGE`` (SMS-like), ``INSTANT_MESSAGE`` (WeChat, DingTalk, WeCom...), ``EMAIL`` and ``PLATFORM``
      (a court e-service platform) carry the documents: electronic service (CPL Art. 90), with consent
      (SPC Online Litigation Rules Arts. 29-30), effective on arrival or on reading (Rules Art. 31);
    - ``PHONE_CALL``: staff phone the party; the call notifies and can obtain consent (Rules Art. 30) but
      carries no document, so it serves nothing; supervision counts it with the electronic attempts;
    - ``PRINT`` (a print/mail centre) and ``POST`` (the carrier): postal service (CPL Art. 91);
    - ``UNDECLARED``: only for a kind read from a store whose plugin is not installed (see
      :meth:`ChannelKind.stored`). A plugin's kind always carries documents (:data:`DECLARABLE_NATURES`),
      and the law treats the four document-carrying natures alike, so such a record is still folded and
      judged as the electronic service it was; no new dispatch ever goes to it (no adapter has it).
    """

    __hash__ = object.__hash__  # identity: members are singletons (see lifecycle.TaskState)

    TEXT_MESSAGE = "text_message"
    INSTANT_MESSAGE = "instant_message"
    EMAIL = "email"
    PLATFORM = "platform"
    PHONE_CALL = "phone_call"
    PRINT = "print"
    POST = "post"
    UNDECLARED = "undeclared"

    @property
    def carries_documents(self) -> bool:
        """True for the natures that serve documents electronically (CPL Art. 90)."""
        return self in _DOCUMENT_NATURES

    @property
    def electronic(self) -> bool:
        """True for an electronic nature: the document-carrying ones and staff phone calls."""
        return self in _ELECTRONIC_NATURES

    @property
    def default_window(self) -> timedelta:
        """How long the policy waits for a dispatch of this nature to be delivered (or read) by default."""
        return _NATURE_WINDOWS.get(self, timedelta(hours=24))


DECLARABLE_NATURES = frozenset(
    {ServiceNature.TEXT_MESSAGE, ServiceNature.INSTANT_MESSAGE, ServiceNature.EMAIL, ServiceNature.PLATFORM}
)
"""What a plugin may declare: its kinds carry documents. A new phone line, print centre or carrier is one more
adapter of the built-in PHONE, PRINT or POST kind (their workflows are the engine's own)."""
_DOCUMENT_NATURES = DECLARABLE_NATURES | {ServiceNature.UNDECLARED}  # a removed plugin's kind carried documents
_ELECTRONIC_NATURES = _DOCUMENT_NATURES | {ServiceNature.PHONE_CALL}
_NATURE_WINDOWS = {
    ServiceNature.TEXT_MESSAGE: timedelta(hours=2),
    ServiceNature.INSTANT_MESSAGE: timedelta(hours=6),
    ServiceNature.EMAIL: timedelta(hours=24),
    ServiceNature.PLATFORM: timedelta(hours=24),
    ServiceNature.PHONE_CALL: timedelta(hours=48),
}

_KIND_VALUE = re.compile(r"[a-z][a-z0-9_]{1,31}")


class _KindType(type):
    """The metaclass of the open kinds: ``for kind in ChannelKind`` lists every declared kind."""

    def __iter__(cls) -> Iterator[Any]:
        return iter(tuple(cls.__dict__["_registry"].values()))

    def __len__(cls) -> int:
        return len(cls.__dict__["_registry"])


class ContactKind(metaclass=_KindType):
    """The kind of a contact: a mobile number, WeChat, e-mail, an e-service platform account, a postal address...

    An open set: a plugin declares a new one (a DingTalk account, say) with :meth:`declare`, usually through
    the :class:`ChannelKind` it declares. Members are singletons compared by identity (``is``);
    ``ContactKind("mobile")`` finds one by its value (:class:`UnknownKind` when none is declared).
    """

    __slots__ = ("_value_", "builtin", "label", "value")
    _registry: ClassVar[dict[str, ContactKind]] = {}
    _value_: str
    value: str
    label: str
    builtin: bool

    MOBILE: ClassVar[ContactKind]
    WECHAT: ClassVar[ContactKind]
    EMAIL: ClassVar[ContactKind]
    ESERVICE: ClassVar[ContactKind]  # court e-service platform account
    POSTAL: ClassVar[ContactKind]

    def __new__(cls, value: str | ContactKind) -> ContactKind:  # noqa: D102 - the lookup, documented on the class
        if isinstance(value, ContactKind) and cls._registry.get(value.value) is value:
            return value  # as an enum's ContactKind(ContactKind.MOBILE)
        found = cls._registry.get(value) if isinstance(value, str) else None
        if found is None:
            known = ", ".join(cls._registry)
            raise UnknownKind(
                f"{value!r} is not a declared contact kind (declared: {known}); a plugin that adds one declares it "
                "with ContactKind.declare(...) and returns its channel kind from delivery_channel_kinds()"
            )
        return found

    @classmethod
    def declare(cls, value: str, *, label: str, _builtin: bool = False) -> ContactKind:
        """The contact kind ``value`` (lowercase ``[a-z][a-z0-9_]``, 2-32 characters) with its Chinese
        ``label``; declaring the same kind again returns the same object, a different label is refused."""
        if not isinstance(value, str) or not _KIND_VALUE.fullmatch(value):
            raise ValidationError(
                f"contact kind value {value!r} must be 2-32 characters: a lowercase letter, then lowercase "
                "letters, digits or _ (e.g. 'dingtalk')"
            )
        if not isinstance(label, str) or not label.strip() or len(label) > 32:
            raise ValidationError(f"contact kind {value!r}: label must be 1-32 characters of text, e.g. '钉钉账号'")
        existing = cls._registry.get(value)
        if existing is not None:
            if existing.label != label:
                raise ValidationError(
                    f"contact kind {value!r} is already declared with label {existing.label!r}, not {label!r}"
                )
            return existing
        kind = object.__new__(cls)
        for name, item in (("_value_", value), ("value", value), ("label", label), ("builtin", _builtin)):
            object.__setattr__(kind, name, item)
        cls._registry = {**cls._registry, value: kind}  # replaced whole: readers in other threads see either
        return kind

    @classmethod
    def stored(cls, value: str) -> ContactKind:
        """The contact kind a stored record names: the declared one, or, when no installed plugin declares
        ``value``, a placeholder with the label ``未安装的联系方式（value）`` (the store stays readable)."""
        found = cls._registry.get(value) if isinstance(value, str) else None
        if found is not None:
            return found
        if not isinstance(value, str) or not _KIND_VALUE.fullmatch(value):
            raise UnknownKind(f"stored contact kind {value!r} is not a kind value (lowercase letters, digits, _)")
        placeholder = _UNDECLARED_CONTACTS.get(value)
        if placeholder is None:
            placeholder = _UNDECLARED_CONTACTS.setdefault(
                value, _unregistered_contact(value, f"未安装的联系方式（{value}）")
            )
        return placeholder

    @property
    def name(self) -> str:
        """The member's name, as an enum's: ``MOBILE``, ``DINGTALK``."""
        return self.value.upper()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (type(self), (self.value,))

    def __copy__(self) -> ContactKind:
        return self

    def __deepcopy__(self, memo: Any) -> ContactKind:
        return self


ContactKind.MOBILE = ContactKind.declare("mobile", label="手机号码", _builtin=True)
ContactKind.WECHAT = ContactKind.declare("wechat", label="微信", _builtin=True)
ContactKind.EMAIL = ContactKind.declare("email", label="电子邮箱", _builtin=True)
ContactKind.ESERVICE = ContactKind.declare("eservice", label="电子送达平台账号", _builtin=True)
ContactKind.POSTAL = ContactKind.declare("postal", label="邮寄地址", _builtin=True)


class ChannelKind(metaclass=_KindType):
    """What a channel adapter does; the policy chooses channels by kind.

    An open set. Each kind declares its ``value`` (stored in events: ``"sms"``), its Chinese ``label`` (what
    court staff read, and what the proof of service names), its legal ``nature`` (:class:`ServiceNature`:
    how the law treats it) and its ``contact_kind``. The built-ins (``ChannelKind.SMS``, ``WECHAT``,
    ``EMAIL``, ``ESERVICE``, ``PHONE``, ``PRINT``, ``POST``) are declared here; a plugin declares a new one
    with :meth:`declare` and returns it from its ``delivery_channel_kinds`` hook. Members are singletons
    compared by identity; ``ChannelKind("sms")`` finds one by value (:class:`UnknownKind` when none is
    declared) and :meth:`stored` reads a stored value, undeclared ones included.
    """

    __slots__ = (
        "_value_",
        "builtin",
        "carries_documents",
        "contact_kind",
        "electronic",
        "label",
        "nature",
        "value",
    )
    _registry: ClassVar[dict[str, ChannelKind]] = {}
    _undeclared: ClassVar[dict[str, ChannelKind]] = {}
    _value_: str
    value: str
    label: str
    nature: ServiceNature
    contact_kind: ContactKind
    electronic: bool  # the nature's, kept on the kind: hot paths read it as a plain attribute
    carries_documents: bool
    builtin: bool

    SMS: ClassVar[ChannelKind]
    WECHAT: ClassVar[ChannelKind]
    EMAIL: ClassVar[ChannelKind]
    ESERVICE: ClassVar[ChannelKind]
    PHONE: ClassVar[ChannelKind]  # staff phone calls (human in the loop)
    PRINT: ClassVar[ChannelKind]  # a regional print/mail centre
    POST: ClassVar[ChannelKind]  # the postal carrier (court express post)

    def __new__(cls, value: str | ChannelKind) -> ChannelKind:  # noqa: D102 - the lookup, documented on the class
        if isinstance(value, ChannelKind) and value.declared:
            return value  # as an enum's ChannelKind(ChannelKind.SMS)
        found = cls._registry.get(value) if isinstance(value, str) else None
        if found is None:
            raise UnknownKind(
                f"{value!r} is not a declared channel kind (declared: {', '.join(cls._registry)}); install and "
                "enable the plugin that declares it (its delivery_channel_kinds hook), or correct the name"
            )
        return found

    @classmethod
    def declare(
        cls,
        value: str,
        *,
        label: str,
        nature: ServiceNature,
        contact: ContactKind,
        _builtin: bool = False,
    ) -> ChannelKind:
        """Declare the channel kind ``value`` (lowercase ``[a-z][a-z0-9_]``, 2-32 characters): its Chinese
        ``label``, its legal ``nature`` and the ``contact`` kind it serves to.

        A plugin's kind carries documents (a nature in :data:`DECLARABLE_NATURES`): a new phone line, print
        centre or carrier is another adapter of ``PHONE``, ``PRINT`` or ``POST``. Declaring the same kind
        again returns the same object; a different declaration under a declared value is refused
        (:class:`~delivery_sdk.ValidationError`), so a plugin can never change what a stored value means.
        """
        if not isinstance(value, str) or not _KIND_VALUE.fullmatch(value):
            raise ValidationError(
                f"channel kind value {value!r} must be 2-32 characters: a lowercase letter, then lowercase "
                "letters, digits or _ (e.g. 'dingtalk')"
            )
        if not isinstance(label, str) or not label.strip() or len(label) > 32:
            raise ValidationError(f"channel kind {value!r}: label must be 1-32 characters of text, e.g. '钉钉工作通知'")
        if not isinstance(nature, ServiceNature) or (not _builtin and nature not in DECLARABLE_NATURES):
            allowed = ", ".join(f"ServiceNature.{n.name}" for n in ServiceNature if n in DECLARABLE_NATURES)
            raise ValidationError(
                f"channel kind {value!r}: nature must be one of {allowed} (got {nature!r}); a phone line, print "
                "centre or carrier is registered as another adapter of ChannelKind.PHONE, PRINT or POST"
            )
        if not isinstance(contact, ContactKind):
            raise ValidationError(f"channel kind {value!r}: contact must be a ContactKind, got {contact!r}")
        existing = cls._registry.get(value)
        if existing is not None:
            if (existing.label, existing.nature, existing.contact_kind) != (label, nature, contact):
                raise ValidationError(
                    f"channel kind {value!r} is already declared as {existing.label!r} "
                    f"({existing.nature.value}, to a {existing.contact_kind.value} contact); a plugin cannot "
                    "redeclare it differently: choose another value"
                )
            return existing
        kind = cls._make(value, label, nature, contact, builtin=_builtin)
        cls._registry = {**cls._registry, value: kind}  # replaced whole: readers in other threads see either
        return kind

    @classmethod
    def _make(
        cls, value: str, label: str, nature: ServiceNature, contact: ContactKind, *, builtin: bool
    ) -> ChannelKind:
        kind = object.__new__(cls)
        for name, item in (
            ("_value_", value),
            ("value", value),
            ("label", label),
            ("nature", nature),
            ("contact_kind", contact),
            ("electronic", nature.electronic),
            ("carries_documents", nature.carries_documents),
            ("builtin", builtin),
        ):
            object.__setattr__(kind, name, item)
        return kind

    @classmethod
    def stored(cls, value: str) -> ChannelKind:
        """The kind a stored record names: the declared one, or, when no installed plugin declares ``value``,
        a placeholder of nature ``UNDECLARED`` (label ``未安装的渠道（value）``).

        So a store stays readable (status, reports, proofs, ``verify``) after a plugin is removed: the
        placeholder is an electronic, document-carrying kind, as every plugin's kind is, so the task's
        history folds and is judged as it was; no adapter has it, so nothing new is sent on it. A value that
        is no kind value at all is refused (:class:`~delivery_sdk.UnknownKind`).
        """
        found = cls._registry.get(value) if isinstance(value, str) else None
        if found is not None:
            return found
        if not isinstance(value, str) or not _KIND_VALUE.fullmatch(value):
            raise UnknownKind(f"stored channel kind {value!r} is not a kind value (lowercase letters, digits, _)")
        placeholder = cls._undeclared.get(value)
        if placeholder is None:
            placeholder = cls._make(
                value, f"未安装的渠道（{value}）", ServiceNature.UNDECLARED, _undeclared_contact(), builtin=False
            )
            cls._undeclared = {**cls._undeclared, value: placeholder}
        return placeholder

    @property
    def name(self) -> str:
        """The member's name, as an enum's: ``SMS``, ``DINGTALK``."""
        return self.value.upper()

    @property
    def declared(self) -> bool:
        """False for the placeholder of a stored kind no installed plugin declares (:meth:`stored`)."""
        return self.nature is not ServiceNature.UNDECLARED

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (type(self).stored, (self.value,))

    def __copy__(self) -> ChannelKind:
        return self

    def __deepcopy__(self, memo: Any) -> ChannelKind:
        return self


def _unregistered_contact(value: str, label: str) -> ContactKind:
    # not in the registry: no new request can name it, and ``for kind in ContactKind`` does not list it
    kind = object.__new__(ContactKind)
    for name, item in (("_value_", value), ("value", value), ("label", label), ("builtin", False)):
        object.__setattr__(kind, name, item)
    return kind


_UNDECLARED_CONTACTS: dict[str, ContactKind] = {}
_UNDECLARED_CONTACT = _unregistered_contact("undeclared", "未安装渠道的联系方式")


def _undeclared_contact() -> ContactKind:
    return _UNDECLARED_CONTACT


_N = ServiceNature
ChannelKind.SMS = ChannelKind.declare(
    "sms", label="短信", nature=_N.TEXT_MESSAGE, contact=ContactKind.MOBILE, _builtin=True
)
ChannelKind.WECHAT = ChannelKind.declare(
    "wechat", label="微信", nature=_N.INSTANT_MESSAGE, contact=ContactKind.WECHAT, _builtin=True
)
ChannelKind.EMAIL = ChannelKind.declare(
    "email", label="电子邮件", nature=_N.EMAIL, contact=ContactKind.EMAIL, _builtin=True
)
ChannelKind.ESERVICE = ChannelKind.declare(
    "eservice", label="电子送达平台", nature=_N.PLATFORM, contact=ContactKind.ESERVICE, _builtin=True
)
ChannelKind.PHONE = ChannelKind.declare(
    "phone", label="电话", nature=_N.PHONE_CALL, contact=ContactKind.MOBILE, _builtin=True
)
ChannelKind.PRINT = ChannelKind.declare(
    "print", label="集约打印邮寄", nature=_N.PRINT, contact=ContactKind.POSTAL, _builtin=True
)
ChannelKind.POST = ChannelKind.declare("post", label="邮政", nature=_N.POST, contact=ContactKind.POSTAL, _builtin=True)
BUILTIN_CHANNEL_KINDS: tuple[ChannelKind, ...] = tuple(ChannelKind)

# The built-in electronic kinds (kept for code written against the closed enum); a test of any kind is
# ``kind.electronic`` (a plain attribute, as fast as this set's membership test).
ELECTRONIC_KINDS = frozenset(k for k in BUILTIN_CHANNEL_KINDS if k.electronic)


class DocumentKind(enum.Enum):
    """The kind of a court document: summons, notice, complaint, judgment, ruling, mediation agreement..."""

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


# -- limits ----------------------------------------------------------------------------------------------

LIMITS: Final[Mapping[str, int]] = MappingProxyType(
    {
        # strings: the most characters a field may hold
        "Case.court": 200,
        "Case.case_number": 100,
        "Party.party_id": 128,
        "Party.name": 200,
        "Party.id_number": 64,
        "Representative.name": 200,
        "Contact.value (mobile, as given)": 32,
        "Contact.value (email)": 254,
        "Contact.value (wechat, eservice)": 128,
        "Contact.value (postal)": 300,
        "Contact.source": 64,
        "Document.document_id": 128,
        "Document.title": 300,
        "ServiceRequest.client_key": 200,
        "note": 2000,  # free text a person gives: a cancel reason, a resume note
        # collections: the most items
        "Party.contacts": 32,
        "Party.agents": 16,
        "Representative.contacts": 32,
        "ServiceRequest.documents": 200,
        "ServiceRequest.channels": 5,
    }
)
"""Every limit of the public model in one place: field -> maximum length (strings) or count (collections).

Documented in the user guide ("Limits"). Input over a limit raises a
:class:`~delivery_sdk.ValidationError` naming the field, its size and the limit.
"""

_L = LIMITS  # module-level aliases below are read on the construction hot path
_MAX_COURT, _MAX_CASE_NUMBER = _L["Case.court"], _L["Case.case_number"]
_MAX_NAME, _MAX_ID_NUMBER, _MAX_AGENT_NAME = _L["Party.name"], _L["Party.id_number"], _L["Representative.name"]
_MAX_MOBILE_INPUT, _MAX_EMAIL = _L["Contact.value (mobile, as given)"], _L["Contact.value (email)"]
_MAX_POSTAL, _MAX_SOURCE = _L["Contact.value (postal)"], _L["Contact.source"]
_MAX_TITLE, _MAX_CLIENT_KEY, _MAX_NOTE = _L["Document.title"], _L["ServiceRequest.client_key"], _L["note"]
_MAX_CONTACTS, _MAX_AGENTS = _L["Party.contacts"], _L["Party.agents"]
_MAX_AGENT_CONTACTS, _MAX_DOCUMENTS = _L["Representative.contacts"], _L["ServiceRequest.documents"]


def _over(field: str, size: int, unit: str = "characters") -> str:
    return f"{field} is {size:,} {unit}, over its limit of {LIMITS[field]:,} (delivery_sdk.LIMITS)"


def _size_note(field: str, value: object) -> str:
    """`` (FIELD is N characters, over its limit of L)`` for a string over its limit, else empty."""
    return f" ({_over(field, len(value))})" if isinstance(value, str) and len(value) > LIMITS[field] else ""


# Identifiers and names take no control (Cc) or format (Cf) character, nor a line or paragraph separator:
# they reach terminals, logs, waybills and PostgreSQL (which refuses NUL). The Cf ranges are Unicode 15's
# (tests/test_limits.py checks them against unicodedata).
_CF = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\u2028\u2029{_CF}]")
# court and case number also refuse '|', which separates them in the case key (see case_key)
_UNSAFE_KEY = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\u2028\u2029|{_CF}]")
# free text (a note, a postal address): no control character but tab and line breaks; format characters pass
_UNSAFE_TEXT = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]")
_UNSAFE_NOTE = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]")  # a note: tab and newline only

# True while a stored event is read back (serialization.event_from_dict, on its second try): the rules
# added after a store may have been written (control characters, '|', the new limits) let old data through
# there, so every store written before them still reads. Input from callers always meets every rule.
_READING_STORED: ContextVar[bool] = ContextVar("delivery_sdk_reading_stored", default=False)


def _later_rule(error: Exception) -> None:
    """Raise ``error`` (a rule stores may predate: a new limit, control characters, '|') unless reading a
    stored event."""
    if not _READING_STORED.get():
        raise error


def _unsafe_at(field: str, match: re.Match[str]) -> str:
    if match.group() == "|":
        return (
            f"{field} holds '|' at position {match.start()}: the case key is court|case_number, so neither "
            "part may hold it (Chinese case numbers never do)"
        )
    return (
        f"{field} holds control or format character U+{ord(match.group()):04X} at position {match.start()}; "
        "give it as plain text"
    )


def _check_plain(error: type[Exception], field: str, value: str, pattern: re.Pattern[str] = _UNSAFE) -> None:
    """Refuse a character of ``pattern`` in ``value``. Callers test ``value.isprintable()`` first (no Cc, Cf,
    Zl or Zp character then, in C), so the usual text never reaches the regex."""
    found = pattern.search(value)
    if found is not None:
        _later_rule(error(_unsafe_at(field, found)))


def check_note(what: str, value: str) -> None:
    """Refuse free text a person gives (a cancel reason, a resume note) over ``LIMITS['note']`` characters or
    holding a control character other than tab and newline."""
    if len(value) > _MAX_NOTE:
        raise ValidationError(f"{what}: " + _over("note", len(value)))
    found = _UNSAFE_NOTE.search(value)
    if found is not None:
        raise ValidationError(
            f"{what} holds control character U+{ord(found.group()):04X} at position {found.start()}; "
            "only tab and newline may break the text"
        )


def check_source(value: Any) -> None:
    """Refuse an address source (``set_address(..., source=...)``) that is not 1-64 characters of plain text."""
    if not isinstance(value, str) or not value:
        raise ValidationError("an address source must be a non-empty string, e.g. 'staff'")
    if len(value) > _MAX_SOURCE:
        raise ValidationError("address source: " + _over("Contact.source", len(value)))
    found = _UNSAFE.search(value)
    if found is not None:
        raise ValidationError(_unsafe_at("address source", found))


def case_key(court: str, case_number: str) -> str:
    """The stores' key of a case: ``court|case_number``. Neither part may hold ``|`` (refused by :class:`Case`),
    so the key splits at its first ``|`` and every key of a court lies in ``[court|, court})``."""
    return f"{court}|{case_number}"


_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)  # ASCII: \d would also take full-width and Arabic-Indic digits
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_ACCOUNT = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_DIVISION = re.compile(r"\d{6}", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def normalise_mobile(value: str) -> str:
    """A mainland mobile number as its bare digits: spaces and hyphens removed, a ``+86``/``0086`` prefix dropped."""
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
            if len(value) > _MAX_MOBILE_INPUT:
                raise InvalidContact(
                    f"mobile number {mask(value[:20])!r}... is not an 11-digit mainland number: "
                    + _over("Contact.value (mobile, as given)", len(value))
                )
            normal = normalise_mobile(value)
            if not _MOBILE.fullmatch(normal):
                raise InvalidContact(
                    f"mobile number {mask(value)!r} is not an 11-digit mainland number starting 13-19; "
                    "give the number without spaces, optionally with +86"
                )
            object.__setattr__(self, "value", normal)
        elif self.kind is ContactKind.EMAIL:
            if len(value) > _MAX_EMAIL:
                raise InvalidContact(
                    f"e-mail address {mask(value[:20])!r}... is too long: " + _over("Contact.value (email)", len(value))
                )
            if not _EMAIL.fullmatch(value):
                raise InvalidContact(f"e-mail address {mask(value)!r} is not of the form name@domain.tld")
        elif self.kind in (ContactKind.WECHAT, ContactKind.ESERVICE):
            if not _ACCOUNT.fullmatch(value):
                shown = f"of {len(value):,} characters" if len(value) > 128 else repr(mask(value))
                raise InvalidContact(f"{self.kind.value} account {shown} must be 1-128 letters, digits or _.:@-")
        elif self.kind is ContactKind.POSTAL:
            if not value.strip() or len(value) > _MAX_POSTAL or "\x00" in value:
                raise InvalidContact(
                    "postal address must be 1-300 characters of text" + _size_note("Contact.value (postal)", value)
                )
            if not value.isprintable():
                _check_plain(InvalidContact, "postal address", value, _UNSAFE_TEXT)
        elif not _ACCOUNT.fullmatch(value):  # a plugin's contact kind (a DingTalk account...): an account id
            shown = f"of {len(value):,} characters" if len(value) > 128 else repr(mask(value))
            raise InvalidContact(f"{self.kind.value} account {shown} must be 1-128 letters, digits or _.:@-")
        if self.division_code is not None and (
            not isinstance(self.division_code, str) or not _DIVISION.fullmatch(self.division_code)
        ):
            raise InvalidContact(f"division code {self.division_code!r} must be 6 digits (GB/T 2260)")
        if not isinstance(self.confirmed, bool):
            raise InvalidContact("confirmed must be True or False")
        source = self.source
        if not isinstance(source, str) or not source:
            raise InvalidContact("contact source must be a non-empty string")
        if len(source) > _MAX_SOURCE:
            _later_rule(InvalidContact("contact source: " + _over("Contact.source", len(source))))
        if not source.isprintable():
            _check_plain(InvalidContact, "Contact.source", source)


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


def _contact_tuple(value: Any, field: str, limit: int) -> tuple[Contact, ...]:
    if isinstance(value, Contact) or not hasattr(value, "__iter__"):
        raise InvalidRequest("contacts must be a sequence of Contact")
    items = tuple(value)
    if len(items) > limit:
        _later_rule(InvalidRequest(_over(field, len(items), "contacts")))
    for c in items:
        if not isinstance(c, Contact):
            raise InvalidRequest(f"contacts must be Contact instances, got {type(c).__name__}")
    return items


def _contacts(value: Any) -> tuple[Contact, ...]:
    return _contact_tuple(value, "Party.contacts", _MAX_CONTACTS)


def _agent_contacts(value: Any) -> tuple[Contact, ...]:
    return _contact_tuple(value, "Representative.contacts", _MAX_AGENT_CONTACTS)


@attrs.frozen(kw_only=True)
class Representative:
    """Someone who may receive for the party: a litigation agent, a designated receiver (代收人), ..."""

    name: str = attrs.field(repr=_masked_repr)
    role: AgentRole
    contacts: tuple[Contact, ...] = attrs.field(default=(), converter=_agent_contacts)

    def __attrs_post_init__(self) -> None:
        _encodable(InvalidRequest, self.name)
        name = self.name
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest("a representative needs a name")
        if len(name) > _MAX_AGENT_NAME:
            _later_rule(InvalidRequest("representative name: " + _over("Representative.name", len(name))))
        if not name.isprintable():
            _check_plain(InvalidRequest, "Representative.name", name)
        if not isinstance(self.role, AgentRole):
            raise InvalidRequest("representative role must be an AgentRole")


def _representatives(value: Any) -> tuple[Representative, ...]:
    if isinstance(value, Representative) or not hasattr(value, "__iter__"):
        raise InvalidRequest("agents must be a sequence of Representative")
    items = tuple(value)
    if len(items) > _MAX_AGENTS:
        _later_rule(InvalidRequest(_over("Party.agents", len(items), "representatives")))
    for r in items:
        if not isinstance(r, Representative):
            raise InvalidRequest(f"agents must be Representative instances, got {type(r).__name__}")
    return items


_ID = re.compile(r"[A-Za-z0-9_.:/()（）\-\u4e00-\u9fff]{1,128}")


def _check_id(what: str, value: Any) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        shown = f"a string of {len(value):,} characters" if isinstance(value, str) and len(value) > 128 else repr(value)
        raise InvalidRequest(f"{what} must be 1-128 letters, digits, CJK characters or _.:/()- ; got {shown}")


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
        name, id_number = self.name, self.id_number
        if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
            raise InvalidRequest(
                f"party {self.party_id} needs a name of 1-200 characters{_size_note('Party.name', name)}"
            )
        if not isinstance(self.kind, PartyKind):
            raise InvalidRequest("party kind must be a PartyKind")
        if id_number is not None and (not isinstance(id_number, str) or not 1 <= len(id_number) <= _MAX_ID_NUMBER):
            raise InvalidRequest(
                f"party {self.party_id} id_number must be a string of 1-64 characters or None"
                + _size_note("Party.id_number", id_number)
            )
        if not (name.isprintable() and (id_number is None or id_number.isprintable())):
            _check_plain(InvalidRequest, f"party {self.party_id} name", name)
            _check_plain(InvalidRequest, f"party {self.party_id} id_number", id_number or "")
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
        title = self.title
        if not isinstance(title, str) or not title.strip() or len(title) > _MAX_TITLE:
            raise InvalidRequest(
                f"document {self.document_id} needs a title of 1-300 characters{_size_note('Document.title', title)}"
            )
        if not title.isprintable():
            _check_plain(InvalidRequest, f"document {self.document_id} title", title)
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
        court, number = self.court, self.case_number
        if not isinstance(court, str) or not court.strip() or len(court) > _MAX_COURT:
            raise InvalidRequest(f"case court must be 1-200 characters{_size_note('Case.court', court)}")
        if not isinstance(number, str) or not number.strip() or len(number) > _MAX_CASE_NUMBER:
            raise InvalidRequest(
                "case number must be 1-100 characters, e.g. '(2026)鄂0106民初1234号'"
                + _size_note("Case.case_number", number)
            )
        both = court + number
        if not both.isprintable() or "|" in both:
            _check_plain(InvalidRequest, "case court", court, _UNSAFE_KEY)
            _check_plain(InvalidRequest, "case number", number, _UNSAFE_KEY)
        if not isinstance(self.case_type, CaseType):
            raise InvalidRequest("case type must be a CaseType")

    @property
    def key(self) -> str:
        """The stores' key of the case (:func:`case_key`): ``court|case_number``, unambiguous since neither
        part may hold ``|``."""
        return f"{self.court}|{self.case_number}"


def _documents(value: Any) -> tuple[Document, ...]:
    if isinstance(value, Document) or not hasattr(value, "__iter__"):
        raise InvalidRequest("documents must be a sequence of Document")
    items = tuple(value)
    if not items:
        raise InvalidRequest("a service request needs at least one document; pass documents=[Document(...)]")
    if len(items) > _MAX_DOCUMENTS:
        _later_rule(InvalidRequest(_over("ServiceRequest.documents", len(items), "documents")))
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
        key = self.client_key
        if key is not None:
            if not isinstance(key, str) or not 1 <= len(key) <= _MAX_CLIENT_KEY:
                raise InvalidRequest(
                    "client_key must be a string of 1-200 characters" + _size_note("ServiceRequest.client_key", key)
                )
            if not key.isprintable():
                _check_plain(InvalidRequest, "client_key", key)


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
    # when the recipient accepted this e-service: replied that it received it or acted on it (SPC Online
    # Litigation Rules Arts. 29(4), 31(2)(1)); from consent.recorded (accepted_without_objection, via_dispatch)
    accepted_at: datetime | None = None
    # who failed it when not its own adapter (DispatchFailed.failed_by: "carrier" for a print job whose waybill
    # the carrier refused: the print centre did not refuse it)
    failed_by: str | None = None
