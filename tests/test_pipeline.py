"""Slow tests: render projects and run their own nox sessions (lint, typecheck, tests, pipeline).

They install the generated project's dependencies with uv (from PyPI, through uv's shared
cache) and take minutes. Run only these with `pytest -m slow`, skip them with `-m "not slow"`.

Every promise is tested once: the first option set runs the generated project's whole suite, its
lint and type check; the others run the generated tests that their answers can change
(`-m answers`: the generated project's tests/answers.py fails any test that reads a file the
answers shape without that marker; of those, the ones marked `task_family_only` run only where
the task differs from the first's: every project's test_families.py runs every model family),
their pipeline session, and lint and type check only when their rendered Python differs from the
first's. `--full-matrix` runs everything for every option set.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

import import_names
from helpers import SLOW_OPTION_SETS, OptionSet, nox_command, render, run_logged

pytestmark = pytest.mark.slow

# One `nox` invocation of a generated project; generous for a cold uv cache on 2 cores.
NOX_TIMEOUT = 30 * 60
FULL_SUITE = SLOW_OPTION_SETS[0]
# What lint (ruff) and typecheck (mypy) read: equal files, equal verdicts.
LINT_INPUTS = ("*.py", "*.pyi", "pyproject.toml")
# Option sets whose projects also run `nox -s spark` (the Spark engine against the pandas one):
# both tasks. It installs PySpark (about 480 MB, once per run through uv's cache) and needs Java.
SPARK_OPTION_SETS = {"default", "regression-lightgbm"}
# The option set whose project also runs `nox -s batch-predict -- ... --engine spark`: the session
# installs the spark extra into its own venv. Once: a venv and a Spark job take a minute or more.
BATCH_SESSION_OPTION_SET = "default"


def assert_committed(project: Path) -> None:
    """The copy task put the fresh project under git: one commit, nothing left out."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(project), *args], capture_output=True, text=True, check=True
        ).stdout

    log, status = git("log", "--oneline"), git("status", "--porcelain")
    assert len(log.splitlines()) == 1, log
    assert status == "", status


def lint_inputs(project: Path) -> dict[str, bytes]:
    """The files lint and typecheck read, by path relative to the project."""
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for pattern in LINT_INPUTS
        for path in project.rglob(pattern)
        if ".git" not in path.relative_to(project).parts
    }


def build(option: OptionSet, base: Path, *, full: bool) -> Path:
    """Render (the copy task commits it), write the data file if it reads one, run its sessions:
    all of them when `full`, else what the answers change (see the module's docstring)."""
    project = render(base / option.answers["project_slug"], option.data)
    assert_committed(project)
    log = base / "nox.log"
    answers = option.answers
    checks = ["lint", "typecheck"]
    if not full:
        first = render(base / "first-option-set" / "project", FULL_SUITE.data)
        if lint_inputs(project) == lint_inputs(first):
            checks = []  # the first option set lints and type-checks these very files
    if answers["data_source"] == "file":
        # The file source needs a data file and its schema: the project's CLI writes the demo
        # data in that form (`demo-data` session).
        run_logged(
            nox_command(
                "-s",
                "demo-data",
                "--",
                "--out",
                answers["data_path"],
                "--schema-out",
                answers["schema_path"],
            ),
            cwd=project,
            log=log,
            timeout=NOX_TIMEOUT,
        )
        assert (project / answers["data_path"]).is_file()
        assert (project / answers["schema_path"]).is_file()
    if checks:
        run_logged(nox_command("-s", *checks), cwd=project, log=log, timeout=NOX_TIMEOUT)
    # The full run checks that every test that reads a file the answers shape says so. A project
    # with the first's task leaves out what depends on nothing but the task and the model family:
    # the generated tests/test_families.py trains, serves, batch-scores and warm-starts every
    # family in every project, and this project's pipeline session runs its own family's loop.
    same_task = answers["task"] == FULL_SUITE.answers["task"]
    marks = "answers and not task_family_only" if same_task else "answers"
    selection = ["--check-answers"] if full else ["-m", marks]
    tests = nox_command("-s", "tests", "--", *selection)
    run_logged(tests, cwd=project, log=log, timeout=NOX_TIMEOUT)
    rest = ["pipeline", *(["spark"] if option.id in SPARK_OPTION_SETS else [])]
    run_logged(nox_command("-s", *rest), cwd=project, log=log, timeout=NOX_TIMEOUT)
    if option.id == BATCH_SESSION_OPTION_SET:
        score_with_the_batch_session(project, base / "scored", log)
    return project


def score_with_the_batch_session(project: Path, output: Path, log: Path) -> None:
    """`nox -s batch-predict -- <newest holdout> <output> --engine spark` scores with the champion
    on Spark, in a venv of its own that holds PySpark (the extra the session installs)."""
    snapshots = project / "data" / "snapshots"
    holdout = (
        snapshots / (snapshots / "LATEST").read_text(encoding="utf-8").strip() / "holdout.parquet"
    )
    args = [str(holdout), str(output), "--engine", "spark"]
    run_logged(
        nox_command("-s", "batch-predict", "--", *args), cwd=project, log=log, timeout=NOX_TIMEOUT
    )
    assert sorted(output.glob("*.parquet")), f"no scores under {output}"
    venv_python = project / ".nox" / "batch-predict" / "bin" / "python"
    has_pyspark = (
        "import importlib.util, sys; sys.exit(importlib.util.find_spec('pyspark') is None)"
    )
    assert subprocess.run([str(venv_python), "-c", has_pyspark], check=False).returncode == 0


@pytest.fixture(scope="session")
def built_project(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Callable[[OptionSet], Path]:
    """Build each option set's project once per session, on first use (failures too)."""
    cache: dict[str, Path | AssertionError] = {}
    full_matrix = bool(pytestconfig.getoption("full_matrix"))

    def get(option: OptionSet) -> Path:
        if option.id not in cache:
            base = tmp_path_factory.mktemp(f"project-{option.id}")
            try:
                cache[option.id] = build(option, base, full=full_matrix or option == FULL_SUITE)
            except AssertionError as error:
                cache[option.id] = error
        built = cache[option.id]
        if isinstance(built, AssertionError):
            raise built
        return built

    return get


def alias_versions(store: Path, model: str) -> dict[str, int]:
    """Registry aliases of `model` in an MLflow SQLite store, read without MLflow."""
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ?", (model,)
        ).fetchall()
    return {str(alias): int(version) for alias, version in rows}


def version_tags(store: Path, model: str, version: int) -> dict[str, str]:
    """Tags of one registered version, read without MLflow."""
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?",
            (model, version),
        ).fetchall()
    return {str(key): str(value) for key, value in rows}


def locations_mentioning(store: Path, text: str) -> list[str]:
    """`table.column` of every text value in the store that contains `text`.

    Tag tables are skipped: provenance tags such as `mlflow.source.name` record where a run was
    started, which stays true after a move; what must follow the folder are the locations.
    """
    hits = []
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in (t for t in tables if not t.endswith("tags")):
            for column in db.execute(f"PRAGMA table_info('{table}')").fetchall():
                name, kind = column[1], str(column[2]).upper()
                if "CHAR" not in kind and "TEXT" not in kind:
                    continue
                query = f'SELECT COUNT(*) FROM "{table}" WHERE instr("{name}", ?) > 0'  # noqa: S608
                if db.execute(query, (text,)).fetchone()[0]:
                    hits.append(f"{table}.{name}")
    return hits


@pytest.mark.parametrize("option", SLOW_OPTION_SETS, ids=[o.id for o in SLOW_OPTION_SETS])
def test_generated_project_sessions_pass(
    built_project: Callable[[OptionSet], Path], option: OptionSet
) -> None:
    project = built_project(option)
    store = project / "mlflow.db"
    assert store.is_file()
    aliases = alias_versions(store, option.answers["project_slug"])
    assert aliases.get("champion") == 1, aliases
    assert aliases.get("challenger") == 1, aliases
    tags = version_tags(store, option.answers["project_slug"], 1)
    assert tags.get("scoring") == "compiled", tags  # verified against scikit-learn at registration
    assert float(tags["compiled_max_abs_diff"]) <= 1e-5, tags
    snapshots = project / "data" / "snapshots"
    assert sorted(snapshots.rglob("*.parquet")), f"no Parquet snapshot under {snapshots}"
    if option == FULL_SUITE:
        assert_import_names_listed(project, option.answers["package_name"])


def assert_import_names_listed(project: Path, package: str) -> None:
    """Every module the project's venvs can import is a name `package_name` refuses. Between
    them, the sessions of the full run install every extra and every dependency group."""
    pythons = sorted(project.glob(".nox/*/bin/python"))
    sessions = {python.parent.parent.name for python in pythons}
    assert {"typecheck", "tests", "spark"} <= sessions, sessions
    missing = import_names.installed(pythons, package) - import_names.listed()
    hint = "regenerate template/import-names.jinja (nox -s import-names)"
    assert not missing, f"{hint}: {sorted(missing)}"


# Parametrized so that `-k <option id>` (one CI job per option set) selects it too.
@pytest.mark.parametrize("option", SLOW_OPTION_SETS[:1], ids=[SLOW_OPTION_SETS[0].id])
def test_project_folder_can_move(option: OptionSet, tmp_path: Path) -> None:
    """A project moved after its first pipeline run trains again from its new place.

    Its own render and pipeline run, not the option set's built project: pytest-xdist may run
    this test in another worker than the one that built that project."""
    old = render(tmp_path / "first" / option.answers["project_slug"], option.data)
    log = tmp_path / "nox.log"
    run_logged(nox_command("-s", "pipeline"), cwd=old, log=log, timeout=NOX_TIMEOUT)
    new = tmp_path / "moved" / old.name
    new.parent.mkdir()
    shutil.move(old, new)
    assert not old.exists()
    run_logged(nox_command("-s", "pipeline"), cwd=new, log=log, timeout=NOX_TIMEOUT)
    store = new / "mlflow.db"
    aliases = alias_versions(store, option.answers["project_slug"])
    assert aliases.get("champion", 0) >= 1, aliases
    assert aliases.get("challenger", 0) >= 2, "the second run registers a new challenger"
    stale = locations_mentioning(store, str(old))
    assert not stale, f"the store still points at the old folder in {stale}"
    assert locations_mentioning(store, str(new)), "artifact locations are inside the project"
