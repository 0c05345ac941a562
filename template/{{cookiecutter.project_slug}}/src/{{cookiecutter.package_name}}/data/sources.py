"""Where raw rows come from: the demo generator or a CSV/Parquet file, behind one function."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import DemoSourceConfig, FileSourceConfig, Project
from ..errors import ProjectError
from ..files import written_whole
from .demo import demo_schema, generate_demo
from .schema import DataSchema


class DataError(ProjectError, ValueError):
    """Input data cannot be used: missing file, unreadable format, wrong columns, too few rows."""


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV as text (validation then sees exactly what the file holds) or Parquet."""
    if not path.exists():
        raise DataError(f"data file {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".csv", ".parquet"} and path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty: not even a header")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (ValueError, OSError) as error:
        raise DataError(f"data file {path} cannot be read: {error}") from None
    raise DataError(f"data file {path}: expected .csv or .parquet")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write beside `path`, then rename: an interrupted write never leaves half a file there."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise DataError(f"{path}: expected .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as partial:
        if suffix == ".csv":
            frame.to_csv(partial, index=False)
        else:
            # Parquet columns have one type: a column mixing numbers and text is stored as text.
            mixed = [name for name in frame.columns if frame[name].dtype == object]
            text = {name: frame[name].map(lambda v: v if pd.isna(v) else str(v)) for name in mixed}
            frame.assign(**text).to_parquet(partial, index=False)


def load_source(project: Project) -> tuple[pd.DataFrame, DataSchema, str]:
    """The raw rows, the schema that governs them, and a one-line description of the source."""
    source = project.config.data.source
    if isinstance(source, DemoSourceConfig):
        task = project.config.train.task
        description = (
            f"demo(rows={source.rows}, seed={source.seed}, start={source.start}, "
            f"covariate_shift={source.covariate_shift}, concept_shift={source.concept_shift})"
        )
        return generate_demo(source, task), demo_schema(task), description
    assert isinstance(source, FileSourceConfig)
    schema = DataSchema.from_yaml(project.path(source.schema_path))
    return read_table(project.path(source.path)), schema, f"file({source.path})"
