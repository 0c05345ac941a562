from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project
from {{ cookiecutter.package_name }}.data import generate_demo, ingest, write_table
from {{ cookiecutter.package_name }}.monitor import monitor
from {{ cookiecutter.package_name }}.promote import Outcome, promote, rollback
from {{ cookiecutter.package_name }}.store import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, Store
from {{ cookiecutter.package_name }}.train import train

from .conftest import MakeProject, first_champion, write_project

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]


def _aliases(project: Project) -> dict[str, str | None]:
    held = Store.open(project).aliases()
    return {alias: held.get(alias) for alias in (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION)}


def _record(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.e2e
def test_the_gate_rejects_worse_promotes_better_and_rollback_restores(
    make_project: MakeProject,
) -> None:
    project = make_project(rows=5_000)
    ingest(project)
    train(project)
    assert _aliases(project) == {CHAMPION: None, CHALLENGER: "1", PREVIOUS_CHAMPION: None}
    first = promote(project)
    assert first.outcome == Outcome.PROMOTED, first.reason
    assert "there is no champion yet" in first.reason
    assert _aliases(project) == {CHAMPION: "1", CHALLENGER: "1", PREVIOUS_CHAMPION: None}

    nothing = promote(project)
    assert nothing.outcome == Outcome.REJECTED
    assert "already the champion" in nothing.reason

    train(project, family="baseline")
    worse = promote(project)
    assert worse.outcome == Outcome.REJECTED, worse.reason
    assert _aliases(project)[CHAMPION] == "1"
    record = _record(worse.record_path)
    assert record["outcome"] == "rejected"
    assert record["challenger"]["version"] == "2"
    assert 0.0 <= record["test"]["p_value"] <= 1.0
    assert record["data"]["holdout_sha256"]
    assert (
        worse.record_path.with_suffix(".md").read_text(encoding="utf-8").startswith("# Promotion")
    )

    # The world changes: newer rows with a different concept. A model trained on them is better.
    newer = write_project(
        project.root,
        rows=5_000,
        start=date(2025, 4, 1).isoformat(),
        concept_shift=1.0,
        covariate_shift=0.5,
        seed=11,
    )
    ingest(newer)
    train(newer)
    better = promote(newer)
    assert better.outcome == Outcome.PROMOTED, better.reason
    assert _aliases(newer) == {CHAMPION: "3", CHALLENGER: "3", PREVIOUS_CHAMPION: "1"}
    record = _record(better.record_path)
    assert record["test"]["p_value"] < 0.05
    assert all(g["passed"] for g in record["guardrails"])

    back = rollback(newer)
    assert back.outcome == Outcome.ROLLED_BACK
    assert _aliases(newer) == {CHAMPION: "1", CHALLENGER: None, PREVIOUS_CHAMPION: "3"}


@pytest.mark.e2e
def test_the_gate_refuses_a_holdout_the_challenger_has_seen(make_project: MakeProject) -> None:
    project = make_project(rows=5_000)
    ingest(project)
    first_champion(project)
    # A newer snapshot of a longer window: its holdout overlaps nothing, but the challenger is
    # trained on it, then the OLD snapshot is made the latest again.
    longer = write_project(project.root, rows=5_000, days=90)
    old_latest = (longer.snapshots_dir / "LATEST").read_text(encoding="utf-8")
    ingest(longer)
    train(longer)
    (longer.snapshots_dir / "LATEST").write_text(old_latest, encoding="utf-8")
    decision = promote(longer)
    assert decision.outcome == Outcome.ERROR
    assert "not later than the data" in decision.reason
    assert _aliases(longer)[CHAMPION] == "1"


@pytest.mark.e2e
def test_too_little_evidence_keeps_collecting_or_with_the_holdout_alone_is_rejected(
    make_project: MakeProject,
) -> None:
    project = make_project(rows=5_000)
    ingest(project)
    first_champion(project)
    train(project, family="baseline")

    def policy(**changes: Any) -> Project:
        strict = project.config.promotion.model_copy(
            update={"min_holdout_rows": 100_000, **changes}
        )
        return Project(
            root=project.root, config=project.config.model_copy(update={"promotion": strict})
        )

    waiting = promote(policy())
    assert waiting.outcome == Outcome.KEEP_COLLECTING
    assert "below the policy's minimum of 100000" in waiting.reason
    holdout = waiting.record["data"]["holdout_rows"]
    assert waiting.record["data"]["shadow_rows"] == 0
    assert waiting.record["rows_needed"] == 100_000 - holdout
    assert f"{100_000 - holdout} more labelled rows needed" in waiting.reason
    assert _aliases(project) == {CHAMPION: "1", CHALLENGER: "2", PREVIOUS_CHAMPION: None}

    rejected = promote(policy(shadow_evidence=False))
    assert rejected.outcome == Outcome.REJECTED
    assert "below the policy's minimum of 100000" in rejected.reason


def test_rollback_without_a_previous_champion_is_an_error(project: Project) -> None:
    decision = rollback(project)
    assert decision.outcome == Outcome.ERROR
    assert decision.outcome.exit_code == 2


def test_promote_without_a_challenger_is_an_error(project: Project) -> None:
    decision = promote(project)
    assert decision.outcome == Outcome.ERROR
    assert "run `train` first" in decision.reason


@pytest.mark.e2e
def test_a_fresh_checkout_gates_and_monitors_with_the_data_logged_with_the_runs(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI job starts from a clone: no snapshots, only the shared store's URI."""
    project = make_project(rows=5_000)
    ingest(project)
    first_champion(project)
    newer = write_project(project.root, rows=5_000, start="2025-04-01", concept_shift=1.0, seed=11)
    ingest(newer)
    train(newer)

    clone = write_project(
        project.root.parent / "clone", rows=5_000, start="2025-04-01", concept_shift=1.0, seed=11
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project.local_store}")
    assert not clone.snapshots_dir.exists()
    decision = promote(clone)
    assert decision.outcome == Outcome.PROMOTED, decision.reason
    trained_on = Store.open(clone).alias_version(CHAMPION)
    assert trained_on is not None
    assert _record(decision.record_path)["data"]["snapshot_id"] == trained_on.tags["snapshot_id"]

    live = clone.root / "live.parquet"
    source = clone.config.data.source
    assert isinstance(source, DemoSourceConfig)
    write_table(generate_demo(source, clone.config.train.task), live)
    result = monitor(clone, source=live)
    assert result.summary["reference"]["snapshot_id"] == trained_on.tags["snapshot_id"]
    assert result.summary["champion_version"] == "2"
