"""The promotion gate's rule, whole, in one pure function: evidence and policy in, verdict out.

Every reason a challenger can or cannot replace the champion lives here, in the order it is
applied, so the rule can be read (and changed) in one place and tested without MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import ProjectConfig
from ..metrics import metric
from .record import Outcome
from .stats import TestResult


@dataclass(frozen=True)
class Measured:
    """Champion and challenger scored on the same holdout rows. Keys of the role dictionaries
    are "champion" and "challenger"."""

    metrics: dict[str, dict[str, float]]
    latency_ms_per_row: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]]  # role -> slice value -> rows and metrics
    test: TestResult


@dataclass(frozen=True)
class Evidence:
    """What the gate knows. Versions are None when the alias is not set; `lineage_known` is
    False when the challenger does not say which snapshot it trained on. The evidence is the
    holdout's rows plus `shadow_rows`: live requests the champion answered and the challenger
    scored in shadow, each with its label; `measured` is on all of them."""

    model: str
    challenger: str | None
    champion: str | None
    snapshot_id: str = ""
    holdout_rows: int = 0
    holdout_overlap: int = 0  # holdout rows the challenger learned from, by the split's rule
    split_strategy: str = "time"  # how the holdout was drawn (data.split.strategy)
    group_column: str | None = None  # a group split's entity column
    shadow_rows: int = 0  # labelled shadow rows of exactly these two versions, measured too
    lineage_known: bool = True
    measured: Measured | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    improvement: float | None = None
    guardrails: list[dict[str, Any]] = field(default_factory=list)


def decide(evidence: Evidence, config: ProjectConfig) -> Verdict:
    """Apply the promotion policy: lineage, how much evidence, guardrails, significance, effect."""
    challenger, champion = evidence.challenger, evidence.champion
    if challenger is None:
        return Verdict(Outcome.ERROR, f"{evidence.model} has no challenger: run `train` first.")
    if champion is None:
        return Verdict(
            Outcome.PROMOTED,
            f"there is no champion yet, so challenger v{challenger} becomes the first champion "
            "without a comparison.",
        )
    if champion == challenger:
        return Verdict(
            Outcome.REJECTED,
            f"challenger v{challenger} is already the champion: nothing to compare.",
        )
    if not evidence.lineage_known:
        return Verdict(
            Outcome.ERROR,
            f"the gate could not decide: challenger v{challenger} has no snapshot_id tag, so "
            "its training data (and whether the holdout is unseen) is unknown.",
        )
    if evidence.holdout_overlap:
        return Verdict(Outcome.ERROR, _overlap_reason(evidence, challenger))
    policy = config.promotion
    if evidence_rows(evidence, config) < policy.min_holdout_rows:
        return too_little_evidence(evidence, config)
    measured = evidence.measured
    if measured is None:
        return Verdict(Outcome.ERROR, "the gate could not decide: the models were not compared.")

    gate_metric = metric(config.train.task, config.gate_metric)
    improvement = gate_metric.improvement(
        measured.metrics["champion"][gate_metric.name],
        measured.metrics["challenger"][gate_metric.name],
    )
    checks = guardrails(measured, config)
    result = measured.test
    change = f"{gate_metric.name} by {improvement:+.4f}"
    evidence_text = f"{result.test} p={result.p_value:.3g}"
    if failed := [check["name"] for check in checks if not check["passed"]]:
        reason = f"challenger v{challenger} fails the guardrails: {', '.join(failed)}."
        return Verdict(Outcome.REJECTED, reason, improvement, checks)
    if result.p_value >= policy.alpha:
        reason = (
            f"challenger v{challenger} changes {change}, not significant "
            f"({evidence_text}, alpha {policy.alpha}) over {rows_text(evidence, config)}."
        )
        return Verdict(Outcome.REJECTED, reason, improvement, checks)
    if math.isnan(improvement) or improvement < policy.min_effect:
        reason = (
            f"challenger v{challenger} improves {change}, below the minimum effect "
            f"{policy.min_effect}."
        )
        return Verdict(Outcome.REJECTED, reason, improvement, checks)
    reason = (
        f"challenger v{challenger} beats champion v{champion} on {change} "
        f"({evidence_text} < {policy.alpha}) over {rows_text(evidence, config)} and passes every "
        "guardrail."
    )
    return Verdict(Outcome.PROMOTED, reason, improvement, checks)


def _overlap_reason(evidence: Evidence, challenger: str) -> str:
    """Why holdout rows the challenger learned from stop the gate, in the split's terms."""
    rows = f"{evidence.holdout_overlap} holdout rows of snapshot {evidence.snapshot_id}"
    if evidence.split_strategy == "time":
        return (
            f"the gate could not decide: {rows} are not later than the data challenger "
            f"v{challenger} trained on; ingest newer data to compare fairly."
        )
    if evidence.split_strategy == "group":
        seen = f"belong to {evidence.group_column} values challenger v{challenger} learned from"
    else:
        seen = f"are rows challenger v{challenger} learned from (the same key and timestamp)"
    return (
        f"the gate could not decide: {rows} {seen}, in its training or validation split "
        f"(data.split.strategy: {evidence.split_strategy}): the snapshots were split "
        "differently, by changed data.split settings or cuts moved as the table grew; train "
        "the challenger on this snapshot to compare fairly."
    )


def evidence_rows(evidence: Evidence, config: ProjectConfig) -> int:
    """The rows the gate weighs: the holdout's, and the labelled shadow rows unless the policy
    counts the holdout alone (promotion.shadow_evidence: false)."""
    shadow = evidence.shadow_rows if config.promotion.shadow_evidence else 0
    return evidence.holdout_rows + shadow


def rows_text(evidence: Evidence, config: ProjectConfig) -> str:
    """Where the evidence comes from, in words: "2985 holdout rows", or with shadow rows
    "163 rows (30 holdout, 133 labelled shadow)"."""
    rows = evidence_rows(evidence, config)
    if rows == evidence.holdout_rows:
        return f"{rows} holdout rows"
    shadow = rows - evidence.holdout_rows
    return f"{rows} rows ({evidence.holdout_rows} holdout, {shadow} labelled shadow)"


def too_little_evidence(evidence: Evidence, config: ProjectConfig) -> Verdict:
    """Below the policy's minimum: rejected when the holdout alone counts; otherwise the way to
    the minimum (labelled shadow traffic), with how many rows are missing, and the challenger
    waits. The minimum is never lowered here: only promotion.min_holdout_rows sets it."""
    policy, challenger = config.promotion, evidence.challenger
    needed = policy.min_holdout_rows - evidence_rows(evidence, config)
    short = (
        f"the evidence has {rows_text(evidence, config)}, below the policy's minimum of "
        f"{policy.min_holdout_rows} (promotion.min_holdout_rows)"
    )
    if not policy.shadow_evidence:
        return Verdict(
            Outcome.REJECTED,
            f"{short}: too little evidence to replace the champion. The holdout alone counts "
            "(promotion.shadow_evidence: false); with it true, labelled shadow traffic counts too.",
        )
    serve = (
        "the service scores it in shadow (promotion.online.mode: shadow): send labels"
        if policy.online.mode == "shadow"
        else "serve with promotion.online.mode: shadow and send labels"
    )
    return Verdict(
        Outcome.KEEP_COLLECTING,
        f"{short}. Keep collecting: challenger v{challenger} stays the challenger; {serve} to "
        f"/feedback: {needed} more labelled rows needed, then run `promote` again.",
    )


def guardrails(measured: Measured, config: ProjectConfig) -> list[dict[str, Any]]:
    """Each guardrail of the policy against what was measured: what the challenger must not
    make worse, whatever its primary metric says."""
    policy, task = config.promotion.guardrails, config.train.task
    checks = []
    for name, margin in policy.metrics.items():
        champion, challenger = (measured.metrics[role][name] for role in ("champion", "challenger"))
        worse = -metric(task, name).improvement(champion, challenger)
        checks.append(
            _check(name, "non-inferiority", champion, challenger, margin, worse <= margin)
        )
    if policy.latency_ms_per_row is not None:
        latency = measured.latency_ms_per_row
        within = latency["challenger"] <= policy.latency_ms_per_row
        checks.append(
            _check(
                "latency_ms_per_row",
                "budget",
                latency["champion"],
                latency["challenger"],
                policy.latency_ms_per_row,
                within,
            )
        )
    column = config.train.slice_column
    if policy.slice_margin is not None and column:
        gate_metric = metric(task, config.gate_metric)
        challenger_slices = measured.slices.get("challenger", {})
        for value, champion_slice in measured.slices.get("champion", {}).items():
            challenger_slice = challenger_slices.get(value)
            if challenger_slice is None or champion_slice["rows"] < policy.min_slice_rows:
                continue
            champion, challenger = (
                champion_slice[gate_metric.name],
                challenger_slice[gate_metric.name],
            )
            worse = -gate_metric.improvement(champion, challenger)
            passed = math.isnan(worse) or worse <= policy.slice_margin
            name = f"slice {column}={value} {gate_metric.name}"
            checks.append(
                _check(name, "non-inferiority", champion, challenger, policy.slice_margin, passed)
            )
    return checks


def _check(
    name: str, kind: str, champion: float, challenger: float, limit: float, passed: bool
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "champion": champion,
        "challenger": challenger,
        "limit": limit,
        "passed": bool(passed),
    }
