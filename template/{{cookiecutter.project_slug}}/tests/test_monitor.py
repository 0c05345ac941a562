"""Drift must fire on drifted demo data and stay quiet on the same distribution (fixed seeds)."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project
from {{ cookiecutter.package_name }}.data import generate_demo, ingest, project_schema, read_snapshot, write_table
from {{ cookiecutter.package_name }}.families import lookup
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.loop import retrain
from {{ cookiecutter.package_name }}.monitor import monitor
from {{ cookiecutter.package_name }}.monitor.checks import quality
from {{ cookiecutter.package_name }}.predictions import PredictionLog, PredictionRecord
from {{ cookiecutter.package_name }}.promote import Outcome
from {{ cookiecutter.package_name }}.store import Store
from {{ cookiecutter.package_name }}.train import train

from .conftest import champion_version, cli, first_champion, write_project

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]

LATER = date(2025, 4, 1)


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = write_project(tmp_path_factory.mktemp("monitored"), rows=4_000)
    ingest(project)
    first_champion(project)
    return project


def _window(project: Project, path: Path, **knobs: float) -> Path:
    config = DemoSourceConfig(rows=2_000, seed=99, start=LATER, invalid_fraction=0.0, **knobs)
    write_table(generate_demo(config, project.config.train.task), path)
    return path


def test_same_distribution_stays_quiet(champion: Project, tmp_path: Path) -> None:
    result = monitor(champion, source=_window(champion, tmp_path / "same.parquet"))
    assert result.status == "ok", result.reasons
    assert not result.retrain
    assert result.exit_code == 0
    assert json.loads(result.flag.read_text(encoding="utf-8"))["retrain"] is False


def test_a_constant_column_in_the_window_warns_nothing(champion: Project, tmp_path: Path) -> None:
    """A column of one value in the window (common in a small window of a coarse table) has no
    correlation: the summary says so, without numpy's divide warnings on stderr."""
    path = _window(champion, tmp_path / "constant.parquet")
    frame = pd.read_parquet(path)
    numeric = project_schema(champion).numeric_features
    # No missing numbers: Evidently then correlates the window's columns with numpy's corrcoef.
    frame[numeric] = frame[numeric].fillna(frame[numeric].median())
    frame[numeric[0]] = round(float(frame[numeric[0]].median()))  # exactly one value
    write_table(frame, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = monitor(champion, source=path)
    assert result.status in {"ok", "drift", "performance_drop"}, result.reasons
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


def test_a_metric_the_windows_labels_leave_undefined_is_said_so(
    champion: Project, tmp_path: Path
) -> None:
    """A window of one label (a table's newest rows, sorted by its label) has no roc_auc: the
    table says why rather than `nan`; too few labels are named too."""
    path = _window(champion, tmp_path / "one-label.parquet")
    frame = pd.read_parquet(path)
    target = project_schema(champion).target.name
    frame[target] = frame[target].iloc[0]
    write_table(frame, path)
    code, output = cli(champion, "monitor", "--source", str(path))
    assert code in (0, 1, 3), output
    if champion.config.train.task == "binary_classification":
        assert "undefined on these labels (one value only)" in output
    assert " nan " not in output
    write_table(frame.head(250).drop(columns=[target]), path)
    code, output = cli(champion, "monitor", "--source", str(path))
    assert "labelled rows" in output
    assert "0, too few to judge (< 200)" in output


def test_categories_the_schema_does_not_list_are_out_of_domain(champion: Project) -> None:
    """What the service scores as unknowns (`serve.unseen_categories: score`) monitor counts as
    out of domain, against the same limit as numbers outside the reference range."""
    schema = project_schema(champion)
    reference = model_input(read_snapshot(champion.snapshots_dir).holdout, schema)
    current = reference.copy()
    column = schema.categorical_features[0]
    current.loc[current.index[: len(current) // 5], column] = "never-seen"
    share = (len(current) // 5) / int(current[column].notna().sum())
    checks, reasons = quality(champion, schema, reference, current)
    assert checks[column]["unseen_category_share"] == pytest.approx(share)
    assert checks[column]["unseen_categories"] == ["never-seen"]
    assert f"{column}: {share:.1%} of values are categories the schema does not list " in (
        " ".join(reasons)
    )
    assert "('never-seen')" in " ".join(reasons)
    _, quiet = quality(champion, schema, reference, reference)
    assert not [r for r in quiet if "does not list" in r]


def test_covariate_drift_fires_and_asks_for_retraining(champion: Project, tmp_path: Path) -> None:
    source = _window(champion, tmp_path / "drifted.parquet", covariate_shift=1.5)
    result = monitor(champion, source=source)
    assert result.status in {"drift", "performance_drop"}, result.reasons
    assert result.retrain
    assert result.summary["drift"]["drifted_share"] >= champion.config.monitor.drift_share
    assert result.summary["drift"]["columns"]["support_tickets"]["drifted"]
    assert result.report is not None
    assert result.report.stat().st_size > 10_000
    flag = json.loads(result.flag.read_text(encoding="utf-8"))
    assert flag["retrain"] is True
    assert flag["reasons"]


def test_concept_drift_shows_as_a_performance_drop(champion: Project, tmp_path: Path) -> None:
    source = _window(champion, tmp_path / "concept.csv", concept_shift=1.0)
    result = monitor(champion, source=source)
    performance = result.summary["performance"]
    assert performance["labelled_rows"] == 2_000
    assert result.status == "performance_drop", result.summary
    assert result.exit_code == 3


def test_a_small_window_is_not_judged(champion: Project, tmp_path: Path) -> None:
    config = DemoSourceConfig(rows=200, seed=5, start=LATER, invalid_fraction=0.0)
    source = tmp_path / "small.csv"
    write_table(generate_demo(config, champion.config.train.task).head(50), source)
    result = monitor(champion, source=source)
    assert result.status == "insufficient_data"
    assert not result.retrain


def test_the_prediction_log_window_is_monitored(champion: Project) -> None:
    project = write_project(champion.root)  # same store, own log folder below
    rows = generate_demo(
        DemoSourceConfig(rows=600, seed=4, start=LATER, invalid_fraction=0.0, covariate_shift=1.5),
        project.config.train.task,
    )
    now = datetime.now(UTC)
    features = rows.drop(columns=["event_time", rows.columns[-1]]).astype(object)
    records = [{str(k): v for k, v in row.items()} for row in features.to_dict("records")]
    log = PredictionLog(project.prediction_log_url)

    def served_by(version: str, hours_ago: int) -> None:
        when = now - timedelta(hours=hours_ago)
        log.append(
            PredictionRecord(
                prediction_id=f"v{version}-{i}",
                variant="champion",
                model_version=version,
                served=True,
                features=record,
                prediction=0.5,
                latency_ms=1.0,
                ts=when,
            )
            for i, record in enumerate(records)
        )

    served_by("1", hours_ago=1)
    result = monitor(project, now=now)
    assert result.summary["current"]["rows"] == 600
    assert "served by version 1" in result.summary["current"]["source"]
    assert result.status == "drift", result.reasons

    # Answers of another version (an old champion) say nothing about this one.
    served_by("0", hours_ago=2)
    again = monitor(project, now=now)
    assert again.summary["current"]["rows"] == 600, "version 0's rows are not the champion's"


@pytest.mark.e2e
def test_drift_then_retrain_promotes_a_new_champion(tmp_path: Path) -> None:
    project = write_project(tmp_path / "loop", rows=5_000)
    ingest(project)
    first_champion(project)
    quiet = monitor(project, source=_window(project, tmp_path / "quiet.parquet"))
    assert not quiet.retrain

    newer = write_project(
        project.root,
        rows=5_000,
        start=LATER.isoformat(),
        seed=21,
        covariate_shift=1.0,
        concept_shift=1.0,
    )
    drifted = monitor(
        newer,
        source=_window(newer, tmp_path / "newer.parquet", covariate_shift=1.0, concept_shift=1.0),
    )
    assert drifted.retrain
    decision = retrain(newer)
    assert decision.outcome == Outcome.PROMOTED, decision.reason
    assert champion_version(newer) == "2"


@pytest.mark.e2e
def test_a_failed_retrain_leaves_the_champion(tmp_path: Path) -> None:
    project = write_project(tmp_path / "fail", rows=3_000)
    ingest(project)
    first_champion(project)
    broken = write_project(project.root, rows=300, invalid_fraction=0.4)
    decision = retrain(broken)
    assert decision.outcome == Outcome.ERROR
    assert "stopped at ingest" in decision.reason
    assert champion_version(project) == "1"


@pytest.mark.e2e
def test_a_warm_start_continues_from_the_champion(tmp_path: Path) -> None:
    project = write_project(tmp_path / "warm", sections={"train": {"warm_start": True}}, rows=3_000)
    ingest(project)
    first = first_champion(project)
    newer = write_project(
        project.root,
        sections={"train": {"warm_start": True}},
        rows=3_000,
        start=LATER.isoformat(),
        seed=5,
    )
    ingest(newer)
    second = train(newer)
    client = Store.open(newer).client
    tag = client.get_run(second.run_id).data.tags["warm_started_from"]
    assert client.get_run(first.run_id).data.tags["warm_started_from"] == "none"
    settings = newer.config.train
    warm_startable = settings.task in lookup(settings.model_family).warm_start
    assert tag == ("v1" if warm_startable else "none")
