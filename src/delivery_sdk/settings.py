"""One configuration, checked at start: plugin settings and the settings file (``--config``).

Two parts:

- :class:`PluginSettings`, what every plugin uses to read its ``DELIVERY_SDK_<PLUGIN>_*`` variables from
  the mapping the host hands it (``environ``). It collects *every* missing or invalid variable and raises
  one :class:`~delivery_sdk.PluginError` listing them all, never a bare ``ValueError``. The rule for a
  provider plugin: none of its variables set means *not configured* (it registers nothing and says so at
  DEBUG); some set means *configured*, and then every required one must be there.
- :func:`load_settings`, a TOML settings file holding what the environment holds (the store, the engine and
  policy settings, the evidence origin and key file, the channel order and plugin variables), with secrets
  only by reference; and :func:`load_runtime`, which turns a file plus the process environment into what the
  worker and ``delivery-sdk check-config`` build their client from (one code path for both).

The settings file (every section optional)::

    [store]
    path = "/var/lib/delivery-sdk/service.sqlite3"      # or: dsn = { env = "DELIVERY_SDK_STORE_DSN" }

    [engine]                                             # EngineConfig fields (durations in seconds)
    batch_size = 256

    [policy]                                             # PolicyConfig fields (durations in seconds)
    retry_after_error = 600
    electronic_order = ["eservice", "sms"]

    [evidence]
    origin = "court.example/delivery"
    key_file = "/run/secrets/evidence.key"               # signer keys, one a line (never the key itself)

    [channels]                                           # the order of adapters of one kind
    email = ["email", "log"]                             # -> DELIVERY_SDK_CHANNEL_ORDER

    [env]                                                # plain variables for plugins and the host
    DELIVERY_SDK_SMS_URL = "https://sms.example"
    DELIVERY_SDK_SMS_ACCESS_KEY_SECRET = { file = "/run/secrets/sms" }
    DELIVERY_SDK_EMS_TOKEN = { env = "EMS_TOKEN" }

A variable is a *secret* when one of its ``_``-separated words is ``SECRET``, ``TOKEN``, ``PASSWORD`` or
``PASSWD``, or its name ends in ``_KEY`` (``LINK_KEY``, ``APP_KEY``, ``EVIDENCE_KEY``); a secret's value in
``[env]`` must be a reference, ``{ file = "PATH" }`` (the file's text, one trailing newline dropped) or
``{ env = "NAME" }`` (another environment variable), never the secret inline. Variables set in the process
environment win over ``[env]`` (so a one-off override needs no edit of the file).
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._exceptions import PluginError, SettingsError

if TYPE_CHECKING:
    from .model import ChannelKind

__all__ = [
    "CHANNEL_ORDER_ENV",
    "CONFIG_ENV",
    "PluginSettings",
    "Runtime",
    "Settings",
    "is_secret_name",
    "load_runtime",
    "load_settings",
    "parse_channel_order",
]

CONFIG_ENV = "DELIVERY_SDK_CONFIG"
CHANNEL_ORDER_ENV = "DELIVERY_SDK_CHANNEL_ORDER"
_SECRET_WORDS = frozenset({"SECRET", "TOKEN", "PASSWORD", "PASSWD"})
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECTIONS = frozenset({"store", "engine", "policy", "evidence", "channels", "env"})


def is_secret_name(name: str) -> bool:
    """Whether a variable named ``name`` holds a secret (see the module's docstring)."""
    upper = name.upper()
    return bool(_SECRET_WORDS & set(upper.split("_"))) or upper.endswith("_KEY")


# -- plugins -----------------------------------------------------------------------------------------


class PluginSettings:
    """One plugin's variables, read from ``environ`` (``os.environ`` when None), with every problem collected.

    ::

        s = PluginSettings("SMS", environ, "DELIVERY_SDK_SMS_")
        if not s.configured:
            return None                        # installed, not configured: nothing registered
        url = s.require("DELIVERY_SDK_SMS_URL")
        rate = s.number("DELIVERY_SDK_SMS_RATE", None, positive=True)
        s.check()                              # one PluginError naming every problem
    """

    def __init__(self, plugin: str, environ: Mapping[str, str] | None, prefix: str) -> None:
        self.plugin = plugin
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.prefix = prefix
        self.problems: list[str] = []

    @property
    def configured(self) -> bool:
        """Whether any of the plugin's variables is set (to anything but blanks)."""
        return any(k.startswith(self.prefix) and str(v).strip() for k, v in self.environ.items())

    def set_names(self) -> list[str]:
        """The names of the plugin's variables that are set (non-blank), sorted."""
        return sorted(k for k, v in self.environ.items() if k.startswith(self.prefix) and str(v).strip())

    def get(self, name: str, default: str | None = None) -> str | None:
        """The stripped value of variable ``name``, or ``default`` when it is unset or blank."""
        value = self.environ.get(name)
        if value is None or not value.strip():
            return default
        return value.strip()

    def require(self, name: str, what: str = "") -> str:
        """The variable's value; when unset or blank, a problem (``what`` says what it should hold)."""
        value = self.get(name)
        if value is None:
            self.problem(f"{name} is required" + (f" ({what})" if what else ""))
            return ""
        return value

    def secret(self, name: str, *, required: bool = False) -> str | None:
        """A secret: unset means none (a problem if ``required``); set but blank is always a problem (an
        unexpanded ``${...}``, say). The value is returned as set (not stripped) and never logged."""
        value = self.environ.get(name)
        if value is None:
            if required:
                self.problem(f"{name} is required (a secret: set it, or reference a file in the settings file)")
            return None
        if not value.strip():
            self.problem(f"{name} is set but empty: set it to the secret, or unset it")
            return None
        return value

    def number(
        self, name: str, default: float | None, *, positive: bool = False, minimum: float | None = None
    ) -> float | None:
        """Variable ``name`` as a number (``default`` when unset); a value that is not a number, or not positive or
        under ``minimum`` when asked, is recorded as a problem."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problem(f"{name} must be a number, not {raw!r}")
            return default
        if value != value or (positive and value <= 0) or (minimum is not None and value < minimum):
            bound = "positive" if positive else f"at least {minimum:g}"
            self.problem(f"{name} must be {bound}, not {raw!r}")
            return default
        return value

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        """Variable ``name`` as one of ``choices`` (lower-cased; ``default`` when unset); any other value is recorded
        as a problem."""
        raw = (self.get(name) or default).lower()
        if raw not in choices:
            self.problem(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
            return default
        return raw

    def problem(self, text: str) -> None:
        """Record a problem with the settings (reported all together when the plugin loads)."""
        self.problems.append(text)

    def guard(self, what: str, exc: BaseException) -> None:
        """Record an error the plugin's own constructor raised (a ``ValueError``, an ``OSError``), message kept."""
        detail = str(exc).strip() or type(exc).__name__
        self.problem(f"{what}: {detail}")

    def check(self) -> None:
        """Raise one :class:`PluginError` naming every problem recorded, if any."""
        if self.problems:
            lines = "".join(f"\n  - {p}" for p in self.problems)
            raise PluginError(f"the {self.plugin} plugin cannot start:{lines}", problems=self.problems)


# -- the settings file -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Settings:
    """A parsed settings file; :func:`load_settings` builds one."""

    path: Path | None = None
    store: str | None = None
    engine: Mapping[str, Any] = attrs.field(factory=dict)
    policy: Mapping[str, Any] = attrs.field(factory=dict)
    evidence_origin: str | None = None
    evidence_key_file: Path | None = None
    evidence_witness: Path | None = None
    env: Mapping[str, str] = attrs.field(factory=dict)


def _resolve(
    path: str, section: str, key: str, value: Any, environ: Mapping[str, str], *, secret: bool, base: Path
) -> str:
    if isinstance(value, dict):
        if set(value) == {"file"} and isinstance(value["file"], str):
            target = Path(value["file"])
            if not target.is_absolute():
                target = base / target
            try:
                text = target.read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(path, section, key, f"cannot read {target}: {exc.strerror or exc}") from None
            return text[:-1] if text.endswith("\n") else text
        if set(value) == {"env"} and isinstance(value["env"], str):
            name = value["env"]
            if name not in environ:
                raise SettingsError(path, section, key, f"refers to the variable {name}, which is not set")
            return environ[name]
        raise SettingsError(path, section, key, 'a reference is { file = "PATH" } or { env = "NAME" }')
    if secret:
        raise SettingsError(
            path, section, key, 'is a secret: give it by reference, { file = "PATH" } or { env = "NAME" }, never inline'
        )
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | str):
        return str(value)
    kind = type(value).__name__
    raise SettingsError(path, section, key, f"must be a string, a number, a boolean or a reference, not {kind}")


def _field_types(cls: type) -> dict[str, Any]:
    import sys

    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls, vars(module))


def _declare_kinds(values: Any) -> None:
    """Make sure the kinds named in ``values`` (kind values) are declared, importing the installed plugins
    when one is not yet (a plugin declares its kinds when its module is imported)."""
    from .model import ChannelKind

    if any(isinstance(v, str) and v not in {k.value for k in ChannelKind} for v in values):
        _import_installed_plugins()


def _import_installed_plugins() -> None:
    """Import every installed plugin (the ``delivery_sdk`` entry points) and ask it for its kinds, so a
    settings file can name a plugin's kind before any client is built; a plugin that fails here is left to
    the host, which reports it at start."""
    import importlib.metadata

    for ep in importlib.metadata.entry_points(group="delivery_sdk"):
        try:
            hook = getattr(ep.load(), "delivery_channel_kinds", None)
            if callable(hook):
                hook()
        except Exception:
            continue


def _channel_kind(value: Any) -> ChannelKind:
    """The declared :class:`~delivery_sdk.ChannelKind` ``value`` names, importing the installed plugins once
    when no declared kind has that value; :class:`~delivery_sdk.UnknownKind` when none does."""
    from .model import ChannelKind

    try:
        return ChannelKind(value)
    except ValueError:
        _import_installed_plugins()
        return ChannelKind(value)


def _convert(path: str, section: str, key: str, value: Any, kind: Any) -> Any:
    from .model import ChannelKind

    def bad(expected: str) -> SettingsError:
        return SettingsError(path, section, key, f"must be {expected}, not {value!r}")

    origin = typing.get_origin(kind)
    if kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind is timedelta:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise bad("a number of seconds")
        return timedelta(seconds=value)
    if kind is ChannelKind:
        try:
            return _channel_kind(value)
        except ValueError:
            raise bad("a channel kind (" + ", ".join(k.value for k in ChannelKind) + ")") from None
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            if not isinstance(value, list):
                raise bad("a list")
            return tuple(_convert(path, section, key, item, args[0]) for item in value)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or len(members) != 1:
            raise SettingsError(path, section, key, "cannot be set from a settings file")
        return _convert(path, section, key, value, members[0])
    raise SettingsError(path, section, key, "cannot be set from a settings file; set it in code")


def _fields(path: str, section: str, table: Any, cls: type) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SettingsError(path, section, "", "must be a table")
    kinds = _field_types(cls)
    names = {f.name for f in attrs.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise SettingsError(path, section, key, f"is no {cls.__name__} setting (known: {', '.join(sorted(names))})")
        if section == "policy" and key == "adapters":  # kind -> [names] or [[routes]] (delivery_sdk.adapters)
            from .adapters import adapter_routes

            if isinstance(value, dict):
                _declare_kinds(value)
            try:
                out[key] = adapter_routes(value)
            except ValueError as exc:
                raise SettingsError(path, section, key, str(exc)) from None
            continue
        out[key] = _convert(path, section, key, value, kinds[key])
    return out


def load_settings(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check a settings file; ``environ`` (``os.environ``) resolves ``{ env = ... }`` references.

    Raises :class:`~delivery_sdk.SettingsError` naming the file, the section and the key of the first problem.
    """
    from .engine import EngineConfig
    from .policy import PolicyConfig

    env = os.environ if environ is None else environ
    file = Path(path)
    name = str(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(name, "", "", f"cannot read the settings file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(name, "", "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(name, "", "", "not UTF-8 text") from None
    base = file.resolve().parent
    for section in data:
        if section not in _SECTIONS:
            raise SettingsError(name, section, "", f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
    store: str | None = None
    store_table = data.get("store", {})
    if not isinstance(store_table, dict):
        raise SettingsError(name, "store", "", "must be a table")
    for key in store_table:
        if key not in ("path", "dsn"):
            raise SettingsError(name, "store", key, "unknown key (give path or dsn)")
    if "path" in store_table and "dsn" in store_table:
        raise SettingsError(name, "store", "dsn", "give path or dsn, not both")
    if "path" in store_table:
        store = _resolve(name, "store", "path", store_table["path"], env, secret=False, base=base)
    elif "dsn" in store_table:
        raw = store_table["dsn"]
        if isinstance(raw, str) and re.search(r"://[^/@]*:[^/@]*@|password=", raw):
            raise SettingsError(
                name, "store", "dsn", 'holds a password: give the DSN by reference, { file = "..." } or { env = "..." }'
            )
        store = _resolve(name, "store", "dsn", raw, env, secret=False, base=base)
    engine = _fields(name, "engine", data.get("engine", {}), EngineConfig)
    policy = _fields(name, "policy", data.get("policy", {}), PolicyConfig)
    evidence = data.get("evidence", {})
    if not isinstance(evidence, dict):
        raise SettingsError(name, "evidence", "", "must be a table")
    origin = key_file = witness = None
    for key, value in evidence.items():
        if key == "origin":
            if not isinstance(value, str) or not value.strip():
                raise SettingsError(name, "evidence", key, "must be a non-empty string (the log's name)")
            origin = value
        elif key in ("key_file", "witness"):
            if not isinstance(value, str) or not value.strip():
                raise SettingsError(name, "evidence", key, "must be a file path")
            target = Path(value) if Path(value).is_absolute() else base / value
            if key == "key_file":
                key_file = target
            else:
                witness = target
        else:
            raise SettingsError(name, "evidence", key, "unknown key (known: key_file, origin, witness)")
    plain: dict[str, str] = {}
    env_table = data.get("env", {})
    if not isinstance(env_table, dict):
        raise SettingsError(name, "env", "", "must be a table")
    for key, value in env_table.items():
        if not _NAME.fullmatch(key):
            raise SettingsError(name, "env", key, "is not an environment variable name (A-Z, 0-9, _)")
        plain[key] = _resolve(name, "env", key, value, env, secret=is_secret_name(key), base=base)
    channels = data.get("channels", {})
    if not isinstance(channels, dict):
        raise SettingsError(name, "channels", "", "must be a table of kind = [names]")
    if channels:
        parts = []
        for kind, names in channels.items():
            try:
                _channel_kind(kind)
            except ValueError:
                raise SettingsError(name, "channels", kind, "is not a channel kind") from None
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise SettingsError(name, "channels", kind, "must be a list of channel names, in order")
            parts.append(f"{kind}={','.join(names)}")
        if CHANNEL_ORDER_ENV in plain:
            raise SettingsError(name, "env", CHANNEL_ORDER_ENV, "is also given by [channels]: keep one")
        plain[CHANNEL_ORDER_ENV] = ";".join(parts)
    return Settings(
        path=file,
        store=store,
        engine=engine,
        policy=policy,
        evidence_origin=origin,
        evidence_key_file=key_file,
        evidence_witness=witness,
        env=plain,
    )


def parse_channel_order(value: str | None) -> dict[str, list[str]]:
    """``"email=smtp,log;sms=sms"`` as ``{"email": ["smtp", "log"], "sms": ["sms"]}``; PluginError if malformed."""

    order: dict[str, list[str]] = {}
    problems = []
    for part in (value or "").split(";"):
        part = part.strip()
        if not part:
            continue
        kind, sep, names = part.partition("=")
        kind = kind.strip().lower()
        listed = [n.strip() for n in names.split(",") if n.strip()]
        try:
            _channel_kind(kind)
        except ValueError:
            problems.append(f"{CHANNEL_ORDER_ENV}: {kind!r} is not a channel kind")
            continue
        if not sep or not listed:
            problems.append(f"{CHANNEL_ORDER_ENV}: give {kind}=name1,name2")
            continue
        if len(set(listed)) != len(listed):
            problems.append(f"{CHANNEL_ORDER_ENV}: {kind} lists a channel twice")
            continue
        order[kind] = listed
    if problems:
        raise PluginError("; ".join(problems), problems=problems)
    return order


# -- what the worker and check-config build from -----------------------------------------------------


@attrs.frozen(kw_only=True)
class Runtime:
    """Everything a worker's client is built from: the merged settings mapping and the typed settings."""

    settings: Settings
    environ: Mapping[str, str]
    store: str | None
    engine: Mapping[str, Any]
    policy: Mapping[str, Any]
    evidence_origin: str | None
    evidence_key_file: Path | None
    evidence_witness: Path | None


def load_runtime(config: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None) -> Runtime:
    """The settings file ``config`` (else ``$DELIVERY_SDK_CONFIG``, else none) merged with ``environ``
    (``os.environ``): the process's variables win over the file's ``[env]``, and ``$DELIVERY_SDK_STORE``
    over the file's ``[store]`` (a command's ``--store`` wins over both)."""
    base = dict(os.environ if environ is None else environ)
    path = config if config is not None else (base.get(CONFIG_ENV) or None)
    settings = load_settings(path, environ=base) if path else Settings()
    merged = {**settings.env, **base}
    return Runtime(
        settings=settings,
        environ=merged,
        store=base.get("DELIVERY_SDK_STORE") or settings.store or settings.env.get("DELIVERY_SDK_STORE") or None,
        engine=settings.engine,
        policy=settings.policy,
        evidence_origin=settings.evidence_origin,
        evidence_key_file=settings.evidence_key_file,
        evidence_witness=settings.evidence_witness,
    )
