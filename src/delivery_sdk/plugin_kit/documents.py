"""Fetching a dispatch's documents from the host, each checked against its SHA-256 digest.

An adapter that carries the documents themselves (attachments, an e-service platform's upload) gets their
bytes from a :data:`DocumentSource` the host configures, and must never send bytes that are not the
document the court signed: :func:`fetch_document` checks each against ``Document.sha256``.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable

from .._exceptions import ChannelError, TransientChannelError
from ..model import Document

__all__ = ["DocumentSource", "fetch_document"]

DocumentSource = Callable[[Document], "bytes | Awaitable[bytes]"]
"""Gives a document's bytes (a plain or a coroutine function); checked against ``Document.sha256``."""


async def fetch_document(source: DocumentSource, document: Document, *, what: str) -> bytes:
    """The bytes of ``document`` from ``source``, checked against its SHA-256 digest.

    :param what: names the adapter in messages (its channel name).
    :raises TransientChannelError: ``source`` raised (the document store is down: worth another try).
    :raises ChannelError: ``source`` gave something other than bytes, or bytes whose digest is not the
        document's (never sent; the message names the document id, never its content).
    """
    try:
        content = source(document)
        if inspect.isawaitable(content):
            content = await content
    except Exception as exc:
        raise TransientChannelError(
            f"{what}: the document source failed for {document.document_id} ({type(exc).__name__})"
        ) from exc
    if not isinstance(content, bytes | bytearray):
        raise ChannelError(f"{what}: the document source gave no bytes for {document.document_id}")
    if hashlib.sha256(content).hexdigest() != document.sha256:
        raise ChannelError(f"{what}: document {document.document_id} does not match its SHA-256 digest; not sent")
    return bytes(content)
