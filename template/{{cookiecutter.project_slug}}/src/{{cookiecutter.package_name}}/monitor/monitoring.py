"""Is the live data still the data the champion learned from, and is the champion as good?

`monitor(project)` compares the current window (the prediction log, or
a named file) with the champion's training snapshot using Evidently, checks missing values and
ranges, measures performance where labels have arrived, and writes a `retrain` flag for CI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .. import exit_codes
from ..config import Project
from ..data import DataSchema, Snapshot, read_snapshot, read_table, validate
from ..features import model_input
from ..metrics import predict_scores
from ..predictions import PredictionLog
from ..store import Store
from .checks import LABEL, PREDICTION, drift, performance, quality, with_scores

Status = Literal["ok", "insufficient_data", "drift", "performance_drop"]


@dataclass(frozen=True)
class MonitorResult:
    status: Status
    retrain: bool
    reasons: list[str]
    summary: dict[str, Any]
    report: Path | None
    flag: Path

    @property
    def exit_code(self) -> exit_codes.ExitCode:
        """So CI can branch on the status without reading the report."""
        return exit_codes.exit_code(self.status)


def _current(
    project: Project,
    schema: DataSchema,
    champion: tuple[str, Any],
    source: Path | None,
    now: datetime,
) -> tuple[pd.DataFrame, str]:
    """Features, prediction and (where known) label of the window under watch. From the log,
    only what the champion itself served: after a promotion the old champion's answers say
    nothing about the new one, and its window starts afresh."""
    version, model = champion
    task = project.config.train.task
    if source is not None:
        raw = read_table(source)
        result = validate(raw, schema, now=now, scoring=schema.target.name not in raw.columns)
        frame = result.valid
        current = model_input(frame, schema)
        current = with_scores(current, predict_scores(model, current, task))
        if schema.target.name in frame.columns:
            current[LABEL] = frame[schema.target.name].to_numpy(float)
        if schema.timestamp_column in frame.columns:
            current["ts"] = frame[schema.timestamp_column].to_numpy()
        return current, f"file {source} ({len(raw)} rows, {len(result.quarantined)} quarantined)"
    since = now - timedelta(days=project.config.monitor.window_days)
    with PredictionLog(project.prediction_log_url) as predictions:
        log = predictions.read(since=since, until=now, served=True)
    log = log[log["model_version"] == version].reset_index(drop=True)
    if log.empty:
        return pd.DataFrame(
            columns=[*schema.feature_columns, PREDICTION]
        ), f"prediction log since {since:%Y-%m-%d}"
    current = model_input(PredictionLog.features_frame(log), schema)
    current = with_scores(current, PredictionLog.scores(log["prediction"], log["probabilities"]))
    current[LABEL] = log["label"].to_numpy(float)
    current["ts"] = log["ts"].to_numpy()
    served = f"{len(log)} predictions served by version {version}"
    return current, f"prediction log since {since:%Y-%m-%d} ({served})"


def reference_rows(snapshot: Snapshot, kind: str) -> tuple[pd.DataFrame, str]:
    """The champion's reference data and how reports name it. "unseen" (the default): the
    validation and holdout rows, which the fit never saw; on its own training rows a model's
    predictions are sharper than anywhere else, which would read as prediction drift on
    ordinary data. "training": the training split, when features alone matter."""
    if kind == "training":
        return snapshot.train, f"the training split of snapshot {snapshot.snapshot_id}"
    unseen = pd.concat([snapshot.validation, snapshot.holdout], ignore_index=True)
    return unseen, (
        f"the validation and holdout rows of snapshot {snapshot.snapshot_id} (unseen by the fit)"
    )


def monitor(
    project: Project, source: Path | None = None, now: datetime | None = None
) -> MonitorResult:
    """Compare the current window with the champion's reference data (`monitor.reference`: the
    rows of its snapshot its fit never saw, or its training split); write report and flag."""
    now = now or datetime.now(UTC)
    config = project.config
    store = Store.open(project)
    name = store.model_name
    champion, model = store.load_champion()
    snapshot = read_snapshot(
        project.snapshots_dir, store.training_snapshot(champion, project.snapshots_dir)
    )
    schema = snapshot.schema
    rows, described = reference_rows(snapshot, config.monitor.reference)
    reference = model_input(rows, schema)
    reference = with_scores(reference, predict_scores(model, reference, config.train.task))
    reference[LABEL] = rows[schema.target.name].to_numpy(float)
    current, window = _current(project, schema, (str(champion.version), model), source, now)

    directory = project.monitor_reports_dir
    directory.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    summary: dict[str, Any] = {
        "checked_at": now.isoformat(),
        "model": name,
        "champion_version": str(champion.version),
        "reference": {
            "snapshot_id": snapshot.snapshot_id,
            "rows": len(reference),
            "kind": config.monitor.reference,
            "description": described,
        },
        "current": {"source": window, "rows": len(current)},
        "policy": config.monitor.model_dump(),
    }
    report_path: Path | None = None
    reasons: dict[str, list[str]] = {"drift": [], "quality": [], "performance": []}
    if len(current) < config.monitor.min_window_rows:
        status: Status = "insufficient_data"
        reasons["drift"].append(
            f"only {len(current)} rows in the window, below monitor.min_window_rows = "
            f"{config.monitor.min_window_rows} in {project.config_name}"
        )
    else:
        snap, summary["drift"], reasons["drift"] = drift(project, schema, reference, current)
        summary["quality"], reasons["quality"] = quality(
            project, schema, reference, current, described
        )
        trained = champion.tags.get(f"holdout_{config.train.primary_metric}")
        summary["performance"], reasons["performance"] = performance(
            project, schema, float(trained) if trained else None, current, reference
        )
        report_path = directory / f"{stamp}.html"
        snap.save_html(str(report_path))
        status = (
            "performance_drop"
            if reasons["performance"]
            else "drift"
            if reasons["drift"] or reasons["quality"]
            else "ok"
        )
    retrain = status in {"drift", "performance_drop"}
    all_reasons = [r for group in reasons.values() for r in group]
    summary |= {
        "status": status,
        "retrain": retrain,
        "reasons": all_reasons,
        "report": report_path.name if report_path else None,
    }
    summary_path = directory / f"{stamp}.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    flag = project.reports_dir / "retrain.json"
    flag.write_text(
        json.dumps(
            {
                "retrain": retrain,
                "status": status,
                "reasons": all_reasons,
                "summary": project.shown(summary_path),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    with store.run("monitor") as run:
        run.set_tags({"stage": "monitor", "status": status, "champion": str(champion.version)})
        if "drift" in summary:
            run.log_metrics({"drifted_share": summary["drift"]["drifted_share"]})
        run.log_artifact(summary_path, "monitor")
        if report_path:
            run.log_artifact(report_path, "monitor")
    return MonitorResult(
        status=status,
        retrain=retrain,
        reasons=all_reasons,
        summary=summary,
        report=report_path,
        flag=flag,
    )
