"""The online experiment: who sees which variant, and what the logged outcomes say.

Assignment hashes the entity id, so a customer always sees the same variant for as long as the
experiment runs; `ab_report` reads the prediction log with its late-arriving labels.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from ..config import OnlineConfig, Project
from ..metrics import Metric, metric
from ..predictions import PredictionLog
from ..store import Store
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


def _labelled(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return rows["label"].to_numpy(float), PredictionLog.scores(
        rows["prediction"], rows["probabilities"]
    )


def _test(
    gate_metric: Metric, champion: np.ndarray, challenger: np.ndarray, *, reverse: bool
) -> TestResult:
    """On the metric's per-row losses: right/wrong rates by a two-proportion z-test, any other
    loss by Welch's t (lower is better)."""
    a, b = (challenger, champion) if reverse else (champion, challenger)
    if gate_metric.counts_errors:
        return two_proportion_z(int(len(a) - a.sum()), len(a), int(len(b) - b.sum()), len(b))
    return welch_t(a, b, lower_is_better=True)


def ab_report(project: Project, since: datetime | None = None) -> Decision:
    """Promote, keep collecting, or roll back, from the logged predictions and their labels."""
    config, online = project.config, project.config.promotion.online
    task = config.train.task
    with PredictionLog(project.prediction_log_url) as predictions:
        log = predictions.read(since=since)
    labelled = log[log["label"].notna()]
    gate_metric = metric(task, config.gate_metric)
    rows = {
        variant: _labelled(labelled[labelled["variant"] == variant])
        for variant in ("champion", "challenger")
    }
    losses = {  # a variant without labels yet has no losses (and no probability matrix)
        variant: gate_metric.row_loss(y, p) if len(y) else np.empty(0)
        for variant, (y, p) in rows.items()
    }
    versions = {
        variant: (log.loc[log["variant"] == variant, "model_version"].mode().tolist() or [None])[0]
        for variant in ("champion", "challenger")
    }
    variants = {
        variant: {
            "version": versions[variant],
            "samples": len(y),
            "metric": gate_metric(y, p) if len(y) else float("nan"),
        }
        for variant, (y, p) in rows.items()
    }
    record = new_record(
        project,
        "ab_report",
        mode=online.mode,
        metric=gate_metric.name,
        data={
            "predictions": len(log),
            "labelled": len(labelled),
            "since": since.isoformat() if since else None,
        },
        variants=variants,
        policy=online.model_dump(mode="json"),
    )
    smallest = min(len(values) for values in losses.values())
    if smallest < online.min_samples_per_variant:
        needed = online.min_samples_per_variant
        if gate_metric.counts_errors and len(losses["champion"]):
            base = float(np.clip(1 - losses["champion"].mean(), 0.01, 0.99))
            effect = max(config.promotion.min_effect, 0.02)
            needed = max(needed, required_sample_size_proportions(base, effect, online.alpha, 0.8))
        record |= {
            "outcome": Outcome.KEEP_COLLECTING,
            "required_samples_per_variant": needed,
            "reason": f"only {smallest} labelled predictions in the smaller variant, below "
            f"promotion.online.min_samples_per_variant = {online.min_samples_per_variant} in "
            f"{project.config_name}; at 80% power the test wants {needed} per variant.",
        }
    else:
        better = _test(gate_metric, losses["champion"], losses["challenger"], reverse=False)
        worse = _test(gate_metric, losses["champion"], losses["challenger"], reverse=True)
        record["test"] = {
            "name": better.test,
            "statistic": better.statistic,
            "p_value": better.p_value,
            "p_value_worse": worse.p_value,
            "n": better.n,
        }
        summary = (
            f"{gate_metric.name} champion {variants['champion']['metric']:.4f} vs challenger "
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
    with Store.open(project).run("ab-report") as run:
        return conclude(project, run, record)
