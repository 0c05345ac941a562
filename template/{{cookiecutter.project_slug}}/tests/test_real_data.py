"""The whole loop on a real public table, as a team would bring its own: scikit-learn's bundled
clinical data (breast cancer for a classifier, diabetes for a regressor), given a visit time and a
string category with missing values, and no id column. Only the target and the timestamp are
named; a project reading a file runs on its own configuration, unedited."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Project, load_project
from {{ cookiecutter.package_name }}.data import project_schema, write_table
from {{ cookiecutter.package_name }}.data.sources import source_location
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.metrics import predict_scores
from {{ cookiecutter.package_name }}.scoring import SCORE_TOLERANCE
from {{ cookiecutter.package_name }}.store import Store

from .conftest import ROOT, file_source, running, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.answers]
runner = CliRunner()
TASK = load_project(ROOT / "configs" / "project.yaml").config.train.task
TARGET = "diagnosis" if TASK == "binary_classification" else "progression"
START = datetime(2025, 3, 1, tzinfo=UTC)


def real_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows of the task's table in a seeded order, one visit every 12 hours, a clinic
    (a string category, missing for about 10% of the rows) and no id column."""
    rng = np.random.default_rng(seed)
    if TASK == "binary_classification":
        data = load_breast_cancer(as_frame=True).frame
        data[TARGET] = np.where(data.pop("target") == 0, "malignant", "benign")
    else:
        data = load_diabetes(as_frame=True, scaled=False).frame
        data[TARGET] = data.pop("target")
    table = data.iloc[rng.permutation(len(data))[:rows]].reset_index(drop=True)
    clinic = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), len(table))
    clinic[rng.uniform(size=len(table)) < 0.1] = None
    visits = [START + timedelta(hours=12 * i) for i in range(len(table))]
    return pd.DataFrame(table.assign(clinic=clinic, visited_at=[t.isoformat() for t in visits]))


def _cli(project: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "-c", str(project / "configs" / "project.yaml")])
    return result.exit_code, " ".join(result.output.split())


def own_project(root: Path) -> tuple[Project, Path]:
    """A project whose source is a file: this project's own configuration when it reads one
    (copied as it is), else the test configuration pointed at data/raw/table.csv."""
    own = load_project(ROOT / "configs" / "project.yaml")
    if own.config.data.source.kind == "file":
        # The project's own settings, not a schema file a demo run may have left there.
        (root / "configs").mkdir()
        for name in ("project.yaml", "governance.yaml"):
            shutil.copy(ROOT / "configs" / name, root / "configs" / name)
        project = load_project(root / "configs" / "project.yaml")
    else:
        project = file_source(
            write_project(root, {"serve": {"flush_seconds": 0.1}}),
            "data/raw/table.csv",
            train={"slice_column": None},  # the demo's region is not a column here
        )
    source = project.config.data.source
    assert source.kind == "file"
    location = source_location(project, source)
    assert isinstance(location, Path), "the test writes the file, so it is a local one"
    return project, location


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Any]]:
    """schema infer, ingest, train (the gate makes the first champion), then the service."""
    project, data = own_project(tmp_path_factory.mktemp("real"))
    write_table(real_table(350 if TASK == "binary_classification" else 400), data)
    code, output = _cli(
        project.root, "schema", "infer", str(data), "--target", TARGET, "--timestamp", "visited_at"
    )
    assert code == 0, output
    code, output = _cli(project.root, "ingest")
    assert code == 0, output
    code, output = _cli(project.root, "train")
    assert code == 0, output
    assert "promoted: there is no champion yet" in output
    assert "compiled scoring, verified on" in output
    with running(project) as client:
        yield project, client


def _request(row: pd.Series) -> dict[str, Any]:
    values = row.drop(labels=[TARGET]).to_dict()
    return {str(k): (None if pd.isna(v) else v) for k, v in values.items()}


def test_a_real_table_goes_from_a_file_to_a_served_champion(served: tuple[Project, Any]) -> None:
    project, client = served
    store = Store.open(project)
    assert store.aliases().get("champion") == "1"
    assert client.get("/ready").json()["ready"]
    assert client.get("/metadata").json()["variants"]["champion"]["scoring"] == "compiled"
    later = real_table(120, seed=1)
    _, model = store.load_champion()
    expected = predict_scores(
        model, model_input(later.head(20), project_schema(project)), project.config.train.task
    )
    for (_, row), score in zip(later.head(20).iterrows(), expected, strict=True):
        answer = client.post("/predict", json=_request(row))
        assert answer.status_code == 200, answer.text
        close = pytest.approx(score, abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE)
        assert answer.json()["prediction"] == close  # XGBoost: float32
        label = row[TARGET]
        given = client.post(
            "/feedback", json={"prediction_id": answer.json()["prediction_id"], "label": label}
        )
        assert given.status_code == 202, given.text


def test_a_label_outside_the_targets_domain_is_refused(served: tuple[Project, Any]) -> None:
    _, client = served
    row = real_table(1, seed=2).iloc[0]
    answer = client.post("/predict", json=_request(row)).json()
    bad = "unknown" if TASK == "binary_classification" else "not a number"
    refused = client.post(
        "/feedback", json={"prediction_id": answer["prediction_id"], "label": bad}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:2] == ["body", "label"]


def test_monitor_runs_on_a_later_window_of_the_table(served: tuple[Project, Any]) -> None:
    project, _ = served
    window = project.root / "later.csv"
    write_table(real_table(250, seed=3), window)
    code, output = _cli(project.root, "monitor", "--source", str(window))
    assert code in (0, 1, 3), output
    assert "retrain" in output


def test_a_copy_with_the_label_in_disguise_is_refused_by_name(tmp_path: Path) -> None:
    project, data = own_project(tmp_path)
    table = real_table(350 if TASK == "binary_classification" else 400)
    if TASK == "binary_classification":
        table["coded_result"] = table[TARGET].map({"malignant": "M", "benign": "B"})
    else:
        table["coded_result"] = table[TARGET] * 10
    write_table(table, data)
    code, output = _cli(
        project.root, "schema", "infer", str(data), "--target", TARGET, "--timestamp", "visited_at"
    )
    assert code == 0, output
    assert _cli(project.root, "ingest")[0] == 0
    code, output = _cli(project.root, "train")
    assert code == 2, output
    assert "leakage" in output
    assert "coded_result" in output
    assert Store.open(project).versions() == []
