"""Model families behind one registry (`families/`): every registered family trains, compiles
(verified) or says that its library scores it, registers, serves over HTTP, batch-scores and
warm-starts where it can, on the project's task; an unknown one is refused by name.

Each family has one entry in `EXPECTED`: what its module declares, seen from outside. A family
without an entry fails here, so adding a family is its module plus its entry (and, for a library
beyond scikit-learn, its extra in pyproject.toml, which a test here checks)."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pandas as pd
import pytest
import yaml
from packaging.requirements import Requirement

import {{ cookiecutter.package_name }}.families as registry
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    Project,
    Task,
    load_project,
    parse_config,
)
from {{ cookiecutter.package_name }}.data import ingest, read_snapshot, write_table
from {{ cookiecutter.package_name }}.families import (
    FAMILIES,
    KINDS,
    Family,
    FamilyError,
    lookup,
)
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.metrics import predict_scores
from {{ cookiecutter.package_name }}.scoring import (
    COMPILED,
    MULTICLASS_BY_LIBRARY,
    SCIKIT_LEARN,
    SCORE_TOLERANCE,
    request_records,
)
from {{ cookiecutter.package_name }}.serve import batch_predict
from {{ cookiecutter.package_name }}.serve.registry import version_scorer
from {{ cookiecutter.package_name }}.store import CHAMPION, Store
from {{ cookiecutter.package_name }}.train import train

from .conftest import ROOT, cli, running, write_project
from .test_serve import _rows as client_rows

pytestmark = pytest.mark.task_family_only

UNKNOWN = "gradient_boosting"


@dataclass(frozen=True)
class Expected:
    """A family's estimator per task (class name), whether it compiles, what it warm-starts."""

    estimators: dict[str, str]
    compiled: bool
    warm_starts: frozenset[str] = frozenset()


EXPECTED: dict[str, Expected] = {
    "baseline": Expected(
        {
            "binary_classification": "DummyClassifier",
            "multiclass_classification": "DummyClassifier",
            "regression": "DummyRegressor",
        },
        compiled=True,
    ),
    "hist_gradient_boosting": Expected(
        {
            "binary_classification": "HistGradientBoostingClassifier",
            "multiclass_classification": "HistGradientBoostingClassifier",
            "regression": "HistGradientBoostingRegressor",
        },
        compiled=True,
        warm_starts=frozenset({"binary_classification", "multiclass_classification", "regression"}),
    ),
    "lightgbm": Expected(
        {
            "binary_classification": "LGBMClassifier",
            "multiclass_classification": "LGBMClassifier",
            "regression": "LGBMRegressor",
        },
        compiled=True,
        warm_starts=frozenset({"binary_classification", "multiclass_classification", "regression"}),
    ),
    "linear": Expected(
        {
            "binary_classification": "LogisticRegression",
            "multiclass_classification": "LogisticRegression",
            "regression": "Ridge",
        },
        compiled=True,
        warm_starts=frozenset({"binary_classification", "multiclass_classification"}),
    ),
    "xgboost": Expected(
        {
            "binary_classification": "XGBClassifier",
            "multiclass_classification": "XGBClassifier",
            "regression": "XGBRegressor",
        },
        compiled=True,
        warm_starts=frozenset({"binary_classification", "multiclass_classification", "regression"}),
    ),
}


def _config() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "configs" / "project.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_every_family_has_a_test_entry() -> None:
    assert sorted(FAMILIES) == sorted(EXPECTED), "add an entry to EXPECTED for each family"


@pytest.mark.parametrize("kind", KINDS)
def test_a_family_declares_what_its_entry_expects(kind: str) -> None:
    family, expected = lookup(kind), EXPECTED[kind]
    assert family.kind == kind
    assert family.title
    assert set(family.estimators) <= set(get_args(Task))
    built = {task: type(family.estimator(task, {}, 0)).__name__ for task in family.estimators}
    assert built == expected.estimators
    assert (family.compile is not None) == expected.compiled
    assert set(family.warm_start) == expected.warm_starts


@pytest.mark.e2e
@pytest.mark.answers
def test_every_family_trains_serves_batch_scores_and_warm_starts(tmp_path: Path) -> None:
    # One small project for every family, in every option set: each one's task.
    sections: dict[str, dict[str, Any]] = {
        "train": {"warm_start": True},
        "serve": {"registry_poll_seconds": 0.2},
    }
    project = write_project(tmp_path / "families", sections=sections, rows=1_500)
    ingest(project)
    snapshot = read_snapshot(project.snapshots_dir)
    task, target = project.config.train.task, snapshot.schema.target.name
    rows = snapshot.holdout.head(200)
    source = tmp_path / "to_score.csv"
    write_table(rows.drop(columns=[target]), source)
    requests = request_records(rows, snapshot.schema)
    body = client_rows(project, 1)[0]  # the first of `rows`, as a client sends it
    store = Store.open(project)

    versions: dict[str, str] = {}
    multiclass = task == "multiclass_classification"
    for kind in KINDS:  # trained, verified or said why, registered, scored in batch
        version = versions[kind] = str(train(project, family=kind).version)
        tags = store.client.get_model_version(store.model_name, version).tags
        assert tags["model_family"] == kind
        if multiclass:  # every class's probability: scored by the library, and it says so
            assert tags["scoring"] == SCIKIT_LEARN
            assert tags["compiled_refused"] == MULTICLASS_BY_LIBRARY
        elif EXPECTED[kind].compiled:
            assert tags["scoring"] == COMPILED, tags.get("compiled_refused")
        else:
            assert tags["scoring"] == SCIKIT_LEARN
            assert f"the {kind} family has no compiled form" in tags["compiled_refused"]
        expected = predict_scores(
            store.load_version(version), model_input(rows, snapshot.schema), task
        )
        close = pytest.approx(expected, abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE)
        scorer = version_scorer(store, version)
        assert scorer.kind == tags["scoring"]
        assert scorer.score_records(requests) == close
        store.set_alias(CHAMPION, version)
        batch = batch_predict(project, source, tmp_path / f"{kind}.parquet")
        assert (batch.rows_scored, batch.scoring) == (len(rows), tags["scoring_frames"])
        top = expected.max(axis=1) if multiclass else expected  # the likeliest class's
        scored = pd.read_parquet(batch.output)["prediction"].to_numpy()
        assert scored == pytest.approx(top, abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE)

    with running(project) as client:  # served: the service follows champion to each family
        for kind, version in versions.items():
            store.set_alias(CHAMPION, version)
            deadline = time.monotonic() + 30
            while (answer := client.post("/predict", json=body)).json().get(
                "model_version"
            ) != version:
                assert answer.status_code == 200, answer.text
                assert time.monotonic() < deadline, f"the service did not switch to {kind}"
                time.sleep(0.1)
            expected = predict_scores(
                store.load_version(version), model_input(rows.head(1), snapshot.schema), task
            )
            first = expected[0]
            assert answer.json()["prediction"] == pytest.approx(
                first.max() if multiclass else first, abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE
            )
            if multiclass:
                probabilities = list(answer.json()["probabilities"].values())
                assert probabilities == pytest.approx(first, abs=SCORE_TOLERANCE)

    for kind, version in versions.items():  # a retrain continues the champion where it can
        store.set_alias(CHAMPION, version)
        again = train(project, family=kind)
        warm_from = store.client.get_run(again.run_id).data.tags["warm_started_from"]
        assert warm_from == (f"v{version}" if task in EXPECTED[kind].warm_starts else "none")
    assert len(store.versions()) == 2 * len(KINDS)


@pytest.mark.answers
def test_every_offered_family_has_its_extra_and_the_tests_install_each() -> None:
    """A family's library is its extra in pyproject.toml, named as its `requirements` name it;
    the project installs the extra of its own family, the test group every family's library."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"]
    tested = {Requirement(r).name for r in pyproject["dependency-groups"]["test"]}
    for family in FAMILIES.values():
        if not family.offered:
            continue
        assert family.kind in extras, f"pyproject.toml has no {family.kind} extra"
        needs = {Requirement(r).name for r in extras[family.kind]}
        assert needs == set(family.requirements)
        assert needs <= tested
    own = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    chosen = [r.extras for r in own if r.name == pyproject["project"]["name"]]
    configured = load_project(ROOT / "configs" / "project.yaml").config.train.model_family
    assert chosen == [{configured}]


def test_a_family_whose_library_is_missing_names_its_extra() -> None:
    def needs_a_library(_params: Any, _seed: int) -> Any:
        import a_library_nobody_installed  # type: ignore[import-not-found]  # noqa: F401

        raise AssertionError("unreachable")

    missing = Family(
        kind="boosted",
        title="a family whose library is not installed",
        estimators={"binary_classification": needs_a_library, "regression": needs_a_library},
    )
    needs = r"needs the a_library_nobody_installed package.*\.\[boosted\]"
    with pytest.raises(FamilyError, match=needs):
        missing.estimator("regression", {}, 0)


@pytest.mark.answers
def test_an_unknown_family_is_refused_naming_the_known_ones(project: Project) -> None:
    with pytest.raises(FamilyError, match=f"unknown model family '{UNKNOWN}'") as unknown:
        lookup(UNKNOWN)
    assert all(kind in str(unknown.value) for kind in KINDS)

    config = _config()
    config["train"] = {**config["train"], "model_family": UNKNOWN}
    with pytest.raises(ConfigError, match=rf"train\.model_family: .*'{UNKNOWN}'") as invalid:
        parse_config(config)
    assert all(kind in str(invalid.value) for kind in KINDS)

    with pytest.raises(FamilyError, match=f"unknown model family '{UNKNOWN}'"):
        train(project, family=UNKNOWN)
    code, output = cli(project, "train", "--family", UNKNOWN)
    assert code == 2
    assert all(kind in output for kind in KINDS)


@pytest.mark.answers
def test_a_family_without_an_estimator_for_the_task_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only = Family(
        kind="classifier_only",
        title="a family that only classifies",
        estimators={"binary_classification": lookup("linear").estimators["binary_classification"]},
    )
    monkeypatch.setattr(registry, "FAMILIES", {**FAMILIES, only.kind: only})
    config = _config()
    config["train"] = {
        **config["train"],
        "task": "regression",
        "primary_metric": "rmse",
        "model_family": only.kind,
    }
    with pytest.raises(ConfigError, match="'classifier_only' has no estimator for regression"):
        parse_config(config)


@pytest.mark.parametrize("task", get_args(Task))
def test_a_parameter_the_estimator_does_not_take_is_refused_by_name(task: Task) -> None:
    linear = lookup("linear")
    assert linear.estimator(task, {"max_iter": 50}, 0).get_params()["max_iter"] == 50
    with pytest.raises(FamilyError, match=r"takes no 'max_depht'; it takes .*max_iter"):
        linear.estimator(task, {"max_depht": 3}, 0)
