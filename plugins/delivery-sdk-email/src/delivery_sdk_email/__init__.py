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
``DELIVERY_SDK_EMAIL_*`` variables, and nothing while none of them is set (a partial configuration raises
:class:`~delivery_sdk.PluginError` naming every missing variable).
:mod:`delivery_sdk_email.emulator` is a local SMTP server (aiosmtpd) for tests.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
from collections.abc import Mapping

from delivery_sdk.clock import Clock
from delivery_sdk.plugin_kit import EnvChannelPlugin, PluginSettings

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


def channel_from_env(environ: Mapping[str, str] | None = None) -> EmailChannel | None:
    """The channel the ``DELIVERY_SDK_EMAIL_*`` variables in ``environ`` (``os.environ`` when None) describe,
    or ``None`` when none of them is set (installed, not configured).

    ``HOST`` and ``SENDER`` (required), ``PORT``, ``SECURITY`` (starttls|tls|none), ``USERNAME``,
    ``PASSWORD``, ``DOMAIN``, ``MODE`` (relay|direct), ``SENT_LOG`` (a SQLite file), ``LINK_TEMPLATE`` +
    ``LINK_SECRET`` (required: attachments need a document source, which only code can give),
    ``CALLBACK_SECRET``, ``CA_FILE`` (a CA bundle for a private server), ``RATE``, ``TIMEOUT``, ``NAME``.
    Any of them set makes the plugin configured: then a configuration that cannot work raises one
    :class:`~delivery_sdk.PluginError` naming every missing or invalid variable.
    """
    s = PluginSettings("e-mail", environ, ENV_PREFIX)
    if not s.configured:
        return None
    p = ENV_PREFIX
    host = s.require(p + "HOST", "the SMTP server")
    sender = s.require(p + "SENDER", "the From address")
    link_template = s.require(p + "LINK_TEMPLATE", "the link to the documents, with {token}")
    link_secret = s.secret(p + "LINK_SECRET", required=True)
    security = s.choice(p + "SECURITY", ("starttls", "tls", "none"), "starttls")
    mode = s.choice(p + "MODE", ("relay", "direct"), "relay")
    port = s.number(p + "PORT", None, minimum=1)
    rate = s.number(p + "RATE", None, positive=True)
    timeout = s.number(p + "TIMEOUT", 30.0, positive=True)
    username, password = s.get(p + "USERNAME"), s.secret(p + "PASSWORD")
    if (username is None) != (password is None):
        s.problem(f"{p}USERNAME and {p}PASSWORD go together (SMTP AUTH): set both, or neither")
    callback_secret = s.secret(p + "CALLBACK_SECRET")
    ca_file = s.get(p + "CA_FILE")
    tls_context = None
    if ca_file:
        try:
            tls_context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            s.guard(f"{p}CA_FILE cannot be read", exc)
    name = s.get(p + "NAME") or "email"
    s.check()
    try:
        sent_log = SQLiteSentLog(s.get(p + "SENT_LOG") or DEFAULT_SENT_LOG, channel=name)
    except (OSError, sqlite3.Error) as exc:
        s.guard(f"{p}SENT_LOG cannot be opened", exc)
        s.check()
        raise
    try:
        return EmailChannel(
            host,
            int(port) if port else None,
            sender=sender,
            sent_log=sent_log,
            name=name,
            domain=s.get(p + "DOMAIN"),
            security=security,  # type: ignore[arg-type]  # checked above
            tls_context=tls_context,
            username=username,
            password=password.strip() if password else None,
            mode=mode,  # type: ignore[arg-type]  # checked above
            link_template=link_template,
            link_secret=link_secret.strip() if link_secret else None,
            callback_secret=callback_secret.strip() if callback_secret else None,
            rate=rate,
            timeout=timeout if timeout is not None else 30.0,
        )
    except ValueError as exc:  # the channel's own checks (the sender's form, the link template...)
        sent_log.close()
        s.guard("the e-mail channel refuses its settings", exc)
        s.check()
        raise
    except BaseException:
        sent_log.close()
        raise


class EnvEmailPlugin(EnvChannelPlugin[EmailChannel]):
    """The ``email`` entry point: the :class:`EmailChannel` of :func:`channel_from_env` (its sent-log
    opened), or nothing while no ``DELIVERY_SDK_EMAIL_*`` variable is set; an unusable configuration
    stops the client with one :class:`~delivery_sdk.PluginError`."""

    title = "e-mail"
    prefix = ENV_PREFIX
    main_variable = ENV_PREFIX + "HOST"

    def configured(self, environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> EmailChannel | None:
        """:func:`channel_from_env` of this plugin's ``environ``, else the host's."""
        return channel_from_env(self.environ_or(environ))


plugin = EnvEmailPlugin()
"""The object the ``email`` entry point registers with every plugin host."""
