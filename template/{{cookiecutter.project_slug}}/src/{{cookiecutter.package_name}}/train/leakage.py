"""Leakage checks run before training: a feature that is the label in disguise, and the same
records on both sides of the split.

Such data trains a model that looks excellent on its holdout and then fails in production, so
training refuses it, naming the rule that fired with its numbers. The check is a pure function
of the snapshot's frames: no MLflow, no model of the project's family.

**A feature that is the label in disguise**: one feature alone predicts the target on
validation almost perfectly, or a categorical maps each of its values to one label. Refused
unless `train.leakage.allow` names it with the reason it exists at prediction time.

**The same records across the split.** A holdout row equal to a training row in every feature
and in the target is not by itself a leak: real tables repeat (coarse survey answers, a flight
that recurs daily, a returning customer whose figures did not change), and then training rows
repeat one another just as often, as production rows will. What leaks is a record that crosses
the split: one record sent twice under another timestamp or id, or a batch loaded again with
the load's time as its timestamp. Its mark is that more holdout rows equal a training row than
the data's own repetition explains. So
the check compares two shares of rows that the fit never saw, both against the same training
rows:

- the holdout's: holdout rows equal to some training row;
- the validation split's: validation rows equal to some training row, weighted by the
  holdout's target values. A row can only equal a row of its own target value, and a time split
  may move their mix (the class whose rows repeat most can fill more of the holdout): weighting
  keeps that from looking like a leak.

Why validation is the reference, not the training rows' repetition among themselves: real
repetition is often local (a household's rows, one plan's members, a flight's season), so
training rows equal one another far more often than rows an interval apart do (the RAND health
survey: 69% within training, 24% across). Validation and holdout are drawn alike under the
`random` and `group` splits and, under `time`, validation sits nearer the training rows, so it
shares at least as many rows by repetition alone. A record copied into training from the
holdout's period raises the holdout's share only.

The split leaks when the excess is significant, by the exact one-sided test conditional on each
target value's 2x2 table (Fisher's exact test, stratified), at a fixed p < 0.001 so that a
check run at every retraining almost never refuses by chance, and when it is also larger than
`train.leakage.max_excess_share` (default 0.01; 1.0 turns the rule off), so that a few stray
copies in a large table do not stop the loop.

What "the same record" means here, and why only features and target are compared: they are
what the model learns from and is scored on. The timestamp is left out: across a time split a
copy has another timestamp by construction. The id is left out too: the model never sees it, a
copy resent under a new id must still count, and the same entity in both splits of a time split
is a returning customer, which is normal; a holdout of new entities only is a choice of split
(`data.split.strategy: group` with `data.split.group_column`), not a fact the rows can reveal.
The same key and timestamp twice never reaches a snapshot: ingest quarantines the second row
(data/validation.py), so no rule is needed for it here.

What no check here can catch: a feature recorded only after the prediction time that is very
predictive without being perfect (a flight's departure delay when predicting a late arrival:
it exists only after take-off). It passes every rule; the team must know when each column is
known (docs/data.md, "Features known only after the prediction time"). Nor copies spread
evenly through validation and holdout: they raise both shares alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal, stats
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
EXCESS_KEY = "train.leakage.max_excess_share"
# The p-value below which more holdout rows equal a training row than the validation split's
# rows do: fixed, and small, since the check runs at every retraining.
EXCESS_P_VALUE = 0.001
GROUP_SPLIT = "data.split.strategy: group, with data.split.group_column"


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
class SplitRepeats:
    """Rows equal to a training row in every feature and the target: the holdout's, and the
    validation split's, which is what the data's own repetition explains."""

    shared_rows: int  # holdout rows equal to some training row
    holdout_rows: int
    validation_shared_rows: int  # validation rows equal to some training row
    validation_rows: int
    expected_shared_share: float  # the validation split's share, weighted by the holdout's targets
    p_value: float  # one-sided: more shared holdout rows than the repetition explains

    @property
    def shared_share(self) -> float:
        return self.shared_rows / self.holdout_rows if self.holdout_rows else 0.0

    @property
    def validation_shared_share(self) -> float:
        rows = self.validation_rows
        return self.validation_shared_rows / rows if rows else 0.0

    @property
    def excess_share(self) -> float:
        """How much more often a holdout row equals a training row than the repetition explains."""
        return self.shared_share - self.expected_shared_share

    def as_dict(self) -> dict[str, Any]:
        return {
            "shared_rows": self.shared_rows,
            "holdout_rows": self.holdout_rows,
            "shared_share": self.shared_share,
            "validation_shared_rows": self.validation_shared_rows,
            "validation_rows": self.validation_rows,
            "validation_shared_share": self.validation_shared_share,
            "expected_shared_share": self.expected_shared_share,
            "excess_share": self.excess_share,
            "excess_p_value": self.p_value,
        }


@dataclass(frozen=True)
class LeakageReport:
    """Every figure of the check, and what it found."""

    score_name: str  # roc_auc or r2: what `scores` holds
    threshold: float
    scores: dict[str, float]  # feature -> its single-feature score on validation (NaN: undefined)
    one_label_shares: dict[str, float]  # categorical -> share of train rows in one-label values
    repeats: SplitRepeats
    max_excess_share: float
    leaks: tuple[FeatureLeak, ...]
    allow: dict[str, str] = field(default_factory=dict)

    @property
    def splits_overlap(self) -> bool:
        """The same records cross the split: significantly more holdout rows equal a training
        row than validation rows do, by more than the configured margin."""
        return (
            self.repeats.p_value < EXCESS_P_VALUE
            and self.repeats.excess_share > self.max_excess_share
        )

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

    def _overlap(self) -> str:
        """The split rule that fired, with its numbers."""
        repeats = self.repeats
        return (
            f"the same records cross the split: {repeats.shared_rows:,} of "
            f"{repeats.holdout_rows:,} holdout rows ({repeats.shared_share:.1%}) equal a "
            f"training row in every feature and the target, where the data's own repetition "
            f"({repeats.validation_shared_rows:,} of {repeats.validation_rows:,} validation rows, "
            f"{repeats.validation_shared_share:.1%}, equal a training row) explains "
            f"{repeats.expected_shared_share:.1%} for the holdout's target values: an excess of "
            f"{100 * repeats.excess_share:.1f} percentage points (one-sided p = "
            f"{repeats.p_value:.2g} < {EXCESS_P_VALUE:g}), above {EXCESS_KEY} "
            f"{self.max_excess_share:g}"
        )

    def refusal(self) -> str:
        """The one-line message of a refused training: what leaks, by how much, what to do."""
        found = [f"{leak.feature} ({'; '.join(leak.rules)})" for leak in self.refused]
        if self.splits_overlap:
            found.append(self._overlap())
        advice = []
        if self.refused:
            advice.append(
                f"a feature that truly exists at prediction time may stay: list it under "
                f"{ALLOW_KEY} with the reason"
            )
        if self.splits_overlap:
            advice.append(
                "drop the copies (one record sent twice, under another timestamp or id), or "
                f"split by entity ({GROUP_SPLIT}) so that no entity's rows fall on both sides; "
                f"raise {EXCESS_KEY} only if the holdout is meant to repeat training rows more "
                "than the validation rows do"
            )
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
            **self.repeats.as_dict(),
            "excess_p_value_below": EXCESS_P_VALUE,
            "max_excess_share": self.max_excess_share,
            "splits_overlap": self.splits_overlap,
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
    probability (for three or more classes, each class against the rest, averaged), or R² of
    the better of a tree and (numeric only) a line. A fitted model is already oriented, so no
    `max(auc, 1 - auc)`. NaN when a split holds a single label."""
    if len(np.unique(y_train)) < 2 or len(np.unique(y_validation)) < 2:
        return math.nan
    rows = x_train.reshape(-1, 1)
    validation = x_validation.reshape(-1, 1)
    if task != "regression":
        classifier = DecisionTreeClassifier(
            max_leaf_nodes=TREE_LEAVES, min_samples_leaf=TREE_LEAF_ROWS, random_state=0
        ).fit(rows, y_train)
        probability = classifier.predict_proba(validation)
        if task == "binary_classification":
            return metric(task, "roc_auc")(y_validation, probability[:, 1])
        # One column per class index, a class the training rows lack scoring 0 everywhere.
        columns = int(max(y_train.max(), y_validation.max())) + 1
        matrix = np.zeros((len(validation), columns))
        matrix[:, classifier.classes_.astype(int)] = probability
        return metric(task, "roc_auc_ovr")(y_validation, matrix)
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


def _target_values(frame: pd.DataFrame, schema: DataSchema) -> pd.Series:
    """The target as `_row_hashes` compares it: numbers as floats, classes as text."""
    target = frame[schema.target.name]
    return target.astype("float64") if schema.target.is_numeric else target.astype("string")


def _per_target(frame: pd.DataFrame, schema: DataSchema, hits: np.ndarray) -> pd.DataFrame:
    """For each target value: its rows and how many of them are hits."""
    table = pd.DataFrame({"value": _target_values(frame, schema).to_numpy(), "hit": hits})
    groups = table.groupby("value", dropna=False)["hit"]
    return pd.DataFrame({"hits": groups.sum(), "rows": groups.size()})


def excess_p_value(strata: Iterable[tuple[int, int, int, int]]) -> float:
    """One-sided p-value of "holdout rows equal a training row more often than validation rows
    do", from one 2x2 table per target value: (holdout rows shared, holdout rows, validation
    rows shared, validation rows). Given a table's margins, its shared
    count is hypergeometric; the p-value is the upper tail of their sum at the observed total,
    exactly (the strata's distributions convolved). With one stratum: Fisher's exact test."""
    total = np.ones(1)
    lowest = observed = 0
    for shared, holdout, reference_shared, reference in strata:
        hits = shared + reference_shared
        if hits == 0 or holdout == 0:
            continue  # the shared count cannot vary
        low, high = max(0, hits - reference), min(hits, holdout)
        pmf = stats.hypergeom.pmf(np.arange(low, high + 1), holdout + reference, holdout, hits)
        total = signal.convolve(total, pmf)  # FFT for long ones: error far below the level
        lowest += low
        observed += shared
    return float(np.clip(total[observed - lowest :].sum(), 0.0, 1.0))


def split_repeats(
    train: pd.DataFrame, validation: pd.DataFrame, holdout: pd.DataFrame, schema: DataSchema
) -> SplitRepeats:
    """Holdout rows and validation rows equal to some training row, in every feature and the
    target (see the module's docstring for why those columns and why validation), with the
    share the validation split explains for the holdout's target values and the p-value of the
    excess."""
    columns = [*schema.feature_columns, schema.target.name]
    numeric = set(schema.numeric_features)
    if schema.target.is_numeric:
        numeric.add(schema.target.name)
    seen = set(_row_hashes(train, columns, numeric).to_list())
    shared = _row_hashes(holdout, columns, numeric).isin(seen).to_numpy()
    reference = _row_hashes(validation, columns, numeric).isin(seen).to_numpy()
    strata = pd.concat(
        [
            _per_target(holdout, schema, shared).add_prefix("holdout_"),
            _per_target(validation, schema, reference).add_prefix("validation_"),
        ],
        axis=1,
    )
    strata = strata.fillna(0).astype("int64")
    # The validation split's share for each target value, weighted by its holdout rows.
    rows = strata["validation_rows"]
    explained_share = strata["validation_hits"] / rows.where(rows > 0)
    explained = float((explained_share.fillna(0.0) * strata["holdout_rows"]).sum())
    tables = strata.loc[
        strata["holdout_hits"] + strata["validation_hits"] > 0,  # the others cannot vary
        ["holdout_hits", "holdout_rows", "validation_hits", "validation_rows"],
    ]
    return SplitRepeats(
        shared_rows=int(shared.sum()),
        holdout_rows=len(holdout),
        validation_shared_rows=int(reference.sum()),
        validation_rows=len(validation),
        expected_shared_share=explained / len(holdout) if len(holdout) else 0.0,
        p_value=excess_p_value(tables.itertuples(index=False, name=None)),
    )


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
    that relabel the target, compare the holdout rows equal to a training row with the
    validation rows that are. ConfigError when the allow list names a column that is not a
    feature."""
    _check_allow(config.allow, schema)
    y_train = _labels(train, schema, task)
    y_validation = _labels(validation, schema, task)
    score_name = {
        "binary_classification": "roc_auc",
        "multiclass_classification": "roc_auc_ovr",
        "regression": "r2",
    }[task]
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
        repeats=split_repeats(train, validation, holdout, schema),
        max_excess_share=config.max_excess_share,
        leaks=tuple(leaks),
        allow=dict(config.allow),
    )
