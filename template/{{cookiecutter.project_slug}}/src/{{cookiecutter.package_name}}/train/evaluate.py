"""Metrics overall and per slice, and the plots that go with them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

from ..config import Task

MIN_SLICE_ROWS = 30


def predict_scores(model: Any, frame: pd.DataFrame, task: Task) -> np.ndarray:
    """Probability of the positive class for classifiers, the prediction for regressors."""
    if task == "binary_classification":
        return np.asarray(model.predict_proba(frame)[:, 1], dtype=float)
    return np.asarray(model.predict(frame), dtype=float)


def expected_calibration_error(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> float:
    """Mean gap between predicted and observed positive rate, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(probability[members].mean() - y[members].mean())
    return float(error)


def _classifier_metrics() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    def ranked(metric: Callable[..., Any]) -> Callable[[np.ndarray, np.ndarray], float]:
        # Ranking metrics are undefined when the rows hold a single class.
        return lambda y, p: float(metric(y, p)) if len(np.unique(y)) == 2 else math.nan

    return {
        "roc_auc": ranked(roc_auc_score),
        "average_precision": ranked(average_precision_score),
        "log_loss": lambda y, p: float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "brier": lambda y, p: float(brier_score_loss(y, p)),
        "accuracy": lambda y, p: float(accuracy_score(y, p >= 0.5)),
        "f1": lambda y, p: float(f1_score(y, p >= 0.5, zero_division=0.0)),
        "calibration_error": expected_calibration_error,
    }


def _regression_metrics() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    return {
        "rmse": lambda y, p: float(root_mean_squared_error(y, p)),
        "mae": lambda y, p: float(mean_absolute_error(y, p)),
        "r2": lambda y, p: float(r2_score(y, p)) if len(y) > 1 else math.nan,
    }


METRICS: dict[Task, dict[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    "binary_classification": _classifier_metrics(),
    "regression": _regression_metrics(),
}


def compute_metrics(task: Task, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Every metric of the task; NaN where a metric is undefined for these rows."""
    return {name: metric(y, scores) for name, metric in METRICS[task].items()}


def slice_metrics(
    task: Task, y: np.ndarray, scores: np.ndarray, slices: pd.Series
) -> dict[str, dict[str, float]]:
    """Metrics for each value of the slice column with enough rows to mean something."""
    result: dict[str, dict[str, float]] = {}
    keys = slices.fillna("(missing)").astype(str).to_numpy()
    for value in sorted(set(keys)):
        members = keys == value
        if members.sum() >= MIN_SLICE_ROWS:
            result[value] = {"rows": float(members.sum())} | compute_metrics(
                task, y[members], scores[members]
            )
    return result


def evaluation_figures(task: Task, y: np.ndarray, scores: np.ndarray) -> dict[str, Figure]:
    """Reliability and ROC curves for classifiers; predicted-vs-actual and residuals otherwise."""
    if task == "binary_classification":
        return {"reliability.png": _reliability(y, scores), "roc.png": _roc(y, scores)}
    return {
        "predicted_vs_actual.png": _predicted_vs_actual(y, scores),
        "residuals.png": _residuals(y, scores),
    }


def _axes(title: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=(5, 4), tight_layout=True)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _reliability(y: np.ndarray, probability: np.ndarray) -> Figure:
    figure, axes = _axes("Reliability (holdout)")
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, 9)
    filled = [b for b in range(10) if (which == b).any()]
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.plot(
        [probability[which == b].mean() for b in filled],
        [y[which == b].mean() for b in filled],
        marker="o",
        label="model",
    )
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed rate")
    axes.legend()
    return figure


def _roc(y: np.ndarray, probability: np.ndarray) -> Figure:
    figure, axes = _axes("ROC (holdout)")
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, probability)
        axes.plot(fpr, tpr)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    return figure


def _predicted_vs_actual(y: np.ndarray, prediction: np.ndarray) -> Figure:
    figure, axes = _axes("Predicted vs actual (holdout)")
    axes.scatter(y, prediction, s=4, alpha=0.4)
    low, high = float(min(y.min(), prediction.min())), float(max(y.max(), prediction.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey")
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    return figure


def _residuals(y: np.ndarray, prediction: np.ndarray) -> Figure:
    figure, axes = _axes("Residuals (holdout)")
    axes.hist(prediction - y, bins=50)
    axes.set_xlabel("predicted - actual")
    return figure
