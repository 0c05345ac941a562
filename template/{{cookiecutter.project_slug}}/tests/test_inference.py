"""`schema infer` on real public data (two datasets that ship inside scikit-learn), and the CSV
delimiter: detected, configured, or refused with the setting that fixes it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from pydantic import ValidationError
from sklearn.datasets import load_breast_cancer, load_diabetes
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    DemoSourceConfig,
    FileSourceConfig,
    Project,
    Task,
    load_project,
    parse_config,
)
from {{ cookiecutter.package_name }}.data import (
    REASON,
    ColumnSpec,
    DataError,
    DataSchema,
    demo_schema,
    generate_demo,
    ingest,
    load_source,
    read_table,
    validate,
)
from {{ cookiecutter.package_name }}.data.inference import InferredSchema, infer_file, widened, write_schema
from {{ cookiecutter.package_name }}.data.schema import MAX_CATEGORIES, MAX_TEXT_CHARS
from {{ cookiecutter.package_name }}.data.sources import csv_delimiter, write_table
from {{ cookiecutter.package_name }}.exit_codes import ExitCode
from {{ cookiecutter.package_name }}.serve.batch import _chunks

from .conftest import ROOT, ten_megabytes_of_text

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

TASK: Task = load_project(ROOT / "configs" / "project.yaml").config.train.task
NOW = datetime(2026, 1, 1, tzinfo=UTC)
runner = CliRunner()


def _own_data(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A public dataset made to look like a user's file: a timestamp, a text category with gaps,
    an id-like text column that is not the id, and no id column."""
    rng = np.random.default_rng(seed)
    rows = len(frame)
    clinic = rng.choice(["north", "south", "east"], rows).astype(object)
    clinic[rng.uniform(size=rows) < 0.1] = None
    times = pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC")
    return frame.assign(
        seen_at=times.strftime("%Y-%m-%dT%H:%M:%SZ"),
        clinic=clinic,
        note=[f"note-{rng.integers(1_000_000):06d}-{row}" for row in range(rows)],
    )


def _breast_cancer() -> pd.DataFrame:
    return _own_data(load_breast_cancer(as_frame=True).frame)


def _diabetes() -> pd.DataFrame:
    return _own_data(load_diabetes(as_frame=True, scaled=False).frame)


def _election() -> pd.DataFrame:
    """statsmodels' 1996 election survey, its party identification (seven classes) as target."""
    survey = sm.datasets.anes96.load_pandas().data
    return _own_data(survey.rename(columns={"PID": "target"}))


def _dataset(task: Task) -> pd.DataFrame:
    return {
        "binary_classification": _breast_cancer,
        "multiclass_classification": _election,
        "regression": _diabetes,
    }[task]()


def _infer_and_check(path: Path, task: Task, **options: Any) -> tuple[InferredSchema, DataSchema]:
    """Infer, write, load back: validating the file it came from quarantines nothing."""
    inferred = infer_file(path, task, target="target", timestamp="seen_at", **options)
    schema_path = path.with_suffix(".schema.yaml")
    write_schema(inferred, schema_path, path.name)
    schema = DataSchema.from_yaml(schema_path)
    assert schema == inferred.schema
    result = validate(read_table(path), schema, now=NOW)
    assert result.quarantined.empty, result.quarantined.head()
    assert len(result.valid) == inferred.rows
    assert result.ignored_columns == ("note",)
    return inferred, schema


def _reasons(inferred: InferredSchema) -> dict[str, str]:
    return {decision.name: decision.reason for decision in inferred.decisions}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_breast_cancer_declares_both_classes_and_names_the_positive(
    tmp_path: Path, suffix: str
) -> None:
    raw = _breast_cancer()
    path = tmp_path / f"breast_cancer{suffix}"
    write_table(raw, path)
    inferred, schema = _infer_and_check(path, "binary_classification")

    assert schema.id_column is None
    assert schema.target.classes == ("0", "1")
    assert schema.target.positive == "1"
    assert "second in sorted order" in _reasons(inferred)["target"]
    assert schema.column("clinic").categories == ("east", "north", "south")
    assert schema.column("clinic").nullable
    assert len(schema.numeric_features) == 30
    assert inferred.left_out == ["note"]
    text = path.with_suffix(".schema.yaml").read_text(encoding="utf-8")
    assert "positive: '1'" in text
    assert "# - note: every value is distinct text" in text


def test_a_named_positive_class_is_declared_as_the_data_holds_it(tmp_path: Path) -> None:
    raw = _breast_cancer()
    raw["target"] = np.where(raw["target"] == 0, "malignant", "benign")
    path = tmp_path / "labelled.csv"
    write_table(raw, path)
    inferred, schema = _infer_and_check(path, "binary_classification", positive="malignant")
    assert schema.target.classes == ("benign", "malignant")
    assert schema.target.positive_class == "malignant"
    assert "named by --positive" in _reasons(inferred)["target"]
    with pytest.raises(DataError, match=r"--positive 'cancer' is not a value of target"):
        infer_file(
            path, "binary_classification", target="target", timestamp="seen_at", positive="cancer"
        )


def test_diabetes_regression_ranges_hold_the_data_with_a_margin(tmp_path: Path) -> None:
    raw = _diabetes()
    path = tmp_path / "diabetes.csv"
    write_table(raw, path)
    _, schema = _infer_and_check(path, "regression")

    assert schema.target.classes is None
    for spec in [*(schema.column(name) for name in schema.numeric_features), schema.target]:
        low, high = raw[spec.name].min(), raw[spec.name].max()
        assert spec.min is not None
        assert spec.max is not None
        assert 0 <= spec.min < low, spec  # the data has no negative value: nor does the range
        assert high < spec.max <= high + 0.2 * (high - low) + 1, spec
    assert schema.column("sex").integer
    assert schema.column("age").integer
    assert not schema.column("bmi").integer


def test_a_third_target_value_is_refused_naming_the_values(tmp_path: Path) -> None:
    raw = _breast_cancer()
    raw.loc[:4, "target"] = 2
    path = tmp_path / "three.csv"
    write_table(raw, path)
    with pytest.raises(DataError, match=r"3 distinct value\(s\).*\['0', '1', '2'\]"):
        infer_file(path, "binary_classification", target="target", timestamp="seen_at")

    regression = tmp_path / "diabetes.csv"
    write_table(_diabetes(), regression)
    with pytest.raises(DataError, match=r"'25.0', '31.0', .*, \.\.\.\]; .*train.task: regression"):
        infer_file(regression, "binary_classification", target="target", timestamp="seen_at")


def test_named_columns_must_exist_and_the_id_keys_rows_when_named(tmp_path: Path) -> None:
    path = tmp_path / "breast_cancer.csv"
    write_table(_breast_cancer(), path)
    with pytest.raises(DataError, match=r"--timestamp 'when' is not a column of the data"):
        infer_file(path, "binary_classification", target="target", timestamp="when")
    inferred = infer_file(
        path, "binary_classification", target="target", timestamp="seen_at", id_column="note"
    )
    assert inferred.schema.id_column == "note"
    assert inferred.left_out == []


def test_a_repeating_entity_id_is_no_category(tmp_path: Path) -> None:
    """The demo's customers come back: their ids repeat, so they are not all distinct, yet far
    too many for categories, which would refuse every new customer at serving time."""
    raw = generate_demo(DemoSourceConfig(rows=3_000, invalid_fraction=0.0), TASK)
    path = tmp_path / "demo.csv"
    write_table(raw, path)
    target = demo_schema(TASK).target.name
    inferred = infer_file(path, TASK, target=target, timestamp="event_time")
    assert inferred.left_out == ["customer_id"]
    assert "distinct texts, more than 200" in _reasons(inferred)["customer_id"]
    assert inferred.schema.column("region").nullable
    assert inferred.schema.column("plan").categories == ("basic", "premium", "standard")
    keyed = infer_file(path, TASK, target=target, timestamp="event_time", id_column="customer_id")
    assert keyed.schema.id_column == "customer_id"
    assert validate(read_table(path), keyed.schema, now=NOW).quarantined.empty


def test_a_few_bad_values_leave_a_column_numeric_and_are_quarantined(tmp_path: Path) -> None:
    raw = generate_demo(DemoSourceConfig(rows=3_000, invalid_fraction=0.03), TASK)
    path = tmp_path / "demo.csv"
    write_table(raw, path)
    target = demo_schema(TASK).target.name
    inferred = infer_file(
        path, TASK, target=target, timestamp="event_time", id_column="customer_id"
    )
    assert inferred.schema.column("tenure_months").role == "numeric"
    unknown = int((raw["tenure_months"] == "unknown").sum())
    assert unknown > 0
    assert f"{unknown} values not numbers: ['unknown']" in _reasons(inferred)["tenure_months"]
    quarantined = validate(read_table(path), inferred.schema, now=NOW).quarantined
    assert len(quarantined) == unknown
    assert quarantined[REASON].str.contains("'unknown' is not a number").all()


def test_a_semicolon_file_is_read_with_its_delimiter_detected(tmp_path: Path) -> None:
    raw = _breast_cancer()
    commas, semicolons = tmp_path / "commas.csv", tmp_path / "semicolons.csv"
    write_table(raw, commas)
    raw.to_csv(semicolons, sep=";", index=False)
    assert csv_delimiter(semicolons) == ";"
    pd.testing.assert_frame_equal(read_table(semicolons), read_table(commas))
    _infer_and_check(semicolons, "binary_classification")


def test_batch_scoring_reads_a_csv_in_chunks_with_the_same_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "semicolons.csv"
    _breast_cancer().to_csv(path, sep=";", index=False)
    chunks = list(_chunks(path, 100))
    assert len(chunks) == 6
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), read_table(path))


@pytest.mark.parametrize(("delimiter", "expected"), [("\t", "\t"), ("|", "|"), (",", ",")])
def test_tabs_and_pipes_are_detected_and_one_column_falls_back_to_a_comma(
    tmp_path: Path, delimiter: str, expected: str
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(f"a{delimiter}b\n1{delimiter}x\n2{delimiter}y\n", encoding="utf-8")
    assert csv_delimiter(path) == expected
    single = tmp_path / "single.csv"
    single.write_text("value\n1\n2\n", encoding="utf-8")
    assert csv_delimiter(single) == ","
    assert list(read_table(single).columns) == ["value"]


def _file_project(project: Project, **source: str) -> Project:
    config = project.config.model_dump(mode="json")
    config["data"]["source"] = {"kind": "file", "schema_path": "configs/schema.yaml", **source}
    return Project(root=project.root, config=parse_config(config))


def test_a_forced_wrong_delimiter_names_the_setting_that_fixes_it(project: Project) -> None:
    raw = _dataset(project.config.train.task)
    path = project.root / "data" / "raw" / "semicolons.csv"
    path.parent.mkdir(parents=True)
    raw.to_csv(path, sep=";", index=False)
    write_schema(
        infer_file(path, project.config.train.task, target="target", timestamp="seen_at"),
        project.root / "configs" / "schema.yaml",
        path.name,
    )
    forced = _file_project(project, path="data/raw/semicolons.csv", delimiter=",")
    with pytest.raises(DataError, match=r"header parsed as one column") as refused:
        load_source(forced)
    assert "looks ';'-separated: set data.source.delimiter" in str(refused.value)
    rows, _ = load_source(_file_project(project, path="data/raw/semicolons.csv"))
    assert len(rows) == len(raw)
    configured = _file_project(project, path="data/raw/semicolons.csv", delimiter=";")
    assert len(load_source(configured)[0]) == len(raw)


def test_the_configured_delimiter_is_one_character() -> None:
    with pytest.raises(ValidationError, match="delimiter must be one character"):
        FileSourceConfig(path="a.csv", schema_path=Path("s.yaml"), delimiter=";;")


def test_widened_ranges_are_round_and_keep_the_sign_of_the_data() -> None:
    assert widened(6.981, 28.11, integer=False) == (4.8, 30.3)
    assert widened(1, 2, integer=True) == (0, 3)
    assert widened(0, 10, integer=True) == (0, 11)
    assert widened(-10, -1, integer=False) == (-10.9, -0.1)
    assert widened(-10, 0, integer=False) == (-11, 0)
    assert widened(-5, 5, integer=False) == (-6, 6)
    assert widened(3, 3, integer=False) == (2.7, 3.3)


def test_schema_infer_on_the_command_line(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("COLUMNS", "240")  # one table row per line
    task = project.config.train.task
    write_table(_dataset(task), project.root / "data" / "raw" / "own.csv")
    command = [
        "schema",
        "infer",
        "data/raw/own.csv",
        "--target",
        "target",
        "--timestamp",
        "seen_at",
    ]

    done = runner.invoke(app, command)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert any("note" in line and "left out" in line and "id-like" in line for line in lines)
    assert any("clinic" in line and "categorical" in line for line in lines)
    if task == "binary_classification":
        assert any("second in sorted order" in line for line in lines)
    written = project.root / "configs" / "schema.yaml"
    assert "wrote configs/schema.yaml (" in " ".join(done.output.split())
    assert "data.source to: kind: file, path: data/raw/own.csv" in done.output
    assert DataSchema.from_yaml(written).target.name == "target"

    again = runner.invoke(app, command)
    assert again.exit_code == 2
    assert "exists: pass --force to overwrite it" in " ".join(again.output.split())
    forced = runner.invoke(app, [*command, "--force"])
    assert forced.exit_code == 0, forced.output


def test_an_inferred_schema_ingests_its_file(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole loop of bringing one's own data: infer to data.source.schema_path, ingest."""
    monkeypatch.chdir(project.root)
    task = project.config.train.task
    path = project.root / "data" / "raw" / "own.csv"
    write_table(_dataset(task), path)
    config = yaml.safe_load((project.root / "configs" / "project.yaml").read_text("utf-8"))
    config["data"]["source"] = {
        "kind": "file",
        "path": "data/raw/own.csv",
        "schema_path": "configs/own-schema.yaml",
    }
    (project.root / "configs" / "project.yaml").write_text(yaml.safe_dump(config), "utf-8")
    done = runner.invoke(
        app,
        ["schema", "infer", str(path), "--target", "target", "--timestamp", "seen_at"],
    )
    assert done.exit_code == 0, done.output
    assert "to ingest it" not in done.output
    said = " ".join(done.output.split())
    if project.config.train.slice_column not in (None, "clinic"):  # the demo's, not this table's
        assert "set it to one of them (clinic), or remove it" in said
        with pytest.raises(ConfigError, match=r"train\.slice_column"):
            ingest(Project(root=project.root, config=parse_config(config)), now=NOW)
    config["train"]["slice_column"] = "clinic"  # as the hint says
    file_project = Project(root=project.root, config=parse_config(config))
    result = ingest(file_project, now=NOW)
    assert result.rows_quarantined == 0
    assert result.rows_valid == len(_dataset(task))
    assert result.ignored_columns == ("note",)


def _infer_command(data: str, *options: str) -> list[str]:
    return ["schema", "infer", data, "--target", "target", "--timestamp", "seen_at", *options]


def test_schema_infer_refuses_a_repeated_header_naming_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas reads a second `clinic` as `clinic.1`: inferred, it would be a feature of its own."""
    monkeypatch.chdir(project.root)
    frame = _dataset(project.config.train.task)
    path = project.root / "data" / "raw" / "own.csv"
    path.parent.mkdir(parents=True)
    pd.concat([frame, frame[["clinic"]]], axis=1).to_csv(path, index=False)
    done = runner.invoke(app, _infer_command("data/raw/own.csv"))
    assert done.exit_code == ExitCode.ERROR, done.output
    shown = " ".join(done.output.split())
    position = f"columns {list(frame.columns).index('clinic') + 1}, {len(frame.columns) + 1}"
    assert f"column names repeat: 'clinic' ({position})" in shown
    assert not (project.root / "configs" / "schema.yaml").exists()
    with pytest.raises(DataError, match="column names repeat: 'clinic'"):
        infer_file(path, project.config.train.task, target="target", timestamp="seen_at")
    with pytest.raises(DataError, match="column names repeat: 'clinic'"):
        next(_chunks(path, 100))  # batch-predict's reader


def test_a_10_mb_cell_is_no_category_and_is_never_copied(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One 10 MB value in a category, the target and the timestamp, and a column of long texts:
    the category keeps its short values, the long texts are left out as free text, and neither
    the printed table, schema.yaml nor the snapshot's manifest holds a long value."""
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("COLUMNS", "240")
    task = project.config.train.task
    blob = ten_megabytes_of_text()
    frame = _dataset(task).astype({"target": object})
    letters = "abcdefghij"
    frame["comment"] = [letters[row % 10] * (MAX_TEXT_CHARS + 1) for row in range(len(frame))]
    for row, column in {5: "clinic", 6: "target", 7: "seen_at", 8: "comment"}.items():
        frame.loc[row, column] = blob
    path = project.root / "data" / "raw" / "own.csv"
    write_table(frame, path)

    done = runner.invoke(app, _infer_command("data/raw/own.csv"))

    assert done.exit_code == 0, done.output[:2_000]
    assert len(done.output) < 20_000
    lines = done.output.splitlines()
    longer = f"longer than {MAX_TEXT_CHARS:,} characters"
    assert any("clinic" in line and "categorical" in line and longer in line for line in lines)
    assert any("comment" in line and "left out" in line and "free text" in line for line in lines)
    written = project.root / "configs" / "schema.yaml"
    assert written.stat().st_size < 20_000
    schema = DataSchema.from_yaml(written)
    assert schema.column("clinic").categories == ("east", "north", "south")
    assert "comment" not in [column.name for column in schema.columns]

    config = yaml.safe_load((project.root / "configs" / "project.yaml").read_text("utf-8"))
    config["data"]["source"] = {
        "kind": "file",
        "path": "data/raw/own.csv",
        "schema_path": "configs/schema.yaml",
    }
    config["train"]["slice_column"] = "clinic"
    result = ingest(Project(root=project.root, config=parse_config(config)), now=NOW)
    assert result.rows_valid + result.rows_quarantined == result.rows_read == len(frame)
    assert result.quarantine_file is not None
    reasons = pd.read_parquet(result.quarantine_file).set_index("source_row")[REASON]
    assert sorted(reasons.index) == [5, 6, 7]
    assert reasons.str.contains(f"a value of {len(blob):,} characters").all()
    assert (result.snapshot.directory / "manifest.json").stat().st_size < 20_000


def test_very_many_distinct_values_are_no_category(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes that repeat, so no id, yet 20,000 of them: a category would copy each into the
    schema and refuse every new one at serving time; left out, saying how many and the bound."""
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("COLUMNS", "240")
    task = project.config.train.task
    frame = pd.concat([_dataset(task)] * 80, ignore_index=True)
    times = pd.date_range("2020-01-01", periods=len(frame), freq="min", tz="UTC")
    frame["seen_at"] = times.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame["voucher"] = [f"V{row // 2:06d}" for row in range(len(frame))]
    write_table(frame, project.root / "data" / "raw" / "own.csv")

    done = runner.invoke(app, _infer_command("data/raw/own.csv"))

    assert done.exit_code == 0, done.output[:2_000]
    assert len(done.output) < 20_000
    lines = done.output.splitlines()
    distinct = f"{len(frame) // 2} distinct texts, more than {MAX_CATEGORIES}"
    assert any("voucher" in line and "left out" in line and distinct in line for line in lines)
    written = project.root / "configs" / "schema.yaml"
    assert written.stat().st_size < 20_000
    assert "voucher" not in [column.name for column in DataSchema.from_yaml(written).columns]


def test_a_schema_file_refuses_a_category_longer_than_the_bound() -> None:
    """Such a category could never be ingested (its cell is quarantined), so it is a mistake."""
    long = "a" * (MAX_TEXT_CHARS + 1)
    with pytest.raises(ValidationError, match=f"longer than the {MAX_TEXT_CHARS:,} characters"):
        ColumnSpec(name="plan", role="categorical", categories=("basic", long))
    with pytest.raises(ValidationError, match="a category or class may have"):
        ColumnSpec(name="churned", role="target", classes=("0", long))
