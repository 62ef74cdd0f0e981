"""A court e-service platform channel plugin for delivery-sdk (人民法院送达平台 shape).

:class:`EServiceChannel` pushes a dispatch's documents, each with its SHA-256 digest, to the recipient's
account on the platform (JSON over HTTPS, every request signed with HMAC-SHA256 over the app key's
secret, a timestamp and a nonce; the dispatch id is the service id and the idempotency key). The platform
reports "arrived" (the documents reached the recipient's account: DELIVERED, the legal service moment
under CPL Art. 90 and SPC Online Litigation Rules Art. 31), "read" (READ) and "failed" (FAILED) as signed
callbacks (:meth:`EServiceChannel.verify_callback`, :meth:`EServiceChannel.parse_callback`) and through the
status query the engine uses to poll and, after a crash, to reconcile.

The entry point (``eservice = "delivery_sdk_eservice:plugin"``) registers an :class:`EServiceChannel`
configured from ``DELIVERY_SDK_ESERVICE_*`` variables, and nothing while none of them is set (a partial
configuration raises :class:`~delivery_sdk.PluginError` naming every missing variable).
:mod:`delivery_sdk_eservice.emulator` is a local platform for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from delivery_sdk.clock import Clock
from delivery_sdk.plugin_kit import EnvChannelPlugin, PluginSettings

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
    """The channel the ``DELIVERY_SDK_ESERVICE_*`` variables in ``environ`` (``os.environ`` when None)
    describe, or ``None`` when none of them is set (installed, not configured).

    ``URL``, ``APP_KEY`` and ``APP_SECRET`` (required), ``CALLBACK_URL``, ``NAME`` (``eservice``),
    ``TIMEOUT`` (seconds, 10), ``RATE`` (requests per second). Any of them set makes the plugin configured:
    then a configuration that cannot work raises one :class:`~delivery_sdk.PluginError` naming every missing
    or invalid variable.
    """
    s = PluginSettings("e-service platform", environ, ENV_PREFIX)
    if not s.configured:
        return None
    p = ENV_PREFIX
    url = s.require(p + "URL", "the platform's base URL")
    app_key = s.require(p + "APP_KEY", "the court's app key")
    app_secret = s.secret(p + "APP_SECRET", required=True)
    timeout = s.number(p + "TIMEOUT", 10.0, positive=True)
    rate = s.number(p + "RATE", None, positive=True)
    s.check()
    try:
        return EServiceChannel(
            url,
            app_key=app_key,
            app_secret=(app_secret or "").strip(),
            name=s.get(p + "NAME") or "eservice",
            callback_url=s.get(p + "CALLBACK_URL"),
            timeout=timeout if timeout is not None else 10.0,
            rate=rate,
        )
    except ValueError as exc:  # the channel's own checks (the URL's form, say)
        s.guard("the e-service channel refuses its settings", exc)
        s.check()
        raise


class EnvEServicePlugin(EnvChannelPlugin[EServiceChannel]):
    """The ``eservice`` entry point: the platform's :class:`EServiceChannel` from
    ``DELIVERY_SDK_ESERVICE_*`` (:func:`channel_from_env`), or nothing while none is set; read once per
    client, ``environ`` given here first (tests). A broken configuration raises
    :class:`~delivery_sdk.PluginError` naming each variable at fault."""

    title = "e-service"
    prefix = ENV_PREFIX
    main_variable = ENV_PREFIX + "URL"

    def configured(
        self, environ: Mapping[str, str] | None = None, clock: Clock | None = None
    ) -> EServiceChannel | None:
        """:func:`channel_from_env` of this plugin's ``environ``, else the host's."""
        return channel_from_env(self.environ_or(environ))


plugin = EnvEServicePlugin()
"""The object the ``eservice`` entry point registers with every plugin host."""
