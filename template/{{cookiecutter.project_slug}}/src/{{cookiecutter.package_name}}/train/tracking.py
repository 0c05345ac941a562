"""MLflow plumbing: the embedded SQLite store, a project folder that can move, and registry aliases.

The embedded store keeps runs and the registry in `mlflow.db` and artifacts in `mlruns/` inside
the project. MLflow records absolute artifact paths, so when the folder has been moved or cloned
those paths are rewritten before MLflow opens the store.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ..config import Project

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# What MLflow answers for a model that does not exist, and for an alias that is not set.
ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def _local_path(location: str) -> Path:
    parsed = urlparse(location)
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else Path(location)


def relocate_store(project: Project) -> int:
    """Point the embedded store's artifact paths at this folder; returns how many values changed."""
    if not (project.uses_local_store and project.local_store.exists()):
        return 0
    experiment = project.config.tracking.experiment
    with closing(sqlite3.connect(project.local_store)) as db, db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if "experiments" not in tables:
            return 0
        row = db.execute(
            "SELECT artifact_location FROM experiments WHERE name = ?", (experiment,)
        ).fetchone()
        if row is None:
            return 0
        old = str(_local_path(row[0]))
        new = str(project.artifact_root)
        if old == new:
            return 0
        changed = 0
        for table in tables:
            columns = db.execute(f"PRAGMA table_info('{table}')").fetchall()
            for column in (
                c[1] for c in columns if "CHAR" in c[2].upper() or "TEXT" in c[2].upper()
            ):
                changed += db.execute(
                    f'UPDATE "{table}" SET "{column}" = REPLACE("{column}", ?, ?) '  # noqa: S608
                    f'WHERE instr("{column}", ?) > 0',
                    (old, new, old),
                ).rowcount
        return changed


def project_client(project: Project) -> MlflowClient:
    """A client bound to the project's store, touching none of MLflow's process-wide state."""
    relocate_store(project)
    return MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


def load_version(client: MlflowClient, name: str, version: str) -> Any:
    """Load a registered version through `client`, so threads on other stores cannot interfere."""
    return mlflow.sklearn.load_model(client.get_model_version_download_uri(name, version))


@contextmanager
def tracking(project: Project) -> Iterator[MlflowClient]:
    """Make the project's store MLflow's current one for the block (runs and logging need it).

    MLflow's fluent API keeps the store in process-wide state: only one thread at a time may
    use this; code that runs beside others (the service) uses `project_client` instead.
    """
    client = project_client(project)
    uri = project.tracking_uri
    previous, previous_env = mlflow.get_tracking_uri(), os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    try:
        name = project.config.tracking.experiment
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = project.artifact_root.as_uri() if project.uses_local_store else None
            client.create_experiment(name, artifact_location=location)
        mlflow.set_experiment(name)
        yield client
    finally:
        mlflow.set_tracking_uri(previous)
        # set_tracking_uri also writes the environment variable: put back what was there.
        if previous_env is None:
            os.environ.pop(TRACKING_URI_ENV, None)
        else:
            os.environ[TRACKING_URI_ENV] = previous_env


def alias_version(client: MlflowClient, model: str, alias: str) -> ModelVersion | None:
    """The version behind `alias`, or None when the alias (or the model) does not exist yet.

    Any other failure (an unreachable server, say) is raised: it must not read as "no model".
    """
    try:
        return client.get_model_version_by_alias(model, alias)
    except MlflowException as error:
        if error.error_code in ABSENT:
            return None
        raise
