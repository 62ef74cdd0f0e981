"""The ASGI application: routes, evidence, headers, access log (see the package docstring)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote

import attrs
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import DeliveryError, IllegalTransition, ValidationError
from ..channels import Receipt, ReceiptKind
from ..client import AsyncDeliveryClient
from ..events import ConsentRecorded
from ..lifecycle import Task, TaskState
from ..model import ChannelKind, ConsentMethod, Contact, ContactKind, DispatchRecord, Document, mask
from ..printing.package import DocumentMissing, DocumentSource
from .config import IdentityMethod, PortalConfig
from .guard import Attempts, Session, Sessions, TokenIndex

__all__ = ["CodeSender", "Portal", "create_app"]

log = logging.getLogger("delivery_sdk.portal")
access_log = logging.getLogger("delivery_sdk.portal.access")

_HERE = Path(__file__).parent
_COOKIE = "ds_session"
_MAX_FORM = 4096
_CLOSED = frozenset({TaskState.CANCELLED})
_KIND_ZH = {
    ChannelKind.SMS: "手机短信",
    ChannelKind.WECHAT: "微信",
    ChannelKind.EMAIL: "电子邮箱",
    ChannelKind.ESERVICE: "电子送达平台",
}

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the link token is in the URL: never send it on
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


@runtime_checkable
class CodeSender(Protocol):
    """An SMS adapter that can text a one-time code (``delivery_sdk_sms.SmsChannel`` is one)."""

    name: str

    async def send_code(self, mobile: str, code: str, *, reference: str) -> None:
        """Text ``code`` to ``mobile``; ``reference`` (no personal data) identifies the message."""


class _Headers:
    """Pure ASGI middleware: the security headers on every answer, ``no-store`` on all but the stylesheet,
    and one structured access-log line per request (route template, status, time: no token, no address)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        static = scope["path"].endswith("/static/portal.css")
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                headers += _HEADERS
                headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store, max-age=0"))
                if not static:
                    headers.append((b"pragma", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("portal.route", "static" if static else "other")
            access_log.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                    separators=(",", ":"),
                )
            )


class Portal:
    """The document page of one court over one client (its store, its registered channels)."""

    def __init__(
        self,
        config: PortalConfig,
        documents: DocumentSource,
        client: AsyncDeliveryClient | None = None,
        *,
        store: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if client is None and store is None:
            raise ValidationError("the portal needs a client or a store")
        self.config = config
        self.documents = documents
        self._client = client
        self._store = store
        self._client_options = dict(client_options or {})
        self._index: TokenIndex | None = None
        self.sessions = Sessions(config.session_secret, config.session_ttl)
        self.attempts = Attempts(
            config.session_secret, max_failures=config.max_failures, lockout=config.lockout, code_ttl=config.code_ttl
        )
        self.counts: Counter[str] = Counter()  # refused links and sessions, by why; evidence recorded, by kind
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True, auto_reload=False
        )
        self.css = (_HERE / "static" / "portal.css").read_bytes()

    # -- plumbing --------------------------------------------------------------------------------------

    @property
    def client(self) -> AsyncDeliveryClient:
        """The client the page reads tasks from and records evidence through."""
        if self._client is None:
            raise RuntimeError("the portal's client is not open (run the app with its lifespan)")
        return self._client

    @property
    def index(self) -> TokenIndex:
        """The link-token index over the client's store."""
        if self._index is None:
            self._index = TokenIndex(self.client.store, self.config.link_keys)
        return self._index

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Open (and close) the page's own client when it was given a store rather than a client."""
        owned = self._client is None
        if owned:
            self._client = AsyncDeliveryClient(self._store, **self._client_options)
        try:
            yield
        finally:
            if owned and self._client is not None:
                await self._client.aclose()
                self._client = None
                self._index = None

    def now(self) -> datetime:
        """Now, on the client's clock (every time the page records)."""
        return self.client.clock.now()

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A page rendered from its template with the court's name and phone number."""
        base = request.scope.get("root_path", "")
        html = self.templates.get_template(template).render(
            base=base, court=self.config.court_name, phone=self.config.court_phone, **values
        )
        return HTMLResponse(html, status_code=status)

    def refused_link(self, request: Request, why: str) -> HTMLResponse:
        """The page for a link that does not open (counted by why)."""
        self.counts[f"link_{why}"] += 1
        status = {"expired": 410, "closed": 410}.get(why, 404)
        return self.page(request, "link.html", status=status, why=why)

    async def form(self, request: Request) -> dict[str, str]:
        """A small urlencoded form's fields (first value each); empty when too large or unreadable."""
        body = await request.body()
        if len(body) > _MAX_FORM:
            return {}
        try:
            fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return {}
        return {k: v[0] for k, v in fields.items() if v}

    def resolve(self, request: Request) -> tuple[str, Task, DispatchRecord] | Response:
        """The link's token -> its task and dispatch; or the page saying why the link does not open."""
        token = request.path_params["token"]
        if not TokenIndex.well_formed(token):
            return self.refused_link(request, "malformed")
        found = self.index.lookup(token)
        if found is None:
            return self.refused_link(request, "unknown")
        dispatch_id, task_id = found
        # the party reads its own task through its link: no staff member's read (docs/access.md)
        task = self.client.engine.load_task(task_id)
        record = task.dispatch(dispatch_id)
        if record is None:  # pragma: no cover - the index is built from the dispatches' own events
            return self.refused_link(request, "unknown")
        if task.state in _CLOSED:
            return self.refused_link(request, "closed")
        if self.now() > record.queued_at + self.config.link_ttl:
            return self.refused_link(request, "expired")
        return token, task, record

    def session(self, request: Request, record: DispatchRecord) -> Session | None:
        """The request's live session for the dispatch, or None (refusals counted by why)."""
        session, why = self.sessions.check(request.cookies.get(_COOKIE), record.dispatch_id, self.now())
        if session is None and why != "none":
            self.counts[f"session_{why}"] += 1
        return session

    def csrf_ok(self, request: Request, fields: Mapping[str, str], token: str, session: Session | None) -> bool:
        """Whether the form carries the page's form token."""
        expected = self.sessions.csrf(session.nonce if session else "", token)
        return fields.get("csrf", "") == expected

    def ingest(self, record: DispatchRecord, kind: ReceiptKind, event_id: str) -> None:
        """A receipt of the dispatch's own channel: the page is that channel's document link."""
        receipt = Receipt(dispatch_id=record.dispatch_id, kind=kind, at=self.now(), provider_event_id=event_id)
        result = self.client.engine.ingest(receipt, channel=record.channel)
        self.counts[f"{kind.value}_{result.outcome.value}"] += 1

    # -- the party -------------------------------------------------------------------------------------

    @staticmethod
    def mobile(task: Task, record: DispatchRecord) -> str | None:
        """The mobile number the identity check texts: the dispatch's, else the party's first."""
        if record.contact.kind is ContactKind.MOBILE:
            return record.contact.value
        for contact in task.request.party.contacts:
            if contact.kind is ContactKind.MOBILE:
                return contact.value
        return None

    def identity(self, task: Task, record: DispatchRecord) -> IdentityMethod | None:
        """The check this party can take: the configured one, else the other one it can, else none."""
        has_id = bool(task.request.party.id_number and len(task.request.party.id_number) >= self.config.id_digits)
        has_sms = self.code_sender() is not None and self.mobile(task, record) is not None
        order = [self.config.identity, *(m for m in IdentityMethod if m is not self.config.identity)]
        for method in order:
            if (method is IdentityMethod.ID_DIGITS and has_id) or (method is IdentityMethod.SMS_CODE and has_sms):
                return method
        return None

    def code_sender(self) -> CodeSender | None:
        """The registered SMS adapter that texts the codes, or None."""
        for adapter in self.client.host.channels.of_kind(ChannelKind.SMS):
            if isinstance(adapter, CodeSender) and self.config.sms_channel in (None, adapter.name):
                return adapter
        return None

    # -- pages -----------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """``GET /healthz``: liveness and the counters (no personal data)."""
        request.scope["portal.route"] = "healthz"
        return JSONResponse({"status": "ok", "counts": dict(sorted(self.counts.items()))})

    async def stylesheet(self, request: Request) -> Response:
        """``GET /static/portal.css``: the one stylesheet (no external assets)."""
        request.scope["portal.route"] = "static"
        return Response(self.css, media_type="text/css; charset=utf-8")

    async def open_link(self, request: Request) -> Response:
        """``GET /s/{token}``: the link opened; the identity check, or the documents in a live session."""
        request.scope["portal.route"] = "/s/{token}"
        resolved = self.resolve(request)
        if isinstance(resolved, Response):
            return resolved
        token, task, record = resolved
        self.counts["opened"] += 1
        if self.session(request, record) is not None:
            return RedirectResponse(f"{request.scope.get('root_path', '')}/s/{token}/docs", status_code=303)
        return self.verify_page(request, token, task, record)

    def verify_page(
        self,
        request: Request,
        token: str,
        task: Task,
        record: DispatchRecord,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """The identity check page for the party's method."""
        method = self.identity(task, record)
        now = self.now()
        locked = self.attempts.locked(record.dispatch_id, now)
        mobile = self.mobile(task, record)
        return self.page(
            request,
            "verify.html",
            status=status,
            token=token,
            case=task.request.case,
            method=method.value if method else None,
            digits=self.config.id_digits,
            masked_mobile=mask(mobile) if mobile else None,
            code_sent=self.attempts.has_code(record.dispatch_id, now),
            locked=locked is not None,
            error=error,
            csrf=self.sessions.csrf("", token),
        )

    async def send_code(self, request: Request) -> Response:
        """``POST /s/{token}/code``: text a one-time code (rate-limited)."""
        request.scope["portal.route"] = "/s/{token}/code"
        resolved = self.resolve(request)
        if isinstance(resolved, Response):
            return resolved
        token, task, record = resolved
        fields = await self.form(request)
        if not self.csrf_ok(request, fields, token, None):
            self.counts["csrf_refused"] += 1
            return self.verify_page(request, token, task, record, error="form", status=400)
        now = self.now()
        sender, mobile = self.code_sender(), self.mobile(task, record)
        if self.attempts.locked(record.dispatch_id, now) is not None:
            return self.verify_page(request, token, task, record, status=429)
        if sender is None or mobile is None:
            return self.verify_page(request, token, task, record, error="no_sms", status=409)
        if not self.attempts.may_send_code(record.dispatch_id, now, self.config.code_interval, self.config.max_codes):
            self.counts["code_throttled"] += 1
            return self.verify_page(request, token, task, record, error="too_soon", status=429)
        code = self.attempts.new_code(record.dispatch_id, now)
        reference = f"portal-code-{hashlib.sha256(f'{record.dispatch_id}|{now.isoformat()}'.encode()).hexdigest()[:24]}"
        try:
            await sender.send_code(mobile, code, reference=reference)
        except DeliveryError as exc:
            log.warning("portal: the one-time code for a dispatch could not be sent (%s)", type(exc).__name__)
            self.counts["code_failed"] += 1
            return self.verify_page(request, token, task, record, error="sms_failed", status=502)
        return self.verify_page(request, token, task, record)

    async def verify(self, request: Request) -> Response:
        """``POST /s/{token}/verify``: check the answer; on success record ``delivered`` and start a session."""
        request.scope["portal.route"] = "/s/{token}/verify"
        resolved = self.resolve(request)
        if isinstance(resolved, Response):
            return resolved
        token, task, record = resolved
        fields = await self.form(request)
        if not self.csrf_ok(request, fields, token, None):
            self.counts["csrf_refused"] += 1
            return self.verify_page(request, token, task, record, error="form", status=400)
        method = self.identity(task, record)
        now = self.now()
        if method is None:
            return self.verify_page(request, token, task, record, status=409)
        expected = None
        if method is IdentityMethod.ID_DIGITS:
            id_number = task.request.party.id_number or ""
            expected = id_number[-self.config.id_digits :]
        if not self.attempts.answer(record.dispatch_id, fields.get("answer", "")[:32], expected, now):
            locked = self.attempts.locked(record.dispatch_id, now) is not None
            return self.verify_page(
                request, token, task, record, error=None if locked else "wrong", status=429 if locked else 403
            )
        # identity verified: the link reached the party (a delivery report of the dispatch's own channel)
        self.ingest(record, ReceiptKind.DELIVERED, f"portal-verified-{record.dispatch_id}")
        _session, cookie = self.sessions.issue(record.dispatch_id, now)
        base = request.scope.get("root_path", "")
        response = RedirectResponse(f"{base}/s/{token}/docs", status_code=303)
        response.set_cookie(
            _COOKIE,
            cookie,
            max_age=int(self.config.session_ttl.total_seconds()),
            path=f"{base}/s/{token}",
            secure=self.config.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response

    def need_session(self, request: Request, token: str, record: DispatchRecord) -> Session | Response:
        """The live session, or a redirect to the identity check."""
        session = self.session(request, record)
        if session is None:
            base = request.scope.get("root_path", "")
            return RedirectResponse(f"{base}/s/{token}", status_code=303)
        return session

    def in_session(self, request: Request) -> tuple[str, Task, DispatchRecord, Session] | Response:
        """The link's dispatch and the live session bound to it, or the page that answers instead (a bad link,
        or the redirect to the identity check): every page behind the identity check starts here."""
        resolved = self.resolve(request)
        if isinstance(resolved, Response):
            return resolved
        token, task, record = resolved
        session = self.need_session(request, token, record)
        if isinstance(session, Response):
            return session
        return token, task, record, session

    async def documents_page(self, request: Request, *, notice: str | None = None, status: int = 200) -> Response:
        """``GET /s/{token}/docs``: the documents, the consequences, 签收 and the address confirmation."""
        request.scope.setdefault("portal.route", "/s/{token}/docs")
        opened = self.in_session(request)
        if isinstance(opened, Response):
            return opened
        token, task, record, session = opened
        return self.page(
            request,
            "documents.html",
            status=status,
            token=token,
            case=task.request.case,
            documents=task.request.documents,
            confirmed=record.accepted_at is not None,
            consent=task.consent is not None and task.objected_at is None,
            objected=task.objected_at is not None,
            contact=mask(record.contact.value),
            contact_kind=_KIND_ZH.get(record.kind, record.kind.label),
            notice=notice,
            csrf=self.sessions.csrf(session.nonce, token),
        )

    async def document(self, request: Request) -> Response:
        """``GET /s/{token}/doc/{id}``: the document's bytes when they have its digest; records ``read``."""
        request.scope["portal.route"] = "/s/{token}/doc/{document_id}"
        opened = self.in_session(request)
        if isinstance(opened, Response):
            return opened
        _token, task, record, _session = opened
        document = _find(task.request.documents, request.path_params["document_id"])
        if document is None:
            return self.page(request, "link.html", status=404, why="no_document")
        try:
            data = self.documents.fetch(document)
        except DocumentMissing:
            self.counts["document_missing"] += 1
            return self.page(request, "link.html", status=503, why="document_missing")
        if hashlib.sha256(data).hexdigest() != document.sha256:
            # not the document served: nothing is shown, nothing is recorded as read
            self.counts["document_digest_mismatch"] += 1
            log.error("portal: document %s does not match its SHA-256 digest: not served", document.document_id)
            return self.page(request, "link.html", status=409, why="document_mismatch")
        download = request.query_params.get("download") == "1"
        self.ingest(record, ReceiptKind.READ, f"portal-read-{record.dispatch_id}")
        self.counts["document_downloaded" if download else "document_viewed"] += 1
        filename = quote(f"{document.title}.pdf")
        disposition = "attachment" if download else "inline"
        return Response(
            data,
            media_type="application/pdf",
            headers={
                "content-disposition": f'{disposition}; filename="{document.document_id}.pdf"; '
                f"filename*=UTF-8''{filename}",
                "x-document-sha256": document.sha256,
            },
        )

    async def confirm(self, request: Request) -> Response:
        """``POST /s/{token}/confirm``: 签收, recorded as the party's acceptance (Rules Art. 29(4))."""
        request.scope["portal.route"] = "/s/{token}/confirm"
        opened = self.in_session(request)
        if isinstance(opened, Response):
            return opened
        token, task, record, session = opened
        if not self.csrf_ok(request, await self.form(request), token, session):
            self.counts["csrf_refused"] += 1
            return await self.documents_page(request, notice="form", status=400)
        if record.accepted_at is None:
            try:  # "I confirm receipt" (签收): a reply that the party received it (Rules Art. 29(4))
                await self.client.record_acceptance(task.task_id, record.dispatch_id, at=self.now())
                self.counts["confirmed"] += 1
            except (ValidationError, IllegalTransition):
                return await self.documents_page(request, notice="not_recorded", status=409)
        return await self.documents_page(request, notice="confirmed")

    async def consent(self, request: Request) -> Response:
        """``POST /s/{token}/consent``: the address confirmation (consent) or the objection."""
        request.scope["portal.route"] = "/s/{token}/consent"
        opened = self.in_session(request)
        if isinstance(opened, Response):
            return opened
        token, task, record, session = opened
        fields = await self.form(request)
        if not self.csrf_ok(request, fields, token, session):
            self.counts["csrf_refused"] += 1
            return await self.documents_page(request, notice="form", status=400)
        choice = fields.get("choice")
        if choice not in ("agree", "decline"):
            return await self.documents_page(request, notice="form", status=400)
        now = self.now()
        for other in self.party_tasks(task):
            try:
                if choice == "agree":
                    await self.confirm_contact(other, record.contact)
                    if other.consent is None or other.consent.method is not ConsentMethod.CONFIRMATION_FORM:
                        # the address confirmation (送达地址确认书): consent for this and the party's other tasks
                        self.client.engine.record(
                            other.task_id,
                            ConsentRecorded(
                                task_id=other.task_id, at=now, method=ConsentMethod.CONFIRMATION_FORM, given_at=now
                            ),
                        )
                elif other.objected_at is None:
                    await self.client.record_objection(
                        other.task_id,
                        at=now,
                        dispatch_id=record.dispatch_id if other.task_id == task.task_id else None,
                    )
            except (ValidationError, IllegalTransition):
                self.counts["consent_not_recorded"] += 1
        self.counts[f"consent_{choice}"] += 1
        return await self.documents_page(request, notice=f"consent_{choice}")

    async def confirm_contact(self, task: Task, contact: Contact) -> None:
        """The address the link went to, confirmed by the party (送达地址确认书) on ``task``: recorded as
        ``contact.updated`` (``confirmed``, source ``portal``) replacing the unconfirmed one, unless the task
        already has it confirmed."""
        current = [c for c in task.contacts_of(contact.kind) if c.value == contact.value]
        if any(c.confirmed for c in current):
            return
        await self.client.set_contact(
            task.task_id,
            attrs.evolve(contact, confirmed=True),
            replaces=current[0] if current else None,
            source="portal",
            actor="party",
            note="送达地址确认书",
        )

    def party_tasks(self, task: Task) -> list[Task]:
        """This task and the same party's other tasks in the same case that are still open."""
        party = task.request.party.party_id
        tasks = [task]
        for status in self.client.tasks_of_case(task.request.case):
            if status.task_id == task.task_id:
                continue
            other = self.client.engine.load_task(status.task_id)
            if other.request.party.party_id == party and other.state not in _CLOSED:
                tasks.append(other)
        return tasks

    async def logout(self, request: Request) -> Response:
        """``POST /s/{token}/logout``: end the session (its cookie is refused from then on)."""
        request.scope["portal.route"] = "/s/{token}/logout"
        resolved = self.resolve(request)
        if isinstance(resolved, Response):
            return resolved
        token, _task, record = resolved
        session = self.session(request, record)
        if session is not None and self.csrf_ok(request, await self.form(request), token, session):
            self.sessions.end(session)
        base = request.scope.get("root_path", "")
        response = RedirectResponse(f"{base}/s/{token}", status_code=303)
        response.delete_cookie(_COOKIE, path=f"{base}/s/{token}")
        return response

    # -- the app ---------------------------------------------------------------------------------------

    def app(self) -> ASGIApp:
        """The ASGI application (security headers and access log around the routes)."""

        async def docs(request: Request) -> Response:
            return await self.documents_page(request)

        routes = [
            Route("/healthz", self.health),
            Route("/static/portal.css", self.stylesheet),
            Route("/s/{token}", self.open_link),
            Route("/s/{token}/code", self.send_code, methods=["POST"]),
            Route("/s/{token}/verify", self.verify, methods=["POST"]),
            Route("/s/{token}/docs", docs),
            Route("/s/{token}/doc/{document_id}", self.document),
            Route("/s/{token}/confirm", self.confirm, methods=["POST"]),
            Route("/s/{token}/consent", self.consent, methods=["POST"]),
            Route("/s/{token}/logout", self.logout, methods=["POST"]),
        ]
        starlette = Starlette(routes=routes, lifespan=self.lifespan)
        return _Headers(starlette)


def _find(documents: Sequence[Document], document_id: str) -> Document | None:
    return next((d for d in documents if d.document_id == document_id), None)


def create_app(
    config: PortalConfig,
    documents: DocumentSource,
    client: AsyncDeliveryClient | None = None,
    *,
    store: str | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> ASGIApp:
    """The document page as an ASGI app: over ``client`` (the court's own, when embedded), or over a client
    the app opens on ``store`` for its lifespan (``client_options`` go to :class:`AsyncDeliveryClient`)."""
    return Portal(config, documents, client, store=store, client_options=client_options).app()
