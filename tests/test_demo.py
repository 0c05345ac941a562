"""The README's first command, `nox -s demo`: the whole loop closes, in the terminal and on one
page that a real headless Chromium opens without a console error."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import browser
from helpers import REPO_ROOT, nox_command, run_logged

pytestmark = pytest.mark.slow
TIMEOUT = 20 * 60
MODEL = "demo-ml-service"
STEPS = (
    "render",
    "ingest",
    "train",
    "serve",
    "traffic",
    "drift",
    "monitor",
    "retrain",
    "swap",
    "after",
    "stop",
    "report",
)
SECTIONS = {"versions", "metric-over-time", "drift", "gate"}


def _pairs(database: Path, sql: str) -> dict[str, int]:
    """A two-column query's rows as a mapping, keys as text."""
    with closing(sqlite3.connect(database)) as db:
        return {str(key): int(value) for key, value in db.execute(sql).fetchall()}


def test_the_demo_closes_the_loop_and_leaves_a_page(tmp_path: Path) -> None:
    browser.find_chromium()  # skip (or, under CI, fail) before spending minutes on the demo
    project = tmp_path / "demo-ml-service"
    log = tmp_path / "demo.log"
    run_logged(nox_command("-s", "demo", "--", str(project)), REPO_ROOT, log, TIMEOUT)
    printed = log.read_text(encoding="utf-8")
    for step in STEPS:
        assert re.search(rf"\[\s*[\d.]+ s\] {step}: ", printed), f"no line for {step}"
    assert re.search(r"The demo took \d+ s", printed)

    # A second version is champion, promoted by the gate with its evidence.
    aliases = _pairs(project / "mlflow.db", "SELECT alias, version FROM registered_model_aliases")
    assert aliases["champion"] == 2
    records = sorted((project / "reports" / "promotion").glob("*-promotion.json"))
    last = json.loads(records[-1].read_text(encoding="utf-8"))
    assert last["outcome"] == "promoted"
    assert last["test"]["p_value"] < 0.05
    assert last["test"]["ci_low"] > last["primary"]["min_effect"]

    # The service answered with both versions, and the log holds every answer.
    served = _pairs(
        project / "logs" / "predictions.sqlite",
        "SELECT model_version, count(*) FROM predictions WHERE served GROUP BY model_version",
    )
    assert served == {"1": 800, "2": 200}

    # The page: every section shown, nothing fetched from anywhere, no console error.
    page = project / "reports" / "loop.html"
    seen = browser.visit(page, screenshot=tmp_path / "loop.png")
    assert seen.errors == []
    assert set(seen.section_ids) >= SECTIONS
    assert all(url.startswith(("file://", "data:")) for url in seen.requests), seen.requests
    assert MODEL in seen.title
    assert (tmp_path / "loop.png").stat().st_size > 10_000
