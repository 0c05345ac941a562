"""Shared constants and helpers for the template's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from copier import run_copy

REPO_ROOT = Path(__file__).resolve().parent.parent
COPIER_YML = REPO_ROOT / "copier.yml"
TEMPLATE_DIR = REPO_ROOT / "template" / "{{cookiecutter.project_slug}}"
ANSWERS_FILE = ".copier-answers.yml"

# The answers a project rendered with `defaults=True` and no data records.
DEFAULT_ANSWERS: dict[str, str] = {
    "project_name": "Demo ML Service",
    "project_slug": "demo-ml-service",
    "package_name": "demo_ml_service",
    "description": (
        "A machine-learning service that trains, gates, serves and monitors its own models."
    ),
    "author_name": "ML Platform Team",
    "author_email": "ml-platform@example.com",
    "python_version": "3.11",
    "task": "binary_classification",
    "model_family": "hist_gradient_boosting",
    "data_source": "demo",
}
# Only asked (and recorded) when data_source == "file".
FILE_SOURCE_DEFAULTS: dict[str, str] = {
    "data_path": "data/raw/events.csv",
    "schema_path": "configs/schema.yaml",
}


@dataclass(frozen=True)
class OptionSet:
    """Answers passed to copier (`data`) and the answers the project must then record."""

    id: str
    data: Mapping[str, str]
    # Derived answers (e.g. the slug computed from a custom project name).
    derived: Mapping[str, str] = field(default_factory=dict)

    @property
    def answers(self) -> dict[str, str]:
        """Every recorded answer: the defaults, overridden by data and derived values."""
        answers = {**DEFAULT_ANSWERS, **self.data, **self.derived}
        if answers["data_source"] == "file":
            answers = {**FILE_SOURCE_DEFAULTS, **answers}
        return answers


# Valid answers hostile to the files they land in: TOML, YAML and Python quoting, YAML indicators
# at the start of a value, comment signs, backslashes that would become escapes, characters ruff
# calls ambiguous, an emoji outside the Basic Multilingual Plane (a JSON escape of it is a
# surrogate pair), spaces at both ends. tests/test_hostile_answers.py renders them once, and
# tests/test_cookiecutter.py with both tools.
HOSTILE: dict[str, str] = {
    "project_name": " - \"Acme\" \\ #1: {'R&D'} *all* !x %y @z ünïcödé \u2013 😀 ",
    "project_slug": "acme-rnd",
    "description": (
        "& O\u2019Brien\u2019s *anchor !tag %directive @at `tick` \\b \\n ''' \"\"\" "
        "# not a comment: "
    ),
    "author_name": "'Zoë' \"Z\" O\\'Brien [team] {x} | > ? & *",
    "author_email": "o'brien+ml&co#1!%*/=?^_`|~@acme-rnd.example.org",
    "data_source": "file",
    "data_path": "data/- raw #1: {x} 'q' \"d\" & *a* \\ é 😀.csv",
    "schema_path": "configs/? schema: 'x' #2 [y] ü.yaml",
}

# Rendered by the fast tests: every choice of every question appears at least once
# (tests/test_copier_config.py checks it).
OPTION_SETS: list[OptionSet] = [
    OptionSet("default", {}),
    OptionSet(
        "regression-linear-py312",
        {"task": "regression", "model_family": "linear", "python_version": "3.12"},
    ),
    OptionSet(
        "file-csv-lightgbm-py313",
        {
            "data_source": "file",
            "data_path": "data/raw/events.csv",
            "python_version": "3.13",
            "model_family": "lightgbm",
        },
    ),
    OptionSet(
        "file-parquet-linear",
        {
            "data_source": "file",
            "data_path": "data/raw/events.parquet",
            "schema_path": "configs/events-schema.yml",
            "task": "binary_classification",
            "model_family": "linear",
        },
    ),
    OptionSet(
        "custom-name",
        {
            "project_name": "Acme Churn & Risk: Scorer (v2)!",
            "description": "Scores churn risk for Acme's <premium> customers & partners.",
            "author_name": "Zoë O'Brien",
            "author_email": "zoe.obrien+ml@acme.example.org",
            "model_family": "xgboost",
        },
        derived={
            "project_slug": "acme-churn-risk-scorer-v2",
            "package_name": "acme_churn_risk_scorer_v2",
        },
    ),
]

# Rendered by the slow tests, whose generated projects run their own nox sessions for real: the
# first runs the generated project's whole suite, lint and type check; the others run only what
# their answers change (`nox -s tests -- -m answers`, and lint and type check when their Python
# differs), unless pytest is given --full-matrix (the template's GitHub workflow does).
SLOW_OPTION_SETS: list[OptionSet] = [
    OptionSet("default", {}),
    OptionSet(
        "regression-lightgbm",
        {"task": "regression", "model_family": "lightgbm", "python_version": "3.11"},
    ),
    OptionSet(
        "file-csv-xgboost",
        {
            "data_source": "file",
            "data_path": "data/raw/events.csv",
            "python_version": "3.11",
            "model_family": "xgboost",
        },
    ),
]


def load_copier_yml() -> dict[str, Any]:
    """The template's copier.yml as a mapping."""
    with COPIER_YML.open(encoding="utf-8") as fh:
        config: dict[str, Any] = yaml.safe_load(fh)
    return config


def questions() -> dict[str, dict[str, Any]]:
    """The questions of copier.yml (settings start with "_"), including computed ones."""
    return {
        name: spec
        for name, spec in load_copier_yml().items()
        if not name.startswith("_") and isinstance(spec, dict)
    }


def render(dst: Path, data: Mapping[str, str]) -> Path:
    """Render the template's working tree (including uncommitted changes) into `dst`.

    `vcs_ref="HEAD"` is deliberate: copier copies a dirty local checkout only when the ref is
    "HEAD", while `vcs_ref=None` checks out the latest PEP 440 tag, if there is one.
    """
    run_copy(
        src_path=str(REPO_ROOT),
        dst_path=dst,
        data=dict(data),
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    return dst


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under `root`, skipping the git directory and tool caches."""
    skip = {".git", ".nox", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not skip.intersection(path.relative_to(root).parts):
            yield path


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    raw = path.read_bytes()
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def iter_texts(root: Path) -> Iterator[tuple[Path, str]]:
    """(path relative to `root`, text) of every text file under `root`; binary files skipped."""
    for path in iter_files(root):
        text = read_text(path)
        if text is not None:
            yield path.relative_to(root), text


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Environment for nested nox/uv runs.

    The machine sets PYTHONDONTWRITEBYTECODE=1, which makes imports in fresh uv venvs 2-3x
    slower; an empty value turns it off. Variables of an enclosing nox session are dropped so
    that the generated project's nox starts clean. uv keeps its default (shared) cache.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "VIRTUAL_ENV" and not key.startswith("NOX")
    }
    env["PYTHONDONTWRITEBYTECODE"] = ""
    env.update(overrides)
    return env


def run_logged(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path,
    log: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a command, appending its output to `log`; fail with the log's tail on error.

    `env` adds to (or overrides) the environment of `subprocess_env()`.
    """
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(map(str, args))}\n")
        fh.flush()
        result = subprocess.run(
            [os.fspath(arg) for arg in args],
            cwd=cwd,
            env=subprocess_env(**(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-80:])
        msg = f"{' '.join(map(str, args))} exited with {result.returncode}; log tail:\n{tail}"
        raise AssertionError(msg)


def missing_program(reason: str) -> NoReturn:
    """A program a test needs is not installed: skip with the reason, or, under `CI=true`, fail,
    so that a CI machine that lost a package cannot pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def nox_command(*args: str) -> list[str]:
    """`python -m nox` with the interpreter running the tests (it has nox and uv)."""
    return [sys.executable, "-m", "nox", *args]
