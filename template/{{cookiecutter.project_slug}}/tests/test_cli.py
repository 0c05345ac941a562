from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Project
from {{ cookiecutter.package_name }}.data import REASON
from {{ cookiecutter.package_name }}.exit_codes import OUTCOMES, ExitCode

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
    config = str(project.root / "configs" / "project.yaml")
    ingested = runner.invoke(app, ["ingest", "-c", config])
    assert ingested.exit_code == 0, ingested.output
    assert "quarantined" in ingested.output
    quarantine = next((project.quarantine_dir).glob("*.parquet"))
    assert pd.read_parquet(quarantine)[REASON].str.len().gt(0).all()
    trained = runner.invoke(app, ["train", "-c", config])
    assert trained.exit_code == 0, trained.output
    assert "as challenger" in trained.output
    assert "promoted: there is no champion yet" in " ".join(trained.output.split())
    listed = runner.invoke(app, ["models", "-c", config])
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.output


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
    "models": "{{ cookiecutter.package_name }}.store.Store.versions",
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
