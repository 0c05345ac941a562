"""Read a fitted pipeline's numbers into its compiled form, or say which part cannot be read.

It knows exactly the parts this project builds: the features (`features.build_feature_pipeline`)
and calibration here, the model through its family's `compile` hook (`families/`). Anything else
raises CompileError with the part named, and the version is then served by scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..families import FAMILIES, Family
from ..families.forms import CompileError, Form, Link
from .compiled import Block, Calibration, CategoricalBlock, CompiledModel, NumericBlock

__all__ = ["CompileError", "compile_model"]


def compile_model(fitted: Any, family: Family | None = None) -> CompiledModel:
    """The compiled form of a fitted `Pipeline(features, model)`, calibrated or not; the model
    read by `family` when given, else by whichever registered family knows it."""
    calibration = None
    if isinstance(fitted, CalibratedClassifierCV):
        calibration, fitted = _calibration(fitted)
    if isinstance(fitted, FrozenEstimator):
        fitted = fitted.estimator
    if not (isinstance(fitted, Pipeline) and len(fitted.steps) == 2):
        raise CompileError(f"expected a two-step Pipeline(features, model), got {_name(fitted)}")
    features, estimator = fitted.steps[0][1], fitted.steps[1][1]
    blocks = _blocks(features)
    width = sum(_width(block) for block in blocks)
    model, link = _estimator(estimator, width, family)
    return CompiledModel(blocks, model, link, calibration)


def _name(part: Any) -> str:
    return type(part).__name__


def _calibration(calibrated: CalibratedClassifierCV) -> tuple[Calibration, Any]:
    if len(calibrated.calibrated_classifiers_) != 1:
        raise CompileError("a calibration ensemble (cv folds) has no compiled form")
    member = calibrated.calibrated_classifiers_[0]
    if len(member.calibrators) != 1:
        raise CompileError("only a binary classifier's calibration can be compiled")
    calibrator = member.calibrators[0]
    # scikit-learn calibrates the decision function where the model has one, else the probability.
    of_probability = not hasattr(member.estimator, "decision_function")
    if calibrated.method == "sigmoid":
        a, b = float(calibrator.a_), float(calibrator.b_)
        return Calibration("sigmoid", a=a, b=b, of_probability=of_probability), member.estimator
    if calibrated.method == "isotonic" and calibrator.increasing_:
        x = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
        y = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
        return Calibration("isotonic", x=x, y=y, of_probability=of_probability), member.estimator
    raise CompileError(f"calibration method {calibrated.method!r} has no compiled form")


def _blocks(features: Any) -> tuple[Block, ...]:
    if not isinstance(features, ColumnTransformer):
        raise CompileError(f"features: expected a ColumnTransformer, got {_name(features)}")
    blocks: list[Block] = []
    for name, part, columns in features.transformers_:
        if part == "drop" or len(columns) == 0:
            continue
        steps = dict(part.steps) if isinstance(part, Pipeline) else {}
        impute, scale, encode = steps.get("impute"), steps.get("scale"), steps.get("encode")
        if list(steps) == ["impute", "scale"] and isinstance(scale, StandardScaler):
            blocks.append(_numeric(tuple(columns), impute, scale))
        elif list(steps) == ["impute", "encode"] and isinstance(encode, OneHotEncoder):
            blocks.append(_categorical(tuple(columns), impute, encode))
        else:
            raise CompileError(f"features: {name!r} ({_name(part)}) has no compiled form")
    if not blocks:
        raise CompileError("features: no columns reach the model")
    return tuple(blocks)


def _numeric(columns: tuple[str, ...], impute: Any, scale: StandardScaler) -> NumericBlock:
    if not isinstance(impute, SimpleImputer) or impute.strategy not in {"mean", "median"}:
        raise CompileError("numeric features: only a mean or median SimpleImputer compiles")
    if not (isinstance(impute.missing_values, float) and np.isnan(impute.missing_values)):
        raise CompileError("numeric features: the imputer must treat NaN as missing")
    statistics = np.asarray(impute.statistics_, dtype=np.float64)
    kept = np.flatnonzero(~np.isnan(statistics))
    flagged = np.zeros(0, dtype=np.int64)
    if impute.indicator_ is not None:
        flagged = np.asarray(impute.indicator_.features_, dtype=np.int64)
    width = len(kept) + len(flagged)
    center = np.zeros(width) if scale.mean_ is None else np.asarray(scale.mean_, dtype=np.float64)
    spread = np.ones(width) if scale.scale_ is None else np.asarray(scale.scale_, dtype=np.float64)
    return NumericBlock(columns, statistics, kept, flagged, center, spread)


def _categorical(columns: tuple[str, ...], impute: Any, encode: OneHotEncoder) -> CategoricalBlock:
    if not isinstance(impute, SimpleImputer) or impute.strategy != "constant":
        raise CompileError("categorical features: only a constant SimpleImputer compiles")
    if impute.indicator_ is not None:
        raise CompileError("categorical features: a missing-value indicator does not compile")
    if encode.handle_unknown != "ignore" or encode.drop_idx_ is not None:
        raise CompileError("categorical features: one-hot must ignore unknowns and drop nothing")
    if getattr(encode, "_infrequent_enabled", False):
        raise CompileError("categorical features: infrequent-category grouping does not compile")
    categories = tuple(tuple(_plain(v) for v in values) for values in encode.categories_)
    return CategoricalBlock(columns, _plain(impute.fill_value), categories)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it equals, so lookups and JSON treat it alike."""
    return value.item() if isinstance(value, np.generic) else value


def _width(block: Block) -> int:
    if isinstance(block, CategoricalBlock):
        return block.width
    return len(block.center)


def _estimator(estimator: Any, width: int, family: Family | None) -> tuple[Form, Link]:
    """The model's raw score, and how it becomes a prediction when no calibration follows: read
    by `family`'s compile hook, or by the first registered family that knows the estimator."""
    if family is not None and family.compile is None:
        raise CompileError(f"the {family.kind} family has no compiled form: scikit-learn scores it")
    candidates = FAMILIES.values() if family is None else (family,)
    for candidate in candidates:
        read = None if candidate.compile is None else candidate.compile(estimator, width)
        if read is not None:
            return read
    raise CompileError(f"model {_name(estimator)} has no compiled form")
