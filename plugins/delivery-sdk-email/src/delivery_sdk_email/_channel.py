"""The e-mail channel adapter: SMTP (stdlib ``smtplib`` in a worker thread), documents linked or attached."""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import logging
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Literal

from delivery_sdk import (
    BaseChannel,
    CallbackRejected,
    ChannelError,
    ChannelKind,
    Clock,
    Dispatch,
    Document,
    MalformedReceipt,
    Receipt,
    ReceiptKind,
    SendResult,
    StatusReport,
    SystemClock,
    TransientChannelError,
)
from delivery_sdk.model import mask
from delivery_sdk.plugin_kit import (
    DocumentSource,
    RateLimiter,
    check_timestamp,
    fetch_document,
    link_token,
    lower_headers,
    require_secret,
    verify_hmac_sha256,
)

from ._dsn import DISPATCH_HEADER, bounce_receipts, message_id_for, parse_bounce, xtext
from ._sentlog import SentLog, SentRecord, SentState

__all__ = ["DocumentSource", "EmailChannel", "Mode", "Security", "link_token"]

log = logging.getLogger("delivery_sdk_email")

Security = Literal["starttls", "tls", "none"]
Mode = Literal["relay", "direct"]

_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
_ENHANCED = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})")
# 7bit: bodies go base64/quoted-printable, so no server needs 8BITMIME; CRLF line ends as SMTP wants.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")
_TOKEN_FIELD = re.compile(r"\{(\w*)\}")


def _reply(code: int, text: bytes | str | None) -> str:
    """``"550 5.1.1"``: the code and the enhanced status, never the server's text (it may echo the address)."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else (text or b"")
    match = _ENHANCED.match(raw)
    return f"{code} {match.group(1).decode()}" if match else str(code)


class _Refused(Exception):
    """A 5xx to RCPT TO or to the message: refused for good."""

    def __init__(self, reply: str, stage: str) -> None:
        super().__init__(f"{stage}: {reply}")
        self.reply = reply
        self.stage = stage


class EmailChannel(BaseChannel):
    """Serve documents by e-mail over SMTP.

    - ``host``/``port``: the SMTP server (``port`` defaults to 587, 465 or 25 by ``security``);
    - ``sender``: the envelope sender and ``From`` address; ``domain``: the right-hand side of every
      Message-ID (default: the sender's domain), which is ``<dispatch-id@domain>``;
    - ``security``: ``"starttls"`` (required: a server that does not offer it is not used), ``"tls"``
      (implicit TLS, SMTPS) or ``"none"`` (local test servers only); ``tls_context`` verifies the server
      (default: the system's trust store);
    - ``username``/``password``: SMTP AUTH (after TLS); never shown by ``repr``;
    - ``mode``: ``"relay"`` - ``host`` is a submission/relay server, whose ``250`` only means it took
      the message; arrival is learnt from a "delivered" DSN - or ``"direct"`` - ``host`` is the
      recipient domain's own mail exchanger, so its ``250`` is arrival at the recipient's system and
      comes back as a DELIVERED receipt (CPL Art. 90; see the plugin's docs);
    - ``sent_log``: the durable record of sends (:class:`~delivery_sdk_email.SQLiteSentLog` or any
      :class:`~delivery_sdk_email.SentLog`): read before every send, so nothing is sent twice;
    - ``link_template`` (with ``{token}``) and ``link_secret``: put a link to the documents in the
      message; ``documents``: a :data:`DocumentSource` to attach them (digests checked). At least one;
    - ``request_dsn``: ask for success and failure DSNs (ENVID = dispatch id) when the server offers DSN;
    - ``callback_secret``: the HMAC secret of pushed bounces (see :meth:`verify_callback`);
    - ``rate``/``burst``: at most ``rate`` messages per second (``None``: no limit);
    - ``timeout``: seconds for each socket operation; ``clock``: stamps Date headers and receipts.
    """

    kind = ChannelKind.EMAIL

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        sent_log: SentLog,
        name: str = "email",
        domain: str | None = None,
        security: Security = "starttls",
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        mode: Mode = "relay",
        link_template: str | None = None,
        link_secret: bytes | str | None = None,
        documents: DocumentSource | None = None,
        max_attachment_bytes: int = 20_000_000,
        request_dsn: bool = True,
        callback_secret: bytes | str | None = None,
        callback_window: timedelta = timedelta(minutes=5),
        rate: float | None = None,
        burst: int = 1,
        timeout: float = 30.0,
        helo: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if security not in _DEFAULT_PORTS:
            raise ValueError(f"security must be 'starttls', 'tls' or 'none', not {security!r}")
        if mode not in ("relay", "direct"):
            raise ValueError(f"mode must be 'relay' or 'direct', not {mode!r}")
        if "@" not in sender:
            raise ValueError("sender must be an e-mail address (name@domain)")
        if link_template is None and documents is None:
            raise ValueError("an e-mail must carry the documents: give link_template (a link) or documents (attach)")
        if link_template is not None:
            fields = set(_TOKEN_FIELD.findall(link_template))
            if fields != {"token"}:
                raise ValueError("link_template must contain {token} and no other {field}")
            if not link_secret:
                raise ValueError("link_template needs link_secret (the key of the opaque token)")
        if callback_secret is not None:
            require_secret(callback_secret, "callback_secret")  # None: no pushes; empty: a mistake
        if (username is None) != (password is None):
            raise ValueError("give both username and password for SMTP AUTH, or neither")
        if timeout <= 0 or max_attachment_bytes < 0:
            raise ValueError("timeout must be positive and max_attachment_bytes not negative")
        self.name = name
        self.host = host
        self.port = port if port is not None else _DEFAULT_PORTS[security]
        self.sender = sender
        self.domain = domain or sender.rpartition("@")[2]
        self.security: Security = security
        self.mode: Mode = mode
        self.timeout = timeout
        self.request_dsn = request_dsn
        self.max_attachment_bytes = max_attachment_bytes
        self.link_template = link_template
        self.helo = helo or self.domain
        self.callback_window = callback_window
        self.clock: Clock = clock or SystemClock()
        self._tls_context = tls_context
        self._username = username
        self._password = password
        self._link_secret = link_secret
        self._documents = documents
        self._callback_secret = callback_secret
        self._log = sent_log
        self._limiter = RateLimiter(rate, burst=burst)
        self._inflight: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"EmailChannel({self.host!r}, {self.port}, name={self.name!r}, "
            f"security={self.security!r}, mode={self.mode!r})"
        )

    # -- the adapter contract ------------------------------------------------------------------------

    async def send(self, dispatch: Dispatch) -> SendResult:
        """Send the dispatch's e-mail unless the sent log shows the server may already have it."""
        record = self._log.get(dispatch.dispatch_id)
        if record is not None and record.state is not SentState.DEFERRED:
            return self._result(record)
        if dispatch.dispatch_id in self._inflight:
            raise TransientChannelError(f"{self.name}: dispatch {dispatch.dispatch_id} is being sent right now")
        self._inflight.add(dispatch.dispatch_id)
        try:
            message = await self.build_message(dispatch)
            data = message.as_bytes(policy=_POLICY)
            await self._limiter.acquire()
            record = await asyncio.to_thread(self._transmit, dispatch, data, str(message["Message-ID"]))
        finally:
            self._inflight.discard(dispatch.dispatch_id)
        return self._result(record)

    async def status(self, dispatch: Dispatch) -> StatusReport:
        """What the sent log says: SMTP itself cannot be asked about a message."""
        record = self._log.get(dispatch.dispatch_id)
        if record is None or record.state is SentState.DEFERRED:
            return StatusReport(found=False)
        return StatusReport(found=True, provider_ref=record.message_id, receipts=self._receipts(record))

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> Sequence[Receipt]:
        """A bounce (DSN) pushed as the raw message: FAILED or DELIVERED receipts (see :func:`parse_bounce`).

        With a ``callback_secret`` the push must carry a valid signature (:meth:`verify_callback`).
        """
        if self._callback_secret is not None:
            h = lower_headers(headers)
            try:
                verify_hmac_sha256(
                    self._callback_secret,
                    h.get("x-delivery-signature"),
                    h.get("x-delivery-timestamp", ""),
                    h.get("x-delivery-nonce", ""),
                    body,
                )
            except CallbackRejected:
                raise MalformedReceipt(f"{self.name} callback: the signature does not match") from None
        bounce = parse_bounce(body, domain=self.domain)
        return bounce_receipts(bounce, now=self.clock.now())

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """Check a pushed bounce's signature, then its timestamp; return its replay key.

        The forwarder (the process that reads the bounce mailbox) signs each push with the
        ``callback_secret``: ``X-Delivery-Timestamp`` (Unix seconds), ``X-Delivery-Nonce`` (unique per push)
        and ``X-Delivery-Signature`` = hex HMAC-SHA256(secret, timestamp + "\\n" + nonce + "\\n" + body).
        The replay key is ``nonce:<nonce>``.
        """
        if self._callback_secret is None:
            raise CallbackRejected("unsigned", f"channel {self.name!r} has no callback secret configured")
        h = lower_headers(headers)
        timestamp = h.get("x-delivery-timestamp")
        nonce = h.get("x-delivery-nonce", "").strip()
        if not nonce or len(nonce) > 128:
            raise CallbackRejected("forged", "missing or oversized nonce")
        # the signature first: nothing of the push (its timestamp included) is interpreted before it holds
        verify_hmac_sha256(self._callback_secret, h.get("x-delivery-signature"), timestamp or "", nonce, body)
        check_timestamp(timestamp, now, self.callback_window)
        return f"nonce:{nonce}"

    async def aclose(self) -> None:
        self._log.close()

    # -- the message ----------------------------------------------------------------------------------

    def link(self, dispatch_id: str) -> str | None:
        """The document link of a dispatch (``None`` without a ``link_template``)."""
        if self.link_template is None or self._link_secret is None:
            return None
        return self.link_template.replace("{token}", link_token(self._link_secret, dispatch_id))

    async def load_documents(self, dispatch: Dispatch) -> list[tuple[Document, bytes]]:
        """The documents' bytes from the :data:`DocumentSource`, each checked against its SHA-256 digest."""
        if self._documents is None:
            return []
        out: list[tuple[Document, bytes]] = []
        total = 0
        for document in dispatch.documents:
            content = await fetch_document(self._documents, document, what=self.name)
            total += len(content)
            if total > self.max_attachment_bytes:
                raise ChannelError(
                    f"{self.name}: the documents exceed {self.max_attachment_bytes} bytes; serve them by link instead"
                )
            out.append((document, content))
        return out

    async def build_message(self, dispatch: Dispatch) -> EmailMessage:
        """The e-mail of a dispatch (the same headers and text on every send of it)."""
        return self.compose(dispatch, await self.load_documents(dispatch))

    def compose(self, dispatch: Dispatch, attachments: Sequence[tuple[Document, bytes]]) -> EmailMessage:
        """Write the message. Override to change the wording; keep the Message-ID and the dispatch header.

        The text names the court, the case number and the documents with their digests, and carries
        the link; it holds no personal data beyond the recipient's address in ``To``.
        """
        case = dispatch.case
        message = EmailMessage(policy=_POLICY)
        message["From"] = Address(display_name=case.court, addr_spec=self.sender)
        message["To"] = dispatch.contact.value
        message["Subject"] = f"【{case.court}】{case.case_number} 送达文书"
        message["Date"] = email.utils.format_datetime(self.clock.now())
        message["Message-ID"] = message_id_for(dispatch.dispatch_id, self.domain)
        message[DISPATCH_HEADER] = dispatch.dispatch_id
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        lines = [f"{case.court}依法向您送达（{case.case_number}）案件的下列文书：", ""]
        for number, document in enumerate(dispatch.documents, start=1):
            lines.append(f"{number}. {document.title}（SHA-256：{document.sha256}）")
        lines.append("")
        link = self.link(dispatch.dispatch_id)
        if link is not None:
            lines.append(f"请通过以下链接查阅、下载文书：{link}")
        if attachments:
            lines.append("文书另附于本邮件，可核对上列 SHA-256 摘要。")
        lines += ["", "本邮件由法院送达系统自动发送，请勿直接回复。"]
        message.set_content("\n".join(lines) + "\n")
        for document, content in attachments:
            pdf = content.startswith(b"%PDF-")
            message.add_attachment(
                content,
                maintype="application",
                subtype="pdf" if pdf else "octet-stream",
                filename=f"{document.document_id}-{document.title}{'.pdf' if pdf else ''}",
            )
        return message

    # -- results --------------------------------------------------------------------------------------

    def _receipts(self, record: SentRecord) -> tuple[Receipt, ...]:
        if record.state is SentState.ACCEPTED and self.mode == "direct":
            # the recipient domain's own exchanger took it: arrival at the recipient's system (CPL Art. 90)
            return (
                Receipt(
                    dispatch_id=record.dispatch_id,
                    kind=ReceiptKind.DELIVERED,
                    at=record.at,
                    provider_event_id=f"smtp:{record.dispatch_id}:accepted",
                ),
            )
        if record.state is SentState.REFUSED:
            return (
                Receipt(
                    dispatch_id=record.dispatch_id,
                    kind=ReceiptKind.FAILED,
                    at=record.at,
                    provider_event_id=f"smtp:{record.dispatch_id}:refused",
                    reason=record.reason,
                ),
            )
        return ()

    def _result(self, record: SentRecord) -> SendResult:
        if record.state is SentState.REFUSED:
            return SendResult(accepted=False, reason=record.reason or f"{self.name}: refused")
        # ACCEPTED, or IN_DOUBT: the server may have it, so it counts as handed over and is never resent;
        # an in-doubt message carries no DELIVERED receipt (no proof of arrival): a DSN may still tell,
        # otherwise the engine's response window runs out and the next channel is tried.
        return SendResult(accepted=True, provider_ref=record.message_id, receipts=self._receipts(record))

    # -- SMTP (in a worker thread) --------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            context = self._tls_context or ssl.create_default_context()
            return smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=self.helo, timeout=self.timeout, context=context
            )
        return smtplib.SMTP(self.host, self.port, local_hostname=self.helo, timeout=self.timeout)

    def _transmit(self, dispatch: Dispatch, data: bytes, message_id: str) -> SentRecord:
        dispatch_id = dispatch.dispatch_id
        sent_body = False
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._connect()
            self._handshake(smtp)
            dsn = self.request_dsn and smtp.has_extn("dsn")
            mail_options = [f"ENVID={xtext(dispatch_id)}", "RET=HDRS"] if dsn else []
            code, text = smtp.mail(self.sender, mail_options)
            self._expect(code, text, "MAIL FROM", refusable=False)
            rcpt_options = (
                ["NOTIFY=SUCCESS,FAILURE,DELAY", f"ORCPT=rfc822;{xtext(dispatch.contact.value)}"] if dsn else []
            )
            code, text = smtp.rcpt(dispatch.contact.value, rcpt_options)
            self._expect(code, text, "RCPT TO", refusable=True)
            smtp.putcmd("data")
            code, text = smtp.getreply()
            if code != 354:
                self._expect(code, text, "DATA", refusable=True)
                raise TransientChannelError(f"{self.name}: unexpected SMTP reply {_reply(code, text)} to DATA")
            # From here on the server may end up with the message: record that first, durably.
            self._log.put(
                SentRecord(
                    dispatch_id=dispatch_id, state=SentState.IN_DOUBT, message_id=message_id, at=self.clock.now()
                )
            )
            sent_body = True
            body = re.sub(rb"(?m)^\.", b"..", data)
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body + b".\r\n")
            code, text = smtp.getreply()
            reply = _reply(code, text)
            if 200 <= code < 300:
                record = SentRecord(
                    dispatch_id=dispatch_id,
                    state=SentState.ACCEPTED,
                    message_id=message_id,
                    at=self.clock.now(),
                    reply=reply,
                )
                self._log.put(record)
                log.info("%s: %s accepted (%s) for %s", self.name, dispatch_id, reply, mask(dispatch.contact.value))
                return record
            if 400 <= code < 500:
                self._log.put(
                    SentRecord(
                        dispatch_id=dispatch_id,
                        state=SentState.DEFERRED,
                        message_id=message_id,
                        at=self.clock.now(),
                        reply=reply,
                    )
                )
                raise TransientChannelError(f"{self.name}: the server deferred the message ({reply})")
            raise _Refused(reply, "message")
        except _Refused as refused:
            reason = f"{self.name}: the recipient's server refused the {refused.stage} ({refused.reply})"
            record = SentRecord(
                dispatch_id=dispatch_id,
                state=SentState.REFUSED,
                message_id=message_id,
                at=self.clock.now(),
                reply=refused.reply,
                reason=reason,
            )
            self._log.put(record)
            log.info("%s: %s refused (%s) for %s", self.name, dispatch_id, refused.reply, mask(dispatch.contact.value))
            return record
        except TransientChannelError:
            raise
        except smtplib.SMTPResponseException as exc:  # STARTTLS or AUTH answered with an error code
            raise TransientChannelError(
                f"{self.name}: the SMTP server answered {_reply(exc.smtp_code, exc.smtp_error)} during the handshake"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:  # timeouts, refused/reset connections, TLS failures
            if sent_body:
                raise TransientChannelError(
                    f"{self.name}: no answer after the message was sent ({type(exc).__name__}); "
                    "in doubt, so it is not sent again"
                ) from exc
            raise TransientChannelError(f"{self.name}: SMTP {type(exc).__name__}") from exc
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()

    def _handshake(self, smtp: smtplib.SMTP) -> None:
        code, text = smtp.ehlo()
        self._expect(code, text, "EHLO", refusable=False)
        if self.security == "starttls":
            if not smtp.has_extn("starttls"):
                # never fall back to clear text: the server (or someone in between) does not offer TLS
                raise TransientChannelError(f"{self.name}: the SMTP server does not offer STARTTLS")
            smtp.starttls(context=self._tls_context or ssl.create_default_context())
            code, text = smtp.ehlo()
            self._expect(code, text, "EHLO", refusable=False)
        if self._username is not None and self._password is not None:
            smtp.login(self._username, self._password)

    def _expect(self, code: int, text: bytes, stage: str, *, refusable: bool) -> None:
        """2xx passes; 4xx (and 421 anywhere) is transient; 5xx to RCPT/DATA refuses the dispatch.

        A 5xx to EHLO or MAIL FROM is about our own configuration (sender, credentials), not this recipient:
        transient, so that the engine retries and, if it persists, asks a person instead of failing every
        recipient over to post.
        """
        if 200 <= code < 400:
            return
        reply = _reply(code, text)
        if 500 <= code < 600 and refusable:
            raise _Refused(reply, "recipient" if stage == "RCPT TO" else "message")
        raise TransientChannelError(f"{self.name}: SMTP {stage} answered {reply}")
