"""`replay`: a file's rows to a running service over HTTP, then their labels as feedback."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project
from {{ cookiecutter.package_name }}.data import generate_demo, ingest, write_table
from {{ cookiecutter.package_name }}.predictions import PredictionLog
from {{ cookiecutter.package_name }}.serve import replay

from .conftest import first_champion, running, write_project

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]


@pytest.fixture
def served(tmp_path: Path) -> Project:
    project = write_project(tmp_path / "served", sections={"serve": {"flush_seconds": 0.2}})
    ingest(project)
    first_champion(project)
    return project


def _rows(project: Project, path: Path, rows: int) -> Path:
    config = DemoSourceConfig(rows=rows, seed=9, start="2025-06-01", invalid_fraction=0.02)
    write_table(generate_demo(config, project.config.train.task), path)
    return path


def test_rows_are_answered_then_labelled_and_logged(served: Project, tmp_path: Path) -> None:
    source = _rows(served, tmp_path / "live.csv", 300)
    with running(served) as client:
        result = replay(served, source, str(client.base_url), rows=120)
    assert result.sent == 120
    assert result.answered_by == {"1": 120}
    assert result.labels_sent == 120
    assert result.failed == 0
    assert result.quarantined > 0, "invalid rows are not sent, and counted"
    logged = PredictionLog(served.prediction_log_url).read(served=True)
    assert len(logged) == 120
    assert logged["label"].notna().all()
    assert "120 rows sent, answered by v1: 120; 120 labels sent" in result.summary()


def test_without_labels_only_predictions_are_sent(served: Project, tmp_path: Path) -> None:
    source = _rows(served, tmp_path / "live.parquet", 200)
    with running(served) as client:
        result = replay(served, source, str(client.base_url), rows=50, labels=False)
    assert (result.sent, result.labels_sent, result.failed) == (50, 0, 0)
    logged = PredictionLog(served.prediction_log_url).read(served=True)
    assert logged["label"].isna().all()


def test_a_wrong_key_is_counted_as_failed(
    served: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _rows(served, tmp_path / "live.csv", 200)
    monkeypatch.setenv("SERVICE_API_KEY", "the-service-key")
    with running(served) as client:
        monkeypatch.setenv("SERVICE_API_KEY", "not-the-key")
        result = replay(served, source, str(client.base_url), rows=10)
    assert result.statuses == {401: 10}
    assert result.failed == 10
    assert "10 failed" in result.summary()
