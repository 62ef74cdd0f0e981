"""The plugin kit: what a channel plugin needs beyond its provider's own protocol, in one public place.

A channel adapter is a subclass of :class:`~delivery_sdk.BaseChannel` with ``send``, ``status`` and, for
providers that push receipts, ``verify_callback`` and ``parse_callback``. The kit owns the plumbing around
those methods so that every plugin fails, retries, logs and records the same way:

- :mod:`.http`: :func:`make_client` (timeouts, limits, injectable transport), :class:`LoopClient` (one
  client per event loop), :func:`check_settings` (an adapter's constructor settings), :func:`request_json`
  (one call, its errors mapped), :func:`check_response`, :func:`json_answer`, :func:`translate_errors`,
  :class:`RateLimiter`, :func:`redact_url`, :class:`RedactSecretsFilter`;
- :mod:`.retry`: :func:`retrying` / :func:`aretrying`, the engine's retry policy for an adapter's own calls;
- :mod:`.tokens`: :class:`TokenCache`, one fetch shared by concurrent calls, one refresh on refusal;
- :mod:`.settings`: :func:`plugin_settings`, :class:`PluginSettings`, variables with typed errors;
- :mod:`.plugin`: :class:`EnvChannelPlugin`, the entry-point object (configured, or nothing), and
  :func:`configured_or_none` for hooks that must not stop the engine;
- :mod:`.sidelog`: :class:`SideLog`, the durable SQLite record of what an adapter sent;
- :mod:`.documents`: :func:`fetch_document`, a document's bytes checked against its digest;
- :mod:`.callbacks`: :func:`check_timestamp`, :func:`verify_hmac_sha256`, :func:`lower_headers`,
  :func:`link_token`, :class:`CallbackReply`, :func:`aware_datetime`;
- :mod:`.cloudsms`: :class:`CloudSmsChannel`, the base of a cloud SMS adapter (set-up, error codes, the
  token-guarded report push), with :func:`safe_code`, :func:`token_matches`, :func:`authorization_fields`
  and :func:`beijing_time`;
- :mod:`.testing`: :func:`make_dispatch`, :func:`make_document`, :func:`parse_callback`;
- :mod:`.scaffold`: ``delivery-sdk new-plugin``, a new plugin package to fill in.

Everything listed is importable from ``delivery_sdk.plugin_kit`` itself, except the test helpers
(``delivery_sdk.plugin_kit.testing``) and the scaffold. ``delivery_sdk.httpchannel`` stays importable.
Names are imported on first use: the HTTP helpers need ``httpx`` (a plugin's dependency, not the core's).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callbacks import CallbackRejected as CallbackRejected
    from .callbacks import CallbackReply as CallbackReply
    from .callbacks import CallbackResponse as CallbackResponse
    from .callbacks import MalformedReceipt as MalformedReceipt
    from .callbacks import aware_datetime as aware_datetime
    from .callbacks import check_timestamp as check_timestamp
    from .callbacks import hmac_sha256_hex as hmac_sha256_hex
    from .callbacks import link_token as link_token
    from .callbacks import lower_headers as lower_headers
    from .callbacks import read_json_object as read_json_object
    from .callbacks import require_secret as require_secret
    from .callbacks import signature_matches as signature_matches
    from .callbacks import verify_hmac_sha256 as verify_hmac_sha256
    from .cloudsms import CloudSmsChannel as CloudSmsChannel
    from .cloudsms import authorization_fields as authorization_fields
    from .cloudsms import beijing_time as beijing_time
    from .cloudsms import safe_code as safe_code
    from .cloudsms import token_matches as token_matches
    from .documents import DocumentSource as DocumentSource
    from .documents import fetch_document as fetch_document
    from .http import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
    from .http import RETRYABLE_ERRORS as RETRYABLE_ERRORS
    from .http import SECRET_QUERY_PARAMETERS as SECRET_QUERY_PARAMETERS
    from .http import LoopClient as LoopClient
    from .http import RateLimiter as RateLimiter
    from .http import RedactSecretsFilter as RedactSecretsFilter
    from .http import RetryableResponse as RetryableResponse
    from .http import check_base_url as check_base_url
    from .http import check_response as check_response
    from .http import check_settings as check_settings
    from .http import json_answer as json_answer
    from .http import make_client as make_client
    from .http import parse_retry_after as parse_retry_after
    from .http import redact_url as redact_url
    from .http import request_json as request_json
    from .http import translate_errors as translate_errors
    from .plugin import EnvChannelPlugin as EnvChannelPlugin
    from .plugin import configured_or_none as configured_or_none
    from .plugin import read_rate_and_timeout as read_rate_and_timeout
    from .plugin import read_values as read_values
    from .retry import RetryConfig as RetryConfig
    from .retry import Wait as Wait
    from .retry import aretrying as aretrying
    from .retry import retry_after_or_backoff as retry_after_or_backoff
    from .retry import retrying as retrying
    from .settings import PluginError as PluginError
    from .settings import PluginSettings as PluginSettings
    from .settings import SettingsError as SettingsError
    from .settings import plugin_settings as plugin_settings
    from .sidelog import SideLog as SideLog
    from .tokens import AccessToken as AccessToken
    from .tokens import TokenCache as TokenCache
    from .tokens import TokenRefused as TokenRefused

_EXPORTS: dict[str, str] = {
    "CallbackRejected": ".callbacks",
    "CallbackReply": ".callbacks",
    "CallbackResponse": ".callbacks",
    "MalformedReceipt": ".callbacks",
    "aware_datetime": ".callbacks",
    "check_timestamp": ".callbacks",
    "hmac_sha256_hex": ".callbacks",
    "link_token": ".callbacks",
    "lower_headers": ".callbacks",
    "read_json_object": ".callbacks",
    "require_secret": ".callbacks",
    "signature_matches": ".callbacks",
    "verify_hmac_sha256": ".callbacks",
    "DocumentSource": ".documents",
    "fetch_document": ".documents",
    "DEFAULT_TIMEOUT": ".http",
    "RETRYABLE_ERRORS": ".http",
    "SECRET_QUERY_PARAMETERS": ".http",
    "RateLimiter": ".http",
    "RedactSecretsFilter": ".http",
    "RetryableResponse": ".http",
    "check_base_url": ".http",
    "check_response": ".http",
    "check_settings": ".http",
    "json_answer": ".http",
    "LoopClient": ".http",
    "CloudSmsChannel": ".cloudsms",
    "authorization_fields": ".cloudsms",
    "beijing_time": ".cloudsms",
    "safe_code": ".cloudsms",
    "token_matches": ".cloudsms",
    "make_client": ".http",
    "parse_retry_after": ".http",
    "redact_url": ".http",
    "request_json": ".http",
    "translate_errors": ".http",
    "EnvChannelPlugin": ".plugin",
    "configured_or_none": ".plugin",
    "read_rate_and_timeout": ".plugin",
    "read_values": ".plugin",
    "RetryConfig": ".retry",
    "Wait": ".retry",
    "aretrying": ".retry",
    "retry_after_or_backoff": ".retry",
    "retrying": ".retry",
    "PluginError": ".settings",
    "PluginSettings": ".settings",
    "SettingsError": ".settings",
    "plugin_settings": ".settings",
    "SideLog": ".sidelog",
    "AccessToken": ".tokens",
    "TokenCache": ".tokens",
    "TokenRefused": ".tokens",
}

__all__ = [
    "DEFAULT_TIMEOUT",
    "RETRYABLE_ERRORS",
    "SECRET_QUERY_PARAMETERS",
    "AccessToken",
    "CallbackRejected",
    "CallbackReply",
    "CallbackResponse",
    "CloudSmsChannel",
    "DocumentSource",
    "EnvChannelPlugin",
    "LoopClient",
    "MalformedReceipt",
    "PluginError",
    "PluginSettings",
    "RateLimiter",
    "RedactSecretsFilter",
    "RetryConfig",
    "RetryableResponse",
    "SettingsError",
    "SideLog",
    "TokenCache",
    "TokenRefused",
    "Wait",
    "aretrying",
    "authorization_fields",
    "aware_datetime",
    "beijing_time",
    "check_base_url",
    "check_response",
    "check_settings",
    "check_timestamp",
    "configured_or_none",
    "fetch_document",
    "hmac_sha256_hex",
    "json_answer",
    "link_token",
    "lower_headers",
    "make_client",
    "parse_retry_after",
    "plugin_settings",
    "read_json_object",
    "read_rate_and_timeout",
    "read_values",
    "redact_url",
    "request_json",
    "require_secret",
    "retry_after_or_backoff",
    "retrying",
    "safe_code",
    "signature_matches",
    "token_matches",
    "translate_errors",
    "verify_hmac_sha256",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'delivery_sdk.plugin_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
