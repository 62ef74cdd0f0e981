"""What the portal tests share: a court, a party, its documents, the SMS gateway emulator and a client.

Loaded by path from tests/test_portal*.py (the tests are imported with --import-mode=importlib).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from delivery_sdk_sms import SmsChannel
from delivery_sdk_sms.emulator import SmsGatewayEmulator

from delivery_sdk import AsyncDeliveryClient, PolicyConfig
from delivery_sdk.channels import BaseChannel
from delivery_sdk.clock import Clock
from delivery_sdk.model import Case, Contact, ContactKind, Document, DocumentKind, Party, ServiceRequest
from delivery_sdk.portal import PortalConfig
from delivery_sdk.printing.package import FolderDocumentSource
from delivery_sdk.testing import RecordingSink, channels_plugin

LINK_KEY = b"portal-test-link-key-0123456789abcdef"
SECRET = b"portal-test-session-secret-0123456789abcdef"
COURT = "武汉市武昌区人民法院"
PHONE = "027-8888-0000"
CODE_TEMPLATE = "SMS_CODE_1"
MOBILE = "13912345678"
ID_NUMBER = "42010619900101123X"
# Art. 31: the party's mobile came from the court's search, not from the party: unconfirmed, no consent yet
POLICY = PolicyConfig(require_consent=False)

SUMMONS = b"%PDF-1.4\n% summons of the portal test\n%%EOF\n"
COMPLAINT = b"%PDF-1.4\n% complaint copy of the portal test\n%%EOF\n"


def config(**overrides: Any) -> PortalConfig:
    values: dict[str, Any] = {
        "court_name": COURT,
        "court_phone": PHONE,
        "link_keys": (LINK_KEY,),
        "session_secret": SECRET,
        "secure_cookies": False,
    }
    values.update(overrides)
    return PortalConfig(**values)


def documents(folder: Path) -> tuple[FolderDocumentSource, tuple[Document, ...]]:
    source = FolderDocumentSource(folder)
    docs = (
        Document(document_id="D1", title="传票", kind=DocumentKind.SUMMONS, sha256=source.put(SUMMONS)),
        Document(document_id="D2", title="起诉状副本", kind=DocumentKind.OTHER, sha256=source.put(COMPLAINT)),
    )
    return source, docs


def request(docs: tuple[Document, ...], party_id: str = "P1", mobile: str = MOBILE) -> ServiceRequest:
    party = Party(
        party_id=party_id,
        name="张三",
        id_number=ID_NUMBER,
        contacts=(Contact(kind=ContactKind.MOBILE, value=mobile),),
    )
    return ServiceRequest(
        case=Case(court=COURT, case_number="(2026)鄂0106民初1号"), party=party, documents=docs, channels=None
    )


def sms_channel(gateway: SmsGatewayEmulator, link_template: str = "https://ssfw.court.example/s/{token}") -> SmsChannel:
    return gateway.channel(link_key=LINK_KEY, code_template_code=CODE_TEMPLATE, link_template=link_template)


def client(
    store: Any, channel: BaseChannel, clock: Clock | None, sink: RecordingSink | None = None
) -> AsyncDeliveryClient:
    plugins: list[object] = [channels_plugin(channel)]
    if sink is not None:
        plugins.append(sink)
    return AsyncDeliveryClient(store, plugins=plugins, clock=clock, policy=POLICY, load_entry_points=False)


def link_of(gateway: SmsGatewayEmulator, dispatch_id: str) -> str:
    """The document link in the SMS the gateway received for a dispatch."""
    return gateway.messages[dispatch_id].template_param["url"]


def token_of(link: str) -> str:
    found = re.search(r"/s/([A-Za-z0-9_-]+)$", link)
    assert found is not None, link
    return found.group(1)


def last_code(gateway: SmsGatewayEmulator) -> str:
    """The one-time code in the newest code SMS the gateway received."""
    codes = [m for m in gateway.messages.values() if m.template_code == CODE_TEMPLATE]
    assert codes, "no code SMS received"
    return max(codes, key=lambda m: (m.received_at, m.biz_id)).template_param["code"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
