"""Leakage at training: the pure check on small frames and real public data, then end to end
with a column planted in the demo data that relabels the target."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    DemoSourceConfig,
    LeakageConfig,
    Project,
    Task,
    load_project,
)
from {{ cookiecutter.package_name }}.data import (
    ColumnSpec,
    DataSchema,
    demo_schema,
    generate_demo,
    ingest,
    write_table,
)
from {{ cookiecutter.package_name }}.loop import retrain
from {{ cookiecutter.package_name }}.promote import Outcome
from {{ cookiecutter.package_name }}.store import Store
from {{ cookiecutter.package_name }}.train import LeakageError, LeakageReport, check_leakage, train

from .conftest import ROOT, write_project

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

CLASSIFY: Task = "binary_classification"
ROWS = 600
TASK = load_project(ROOT / "configs" / "project.yaml").config.train.task
FAMILY = load_project(ROOT / "configs" / "project.yaml").config.train.model_family
# 30 boosting rounds instead of 100: enough to train, quicker to test.
PARAMS: dict[str, Any] = {"max_iter": 30} if FAMILY == "hist_gradient_boosting" else {}
PLANTED = "account_status" if TASK == CLASSIFY else "invoiced_next_month"


def _schema(frame: pd.DataFrame, target: str, categorical: tuple[str, ...] = ()) -> DataSchema:
    """Every other column of `frame` a numeric or categorical feature; the timestamp is only
    there because a schema needs one (the check never reads it)."""
    features = [
        ColumnSpec(
            name=str(name),
            role="categorical",
            categories=tuple(sorted(frame[name].dropna().astype(str).unique())),
        )
        if name in categorical
        else ColumnSpec(name=str(name), role="numeric", nullable=True)
        for name in frame.columns
        if name != target
    ]
    return DataSchema(
        columns=(
            ColumnSpec(name="event_time", role="timestamp"),
            *features,
            ColumnSpec(name=target, role="target"),
        )
    )


def _check(
    frame: pd.DataFrame,
    target: str,
    task: Task = CLASSIFY,
    categorical: tuple[str, ...] = (),
    config: LeakageConfig | None = None,
) -> LeakageReport:
    """The check on `frame` cut in row order: 70% train, 15% validation, 15% holdout."""
    train_end, validation_end = int(0.7 * len(frame)), int(0.85 * len(frame))
    return check_leakage(
        frame.iloc[:train_end],
        frame.iloc[train_end:validation_end],
        frame.iloc[validation_end:],
        schema=_schema(frame, target, categorical),
        task=task,
        config=config or LeakageConfig(),
    )


def _churn(seed: int = 0) -> pd.DataFrame:
    """A label and an ordinary feature that predicts it well, but far from perfectly."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, ROWS)
    return pd.DataFrame(
        {
            "tickets": label + rng.normal(0, 1, ROWS),
            "tenure": rng.gamma(2.0, 14.0, ROWS),
            "churned": label,
        }
    )


def _flagged(report: LeakageReport) -> list[str]:
    return [leak.feature for leak in report.leaks]


def test_a_numeric_copy_of_the_label_leaks() -> None:
    frame = _churn().assign(label_copy=lambda f: f["churned"].astype(float))
    report = _check(frame, "churned")
    assert report.score_name == "roc_auc"
    assert report.scores["label_copy"] == 1.0
    assert _flagged(report) == ["label_copy"]
    assert not report.passed
    assert report.summary == "refused: label_copy"
    message = report.refusal()
    assert message.startswith("leakage:")
    assert "label_copy (alone scores validation roc_auc 1.0000 >= 0.995)" in message
    assert "train.leakage.allow" in message


def test_a_categorical_relabelling_of_the_label_leaks_by_both_rules() -> None:
    frame = _churn().assign(status=lambda f: f["churned"].map({0: "A", 1: "B"}))
    report = _check(frame, "churned", categorical=("status",))
    assert _flagged(report) == ["status"]
    (leak,) = report.leaks
    assert len(leak.rules) == 2
    assert "every value maps to one label, on 100.0% of training rows" in leak.rules
    assert report.one_label_shares["status"] == 1.0


def test_an_informative_but_noisy_feature_is_not_a_leak() -> None:
    report = _check(_churn(), "churned")
    assert 0.6 < report.scores["tickets"] < 0.9
    assert report.leaks == ()
    assert report.passed
    assert report.summary == "none"


def test_the_threshold_is_configurable() -> None:
    report = _check(_churn(), "churned", config=LeakageConfig(threshold=0.6))
    assert _flagged(report) == ["tickets"]


def test_an_id_like_categorical_is_not_a_leak() -> None:
    """Each value once: it maps to one label trivially, which says nothing about the target."""
    frame = _churn().assign(customer=[f"C{row:05d}" for row in range(ROWS)])
    report = _check(frame, "churned", categorical=("customer",))
    assert report.one_label_shares["customer"] == 0.0
    assert report.passed


def test_a_categorical_with_mixed_values_is_not_a_leak() -> None:
    rng = np.random.default_rng(1)
    frame = _churn().assign(region=rng.choice(["north", "south", "east"], ROWS))
    report = _check(frame, "churned", categorical=("region",))
    assert report.one_label_shares["region"] == 0.0
    assert report.passed


def test_holdout_rows_seen_in_training_leak() -> None:
    churn, holdout_start, repeated = _churn(), int(0.85 * ROWS), 20
    parts = [churn[:holdout_start], churn[:repeated], churn[holdout_start + repeated :]]
    frame = pd.concat(parts, ignore_index=True)
    report = _check(frame, "churned")
    assert report.shared_rows == repeated
    assert report.holdout_rows == ROWS - holdout_start
    assert report.leaks == ()
    assert not report.passed
    assert report.summary == "refused: shared holdout rows"
    assert f"{repeated} of {report.holdout_rows} holdout rows" in report.refusal()
    assert "max_shared_share" in report.refusal()
    assert _check(frame, "churned", config=LeakageConfig(max_shared_share=0.5)).passed


def test_a_one_class_validation_split_scores_nan_and_flags_nothing() -> None:
    frame = _churn().assign(label_copy=lambda f: f["churned"].astype(float))
    validation = slice(int(0.7 * ROWS), int(0.85 * ROWS))
    frame.loc[frame.index[validation], ["churned", "label_copy"]] = 0
    report = _check(frame, "churned")
    assert all(math.isnan(score) for score in report.scores.values())
    assert report.passed
    assert report.as_dict()["scores"]["label_copy"] is None


def test_a_regression_feature_that_is_the_target_scaled_leaks_by_r2() -> None:
    rng = np.random.default_rng(2)
    spend = rng.lognormal(3.5, 0.6, ROWS)
    frame = pd.DataFrame(
        {
            "this_month": spend * rng.lognormal(0, 0.3, ROWS),
            "doubled": 2 * spend,
            "next_month": spend,
        }
    )
    report = _check(frame, "next_month", task="regression")
    assert report.score_name == "r2"
    assert report.scores["doubled"] == pytest.approx(1.0)
    assert 0.5 < report.scores["this_month"] < 0.99
    assert _flagged(report) == ["doubled"]
    assert "alone scores validation r2 1.0000" in report.refusal()


def test_an_allowed_feature_passes_with_its_reason_and_unknown_names_are_refused() -> None:
    frame = _churn().assign(label_copy=lambda f: f["churned"].astype(float))
    reason = "filled in by the agent before the call ends"
    report = _check(frame, "churned", config=LeakageConfig(allow={"label_copy": reason}))
    assert report.passed
    assert report.allowed[0].allowed_because == reason
    assert report.summary == "allowed: label_copy"
    with pytest.raises(ConfigError, match=r"train\.leakage\.allow names \['typo'\]"):
        _check(frame, "churned", config=LeakageConfig(allow={"typo": reason}))


def test_an_allowed_feature_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="allow"):
        LeakageConfig(allow={"label_copy": "  "})


@pytest.mark.parametrize(
    ("name", "frame", "task"),
    [
        ("breast_cancer", load_breast_cancer(as_frame=True).frame, CLASSIFY),
        ("diabetes", load_diabetes(as_frame=True, scaled=False).frame, "regression"),
    ],
)
def test_real_public_data_flags_nothing(name: str, frame: pd.DataFrame, task: Task) -> None:
    report = _check(frame, "target", task=task)
    assert report.passed, (name, report.summary, max(report.scores.values()))


# --- end to end on the demo data, with a column planted in it -------------------------------


def _leaky_project(root: Path, allow: dict[str, str] | None = None) -> Project:
    """The demo rows in a CSV file, plus a column that relabels the target, and its schema."""
    rows = generate_demo(DemoSourceConfig(rows=3_000, days=60), TASK)
    schema = demo_schema(TASK)
    target = schema.target.name
    if TASK == CLASSIFY:
        rows[PLANTED] = rows[target].map({0: "active", 1: "closing"})
        planted = ColumnSpec(name=PLANTED, role="categorical", categories=("active", "closing"))
    else:
        rows[PLANTED] = rows[target] * 2
        planted = ColumnSpec(name=PLANTED, role="numeric", min=0, max=40_000)
    write_table(rows, root / "raw" / "rows.csv")
    DataSchema(columns=(*schema.columns, planted)).to_yaml(root / "raw" / "schema.yaml")
    source = {"kind": "file", "path": "raw/rows.csv", "schema_path": "raw/schema.yaml"}
    training: dict[str, Any] = {"params": PARAMS, "leakage": {"allow": allow or {}}}
    project = write_project(root, sections={"data": {"source": source}, "train": training})
    ingest(project)
    return project


@pytest.mark.e2e
def test_training_refuses_a_planted_relabelling_of_the_target(tmp_path: Path) -> None:
    project = _leaky_project(tmp_path / "leaky")
    with pytest.raises(LeakageError, match="leakage") as refused:
        train(project)
    assert PLANTED in str(refused.value)
    assert "train.leakage.allow" in str(refused.value)
    assert [leak.feature for leak in refused.value.report.refused] == [PLANTED]
    store = Store.open(project)
    assert store.versions() == []
    experiment = store.client.get_experiment_by_name(project.config.tracking.experiment)
    assert experiment is not None
    (run,) = store.client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["outcome"] == "rejected: leakage"
    assert run.data.tags["leakage"] == f"refused: {PLANTED}"
    assert run.data.metrics[f"leakage_score_{PLANTED}"] >= 0.995
    assert run.data.metrics["leakage_shared_rows"] == 0
    assert "leakage_score_tenure_months" in run.data.metrics
    assert run.data.params["leakage_threshold"] == "0.995"

    result = CliRunner().invoke(app, ["train", "-c", str(project.root / "configs/project.yaml")])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "leakage" in message
    assert PLANTED in message
    assert "Traceback" not in result.output
    assert Store.open(project).versions() == []


@pytest.mark.e2e
def test_an_allowed_feature_trains_and_the_reason_is_on_the_run(tmp_path: Path) -> None:
    reason = "set by billing before the month starts, known when we predict"
    project = _leaky_project(tmp_path / "allowed", allow={PLANTED: reason})
    result = train(project)
    assert result.version == "1"
    run = Store.open(project).client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["leakage"] == f"allowed: {PLANTED}"
    assert run.data.tags[f"leakage_allowed.{PLANTED}"] == reason
    assert run.data.metrics[f"leakage_score_{PLANTED}"] >= 0.995


@pytest.mark.e2e
def test_retraining_on_leaking_data_ends_in_an_error_with_a_record(tmp_path: Path) -> None:
    project = _leaky_project(tmp_path / "loop")
    decision = retrain(project)
    assert decision.outcome == Outcome.ERROR
    assert "stopped at train" in decision.reason
    assert "leakage" in decision.reason
    assert decision.record_path.exists()
    assert Store.open(project).versions() == []
