"""Hostile data files: each bad row is quarantined with its reason or the file is refused by name,
rows in always equal rows kept plus rows quarantined, and too little data never trains."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project
from {{ cookiecutter.package_name }}.data import (
    REASON,
    DataError,
    DataSchema,
    demo_schema,
    generate_demo,
    ingest,
    read_snapshot,
    write_table,
)
from {{ cookiecutter.package_name }}.data.schema import MAX_TEXT_CHARS
from {{ cookiecutter.package_name }}.exit_codes import ExitCode
from {{ cookiecutter.package_name }}.train import train

from .conftest import champion_version, file_source, ten_megabytes_of_text

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
runner = CliRunner()


def _schema(project: Project) -> DataSchema:
    """The demo contract, with monthly_spend left unbounded as a user's own schema may leave it."""
    columns = demo_schema(project.config.train.task).columns
    return DataSchema(
        columns=tuple(
            c.model_copy(update={"max": None}) if c.name == "monthly_spend" else c for c in columns
        )
    )


def _rows(project: Project, rows: int = 600) -> pd.DataFrame:
    """Clean rows; object columns, so that any cell can be given a value of the wrong type."""
    config = DemoSourceConfig(rows=rows, invalid_fraction=0.0)
    return generate_demo(config, project.config.train.task).astype(object)


def _from_file(project: Project, name: str, frame: pd.DataFrame | None = None) -> Project:
    """The project with a file source `data/raw/<name>` (written from `frame` if given)."""
    return file_source(project, f"data/raw/{name}", frame=frame, schema=_schema(project))


def _cli(project: Project, command: str) -> tuple[int, str]:
    """Exit code and output, with Rich's line wrapping undone."""
    result = runner.invoke(app, [command, "-c", str(project.root / "configs" / "project.yaml")])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_every_bad_row_is_quarantined_with_its_reason(project: Project, suffix: str) -> None:
    frame = _rows(project)
    target = demo_schema(project.config.train.task).target.name
    bad: dict[int, tuple[str, str | float | None, str]] = {
        3: ("tenure_months", "twelve", "tenure_months: 'twelve' is not a number"),
        4: ("tenure_months", -5, "tenure_months: -5.0 is below the minimum 0"),
        5: ("discount_rate", 1.5, "discount_rate: 1.5 is above the maximum 1"),
        6: ("support_tickets", 2.5, "support_tickets: 2.5 is not a whole number"),
        7: ("monthly_spend", "inf", "monthly_spend: 'inf' is not a number"),
        8: ("plan", "platinum", "plan: 'platinum' is not a known category"),
        9: ("channel", None, "channel: missing"),
        10: (target, None, f"{target}: missing"),
        11: ("event_time", "yesterday", "event_time: 'yesterday' is not a timestamp"),
        12: ("event_time", "2030-01-01T00:00:00Z", "event_time: in the future"),
    }
    for row, (column, value, _) in bad.items():
        frame.loc[row, column] = value
    # The same id later is a new event; the same id at the same time is a duplicate.
    frame.loc[21, "customer_id"] = str(frame.loc[22, "customer_id"])
    frame = pd.concat([frame, frame.iloc[[30]]], ignore_index=True)
    expected = {row: reason for row, (_, _, reason) in bad.items()}
    expected[len(frame) - 1] = "duplicate: same id and timestamp as an earlier row"

    result = ingest(_from_file(project, f"events{suffix}", frame), now=NOW)

    assert result.rows_read == len(frame)
    assert result.rows_valid + result.rows_quarantined == result.rows_read
    assert result.quarantine_file is not None
    quarantined = pd.read_parquet(result.quarantine_file)
    reasons = dict(zip(quarantined["source_row"], quarantined[REASON], strict=True))
    assert reasons == expected
    parts = result.snapshot.manifest["parts"]
    assert sum(part["rows"] for part in parts.values()) == result.rows_valid


def test_typed_columns_of_the_wrong_kind_are_refused_row_by_row(project: Project) -> None:
    config = DemoSourceConfig(rows=300, invalid_fraction=0.0)
    frame = generate_demo(config, project.config.train.task)
    frame["event_time"] = frame["event_time"].map(lambda t: int(t.timestamp()))  # epoch seconds
    frame["tenure_months"] = pd.Timestamp("2025-01-01", tz="UTC")
    project = _from_file(project, "typed.parquet", frame)

    with pytest.raises(DataError, match=r"no valid rows of 300") as refused:
        ingest(project, now=NOW)

    quarantine = next(project.quarantine_dir.glob("*.parquet"))
    assert quarantine.relative_to(project.root).as_posix() in str(refused.value)
    reasons = pd.read_parquet(quarantine)[REASON]
    assert len(reasons) == 300
    assert reasons.str.contains(r"event_time: \d+ is not a timestamp").all()
    assert reasons.str.contains("tenure_months: Timestamp.* is not a number").all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_columns_are_refused_by_name(project: Project, suffix: str) -> None:
    target = demo_schema(project.config.train.task).target.name
    frame = _rows(project).drop(columns=["plan", target])
    project = _from_file(project, f"events{suffix}", frame)
    with pytest.raises(DataError, match="the data lacks required columns: ") as refused:
        ingest(project, now=NOW)
    assert "plan" in str(refused.value)
    assert target in str(refused.value)
    code, output = _cli(project, "ingest")
    assert code == 2
    assert "lacks required columns" in output


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("empty.csv", "is empty"),
        ("empty.parquet", "is empty"),
        ("header-only.csv", "has no rows"),
        ("header-only.parquet", "has no rows"),
    ],
)
def test_an_empty_file_is_refused(project: Project, name: str, problem: str) -> None:
    path = project.root / "data" / "raw" / name
    if name.startswith("empty"):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    else:
        write_table(_rows(project).head(0), path)
    with pytest.raises(DataError, match=problem):
        ingest(_from_file(project, name), now=NOW)
    assert not project.snapshots_dir.exists()


def test_a_ragged_csv_line_is_refused_with_its_line_number(project: Project) -> None:
    path = project.root / "data" / "raw" / "ragged.csv"
    write_table(_rows(project), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] += ",surplus,values"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot be read: .*line 6"):
        ingest(_from_file(project, "ragged.csv"), now=NOW)


def test_too_few_valid_rows_are_refused_before_a_snapshot(project: Project) -> None:
    frame = _rows(project, rows=300)
    frame.loc[:149, "plan"] = "platinum"
    project = _from_file(project, "few.csv", frame)
    expected = (
        r"the training split has \d+ rows, below data.min_training_rows = 200 in "
        r"configs/project.yaml: lower it, or bring more rows \(150 valid rows of 300\)"
    )
    with pytest.raises(DataError, match=expected):
        ingest(project, now=NOW)
    quarantine = next(project.quarantine_dir.glob("*.parquet"))
    assert len(pd.read_parquet(quarantine)) == 150
    with pytest.raises(DataError, match="run `ingest` first"):
        read_snapshot(project.snapshots_dir)
    code, output = _cli(project, "ingest")
    assert code == 2
    assert "below data.min_training_rows = 200 in configs/project.yaml" in output


def test_one_minimum_of_training_rows_at_ingest_and_at_train(project: Project) -> None:
    # 250 valid rows: about 175 are for training, below the minimum of 200. Ingest says so,
    # naming the setting and its file; it checks the count train would check.
    small = _from_file(project, "small.csv", _rows(project, rows=250))
    with pytest.raises(DataError, match=r"training split has 17\d rows, below data.min_training"):
        ingest(small, now=NOW)
    code, output = _cli(small, "ingest")
    assert code == 2
    assert "data.min_training_rows = 200 in configs/project.yaml" in output
    # A snapshot made under a lower minimum is refused by train once the minimum is raised.
    config = small.config.model_copy(
        update={"data": small.config.data.model_copy(update={"min_training_rows": 100})}
    )
    lowered = Project(root=small.root, config=config, config_path=small.config_path)
    assert ingest(lowered, now=NOW).rows_valid == 250
    with pytest.raises(DataError, match=r"training split has 17\d rows, below data.min_training"):
        train(small)
    code, output = _cli(small, "train")
    assert code == 2
    assert "below data.min_training_rows = 200" in output
    assert champion_version(small) is None


def _with_a_repeated_column(frame: pd.DataFrame, path: Path) -> None:
    """`frame` with monthly_spend twice, the second a different column of the same name, as an
    export of a join writes it: pandas reads such a CSV as monthly_spend and monthly_spend.1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doubled = pd.concat([frame, (frame[["monthly_spend"]] * 2)], axis=1)
    if path.suffix == ".csv":
        doubled.to_csv(path, index=False)
    else:  # pandas refuses to write repeated names; Parquet holds them. As text: the demo's
        # invalid cells ("unknown" months) make columns Arrow cannot type from the values.
        table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
        table = table.append_column("monthly_spend", table.column("monthly_spend"))
        pq.write_table(table, path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_repeated_column_name_is_refused_by_name(project: Project, suffix: str) -> None:
    path = project.root / "data" / "raw" / f"events{suffix}"
    _with_a_repeated_column(
        generate_demo(DemoSourceConfig(rows=600), project.config.train.task), path
    )
    project = _from_file(project, path.name)
    with pytest.raises(DataError, match=r"column names repeat: 'monthly_spend' \(columns 4, 11\)"):
        ingest(project, now=NOW)
    code, output = _cli(project, "ingest")
    assert code == ExitCode.ERROR
    assert "column names repeat: 'monthly_spend' (columns 4, 11)" in output
    assert not project.snapshots_dir.exists()


def test_an_over_long_cell_is_quarantined_with_its_reason_and_never_stored(
    project: Project,
) -> None:
    """A 10 MB cell in a category, in the id and in a number: each row is quarantined saying how
    long the value is; neither the snapshot, its manifest nor the quarantine file holds it."""
    blob = ten_megabytes_of_text()
    frame = _rows(project)
    for row, column in {3: "plan", 4: "customer_id", 5: "tenure_months"}.items():
        frame.loc[row, column] = blob
    project = _from_file(project, "events.csv", frame)

    result = ingest(project, now=NOW)

    assert result.rows_valid + result.rows_quarantined == result.rows_read == len(frame)
    assert result.quarantine_file is not None
    quarantined = pd.read_parquet(result.quarantine_file)
    reasons = dict(zip(quarantined["source_row"], quarantined[REASON], strict=True))
    too_long = f"a value of {len(blob):,} characters, longer than the {MAX_TEXT_CHARS:,}"
    assert reasons == {
        3: f"plan: {too_long} a text value may hold",
        4: f"customer_id: {too_long} a text value may hold",
        5: f"tenure_months: {too_long} a text value may hold",
    }
    cells = quarantined.drop(columns=[REASON]).to_numpy().ravel()
    assert max(len(str(cell)) for cell in cells) < MAX_TEXT_CHARS + 100  # cut, and says so
    assert f"({len(blob):,} characters)" in str(quarantined.loc[0, "plan"])
    assert result.quarantine_file.stat().st_size < 100_000
    directory = result.snapshot.directory
    assert (directory / "manifest.json").stat().st_size < 100_000
    assert json.loads((directory / "manifest.json").read_text())["rows_quarantined"] == 3
    assert all(path.stat().st_size < 1_000_000 for path in directory.glob("*.parquet"))
