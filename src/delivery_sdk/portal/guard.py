"""The page's guards: link tokens to dispatches, the identity check's attempts, signed sessions.

Nothing here keeps personal data: tokens, dispatch ids, counters, and the HMAC of a one-time code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections import Counter
from datetime import datetime, timedelta

import attrs

from ..callbacks import link_token
from ..events import DispatchQueued
from ..model import ChannelKind
from ..store import TaskStore

__all__ = ["Attempts", "Session", "Sessions", "TokenIndex"]

LINKED_KINDS = frozenset(
    {ChannelKind.SMS, ChannelKind.WECHAT, ChannelKind.EMAIL, ChannelKind.ESERVICE}
)  # the built-ins'
# (any kind that carries documents links to the portal: ``kind.carries_documents``)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")


class TokenIndex:
    """Link token -> dispatch id, for every electronic dispatch in the store (every link key).

    Built from the ``dispatch.queued`` events and brought up to date when a token is not found (a dispatch
    queued since); a token that is not 22 base64url characters is *malformed* (tampered or cut) and never
    looked up.
    """

    def __init__(self, store: TaskStore, keys: tuple[bytes, ...]) -> None:
        self._store = store
        self._keys = keys
        self._map: dict[str, tuple[str, str]] = {}  # token -> (dispatch id, task id)
        self._seq = 0
        self._lock = threading.Lock()

    @staticmethod
    def well_formed(token: str) -> bool:
        """Whether ``token`` has the shape of a link token (22 base64url characters)."""
        return bool(_TOKEN.fullmatch(token))

    def _refresh(self) -> None:
        while True:
            batch = self._store.events_after(self._seq, 2000, types=[DispatchQueued.TYPE])
            for stored in batch:
                event = stored.event
                if isinstance(event, DispatchQueued) and event.kind.carries_documents:
                    for key in self._keys:
                        self._map[link_token(key, event.dispatch_id)] = (event.dispatch_id, event.task_id)
                self._seq = max(self._seq, stored.seq)
            if len(batch) < 2000:
                return

    def lookup(self, token: str) -> tuple[str, str] | None:
        """The (dispatch id, task id) the token opens, or None."""
        if not self.well_formed(token):
            return None
        with self._lock:
            found = self._map.get(token)
            if found is None:
                self._refresh()
                found = self._map.get(token)
        return found


@attrs.define
class _Check:
    failures: int = 0
    locked_until: datetime | None = None
    code_digest: bytes | None = None
    code_expires: datetime | None = None
    codes_sent: list[datetime] = attrs.field(factory=list)


class Attempts:
    """The identity check's state per dispatch: texted codes, wrong answers in a row, lockouts."""

    def __init__(self, secret: bytes, *, max_failures: int, lockout: timedelta, code_ttl: timedelta) -> None:
        self._secret = secret
        self.max_failures = max_failures
        self.lockout = lockout
        self.code_ttl = code_ttl
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def _digest(self, dispatch_id: str, answer: str) -> bytes:
        return hmac.new(self._secret, f"portal-answer\n{dispatch_id}\n{answer}".encode(), hashlib.sha256).digest()

    def locked(self, dispatch_id: str, now: datetime) -> datetime | None:
        """Until when the dispatch's check is locked, or None."""
        check = self._checks.get(dispatch_id)
        if check is None or check.locked_until is None or check.locked_until <= now:
            return None
        return check.locked_until

    def may_send_code(self, dispatch_id: str, now: datetime, interval: timedelta, per_lockout: int) -> bool:
        """Whether another code may be texted now (interval and count per lockout window)."""
        with self._lock:
            check = self._checks.setdefault(dispatch_id, _Check())
            check.codes_sent = [t for t in check.codes_sent if t > now - self.lockout]
            if check.codes_sent and check.codes_sent[-1] > now - interval:
                return False
            return len(check.codes_sent) < per_lockout

    def new_code(self, dispatch_id: str, now: datetime) -> str:
        """A fresh 6-digit code for the dispatch (the previous one no longer counts)."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        with self._lock:
            check = self._checks.setdefault(dispatch_id, _Check())
            check.code_digest = self._digest(dispatch_id, code)
            check.code_expires = now + self.code_ttl
            check.codes_sent.append(now)
        self.counts["codes_sent"] += 1
        return code

    def has_code(self, dispatch_id: str, now: datetime) -> bool:
        """Whether a texted code is waiting for its answer."""
        check = self._checks.get(dispatch_id)
        return bool(check and check.code_digest and check.code_expires and check.code_expires > now)

    def answer(self, dispatch_id: str, given: str, expected: str | None, now: datetime) -> bool:
        """Check an answer: the texted code (``expected=None``) or the ID digits ``expected``.

        A right answer clears the failures (and uses the code up); a wrong one counts, and the
        ``max_failures``-th in a row locks the check for ``lockout``. A locked check answers False.
        """
        given = given.strip()
        with self._lock:
            check = self._checks.setdefault(dispatch_id, _Check())
            if check.locked_until is not None and check.locked_until > now:
                self.counts["locked_answers"] += 1
                return False
            if expected is None:
                right = (
                    check.code_digest is not None
                    and check.code_expires is not None
                    and check.code_expires > now
                    and hmac.compare_digest(check.code_digest, self._digest(dispatch_id, given))
                )
            else:
                right = bool(given) and hmac.compare_digest(
                    self._digest(dispatch_id, expected.upper()), self._digest(dispatch_id, given.upper())
                )
            if right:
                check.failures = 0
                check.locked_until = None
                check.code_digest = None
                self.counts["verified"] += 1
                return True
            check.failures += 1
            self.counts["wrong_answers"] += 1
            if check.failures >= self.max_failures:
                check.failures = 0
                check.locked_until = now + self.lockout
                check.code_digest = None
                self.counts["lockouts"] += 1
            return False


@attrs.frozen
class Session:
    """A verified session: the dispatch it opens, its nonce (its identity on the server) and its end."""

    dispatch_id: str
    nonce: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signed, short-lived sessions bound to one dispatch; the cookie holds the dispatch id, the expiry
    and a random nonce (no personal data), signed with HMAC-SHA256. The server keeps the live nonces: a
    session ended (logout) or from before a restart is refused even while its signature and time hold."""

    def __init__(self, secret: bytes, ttl: timedelta) -> None:
        self._key = hmac.new(secret, b"delivery-sdk portal session", hashlib.sha256).digest()
        self.ttl = ttl
        self._live: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, dispatch_id: str, now: datetime) -> tuple[Session, str]:
        """A new session for the dispatch and its signed cookie value."""
        session = Session(dispatch_id, secrets.token_urlsafe(16), now + self.ttl)
        payload = _b64(
            json.dumps({"d": dispatch_id, "n": session.nonce, "e": int(session.expires.timestamp())}).encode()
        )
        with self._lock:
            self._live = {n: s for n, s in self._live.items() if s.expires > now}
            self._live[session.nonce] = session
        return session, f"{payload}.{self._sign(payload)}"

    def check(self, cookie: str | None, dispatch_id: str, now: datetime) -> tuple[Session | None, str]:
        """The live session for ``dispatch_id`` in ``cookie``, or None with why not (for the counters)."""
        if not cookie or len(cookie) > 512 or cookie.count(".") != 1:
            return None, "none" if not cookie else "malformed"
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None, "forged"
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None, "malformed"
        if not isinstance(data, dict) or data.get("d") != dispatch_id:
            return None, "other_dispatch"
        live = self._live.get(str(data.get("n")))
        if live is None or live.dispatch_id != dispatch_id:
            return None, "ended"
        if live.expires <= now:
            return None, "expired"
        return live, "ok"

    def end(self, session: Session) -> None:
        """End a session: its cookie is refused from now on."""
        with self._lock:
            self._live.pop(session.nonce, None)

    def csrf(self, session_nonce: str, token: str) -> str:
        """The form token of a page: bound to the link and (once verified) the session."""
        return self._sign(f"csrf\n{token}\n{session_nonce}")
