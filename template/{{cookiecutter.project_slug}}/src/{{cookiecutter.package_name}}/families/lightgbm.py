"""LightGBM's gradient boosting, classifier or regressor, seeded by `train.seed`.

An optional dependency: the project installs it with the `lightgbm` extra (`pip install -e
'.[lightgbm]'`), which the template adds when `model_family` is `lightgbm`. `train.params` go to
the scikit-learn API's estimator (`n_estimators`, `learning_rate`, `num_leaves`, ...). A warm
start adds `n_estimators` more trees (100 by default) to the champion's booster. The compiled
form walks the booster's own trees (numeric splits only), exactly as LightGBM decides them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Continuation, Family, Params

if TYPE_CHECKING:
    from .forms import Form, Link

# LightGBM's objective (the first word of the booster's `objective`) -> the compiled link.
LINKS: dict[str, Link] = {"binary": "logistic", "regression": "identity"}


def _classifier(params: Params, seed: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**{"random_state": seed, "verbose": -1, "n_jobs": 1, **params})


def _regressor(params: Params, seed: int) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**{"random_state": seed, "verbose": -1, "n_jobs": 1, **params})


def _more_trees(fitted: Any, params: Params) -> Continuation | None:
    from lightgbm import LGBMModel

    if not isinstance(fitted, LGBMModel):
        return None
    extra = int(params.get("n_estimators", 100) or 100)
    return Continuation(params={"n_estimators": extra}, fit_args={"init_model": fitted.booster_})


def _trees(estimator: Any, _width: int) -> tuple[Form, Link] | None:
    """The booster's trees, flattened into one `Trees`. LightGBM sends a row left when its value
    is <= the threshold (in float64, as `Trees` does); a missing value goes the node's default
    way when the node learned one (missing type NaN), else it counts as 0."""
    import numpy as np
    from lightgbm import LGBMModel

    from .forms import CompileError, Trees

    if not isinstance(estimator, LGBMModel):
        return None
    name = type(estimator).__name__
    dumped = estimator.booster_.dump_model()
    objective = str(dumped["objective"]).split()
    link = LINKS.get(objective[0])
    if link is None or (link == "logistic" and "sigmoid:1" not in objective):
        raise CompileError(f"{name}: objective {dumped['objective']!r} does not compile")
    if dumped["num_tree_per_iteration"] != 1 or dumped.get("average_output"):
        raise CompileError(f"{name}: only one summed tree per iteration compiles")
    nodes: list[tuple[int, float, bool, int, int, float]] = []
    roots, depth = [], 0

    def add(node: dict[str, Any], level: int) -> int:
        nonlocal depth
        index = len(nodes)
        if "leaf_value" in node:
            if "leaf_coeff" in node:
                raise CompileError(f"{name}: linear trees do not compile")
            nodes.append((0, 0.0, False, index, index, float(node["leaf_value"])))
            depth = max(depth, level)
            return index
        if node["decision_type"] != "<=" or node["missing_type"] == "Zero":
            raise CompileError(f"{name}: categorical or zero-as-missing splits do not compile")
        threshold = float(node["threshold"])
        # Without a learned way for missing values, LightGBM reads a missing value as 0.
        nan_way = node["missing_type"] == "NaN"
        missing_left = bool(node["default_left"]) if nan_way else threshold >= 0
        nodes.append((int(node["split_feature"]), threshold, missing_left, -1, -1, 0.0))
        left = add(node["left_child"], level + 1)
        right = add(node["right_child"], level + 1)
        nodes[index] = (*nodes[index][:3], left, right, 0.0)
        return index

    for tree in dumped["tree_info"]:
        roots.append(add(tree["tree_structure"], 0))
    feature, threshold, missing_left, left, right, value = zip(*nodes, strict=True)
    trees = Trees(
        feature=np.asarray(feature, dtype=np.int64),
        threshold=np.asarray(threshold, dtype=np.float64),
        missing_left=np.asarray(missing_left, dtype=bool),
        left=np.asarray(left, dtype=np.int32),
        right=np.asarray(right, dtype=np.int32),
        value=np.asarray(value, dtype=np.float64),
        roots=np.asarray(roots, dtype=np.int64),
        depth=depth,
        baseline=0.0,  # LightGBM folds its starting score into the first tree's leaves
    )
    return trees, link


FAMILY = Family(
    kind="lightgbm",
    title="LightGBM",
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
    trusted=("lightgbm", "collections.OrderedDict"),
    requirements=("lightgbm",),
    compile=_trees,
)
