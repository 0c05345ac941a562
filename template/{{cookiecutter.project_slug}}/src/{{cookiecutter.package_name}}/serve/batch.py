"""Batch scoring: a file of any size, scored with the champion chunk by chunk.

Memory holds one chunk at a time; rows the schema refuses go to a quarantine file next to the
output, with their row number in the source, instead of failing the whole file. The Arrow schema
of both outputs is here (`output_schemas`), and the Spark engine (`spark.py`) writes it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import FileSourceConfig, Project, Task
from ..data import REASON, SOURCE_ROW, DataError, DataSchema, project_schema, validate
from ..data.sources import check_header, check_names, csv_delimiter, csv_header
from ..metrics import class_decisions, decisions
from ..store import Store
from .registry import version_scorer

SOURCE_FILE = "source_file"  # quarantined rows: the URI of the file they came from
# Time as UTC instants in microseconds, in both engines' files. ingest reads every time as a UTC
# instant; microseconds are what Spark's timestamps hold (nanoseconds cannot pass through Spark,
# and pandas writes microseconds for parsed text); a time zone makes each value an instant that
# joins and compares with any other reader's, where a naive time is only a wall-clock reading.
TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class OutputSchemas:
    """The Arrow schemas of the scored rows and of the quarantined ones."""

    scored: pa.Schema
    quarantined: pa.Schema


def checked_columns(schema: DataSchema, available: Sequence[str]) -> list[str]:
    """The columns `validate` checks when scoring: all but the target, and the timestamp only
    when the data has one."""
    return [
        column.name
        for column in schema.columns
        if column.name != schema.target.name
        and (column.name != schema.timestamp_column or column.name in available)
    ]


def probability_column(name: str) -> str:
    """The output column of one class's probability (three or more classes)."""
    return f"probability_{name}"


def output_schemas(schema: DataSchema, columns: Sequence[str], task: Task) -> OutputSchemas:
    """Both engines' outputs for data whose checked columns are `columns`: one schema, so their
    files concatenate and join. A scored row: its key (and time), score, version and, for a
    classifier, label (three or more classes: the likeliest class, and every class's
    probability). A quarantined row: where it came from, its cells as text, the reasons."""
    scored = [pa.field(schema.key_column, pa.string())]
    if schema.timestamp_column in columns:
        scored.append(pa.field(schema.timestamp_column, TIMESTAMP))
    scored += [pa.field("prediction", pa.float64()), pa.field("model_version", pa.string())]
    if task == "binary_classification":
        scored.append(pa.field("label", pa.int64()))
    elif task == "multiclass_classification":
        scored.append(pa.field("label", pa.string()))
        classes = schema.target.classes or ()
        scored += [pa.field(probability_column(name), pa.float64()) for name in classes]
    quarantined = [pa.field(SOURCE_FILE, pa.string()), pa.field(SOURCE_ROW, pa.int64())]
    quarantined += [pa.field(name, pa.string()) for name in [*columns, REASON]]
    return OutputSchemas(pa.schema(scored), pa.schema(quarantined))


@dataclass(frozen=True)
class BatchResult:
    rows_read: int
    rows_scored: int
    rows_quarantined: int
    model_version: str
    output: Path
    quarantine_file: Path | None
    scoring: str


def quarantine_path(output: Path) -> Path:
    """Where the rows refused while scoring into `output` go: beside it, named after it."""
    return output.with_name(f"{output.stem}.quarantine{output.suffix}")


def scored_columns(
    valid: pd.DataFrame, schema: DataSchema, values: np.ndarray, version: str, task: Task
) -> pd.DataFrame:
    """What a scored row holds, in both engines: its key (and time), score, version, label, and
    for three or more classes each class's probability (`prediction` is the likeliest's)."""
    keys = [c for c in (schema.key_column, schema.timestamp_column) if c in valid.columns]
    matrix = values.ndim == 2
    top = values.max(axis=1) if matrix else values
    out = valid[keys].assign(prediction=top, model_version=version)
    if task == "binary_classification":
        out["label"] = decisions(values).astype("int64")
    elif matrix:
        classes = np.asarray(schema.target.classes, dtype=object)
        out["label"] = classes[class_decisions(values)]
        for index, name in enumerate(classes):
            out[probability_column(str(name))] = values[:, index]
    return out


def _chunks(source: Path, rows: int, delimiter: str | None = None) -> Iterator[pd.DataFrame]:
    suffix = source.suffix.lower()
    if not source.exists():
        raise DataError(f"{source}: no such file")
    if suffix == ".csv":
        delimiter = csv_delimiter(source, delimiter)  # as ingest's `read_table` reads it
        check_names(f"data file {source}", csv_header(source, delimiter))
        with pd.read_csv(
            source, sep=delimiter, dtype=str, keep_default_na=False, na_values=[""], chunksize=rows
        ) as reader:
            for chunk in reader:
                check_header(source, list(chunk.columns), delimiter)
                yield chunk
    elif suffix == ".parquet":
        for batch in pq.ParquetFile(source).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    else:
        raise DataError(f"{source}: expected .csv or .parquet")


class _Appender:
    """A Parquet file written chunk by chunk, so memory holds one chunk at a time; it is created
    with the first rows, in the schema the first chunk's columns give (`output_schemas`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None

    def add(self, frame: pd.DataFrame, schema: pa.Schema) -> None:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def batch_predict(
    project: Project,
    source: Path,
    output: Path,
    chunk_rows: int = 50_000,
    on_chunk: Callable[[int], None] | None = None,
) -> BatchResult:
    """Score `source` with the champion into `output` (Parquet); invalid rows are quarantined.

    Raises StoreError when there is no champion yet, DataError when the file cannot be read.
    """
    schema = project_schema(project)
    task = project.config.train.task
    store = Store.open(project)
    version = str(store.champion().version)
    scorer = version_scorer(store, version)
    quarantine = quarantine_path(output)
    scored, rejected = _Appender(output), _Appender(quarantine)
    read = good = bad = 0
    try:
        # A delimiter set for the training file is the one scored files use; else detected.
        training = project.config.data.source
        configured = training.delimiter if isinstance(training, FileSourceConfig) else None
        origin = source.resolve().as_uri()  # as Spark names a file
        for chunk in _chunks(source, chunk_rows, configured):
            result = validate(chunk, schema, scoring=True)
            columns = checked_columns(schema, list(chunk.columns))
            written = output_schemas(schema, columns, task)
            if len(result.quarantined):
                refused = result.quarantined
                text = refused.drop(columns=[SOURCE_ROW]).astype("string")
                text[SOURCE_ROW] = refused[SOURCE_ROW] + read
                text[SOURCE_FILE] = origin
                rejected.add(text, written.quarantined)
            if len(result.valid):
                values = scorer.score_frame(result.valid)
                rows = scored_columns(result.valid, schema, values, version, task)
                scored.add(rows, written.scored)
            read += len(chunk)
            good += len(result.valid)
            bad += len(result.quarantined)
            if on_chunk:
                on_chunk(len(chunk))
    finally:
        scored.close()
        rejected.close()
    if read == 0:
        raise DataError(f"{source} has no rows")
    return BatchResult(
        rows_read=read,
        rows_scored=good,
        rows_quarantined=bad,
        model_version=version,
        output=output,
        quarantine_file=quarantine if bad else None,
        scoring=scorer.frame_kind,
    )
