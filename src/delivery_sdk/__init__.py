"""delivery-sdk: an embeddable engine for the service of court documents (送达).

Electronic service first, automatic fallback to post through regional print/mail centres, assisted
person search, a tamper-evident event log and automatic filing, with channel adapters, address sources,
print-centre routers and evidence sinks supplied by pluggy plugins.

Every public name is listed once, in ``_EXPORTS`` (name → defining module): the names are imported on
first use, so ``import delivery_sdk`` stays cheap for scripts and CLIs. Besides the classes and functions
(each with its docstring): ``LIMITS``, the size limits a request is checked against, and ``hookimpl``, the
marker for a plugin's hook implementations.
"""

from __future__ import annotations

import importlib

# ``typing`` costs more to import than the rest of this module; type checkers treat any name
# ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # The type checker's view of ``_EXPORTS``, written out because a checker cannot follow a lazy import
    # (``tests/test_public_api.py`` checks that the two list the same names from the same modules). The
    # ``X as X`` form re-exports a name explicitly.
    from ._exceptions import AccessDenied as AccessDenied
    from ._exceptions import CallbackRejected as CallbackRejected
    from ._exceptions import ChannelError as ChannelError
    from ._exceptions import DeliveryError as DeliveryError
    from ._exceptions import EvidenceForkError as EvidenceForkError
    from ._exceptions import IdempotencyConflict as IdempotencyConflict
    from ._exceptions import IllegalTransition as IllegalTransition
    from ._exceptions import InvalidContact as InvalidContact
    from ._exceptions import InvalidRequest as InvalidRequest
    from ._exceptions import MalformedReceipt as MalformedReceipt
    from ._exceptions import NotAStore as NotAStore
    from ._exceptions import PluginError as PluginError
    from ._exceptions import SchemaVersionError as SchemaVersionError
    from ._exceptions import SettingsError as SettingsError
    from ._exceptions import StoreError as StoreError
    from ._exceptions import TaskKeptChanging as TaskKeptChanging
    from ._exceptions import TransientChannelError as TransientChannelError
    from ._exceptions import UnknownChannel as UnknownChannel
    from ._exceptions import UnknownKind as UnknownKind
    from ._exceptions import UnknownTask as UnknownTask
    from ._exceptions import UnsendableDispatch as UnsendableDispatch
    from ._exceptions import ValidationError as ValidationError
    from .access import AccessRecord as AccessRecord
    from .access import Actor as Actor
    from .access import Permission as Permission
    from .channels import BaseChannel as BaseChannel
    from .channels import ChannelAdapter as ChannelAdapter
    from .channels import MockChannel as MockChannel
    from .channels import PrintCentreInfo as PrintCentreInfo
    from .channels import Receipt as Receipt
    from .channels import ReceiptKind as ReceiptKind
    from .channels import SendResult as SendResult
    from .channels import StatusReport as StatusReport
    from .client import AsyncDeliveryClient as AsyncDeliveryClient
    from .client import DeliveryClient as DeliveryClient
    from .client import DispatchSummary as DispatchSummary
    from .client import RequestWarning as RequestWarning
    from .client import TaskStatus as TaskStatus
    from .clock import Clock as Clock
    from .clock import SystemClock as SystemClock
    from .clock import VirtualClock as VirtualClock
    from .engine import EngineConfig as EngineConfig
    from .engine import IngestResult as IngestResult
    from .events import Event as Event
    from .events import StoredEvent as StoredEvent
    from .hookspecs import hookimpl as hookimpl
    from .lifecycle import Task as Task
    from .lifecycle import TaskState as TaskState
    from .model import LIMITS as LIMITS
    from .model import AgentRole as AgentRole
    from .model import Case as Case
    from .model import CaseType as CaseType
    from .model import ChannelKind as ChannelKind
    from .model import Consent as Consent
    from .model import ConsentMethod as ConsentMethod
    from .model import Contact as Contact
    from .model import ContactKind as ContactKind
    from .model import Dispatch as Dispatch
    from .model import DispatchStatus as DispatchStatus
    from .model import Document as Document
    from .model import DocumentKind as DocumentKind
    from .model import Party as Party
    from .model import PartyKind as PartyKind
    from .model import Representative as Representative
    from .model import ServiceMethod as ServiceMethod
    from .model import ServiceNature as ServiceNature
    from .model import ServiceRequest as ServiceRequest
    from .plugins import ChannelRegistry as ChannelRegistry
    from .plugins import PluginHost as PluginHost
    from .plugins import PrintCentreRegistry as PrintCentreRegistry
    from .policy import IngestOutcome as IngestOutcome
    from .policy import PolicyConfig as PolicyConfig
    from .records import AddressCandidate as AddressCandidate
    from .records import AnchorReceipt as AnchorReceipt
    from .records import EvidenceBatch as EvidenceBatch
    from .records import PrintJob as PrintJob
    from .records import RouteDecision as RouteDecision
    from .records import ServiceRecord as ServiceRecord
    from .store import SQLiteStore as SQLiteStore
    from .store import TaskStore as TaskStore

__version__ = "0.1.0"

# The public API: name -> the module that defines it. ``__all__``, ``__dir__`` and ``__getattr__`` (which
# imports a name's module on its first use) all read this table.
_EXPORTS: dict[str, str] = {
    "LIMITS": ".model",
    "AccessDenied": "._exceptions",
    "Actor": ".access",
    "AccessRecord": ".access",
    "Permission": ".access",
    "AddressCandidate": ".records",
    "AgentRole": ".model",
    "AnchorReceipt": ".records",
    "AsyncDeliveryClient": ".client",
    "BaseChannel": ".channels",
    "CallbackRejected": "._exceptions",
    "Case": ".model",
    "CaseType": ".model",
    "ChannelAdapter": ".channels",
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
    "Dispatch": ".model",
    "DispatchStatus": ".model",
    "DispatchSummary": ".client",
    "Document": ".model",
    "DocumentKind": ".model",
    "EngineConfig": ".engine",
    "Event": ".events",
    "EvidenceBatch": ".records",
    "EvidenceForkError": "._exceptions",
    "IdempotencyConflict": "._exceptions",
    "IllegalTransition": "._exceptions",
    "IngestOutcome": ".policy",
    "IngestResult": ".engine",
    "InvalidContact": "._exceptions",
    "InvalidRequest": "._exceptions",
    "MalformedReceipt": "._exceptions",
    "MockChannel": ".channels",
    "NotAStore": "._exceptions",
    "Party": ".model",
    "PartyKind": ".model",
    "PluginError": "._exceptions",
    "PluginHost": ".plugins",
    "PolicyConfig": ".policy",
    "PrintCentreInfo": ".channels",
    "PrintCentreRegistry": ".plugins",
    "PrintJob": ".records",
    "Receipt": ".channels",
    "ReceiptKind": ".channels",
    "Representative": ".model",
    "RequestWarning": ".client",
    "RouteDecision": ".records",
    "SQLiteStore": ".store",
    "SchemaVersionError": "._exceptions",
    "SendResult": ".channels",
    "ServiceMethod": ".model",
    "ServiceNature": ".model",
    "ServiceRecord": ".records",
    "ServiceRequest": ".model",
    "SettingsError": "._exceptions",
    "StatusReport": ".channels",
    "StoreError": "._exceptions",
    "TaskKeptChanging": "._exceptions",
    "StoredEvent": ".events",
    "SystemClock": ".clock",
    "Task": ".lifecycle",
    "TaskState": ".lifecycle",
    "TaskStatus": ".client",
    "TaskStore": ".store",
    "TransientChannelError": "._exceptions",
    "UnknownChannel": "._exceptions",
    "UnknownKind": "._exceptions",
    "UnknownTask": "._exceptions",
    "UnsendableDispatch": "._exceptions",
    "ValidationError": "._exceptions",
    "VirtualClock": ".clock",
    "hookimpl": ".hookspecs",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'delivery_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
