"""Every error the SDK raises on purpose.

The tree::

    DeliveryError                      base of everything below
    ├── ValidationError                bad input to a public constructor or call (ValueError too)
    │   ├── InvalidContact             a phone number, e-mail or account that cannot be right
    │   ├── InvalidRequest             a service request that cannot be served as given
    │   └── MalformedReceipt           an inbound receipt or callback payload that cannot be read
    ├── CallbackRejected               a provider callback refused: forged, stale, replayed or unsigned
    ├── IdempotencyConflict            a client key reused for a different request
    ├── UnknownTask                    no task with that id in the store
    ├── AccessDenied                   an actor's role or courts do not cover the read or action asked
    ├── UnknownChannel                 no channel adapter registered under that name
    ├── IllegalTransition              an event that the lifecycle forbids in the task's state
    ├── TaskKeptChanging               a write lost to concurrent writers on the same task too many times
    ├── PluginError                    a plugin broke the hook contract, or its settings cannot work
    │   └── SettingsError              a settings file (--config) that cannot be used: file, section, key
    ├── EvidenceForkError              the evidence log no longer extends the last checkpoint signed
    ├── StoreError                     the store cannot be opened, migrated or written
    │   ├── SchemaVersionError         the file's schema is not this SDK's (newer; older, to a reader)
    │   └── NotAStore                  the path is no delivery-sdk store (a folder, another app's file)
    └── ChannelError                   an adapter failed to talk to its provider
        ├── TransientChannelError      ...in a way worth retrying (timeouts, 5xx, 429)
        └── UnsendableDispatch         ...because of the dispatch itself: no adapter could send it

Messages say what was wrong and how to fix it; they never contain a phone number, an ID number or an
address in clear (see ``delivery_sdk.model.mask``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AccessDenied",
    "CallbackRejected",
    "ChannelError",
    "DeliveryError",
    "EvidenceForkError",
    "IdempotencyConflict",
    "IllegalTransition",
    "InvalidContact",
    "InvalidRequest",
    "MalformedReceipt",
    "NotAStore",
    "PluginError",
    "SchemaVersionError",
    "SettingsError",
    "StoreError",
    "TaskKeptChanging",
    "TransientChannelError",
    "UnknownChannel",
    "UnknownKind",
    "UnknownTask",
    "UnsendableDispatch",
    "ValidationError",
]


class DeliveryError(Exception):
    """Base class of every error delivery-sdk raises on purpose."""


class ValidationError(DeliveryError, ValueError):
    """Input that the SDK refuses; nothing was stored."""


class UnknownKind(ValidationError):
    """A channel or contact kind value that no installed plugin declares (``ChannelKind("dingtalk")``
    without the DingTalk plugin): install the plugin, or correct the name."""


class InvalidContact(ValidationError):
    """A contact point (phone, e-mail, WeChat id, platform account, address) that cannot be right."""


class InvalidRequest(ValidationError):
    """A service request that cannot be served as given (no documents, unknown channel, ...)."""


class MalformedReceipt(ValidationError):
    """An inbound receipt or callback payload that cannot be read; nothing was recorded."""


class CallbackRejected(DeliveryError):
    """A provider callback that is not trusted; nothing was recorded.

    ``reason`` is one of ``forged`` (bad or missing signature), ``stale`` (timestamp outside the window),
    ``replayed`` (seen before within the window), ``unsigned`` (no verifier configured for the channel) or
    ``unknown_channel``. HTTP front ends answer 401 (403 for ``unknown_channel``) and never say more.
    """

    REASONS = frozenset({"forged", "stale", "replayed", "unsigned", "unknown_channel"})

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown callback rejection reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"callback rejected ({reason})" + (f": {detail}" if detail else ""))


class IdempotencyConflict(DeliveryError):
    """A client key that was already used for a different request."""

    def __init__(self, client_key: str, task_id: str) -> None:
        self.client_key = client_key
        self.task_id = task_id
        super().__init__(
            f"client key {client_key!r} was already used for a different request (task {task_id}); "
            "resubmit the identical request to get that task back, or use a new client key"
        )


class UnknownTask(DeliveryError, LookupError):
    """No task with the given id exists in the store."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no task {task_id!r} in this store; check the id (DeliveryClient.tasks_of_case lists them)")


class AccessDenied(DeliveryError):
    """An actor asked for a read or an action its role or its courts do not cover; nothing was read or changed.

    ``staff_id``, ``role`` and ``permission`` name who asked and what was missing; ``court`` is the court of the
    task (``None`` when the role alone refused). The message says what to do instead.
    """

    def __init__(self, message: str, *, staff_id: str, role: str, permission: str, court: str | None = None) -> None:
        super().__init__(message)
        self.staff_id = staff_id
        self.role = role
        self.permission = permission
        self.court = court


class UnknownChannel(DeliveryError, LookupError):
    """No channel adapter is registered under the given name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"no channel adapter named {name!r} is registered (registered: {listed}); install or register "
            "a plugin that provides it through the delivery_register_channels hook"
        )


class IllegalTransition(DeliveryError):
    """The lifecycle forbids this event in the task's current state."""

    def __init__(self, state: str, event_type: str, task_id: str = "") -> None:
        self.state = state
        self.event_type = event_type
        self.task_id = task_id
        where = f"task {task_id} " if task_id else ""
        super().__init__(f"{where}in state {state!r} cannot take event {event_type!r}")


class TaskKeptChanging(DeliveryError):
    """A write to a task (an ingested receipt, a recorded event, a step's results) lost to other writers of the
    same task ``attempts`` times in a row: each time it was read again and redone, and each time the task had
    moved on before it committed. Nothing of this write was recorded.

    It means something keeps writing those tasks (many callbacks for one task at once, or a loop in the
    application): try the call again later; if it persists, look for what writes them. ``task_ids`` names them.
    """

    def __init__(self, task_ids: Sequence[str], attempts: int, what: str) -> None:
        self.task_ids = tuple(task_ids)
        self.attempts = attempts
        shown = ", ".join(self.task_ids[:5]) + (f" and {len(self.task_ids) - 5} more" if len(self.task_ids) > 5 else "")
        super().__init__(
            f"{what}: task {shown} kept changing ({attempts} attempts, each overtaken by another writer); "
            "nothing of it was recorded: try again later, and look for what keeps writing the task"
        )


class PluginError(DeliveryError):
    """A plugin broke the hook contract (duplicate registration, wrong return type, ...), or its settings
    cannot work. ``problems`` holds one line per problem (every missing or invalid variable), the message
    itself when there is just one."""

    def __init__(self, message: str = "", *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or ((message,) if message else ())


class SettingsError(PluginError):
    """A settings file (``--config``, ``$DELIVERY_SDK_CONFIG``) that cannot be used: ``path``, ``section``
    and ``key`` say where (empty when the whole file is wrong)."""

    def __init__(self, path: str, section: str, key: str, problem: str) -> None:
        self.path, self.section, self.key = path, section, key
        where = f"[{section}] {key}" if section and key else (f"[{section}]" if section else key)
        super().__init__(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


class EvidenceForkError(DeliveryError):
    """The evidence log no longer extends the last checkpoint the engine signed (its witness): the database
    was rolled back, restored from an older backup or rewritten, or the log was renamed. Signing now would
    sign a fork, which a log must never do (C2SP tlog-checkpoint), so the engine stops.

    ``witness`` is the kept checkpoint's file (None: the store's own latest checkpoint disagreed). Restore
    the database to a state that includes that checkpoint, or, to start a new log on purpose, move the
    witness file aside and sign under a new origin (``docs/evidence.md``, "When the engine refuses to sign").
    """

    def __init__(self, message: str, *, witness: str | None = None) -> None:
        self.witness = witness
        super().__init__(message)


class StoreError(DeliveryError):
    """The store cannot be opened, migrated or written."""


class SchemaVersionError(StoreError):
    """The store was written by a newer version of delivery-sdk (or, to a read-only command, by an older
    one whose schema must be upgraded by a command that writes: ``delivery-sdk migrate``)."""


class NotAStore(StoreError):
    """What a read-only command was pointed at is not a delivery-sdk store: a folder, an empty file, a file
    that is not SQLite, another application's database. Nothing was written to it."""


class ChannelError(DeliveryError):
    """A channel adapter failed to talk to its provider."""


class TransientChannelError(ChannelError):
    """A channel failure worth retrying: a timeout, a 5xx answer, a 429 with an optional Retry-After."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class UnsendableDispatch(ChannelError):
    """The dispatch itself cannot be sent, by this adapter or any other of its kind (a print job whose
    documents are not the ones the request named, say): the engine fails it and asks a person instead of
    retrying or failing over to another provider, which would fail the same way."""


def log_summary(exc: BaseException) -> str:
    """An error for a log line: its type; a configuration error (PluginError: it names variables and plugins,
    never personal data) with its problems too. Never the message of another error, which may quote a
    provider's answer or a party's contact."""
    if isinstance(exc, PluginError):
        return f"{type(exc).__name__}: {'; '.join(exc.problems) or str(exc)}"[:500]
    return type(exc).__name__
