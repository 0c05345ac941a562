"""The continual-learning loop on shared backends, from fresh checkouts (issue: shared backends).

A default project is switched to a SQL source on PostgreSQL and trained through a real `mlflow
server` (its registry on PostgreSQL, artifacts proxied); two replicas of its service log to one
PostgreSQL database. Then its `monitor.yml` and `continual-training.yml` run as written, each job
in its own fresh `git clone` given only the secrets: drift in the newer data is flagged, a
challenger is trained and gated, `promote` moves `champion` on the server, and both replicas
serve it within a poll interval. A second pass without drift moves nothing. Faults: PostgreSQL
restarted under load, a schedule missing a secret, the MLflow server gone during a poll.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

import postgres
from helpers import render, run_logged, subprocess_env
from workflow_runner import Runner, WorkflowError

pytestmark = pytest.mark.slow
TIMEOUT = 20 * 60
MODEL = "demo-ml-service"
API_KEY = "a-long-random-service-key"
POLL_SECONDS = 2.0
LOAD_SECONDS = 5.0  # fetch a model version from the server and load it, on a busy machine
# The newest 90 days of events: continual training learns the world as it is now.
QUERY = (
    "SELECT * FROM events "
    "WHERE event_time > (SELECT max(event_time) FROM events) - interval '90 days'"
)
DRIFT = ["--covariate-shift", "1.0", "--concept-shift", "1.0"]


def _http(
    method: str, url: str, body: object = None, timeout: float = 10
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (127.0.0.1)
    request.add_header("Content-Type", "application/json")
    request.add_header("X-API-Key", API_KEY)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if condition():
                return time.monotonic() - started
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Project:
    """The rendered project and a virtualenv with it installed (for the server and replicas)."""

    root: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.root / ".venv" / "bin"

    def run(self, *args: str) -> None:
        run_logged([self.bin / args[0], *args[1:]], self.root, self.log, TIMEOUT, self.env)

    def python(self, script: str, *args: str) -> list[Any]:
        """Run `script` with the project's interpreter; it prints one JSON list."""
        done = subprocess.run(
            [self.bin / "python", "-c", script, *args],
            cwd=self.root,
            env=subprocess_env(**self.env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        printed = json.loads(done.stdout.strip().splitlines()[-1])
        assert isinstance(printed, list)
        return printed

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A long-running process, its output in `<name>.log` beside the run log."""
        with (self.log.parent / f"{name}.log").open("ab") as out:  # the child keeps its own copy
            return subprocess.Popen(
                [self.bin / args[0], *args[1:]],
                cwd=self.root,
                env=subprocess_env(**self.env, **(env or {})),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `mlflow server` forks workers
            )


LOAD_TABLE = """
import json, sys
import pandas as pd
from sqlalchemy import create_engine
frame = pd.read_parquet(sys.argv[2])
frame.to_sql("events", create_engine(sys.argv[1]), if_exists="append", index=False)
print(json.dumps([len(frame)]))
"""
REQUESTS = """
import json, sys
import pandas as pd
from demo_ml_service.data import demo_schema, validate
schema = demo_schema("binary_classification")
# The newest rows: live traffic is now, where the newest model's holdout also lies.
valid = validate(pd.read_parquet(sys.argv[1]), schema).valid
valid = valid.sort_values(schema.timestamp_column).tail(int(sys.argv[2]))
labels = valid.pop(schema.target.name).tolist()
rows = json.loads(valid.to_json(orient="records", date_format="iso"))
print(json.dumps([{"row": row, "label": label} for row, label in zip(rows, labels)]))
"""
# Statements run in order on one autocommit connection.
EXECUTE = """
import json, sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1], isolation_level="AUTOCOMMIT").connect() as db:
    for statement in sys.argv[2:]:
        db.execute(text(statement))
print("[]")
"""
LOGGED = """
import json, sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1]).connect() as db:
    rows = db.execute(text("SELECT prediction_id, served, model_version FROM predictions"))
    print(json.dumps([[r[0], bool(r[1]), str(r[2])] for r in rows]))
"""


@dataclass
class Traffic:
    """Labelled requests sent to the replicas, and what they answered."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def send(self, ports: Sequence[int], requests: list[dict[str, Any]]) -> None:
        def one(index: int) -> tuple[int, dict[str, Any]]:
            port = ports[index % len(ports)]
            item = requests[index]
            status, answer = _http("POST", f"http://127.0.0.1:{port}/predict", item["row"])
            if status == 200:
                body = {"prediction_id": answer["prediction_id"], "label": item["label"]}
                accepted, _ = _http("POST", f"http://127.0.0.1:{port}/feedback", body)
                assert accepted == 202, accepted
            return status, answer

        with ThreadPoolExecutor(max_workers=4) as pool:
            for status, answer in pool.map(one, range(len(requests))):
                self.statuses.append(status)
                if status == 200:
                    self.answers.append(answer)

    @property
    def ids(self) -> set[str]:
        return {answer["prediction_id"] for answer in self.answers}


def _served_version(port: int) -> str | None:
    status, body = _http("GET", f"http://127.0.0.1:{port}/metadata")
    return body["variants"].get("champion", {}).get("version") if status == 200 else None


def _serves(port: int, version: str) -> bool:
    return _served_version(port) == version


def _registry_error(port: int) -> bool:
    return bool(_http("GET", f"http://127.0.0.1:{port}/ready")[1].get("registry_error"))


def _log_failing(port: int) -> bool:
    body = _http("GET", f"http://127.0.0.1:{port}/ready")[1]
    return bool(body["prediction_log"]["state"] == "failing")


def _log_writing(port: int) -> bool:
    return not _log_failing(port)


def _is_ready(port: int) -> bool:
    return _http("GET", f"http://127.0.0.1:{port}/ready")[0] == 200


def _version_tags(tracking: str, version: str) -> dict[str, str]:
    url = f"{tracking}/api/2.0/mlflow/model-versions/get?name={MODEL}&version={version}"
    _, body = _http("GET", url)
    return {tag["key"]: tag["value"] for tag in body["model_version"].get("tags", [])}


def _champion(tracking: str) -> str | None:
    url = f"{tracking}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion"
    status, body = _http("GET", url)
    return str(body["model_version"]["version"]) if status == 200 else None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process and every process it started (its group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


@contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            _stop(process)


def _make_venv(project: Path, log: Path) -> None:
    uv = [sys.executable, "-m", "uv"]
    run_logged([*uv, "venv", "--quiet", ".venv"], project, log, TIMEOUT)
    install = [*uv, "pip", "install", "--quiet", "-p", ".venv", "-e", "."]
    run_logged(install, project, log, TIMEOUT, {"UV_COMPILE_BYTECODE": "1"})


def _runner_venv(folder: Path, log: Path) -> Path:
    """An interpreter with pip, as setup-python gives a job: the steps install nox and uv."""
    # uv's --seed puts pip in, whether or not this Python ships ensurepip (Debian's does not).
    seeded = [sys.executable, "-m", "uv", "venv", "--quiet", "--seed", str(folder)]
    run_logged(seeded, folder.parent, log, TIMEOUT)
    return folder / "bin"


def _use_sql_source(project: Path) -> None:
    """The team's change, committed: training rows come from PostgreSQL, polls are quick."""
    path = project / "configs" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"]["source"] = {
        "kind": "sql",
        "url_env": "TRAINING_DATA_URL",
        "query": QUERY,
        "schema_path": "configs/schema.yaml",
    }
    config["serve"]["registry_poll_seconds"] = POLL_SECONDS
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    git = ["git", "-C", str(project)]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
    subprocess.run(
        [
            *git,
            "-c",
            "user.name=Team",
            "-c",
            "user.email=team@example.com",
            "commit",
            "-qm",
            "Train on the events table",
        ],
        check=True,
        capture_output=True,
    )


@dataclass
class Stack:
    """PostgreSQL, the MLflow server and the project, with the processes this test started."""

    database: postgres.Cluster
    project: Project
    folder: Path
    processes: list[subprocess.Popen[bytes]]
    urls: dict[str, str] = field(default_factory=dict)
    tracking: str = ""
    replicas: list[int] = field(default_factory=list)

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.tracking,
            "PREDICTION_LOG_URL": self.urls["predictions"],
            "TRAINING_DATA_URL": self.urls["events"],
        }

    def demo_data(self, name: str, *args: str) -> Path:
        out = self.folder / f"{name}.parquet"
        self.project.run("demo_ml_service", "demo-data", "--out", str(out), *args)
        return out

    def append_events(self, rows: Path) -> int:
        return int(self.project.python(LOAD_TABLE, self.urls["events"], str(rows))[0])

    def start_tracking_server(self) -> None:
        port = postgres.free_port()
        self.tracking = f"http://127.0.0.1:{port}"
        server = self.project.start(
            "mlflow-server",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.urls["mlflow"],
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        )
        self.processes.append(server)
        health = f"{self.tracking}/health"
        _wait(lambda: urllib.request.urlopen(health).status == 200, 180, "mlflow")  # noqa: S310
        self.project.env.update(self.secrets)

    def start_replicas(self, count: int) -> None:
        for index in range(count):
            port = postgres.free_port()
            self.replicas.append(port)
            self.processes.append(
                self.project.start(
                    f"replica-{index}",
                    "demo_ml_service",
                    "serve",
                    "--port",
                    str(port),
                    env={"SERVICE_API_KEY": API_KEY},
                )
            )
        for port in self.replicas:
            _wait(partial(_is_ready, port), 180, f"replica on port {port} ready")

    def logged(self) -> dict[str, tuple[bool, str]]:
        """prediction id -> (served, model version), as the shared log holds them."""
        rows = self.project.python(LOGGED, self.urls["predictions"])
        return {row[0]: (row[1], row[2]) for row in rows}

    def log_database_read_only(self, *, on: bool) -> None:
        """Every new session of the log's database read-only (or not), and its sessions ended,
        so the replicas' pools reconnect into the new setting."""
        setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
        self.project.python(
            EXECUTE,
            self.database.url("postgres"),
            f"ALTER DATABASE predictions {setting}",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'predictions' AND pid <> pg_backend_pid()",
        )

    def wait_logged(self, ids: set[str], what: str) -> None:
        _wait(lambda: ids <= set(self.logged()), 60, what)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Backends up, the first champion trained through the server, two replicas serving it."""
    with postgres.cluster() as database, _processes() as processes:
        root = render(tmp_path / "demo-ml-service", {})
        log = tmp_path / "run.log"
        _make_venv(root, log)
        folder = tmp_path / "data"
        folder.mkdir()
        stack = Stack(database, Project(root, log), folder, processes)
        stack.urls = {
            name: database.create_database(name) for name in ("mlflow", "predictions", "events")
        }

        # Four months of history in the events table, then the team's config change.
        history = stack.demo_data(
            "history", "--schema-out", "configs/schema.yaml", "--rows", "6000", "--days", "120"
        )
        assert stack.append_events(history) == 6000
        _use_sql_source(root)
        stack.start_tracking_server()
        stack.project.run("demo_ml_service", "ingest")
        stack.project.run("demo_ml_service", "train")
        assert _champion(stack.tracking) == "1"
        stack.start_replicas(2)
        yield stack


def _refused_without_key(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/feedback", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def test_the_loop_runs_on_shared_backends_from_fresh_checkouts(
    stack: Stack, tmp_path: Path
) -> None:
    replicas, tracking = stack.replicas, stack.tracking
    assert _refused_without_key(replicas[0]) == 401, "a forged label would move monitoring"

    # The world drifts: served traffic and the newest rows of the table change together.
    drifted_file = stack.demo_data(
        "drifted", "--rows", "6000", "--seed", "21", "--start", "2025-05-01", "--days", "90", *DRIFT
    )
    drifted = stack.project.python(REQUESTS, str(drifted_file), "2000")
    before = Traffic()
    before.send(replicas, drifted[:400])
    assert before.statuses == [200] * 400
    assert {a["model_version"] for a in before.answers} == {"1"}
    stack.append_events(drifted_file)
    stack.wait_logged(before.ids, "both replicas' predictions in the shared log")

    workspace = tmp_path / "jobs"
    workspace.mkdir()
    tools = [_runner_venv(tmp_path / "runner", stack.project.log)]
    monitor_yml = stack.project.root / ".github" / "workflows" / "monitor.yml"

    # A schedule whose secret is missing stops at its first step, saying which.
    missing = Runner(
        stack.project.root, workspace, secrets={"MLFLOW_TRACKING_URI": tracking}, tools=tools
    )
    with pytest.raises(WorkflowError, match="PREDICTION_LOG_URL") as stopped:
        missing.run(monitor_yml)
    assert "nox -s backends" in str(stopped.value)
    assert not list(workspace.glob("*/mlflow.db")), "nothing ran on an embedded store"

    # Pass 1: monitor flags the drift, continual training gates a challenger, promote moves it.
    runner = Runner(
        stack.project.root, workspace, secrets=stack.secrets, tools=tools, timeout=TIMEOUT
    )
    first = runner.run(monitor_yml)
    assert first.jobs["monitor"].outputs == {"retrain": "true"}
    assert first.jobs["retrain/retrain"].outputs == {"decision": "promoted"}
    assert first.ran("retrain/promote")
    assert _champion(tracking) == "2"
    promoted_at = datetime.fromisoformat(_version_tags(tracking, "2")["promoted_at"])
    for port in replicas:
        _wait(partial(_serves, port, "2"), POLL_SECONDS + 30, "both replicas on the new champion")
        _, metadata = _http("GET", f"http://127.0.0.1:{port}/metadata")
        loaded_at = datetime.fromisoformat(metadata["variants"]["champion"]["loaded_at"])
        # One poll interval, plus fetching and loading the model from the server.
        assert (loaded_at - promoted_at).total_seconds() <= POLL_SECONDS + LOAD_SECONDS

    after = Traffic()
    after.send(replicas, drifted[400:700])
    assert {a["model_version"] for a in after.answers} == {"2"}
    stack.wait_logged(before.ids | after.ids, "every request of both replicas in the log")
    logged = stack.logged()
    assert {logged[i] for i in before.ids} == {(True, "1")}
    assert {logged[i] for i in after.ids} == {(True, "2")}

    # Pass 2: the champion knows this world now; nothing moves.
    second = runner.run(monitor_yml)
    assert second.jobs["monitor"].outputs == {"retrain": "false"}
    assert not second.ran("retrain/retrain")
    assert _champion(tracking) == "2"


def test_the_replicas_ride_out_a_database_restart_and_a_registry_outage(stack: Stack) -> None:
    requests = stack.project.python(
        REQUESTS, str(stack.demo_data("live", "--rows", "3000")), "1500"
    )

    # PostgreSQL restarts under load: no request fails, no prediction is lost.
    load = Traffic()
    sender = threading.Thread(target=load.send, args=(stack.replicas, requests))
    sender.start()
    time.sleep(1.0)
    stack.database.restart()
    sender.join(timeout=300)
    assert len(load.statuses) == len(requests)
    assert set(load.statuses) == {200}
    stack.wait_logged(load.ids, "the predictions held while the log was down")

    # The log's database refuses writes (read-only from the replicas' next session on) until
    # it is put right: the replicas keep answering, hold the rows, and /ready names the fault.
    stack.log_database_read_only(on=True)
    faulted = Traffic()
    faulted.send(stack.replicas, requests[:200])
    assert set(faulted.statuses) == {200}
    for port in stack.replicas:
        _wait(partial(_log_failing, port), 30, "/ready to say the log is failing")
        status, ready = _http("GET", f"http://127.0.0.1:{port}/ready")
        assert (status, ready["status"]) == (200, "degraded"), ready
        assert "read-only transaction" in ready["prediction_log"]["reason"], ready
    stack.log_database_read_only(on=False)
    stack.wait_logged(faulted.ids, "the predictions held while the log refused writes")
    for port in stack.replicas:
        _wait(partial(_log_writing, port), 30, "/ready to say the log is writing")

    # The MLflow server goes away: the replicas keep serving and say why they cannot poll.
    _stop(stack.processes[0])
    for port in stack.replicas:
        _wait(partial(_registry_error, port), 30, "/ready to say the registry is gone")
        status, ready = _http("GET", f"http://127.0.0.1:{port}/ready")
        assert status == 200, ready
        answered, body = _http("POST", f"http://127.0.0.1:{port}/predict", requests[0]["row"])
        assert (answered, body["model_version"]) == (200, "1")
