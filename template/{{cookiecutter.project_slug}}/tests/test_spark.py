"""`batch-predict --engine spark` against the pandas engine: the same rows, scores and quarantine,
in the same Arrow schema, on the compiled and the scikit-learn paths, from CSV and Parquet. They
need the spark extra and Java: `nox -s spark` runs them; without PySpark they are skipped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
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
from {{ cookiecutter.package_name }}.serve.batch import SOURCE_FILE
from {{ cookiecutter.package_name }}.serve.spark import SparkUnavailableError, require_spark, spark_batch_predict
from {{ cookiecutter.package_name }}.store import Store

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
    # The same rows as Parquet, typed as ingest writes them; the planted column stays text.
    typed = raw.astype({schema.numeric_features[0]: "string"})
    write_table(typed, source.with_suffix(".parquet"))
    yield project, source
    from pyspark.sql import SparkSession

    if (session := SparkSession.getActiveSession()) is not None:
        session.stop()


def _rows(path: Path) -> pa.Table:
    """A Parquet file, or a folder of them, as one table: a folder's files must agree."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    return pa.concat_tables([pq.read_table(file) for file in files])


def _arrow_schemas(path: Path) -> set[str]:
    """The Arrow schema of each file (without the writer's metadata), as text."""
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    return {pq.read_schema(file).remove_metadata().to_string() for file in files}


@pytest.mark.parametrize(
    ("scoring", "suffix"), [("compiled", ".csv"), ("scikit-learn", ".parquet")]
)
def test_both_engines_write_the_same_rows_in_one_arrow_schema(
    scored_file: tuple[Project, Path], scoring: str, suffix: str, tmp_path: Path
) -> None:
    """Scores and quarantine, file by file, in one Arrow schema (the time as UTC microseconds),
    so both engines' outputs concatenate, and their scores join on the key and the time."""
    trained, csv = scored_file
    source = csv.with_suffix(suffix)
    project = write_project(trained.root, sections={"serve": {"scoring": scoring}})
    by_pandas = batch_predict(project, source, tmp_path / "pandas.parquet")
    config = str(project.root / "configs" / "project.yaml")
    answer = runner.invoke(
        app,
        ["batch-predict", str(source), str(tmp_path / "spark"), "--engine", "spark", "-c", config],
    )
    assert answer.exit_code == 0, answer.output
    # A frame goes to the path registration timed faster on one (docs/scoring.md).
    champion = Store.open(project).champion()
    frames = champion.tags["scoring_frames"] if scoring == "compiled" else scoring
    assert by_pandas.scoring == frames
    assert f"({frames} scoring)" in " ".join(answer.output.split())
    spark_quarantine = tmp_path / "spark.quarantine"
    assert spark_quarantine.is_dir()
    assert by_pandas.quarantine_file is not None
    schema = project_schema(project)
    keys = [schema.key_column, schema.timestamp_column]

    for pandas_file, spark_folder in (
        (by_pandas.output, tmp_path / "spark"),
        (by_pandas.quarantine_file, spark_quarantine),
    ):
        assert _arrow_schemas(pandas_file) == _arrow_schemas(spark_folder)
        pa.concat_tables([_rows(pandas_file), _rows(spark_folder)])  # what a reader of both does
    by_spark = _rows(tmp_path / "spark")
    assert by_spark.schema.field(schema.timestamp_column).type == pa.timestamp("us", tz="UTC")

    joined = _rows(by_pandas.output).join(by_spark, keys=keys, right_suffix=" (spark)")
    assert joined.num_rows == by_spark.num_rows == by_pandas.rows_scored
    both = joined.to_pandas()
    assert np.abs(both["prediction"] - both["prediction (spark)"]).max() <= 1e-9
    assert (both["model_version (spark)"] == by_pandas.model_version).all()
    if "label" in both:
        assert both["label"].equals(both["label (spark)"])

    quarantined = _rows(spark_quarantine).sort_by(SOURCE_ROW)
    refused = _rows(by_pandas.quarantine_file).sort_by(SOURCE_ROW)
    assert quarantined.num_rows == by_pandas.rows_quarantined > 0
    assert quarantined.to_pylist() == refused.to_pylist()
    planted = quarantined.to_pandas().set_index(SOURCE_ROW).loc[PLANTED_ROW]
    feature = schema.numeric_features[0]
    assert planted[REASON].startswith(f"{feature}: ")
    assert "not a number" in planted[REASON]
    assert planted[SOURCE_FILE] == source.resolve().as_uri()


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
    from_b = quarantined[quarantined[SOURCE_FILE].str.endswith("b.csv")]
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
