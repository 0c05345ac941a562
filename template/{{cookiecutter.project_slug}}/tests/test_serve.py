"""The service against a real uvicorn server on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from {{ cookiecutter.package_name }}.config import PREDICTION_LOG_URL_ENV, DemoSourceConfig, Project, load_project
from {{ cookiecutter.package_name }}.data import generate_demo, ingest, project_schema, read_snapshot, write_table
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.metrics import predict_scores
from {{ cookiecutter.package_name }}.predictions import POSTGRES_CONNECT_SECONDS, PredictionLog
from {{ cookiecutter.package_name }}.scoring import SCORE_TOLERANCE
from {{ cookiecutter.package_name }}.serve import batch_predict
from {{ cookiecutter.package_name }}.serve.app import UNMATCHED
from {{ cookiecutter.package_name }}.serve.prometheus import ServiceMetrics
from {{ cookiecutter.package_name }}.store import CHAMPION, MODEL_PATH, Store, bounded_connect
from {{ cookiecutter.package_name }}.train import train

from .conftest import MULTICLASS, a_label, first_champion, free_port, running, write_project
from .test_prediction_log import fault_folder, immutable, locked

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]

FAST = {
    "registry_poll_seconds": 0.2,
    "flush_seconds": 0.1,
    "max_batch_rows": 50,
    "max_body_bytes": 20_000,
}


def _trained(root: Path, **serve: Any) -> Project:
    project = write_project(root, sections={"serve": FAST | serve})
    ingest(project)
    first_champion(project)
    return project


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, httpx.Client]]:
    project = _trained(tmp_path_factory.mktemp("served"))
    with running(project) as client:
        yield project, client


def _rows(project: Project, count: int) -> list[dict[str, Any]]:
    """Holdout rows as a client would send them: JSON values, no target."""
    snapshot = read_snapshot(project.snapshots_dir)
    frame = snapshot.holdout.head(count).drop(columns=[snapshot.schema.target.name])
    frame[snapshot.schema.timestamp_column] = frame[snapshot.schema.timestamp_column].astype(str)
    plain = frame.astype(object).where(frame.notna(), None)
    return [{str(key): value for key, value in row.items()} for row in plain.to_dict("records")]


def _wait(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_predictions_match_the_model_in_process(served: tuple[Project, httpx.Client]) -> None:
    project, client = served
    rows = _rows(project, 40)
    singles = [client.post("/predict", json=row).json() for row in rows[:10]]
    batch = client.post("/predict/batch", json={"rows": rows}).json()["predictions"]
    schema = read_snapshot(project.snapshots_dir).schema
    _, model = Store.open(project).load_champion()
    expected = predict_scores(
        model, model_input(pd.DataFrame(rows), schema), project.config.train.task
    )
    assert [p["prediction"] for p in singles] == pytest.approx(
        list(expected[:10]), abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE
    )
    assert [p["prediction"] for p in batch] == pytest.approx(
        list(expected), abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE
    )
    assert {p["variant"] for p in batch} == {"champion"}
    assert len({p["prediction_id"] for p in batch}) == 40


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda row: row.pop("tenure_months"), "tenure_months"),
        (lambda row: row.update(tenure_months="many"), "tenure_months"),
        (lambda row: row.update(tenure_months=-5), "tenure_months"),
        (lambda row: row.update(discount_rate=1.5), "discount_rate"),
        (lambda row: row.update(customer_id=""), "customer_id"),
        # JSON Schema's number is neither a boolean nor a string (pydantic's lax mode takes both).
        (lambda row: row.update(discount_rate=False), "discount_rate"),
        (lambda row: row.update(tenure_months="5"), "tenure_months"),
        (lambda row: row.update(support_tickets=True), "support_tickets"),
    ],
)
def test_a_bad_row_gets_a_422_that_names_the_field(
    served: tuple[Project, httpx.Client], change: Callable[[dict[str, Any]], Any], field: str
) -> None:
    project, client = served
    row = _rows(project, 1)[0]
    change(row)
    response = client.post("/predict", json=row)
    assert response.status_code == 422
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}


def test_a_row_as_its_file_holds_it_is_answered_and_counted(
    served: tuple[Project, httpx.Client],
) -> None:
    """Columns the schema left out and a category it does not list, as real files hold them:
    answered (`serve.extra_columns: ignore`, `serve.unseen_categories: score`) and counted."""
    project, client = served
    row = _rows(project, 1)[0] | {"tail_number": "N14228", "plan": "platinum"}
    answer = client.post("/predict", json=row)
    assert answer.status_code == 200, answer.text
    batch = client.post("/predict/batch", json={"rows": [row, row]})
    assert batch.status_code == 200, batch.text
    page = client.get("/metrics").text
    ignored = next(line for line in page.splitlines() if line.startswith("service_rows_with_ig"))
    unseen = next(line for line in page.splitlines() if 'total{column="plan"}' in line)
    assert float(ignored.split()[-1]) >= 3
    assert float(unseen.split()[-1]) >= 3


def test_batches_and_bodies_over_the_limits_are_refused(
    served: tuple[Project, httpx.Client],
) -> None:
    project, client = served
    too_many = client.post("/predict/batch", json={"rows": _rows(project, 51)})
    assert too_many.status_code == 422
    assert "rows" in str(too_many.json()["detail"][0]["loc"])
    huge = client.post(
        "/predict",
        content=b"{" + b" " * 30_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    # Chunked, a body has no length to check up front: it is refused rather than read whole.
    chunked = client.post(
        "/predict",
        content=iter([b"{", b" " * 30_000, b"}"]),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 411


def test_the_api_schema_documents_every_answer_and_bound(
    served: tuple[Project, httpx.Client],
) -> None:
    """What schema-driven clients and fuzzers rely on: refusals are listed, bounds are kept."""
    project, client = served
    api = client.get("/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        assert {"200", "400", "401", "408", "411", "413", "422", "503"} <= set(
            api["paths"][path]["post"]["responses"]
        )
    assert {"202", "404", "408", "422"} <= set(api["paths"]["/feedback"]["post"]["responses"])
    request = api["components"]["schemas"]["PredictionRequest"]["properties"]
    assert request["support_tickets"]["minimum"] == 0
    assert request["support_tickets"]["maximum"] == 100
    label = api["components"]["schemas"]["Feedback"]["properties"]["label"]
    target = project_schema(project).target
    if target.classes is not None:  # a binary target's two classes, as text and as numbers
        assert set(label["enum"]) >= set(target.classes)
    else:
        assert "minimum" in label
    integer_valued = {**_rows(project, 1)[0], "support_tickets": 3.0}
    assert client.post("/predict", json=integer_valued).status_code == 200


def test_feedback_joins_its_prediction(served: tuple[Project, httpx.Client]) -> None:
    project, client = served
    answer = client.post("/predict", json=_rows(project, 1)[0]).json()
    label, logged = a_label(project)
    accepted = client.post(
        "/feedback", json={"prediction_id": answer["prediction_id"], "label": label}
    )
    assert accepted.status_code == 202
    assert (
        client.post("/feedback", json={"prediction_id": "nope", "label": label}).status_code == 404
    )
    task = project.config.train.task
    outside = {
        "binary_classification": (-1.0, True, 7, 0.5, "yes"),
        MULTICLASS: (-1.0, True, 1, "yes", "Upgrade"),
        "regression": (-1.0, True, "1"),
    }[task]
    for bad in outside:
        refused = client.post(
            "/feedback", json={"prediction_id": answer["prediction_id"], "label": bad}
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "label"]
    log = PredictionLog(project.prediction_log_url)

    def joined() -> bool:
        frame = log.read()
        match = frame[frame["prediction_id"] == answer["prediction_id"]]
        return len(match) == 1 and match["label"].iloc[0] == logged

    _wait(joined)


def _relabels(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("service_feedback_relabels_total "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no service_feedback_relabels_total")


def test_a_relabel_wins_is_kept_in_the_history_and_counted(
    served: tuple[Project, httpx.Client],
) -> None:
    project, client = served
    answer = client.post("/predict", json=_rows(project, 1)[0]).json()
    prediction_id = answer["prediction_id"]
    (first, first_logged), (second, second_logged) = a_label(project, 0), a_label(project, 1)
    before = _relabels(client)
    for label, who in ((first, "labelling-job"), (second, "reviewer@example.com")):
        body = {"prediction_id": prediction_id, "label": label, "labelled_by": who}
        assert client.post("/feedback", json=body).status_code == 202
    too_long = {"prediction_id": prediction_id, "label": first, "labelled_by": "x" * 65}
    refused = client.post("/feedback", json=too_long)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "labelled_by"]
    log = PredictionLog(project.prediction_log_url)
    _wait(lambda: len(log.label_history(prediction_id)) == 2)
    history = log.label_history(prediction_id)
    assert list(history["label"]) == [first_logged, second_logged]
    assert list(history["labelled_by"]) == ["labelling-job", "reviewer@example.com"]
    frame = log.read()
    latest = frame.set_index("prediction_id").loc[prediction_id, "label"]
    assert latest == second_logged, "latest wins"
    _wait(lambda: _relabels(client) == before + 1)


def test_health_ready_metadata_and_metrics(served: tuple[Project, httpx.Client]) -> None:
    project, client = served
    client.post("/predict", json=_rows(project, 1)[0])
    assert client.get("/health").json() == {"status": "alive"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["models"] == {"champion": "1"}
    meta = client.get("/metadata").json()
    assert meta["model_name"] == project.config.tracking.registered_model
    champion = meta["variants"]["champion"]
    assert champion["version"] == "1"
    assert champion["data_sha256"] == read_snapshot(project.snapshots_dir).digest("train")
    assert champion["trained_at"]
    assert champion["scoring"] == "compiled"
    text = client.get("/metrics").text
    assert 'service_model_info{variant="champion",version="1",scoring="compiled"} 1\n' in text
    assert 'service_model_latency_seconds_count{variant="champion"}' in text
    assert 'service_requests_total{endpoint="/predict",status="200"}' in text
    _wait(lambda: "service_log_rows_written_total 0\n" not in client.get("/metrics").text)
    text = client.get("/metrics").text
    assert "# TYPE service_log_rows_pending gauge" in text
    assert "service_log_rows_dropped_total 0\n" in text
    assert "service_log_write_failures_total 0\n" in text


# A path that, printed into /metrics as it was requested, would end its label and add a line.
FORGED_PATH = "/x%22%7D%201%0Afake_metric%7Ba%3D%22b"


def test_metrics_count_routes_not_paths_so_nobody_can_forge_or_grow_them(
    served: tuple[Project, httpx.Client],
) -> None:
    project, client = served

    def counted() -> dict[tuple[str, str], float]:
        """(endpoint, status) -> requests, from /metrics (other tests share this service)."""
        found = {}
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("service_requests_total{"):
                labels, value = line.rsplit(" ", 1)
                endpoint = labels.split('endpoint="')[1].split('"')[0]
                found[endpoint, labels.split('status="')[1].split('"')[0]] = float(value)
        return found

    before = counted()
    assert client.get(FORGED_PATH).status_code == 404
    unknown = 300
    for i in range(unknown):
        assert client.get(f"/no-such-page/{i}").status_code == 404
    assert client.post("/metrics").status_code == 405  # a route, with the wrong method
    over = b"0" * (project.config.serve.max_body_bytes + 1)
    assert client.post("/predict", content=over).status_code == 413  # refused before routing
    text = client.get("/metrics").text
    after = counted()

    assert "fake_metric" not in text
    routes = set(client.get("/openapi.json").json()["paths"]) | {"/openapi.json", "/docs"}
    assert {endpoint for endpoint, _ in after} <= routes | {UNMATCHED}
    grew = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    assert grew[UNMATCHED, "404"] == unknown + 1
    assert grew["/metrics", "405"] == 1
    assert grew["/predict", "413"] == 1
    assert len(text) < 20_000, "the page grew with the paths asked for"


def _posted(client: httpx.Client, path: str, body: dict[str, Any], field: str, raw: str) -> Any:
    """POST `body` with `field`'s value written as the raw JSON text `raw` (NaN, 1e400, ...)."""
    text = json.dumps({**body, field: 0.0}).replace(f'"{field}": 0.0', f'"{field}": {raw}')
    return client.post(path, content=text, headers={"content-type": "application/json"})


def test_non_finite_numbers_and_text_that_is_not_unicode_are_422s_naming_the_field(
    served: tuple[Project, httpx.Client],
) -> None:
    project, client = served
    schema = project_schema(project)
    columns = [schema.column(name) for name in schema.feature_columns]
    number = next(c.name for c in columns if c.role != "categorical" and not c.integer)
    category = next(c.name for c in columns if c.role == "categorical")
    row = _rows(project, 1)[0]
    answer = client.post("/predict", json=row).json()
    texts = [category] + ([schema.id_column] if schema.id_column else [])
    cases = [("/predict", row, number, raw) for raw in ("NaN", "Infinity", "-Infinity", "1e400")]
    cases += [("/predict", row, name, json.dumps("c\ud800")) for name in texts]
    feedback = {"prediction_id": answer["prediction_id"]}
    cases += [("/feedback", feedback, "label", raw) for raw in ("NaN", "Infinity", "1e400")]
    cases += [("/feedback", {"label": 1}, "prediction_id", json.dumps("p\udfff"))]
    for path, body, field, raw in cases:
        refused = _posted(client, path, body, field, raw)
        assert refused.status_code == 422, (path, field, raw, refused.text)
        assert refused.json()["detail"][0]["loc"] == ["body", field], refused.text


def test_a_label_value_cannot_end_its_label_or_its_line() -> None:
    metrics = ServiceMetrics()
    metrics.observe_request('a"}\\ 1\nforged{x="', 200)
    line = next(
        line for line in metrics.render().splitlines() if line.startswith("service_requests_")
    )
    assert line == 'service_requests_total{endpoint="a\\"}\\\\ 1\\nforged{x=\\"",status="200"} 1'


def test_the_service_answers_while_its_log_is_locked_and_writes_it_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's database is held by another writer: requests and feedback are answered as
    usual, the rows wait in the buffer, and they are written once the database is free."""
    project = _trained(tmp_path / "log-outage")
    path = tmp_path / "shared" / "predictions.sqlite"
    monkeypatch.setenv(PREDICTION_LOG_URL_ENV, f"sqlite:///{path}?timeout=0.2")
    log = PredictionLog(project.prediction_log_url)
    log.ensure_schema()
    rows = _rows(project, 20)
    label, logged = a_label(project)

    def metric(name: str) -> float:
        lines = client.get("/metrics").text.splitlines()
        return float(next(line for line in lines if line.startswith(f"{name} ")).split()[1])

    with running(project) as client:
        with locked(path):
            answers = [client.post("/predict", json=row) for row in rows]
            assert {answer.status_code for answer in answers} == {200}
            _wait(lambda: metric("service_log_write_failures_total") >= 2)
            first = answers[0].json()["prediction_id"]
            feedback = {"prediction_id": first, "label": label}
            assert client.post("/feedback", json=feedback).status_code == 202
            ready = client.get("/ready")
            assert ready.status_code == 200, "serve.ready_while_log_fails: degraded"
            assert ready.json()["status"] == "degraded"
            assert "database is locked" in ready.json()["prediction_log"]["reason"]
            assert metric("service_log_rows_pending") == 21
            assert len(log.read()) == 0
        _wait(lambda: metric("service_log_rows_pending") == 0)
        assert metric("service_log_rows_written_total") == 21
        assert metric("service_log_rows_dropped_total") == 0
    frame = log.read().set_index("prediction_id")
    assert set(frame.index) == {answer.json()["prediction_id"] for answer in answers}
    assert frame.loc[first, "label"] == logged

    # The same project, set to leave the load balancer while its log cannot be written.
    strict = write_project(
        project.root, sections={"serve": FAST | {"ready_while_log_fails": "not_ready"}}
    )
    with running(strict) as client:
        assert client.get("/ready").json()["status"] == "ready"
        with locked(path):
            assert client.post("/predict", json=rows[0]).status_code == 200
            _wait(lambda: client.get("/ready").status_code == 503)
            body = client.get("/ready").json()
            assert (body["ready"], body["status"]) == (False, "not_ready"), body
            assert body["prediction_log"]["state"] == "failing", body
            assert body["models"] == {"champion": "1"}, "the model is loaded: only the log fails"
        _wait(lambda: client.get("/ready").status_code == 200)


@contextmanager
def serving(
    project: Project, output: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """`serve` in a process of its own (a fault that kills it must not kill the tests), ready
    to answer; stopped with SIGTERM (a clean shutdown: the last flush) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "serve", "--port", str(port)]
    command += ["--config", str(project.config_path)]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ | env,
            start_new_session=True,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def ready() -> bool:
                assert process.poll() is None, output.read_text(errors="replace")
                try:
                    return client.get("/ready").status_code == 200
                except httpx.TransportError:
                    return False

            _wait(ready, seconds=120)
            yield process, client
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_crash_loses_at_most_one_flush_interval(tmp_path: Path) -> None:
    """The loss of a crash, measured: the service is killed (SIGKILL: no shutdown, no last flush)
    while it answers; only predictions answered within one flush interval (and the write that
    follows it) before the kill may be missing from the log."""
    flush_seconds, write_allowance = 0.5, 0.5
    project = _trained(tmp_path / "crash", flush_seconds=flush_seconds)
    rows = _rows(project, 10)
    answered: list[tuple[float, list[str]]] = []  # when each answer arrived, and its ids
    with serving(project, tmp_path / "serve.log") as (process, client):
        started = time.monotonic()
        while time.monotonic() < started + 3:
            response = client.post("/predict/batch", json={"rows": rows})
            assert response.status_code == 200
            ids = [answer["prediction_id"] for answer in response.json()["predictions"]]
            answered.append((time.monotonic(), ids))
        os.killpg(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
    logged = set(PredictionLog(project.prediction_log_url).read()["prediction_id"])
    sent = [(at, prediction_id) for at, ids in answered for prediction_id in ids]
    lost = [at for at, prediction_id in sent if prediction_id not in logged]
    oldest = killed_at - min(lost) if lost else 0.0
    print(
        f"crash with serve.flush_seconds={flush_seconds}: {len(lost)} of {len(sent)} answered "
        f"rows lost ({len(sent) / (killed_at - started):.0f} rows/s); the oldest lost was "
        f"answered {oldest:.3f} s before the kill"
    )
    assert logged <= {prediction_id for _, prediction_id in sent}
    assert oldest < flush_seconds + write_allowance, f"lost rows {oldest:.3f} s old"
    assert len(lost) < len(sent)


@pytest.mark.parametrize("faulted", ["database", "journal", "every file"])
def test_a_storage_fault_on_the_log_never_takes_the_service_down(
    tmp_path: Path, faulted: str
) -> None:
    """The log's files made immutable while the service answers, as a file system remounted
    read-only after a disk error would leave them. The service keeps answering, holds the
    newest `serve.log_buffer_rows` rows, and says in /ready that the log is failing and why;
    once the fault clears, what it held is written. With WAL (an earlier design) the fault on
    the mapped `-shm` file killed the service with SIGBUS, and every buffered row with it."""
    bound, sent_during = 100, 150
    project = _trained(tmp_path / "disk-fault", flush_seconds=0.2, log_buffer_rows=bound)
    rows = _rows(project, 10)

    def predict() -> list[str]:
        response = client.post("/predict/batch", json={"rows": rows})
        assert response.status_code == 200, response.text
        return [answer["prediction_id"] for answer in response.json()["predictions"]]

    def metric(name: str) -> float:
        assert process.poll() is None, f"the service died: exit {process.returncode}"
        lines = client.get("/metrics").text.splitlines()
        return float(next(line for line in lines if line.startswith(f"{name} ")).split()[1])

    def log_state() -> dict[str, Any]:
        state: dict[str, Any] = client.get("/ready").json()["prediction_log"]
        return state

    with fault_folder(tmp_path) as folder:
        path = folder / "predictions.sqlite"
        url = f"sqlite:///{path}?timeout=0.2"
        with serving(project, tmp_path / "serve.log", **{PREDICTION_LOG_URL_ENV: url}) as (
            process,
            client,
        ):
            before = [i for _ in range(3) for i in predict()]
            _wait(lambda: metric("service_log_rows_pending") == 0)
            beside = sorted(folder.glob("predictions.sqlite-*"))  # the journal (WAL: -wal, -shm)
            files = {"database": [path], "journal": beside, "every file": [path, *beside]}
            assert files[faulted], f"no {faulted} file: {sorted(folder.iterdir())}"
            with immutable(files[faulted]):
                during = predict()
                _wait(lambda: metric("service_log_write_failures_total") >= 1)
                during += [i for _ in range(sent_during // len(rows) - 1) for i in predict()]
                _wait(lambda: metric("service_log_rows_dropped_total") >= sent_during - bound)
                assert metric("service_log_rows_dropped_total") == sent_during - bound
                _wait(lambda: log_state()["rows_pending"] == bound)
                ready = client.get("/ready")
                assert ready.status_code == 200, "serve.ready_while_log_fails: degraded"
                body = ready.json()
                assert body["status"] == "degraded", body
                assert body["prediction_log"]["state"] == "failing", body
                assert body["prediction_log"]["reason"], body
                assert body["prediction_log"]["rows_pending"] == bound, body
            _wait(lambda: log_state() == {"state": "writing", "reason": None, "rows_pending": 0})
            assert client.get("/ready").json()["status"] == "ready"
        logged = set(PredictionLog(url).read()["prediction_id"])
    assert set(before) <= logged
    kept, dropped = during[sent_during - bound :], during[: sent_during - bound]
    assert set(kept) <= logged, "the rows held through the fault were written"
    assert not set(dropped) & logged, "only the oldest beyond the bound were dropped"
    text = (tmp_path / "serve.log").read_text(errors="replace")
    assert "cannot write the prediction log" in text
    assert "prediction log writes resumed" in text


def test_an_alias_swap_while_requests_flow_loses_none(tmp_path: Path) -> None:
    """From a compiled champion to one scikit-learn must score (and back), mid-traffic."""
    project = _trained(tmp_path / "swap")
    rows = _rows(project, 20)
    with running(project) as client:
        stop = threading.Event()

        def hammer() -> list[tuple[int, str]]:
            seen = []
            while not stop.is_set():
                for row in rows:
                    response = client.post("/predict", json=row)
                    seen.append((response.status_code, response.json().get("model_version", "")))
            return seen

        def serving(version: str) -> bool:
            return bool(client.get("/ready").json()["models"].get("champion") == version)

        def scoring() -> str:
            return str(client.get("/metadata").json()["variants"]["champion"]["scoring"])

        # A multiclass model has no compiled form: there, both versions are scikit-learn's.
        first = "scikit-learn" if project.config.train.task == MULTICLASS else "compiled"
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(hammer) for _ in range(2)]
            try:
                assert scoring() == first
                uncompiled = write_project(
                    project.root, sections={"serve": FAST, "train": {"compiled_scoring": False}}
                )
                train(uncompiled, family="baseline")
                store = Store.open(project)
                assert store.client.get_model_version(store.model_name, "2").tags["scoring"] == (
                    "scikit-learn"
                )
                store.set_alias(CHAMPION, "2")
                _wait(lambda: serving("2"))
                assert scoring() == "scikit-learn"
                time.sleep(0.5)
                store.set_alias(CHAMPION, "1")
                _wait(lambda: serving("1"))
                assert scoring() == first
                time.sleep(0.5)
            finally:  # a failed check must not leave the request threads running
                stop.set()
            results = [item for future in futures for item in future.result()]
        assert {status for status, _ in results} == {200}
        versions = [version for _, version in results]
        assert versions[0] == "1"
        assert versions[-1] == "1"
        assert "2" in versions
        log = PredictionLog(project.prediction_log_url)
        _wait(lambda: len(log.read()) == len(results))


def overwrite(path: Path, data: bytes) -> None:
    """`path` holds `data`, written over the old bytes in place, never truncated first: the
    service polls the file meanwhile, and SQLite takes an empty file for a new database, which
    MLflow would start to fill (a race that left the registry with no tables)."""
    with path.open("r+b") as file:
        file.write(data)
        file.truncate()


def test_a_broken_registry_or_model_keeps_the_champion_serving(tmp_path: Path) -> None:
    project = _trained(tmp_path / "faults")
    row = _rows(project, 1)[0]
    store = project.local_store
    with running(project) as client:
        # The registry becomes unreadable: the service keeps v1 and says why.
        saved = store.read_bytes()
        overwrite(store, b"not a database" * 1000)
        _wait(lambda: client.get("/ready").json()["registry_error"] is not None)
        ready = client.get("/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
        assert client.post("/predict", json=row).json()["model_version"] == "1"
        overwrite(store, saved)
        _wait(lambda: client.get("/ready").json()["registry_error"] is None)
        assert client.get("/ready").json()["status"] == "ready"

        # The champion alias moves to a version whose artifact is corrupt: v1 keeps serving.
        train(project, family="baseline")
        registry = Store.open(project)
        run_id = registry.client.get_model_version(registry.model_name, "2").run_id
        assert run_id is not None
        artifacts = registry.client.get_run(run_id).info.artifact_uri
        model_folder = Path(url2pathname(urlparse(artifacts).path)) / MODEL_PATH
        serialized = [*model_folder.glob("model.*"), *model_folder.glob("compiled/scorer.*")]
        assert len(serialized) == 3, f"no serialized model in {model_folder}"
        for artifact in serialized:
            artifact.write_bytes(b"corrupt")
        registry.set_alias(CHAMPION, "2")
        _wait(lambda: "champion" in (client.get("/ready").json()["registry_error"] or ""))
        assert client.get("/ready").json()["models"] == {"champion": "1"}
        assert client.post("/predict", json=row).json()["model_version"] == "1"


def test_the_api_key_is_required_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SERVICE_KEY", "s3cret-value")
    project = _trained(tmp_path / "auth", require_api_key=True, api_key_env="TEST_SERVICE_KEY")
    row = _rows(project, 1)[0]
    with running(project) as client:
        assert client.post("/predict", json=row).status_code == 401
        assert client.post("/predict", json=row, headers={"x-api-key": "wrong"}).status_code == 401
        assert (
            client.post("/predict", json=row, headers={"x-api-key": "s3cret-value"}).status_code
            == 200
        )
        assert client.get("/health").status_code == 200
        # The API's description is the service's too: behind the key by default.
        for path in ("/openapi.json", "/docs"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"x-api-key": "s3cret-value"}).status_code == 200
    for docs, status in (("open", 200), ("hidden", 404)):
        config = project.root / "configs" / "project.yaml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("api_docs: with_key", f"api_docs: {docs}"), encoding="utf-8")
        with running(load_project(config)) as client:
            assert client.get("/openapi.json").status_code == status, docs
            assert client.get("/docs").status_code == status, docs
            assert client.post("/predict", json=row).status_code == 401
        config.write_text(text, encoding="utf-8")


def test_batch_predict_scores_in_chunks_and_quarantines(tmp_path: Path) -> None:
    project = _trained(tmp_path / "batch")
    task = project.config.train.task
    raw = generate_demo(DemoSourceConfig(rows=1_000, seed=3, invalid_fraction=0.03), task)
    source = tmp_path / "to_score.csv"
    write_table(raw.drop(columns=[read_snapshot(project.snapshots_dir).schema.target.name]), source)
    output = tmp_path / "scored.parquet"
    chunks: list[int] = []
    result = batch_predict(project, source, output, chunk_rows=128, on_chunk=chunks.append)
    assert len(chunks) == 8
    assert result.rows_read == 1_000
    assert result.rows_scored + result.rows_quarantined == 1_000
    assert result.rows_quarantined > 0
    scored = pd.read_parquet(output)
    quarantined = pd.read_parquet(result.quarantine_file) if result.quarantine_file else None
    assert quarantined is not None
    assert len(quarantined) == result.rows_quarantined
    assert quarantined["source_row"].is_unique
    assert len(scored) == result.rows_scored
    assert np.isfinite(scored["prediction"]).all()
    # A frame goes to the path registration timed faster on one (docs/scoring.md).
    champion = Store.open(project).champion()
    assert champion.tags["scoring"] == "compiled"
    assert result.scoring == champion.tags["scoring_frames"]

    # The same file scored by scikit-learn: the same rows, scores, labels and quarantine.
    by_sklearn = write_project(project.root, sections={"serve": FAST | {"scoring": "scikit-learn"}})
    again = batch_predict(by_sklearn, source, tmp_path / "again.parquet", chunk_rows=128)
    assert again.scoring == "scikit-learn"
    rescored = pd.read_parquet(again.output)
    assert rescored.drop(columns="prediction").equals(scored.drop(columns="prediction"))
    assert rescored["prediction"].to_numpy() == pytest.approx(
        scored["prediction"], abs=SCORE_TOLERANCE, rel=SCORE_TOLERANCE
    )
    assert again.quarantine_file is not None
    assert pd.read_parquet(again.quarantine_file).equals(quarantined)


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_the_online_experiment_routes_by_entity_and_logs_both_variants(
    tmp_path: Path, mode: str
) -> None:
    project = write_project(
        tmp_path / mode,
        sections={"serve": FAST, "promotion": {"online": {"mode": mode, "canary_share": 0.5}}},
    )
    ingest(project)
    first_champion(project)
    train(project, family="baseline")  # v2 becomes the challenger
    rows = _rows(project, 40)
    with running(project) as client:
        _wait(lambda: client.get("/ready").json()["models"] == {"champion": "1", "challenger": "2"})
        first = [client.post("/predict", json=row).json() for row in rows]
        again = [client.post("/predict", json=row).json() for row in rows]
        log = PredictionLog(project.prediction_log_url)
        expected_rows = 160 if mode == "shadow" else 80
        _wait(lambda: len(log.read()) == expected_rows)
    served = [answer["variant"] for answer in first]
    assert served == [answer["variant"] for answer in again], "an entity keeps its variant"
    frame = log.read()
    if mode == "canary":
        assert set(served) == {"champion", "challenger"}
        versions = {a["variant"]: a["model_version"] for a in first}
        assert versions == {"champion": "1", "challenger": "2"}
        assert frame["served"].all()
    else:
        assert set(served) == {"champion"}
        shadow = frame[~frame["served"]]
        assert set(shadow["variant"]) == {"challenger"}
        assert set(shadow["prediction_id"]) == {a["prediction_id"] for a in first + again}


@dataclass(frozen=True)
class TrackingServer:
    uri: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the server and the uvicorn process it started (its process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def tracking_server(
    project: Project, log: Path, port: int | None = None
) -> Iterator[TrackingServer]:
    """A real MLflow tracking server over the project's store, in its own process group. Job
    execution is off: it would start worker processes these tests have no use for."""
    port = port or free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri"]
    command += [project.tracking_uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = TrackingServer(f"http://127.0.0.1:{port}", process)

    def answers() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            return httpx.get(f"{server.uri}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait(answers, seconds=90)
        yield server
    finally:
        server.stop()


def test_an_unreachable_tracking_server_keeps_the_champion_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The service opens its store once: a tracking server that goes away later is an outage
    it rides out on the models it holds, saying why in /ready, which needs no key: the URI's
    password is in the client's error, and nowhere in the answer or the log."""
    project = _trained(tmp_path / "outage")
    row = _rows(project, 1)[0]
    planted = "s3cret-Pw"  # a server without auth ignores the credentials
    with tracking_server(project, tmp_path / "mlflow-server.log") as server:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        credentialed = server.uri.replace("://", f"://admin:{planted}@", 1)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", credentialed)
        caplog.set_level(logging.WARNING)
        with running(project) as client:
            assert client.get("/ready").json()["models"] == {"champion": "1"}
            assert client.post("/predict", json=row).json()["model_version"] == "1"
            server.stop()
            _wait(lambda: client.get("/ready").json()["registry_error"] is not None)
            ready = client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["models"] == {"champion": "1"}
            assert client.post("/predict", json=row).json()["model_version"] == "1"
    assert "admin:***@127.0.0.1" in ready.json()["registry_error"], ready.text
    assert planted not in ready.text
    assert "keeping the models in service" in caplog.text
    assert planted not in caplog.text


# --- start-up without a backend, and clients that are slow on purpose ---------------------------


@contextmanager
def silent_port() -> Iterator[tuple[socket.socket, int]]:
    """A port that takes connections and never answers: a database or tracking server that
    hangs (the connect succeeds; the first answer never comes). Connections queue unaccepted,
    so `accept` tells when a client has come."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener, int(listener.getsockname()[1])


def _connected(listener: socket.socket, seconds: float) -> socket.socket:
    """The first connection a client made to `listener` (the client is now waiting on it)."""
    listener.settimeout(seconds)
    connection, _ = listener.accept()
    return connection


@contextmanager
def started(
    project: Project, output: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`serve` as a process of its own on a free port, not waited for: (the process, its base
    URL); killed on exit."""
    port = free_port()
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "serve", "--port", str(port)]
    command += ["--config", str(project.config_path)]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=os.environ | (env or {}),
            start_new_session=True,
        )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _answers(url: str, seconds: float = 90) -> None:
    """Wait until `url` answers at all (the process has imported and bound its port)."""

    def answered() -> bool:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return False
        return True

    _wait(answered, seconds)


PLANTED = "s3cret-Pw"  # a password that must not leave the process


def test_a_tracking_database_that_hangs_holds_up_neither_health_nor_shutdown(
    tmp_path: Path,
) -> None:
    """PostgreSQL behind the tracking URI and the prediction log accepts connections and never
    answers. The service is alive at once (/health), not ready (/ready 503 naming the registry
    it waits for, password masked), refuses /predict saying why, and stops when told to."""
    project = _trained(tmp_path / "hung-database")
    with silent_port() as (listener, port):
        database = f"postgresql://admin:{PLANTED}@127.0.0.1:{port}"
        env = {"MLFLOW_TRACKING_URI": f"{database}/mlflow"}
        env[PREDICTION_LOG_URL_ENV] = f"{database}/predictions"
        output = tmp_path / "serve.log"
        with started(project, output, env) as (process, base):
            held = _connected(listener, 90)  # the first registry poll is now waiting
            try:
                _answers(f"{base}/health")
                for _ in range(5):  # each within a second, the registry poll still waiting
                    assert httpx.get(f"{base}/health", timeout=1).json() == {"status": "alive"}
                ready = httpx.get(f"{base}/ready", timeout=1)
                assert ready.status_code == 503, ready.text
                reason = ready.json()["registry_error"]
                assert f"postgresql://admin:***@127.0.0.1:{port}/mlflow" in reason, reason
                refused = httpx.post(f"{base}/predict", json=_rows(project, 1)[0], timeout=5)
                assert refused.status_code == 503
                assert "no champion model is loaded" in refused.json()["detail"]
                assert "registry" in refused.json()["detail"]
                stopping = time.monotonic()
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
                assert time.monotonic() - stopping < 15, "shutdown waited for the registry"
            finally:
                held.close()
        for text in (ready.text, refused.text, output.read_text(errors="replace")):
            assert PLANTED not in text


def test_a_postgresql_tracking_uri_gives_up_on_a_database_that_never_answers() -> None:
    """libpq waits for ever by default: one hung connect would hold the service's registry poll
    for good, and it would never become ready, even once the database was back. The store adds
    a connect timeout (one the URI sets wins), so the connect fails and the next poll retries."""
    with silent_port() as (_, port):
        given = f"postgresql+psycopg://admin:{PLANTED}@127.0.0.1:{port}/mlflow"
        assert bounded_connect(f"{given}?connect_timeout=1") == f"{given}?connect_timeout=1"
        engine = sa.create_engine(bounded_connect(given))
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError):
            engine.connect()
        assert time.monotonic() - started < POSTGRES_CONNECT_SECONDS + 5
        engine.dispose()


def test_a_service_started_before_its_tracking_server_serves_once_that_answers(
    tmp_path: Path,
) -> None:
    """The tracking server hangs while the service starts, then goes away and comes back: the
    service answers /health throughout and becomes ready without a restart."""
    project = _trained(tmp_path / "late-registry")
    row = _rows(project, 1)[0]
    with silent_port() as (listener, port):
        env = {
            "MLFLOW_TRACKING_URI": f"http://admin:{PLANTED}@127.0.0.1:{port}",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "600",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        }
        with started(project, tmp_path / "serve.log", env) as (_, base):
            held = _connected(listener, 90)
            _answers(f"{base}/health")
            assert httpx.get(f"{base}/health", timeout=1).status_code == 200
            ready = httpx.get(f"{base}/ready", timeout=1)
            assert ready.status_code == 503
            assert f"http://admin:***@127.0.0.1:{port}" in ready.json()["registry_error"]
            assert PLANTED not in ready.text
            assert httpx.post(f"{base}/predict", json=row, timeout=5).status_code == 503
            held.close()  # the hung poll fails: the service goes on polling
            listener.close()
            with tracking_server(project, tmp_path / "mlflow-server.log", port=port):
                _wait(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200, 120)
                answer = httpx.post(f"{base}/predict", json=row, timeout=5)
                assert answer.status_code == 200
                assert answer.json()["model_version"] == "1"


def _request_head(path: str, body_bytes: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {body_bytes}\r\n\r\n"
    ).encode()


def _closed_after(connection: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed `connection` (at most `limit`), and what it sent."""
    connection.settimeout(limit)
    started, received = time.monotonic(), b""
    while chunk := connection.recv(65_536):
        received += chunk
    return time.monotonic() - started, received


def test_slow_clients_are_cut_off_and_connections_are_bounded(tmp_path: Path) -> None:
    """Half a header, a silent connection and a body that stalls are each ended after their
    serve.*_timeout_seconds; one connection over serve.max_connections gets a 503 while the
    others are open, and is served once one closes."""
    limits = {
        "header_timeout_seconds": 1.0,
        "body_timeout_seconds": 1.0,
        "keep_alive_seconds": 60,
        "max_connections": 3,
    }
    project = _trained(tmp_path / "slow-clients", **limits)
    with started(project, tmp_path / "serve.log") as (_, base):
        _answers(f"{base}/health")
        _wait(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200)
        address = ("127.0.0.1", int(base.rsplit(":", 1)[1]))

        # Half a header, then nothing: closed, unanswered, after the header deadline.
        with socket.create_connection(address) as half:
            half.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0")
            seconds, received = _closed_after(half, 10)
        assert received == b""
        assert 0.8 < seconds < 4, seconds
        # A connection that never sends a byte is held no longer.
        with socket.create_connection(address) as silent:
            seconds, received = _closed_after(silent, 10)
        assert (received, 0.8 < seconds < 4) == (b"", True), seconds

        # Headers, then part of the body: a 408 after the body deadline, and the connection closed.
        body = json.dumps(_rows(project, 1)[0]).encode()
        with socket.create_connection(address) as stalled:
            stalled.sendall(_request_head("/predict", len(body)) + body[:10])
            seconds, received = _closed_after(stalled, 10)
        assert received.startswith(b"HTTP/1.1 408 "), received
        assert b"connection: close" in received.lower()
        assert 0.8 < seconds < 4, seconds

        # At the limit, a connection more is answered 503; it is served once another closes.
        clients = [httpx.Client(base_url=base, timeout=5) for _ in range(3)]
        try:
            for client in clients:
                assert client.get("/health").status_code == 200  # its connection stays open
            with httpx.Client(base_url=base, timeout=5) as extra:
                assert extra.get("/health").status_code == 503
            clients.pop().close()
            with httpx.Client(base_url=base, timeout=5) as extra:
                assert extra.get("/health").status_code == 200
            assert clients[0].post("/predict", json=_rows(project, 1)[0]).status_code == 200
        finally:
            for client in clients:
                client.close()
