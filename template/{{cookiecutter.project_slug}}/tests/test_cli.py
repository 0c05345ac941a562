from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Project
from {{ cookiecutter.package_name }}.data import REASON

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


def test_demo_data_writes_rows_and_schema(tmp_path: Path) -> None:
    out, schema = tmp_path / "raw" / "events.csv", tmp_path / "schema.yaml"
    result = runner.invoke(
        app, ["demo-data", "--out", str(out), "--schema-out", str(schema), "--rows", "500"]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 500
    assert "role: target" in schema.read_text(encoding="utf-8")


def test_ingest_train_models_from_the_command_line(project: Project) -> None:
    config = str(project.root / "configs" / "project.yaml")
    ingested = runner.invoke(app, ["ingest", "-c", config])
    assert ingested.exit_code == 0, ingested.output
    assert "quarantined" in ingested.output
    quarantine = next((project.quarantine_dir).glob("*.parquet"))
    assert pd.read_parquet(quarantine)[REASON].str.len().gt(0).all()
    trained = runner.invoke(app, ["train", "-c", config])
    assert trained.exit_code == 0, trained.output
    assert "as champion" in trained.output
    listed = runner.invoke(app, ["models", "-c", config])
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.output
