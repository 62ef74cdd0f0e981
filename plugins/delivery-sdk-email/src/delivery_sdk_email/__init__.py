"""An e-mail channel plugin for delivery-sdk: SMTP with STARTTLS or implicit TLS, documents linked or
attached, a Message-ID derived from the dispatch id, bounces (RFC 3464 DSNs) parsed into receipts.

:class:`EmailChannel` is the adapter. It speaks SMTP with the standard library's ``smtplib`` in a worker
thread (``asyncio.to_thread``), so the engine's event loop never blocks on a slow server. SMTP cannot be
asked what became of a message, so the adapter keeps a durable :class:`SentLog` and reads it before every
send and for every ``status`` call: a message the server may already have is never sent again.

What the adapter reports, and why (CPL Art. 90, SPC Online Litigation Rules Art. 31: electronic service
takes effect when the message reaches the recipient's specific system):

- ``mode="direct"`` (the SMTP server is the recipient domain's own mail exchanger): its ``250`` to the
  message is arrival at the recipient's system, reported as a DELIVERED receipt at that moment;
- ``mode="relay"`` (a submission server or relay, the usual set-up): its ``250`` only means the relay has
  it ("sent"); arrival comes from a "delivered" DSN, failure from a "failed" one. Neither a read receipt
  (MDN) nor the absence of a bounce is arrival.

The entry point (``email = "delivery_sdk_email:plugin"``) registers an :class:`EmailChannel` configured from
``DELIVERY_SDK_EMAIL_*`` environment variables, and nothing while ``DELIVERY_SDK_EMAIL_HOST`` is unset.
:mod:`delivery_sdk_email.emulator` is a local SMTP server (aiosmtpd) for tests.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import ssl
from collections.abc import Mapping

from delivery_sdk import ChannelRegistry, hookimpl

from ._channel import DocumentSource, EmailChannel, Mode, Security, link_token
from ._dsn import (
    DISPATCH_HEADER,
    Bounce,
    DsnRecipient,
    bounce_receipts,
    dispatch_from_message_id,
    message_id_for,
    parse_bounce,
    xtext,
)
from ._sentlog import MemorySentLog, SentLog, SentRecord, SentState, SQLiteSentLog

__all__ = [
    "DEFAULT_SENT_LOG",
    "DISPATCH_HEADER",
    "ENV_PREFIX",
    "Bounce",
    "DocumentSource",
    "DsnRecipient",
    "EmailChannel",
    "EnvEmailPlugin",
    "MemorySentLog",
    "Mode",
    "SQLiteSentLog",
    "Security",
    "SentLog",
    "SentRecord",
    "SentState",
    "bounce_receipts",
    "channel_from_env",
    "dispatch_from_message_id",
    "link_token",
    "message_id_for",
    "parse_bounce",
    "plugin",
    "xtext",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_email")

ENV_PREFIX = "DELIVERY_SDK_EMAIL_"
DEFAULT_SENT_LOG = "./delivery-sdk-email-sent.sqlite3"


def _optional_secret(env: Mapping[str, str], key: str) -> str | None:
    """A secret variable: unset means none; set but blank is a mistake (an unexpanded ``${...}``, say)."""
    value = env.get(ENV_PREFIX + key)
    if value is None:
        return None
    if not value.strip():
        raise ValueError(f"{ENV_PREFIX}{key} is set but empty: set it to the secret, or unset it")
    return value.strip()


def channel_from_env(environ: Mapping[str, str] | None = None) -> EmailChannel | None:
    """The channel the ``DELIVERY_SDK_EMAIL_*`` variables describe, or ``None`` when ``..._HOST`` is unset.

    ``HOST`` (required to enable), ``SENDER`` (required), ``PORT``, ``SECURITY`` (starttls|tls|none),
    ``USERNAME``, ``PASSWORD``, ``DOMAIN``, ``MODE`` (relay|direct), ``SENT_LOG`` (a SQLite file),
    ``LINK_TEMPLATE`` + ``LINK_SECRET`` (required: attachments need a document source, which only code can
    give), ``CALLBACK_SECRET``, ``CA_FILE`` (a CA bundle for a private server), ``RATE``, ``TIMEOUT``,
    ``NAME``. Raises ``ValueError`` for a configuration that cannot work.
    """
    env = os.environ if environ is None else environ

    def get(key: str) -> str | None:
        value = env.get(ENV_PREFIX + key, "").strip()
        return value or None

    host = get("HOST")
    if host is None:
        return None
    sender = get("SENDER")
    if sender is None:
        raise ValueError(f"{ENV_PREFIX}SENDER is required with {ENV_PREFIX}HOST")
    security = get("SECURITY") or "starttls"
    mode = get("MODE") or "relay"
    if security not in ("starttls", "tls", "none"):
        raise ValueError(f"{ENV_PREFIX}SECURITY must be starttls, tls or none")
    if mode not in ("relay", "direct"):
        raise ValueError(f"{ENV_PREFIX}MODE must be relay or direct")
    ca_file = get("CA_FILE")
    name = get("NAME") or "email"
    port, rate, timeout = get("PORT"), get("RATE"), get("TIMEOUT")
    sent_log = SQLiteSentLog(get("SENT_LOG") or DEFAULT_SENT_LOG, channel=name)
    try:
        return EmailChannel(
            host,
            int(port) if port else None,
            sender=sender,
            sent_log=sent_log,
            name=name,
            domain=get("DOMAIN"),
            security=security,  # type: ignore[arg-type]  # checked above
            tls_context=ssl.create_default_context(cafile=ca_file) if ca_file else None,
            username=get("USERNAME"),
            password=get("PASSWORD"),
            mode=mode,  # type: ignore[arg-type]  # checked above
            link_template=get("LINK_TEMPLATE"),
            link_secret=get("LINK_SECRET"),
            callback_secret=_optional_secret(env, "CALLBACK_SECRET"),
            rate=float(rate) if rate else None,
            timeout=float(timeout) if timeout else 30.0,
        )
    except BaseException:
        sent_log.close()
        raise


class EnvEmailPlugin:
    """The entry-point plugin: registers :func:`channel_from_env`'s channel, or nothing when unconfigured.

    The environment is read when a plugin host asks (once per client). A configuration that cannot work
    logs a warning (naming the variable, never a value) and registers nothing.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def __repr__(self) -> str:
        return "EnvEmailPlugin()"

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        try:
            channel = channel_from_env(self._environ)
        except (ValueError, OSError, sqlite3.Error) as exc:
            log.warning("e-mail channel not registered: %s", exc)
            return
        if channel is not None:
            register(channel)


plugin = EnvEmailPlugin()
"""The object the ``email`` entry point registers with every plugin host."""
