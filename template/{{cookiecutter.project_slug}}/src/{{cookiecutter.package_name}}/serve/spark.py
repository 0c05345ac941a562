"""Batch scoring on Apache Spark, for a table that outgrows one machine.

The same rows get the same verdicts and scores as with the pandas engine (`batch.py`): every
partition's rows go, in pandas batches (`mapInPandas`), through the very `validate` and champion
scorer the pandas engine and the service use. Spark brings the reading, the parallelism and the
writing: a local session on every core unless `master` names a cluster (or `spark-submit`
started the session), then Parquet files of at most `ROWS_PER_FILE` rows each, in the pandas
engine's Arrow schema (`batch.output_schemas`), so the two engines' files concatenate and join.

PySpark is the project's optional `spark` extra (`nox -s batch-predict -- --engine spark ...`
installs it), and Spark needs Java 17 or later; without either, `require_spark` says what to
install before anything starts.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import FileSourceConfig, Project, Task
from ..data import SOURCE_ROW, DataError, DataSchema, project_schema, validate
from ..errors import ProjectError
from ..scoring import Scorer
from ..store import Store
from .batch import (
    SOURCE_FILE,
    BatchResult,
    checked_columns,
    output_schemas,
    quarantine_path,
    scored_columns,
)
from .registry import version_scorer

ROWS_PER_BATCH = 50_000  # rows per pandas batch: what one validate and scorer call holds
ROWS_PER_FILE = 1_000_000


class SparkUnavailableError(ProjectError, RuntimeError):
    """PySpark or Java is missing; the message says what to install."""


def require_spark() -> None:
    """Refuse early, naming the missing piece, rather than fail inside Spark's start-up."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailableError(
            "the Spark engine needs PySpark, the project's `spark` extra: "
            "`nox -s batch-predict -- --engine spark SOURCE OUTPUT` runs this command with it "
            "in a virtualenv of its own, or install it here: pip install -e '.[spark]' "
            "(or uv pip install -e '.[spark]')"
        )
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).is_file():
        where = f"JAVA_HOME={home} holds no bin/java" if home else "no `java` on PATH"
        raise SparkUnavailableError(
            f"Spark needs Java 17 or later and finds none ({where}): install a JRE "
            "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )


def spark_session(master: str | None, name: str) -> Any:
    """The running session (`spark-submit`'s), else a new one: local on every core by default."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(name)
        .config("spark.sql.session.timeZone", "UTC")
        # Parquet's TIMESTAMP_MICROS, an instant in UTC: pyarrow reads timestamp[us, tz=UTC], as
        # the pandas engine writes (batch.TIMESTAMP); Spark's default, INT96, reads as naive ns.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ROWS_PER_BATCH))
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master is not None:
        builder = builder.master(master)
    if master is None or master.startswith("local"):
        # Local workers run this interpreter, so they import this project and its packages.
        # PySpark reads the worker's interpreter from the environment only, once per context.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _read(spark: Any, source: Path, delimiter: str | None) -> Any:
    """A Parquet or CSV file, or a folder of them; CSV columns as text, like the pandas engine."""
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    files = sorted(source.rglob("*")) if source.is_dir() else [source]
    suffixes = {path.suffix.lower() for path in files if path.is_file() and path.suffix}
    if suffixes <= {".parquet"} and suffixes:
        return spark.read.parquet(str(source))
    if suffixes <= {".csv"} and suffixes:
        return spark.read.csv(str(source), header=True, sep=delimiter or ",", inferSchema=False)
    raise DataError(
        f"{source}: expected .csv or .parquet files, found {sorted(suffixes) or 'none'}"
    )


def _row_offsets(frame: Any) -> dict[tuple[str, int], int]:
    """(file, partition) -> the file's row number at the partition's first row of it.

    A file is read in splits, in order, each split in one partition: counting each file's rows
    per partition (in Spark, no row comes to Python) numbers every row as its file does."""
    from pyspark.sql import functions

    counts = (
        frame.groupBy(SOURCE_FILE, functions.spark_partition_id().alias("partition"))
        .count()
        .collect()
    )
    offsets: dict[tuple[str, int], int] = {}
    running: dict[str, int] = {}
    for row in sorted(counts, key=lambda row: (row[SOURCE_FILE], row["partition"])):
        file = row[SOURCE_FILE]
        offsets[(file, row["partition"])] = running.get(file, 0)
        running[file] = offsets[(file, row["partition"])] + row["count"]
    return offsets


def _checked(
    batches: Iterator[pd.DataFrame], schema: DataSchema, offsets: dict[tuple[str, int], int]
) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Each batch validated, with every row's number and file (a file's rows arrive in order)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    seen: dict[str, int] = {}
    for batch in batches:
        if batch.empty:
            continue
        # Spark hands times over without their zone, as readings in the session's (UTC): as
        # instants again, they are what the pandas engine reads from the same file.
        for name, dtype in batch.dtypes.items():
            if isinstance(dtype, np.dtype) and dtype.kind == "M":
                batch[name] = batch[name].dt.tz_localize("UTC")
        files = batch.pop(SOURCE_FILE).to_numpy(dtype=object)
        numbers = np.empty(len(batch), dtype=np.int64)
        for name in dict.fromkeys(files):
            rows = files == name
            start = seen.get(name, offsets.get((name, partition), 0))
            numbers[rows] = start + np.arange(int(rows.sum()))
            seen[name] = start + int(rows.sum())
        yield validate(batch, schema, scoring=True), numbers, files


def _scored(
    batches: Iterator[pd.DataFrame],
    schema: DataSchema,
    offsets: dict[tuple[str, int], int],
    scorer: Scorer,
    version: str,
    task: Task,
) -> Iterator[pd.DataFrame]:
    for result, _, _ in _checked(batches, schema, offsets):
        if len(result.valid):
            values = scorer.score_frame(result.valid)
            yield scored_columns(result.valid, schema, values, version, task)


def _quarantined(
    batches: Iterator[pd.DataFrame], schema: DataSchema, offsets: dict[tuple[str, int], int]
) -> Iterator[pd.DataFrame]:
    for result, numbers, files in _checked(batches, schema, offsets):
        bad = result.quarantined
        if len(bad):
            position = bad[SOURCE_ROW].to_numpy()
            text = bad.drop(columns=[SOURCE_ROW]).astype("string")
            yield text.assign(**{SOURCE_ROW: numbers[position], SOURCE_FILE: files[position]})


def spark_batch_predict(
    project: Project, source: Path, output: Path, master: str | None = None
) -> BatchResult:
    """Score `source` (a file or a folder) with the champion into the Parquet folder `output`;
    invalid rows go, with their reasons, to the folder `quarantine_path(output)`.

    Raises SparkUnavailableError without PySpark or Java, StoreError without a champion, DataError
    when the input cannot be read or lacks a column the model needs."""
    require_spark()
    schema = project_schema(project)
    task = project.config.train.task
    store = Store.open(project)
    version = str(store.champion().version)
    scorer = version_scorer(store, version)
    training = project.config.data.source
    delimiter = training.delimiter if isinstance(training, FileSourceConfig) else None

    from pyspark.sql import functions
    from pyspark.sql.pandas.types import from_arrow_schema

    spark = spark_session(master, f"{project.config.tracking.registered_model} batch-predict")
    frame = _read(spark, source, delimiter)
    present = checked_columns(schema, frame.columns)
    if missing := [name for name in present if name not in frame.columns]:
        raise DataError(f"{source}: the data lacks required columns: {', '.join(missing)}")
    frame = frame.select(*present).withColumn(SOURCE_FILE, functions.input_file_name())
    offsets = _row_offsets(frame)
    written = output_schemas(schema, present, task)
    scored = frame.mapInPandas(
        partial(
            _scored,
            schema=schema,
            offsets=offsets,
            scorer=scorer,
            version=version,
            task=task,
        ),
        from_arrow_schema(written.scored),
    )
    quarantined = frame.mapInPandas(
        partial(_quarantined, schema=schema, offsets=offsets),
        from_arrow_schema(written.quarantined),
    )
    bad_folder = quarantine_path(output)
    for result, folder in ((scored, output), (quarantined, bad_folder)):
        result.write.mode("overwrite").option("maxRecordsPerFile", ROWS_PER_FILE).parquet(
            str(folder)
        )
    good = spark.read.parquet(str(output)).count()
    bad = spark.read.parquet(str(bad_folder)).count()
    if bad == 0:
        shutil.rmtree(bad_folder, ignore_errors=True)
    if good + bad == 0:
        raise DataError(f"{source} has no rows")
    return BatchResult(
        rows_read=good + bad,
        rows_scored=good,
        rows_quarantined=bad,
        model_version=version,
        output=output,
        quarantine_file=bad_folder if bad else None,
        scoring=scorer.frame_kind,
    )
