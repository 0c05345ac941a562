"""The estimators a project can train: the configured family, and a baseline to beat."""

from __future__ import annotations

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
