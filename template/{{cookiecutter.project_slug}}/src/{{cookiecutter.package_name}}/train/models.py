"""The pipelines a project trains: the features, then the estimator a family builds
(`families/`), fitted from scratch or continued from the champion's fitted state."""

from __future__ import annotations

import copy
from typing import Any

from sklearn.pipeline import Pipeline

from ..config import Task
from ..data import DataSchema
from ..families import Family, Params
from ..features import build_feature_pipeline


def continue_fitting(
    pipeline: Pipeline, rows: Any, target: Any, family: Family, task: Task, params: Params
) -> Pipeline:
    """Fit the champion's estimator further on new rows, through its already-fitted features.

    The feature transformer stays as it was: the estimator's inputs must keep their meaning.
    """
    model = copy.deepcopy(pipeline)
    estimator = model.named_steps["model"]
    continuation = family.continuing(task, estimator, params)
    if continuation is None:
        raise ValueError(f"the {family.kind} family cannot continue a {type(estimator).__name__}")
    estimator.set_params(**continuation.params)
    estimator.fit(model[:-1].transform(rows), target, **continuation.fit_args)
    return model


def build_model(
    schema: DataSchema, task: Task, family: Family, params: Params, seed: int
) -> Pipeline:
    """Features and estimator in one object, so the saved model carries its own preprocessing."""
    return Pipeline(
        [
            ("features", build_feature_pipeline(schema)),
            ("model", family.estimator(task, params, seed)),
        ]
    )
