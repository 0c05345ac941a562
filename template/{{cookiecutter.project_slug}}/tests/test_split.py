"""The three splits (`data.split.strategy`): their fractions, exact stratification, entities that
never cross, draws that stay put as a table grows, the refusals that name the strategies, what
the snapshot and the decision records say the holdout is, and what the gate counts as a holdout
row the challenger learned from. Two real tables from statsmodels: one with an entity column,
one sorted by its label."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import (
    ConfigError,
    DemoSourceConfig,
    Project,
    SplitConfig,
    Task,
    load_project,
)
from {{ cookiecutter.package_name }}.data import (
    PARTS,
    DataError,
    DataSchema,
    demo_schema,
    generate_demo,
    ingest,
    read_snapshot,
    split_rows,
    validate,
    write_table,
)
from {{ cookiecutter.package_name }}.data.split import row_names
from {{ cookiecutter.package_name }}.promote import Evidence, Outcome, decide, promote
from {{ cookiecutter.package_name }}.promote.promotion import _holdout_overlap
from {{ cookiecutter.package_name }}.train import train

from .conftest import ROOT, file_source, first_champion, write_project
from .test_real_data import own_project

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

TASK: Task = load_project(ROOT / "configs" / "project.yaml").config.train.task
CLASSIFIER = TASK == "binary_classification"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
runner = CliRunner()


def _valid(rows: int = 3_000, task: Task = TASK) -> tuple[pd.DataFrame, DataSchema]:
    schema = demo_schema(task)
    config = DemoSourceConfig(rows=rows, invalid_fraction=0.0)
    return validate(generate_demo(config, task), schema, now=NOW).valid, schema


def _places(frame: pd.DataFrame, schema: DataSchema, config: SplitConfig) -> pd.Series:
    """Each row's split, by row name."""
    parts = split_rows(frame, schema, config, TASK).parts()
    return pd.concat(
        [pd.Series(name, index=row_names(part, schema)) for name, part in parts.items()]
    )


def _rounded(count: int, fraction: float) -> int:
    return math.floor(count * fraction + 0.5)


def _with_split(project: Project, **split: Any) -> Project:
    """The project with `data.split` settings changed in its configuration file."""
    path = project.root / "configs" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"]["split"] = {**config["data"].get("split", {}), **split}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_project(path)


def _cli(project: Project, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "-c", str(project.root / "configs" / "project.yaml")])
    return result.exit_code, " ".join(result.output.split())


def test_the_project_documents_every_split_setting_and_strategy() -> None:
    guide = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    shipped = yaml.safe_load((ROOT / "configs" / "project.yaml").read_text(encoding="utf-8"))
    for key in SplitConfig.model_fields:
        assert f"    {key}: " in guide, key
        assert key in shipped["data"]["split"], key
    for strategy in ("time", "random", "group"):
        assert f"| `{strategy}`" in guide, strategy


def test_time_is_the_default_and_keeps_the_newest_rows_for_the_holdout() -> None:
    frame, schema = _valid()
    assert SplitConfig().strategy == "time"
    split = split_rows(frame, schema, SplitConfig(), TASK)
    assert split.train["event_time"].max() < split.holdout["event_time"].min()


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_random_cuts_exact_fractions_stratified_by_class_for_a_classifier(task: Task) -> None:
    frame, schema = _valid(task=task)
    config = SplitConfig(strategy="random", validation_fraction=0.2, holdout_fraction=0.1)
    split = split_rows(frame, schema, config, task)
    assert sum(len(part) for part in split.parts().values()) == len(frame)
    target = schema.target.name
    strata = frame[target] if task == "binary_classification" else pd.Series(0, frame.index)
    for value, rows in strata.value_counts().items():
        for part, fraction in ((split.holdout, 0.1), (split.validation, 0.2)):
            of_class = part if task == "regression" else part[part[target] == value]
            assert len(of_class) == _rounded(rows, fraction)
    # Not by time: the holdout's rows span the whole table.
    assert split.holdout["event_time"].min() < split.train["event_time"].max()


def test_group_keeps_every_entity_in_one_split_and_cuts_the_entities() -> None:
    frame, schema = _valid()
    split = split_rows(frame, schema, SplitConfig(strategy="group"), TASK)
    entities = {name: set(part["customer_id"]) for name, part in split.parts().items()}
    for one, other in combinations(entities.values(), 2):
        assert not one & other
    count = frame["customer_id"].nunique()
    assert len(entities["holdout"]) == _rounded(count, 0.15)
    assert len(entities["validation"]) == _rounded(count, 0.15)
    assert sum(len(part) for part in split.parts().values()) == len(frame)
    by_plan = SplitConfig(strategy="group", group_column="plan")  # three plans: 0.15 of 3 is 0
    with pytest.raises(DataError, match="too few plan values to split: validation, holdout would"):
        split_rows(frame, schema, by_plan, TASK)


@pytest.mark.parametrize("strategy", ["random", "group"])
def test_a_draw_is_seeded_and_ignores_the_row_order(strategy: str) -> None:
    frame, schema = _valid()
    config = SplitConfig(strategy=strategy)
    places = _places(frame, schema, config)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert _places(shuffled, schema, config).sort_index().equals(places.sort_index())
    again = _places(frame, schema, config.model_copy(update={"seed": 0}))
    assert again.sort_index().equals(places.sort_index())
    other = _places(frame, schema, config.model_copy(update={"seed": 1}))
    assert (other.sort_index() != places.sort_index()).mean() > 0.2


@pytest.mark.parametrize("strategy", ["random", "group"])
def test_a_row_keeps_its_split_as_the_table_grows(strategy: str) -> None:
    """Appending the newest 10% of the rows moves a few rows near a cut to the neighbouring
    split, and never a training row to the holdout or back."""
    frame, schema = _valid()
    config = SplitConfig(strategy=strategy)
    before = _places(frame.head(2_700), schema, config)
    after = _places(frame, schema, config)[before.index]
    assert (before == after).mean() > 0.98
    moved = pd.crosstab(before, after)
    assert moved.loc["train"].get("holdout", 0) == 0
    assert moved.loc["holdout"].get("train", 0) == 0


def _sorted_by_label(rows: int = 1_500) -> pd.DataFrame:
    """The demo's rows with the target sorted ascending over time: the newest rows are all
    positives (a classifier) or the largest values (a regressor)."""
    start = NOW.date() - timedelta(days=60)
    config = DemoSourceConfig(rows=rows, invalid_fraction=0.0, start=start, days=50)
    frame = generate_demo(config, TASK).sort_values("event_time").reset_index(drop=True)
    target = demo_schema(TASK).target.name
    frame[target] = frame[target].sort_values().to_numpy()
    if not CLASSIFIER:
        frame.loc[frame.index[-600:], target] = 42.0  # the newest rows: a constant target
    return frame


def test_a_one_sided_time_split_names_the_other_strategies_and_random_ingests(
    project: Project,
) -> None:
    frame = _sorted_by_label()
    sorted_project = file_source(
        project, "data/raw/table.csv", frame=frame, schema=demo_schema(TASK)
    )
    expected = "lack a class" if CLASSIFIER else "is constant in the validation, holdout split"
    with pytest.raises(DataError, match=expected) as refused:
        ingest(sorted_project, now=NOW)
    message = str(refused.value)
    assert "(data.split.strategy: time)" in message
    assert "set data.split.strategy: random (rows drawn at random" in message
    assert "or group (whole entities, data.split.group_column)" in message
    random = _with_split(sorted_project, strategy="random")
    holdout = ingest(random, now=NOW).snapshot.holdout[demo_schema(TASK).target.name]
    assert holdout.nunique() >= 2


@pytest.mark.parametrize(
    ("strategy", "remedy"),
    [
        ("random", "or set data.split.strategy: time or group (whole entities"),
        ("group", "set data.split.strategy: random (rows drawn at random"),
    ],
)
def test_a_one_sided_draw_names_the_strategy_and_the_others(
    project: Project, strategy: str, remedy: str
) -> None:
    """Two rows of the rarer class (or of another value) cannot reach all three splits."""
    target = demo_schema(TASK).target.name
    start = NOW.date() - timedelta(days=60)
    config = DemoSourceConfig(rows=1_500, invalid_fraction=0.0, start=start, days=50)
    frame = generate_demo(config, TASK)
    frame[target] = 0 if CLASSIFIER else 10.0
    frame.loc[frame.index[:2], target] = 1 if CLASSIFIER else 20.0
    rare = file_source(project, "data/raw/table.csv", frame=frame, schema=demo_schema(TASK))
    with pytest.raises(DataError) as refused:
        ingest(_with_split(rare, strategy=strategy), now=NOW)
    message = str(refused.value)
    assert ("lack a class" if CLASSIFIER else f"the target {target} is constant") in message
    assert f"(data.split.strategy: {strategy}, seed 0)" in message
    assert remedy in message


def test_a_group_split_refuses_a_schema_without_an_entity_column(project: Project) -> None:
    schema = demo_schema(TASK)
    without_id = DataSchema(columns=tuple(c for c in schema.columns if c.role != "id"))
    frame = generate_demo(DemoSourceConfig(rows=1_000), TASK).drop(columns=["customer_id"])
    lacking = file_source(project, "data/raw/table.csv", frame=frame, schema=without_id)
    lacking = _with_split(lacking, strategy="group")
    with pytest.raises(ConfigError) as refused:
        ingest(lacking, now=NOW)
    assert "data.split.strategy in configs/project.yaml is group" in str(refused.value)
    assert "set data.split.group_column to the column that names each entity" in str(refused.value)
    assert "(support_tickets, plan, region, channel)" in str(refused.value)
    code, output = _cli(lacking, "ingest")
    assert code == 2
    assert "data.split.group_column is not set" in output
    code, output = _cli(
        lacking,
        *("schema", "infer", str(lacking.root / "data" / "raw" / "table.csv")),
        *("--target", schema.target.name, "--timestamp", "event_time"),
        *("--out", str(lacking.root / "configs" / "inferred.yaml")),
    )
    assert code == 0, output
    assert "and data.split.strategy in configs/project.yaml is group, but" in output
    target = _with_split(lacking, group_column=schema.target.name)
    with pytest.raises(ConfigError, match=r"group_column in configs/project.yaml is '\w+', the "):
        ingest(target, now=NOW)
    # Four regions and the rows without one: 1 in the holdout, 2 in validation, 2 in train.
    by_region = _with_split(lacking, group_column="region", validation_fraction=0.3)
    snapshot = ingest(by_region, now=NOW).snapshot
    assert snapshot.split["group_column"] == "region"
    assert snapshot.split["groups"] == {"train": 2, "validation": 2, "holdout": 1}


@pytest.mark.parametrize("strategy", ["time", "random", "group"])
def test_the_snapshot_records_the_split_and_what_its_holdout_means(
    project: Project, strategy: str
) -> None:
    chosen = _with_split(project, strategy=strategy, seed=3)
    split = ingest(chosen, now=NOW).snapshot.split
    assert split["strategy"] == strategy
    assert split["holdout_fraction"] == 0.15
    holdout = {
        "time": "the newest 15% of the rows by event_time: the model is judged on rows later",
        "random": "15% of the rows drawn at random"
        + (", stratified by class" if CLASSIFIER else "")
        + " (seed 3), not the newest: drift over time is not measured",
        "group": "15% of the customer_id values drawn at random (seed 3), every row of each: "
        "no customer_id is in two splits",
    }[strategy]
    assert split["holdout"].startswith(holdout)
    if strategy == "group":
        assert split["group_column"] == "customer_id"
        assert set(split["groups"]) == {"train", "validation", "holdout"}
    code, output = _cli(chosen, "ingest")
    assert code == 0, output
    assert f"the holdout: {holdout}" in output


@pytest.mark.parametrize("strategy", ["time", "random", "group"])
def test_the_overlap_counts_holdout_rows_the_challenger_learned_from(
    project: Project, strategy: str
) -> None:
    """Gated on its own snapshot, a challenger learned from no holdout row, whatever the split;
    on a snapshot drawn with another seed, it learned from most of them."""
    first = _with_split(project, strategy=strategy)
    trained_on = ingest(first, now=NOW).snapshot
    assert _holdout_overlap(first, trained_on, trained_on.snapshot_id) == 0
    if strategy == "time":
        return
    reseeded = _with_split(project, strategy=strategy, seed=1)
    newest = ingest(reseeded, now=NOW + timedelta(seconds=1)).snapshot
    overlap = _holdout_overlap(reseeded, newest, trained_on.snapshot_id)
    learned = pd.concat([trained_on.train, trained_on.validation])
    if strategy == "group":
        expected = newest.holdout["customer_id"].isin(set(learned["customer_id"])).sum()
    else:
        expected = (
            row_names(newest.holdout, newest.schema)
            .isin(set(row_names(learned, trained_on.schema)))
            .sum()
        )
    assert overlap == expected > len(newest.holdout) / 2


@pytest.mark.parametrize(
    ("strategy", "column", "reason"),
    [
        ("time", None, "3 holdout rows of snapshot s are not later than the data"),
        ("random", None, "3 holdout rows of snapshot s are rows challenger v2 learned from"),
        ("group", "customer_id", "3 holdout rows of snapshot s belong to customer_id values"),
    ],
)
def test_the_gate_says_what_overlap_means_under_each_split(
    project: Project, strategy: str, column: str | None, reason: str
) -> None:
    evidence = Evidence(
        model="m",
        challenger="2",
        champion="1",
        snapshot_id="s",
        holdout_rows=1_000,
        holdout_overlap=3,
        split_strategy=strategy,
        group_column=column,
    )
    verdict = decide(evidence, project.config)
    assert verdict.outcome == Outcome.ERROR
    assert reason in verdict.reason


@pytest.mark.e2e
def test_decision_records_say_what_the_holdout_is_and_a_reseeded_holdout_is_refused(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, {"data": {"split": {"strategy": "random"}}})
    ingest(project)
    first_champion(project)
    train(project, family="baseline")
    decision = promote(project)
    assert decision.outcome != Outcome.ERROR, decision.reason
    record = json.loads(decision.record_path.read_text(encoding="utf-8"))
    drawn = "15% of the rows drawn at random" + (", stratified by class" if CLASSIFIER else "")
    assert record["data"]["holdout"].startswith(f"{drawn} (seed 0)")
    assert record["data"]["split"]["strategy"] == "random"
    markdown = decision.record_path.with_suffix(".md").read_text(encoding="utf-8")
    assert f"- holdout: {drawn} (seed 0)" in markdown
    assert "- split: strategy: random;" in markdown

    reseeded = write_project(tmp_path, {"data": {"split": {"strategy": "random", "seed": 1}}})
    ingest(reseeded)
    refused = promote(reseeded)
    assert refused.outcome == Outcome.ERROR
    assert "are rows challenger v2 learned from" in refused.reason
    assert "(data.split.strategy: random)" in refused.reason


# Real tables, each shipped inside statsmodels and driven through the CLI as a user would.


def test_a_table_of_entities_splits_by_entity_from_schema_infer(tmp_path: Path) -> None:
    """statsmodels' travel mode choice: 210 travellers, 4 rows each (one per mode, the chosen
    one 1), given a timestamp by row order. Each traveller lands in one split, whole."""
    table = sm.datasets.modechoice.load_pandas().data.astype({"individual": int, "mode": int})
    table["choice"] = table["choice"].astype(int)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    table["asked_at"] = [(start + timedelta(hours=i)).isoformat() for i in range(len(table))]
    project, data = own_project(tmp_path)
    write_table(table, data)
    project = _with_split(project, strategy="group")
    code, output = _cli(
        project,
        *("schema", "infer", str(data), "--target", "choice", "--timestamp", "asked_at"),
        *("--id", "individual"),
    )
    assert code == 0, output
    code, output = _cli(project, "ingest")
    assert code == 0, output
    assert "the holdout: 15% of the individual values drawn at random (seed 0)" in output
    snapshot = read_snapshot(project.snapshots_dir)
    parts = {name: getattr(snapshot, name) for name in PARTS}
    travellers = {name: set(part["individual"]) for name, part in parts.items()}
    for one, other in combinations(travellers.values(), 2):
        assert not one & other
    assert sum(len(found) for found in travellers.values()) == 210
    assert snapshot.split["groups"] == {"train": 146, "validation": 32, "holdout": 32}
    assert all(len(part) == 4 * len(travellers[name]) for name, part in parts.items())
    # Trained, then gated: the decision record says how the holdout was drawn, and the gate
    # finds no traveller of the holdout among the challenger's training rows.
    for command in ("train", "retrain"):
        code, output = _cli(project, command)
        assert code in (0, 1, 3), output  # 3: 128 holdout rows, keep collecting
    record = json.loads(sorted(project.promotion_reports_dir.glob("*.json"))[-1].read_text())
    assert record["data"]["split"]["strategy"] == "group"
    assert "no individual is in two splits" in record["data"]["holdout"]
    assert "cross the split" not in record["reason"]


def test_a_survey_sorted_by_its_label_is_refused_by_time_and_ingests_at_random(
    tmp_path: Path,
) -> None:
    """statsmodels' affairs survey (6,366 answers), as shipped: every answer with affairs comes
    first. Given a timestamp by row order, a time split's newest rows all say 0."""
    table = sm.datasets.fair.load_pandas().data
    target = "had_affairs" if CLASSIFIER else "affairs"
    if CLASSIFIER:
        table[target] = (table.pop("affairs") > 0).astype(int)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    table["answered_at"] = [(start + timedelta(minutes=i)).isoformat() for i in range(len(table))]
    project, data = own_project(tmp_path)
    write_table(table, data)
    code, output = _cli(
        project, "schema", "infer", str(data), "--target", target, "--timestamp", "answered_at"
    )
    assert code == 0, output
    assert "and set data.split.strategy: random (rows drawn at random" in output
    assert "the validation, holdout split(s) would hold one" in output
    code, output = _cli(project, "ingest")
    assert code == 2, output
    one_sided = "lack a class" if CLASSIFIER else "is constant in the validation, holdout split(s)"
    assert one_sided in output
    assert "set data.split.strategy: random" in output
    project = _with_split(project, strategy="random")
    code, output = _cli(project, "ingest")
    assert code == 0, output
    holdout = read_snapshot(project.snapshots_dir).holdout[target]
    assert holdout.nunique() > 1
    if CLASSIFIER:
        shares = table[target].mean(), holdout.mean()
        assert shares[1] == pytest.approx(shares[0], abs=0.002)  # stratified exactly
