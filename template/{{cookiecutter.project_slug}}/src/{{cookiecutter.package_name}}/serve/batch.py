"""Batch scoring: a file of any size, scored with the champion chunk by chunk.

Memory holds one chunk at a time; rows the schema refuses go to a quarantine file next to the
output, with their row number in the source, instead of failing the whole file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import FileSourceConfig, Project
from ..data import SOURCE_ROW, DataError, DataSchema, project_schema, validate
from ..data.sources import check_header, check_names, csv_delimiter, csv_header
from ..metrics import decisions
from ..store import Store
from .registry import version_scorer


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
    valid: pd.DataFrame, schema: DataSchema, values: Any, version: str, classify: bool
) -> pd.DataFrame:
    """What a scored row holds, in both engines: its key (and time), score, version, label."""
    keys = [c for c in (schema.key_column, schema.timestamp_column) if c in valid.columns]
    out = valid[keys].assign(prediction=values, model_version=version)
    if classify:
        out["label"] = decisions(values).astype("int64")
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
    """A Parquet file written chunk by chunk, so memory holds one chunk at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None
        self.schema: Any = None

    def add(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table.cast(self.schema))

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
    classify = project.config.train.task == "binary_classification"
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
        for chunk in _chunks(source, chunk_rows, configured):
            result = validate(chunk, schema, scoring=True)
            if len(result.quarantined):
                shifted = result.quarantined[SOURCE_ROW] + read
                rejected.add(
                    result.quarantined.assign(**{SOURCE_ROW: shifted}).astype(
                        dict.fromkeys(result.quarantined.columns.drop(SOURCE_ROW), "string")
                    )
                )
            if len(result.valid):
                values = scorer.score_frame(result.valid)
                scored.add(scored_columns(result.valid, schema, values, version, classify))
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
        scoring=scorer.kind,
    )
