"""Send a table's rows to a running service, as its clients would, and their labels afterwards.

A smoke test after a deployment, traffic for a demo, or a canary's first minutes: every row goes
to `POST /predict` over HTTP (not through the app in process), and with `labels` each answered
row's target value follows to `POST /feedback`, as labels arrive after predictions in real life.
Standard-library HTTP only: the project's runtime dependencies stay those of the service.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Project
from ..data import DataError, project_schema, read_table, validate

TIMEOUT_SECONDS = 30.0


@dataclass
class ReplayResult:
    sent: int = 0
    answered_by: Counter[str] = field(default_factory=Counter)  # model version -> rows
    statuses: Counter[int] = field(default_factory=Counter)  # HTTP status -> requests
    labels_sent: int = 0
    quarantined: int = 0

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in {200, 202})

    def summary(self) -> str:
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(self.answered_by.items()))
        failed = f", {self.failed} failed" if self.failed else ""
        skipped = f", {self.quarantined} invalid rows not sent" if self.quarantined else ""
        return (
            f"{self.sent} rows sent, answered by {versions or 'no model'}; "
            f"{self.labels_sent} labels sent as feedback{failed}{skipped}"
        )


class Client:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.url, self.api_key = url.rstrip("/"), api_key

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own service
            f"{self.url}{path}", data=json.dumps(body).encode(), method="POST"
        )
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("X-API-Key", self.api_key)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
                return int(answer.status), json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return int(error.code), {}


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a JSON client sends them: ISO times, null for missing, plain numbers."""
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return rows


def replay(
    project: Project,
    source: Path,
    url: str,
    *,
    rows: int | None = None,
    labels: bool = True,
    concurrency: int = 4,
) -> ReplayResult:
    """Send the valid rows of `source` (the newest `rows` of them, by event time) to the service
    at `url`, then, with `labels`, the target of every answered row as feedback."""
    schema = project_schema(project)
    result = validate(read_table(source), schema, scoring=not labels)
    valid = result.valid.sort_values(schema.timestamp_column, kind="stable")
    if rows is not None:
        valid = valid.tail(rows)
    if labels and schema.target.name not in valid.columns:
        raise DataError(f"{source} has no {schema.target.name} column: nothing to send as labels")
    targets: list[Any] = []
    if labels:  # as the table holds them: a classifier's labels are its classes' names
        values = valid[schema.target.name].to_list()
        classes = schema.target.classes is not None
        targets = [schema.target.class_name(v) if classes else v for v in values]
    request_columns = [
        c for c in (schema.id_column, schema.timestamp_column, *schema.feature_columns) if c
    ]
    bodies = _json_rows(valid[request_columns])
    client = Client(url, os.environ.get(project.config.serve.api_key_env) or None)
    outcome = ReplayResult(sent=len(bodies), quarantined=len(result.quarantined))
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda body: client.post("/predict", body), bodies))
        for status, answer in answers:
            outcome.statuses[status] += 1
            if status == 200:
                outcome.answered_by[str(answer["model_version"])] += 1
        if labels:
            feedback = [
                {"prediction_id": answer["prediction_id"], "label": target}
                for (status, answer), target in zip(answers, targets, strict=True)
                if status == 200
            ]
            for status, _ in pool.map(lambda body: client.post("/feedback", body), feedback):
                outcome.statuses[status] += 1
                outcome.labels_sent += status == 202
    return outcome
