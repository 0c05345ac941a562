"""Retraining and promotion killed at every step: `champion` moves only after the gate has passed,
nothing is left half-written, and the same command run again completes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

import {{ cookiecutter.package_name }}.data.snapshot as snapshot_module
import {{ cookiecutter.package_name }}.loop as loop_module
import {{ cookiecutter.package_name }}.promote.promotion as promotion_module
import {{ cookiecutter.package_name }}.promote.record as record_module
import {{ cookiecutter.package_name }}.train.training as training_module
from {{ cookiecutter.package_name }}.config import Project, load_project
from {{ cookiecutter.package_name }}.data import ingest, read_snapshot
from {{ cookiecutter.package_name }}.loop import retrain
from {{ cookiecutter.package_name }}.promote import Outcome, promote
from {{ cookiecutter.package_name }}.store import CHAMPION, ENDED_BECAUSE, PREVIOUS_CHAMPION, Store
from {{ cookiecutter.package_name }}.train import train

from .conftest import ROOT, first_champion, write_project

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAMILY = load_project(ROOT / "configs" / "project.yaml").config.train.model_family
# Real training, but 30 boosting rounds instead of 100: the cases below retrain a dozen times.
SECTIONS: dict[str, dict[str, Any]] = (
    {"train": {"params": {"max_iter": 30}}} if FAMILY == "hist_gradient_boosting" else {}
)
# Newer rows with a different concept: a model trained on them beats the old champion clearly.
NEWER: dict[str, Any] = {
    "rows": 1_500,
    "start": date(2025, 4, 1).isoformat(),
    "concept_shift": 1.0,
    "covariate_shift": 0.5,
    "seed": 11,
}


@dataclass(frozen=True)
class Fault:
    """Kill the process (or what stands for it) at a call of `owner.name`, or right after it."""

    owner: Any
    name: str
    error: type[BaseException] = KeyboardInterrupt
    after: bool = False
    only: Callable[..., bool] | None = None  # which calls are hit; all by default

    def inject(self, patch: pytest.MonkeyPatch) -> None:
        original = getattr(self.owner, self.name)

        def killed(*args: Any, **kwargs: Any) -> Any:
            if self.only is not None and not self.only(*args, **kwargs):
                return original(*args, **kwargs)
            if self.after:
                original(*args, **kwargs)
            raise self.error("killed")

        patch.setattr(self.owner, self.name, killed)


def _alias_is(alias: str) -> Callable[..., bool]:
    """Only the call of MlflowClient.set_registered_model_alias(name, alias, version)."""
    return lambda *args: args[2] == alias


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Built once, copied per test: champion v1 with newer data waiting ("retrain"), and the
    same plus challenger v2 trained on the newer data ("promote")."""
    root = tmp_path_factory.mktemp("interrupts")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        old = write_project(root / "retrain", SECTIONS, rows=1_500)
        ingest(old)
        first_champion(old)
        write_project(old.root, SECTIONS, **NEWER)
        shutil.copytree(old.root, root / "promote")
        ready = _open(root / "promote")
        ingest(ready)
        train(ready)
    return {"retrain": old.root, "promote": ready.root}


def _open(root: Path) -> Project:
    return load_project(root / "configs" / "project.yaml")


def _copy(state: Path, tmp_path: Path) -> Project:
    return _open(Path(shutil.copytree(state, tmp_path / "project")))


def _champion(project: Project) -> tuple[str, dict[str, str]]:
    """The champion's version and tags."""
    version = Store.open(project).alias_version(CHAMPION)
    assert version is not None
    return str(version.version), dict(version.tags)


def _assert_consistent(project: Project, *, moved: bool) -> None:
    """What an interrupted run may leave: a champion the gate chose, only whole files, and no
    MLflow run still open."""
    client = Store.open(project).client
    experiment = client.get_experiment_by_name(project.config.tracking.experiment)
    assert experiment is not None
    assert not client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    version, tags = _champion(project)
    if moved:
        assert version != "1"
        assert tags["promotion_reason"].startswith(f"challenger v{version} beats champion v1")
    else:
        assert version == "1"
    read_snapshot(project.snapshots_dir)
    snapshots = [path for path in project.snapshots_dir.iterdir() if path.is_dir()]
    assert all((path / "manifest.json").exists() for path in snapshots)
    for record in (project.reports_dir / "promotion").glob("*.json"):
        assert json.loads(record.read_text(encoding="utf-8"))["outcome"]
        assert record.with_suffix(".md").exists()
    assert not list(project.root.rglob("*.partial"))


def test_the_uninterrupted_gate_promotes(states: dict[str, Path], tmp_path: Path) -> None:
    """The premise of every case below: without a fault, this challenger replaces v1."""
    decision = promote(_copy(states["promote"], tmp_path))
    assert decision.outcome == Outcome.PROMOTED, decision.reason


@pytest.mark.parametrize(
    ("fault", "moved"),
    [
        pytest.param(Fault(Store, "alias_version"), False, id="read-aliases"),
        pytest.param(
            Fault(promotion_module, "read_snapshot", RuntimeError), False, id="read-holdout"
        ),
        pytest.param(Fault(Store, "load_version"), False, id="load-models"),
        pytest.param(
            Fault(promotion_module, "run_test", RuntimeError, after=True),
            False,
            id="statistical-test",
        ),
        pytest.param(
            Fault(MlflowClient, "set_registered_model_alias", only=_alias_is(PREVIOUS_CHAMPION)),
            False,
            id="move-previous-champion",
        ),
        pytest.param(
            Fault(MlflowClient, "set_model_version_tag", RuntimeError), False, id="tag-reason"
        ),
        pytest.param(
            Fault(MlflowClient, "set_registered_model_alias", only=_alias_is(CHAMPION)),
            False,
            id="move-champion",
        ),
        pytest.param(
            Fault(MlflowClient, "set_registered_model_alias", after=True, only=_alias_is(CHAMPION)),
            True,
            id="champion-moved",
        ),
        pytest.param(Fault(record_module, "_markdown", RuntimeError), True, id="write-record"),
        pytest.param(Fault(MlflowClient, "log_artifact"), True, id="log-record"),
    ],
)
def test_an_interrupted_promotion_moves_champion_only_past_the_gate(
    states: dict[str, Path], tmp_path: Path, fault: Fault, moved: bool
) -> None:
    project = _copy(states["promote"], tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        fault.inject(patch)
        with pytest.raises(fault.error, match="killed"):
            promote(project)
    _assert_consistent(project, moved=moved)

    again = promote(project)
    assert again.outcome == (Outcome.REJECTED if moved else Outcome.PROMOTED), again.reason
    assert _champion(project)[0] == "2"
    _assert_consistent(project, moved=True)


def test_a_record_cut_off_mid_write_is_never_left_as_a_record(
    states: dict[str, Path], tmp_path: Path
) -> None:
    project = _copy(states["promote"], tmp_path)
    records = project.reports_dir / "promotion"
    before = set(records.glob("*"))  # the first champion's record
    write_text = Path.write_text

    def cut_off(path: Path, text: str, *args: Any, **kwargs: Any) -> int:
        if path.parent == records:
            write_text(path, text[: len(text) // 2], *args, **kwargs)
            raise KeyboardInterrupt("killed")
        return write_text(path, text, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "write_text", cut_off)
        with pytest.raises(KeyboardInterrupt):
            promote(project)
    assert set(records.glob("*")) == before
    _assert_consistent(project, moved=True)
    assert promote(project).outcome == Outcome.REJECTED  # v2 is already the champion


@pytest.mark.parametrize(
    ("fault", "moved"),
    [
        pytest.param(Fault(loop_module, "ingest"), False, id="ingest"),
        pytest.param(Fault(snapshot_module, "content_hash"), False, id="write-snapshot"),
        pytest.param(Fault(training_module, "fit_model"), False, id="fit"),
        pytest.param(Fault(Store, "register", after=True), False, id="register"),
        pytest.param(Fault(loop_module, "train", after=True), False, id="trained"),
        pytest.param(Fault(promotion_module, "gather_evidence", RuntimeError), False, id="gate"),
        pytest.param(
            Fault(MlflowClient, "set_registered_model_alias", after=True, only=_alias_is(CHAMPION)),
            True,
            id="champion-moved",
        ),
    ],
)
def test_an_interrupted_retrain_leaves_a_state_the_next_run_completes(
    states: dict[str, Path], tmp_path: Path, fault: Fault, moved: bool
) -> None:
    project = _copy(states["retrain"], tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        fault.inject(patch)
        with pytest.raises(fault.error, match="killed"):
            retrain(project)
    _assert_consistent(project, moved=moved)

    again = retrain(project)
    # Already promoted, the rerun's challenger is the same model again: nothing to gain.
    assert again.outcome == (Outcome.REJECTED if moved else Outcome.PROMOTED), again.reason
    _assert_consistent(project, moved=True)


def test_an_ingest_killed_mid_snapshot_can_simply_be_run_again(project: Project) -> None:
    first = ingest(project, now=NOW).snapshot
    newer = write_project(project.root, **NEWER)
    with pytest.MonkeyPatch.context() as patch:
        Fault(snapshot_module, "content_hash").inject(patch)
        with pytest.raises(KeyboardInterrupt):
            ingest(newer, now=NOW)
    assert read_snapshot(project.snapshots_dir).snapshot_id == first.snapshot_id
    assert [path.name for path in project.snapshots_dir.iterdir() if path.is_dir()] == [
        first.snapshot_id
    ]
    # The same second and the same rows: the same snapshot, written once.
    again = ingest(newer, now=NOW).snapshot
    assert ingest(newer, now=NOW).snapshot.snapshot_id == again.snapshot_id
    assert read_snapshot(project.snapshots_dir).snapshot_id == again.snapshot_id


def test_a_crash_before_the_gate_is_recorded_and_the_next_run_completes(
    states: dict[str, Path], tmp_path: Path
) -> None:
    project = _copy(states["retrain"], tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        Fault(Store, "register", RuntimeError, after=True).inject(patch)
        crashed = retrain(project)
    assert crashed.outcome == Outcome.ERROR
    assert "stopped at train, the champion is unchanged: unexpected RuntimeError: killed" in (
        crashed.reason
    )
    assert json.loads(crashed.record_path.read_text(encoding="utf-8"))["kind"] == "retrain"
    _assert_consistent(project, moved=False)
    assert retrain(project).outcome == Outcome.PROMOTED


# A command in its own process: it records a run and is killed (SIGKILL) before ending it.
KILLED_MID_RUN = """
import sys, time
from {{ cookiecutter.package_name }}.config import load_project
from {{ cookiecutter.package_name }}.store import Store

with Store.open(load_project(sys.argv[1])).run("train") as run:
    print(run.run_id, flush=True)
    time.sleep(600)
"""


def test_a_run_its_killed_process_left_running_is_ended_by_the_next_run(tmp_path: Path) -> None:
    project = write_project(tmp_path / "orphan")
    config = project.root / "configs" / "project.yaml"
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_RUN, str(config)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        orphan = child.stdout.readline().strip()
        child.kill()
    store = Store.open(project)
    assert store.client.get_run(orphan).info.status == "RUNNING", "nothing has ended it yet"

    with store.run("monitor") as live:
        ended = store.client.get_run(orphan)
        assert ended.info.status == "KILLED"
        assert "was gone; ended by the next run" in ended.data.tags[ENDED_BECAUSE]
        # A run whose process is alive (this one) is left alone.
        assert store.end_orphaned_runs(ended.info.experiment_id) == []
        assert store.client.get_run(live.run_id).info.status == "RUNNING"
    assert store.client.get_run(live.run_id).info.status == "FINISHED"
