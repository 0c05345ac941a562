"""Where rows come from: a local file, the same file behind an fsspec URL, and a SQL query on a
real SQLite database, typed as a database types them, ingested end to end."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    DemoSourceConfig,
    FileSourceConfig,
    Project,
    load_project,
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
    write_table,
)
from {{ cookiecutter.package_name }}.data.sources import csv_delimiter, shown_database
from {{ cookiecutter.package_name }}.exit_codes import ExitCode

from .conftest import file_source

NOW = datetime(2026, 1, 1, tzinfo=UTC)
URL_ENV = "TRAINING_DATA_URL"
QUERY = "SELECT * FROM events WHERE customer_id IS NOT NULL"
runner = CliRunner()


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[str]:
    """A folder of fsspec's in-memory filesystem, as a URL; emptied afterwards, since that
    filesystem lives as long as the process."""
    filesystem = fsspec.filesystem("memory")
    folder = f"/{tmp_path.name}"
    yield f"memory://{folder}"
    if filesystem.exists(folder):
        filesystem.rm(folder, recursive=True)


def _copied(local: Path, url: str) -> str:
    """`local`'s bytes at `url`: the same file, reached through fsspec."""
    with fsspec.open(url, "wb") as file:
        file.write(local.read_bytes())
    return url


def _demo_rows(project: Project, rows: int = 400) -> pd.DataFrame:
    return generate_demo(DemoSourceConfig(rows=rows), project.config.train.task)


@pytest.mark.answers
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_reads_the_same_from_a_path_a_memory_url_and_a_file_url(
    project: Project, memory: str, suffix: str
) -> None:
    local = project.root / "data" / "raw" / f"events{suffix}"
    write_table(_demo_rows(project), local)
    from_path = read_table(local)
    in_memory = _copied(local, f"{memory}/events{suffix}")
    pd.testing.assert_frame_equal(read_table(in_memory), from_path)
    pd.testing.assert_frame_equal(read_table(local.as_uri()), from_path)

    schema = demo_schema(project.config.train.task)
    through_config = file_source(project, in_memory, schema=schema)
    rows, description = load_source(through_config)
    pd.testing.assert_frame_equal(rows, from_path)
    assert description == f"file({in_memory})"


@pytest.mark.answers
def test_schema_infer_reads_a_url(project: Project, memory: str) -> None:
    local = project.root / "events.csv"
    write_table(_demo_rows(project), local)
    url = _copied(local, f"{memory}/events.csv")
    schema = demo_schema(project.config.train.task)
    out = project.root / "configs" / "inferred.yaml"
    config = str(project.root / "configs" / "project.yaml")
    names = ["--target", schema.target.name, "--timestamp", "event_time", "--id", "customer_id"]
    result = runner.invoke(app, ["schema", "infer", url, *names, "--out", str(out), "-c", config])
    assert result.exit_code == 0, result.output
    assert f"path: {url}" in " ".join(result.output.split())
    inferred = DataSchema.from_yaml(out)
    assert [c.name for c in inferred.columns] == [c.name for c in schema.columns]


def test_a_url_keeps_its_double_slash_and_its_suffix_is_checked() -> None:
    source = FileSourceConfig(path="s3://bucket/raw/events.parquet", schema_path=Path("s.yaml"))
    assert source.path == "s3://bucket/raw/events.parquet"
    with pytest.raises(ValidationError, match=r"must end in \.csv or \.parquet, got 'events.json'"):
        FileSourceConfig(path="gs://bucket/events.json", schema_path=Path("s.yaml"))


@pytest.mark.answers
def test_the_delimiter_is_detected_and_checked_through_a_url(project: Project, memory: str) -> None:
    local = project.root / "semicolons.csv"
    _demo_rows(project).to_csv(local, sep=";", index=False)
    url = _copied(local, f"{memory}/semicolons.csv")
    assert csv_delimiter(url) == ";"
    assert len(read_table(url)) == len(read_table(local))
    with pytest.raises(DataError, match=rf"data file {url}: the header parsed as one column"):
        read_table(url, delimiter=",")


def test_the_delimiter_is_found_past_a_huge_cell(tmp_path: Path) -> None:
    """A 10 MB cell in the first rows is left out of the sniffed sample (it took csv.Sniffer
    ten seconds per read); the delimiter still shows in the header and the other lines, and a
    wide table's long lines are still sampled."""
    path = tmp_path / "huge.csv"
    rows = [f"{i};{'x' * (10_000_000 if i == 1 else 8)};{i * 2}" for i in range(40)]
    path.write_text("id;note;value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert csv_delimiter(path) == ";"
    wide = tmp_path / "wide.csv"
    header = "\t".join(f"c{i}" for i in range(2_000))
    line = "\t".join("12345" for _ in range(2_000))
    wide.write_text("\n".join([header, *[line] * 10]) + "\n", encoding="utf-8")
    assert csv_delimiter(wide) == "\t"


def test_a_missing_url_file_and_an_unknown_protocol_are_named(memory: str) -> None:
    with pytest.raises(DataError, match=rf"data file {memory}/absent.csv: no such file"):
        read_table(f"{memory}/absent.csv")
    with pytest.raises(DataError, match=r"nosuchfs:// is no protocol fsspec knows"):
        read_table("nosuchfs://bucket/events.csv")


def test_a_missing_filesystem_package_is_named_with_how_to_install_it() -> None:
    # The cloud filesystems are optional packages; whichever is absent here shows the message.
    absent = [
        (scheme, package)
        for scheme, package in (("s3", "s3fs"), ("gs", "gcsfs"), ("abfs", "adlfs"))
        if importlib.util.find_spec(package) is None
    ]
    if not absent:
        pytest.skip("s3fs, gcsfs and adlfs are all installed")
    scheme, package = absent[0]
    with pytest.raises(DataError) as refused:
        read_table(f"{scheme}://bucket/events.parquet")
    message = str(refused.value)
    assert f"reading {scheme}:// URLs needs the Python package {package}" in message
    assert f"pip install {package}" in message


# The table as a database types it; SQLite keeps a value of another type as it was given
# ('unknown' in a REAL column), as a careless feed does.
TABLE = """
CREATE TABLE events (
    customer_id TEXT,
    event_time TIMESTAMP,
    tenure_months REAL,
    monthly_spend REAL,
    support_tickets INTEGER,
    discount_rate REAL,
    plan TEXT,
    region TEXT,
    channel TEXT,
    segment INTEGER,
    {target}
)
"""


def _sql_schema(project: Project) -> DataSchema:
    """The demo contract plus `segment`, an integer code with NULLs: floats when read."""
    segment = ColumnSpec(
        name="segment", role="categorical", categories=("1", "2", "3"), nullable=True
    )
    return DataSchema(columns=(*demo_schema(project.config.train.task).columns, segment))


def _sql_rows(project: Project) -> pd.DataFrame:
    """Demo rows (a few deliberately invalid), timestamps with and without an offset, segment
    codes with NULLs, and four rows broken the ways a database lets them break."""
    rows = generate_demo(DemoSourceConfig(rows=2_000, days=60), project.config.train.task)
    rows["event_time"] = [_written(time, i) for i, time in enumerate(rows["event_time"])]
    rows["segment"] = [None if i % 10 == 0 else i % 3 + 1 for i in range(len(rows))]
    rows = rows.astype({"tenure_months": object, "support_tickets": object, "segment": object})
    rows.loc[0, "plan"] = None
    rows.loc[1, "event_time"] = None
    rows.loc[2, "support_tickets"] = "many"
    rows.loc[3, "segment"] = 7
    rows.loc[4, "tenure_months"] = "unknown"
    return rows


def _written(time: pd.Timestamp, row: int) -> str:
    """A time as feeds write them: in Berlin with its offset, in UTC, or naive (read as UTC)."""
    if row % 3 == 0:
        return time.tz_convert("Europe/Berlin").isoformat()
    if row % 3 == 1:
        return time.isoformat()
    return time.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sql_project(project: Project, query: str = QUERY, **source: Any) -> Project:
    """The project reading `query` from the database in the environment variable, described by
    the schema file with `segment`."""
    schema_path = "configs/events-schema.yaml"
    _sql_schema(project).to_yaml(project.root / schema_path)
    path = project.root / "configs" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"]["source"] = {
        "kind": "sql",
        "query": query,
        "schema_path": schema_path,
        **source,
    }
    config["train"]["slice_column"] = "region"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_project(path)


@pytest.fixture
def database(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite file holding the table, its URL in the environment variable."""
    path = tmp_path / "events.db"
    target = (
        "churned INTEGER"
        if project.config.train.task == "binary_classification"
        else "next_month_spend REAL"
    )
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(TABLE.format(target=target)))
            _sql_rows(project).to_sql("events", connection, if_exists="append", index=False)
    finally:
        engine.dispose()
    monkeypatch.setenv(URL_ENV, f"sqlite:///{path}")
    return path


@pytest.mark.answers
def test_ingest_reads_typed_rows_from_sql_and_quarantines_the_bad_ones_with_reasons(
    project: Project, database: Path
) -> None:
    project = _sql_project(project)
    raw, _ = load_source(project)
    assert pd.api.types.is_float_dtype(raw["segment"])  # integers with NULLs: floats
    assert raw["tenure_months"].map(type).isin([float, str]).all()  # 'unknown' among numbers

    result = ingest(project, now=NOW)

    assert result.rows_read == len(raw) == 2_000
    assert result.rows_valid + result.rows_quarantined == result.rows_read
    assert result.quarantine_file is not None
    quarantined = pd.read_parquet(result.quarantine_file)
    reasons = dict(zip(quarantined["source_row"], quarantined[REASON], strict=True))
    broken = {
        "plan: missing": raw["plan"].isna(),
        "event_time: missing": raw["event_time"].isna(),
        "support_tickets: 'many' is not a number": raw["support_tickets"].eq("many"),
        "segment: '7' is not a known category": raw["segment"].eq(7),
        "tenure_months: 'unknown' is not a number": raw["tenure_months"].eq("unknown"),
    }
    for reason, rows in broken.items():
        assert rows.any(), reason
        for row in raw.index[rows]:
            assert reason in reasons[row], reasons[row]

    snapshot = result.snapshot
    assert snapshot.manifest["source"] == f"sql(sqlite:///{database}: {QUERY})"
    train = snapshot.train
    assert str(train["event_time"].dt.tz) == "UTC"
    assert set(train["segment"].dropna()) == {"1", "2", "3"}  # 2.0 is the category "2"
    assert train["segment"].isna().any()
    valid_times = pd.concat([snapshot.train, snapshot.validation, snapshot.holdout])
    assert len(valid_times) == result.rows_valid
    expected = pd.to_datetime(
        raw["event_time"], utc=True, format="ISO8601", errors="coerce"
    ).dropna()
    assert valid_times["event_time"].min() >= expected.min()
    assert valid_times["event_time"].max() <= expected.max()


@pytest.mark.answers
@pytest.mark.usefixtures("database")
def test_the_cli_ingests_a_sql_source(project: Project) -> None:
    project = _sql_project(project)
    result = runner.invoke(app, ["ingest", "-c", str(project.root / "configs" / "project.yaml")])
    assert result.exit_code == 0, result.output
    assert "rows quarantined" in " ".join(result.output.split())


@pytest.mark.answers
def test_a_missing_url_variable_is_named_with_its_setting(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTS_DB_URL", raising=False)
    project = _sql_project(project, url_env="EVENTS_DB_URL")
    with pytest.raises(ConfigError) as refused:
        load_source(project)
    message = str(refused.value)
    assert "environment variable EVENTS_DB_URL" in message
    assert "data.source.url_env in configs/project.yaml" in message
    monkeypatch.setenv("EVENTS_DB_URL", "")  # an unset CI secret arrives empty
    with pytest.raises(ConfigError, match="EVENTS_DB_URL"):
        load_source(project)
    monkeypatch.setenv("EVENTS_DB_URL", "s3cret-not-a-url")
    with pytest.raises(ConfigError, match="holds no SQLAlchemy URL") as unparsable:
        load_source(project)
    assert "s3cret" not in str(unparsable.value)


@pytest.mark.answers
def test_a_failing_query_names_the_database_and_its_own_error(
    project: Project, database: Path
) -> None:
    project = _sql_project(project, query="SELECT * FROM no_such_table")
    with pytest.raises(DataError) as refused:
        load_source(project)
    message = str(refused.value)
    assert f"from sqlite:///{database} (the URL in {URL_ENV})" in message
    assert message.endswith("no such table: no_such_table")
    code = runner.invoke(app, ["ingest", "-c", str(project.root / "configs" / "project.yaml")])
    assert code.exit_code == 2
    assert "no such table: no_such_table" in code.output


@pytest.mark.answers
def test_an_unreachable_database_is_a_data_error(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, f"sqlite:///{tmp_path / 'no-such-folder' / 'events.db'}")
    with pytest.raises(DataError, match=r"no-such-folder/events.db .*: unable to open database"):
        load_source(_sql_project(project))


def test_a_database_is_shown_without_its_password() -> None:
    # Never connected: how the manifest and every message name a database.
    url = "postgresql+psycopg://etl:s3cret@db.example.com:5432/events?sslmode=require"
    assert shown_database(url) == (
        "postgresql+psycopg://etl:***@db.example.com:5432/events?sslmode=require"
    )
    in_query = shown_database("postgresql://db.example.com/events?user=etl&password=s3cret")
    assert "password=***" in in_query
    assert "s3cret" not in in_query


@pytest.mark.answers
@pytest.mark.usefixtures("database")
def test_a_query_that_repeats_a_column_name_is_refused_by_name(project: Project) -> None:
    """A database answers `SELECT *, region AS plan` with two columns named plan."""
    project = _sql_project(project, "SELECT *, region AS plan FROM events")
    with pytest.raises(DataError, match=r"column names repeat: 'plan' \(columns 7, 12\)"):
        load_source(project)
    result = runner.invoke(app, ["ingest", "-c", str(project.root / "configs" / "project.yaml")])
    assert result.exit_code == ExitCode.ERROR
    assert "data.source.query" in " ".join(result.output.split())
