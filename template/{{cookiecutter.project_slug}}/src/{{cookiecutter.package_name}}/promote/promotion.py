"""The offline gate's run: gather the evidence, let `gate.decide` rule, move `champion` if it says
so, and record the decision. Also the way back: `rollback`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ..config import Project
from ..data import DataError, Snapshot, latest_snapshot_id, read_snapshot
from ..data.split import group_names, row_names
from ..features import model_input
from ..metrics import compute_metrics, metric, predict_scores, slice_metrics
from ..store import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, Store
from .gate import Evidence, Measured, Verdict, decide, evidence_rows
from .record import Decision, Outcome, conclude, new_record
from .shadow import NOT_REPRODUCED, ShadowRows, no_shadow_rows, shadow_rows
from .stats import minimum_detectable_effect, run_test

# What the minimum detectable effect of each test is measured in (80% power).
EFFECT_SCALES = {
    "paired_bootstrap": "{metric}",
    "paired_t": "mean per-row loss",
    "wilcoxon": "mean per-row loss",
    "mcnemar": "accuracy",
}


def _version_entry(version: ModelVersion) -> dict[str, Any]:
    """A version as records name it, with the holdout metric it was registered with."""
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "snapshot_id": version.tags.get("snapshot_id"),
        "model_family": version.tags.get("model_family"),
        **{key: value for key, value in version.tags.items() if key.startswith("holdout_")},
    }


def _last_seen(project: Project, trained_on: str) -> pd.Timestamp:
    """The last time of the rows the challenger was fitted or calibrated on."""
    seen = read_snapshot(project.snapshots_dir, trained_on)
    timestamp = seen.schema.timestamp_column
    return pd.Timestamp(max(seen.train[timestamp].max(), seen.validation[timestamp].max()))


def _holdout_overlap(project: Project, snapshot: Snapshot, trained_on: str) -> int:
    """Holdout rows the challenger learned from (was fitted or calibrated on), by the rule of
    the holdout's split. `time`: rows no later than the last row it learned from, since the
    holdout stands for the future. `random`: the same rows (key and timestamp), which a changed
    `data.split` setting or a cut moved by a growing table puts in the holdout. `group`: rows of
    an entity it learned from, whichever rows of that entity it saw."""
    seen = read_snapshot(project.snapshots_dir, trained_on)
    learned = pd.concat([seen.train, seen.validation], ignore_index=True)
    holdout, split = snapshot.holdout, snapshot.split
    if split["strategy"] == "time":
        timestamp = snapshot.schema.timestamp_column
        return int((holdout[timestamp] <= learned[timestamp].max()).sum())
    column = split.get("group_column")
    if column and column in learned.columns:
        return int(group_names(holdout, column).isin(set(group_names(learned, column))).sum())
    known = set(row_names(learned, seen.schema))
    return int(row_names(holdout, snapshot.schema).isin(known).sum())


def _newest_snapshot(project: Project, trained_on: str | None) -> Snapshot:
    """The newest holdout this checkout has ingested; a fresh checkout (a CI job that only
    promotes) has ingested none and gates on the challenger's own snapshot, fetched from its run.
    """
    if trained_on is None or latest_snapshot_id(project.snapshots_dir) is not None:
        return read_snapshot(project.snapshots_dir)
    return read_snapshot(project.snapshots_dir, trained_on)


def _score(model: Any, rows: pd.DataFrame, task: Any) -> tuple[np.ndarray, float]:
    """Scores and the per-row latency of batch prediction (best of three, in milliseconds)."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        scores = predict_scores(model, rows, task)
        timings.append(time.perf_counter() - started)
    return scores, 1_000 * min(timings) / max(len(rows), 1)


def _measure(
    project: Project,
    store: Store,
    snapshot: Snapshot,
    versions: dict[str, ModelVersion],
    shadow: ShadowRows,
) -> tuple[Measured, ShadowRows]:
    """Both models on the evidence: the newest holdout's rows, then the labelled shadow rows,
    scored alike. Metrics, slices and the configured paired test are on every counted row; the
    latency is batch prediction over all of them. Shadow pairs whose logged answers these
    versions do not give again are left out (returned, counted, with the rest)."""
    config = project.config
    task, policy, schema = config.train.task, config.promotion, snapshot.schema
    holdout = model_input(snapshot.holdout, schema)
    rows = pd.concat([holdout, shadow.rows], ignore_index=True) if len(shadow) else holdout
    scores, latency = {}, {}
    for role, version in versions.items():
        model = store.load_version(str(version.version))
        scores[role], latency[role] = _score(model, rows, task)
    if len(shadow):
        agree = shadow.reproduced({role: values[len(holdout) :] for role, values in scores.items()})
        shadow = shadow.kept(agree, NOT_REPRODUCED)
        keep = np.r_[np.ones(len(holdout), dtype=bool), agree]
        rows = rows[keep].reset_index(drop=True)
        scores = {role: values[keep] for role, values in scores.items()}
    truth = np.r_[snapshot.holdout[schema.target.name].to_numpy(dtype=float), shadow.truth]
    metrics, slices = {}, {}
    for role in versions:
        metrics[role] = compute_metrics(task, truth, scores[role])
        column = config.train.slice_column
        if column:
            slices[role] = slice_metrics(task, truth, scores[role], rows[column])
    test = run_test(
        policy.test,
        task=task,
        metric=metric(task, config.gate_metric),
        y_true=truth,
        champion_scores=scores["champion"],
        challenger_scores=scores["challenger"],
        alpha=policy.alpha,
        resamples=policy.resamples,
        seed=policy.seed,
    )
    measured = Measured(metrics=metrics, latency_ms_per_row=latency, slices=slices, test=test)
    return measured, shadow


def gather_evidence(project: Project, store: Store) -> tuple[Evidence, dict[str, Any]]:
    """What the gate needs, and the record's account of the data and versions behind it: the
    holdout, and (with promotion.shadow_evidence) the labelled shadow rows of the two versions."""
    challenger, champion = store.alias_version(CHALLENGER), store.alias_version(CHAMPION)
    versions = {"champion": champion, "challenger": challenger}
    entries = {role: _version_entry(v) for role, v in versions.items() if v is not None}
    evidence = Evidence(
        model=store.model_name,
        challenger=str(challenger.version) if challenger else None,
        champion=str(champion.version) if champion else None,
    )
    if challenger is None or champion is None or evidence.challenger == evidence.champion:
        return evidence, entries
    trained_on = challenger.tags.get("snapshot_id")
    if trained_on:
        store.training_snapshot(challenger, project.snapshots_dir)
    snapshot = _newest_snapshot(project, trained_on)
    last_seen = _last_seen(project, trained_on) if trained_on else None
    compared = {"champion": champion, "challenger": challenger}
    shadow = (
        shadow_rows(
            project,
            snapshot.schema,
            {role: str(version.version) for role, version in compared.items()},
            last_seen,
        )
        if project.config.promotion.shadow_evidence
        else no_shadow_rows(snapshot.schema)
    )
    measured, shadow = _measure(project, store, snapshot, compared, shadow)
    data = {
        "snapshot_id": snapshot.snapshot_id,
        "holdout_sha256": snapshot.digest("holdout"),
        "holdout_rows": len(snapshot.holdout),
        "time_range": snapshot.manifest["time_ranges"]["holdout"],
        "holdout": snapshot.split["holdout"],
        "split": {key: value for key, value in snapshot.split.items() if key != "holdout"},
        **shadow.account(),
        "evidence_rows": len(snapshot.holdout) + len(shadow),
    }
    evidence = Evidence(
        model=store.model_name,
        challenger=evidence.challenger,
        champion=evidence.champion,
        snapshot_id=snapshot.snapshot_id,
        holdout_rows=len(snapshot.holdout),
        holdout_overlap=_holdout_overlap(project, snapshot, trained_on) if trained_on else 0,
        split_strategy=snapshot.split["strategy"],
        group_column=snapshot.split.get("group_column"),
        shadow_rows=len(shadow),
        lineage_known=bool(trained_on),
        measured=measured,
    )
    return evidence, entries | {"data": data}


def _record_body(evidence: Evidence, verdict: Verdict, project: Project) -> dict[str, Any]:
    """The numbers behind a verdict, in the decision record's layout."""
    body: dict[str, Any] = {"outcome": verdict.outcome, "reason": verdict.reason}
    if verdict.outcome == Outcome.KEEP_COLLECTING:
        needed = project.config.promotion.min_holdout_rows - evidence_rows(evidence, project.config)
        body["rows_needed"] = needed
    measured = evidence.measured
    if measured is None or verdict.improvement is None:
        return body
    config, policy, result = project.config, project.config.promotion, measured.test
    name = config.gate_metric
    return body | {
        "primary": {
            "metric": name,
            "direction": metric(config.train.task, name).direction,
            "champion": measured.metrics["champion"][name],
            "challenger": measured.metrics["challenger"][name],
            "improvement": verdict.improvement,
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
            "minimum_detectable_effect": minimum_detectable_effect(result, policy.alpha),
            "effect_scale": EFFECT_SCALES[result.test].format(metric=name),
            "detail": result.detail,
            "differences": result.differences.as_record() if result.differences else None,
        },
        "guardrails": verdict.guardrails,
        "metrics": measured.metrics,
        "latency_ms_per_row": measured.latency_ms_per_row,
    }


def _move_champion(store: Store, champion: str | None, challenger: str, reason: str) -> None:
    """previous-champion, the reason, and `champion` last: an interruption never leaves champion
    unset, and a champion always carries why (even if the record is then never written)."""
    if champion is not None:
        store.set_alias(PREVIOUS_CHAMPION, champion)
    promoted_at = datetime.now(UTC).isoformat()
    store.tag_version(challenger, {"promotion_reason": reason, "promoted_at": promoted_at})
    store.set_alias(CHAMPION, challenger)


def promote(project: Project, *, dry_run: bool = False) -> Decision:
    """Run the offline gate on the latest holdout and move `champion` if, and only if, it passes.

    With `dry_run` the decision is made and recorded but no alias moves (CI runs the real
    promotion in a job that a team can put behind an approval).
    """
    store = Store.open(project)
    with store.run("promote") as run:
        record = new_record(
            project,
            "promotion",
            policy=project.config.promotion.model_dump(mode="json"),
            dry_run=dry_run,
        )
        try:
            evidence, account = gather_evidence(project, store)
            record |= account
            verdict = decide(evidence, project.config)
            record |= _record_body(evidence, verdict, project)
            promoted = verdict.outcome == Outcome.PROMOTED and evidence.challenger is not None
            if promoted and evidence.challenger is not None and not dry_run:
                _move_champion(store, evidence.champion, evidence.challenger, verdict.reason)
        except (DataError, MlflowException, OSError) as error:
            record |= {"outcome": Outcome.ERROR, "reason": f"the gate could not decide: {error}"}
        return conclude(project, run, record)


def rollback(project: Project) -> Decision:
    """Point `champion` back at `previous-champion` (and remember the one rolled back from)."""
    store = Store.open(project)
    with store.run("rollback") as run:
        record = new_record(project, "rollback")
        previous = store.alias_version(PREVIOUS_CHAMPION)
        current = store.alias_version(CHAMPION)
        if previous is None or current is None:
            record |= {
                "outcome": Outcome.ERROR,
                "reason": f"{store.model_name} has no previous champion to roll back to.",
            }
        else:
            store.set_alias(CHAMPION, str(previous.version))
            store.set_alias(PREVIOUS_CHAMPION, str(current.version))
            challenger = store.alias_version(CHALLENGER)
            if challenger is not None and str(challenger.version) == str(current.version):
                # Otherwise the next gate, or a live experiment, would bring it straight back.
                store.delete_alias(CHALLENGER)
            rolled_back_at = datetime.now(UTC).isoformat()
            store.tag_version(str(current.version), {"rolled_back_at": rolled_back_at})
            record |= {
                "outcome": Outcome.ROLLED_BACK,
                "champion": _version_entry(previous),
                "challenger": _version_entry(current),
                "reason": f"champion moved back from v{current.version} to v{previous.version}.",
            }
        return conclude(project, run, record)
