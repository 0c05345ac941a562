"""Leakage at training: the pure check on small frames and real public data (among them
statsmodels' survey tables, whose coarse answers repeat), then end to end with a column planted
in the demo data that relabels the target."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from scipy import stats
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
    parse_config,
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
from {{ cookiecutter.package_name }}.train.leakage import EXCESS_P_VALUE, excess_p_value

from .conftest import ROOT, write_project

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

CLASSIFY: Task = "binary_classification"
ROWS = 600
TASK = load_project(ROOT / "configs" / "project.yaml").config.train.task
FAMILY = load_project(ROOT / "configs" / "project.yaml").config.train.model_family
# 30 boosting rounds instead of 100: enough to train, quicker to test.
PARAMS: dict[str, Any] = {"max_iter": 30} if FAMILY == "hist_gradient_boosting" else {}
PLANTED = "invoiced_next_month" if TASK == "regression" else "account_status"


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
    """Numbers recorded to many decimals never repeat by chance: no validation row equals a
    training row, so 20 copies of training rows in the holdout are far more than the data's
    repetition explains."""
    churn, holdout_start, repeated = _churn(), int(0.85 * ROWS), 20
    parts = [churn[:holdout_start], churn[:repeated], churn[holdout_start + repeated :]]
    frame = pd.concat(parts, ignore_index=True)
    report = _check(frame, "churned")
    assert report.repeats.shared_rows == repeated
    assert report.repeats.holdout_rows == ROWS - holdout_start
    assert report.repeats.validation_shared_rows == 0
    assert report.leaks == ()
    assert not report.passed
    assert report.summary == "refused: shared holdout rows"
    assert f"{repeated} of {report.repeats.holdout_rows} holdout rows" in report.refusal()
    assert "train.leakage.max_excess_share 0.01" in report.refusal()
    assert _check(frame, "churned", config=LeakageConfig(max_excess_share=0.5)).passed


# --- repetition is not leakage; records crossing the split are ------------------------------

START = datetime(2025, 1, 1, tzinfo=UTC)


def _fair() -> pd.DataFrame:
    """statsmodels' `fair` survey (6,366 women, 1974): coarse answers, a few values per
    question, so about a quarter of its rows equal another one. The label: any affair. The
    file is sorted by it (every positive first), so it is given a seeded order."""
    survey: pd.DataFrame = sm.datasets.fair.load_pandas().data
    survey["affair"] = (survey.pop("affairs") > 0).astype(int)
    return survey.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _randhie() -> pd.DataFrame:
    """statsmodels' `randhie` (RAND health insurance experiment, 20,190 person-years): about
    two thirds of its rows equal another one. The target: visits to a doctor in the year."""
    experiment: pd.DataFrame = sm.datasets.randhie.load_pandas().data
    return experiment.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _timed(frame: pd.DataFrame) -> pd.DataFrame:
    """One row an hour, in the frame's order, and a respondent id: the time split's order."""
    hours = [START + timedelta(hours=row) for row in range(len(frame))]
    return frame.assign(respondent=[f"R{row:05d}" for row in range(len(frame))], answered=hours)


def _time_split(timed: pd.DataFrame, target: str, task: Task, **config: Any) -> LeakageReport:
    """The check on `timed` ordered by its timestamp and cut 70/15/15, the id and time left
    out of the compared columns as the schema's roles leave them out of the features."""
    ordered = timed.sort_values("answered", kind="stable").drop(columns=["respondent", "answered"])
    return _check(ordered.reset_index(drop=True), target, task, config=LeakageConfig(**config))


@pytest.mark.parametrize(
    ("name", "table", "target", "task"),
    [("fair", _fair, "affair", CLASSIFY), ("randhie", _randhie, "mdvis", "regression")],
)
def test_a_real_table_that_repeats_itself_trains(
    name: str, table: Callable[[], pd.DataFrame], target: str, task: Task
) -> None:
    """A quarter (fair) or two thirds (randhie) of the holdout rows equal a training row, as
    often as validation rows do: repetition, not leakage."""
    report = _time_split(_timed(table()), target, task)
    repeats = report.repeats
    assert repeats.shared_share > 0.2, name  # the old rule refused anything above 1%
    assert repeats.validation_shared_share > 0.2, name
    assert abs(repeats.excess_share) < 0.02, (name, repeats)
    assert report.passed, (name, report.summary, report.refusal())
    assert report.summary == "none"


def _with_copies(timed: pd.DataFrame, copies: int) -> pd.DataFrame:
    """`timed` plus copies of `copies` of its holdout rows, each given a new respondent id and
    a timestamp from the first half of the table: they land in training."""
    holdout = timed.iloc[int(0.85 * len(timed)) :]
    copied = holdout.sample(copies, random_state=1).assign(
        respondent=[f"C{row:05d}" for row in range(copies)],
        answered=timed["answered"].iloc[: len(timed) // 2].sample(copies, random_state=2).to_numpy()
        - timedelta(minutes=30),
    )
    return pd.concat([timed, copied], ignore_index=True)


def test_records_copied_across_the_split_are_refused_naming_the_rule_and_its_numbers() -> None:
    """Copies of 200 holdout rows (a fifth of it) sent again with earlier timestamps and new ids:
    the holdout now repeats training far more than the validation split does."""
    timed = _with_copies(_timed(_fair()), 200)
    report = _time_split(timed, "affair", CLASSIFY)
    repeats = report.repeats
    assert repeats.holdout_rows == len(timed) - int(0.85 * len(timed))
    assert repeats.excess_share > 0.1
    assert repeats.p_value < EXCESS_P_VALUE
    assert report.leaks == ()
    assert not report.passed
    assert report.summary == "refused: shared holdout rows"
    message = " ".join(report.refusal().split())
    assert message.startswith("leakage: training refused, nothing was registered:")
    assert "the same records cross the split" in message
    assert (
        f"{repeats.shared_rows:,} of {repeats.holdout_rows:,} holdout rows "
        f"({repeats.shared_share:.1%}) equal a training row"
    ) in message
    assert f"{repeats.validation_shared_share:.1%}, equal a training row) explains" in message
    assert f"explains {repeats.expected_shared_share:.1%}" in message
    assert f"an excess of {100 * repeats.excess_share:.1f} percentage points" in message
    assert f"p = {repeats.p_value:.2g}" in message
    assert "above train.leakage.max_excess_share 0.01" in message
    assert "data.split.strategy: group" in message
    recorded = json.loads(json.dumps(report.as_dict()))
    assert recorded["summary"] == report.summary
    assert recorded["shared_rows"] == repeats.shared_rows
    assert recorded["excess_share"] == pytest.approx(
        recorded["shared_share"] - recorded["expected_shared_share"]
    )
    assert recorded["excess_p_value"] == repeats.p_value
    assert recorded["max_excess_share"] == 0.01
    assert recorded["splits_overlap"] is True


def test_the_margin_applies_to_the_excess_not_to_the_shared_rows() -> None:
    timed = _with_copies(_timed(_fair()), 200)
    excess = _time_split(timed, "affair", CLASSIFY).repeats.excess_share
    assert not _time_split(timed, "affair", CLASSIFY, max_excess_share=excess - 0.005).passed
    passed = _time_split(timed, "affair", CLASSIFY, max_excess_share=excess + 0.005)
    assert passed.passed  # although more than a third of the holdout equals a training row
    assert passed.repeats.shared_share > 0.3
    assert _time_split(timed, "affair", CLASSIFY, max_excess_share=1.0).passed  # off


def test_an_excess_above_the_margin_that_chance_explains_is_not_refused() -> None:
    """A few copies in the coarse survey: an excess over 1 point, but not significant."""
    report = _time_split(_with_copies(_timed(_fair()), 20), "affair", CLASSIFY)
    assert report.repeats.excess_share > 0.01
    assert report.repeats.p_value > EXCESS_P_VALUE
    assert report.passed


def test_a_holdout_richer_in_the_class_that_repeats_is_not_taken_for_leakage() -> None:
    """A time split moves the class mix: here the holdout holds mostly the class whose rows
    repeat most. Holdout rows then equal training rows more often than validation rows do, yet
    no more often than validation rows of their own class do."""
    rng = np.random.default_rng(3)

    def rows(count: int, label: int) -> pd.DataFrame:
        values = 4 if label == 0 else 1_000  # answers of the negatives repeat, others seldom
        return pd.DataFrame(
            {
                "a": rng.integers(0, values, count).astype(float),
                "b": rng.integers(0, values, count).astype(float),
                "label": label,
            }
        )

    train = pd.concat([rows(1_500, 0), rows(1_500, 1)]).sample(frac=1.0, random_state=0)
    validation = pd.concat([rows(250, 0), rows(250, 1)]).sample(frac=1.0, random_state=1)
    holdout = pd.concat([rows(475, 0), rows(25, 1)]).sample(frac=1.0, random_state=2)
    report = check_leakage(
        train,
        validation,
        holdout,
        schema=_schema(train, "label"),
        task=CLASSIFY,
        config=LeakageConfig(),
    )
    repeats = report.repeats
    assert repeats.shared_share > repeats.validation_shared_share + 0.2
    assert abs(repeats.shared_share - repeats.expected_shared_share) < 0.03
    assert not report.splits_overlap, report.refusal()  # (its features give the label away)


@pytest.mark.parametrize(
    ("shared", "holdout", "repeated", "train"),
    [(30, 955, 1_100, 4_456), (5, 67, 0, 309), (0, 100, 40, 500), (12, 12, 1, 50)],
)
def test_with_one_target_value_the_p_value_is_fishers_exact_test(
    shared: int, holdout: int, repeated: int, train: int
) -> None:
    table = [[shared, holdout - shared], [repeated, train - repeated]]
    fisher = stats.fisher_exact(table, alternative="greater").pvalue
    assert excess_p_value([(shared, holdout, repeated, train)]) == pytest.approx(fisher)


def test_with_several_target_values_the_p_value_is_the_exact_tail_of_their_sum() -> None:
    """Two strata, checked against the tail of their sum summed out by hand."""
    strata = [(4, 20, 10, 60), (3, 15, 2, 40)]
    pmfs = [
        stats.hypergeom.pmf(np.arange(holdout + 1), holdout + rows, holdout, shared + repeated)
        for shared, holdout, repeated, rows in strata
    ]
    tail = sum(
        p * q for a, p in enumerate(pmfs[0]) for b, q in enumerate(pmfs[1]) if a + b >= 4 + 3
    )
    assert excess_p_value(strata) == pytest.approx(tail)


def test_the_old_key_names_the_new_one() -> None:
    config = yaml.safe_load((ROOT / "configs" / "project.yaml").read_text(encoding="utf-8"))
    leakage = config["train"]["leakage"]
    leakage["max_shared_share"] = leakage.pop("max_excess_share")
    with pytest.raises(
        ConfigError,
        match=r"train\.leakage\.max_shared_share: unknown key; it is now "
        r"train\.leakage\.max_excess_share, a margin over the repetition",
    ):
        parse_config(config)


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
    elif TASK == "multiclass_classification":  # a status that names the plan change to come
        statuses = {name: f"{name}_pending" for name in schema.target.classes or ()}
        rows[PLANTED] = rows[target].astype(str).map(statuses)
        categories = tuple(statuses.values())
        planted = ColumnSpec(name=PLANTED, role="categorical", categories=categories)
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
    assert run.data.metrics["leakage_excess_p_value"] == 1.0
    assert "leakage_score_tenure_months" in run.data.metrics
    assert run.data.params["leakage_threshold"] == "0.995"
    assert run.data.params["leakage_max_excess_share"] == "0.01"

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
