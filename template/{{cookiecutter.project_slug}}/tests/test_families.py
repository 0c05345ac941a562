"""Model families behind one registry (`families/`): every registered family trains, compiles
or says that scikit-learn scores it, registers and scores; an unknown one is refused by name.

Each family has one entry in `EXPECTED`: what its module declares, seen from outside. A family
without an entry fails here, so adding a family is its module plus its entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import pytest
import yaml

import {{ cookiecutter.package_name }}.families as registry
from {{ cookiecutter.package_name }}.config import ConfigError, Project, Task, parse_config
from {{ cookiecutter.package_name }}.data import ingest, read_snapshot
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
    SCIKIT_LEARN,
    SCORE_TOLERANCE,
    request_records,
)
from {{ cookiecutter.package_name }}.serve.registry import version_scorer
from {{ cookiecutter.package_name }}.store import Store
from {{ cookiecutter.package_name }}.train import train

from .conftest import ROOT, MakeProject, cli

UNKNOWN = "gradient_boosting"


@dataclass(frozen=True)
class Expected:
    """A family's estimator per task (class name), whether it compiles, what it warm-starts."""

    estimators: dict[str, str]
    compiled: bool
    warm_starts: frozenset[str] = frozenset()


EXPECTED: dict[str, Expected] = {
    "baseline": Expected(
        {"binary_classification": "DummyClassifier", "regression": "DummyRegressor"},
        compiled=True,
    ),
    "hist_gradient_boosting": Expected(
        {
            "binary_classification": "HistGradientBoostingClassifier",
            "regression": "HistGradientBoostingRegressor",
        },
        compiled=True,
        warm_starts=frozenset({"binary_classification", "regression"}),
    ),
    "linear": Expected(
        {"binary_classification": "LogisticRegression", "regression": "Ridge"},
        compiled=True,
        warm_starts=frozenset({"binary_classification"}),
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
def test_every_family_trains_compiles_or_says_why_registers_and_scores(
    make_project: MakeProject,
) -> None:
    project = make_project(rows=1_500)  # one training per family, in every option set
    ingest(project)
    snapshot = read_snapshot(project.snapshots_dir)
    task = project.config.train.task
    rows = snapshot.holdout.head(200)
    store = Store.open(project)
    for kind in KINDS:
        result = train(project, family=kind)
        tags = store.client.get_model_version(store.model_name, result.version).tags
        assert tags["model_family"] == kind
        if EXPECTED[kind].compiled:
            assert tags["scoring"] == COMPILED, tags.get("compiled_refused")
        else:
            assert tags["scoring"] == SCIKIT_LEARN
            assert f"the {kind} family has no compiled form" in tags["compiled_refused"]
        scorer = version_scorer(store, result.version)
        assert scorer.kind == tags["scoring"]
        expected = predict_scores(
            store.load_version(result.version), model_input(rows, snapshot.schema), task
        )
        scores = scorer.score_records(request_records(rows, snapshot.schema))
        assert scores == pytest.approx(expected, abs=SCORE_TOLERANCE)
    assert len(store.versions()) == len(KINDS)


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
