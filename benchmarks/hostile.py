"""Hostile-input probes of a running generated service: what an attacker or a careless client
sends, each answered the way the service promises (docs/reliability.md, "Hostile input").

Each probe returns one `Probe`: the finding of the trust review it re-checks, what was sent,
what came back, and whether that is the promised answer. `benchmarks/reliability.py` runs them
against its server (and one started with an API key) and reports them in its table and JSON.
Standard library only, like the script that runs them.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import math
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
# A path that, printed into /metrics as it was requested, would end its label and add a line.
FORGED_PATH = "/x%22%7D%201%0Afake_metric%7Ba%3D%22b"
UNKNOWN_PATHS = 2_000  # unique unknown paths asked for; /metrics must not grow with them
METRICS_GROWTH_BYTES = 2_048  # what /metrics may grow by while they are counted (one series)
# Raw JSON numbers Python's json module writes and reads but no JSON encoder may answer with.
NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e400")
RELABELS = "service_feedback_relabels_total"
HUGE_CELL_CHARS = 10 * 1024 * 1024
TEXT_OUTPUT_BYTES = 100_000  # what `schema infer` may print, or write, about a 10 MB cell


@dataclass(frozen=True)
class Probe:
    """One hostile input and the service's answer to it."""

    name: str
    finding: int  # the number of the trust review's finding it re-checks
    sent: str
    measured: str
    passed: bool


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request on its own connection: (status, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=sent | dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def decoded(body: bytes) -> dict[str, Any] | None:
    """The JSON object of an answer, or None when it is not one."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def named_fields(body: bytes) -> list[str]:
    """The fields a 422 names (the last element of each error's `loc`)."""
    answer = decoded(body)
    if not isinstance(answer, dict) or not isinstance(answer.get("detail"), list):
        return []
    return [str(error.get("loc", ["?"])[-1]) for error in answer["detail"]]


def metric(port: int, name: str) -> float | None:
    """An unlabelled sample's value on /metrics."""
    _, page = request(port, "GET", "/metrics")
    for line in page.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- probes of the default service ----------------------------------------------------------


def forged_metrics(port: int) -> Probe:
    """Finding 2: a path carrying `"}` and a line feed, then many unique unknown paths."""
    status, _ = request(port, "GET", FORGED_PATH)
    before = len(request(port, "GET", "/metrics")[1])
    for i in range(UNKNOWN_PATHS):
        request(port, "GET", f"/probe-unknown/{i}")
    page = request(port, "GET", "/metrics")[1]
    grown = len(page) - before
    forged = b"fake_metric" in page
    return Probe(
        name="metrics_cannot_be_forged_or_grown",
        finding=2,
        sent=f"GET {FORGED_PATH}, then {UNKNOWN_PATHS} unique unknown paths",
        measured=f"{status}; forged line {'present' if forged else 'absent'}; "
        f"/metrics grew {grown} bytes",
        passed=status == 404 and not forged and grown <= METRICS_GROWTH_BYTES,
    )


def _number_field(row: Mapping[str, Any]) -> str:
    for name, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                continue
            return name
    raise ValueError("the row has no number field")


def _text_field(row: Mapping[str, Any]) -> str:
    for name, value in row.items():
        if isinstance(value, str):
            return name
    raise ValueError("the row has no text field")


def non_finite_numbers(port: int, row: Mapping[str, Any]) -> Probe:
    """Finding 5: NaN, Infinity, -Infinity and 1e400 in a number field: 422s naming it."""
    field = _number_field(row)
    answers = []
    for raw in NON_FINITE:
        body = json.dumps({**row, field: "@"}).replace('"@"', raw).encode()
        status, answer = request(port, "POST", "/predict", body)
        answers.append((raw, status, field in named_fields(answer)))
    return Probe(
        name="non_finite_numbers_are_422s",
        finding=5,
        sent=f"{', '.join(NON_FINITE)} as {field}",
        measured=", ".join(f"{raw}: {status}" for raw, status, _ in answers),
        passed=all(status == 422 and named for _, status, named in answers),
    )


def text_that_is_not_unicode(port: int, row: Mapping[str, Any]) -> Probe:
    """Finding 6: a lone surrogate in a text field is a 422 naming it, not a served answer the
    log then drops."""
    field = _text_field(row)
    body = json.dumps({**row, field: "c\ud800"}).encode()  # ensure_ascii: sent as \\ud800
    status, answer = request(port, "POST", "/predict", body)
    feedback = json.dumps({"prediction_id": "p\ud800", "label": 1}).encode()
    feedback_status, feedback_answer = request(port, "POST", "/feedback", feedback)
    return Probe(
        name="lone_surrogates_are_422s",
        finding=6,
        sent=f'"c\\ud800" as {field}; "p\\ud800" as a prediction_id',
        measured=f"{status}, {feedback_status}",
        passed=status == 422
        and field in named_fields(answer)
        and feedback_status == 422
        and "prediction_id" in named_fields(feedback_answer),
    )


def two_labels(port: int, headers: Mapping[str, str] | None = None) -> tuple[Any, Any]:
    """Two different labels `/feedback` takes, read from the service's own API schema: a
    classifier's first two classes, or two numbers within a regression target's bounds."""
    schema = decoded(request(port, "GET", "/openapi.json", headers=headers)[1]) or {}
    label = schema["components"]["schemas"]["Feedback"]["properties"]["label"]
    for option in [label, *label.get("anyOf", []), *label.get("allOf", [])]:
        if len(option.get("enum", [])) >= 2:
            return option["enum"][0], option["enum"][1]
        low = option.get("minimum", option.get("exclusiveMinimum"))
        high = option.get("maximum", option.get("exclusiveMaximum"))
        if low is not None or high is not None:
            low = high - 2 if low is None else low
            high = low + 2 if high is None else high
            return low + (high - low) / 3, low + 2 * (high - low) / 3
    return 1.0, 2.0


def relabel(port: int, row: Mapping[str, Any]) -> Probe:
    """Finding 10: a second label for a prediction is accepted, wins, and is counted."""
    labels = two_labels(port)
    status, answer = request(port, "POST", "/predict", json.dumps(row).encode())
    prediction_id = (decoded(answer) or {}).get("prediction_id")
    before = metric(port, RELABELS)
    statuses = []
    for label, who in zip(labels, ("probe-job", "probe-reviewer"), strict=True):
        body = {"prediction_id": prediction_id, "label": label, "labelled_by": who}
        statuses.append(request(port, "POST", "/feedback", json.dumps(body).encode())[0])
    counted = before is not None and wait_until(
        lambda: (metric(port, RELABELS) or 0) >= before + 1, timeout=10
    )
    return Probe(
        name="relabels_are_counted",
        finding=10,
        sent="a prediction, then two labels for it",
        measured=f"/predict {status}, /feedback {statuses}, {RELABELS} "
        f"{'+1' if counted else 'unchanged'}",
        passed=status == 200 and statuses == [202, 202] and counted,
    )


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _closed_after(connection: socket.socket, timeout: float) -> tuple[float | None, bytes]:
    """Seconds until the server closed the connection (None: still open after `timeout`), and
    what it sent before closing."""
    began = time.monotonic()
    connection.settimeout(timeout)
    received = b""
    with contextlib.suppress(OSError):
        while chunk := connection.recv(4096):
            received += chunk
        return time.monotonic() - began, received
    return None, received


def slow_clients(port: int, header_seconds: float, body_seconds: float) -> Probe:
    """Finding 8: half a header, then nothing; all the headers and part of the body, then
    nothing. The first is closed after serve.header_timeout_seconds, the second answered 408
    after serve.body_timeout_seconds; both are sent at once, so the probe takes the longer."""
    slack = 5.0
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    with (
        socket.create_connection((HOST, port)) as half,
        socket.create_connection((HOST, port)) as stalled,
    ):
        half.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0")
        stalled.sendall(head + b'{"x": ')
        header_closed, unanswered = _closed_after(half, header_seconds + slack)
        left = body_seconds + slack - (header_closed or header_seconds + slack)
        body_closed, answer = _closed_after(stalled, max(left, 1.0))
    if body_closed is not None:  # both were sent at once: the body's wait began with the other's
        body_closed += header_closed or header_seconds + slack
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none"
    return Probe(
        name="slow_clients_are_cut_off",
        finding=8,
        sent="half a header, then nothing; the headers and 6 of 100 body bytes, then nothing",
        measured=f"closed after {_seconds(header_closed)}; "
        f"{status} and closed after {_seconds(body_closed)}",
        passed=header_closed is not None
        and unanswered == b""
        and header_closed <= header_seconds + slack
        and body_closed is not None
        and status == "408",
    )


def connection_limit(port: int, max_connections: int) -> Probe:
    """Finding 8: `serve.max_connections` idle connections held open, then one request more is
    a 503; once they close, it is served."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + 64
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    held: list[socket.socket] = []
    try:
        held.extend(socket.create_connection((HOST, port)) for _ in range(max_connections))
        time.sleep(0.5)  # the server accepts them
        over = request(port, "GET", "/health")[0]
    finally:
        for connection in held:
            connection.close()
    after = 0
    if wait_until(lambda: request(port, "GET", "/health")[0] == 200, timeout=10):
        after = 200
    return Probe(
        name="connections_are_bounded",
        finding=8,
        sent=f"{max_connections} idle connections, then a request on one more",
        measured=f"{over} while they were open, {after or 'no 200'} after",
        passed=over == 503 and after == 200,
    )


def hanging_backend(health_seconds: float | None, ready: tuple[int, Mapping[str, Any]]) -> Probe:
    """Finding 7: a tracking database that accepts connections and never answers: `/health`
    answers at once (a liveness probe keeps the service), `/ready` says what it waits for."""
    status, body = ready
    reason = str(body.get("registry_error") or "")
    return Probe(
        name="a_hanging_backend_holds_up_neither_health_nor_ready",
        finding=7,
        sent="MLFLOW_TRACKING_URI at a PostgreSQL port that accepts and never answers",
        measured=f"/health after {_seconds(health_seconds)} of start-up; "
        f"/ready {status}: {reason[:60]}",
        passed=health_seconds is not None and status == 503 and bool(reason),
    )


def _chattr(flag: str, paths: list[Path]) -> str | None:
    """`chattr <flag>` on `paths`: None when done, else why it could not be."""
    command = shutil.which("chattr")
    if command is None:
        return "chattr is not installed (Debian: e2fsprogs)"
    done = subprocess.run(  # noqa: S603 - a fixed tool on our own files
        [command, flag, *map(str, paths)], capture_output=True, text=True, check=False
    )
    return None if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}"


def storage_fault(
    port: int, row: Mapping[str, Any], log_file: Path, read_ids: Callable[[], set[str]]
) -> Probe:
    """Finding 3: every file of the SQLite prediction log made immutable under the running
    service (a file system turned read-only after a disk error). The service keeps answering,
    `/ready` says the log is failing, and once the fault clears the held rows are written."""
    files = sorted(log_file.parent.glob(log_file.name + "*"))
    sent = f"chattr +i on {', '.join(path.name for path in files)}, then 50 predictions"
    refused = _chattr("+i", files)
    if refused is not None:  # no CAP_LINUX_IMMUTABLE, or a file system without the flag
        return Probe("a_storage_fault_keeps_the_service_up", 3, sent, f"not run: {refused}", False)
    answered: list[str] = []
    try:
        for _ in range(50):
            status, body = request(port, "POST", "/predict", json.dumps(row).encode())
            if status == 200:
                answered.append(str((decoded(body) or {}).get("prediction_id")))

        def failing() -> bool:
            answer = decoded(request(port, "GET", "/ready")[1]) or {}
            return (answer.get("prediction_log") or {}).get("state") == "failing"

        noticed = wait_until(failing, timeout=15)
        ready_status, ready = request(port, "GET", "/ready")
        shown = (decoded(ready) or {}).get("status")
    finally:
        cleared = _chattr("-i", files)
    landed = wait_until(lambda: set(answered) <= read_ids(), timeout=30)
    return Probe(
        name="a_storage_fault_keeps_the_service_up",
        finding=3,
        sent=sent,
        measured=f"{len(answered)} of 50 answered; /ready {ready_status} {shown}, log failing: "
        f"{noticed}; after the fault cleared, all answered rows in the log: {landed}",
        passed=len(answered) == 50
        and noticed
        and ready_status == 200
        and shown == "degraded"
        and cleared is None
        and landed,
    )


# --- probes of the command line ------------------------------------------------------------

# Runs one CLI command of the project: (exit code, stdout, stderr).
Command = Callable[[list[str]], tuple[int, str, str]]


def results_on_stdout(cli: Command) -> Probe:
    """Finding 14: `models` lists the champion on stdout (a pipe to grep works with stderr
    discarded), and `models --json` prints one JSON document that names it."""
    code, listed, _ = cli(["models"])
    json_code, document, _ = cli(["models", "--json"])
    try:
        aliases = json.loads(document).get("aliases", {})
    except (ValueError, AttributeError):
        aliases = None
    return Probe(
        name="results_on_stdout_and_json",
        finding=14,
        sent="models 2>/dev/null; models --json 2>/dev/null",
        measured=f"exit {code}, champion on stdout: {'champion' in listed}; exit {json_code}, "
        f"aliases {aliases}",
        passed=code == 0
        and "champion" in listed
        and json_code == 0
        and isinstance(aliases, dict)
        and "champion" in aliases,
    )


def _table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _events(count: int) -> list[list[str]]:
    """`count` plain rows: a time, a spend, a plan, a 0/1 label."""
    return [
        [f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", str(i % 97), "abc"[i % 3], str(i % 2)]
        for i in range(count)
    ]


def repeated_columns(cli: Command, scratch: Path) -> Probe:
    """Finding 9: a CSV header that names a column twice is refused, naming it (pandas would
    read the second as `spend.1` and train on both)."""
    data = _table(
        scratch / "repeated.csv",
        ["ts", "spend", "plan", "spend", "label"],
        [[ts, spend, plan, spend, label] for ts, spend, plan, label in _events(60)],
    )
    out = scratch / "repeated-schema.yaml"
    code, _, errors = cli(
        ["schema", "infer", str(data), "--target", "label", "--timestamp", "ts", "--out", str(out)]
    )
    named = "'spend'" in errors and "repeat" in errors
    return Probe(
        name="repeated_column_names_are_refused",
        finding=9,
        sent="schema infer on a CSV whose header has `spend` twice",
        measured=f"exit {code}; the message names it: {named}; schema written: {out.exists()}",
        passed=code == 2 and named and not out.exists(),
    )


def huge_cell(cli: Command, scratch: Path) -> Probe:
    """Finding 9: one 10 MB cell in a category column becomes no category, and is copied into
    neither the printed output nor the schema file."""
    rows = _events(60)
    rows[7][2] = "x" * HUGE_CELL_CHARS
    data = _table(scratch / "huge-cell.csv", ["ts", "spend", "plan", "label"], rows)
    out = scratch / "huge-cell-schema.yaml"
    code, printed, errors = cli(
        ["schema", "infer", str(data), "--target", "label", "--timestamp", "ts", "--out", str(out)]
    )
    written = out.stat().st_size if out.exists() else 0
    shown = len(printed) + len(errors)
    return Probe(
        name="a_10_mb_cell_is_no_category",
        finding=9,
        sent=f"schema infer on a CSV with one {HUGE_CELL_CHARS:,}-character cell in a category",
        measured=f"exit {code}; printed {shown:,} characters; schema file {written:,} bytes",
        passed=code == 0 and 0 < written < TEXT_OUTPUT_BYTES and shown < TEXT_OUTPUT_BYTES,
    )


# --- probes of a service that requires an API key -------------------------------------------


def docs_behind_the_key(port: int, key: str) -> Probe:
    """Finding 13: with a key required, /docs and /openapi.json need it too."""
    without = [request(port, "GET", path)[0] for path in ("/docs", "/openapi.json")]
    wrong = request(port, "GET", "/openapi.json", headers={"X-API-Key": "x" + key})[0]
    right = request(port, "GET", "/openapi.json", headers={"X-API-Key": key})[0]
    return Probe(
        name="api_docs_need_the_key",
        finding=13,
        sent="GET /docs and /openapi.json without, with a wrong and with the right X-API-Key",
        measured=f"without {without}, wrong {wrong}, right {right}",
        passed=without == [401, 401] and wrong == 401 and right == 200,
    )


def credentials_hidden(ready: Mapping[str, Any], log: str, password: str) -> Probe:
    """Finding 1: an unreachable tracking server whose URI has a password: /ready (open to
    anyone) and the log name it without the password."""
    answer = json.dumps(ready)
    return Probe(
        name="credentials_never_leave_the_process",
        finding=1,
        sent="MLFLOW_TRACKING_URI with a password, the server unreachable",
        measured=f"password in /ready: {password in answer}, in the log: {password in log}",
        passed=bool(ready.get("registry_error")) and password not in answer + log,
    )
