"""`batch-predict --engine spark` against the pandas engine: the same rows, scores and quarantine,
on the compiled and the scikit-learn paths. They need the spark extra and Java: `nox -s spark`
runs them; without PySpark they are skipped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project
from {{ cookiecutter.package_name }}.data import (
    REASON,
    SOURCE_ROW,
    generate_demo,
    ingest,
    project_schema,
    write_table,
)
from {{ cookiecutter.package_name }}.serve import batch_predict
from {{ cookiecutter.package_name }}.serve.spark import SparkUnavailableError, require_spark, spark_batch_predict

from .conftest import first_champion, write_project

pytest.importorskip("pyspark", reason="the spark extra is not installed: `nox -s spark` runs these")
pytestmark = [pytest.mark.spark, pytest.mark.e2e, pytest.mark.answers]
runner = CliRunner()
PLANTED_ROW = 7  # a row whose first numeric feature is text: both engines must quarantine it


@pytest.fixture(scope="module")
def scored_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:
    """A trained project, and a CSV to score: demo rows, a few invalid, one planted."""
    project = write_project(tmp_path_factory.mktemp("spark"))
    ingest(project)
    first_champion(project)
    schema = project_schema(project)
    raw = generate_demo(
        DemoSourceConfig(rows=3_000, seed=5, invalid_fraction=0.02), project.config.train.task
    ).drop(columns=[schema.target.name])
    raw = raw.astype({schema.numeric_features[0]: object})
    raw.loc[PLANTED_ROW, schema.numeric_features[0]] = "not-a-number"
    source = project.root / "to_score.csv"
    write_table(raw, source)
    yield project, source
    from pyspark.sql import SparkSession

    if (session := SparkSession.getActiveSession()) is not None:
        session.stop()


def _keyed(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    schema = project_schema(project)
    keys = [schema.key_column, schema.timestamp_column]
    frame = frame.copy()
    frame[keys[0]] = frame[keys[0]].astype(str)
    frame[keys[1]] = pd.to_datetime(frame[keys[1]], utc=True).astype("datetime64[us, UTC]")
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("scoring", ["compiled", "scikit-learn"])
def test_both_engines_give_the_same_scores_and_quarantine(
    scored_file: tuple[Project, Path], scoring: str, tmp_path: Path
) -> None:
    trained, source = scored_file
    project = write_project(trained.root, sections={"serve": {"scoring": scoring}})
    by_pandas = batch_predict(project, source, tmp_path / "pandas.parquet")
    config = str(project.root / "configs" / "project.yaml")
    answer = runner.invoke(
        app,
        ["batch-predict", str(source), str(tmp_path / "spark"), "--engine", "spark", "-c", config],
    )
    assert answer.exit_code == 0, answer.output
    assert f"({scoring} scoring)" in " ".join(answer.output.split())

    spark_quarantine = tmp_path / "spark.quarantine"
    assert spark_quarantine.is_dir()
    scored = _keyed(pd.read_parquet(tmp_path / "spark"), project)
    expected = _keyed(pd.read_parquet(by_pandas.output), project)
    assert len(scored) == len(expected) == by_pandas.rows_scored
    keys = list(expected.columns[:2])
    assert scored[keys].equals(expected[keys])
    assert np.abs(scored["prediction"] - expected["prediction"]).max() <= 1e-9
    assert (scored["model_version"] == by_pandas.model_version).all()
    if "label" in expected:
        assert scored["label"].equals(expected["label"])

    quarantined = pd.read_parquet(spark_quarantine).sort_values(SOURCE_ROW, ignore_index=True)
    assert by_pandas.quarantine_file is not None
    refused = pd.read_parquet(by_pandas.quarantine_file).sort_values(SOURCE_ROW, ignore_index=True)
    assert len(quarantined) == by_pandas.rows_quarantined > 0
    assert quarantined[refused.columns].astype(str).equals(refused.astype(str))
    planted = quarantined.set_index(SOURCE_ROW).loc[PLANTED_ROW]
    feature = project_schema(project).numeric_features[0]
    assert planted[REASON].startswith(f"{feature}: ")
    assert "not a number" in planted[REASON]
    assert planted["source_file"].endswith("to_score.csv")


def test_a_folder_is_scored_with_rows_numbered_per_file(
    scored_file: tuple[Project, Path], tmp_path: Path
) -> None:
    project, source = scored_file
    frame = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
    folder = tmp_path / "parts"
    folder.mkdir()
    write_table(frame.iloc[:1_000], folder / "a.csv")
    write_table(frame.iloc[1_000:], folder / "b.csv")
    result = spark_batch_predict(project, folder, tmp_path / "out")
    whole = batch_predict(project, source, tmp_path / "whole.parquet")
    assert (result.rows_scored, result.rows_quarantined) == (
        whole.rows_scored,
        whole.rows_quarantined,
    )
    assert result.quarantine_file is not None
    quarantined = pd.read_parquet(result.quarantine_file)
    from_b = quarantined[quarantined["source_file"].str.endswith("b.csv")]
    assert not from_b.empty
    assert whole.quarantine_file is not None
    refused = pd.read_parquet(whole.quarantine_file)[SOURCE_ROW]
    assert sorted(from_b[SOURCE_ROW] + 1_000) == sorted(refused[refused >= 1_000])
    assert from_b[SOURCE_ROW].min() >= 0


def test_a_missing_java_is_reported_clearly(
    scored_file: tuple[Project, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, source = scored_file
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `java` anywhere
    with pytest.raises(SparkUnavailableError, match="Java 17"):
        require_spark()
    config = str(project.root / "configs" / "project.yaml")
    answer = runner.invoke(
        app,
        ["batch-predict", str(source), str(tmp_path / "out"), "--engine", "spark", "-c", config],
    )
    assert answer.exit_code == 2
    assert "Spark needs Java 17 or later" in " ".join(answer.output.split())
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(SparkUnavailableError, match="holds no bin/java"):
        require_spark()
    shutil.rmtree(tmp_path / "jdk", ignore_errors=True)
