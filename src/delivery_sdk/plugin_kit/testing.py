"""Unit-test helpers for adapters: a dispatch, a document, a callback parsed as the receiver would.

::

    from delivery_sdk.plugin_kit.testing import make_dispatch

    dispatch = make_dispatch("sms", contact="13800138000")
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..callbacks import parse_callback_with_query
from ..channels import Receipt
from ..model import (
    Case,
    ChannelKind,
    Contact,
    ContactKind,
    Dispatch,
    Document,
    DocumentKind,
)

__all__ = ["DEFAULT_CONTACTS", "make_dispatch", "make_document", "parse_callback"]

DEFAULT_CONTACTS: Mapping[str, tuple[str, str]] = {
    "sms": ("mobile", "13800138000"),
    "phone": ("mobile", "13800138000"),
    "wechat": ("wechat", "oWx_test_openid_0001"),
    "email": ("email", "party@example.com"),
    "eservice": ("eservice", "ES-ACCOUNT-0001"),
}
"""The contact kind and a made-up value :func:`make_dispatch` uses for each built-in channel kind."""


def make_document(
    content: bytes = b"%PDF-1.7 test document", *, document_id: str = "D1", title: str = "传票"
) -> Document:
    """A :class:`~delivery_sdk.Document` whose ``sha256`` is the digest of ``content``.

    :raises InvalidRequest: ``document_id`` or ``title`` is not acceptable (see :class:`~delivery_sdk.Document`).
    """
    return Document(
        document_id=document_id, title=title, kind=DocumentKind.SUMMONS, sha256=hashlib.sha256(content).hexdigest()
    )


def make_dispatch(
    kind: str | ChannelKind,
    *,
    channel: str | None = None,
    contact: str | None = None,
    contact_kind: str | ContactKind | None = None,
    dispatch_id: str = "T000001.1",
    recipient_name: str = "张三",
    documents: tuple[Document, ...] | None = None,
    case: Case | None = None,
) -> Dispatch:
    """A :class:`~delivery_sdk.Dispatch` on a channel of ``kind``, as the engine would hand an adapter.

    :param kind: the channel kind (``"sms"``, ``ChannelKind.SMS``...).
    :param channel: the channel's name (default: the kind's name).
    :param contact: the contact value (default: a made-up one for the kind, see :data:`DEFAULT_CONTACTS`).
    :param contact_kind: the contact's kind (default: the one the kind declares, a plugin's kind's too).
    :param dispatch_id: the dispatch id; the task id is what precedes its last dot.
    :param documents: default: one summons (:func:`make_document`).
    :raises ValueError: ``kind`` is unknown, or it has no default contact value (a plugin's kind) and
        ``contact`` is missing.
    :raises ValidationError: the contact, case or documents are invalid (the SDK's own checks).
    """
    kind_value = kind.value if isinstance(kind, ChannelKind) else str(kind)
    try:
        channel_kind = ChannelKind(kind_value)
    except ValueError:
        raise ValueError(f"unknown channel kind {kind_value!r}") from None
    default_kind, default_value = DEFAULT_CONTACTS.get(kind_value, (channel_kind.contact_kind, None))
    chosen_kind = contact_kind if contact_kind is not None else default_kind
    value = contact if contact is not None else default_value
    if chosen_kind is None or value is None:
        raise ValueError(f"a {kind_value!r} dispatch needs contact= (no made-up contact for that kind)")
    contact_enum = chosen_kind if isinstance(chosen_kind, ContactKind) else ContactKind(chosen_kind)
    return Dispatch(
        dispatch_id=dispatch_id,
        task_id=dispatch_id.rsplit(".", 1)[0],
        channel=channel or kind_value,
        kind=channel_kind,
        contact=Contact(kind=contact_enum, value=value),
        case=case or Case(court="武汉市洪山区人民法院", case_number="(2026)鄂0111民初1234号"),
        recipient_name=recipient_name,
        documents=documents if documents is not None else (make_document(),),
    )


def parse_callback(
    adapter: Any, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
) -> list[Receipt]:
    """The receipts ``adapter.parse_callback`` reads from a callback, called as the receiver calls it
    (with ``query`` when the adapter declares one).

    :raises MalformedReceipt: the adapter could not read the payload (whatever its parser raises).
    """
    return list(parse_callback_with_query(adapter, headers, body, dict(query or {})))
