"""Linear models: logistic regression for classification, ridge for regression.

`train.params` go to the estimator (`C`, `alpha`, ...). Logistic regression warm-starts from the
champion's weights; ridge has a closed form and always fits from scratch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Continuation, Family, Params

if TYPE_CHECKING:
    from .forms import Form, Link


def _logistic(params: Params, _seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"max_iter": 2_000, **params})


def _ridge(params: Params, _seed: int) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(**params)


def _reuse_weights(fitted: Any, _params: Params) -> Continuation | None:
    from sklearn.linear_model import LogisticRegression

    if not isinstance(fitted, LogisticRegression):
        return None
    return Continuation(params={"warm_start": True})


def _dot_product(estimator: Any, _width: int) -> tuple[Form, Link] | None:
    """The coefficients and the intercept; the logistic link for a classifier's probability."""
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    from .forms import CompileError, Linear, vector

    if isinstance(estimator, LogisticRegression):
        if len(estimator.classes_) != 2:
            raise CompileError("LogisticRegression: only binary classification compiles")
        return Linear(vector(estimator.coef_[0]), float(estimator.intercept_[0])), "logistic"
    if isinstance(estimator, Ridge | LinearRegression):
        if np.ndim(estimator.coef_) != 1:
            raise CompileError(f"{type(estimator).__name__}: only one target compiles")
        return Linear(vector(estimator.coef_), float(estimator.intercept_)), "identity"
    return None


FAMILY = Family(
    kind="linear",
    title="Linear (logistic regression for classification, ridge for regression)",
    estimators={
        "binary_classification": _logistic,
        "multiclass_classification": _logistic,
        "regression": _ridge,
    },
    warm_start={
        "binary_classification": _reuse_weights,
        "multiclass_classification": _reuse_weights,
    },
    compile=_dot_product,
)
