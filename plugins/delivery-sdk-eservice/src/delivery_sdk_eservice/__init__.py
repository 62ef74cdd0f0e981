"""A court e-service platform channel plugin for delivery-sdk (人民法院送达平台 shape).

:class:`EServiceChannel` pushes a dispatch's documents, each with its SHA-256 digest, to the recipient's
account on the platform (JSON over HTTPS, every request signed with HMAC-SHA256 over the app key's
secret, a timestamp and a nonce; the dispatch id is the service id and the idempotency key). The platform
reports "arrived" (the documents reached the recipient's account: DELIVERED, the legal service moment
under CPL Art. 90 and SPC Online Litigation Rules Art. 31), "read" (READ) and "failed" (FAILED) as signed
callbacks (:meth:`EServiceChannel.verify_callback`, :meth:`EServiceChannel.parse_callback`) and through the
status query the engine uses to poll and, after a crash, to reconcile.

The entry point (``eservice = "delivery_sdk_eservice:plugin"``) registers an :class:`EServiceChannel`
configured from ``DELIVERY_SDK_ESERVICE_*`` environment variables, and nothing while
``DELIVERY_SDK_ESERVICE_URL`` is unset. :mod:`delivery_sdk_eservice.emulator` is a local platform for tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from delivery_sdk import ChannelRegistry, hookimpl

from ._channel import EVENT_KINDS, SERVICES_PATH, DocumentSource, EServiceChannel, sign_callback, sign_request

__all__ = [
    "ENV_PREFIX",
    "EVENT_KINDS",
    "SERVICES_PATH",
    "DocumentSource",
    "EServiceChannel",
    "EnvEServicePlugin",
    "channel_from_env",
    "plugin",
    "sign_callback",
    "sign_request",
]

__version__ = "0.1.0"

log = logging.getLogger("delivery_sdk_eservice")

ENV_PREFIX = "DELIVERY_SDK_ESERVICE_"


def channel_from_env(environ: Mapping[str, str] | None = None) -> EServiceChannel | None:
    """The channel the ``DELIVERY_SDK_ESERVICE_*`` variables describe, or ``None`` when ``..._URL`` is unset.

    ``URL`` (enables), ``APP_KEY`` and ``APP_SECRET`` (required), ``CALLBACK_URL``, ``NAME``
    (``eservice``), ``TIMEOUT`` (seconds, 10), ``RATE`` (requests per second). Raises ``ValueError`` for a
    configuration that cannot work.
    """
    env = os.environ if environ is None else environ

    def get(key: str) -> str | None:
        value = env.get(ENV_PREFIX + key, "").strip()
        return value or None

    url = get("URL")
    if url is None:
        return None
    app_key, app_secret = get("APP_KEY"), get("APP_SECRET")
    if app_key is None or app_secret is None:
        raise ValueError(f"{ENV_PREFIX}APP_KEY and {ENV_PREFIX}APP_SECRET are required with {ENV_PREFIX}URL")
    timeout, rate = get("TIMEOUT"), get("RATE")
    return EServiceChannel(
        url,
        app_key=app_key,
        app_secret=app_secret,
        name=get("NAME") or "eservice",
        callback_url=get("CALLBACK_URL"),
        timeout=float(timeout) if timeout else 10.0,
        rate=float(rate) if rate else None,
    )


class EnvEServicePlugin:
    """The entry-point plugin: registers :func:`channel_from_env`'s channel, or nothing when unconfigured.

    The environment is read when a plugin host asks (once per client). A configuration that cannot work
    logs a warning (naming the variable, never a value) and registers nothing.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def __repr__(self) -> str:
        return "EnvEServicePlugin()"

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry) -> None:
        try:
            channel = channel_from_env(self._environ)
        except ValueError as exc:
            log.warning("e-service platform channel not registered: %s", exc)
            return
        if channel is not None:
            register(channel)


plugin = EnvEServicePlugin()
"""The object the ``eservice`` entry point registers with every plugin host."""
