"""Where raw rows come from: the demo generator or a CSV/Parquet file, behind one function."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import pandas as pd

from ..config import DemoSourceConfig, FileSourceConfig, Project
from ..errors import ProjectError
from ..files import written_whole
from .demo import generate_demo


class DataError(ProjectError, ValueError):
    """Input data cannot be used: missing file, unreadable format, wrong columns, too few rows."""


# The separators a CSV file may use; `csv_delimiter` detects one of them.
DELIMITERS = (",", ";", "\t", "|")
SNIFFED_LINES = 50


def _shown_delimiter(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


def csv_delimiter(path: Path, configured: str | None = None) -> str:
    """The configured delimiter, else the one `csv.Sniffer` finds on the first lines among
    `DELIMITERS`, else `,`: batch scoring and ingest read a file the same way."""
    if configured is not None:
        return configured
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        sample = "".join(islice(file, SNIFFED_LINES))
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:  # one column, or too few lines to tell
        return ","


def check_header(path: Path, columns: Sequence[object], delimiter: str) -> None:
    """Refuse a header read as one column when it holds another delimiter: the file was split
    on the wrong character, and every row would otherwise fail as "missing columns"."""
    if len(columns) != 1:
        return
    header = str(columns[0])
    if found := [d for d in DELIMITERS if d != delimiter and d in header]:
        likely = found[0]
        raise DataError(
            f"data file {path}: the header parsed as one column with delimiter "
            f"{_shown_delimiter(delimiter)}, but the file looks {_shown_delimiter(likely)}-"
            f"separated: set data.source.delimiter to {likely!r}"
        )


def read_table(path: Path, delimiter: str | None = None) -> pd.DataFrame:
    """Read CSV as text (validation then sees exactly what the file holds) or Parquet.

    A CSV file's delimiter is `delimiter`, or detected when None (see `csv_delimiter`).
    """
    if not path.exists():
        raise DataError(f"data file {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".csv", ".parquet"} and path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty: not even a header")
    if suffix not in {".csv", ".parquet"}:
        raise DataError(f"data file {path}: expected .csv or .parquet")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        separator = csv_delimiter(path, delimiter)
        frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, OSError) as error:
        raise DataError(f"data file {path} cannot be read: {error}") from None
    check_header(path, list(frame.columns), separator)
    return frame


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


def load_source(project: Project) -> tuple[pd.DataFrame, str]:
    """The raw rows and a one-line description of the source (`project_schema` gives the
    schema that governs them)."""
    source = project.config.data.source
    if isinstance(source, DemoSourceConfig):
        task = project.config.train.task
        description = (
            f"demo(rows={source.rows}, seed={source.seed}, start={source.start}, "
            f"covariate_shift={source.covariate_shift}, concept_shift={source.concept_shift})"
        )
        return generate_demo(source, task), description
    assert isinstance(source, FileSourceConfig)
    return read_table(project.path(source.path), source.delimiter), f"file({source.path})"
