"""Stage 1, data: ingest raw rows, enforce the schema, split them, snapshot.

Public entry point: `ingest(project)`. Later stages read what it wrote with `read_snapshot`.
"""

from .demo import demo_schema, generate_demo
from .ingestion import (
    IngestResult,
    ingest,
    project_schema,
    require_training_rows,
    slice_column_problem,
    split_column_problem,
)
from .schema import MAX_TEXT_CHARS, ROW_KEY, ColumnSpec, DataSchema, row_key
from .snapshot import (
    PARTS,
    Snapshot,
    content_hash,
    latest_snapshot_id,
    read_snapshot,
    write_snapshot,
)
from .sources import DataError, load_source, read_table, write_table
from .split import Split, split_rows, time_split
from .validation import REASON, SOURCE_ROW, ValidationResult, validate

__all__ = [
    "MAX_TEXT_CHARS",
    "PARTS",
    "REASON",
    "ROW_KEY",
    "SOURCE_ROW",
    "ColumnSpec",
    "DataError",
    "DataSchema",
    "IngestResult",
    "Snapshot",
    "Split",
    "ValidationResult",
    "content_hash",
    "demo_schema",
    "generate_demo",
    "ingest",
    "latest_snapshot_id",
    "load_source",
    "project_schema",
    "read_snapshot",
    "read_table",
    "require_training_rows",
    "row_key",
    "slice_column_problem",
    "split_column_problem",
    "split_rows",
    "time_split",
    "validate",
    "write_snapshot",
    "write_table",
]
