"""Reliability of the generated project's service under hostile input, load, a crash and an
outage of its model registry, measured against a running server and asserted.

Four phases on one rendered, trained project (default answers, `nox -s pipeline` has run):

1. fuzz: schemathesis (`--checks all`) against every operation of the service's OpenAPI schema;
   no answer may be a 5xx, none may contradict the schema;
2. load: the service's capacity measured (one-row `POST /predict` requests of real holdout rows,
   back to back on `--workers` connections), then requests at a fixed rate near it (`--rate`,
   by default `LOAD_SHARE` of the capacity); none may fail, memory must stay flat, and every
   answered request must be in the prediction log once the flush window has passed;
3. crash: the same load, the server SIGKILLed halfway and started again; the prediction log must
   pass `PRAGMA integrity_check`, and only requests answered within the flush window
   (`serve.flush_seconds`) before the kill may be missing from it;
4. registry outage: the tracking store becomes unreadable under a running server, which must keep
   serving its champion and say why in `/ready`; then a server started with no reachable registry
   must say why it cannot serve instead of failing;
5. hostile input (benchmarks/hostile.py): what the trust review sent, each answered as promised:
   forged and endless paths, non-finite numbers, text that is not Unicode, relabels, a tracking
   URI with a password (never shown), the API docs behind the key.

Usage: python benchmarks/reliability.py --project <rendered project> [--out <summary.json>]

Everything measured runs in the project's own virtualenv (`.nox/pipeline`); this script needs only
the standard library and the `schemathesis` command (the repository's `reliability` dependency
group). Unlike serve_bench.py it asserts: it exits 1 when a check fails and 2 when the
measurement itself could not run. POSIX only (process groups, /proc for memory).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import hostile
import serve_bench as sb

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / ".bench" / "reliability.json"
HOST = sb.HOST
# A flush that has started when the server is killed may still be writing: the crash window is
# the flush interval plus this much (a write of one interval's rows takes milliseconds).
FLUSH_SLACK_SECONDS = 0.25
# schemathesis failure codes (`st explain <code>`): 5xx answers, and answers the schema contradicts
# (undocumented status, content type or header, a body or header its schema rejects).
SERVER_ERROR_CODES = frozenset({"ST101", "ST102"})
SCHEMA_VIOLATION_CODES = frozenset(f"ST{n}" for n in range(103, 112))
FUZZ_TIMEOUT = 30 * 60  # seconds; a fuzz run that takes longer is a measurement that failed
LOAD_SHARE = 0.8  # of the measured capacity: the load step's rate unless --rate sets one
CAPACITY_SECONDS = 3.0  # of back-to-back requests to measure the capacity
# The server's resident memory may grow this much during the load step: the ids it keeps for
# feedback and the log rows of one flush interval. More is a leak.
MEMORY_GROWTH_KIB = 64 * 1024

# Runs with the project's python: the settings the checks depend on, as the service reads them.
CONFIG_SNIPPET = """
import importlib, json, sys
from pathlib import Path

config = importlib.import_module(sys.argv[1] + ".config")
project = config.load_project(Path(sys.argv[2]) / "configs" / "project.yaml")
serve = project.config.serve
print(json.dumps({
    "flush_seconds": serve.flush_seconds,
    "registry_poll_seconds": serve.registry_poll_seconds,
    "prediction_log_url": project.prediction_log_url,
    "store": str(project.local_store),
    "api_key_env": serve.api_key_env,
    "header_timeout_seconds": serve.header_timeout_seconds,
    "body_timeout_seconds": serve.body_timeout_seconds,
    "max_connections": serve.max_connections,
}))
"""


@dataclass(frozen=True)
class Settings:
    """What one run does; recorded in the summary so runs can be compared."""

    rate: float | None  # None: LOAD_SHARE of the capacity measured before the load step
    duration: float
    kill_seconds: float
    workers: int
    fuzz_examples: int
    fuzz_seed: int
    outage_requests: int
    rows: int
    start_timeout: float


@dataclass(frozen=True)
class ServiceConfig:
    """The project's serving settings the checks are judged by."""

    flush_seconds: float
    registry_poll_seconds: float
    prediction_log: Path  # the embedded SQLite log (the default; no PREDICTION_LOG_URL set)
    store: Path
    api_key_env: str
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int


@dataclass(frozen=True)
class Outcome:
    """One request of a load run, with monotonic times in seconds."""

    sent_at: float
    answered_at: float
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    prediction_id: str | None


# ------------------------------------------------------------------------------------------------
# The project and its server
# ------------------------------------------------------------------------------------------------


def read_config(project: sb.Project) -> ServiceConfig:
    data = sb.run_snippet(project, CONFIG_SNIPPET, [project.package, str(project.root)])
    return ServiceConfig(
        flush_seconds=float(data["flush_seconds"]),
        registry_poll_seconds=float(data["registry_poll_seconds"]),
        prediction_log=Path(str(data["prediction_log_url"]).removeprefix("sqlite:///")),
        store=Path(data["store"]),
        api_key_env=str(data["api_key_env"]),
        header_timeout_seconds=float(data["header_timeout_seconds"]),
        body_timeout_seconds=float(data["body_timeout_seconds"]),
        max_connections=int(data["max_connections"]),
    )


class Server:
    """`python -m <package> serve` in its own process group, logging to one file per start."""

    def __init__(self, project: sb.Project, port: int, logs: Path, env: dict[str, str]) -> None:
        self.project, self.port, self.logs, self.env = project, port, logs, env
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.logs / f"server-{self.port}-{self.starts}.log"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise sb.BenchError("the server is not running")
        return self.process.pid

    def start(self, timeout: float, ready: bool = True) -> float:
        """Start and wait for `/ready` 200 (or `/health` 200 when `ready` is False); seconds."""
        self.starts += 1
        began = time.monotonic()
        argv = [str(self.project.python), "-m", self.project.package, "serve"]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(  # noqa: S603 - the project's own server
                [*argv, *sb.listen(self.port)],
                cwd=self.project.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for("/ready" if ready else "/health", timeout)
        return time.monotonic() - began

    def wait_for(self, path: str, timeout: float) -> None:
        if self.process is None:
            raise sb.BenchError(f"the server is not running, so {path} cannot become 200")
        try:
            sb.wait_ready(self.process, "the server", self.port, path, timeout)
        except sb.BenchError as error:
            raise sb.BenchError(f"{error}\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown handler runs, nothing is flushed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """SIGTERM: the service flushes its prediction log on the way out."""
        if self.process is not None:
            sb.stop(self.process)
        self.process = None

    def rss_kib(self) -> int | None:
        """Resident memory of the server process (Linux /proc), None where it cannot be read."""
        with contextlib.suppress(OSError, ValueError, sb.BenchError):
            for line in Path(f"/proc/{self.pid}/status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def tail(self) -> str:
        return f"--- server log ---\n{sb.log_tail(self.log)}"


def get_json(port: int, path: str) -> tuple[int, dict[str, Any]]:
    status, body = sb.get_status(port, path)
    try:
        data = json.loads(body)
    except ValueError:
        data = {"body": body[:500].decode(errors="replace")}
    return status, data if isinstance(data, dict) else {"body": data}


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.25) -> float | None:
    """Seconds until `condition()` held, or None when it did not within `timeout`."""
    began = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            return None
        time.sleep(step)


# ------------------------------------------------------------------------------------------------
# The prediction log
# ------------------------------------------------------------------------------------------------


def logged_ids(path: Path) -> set[str]:
    """Ids of every served prediction in the SQLite log (read while the server writes)."""
    if not path.exists():
        return set()
    with closing(sqlite3.connect(path, timeout=30)) as db:
        query = "SELECT prediction_id FROM predictions WHERE served = 1"
        return {row[0] for row in db.execute(query)}


def integrity(path: Path) -> dict[str, str]:
    """`PRAGMA integrity_check` of the log file, by file name: "ok" or SQLite's complaint."""
    try:
        with closing(sqlite3.connect(path, timeout=30)) as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        return {path.name: "; ".join(str(row[0]) for row in rows)[:500]}
    except sqlite3.Error as error:
        return {path.name: f"{type(error).__name__}: {error}"}


# ------------------------------------------------------------------------------------------------
# Fuzz
# ------------------------------------------------------------------------------------------------


def find_schemathesis(given: Path | None) -> Path:
    """The given command, else the one installed beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "schemathesis"
    found = given or (beside if beside.exists() else None) or shutil.which("schemathesis")
    if not found:
        raise sb.BenchError("schemathesis not found: install the `reliability` dependency group")
    return Path(found)


def fuzz(command: Path, port: int, settings: Settings, scratch: Path) -> dict[str, Any]:
    """schemathesis with every check, on every operation; its JSON report gives the counts."""
    report, output = scratch / "schemathesis.json", scratch / "schemathesis.log"
    argv = [
        str(command),
        *("run", f"http://{HOST}:{port}/openapi.json", "--checks", "all"),
        *("--max-examples", str(settings.fuzz_examples), "--seed", str(settings.fuzz_seed)),
        *("--generation-database", "none", "--no-color", "--request-timeout", "30"),
        *("--report", "json", "--report-json-path", str(report)),
    ]
    note(f"fuzz: schemathesis, {settings.fuzz_examples} examples per operation")
    with output.open("wb") as sink:
        done = subprocess.run(  # noqa: S603 - schemathesis against our own server
            argv,
            cwd=scratch,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=FUZZ_TIMEOUT,
            check=False,
        )
    if not report.exists():
        raise sb.BenchError(
            f"schemathesis exited {done.returncode} without a report:\n{sb.log_tail(output)}"
        )
    data = json.loads(report.read_text(encoding="utf-8"))
    failures: dict[str, int] = {}
    for failure in data.get("failures", []):
        failures[failure["code"]] = failures.get(failure["code"], 0) + int(failure["count"])
    operations = data.get("operations", {})
    summary = {
        "schemathesis_version": data.get("schemathesis_version"),
        "exit_code": done.returncode,
        "operations_total": operations.get("total", 0),
        "operations_tested": operations.get("tested", 0),
        "test_cases": data.get("test_cases", {}).get("generated", 0),
        "server_errors": sum(n for code, n in failures.items() if code in SERVER_ERROR_CODES),
        "schema_violations": sum(
            n for code, n in failures.items() if code in SCHEMA_VIOLATION_CODES
        ),
        "other_failures": sum(
            n
            for code, n in failures.items()
            if code not in SERVER_ERROR_CODES | SCHEMA_VIOLATION_CODES
        ),
        "errors": len(data.get("errors", [])),
        "failures_by_code": failures,
    }
    if summary["server_errors"] or summary["schema_violations"] or summary["errors"]:
        note(f"fuzz findings:\n{sb.log_tail(output, 6000)}")
    return summary


# ------------------------------------------------------------------------------------------------
# Load at a fixed rate
# ------------------------------------------------------------------------------------------------


def send(connections: queue.SimpleQueue[sb.Client], body: bytes) -> Outcome:
    """One `POST /predict` on a pooled keep-alive connection; a failure is an outcome too."""
    client = connections.get()
    sent = time.monotonic()
    try:
        status, answer = client.post("/predict", body)
        pid = json.loads(answer).get("prediction_id") if status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        status, pid = 0, None
    finally:
        connections.put(client)
    return Outcome(sent, time.monotonic(), status, pid)


def fixed(settings: Settings) -> float:
    """The load's rate, which `run` fixes (from the capacity) before any load starts."""
    if settings.rate is None:
        raise sb.BenchError("the load rate was not fixed before the load started")
    return settings.rate


def fixed_rate(
    port: int, bodies: Sequence[bytes], settings: Settings, finish: threading.Event, cap: float
) -> list[Outcome]:
    """Requests at `settings.rate` per second, whatever the answers take (an open loop), until
    `finish` is set or `cap` seconds have passed; every request is bounded by the cap."""
    connections: queue.SimpleQueue[sb.Client] = queue.SimpleQueue()
    clients = [sb.Client(port) for _ in range(settings.workers)]
    for client in clients:
        connections.put(client)
    futures: list[Future[Outcome]] = []
    try:
        with ThreadPoolExecutor(max_workers=settings.workers) as pool:
            began = time.monotonic()
            rate = fixed(settings)
            for i in range(int(cap * rate) + 1):
                due = began + i / rate
                if finish.is_set() or i / rate >= cap:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                futures.append(pool.submit(send, connections, bodies[i % len(bodies)]))
            return [future.result() for future in futures]
    finally:
        for client in clients:
            client.close()


def capacity(server: Server, bodies: Sequence[bytes], settings: Settings) -> float:
    """Requests per second the service answers with `settings.workers` clients back to back."""
    target = sb.Server(
        "ours", [], {}, "/ready", "/predict", list(bodies), sb.ours_score, lambda _port: None
    )
    measured = sb.throughput(target, server.port, settings.workers, CAPACITY_SECONDS)
    if measured.errors or not measured.ok:
        raise sb.BenchError(f"capacity run: {measured.errors} errors, {measured.ok} answers")
    return measured.rps


def steady_load(
    server: Server, bodies: Sequence[bytes], settings: Settings, config: ServiceConfig
) -> dict[str, Any]:
    """`settings.duration` seconds at the fixed rate; then every answer must reach the log."""
    note(f"load: {fixed(settings):.0f} req/s for {settings.duration:g}s")
    rss_start = server.rss_kib()
    finish = threading.Event()  # never set: the run ends at its length
    outcomes = fixed_rate(server.port, bodies, settings, finish, settings.duration)
    rss_end = server.rss_kib()
    answered = {o.prediction_id for o in outcomes if o.status == 200 and o.prediction_id}
    missing: set[str] = set(answered)

    def complete() -> bool:
        missing.intersection_update(answered - logged_ids(config.prediction_log))
        return not missing

    waited = wait_until(complete, timeout=3 * config.flush_seconds + 10)
    span = outcomes[-1].sent_at - outcomes[0].sent_at if len(outcomes) > 1 else 0.0
    latencies = [round((o.answered_at - o.sent_at) * 1e9) for o in outcomes if o.status == 200]
    return {
        "requests": len(outcomes),
        "ok": sum(o.status == 200 for o in outcomes),
        "errors": sum(o.status != 200 for o in outcomes),
        "statuses": count_statuses(outcomes),
        "rate": settings.rate,
        "achieved_rps": (len(outcomes) - 1) / span if span > 0 else 0.0,
        "latency": sb.summary_ms(latencies),
        "rss_kib": {"start": rss_start, "end": rss_end},
        "logged": len(answered) - len(missing),
        "missing_from_log": len(missing),
        "seconds_until_logged": waited,
    }


def count_statuses(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[str(outcome.status)] = counts.get(str(outcome.status), 0) + 1
    return counts


# ------------------------------------------------------------------------------------------------
# Crash and restart under load
# ------------------------------------------------------------------------------------------------


def crash_under_load(
    server: Server, bodies: Sequence[bytes], settings: Settings
) -> tuple[list[Outcome], dict[str, float]]:
    """Load; SIGKILL halfway through `kill_seconds`; restart; load goes on as long again."""
    half = settings.kill_seconds / 2
    note(f"crash: SIGKILL after {half:g}s of load, then restart")
    finish = threading.Event()
    cap = settings.kill_seconds + settings.start_timeout
    with ThreadPoolExecutor(max_workers=1) as runner:
        load = runner.submit(fixed_rate, server.port, bodies, settings, finish, cap)
        try:
            began = time.monotonic()
            time.sleep(half)
            killed_at = time.monotonic()
            server.kill()
            restarted_at = time.monotonic()
            server.start(settings.start_timeout)
            ready_at = time.monotonic()
            time.sleep(half)
        finally:
            finish.set()
        outcomes = load.result()
    times = {
        "killed_after_s": killed_at - began,
        "restarted_after_s": restarted_at - began,
        "ready_after_s": ready_at - began,
        "killed_at": killed_at,
        "restarted_at": restarted_at,
        "ready_at": ready_at,
    }
    return outcomes, times


def crash_report(
    outcomes: Sequence[Outcome], times: dict[str, float], logged: set[str], config: ServiceConfig
) -> dict[str, Any]:
    """What the kill cost. Answers read before the restart began came from the killed server;
    of those, only the ones answered within the flush window before the kill may be missing."""
    window = config.flush_seconds + FLUSH_SLACK_SECONDS
    killed_at, restarted_at = times["killed_at"], times["restarted_at"]
    ok = [o for o in outcomes if o.status == 200 and o.prediction_id]
    before = [o for o in ok if o.answered_at < restarted_at]
    after = [o for o in ok if o.answered_at >= restarted_at]
    in_window = {o.prediction_id for o in before if o.answered_at >= killed_at - window}
    lost = {o.prediction_id for o in before} - logged
    return {
        "requests": len(outcomes),
        "answered_before_kill": len(before),
        "answered_after_restart": len(after),
        "failed": sum(o.status != 200 for o in outcomes),
        "statuses": count_statuses(outcomes),
        "killed_after_s": times["killed_after_s"],
        "restart_to_ready_s": times["ready_at"] - restarted_at,
        "window_seconds": window,
        "answered_in_window": len(in_window),
        "lost": len(lost),
        "lost_outside_window": len(lost - in_window),
        "missing_after_restart": len({o.prediction_id for o in after} - logged),
    }


# ------------------------------------------------------------------------------------------------
# Registry outage
# ------------------------------------------------------------------------------------------------


def overwrite(path: Path, data: bytes) -> None:
    """`path` holds `data`, written over the old bytes in place, never truncated first: the
    server polls the file meanwhile, and SQLite takes an empty file for a new database, which
    MLflow would start to fill."""
    with path.open("r+b") as file:
        file.write(data)
        file.truncate()


def registry_outage(
    server: Server, bodies: Sequence[bytes], settings: Settings, config: ServiceConfig
) -> dict[str, Any]:
    """The store's file turns to garbage under the running server (in place: the server holds it
    open, so a rename would go unnoticed), then its bytes come back."""
    note("registry outage: the tracking store becomes unreadable")
    timeout = 3 * config.registry_poll_seconds + 30

    def registry_error() -> str | None:
        error = get_json(server.port, "/ready")[1].get("registry_error")
        return None if error is None else str(error)

    _, before = get_json(server.port, "/ready")
    champion = before.get("models", {}).get("champion")
    saved = config.store.read_bytes()
    try:
        overwrite(config.store, b"not a database" * 1000)
        noticed = wait_until(lambda: registry_error() is not None, timeout)
        ready_status, ready = get_json(server.port, "/ready")
        client, versions = sb.Client(server.port), []
        try:
            for i in range(settings.outage_requests):
                status, body = client.post("/predict", bodies[i % len(bodies)])
                versions.append(json.loads(body).get("model_version") if status == 200 else status)
        finally:
            client.close()
    finally:
        overwrite(config.store, saved)
    recovered = wait_until(lambda: registry_error() is None, timeout)
    return {
        "champion_before": champion,
        "seconds_until_noticed": noticed,
        "ready_status": ready_status,
        "ready_models": ready.get("models"),
        "ready_reason": scrub(str(ready.get("registry_error")), server.project.root)[:300],
        "requests": len(versions),
        "served_by_champion": sum(v == champion for v in versions),
        "seconds_until_recovered": recovered,
    }


def cold_start_without_registry(
    project: sb.Project, logs: Path, body: bytes, settings: Settings
) -> dict[str, Any]:
    """A server started while its registry is unreachable holds no model: it must start, answer
    503 and say why, rather than crash or answer 500. The tracking URI carries a password, which
    neither `/ready` (open to anyone) nor the log may show."""
    note("cold start: a server whose tracking server is unreachable")
    password = secrets.token_urlsafe(12)
    env = sb.project_env(project) | {
        "MLFLOW_TRACKING_URI": f"http://probe:{password}@{HOST}:{sb.free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    server = Server(project, sb.free_port(), logs, env)
    try:
        server.start(settings.start_timeout, ready=False)
        ready_status, ready = get_json(server.port, "/ready")
        client = sb.Client(server.port)
        try:
            predict_status, _ = client.post("/predict", body)
        finally:
            client.close()
    finally:
        server.stop()
    shown = hostile.credentials_hidden(ready, server.log.read_text(errors="replace"), password)
    return {
        "ready_status": ready_status,
        "ready_reason": scrub(str(ready.get("registry_error")), project.root)[:300],
        "has_reason": bool(ready.get("registry_error")),
        "predict_status": predict_status,
        "probe": asdict(shown),
    }


def hostile_input(
    server: Server, row: dict[str, Any], config: ServiceConfig
) -> list[hostile.Probe]:
    """The trust review's hostile requests against the running default service. The slow
    clients wait out the server's deadlines meanwhile, on connections of their own."""
    note("hostile input: too many connections")
    probes = [hostile.connection_limit(server.port, config.max_connections)]
    note("hostile input: slow clients, forged paths, non-finite numbers, lone surrogates, relabels")
    with ThreadPoolExecutor(max_workers=1) as waiting:
        slow = waiting.submit(
            hostile.slow_clients,
            server.port,
            config.header_timeout_seconds,
            config.body_timeout_seconds,
        )
        probes += [
            hostile.forged_metrics(server.port),
            hostile.non_finite_numbers(server.port, row),
            hostile.text_that_is_not_unicode(server.port, row),
            hostile.relabel(server.port, row),
        ]
        probes.append(slow.result())
    note("hostile input: a storage fault under the prediction log")
    probes.append(
        hostile.storage_fault(
            server.port, row, config.prediction_log, lambda: logged_ids(config.prediction_log)
        )
    )
    return probes


def hanging_tracking_database(project: sb.Project, logs: Path, settings: Settings) -> hostile.Probe:
    """A server whose PostgreSQL tracking database accepts connections and never answers (a
    listening socket nobody reads): `/health` must answer, `/ready` must say why."""
    note("hostile input: a tracking database that never answers")
    with socket.create_server((HOST, 0)) as silent:
        port = silent.getsockname()[1]
        password = secrets.token_urlsafe(12)
        env = sb.project_env(project) | {
            "MLFLOW_TRACKING_URI": f"postgresql://probe:{password}@{HOST}:{port}/mlflow"
        }
        server = Server(project, sb.free_port(), logs, env)
        health: float | None = None
        ready: tuple[int, dict[str, Any]] = (0, {})
        try:
            health = server.start(settings.start_timeout, ready=False)
            ready = get_json(server.port, "/ready")
        except sb.BenchError as error:
            note(f"the server did not answer /health: {error}")
        finally:
            server.stop()
    probe = hostile.hanging_backend(health, ready)
    if password in json.dumps(ready[1]) + server.log.read_text(errors="replace"):
        probe = replace(probe, passed=False, measured=probe.measured + "; the password shows")
    return probe


def command_line(project: sb.Project, scratch: Path) -> list[hostile.Probe]:
    """The trust review's probes of the project's CLI, run as a user would (its own python)."""
    note("hostile input: the command line")

    def cli(args: list[str]) -> tuple[int, str, str]:
        done = subprocess.run(  # noqa: S603 - the project's own CLI
            [str(project.python), "-m", project.package, *args],
            cwd=project.root,
            env=sb.project_env(project),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    return [
        hostile.results_on_stdout(cli),
        hostile.repeated_columns(cli, scratch),
        hostile.huge_cell(cli, scratch),
    ]


def keyed_service(
    project: sb.Project, logs: Path, config: ServiceConfig, settings: Settings
) -> list[hostile.Probe]:
    """A server that requires an API key (set through the variable `serve.api_key_env` names)."""
    note("hostile input: a service that requires an API key")
    key = secrets.token_urlsafe(16)
    env = sb.project_env(project) | {config.api_key_env: key}
    server = Server(project, sb.free_port(), logs, env)
    try:
        server.start(settings.start_timeout, ready=False)
        return [hostile.docs_behind_the_key(server.port, key)]
    finally:
        server.stop()


def scrub(text: str, root: Path) -> str:
    """Messages name the project's folder: the summary says `<project>` instead."""
    return text.replace(str(root), "<project>")


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


def run(project_root: Path, settings: Settings, schemathesis: Path | None) -> dict[str, Any]:
    """Fuzz, load, crash, outage on one server (restarted once), then a cold start."""
    command = find_schemathesis(schemathesis)
    project = sb.open_project(project_root)
    config = read_config(project)
    rows = sb.load_rows(project, settings.rows)
    bodies = [json.dumps(row).encode() for row in rows.records]
    note(f"{project.model_name}@champion, {len(bodies)} holdout rows")
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        logs = Path(scratch)
        server = Server(project, sb.free_port(), logs, sb.project_env(project))
        try:
            server.start(settings.start_timeout)
            champion = get_json(server.port, "/ready")[1].get("models", {}).get("champion")
            version = None if champion is None else str(champion)
            rss_ready = server.rss_kib()
            fuzzed = fuzz(command, server.port, settings, logs)
            capacity_rps = capacity(server, bodies, settings)
            if settings.rate is None:
                settings = replace(settings, rate=LOAD_SHARE * capacity_rps)
            load = steady_load(server, bodies, settings, config)
            load["rss_kib"]["ready"] = rss_ready
            load["capacity_rps"] = capacity_rps
            outcomes, times = crash_under_load(server, bodies, settings)
            outage = registry_outage(server, bodies, settings, config)
            probes = hostile_input(server, rows.records[0], config)
        finally:
            server.stop()  # flushes what the restarted server holds
        crash = crash_report(outcomes, times, logged_ids(config.prediction_log), config)
        crash["integrity_check"] = integrity(config.prediction_log)
        cold = cold_start_without_registry(project, logs, bodies[0], settings)
        probes += keyed_service(project, logs, config, settings)
        probes += command_line(project, logs)
        probes.append(hanging_tracking_database(project, logs, settings))
    probes.append(hostile.Probe(**cold["probe"]))
    return summarise(
        project=project,
        version=version,
        settings=settings,
        config=config,
        parts={"fuzz": fuzzed, "load": load, "crash": crash, "registry_outage": outage},
        cold=cold,
        probes=sorted(probes, key=lambda probe: probe.finding),
    )


def summarise(
    *,
    project: sb.Project,
    version: str | None,
    settings: Settings,
    config: ServiceConfig,
    parts: dict[str, dict[str, Any]],
    cold: dict[str, Any],
    probes: Sequence[hostile.Probe],
) -> dict[str, Any]:
    """Every figure, plus one pass flag per promise, as one JSON-ready mapping."""
    fuzzed, load, crash, outage = (
        parts["fuzz"],
        parts["load"],
        parts["crash"],
        parts["registry_outage"],
    )
    checks = {
        "fuzz_no_5xx": fuzzed["server_errors"] == 0 and fuzzed["errors"] == 0,
        "fuzz_no_schema_violations": fuzzed["schema_violations"] == 0,
        "fuzz_every_operation": fuzzed["operations_tested"] == fuzzed["operations_total"] > 0,
        "load_no_errors": load["errors"] == 0 and load["requests"] > 0,
        "load_memory_flat": None not in (load["rss_kib"]["start"], load["rss_kib"]["end"])
        and load["rss_kib"]["end"] - load["rss_kib"]["start"] <= MEMORY_GROWTH_KIB,
        "load_log_complete": load["missing_from_log"] == 0,
        "crash_log_integrity_ok": bool(crash["integrity_check"])
        and all(result == "ok" for result in crash["integrity_check"].values()),
        "crash_loss_within_flush_window": crash["lost_outside_window"] == 0,
        "crash_serving_resumed": crash["answered_after_restart"] > 0,
        "crash_log_complete_after_restart": crash["missing_after_restart"] == 0,
        "outage_keeps_serving": outage["requests"] > 0
        and outage["served_by_champion"] == outage["requests"]
        and outage["ready_status"] == 200,
        "outage_ready_says_why": outage["seconds_until_noticed"] is not None,
        "outage_recovers": outage["seconds_until_recovered"] is not None,
        "cold_start_says_why": cold["ready_status"] == 503
        and cold["has_reason"]
        and cold["predict_status"] == 503,
        **{f"hostile_{probe.name}": probe.passed for probe in probes},
    }
    return {
        "model": {"name": project.model_name, "version": version, "task": project.task},
        "settings": asdict(settings),
        "service": {
            "flush_seconds": config.flush_seconds,
            "registry_poll_seconds": config.registry_poll_seconds,
        },
        **parts,
        "cold_start_without_registry": cold,
        "hostile_input": [asdict(probe) for probe in probes],
        "checks": checks,
        "passed": all(checks.values()),
    }


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f}"


def render(summary: dict[str, Any]) -> str:
    """One line per promise: what was measured, and whether it held."""
    s, c = summary["settings"], summary["checks"]
    fz, ld, cr = summary["fuzz"], summary["load"], summary["crash"]
    ou, cs = summary["registry_outage"], summary["cold_start_without_registry"]
    lat, rss = ld["latency"], ld["rss_kib"]
    files = cr["integrity_check"]
    rows = [
        ["check", "measured", "result"],
        [
            "fuzz: 5xx answers",
            f"{fz['server_errors']} in {fz['test_cases']} cases ({fz['errors']} errors)",
            verdict(c["fuzz_no_5xx"]),
        ],
        [
            "fuzz: schema violations",
            str(fz["schema_violations"]),
            verdict(c["fuzz_no_schema_violations"]),
        ],
        [
            "fuzz: operations tested",
            f"{fz['operations_tested']}/{fz['operations_total']}",
            verdict(c["fuzz_every_operation"]),
        ],
        ["fuzz: other findings (reported only)", str(fz["other_failures"]), ""],
        ["load: capacity (back to back)", f"{ld['capacity_rps']:.0f} req/s", ""],
        [
            f"load: errors at {ld['rate']:.0f} req/s for {s['duration']:g}s",
            f"{ld['errors']} of {ld['requests']} ({ld['achieved_rps']:.0f} req/s)",
            verdict(c["load_no_errors"]),
        ],
        ["load: latency p50 / p99", f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms", ""],
        [
            "load: server RSS ready / start / end",
            f"{mib(rss.get('ready'))} / {mib(rss['start'])} / {mib(rss['end'])} MiB",
            verdict(c["load_memory_flat"]),
        ],
        [
            "load: answered requests in the log",
            f"{ld['logged']} of {ld['logged'] + ld['missing_from_log']}",
            verdict(c["load_log_complete"]),
        ],
        [
            "crash: log integrity_check",
            ", ".join(f"{name}: {result}" for name, result in files.items()) or "no log",
            verdict(c["crash_log_integrity_ok"]),
        ],
        [
            "crash: lost logged predictions",
            f"{cr['lost']} (window {cr['window_seconds']:.2f}s allows {cr['answered_in_window']})",
            verdict(c["crash_loss_within_flush_window"]),
        ],
        [
            "crash: restart, answers after it",
            f"ready in {cr['restart_to_ready_s']:.1f}s, {cr['answered_after_restart']} answered, "
            f"{cr['failed']} failed meanwhile",
            verdict(c["crash_serving_resumed"]),
        ],
        [
            "crash: answers after restart in the log",
            f"{cr['missing_after_restart']} missing",
            verdict(c["crash_log_complete_after_restart"]),
        ],
        [
            "registry outage: champion keeps serving",
            f"{ou['served_by_champion']}/{ou['requests']} by v{ou['champion_before']}, "
            f"/ready {ou['ready_status']}",
            verdict(c["outage_keeps_serving"]),
        ],
        [
            "registry outage: /ready says why",
            f"after {seconds(ou['seconds_until_noticed'])}: {ou['ready_reason'][:40]}",
            verdict(c["outage_ready_says_why"]),
        ],
        [
            "registry back: error clears",
            f"after {seconds(ou['seconds_until_recovered'])}",
            verdict(c["outage_recovers"]),
        ],
        [
            "cold start without registry",
            f"/ready {cs['ready_status']}, /predict {cs['predict_status']}, "
            f"{'says why' if cs['has_reason'] else 'no reason given'}",
            verdict(c["cold_start_says_why"]),
        ],
        *(
            [f"hostile #{p['finding']}: {p['name']}", p["measured"], verdict(p["passed"])]
            for p in summary["hostile_input"]
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def note(message: str) -> None:
    print(f"[reliability] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Path, Path, Settings, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--project", type=Path, required=True, help="rendered, trained project")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON summary to write")
    parser.add_argument(
        "--rate", type=float, help=f"requests per second; default {LOAD_SHARE:g} x the capacity"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of steady load")
    parser.add_argument(
        "--kill-seconds", type=float, default=20.0, help="load around the crash, killed halfway"
    )
    parser.add_argument("--workers", type=int, default=16, help="connections of the load client")
    parser.add_argument("--fuzz-examples", type=int, default=100, help="cases per operation")
    parser.add_argument("--fuzz-seed", type=int, default=1, help="schemathesis seed")
    parser.add_argument("--outage-requests", type=int, default=20, help="during the outage")
    parser.add_argument("--rows", type=int, default=500, help="holdout rows to cycle through")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds to be ready")
    parser.add_argument("--schemathesis", type=Path, help="the schemathesis command to run")
    args = parser.parse_args(argv)
    for name in ("rate", "duration", "kill_seconds", "workers", "fuzz_examples", "rows"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    settings = Settings(
        rate=args.rate,
        duration=args.duration,
        kill_seconds=args.kill_seconds,
        workers=args.workers,
        fuzz_examples=args.fuzz_examples,
        fuzz_seed=args.fuzz_seed,
        outage_requests=max(args.outage_requests, 1),
        rows=args.rows,
        start_timeout=args.start_timeout,
    )
    return args.project, args.out, settings, args.schemathesis


def main(argv: Sequence[str] | None = None) -> int:
    project_root, out, settings, schemathesis = parse_args(argv)
    try:
        summary = run(project_root, settings, schemathesis)
    except (sb.BenchError, OSError, subprocess.SubprocessError) as error:
        print(f"reliability: error: {error}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(render(summary))
    failed = [name for name, passed in summary["checks"].items() if not passed]
    print(f"\nsummary written to {out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
