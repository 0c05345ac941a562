"""Every CI step is a session here, so anything CI does can be run the same way locally."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nox

sys.path.insert(0, str(Path(__file__).parent / "src"))
from {{ cookiecutter.package_name }}.exit_codes import ExitCode  # standard library only

# The outcomes a session treats as results, not failures (the codes are in exit_codes.py).
DECIDED = [ExitCode.OK, ExitCode.NEGATIVE]

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "conventions"]

PACKAGE = "{{ cookiecutter.package_name }}"
PYPROJECT = nox.project.load_toml(Path(__file__).parent / "pyproject.toml")
REPORTS = Path("reports")


def install(session: nox.Session, *groups: str) -> None:
    """The project, editable, plus the named dependency groups from pyproject.toml."""
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", ".", *extra)


def github(name: str, text: str) -> None:
    """Append to a GitHub Actions file (step outputs, job summary) when running in Actions."""
    target = os.environ.get(name)
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text.rstrip("\n") + "\n")


def newest(pattern: str) -> Path | None:
    return max((REPORTS / "promotion").glob(pattern), default=None)


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
    """Unit tests and the end-to-end tests on fresh tracking stores."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def conventions(session: nox.Session) -> None:
    """The team's conventions: answers file, required docs, policy floor, workflows, file sizes."""
    install(session)
    session.run(PACKAGE, "conventions")


@nox.session
def pipeline(session: nox.Session) -> None:
    """Ingest, train and gate with the project's configuration, into the project's own store."""
    install(session)
    session.run(PACKAGE, "ingest", *session.posargs)
    session.run(PACKAGE, "train", *session.posargs)
    # The gate's verdict is an outcome, not a failure: promoted or rejected.
    session.run(PACKAGE, "promote", *session.posargs, success_codes=DECIDED)
    session.run(PACKAGE, "models", *session.posargs)


@nox.session
def promote(session: nox.Session) -> None:
    """The A/B gate alone; exits 0 promoted, 1 rejected, 2 error, so CI can act on it."""
    install(session)
    session.run(PACKAGE, "promote", *session.posargs)


@nox.session
def monitor(session: nox.Session) -> None:
    """Drift and performance check. Drift is a finding, not a failure: see reports/retrain.json."""
    install(session)
    session.run(PACKAGE, "monitor", *session.posargs, success_codes=[*DECIDED, ExitCode.ATTENTION])
    flag: dict[str, Any] = json.loads((REPORTS / "retrain.json").read_text(encoding="utf-8"))
    session.log(f"monitor: {flag['status']}; retrain: {flag['retrain']}")
    github("GITHUB_OUTPUT", f"retrain={str(flag['retrain']).lower()}")


@nox.session
def retrain(session: nox.Session) -> None:
    """Ingest, train, gate. `-- --dry-run`: the gate moves no alias (the new version is still
    registered as challenger). A rejection is an outcome, not a failure."""
    install(session)
    session.run(PACKAGE, "retrain", *session.posargs, success_codes=DECIDED)
    record = newest("*.json")
    outcome = json.loads(record.read_text(encoding="utf-8"))["outcome"] if record else "error"
    github("GITHUB_OUTPUT", f"decision={outcome}")
    if summary := newest("*.md"):
        github("GITHUB_STEP_SUMMARY", summary.read_text(encoding="utf-8"))


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


@nox.session(name="template-check")
def template_check(session: nox.Session) -> None:
    """Fails (copier's exit code 2) when the template has a newer version than this project."""
    session.install("copier>=9.4")
    session.run("copier", "check-update", "--quiet")


@nox.session(name="template-update")
def template_update(session: nox.Session) -> None:
    """Apply the newest template version; in GitHub Actions, push a branch and open a PR."""
    session.install("copier>=9.4")
    status = session.run("copier", "check-update", "--output-format", "json", silent=True)
    if not json.loads(str(status)).get("update_available"):
        session.log("the project is on the newest template version")
        return
    session.run("copier", "update", "--defaults", "--trust", "--conflict", "inline")
    if not os.environ.get("GITHUB_ACTIONS"):
        session.log("review `git diff`, resolve any conflict markers, then commit")
        return
    git = [
        "git",
        "-c",
        "user.name=template-update",
        "-c",
        "user.email=template-update@users.noreply.github.com",
    ]
    session.run(*git, "switch", "-C", "template-update", external=True)
    session.run(*git, "add", "--all", external=True)  # copier update may add new files
    session.run(*git, "commit", "--quiet", "-m", "Update from the template", external=True)
    token, repository = os.environ["GH_TOKEN"], os.environ["GITHUB_REPOSITORY"]
    remote = f"https://x-access-token:{token}@github.com/{repository}.git"
    session.run("git", "push", "--force", remote, "template-update", external=True, silent=True)
    session.run(
        "gh",
        "pr",
        "create",
        "--fill",
        "--head",
        "template-update",
        external=True,
        success_codes=[0, 1],
    )
