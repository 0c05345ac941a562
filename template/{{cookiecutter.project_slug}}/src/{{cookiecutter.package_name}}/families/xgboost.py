"""XGBoost's gradient boosting, classifier or regressor, seeded by `train.seed`.

An optional dependency: the project installs it with the `xgboost` extra (`pip install -e
'.[xgboost]'`, the CPU-only build), which the template adds when `model_family` is `xgboost`.
`train.params` go to the scikit-learn API's estimator (`n_estimators`, `learning_rate`,
`max_depth`, ...). A warm start adds `n_estimators` more rounds (100 by default) to the
champion's booster. The compiled form walks the booster's own trees (numeric splits only), with
XGBoost's rule: a row goes left when its value, rounded to float32, is below the threshold.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .base import Continuation, Family, Params

if TYPE_CHECKING:
    from .forms import Form, Link

# XGBoost's objective -> the compiled link.
LINKS: dict[str, Link] = {"binary:logistic": "logistic", "reg:squarederror": "identity"}


def _classifier(params: Params, seed: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(**{"random_state": seed, "n_jobs": 1, **params})


def _regressor(params: Params, seed: int) -> Any:
    from xgboost import XGBRegressor

    return XGBRegressor(**{"random_state": seed, "n_jobs": 1, **params})


def _more_rounds(fitted: Any, params: Params) -> Continuation | None:
    from xgboost import XGBModel

    if not isinstance(fitted, XGBModel):
        return None
    extra = int(params.get("n_estimators", 100) or 100)
    return Continuation(
        params={"n_estimators": extra}, fit_args={"xgb_model": fitted.get_booster()}
    )


def below_float32(threshold: float) -> float:
    """The largest float64 `x` with float32(x) < `threshold` (a float32): XGBoost compares its
    float32 copy of a value with `<`, `Trees` compares the float64 value with `<=`. Values
    between the float32 below the threshold and the threshold round to the nearer one, a value
    half-way to the one whose last bit is 0."""
    import numpy as np

    upper = np.float32(threshold)
    lower = np.nextafter(upper, np.float32(-np.inf))
    halfway = (float(lower) + float(upper)) / 2  # exact in float64
    rounds_down = int(lower.view(np.uint32)) % 2 == 0
    return halfway if rounds_down else math.nextafter(halfway, -math.inf)


def _trees(estimator: Any, width: int) -> tuple[Form, Link] | None:
    """The booster's trees, flattened into one `Trees`; the starting margin is read by scoring
    a row of zeros with XGBoost and taking away what the trees add for it."""
    import json

    import numpy as np
    from xgboost import XGBModel

    from .forms import CompileError, Trees

    if not isinstance(estimator, XGBModel):
        return None
    name = type(estimator).__name__
    booster = estimator.get_booster()
    learner = json.loads(booster.save_raw("json").decode())["learner"]
    objective = learner["objective"]["name"]
    link = LINKS.get(objective)
    if link is None:
        raise CompileError(f"{name}: objective {objective!r} does not compile")
    model = learner["gradient_booster"].get("model", {})
    if learner["gradient_booster"]["name"] != "gbtree" or any(model.get("tree_info", [])):
        raise CompileError(f"{name}: only one gbtree tree per round compiles")
    fields: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "missing_left")}
    fields |= {"left": [], "right": [], "value": []}
    roots, depth, offset = [], 0, 0
    for tree in model["trees"]:
        if any(tree["split_type"]):
            raise CompileError(f"{name}: categorical splits do not compile")
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
        leaf = left < 0
        own = np.arange(len(left)) + offset
        levels = np.zeros(len(left), dtype=np.int64)
        for node in range(len(left)):  # parents come before their children
            if not leaf[node]:
                levels[left[node]] = levels[right[node]] = levels[node] + 1
        fields["feature"].append(np.where(leaf, 0, tree["split_indices"]).astype(np.int64))
        thresholds = [
            0.0 if is_leaf else below_float32(c)
            for c, is_leaf in zip(conditions, leaf, strict=True)
        ]
        fields["threshold"].append(np.asarray(thresholds, dtype=np.float64))
        fields["missing_left"].append(np.asarray(tree["default_left"], dtype=bool))
        fields["left"].append(np.where(leaf, own, left + offset).astype(np.int32))
        fields["right"].append(np.where(leaf, own, right + offset).astype(np.int32))
        fields["value"].append(np.where(leaf, conditions.astype(np.float64), 0.0))
        roots.append(offset)
        depth = max(depth, int(levels.max()))
        offset += len(left)
    flat = {key: np.concatenate(parts) for key, parts in fields.items()}
    trees = Trees(**flat, roots=np.asarray(roots, dtype=np.int64), depth=depth, baseline=0.0)
    zeros = np.zeros((1, width))
    margin = float(estimator.predict(zeros, output_margin=True)[0])
    return replace(trees, baseline=margin - float(trees.raw(zeros)[0])), link


FAMILY = Family(
    kind="xgboost",
    title="XGBoost",
    estimators={
        "binary_classification": _classifier,
        "multiclass_classification": _classifier,
        "regression": _regressor,
    },
    warm_start={
        "binary_classification": _more_rounds,
        "multiclass_classification": _more_rounds,
        "regression": _more_rounds,
    },
    trusted=("xgboost",),
    requirements=("xgboost-cpu",),
    compile=_trees,
)
