"""Leakage checks run before training: a feature that is the label in disguise, or would not
exist at prediction time, and holdout rows that training has already seen.

Such data trains a model that looks perfect on every split and then fails in production, so
training refuses it unless the configuration acknowledges the feature, with a reason. The
check is a pure function of the snapshot's frames: no MLflow, no model of the project's family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..config import ConfigError, LeakageConfig, Task
from ..data import DataSchema
from ..errors import ProjectError
from ..metrics import metric

# A tree on one feature with enough leaves to follow any relabelling of the target closely
# (an exact copy of a continuous target scores R² > 0.999), and leaves of a few rows, so a
# single odd row cannot make a leaf of its own.
TREE_LEAVES = 256
TREE_LEAF_ROWS = 3
# A categorical maps each value to one label only when its values seen at least twice (values
# seen once say nothing: an id-like column maps each to one label trivially) cover at least
# this share of the training rows.
ONE_LABEL_MIN_COVERAGE = 0.5
MISSING = "__missing__"
ALLOW_KEY = "train.leakage.allow"
SHARED_KEY = "train.leakage.max_shared_share"


class LeakageError(ProjectError):
    """The data leaks the target into training; nothing was registered.

    Not a `TrainingError`: the model is not "no better", the data is wrong, so the retraining
    loop ends in an error, not a rejection.
    """

    def __init__(self, report: LeakageReport) -> None:
        super().__init__(report.refusal())
        self.report = report


@dataclass(frozen=True)
class FeatureLeak:
    """One feature that broke a rule; `allowed_because` is the configured reason, if any."""

    feature: str
    rules: tuple[str, ...]
    allowed_because: str | None = None


@dataclass(frozen=True)
class LeakageReport:
    """Every figure of the check, and what it found."""

    score_name: str  # roc_auc or r2: what `scores` holds
    threshold: float
    scores: dict[str, float]  # feature -> its single-feature score on validation (NaN: undefined)
    one_label_shares: dict[str, float]  # categorical -> share of train rows in one-label values
    shared_rows: int  # holdout rows equal to a training row in every feature and the target
    holdout_rows: int
    max_shared_share: float
    leaks: tuple[FeatureLeak, ...]
    allow: dict[str, str] = field(default_factory=dict)

    @property
    def shared_share(self) -> float:
        return self.shared_rows / self.holdout_rows if self.holdout_rows else 0.0

    @property
    def splits_overlap(self) -> bool:
        return self.shared_share > self.max_shared_share

    @property
    def refused(self) -> tuple[FeatureLeak, ...]:
        return tuple(leak for leak in self.leaks if leak.allowed_because is None)

    @property
    def allowed(self) -> tuple[FeatureLeak, ...]:
        return tuple(leak for leak in self.leaks if leak.allowed_because is not None)

    @property
    def passed(self) -> bool:
        """Nothing leaks but what the configuration allows."""
        return not self.refused and not self.splits_overlap

    @property
    def summary(self) -> str:
        """One tag value: `none`, `allowed: a, b`, `refused: c` (or both, refused first)."""
        parts = []
        refused = [leak.feature for leak in self.refused]
        if self.splits_overlap:
            refused.append("shared holdout rows")
        if refused:
            parts.append("refused: " + ", ".join(refused))
        if self.allowed:
            parts.append("allowed: " + ", ".join(leak.feature for leak in self.allowed))
        return "; ".join(parts) or "none"

    def refusal(self) -> str:
        """The one-line message of a refused training: what leaks, by how much, what to do."""
        found = [f"{leak.feature} ({'; '.join(leak.rules)})" for leak in self.refused]
        if self.splits_overlap:
            found.append(
                f"{self.shared_rows} of {self.holdout_rows} holdout rows "
                f"({self.shared_share:.1%}) equal a training row, above {SHARED_KEY} "
                f"{self.max_shared_share:g}"
            )
        advice = []
        if self.refused:
            advice.append(
                f"a feature that truly exists at prediction time may stay: list it under "
                f"{ALLOW_KEY} with the reason"
            )
        if self.splits_overlap:
            advice.append(f"drop rows repeated across splits, or raise {SHARED_KEY}")
        what_to_do = "; ".join(advice)
        return (
            f"leakage: training refused, nothing was registered: {'; '.join(found)}. "
            f"{what_to_do[:1].upper()}{what_to_do[1:]}."
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON holds it: an undefined score is null, as JSON has no NaN."""
        return {
            "score": self.score_name,
            "threshold": self.threshold,
            "scores": {
                name: None if math.isnan(value) else value for name, value in self.scores.items()
            },
            "one_label_shares": self.one_label_shares,
            "shared_rows": self.shared_rows,
            "holdout_rows": self.holdout_rows,
            "shared_share": self.shared_share,
            "max_shared_share": self.max_shared_share,
            "leaks": [
                {
                    "feature": leak.feature,
                    "rules": list(leak.rules),
                    "allowed": leak.allowed_because,
                }
                for leak in self.leaks
            ],
            "allow": self.allow,
            "summary": self.summary,
        }


def _labels(frame: pd.DataFrame, schema: DataSchema, task: Task) -> np.ndarray:
    """The target as numbers: 1.0 for the positive class of a classifier whose classes are text."""
    values = frame[schema.target.name]
    positive = schema.target.positive_class
    classes_as_text = positive is not None and not pd.api.types.is_numeric_dtype(values)
    if task == "binary_classification" and classes_as_text:
        return (values.astype(str) == positive).to_numpy(dtype=float)
    return values.to_numpy(dtype=float)


def _categories(train: pd.Series, other: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Ordinal codes learnt from the train split; missing and unseen values become NaN."""
    seen = sorted({str(value) for value in train.dropna()})
    codes = {value: float(index) for index, value in enumerate(seen)}

    def encode(values: pd.Series) -> np.ndarray:
        text = values.astype(object).where(values.isna(), values.astype(str))
        return text.map(codes).to_numpy(dtype=float)

    return encode(train), encode(other)


def _line_prediction(x_train: np.ndarray, y_train: np.ndarray, x_other: np.ndarray) -> np.ndarray:
    """A straight line through one numeric feature: unlike a tree, it extrapolates, so a target
    in other units scores R² = 1 beyond the training range too. Missing x: the median."""
    known = ~np.isnan(x_train)
    if known.sum() < 2:
        return np.full(len(x_other), float(np.mean(y_train)))
    fill = float(np.median(x_train[known]))
    line = LinearRegression().fit(np.nan_to_num(x_train, nan=fill).reshape(-1, 1), y_train)
    return np.asarray(line.predict(np.nan_to_num(x_other, nan=fill).reshape(-1, 1)), dtype=float)


def single_feature_score(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_validation: np.ndarray,
    y_validation: np.ndarray,
    task: Task,
    *,
    numeric: bool,
) -> float:
    """How well this one feature alone predicts the target on validation: ROC AUC of a tree's
    probability, or R² of the better of a tree and (numeric only) a line. A fitted model is
    already oriented, so no `max(auc, 1 - auc)`. NaN when a split holds a single label."""
    if len(np.unique(y_train)) < 2 or len(np.unique(y_validation)) < 2:
        return math.nan
    rows = x_train.reshape(-1, 1)
    validation = x_validation.reshape(-1, 1)
    if task == "binary_classification":
        classifier = DecisionTreeClassifier(
            max_leaf_nodes=TREE_LEAVES, min_samples_leaf=TREE_LEAF_ROWS, random_state=0
        ).fit(rows, y_train)
        probability = classifier.predict_proba(validation)[:, 1]
        return metric(task, "roc_auc")(y_validation, probability)
    r2 = metric(task, "r2")
    regressor = DecisionTreeRegressor(
        max_leaf_nodes=TREE_LEAVES, min_samples_leaf=TREE_LEAF_ROWS, random_state=0
    ).fit(rows, y_train)
    score = r2(y_validation, regressor.predict(validation))
    if numeric:
        score = max(score, r2(y_validation, _line_prediction(x_train, y_train, x_validation)))
    return score


def one_label_share(values: pd.Series, labels: np.ndarray) -> tuple[float, bool]:
    """Share of the rows whose value (seen at least twice) maps to one label, and whether that
    holds for every such value while they cover most rows and more than one label: the
    categorical is then a relabelling of the target. Missing counts as one more value."""
    keys = values.astype(object).where(values.notna(), MISSING).astype(str).to_numpy()
    table = pd.DataFrame({"value": keys, "label": labels})
    groups = table.groupby("value", sort=False)["label"].agg(["size", "nunique"])
    repeated = groups[groups["size"] >= 2]
    one_label = repeated[repeated["nunique"] == 1]
    share = float(one_label["size"].sum() / len(table)) if len(table) else 0.0
    covered_labels = table.loc[table["value"].isin(one_label.index), "label"].nunique()
    relabels = (
        len(one_label) == len(repeated) and share >= ONE_LABEL_MIN_COVERAGE and covered_labels >= 2
    )
    return share, relabels


def _row_hashes(frame: pd.DataFrame, columns: list[str], numeric: set[str]) -> pd.Series:
    """One hash per row of these columns, with numbers compared as floats and text as text."""
    typed = pd.DataFrame(
        {
            name: frame[name].astype("float64") if name in numeric else frame[name].astype("string")
            for name in columns
        }
    )
    return pd.util.hash_pandas_object(typed, index=False)


def shared_rows(train: pd.DataFrame, holdout: pd.DataFrame, schema: DataSchema) -> int:
    """Holdout rows equal to some training row in every feature and in the target: the model
    is then tested on rows it learnt, and its holdout metrics are too good."""
    columns = [*schema.feature_columns, schema.target.name]
    numeric = set(schema.numeric_features)
    if schema.target.is_numeric:
        numeric.add(schema.target.name)
    seen = set(_row_hashes(train, columns, numeric).to_list())
    return int(_row_hashes(holdout, columns, numeric).isin(seen).sum())


def _check_allow(allow: Mapping[str, str], schema: DataSchema) -> None:
    if unknown := sorted(set(allow) - set(schema.feature_columns)):
        raise ConfigError(
            f"{ALLOW_KEY} names {unknown}, which are not features of the snapshot's schema; "
            f"its features are {schema.feature_columns}"
        )


def check_leakage(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    schema: DataSchema,
    task: Task,
    config: LeakageConfig,
) -> LeakageReport:
    """Score every feature alone (fitted on train, scored on validation), look for categoricals
    that relabel the target, count holdout rows seen in training. ConfigError when the allow
    list names a column that is not a feature."""
    _check_allow(config.allow, schema)
    y_train = _labels(train, schema, task)
    y_validation = _labels(validation, schema, task)
    score_name = "roc_auc" if task == "binary_classification" else "r2"
    scores: dict[str, float] = {}
    one_label_shares: dict[str, float] = {}
    leaks = []
    for feature in schema.feature_columns:
        numeric = feature in schema.numeric_features
        if numeric:
            x_train = train[feature].to_numpy(dtype=float)
            x_validation = validation[feature].to_numpy(dtype=float)
        else:
            x_train, x_validation = _categories(train[feature], validation[feature])
        score = single_feature_score(
            x_train, y_train, x_validation, y_validation, task, numeric=numeric
        )
        scores[feature] = score
        rules = []
        if score >= config.threshold:
            rules.append(
                f"alone scores validation {score_name} {score:.4f} >= {config.threshold:g}"
            )
        if not numeric:
            share, relabels = one_label_share(train[feature], y_train)
            one_label_shares[feature] = share
            if relabels:
                rules.append(f"every value maps to one label, on {share:.1%} of training rows")
        if rules:
            leaks.append(FeatureLeak(feature, tuple(rules), config.allow.get(feature)))
    return LeakageReport(
        score_name=score_name,
        threshold=config.threshold,
        scores=scores,
        one_label_shares=one_label_shares,
        shared_rows=shared_rows(train, holdout, schema),
        holdout_rows=len(holdout),
        max_shared_share=config.max_shared_share,
        leaks=tuple(leaks),
        allow=dict(config.allow),
    )
