"""Every CI step is a session here, so anything CI does can be run the same way locally."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]

PACKAGE = "{{ cookiecutter.package_name }}"
PYPROJECT = nox.project.load_toml(Path(__file__).parent / "pyproject.toml")


def install(session: nox.Session, *groups: str) -> None:
    """The project, editable, plus the named dependency groups from pyproject.toml."""
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", ".", *extra)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and this file."""
    install(session, "lint")
    session.run("mypy", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests and the small end-to-end test on a fresh tracking store."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def pipeline(session: nox.Session) -> None:
    """Ingest then train with the project's configuration, into the project's own store."""
    install(session)
    session.run(PACKAGE, "ingest", *session.posargs)
    session.run(PACKAGE, "train", *session.posargs)
    # The gate's verdict is the outcome, not a failure: 0 promoted, 1 rejected.
    session.run(PACKAGE, "promote", *session.posargs, success_codes=[0, 1])
    session.run(PACKAGE, "models", *session.posargs)


@nox.session
def promote(session: nox.Session) -> None:
    """The A/B gate alone; exits 0 promoted, 1 rejected, 2 error, so CI can act on it."""
    install(session)
    session.run(PACKAGE, "promote", *session.posargs)


@nox.session
def monitor(session: nox.Session) -> None:
    """Drift and performance check; exits 0 ok, 1 drift, 3 performance drop (writes the flag)."""
    install(session)
    session.run(PACKAGE, "monitor", *session.posargs)


@nox.session
def retrain(session: nox.Session) -> None:
    """The continual-learning loop: ingest, train, gate. Exits 0 promoted, 1 rejected, 2 error."""
    install(session)
    session.run(PACKAGE, "retrain", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """Run the service locally: `nox -s serve -- --port 8000`."""
    install(session)
    session.run(PACKAGE, "serve", *session.posargs)


@nox.session(name="demo-data")
def demo_data(session: nox.Session) -> None:
    """Write the demo rows and schema as files: `nox -s demo-data -- --out data/raw/events.csv`."""
    install(session)
    session.run(PACKAGE, "demo-data", *session.posargs)
