"""Serving benchmark: the generated project's service against an empty endpoint and
`mlflow models serve`.

The machines this runs on are small, shared and noisy, so absolute numbers mean little; what
this script reports is the ratio of numbers measured side by side in one run, on the same
champion model and the same holdout rows:

* an empty endpoint: FastAPI on uvicorn with the service's own request model and settings,
  answering a constant; what HTTP and validation alone cost, the floor no service can beat;
* our service (`python -m <package> serve`), `POST /predict` with one row, scoring with the
  champion's verified compiled form (the default);
* our service again with `serve.scoring: scikit-learn`, the fitted pipeline itself;
* `mlflow models serve` on `models:/<name>@champion`, `POST /invocations` with one row;
* in process: the compiled form and scikit-learn on one row.

Usage, on a project rendered with default answers whose `nox -s pipeline` has run:

    python benchmarks/serve_bench.py --project <rendered project> --out <report.json>

Every measurement runs in the project's own virtualenv (`.nox/pipeline`); this script needs only
the standard library. It is a measurement, not a test: a missed target is reported and the exit
code stays 0. It exits 2 when the measurement itself failed (a server did not start, warm-up
requests were refused, the project is not trained). POSIX only (process groups).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MLFLOW_THROUGHPUT_TARGET = 20.0  # ours / mlflow serve, requests per second at concurrency 8
EMPTY_THROUGHPUT_TARGET = 0.25  # ours / the empty endpoint, requests per second
P50_OVER_EMPTY_TARGET_MS = 1.5  # ours sequential p50 minus the empty endpoint's
P99_OVER_EMPTY_TARGET_MS = 3.0  # ours sequential p99 minus the empty endpoint's
COMPARED_ROWS = 20  # rows whose scores must agree across the three paths
SCORE_TOLERANCE = 1e-9
NOISY_CORES = 0.25  # CPU used by processes outside the benchmark that makes a run suspect
HOST = "127.0.0.1"
JSON_HEADERS = {"Content-Type": "application/json", "Connection": "keep-alive"}

# Runs with the project's python: prints the holdout rows (target dropped, NaN as null, times as
# ISO strings) and the column roles, from the snapshot's own manifest when it records a schema.
ROWS_SNIPPET = """
import json, sys
from pathlib import Path
import pandas as pd

root = Path(sys.argv[1]) / "data" / "snapshots"
snapshot = root / (root / "LATEST").read_text(encoding="utf-8").strip()
manifest = json.loads((snapshot / "manifest.json").read_text(encoding="utf-8"))
columns = manifest.get("schema", {}).get("columns") or [
    {"name": "customer_id", "role": "id"},
    {"name": "event_time", "role": "timestamp"},
    *({"name": n, "role": "numeric"} for n in
      ("tenure_months", "monthly_spend", "support_tickets", "discount_rate")),
    *({"name": n, "role": "categorical"} for n in ("plan", "region", "channel")),
    {"name": "churned", "role": "target"},
    {"name": "next_month_spend", "role": "target"},
]
roles = {}
for column in columns:
    roles.setdefault(column["role"], []).append(column["name"])
frame = pd.read_parquet(snapshot / "holdout.parquet").head(int(sys.argv[2]))
frame = frame.drop(columns=[c for c in roles.get("target", []) if c in frame.columns])
print(json.dumps({
    "snapshot": snapshot.name,
    "id": roles["id"][0],
    "timestamp": roles["timestamp"][0],
    "numeric": roles.get("numeric", []),
    "categorical": roles.get("categorical", []),
    "rows": json.loads(frame.to_json(orient="records", date_format="iso")),
}))
"""

# Runs with the project's python: loads the champion and times scikit-learn alone on one-row
# frames built as the service used to build them (numeric float64 first, then categoricals as
# object with NaN), frame building plus prediction, and the compiled form on one row's dict.
FLOOR_SNIPPET = """
import importlib, json, sys, time
from pathlib import Path
import mlflow
import numpy as np
import pandas as pd

spec = json.load(sys.stdin)
model = mlflow.sklearn.load_model(f"models:/{spec['model_name']}@champion")
version = mlflow.MlflowClient().get_model_version_by_alias(spec["model_name"], "champion").version
numeric, categorical = spec["numeric"], spec["categorical"]
classify = spec["task"] == "binary_classification"
predict = model.predict_proba if classify else model.predict

def model_input(rows):
    frame = pd.DataFrame.from_records(rows)
    values = frame[numeric].astype("float64")
    groups = frame[categorical].astype(object)
    groups = groups.where(groups.notna(), np.nan)
    return pd.concat([values, groups], axis=1)

def timed(work, items, iterations):
    spent = []
    for i in range(iterations):
        item = items[i % len(items)]
        started = time.perf_counter_ns()
        work(item)
        spent.append(time.perf_counter_ns() - started)
    return spent

rows = spec["rows"]
frames = [model_input([row]) for row in rows]
timed(predict, frames, spec["warmup"])
alone = timed(predict, frames, spec["iterations"])
with_frame = timed(lambda row: predict(model_input([row])), rows, spec["iterations"])
compiled_ns = []
folder = Path(mlflow.artifacts.download_artifacts(f"models:/{spec['model_name']}@champion"))
if (folder / "compiled").is_dir():
    compiled = importlib.import_module(f"{spec['package']}.scoring.compiled")
    form = compiled.CompiledModel.load(folder / "compiled")
    timed(lambda row: form.score_records([row]), rows, spec["warmup"])
    compiled_ns = timed(lambda row: form.score_records([row]), rows, spec["iterations"])
scores = [
    float(predict(frame)[0, 1] if classify else predict(frame)[0])
    for frame in frames[: spec["compared"]]
]
import sklearn
versions = {"python": sys.version.split()[0], "mlflow": mlflow.__version__,
            "scikit-learn": sklearn.__version__, "pandas": pd.__version__}
print(json.dumps({"version": str(version), "predict_ns": alone, "with_frame_ns": with_frame,
                  "compiled_ns": compiled_ns, "scores": scores, "versions": versions}))
"""


# Runs with the project's python: the empty endpoint. The service's own request model (built
# from the project's schema), response model and uvicorn settings; the answer is a constant.
EMPTY_SNIPPET = """
import importlib, sys
import uvicorn
from fastapi import FastAPI

package, config, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
project = importlib.import_module(f"{package}.config").load_project(config)
schema = importlib.import_module(f"{package}.data").project_schema(project)
schemas = importlib.import_module(f"{package}.serve.schemas")
bodies = schemas.RequestModels.for_schema(schema, project.config.serve.max_batch_rows)
answer = schemas.Prediction(
    prediction_id="0" * 32, variant="champion", model_version="0", prediction=0.5, label=1
)

async def predict(body):
    return answer

async def ready():
    return {"ready": True}

predict.__annotations__ = {"body": bodies.row}
app = FastAPI()
app.add_api_route("/predict", predict, methods=["POST"], response_model=schemas.Prediction)
app.add_api_route("/ready", ready, methods=["GET"])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=False)
"""

# Runs with the project's python: a copy of the project's config that scores with scikit-learn.
SKLEARN_CONFIG_SNIPPET = """
import json, sys
from pathlib import Path
import yaml

source, target = Path(sys.argv[1]), Path(sys.argv[2])
config = yaml.safe_load(source.read_text(encoding="utf-8"))
config.setdefault("serve", {})["scoring"] = "scikit-learn"
target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
print(json.dumps({"config": str(target)}))
"""


class BenchError(RuntimeError):
    """The measurement could not be made; the message says what to look at."""


@dataclass(frozen=True)
class Settings:
    """What one run measures; recorded in the report so runs can be compared."""

    warmup: int
    requests: int
    concurrency: int
    seconds: float
    floor_iterations: int
    rows: int
    start_timeout: float


@dataclass(frozen=True)
class Project:
    """A rendered, trained project and the venv that runs everything measured here."""

    root: Path
    venv: Path
    package: str
    model_name: str
    task: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"


@dataclass(frozen=True)
class Rows:
    """The holdout rows every path scores, and the feature columns in schema order."""

    snapshot: str
    id_column: str
    timestamp_column: str
    numeric: list[str]
    categorical: list[str]
    records: list[dict[str, Any]]

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical


@dataclass(frozen=True)
class Server:
    """How to start one server, ask it whether it is ready, and send it a row."""

    label: str
    argv: list[str]
    env: dict[str, str]
    ready_path: str
    predict_path: str
    bodies: list[bytes]  # one encoded request per row, so the client does no JSON work
    score: Callable[[bytes], float]  # the row's score from a response body
    served_version: Callable[[int], str | None]  # the model version it says it serves, by port


@dataclass(frozen=True)
class Throughput:
    """Fixed-concurrency load for a fixed time: what got through, and how long each took."""

    ok: int
    errors: int
    seconds: float
    latencies_ns: list[int]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ServerResult:
    """One server's numbers plus the scores it gave, to check it served the same model."""

    sequential_ns: list[int]
    sequential_errors: int
    load: Throughput
    scores: list[float]
    version: str | None
    background_cores: float | None
    ready_seconds: float  # from the process's start to its first 200 on the ready path


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used by the whole machine and by the benchmark's own processes, at an instant."""

    machine: float
    benchmark: float
    at: float


# ------------------------------------------------------------------------------------------------
# Noise: a shared machine's other work shows up as CPU that none of our processes used
# ------------------------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """Busy CPU seconds of all cores since boot (Linux /proc/stat), steal time included."""
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of the live processes in a process group (the server and its children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text(encoding="ascii", errors="replace").rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # pgrp; utime and stime follow at 11 and 12
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_sample(pgid: int | None = None) -> CpuSample | None:
    """None where /proc is missing: the run is then reported without a noise figure."""
    try:
        machine = machine_busy_seconds()
    except (OSError, ValueError):
        return None
    children = os.times()
    own = time.process_time() + children.children_user + children.children_system
    return CpuSample(machine, own + (group_cpu_seconds(pgid) if pgid else 0.0), time.monotonic())


def background_cores(before: CpuSample | None, after: CpuSample | None) -> float | None:
    """Cores' worth of CPU used by everything but the benchmark between two samples."""
    if before is None or after is None or after.at <= before.at:
        return None
    others = (after.machine - before.machine) - (after.benchmark - before.benchmark)
    return max(others, 0.0) / (after.at - before.at)


# ------------------------------------------------------------------------------------------------
# The project
# ------------------------------------------------------------------------------------------------


def read_answers(path: Path) -> dict[str, str]:
    """Top-level scalar answers of `.copier-answers.yml`; stdlib only, so no YAML parser."""
    answers: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in " #\t" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        answers[key.strip()] = value.strip().strip("'\"")
    return answers


def open_project(root: Path, venv: Path | None = None) -> Project:
    """Check that the project was rendered and trained before spending minutes on it. `venv`
    replaces the project's `.nox/pipeline` (the one its `nox -s pipeline` made)."""
    root = root.resolve()
    answers_file = root / ".copier-answers.yml"
    if not answers_file.is_file():
        raise BenchError(f"{answers_file} not found: is --project a rendered project?")
    answers = read_answers(answers_file)
    missing = [key for key in ("package_name", "project_slug") if not answers.get(key)]
    if missing:
        raise BenchError(f"{answers_file} has no {', '.join(missing)}")
    project = Project(
        root=root,
        venv=root / ".nox" / "pipeline" if venv is None else venv.absolute(),
        package=answers["package_name"],
        model_name=answers["project_slug"],
        task=answers.get("task", "binary_classification"),
    )
    if not project.python.exists():
        raise BenchError(f"{project.python} not found: run `nox -s pipeline` in the project")
    if not (root / "mlflow.db").is_file():
        raise BenchError(f"{root / 'mlflow.db'} not found: run `nox -s pipeline` in the project")
    return project


def project_env(project: Project) -> dict[str, str]:
    """The environment for every measured process: the project's venv and its own store.

    The venv's bin goes first on PATH because `mlflow models serve` starts `uvicorn` by name.
    """
    env = dict(os.environ)
    env["PATH"] = f"{project.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(project.venv)
    env["MLFLOW_TRACKING_URI"] = project.tracking_uri
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    return env


def run_snippet(
    project: Project, code: str, args: Sequence[str], stdin: str = ""
) -> dict[str, Any]:
    """Run `code` with the project's python and parse the JSON object on its last stdout line."""
    done = subprocess.run(  # noqa: S603 - the project's own interpreter and our snippet
        [str(project.python), "-c", code, *args],
        cwd=project.root,
        env=project_env(project),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BenchError(f"helper failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    data = json.loads(lines[-1])
    if not isinstance(data, dict):
        raise BenchError(f"helper printed {lines[-1][:200]!r}, not a JSON object")
    return data


def load_rows(project: Project, limit: int) -> Rows:
    """Real rows from the latest holdout snapshot, as a client would send them."""
    data = run_snippet(project, ROWS_SNIPPET, [str(project.root), str(limit)])
    if not data["rows"]:
        raise BenchError(f"snapshot {data['snapshot']} has an empty holdout")
    return Rows(
        snapshot=data["snapshot"],
        id_column=data["id"],
        timestamp_column=data["timestamp"],
        numeric=data["numeric"],
        categorical=data["categorical"],
        records=data["rows"],
    )


# ------------------------------------------------------------------------------------------------
# The two servers
# ------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on now; the server binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def listen(port: int) -> list[str]:
    return ["--host", HOST, "--port", str(port)]


def ours_score(body: bytes) -> float:
    return float(json.loads(body)["prediction"])


def mlflow_scorer(task: str) -> Callable[[bytes], float]:
    """MLflow answers `{"predictions": [[p0, p1]]}` for predict_proba, `[value]` otherwise."""

    def score(body: bytes) -> float:
        first = json.loads(body)["predictions"][0]
        return float(first[1] if task == "binary_classification" else first)

    return score


def our_server(project: Project, rows: Rows, port: int, config: Path | None = None) -> Server:
    """Our service on the project's config, or on `config` (the scikit-learn copy)."""
    bodies = [json.dumps(row).encode() for row in rows.records]
    chosen = [] if config is None else ["-c", str(config)]
    return Server(
        label="ours" if config is None else "ours, scikit-learn",
        argv=[str(project.python), "-m", project.package, "serve", *chosen, *listen(port)],
        env=project_env(project),
        ready_path="/ready",
        predict_path="/predict",
        bodies=bodies,
        score=ours_score,
        served_version=our_version,
    )


def empty_server(project: Project, rows: Rows, port: int) -> Server:
    config = project.root / "configs" / "project.yaml"
    return Server(
        label="empty endpoint",
        argv=[str(project.python), "-c", EMPTY_SNIPPET, project.package, str(config), str(port)],
        env=project_env(project),
        ready_path="/ready",
        predict_path="/predict",
        bodies=[json.dumps(row).encode() for row in rows.records],
        score=ours_score,
        served_version=lambda _port: None,
    )


def mlflow_server(project: Project, rows: Rows, port: int) -> Server:
    """The model signature takes the feature columns only: no id, no timestamp."""
    bodies = [
        json.dumps({"dataframe_records": [{c: row.get(c) for c in rows.features}]}).encode()
        for row in rows.records
    ]
    return Server(
        label="mlflow serve",
        argv=[
            str(project.venv / "bin" / "mlflow"),
            *("models", "serve", "-m", f"models:/{project.model_name}@champion"),
            *("--env-manager", "local", *listen(port)),
        ],
        env=project_env(project),
        ready_path="/ping",
        predict_path="/invocations",
        bodies=bodies,
        score=mlflow_scorer(project.task),
        served_version=lambda _port: None,  # mlflow serve does not say which version it loaded
    )


def our_version(port: int) -> str | None:
    """The champion version our service says it holds (from `/ready`)."""
    status, body = get_status(port, "/ready")
    models = json.loads(body).get("models", {}) if status == 200 else {}
    version = models.get("champion")
    return None if version is None else str(version)


def log_tail(path: Path, characters: int = 4000) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return text[-characters:] or "(empty)"


def get_status(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(
    process: subprocess.Popen[bytes], label: str, port: int, path: str, timeout: float
) -> float:
    """Poll `path` until 200 (returns the seconds that took); fail early if the process dies."""
    began = time.monotonic()
    deadline, last = began + timeout, "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{label} exited with code {process.returncode} before {path} was 200")
        try:
            status, body = get_status(port, path)
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if status == 200:
                return time.monotonic() - began
            last = f"{status} {body[:500]!r}"
        time.sleep(0.02)
    raise BenchError(f"{label}: GET {path} not 200 after {timeout:.0f}s: {last}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the server's process group (mlflow runs uvicorn as a child), SIGKILL if needed."""
    pgid = process.pid  # started with start_new_session: the group is ours alone
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running(
    server: Server, port: int, cwd: Path, log: Path, timeout: float
) -> Iterator[tuple[int, float]]:
    """The server, started, ready, and stopped afterwards whatever happens; yields its process
    group and the seconds it took to be ready."""
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - servers of the project under measurement
            server.argv,
            cwd=cwd,
            env=server.env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            ready = wait_ready(process, server.label, port, server.ready_path, timeout)
        except BenchError as error:
            raise BenchError(f"{error}\n--- {server.label} log ---\n{log_tail(log)}") from None
        yield process.pid, ready  # the process group, for CPU accounting
    finally:
        stop(process)


# ------------------------------------------------------------------------------------------------
# Load
# ------------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection; reconnects after a failed request."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.connection.request("POST", path, body=body, headers=JSON_HEADERS)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # the next request opens a fresh connection
            raise

    def close(self) -> None:
        self.connection.close()


def check_and_warm(server: Server, port: int, warmup: int) -> list[float]:
    """The first rows' scores, then `warmup` more requests; any non-200 is an error."""
    client = Client(port)
    try:
        scores = []
        for i in range(min(COMPARED_ROWS, len(server.bodies))):
            status, body = client.post(server.predict_path, server.bodies[i])
            if status != 200:
                raise BenchError(
                    f"{server.label}: POST {server.predict_path} answered {status}: "
                    f"{body[:2000].decode(errors='replace')}\nrequest: {server.bodies[i]!r}"
                )
            try:
                scores.append(server.score(body))
            except (ValueError, KeyError, IndexError, TypeError) as error:
                raise BenchError(f"{server.label}: unexpected answer {body[:2000]!r}") from error
        for i in range(warmup):
            status, body = client.post(server.predict_path, server.bodies[i % len(server.bodies)])
            if status != 200:
                raise BenchError(f"{server.label}: warm-up request {i} answered {status}: {body!r}")
        return scores
    finally:
        client.close()


def sequential(server: Server, port: int, count: int) -> tuple[list[int], int]:
    """Latency of `count` requests one after the other on one connection, and the non-200s."""
    client, spent, errors = Client(port), [], 0
    try:
        for i in range(count):
            body = server.bodies[i % len(server.bodies)]
            started = time.perf_counter_ns()
            try:
                status, _ = client.post(server.predict_path, body)
            except (OSError, http.client.HTTPException):
                status = 0
            spent.append(time.perf_counter_ns() - started)
            errors += status != 200
        return spent, errors
    finally:
        client.close()


def worker(
    server: Server, port: int, offset: int, start: threading.Barrier, seconds: float
) -> tuple[int, int, list[int]]:
    """One of the concurrent clients: requests back to back until the shared deadline."""
    client, ok, errors, spent = Client(port), 0, 0, []
    try:
        client.connection.connect()  # connecting is not part of what is measured
        start.wait()
        deadline = time.perf_counter() + seconds
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter_ns()
            try:
                status, _ = client.post(server.predict_path, server.bodies[i % len(server.bodies)])
            except (OSError, http.client.HTTPException):
                status = 0
            spent.append(time.perf_counter_ns() - started)
            if status == 200:
                ok += 1
            else:
                errors += 1
            i += 1
        return ok, errors, spent
    finally:
        client.close()


def throughput(server: Server, port: int, concurrency: int, seconds: float) -> Throughput:
    """`concurrency` clients, each on its own keep-alive connection, for `seconds`."""
    start = threading.Barrier(concurrency + 1)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [
            pool.submit(worker, server, port, k * 97, start, seconds) for k in range(concurrency)
        ]
        start.wait()
        began = time.perf_counter()
        results = [future.result() for future in futures]
        elapsed = time.perf_counter() - began
    return Throughput(
        ok=sum(r[0] for r in results),
        errors=sum(r[1] for r in results),
        seconds=elapsed,
        latencies_ns=[ns for r in results for ns in r[2]],
    )


def bench_server(
    server: Server, port: int, project: Project, settings: Settings, log: Path
) -> ServerResult:
    """Start, check, warm up, measure latency then throughput, stop."""
    note(f"{server.label}: starting on port {port}")
    with running(server, port, project.root, log, settings.start_timeout) as (pgid, ready):
        note(f"{server.label}: ready after {ready:.1f}s; warm-up {settings.warmup} requests")
        try:
            scores = check_and_warm(server, port, settings.warmup)
            version = server.served_version(port)
        except (OSError, http.client.HTTPException) as error:
            raise BenchError(
                f"{server.label}: warm-up failed: {type(error).__name__}: {error}\n"
                f"--- {server.label} log ---\n{log_tail(log)}"
            ) from error
        note(f"{server.label}: {settings.requests} sequential requests")
        before = cpu_sample(pgid)
        spent, errors = sequential(server, port, settings.requests)
        note(f"{server.label}: concurrency {settings.concurrency} for {settings.seconds:g}s")
        load = throughput(server, port, settings.concurrency, settings.seconds)
        noise = background_cores(before, cpu_sample(pgid))
    return ServerResult(spent, errors, load, scores, version, noise, ready)


# ------------------------------------------------------------------------------------------------
# The floor
# ------------------------------------------------------------------------------------------------


def measure_floor(project: Project, rows: Rows, settings: Settings) -> dict[str, Any]:
    """The model alone, in process, on the same rows: what no server can beat."""
    note(f"floor: {settings.floor_iterations} in-process predictions")
    spec = {
        "package": project.package,
        "model_name": project.model_name,
        "task": project.task,
        "numeric": rows.numeric,
        "categorical": rows.categorical,
        "rows": rows.records,
        "warmup": settings.warmup,
        "iterations": settings.floor_iterations,
        "compared": COMPARED_ROWS,
    }
    before = cpu_sample()
    result = run_snippet(project, FLOOR_SNIPPET, [], stdin=json.dumps(spec))
    return result | {"background_cores": background_cores(before, cpu_sample())}


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return float(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)])


def summary_ms(latencies_ns: Sequence[int]) -> dict[str, float]:
    ms = [ns / 1e6 for ns in latencies_ns]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=math.nan),
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
    }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def server_report(result: ServerResult) -> dict[str, Any]:
    load = result.load
    return {
        "model_version": result.version,
        "ready_seconds": result.ready_seconds,
        "background_cores": result.background_cores,
        "sequential": summary_ms(result.sequential_ns) | {"errors": result.sequential_errors},
        "throughput": {
            "rps": load.rps,
            "ok": load.ok,
            "errors": load.errors,
            "seconds": load.seconds,
            "latency": summary_ms(load.latencies_ns),
        },
    }


def agreement(reference: Sequence[float], other: Sequence[float]) -> dict[str, Any]:
    """How far a server's scores are from the in-process ones on the same rows."""
    gaps = [abs(a - b) for a, b in zip(reference, other, strict=False)]
    return {
        "rows": len(gaps),
        "max_abs_diff": max(gaps, default=math.nan),
        "mismatched_rows": [i for i, gap in enumerate(gaps) if gap > SCORE_TOLERANCE],
    }


def target(description: str, value: float, threshold: float, *, at_most: bool) -> dict[str, Any]:
    passed = value <= threshold if at_most else value >= threshold
    return {"description": description, "threshold": threshold, "value": value, "passed": passed}


def build_report(
    *,
    project: Project,
    rows: Rows,
    settings: Settings,
    floor: dict[str, Any],
    servers: dict[str, ServerResult],
) -> dict[str, Any]:
    """Every number, the targets and their verdicts, as one JSON-ready mapping. `servers` holds
    `empty`, `ours`, `ours_scikit_learn` and `mlflow_serve`."""
    reports = {name: server_report(result) for name, result in servers.items()}
    ours, empty, mlflow = reports["ours"], reports["empty"], reports["mlflow_serve"]
    p50_gap = ours["sequential"]["p50_ms"] - empty["sequential"]["p50_ms"]
    p99_gap = ours["sequential"]["p99_ms"] - empty["sequential"]["p99_ms"]
    of_empty = ratio(ours["throughput"]["rps"], empty["throughput"]["rps"])
    over_mlflow = ratio(ours["throughput"]["rps"], mlflow["throughput"]["rps"])
    noise = {"floor": floor["background_cores"]} | {
        name: result.background_cores for name, result in servers.items()
    }
    return {
        "model": {
            "name": project.model_name,
            "version": floor["version"],
            "task": project.task,
            "package": project.package,
            "snapshot": rows.snapshot,
            "rows": len(rows.records),
        },
        "settings": vars(settings),
        "environment": {
            "project_venv": floor["versions"],
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "floor": {
            "predict": summary_ms(floor["predict_ns"]),
            "frame_and_predict": summary_ms(floor["with_frame_ns"]),
            "compiled": summary_ms(floor["compiled_ns"]),
        },
        **reports,
        "ratios": {
            "throughput_ours_over_empty": of_empty,
            "throughput_ours_over_mlflow": over_mlflow,
            "throughput_ours_over_scikit_learn": ratio(
                ours["throughput"]["rps"], reports["ours_scikit_learn"]["throughput"]["rps"]
            ),
            "sequential_p50_ours_minus_empty_ms": p50_gap,
            "sequential_p99_ours_minus_empty_ms": p99_gap,
        },
        "noise": {
            "threshold_cores": NOISY_CORES,
            "background_cores": noise,
            "noisy": any(value is not None and value > NOISY_CORES for value in noise.values()),
        },
        "agreement_with_floor": {
            name: agreement(floor["scores"], result.scores)
            for name, result in servers.items()
            if name != "empty"
        },
        "targets": {
            "p50_over_empty_ms": target(
                "sequential p50, ours - empty endpoint <= 1.5 ms",
                p50_gap,
                P50_OVER_EMPTY_TARGET_MS,
                at_most=True,
            ),
            "p99_over_empty_ms": target(
                "sequential p99, ours - empty endpoint <= 3 ms",
                p99_gap,
                P99_OVER_EMPTY_TARGET_MS,
                at_most=True,
            ),
            "throughput_of_empty": target(
                "throughput, ours / empty endpoint >= 0.25",
                of_empty,
                EMPTY_THROUGHPUT_TARGET,
                at_most=False,
            ),
            "throughput_over_mlflow": target(
                "throughput, ours / mlflow serve >= 20",
                over_mlflow,
                MLFLOW_THROUGHPUT_TARGET,
                at_most=False,
            ),
        },
    }


def table(rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns: the first left-aligned, the numbers right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


COLUMNS = {
    "empty": "empty endpoint",
    "ours": "ours (compiled)",
    "ours_scikit_learn": "ours (scikit-learn)",
    "mlflow_serve": "mlflow serve",
}


def render(report: dict[str, Any]) -> str:
    """The servers side by side, the in-process floor, and the verdicts."""
    servers = {name: report[name] for name in COLUMNS}
    concurrency = report["settings"]["concurrency"]

    def line(metric: str, read: Callable[[dict[str, Any]], float], digits: int = 2) -> list[str]:
        return [metric, *(f"{read(server):.{digits}f}" for server in servers.values())]

    rows = [
        ["metric", *COLUMNS.values()],
        line("ready after start (s)", lambda s: s["ready_seconds"], 1),
        line("sequential p50 (ms)", lambda s: s["sequential"]["p50_ms"]),
        line("sequential p99 (ms)", lambda s: s["sequential"]["p99_ms"]),
        line("sequential mean (ms)", lambda s: s["sequential"]["mean_ms"]),
        line(f"throughput c={concurrency} (req/s)", lambda s: s["throughput"]["rps"], 0),
        line(f"latency c={concurrency} p50 (ms)", lambda s: s["throughput"]["latency"]["p50_ms"]),
        line(f"latency c={concurrency} p99 (ms)", lambda s: s["throughput"]["latency"]["p99_ms"]),
        [
            "other processes' CPU (cores)",
            *(cores(report["noise"]["background_cores"][name]) for name in COLUMNS),
        ],
        [
            "errors (sequential + load)",
            *(str(s["sequential"]["errors"] + s["throughput"]["errors"]) for s in servers.values()),
        ],
    ]
    floor = report["floor"]
    floor_rows = [["in process, one row", "p50 (ms)", "p99 (ms)"]]
    for key, label in (
        ("compiled", "compiled form, from the row's dict"),
        ("predict", "scikit-learn predict* on a 1-row frame"),
        ("frame_and_predict", "frame building + scikit-learn predict*"),
    ):
        floor_rows.append([label, f"{floor[key]['p50_ms']:.3f}", f"{floor[key]['p99_ms']:.3f}"])
    verdicts = [
        f"target {goal['description']}: {goal['value']:.2f} -> "
        f"{'PASS' if goal['passed'] else 'MISS'}"
        for goal in report["targets"].values()
    ]
    return "\n\n".join([table(rows), table(floor_rows), "\n".join(verdicts)])


def cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def noise_warnings(report: dict[str, Any]) -> list[str]:
    """Phases during which the rest of the machine was busy: their numbers are not comparable."""
    phases = report["noise"]["background_cores"]
    busy = {name: value for name, value in phases.items() if value and value > NOISY_CORES}
    if not busy:
        return []
    during = ", ".join(f"{value:.2f} cores during {name}" for name, value in busy.items())
    return [f"warning: other processes used {during}; the ratios are unreliable, run again"]


def warnings(report: dict[str, Any]) -> list[str]:
    """Scores that differ from the in-process model's (a different model or input), and noise."""
    messages = noise_warnings(report)
    for label, found in report["agreement_with_floor"].items():
        if found["mismatched_rows"]:
            messages.append(
                f"warning: {label} scores differ from the in-process model on rows "
                f"{found['mismatched_rows']} (max |diff| {found['max_abs_diff']:.3g})"
            )
    for name in ("ours", "ours_scikit_learn"):
        if report[name]["model_version"] not in (None, report["model"]["version"]):
            messages.append(
                f"warning: {name} serves version {report[name]['model_version']}, "
                f"the champion is {report['model']['version']}"
            )
    if not report["floor"]["compiled"]["count"]:
        messages.append("warning: the champion has no compiled form; ours scored scikit-learn")
    return messages


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def note(message: str) -> None:
    print(f"[serve-bench] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Path, Path, Settings]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--project", type=Path, required=True, help="rendered, trained project")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--seconds", type=float, default=15.0, help="throughput run length")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the load run")
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring")
    parser.add_argument("--floor-iterations", type=int, default=2000, help="in-process calls")
    parser.add_argument("--rows", type=int, default=500, help="holdout rows to cycle through")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds to be ready")
    args = parser.parse_args(argv)
    for name in ("seconds", "concurrency", "requests", "floor_iterations", "rows"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    settings = Settings(
        warmup=max(args.warmup, 0),
        requests=args.requests,
        concurrency=args.concurrency,
        seconds=args.seconds,
        floor_iterations=args.floor_iterations,
        rows=args.rows,
        start_timeout=args.start_timeout,
    )
    return args.project, args.out, settings


def run(project_root: Path, out: Path, settings: Settings) -> dict[str, Any]:
    """The floor, then each server in turn, never two at once, on the same champion and rows."""
    project = open_project(project_root)
    rows = load_rows(project, settings.rows)
    note(f"{project.model_name}@champion ({project.task}), {len(rows.records)} holdout rows")
    floor = measure_floor(project, rows, settings)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as scratch:
        logs = Path(scratch)
        # In the project's configs folder, so that its relative paths resolve as the original's.
        copy = project.root / "configs" / f".serve-bench-{os.getpid()}.yaml"
        source = project.root / "configs" / "project.yaml"
        try:
            run_snippet(project, SKLEARN_CONFIG_SNIPPET, [str(source), str(copy)])
            starts: dict[str, Callable[[int], Server]] = {
                "empty": lambda port: empty_server(project, rows, port),
                "ours": lambda port: our_server(project, rows, port),
                "ours_scikit_learn": lambda port: our_server(project, rows, port, copy),
                "mlflow_serve": lambda port: mlflow_server(project, rows, port),
            }
            servers = {}
            for name, start in starts.items():
                port = free_port()
                servers[name] = bench_server(
                    start(port), port, project, settings, logs / f"{name}.log"
                )
        finally:
            copy.unlink(missing_ok=True)
    report = build_report(
        project=project, rows=rows, settings=settings, floor=floor, servers=servers
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    project_root, out, settings = parse_args(argv)
    try:
        report = run(project_root, out, settings)
    except BenchError as error:
        print(f"serve-bench: error: {error}", file=sys.stderr)
        return 2
    print(render(report))
    for message in warnings(report):
        print(message)
    print(f"\nreport written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
