"""A local SMTP server for tests: aiosmtpd on 127.0.0.1, an ephemeral port, scriptable per recipient.

::

    with SmtpEmulator() as mx:                       # plain SMTP; tls=..., require_starttls=True, auth=(user, pw)
        mx.script("zs@example.com", "tempfail", "accept")
        channel = EmailChannel(mx.host, mx.port, security="none", ...)
        ...
        assert mx.seen("T000001.1") == 1              # messages received for that dispatch id
        dsn = mx.make_dsn(mx.messages[0])             # the bounce a real MTA would send back

Behaviours (consumed one per transaction for the recipient, then ``default``):

- ``accept``: ``250`` to the message;
- ``reject``: ``550 5.1.1`` to ``RCPT TO`` (no such mailbox);
- ``tempfail``: ``451 4.3.0`` to ``RCPT TO`` (nothing received);
- ``reject_data``: ``554 5.6.0`` to the message (received, refused);
- ``tempfail_data``: ``451 4.3.0`` to the message (received, not kept);
- ``hang``: the message is received, then no answer for ``hang_seconds`` (the client times out);
- ``bounce``: ``250``, then a "failed" DSN is queued in :attr:`SmtpEmulator.bounces`.

``transient_rate`` (with ``seed``) makes that share of transactions answer ``451`` to ``RCPT TO``, for
soak and end-to-end tests. The server advertises DSN (RFC 3461) and records ENVID/NOTIFY/ORCPT.

As a local service (``delivery-sdk sandbox``, ``python -m delivery_sdk_email.emulator --port 18001 --state DIR
--callback-url http://127.0.0.1:8080/callbacks``): a fixed ``port``; with ``bounce_prefix`` every recipient
whose address starts with it bounces; with ``success_reports`` every other message that asks for success
reports (``NOTIFY=SUCCESS``) gets an ``Action: delivered`` DSN; with ``callback_url`` each DSN is pushed
there, signed with ``callback_secret`` (:func:`sign_push`); :meth:`SmtpEmulator.received` lists the messages
taken (kept in ``state_dir/received.jsonl`` across restarts).
:func:`self_signed_tls` makes a certificate for 127.0.0.1 (``cryptography``) for the TLS variants.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as _dt
import email
import email.policy
import email.utils
import hashlib
import ipaddress
import json
import random
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from delivery_sdk.plugin_kit import hmac_sha256_hex
from delivery_sdk.testing.emulator import join_callback, mask, post_callback, serve_sandbox_main

from ._dsn import DISPATCH_HEADER

__all__ = ["BEHAVIOURS", "Received", "SmtpEmulator", "TlsMaterial", "main", "sandbox", "self_signed_tls", "sign_push"]

BEHAVIOURS = frozenset({"accept", "reject", "tempfail", "reject_data", "tempfail_data", "hang", "bounce"})
_KEPT = frozenset({"accept", "hang", "bounce"})
_DSN_MAIL = ("ENVID", "RET")
_DSN_RCPT = ("NOTIFY", "ORCPT")


@attrs.frozen(kw_only=True)
class TlsMaterial:
    """A self-signed certificate for 127.0.0.1/localhost and the two contexts that use it."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context with the emulator's self-signed certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate (hostname checked: 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert_path))


def self_signed_tls(directory: str | Path | None = None) -> TlsMaterial:
    """Generate a key and a self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="smtp-emulator-"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "delivery-sdk test SMTP")])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(hours=1))
        .not_valid_after(now + _dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TlsMaterial(cert_path=cert_path, key_path=key_path)


def sign_push(secret: bytes | str, body: bytes, *, timestamp: int, nonce: str) -> dict[str, str]:
    """The headers of a signed push (the scheme :meth:`EmailChannel.verify_callback` checks)."""
    return {
        "X-Delivery-Timestamp": str(timestamp),
        "X-Delivery-Nonce": nonce,
        "X-Delivery-Signature": hmac_sha256_hex(secret, str(timestamp), nonce, body),
    }


@attrs.frozen(kw_only=True)
class Received:
    """One message whose data the server received (whatever it answered)."""

    mail_from: str
    rcpt_to: str
    data: bytes
    behaviour: str
    envid: str | None
    notify: str | None
    tls: bool

    @property
    def message(self) -> email.message.EmailMessage:
        """The message as parsed from the data the server received."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    @property
    def dispatch_id(self) -> str | None:
        """The dispatch id the adapter put in the message's header, if any."""
        value = self.message.get(DISPATCH_HEADER)
        return str(value) if value is not None else None

    @property
    def message_id(self) -> str | None:
        """The message's ``Message-ID``, if any."""
        value = self.message.get("Message-ID")
        return str(value) if value is not None else None


def _transport_ssl(server: SMTP) -> bool:
    transport = getattr(server, "transport", None)
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _Session(Session):
    """aiosmtpd's session without the deprecated ``login_data`` warning aiosmtpd itself triggers on AUTH
    (under ``-W error`` that warning would break every login)."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _DsnSMTP(SMTP):
    """aiosmtpd's SMTP, taking the DSN parameters (RFC 3461) it would otherwise refuse with 555."""

    dsn_params: dict[str, str]

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        address, params = super()._getaddr(arg)
        if not hasattr(self, "dsn_params"):
            self.dsn_params = {}
        if params:
            kept = []
            for param in params.split():
                key, _, value = param.partition("=")
                if key.upper() in _DSN_MAIL + _DSN_RCPT:
                    self.dsn_params[key.upper()] = value  # kept in its original case (ENVID is case-sensitive)
                else:
                    kept.append(param)
            params = " ".join(kept)
        return address, params


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _DsnSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]  # bound to port 0: learn the real one
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpEmulator:
    """The local SMTP server (see the module docstring). Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        *,
        tls: TlsMaterial | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        auth: tuple[str, str] | None = None,
        dsn: bool = True,
        hang_seconds: float = 3.0,
        transient_rate: float = 0.0,
        seed: int = 0,
        domain: str = "mx.example.test",
        default: str = "accept",
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
        callback_url: str | None = None,
        callback_secret: str = "emulator-email-callback-secret",
        bounce_prefix: str | None = None,
        success_reports: bool = False,
    ) -> None:
        if default not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {default!r}; one of {sorted(BEHAVIOURS)}")
        if (implicit_tls or require_starttls) and tls is None:
            raise ValueError("implicit_tls and require_starttls need tls=self_signed_tls()")
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.dsn = dsn
        self.hang_seconds = hang_seconds
        self.transient_rate = transient_rate
        self.domain = domain
        self.default = default
        self.name = "email-emulator"
        self.host = host
        self.port = port
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.callback_url = callback_url
        self.callback_secret = callback_secret
        self.bounce_prefix = None if bounce_prefix is None else bounce_prefix.lower()
        # as a relay that honours NOTIFY=SUCCESS: an "Action: delivered" DSN for every message it keeps
        self.success_reports = success_reports
        self.pushes: list[int] = []  # HTTP status of each bounce pushed to callback_url
        self._received: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self._pushers: list[threading.Thread] = []
        self.messages: list[Received] = []  # every message whose data arrived, in order
        self.bounces: list[bytes] = []  # DSNs produced by the "bounce" behaviour
        self.transactions = 0  # RCPT TO commands seen
        self.logins: list[str] = []
        self._scripts: dict[str, list[str]] = {}
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        kwargs: dict[str, Any] = {"server_hostname": domain}
        if tls is not None and not implicit_tls:
            kwargs["tls_context"] = tls.server_context()
            kwargs["require_starttls"] = require_starttls
        if auth is not None:
            kwargs["authenticator"] = self._authenticator(auth)
            kwargs["auth_require_tls"] = tls is not None
        ssl_context = tls.server_context() if tls is not None and implicit_tls else None
        self._controller = _Controller(self, hostname=self.host, port=port, ssl_context=ssl_context, **kwargs)

    # -- control --------------------------------------------------------------------------------------

    def start(self) -> SmtpEmulator:
        """Start serving SMTP (on a free port unless one was set); returns the emulator."""
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            log = self.state_dir / "received.jsonl"
            if log.exists() and not self._received:
                for line in log.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        self._received.append(json.loads(line))
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()
        for thread in list(self._pushers):
            thread.join(5)

    @property
    def url(self) -> str:
        """``smtp://host:port``, where the emulator listens."""
        return f"smtp://{self.host}:{self.port}"

    def received(self) -> list[dict[str, Any]]:
        """The messages whose data arrived (the last 1000, oldest first): what ``delivery-sdk sandbox`` lists."""
        with self._lock:
            return list(self._received)

    def sandbox_env(self) -> dict[str, str]:
        """The ``DELIVERY_SDK_EMAIL_*`` variables that point the e-mail plugin at this server."""
        return {
            "DELIVERY_SDK_EMAIL_HOST": self.host,
            "DELIVERY_SDK_EMAIL_PORT": str(self.port),
            "DELIVERY_SDK_EMAIL_SECURITY": "none",
            "DELIVERY_SDK_EMAIL_SENDER": "court@sandbox.example.test",
            "DELIVERY_SDK_EMAIL_LINK_TEMPLATE": "http://127.0.0.1/e/{token}",
            "DELIVERY_SDK_EMAIL_LINK_SECRET": "sandbox-link-secret",
            "DELIVERY_SDK_EMAIL_CALLBACK_SECRET": self.callback_secret,
        }

    def _note(self, received: Received, status: str) -> None:
        with self._lock:
            entry = {
                "seq": (self._received[-1]["seq"] + 1) if self._received else 1,
                "at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "method": "SMTP",
                "to": mask(received.rcpt_to),
                "dispatch_id": received.dispatch_id,
                "behaviour": received.behaviour,
                "status": status,
                "bytes": len(received.data),
            }
            self._received.append(entry)
            if self.state_dir is not None:
                with open(self.state_dir / "received.jsonl", "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _push_bounce(self, dsn: bytes) -> None:
        assert self.callback_url is not None
        headers = sign_push(self.callback_secret, dsn, timestamp=int(time.time()), nonce=uuid.uuid4().hex)
        status = post_callback(self.callback_url, dsn, {**headers, "Content-Type": "message/rfc822"})
        with self._lock:
            self.pushes.append(status)

    def __enter__(self) -> SmtpEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def script(self, recipient: str, *behaviours: str) -> None:
        """Answer the next transactions for ``recipient`` with these behaviours, in order."""
        for behaviour in behaviours:
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {behaviour!r}; one of {sorted(BEHAVIOURS)}")
        with self._lock:
            self._scripts.setdefault(recipient.lower(), []).extend(behaviours)

    def kept(self) -> list[Received]:
        """The messages the server kept (answered 250, or took and never answered): not 4xx/5xx ones."""
        with self._lock:
            return [m for m in self.messages if m.behaviour in _KEPT]

    def seen(self, dispatch_id: str) -> int:
        """How many copies of ``dispatch_id``'s message the server kept (never more than 1, we hope)."""
        return sum(1 for m in self.kept() if m.dispatch_id == dispatch_id)

    def dispatch_ids(self) -> list[str]:
        """The dispatch ids of the kept messages, in order (a repeat is a duplicate delivery)."""
        return [m.dispatch_id for m in self.kept() if m.dispatch_id is not None]

    # -- DSNs -----------------------------------------------------------------------------------------

    def make_dsn(
        self,
        received: Received,
        *,
        action: str = "failed",
        status: str = "5.1.1",
        when: _dt.datetime | None = None,
        include_envid: bool = True,
        include_headers: bool = True,
    ) -> bytes:
        """The RFC 3464 report a real MTA would send back to the envelope sender about ``received``."""
        moment = email.utils.format_datetime(when or _dt.datetime.now(_dt.UTC))
        boundary = f"dsn-{uuid.uuid4().hex}"
        token = hashlib.sha256(
            received.data + action.encode("utf-8", "surrogatepass") + status.encode("utf-8", "surrogatepass")
        ).hexdigest()[:16]
        lines = [
            f"From: Mail Delivery System <MAILER-DAEMON@{self.domain}>",
            f"To: {received.mail_from}",
            "Subject: "
            + ("Undelivered Mail Returned to Sender" if action == "failed" else f"Delivery Status ({action})"),
            f"Date: {moment}",
            f"Message-ID: <{token}.dsn@{self.domain}>",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain; charset=us-ascii",
            "",
            f"This is the mail system at {self.domain}. Your message: {action} ({status}).",
            "",
            f"--{boundary}",
            "Content-Type: message/delivery-status",
            "",
            f"Reporting-MTA: dns; {self.domain}",
        ]
        if include_envid and received.envid:
            lines.append(f"Original-Envelope-Id: {received.envid}")
        lines += [
            f"Arrival-Date: {moment}",
            "",
            f"Final-Recipient: rfc822; {received.rcpt_to}",
            f"Original-Recipient: rfc822; {received.rcpt_to}",
            f"Action: {action}",
            f"Status: {status}",
        ]
        if action == "failed":
            lines.append(f"Diagnostic-Code: smtp; 550 {status} mailbox unavailable")
        lines += [f"Last-Attempt-Date: {moment}", ""]
        if include_headers:
            headers = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
            lines += [f"--{boundary}", "Content-Type: text/rfc822-headers", "", *headers.split("\r\n"), ""]
        lines.append(f"--{boundary}--")
        return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")

    # -- aiosmtpd handler hooks -----------------------------------------------------------------------

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
            if isinstance(data, LoginPassword):
                login, password = data.login.decode(), data.password.decode()
                if (login, password) == credentials:
                    with self._lock:
                        self.logins.append(login)
                    return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        return authenticate

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """Answer EHLO, announcing DSN when the emulator supports it."""
        session.host_name = hostname
        if self.dsn:
            responses.insert(len(responses) - 1, "250-DSN")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        """Answer MAIL FROM (keeping the DSN parameters)."""
        if isinstance(server, _DsnSMTP):
            params = getattr(server, "dsn_params", {})
            server.dsn_params = {k: v for k, v in params.items() if k in _DSN_MAIL}
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Answer RCPT TO with the recipient's scripted behaviour (accept, reject, tempfail...)."""
        with self._lock:
            self.transactions += 1
            queue = self._scripts.get(address.lower())
            behaviour = queue.pop(0) if queue else self.default
            if not queue and self.bounce_prefix and address.lower().startswith(self.bounce_prefix):
                behaviour = "bounce"
            if behaviour == "accept" and self.transient_rate and self._random.random() < self.transient_rate:
                behaviour = "tempfail"
        if behaviour == "reject":
            return "550 5.1.1 Recipient address rejected: no such mailbox"
        if behaviour == "tempfail":
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.__dict__["behaviour"] = behaviour
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Answer the end of data as scripted, keeping the message."""
        behaviour = str(envelope.__dict__.get("behaviour", "accept"))
        params = getattr(server, "dsn_params", {})
        raw = envelope.original_content or b""
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_to=str(envelope.rcpt_tos[0]),
            data=data,
            behaviour=behaviour,
            envid=_unxtext(params["ENVID"]) if "ENVID" in params else None,
            notify=params.get("NOTIFY"),
            tls=session.ssl is not None or _transport_ssl(server),
        )
        with self._lock:
            self.messages.append(received)
        self._note(received, {"reject_data": "554", "tempfail_data": "451"}.get(behaviour, "250"))
        if behaviour == "hang":
            await asyncio.sleep(self.hang_seconds)
            return "250 2.0.0 OK (too late)"
        if behaviour == "reject_data":
            return "554 5.6.0 Message content refused"
        if behaviour == "tempfail_data":
            return "451 4.3.0 Message not accepted now, try again later"
        dsn = None
        if behaviour == "bounce":
            dsn = self.make_dsn(received)
        elif behaviour == "accept" and self.success_reports and "SUCCESS" in (received.notify or "").upper():
            dsn = self.make_dsn(received, action="delivered", status="2.0.0")
        if dsn is not None:
            if behaviour == "bounce":
                with self._lock:
                    self.bounces.append(dsn)
            if self.callback_url:
                pusher = threading.Thread(target=self._push_bounce, args=(dsn,), daemon=True)
                self._pushers.append(pusher)
                pusher.start()
        return f"250 2.0.0 OK queued as {hashlib.sha256(data).hexdigest()[:10]}"


def _unxtext(value: str) -> str:
    out = bytearray()
    i = 0
    raw = value.encode("ascii", "replace")
    while i < len(raw):
        if raw[i : i + 1] == b"+" and i + 2 < len(raw) + 1:
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def sandbox(
    *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path | None = None, callback_url: str | None = None
) -> SmtpEmulator:
    """The server as ``delivery-sdk sandbox`` runs it (the ``delivery_sdk.emulators`` entry point): plain SMTP,
    every recipient whose address starts with ``bounce`` bounces, every other message asking for success
    reports (``NOTIFY=SUCCESS``) is reported delivered, as a relay that honours DSNs does; the DSN pushed to
    ``{callback_url}/email``."""
    return SmtpEmulator(
        host=host,
        port=port,
        state_dir=state_dir,
        callback_url=join_callback(callback_url, "email"),
        bounce_prefix="bounce",
        success_reports=True,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m delivery_sdk_email.emulator [--port N] [--state DIR] [--callback-url URL]``."""
    serve_sandbox_main(sandbox, argv, prog="python -m delivery_sdk_email.emulator")


if __name__ == "__main__":
    main()
