from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.backends import backends, parse_roles, require_shared, without_password
from {{ cookiecutter.package_name }}.config import ConfigError, Project

from .conftest import write_project


@pytest.mark.answers
def test_unset_variables_mean_files_inside_the_project(project: Project) -> None:
    found = {b.role: b for b in backends(project)}
    assert not found["tracking"].shared
    assert found["tracking"].location == f"sqlite:///{project.local_store}"
    assert not found["log"].shared
    assert found["log"].location.startswith(f"sqlite:///{project.root}")
    assert found["data"].location == "generated"


@pytest.mark.answers
def test_a_job_that_needs_shared_backends_names_every_missing_variable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREDICTION_LOG_URL", "")  # an unset CI secret arrives empty
    with pytest.raises(ConfigError) as refused:
        require_shared(project, ["tracking", "log"])
    assert "MLFLOW_TRACKING_URI (MLflow runs" in str(refused.value)
    assert "PREDICTION_LOG_URL (prediction" in str(refused.value)
    assert require_shared(project, ["data"])  # the demo source needs nothing


@pytest.mark.answers
def test_shared_backends_are_shown_without_their_passwords(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://ci:s3cret@mlflow.example.com:5443/")
    monkeypatch.setenv("PREDICTION_LOG_URL", "postgresql://svc:hunter2@db.internal/predictions")
    found = require_shared(project, ["tracking", "log"])
    shown = " ".join(b.location for b in found)
    assert "s3cret" not in shown
    assert "hunter2" not in shown
    assert "https://ci:***@mlflow.example.com:5443/" in shown
    assert "postgresql://svc:***@db.internal/predictions" in shown


@pytest.mark.answers
def test_a_sql_source_needs_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = write_project(tmp_path)
    source = {"kind": "sql", "url_env": "EVENTS_DB", "query": "SELECT 1", "schema_path": "s.yaml"}
    sql = Project(
        root=project.root,
        config=project.config.model_copy(
            update={
                "data": project.config.data.model_validate(
                    {**project.config.data.model_dump(mode="json"), "source": source}
                )
            }
        ),
    )
    with pytest.raises(ConfigError, match="EVENTS_DB"):
        require_shared(sql, ["data"])
    monkeypatch.setenv("EVENTS_DB", "postgresql://reader:pw@warehouse/events")
    (data,) = (b for b in require_shared(sql, ["data"]) if b.role == "data")
    assert data.location == "postgresql://reader:***@warehouse/events"


def test_roles_are_checked() -> None:
    assert parse_roles(["log,tracking", "data"]) == ["tracking", "log", "data"]
    with pytest.raises(ConfigError, match="not logs"):
        parse_roles(["logs"])
    assert without_password("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
