"""The compiled scoring path: the same scores as scikit-learn for every family and calibration,
refused (with the reason kept) when it is not, and chosen or bypassed as configured."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler

from {{ cookiecutter.package_name }}.config import ModelFamily, Project
from {{ cookiecutter.package_name }}.data import Snapshot, ingest, read_snapshot
from {{ cookiecutter.package_name }}.families import FAMILIES as REGISTERED
from {{ cookiecutter.package_name }}.scoring import (
    COMPILED,
    SCIKIT_LEARN,
    SCORE_TOLERANCE,
    CompiledModel,
    CompileError,
    Verification,
    compile_model,
    load_scorer,
    request_records,
    verify,
    write_scorer,
)
from {{ cookiecutter.package_name }}.scoring.compiled import Linear, Trees
from {{ cookiecutter.package_name }}.store import load_model
from {{ cookiecutter.package_name }}.train.training import fit_model

from .conftest import write_project

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]

# Every registered family with a compiled form (tests/test_families.py covers the others).
FAMILIES: list[ModelFamily] = [kind for kind, f in REGISTERED.items() if f.compile is not None]
CALIBRATIONS = ["sigmoid", "isotonic", "none"]
FLOAT32 = {"xgboost"}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Snapshot]:
    project = write_project(tmp_path_factory.mktemp("scoring"), rows=2_500)
    ingest(project)
    return project, read_snapshot(project.snapshots_dir)


def _calibrated(project: Project, calibration: str) -> Project:
    train = project.config.train.model_copy(update={"calibration": calibration})
    return replace(project, config=project.config.model_copy(update={"train": train}))


def _cases(task: str) -> list[tuple[ModelFamily, str]]:
    """Every family; for a classifier, under every calibration (a regressor has none)."""
    calibrations = CALIBRATIONS if task == "binary_classification" else ["none"]
    return [(family, calibration) for family in FAMILIES for calibration in calibrations]


@pytest.mark.parametrize(("family", "calibration"), _cases("binary_classification"))
def test_every_family_scores_as_scikit_learn_does(
    ingested: tuple[Project, Snapshot], family: ModelFamily, calibration: str, tmp_path: Path
) -> None:
    project, snapshot = ingested
    task = project.config.train.task
    if (family, calibration) not in _cases(task):
        pytest.skip("a regressor has no calibration")
    model = fit_model(_calibrated(project, calibration), snapshot, family)
    compiled = compile_model(model)
    verification = verify(compiled, model, snapshot.holdout, snapshot.schema, task)
    if family in FLOAT32 and calibration == "isotonic" and verification.refused is not None:
        # An isotonic step can stretch XGBoost's float32 rounding (1e-7) past the tolerance:
        # the compiled form is then refused, and the library scores the version.
        assert verification.refused.startswith("a score differs from"), verification.refused
        return
    assert verification.refused is None, verification.summary()
    assert verification.max_abs_diff is not None
    # float64 like the library, but XGBoost, which adds its trees in float32
    assert verification.max_abs_diff < (SCORE_TOLERANCE if family in FLOAT32 else 1e-9)
    assert verification.label_mismatches == 0

    # Saved as arrays and JSON, loaded back: the very same scores, by both paths.
    compiled.save(tmp_path / "compiled")
    loaded = CompiledModel.load(tmp_path / "compiled")
    records = request_records(snapshot.validation, snapshot.schema)
    assert np.array_equal(loaded.score_records(records), compiled.score_records(records))
    frame = snapshot.validation.drop(columns=[snapshot.schema.target.name])
    scorer = load_scorer(tmp_path, load_model, snapshot.schema, task)
    assert scorer.kind == COMPILED
    expected = compiled.score_records(records)
    assert scorer.score_frame(frame) == pytest.approx(expected, abs=1e-12)


def test_rows_unlike_any_in_training_score_as_scikit_learn_does(
    ingested: tuple[Project, Snapshot],
) -> None:
    """Missing values everywhere, categories never seen, values far outside the fitted range."""
    project, snapshot = ingested
    schema = snapshot.schema
    model = fit_model(project, snapshot, "hist_gradient_boosting")
    compiled = compile_model(model)
    odd = snapshot.holdout.head(6).copy()
    odd.loc[odd.index[0], schema.numeric_features] = np.nan
    odd.loc[odd.index[1], schema.categorical_features] = None
    odd.loc[odd.index[2], schema.categorical_features] = "never-seen"
    odd.loc[odd.index[3], schema.numeric_features] = 1e12
    odd.loc[odd.index[4], schema.numeric_features] = -1e12
    verification = verify(compiled, model, odd, schema, project.config.train.task)
    assert verification.refused is None, verification.summary()


def test_a_compiled_form_that_scores_differently_is_refused(
    ingested: tuple[Project, Snapshot],
) -> None:
    project, snapshot = ingested
    model = fit_model(project, snapshot, "hist_gradient_boosting")
    compiled = compile_model(model)
    assert isinstance(compiled.model, Trees)
    shifted = replace(compiled.model, baseline=compiled.model.baseline + 1e-3)
    verification = verify(
        replace(compiled, model=shifted),
        model,
        snapshot.holdout,
        snapshot.schema,
        project.config.train.task,
    )
    assert verification.refused is not None
    assert "differs from scikit-learn's" in verification.refused
    assert verification.max_abs_diff is not None
    assert verification.max_abs_diff > SCORE_TOLERANCE
    assert verification.tags()["scoring"] == SCIKIT_LEARN


def test_a_part_without_a_compiled_form_is_named_and_nothing_is_written(
    ingested: tuple[Project, Snapshot], tmp_path: Path
) -> None:
    project, snapshot = ingested
    task = project.config.train.task
    model = fit_model(project, snapshot, "linear")
    pipeline = model.estimator.estimator if hasattr(model, "calibrated_classifiers_") else model
    features: ColumnTransformer = pipeline.named_steps["features"]
    forest = RandomForestClassifier if task == "binary_classification" else RandomForestRegressor
    unknown = Pipeline([("features", features), ("model", forest(n_estimators=3))])
    unknown.fit(
        snapshot.train.drop(columns=[snapshot.schema.target.name]),
        snapshot.train[snapshot.schema.target.name],
    )
    with pytest.raises(CompileError, match="RandomForest"):
        compile_model(unknown)
    verification = write_scorer(unknown, snapshot.holdout, snapshot.schema, task, tmp_path)
    assert verification.refused is not None
    assert "RandomForest" in verification.refused
    assert not (tmp_path / "compiled").exists()
    saved = json.loads((tmp_path / "verification.json").read_text(encoding="utf-8"))
    assert saved["refused"] == verification.refused

    numeric = features.named_transformers_["numeric"]
    numeric.steps[1] = ("scale", RobustScaler().fit(np.zeros((2, len(numeric[1].scale_)))))
    with pytest.raises(CompileError, match="numeric"):
        compile_model(pipeline)


def test_a_linear_model_is_a_dot_product(ingested: tuple[Project, Snapshot]) -> None:
    project, snapshot = ingested
    compiled = compile_model(fit_model(project, snapshot, "linear"))
    assert isinstance(compiled.model, Linear)
    records = request_records(snapshot.holdout.head(1), snapshot.schema)
    assert compiled.score_records(records).shape == (1,)
    assert compiled.score_records([]).shape == (0,)
    assert compiled.score_frame(pd.DataFrame(records).head(0)).shape == (0,)


def _registered(project: Project, snapshot: Snapshot, folder: Path) -> Verification:
    """The default family's model saved in `folder` as a version holds it, with its scorer."""
    model = fit_model(project, snapshot, "hist_gradient_boosting")
    mlflow.sklearn.save_model(model, str(folder), serialization_format="cloudpickle")
    task = project.config.train.task
    return write_scorer(model, snapshot.holdout, snapshot.schema, task, folder)


def test_a_frame_goes_to_the_path_registration_timed_faster_on_one(
    ingested: tuple[Project, Snapshot], tmp_path: Path
) -> None:
    project, snapshot = ingested
    task = project.config.train.task
    folder = tmp_path / "model"
    verification = _registered(project, snapshot, folder)
    assert verification.speedup_one_row is not None
    assert verification.speedup_one_row > 0
    assert verification.speedup_frame is not None
    assert verification.speedup_frame > 0
    assert verification.tags()["scoring_frames"] == verification.frame_scoring
    assert f"frames scored by {verification.frame_scoring}" in verification.summary()

    frame = snapshot.holdout.drop(columns=[snapshot.schema.target.name])
    records = request_records(snapshot.holdout, snapshot.schema)
    for speedup, frames_by in ((0.5, SCIKIT_LEARN), (2.0, COMPILED)):
        timed = replace(verification, speedup_frame=speedup)
        (folder / "verification.json").write_text(json.dumps(asdict(timed)), encoding="utf-8")
        scorer = load_scorer(folder, load_model, snapshot.schema, task)
        assert (scorer.kind, scorer.frame_kind) == (COMPILED, frames_by)
        assert scorer.score_frame(frame) == pytest.approx(
            scorer.score_records(records), abs=SCORE_TOLERANCE
        )
    # A verdict from before the timing, or none: frames stay compiled.
    (folder / "verification.json").unlink()
    assert load_scorer(folder, load_model, snapshot.schema, task).frame_kind == COMPILED


def test_an_unreadable_compiled_form_falls_back_to_scikit_learn(
    ingested: tuple[Project, Snapshot], tmp_path: Path
) -> None:
    project, snapshot = ingested
    task = project.config.train.task
    folder = tmp_path / "model"
    assert _registered(project, snapshot, folder).refused is None
    records = request_records(snapshot.holdout.head(50), snapshot.schema)
    compiled = load_scorer(folder, load_model, snapshot.schema, task)
    by_sklearn = load_scorer(folder, load_model, snapshot.schema, task, compiled=False)
    assert (compiled.kind, by_sklearn.kind) == (COMPILED, SCIKIT_LEARN)

    (folder / "compiled" / "scorer.npz").write_bytes(b"corrupt")
    fallen_back = load_scorer(folder, load_model, snapshot.schema, task)
    assert fallen_back.kind == SCIKIT_LEARN
    assert fallen_back.score_records(records) == pytest.approx(
        compiled.score_records(records), abs=1e-9
    )
    assert by_sklearn.score_records(records) == pytest.approx(
        compiled.score_records(records), abs=1e-9
    )
