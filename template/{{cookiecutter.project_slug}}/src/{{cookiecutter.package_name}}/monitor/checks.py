"""The checks a window of live data goes through: drift (Evidently), data quality, performance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset, DataSummaryPreset

from ..config import Project
from ..data import DataSchema
from ..metrics import class_recalls, logged_predictions, metric

PREDICTION, LABEL = "prediction", "label"
# Three or more classes: PREDICTION holds the class decided (its index) and these columns every
# class's probability, which the primary metric reads (`scores`).
PROBABILITY = "probability_{}"
BOOTSTRAP_RESAMPLES = 200
SHOWN_UNSEEN = 3  # unseen categories a reason names (the summary lists up to ten)


def quality(
    project: Project,
    schema: DataSchema,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    described: str = "the reference data",
) -> tuple[dict[str, Any], list[str]]:
    """Missing values, and values out of the champion's domain: numbers outside the reference
    data's range, categories the schema does not list (which the service scores as unknowns
    under `serve.unseen_categories: score`). One policy, `monitor.max_out_of_range_share`, for
    both: either is a share of rows the model learnt nothing about."""
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
                reasons.append(
                    f"{name}: {outside:.1%} of values outside the range of {described} "
                    f"[{low:g}, {high:g}]"
                )
        if name in schema.categorical_features and current[name].notna().any():
            entry |= _unseen(schema, name, current[name], policy.max_out_of_range_share, reasons)
        checks[name] = entry
    return checks, reasons


def _unseen(
    schema: DataSchema, name: str, values: pd.Series, limit: float, reasons: list[str]
) -> dict[str, Any]:
    known = set(schema.column(name).categories or ())
    present = values.dropna().astype(str)
    unseen = present[~present.isin(known)]
    share = len(unseen) / len(present)
    counts = unseen.value_counts()
    if share > limit:
        shown = ", ".join(repr(value[:40]) for value in counts.index[:SHOWN_UNSEEN])
        more = f" and {len(counts) - SHOWN_UNSEEN} more" if len(counts) > SHOWN_UNSEEN else ""
        reasons.append(
            f"{name}: {share:.1%} of values are categories the schema does not list "
            f"({shown}{more}), scored as unknowns"
        )
    return {"unseen_category_share": share, "unseen_categories": list(counts.index[:10])}


def with_scores(frame: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """`frame` with a model's scores in the columns the checks read: PREDICTION, and for a
    probability matrix the class decided there and each class's probability beside it."""
    if scores.ndim == 1:
        return frame.assign(**{PREDICTION: scores})
    probabilities = {PROBABILITY.format(k): scores[:, k] for k in range(scores.shape[1])}
    return frame.assign(**{PREDICTION: logged_predictions(scores)}, **probabilities)


def scores(rows: pd.DataFrame, classes: int) -> np.ndarray:
    """What the metrics read from rows `with_scores` made: the prediction, or the probability
    matrix of `classes` (> 0) classes."""
    if classes:
        return rows[[PROBABILITY.format(k) for k in range(classes)]].to_numpy(float)
    return rows[PREDICTION].to_numpy(float)


def _as_classes(frame: pd.DataFrame, schema: DataSchema, columns: list[str]) -> pd.DataFrame:
    """Class indices as the classes' names, so Evidently compares them as categories."""
    names = np.asarray(schema.target.classes, dtype=object)
    out = frame.copy()
    for column in columns:
        known = out[column].notna()
        out[column] = out[column].astype(object)
        out.loc[known, column] = names[out.loc[known, column].astype(int).to_numpy()]
    return out


def drift(
    project: Project, schema: DataSchema, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[Any, dict[str, Any], list[str]]:
    """The Evidently report, its numbers, and the reasons it gives for drift. Three or more
    classes: the decided class is compared as a category, and so is the label once enough
    labelled rows arrived (label drift: the classes' mix moved)."""
    policy = project.config.monitor
    watched = [PREDICTION]
    if schema.target.is_multiclass:
        labelled = int(current[LABEL].notna().sum()) if LABEL in current else 0
        if labelled >= policy.min_window_rows:
            watched.append(LABEL)
        reference = _as_classes(reference, schema, watched)
        current = _as_classes(current, schema, watched)
        definition = DataDefinition(
            numerical_columns=schema.numeric_features,
            categorical_columns=[*schema.categorical_features, *watched],
        )
    else:
        definition = DataDefinition(
            numerical_columns=[*schema.numeric_features, PREDICTION],
            categorical_columns=schema.categorical_features,
        )
    columns = [*schema.feature_columns, *watched]
    report = Report(
        [
            DataDriftPreset(
                columns=schema.feature_columns,
                drift_share=policy.drift_share,
                method=policy.method,
                threshold=policy.threshold,
            ),
            *(
                ValueDrift(column=column, method=policy.method, threshold=policy.threshold)
                for column in watched
            ),
            DataSummaryPreset(columns=columns),
        ],
        include_tests=True,
    )
    # A column with one value in a window has no correlation: Evidently reports it as missing,
    # and numpy's "invalid value encountered in divide" on the way says nothing to the reader.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = report.run(
            current_data=Dataset.from_pandas(current[columns], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
        )
    body = snapshot.dict()
    share, per_column = 0.0, {}
    for result in body["metrics"]:
        config = result["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(result["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            per_column[config["column"]] = {
                "score": float(result["value"]),
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
    if per_column.get(LABEL, {}).get("drifted"):
        reasons.append("the distribution of labels drifted (the classes' mix moved)")
    return snapshot, {"drifted_share": share, "columns": per_column}, reasons


def _known(values: dict[str, float]) -> dict[str, float | None]:
    return {name: None if np.isnan(value) else value for name, value in values.items()}


def performance(
    project: Project,
    schema: DataSchema,
    trained: float | None,
    current: pd.DataFrame,
    reference: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The primary metric on labelled rows, overall and by day, against the training holdout.
    Three or more classes: each class's recall too, beside the reference rows' (`reference`,
    `with_scores` applied, its target in LABEL), so a class the model stopped finding shows."""
    config = project.config
    metric_name, task = config.train.primary_metric, config.train.task
    if LABEL not in current or current[LABEL].notna().sum() < config.monitor.min_window_rows:
        labelled = int(current[LABEL].notna().sum()) if LABEL in current else 0
        return {"labelled_rows": labelled, "status": "not enough labels yet"}, []
    rows = current[current[LABEL].notna()]
    classes = len(schema.target.classes or ()) if schema.target.is_multiclass else 0
    score = metric(task, metric_name)
    truth, scored = rows[LABEL].to_numpy(float), scores(rows, classes)
    value = score(truth, scored)
    by_day = {}
    if "ts" in rows:
        for day, group in rows.groupby(pd.to_datetime(rows["ts"], utc=True).dt.date):
            by_day[str(day)] = {
                "rows": len(group),
                metric_name: score(group[LABEL].to_numpy(float), scores(group, classes)),
            }
    result: dict[str, Any] = {
        "labelled_rows": len(rows),
        "metric": metric_name,
        "current": value,
        "training_holdout": trained,
        "by_day": by_day,
    }
    if classes:  # by class name; None for a class without rows (strict JSON has no NaN)
        names = list(schema.target.classes or ())
        result["class_recall"] = _known(class_recalls(truth, scored, names))
        if reference is not None and LABEL in reference:
            result["class_recall_reference"] = _known(
                class_recalls(reference[LABEL].to_numpy(float), scores(reference, classes), names)
            )
    if trained is None or not np.isfinite(value):
        return result, []
    maximize = score.maximize
    # A window's metric is noisy (an RMSE over heavy-tailed targets easily moves by 20%), so a
    # drop counts only when even the window's most favourable plausible value (a one-sided 95%
    # bootstrap bound) is worse than training by more than the relative threshold.
    draws = np.random.default_rng(0).integers(0, len(rows), (BOOTSTRAP_RESAMPLES, len(rows)))
    resampled = [score(truth[i], scored[i]) for i in draws]
    bound = float(np.nanquantile(resampled, 0.95 if maximize else 0.05))
    scale = max(abs(trained), 1e-12)
    drop = (trained - value if maximize else value - trained) / scale
    confident_drop = (trained - bound if maximize else bound - trained) / scale
    result |= {"relative_drop": drop, "favourable_bound": bound, "confident_drop": confident_drop}
    if confident_drop > config.monitor.performance_drop:
        return result, [f"{metric_name} fell from {trained:.4f} at training to {value:.4f}"]
    return result, []
