"""The court's configuration of its document page (:class:`PortalConfig`)."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from datetime import timedelta

import attrs

from .._exceptions import ValidationError

__all__ = ["ENV", "IdentityMethod", "PortalConfig"]


class IdentityMethod(enum.Enum):
    """How the page checks that the person holding the link is the party (per court)."""

    SMS_CODE = "sms_code"  # a one-time code texted to the task's mobile number through the SMS adapter
    ID_DIGITS = "id_digits"  # the last digits of the party's ID number (where the request carries it)


ENV = {
    "court_name": "DELIVERY_SDK_PORTAL_COURT_NAME",
    "court_phone": "DELIVERY_SDK_PORTAL_COURT_PHONE",
    "link_keys": "DELIVERY_SDK_PORTAL_LINK_KEY",  # comma-separated: every key a channel's links are made with
    "session_secret": "DELIVERY_SDK_PORTAL_SESSION_SECRET",
    "identity": "DELIVERY_SDK_PORTAL_IDENTITY",
    "sms_channel": "DELIVERY_SDK_PORTAL_SMS_CHANNEL",
    "documents": "DELIVERY_SDK_PORTAL_DOCUMENTS",  # the folder of a FolderDocumentSource
    "secure_cookies": "DELIVERY_SDK_PORTAL_SECURE_COOKIES",
}


def _keys(value: object) -> tuple[bytes, ...]:
    if isinstance(value, str | bytes):
        value = (value,)
    if not isinstance(value, tuple | list):
        raise ValidationError("link_keys must be a sequence of keys")
    keys = tuple(k.encode() if isinstance(k, str) else k for k in value)
    if not keys or not all(isinstance(k, bytes) and k for k in keys):
        raise ValidationError("link_keys needs at least one non-empty key (the channels' link keys)")
    return keys


def _secret(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


@attrs.frozen(kw_only=True)
class PortalConfig:
    """One court's document page.

    - ``court_name``, ``court_phone``: shown on every page; the phone number is what a recipient whose link
      does not work, or who is locked out, is told to call;
    - ``link_keys``: the keys the channels make their link tokens with (:func:`delivery_sdk.callbacks.link_token`;
      each channel's ``link_key``): a token made with any of them opens its dispatch;
    - ``session_secret``: signs the session cookie (at least 32 bytes; keep it out of the code);
    - ``identity``: :class:`IdentityMethod`; ``id_digits`` how many last digits of the ID number are asked;
      ``sms_channel`` names the registered SMS adapter that texts the codes (None: the first SMS adapter that
      can, i.e. has ``send_code``);
    - ``link_ttl``: a link opens for this long after its dispatch was queued, then it has expired;
    - ``session_ttl``: a verified session lasts this long; ``code_ttl``: a texted code this long;
      ``code_interval``: the least time between two codes for one dispatch, ``max_codes`` per ``lockout``;
    - ``max_failures`` wrong answers in a row lock the dispatch's identity check for ``lockout``;
    - ``secure_cookies``: the cookie's ``Secure`` flag (the court's reverse proxy terminates TLS; only a test
      on plain ``http://127.0.0.1`` turns it off).
    """

    court_name: str
    court_phone: str
    link_keys: tuple[bytes, ...] = attrs.field(converter=_keys)
    session_secret: bytes = attrs.field(converter=_secret)
    identity: IdentityMethod = IdentityMethod.SMS_CODE
    id_digits: int = 4
    sms_channel: str | None = None
    link_ttl: timedelta = timedelta(days=30)
    session_ttl: timedelta = timedelta(minutes=15)
    code_ttl: timedelta = timedelta(minutes=5)
    code_interval: timedelta = timedelta(seconds=60)
    max_codes: int = 5
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=30)
    secure_cookies: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.court_name.strip() or not self.court_phone.strip():
            raise ValidationError("the portal needs the court's name and phone number")
        if not isinstance(self.session_secret, bytes) or len(self.session_secret) < 32:
            raise ValidationError("session_secret must be at least 32 bytes")
        if not isinstance(self.identity, IdentityMethod):
            raise ValidationError(f"identity must be one of {[m.value for m in IdentityMethod]}")
        if not 4 <= self.id_digits <= 8:
            raise ValidationError("id_digits must be 4 to 8")
        if self.max_failures < 1 or self.max_codes < 1:
            raise ValidationError("max_failures and max_codes must be at least 1")
        for name in ("link_ttl", "session_ttl", "code_ttl", "lockout"):
            if getattr(self, name) <= timedelta(0):
                raise ValidationError(f"{name} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PortalConfig:
        """The configuration from ``DELIVERY_SDK_PORTAL_*`` variables (see :data:`ENV`)."""
        env = os.environ if environ is None else environ
        missing = [
            v
            for k, v in ENV.items()
            if k in ("court_name", "court_phone", "link_keys", "session_secret") and not env.get(v)
        ]
        if missing:
            raise ValidationError(f"the portal needs {', '.join(missing)}")
        identity = env.get(ENV["identity"], IdentityMethod.SMS_CODE.value)
        try:
            method = IdentityMethod(identity)
        except ValueError:
            raise ValidationError(f"{ENV['identity']} must be one of {[m.value for m in IdentityMethod]}") from None
        return cls(
            court_name=env[ENV["court_name"]],
            court_phone=env[ENV["court_phone"]],
            link_keys=tuple(k.strip() for k in env[ENV["link_keys"]].split(",") if k.strip()),
            session_secret=env[ENV["session_secret"]],
            identity=method,
            sms_channel=env.get(ENV["sms_channel"]) or None,
            secure_cookies=env.get(ENV["secure_cookies"], "1").lower() not in ("0", "false", "no"),
        )
