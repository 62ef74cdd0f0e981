"""delivery-sdk: an embeddable engine for the service of court documents (送达).

Electronic service first, automatic fallback to post through regional print/mail centres, assisted
person search, a tamper-evident event log and automatic filing, with channel adapters, address sources,
print-centre routers and evidence sinks supplied by pluggy plugins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._exceptions import (
        CallbackRejected,
        ChannelError,
        DeliveryError,
        EvidenceForkError,
        IdempotencyConflict,
        IllegalTransition,
        InvalidContact,
        InvalidRequest,
        MalformedReceipt,
        NotAStore,
        PluginError,
        SchemaVersionError,
        SettingsError,
        StoreError,
        TransientChannelError,
        UnknownChannel,
        UnknownTask,
        UnsendableDispatch,
        ValidationError,
    )
    from .channels import (
        BaseChannel,
        ChannelAdapter,
        MockChannel,
        PrintCentreInfo,
        Receipt,
        ReceiptKind,
        SendResult,
        StatusReport,
    )
    from .client import AsyncDeliveryClient, DeliveryClient, DispatchSummary, RequestWarning, TaskStatus
    from .clock import Clock, SystemClock, VirtualClock
    from .engine import EngineConfig, IngestOutcome, IngestResult
    from .events import Event, StoredEvent
    from .hookspecs import hookimpl
    from .lifecycle import Task, TaskState
    from .model import (
        LIMITS,
        AgentRole,
        Case,
        CaseType,
        ChannelKind,
        Consent,
        ConsentMethod,
        Contact,
        ContactKind,
        Dispatch,
        DispatchStatus,
        Document,
        DocumentKind,
        Party,
        PartyKind,
        Representative,
        ServiceMethod,
        ServiceRequest,
    )
    from .plugins import ChannelRegistry, PluginHost, PrintCentreRegistry
    from .policy import PolicyConfig
    from .records import AddressCandidate, AnchorReceipt, EvidenceBatch, PrintJob, RouteDecision, ServiceRecord
    from .store import SQLiteStore, TaskStore

__version__ = "0.1.0"

# Public names resolve on first use, so ``import delivery_sdk`` stays cheap for scripts and CLIs.
_LAZY: dict[str, str] = {
    "AddressCandidate": ".records",
    "AnchorReceipt": ".records",
    "AgentRole": ".model",
    "AsyncDeliveryClient": ".client",
    "BaseChannel": ".channels",
    "Case": ".model",
    "CaseType": ".model",
    "ChannelAdapter": ".channels",
    "CallbackRejected": "._exceptions",
    "ChannelError": "._exceptions",
    "ChannelKind": ".model",
    "ChannelRegistry": ".plugins",
    "Clock": ".clock",
    "Consent": ".model",
    "ConsentMethod": ".model",
    "Contact": ".model",
    "ContactKind": ".model",
    "DeliveryClient": ".client",
    "DeliveryError": "._exceptions",
    "EvidenceForkError": "._exceptions",
    "Dispatch": ".model",
    "DispatchStatus": ".model",
    "DispatchSummary": ".client",
    "Document": ".model",
    "DocumentKind": ".model",
    "LIMITS": ".model",
    "EngineConfig": ".engine",
    "Event": ".events",
    "EvidenceBatch": ".records",
    "IdempotencyConflict": "._exceptions",
    "IllegalTransition": "._exceptions",
    "IngestOutcome": ".engine",
    "IngestResult": ".engine",
    "InvalidContact": "._exceptions",
    "InvalidRequest": "._exceptions",
    "MalformedReceipt": "._exceptions",
    "MockChannel": ".channels",
    "Party": ".model",
    "PartyKind": ".model",
    "PluginError": "._exceptions",
    "SettingsError": "._exceptions",
    "PluginHost": ".plugins",
    "PolicyConfig": ".policy",
    "PrintCentreInfo": ".channels",
    "PrintCentreRegistry": ".plugins",
    "PrintJob": ".records",
    "Receipt": ".channels",
    "ReceiptKind": ".channels",
    "Representative": ".model",
    "RouteDecision": ".records",
    "SQLiteStore": ".store",
    "SchemaVersionError": "._exceptions",
    "NotAStore": "._exceptions",
    "SendResult": ".channels",
    "ServiceMethod": ".model",
    "ServiceRecord": ".records",
    "RequestWarning": ".client",
    "ServiceRequest": ".model",
    "StatusReport": ".channels",
    "StoreError": "._exceptions",
    "StoredEvent": ".events",
    "SystemClock": ".clock",
    "Task": ".lifecycle",
    "TaskState": ".lifecycle",
    "TaskStatus": ".client",
    "TaskStore": ".store",
    "TransientChannelError": "._exceptions",
    "UnknownChannel": "._exceptions",
    "UnknownTask": "._exceptions",
    "UnsendableDispatch": "._exceptions",
    "ValidationError": "._exceptions",
    "VirtualClock": ".clock",
    "hookimpl": ".hookspecs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'delivery_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "LIMITS",
    "AddressCandidate",
    "AgentRole",
    "AnchorReceipt",
    "AsyncDeliveryClient",
    "BaseChannel",
    "CallbackRejected",
    "Case",
    "CaseType",
    "ChannelAdapter",
    "ChannelError",
    "ChannelKind",
    "ChannelRegistry",
    "Clock",
    "Consent",
    "ConsentMethod",
    "Contact",
    "ContactKind",
    "DeliveryClient",
    "DeliveryError",
    "Dispatch",
    "DispatchStatus",
    "DispatchSummary",
    "Document",
    "DocumentKind",
    "EngineConfig",
    "Event",
    "EvidenceBatch",
    "EvidenceForkError",
    "IdempotencyConflict",
    "IllegalTransition",
    "IngestOutcome",
    "IngestResult",
    "InvalidContact",
    "InvalidRequest",
    "MalformedReceipt",
    "MockChannel",
    "NotAStore",
    "Party",
    "PartyKind",
    "PluginError",
    "PluginHost",
    "PolicyConfig",
    "PrintCentreInfo",
    "PrintCentreRegistry",
    "PrintJob",
    "Receipt",
    "ReceiptKind",
    "Representative",
    "RequestWarning",
    "RouteDecision",
    "SQLiteStore",
    "SchemaVersionError",
    "SendResult",
    "ServiceMethod",
    "ServiceRecord",
    "ServiceRequest",
    "SettingsError",
    "StatusReport",
    "StoreError",
    "StoredEvent",
    "SystemClock",
    "Task",
    "TaskState",
    "TaskStatus",
    "TaskStore",
    "TransientChannelError",
    "UnknownChannel",
    "UnknownTask",
    "UnsendableDispatch",
    "ValidationError",
    "VirtualClock",
    "__version__",
    "hookimpl",
]
