"""A plugin's settings: ``DELIVERY_SDK_<PLUGIN>_*`` from the host's environment or a settings file.

:class:`~delivery_sdk.settings.PluginSettings` reads the variables and collects every problem into one
:class:`~delivery_sdk.PluginError`; :func:`plugin_settings` builds one from the mapping the host hands the
plugin, or from a settings file's ``[env]`` table (secrets by reference) under the host's environment,
and checks the names a plugin requires in one step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .._exceptions import PluginError, SettingsError
from ..settings import PluginSettings, is_secret_name, load_settings

__all__ = ["PluginError", "PluginSettings", "SettingsError", "is_secret_name", "plugin_settings"]


def plugin_settings(
    plugin: str,
    prefix: str,
    *,
    environ: Mapping[str, str] | None = None,
    settings_file: str | os.PathLike[str] | None = None,
    required: Sequence[str] = (),
) -> PluginSettings:
    """The settings of plugin ``plugin`` (its name in messages), whose variables start with ``prefix``.

    :param environ: the variables the host handed the plugin (``os.environ`` when None, as the host does).
    :param settings_file: a TOML settings file whose ``[env]`` table supplies variables ``environ`` does not
        set (``environ`` wins, as for the worker).
    :param required: names that must be set once the plugin is configured (any of its variables set);
        secrets among them (:func:`is_secret_name`) must be set and non-blank.
    :raises ValueError: ``prefix`` is not an upper-case ``DELIVERY_SDK_..._`` prefix, or a required name
        does not start with it.
    :raises SettingsError: the settings file cannot be read or is invalid (where, and why).
    :raises PluginError: the plugin is configured and a required name is missing (every one named).

    Read the remaining, optional variables from the returned object and call its ``check()`` last.
    """
    if not (prefix.startswith("DELIVERY_SDK_") and prefix.endswith("_") and prefix == prefix.upper()):
        raise ValueError(f"the prefix must look like 'DELIVERY_SDK_NAME_' (upper case, ending in '_'), not {prefix!r}")
    for name in required:
        if not name.startswith(prefix):
            raise ValueError(f"required variable {name!r} does not start with the plugin's prefix {prefix!r}")
    merged: Mapping[str, str] = os.environ if environ is None else environ
    if settings_file is not None:
        from_file = dict(load_settings(settings_file, environ=merged).env)
        from_file.update(merged)
        merged = from_file
    settings = PluginSettings(plugin, merged, prefix)
    if settings.configured:
        for name in required:
            if is_secret_name(name):
                settings.secret(name, required=True)
            else:
                settings.require(name)
        settings.check()
    return settings
