"""Sessions: lint, typecheck, tests (core), plugins (each plugins/* package against the core), docs (the site, built
strictly, and the docs tests), dist (the packaging checks), bench, demo."""

from __future__ import annotations

import pathlib

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "plugins", "docs", "dist"]
nox.options.default_venv_backend = "venv"
ROOT = pathlib.Path(__file__).parent
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]", *[f"-e{p}" for p in PLUGINS])
    session.run("mypy")
    for plugin in PLUGINS:
        session.run("mypy", "--strict", str(plugin / "src"))


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]", *[f"-e{p}" for p in PLUGINS])
    session.run("python", "-m", "pytest", "tests", *session.posargs)


@nox.session
def plugins(session: nox.Session) -> None:
    """Install each plugin package against the core and run its own tests."""
    session.install("-e", ".[test]")
    for plugin in PLUGINS:
        session.install("-e", str(plugin))
        session.run("python", "-m", "pytest", str(plugin / "tests"), *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site (mkdocs.yml: MkDocs with the API reference from docstrings), strictly, then the docs tests."""
    session.install("-e", ".[test,docs]", *[f"-e{p}" for p in PLUGINS])
    session.run("python", "scripts/gen_lifecycle_diagram.py", "--check")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(pathlib.Path(session.create_tmp()) / "site"))
    session.run("python", "-m", "pytest", "tests/test_docs.py", "-W", "error")


@nox.session
def dist(session: nox.Session) -> None:
    """Build and check the sdist and wheel of the core and of every plugin; run the demo from the core wheel."""
    session.install("build>=1.2", "twine>=5", "hatchling>=1.25")
    session.run("bash", "scripts/check-dist.sh", env={"PYTHON": session.bin + "/python"}, external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, each beside its peer or raw limit; JSON in benchmarks/results/."""
    session.install("-e", ".[dev]", *[f"-e{p}" for p in PLUGINS])
    session.run("python", "benchmarks/bench_engine.py", "--memory", *session.posargs)
    session.run("python", "benchmarks/bench_import.py")
    session.run("python", "benchmarks/bench_merkle.py")
    session.run("python", "benchmarks/bench_supervision.py")
    session.run("python", "benchmarks/bench_print.py")
    session.run("python", "benchmarks/bench_sms.py")
    session.run("python", "benchmarks/bench_pg_store.py")
    session.run("python", "benchmarks/bench_postgres.py")
    session.install("cpca")  # the peer of the address resolver; a benchmark-only dependency
    session.run("python", "benchmarks/bench_resolver.py")


@nox.session
def demo(session: nox.Session) -> None:
    session.install("-e", ".")
    tmp = session.create_tmp()
    session.run("delivery-sdk", "demo", "--store", f"{tmp}/demo.sqlite3", "--no-progress", *session.posargs)
