from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import (
    DemoSourceConfig,
    Project,
    SplitConfig,
    Task,
    load_project,
    parse_config,
)
from {{ cookiecutter.package_name }}.data import (
    REASON,
    DataError,
    content_hash,
    demo_schema,
    generate_demo,
    ingest,
    read_snapshot,
    read_table,
    time_split,
    validate,
    write_table,
)

from .conftest import ROOT, MakeProject

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

TASK: Task = load_project(ROOT / "configs" / "project.yaml").config.train.task
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _clean(rows: int = 2_000, **knobs: float) -> pd.DataFrame:
    return generate_demo(DemoSourceConfig(rows=rows, invalid_fraction=0.0, **knobs), TASK)


def test_the_demo_is_deterministic_for_a_seed() -> None:
    assert content_hash(_clean()) == content_hash(_clean())
    assert content_hash(_clean()) != content_hash(
        generate_demo(DemoSourceConfig(rows=2_000, seed=8, invalid_fraction=0.0), TASK)
    )


def test_clean_demo_rows_all_pass_the_schema() -> None:
    result = validate(_clean(), demo_schema(TASK), now=NOW)
    assert result.quarantined.empty
    assert len(result.valid) == 2_000


def test_covariate_shift_moves_the_feature_distributions() -> None:
    before, after = _clean(), _clean(covariate_shift=1.0)
    assert after["support_tickets"].mean() > 1.5 * before["support_tickets"].mean()
    assert (after["plan"] == "basic").mean() > (before["plan"] == "basic").mean()


def test_concept_shift_changes_how_features_relate_to_the_target() -> None:
    target = demo_schema(TASK).target.name
    before, after = _clean(rows=8_000), _clean(rows=8_000, concept_shift=1.0)
    assert before.drop(columns=target).equals(after.drop(columns=target))
    assert not before[target].equals(after[target])


def test_invalid_rows_are_quarantined_with_a_reason_never_dropped() -> None:
    raw = generate_demo(DemoSourceConfig(rows=4_000, invalid_fraction=0.05), TASK)
    result = validate(raw, demo_schema(TASK), now=NOW)
    assert len(result.valid) + len(result.quarantined) == len(raw)
    assert len(result.quarantined) > 100
    reasons = " ".join(result.quarantined[REASON])
    for expected in (
        "below the minimum",
        "not a known category",
        "is not a number",
        "above the maximum",
    ):
        assert expected in reasons
    assert result.quarantined[REASON].str.len().gt(0).all()


def test_duplicates_future_rows_and_missing_required_values_are_quarantined() -> None:
    raw = _clean(rows=300).astype({"tenure_months": object})
    schema = demo_schema(TASK)
    raw = pd.concat([raw, raw.iloc[[5]]], ignore_index=True)
    raw.loc[10, "event_time"] = pd.Timestamp("2030-01-01", tz="UTC")
    raw.loc[11, "tenure_months"] = None
    result = validate(raw, schema, now=NOW)
    reasons = dict(zip(result.quarantined["source_row"], result.quarantined[REASON], strict=True))
    assert reasons == {
        10: "event_time: in the future",
        11: "tenure_months: missing",
        300: "duplicate: same id and timestamp as an earlier row",
    }


def test_whole_file_problems_are_errors_that_name_the_problem() -> None:
    schema = demo_schema(TASK)
    with pytest.raises(DataError, match="lacks required columns: plan"):
        validate(_clean(rows=300).drop(columns=["plan"]), schema, now=NOW)
    with pytest.raises(DataError, match="no rows"):
        validate(_clean(rows=300).iloc[0:0], schema, now=NOW)


def test_extra_columns_are_reported_not_silently_kept() -> None:
    raw = _clean(rows=300).assign(comment="x")
    assert validate(raw, demo_schema(TASK), now=NOW).ignored_columns == ("comment",)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_round_trips_through_validation(tmp_path: Path, suffix: str) -> None:
    raw = generate_demo(DemoSourceConfig(rows=1_000, invalid_fraction=0.02), TASK)
    path = tmp_path / f"events{suffix}"
    write_table(raw, path)
    from_file = validate(read_table(path), demo_schema(TASK), now=NOW)
    in_memory = validate(raw, demo_schema(TASK), now=NOW)
    assert len(from_file.valid) == len(in_memory.valid)
    assert list(from_file.quarantined[REASON]) == list(in_memory.quarantined[REASON])


def test_reading_a_missing_or_unknown_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "data.txt").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"expected \.csv or \.parquet"):
        read_table(tmp_path / "data.txt")


def test_the_time_split_never_puts_later_rows_in_training() -> None:
    valid = validate(_clean(), demo_schema(TASK), now=NOW).valid
    split = time_split(
        valid, "event_time", SplitConfig(validation_fraction=0.2, holdout_fraction=0.1)
    )
    assert split.train["event_time"].max() < split.validation["event_time"].min()
    assert split.validation["event_time"].max() < split.holdout["event_time"].min()
    assert len(split.train) + len(split.validation) + len(split.holdout) == len(valid)
    assert len(split.holdout) == pytest.approx(0.1 * len(valid), rel=0.05)


def test_a_split_with_too_few_timestamps_fails() -> None:
    valid = validate(_clean(rows=300), demo_schema(TASK), now=NOW).valid
    valid["event_time"] = valid["event_time"].iloc[0]
    with pytest.raises(DataError, match="too few distinct timestamps"):
        time_split(valid, "event_time", SplitConfig())


def test_ingest_writes_a_hashed_snapshot_and_a_quarantine_file(project: Project) -> None:
    result = ingest(project, now=NOW)
    snapshot = read_snapshot(project.snapshots_dir)
    assert snapshot.snapshot_id == result.snapshot.snapshot_id
    assert result.rows_valid + result.rows_quarantined == result.rows_read == 3_000
    assert result.quarantine_file is not None
    quarantined = pd.read_parquet(result.quarantine_file)
    assert len(quarantined) == result.rows_quarantined
    for part in ("train", "validation", "holdout"):
        assert snapshot.digest(part) == content_hash(pd.read_parquet(snapshot.path(part)))
    assert snapshot.manifest["rows_valid"] == sum(
        snapshot.manifest["parts"][part]["rows"] for part in ("train", "validation", "holdout")
    )


def test_a_tampered_snapshot_is_refused(project: Project) -> None:
    snapshot = ingest(project, now=NOW).snapshot
    frame = pd.read_parquet(snapshot.path("holdout"))
    frame["tenure_months"] = frame["tenure_months"] + 1
    frame.to_parquet(snapshot.path("holdout"), index=False)
    with pytest.raises(DataError, match="does not match its hash"):
        read_snapshot(project.snapshots_dir)


def test_ingest_refuses_too_few_valid_rows(make_project: MakeProject) -> None:
    project = make_project(rows=200, invalid_fraction=0.3)
    with pytest.raises(DataError, match=r"below data.min_training_rows = 200 in configs"):
        ingest(project, now=NOW)


def test_the_file_source_reads_its_schema_file(project: Project) -> None:
    write_table(generate_demo(DemoSourceConfig(rows=1_500), TASK), project.root / "raw.parquet")
    demo_schema(TASK).to_yaml(project.root / "configs" / "schema.yaml")
    config = project.config.model_dump(mode="json")
    config["data"]["source"] = {
        "kind": "file",
        "path": "raw.parquet",
        "schema_path": "configs/schema.yaml",
    }
    result = ingest(Project(root=project.root, config=parse_config(config)), now=NOW)
    assert result.rows_read == 1_500
    assert result.snapshot.manifest["source"] == "file(raw.parquet)"
