"""The baseline every model must beat: the prior (classification) or the mean (regression).

Training fits it beside the configured family and registers no model that does not beat it on
the holdout; `train --family baseline` registers it on request. It takes no `train.params`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Family, Params

if TYPE_CHECKING:
    from .forms import Form, Link


def _prior(_params: Params, _seed: int) -> Any:
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="prior")


def _mean(_params: Params, _seed: int) -> Any:
    from sklearn.dummy import DummyRegressor

    return DummyRegressor(strategy="mean")


def _constant(estimator: Any, width: int) -> tuple[Form, Link] | None:
    """Zero weights and the constant as intercept. A calibrator reads `decision_function` where
    the model has one, else the probability: a prior's raw score is its probability (identity)."""
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    from .forms import CompileError, Linear

    if isinstance(estimator, DummyClassifier):
        if estimator.strategy != "prior" or len(estimator.classes_) != 2:
            raise CompileError("DummyClassifier: only the binary prior strategy compiles")
        return Linear(np.zeros(width), float(estimator.class_prior_[1])), "identity"
    if isinstance(estimator, DummyRegressor):
        if estimator.strategy not in {"mean", "median", "quantile", "constant"}:
            raise CompileError(f"DummyRegressor strategy {estimator.strategy!r} does not compile")
        return Linear(np.zeros(width), float(np.ravel(estimator.constant_)[0])), "identity"
    return None


FAMILY = Family(
    kind="baseline",
    title="Baseline (the prior for classification, the mean for regression)",
    estimators={
        "binary_classification": _prior,
        "multiclass_classification": _prior,
        "regression": _mean,
    },
    offered=False,
    compile=_constant,
)
