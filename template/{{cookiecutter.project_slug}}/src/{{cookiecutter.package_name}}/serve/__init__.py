"""Stage 5, serve: the champion online (FastAPI) and in bulk (batch scoring).

Public entry points: `create_app(project)` / `run_server(project)` for the service and
`batch_predict(project, source, output)` for files of any size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import Project
from ..data import DataError, project_schema, validate
from ..data.validate import SOURCE_ROW
from ..features import model_input
from ..train.evaluate import predict_scores
from ..train.tracking import CHAMPION, alias_version, load_version, project_client
from .app import create_app

__all__ = ["BatchResult", "batch_predict", "create_app", "run_server"]


def run_server(project: Project, host: str | None = None, port: int | None = None) -> None:
    """Serve with uvicorn until interrupted; the log buffer is flushed on shutdown."""
    import uvicorn

    settings = project.config.serve
    uvicorn.run(
        create_app(project),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        access_log=False,
    )


@dataclass(frozen=True)
class BatchResult:
    rows_read: int
    rows_scored: int
    rows_quarantined: int
    model_version: str
    output: Path
    quarantine_file: Path | None


def _chunks(source: Path, rows: int) -> Iterator[pd.DataFrame]:
    suffix = source.suffix.lower()
    if not source.exists():
        raise DataError(f"{source}: no such file")
    if suffix == ".csv":
        yield from pd.read_csv(
            source, dtype=str, keep_default_na=False, na_values=[""], chunksize=rows
        )
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
    """Score `source` with the champion into `output` (Parquet); invalid rows are quarantined."""
    schema = project_schema(project)
    task = project.config.train.task
    name = project.config.tracking.registered_model
    client = project_client(project)
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"{name} has no champion to score with: run `train` first")
    model = load_version(client, name, str(champion.version))
    quarantine = output.with_name(f"{output.stem}.quarantine.parquet")
    scored, rejected = _Appender(output), _Appender(quarantine)
    read = good = bad = 0
    version = str(champion.version)
    try:
        for chunk in _chunks(source, chunk_rows):
            result = validate(chunk, schema, scoring=True)
            if len(result.quarantined):
                shifted = result.quarantined[SOURCE_ROW] + read
                rejected.add(
                    result.quarantined.assign(**{SOURCE_ROW: shifted}).astype(
                        dict.fromkeys(result.quarantined.columns.drop(SOURCE_ROW), "string")
                    )
                )
            if len(result.valid):
                values = predict_scores(model, model_input(result.valid, schema), task)
                kept = [c for c in (schema.id_column, schema.timestamp_column) if c in result.valid]
                out = result.valid[kept].assign(prediction=values, model_version=version)
                if task == "binary_classification":
                    out["label"] = (values >= 0.5).astype("int64")
                scored.add(out)
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
        model_version=str(champion.version),
        output=output,
        quarantine_file=quarantine if bad else None,
    )
