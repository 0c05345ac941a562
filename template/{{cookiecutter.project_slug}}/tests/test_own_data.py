"""A team's own table, each way it tripped a new user planted on purpose: no id column, a label
outside its domain, a table sorted by label, extra columns, a small holdout, a config kept
elsewhere, and the decision records people read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import ConfigError, DemoSourceConfig, Project, Task, load_project
from {{ cookiecutter.package_name }}.data import (
    REASON,
    ROW_KEY,
    ColumnSpec,
    DataError,
    DataSchema,
    demo_schema,
    generate_demo,
    ingest,
    project_schema,
    validate,
    write_table,
)
from {{ cookiecutter.package_name }}.loop import retrain
from {{ cookiecutter.package_name }}.monitor import monitor
from {{ cookiecutter.package_name }}.promote import Outcome, ab_report, promote
from {{ cookiecutter.package_name }}.promote.record import write_record
from {{ cookiecutter.package_name }}.train import train

from .conftest import ROOT, file_source, first_champion, running, write_project

NOW = datetime(2026, 1, 1, tzinfo=UTC)
runner = CliRunner()


def _without_id(task: Task) -> DataSchema:
    schema = demo_schema(task)
    return DataSchema(columns=tuple(c for c in schema.columns if c.role != "id"))


def _file_project(
    project: Project, frame: pd.DataFrame, schema: DataSchema, **sections: Any
) -> Project:
    """The project reading `frame` from data/raw/table.csv with `schema`."""
    return file_source(project, "data/raw/table.csv", frame=frame, schema=schema, **sections)


def _demo(project: Project, rows: int = 1_500) -> pd.DataFrame:
    start = NOW.date() - timedelta(days=60)
    config = DemoSourceConfig(rows=rows, invalid_fraction=0.0, start=start, days=50)
    return generate_demo(config, project.config.train.task)


def _cli(project: Project, *args: str) -> tuple[int, str]:
    config = str(project.root / "configs" / "project.yaml")
    result = runner.invoke(app, [*args, "-c", config])
    return result.exit_code, " ".join(result.output.split())


# 1. No id column: rows are keyed by their features, and duplicates are found on that key.
@pytest.mark.answers
def test_a_table_without_an_id_gets_row_keys_and_its_duplicates_found(project: Project) -> None:
    task = project.config.train.task
    schema = _without_id(task).for_task(task)
    frame = _demo(project, 300).drop(columns=["customer_id"])
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # the same row twice
    result = validate(frame, schema, now=NOW)
    assert result.valid[ROW_KEY].str.fullmatch(r"[0-9a-f]{16}").all()
    assert result.quarantined[REASON].tolist() == [
        "duplicate: same features and timestamp as an earlier row"
    ]
    assert len(result.valid) + len(result.quarantined) == len(frame)


# 7. A binary label outside the declared classes is quarantined, with its reason.
@pytest.mark.answers
def test_labels_outside_the_targets_domain_are_quarantined(project: Project) -> None:
    if project.config.train.task != "binary_classification":
        pytest.skip("binary labels: the project is a regressor")
    frame = _demo(project, 300)
    frame["churned"] = frame["churned"].astype(object)
    frame.loc[3, "churned"] = 2
    frame.loc[4, "churned"] = 0.5
    frame.loc[5, "churned"] = "yes"
    schema = demo_schema("binary_classification")
    result = validate(frame, schema, now=NOW)
    reasons = dict(zip(result.quarantined["source_row"], result.quarantined[REASON], strict=True))
    assert reasons == {
        row: f"churned: {shown} is not one of the classes ['0', '1']"
        for row, shown in ((3, "2"), (4, "0.5"), (5, "'yes'"))
    }
    assert set(result.valid["churned"].unique()) <= {0.0, 1.0}


def test_string_classes_become_zero_and_one_with_the_positive_named() -> None:
    target = ColumnSpec(name="diagnosis", role="target", classes=("benign", "malignant"))
    assert target.positive_class == "malignant"
    assert (target.label("malignant"), target.label("benign"), target.label("other")) == (
        1.0,
        0.0,
        None,
    )
    numeric = ColumnSpec(name="y", role="target", classes=("0", "1"), positive="0")
    assert (numeric.label(0), numeric.label(1.0), numeric.label("1")) == (1.0, 0.0, 0.0)


@pytest.mark.answers
def test_a_retrain_stopped_by_bad_labels_still_writes_its_record(project: Project) -> None:
    frame = _demo(project, 300)
    frame[frame.columns[-1]] = "garbage"  # every label unusable
    bad = _file_project(project, frame, demo_schema(project.config.train.task))
    decision = retrain(bad, dry_run=True)
    assert decision.outcome == Outcome.ERROR
    assert "stopped at ingest" in decision.reason
    assert json.loads(decision.record_path.read_text(encoding="utf-8"))["outcome"] == "error"


# 4. A table sorted by label leaves a split one-sided: ingest says so, with the counts.
@pytest.mark.answers
def test_a_one_sided_split_is_refused_at_ingest_with_the_counts(project: Project) -> None:
    task = project.config.train.task
    frame = _demo(project, 1_500).sort_values("event_time").reset_index(drop=True)
    target = demo_schema(task).target.name
    if task == "binary_classification":
        frame.loc[frame.index[-300:], target] = 0  # the newest rows: one class only
        expected = r"holdout split\(s\) lack a class .*holdout: class 0: \d+\)"
    elif task == "multiclass_classification":
        frame.loc[frame.index[-300:], target] = "stay"  # the newest rows: one class only
        expected = r"holdout split\(s\) lack a class of plan_change .*'cancel': 0 in holdout"
    else:
        frame.loc[frame.index[-300:], target] = 42.0  # the newest rows: a constant target
        expected = r"constant in the holdout split"
    sorted_project = _file_project(project, frame, demo_schema(task))
    with pytest.raises(DataError, match=expected):
        ingest(sorted_project, now=NOW)


# 6. Columns the schema leaves out are listed, not silently ignored.
@pytest.mark.answers
def test_columns_the_schema_leaves_out_are_listed_at_ingest(project: Project) -> None:
    frame = _demo(project).assign(notes="free text", internal_score=1.0)
    extra = _file_project(project, frame, demo_schema(project.config.train.task))
    assert ingest(extra, now=NOW).ignored_columns == ("notes", "internal_score")
    code, output = _cli(extra, "ingest")
    assert code == 0, output
    assert "ignored columns the schema does not list: notes, internal_score" in output


# 11. A holdout too small for the gate ever to promote is announced at ingest, with the numbers.
@pytest.mark.answers
def test_ingest_warns_when_the_holdout_can_never_pass_the_gate(project: Project) -> None:
    small = write_project(project.root, {"promotion": {"min_holdout_rows": 1_000}}, rows=2_000)
    result = ingest(small, now=NOW)
    (warning,) = result.warnings
    holdout = result.snapshot.manifest["parts"]["holdout"]["rows"]
    assert f"the holdout has {holdout} rows and the gate needs at least 1000" in warning
    assert "promotion.min_holdout_rows in configs/project.yaml" in warning
    code, output = _cli(small, "ingest")
    assert code == 0
    assert "warning: the holdout has" in output


@pytest.mark.answers
def test_the_decision_record_gives_the_minimum_detectable_effect(project: Project) -> None:
    ingest(project, now=NOW)
    first_champion(project)
    train(project, family="baseline")
    decision = promote(project)
    test = decision.record["test"]
    assert test["minimum_detectable_effect"] > 0
    assert test["effect_scale"] == project.config.gate_metric
    markdown = decision.record_path.with_suffix(".md").read_text(encoding="utf-8")
    assert "| minimum_detectable_effect |" in markdown


# 12. Monitoring names the reference it compares with.
@pytest.mark.answers
def test_monitor_names_its_reference(project: Project) -> None:
    ingest(project, now=NOW)
    first_champion(project)
    window = project.root / "window.parquet"
    shifted = generate_demo(DemoSourceConfig(rows=800, seed=3), project.config.train.task)
    shifted.loc[shifted.index[:300], "monthly_spend"] = 5_000.0  # in the schema, not in the data
    write_table(shifted, window)
    result = monitor(project, source=window, now=NOW + timedelta(days=90))
    reference = result.summary["reference"]
    assert reference["kind"] == "unseen"
    assert "validation and holdout rows of snapshot" in reference["description"]
    assert any("outside the range of the validation and holdout rows" in r for r in result.reasons)
    training = write_project(project.root, {"monitor": {"reference": "training"}})
    again = monitor(training, source=window, now=NOW + timedelta(days=90))
    assert "the training split of snapshot" in again.summary["reference"]["description"]


# 13. The root comes from the project's own files; absolute paths in the config work.
@pytest.mark.answers
def test_a_config_elsewhere_and_an_absolute_reports_dir_work(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(project, now=NOW)
    first_champion(project)
    reports = tmp_path / "shared-reports"
    config = yaml.safe_load((project.root / "configs" / "project.yaml").read_text(encoding="utf-8"))
    config["paths"] = {"reports_dir": str(reports)}
    elsewhere = tmp_path / "elsewhere" / "staging.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(project.root)
    staged = load_project(elsewhere)
    assert staged.root == project.root
    window = project.root / "window.parquet"
    write_table(_demo(project, 400), window)
    result = runner.invoke(app, ["monitor", "-c", str(elsewhere), "--source", str(window)])
    assert result.exit_code in (0, 1, 3), result.output
    assert not (elsewhere.parent / "mlflow.db").exists()
    assert list((reports / "monitor").glob("*.json"))
    flag = json.loads((reports / "retrain.json").read_text(encoding="utf-8"))
    assert flag["summary"].startswith(str(reports))


# 14. Decision records for people: no "-0", no raw mappings.
def test_decision_records_read_as_prose_and_tables(tmp_path: Path) -> None:
    record = {
        "kind": "promotion",
        "outcome": "rejected",
        "reason": "r",
        "model": "m",
        "decided_at": "t",
        "data": {"snapshot_id": "s", "holdout_rows": 10, "time_range": ["a", "b"]},
        "primary": {"metric": "roc_auc", "improvement": -0.0, "champion": 0.7},
    }
    markdown = write_record(tmp_path, record).with_suffix(".md").read_text(encoding="utf-8")
    assert "- time range: a to b" in markdown
    assert "| improvement | 0 |" in markdown
    assert "-0" not in markdown
    assert "{" not in markdown


# 8 and 9. The service refuses a label outside the target's domain and a timestamp that is not
# one, naming the field; an integer id is an id.
@pytest.mark.answers
def test_the_service_checks_labels_timestamps_and_ids(project: Project) -> None:
    served = write_project(project.root, {"serve": {"flush_seconds": 0.1}})
    ingest(served, now=NOW)
    first_champion(served)
    row = _demo(served, 200).drop(columns=[project_schema(served).target.name]).iloc[0]
    body: dict[str, Any] = {
        str(k): (None if pd.isna(v) else v) for k, v in row.to_dict().items() if k != "event_time"
    }
    body["tenure_months"] = float(body["tenure_months"])
    with running(served) as client:
        assert client.post("/predict", json=body | {"customer_id": 42}).status_code == 200
        refused = client.post("/predict", json=body | {"event_time": "yesterday"})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "event_time"]
        answer = client.post("/predict", json=body | {"event_time": "2026-01-01T10:00:00Z"})
        assert answer.status_code == 200
        bad_label = 7 if served.config.train.task == "binary_classification" else -5.0
        feedback = {"prediction_id": answer.json()["prediction_id"], "label": bad_label}
        refused = client.post("/feedback", json=feedback)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"][:2] == ["body", "label"]


# 2. The schema file's format is documented in the project itself, every key of it.
@pytest.mark.answers
def test_the_project_documents_every_key_of_the_schema_file() -> None:
    guide = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    assert [key for key in ColumnSpec.model_fields if f"`{key}`" not in guide] == []
    assert "docs/data.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# 3 and 11. Every minimum names its setting and the file it is set in.
@pytest.mark.answers
def test_the_window_and_sample_minimums_name_their_settings(project: Project) -> None:
    ingest(project, now=NOW)
    first_champion(project)
    window = project.root / "window.parquet"
    write_table(_demo(project, 200).head(50), window)
    result = monitor(project, source=window, now=NOW)
    assert result.status == "insufficient_data"
    assert "below monitor.min_window_rows = 200 in configs/project.yaml" in result.reasons[0]
    decision = ab_report(project)
    assert decision.outcome == Outcome.KEEP_COLLECTING
    assert "below promotion.online.min_samples_per_variant = 500 in configs/project.yaml" in (
        decision.reason
    )


# A table without the demo's `region`, with the demo's slice column still configured: refused by
# name when the schema is read (at ingest), not a KeyError at the end of a training run.
@pytest.mark.answers
def test_a_slice_column_the_table_lacks_is_refused_naming_the_setting(project: Project) -> None:
    task = project.config.train.task
    schema = demo_schema(task)
    schema = DataSchema(columns=tuple(c for c in schema.columns if c.name != "region"))
    frame = _demo(project, 300).drop(columns=["region"])
    lacking = _file_project(project, frame, schema, train={"slice_column": "region"})
    message = "train.slice_column in configs/project.yaml is 'region', which is not a categorical"
    with pytest.raises(ConfigError, match=message):
        ingest(lacking, now=NOW)
    code, output = _cli(lacking, "ingest")
    assert code == 2
    assert message in output
    assert "set it to one of them (plan, channel)" in output
    assert not lacking.snapshots_dir.exists()
    chosen = _file_project(project, frame, schema, train={"slice_column": "plan"})
    assert project_schema(chosen).categorical_features == ["plan", "channel"]
