"""The project's MLflow store: runs, registered versions and their aliases, owned by no stage.

Everything goes through one `MlflowClient` bound to the project's URI, never through MLflow's
process-wide state, so a service thread, a test and a CLI command can each hold their own store.
The embedded store keeps runs and the registry in `mlflow.db` and artifacts in `mlruns/` inside
the project; MLflow records absolute artifact paths, so a folder that moved is re-pointed once,
when the store is opened.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import sqlalchemy as sa
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from .config import Project
from .errors import ProjectError
from .predictions import POSTGRES_CONNECT_SECONDS

log = logging.getLogger(__name__)
# Which machine and process a run belongs to, and why a run was ended for a process it outlived.
OWNER_HOST, OWNER_PID, ENDED_BECAUSE = "owner.host", "owner.pid", "ended_because"


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 only asks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
MODEL_PATH = "model"
# Where a registered version's run keeps the snapshot it was trained on, so that monitoring and
# the gate find it from any checkout, not only on the machine that ingested it.
SNAPSHOT_PATH = "snapshot"
SNAPSHOT_MANIFEST = "manifest.json"
# What MLflow answers for a model that does not exist, and for an alias that is not set.
ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


class StoreError(ProjectError, RuntimeError):
    """The store has no model where one is needed (no champion yet, say)."""


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


def load_model(folder: Path) -> Any:
    """The scikit-learn model saved in a version's downloaded model folder."""
    return mlflow.sklearn.load_model(str(folder))


class Run:
    """One MLflow run, written through the store's client. NaN metrics are skipped: MLflow
    stores them, but every chart and comparison downstream would have to special-case them."""

    def __init__(self, client: MlflowClient, run_id: str, artifact_uri: str) -> None:
        self.client, self.run_id, self.artifact_uri = client, run_id, artifact_uri

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        stamp = int(1_000 * time.time())
        finite = [Metric(k, float(v), stamp, 0) for k, v in metrics.items() if math.isfinite(v)]
        self.client.log_batch(self.run_id, metrics=finite)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def log_folder(self, path: Path, folder: str) -> None:
        self.client.log_artifacts(self.run_id, str(path), folder)

    def log_figure(self, figure: Any, name: str) -> None:
        self.client.log_figure(self.run_id, figure, name)

    def log_dict(self, values: dict[str, Any], name: str) -> None:
        self.client.log_dict(self.run_id, values, name)

    def log_dataset(self, dataset: Any, context: str) -> None:
        """An `mlflow.data` dataset, with the split it was used as."""
        tag = InputTag(key="mlflow.data.context", value=context)
        self.client.log_inputs(self.run_id, [DatasetInput(dataset._to_mlflow_entity(), [tag])])

    def log_model(self, model: Any, extra_files: Path | None = None, **save: Any) -> None:
        """Save an sklearn model with its MLmodel file under the run's `model/` folder, with
        `extra_files` (a folder's contents) beside it: one version, one folder."""
        # A uv-made environment has no pip, and MLflow then warns on every model that its
        # conda.yaml names pip without a version: the requirements file, which is what
        # installing the model reads, is whole, so the warning is noise on the diagnostics.
        environment_log = logging.getLogger("mlflow.utils.environment")
        level = environment_log.level
        environment_log.setLevel(logging.ERROR)
        with tempfile.TemporaryDirectory() as folder:
            saved = Path(folder) / MODEL_PATH
            try:
                mlflow.sklearn.save_model(model, str(saved), **save)
            finally:
                environment_log.setLevel(level)
            if extra_files is not None:
                shutil.copytree(extra_files, saved, dirs_exist_ok=True)
            self.client.log_artifacts(self.run_id, str(saved), MODEL_PATH)


def bounded_connect(uri: str) -> str:
    """`uri`, with a connect timeout when it is a PostgreSQL URL that sets none. libpq waits for
    ever by default: a database host that accepts and never answers held every registry poll of
    the service (and any command) for good, so the service never became ready, even once the
    database was back. MLflow retries a failed connect itself."""
    url = sa.make_url(uri) if uri.startswith("postgresql") else None
    if url is None or "connect_timeout" in url.query:
        return uri
    bounded = url.update_query_dict({"connect_timeout": str(POSTGRES_CONNECT_SECONDS)})
    return bounded.render_as_string(hide_password=False)


class Store:
    """The project's tracking store and its registered model. Open it with `Store.open`."""

    def __init__(self, project: Project, client: MlflowClient) -> None:
        self.project = project
        self.client = client
        self.model_name = project.config.tracking.registered_model

    @classmethod
    def open(cls, project: Project) -> Store:
        """Re-point a moved embedded store (once, here), then bind a client to it."""
        relocate_store(project)
        uri = bounded_connect(project.tracking_uri)
        return cls(project, MlflowClient(tracking_uri=uri, registry_uri=uri))

    # --- the registry ---------------------------------------------------------------------

    def alias_version(self, alias: str) -> ModelVersion | None:
        """The version behind `alias`, or None when the alias (or the model) does not exist yet.

        Any other failure (an unreachable server, say) is raised: it must not read as "no model".
        """
        try:
            return self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as error:
            if error.error_code in ABSENT:
                return None
            raise

    def aliases(self) -> dict[str, str]:
        """Alias -> version of the registered model ({} before the first registration)."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code in ABSENT:
                return {}
            raise
        return {alias: str(version) for alias, version in model.aliases.items()}

    def versions(self) -> list[ModelVersion]:
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted(found, key=lambda v: int(v.version))

    def download_version(self, version: str, folder: Path) -> Path:
        """A registered version's model folder, fetched through this store's client."""
        uri = self.client.get_model_version_download_uri(self.model_name, version)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(folder), tracking_uri=self.client.tracking_uri
        )
        return Path(local)

    def load_version(self, version: str) -> Any:
        """The fitted scikit-learn model of a registered version."""
        with tempfile.TemporaryDirectory() as folder:
            return load_model(self.download_version(version, Path(folder)))

    def champion(self) -> ModelVersion:
        """The champion's version; StoreError when there is none yet."""
        champion = self.alias_version(CHAMPION)
        if champion is None:
            raise StoreError(f"{self.model_name} has no champion yet: run `train` first")
        return champion

    def load_champion(self) -> tuple[ModelVersion, Any]:
        """The champion's version and fitted scikit-learn model."""
        champion = self.champion()
        return champion, self.load_version(str(champion.version))

    def training_snapshot(self, version: ModelVersion, snapshots_dir: Path) -> str:
        """The id of the snapshot `version` was trained on, with its files in `snapshots_dir`:
        fetched from the version's run when this checkout lacks them (a fresh clone in CI)."""
        snapshot_id = version.tags.get("snapshot_id")
        if not (snapshot_id and version.run_id):
            raise StoreError(f"version {version.version} of {self.model_name} names no snapshot")
        folder = snapshots_dir / snapshot_id
        if (folder / SNAPSHOT_MANIFEST).is_file():
            return snapshot_id
        snapshots_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=snapshots_dir, prefix=".fetch-") as staging:
            try:
                self.client.download_artifacts(version.run_id, SNAPSHOT_PATH, staging)
            except (MlflowException, OSError) as error:
                raise StoreError(
                    f"version {version.version} was trained on snapshot {snapshot_id}, which is "
                    f"neither in {snapshots_dir.name}/ nor logged with its run: {error}"
                ) from None
            fetched = Path(staging) / SNAPSHOT_PATH
            if not (fetched / SNAPSHOT_MANIFEST).is_file():
                raise StoreError(f"the run of version {version.version} holds no snapshot")
            fetched.rename(folder)
        return snapshot_id

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def delete_alias(self, alias: str) -> None:
        self.client.delete_registered_model_alias(self.model_name, alias)

    def tag_version(self, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)

    def register(self, run: Run) -> str:
        """A new version of the registered model from the model a run logged; returns it."""
        try:
            self.client.create_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"runs:/{run.run_id}/{MODEL_PATH}"
        version = self.client.create_model_version(self.model_name, source, run_id=run.run_id)
        return str(version.version)

    # --- runs -----------------------------------------------------------------------------

    def _experiment_id(self) -> str:
        name = self.project.config.tracking.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        local = self.project.uses_local_store
        location = self.project.artifact_root.as_uri() if local else None
        return str(self.client.create_experiment(name, artifact_location=location))

    def end_orphaned_runs(self, experiment_id: str) -> list[str]:
        """End as KILLED the runs this machine's processes left RUNNING when they were killed
        (SIGKILL, a lost machine, an OOM kill: no `finally` ran), so that no run stays RUNNING
        forever. A run is judged only on the machine that started it, by its process id; a run
        of a process still alive, or of another machine, is left alone. Returns the run ids."""
        host, ended = socket.gethostname(), []
        running = self.client.search_runs(
            [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
        )
        for found in running:
            tags = found.data.tags
            if tags.get(OWNER_HOST) != host or not tags.get(OWNER_PID, "").isdigit():
                continue
            if _process_alive(int(tags[OWNER_PID])):
                continue
            reason = f"its process {tags[OWNER_PID]} on {host} was gone; ended by the next run"
            self.client.set_tag(found.info.run_id, ENDED_BECAUSE, reason)
            self.client.set_terminated(found.info.run_id, "KILLED")
            ended.append(found.info.run_id)
        if ended:
            log.warning("ended %d run(s) left RUNNING by a killed process: %s", len(ended), ended)
        return ended

    @contextmanager
    def run(self, name: str) -> Iterator[Run]:
        """A run in the project's experiment, ended FINISHED, FAILED or KILLED as the block ends.
        Tagged with its machine and process, so that the next run can end it as KILLED if the
        process dies without ending it (`end_orphaned_runs`)."""
        experiment_id = self._experiment_id()
        self.end_orphaned_runs(experiment_id)
        owner = {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}
        started = self.client.create_run(experiment_id, run_name=name, tags=owner)
        run = Run(self.client, started.info.run_id, started.info.artifact_uri)
        try:
            yield run
        except BaseException as error:
            status = "FAILED" if isinstance(error, Exception) else "KILLED"
            self.client.set_terminated(run.run_id, status)
            raise
        self.client.set_terminated(run.run_id, "FINISHED")


@dataclass(frozen=True)
class VersionRow:
    """One registered version as `models` and the report page show it (and `models --json`
    prints it); None where the registry holds no value."""

    version: str
    aliases: list[str]
    family: str | None
    snapshot_id: str | None  # the data it was trained on
    trained_at: str | None
    holdout: float | None  # the gate metric on the holdout it was trained with
    promoted_at: str | None
    promotion_reason: str | None
    rolled_back_at: str | None


def read_versions(project: Project) -> list[VersionRow]:
    """Every registered version, oldest first. An embedded store that does not exist yet holds
    none: it is not created just to be found empty."""
    if project.uses_local_store and not project.local_store.exists():
        return []
    store = Store.open(project)
    aliases = store.aliases()
    name = project.config.gate_metric
    rows = []
    for version in store.versions():
        number, tags = str(version.version), version.tags
        rows.append(
            VersionRow(
                version=number,
                aliases=sorted(alias for alias, v in aliases.items() if v == number),
                family=tags.get("model_family"),
                snapshot_id=tags.get("snapshot_id"),
                trained_at=tags.get("trained_at"),
                holdout=_holdout(store, version.run_id, tags, name),
                promoted_at=tags.get("promoted_at"),
                promotion_reason=tags.get("promotion_reason"),
                rolled_back_at=tags.get("rolled_back_at"),
            )
        )
    return rows


def _holdout(store: Store, run_id: str | None, tags: dict[str, str], name: str) -> float | None:
    """The version tag `holdout_<metric>` (training tags the training metric), else the metric
    its run logged, for a gate metric other than the training one."""
    key = f"holdout_{name}"
    if key in tags:
        return float(tags[key])
    if run_id is None:
        return None
    logged = store.client.get_run(run_id).data.metrics.get(key)
    return None if logged is None else float(logged)
