"""Stage 4, promote: a challenger replaces the champion only when the evidence says so.

Public entry points: `promote(project)` (the offline gate), `rollback(project)`, and
`ab_report(project)` (the online experiment, in `online.py`). Every call writes a decision
record; the champion alias moves only after the gate has passed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ..config import METRIC_DIRECTIONS, Project
from ..data import DataError, Snapshot, read_snapshot
from ..features import model_input
from ..train.evaluate import METRICS, compute_metrics, predict_scores, slice_metrics
from ..train.tracking import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    alias_version,
    load_version,
    tracking,
)
from .record import Decision, Outcome, conclude, new_record
from .stats import TestResult, run_test

__all__ = ["Decision", "GateError", "Outcome", "promote", "rollback"]


class GateError(RuntimeError):
    """The gate cannot reach a verdict: nothing to compare, or data it must not use."""


def _version_entry(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "snapshot_id": version.tags.get("snapshot_id"),
        "model_family": version.tags.get("model_family"),
    }


def _check_unseen(project: Project, snapshot: Snapshot, challenger: ModelVersion) -> None:
    """The holdout must be later than every row the challenger was fitted or calibrated on."""
    seen_id = challenger.tags.get("snapshot_id")
    if not seen_id:
        raise GateError(f"challenger v{challenger.version} has no snapshot_id tag: lineage unknown")
    seen = read_snapshot(project.snapshots_dir, seen_id)
    timestamp = snapshot.schema.timestamp_column
    last_seen = max(seen.train[timestamp].max(), seen.validation[timestamp].max())
    overlap = int((snapshot.holdout[timestamp] <= last_seen).sum())
    if overlap:
        raise GateError(
            f"{overlap} holdout rows of snapshot {snapshot.snapshot_id} are not later than the "
            f"data challenger v{challenger.version} trained on; ingest newer data to compare fairly"
        )


def _score(model: Any, rows: pd.DataFrame, task: Any) -> tuple[np.ndarray, float]:
    """Scores and the per-row latency of batch prediction (best of three, in milliseconds)."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        scores = predict_scores(model, rows, task)
        timings.append(time.perf_counter() - started)
    return scores, 1_000 * min(timings) / max(len(rows), 1)


def _worse_by(champion: float, challenger: float, maximize: bool) -> float:
    """How much worse the challenger is (negative when it is better)."""
    return champion - challenger if maximize else challenger - champion


def _guardrails(
    project: Project,
    snapshot: Snapshot,
    truth: np.ndarray,
    scores: dict[str, np.ndarray],
    metrics: dict[str, dict[str, float]],
    latency: dict[str, float],
) -> list[dict[str, Any]]:
    config = project.config
    policy, task = config.promotion.guardrails, config.train.task

    checks = []
    for name, margin in policy.metrics.items():
        maximize = METRIC_DIRECTIONS[task][name] == "maximize"
        worse = _worse_by(metrics["champion"][name], metrics["challenger"][name], maximize)
        checks.append(
            {
                "name": name,
                "kind": "non-inferiority",
                "champion": metrics["champion"][name],
                "challenger": metrics["challenger"][name],
                "limit": margin,
                "passed": bool(worse <= margin),
            }
        )
    if policy.latency_ms_per_row is not None:
        checks.append(
            {
                "name": "latency_ms_per_row",
                "kind": "budget",
                "champion": latency["champion"],
                "challenger": latency["challenger"],
                "limit": policy.latency_ms_per_row,
                "passed": latency["challenger"] <= policy.latency_ms_per_row,
            }
        )
    column = config.train.slice_column
    if policy.slice_margin is not None and column:
        metric, maximize = config.gate_metric, config.gate_direction == "maximize"
        by_role = {
            role: slice_metrics(task, truth, scores[role], snapshot.holdout[column])
            for role in ("champion", "challenger")
        }
        for value, champion in by_role["champion"].items():
            challenger = by_role["challenger"].get(value)
            if challenger is None or champion["rows"] < policy.min_slice_rows:
                continue
            worse = _worse_by(champion[metric], challenger[metric], maximize)
            checks.append(
                {
                    "name": f"slice {column}={value} {metric}",
                    "kind": "non-inferiority",
                    "champion": champion[metric],
                    "challenger": challenger[metric],
                    "limit": policy.slice_margin,
                    "passed": bool(np.isnan(worse) or worse <= policy.slice_margin),
                }
            )
    return checks


def _verdict(
    project: Project,
    challenger: str,
    champion: str,
    improvement: float,
    result: TestResult,
    guardrails: list[dict[str, Any]],
) -> tuple[Outcome, str]:
    """The policy applied in order: guardrails, significance, effect size."""
    policy, metric = project.config.promotion, project.config.gate_metric
    change = f"{metric} by {improvement:+.4f}"
    evidence = f"{policy.test} p={result.p_value:.3g}"
    if failed := [g["name"] for g in guardrails if not g["passed"]]:
        return Outcome.REJECTED, f"{challenger} fails the guardrails: {', '.join(failed)}."
    if result.p_value >= policy.alpha:
        return Outcome.REJECTED, (
            f"{challenger} changes {change}, not significant ({evidence}, alpha {policy.alpha})."
        )
    if improvement < policy.min_effect:
        return Outcome.REJECTED, (
            f"{challenger} improves {change}, below the minimum effect {policy.min_effect}."
        )
    return Outcome.PROMOTED, (
        f"{challenger} beats {champion} on {change} ({evidence} < {policy.alpha}) "
        "and passes every guardrail."
    )


def _compare(
    project: Project, client: MlflowClient, champion: ModelVersion, challenger: ModelVersion
) -> dict[str, Any]:
    """Score both models on the newest holdout and apply the policy; returns the record body."""
    config, policy = project.config, project.config.promotion
    task, metric, maximize = (
        config.train.task,
        config.gate_metric,
        config.gate_direction == "maximize",
    )
    snapshot = read_snapshot(project.snapshots_dir)
    _check_unseen(project, snapshot, challenger)
    schema = snapshot.schema
    truth = snapshot.holdout[schema.target.name].to_numpy(dtype=float)
    data = {
        "snapshot_id": snapshot.snapshot_id,
        "holdout_sha256": snapshot.digest("holdout"),
        "holdout_rows": len(truth),
        "time_range": snapshot.manifest["time_ranges"]["holdout"],
    }
    if len(truth) < policy.min_holdout_rows:
        return {
            "outcome": Outcome.REJECTED,
            "data": data,
            "reason": (
                f"the holdout has {len(truth)} rows, below the policy's minimum of "
                f"{policy.min_holdout_rows}: too little evidence to replace the champion"
            ),
        }

    rows = model_input(snapshot.holdout, schema)
    name = config.tracking.registered_model
    scores, latency, metrics = {}, {}, {}
    for role, version in (("champion", champion), ("challenger", challenger)):
        model = load_version(client, name, str(version.version))
        scores[role], latency[role] = _score(model, rows, task)
        metrics[role] = compute_metrics(task, truth, scores[role])
    result = run_test(
        policy.test,
        task=task,
        metric=metric,
        metric_fn=METRICS[task][metric],
        maximize=maximize,
        y_true=truth,
        champion_scores=scores["champion"],
        challenger_scores=scores["challenger"],
        alpha=policy.alpha,
        resamples=policy.resamples,
        seed=policy.seed,
    )
    improvement = -_worse_by(metrics["champion"][metric], metrics["challenger"][metric], maximize)
    guardrails = _guardrails(project, snapshot, truth, scores, metrics, latency)
    outcome, reason = _verdict(
        project,
        f"challenger v{challenger.version}",
        f"champion v{champion.version}",
        improvement,
        result,
        guardrails,
    )
    return {
        "outcome": outcome,
        "reason": reason,
        "data": data,
        "primary": {
            "metric": metric,
            "direction": config.gate_direction,
            "champion": metrics["champion"][metric],
            "challenger": metrics["challenger"][metric],
            "improvement": improvement,
            "min_effect": policy.min_effect,
            "alpha": policy.alpha,
        },
        "test": {
            "name": result.test,
            "statistic": result.statistic,
            "p_value": result.p_value,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            "n": result.n,
            "detail": result.detail,
        },
        "guardrails": guardrails,
        "metrics": metrics,
        "latency_ms_per_row": latency,
    }


def _move_champion(
    client: MlflowClient,
    name: str,
    champion: ModelVersion | None,
    challenger: ModelVersion,
    reason: str,
) -> None:
    """previous-champion, the reason, and `champion` last: an interruption never leaves champion
    unset, and a champion always carries why (even if the record is then never written)."""
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(champion.version))
    client.set_model_version_tag(name, str(challenger.version), "promotion_reason", reason)
    client.set_model_version_tag(
        name, str(challenger.version), "promoted_at", datetime.now(UTC).isoformat()
    )
    client.set_registered_model_alias(name, CHAMPION, str(challenger.version))


def promote(project: Project, *, dry_run: bool = False) -> Decision:
    """Run the offline gate on the latest holdout and move `champion` if, and only if, it passes.

    With `dry_run` the decision is made and recorded but no alias moves (CI runs the real
    promotion in a job that a team can put behind an approval).
    """
    name = project.config.tracking.registered_model
    with tracking(project) as client, mlflow.start_run(run_name="promote"):
        record = new_record(
            project,
            "promotion",
            policy=project.config.promotion.model_dump(mode="json"),
            dry_run=dry_run,
        )
        try:
            challenger = alias_version(client, name, CHALLENGER)
            champion = alias_version(client, name, CHAMPION)
            if challenger is None:
                raise GateError(f"{name} has no challenger: run `train` first")
            record["challenger"] = _version_entry(challenger)
            if champion is not None:
                record["champion"] = _version_entry(champion)
            if champion is None:
                record |= {
                    "outcome": Outcome.PROMOTED,
                    "reason": (
                        f"there is no champion yet, so challenger v{challenger.version} "
                        "becomes the first champion without a comparison."
                    ),
                }
            elif str(champion.version) == str(challenger.version):
                record |= {
                    "outcome": Outcome.REJECTED,
                    "reason": (
                        f"challenger v{challenger.version} is already the champion: "
                        "nothing to compare."
                    ),
                }
            else:
                record |= _compare(project, client, champion, challenger)
            if record["outcome"] == Outcome.PROMOTED and not dry_run:
                _move_champion(client, name, champion, challenger, record["reason"])
        except (GateError, DataError, MlflowException, OSError) as error:
            record |= {"outcome": Outcome.ERROR, "reason": f"the gate could not decide: {error}"}
        return conclude(project, record)


def rollback(project: Project) -> Decision:
    """Point `champion` back at `previous-champion` (and remember the one rolled back from)."""
    name = project.config.tracking.registered_model
    with tracking(project) as client, mlflow.start_run(run_name="rollback"):
        record = new_record(project, "rollback")
        previous = alias_version(client, name, PREVIOUS_CHAMPION)
        current = alias_version(client, name, CHAMPION)
        if previous is None or current is None:
            record |= {
                "outcome": Outcome.ERROR,
                "reason": f"{name} has no previous champion to roll back to.",
            }
        else:
            client.set_registered_model_alias(name, CHAMPION, str(previous.version))
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(current.version))
            challenger = alias_version(client, name, CHALLENGER)
            if challenger is not None and str(challenger.version) == str(current.version):
                # Otherwise the next gate, or a live experiment, would bring it straight back.
                client.delete_registered_model_alias(name, CHALLENGER)
            client.set_model_version_tag(
                name, str(current.version), "rolled_back_at", datetime.now(UTC).isoformat()
            )
            record |= {
                "outcome": Outcome.ROLLED_BACK,
                "champion": _version_entry(previous),
                "challenger": _version_entry(current),
                "reason": f"champion moved back from v{current.version} to v{previous.version}.",
            }
        return conclude(project, record)
