"""Immutable Parquet snapshots named by content, so every model can say exactly what it saw."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..files import written_whole
from .schema import DataSchema
from .sources import DataError
from .split import described_split

MANIFEST = "manifest.json"
LATEST = "LATEST"
PARTS = ("train", "validation", "holdout")


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of column names, dtypes and values, so equal data has an equal name."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """One ingest: its split frames and the manifest that describes them."""

    directory: Path
    manifest: dict[str, Any]
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    @property
    def snapshot_id(self) -> str:
        return self.directory.name

    @cached_property
    def schema(self) -> DataSchema:
        """The schema the rows were validated against when the snapshot was taken."""
        return DataSchema.model_validate(self.manifest["schema"])

    @property
    def split(self) -> dict[str, Any]:
        """How the rows were split and what the holdout means, as ingest recorded it."""
        return described_split(self.manifest)

    def digest(self, part: str) -> str:
        return str(self.manifest["parts"][part]["sha256"])

    def path(self, part: str) -> Path:
        return self.directory / f"{part}.parquet"


def _write_parts(
    directory: Path, snapshot_id: str, parts: dict[str, pd.DataFrame], manifest: dict[str, Any]
) -> None:
    described = {}
    for name, frame in parts.items():
        path = directory / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        # Hash what a reader gets back: Parquet may narrow dtypes (ns -> us, object -> str).
        described[name] = {"rows": len(frame), "sha256": content_hash(pd.read_parquet(path))}
    body = {**manifest, "snapshot_id": snapshot_id, "parts": described}
    (directory / MANIFEST).write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")


def write_snapshot(
    root: Path, snapshot_id: str, parts: dict[str, pd.DataFrame], manifest: dict[str, Any]
) -> Path:
    """Parts and manifest go to a hidden folder renamed into place, then LATEST moves: a crash
    leaves neither a half-written snapshot nor a dangling LATEST.

    The name holds the content's hash, so a snapshot of that name that already exists holds
    these rows (a rerun within the same second) and is kept as it is.
    """
    directory = root / snapshot_id
    if not directory.exists():
        staging = root / f".{snapshot_id}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            _write_parts(staging, snapshot_id, parts, manifest)
            staging.rename(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    with written_whole(root / LATEST) as pointer:
        pointer.write_text(snapshot_id, encoding="utf-8")
    return directory


def latest_snapshot_id(root: Path) -> str | None:
    """The snapshot the last ingest in this checkout wrote, or None before the first."""
    try:
        return (root / LATEST).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def read_snapshot(root: Path, snapshot_id: str | None = None) -> Snapshot:
    """The named snapshot, or the latest one; checks every part against its recorded hash."""
    snapshot_id = snapshot_id or latest_snapshot_id(root)
    if snapshot_id is None:
        raise DataError(f"no snapshot in {root}: run `ingest` first")
    directory = root / snapshot_id
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"snapshot {snapshot_id} not found in {root}") from None
    frames = {name: pd.read_parquet(directory / f"{name}.parquet") for name in PARTS}
    for name, frame in frames.items():
        if content_hash(frame) != manifest["parts"][name]["sha256"]:
            raise DataError(f"snapshot {snapshot_id}: {name}.parquet does not match its hash")
    return Snapshot(directory=directory, manifest=manifest, **frames)
