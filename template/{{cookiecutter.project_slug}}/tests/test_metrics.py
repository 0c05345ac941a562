"""The project's metrics agree with scikit-learn, whole and on bootstrap resamples."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from {{ cookiecutter.package_name }}.config import Task
from {{ cookiecutter.package_name }}.metrics import (
    DECISION_THRESHOLD,
    METRICS,
    class_recalls,
    compute_metrics,
    default_primary_metric,
    metric,
    predict_scores,
    prior_scores,
    slice_metrics,
)

MULTICLASS: Task = "multiclass_classification"
CLASSES = 4  # the multiclass cases: class indices 0 to 3, a probability matrix of 4 columns
LABELS = list(range(CLASSES))


def _calibration_error(y: np.ndarray, p: np.ndarray) -> float:
    """Expected calibration error over ten equal-width bins, written out the textbook way."""
    error, edges = 0.0, np.linspace(0.0, 1.0, 11)
    for low, high in itertools.pairwise(edges):
        members = (p >= low) & ((p < high) if high < 1.0 else (p <= high))
        if members.any():
            error += members.mean() * abs(p[members].mean() - y[members].mean())
    return float(error)


def _ranked(score: Callable[..., float]) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda y, p: float(score(y, p)) if len(np.unique(y)) == 2 else math.nan


def _every_class(score: Callable[..., float]) -> Callable[[np.ndarray, np.ndarray], float]:
    """scikit-learn's one-vs-rest ROC AUC needs every class among the rows: NaN otherwise."""
    return lambda y, p: float(score(y, p)) if len(np.unique(y)) == CLASSES else math.nan


def _decided(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return y.astype(int), p.argmax(axis=1)


REFERENCE: dict[str, dict[str, Callable[[np.ndarray, np.ndarray], float]]] = {
    "binary_classification": {
        "roc_auc": _ranked(roc_auc_score),
        "average_precision": _ranked(average_precision_score),
        "accuracy": lambda y, p: float(accuracy_score(y, p >= DECISION_THRESHOLD)),
        "f1": lambda y, p: float(f1_score(y, p >= DECISION_THRESHOLD, zero_division=0.0)),
        "log_loss": lambda y, p: float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "brier": lambda y, p: float(brier_score_loss(y, p)),
        "calibration_error": _calibration_error,
    },
    MULTICLASS: {
        "log_loss": lambda y, p: float(log_loss(y.astype(int), p, labels=LABELS)),
        "roc_auc_ovr": _every_class(
            lambda y, p: roc_auc_score(y.astype(int), p, multi_class="ovr", labels=LABELS)
        ),
        "accuracy": lambda y, p: float(accuracy_score(*_decided(y, p))),
        "macro_f1": lambda y, p: float(
            f1_score(*_decided(y, p), labels=LABELS, average="macro", zero_division=0.0)
        ),
        "weighted_f1": lambda y, p: float(
            f1_score(*_decided(y, p), labels=LABELS, average="weighted", zero_division=0.0)
        ),
    },
    "regression": {
        "rmse": lambda y, p: float(root_mean_squared_error(y, p)),
        "mae": lambda y, p: float(mean_absolute_error(y, p)),
        "r2": lambda y, p: float(r2_score(y, p)) if len(y) > 1 else math.nan,
    },
}
EVERY_METRIC = [(task, name) for task, metrics in METRICS.items() for name in metrics]


def _scores(task: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truth and scores with many ties (rounded to one decimal), every class present. A
    multiclass row's probabilities are tenths, at least 0.1 each and summing to 1, its own
    class given two tenths more than chance would."""
    rng = np.random.default_rng(seed)
    if task == "binary_classification":
        y = rng.integers(0, 2, rows).astype(float)
        y[:2] = [0.0, 1.0]
        return y, np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, rows), 0, 1), 1)
    if task == MULTICLASS:
        y = rng.integers(0, CLASSES, rows).astype(float)
        y[:CLASSES] = LABELS
        tenths = rng.multinomial(10 - CLASSES - 2, np.full(CLASSES, 1 / CLASSES), size=rows) + 1
        tenths[np.arange(rows), y.astype(int)] += 2
        return y, tenths / 10
    y = rng.normal(0, 1, rows)
    return y, np.round(y + rng.normal(0, 0.5, rows), 1)


def test_every_metric_has_a_reference() -> None:
    assert {task: set(m) for task, m in METRICS.items()} == {
        task: set(m) for task, m in REFERENCE.items()
    }


@pytest.mark.parametrize(("task", "name"), EVERY_METRIC)
def test_each_metric_agrees_with_scikit_learn(task: Task, name: str) -> None:
    y, scores = _scores(task, 300, seed=1)
    assert metric(task, name)(y, scores) == pytest.approx(REFERENCE[task][name](y, scores))


@pytest.mark.parametrize(("task", "name"), EVERY_METRIC)
def test_each_metric_on_resamples_agrees_with_scikit_learn(task: Task, name: str) -> None:
    y, scores = _scores(task, 120, seed=3)
    drawn = np.random.default_rng(4).integers(0, 120, size=(20, 120))
    counts = np.stack([np.bincount(rows, minlength=120) for rows in drawn]).astype(float)
    expected = [REFERENCE[task][name](y[rows], scores[rows]) for rows in drawn]
    np.testing.assert_allclose(metric(task, name).on_counts(y, scores, counts), expected, rtol=1e-9)


def test_row_losses_average_to_their_metrics() -> None:
    y, scores = _scores("binary_classification", 300, seed=5)
    values = compute_metrics("binary_classification", y, scores)
    assert metric("binary_classification", "roc_auc").row_loss(y, scores).mean() == pytest.approx(
        values["log_loss"]
    )
    errors = metric("binary_classification", "f1").row_loss(y, scores)
    assert set(np.unique(errors)) <= {0.0, 1.0}
    assert errors.mean() == pytest.approx(1 - values["accuracy"])
    y, predicted = _scores("regression", 300, seed=5)
    values = compute_metrics("regression", y, predicted)
    squared = metric("regression", "rmse").row_loss(y, predicted)
    assert math.sqrt(squared.mean()) == pytest.approx(values["rmse"])
    assert metric("regression", "mae").row_loss(y, predicted).mean() == pytest.approx(values["mae"])
    np.testing.assert_array_equal(metric("regression", "r2").row_loss(y, predicted), squared)


def test_multiclass_row_losses_average_to_their_metrics() -> None:
    y, probability = _scores(MULTICLASS, 300, seed=5)
    values = compute_metrics(MULTICLASS, y, probability)
    for name in ("log_loss", "roc_auc_ovr"):
        losses = metric(MULTICLASS, name).row_loss(y, probability)
        assert losses.mean() == pytest.approx(values["log_loss"])
    errors = metric(MULTICLASS, "macro_f1").row_loss(y, probability)
    assert set(np.unique(errors)) <= {0.0, 1.0}
    assert errors.mean() == pytest.approx(1 - values["accuracy"])


def test_multiclass_metrics_of_known_cases() -> None:
    """Three classes, six rows: two right for sure, then hesitations, one wrong."""
    y = np.array([0, 0, 1, 1, 2, 2], dtype=float)
    probability = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.5, 0.3, 0.2],
            [0.2, 0.7, 0.1],
            [0.6, 0.3, 0.1],  # class 1 taken for 0
            [0.0, 0.0, 1.0],
            [0.1, 0.1, 0.8],
        ]
    )
    values = compute_metrics(MULTICLASS, y, probability)
    assert values["accuracy"] == pytest.approx(5 / 6)
    own = [1.0, 0.5, 0.7, 0.3, 1.0, 0.8]
    assert values["log_loss"] == pytest.approx(-np.mean(np.log(np.clip(own, 1e-7, 1 - 1e-7))))
    # F1: class 0 2/(2+1) = 0.8 (2 right, 1 wrongly), class 1 2/3, class 2 1.
    assert values["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 1.0) / 3)
    assert values["weighted_f1"] == pytest.approx((0.8 + 2 / 3 + 1.0) / 3)  # two rows each
    assert class_recalls(y, probability, ["a", "b", "c"]) == {"a": 1.0, "b": 0.5, "c": 1.0}
    assert values["roc_auc_ovr"] == pytest.approx(
        roc_auc_score(y.astype(int), probability, multi_class="ovr")
    )


def test_per_class_recall_agrees_with_scikit_learn_and_names_each_class() -> None:
    y, probability = _scores(MULTICLASS, 300, seed=7)
    expected = recall_score(y.astype(int), probability.argmax(axis=1), average=None)
    names = ["cancel", "downgrade", "stay", "upgrade"]
    recalls = class_recalls(y, probability, names)
    assert list(recalls) == names
    np.testing.assert_allclose(list(recalls.values()), expected)
    absent = class_recalls(y[y != 3], probability[y != 3], names)
    assert math.isnan(absent["upgrade"])  # no row of the class here: no recall


def test_the_prior_baseline_scores_what_scikit_learn_s_dummy_predicts() -> None:
    """The baseline of a multiclass model: the training split's class shares for every row."""
    import pandas as pd

    y_train = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3], dtype=float)
    y_holdout, _ = _scores(MULTICLASS, 200, seed=9)
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((10, 1)), y_train.astype(int))
    baseline = prior_scores(y_train, len(y_holdout), CLASSES)
    np.testing.assert_allclose(baseline, dummy.predict_proba(np.zeros((200, 1))))
    rows = pd.DataFrame({"x": np.zeros(200)})
    np.testing.assert_allclose(predict_scores(dummy, rows, MULTICLASS), baseline)
    values = compute_metrics(MULTICLASS, y_holdout, baseline)
    assert values["roc_auc_ovr"] == pytest.approx(0.5)  # every row ties: no ranking at all
    assert values["accuracy"] == pytest.approx(np.mean(y_holdout == 0))  # the commonest class
    shares = np.bincount(y_holdout.astype(int), minlength=CLASSES) / len(y_holdout)
    cross_entropy = -(shares * np.log([0.4, 0.3, 0.2, 0.1])).sum()
    assert values["log_loss"] == pytest.approx(cross_entropy)
    assert prior_scores(np.array([0.0, 1.0]), 2, 3).tolist() == [[0.5, 0.5, 0.0]] * 2


def test_the_gate_s_multiclass_metric_is_log_loss_minimized_and_defined_on_any_rows() -> None:
    chosen = metric(MULTICLASS, default_primary_metric(MULTICLASS))
    assert chosen.name == "log_loss"
    assert not chosen.maximize
    assert chosen.improvement(0.9, 0.8) == pytest.approx(0.1)
    y, probability = _scores(MULTICLASS, 120, seed=11)
    one_class = np.zeros((1, 120))
    one_class[0, np.flatnonzero(y == 0)] = 1.0  # a resample that drew class 0 only
    roc_auc_ovr = metric(MULTICLASS, "roc_auc_ovr")
    assert math.isnan(roc_auc_ovr.on_counts(y, probability, one_class)[0])
    assert math.isfinite(chosen.on_counts(y, probability, one_class)[0])
    tasks: tuple[Task, ...] = ("binary_classification", MULTICLASS, "regression")
    assert set(tasks) == set(METRICS)
    for task in tasks:
        assert default_primary_metric(task) in METRICS[task]


def test_a_metric_of_the_other_task_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'roc_auc' is not a regression metric"):
        metric("regression", "roc_auc")


def test_rank_metrics_are_undefined_on_resamples_with_one_class() -> None:
    y = np.array([0.0, 0.0, 1.0])
    counts = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    for name in ("roc_auc", "average_precision"):
        values = metric("binary_classification", name).on_counts(
            y, np.array([0.1, 0.4, 0.8]), counts
        )
        assert math.isnan(values[0])
        assert values[1] == pytest.approx(1.0)


def test_improvement_follows_the_direction() -> None:
    assert metric("binary_classification", "roc_auc").improvement(0.7, 0.8) == pytest.approx(0.1)
    assert metric("regression", "rmse").improvement(2.0, 1.5) == pytest.approx(0.5)


def test_calibration_error_of_known_cases() -> None:
    y = np.array([0, 1] * 50, dtype=float)
    calibration = metric("binary_classification", "calibration_error")
    assert calibration(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert calibration(y, y.copy()) == pytest.approx(0.0)
    assert calibration(y, np.full(100, 0.9)) == pytest.approx(0.4)


def test_slices_with_too_few_rows_are_left_out() -> None:
    import pandas as pd

    y = np.array([0, 1] * 50, dtype=float)
    slices = pd.Series(["big"] * 95 + ["tiny"] * 5)
    result = slice_metrics("binary_classification", y, np.full(100, 0.5), slices)
    assert set(result) == {"big"}
    assert result["big"]["rows"] == 95
