"""The engine is I/O orchestration only (issue 18): engine.py and the private modules it was split into import
nothing from ``delivery_sdk.law``, rank no addresses and cite no law; the decisions are lifecycle's, policy's and
law's. Checked on the modules' syntax trees (docstrings excepted: they may say where a decision lives)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import delivery_sdk

SRC = Path(delivery_sdk.__file__).parent
# engine.py and the orchestration modules split off it
ORCHESTRATION = (
    "engine.py",
    "_ingest.py",
    "_inline.py",
    "_sending.py",
    "_checkpointing.py",
    "_work.py",
    "_conflicts.py",
)
# the law's address ranking and bases, by name (an engine that uses one ranks or cites itself)
LAW_NAMES = frozenset(
    {
        "SOURCE_RANK",
        "ADDRESS_RANK",
        "ADDRESS_ORDER",
        "ADDRESS_BASIS",
        "SEARCH_AID_RANK",
        "address_rank",
        "address_basis",
        "candidate_order",
        "choose_address",
        "contact_basis",
        "new_contacts",
        "AddressChoice",
        "BASIS_NO_ADDRESS_LEFT",
    }
)
# identifiers that carry a legal decision (a service basis, a deadline, a deemed-service moment)
DECISION_WORDS = re.compile(r"basis|deadline|deemed|effective_at|served_at", re.IGNORECASE)
# a citation of the law in a string the module records or shows
CITATION = re.compile(r"\b(SPC|CPL|Art\.|Opinion|No\. 19)\b|第.{1,6}条|法发")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def problems(source: str, package: str = "delivery_sdk") -> list[str]:
    """What in ``source`` (a module of ``package``) is a legal decision or the law's, each as a line."""
    tree = ast.parse(source)
    found: list[str] = []
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                parts = module.split(".")
                from_law = parts[:2] == [package, "law"]
            else:
                from_law = module.split(".")[0] == "law" or (module == "" and any(a.name == "law" for a in node.names))
            if from_law:
                found.append(f"{line}: imports from the law ({'.' * node.level}{module})")
            for alias in node.names:
                if alias.name in LAW_NAMES:
                    found.append(f"{line}: imports {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(f"{package}.law"):
                    found.append(f"{line}: imports {alias.name}")
        elif isinstance(node, ast.Name):
            if node.id in LAW_NAMES or node.id == "law":
                found.append(f"{line}: uses {node.id}")
            elif DECISION_WORDS.search(node.id):
                found.append(f"{line}: uses {node.id} (a legal decision)")
        elif isinstance(node, ast.Attribute):
            if node.attr in LAW_NAMES:
                found.append(f"{line}: uses .{node.attr}")
            elif DECISION_WORDS.search(node.attr):
                found.append(f"{line}: reads .{node.attr} (a legal decision)")
        elif isinstance(node, ast.keyword) and node.arg is not None and DECISION_WORDS.search(node.arg):
            found.append(f"{line}: sets {node.arg}= (a legal decision)")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and CITATION.search(node.value)
        ):
            found.append(f"{line}: cites the law: {node.value[:60]!r}")
    return found


@pytest.mark.parametrize("name", ORCHESTRATION)
def test_the_engine_makes_no_legal_decisions(name: str) -> None:
    assert problems((SRC / name).read_text(encoding="utf-8")) == []


def test_engine_py_is_under_700_lines() -> None:
    assert len((SRC / "engine.py").read_text(encoding="utf-8").splitlines()) < 700


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("from .law.addresses import ADDRESS_BASIS\n", "imports from the law"),
        ("from . import law\n", "imports from the law"),
        ("from delivery_sdk.law import address_rank\n", "imports from the law"),
        ("import delivery_sdk.law.service\n", "imports delivery_sdk.law.service"),
        ("SOURCE_RANK = {'contract': 1}\n", "uses SOURCE_RANK"),
        ("def f(c):\n    return sorted(c, key=candidate_order)\n", "uses candidate_order"),
        ("def f(t):\n    return t.served_basis\n", "reads .served_basis"),
        ("def f(e):\n    return e(basis='x')\n", "sets basis="),
        ("def f(t):\n    return t.deadline\n", "reads .deadline"),
        ("REASON = 'SPC Opinion 2017 No. 19 (contract)'\n", "cites the law"),
        ("REASON = '民事诉讼法第九十条'\n", "cites the law"),
    ],
)
def test_the_check_sees_each_kind_of_violation(snippet: str, expected: str) -> None:
    assert any(expected in p for p in problems(snippet)), problems(snippet)


def test_the_check_lets_docstrings_say_where_decisions_live() -> None:
    source = '"""Ranking is the law\'s (SPC Opinion 2017 No. 19)."""\n\ndef f() -> None:\n    """See CPL Art. 90."""\n'
    assert problems(source) == []
