"""The recipient's side: the court's document page behind every link a channel sends (an ASGI app).

Every electronic channel (SMS, WeChat, e-mail, the e-service platform) puts a link with
:func:`delivery_sdk.callbacks.link_token` in its message. This package is the page behind it, a Starlette
application a court mounts on its own domain (behind its reverse proxy, which terminates TLS), or runs with
``delivery-sdk portal --store ...``::

    from delivery_sdk.portal import PortalConfig, create_app
    from delivery_sdk.printing import FolderDocumentSource

    app = create_app(
        PortalConfig(court_name="武汉市武昌区人民法院", court_phone="027-00000000",
                     link_keys=[SMS_LINK_KEY], session_secret=SECRET),
        FolderDocumentSource("/srv/court/documents"),
        client,                                       # the court's AsyncDeliveryClient (or store=...)
    )

The flow: **link** (token -> its dispatch; malformed, unknown, expired or withdrawn links get a page that
says so and gives the court's number, and are counted) -> **identity check** (a one-time code texted
through the registered SMS adapter, or the last digits of the party's ID number; wrong answers counted,
locked out after ``max_failures``) -> a **signed, short-lived session** bound to the dispatch -> the
**documents** (each fetched from the court's document source and served only when its bytes have the
request's SHA-256) -> **签收** and the **address confirmation**.

Evidence enters the event log as the dispatch's *own channel's* receipts, through
:meth:`Engine.ingest <delivery_sdk.engine.Engine.ingest>` with the dispatch's channel as the source, so
:mod:`delivery_sdk.trust` treats them as that channel's reports (``delivered``, ``read``): the identity
check passed is ``delivered`` (the link reached the party), the first document served is ``read`` (Rules
Art. 31: at an unconfirmed address, service then takes effect). "I confirm receipt" is
:meth:`~delivery_sdk.AsyncDeliveryClient.record_acceptance` (Rules Art. 29(4)); the address confirmation
is the address confirmed (``contact.updated``, :meth:`~delivery_sdk.AsyncDeliveryClient.set_contact`) and
``consent.recorded`` (``confirmation_form``) on this and the same party's other open tasks in the case,
and "不同意" is :meth:`~delivery_sdk.AsyncDeliveryClient.record_objection`. See ``docs/portal.md``.
"""

from __future__ import annotations

from .app import CSP, CodeSender, Portal, create_app
from .config import ENV, IdentityMethod, PortalConfig

__all__ = ["CSP", "ENV", "CodeSender", "IdentityMethod", "Portal", "PortalConfig", "create_app"]
