"""The prediction log: every served prediction and every label that arrives later.

Serving appends to it; monitoring and the online A/B report read it. One SQLite file per UTC day
(`logs/predictions/YYYY-MM-DD.sqlite`) keeps files small and makes retention a matter of deleting
old days; SQLite's journal means a crash never leaves a half-written row behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    ts TEXT NOT NULL,
    entity_id TEXT,
    model_version TEXT NOT NULL,
    served INTEGER NOT NULL,
    features TEXT NOT NULL,
    prediction REAL NOT NULL,
    latency_ms REAL NOT NULL,
    PRIMARY KEY (prediction_id, variant)
);
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    label REAL NOT NULL
);
"""


@dataclass(frozen=True)
class PredictionRecord:
    """One model's answer to one request; in shadow mode a request has two, one per variant."""

    prediction_id: str
    variant: str
    model_version: str
    served: bool
    features: dict[str, Any]
    prediction: float
    latency_ms: float
    entity_id: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class FeedbackRecord:
    prediction_id: str
    label: float
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))


class PredictionLog:
    """Append-only daily SQLite files under one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.sqlite"

    @contextmanager
    def _open(self, day: date) -> Iterator[sqlite3.Connection]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self._file(day), timeout=30)) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            yield db

    def append(self, records: Iterable[PredictionRecord]) -> int:
        """Write a batch in one transaction per day; returns how many rows were written."""
        by_day: dict[date, list[tuple[Any, ...]]] = {}
        for r in records:
            by_day.setdefault(r.ts.astimezone(UTC).date(), []).append(
                (
                    r.prediction_id,
                    r.variant,
                    r.ts.astimezone(UTC).isoformat(),
                    r.entity_id,
                    r.model_version,
                    int(r.served),
                    json.dumps(r.features, default=str),
                    float(r.prediction),
                    float(r.latency_ms),
                )
            )
        for day, rows in by_day.items():
            with self._open(day) as db:
                db.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?,?,?)", rows
                )
        return sum(len(rows) for rows in by_day.values())

    def append_feedback(self, records: Iterable[FeedbackRecord]) -> int:
        by_day: dict[date, list[tuple[Any, ...]]] = {}
        for r in records:
            by_day.setdefault(r.ts.astimezone(UTC).date(), []).append(
                (r.prediction_id, r.ts.astimezone(UTC).isoformat(), float(r.label))
            )
        for day, rows in by_day.items():
            with self._open(day) as db:
                db.executemany("INSERT OR REPLACE INTO feedback VALUES (?,?,?)", rows)
        return sum(len(rows) for rows in by_day.values())

    def has_prediction(self, prediction_id: str, days: int = 7) -> bool:
        """Whether a served prediction with this id was logged in the last `days` daily files."""
        for day in self.days()[-days:]:
            with closing(sqlite3.connect(self._file(day))) as db:
                query = "SELECT 1 FROM predictions WHERE prediction_id = ? AND served = 1 LIMIT 1"
                if db.execute(query, (prediction_id,)).fetchone():
                    return True
        return False

    def days(self) -> list[date]:
        if not self.directory.exists():
            return []
        return sorted(date.fromisoformat(path.stem) for path in self.directory.glob("*.sqlite"))

    def read(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Predictions in [since, until), with the label joined where feedback has arrived."""
        predictions, feedback = [], []
        for day in self.days():
            with closing(sqlite3.connect(self._file(day))) as db:
                predictions.append(pd.read_sql_query("SELECT * FROM predictions", db))
                feedback.append(pd.read_sql_query("SELECT prediction_id, label FROM feedback", db))
        columns = [
            "prediction_id",
            "variant",
            "ts",
            "entity_id",
            "model_version",
            "served",
            "features",
            "prediction",
            "latency_ms",
            "label",
        ]
        if not predictions:
            return pd.DataFrame(columns=columns)
        frame = pd.concat(predictions, ignore_index=True)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        if since is not None:
            frame = frame[frame["ts"] >= since]
        if until is not None:
            frame = frame[frame["ts"] < until]
        labels = pd.concat(feedback, ignore_index=True).drop_duplicates(
            "prediction_id", keep="last"
        )
        frame = frame.merge(labels, on="prediction_id", how="left")
        frame["served"] = frame["served"].astype(bool)
        return frame[columns].sort_values("ts", kind="stable").reset_index(drop=True)

    @staticmethod
    def features_frame(log: pd.DataFrame) -> pd.DataFrame:
        """The logged request features as columns, for drift checks against training data."""
        return pd.DataFrame([json.loads(row) for row in log["features"]], index=log.index)
