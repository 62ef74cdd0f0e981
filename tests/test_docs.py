"""The documentation, kept honest by tests (in the manner of datasette's ``tests/test_docs.py``).

- every hook in ``hookspecs.py`` (every function whose name starts with ``delivery_``) has a section in
  ``docs/hooks.md`` that names its arguments and says whether it is firstresult, and no section documents a
  hook that does not exist;
- every hook has a test of its own: a ``test_*`` function somewhere under ``tests/`` whose name contains
  the hook's name without the ``delivery_`` prefix (``test_register_channels_...`` for
  ``delivery_register_channels``);
- the lifecycle diagram in ``docs/concepts.md`` is exactly :func:`delivery_sdk.lifecycle.mermaid`, and the
  tables there list every state, event type and ingest outcome; the user guide names every
  ``PolicyConfig`` and ``EngineConfig`` field;
- the ``python`` blocks of the executable pages run, in order, as one test module (so their ``test_``
  functions run with the real pytest plugin's fixtures); ``text``/``toml``/``console`` blocks are not run;
- relative links between the pages resolve, anchors included.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from delivery_sdk import EngineConfig, IngestOutcome, PolicyConfig, TaskState, hookspecs
from delivery_sdk.events import EVENT_TYPES
from delivery_sdk.lifecycle import mermaid
from delivery_sdk.plugins import ENTRY_POINT_GROUP

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
# pytester's in-process runs drop the modules they imported afterwards; cryptography's Rust bindings do not
# survive being imported twice in one process, so import what docs/evidence.md uses before any such run.
import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: E402
import cryptography.hazmat.primitives.serialization  # noqa: E402, F401

# Likewise httpx and the plugin kit, which loads its modules on first use: a kit module first loaded inside
# one run and dropped after it would keep the classes of an httpx the next run imports anew.
import httpx  # noqa: E402, F401

import delivery_sdk.plugin_kit as _kit  # noqa: E402

for _name in _kit.__all__:
    getattr(_kit, _name)

EXECUTABLE = [
    "index.md",
    "user-guide.md",
    "hooks.md",
    "channel-plugin.md",
    "channel-kinds.md",
    "testing.md",
    "evidence.md",
    "proof-of-service.md",
    "deploy.md",
    "access.md",
]
BEGIN, END = "<!-- lifecycle:begin -->", "<!-- lifecycle:end -->"
# The inner pytest runs need no cache, and hypothesis's plugin alone would triple their cost.
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q")


def _hooks() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if name.startswith("delivery_") and inspect.isfunction(fn) and fn.__module__ == hookspecs.__name__
    }


HOOKS = sorted(_hooks())


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _hook_sections() -> dict[str, str]:
    """``## `delivery_x` `` headings of docs/hooks.md and the text under each, up to the next heading/rule."""
    text = _read("hooks.md")
    sections: dict[str, str] = {}
    for match in re.finditer(r"^## `(delivery_\w+)`\n(.*?)(?=^## |^---\s*$|\Z)", text, flags=re.M | re.S):
        sections[match.group(1)] = match.group(2)
    return sections


def test_hookspecs_has_hooks() -> None:
    assert len(HOOKS) >= 7
    assert "delivery_register_channels" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_hooks_md(hook: str) -> None:
    sections = _hook_sections()
    assert hook in sections, f"docs/hooks.md needs a section headed '## `{hook}`'"
    section = sections[hook]
    fn = _hooks()[hook]
    for argument in inspect.signature(fn).parameters:
        assert re.search(rf"\b{argument}\b", section), f"the {hook} section does not name its argument {argument!r}"
    assert f"def {hook}(" in section, f"the {hook} section needs an example implementation"
    spec = getattr(fn, f"{hookspecs.PROJECT}_spec")
    if spec.get("firstresult"):
        assert "firstresult" in section, f"{hook} is firstresult: its section must say so"
    else:
        assert "firstresult" not in section, f"{hook} is not firstresult, but its section says it is"


def test_hooks_md_documents_no_hook_that_does_not_exist() -> None:
    unknown = set(_hook_sections()) - set(HOOKS)
    assert not unknown, f"docs/hooks.md documents hooks that hookspecs.py does not have: {sorted(unknown)}"


@functools.cache
def _test_function_names() -> frozenset[str]:
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        if path.name == Path(__file__).name:
            continue  # this file's parametrized tests name every hook; they do not exercise one
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names.update(
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        )
    return frozenset(names)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_of_its_own(hook: str) -> None:
    short = hook.removeprefix("delivery_")
    tests = sorted(name for name in _test_function_names() if short in name)
    assert tests, f"write a test named test_{short}_... that exercises {hook} (tests/test_hooks.py)"


def test_environment_switches_and_entry_point_group_are_documented() -> None:
    text = _read("hooks.md")
    plugins_source = (ROOT / "src" / "delivery_sdk" / "plugins.py").read_text(encoding="utf-8")
    for switch in ("DELIVERY_SDK_PLUGINS", "DELIVERY_SDK_BLOCK_PLUGINS", "DELIVERY_SDK_TRACE_PLUGINS"):
        assert f'"{switch}"' in plugins_source, f"{switch} is documented but plugins.py does not read it"
        assert f"`{switch}" in text, f"docs/hooks.md does not document {switch}"
    assert ENTRY_POINT_GROUP == "delivery_sdk"
    assert "[project.entry-points.delivery_sdk]" in text
    assert "check_pending()" in text


# ---------------------------------------------------------------------------------------------------
# concepts.md and user-guide.md
# ---------------------------------------------------------------------------------------------------


def _diagram_block(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    match = re.fullmatch(r"\s*```mermaid\n(.*?)```\s*", text[start:end], flags=re.S)
    assert match, f"between {BEGIN} and {END} there must be exactly one ```mermaid block"
    return match.group(1)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_lifecycle_diagram", ROOT / "scripts" / "gen_lifecycle_diagram.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lifecycle_diagram_in_concepts_is_generated_from_the_table() -> None:
    text = _read("concepts.md")
    assert _diagram_block(text) == mermaid(), "stale diagram: run python scripts/gen_lifecycle_diagram.py"
    generator = _generator()
    assert generator.render(text, mermaid()) == text
    assert generator.main(["--check", str(DOCS / "concepts.md")]) == 0


def test_lifecycle_generator_rewrites_a_stale_diagram(tmp_path: Path) -> None:
    stale = tmp_path / "concepts.md"
    stale.write_text(
        f"# x\n\n{BEGIN}\n```mermaid\nstateDiagram-v2\n    old --> older\n```\n{END}\n\nrest\n", encoding="utf-8"
    )
    generator = _generator()
    assert generator.main(["--check", str(stale)]) == 1
    assert generator.main([str(stale)]) == 0
    text = stale.read_text(encoding="utf-8")
    assert _diagram_block(text) == mermaid()
    assert text.startswith("# x\n\n")
    assert text.endswith(f"{END}\n\nrest\n")
    assert generator.main(["--check", str(stale)]) == 0


def test_concepts_tables_list_every_state_event_type_and_ingest_outcome() -> None:
    text = _read("concepts.md")
    for state in TaskState:
        assert f"| `{state.value}` |" in text, f"the state table in concepts.md lacks {state.value!r}"
    for event in EVENT_TYPES:
        assert f"| `{event.TYPE}` | `{event.__name__}` |" in text, f"the event table lacks {event.TYPE!r}"
    for outcome in IngestOutcome:
        assert f"| `{outcome.name}` |" in text, f"the ingest table lacks {outcome.name}"
    for rule in ("4290", "429000", "first four digits"):
        assert rule in text


@pytest.mark.parametrize("config", [PolicyConfig, EngineConfig])
def test_user_guide_names_every_config_field(config: type) -> None:
    text = _read("user-guide.md")
    missing = [f.name for f in attrs.fields(config) if f"| `{f.name}` |" not in text]
    assert not missing, f"docs/user-guide.md: the {config.__name__} table lacks {missing}"


def test_every_test_the_threat_model_names_exists() -> None:
    """docs/security.md proves each defence by naming its test: a renamed or deleted test fails here."""
    text = _read("security.md")
    named = re.findall(r"`((?:tests|plugins)/[\w./-]+\.py)::(test_\w+)`", text)
    assert len(named) >= 30, "docs/security.md names fewer tests than it has defences"
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (ROOT / path).is_file()
        or not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(encoding="utf-8"), flags=re.M)
    ]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
    # the one class left undetected is said
    assert "rollback" in text
    assert "trusted checkpoint" in text


def test_every_rule_in_the_legal_reference_names_tests_that_exist() -> None:
    """docs/legal-reference.md's rules table: each rule names the tests that pin it (issue 16, part 6)."""
    text = _read("legal-reference.md")
    start = text.index("| rule | article | code | tests |")
    rows = text[start:].split("\n\n", 1)[0].splitlines()[2:]
    assert len(rows) >= 30
    missing = []
    for row in rows:
        cell = row.rstrip(" |").rsplit("|", 1)[1]
        named = re.findall(r"(?:(test_\w+\.py))?::(test_\w+)", cell)
        assert named, f"a rule names no test: {row[:80]}"
        path = None
        for file, name in named:
            path = file or path
            assert path is not None
            source = (ROOT / "tests" / path).read_text(encoding="utf-8")
            if not re.search(rf"^(async )?def {name}\(", source, flags=re.M):
                missing.append(f"{path}::{name}")
    assert not missing, f"docs/legal-reference.md names tests that do not exist: {missing}"


def test_user_guide_describes_the_cli_commands() -> None:
    text = _read("user-guide.md")
    for command in (
        "delivery-sdk demo [--tasks N] [--seed S] [--store PATH]",
        "delivery-sdk status TASK_ID --store PATH",
        "delivery-sdk tasks --case CASE_NUMBER --store PATH",
        "delivery-sdk calendar show [YEAR]",
        "delivery-sdk calendar import NOTICE.toml",
    ):
        assert command in text


# ---------------------------------------------------------------------------------------------------
# Executable pages
# ---------------------------------------------------------------------------------------------------


def _python_module(text: str) -> str:
    """The ```python blocks of a page as one module, each block on its own lines of the page (so a
    traceback's line numbers are the page's)."""
    lines = text.splitlines()
    out = [""] * len(lines)
    inside = False
    for number, line in enumerate(lines):
        if not inside and line.strip() == "```python":
            inside = True
        elif inside and line.strip() == "```":
            inside = False
        elif inside:
            out[number] = line
    assert not inside, "an unclosed ```python block"
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("page", EXECUTABLE)
def test_python_blocks_run(page: str, pytester: pytest.Pytester) -> None:
    source = _python_module(_read(page))
    expected = len(re.findall(r"^def (test_\w+)\(", source, flags=re.M))
    module = source + "\n\ndef test_the_page_ran_top_to_bottom() -> None:\n    pass\n"
    pytester.makepyfile(**{f"test_doc_{page.removesuffix('.md').replace('-', '_')}": module})
    result = pytester.runpytest_inprocess(*INNER, "-W", "error")
    assert result.ret == 0, f"docs/{page}: a python block failed (line numbers are the page's)\n" + "\n".join(
        result.outlines
    )
    result.assert_outcomes(passed=expected + 1)


def test_testing_page_unused_outcome_check_fails_the_test(pytester: pytest.Pytester) -> None:
    """What docs/testing.md promises: ``delivery_harness`` fails a test that leaves scripted outcomes."""
    pytester.makepyfile(
        test_forgot="""
        from delivery_sdk.testing import Outcome

        def test_forgot_to_submit(delivery_harness):
            delivery_harness.sms.enqueue(Outcome.delivered())
        """
    )
    result = pytester.runpytest_inprocess(*INNER)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_forgot_to_submit*"])
    result.stdout.fnmatch_lines(["*scripted outcomes were never used: {'fake-sms': [Outcome(kind='delivered'*"])


def test_pages_are_linked_from_the_index() -> None:
    index = _read("index.md")
    for page in sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md"):
        assert f"({page})" in index, f"docs/index.md does not link {page}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # '#' in code is no heading
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_resolve(page: str) -> None:
    path = DOCS / page
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"docs/{page}: broken link {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"docs/{page}: no heading for the anchor in {target}"
