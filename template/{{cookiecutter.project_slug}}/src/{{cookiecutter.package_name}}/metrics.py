"""Every metric the project knows, defined once: direction, value, per-row loss, resampled form.

Training reports these, the promotion gate tests them, monitoring watches them and the online
A/B report compares variants on them. Each metric is written as a weighted form: row weights
are how often each row was drawn, so ones give the plain value, and a matrix of bootstrap draw
counts gives thousands of resampled values in a few matrix products. A new metric is one entry
in `METRICS` (and a test that it agrees with scikit-learn).

What the metrics read: a binary classifier's positive-class probability per row (y is 0 or 1), a
regressor's predicted value (y is the value), and a multiclass classifier's probability matrix,
one row per row and one column per class in the schema's order (y is the class's index,
0 to K-1, as `ColumnSpec.label` maps it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .config import Task

Direction = Literal["maximize", "minimize"]
WeightedForm = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
RowLoss = Callable[[np.ndarray, np.ndarray], np.ndarray]

DECISION_THRESHOLD = 0.5  # a probability at or above it is a positive decision
MIN_SLICE_ROWS = 30  # a slice with fewer rows gets no metrics: they would mean little
CALIBRATION_BINS = 10
LOG_LOSS_CLIP = 1e-7


def predict_scores(model: Any, frame: pd.DataFrame, task: Task) -> np.ndarray:
    """What every metric reads: the positive class's probability, the probability matrix of a
    multiclass model (n x K), or the predicted value."""
    if task == "binary_classification":
        return np.asarray(model.predict_proba(frame)[:, 1], dtype=float)
    if task == "multiclass_classification":
        return np.asarray(model.predict_proba(frame), dtype=float)
    return np.asarray(model.predict(frame), dtype=float)


def default_primary_metric(task: Task) -> str:
    """The metric a new project of `task` trains and gates on (`train.primary_metric`).

    Binary: roc_auc; regression: rmse. Multiclass: log_loss, minimized, rather than the one-vs-rest
    ROC AUC. Log loss reads the whole probability matrix (a model that is surer of the right class
    scores better, as the service's probabilities are used), is a proper scoring rule, and is the
    mean of a per-row loss, so the paired t and Wilcoxon tests compare exactly what the gate
    measures. It is defined on any rows, where macro ROC AUC is undefined as soon as a class is
    missing, which a bootstrap resample, a small holdout or a monitoring window with a rare
    class often is. Its drawback: its scale depends on K and on the class shares, so judge it
    against the baseline's (the prior class shares, `prior_scores`), which training reports.
    """
    return {
        "binary_classification": "roc_auc",
        "multiclass_classification": "log_loss",
        "regression": "rmse",
    }[task]


def class_decisions(probability: np.ndarray) -> np.ndarray:
    """The class index each row of a probability matrix decides for: the likeliest (the first of
    equally likely classes, as numpy's and scikit-learn's argmax choose)."""
    return np.asarray(np.argmax(probability, axis=1))


def prior_scores(y_train: np.ndarray, rows: int, classes: int) -> np.ndarray:
    """A multiclass baseline's probability matrix: every one of `rows` rows gets the class shares
    of the training labels `y_train` (class indices), as scikit-learn's
    `DummyClassifier(strategy="prior")` predicts; a class the labels lack gets 0."""
    counts = np.bincount(np.asarray(y_train, dtype=int), minlength=classes).astype(float)
    return np.tile(counts / counts.sum(), (rows, 1))


def logged_predictions(scores: np.ndarray) -> np.ndarray:
    """The one number per row the prediction log's `prediction` keeps: the score itself, or for
    a probability matrix the class decided (the matrix is logged beside it)."""
    if scores.ndim == 2:
        return np.asarray(class_decisions(scores), dtype=float)
    return np.asarray(scores, dtype=float)


def decisions(scores: np.ndarray) -> np.ndarray:
    """The positive decisions a classifier's probabilities stand for."""
    return np.asarray(scores, dtype=float) >= DECISION_THRESHOLD


def calibration_bin(probability: np.ndarray) -> np.ndarray:
    """Which of the equal-width calibration bins each probability falls in."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    return np.asarray(np.clip(np.digitize(probability, edges[1:-1]), 0, CALIBRATION_BINS - 1))


# --- per-row losses: what the paired t and Wilcoxon tests compare ------------------------------


def log_losses(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(probability, LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)
    return np.asarray(-(y * np.log(clipped) + (1 - y) * np.log1p(-clipped)), dtype=float)


def zero_one_losses(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    return np.asarray(decisions(probability) != (y == 1), dtype=float)


def squared_errors(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.asarray((predicted - y) ** 2, dtype=float)


def absolute_errors(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(predicted - y), dtype=float)


def class_log_losses(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Minus the log of the probability each row gives its own class (clipped as for binary)."""
    own = probability[np.arange(len(y)), np.asarray(y, dtype=int)]
    return np.asarray(-np.log(np.clip(own, LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)), dtype=float)


def class_zero_one_losses(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    return np.asarray(class_decisions(probability) != np.asarray(y, dtype=int), dtype=float)


# --- weighted forms --------------------------------------------------------------------------


def _ratio(numerator: np.ndarray, denominator: np.ndarray, undefined: float) -> np.ndarray:
    quotient = np.full(np.shape(numerator), undefined, dtype=float)
    np.divide(numerator, denominator, out=quotient, where=denominator > 0)
    return quotient


def _mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.asarray(weights @ values / weights.sum(axis=1), dtype=float)


def _class_weights_by_score(
    y: np.ndarray, scores: np.ndarray, weights: np.ndarray, *, descending: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Weight of positives and negatives at each distinct score, in score order (ties share one
    threshold, as in scikit-learn)."""
    order = np.argsort(-scores if descending else scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    drawn = weights[:, order]
    positive = y[order] == 1
    return (
        np.add.reduceat(drawn * positive, starts, axis=1),
        np.add.reduceat(drawn * ~positive, starts, axis=1),
    )


def _roc_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Share of (positive, negative) pairs ranked correctly, ties counting half (Mann-Whitney)."""
    positives, negatives = _class_weights_by_score(y, scores, weights, descending=False)
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    correct_pairs = (positives * (negatives_below + 0.5 * negatives)).sum(axis=1)
    return _ratio(correct_pairs, positives.sum(axis=1) * negatives.sum(axis=1), math.nan)


def _average_precision(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Precision at each threshold weighted by the recall it adds, as scikit-learn defines it."""
    positives, negatives = _class_weights_by_score(y, scores, weights, descending=True)
    true_positives = np.cumsum(positives, axis=1)
    precision = _ratio(true_positives, true_positives + np.cumsum(negatives, axis=1), 0.0)
    total_positives = true_positives[:, -1]
    precision_sum = (positives * precision).sum(axis=1)
    both_classes = (total_positives > 0) & (negatives.sum(axis=1) > 0)
    return _ratio(precision_sum, np.where(both_classes, total_positives, 0.0), math.nan)


def _f1(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    flagged, positive = decisions(scores), y == 1
    true_positives = weights @ (flagged & positive).astype(float)
    misses = weights @ (flagged != positive).astype(float)
    return _ratio(2 * true_positives, 2 * true_positives + misses, 0.0)


def _calibration_error(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Bin weight times |mean score - observed rate|, summed over bins = sum |bin gap| / rows."""
    gap_by_bin = np.zeros((len(y), CALIBRATION_BINS))
    gap_by_bin[np.arange(len(y)), calibration_bin(scores)] = scores - y
    return np.asarray(np.abs(weights @ gap_by_bin).sum(axis=1) / weights.sum(axis=1), dtype=float)


def _r2(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """1 - SSE / SST; a constant target scores 1 if predicted exactly, else 0 (scikit-learn)."""
    rows = weights.sum(axis=1)
    centred = y - y.mean()  # keeps the variance below free of cancellation
    squared_error = weights @ (scores - y) ** 2
    total = weights @ centred**2 - (weights @ centred) ** 2 / rows
    constant_target = np.where(squared_error == 0, 1.0, 0.0)
    explained = 1 - _ratio(squared_error, total, math.nan)
    r2 = np.where(total > 0, explained, constant_target)
    return np.where(rows > 1, r2, math.nan)


def _class_counts(
    y: np.ndarray, probability: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample and class (R x K): the weight of rows decided right, of rows decided for the
    class, and of rows of the class."""
    identity = np.eye(probability.shape[1])
    actual = identity[np.asarray(y, dtype=int)]
    decided = identity[class_decisions(probability)]
    return weights @ (actual * decided), weights @ decided, weights @ actual


def _class_f1(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each class's F1 (R x K), 2 TP / (2 TP + FP + FN); 0 for a class neither present nor
    decided for, as scikit-learn's zero_division=0 gives."""
    right, decided, actual = _class_counts(y, probability, weights)
    return _ratio(2 * right, decided + actual, 0.0)


def _macro_f1(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The mean of every class's F1, each class counting the same however rare."""
    return np.asarray(_class_f1(y, probability, weights).mean(axis=1), dtype=float)


def _weighted_f1(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every class's F1 weighted by its rows: the common classes dominate."""
    _, _, actual = _class_counts(y, probability, weights)
    weighted = (_class_f1(y, probability, weights) * actual).sum(axis=1)
    return _ratio(weighted, actual.sum(axis=1), math.nan)


def _class_accuracy(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return _mean(1 - class_zero_one_losses(y, probability), weights)


def _roc_auc_ovr(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The mean over classes of each class's ROC AUC against the rest (scikit-learn's
    multi_class="ovr", average="macro"); NaN where a class is missing, or is every row."""
    labels = np.asarray(y, dtype=int)
    each = [
        _roc_auc((labels == k).astype(float), probability[:, k], weights)
        for k in range(probability.shape[1])
    ]
    return np.asarray(np.stack(each, axis=1).mean(axis=1), dtype=float)


def class_recalls(
    y: np.ndarray, probability: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Each class's recall, by name (`classes` in the schema's order): the share of its rows
    decided for it; NaN for a class with no rows here."""
    weights = np.ones((1, len(y)))
    right, _, actual = _class_counts(np.asarray(y, dtype=float), probability, weights)
    recall = _ratio(right, actual, math.nan)[0]
    return dict(zip(classes, (float(value) for value in recall), strict=True))


def _mean_of(loss: RowLoss) -> WeightedForm:
    return lambda y, scores, weights: _mean(loss(y, scores), weights)


def _root_mean_of(loss: RowLoss) -> WeightedForm:
    return lambda y, scores, weights: np.sqrt(_mean(loss(y, scores), weights))


@dataclass(frozen=True)
class Metric:
    """One metric of one task. `row_loss` is the per-row loss whose mean moves with the metric:
    rank metrics have none of their own, so they use log loss, the proper scoring rule behind
    the probabilities; r2 is rescaled squared error."""

    name: str
    direction: Direction
    weighted: WeightedForm
    row_loss: RowLoss

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def counts_errors(self) -> bool:
        """Its per-row loss is 1 for a wrong decision and 0 for a right one: a rate of errors,
        which the online report compares as two proportions."""
        return self.row_loss in (zero_one_losses, class_zero_one_losses)

    def __call__(self, y_true: np.ndarray, scores: np.ndarray) -> float:
        """The metric on these rows; NaN where it is undefined (roc_auc on one class, say)."""
        y = np.asarray(y_true, dtype=float)
        return float(self.weighted(y, np.asarray(scores, dtype=float), np.ones((1, len(y))))[0])

    def on_counts(self, y_true: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The metric per resample; row i of `counts` says how often resample i drew each row."""
        y = np.asarray(y_true, dtype=float)
        return self.weighted(y, np.asarray(scores, dtype=float), np.asarray(counts, dtype=float))

    def improvement(self, champion: float, challenger: float) -> float:
        """How much better `challenger` is (negative when it is worse)."""
        return challenger - champion if self.maximize else champion - challenger


def _accuracy(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return _mean(1 - zero_one_losses(y, scores), weights)


def _by_name(*metrics: Metric) -> dict[str, Metric]:
    return {each.name: each for each in metrics}


METRICS: dict[str, dict[str, Metric]] = {
    "binary_classification": _by_name(
        Metric("roc_auc", "maximize", _roc_auc, log_losses),
        Metric("average_precision", "maximize", _average_precision, log_losses),
        Metric("accuracy", "maximize", _accuracy, zero_one_losses),
        Metric("f1", "maximize", _f1, zero_one_losses),
        Metric("log_loss", "minimize", _mean_of(log_losses), log_losses),
        Metric("brier", "minimize", _mean_of(squared_errors), log_losses),
        Metric("calibration_error", "minimize", _calibration_error, log_losses),
    ),
    # Every one reads the probability matrix; the decision is the likeliest class.
    "multiclass_classification": _by_name(
        Metric("log_loss", "minimize", _mean_of(class_log_losses), class_log_losses),
        Metric("roc_auc_ovr", "maximize", _roc_auc_ovr, class_log_losses),
        Metric("accuracy", "maximize", _class_accuracy, class_zero_one_losses),
        Metric("macro_f1", "maximize", _macro_f1, class_zero_one_losses),
        Metric("weighted_f1", "maximize", _weighted_f1, class_zero_one_losses),
    ),
    "regression": _by_name(
        Metric("rmse", "minimize", _root_mean_of(squared_errors), squared_errors),
        Metric("mae", "minimize", _mean_of(absolute_errors), absolute_errors),
        Metric("r2", "maximize", _r2, squared_errors),
    ),
}


def metric(task: Task, name: str) -> Metric:
    """The named metric of `task`, refused by name when the task has no such metric."""
    known = METRICS[task]
    if name not in known:
        raise ValueError(f"{name!r} is not a {task} metric; choose one of {sorted(known)}")
    return known[name]


def compute_metrics(task: Task, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Every metric of the task; NaN where a metric is undefined for these rows."""
    return {name: each(y, scores) for name, each in METRICS[task].items()}


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
