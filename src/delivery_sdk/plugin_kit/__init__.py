"""The plugin kit: what a channel plugin needs beyond its provider's own protocol, in one public place.

A channel adapter is a subclass of :class:`~delivery_sdk.BaseChannel` with ``send``, ``status`` and, for
providers that push receipts, ``verify_callback`` and ``parse_callback``. The kit owns the plumbing around
those methods so that every plugin fails, retries, logs and records the same way:

- :mod:`.http`: :func:`make_client` (timeouts, limits, injectable transport), :func:`check_response`,
  :func:`translate_errors`, :class:`RateLimiter`, :func:`redact_url`, :class:`RedactSecretsFilter`;
- :mod:`.retry`: :func:`retrying` / :func:`aretrying`, the engine's retry policy for an adapter's own calls;
- :mod:`.tokens`: :class:`TokenCache`, one fetch shared by concurrent calls, one refresh on refusal;
- :mod:`.settings`: :func:`plugin_settings`, :class:`PluginSettings`, variables with typed errors;
- :mod:`.plugin`: :class:`EnvChannelPlugin`, the entry-point object (configured, or nothing);
- :mod:`.sidelog`: :class:`SideLog`, the durable SQLite record of what an adapter sent;
- :mod:`.documents`: :func:`fetch_document`, a document's bytes checked against its digest;
- :mod:`.callbacks`: :func:`check_timestamp`, :func:`verify_hmac_sha256`, :func:`lower_headers`,
  :func:`link_token`, :class:`CallbackReply`;
- :mod:`.testing`: :func:`make_dispatch`, :func:`make_document`, :func:`parse_callback`;
- :mod:`.scaffold`: ``delivery-sdk new-plugin``, a new plugin package to fill in.

Everything listed is importable from ``delivery_sdk.plugin_kit`` itself, except the test helpers
(``delivery_sdk.plugin_kit.testing``) and the scaffold. ``delivery_sdk.httpchannel`` stays importable.
"""

from __future__ import annotations

from .callbacks import (
    CallbackRejected,
    CallbackReply,
    CallbackResponse,
    MalformedReceipt,
    check_timestamp,
    hmac_sha256_hex,
    link_token,
    lower_headers,
    require_secret,
    signature_matches,
    verify_hmac_sha256,
)
from .documents import DocumentSource, fetch_document
from .http import (
    DEFAULT_TIMEOUT,
    SECRET_QUERY_PARAMETERS,
    RateLimiter,
    RedactSecretsFilter,
    check_base_url,
    check_response,
    make_client,
    parse_retry_after,
    redact_url,
    translate_errors,
)
from .plugin import EnvChannelPlugin, read_rate_and_timeout, read_values
from .retry import RetryConfig, Wait, aretrying, retry_after_or_backoff, retrying
from .settings import PluginError, PluginSettings, SettingsError, plugin_settings
from .sidelog import SideLog
from .tokens import AccessToken, TokenCache, TokenRefused

__all__ = [
    "DEFAULT_TIMEOUT",
    "SECRET_QUERY_PARAMETERS",
    "AccessToken",
    "CallbackRejected",
    "CallbackReply",
    "CallbackResponse",
    "DocumentSource",
    "EnvChannelPlugin",
    "MalformedReceipt",
    "PluginError",
    "PluginSettings",
    "RateLimiter",
    "RedactSecretsFilter",
    "RetryConfig",
    "SettingsError",
    "SideLog",
    "TokenCache",
    "TokenRefused",
    "Wait",
    "aretrying",
    "check_base_url",
    "check_response",
    "check_timestamp",
    "fetch_document",
    "hmac_sha256_hex",
    "link_token",
    "lower_headers",
    "make_client",
    "parse_retry_after",
    "plugin_settings",
    "read_rate_and_timeout",
    "read_values",
    "redact_url",
    "require_secret",
    "retry_after_or_backoff",
    "retrying",
    "signature_matches",
    "translate_errors",
    "verify_hmac_sha256",
]
