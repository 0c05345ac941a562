"""The holdout plots logged with every training run."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from ..config import Task
from ..metrics import CALIBRATION_BINS, calibration_bin, class_decisions


def evaluation_figures(task: Task, y: np.ndarray, scores: np.ndarray) -> dict[str, Figure]:
    """Reliability and ROC curves for a binary classifier; for three or more classes the
    confusion matrix and the reliability of the likeliest class's probability (is a 70% answer
    right 70% of the time?); predicted-vs-actual and residuals for a regressor."""
    if task == "binary_classification":
        return {"reliability.png": _reliability(y, scores), "roc.png": _roc(y, scores)}
    if task == "multiclass_classification":
        decided = class_decisions(scores)
        right = (decided == y.astype(int)).astype(float)
        return {
            "confusion.png": _confusion(y.astype(int), decided, scores.shape[1]),
            "reliability.png": _reliability(right, scores.max(axis=1)),
        }
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
    which = calibration_bin(probability)
    filled = [b for b in range(CALIBRATION_BINS) if (which == b).any()]
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


def _confusion(y: np.ndarray, decided: np.ndarray, classes: int) -> Figure:
    """Each true class's rows (a row of the matrix), by the class decided: shares of the row."""
    figure, axes = _axes("Confusion (holdout, share of each true class)")
    counts = np.zeros((classes, classes))
    np.add.at(counts, (y, decided), 1.0)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    image = axes.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set_xlabel("decided class (index)")
    axes.set_ylabel("true class (index)")
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
