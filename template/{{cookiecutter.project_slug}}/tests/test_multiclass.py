"""Multiclass classification on real multiclass tables that ship inside packages (scikit-learn's
wines, statsmodels' 1996 election survey, the Palmer penguins), each only given a timestamp in
file order: `schema infer`; ingest keeping every class in every split, or refusing with the
class, the split and the setting; the binary refusal that names the way forward; and the
penguins from the file to a served champion that answers every class's probability.

Each test writes its own configuration for the task it is about, so it holds whatever the
template's answers were (and needs no `answers` mark).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from palmerpenguins import load_penguins
from sklearn.datasets import load_wine

from {{ cookiecutter.package_name }}.config import Project, Task, load_project
from {{ cookiecutter.package_name }}.data import (
    DataError,
    DataSchema,
    demo_schema,
    ingest,
    read_table,
    validate,
    write_table,
)
from {{ cookiecutter.package_name }}.data.demo import PLAN_CHANGES
from {{ cookiecutter.package_name }}.data.inference import InferredSchema, infer_file, write_schema
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.metrics import default_primary_metric, predict_scores
from {{ cookiecutter.package_name }}.store import Store

from .conftest import cli, running

MULTICLASS: Task = "multiclass_classification"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TABLE = "data/raw/table.csv"
SCHEMA = "configs/schema.yaml"


def _timestamped(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as shipped, given a timestamp in file order: one row an hour."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = [(start + timedelta(hours=row)).isoformat() for row in range(len(frame))]
    return frame.assign(seen_at=times)


def _wine() -> pd.DataFrame:
    """178 wines of three cultivars (0, 1, 2), 13 measurements each, shipped sorted by cultivar."""
    return _timestamped(load_wine(as_frame=True).frame)


def _project(root: Path, task: Task = MULTICLASS, **data: Any) -> Project:
    """A project of `task` reading `TABLE`, described by `SCHEMA`; `data` sets keys of `data`.
    The service writes its log often, so a test reads what it just served."""
    config = {
        "data": {
            "source": {"kind": "file", "path": TABLE, "schema_path": SCHEMA},
            "min_training_rows": 50,
            **data,
        },
        "train": {
            "task": task,
            "model_family": "hist_gradient_boosting",
            "primary_metric": default_primary_metric(task),
        },
        "serve": {"flush_seconds": 0.1},
        "tracking": {"experiment": "multiclass", "registered_model": "multiclass"},
    }
    path = root / "configs" / "project.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_project(path)


def _with_table(project: Project, frame: pd.DataFrame, target: str) -> InferredSchema:
    """Write `frame` as the project's table and its inferred schema as the project's schema."""
    write_table(frame, project.path(TABLE))
    inferred = infer_file(project.path(TABLE), MULTICLASS, target=target, timestamp="seen_at")
    write_schema(inferred, project.path(SCHEMA), TABLE)
    return inferred


def _inferred_and_valid(path: Path, target: str) -> tuple[InferredSchema, pd.DataFrame]:
    """Infer, write, load back: the schema is the one inferred, and validating the file it came
    from quarantines nothing."""
    inferred = infer_file(path, MULTICLASS, target=target, timestamp="seen_at")
    written = path.with_suffix(".schema.yaml")
    write_schema(inferred, written, path.name)
    assert DataSchema.from_yaml(written) == inferred.schema
    result = validate(read_table(path), inferred.schema, now=NOW)
    assert result.quarantined.empty, result.quarantined.head()
    return inferred, result.valid


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_wine_declares_its_three_cultivars_and_a_time_split_would_lack_them(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"wine{suffix}"
    write_table(_wine(), path)
    inferred, valid = _inferred_and_valid(path, "target")
    target = inferred.schema.target
    assert target.classes == ("0", "1", "2")
    assert target.positive is None
    assert target.positive_class is None
    assert len(inferred.schema.numeric_features) == 13
    assert inferred.left_out == []
    reason = next(d.reason for d in inferred.decisions if d.name == "target")
    assert reason.startswith("3 classes ('0' 33%, '1' 40%, '2' 27%)")
    assert sorted(valid["target"].unique()) == [0.0, 1.0, 2.0]  # each label its class's index
    # Shipped sorted by cultivar: cut by time, no split would hold all three.
    assert inferred.one_sided_by_time == ("train", "validation", "holdout")
    assert any(
        "split(s) would lack classes of target (train: no ['2']" in n for n in inferred.notes
    )


def test_the_election_survey_declares_seven_party_ids_sorted_by_value(tmp_path: Path) -> None:
    """statsmodels' 1996 American National Election Study: 944 answers, party identification
    PID from 0 (strong Democrat) to 6 (strong Republican), as shipped (floats)."""
    table = sm.datasets.anes96.load_pandas().data
    path = tmp_path / "anes96.csv"
    write_table(_timestamped(table), path)
    inferred, valid = _inferred_and_valid(path, "PID")
    classes = inferred.schema.target.classes
    assert classes is not None
    assert len(classes) == 7
    assert [float(name) for name in classes] == sorted(table["PID"].unique())
    for index, name in enumerate(classes):
        assert inferred.schema.target.label(name) == index
        assert inferred.schema.target.class_name(index) == name
    assert valid["PID"].value_counts().sort_index().tolist() == (
        table["PID"].value_counts().sort_index().tolist()
    )


def test_penguin_species_are_text_classes_in_sorted_order(tmp_path: Path) -> None:
    """The Palmer penguins: 344 birds of three species, named as text, shipped by species."""
    table = _timestamped(load_penguins())
    path = tmp_path / "penguins.csv"
    write_table(table, path)
    inferred, valid = _inferred_and_valid(path, "species")
    target = inferred.schema.target
    assert target.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert target.label("Gentoo") == 2.0
    assert target.label("Emperor") is None  # out of the target's domain: quarantined
    assert len(valid) == len(table)


def test_a_binary_project_names_multiclass_as_the_way_forward(tmp_path: Path) -> None:
    path = tmp_path / "wine.csv"
    write_table(_wine(), path)
    way = (
        r"for 3 classes set train\.task: multiclass_classification in the project's "
        r"configuration"
    )
    with pytest.raises(DataError, match=r"3 distinct value\(s\), a binary target has two: "):
        infer_file(path, "binary_classification", target="target", timestamp="seen_at")
    with pytest.raises(DataError, match=rf"\['0', '1', '2'\]; {way}; .*train\.task: regression"):
        infer_file(path, "binary_classification", target="target", timestamp="seen_at")
    penguins = tmp_path / "penguins.csv"
    write_table(_timestamped(load_penguins()), penguins)
    with pytest.raises(DataError, match=rf"'Gentoo'\]; {way}$"):  # text: no regression
        infer_file(penguins, "binary_classification", target="species", timestamp="seen_at")

    project = _project(tmp_path / "binary", "binary_classification")
    write_table(_wine(), project.path(TABLE))
    table = str(project.path(TABLE))
    code, output = cli(
        project, "schema", "infer", table, "--target", "target", "--timestamp", "seen_at"
    )
    assert code == 2, output
    assert "a binary target has two" in output
    assert "set train.task: multiclass_classification" in output
    # A schema file that declares three classes: ingest refuses the binary task the same way.
    _with_table(_project(tmp_path / "binary"), _wine(), "target")
    code, output = cli(_project(tmp_path / "binary", "binary_classification"), "ingest")
    assert code == 2, output
    assert (
        "a binary target has two classes, this one 3: set train.task: multiclass_classification"
        in output
    )


def test_a_multiclass_project_refuses_two_classes_and_quantities(tmp_path: Path) -> None:
    wine = _wine()
    two = tmp_path / "two.csv"
    write_table(wine[wine["target"] < 2], two)
    with pytest.raises(DataError, match=r"three or more: \['0', '1'\]; .*binary_classification"):
        infer_file(two, MULTICLASS, target="target", timestamp="seen_at")
    alcohol = tmp_path / "alcohol.csv"
    write_table(wine, alcohol)
    with pytest.raises(
        DataError, match=r"distinct numbers, not all whole: .*train.task: regression"
    ):
        infer_file(alcohol, MULTICLASS, target="alcohol", timestamp="seen_at")
    magnesium = tmp_path / "magnesium.csv"  # whole numbers, 53 of them: a quantity
    write_table(wine, magnesium)
    with pytest.raises(DataError, match=r"distinct whole numbers, more than the 20"):
        infer_file(magnesium, MULTICLASS, target="magnesium", timestamp="seen_at")


def test_a_random_split_keeps_every_class_in_every_split_where_time_cannot(
    tmp_path: Path,
) -> None:
    by_time = _project(tmp_path)
    _with_table(by_time, _wine(), "target")
    with pytest.raises(DataError) as refused:
        ingest(by_time, now=NOW)
    message = str(refused.value)
    assert "the train, validation, holdout split(s) lack a class of target" in message
    assert "class '2': 0 in train" in message
    assert "class '0': 0 in holdout; class '1': 0 in holdout" in message
    assert "data.min_class_rows = 2" in message
    assert "(data.split.strategy: time)" in message
    assert "set data.split.strategy: random (rows drawn at random, stratified by class)" in message

    drawn = _project(tmp_path, split={"strategy": "random"})
    code, output = cli(drawn, "ingest")
    assert code == 0, output
    assert "stratified by class (seed 0)" in output
    snapshot = ingest(drawn, now=NOW).snapshot
    wine = _wine()["target"]
    for name, fraction in (("validation", 0.15), ("holdout", 0.15)):
        counts = getattr(snapshot, name)["target"].value_counts().sort_index()
        assert counts.index.tolist() == [0.0, 1.0, 2.0], name
        expected = [int(n * fraction + 0.5) for n in wine.value_counts().sort_index()]
        assert counts.tolist() == expected, name
    assert snapshot.train["target"].nunique() == 3


def test_a_class_too_rare_for_every_split_is_refused_naming_it(tmp_path: Path) -> None:
    """Four wines of cultivar 2: one for the holdout, one for validation, below two each."""
    wine = _wine()
    rare = pd.concat([wine[wine["target"] < 2], wine[wine["target"] == 2].head(4)])
    project = _project(tmp_path, split={"strategy": "random"})
    _with_table(project, rare.reset_index(drop=True), "target")
    code, output = cli(project, "ingest")
    assert code == 2, output
    assert (
        "the validation, holdout split(s) lack a class of target or hold fewer than "
        "data.min_class_rows = 2 rows of one (class '2': 1 in validation; class '2': 1 in "
        "holdout)" in output
    )
    assert "Rows are drawn at random (data.split.strategy: random, seed 0)" in output
    assert "Traceback" not in output
    relaxed = _project(tmp_path, split={"strategy": "random"}, min_class_rows=1)
    assert ingest(relaxed, now=NOW).snapshot.holdout["target"].nunique() == 3


def test_the_multiclass_demo_ingests_every_class_into_every_split(tmp_path: Path) -> None:
    path = _project(tmp_path).root / "configs" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"]["source"] = {"kind": "demo", "rows": 3_000, "days": 60}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    project = load_project(path)
    assert demo_schema(MULTICLASS).target.classes == PLAN_CHANGES
    snapshot = ingest(project, now=NOW).snapshot
    for name in ("train", "validation", "holdout"):
        shares = getattr(snapshot, name)["plan_change"].value_counts(normalize=True)
        assert shares.index.size == len(PLAN_CHANGES), name
        assert shares.min() > 0.03, (name, shares)
    code, output = cli(project, "demo-data", "--out", str(tmp_path / "demo.csv"), "--rows", "500")
    assert code == 0, output
    inferred = infer_file(
        tmp_path / "demo.csv", MULTICLASS, target="plan_change", timestamp="event_time"
    )
    assert inferred.schema.target.classes == PLAN_CHANGES


@pytest.mark.e2e
def test_penguins_go_from_the_file_to_a_champion_serving_every_class(tmp_path: Path) -> None:
    """No edit beyond naming the target and the timestamp (and, the file being sorted by
    species, the random split the refusal names): infer, ingest, train, then the service and
    batch scoring answer the likeliest species with every species' probability."""
    project = _project(tmp_path, split={"strategy": "random"})
    table = _timestamped(load_penguins())
    write_table(table, project.path(TABLE))
    data = str(project.path(TABLE))
    code, output = cli(
        project, "schema", "infer", data, "--target", "species", "--timestamp", "seen_at"
    )
    assert code == 0, output
    assert cli(project, "ingest")[0] == 0
    code, output = cli(project, "train")
    assert code == 0, output
    assert "promoted: there is no champion yet" in output
    assert "a multiclass model has no compiled form: its library scores it" in output
    species = ("Adelie", "Chinstrap", "Gentoo")

    rows = table.tail(5).drop(columns=["species"])
    records = [
        {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
        for row in rows.to_dict(orient="records")
    ]
    store = Store.open(project)
    _, model = store.load_champion()
    schema = DataSchema.from_yaml(project.path(SCHEMA))
    expected = predict_scores(
        model, model_input(validate(rows, schema, now=NOW, scoring=True).valid, schema), MULTICLASS
    )
    with running(project) as client:
        answers = [client.post("/predict", json=record) for record in records]
        batch = client.post("/predict/batch", json={"rows": records})
        outside = client.post(
            "/feedback",
            json={"prediction_id": answers[0].json()["prediction_id"], "label": "Emperor"},
        )
        labelled = client.post(
            "/feedback",
            json={"prediction_id": answers[0].json()["prediction_id"], "label": "Gentoo"},
        )
    assert [answer.status_code for answer in answers] == [200] * 5
    assert batch.status_code == 200, batch.text
    for answer, each, probabilities in zip(
        answers, batch.json()["predictions"], expected, strict=True
    ):
        body = answer.json()
        assert list(body["probabilities"]) == list(species)
        assert body["probabilities"] == pytest.approx(
            dict(zip(species, probabilities, strict=True))
        )
        assert body["label"] == species[int(probabilities.argmax())]
        assert body["prediction"] == pytest.approx(probabilities.max())
        assert each["probabilities"] == pytest.approx(body["probabilities"])
    assert outside.status_code == 422
    assert outside.json()["detail"][0]["loc"] == ["body", "label"]
    assert labelled.status_code == 202

    scored = tmp_path / "scored.parquet"
    code, output = cli(project, "batch-predict", data, str(scored))
    assert code == 0, output
    frame = pd.read_parquet(scored)
    columns = [f"probability_{name}" for name in species]
    assert set(frame["label"]) <= set(species)
    assert frame[columns].sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert frame["prediction"].to_numpy() == pytest.approx(frame[columns].max(axis=1).to_numpy())
