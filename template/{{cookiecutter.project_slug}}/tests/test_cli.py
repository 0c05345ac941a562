from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import click
import pandas as pd
import pytest
import typer
from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
from typer.testing import CliRunner, Result

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project, load_project
from {{ cookiecutter.package_name }}.data import REASON, generate_demo, ingest, write_table
from {{ cookiecutter.package_name }}.exit_codes import OUTCOMES, ExitCode
from {{ cookiecutter.package_name }}.store import CHAMPION, Store

from .conftest import first_champion, write_project

runner = CliRunner()


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("ingest", "train", "models", "demo-data"):
        assert command in done.stdout


def test_a_bad_config_exits_2_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "configs" / "project.yaml"
    config.parent.mkdir()
    config.write_text("data: {}\nsurprise: 1\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", "--config", str(config)])
    assert result.exit_code == 2
    assert "surprise: unknown key" in result.output


@pytest.mark.answers
def test_demo_data_writes_rows_and_schema(tmp_path: Path) -> None:
    out, schema = tmp_path / "raw" / "events.csv", tmp_path / "schema.yaml"
    result = runner.invoke(
        app, ["demo-data", "--out", str(out), "--schema-out", str(schema), "--rows", "500"]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 500
    assert "role: target" in schema.read_text(encoding="utf-8")


@pytest.mark.answers
def test_ingest_train_models_from_the_command_line(project: Project) -> None:
    """Results on stdout, where `models | grep champion` reads them; progress and warnings on
    stderr, where a pipe does not."""
    config = str(project.root / "configs" / "project.yaml")
    ingested = runner.invoke(app, ["ingest", "-c", config])
    assert ingested.exit_code == 0, ingested.output
    assert "snapshot" in ingested.stdout
    assert "rows quarantined" in ingested.stderr
    assert "rows quarantined" not in ingested.stdout
    quarantine = next((project.quarantine_dir).glob("*.parquet"))
    assert pd.read_parquet(quarantine)[REASON].str.len().gt(0).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trained = runner.invoke(app, ["train", "-c", config])
    assert trained.exit_code == 0, trained.output
    # MLflow's warning that a local path is two kinds of source, once per split, says nothing.
    assert not [w for w in caught if "interpreted in multiple ways" in str(w.message)]
    assert "as challenger" in trained.stdout
    assert "promoted: there is no champion yet" in " ".join(trained.stdout.split())
    assert "done training" in trained.stderr
    assert "done training" not in trained.stdout
    listed = runner.invoke(app, ["models", "-c", config])
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.stdout
    snapshot = (project.snapshots_dir / "LATEST").read_text(encoding="utf-8").strip()
    assert snapshot in listed.stdout  # whole: a table in a pipe is not cut to 80 columns


@pytest.mark.answers
def test_mlflow_prints_no_run_links_into_the_results(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a tracking server MLflow writes "View run ... at <url>" to stdout after every run,
    into the middle of the results (and of the one JSON document): the CLI turns that off."""
    monkeypatch.delenv(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name, raising=False)
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    result = runner.invoke(app, ["models", "-c", str(project.config_path)])
    assert result.exit_code == 0, result.output
    assert os.environ[MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name] == "true"
    # Nor its housekeeping ("Creating initial MLflow database tables...") into the diagnostics.
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"


# Where each command does its work: the test breaks it there, after the command has started.
BREAK_POINTS = {
    "ingest": "{{ cookiecutter.package_name }}.data.ingest",
    "train": "{{ cookiecutter.package_name }}.train.train",
    "promote": "{{ cookiecutter.package_name }}.promote.promote",
    "rollback": "{{ cookiecutter.package_name }}.promote.rollback",
    "ab-report": "{{ cookiecutter.package_name }}.promote.ab_report",
    "serve": "{{ cookiecutter.package_name }}.serve.run_server",
    "batch-predict": "{{ cookiecutter.package_name }}.serve.batch_predict",
    "replay": "{{ cookiecutter.package_name }}.serve.replay",
    "monitor": "{{ cookiecutter.package_name }}.monitor.monitor",
    "retrain": "{{ cookiecutter.package_name }}.loop.retrain",
    "report": "{{ cookiecutter.package_name }}.report.write_report",
    "conventions": "{{ cookiecutter.package_name }}.conventions.check",
    "models": "{{ cookiecutter.package_name }}.store.read_versions",
    "backends": "{{ cookiecutter.package_name }}.backends.backends",
    "demo-data": "{{ cookiecutter.package_name }}.data.generate_demo",
    "ui": "{{ cookiecutter.package_name }}.cli.subprocess.call",
    "schema": "{{ cookiecutter.package_name }}.data.inference.infer_file",  # the sub-app; its command: infer
}
ARGUMENTS = {
    "batch-predict": ["in.csv", "out.parquet"],
    "replay": ["rows.csv"],
    "demo-data": ["--out", "rows.csv"],
    "conventions": [],
    "schema": ["infer", "rows.csv", "--target", "churned", "--timestamp", "event_time"],
}


def _broken(*_: object, **__: object) -> None:
    raise RuntimeError("the disk is on fire\nsecond line")


def test_every_command_is_covered_below() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(commands) == set(BREAK_POINTS)
    # A sub-app is broken through its one command, named first in its arguments: a second
    # command in it needs its own entry here.
    for name, command in commands.items():
        if isinstance(command, click.Group):
            assert set(command.commands) == {ARGUMENTS[name][0]}, name


@pytest.mark.answers
@pytest.mark.parametrize("command", sorted(BREAK_POINTS))
def test_an_unexpected_failure_in_any_command_exits_2_in_one_line(
    command: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BREAK_POINTS[command], _broken)
    monkeypatch.chdir(project.root)
    result = runner.invoke(app, [command, *ARGUMENTS.get(command, [])])
    assert result.exit_code == ExitCode.ERROR, result.output
    message = " ".join(result.output.split())
    assert "unexpected RuntimeError: the disk is on fire (run with --verbose" in message
    assert "Traceback" not in result.output
    assert "second line" not in result.output
    assert not result.stdout  # an error is a diagnostic: a pipe reading the results gets none

    verbose = runner.invoke(app, ["--verbose", command, *ARGUMENTS.get(command, [])])
    assert verbose.exit_code == 2
    assert "Traceback" in verbose.output


@pytest.mark.answers
def test_an_expected_failure_names_its_cause_without_unexpected(project: Project) -> None:
    result = runner.invoke(app, ["models", "-c", str(project.root / "missing.yaml")])
    assert result.exit_code == 2
    message = "".join(result.output.split())
    assert "missing.yaml:nosuchfile" in message
    assert "unexpected" not in message


def test_an_error_message_keeps_its_square_brackets_and_masks_secrets(tmp_path: Path) -> None:
    """Console markup would eat `[spark]` (as in `pip install -e '.[spark]'`), and an error
    quotes what it failed on, secrets too."""
    planted = "hunter2-Xy"
    missing = tmp_path / "extra[spark]" / f"password={planted}" / "project.yaml"
    result = runner.invoke(app, ["models", "-c", str(missing)])
    assert result.exit_code == ExitCode.ERROR, result.output
    message = "".join(result.output.split())
    assert "extra[spark]/password=***" in message
    assert planted not in result.output


@pytest.mark.answers
@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is not None,
    reason="PySpark is installed: the hint is for a venv without the spark extra",
)
def test_the_spark_engine_without_its_extra_names_the_session_and_the_pip_command(
    project: Project, tmp_path: Path
) -> None:
    """Here, as in every venv but the `spark` and `batch-predict` sessions', PySpark is absent."""
    config = str(project.root / "configs" / "project.yaml")
    args = [str(tmp_path / "in.csv"), str(tmp_path / "out"), "--engine", "spark", "-c", config]
    result = runner.invoke(app, ["batch-predict", *args])
    assert result.exit_code == ExitCode.ERROR, result.output
    message = " ".join(result.output.split())
    assert "`nox -s batch-predict -- --engine spark SOURCE OUTPUT`" in message
    assert "pip install -e '.[spark]'" in message
    assert not (tmp_path / "out").exists()


def test_the_exit_code_table_gives_each_code_one_meaning() -> None:
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3]
    assert OUTCOMES["error"] == ExitCode.ERROR
    assert {OUTCOMES[name] for name in ("rejected", "drift")} == {ExitCode.NEGATIVE}
    assert OUTCOMES["performance_drop"] == ExitCode.ATTENTION


HEAVY = ("mlflow", "sklearn", "pandas", "scipy", "evidently", "fastapi", "numpy", "matplotlib")


def test_help_imports_no_heavy_library() -> None:
    """`--help` and every command's start-up stay fast: heavy imports live inside the commands."""
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from {{ cookiecutter.package_name }}.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "assert CliRunner().invoke(app, ['train', '--help']).exit_code == 0\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


# --json: one document on stdout, whatever the outcome and its exit code.


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with champion v1, built once; each test works on its own copy."""
    root = tmp_path_factory.mktemp("cli-json") / "project"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("PREDICTION_LOG_URL", raising=False)
        project = write_project(root)
        ingest(project)
        first_champion(project)
    return root


def _copy(trained: Path, tmp_path: Path) -> Project:
    shutil.copytree(trained, tmp_path / "project")
    return load_project(tmp_path / "project" / "configs" / "project.yaml")


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON: strict parsers (jq, JavaScript) refuse it")


def _document(result: Result, code: int) -> dict[str, Any]:
    """The exit code as without --json, and stdout exactly one strict JSON object: json.loads
    refuses anything printed before or after it."""
    assert result.exit_code == code, result.output
    document = json.loads(result.stdout, parse_constant=_refuse)
    assert isinstance(document, dict), document
    return document


DECISION_KEYS = {"kind", "model", "decided_at", "outcome", "reason", "record_path"}


@pytest.mark.answers
def test_models_json_lists_versions_and_aliases(trained: Path, tmp_path: Path) -> None:
    project = _copy(trained, tmp_path)
    config = str(project.root / "configs" / "project.yaml")
    document = _document(runner.invoke(app, ["models", "--json", "-c", config]), ExitCode.OK)
    assert document["model"] == project.config.tracking.registered_model
    assert document["aliases"] == {CHAMPION: "1", "challenger": "1"}
    [version] = document["versions"]
    assert version["version"] == "1"
    assert CHAMPION in version["aliases"]
    assert set(version) >= {"family", "snapshot_id", "trained_at", "holdout", "promoted_at"}

    empty = write_project(tmp_path / "empty")
    nothing = runner.invoke(app, ["models", "--json", "-c", str(empty.config_path)])
    assert _document(nothing, ExitCode.OK)["versions"] == []


@pytest.mark.answers
def test_promote_json_prints_the_decision_record_for_every_outcome(
    trained: Path, tmp_path: Path
) -> None:
    project = _copy(trained, tmp_path)
    config = str(project.root / "configs" / "project.yaml")
    rejected = runner.invoke(app, ["promote", "--json", "-c", config])
    document = _document(rejected, ExitCode.NEGATIVE)
    assert set(document) >= DECISION_KEYS
    assert document["outcome"] == "rejected"
    assert "already the champion" in document["reason"]
    written = json.loads(Path(document["record_path"]).read_text(encoding="utf-8"))
    assert {key: document[key] for key in written} == written  # the record, as written
    assert "done comparing" in rejected.stderr  # progress, and the sentence, for the log
    assert "rejected" in rejected.stderr

    Store.open(project).delete_alias(CHAMPION)
    promoted = runner.invoke(app, ["promote", "--json", "-c", config])
    document = _document(promoted, ExitCode.OK)
    assert document["outcome"] == "promoted"
    assert document["challenger"]["version"] == "1"


@pytest.mark.answers
def test_ab_report_json_is_strict_json_while_it_keeps_collecting(project: Project) -> None:
    """No labelled traffic yet: each variant's metric is not a number, which JSON writes null."""
    result = runner.invoke(app, ["ab-report", "--json", "-c", str(project.config_path)])
    document = _document(result, ExitCode.ATTENTION)
    assert set(document) >= DECISION_KEYS | {"variants", "data", "policy"}
    assert document["outcome"] == "keep_collecting"
    assert document["variants"]["champion"]["metric"] is None


@pytest.mark.answers
def test_monitor_json_prints_the_summary_for_every_status(trained: Path, tmp_path: Path) -> None:
    project = _copy(trained, tmp_path)
    config = str(project.root / "configs" / "project.yaml")
    quiet = _document(runner.invoke(app, ["monitor", "--json", "-c", config]), ExitCode.OK)
    assert quiet["status"] == "insufficient_data"
    assert quiet["retrain"] is False
    assert set(quiet) >= {"checked_at", "model", "champion_version", "current", "reasons"}

    drifted = tmp_path / "drifted.parquet"
    knobs = DemoSourceConfig(rows=600, seed=99, start=date(2025, 4, 1), covariate_shift=1.5)
    write_table(generate_demo(knobs, project.config.train.task), drifted)
    found = runner.invoke(app, ["monitor", "--json", "-c", config, "--source", str(drifted)])
    document = _document(found, found.exit_code)
    assert found.exit_code in {ExitCode.NEGATIVE, ExitCode.ATTENTION}, found.output
    assert document["status"] in {"drift", "performance_drop"}
    assert document["retrain"] is True
    assert document["reasons"]
    assert document["drift"]["drifted_share"] > 0
