"""Stage 6, monitor: is the live data still the data the champion learned from, and is it as good?

Public entry point: `monitor(project)`. It compares the current window (the prediction log, or
a named file) with the champion's training snapshot using Evidently, checks missing values and
ranges, measures performance where labels have arrived, and writes a `retrain` flag for CI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset, DataSummaryPreset

from ..config import METRIC_DIRECTIONS, Project
from ..data import DataError, DataSchema, read_snapshot, read_table, validate
from ..features import model_input
from ..predictions import PredictionLog
from ..train.evaluate import METRICS, predict_scores
from ..train.tracking import CHAMPION, alias_version, load_version, project_client, tracking

__all__ = ["MonitorResult", "Status", "monitor"]

Status = Literal["ok", "insufficient_data", "drift", "performance_drop"]
EXIT_CODES: dict[Status, int] = {"ok": 0, "insufficient_data": 0, "drift": 1, "performance_drop": 3}
PREDICTION, LABEL = "prediction", "label"
BOOTSTRAP_RESAMPLES = 200


@dataclass(frozen=True)
class MonitorResult:
    status: Status
    retrain: bool
    reasons: list[str]
    summary: dict[str, Any]
    report: Path | None
    flag: Path

    @property
    def exit_code(self) -> int:
        """0 ok, 1 drift, 3 performance drop (2 is left for errors), so CI can branch on it."""
        return EXIT_CODES[self.status]


def _current(
    project: Project, schema: DataSchema, model: Any, source: Path | None, now: datetime
) -> tuple[pd.DataFrame, str]:
    """Features, prediction and (where known) label of the window under watch."""
    task = project.config.train.task
    if source is not None:
        raw = read_table(source)
        result = validate(raw, schema, now=now, scoring=schema.target.name not in raw.columns)
        frame = result.valid
        current = model_input(frame, schema)
        current[PREDICTION] = predict_scores(model, current, task)
        if schema.target.name in frame.columns:
            current[LABEL] = frame[schema.target.name].to_numpy(float)
        if schema.timestamp_column in frame.columns:
            current["ts"] = frame[schema.timestamp_column].to_numpy()
        return current, f"file {source} ({len(raw)} rows, {len(result.quarantined)} quarantined)"
    since = now - timedelta(days=project.config.monitor.window_days)
    log = PredictionLog(project.predictions_dir).read(since=since, until=now)
    log = log[log["served"]].reset_index(drop=True)
    if log.empty:
        return pd.DataFrame(
            columns=[*schema.feature_columns, PREDICTION]
        ), f"prediction log since {since:%Y-%m-%d}"
    current = model_input(PredictionLog.features_frame(log), schema)
    current[PREDICTION] = log["prediction"].to_numpy(float)
    current[LABEL] = log["label"].to_numpy(float)
    current["ts"] = log["ts"].to_numpy()
    return current, f"prediction log since {since:%Y-%m-%d} ({len(log)} served predictions)"


def _quality(
    project: Project, schema: DataSchema, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[dict[str, Any], list[str]]:
    """Missing values and out-of-range numbers, compared with the training data."""
    policy, checks, reasons = project.config.monitor, {}, []
    for name in schema.feature_columns:
        missing_ref, missing_cur = (
            float(reference[name].isna().mean()),
            float(current[name].isna().mean()),
        )
        entry: dict[str, Any] = {"missing_reference": missing_ref, "missing_current": missing_cur}
        if missing_cur - missing_ref > policy.max_missing_increase:
            reasons.append(
                f"{name}: missing share rose from {missing_ref:.1%} to {missing_cur:.1%}"
            )
        if name in schema.numeric_features and current[name].notna().any():
            low, high = reference[name].min(), reference[name].max()
            values = current[name].dropna()
            outside = float(((values < low) | (values > high)).mean())
            entry |= {"reference_range": [float(low), float(high)], "out_of_range_share": outside}
            if outside > policy.max_out_of_range_share:
                reasons.append(f"{name}: {outside:.1%} of values outside the training range")
        checks[name] = entry
    return checks, reasons


def _drift(
    project: Project, schema: DataSchema, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[Any, dict[str, Any], list[str]]:
    """The Evidently report, its numbers, and the reasons it gives for drift."""
    policy = project.config.monitor
    definition = DataDefinition(
        numerical_columns=[*schema.numeric_features, PREDICTION],
        categorical_columns=schema.categorical_features,
    )
    columns = [*schema.feature_columns, PREDICTION]
    report = Report(
        [
            DataDriftPreset(
                columns=schema.feature_columns,
                drift_share=policy.drift_share,
                method=policy.method,
                threshold=policy.threshold,
            ),
            ValueDrift(column=PREDICTION, method=policy.method, threshold=policy.threshold),
            DataSummaryPreset(columns=columns),
        ],
        include_tests=True,
    )
    snapshot = report.run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    body = snapshot.dict()
    share, per_column = 0.0, {}
    for metric in body["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            per_column[config["column"]] = {
                "score": float(metric["value"]),
                "method": config["method"],
                "threshold": config["threshold"],
            }
    for test in body["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        column = params.get("column")
        if str(params.get("type", "")).endswith(":ValueDrift") and column in per_column:
            per_column[column]["drifted"] = test["status"] == "FAIL"
    reasons = []
    if share >= policy.drift_share:
        drifted = sorted(c for c in schema.feature_columns if per_column.get(c, {}).get("drifted"))
        reasons.append(f"{share:.0%} of feature columns drifted ({', '.join(drifted)})")
    if per_column.get(PREDICTION, {}).get("drifted"):
        reasons.append("the distribution of predictions drifted")
    return snapshot, {"drifted_share": share, "columns": per_column}, reasons


def _performance(
    project: Project, trained: float | None, current: pd.DataFrame
) -> tuple[dict[str, Any], list[str]]:
    """The primary metric on labelled rows, overall and by day, against the training holdout."""
    config = project.config
    metric, task = config.train.primary_metric, config.train.task
    if LABEL not in current or current[LABEL].notna().sum() < config.monitor.min_window_rows:
        labelled = int(current[LABEL].notna().sum()) if LABEL in current else 0
        return {"labelled_rows": labelled, "status": "not enough labels yet"}, []
    rows = current[current[LABEL].notna()]
    score = METRICS[task][metric]
    value = score(rows[LABEL].to_numpy(float), rows[PREDICTION].to_numpy(float))
    by_day = {}
    if "ts" in rows:
        for day, group in rows.groupby(pd.to_datetime(rows["ts"], utc=True).dt.date):
            by_day[str(day)] = {
                "rows": len(group),
                metric: score(group[LABEL].to_numpy(float), group[PREDICTION].to_numpy(float)),
            }
    result = {
        "labelled_rows": len(rows),
        "metric": metric,
        "current": value,
        "training_holdout": trained,
        "by_day": by_day,
    }
    if trained is None or not np.isfinite(value):
        return result, []
    maximize = METRIC_DIRECTIONS[task][metric] == "maximize"
    # A window's metric is noisy (an RMSE over heavy-tailed targets easily moves by 20%), so a
    # drop counts only when even the window's most favourable plausible value (a one-sided 95%
    # bootstrap bound) is worse than training by more than the relative threshold.
    truth, scores = rows[LABEL].to_numpy(float), rows[PREDICTION].to_numpy(float)
    draws = np.random.default_rng(0).integers(0, len(rows), (BOOTSTRAP_RESAMPLES, len(rows)))
    resampled = [score(truth[i], scores[i]) for i in draws]
    bound = float(np.nanquantile(resampled, 0.95 if maximize else 0.05))
    scale = max(abs(trained), 1e-12)
    drop = (trained - value if maximize else value - trained) / scale
    confident_drop = (trained - bound if maximize else bound - trained) / scale
    result |= {"relative_drop": drop, "favourable_bound": bound, "confident_drop": confident_drop}
    if confident_drop > config.monitor.performance_drop:
        return result, [f"{metric} fell from {trained:.4f} at training to {value:.4f}"]
    return result, []


def monitor(
    project: Project, source: Path | None = None, now: datetime | None = None
) -> MonitorResult:
    """Compare the current window with the champion's training data; write report and flag."""
    now = now or datetime.now(UTC)
    config = project.config
    name = config.tracking.registered_model
    client = project_client(project)
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"{name} has no champion to monitor: run `train` first")
    model = load_version(client, name, str(champion.version))
    snapshot = read_snapshot(project.snapshots_dir, champion.tags.get("snapshot_id"))
    schema = snapshot.schema
    # The rows the fit never saw: on its own training rows a model's predictions are sharper than
    # anywhere else, which would read as prediction drift on perfectly ordinary data.
    unseen = pd.concat([snapshot.validation, snapshot.holdout], ignore_index=True)
    reference = model_input(unseen, schema)
    reference[PREDICTION] = predict_scores(model, reference, config.train.task)
    current, window = _current(project, schema, model, source, now)

    directory = project.reports_dir / "monitor"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    summary: dict[str, Any] = {
        "checked_at": now.isoformat(),
        "model": name,
        "champion_version": str(champion.version),
        "reference": {"snapshot_id": snapshot.snapshot_id, "rows": len(reference)},
        "current": {"source": window, "rows": len(current)},
        "policy": config.monitor.model_dump(),
    }
    report_path: Path | None = None
    reasons: dict[str, list[str]] = {"drift": [], "quality": [], "performance": []}
    if len(current) < config.monitor.min_window_rows:
        status: Status = "insufficient_data"
        reasons["drift"].append(
            f"only {len(current)} rows in the window, "
            f"below the minimum {config.monitor.min_window_rows}"
        )
    else:
        snap, summary["drift"], reasons["drift"] = _drift(project, schema, reference, current)
        summary["quality"], reasons["quality"] = _quality(project, schema, reference, current)
        trained = champion.tags.get(f"holdout_{config.train.primary_metric}")
        summary["performance"], reasons["performance"] = _performance(
            project, float(trained) if trained else None, current
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
                "summary": str(summary_path.relative_to(project.root)),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    with tracking(project), mlflow.start_run(run_name="monitor"):
        mlflow.set_tags({"stage": "monitor", "status": status, "champion": str(champion.version)})
        if "drift" in summary:
            mlflow.log_metric("drifted_share", summary["drift"]["drifted_share"])
        mlflow.log_artifact(str(summary_path), "monitor")
        if report_path:
            mlflow.log_artifact(str(report_path), "monitor")
    return MonitorResult(
        status=status,
        retrain=retrain,
        reasons=all_reasons,
        summary=summary,
        report=report_path,
        flag=flag,
    )
