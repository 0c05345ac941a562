"""The gate's rule on hand-made evidence: every reason to promote or not, with no MLflow at all."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.config import Project, ProjectConfig, load_governance
from {{ cookiecutter.package_name }}.metrics import METRICS
from {{ cookiecutter.package_name }}.promote import Evidence, Measured, Outcome, decide, stats

from .conftest import ROOT

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)


def _config(project: Project, **promotion: Any) -> ProjectConfig:
    policy = project.config.promotion.model_copy(update=promotion)
    return project.config.model_copy(update={"promotion": policy})


def _measured(
    config: ProjectConfig, *, better_by: float, p_value: float, **changes: float
) -> Measured:
    """Both models equal on every metric but the gate's, where the challenger is `better_by`
    better; `changes` sets other challenger metrics."""
    task, gate = config.train.task, config.gate_metric
    champion = dict.fromkeys(METRICS[task], 0.5)
    challenger = dict(champion) | changes
    direction = 1 if METRICS[task][gate].maximize else -1
    challenger[gate] = champion[gate] + direction * better_by
    test = stats.TestResult("paired_bootstrap", better_by, p_value, None, None, 1_000, {})
    return Measured(
        metrics={"champion": champion, "challenger": challenger},
        latency_ms_per_row={"champion": 0.01, "challenger": 0.01},
        slices={},
        test=test,
    )


def _evidence(config: ProjectConfig, **measured: Any) -> Evidence:
    return Evidence(
        model="m",
        challenger="2",
        champion="1",
        snapshot_id="s",
        holdout_rows=config.promotion.min_holdout_rows,
        measured=_measured(config, **({"better_by": 0.05, "p_value": 0.001} | measured)),
    )


def test_a_significant_guarded_improvement_is_promoted(project: Project) -> None:
    config = project.config
    verdict = decide(_evidence(config), config)
    assert verdict.outcome == Outcome.PROMOTED
    assert verdict.reason.startswith("challenger v2 beats champion v1")
    assert verdict.improvement == pytest.approx(0.05)
    assert all(check["passed"] for check in verdict.guardrails)


@pytest.mark.parametrize(
    ("change", "outcome", "reason"),
    [
        ({"challenger": None}, Outcome.ERROR, "has no challenger"),
        ({"champion": None}, Outcome.PROMOTED, "there is no champion yet"),
        ({"champion": "2"}, Outcome.REJECTED, "already the champion"),
        ({"lineage_known": False}, Outcome.ERROR, "no snapshot_id tag"),
        ({"holdout_overlap": 3}, Outcome.ERROR, "3 holdout rows of snapshot s are not later"),
        ({"holdout_rows": 10}, Outcome.KEEP_COLLECTING, "below the policy's minimum"),
        ({"measured": None}, Outcome.ERROR, "not compared"),
    ],
)
def test_each_rule_before_the_comparison(
    project: Project, change: dict[str, Any], outcome: Outcome, reason: str
) -> None:
    verdict = decide(replace(_evidence(project.config), **change), project.config)
    assert verdict.outcome == outcome
    assert reason in verdict.reason


def test_no_significance_no_promotion(project: Project) -> None:
    config = project.config
    verdict = decide(_evidence(config, p_value=config.promotion.alpha), config)
    assert verdict.outcome == Outcome.REJECTED
    assert "not significant" in verdict.reason


def test_an_effect_below_the_minimum_is_rejected(project: Project) -> None:
    config = _config(project, min_effect=0.1)
    verdict = decide(_evidence(config, better_by=0.05), config)
    assert verdict.outcome == Outcome.REJECTED
    assert "below the minimum effect 0.1" in verdict.reason


def test_a_worse_guardrail_metric_is_rejected_whatever_the_primary_says(
    project: Project,
) -> None:
    config = project.config
    guarded = next(iter(config.promotion.guardrails.metrics))
    margin = config.promotion.guardrails.metrics[guarded]
    worse = 0.5 + (-1 if METRICS[config.train.task][guarded].maximize else 1) * 2 * margin
    verdict = decide(_evidence(config, **{guarded: worse}), config)
    assert verdict.outcome == Outcome.REJECTED
    assert f"fails the guardrails: {guarded}" in verdict.reason
    assert [c["name"] for c in verdict.guardrails if not c["passed"]] == [guarded]


def test_a_latency_over_budget_is_rejected(project: Project) -> None:
    config = _config(
        project,
        guardrails=project.config.promotion.guardrails.model_copy(
            update={"latency_ms_per_row": 1.0}
        ),
    )
    evidence = _evidence(config)
    assert evidence.measured is not None
    slow = replace(evidence.measured, latency_ms_per_row={"champion": 0.5, "challenger": 2.0})
    verdict = decide(replace(evidence, measured=slow), config)
    assert verdict.outcome == Outcome.REJECTED
    assert "latency_ms_per_row" in verdict.reason


def test_a_slice_made_worse_is_rejected(project: Project) -> None:
    guardrails = project.config.promotion.guardrails.model_copy(update={"slice_margin": 0.05})
    config = _config(project, guardrails=guardrails)
    assert config.train.slice_column
    gate = config.gate_metric
    sign = 1 if METRICS[config.train.task][gate].maximize else -1
    evidence = _evidence(config)
    assert evidence.measured is not None
    rows = float(config.promotion.guardrails.min_slice_rows)
    slices = {
        "champion": {"north": {"rows": rows, gate: 0.8}, "south": {"rows": rows, gate: 0.8}},
        "challenger": {"north": {"rows": rows, gate: 0.9}, "south": {"rows": rows, gate: 0.8}},
    }
    slices["challenger"]["south"][gate] = 0.8 - sign * 0.5
    verdict = decide(replace(evidence, measured=replace(evidence.measured, slices=slices)), config)
    assert verdict.outcome == Outcome.REJECTED
    column = config.train.slice_column
    assert f"slice {column}=south {gate}" in verdict.reason


# Labelled shadow rows: the evidence of a small table, beside its holdout.
def _shadowed(config: ProjectConfig, holdout: int, shadow: int, **measured: Any) -> Evidence:
    return replace(_evidence(config, **measured), holdout_rows=holdout, shadow_rows=shadow)


def test_labelled_shadow_rows_make_up_what_the_holdout_lacks(project: Project) -> None:
    config = _config(project, min_holdout_rows=500)
    verdict = decide(_shadowed(config, holdout=60, shadow=440), config)
    assert verdict.outcome == Outcome.PROMOTED, verdict.reason
    assert "over 500 rows (60 holdout, 440 labelled shadow)" in verdict.reason


def test_too_few_rows_of_evidence_say_how_many_more_and_where_from(project: Project) -> None:
    config = _config(project, min_holdout_rows=500)
    verdict = decide(_shadowed(config, holdout=60, shadow=100), config)
    assert verdict.outcome == Outcome.KEEP_COLLECTING
    assert verdict.outcome.exit_code == 3
    assert verdict.improvement is None, "no comparison below the minimum"
    assert "the evidence has 160 rows (60 holdout, 100 labelled shadow), below the policy's " in (
        verdict.reason
    )
    assert "challenger v2 stays the challenger" in verdict.reason
    assert (
        "serve with promotion.online.mode: shadow and send labels to /feedback: 340 more "
        "labelled rows needed" in verdict.reason
    )
    online = config.promotion.online.model_copy(update={"mode": "shadow"})
    shadowing = _config(project, min_holdout_rows=500, online=online)
    verdict = decide(_shadowed(shadowing, holdout=60, shadow=100), shadowing)
    assert "the service scores it in shadow (promotion.online.mode: shadow): send labels" in (
        verdict.reason
    )


def test_with_shadow_evidence_off_the_holdout_alone_counts(project: Project) -> None:
    config = _config(project, min_holdout_rows=500, shadow_evidence=False)
    verdict = decide(_shadowed(config, holdout=60, shadow=10_000), config)
    assert verdict.outcome == Outcome.REJECTED
    assert "the evidence has 60 holdout rows, below the policy's minimum of 500" in verdict.reason
    assert "promotion.shadow_evidence: false" in verdict.reason


def test_nothing_is_promoted_on_fewer_rows_than_the_governance_floor(project: Project) -> None:
    """However the rows divide between holdout and shadow traffic, and however strong the
    evidence looks, one row short of the team's floor is not a promotion; the floor itself is."""
    governance = load_governance(ROOT)
    assert governance is not None
    floor = governance.floor.min_holdout_rows
    config = _config(project, min_holdout_rows=floor)
    for holdout in sorted({0, 1, floor // 3, floor // 2, floor - 2, floor - 1}):
        short = _shadowed(config, holdout, floor - 1 - holdout, better_by=0.4, p_value=1e-6)
        assert decide(short, config).outcome == Outcome.KEEP_COLLECTING, holdout
        enough = _shadowed(config, holdout, floor - holdout, better_by=0.4, p_value=1e-6)
        assert decide(enough, config).outcome == Outcome.PROMOTED, holdout
