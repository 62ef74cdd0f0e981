"""The entry-point object of a channel plugin: one adapter from ``DELIVERY_SDK_<PLUGIN>_*``, or nothing.

Every provider plugin follows one rule (see :mod:`delivery_sdk.settings`): none of its variables set means
*installed, not configured* (it registers nothing); some set means every required one must be, and a
configuration that cannot work raises one :class:`~delivery_sdk.PluginError` naming every problem.
:class:`EnvChannelPlugin` is that rule once: a subclass says how to read its variables and build its
adapter, and gets ``configured()`` and the ``delivery_register_channels`` hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from .._exceptions import PluginError
from ..clock import Clock
from ..hookspecs import hookimpl
from ..plugins import ChannelRegistry
from ..settings import PluginSettings

__all__ = ["EnvChannelPlugin", "configured_or_none", "read_rate_and_timeout", "read_values"]

A = TypeVar("A")
log = logging.getLogger("delivery_sdk.plugin_kit")


class EnvChannelPlugin(Generic[A]):
    """Base class of a plugin object registering one adapter of type ``A`` built from its variables.

    A subclass sets:

    - ``title``: the plugin's name in messages (``"SMS"``, ``"Alibaba Cloud SMS"``);
    - ``prefix``: its variables' prefix (``"DELIVERY_SDK_SMS_"``);
    - ``main_variable``: the variable an error message points to first (say its URL);
    - ``construct_errors``: the exceptions the adapter's constructor raises for a bad configuration
      (default ``ValueError``; a plugin opening a file adds ``OSError``);

    and implements :meth:`read`, or overrides :meth:`configured` when building the adapter takes more than
    reading and constructing. ``environ`` given to the constructor wins over the host's (tests).
    """

    title: ClassVar[str]
    prefix: ClassVar[str]
    main_variable: ClassVar[str]
    construct_errors: ClassVar[tuple[type[BaseException], ...]] = (ValueError,)

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def environ_or(self, environ: Mapping[str, str] | None) -> Mapping[str, str] | None:
        """The ``environ`` given to this plugin's constructor (tests), else ``environ`` (the host's)."""
        return self._environ if self._environ is not None else environ

    def read(self, settings: PluginSettings, clock: Clock | None) -> Callable[[], A]:
        """Read the variables from ``settings`` (recording every problem in it) and return what builds the
        adapter; called only when the plugin is configured. The base class checks the problems between
        the two steps, so the builder runs only on a complete configuration."""
        raise NotImplementedError

    def configured(self, environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> A | None:
        """The adapter the variables describe, or None when none of them is set.

        :raises PluginError: the plugin is configured, and a variable is missing or invalid, or the
            adapter's own checks refused the configuration (every problem named, never a secret's value).
        """
        settings = PluginSettings(self.title, self.environ_or(environ), self.prefix)
        if not settings.configured:
            return None
        build = self.read(settings, clock)
        settings.check()
        try:
            return build()
        except self.construct_errors as exc:
            settings.guard(
                f"the {self.title} plugin's configuration ({self.main_variable} and friends) is not usable", exc
            )
            settings.check()
            raise

    @hookimpl
    def delivery_register_channels(self, register: ChannelRegistry, clock: Clock, environ: Mapping[str, str]) -> None:
        """Register the adapter when the plugin is configured; nothing (said at DEBUG) when it is not."""
        adapter: Any = self.configured(environ, clock)
        if adapter is None:
            log.debug(
                "%s plugin installed but not configured (no %s* variable): nothing registered", self.title, self.prefix
            )
            return
        register(adapter)


def configured_or_none(configured: Callable[[], A | None], what: str, logger: logging.Logger) -> A | None:
    """``configured()`` (a plugin's ``configured(environ)``), or None when it raises
    :class:`~delivery_sdk.PluginError`.

    For a hook called on every event (evidence to anchor, an address to look up), where a configuration
    that went wrong must not stop the engine: the problems (variable names and what is wrong with them,
    never a value) are logged on ``logger`` at WARNING as ``"{what} not configured: ..."``. A plugin's
    ``delivery_configure`` hook still raises at start-up, so this is the second line of defence.
    """
    try:
        return configured()
    except PluginError as exc:
        logger.warning("%s not configured: %s", what, "; ".join(exc.problems))
        return None


def read_values(
    settings: PluginSettings, names: Mapping[str, str], required: Sequence[str], *, secrets: Sequence[str] = ()
) -> dict[str, str]:
    """Every variable of ``names`` (key -> variable name) as a string (``""`` when unset), the keys in
    ``required`` required (a problem recorded for each missing one); those in ``secrets`` read as secrets
    (set and non-blank, stripped, never logged)."""
    values = {key: settings.get(name) or "" for key, name in names.items()}
    for key in required:
        if key in secrets:
            values[key] = (settings.secret(names[key], required=True) or "").strip()
        else:
            values[key] = settings.require(names[key])
    return values


def read_rate_and_timeout(
    settings: PluginSettings, names: Mapping[str, str], *, timeout: float = 10.0
) -> tuple[float | None, float]:
    """The ``rate`` (calls a second, None: no limit) and ``timeout`` (seconds, default ``timeout``)
    variables of ``names``; a value that is not a positive number is recorded as a problem."""
    rate = settings.number(names["rate"], None, positive=True)
    seconds = settings.number(names["timeout"], timeout, positive=True)
    return rate, seconds if seconds is not None else timeout
