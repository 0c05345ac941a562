"""What the loop left behind, read back for the page: the prediction log, the newest monitor
summary and the decision records (the registry's versions are `store.read_versions`, which
`models` prints too). Nothing here recomputes a decision; every number comes from where the stage
that made it wrote it down."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..config import Project
from ..metrics import MIN_SLICE_ROWS, Metric, metric
from ..predictions import PredictionLog, PredictionLogError, short_reason

# Points per version on the metric-over-time chart: enough to show a trend, few enough that each
# rests on tens of labels even for a version with only a few hundred.
MAX_POINTS_PER_VERSION = 12
LABELLED_COLUMNS = ["ts", "model_version", "prediction", "probabilities", "label"]


@dataclass(frozen=True)
class Traffic:
    """Served predictions per version, and those whose label has arrived (`labelled`: ts,
    model_version, prediction, probabilities, label). `problem` says why the log could not be
    read."""

    served: dict[str, int] = field(default_factory=dict)
    labelled: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LABELLED_COLUMNS))
    problem: str | None = None


def read_traffic(project: Project) -> Traffic:
    """Every served prediction in the log; an unreachable log is said on the page, not fatal."""
    try:
        with PredictionLog(project.prediction_log_url) as log:
            served = log.read(served=True)
    except (sa.exc.SQLAlchemyError, PredictionLogError) as error:
        return Traffic(problem=f"the prediction log could not be read: {short_reason(error)}")
    counts = {str(k): int(v) for k, v in served.groupby("model_version").size().items()}
    labelled = served.loc[served["label"].notna(), LABELLED_COLUMNS].reset_index(drop=True)
    labelled["model_version"] = labelled["model_version"].astype(str)
    return Traffic(served=counts, labelled=labelled)


@dataclass(frozen=True)
class Bucket:
    """The metric on one run of consecutive labelled predictions of one version."""

    version: str
    middle: pd.Timestamp  # when the bucket's middle prediction was served
    rows: int
    value: float


def metric_buckets(project: Project, labelled: pd.DataFrame) -> dict[str, list[Bucket]]:
    """The gate metric per version in equal-count buckets of its labelled predictions, in time
    order.

    Equal counts rather than hours or days: every point then rests on as many labels, so its
    noise is the same all along the line whatever the traffic's rhythm, while a clock bucket
    holds five labels in a quiet hour and thousands in a busy one (a rank metric on five rows
    swings between 0 and 1). Up to `MAX_POINTS_PER_VERSION` points draw a readable line from a
    few hundred to many thousands of labels; no bucket has fewer than `metrics.MIN_SLICE_ROWS`,
    below which the project gives no metric at all. A version with fewer labels has no point.
    """
    score = gate_metric(project)
    found: dict[str, list[Bucket]] = {}
    for version, rows in labelled.groupby("model_version", sort=False):
        ordered = rows.sort_values("ts", kind="stable")
        count = min(MAX_POINTS_PER_VERSION, len(ordered) // MIN_SLICE_ROWS)
        found[str(version)] = [
            Bucket(
                version=str(version),
                middle=pd.Timestamp(part["ts"].iloc[len(part) // 2]),
                rows=len(part),
                value=_score(score, part),
            )
            for part in _split(ordered, count)
        ]
    return found


def version_metric(project: Project, labelled: pd.DataFrame, version: str) -> float:
    """The gate metric on every labelled prediction of `version`; NaN with none."""
    rows = labelled[labelled["model_version"] == version]
    return _score(gate_metric(project), rows) if len(rows) else math.nan


def gate_metric(project: Project) -> Metric:
    return metric(project.config.train.task, project.config.gate_metric)


def _split(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """`parts` runs of consecutive rows whose sizes differ by at most one."""
    if parts < 1:
        return []
    bounds = [int(b) for b in np.linspace(0, len(frame), parts + 1).round()]
    return [frame.iloc[start:end] for start, end in itertools.pairwise(bounds)]


def _score(score: Metric, rows: pd.DataFrame) -> float:
    return score(
        rows["label"].to_numpy(float),
        PredictionLog.scores(rows["prediction"], rows["probabilities"]),
    )


@dataclass(frozen=True)
class Monitored:
    """The newest monitor run: its summary, where it is, and its Evidently report if it wrote
    one (a window too small to judge gets none)."""

    summary: dict[str, Any]
    path: Path
    report: Path | None


def newest_monitor(project: Project) -> Monitored | None:
    """The newest `<stamp>.json` summary; stamps sort in time order."""
    summaries = sorted(project.monitor_reports_dir.glob("*.json"))
    if not summaries:
        return None
    path = summaries[-1]
    summary = _json(path)
    name = summary.get("report")
    report = path.with_name(name) if isinstance(name, str) else None
    return Monitored(summary, path, report if report and report.is_file() else None)


@dataclass(frozen=True)
class Record:
    """One decision record: the JSON the decision wrote, and its Markdown twin if present."""

    path: Path
    body: dict[str, Any]

    @property
    def markdown(self) -> Path | None:
        twin = self.path.with_suffix(".md")
        return twin if twin.is_file() else None

    @property
    def has_evidence(self) -> bool:
        """A gate decision that compared two models: the numbers the gate section shows."""
        return (
            self.body.get("kind") == "promotion"
            and "primary" in self.body
            and ("test" in self.body)
        )


def decision_records(project: Project) -> list[Record]:
    """Every decision record, newest first; the stamp in each name sorts them in time order."""
    paths = sorted(project.promotion_reports_dir.glob("*.json"), reverse=True)
    return [Record(path, _json(path)) for path in paths]


def _json(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}
