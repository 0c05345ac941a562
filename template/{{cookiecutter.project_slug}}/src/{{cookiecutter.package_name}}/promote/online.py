"""The online experiment: who sees which variant, and what the logged outcomes say.

Assignment hashes the entity id, so a customer always sees the same variant for as long as the
experiment runs; `ab_report` reads the prediction log with its late-arriving labels.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import mlflow
import numpy as np
import pandas as pd

from ..config import OnlineConfig, Project
from ..predictions import PredictionLog
from ..train.tracking import tracking
from .record import Decision, Outcome, conclude, new_record
from .stats import TestResult, required_sample_size_proportions, two_proportion_z, welch_t

Variant = Literal["champion", "challenger"]


def assign_variant(entity_id: str, online: OnlineConfig, salt: str) -> Variant:
    """Stable by entity: the same id lands in the same bucket on every request and every replica."""
    if online.mode != "canary":
        return "champion"
    digest = hashlib.sha256(f"{salt}:{entity_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return "challenger" if bucket < online.canary_share else "champion"


def _outcomes(rows: pd.DataFrame, task: str) -> np.ndarray:
    """Per labelled prediction: 1/0 correctness for classifiers, absolute error for regressors."""
    prediction, label = rows["prediction"].to_numpy(float), rows["label"].to_numpy(float)
    if task == "binary_classification":
        return np.asarray((prediction >= 0.5) == (label >= 0.5), dtype=float)
    return np.asarray(np.abs(prediction - label), dtype=float)


def _test(task: str, champion: np.ndarray, challenger: np.ndarray, *, reverse: bool) -> TestResult:
    a, b = (challenger, champion) if reverse else (champion, challenger)
    if task == "binary_classification":
        return two_proportion_z(int(a.sum()), len(a), int(b.sum()), len(b))
    return welch_t(a, b, lower_is_better=True)


def ab_report(project: Project, since: datetime | None = None) -> Decision:
    """Promote, keep collecting, or roll back, from the logged predictions and their labels."""
    config, online = project.config, project.config.promotion.online
    task = config.train.task
    log = PredictionLog(project.predictions_dir).read(since=since)
    labelled = log[log["label"].notna()]
    outcomes = {
        variant: _outcomes(labelled[labelled["variant"] == variant], task)
        for variant in ("champion", "challenger")
    }
    versions = {
        variant: (log.loc[log["variant"] == variant, "model_version"].mode().tolist() or [None])[0]
        for variant in ("champion", "challenger")
    }
    variants = {
        variant: {
            "version": versions[variant],
            "samples": len(values),
            "metric": float(values.mean()) if len(values) else float("nan"),
        }
        for variant, values in outcomes.items()
    }
    metric = "accuracy" if task == "binary_classification" else "mean_absolute_error"
    record = new_record(
        project,
        "ab_report",
        mode=online.mode,
        metric=metric,
        data={
            "predictions": len(log),
            "labelled": len(labelled),
            "since": since.isoformat() if since else None,
        },
        variants=variants,
        policy=online.model_dump(mode="json"),
    )
    smallest = min(len(values) for values in outcomes.values())
    if smallest < online.min_samples_per_variant:
        needed = online.min_samples_per_variant
        if task == "binary_classification" and len(outcomes["champion"]):
            base = float(np.clip(outcomes["champion"].mean(), 0.01, 0.99))
            effect = max(config.promotion.min_effect, 0.02)
            needed = max(needed, required_sample_size_proportions(base, effect, online.alpha, 0.8))
        record |= {
            "outcome": Outcome.KEEP_COLLECTING,
            "required_samples_per_variant": needed,
            "reason": f"only {smallest} labelled predictions in the smaller variant; the test "
            f"needs at least {needed} per variant.",
        }
    else:
        better = _test(task, outcomes["champion"], outcomes["challenger"], reverse=False)
        worse = _test(task, outcomes["champion"], outcomes["challenger"], reverse=True)
        record["test"] = {
            "name": better.test,
            "statistic": better.statistic,
            "p_value": better.p_value,
            "p_value_worse": worse.p_value,
            "n": better.n,
        }
        summary = (
            f"{metric} champion {variants['champion']['metric']:.4f} vs challenger "
            f"{variants['challenger']['metric']:.4f}"
        )
        if better.p_value < online.alpha:
            record |= {
                "outcome": Outcome.PROMOTED,
                "reason": f"the challenger is significantly better online ({summary}, "
                f"p={better.p_value:.3g}).",
            }
        elif worse.p_value < online.alpha:
            record |= {
                "outcome": Outcome.REJECTED,
                "reason": f"the challenger is significantly worse online: roll it back "
                f"({summary}, p={worse.p_value:.3g}).",
            }
        else:
            record |= {
                "outcome": Outcome.KEEP_COLLECTING,
                "reason": f"no significant difference yet ({summary}, p={better.p_value:.3g}).",
            }
    with tracking(project), mlflow.start_run(run_name="ab-report"):
        return conclude(project, record)
