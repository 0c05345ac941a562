"""Shared fixtures: small demo projects in temporary folders, each with its own fresh store."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Project, load_project
from {{ cookiecutter.package_name }}.data import DataSchema, project_schema, write_table
from {{ cookiecutter.package_name }}.promote import Outcome, promote
from {{ cookiecutter.package_name }}.serve import create_app
from {{ cookiecutter.package_name }}.serve.server import server_options
from {{ cookiecutter.package_name }}.store import CHAMPION, Store
from {{ cookiecutter.package_name }}.train import TrainResult, train

# tests.answers: with --check-answers, fails a test that reads a file the template's answers shape
# unless it is marked `answers`; pytester: tests/test_answers.py runs pytest on made-up tests.
pytest_plugins = ["tests.answers", "pytester"]

ROOT = Path(__file__).resolve().parents[1]
MakeProject = Callable[..., Project]
MULTICLASS = "multiclass_classification"
REGRESSION_LABEL = 42.0


def a_label(project: Project, which: int = 1) -> tuple[Any, float]:
    """A label `/feedback` takes for the project's task, and the value the log then holds (as
    the model reads it): a classifier's class number `which` (binary: 1 is the positive class)
    by its name; a regressor's 42, minus `which` - 1."""
    target = project_schema(project).target
    if target.classes is None:
        return REGRESSION_LABEL - (which - 1), REGRESSION_LABEL - (which - 1)
    if target.is_multiclass:
        return target.classes[which], float(which)
    return target.class_name(float(which)), float(which)


@pytest.fixture(autouse=True)
def _isolated_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests use the embedded store and log of their own temporary project, never a server."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREDICTION_LOG_URL", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def write_project(
    root: Path, sections: dict[str, dict[str, Any]] | None = None, **source: Any
) -> Project:
    """The project's own configuration, pointed at a small demo source under `root`.

    `sections` overrides keys of top-level sections, e.g. `{"serve": {"flush_seconds": 0.2}}`.
    """
    config = yaml.safe_load((ROOT / "configs" / "project.yaml").read_text(encoding="utf-8"))
    config["data"]["source"] = {"kind": "demo", "rows": 3_000, "days": 60, **source}
    config["data"]["min_training_rows"] = 200
    config["train"]["slice_column"] = "region"
    config["promotion"]["min_holdout_rows"] = 200
    config["promotion"]["resamples"] = 500
    for section, values in (sections or {}).items():
        config[section] = {**config.get(section, {}), **values}
    path = root / "configs" / "project.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_project(path)


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    def make(name: str = "project", **source: Any) -> Project:
        return write_project(tmp_path / name, **source)

    return make


@pytest.fixture
def project(make_project: MakeProject) -> Project:
    return make_project()


def file_source(
    project: Project,
    data: str,
    *,
    frame: pd.DataFrame | None = None,
    schema: DataSchema | None = None,
    schema_path: str = "configs/schema.yaml",
    **sections: dict[str, Any],
) -> Project:
    """The project reading `data` (relative to its root), described by `schema_path`: both are
    written when `frame` and `schema` are given; `sections` override keys as in `write_project`."""
    if frame is not None:
        write_table(frame, project.root / data)
    if schema is not None:
        schema.to_yaml(project.root / schema_path)
    path = project.root / "configs" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"]["source"] = {"kind": "file", "path": data, "schema_path": schema_path}
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_project(path)


def cli(project: Project, *args: str) -> tuple[int, str]:
    """The project's command line, in process, on its own configuration: the exit code, and
    everything it printed on one line (a table's wrapped cells joined by spaces)."""
    config = str(project.root / "configs" / "project.yaml")
    result = CliRunner().invoke(app, [*args, "-c", config])
    return result.exit_code, " ".join(result.output.split())


def first_champion(project: Project) -> TrainResult:
    """Train the first model and let the gate make it champion, as `train` on the CLI does."""
    result = train(project)
    decision = promote(project)
    assert decision.outcome == Outcome.PROMOTED, decision.reason
    return result


def champion_version(project: Project) -> str | None:
    version = Store.open(project).alias_version(CHAMPION)
    return None if version is None else str(version.version)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(project: Project) -> Iterator[httpx.Client]:
    """A real uvicorn server in a thread, with `serve`'s connection settings, once it has asked
    the registry (start-up does not wait for it); stopped (and its log flushed) on exit."""
    port = free_port()
    app = create_app(project)
    options = server_options(project.config.serve)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started or app.state.service.models.last_checked is None:
        assert thread.is_alive(), "server stopped during start-up"
        assert time.monotonic() < deadline, "server did not start in time"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def ten_megabytes_of_text(seed: int = 0) -> str:
    """One 10 MB cell of random letters, as a pasted file or an attack puts in a column: random,
    so no compression hides it from a test of what a file or a message holds."""
    rng = np.random.default_rng(seed)
    return rng.integers(ord("a"), ord("z") + 1, size=10 * 2**20, dtype=np.uint8).tobytes().decode()
