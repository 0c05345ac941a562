"""The estimators a project can train: the configured family, and a baseline to beat."""

from __future__ import annotations

import copy
from typing import Any

from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from ..config import ModelFamily, Task
from ..data import DataSchema
from ..features import build_feature_pipeline


def build_estimator(task: Task, family: ModelFamily, params: dict[str, Any], seed: int) -> Any:
    """An unfitted estimator; unknown `params` are refused by scikit-learn at fit time by name."""
    classify = task == "binary_classification"
    if family == "baseline":
        return DummyClassifier(strategy="prior") if classify else DummyRegressor(strategy="mean")
    if family == "linear":
        if classify:
            return LogisticRegression(**{"max_iter": 2_000, **params})
        return Ridge(**params)
    if classify:
        return HistGradientBoostingClassifier(**{"random_state": seed, **params})
    return HistGradientBoostingRegressor(**{"random_state": seed, **params})


def warm_startable(estimator: Any) -> bool:
    """Families that continue from fitted state: boosting adds trees, logistic reuses weights."""
    return isinstance(
        estimator,
        HistGradientBoostingClassifier | HistGradientBoostingRegressor | LogisticRegression,
    )


def continue_fitting(pipeline: Pipeline, rows: Any, target: Any, extra_iterations: int) -> Pipeline:
    """Fit the champion's estimator further on new rows, through its already-fitted features.

    The feature transformer stays as it was: the estimator's inputs must keep their meaning.
    """
    model = copy.deepcopy(pipeline)
    estimator = model.named_steps["model"]
    if isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        estimator.set_params(warm_start=True, max_iter=estimator.n_iter_ + extra_iterations)
    else:
        estimator.set_params(warm_start=True)
    estimator.fit(model[:-1].transform(rows), target)
    return model


def build_model(
    schema: DataSchema, task: Task, family: ModelFamily, params: dict[str, Any], seed: int
) -> Pipeline:
    """Features and estimator in one object, so the saved model carries its own preprocessing."""
    return Pipeline(
        [
            ("features", build_feature_pipeline(schema)),
            ("model", build_estimator(task, family, params, seed)),
        ]
    )
