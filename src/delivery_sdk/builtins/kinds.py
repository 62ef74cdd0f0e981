"""The built-in channel kinds, declared through the same hook as a plugin's (``delivery_channel_kinds``)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..model import BUILTIN_CHANNEL_KINDS, ChannelKind


@hookimpl
def delivery_channel_kinds() -> tuple[ChannelKind, ...]:
    """SMS, WeChat, e-mail, the e-service platform, staff calls, print centres and the postal carrier."""
    return BUILTIN_CHANNEL_KINDS
