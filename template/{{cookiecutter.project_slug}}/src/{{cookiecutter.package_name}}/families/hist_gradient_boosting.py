"""scikit-learn's histogram gradient boosting, classifier or regressor, seeded by `train.seed`.

`train.params` go to the estimator (`max_iter`, `learning_rate`, ...). A warm start adds
`max_iter` more trees (100 by default) to the champion's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Continuation, Family, Params

if TYPE_CHECKING:
    from .forms import Form, Link

# scikit-learn's link of the loss -> the compiled form's name for it.
LINKS: dict[str, Link] = {"IdentityLink": "identity", "LogitLink": "logistic", "LogLink": "exp"}


def _classifier(params: Params, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**{"random_state": seed, **params})


def _regressor(params: Params, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**{"random_state": seed, **params})


def _more_trees(fitted: Any, params: Params) -> Continuation | None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if not isinstance(fitted, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return None
    extra = int(params.get("max_iter", 100) or 100)
    return Continuation(params={"warm_start": True, "max_iter": fitted.n_iter_ + extra})


def _trees(estimator: Any, _width: int) -> tuple[Form, Link] | None:
    """Every tree's nodes, flattened into one `Trees`; numeric splits only."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from .forms import CompileError, Trees

    if not isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return None
    name = type(estimator).__name__
    if (
        getattr(estimator, "_preprocessor", None) is not None
        or estimator.is_categorical_ is not None
    ):
        raise CompileError(f"{name}: native categorical splits do not compile")
    if any(len(per_iteration) != 1 for per_iteration in estimator._predictors):
        raise CompileError(f"{name}: only one tree per iteration (binary or regression) compiles")
    link = LINKS.get(type(estimator._loss.link).__name__)
    if link is None:
        raise CompileError(f"{name}: link {type(estimator._loss.link).__name__} does not compile")
    fields: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "missing_left")}
    fields |= {"left": [], "right": [], "value": []}
    roots, depth, offset = [], 0, 0
    for (predictor,) in estimator._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes)) + offset
        fields["feature"].append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
        fields["threshold"].append(nodes["num_threshold"].astype(np.float64))
        fields["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
        fields["left"].append(np.where(leaf, own, nodes["left"] + offset).astype(np.int32))
        fields["right"].append(np.where(leaf, own, nodes["right"] + offset).astype(np.int32))
        fields["value"].append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
        if nodes["is_categorical"].any():
            raise CompileError(f"{name}: native categorical splits do not compile")
        roots.append(offset)
        depth = max(depth, int(nodes["depth"].max()))
        offset += len(nodes)
    flat = {key: np.concatenate(parts) for key, parts in fields.items()}
    baseline = float(np.ravel(estimator._baseline_prediction)[0])
    trees = Trees(**flat, roots=np.asarray(roots, dtype=np.int64), depth=depth, baseline=baseline)
    return trees, link


FAMILY = Family(
    kind="hist_gradient_boosting",
    title="scikit-learn HistGradientBoosting",
    estimators={
        "binary_classification": _classifier,
        "multiclass_classification": _classifier,
        "regression": _regressor,
    },
    warm_start={
        "binary_classification": _more_trees,
        "multiclass_classification": _more_trees,
        "regression": _more_trees,
    },
    compile=_trees,
)
