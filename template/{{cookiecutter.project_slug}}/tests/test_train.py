from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, roc_auc_score

from {{ cookiecutter.package_name }}.config import Project, load_project
from {{ cookiecutter.package_name }}.data import ingest, read_snapshot, write_snapshot
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.train import TrainingError, train
from {{ cookiecutter.package_name }}.train.evaluate import (
    compute_metrics,
    expected_calibration_error,
    predict_scores,
    slice_metrics,
)
from {{ cookiecutter.package_name }}.train.tracking import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    relocate_store,
    tracking,
)

from .conftest import MakeProject


def test_calibration_error_of_known_cases() -> None:
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, y.astype(float)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.9)) == pytest.approx(0.4)


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 400), 0, 1)
    assert compute_metrics("binary_classification", y, p)["roc_auc"] == roc_auc_score(y, p)
    values = rng.normal(size=400)
    assert compute_metrics("regression", values, values + 1)["mae"] == pytest.approx(
        mean_absolute_error(values, values + 1)
    )


def test_slices_with_too_few_rows_are_left_out() -> None:
    y = np.array([0, 1] * 50)
    slices = pd.Series(["big"] * 95 + ["tiny"] * 5)
    result = slice_metrics("binary_classification", y, np.full(100, 0.5), slices)
    assert set(result) == {"big"}
    assert result["big"]["rows"] == 95


@pytest.mark.e2e
def test_ingest_then_train_registers_the_first_model_as_champion(project: Project) -> None:
    ingest(project)
    first = train(project)
    assert first.became_champion
    primary = project.config.train.primary_metric
    with tracking(project) as client:
        name = project.config.tracking.registered_model
        champion = alias_version(client, name, CHAMPION)
        assert champion is not None
        assert str(champion.version) == first.version == "1"
        assert champion.tags["promotion_reason"].startswith("first model")
        run = client.get_run(first.run_id)
        assert run.data.metrics[f"holdout_{primary}"] == pytest.approx(first.metrics[primary])
        assert f"baseline_holdout_{primary}" in run.data.metrics
        assert run.data.params["train_sha256"] == read_snapshot(project.snapshots_dir).digest(
            "train"
        )
        assert any(key.startswith("slice_") for key in run.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(first.run_id, "plots")}
        assert len(artifacts) == 2
        assert run.inputs is not None
        assert len(run.inputs.dataset_inputs) == 3

        second = train(project)
        assert not second.became_champion
        assert str(alias_version(client, name, CHAMPION).version) == "1"  # type: ignore[union-attr]
        challenger = alias_version(client, name, CHALLENGER)
        assert challenger is not None
        assert str(challenger.version) == second.version == "2"


@pytest.mark.e2e
def test_the_registered_model_predicts_like_the_trained_one(project: Project) -> None:
    ingest(project)
    result = train(project)
    snapshot = read_snapshot(project.snapshots_dir)
    schema = project.config.train
    with tracking(project):
        loaded = mlflow.sklearn.load_model(f"models:/{result.model_name}@{CHAMPION}")
    rows = model_input(snapshot.holdout, snapshot.schema)
    scores = predict_scores(loaded, rows, schema.task)
    target = snapshot.holdout[snapshot.schema.target.name]
    recomputed = compute_metrics(schema.task, target.to_numpy(dtype=float), scores)
    assert recomputed[schema.primary_metric] == pytest.approx(result.metrics[schema.primary_metric])


@pytest.mark.e2e
def test_a_model_no_better_than_the_baseline_is_not_registered(project: Project) -> None:
    ingest(project)
    train(project)
    snapshot = read_snapshot(project.snapshots_dir)
    target = snapshot.schema.target.name
    truth = snapshot.holdout[target]
    # Mirror the holdout's target: what the model learned now points the wrong way.
    mirrored = snapshot.holdout.assign(**{target: truth.min() + truth.max() - truth})
    parts = {"train": snapshot.train, "validation": snapshot.validation, "holdout": mirrored}
    write_snapshot(project.snapshots_dir, "mirrored", parts, snapshot.manifest)
    with pytest.raises(TrainingError, match="not better than the baseline"):
        train(project, snapshot_id="mirrored")
    with tracking(project) as client:
        name = project.config.tracking.registered_model
        assert str(alias_version(client, name, CHAMPION).version) == "1"  # type: ignore[union-attr]
        assert len(client.search_model_versions(f"name = '{name}'")) == 1


@pytest.mark.e2e
def test_the_baseline_can_be_registered_as_a_challenger_on_request(project: Project) -> None:
    ingest(project)
    train(project)
    baseline = train(project, family="baseline")
    assert baseline.family == "baseline"
    assert not baseline.became_champion


@pytest.mark.e2e
def test_training_refuses_a_snapshot_below_the_minimum(make_project: MakeProject) -> None:
    project = make_project()
    ingest(project)
    config = project.config.model_copy(
        update={"data": project.config.data.model_copy(update={"min_training_rows": 100_000})}
    )
    with pytest.raises(TrainingError, match="below the minimum 100000"):
        train(Project(root=project.root, config=config))


@pytest.mark.e2e
def test_a_moved_project_still_finds_its_runs_and_models(project: Project, tmp_path: Path) -> None:
    ingest(project)
    result = train(project)
    moved = tmp_path / "moved"
    shutil.move(project.root, moved)
    relocated = load_project(moved / "configs" / "project.yaml")
    assert relocate_store(relocated) > 0
    assert relocate_store(relocated) == 0
    with tracking(relocated) as client:
        model = mlflow.sklearn.load_model(f"models:/{result.model_name}@{CHAMPION}")
        assert client.list_artifacts(result.run_id, "plots")
    snapshot = read_snapshot(relocated.snapshots_dir)
    schema = snapshot.schema
    assert len(
        predict_scores(model, model_input(snapshot.holdout, schema), relocated.config.train.task)
    ) == len(snapshot.holdout)
