"""Ingest raw rows, quarantine invalid ones with reasons, split by time, write a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..config import Project
from .demo import demo_schema
from .schema import DataSchema
from .snapshot import Snapshot, content_hash, read_snapshot, write_snapshot
from .sources import DataError, load_source, write_table
from .split import time_split
from .validation import validate


@dataclass(frozen=True)
class IngestResult:
    snapshot: Snapshot
    rows_read: int
    rows_valid: int
    rows_quarantined: int
    quarantine_file: Path | None


def project_schema(project: Project) -> DataSchema:
    """The schema of the project's source, without reading any data."""
    source = project.config.data.source
    if source.kind == "demo":
        return demo_schema(project.config.train.task)
    return DataSchema.from_yaml(project.path(source.schema_path))


def ingest(project: Project, now: datetime | None = None) -> IngestResult:
    """Read the source, quarantine bad rows, split by time and write a snapshot."""
    now = now or datetime.now(UTC)
    raw, schema, source = load_source(project)
    result = validate(raw, schema, now=now)
    snapshot_id = f"{now:%Y%m%dT%H%M%S}-{content_hash(result.valid)[:8]}"
    quarantine_file = None
    if not result.quarantined.empty:
        # Written before any refusal below, so the reasons a refusal points to exist.
        quarantine_file = project.quarantine_dir / f"{snapshot_id}.parquet"
        write_table(result.quarantined, quarantine_file)
    minimum = project.config.data.min_training_rows
    if len(result.valid) < minimum:
        refused = (
            f"; the {len(result.quarantined)} refused rows, each with its reason, are in "
            f"{quarantine_file.relative_to(project.root)}"
            if quarantine_file
            else ""
        )
        raise DataError(
            f"only {len(result.valid)} valid rows of {len(raw)} (minimum {minimum}){refused}"
        )
    split = time_split(result.valid, schema.timestamp_column, project.config.data.split)
    times = {name: part[schema.timestamp_column] for name, part in split.parts().items()}
    manifest = {
        "created_at": now.isoformat(),
        "source": source,
        "schema": schema.model_dump(mode="json"),
        "rows_read": len(raw),
        "rows_valid": len(result.valid),
        "rows_quarantined": len(result.quarantined),
        "ignored_columns": list(result.ignored_columns),
        "quarantine_file": str(quarantine_file.relative_to(project.root))
        if quarantine_file
        else None,
        "time_ranges": {
            name: [t.min().isoformat(), t.max().isoformat()] for name, t in times.items()
        },
    }
    directory = write_snapshot(project.snapshots_dir, snapshot_id, split.parts(), manifest)
    return IngestResult(
        snapshot=read_snapshot(project.snapshots_dir, directory.name),
        rows_read=len(raw),
        rows_valid=len(result.valid),
        rows_quarantined=len(result.quarantined),
        quarantine_file=quarantine_file,
    )
