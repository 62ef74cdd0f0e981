"""The public API is one table, ``delivery_sdk._EXPORTS``; the type checker's imports and ``__all__`` agree.

``__all__``, ``__dir__`` and the lazy ``__getattr__`` read the table; the ``if TYPE_CHECKING:`` imports
are the one copy a type checker needs, parsed here and held to the table. The synchronous client's
constructor is spelled out for type checkers and must stay the asynchronous one's.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import delivery_sdk
from delivery_sdk import AsyncDeliveryClient, DeliveryClient

INIT = Path(delivery_sdk.__file__)
EXPORTS: dict[str, str] = delivery_sdk._EXPORTS


def type_checking_imports() -> dict[str, str]:
    """name -> module of every ``from .module import name as name`` under ``if TYPE_CHECKING:``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1
    found: dict[str, str] = {}
    for node in blocks[0].body:
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue  # typing's Any, for the annotations
        for alias in node.names:
            # ``X as X`` is the explicit re-export a strict type checker wants from a package's __init__
            assert alias.asname == alias.name, f"{alias.name} is imported without 'as {alias.name}'"
            assert alias.name not in found, f"{alias.name} is imported twice"
            found[alias.name] = "." * node.level + (node.module or "")
    return found


def test_the_type_checkers_imports_are_the_table() -> None:
    assert type_checking_imports() == EXPORTS


def test_all_is_the_table_and_the_version() -> None:
    assert sorted(delivery_sdk.__all__) == sorted([*EXPORTS, "__version__"])
    assert len(delivery_sdk.__all__) == len(set(delivery_sdk.__all__))


def test_dir_lists_every_public_name() -> None:
    assert set(delivery_sdk.__all__) <= set(dir(delivery_sdk))


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_each_name_imports_from_its_module(name: str) -> None:
    module = importlib.import_module(EXPORTS[name], "delivery_sdk")
    assert getattr(delivery_sdk, name) is getattr(module, name)
    namespace: dict[str, object] = {}
    exec(f"from delivery_sdk import {name}", namespace)
    assert namespace[name] is getattr(module, name)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_each_name_is_documented(name: str) -> None:
    value = getattr(delivery_sdk, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        # the object's own docstring, not one inherited from a base class
        assert (vars(value).get("__doc__") if inspect.isclass(value) else value.__doc__ or "").strip(), name
    else:
        # a constant or a marker object: the package docstring says what it is
        assert f"``{name}``" in (delivery_sdk.__doc__ or ""), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = delivery_sdk.NoSuchThing  # type: ignore[attr-defined]


def test_importing_the_package_imports_none_of_its_modules() -> None:
    code = "import sys, delivery_sdk; print(sorted(m for m in sys.modules if m.startswith('delivery_sdk.')))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_the_sync_client_takes_the_async_clients_parameters() -> None:
    sync = inspect.signature(DeliveryClient.__init__, eval_str=True)
    async_ = inspect.signature(AsyncDeliveryClient.__init__, eval_str=True)
    assert list(sync.parameters.values()) == list(async_.parameters.values())
    assert not any(p.kind is p.VAR_KEYWORD for p in sync.parameters.values())


def test_a_misspelt_keyword_is_refused() -> None:
    with pytest.raises(TypeError, match="plugin"):
        DeliveryClient(":memory:", plugin=[])  # type: ignore[call-arg]
