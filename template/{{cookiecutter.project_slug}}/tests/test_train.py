from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest

from {{ cookiecutter.package_name }}.config import Project, load_project
from {{ cookiecutter.package_name }}.data import DataError, ingest, read_snapshot, write_snapshot
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.metrics import compute_metrics, predict_scores
from {{ cookiecutter.package_name }}.promote import promote
from {{ cookiecutter.package_name }}.store import (
    CHALLENGER,
    CHAMPION,
    Store,
    relocate_store,
)
from {{ cookiecutter.package_name }}.train import TrainingError, train

from .conftest import MakeProject, champion_version, first_champion

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]


@pytest.mark.e2e
def test_train_registers_a_challenger_and_only_the_gate_makes_it_champion(
    project: Project,
) -> None:
    ingest(project)
    first = train(project)
    store = Store.open(project)
    assert store.aliases() == {CHALLENGER: "1"}
    assert promote(project).reason.startswith("there is no champion yet")
    champion = store.alias_version(CHAMPION)
    assert champion is not None
    assert str(champion.version) == first.version == "1"
    assert champion.tags["promotion_reason"].startswith("there is no champion yet")
    primary = project.config.train.primary_metric
    client = store.client
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics[f"holdout_{primary}"] == pytest.approx(first.metrics[primary])
    assert f"baseline_holdout_{primary}" in run.data.metrics
    assert run.data.params["train_sha256"] == read_snapshot(project.snapshots_dir).digest("train")
    assert any(key.startswith("slice_") for key in run.data.metrics)
    # Ordinary features: figured, never flagged.
    assert run.data.tags["leakage"] == "none"
    schema = read_snapshot(project.snapshots_dir).schema
    scores = [run.data.metrics[f"leakage_score_{name}"] for name in schema.feature_columns]
    assert max(scores) < project.config.train.leakage.threshold
    assert run.data.metrics["leakage_shared_rows"] == 0
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "plots")}
    assert len(artifacts) == 2
    assert run.inputs is not None
    assert len(run.inputs.dataset_inputs) == 3

    second = train(project)
    assert store.aliases() == {CHAMPION: "1", CHALLENGER: "2"}
    assert second.version == "2"


@pytest.mark.e2e
def test_the_registered_model_predicts_like_the_trained_one(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(project)
    result = first_champion(project)
    snapshot = read_snapshot(project.snapshots_dir)
    schema = project.config.train
    # MLflow's own loader, as `mlflow models serve` would use it, finds the same model.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    loaded = mlflow.sklearn.load_model(f"models:/{result.model_name}@{CHAMPION}")
    rows = model_input(snapshot.holdout, snapshot.schema)
    scores = predict_scores(loaded, rows, schema.task)
    target = snapshot.holdout[snapshot.schema.target.name]
    recomputed = compute_metrics(schema.task, target.to_numpy(dtype=float), scores)
    assert recomputed[schema.primary_metric] == pytest.approx(result.metrics[schema.primary_metric])


@pytest.mark.e2e
def test_a_model_no_better_than_the_baseline_is_not_registered(project: Project) -> None:
    ingest(project)
    first_champion(project)
    snapshot = read_snapshot(project.snapshots_dir)
    target = snapshot.schema.target.name
    truth = snapshot.holdout[target]
    # Mirror the holdout's target: what the model learned now points the wrong way.
    mirrored = snapshot.holdout.assign(**{target: truth.min() + truth.max() - truth})
    parts = {"train": snapshot.train, "validation": snapshot.validation, "holdout": mirrored}
    write_snapshot(project.snapshots_dir, "mirrored", parts, snapshot.manifest)
    with pytest.raises(TrainingError, match="not better than the baseline"):
        train(project, snapshot_id="mirrored")
    assert champion_version(project) == "1"
    assert len(Store.open(project).versions()) == 1


@pytest.mark.e2e
def test_the_baseline_can_be_registered_as_a_challenger_on_request(project: Project) -> None:
    ingest(project)
    first_champion(project)
    baseline = train(project, family="baseline")
    assert baseline.family == "baseline"
    assert Store.open(project).aliases() == {CHAMPION: "1", CHALLENGER: "2"}


@pytest.mark.e2e
def test_training_refuses_a_snapshot_below_the_minimum(make_project: MakeProject) -> None:
    project = make_project()
    ingest(project)
    config = project.config.model_copy(
        update={"data": project.config.data.model_copy(update={"min_training_rows": 100_000})}
    )
    # The minimum is checked by the data stage's `require_training_rows`, at ingest and here.
    with pytest.raises(DataError, match=r"below data\.min_training_rows = 100000"):
        train(Project(root=project.root, config=config))


@pytest.mark.e2e
def test_a_moved_project_still_finds_its_runs_and_models(project: Project, tmp_path: Path) -> None:
    ingest(project)
    result = first_champion(project)
    moved = tmp_path / "moved"
    shutil.move(project.root, moved)
    relocated = load_project(moved / "configs" / "project.yaml")
    assert relocate_store(relocated) > 0
    assert relocate_store(relocated) == 0
    store = Store.open(relocated)
    _, model = store.load_champion()
    assert store.client.list_artifacts(result.run_id, "plots")
    snapshot = read_snapshot(relocated.snapshots_dir)
    schema = snapshot.schema
    assert len(
        predict_scores(model, model_input(snapshot.holdout, schema), relocated.config.train.task)
    ) == len(snapshot.holdout)
