"""The loop's page, built from a real loop: a champion serves, the world drifts, the monitor
sees it, retraining promotes version 2, which serves in turn; then the page must tell that story
from the artifacts alone, in one file that needs nothing beside it but the reports it links."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Project
from {{ cookiecutter.package_name }}.data import demo_schema, generate_demo, ingest
from {{ cookiecutter.package_name }}.features import model_input
from {{ cookiecutter.package_name }}.loop import retrain
from {{ cookiecutter.package_name }}.metrics import MIN_SLICE_ROWS, predict_scores
from {{ cookiecutter.package_name }}.monitor import monitor
from {{ cookiecutter.package_name }}.predictions import FeedbackRecord, PredictionLog, PredictionRecord
from {{ cookiecutter.package_name }}.promote import Outcome
from {{ cookiecutter.package_name }}.promote.stats import DIFFERENCE_BINS
from {{ cookiecutter.package_name }}.report import write_report
from {{ cookiecutter.package_name }}.report.artifacts import MAX_POINTS_PER_VERSION, metric_buckets
from {{ cookiecutter.package_name }}.store import Store

from .conftest import first_champion, write_project

# Every test reads files the answers shape (tests/answers.py), and only through the task and the
# model family: its projects come from write_project, which sets their data source.
pytestmark = [pytest.mark.answers, pytest.mark.task_family_only]

LATER = date(2025, 4, 1)
SECTIONS = {"versions", "metric-over-time", "drift", "gate", "decisions"}
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a reader of the page gets: its title, each section's heading and text, the images'
    sources, the links, and every tag used."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.title = ""
        self.headings: dict[str, str] = {}
        self.sections: dict[str, str] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._open: list[str] = []
        self._inside: str | None = None
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self._open.append(attributes.get("id") or "")
            self.sections.setdefault(self._open[-1], "")
        elif tag == "img":
            self.images.append(attributes.get("src") or "")
        elif tag == "a":
            self.links.append(attributes.get("href") or "")
        elif tag in {"title", "h2"}:
            self._inside = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._open.pop()
        elif tag == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "title":
            self.title += data
        elif self._inside == "h2" and self._open:
            self.headings[self._open[-1]] = self.headings.get(self._open[-1], "") + data
        for section in self._open:
            self.sections[section] += data


@dataclass(frozen=True)
class Loop:
    project: Project
    page: Path
    promotion: dict[str, Any]
    record: Path


def _rows(project: Project, rows: int, seed: int, **knobs: Any) -> pd.DataFrame:
    source = DemoSourceConfig(rows=rows, seed=seed, invalid_fraction=0.0, **knobs)
    return generate_demo(source, project.config.train.task)


def _serve(project: Project, version: str, rows: pd.DataFrame, start: datetime) -> None:
    """What the service and its feedback route would log: the version's real predictions, one
    a minute from `start`, and the label of each."""
    schema = demo_schema(project.config.train.task)
    model = Store.open(project).load_version(version)
    scores = predict_scores(model, model_input(rows, schema), project.config.train.task)
    features = rows[schema.feature_columns].astype(object)
    ids = [f"v{version}-{start:%Y%m%d%H%M}-{i}" for i in range(len(rows))]
    with PredictionLog(project.prediction_log_url) as log:
        log.append(
            PredictionRecord(
                prediction_id=ids[i],
                variant="champion",
                model_version=version,
                served=True,
                features={str(k): v for k, v in record.items()},
                prediction=float(scores[i]),
                latency_ms=1.0,
                ts=start + timedelta(minutes=i),
            )
            for i, record in enumerate(features.to_dict("records"))
        )
        labels = rows[schema.target.name].to_numpy(float)
        log.append_feedback(FeedbackRecord(ids[i], float(labels[i])) for i in range(len(rows)))


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    root = tmp_path_factory.mktemp("report")
    project = write_project(root, rows=3_000)
    ingest(project)
    first_champion(project)
    day = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    drift: dict[str, Any] = {"covariate_shift": 1.0, "concept_shift": 1.0}
    # Version 1 serves the world it learned, then the world changes under it.
    _serve(project, "1", _rows(project, 300, seed=4), day)
    drifted = _rows(project, 300, seed=5, start=LATER, **drift)
    _serve(project, "1", drifted, day + timedelta(hours=6))
    newer = write_project(root, rows=3_000, start=LATER.isoformat(), seed=21, **drift)
    monitor(newer, now=day + timedelta(hours=12))  # the log's window: version 1's answers
    decision = retrain(newer)
    assert decision.outcome == Outcome.PROMOTED, decision.reason
    _serve(newer, "2", _rows(newer, 400, seed=6, start=LATER, **drift), day + timedelta(hours=12))
    page = write_report(newer).path
    return Loop(newer, page, decision.record, decision.record_path)


@pytest.mark.e2e
def test_the_page_tells_the_loops_story(loop: Loop) -> None:
    source = loop.page.read_text(encoding="utf-8")
    page = Page(source)
    assert set(page.sections) == SECTIONS
    assert all(page.headings.get(section, "").strip() for section in SECTIONS)
    tracking = loop.project.config.tracking
    assert tracking.experiment in page.title
    assert tracking.registered_model in page.title

    over_time = page.sections["metric-over-time"]
    assert "v1" in over_time
    assert "v2" in over_time
    assert loop.project.config.gate_metric in page.headings["metric-over-time"]
    assert "champion" in page.sections["versions"]
    assert loop.promotion["reason"] in page.sections["versions"]
    assert f"{loop.promotion['test']['p_value']:.3g}" in page.sections["gate"]
    summary = json.loads(max((loop.project.monitor_reports_dir).glob("*.json")).read_text())
    assert summary["status"].replace("_", " ") in page.sections["drift"]


@pytest.mark.e2e
def test_the_page_is_one_self_contained_file(loop: Loop) -> None:
    source = loop.page.read_text(encoding="utf-8")
    page = Page(source)
    assert "script" not in page.tags
    assert "<script" not in source.lower()
    assert "http://" not in source
    assert "https://" not in source
    # Metric over time, drift, the interval and the paired differences at least.
    assert len(page.images) >= 4
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image.startswith(prefix)
        assert base64.b64decode(image.removeprefix(prefix), validate=True).startswith(PNG)

    files = set()
    for href in page.links:
        if href.startswith("#"):
            assert href[1:] in page.sections, href
            continue
        target = (loop.page.parent / unquote(href)).resolve()
        assert target.is_file(), href
        files.add(target)
    assert {loop.record.resolve(), loop.record.with_suffix(".md").resolve()} <= files
    evidently = {p.resolve() for p in loop.project.monitor_reports_dir.glob("*.html")}
    assert evidently & files, "the Evidently report is linked"


@pytest.mark.e2e
def test_the_record_keeps_a_small_summary_of_the_paired_differences(loop: Loop) -> None:
    test = loop.promotion["test"]
    differences = test["differences"]
    assert len(differences["edges"]) == len(differences["counts"]) + 1 <= DIFFERENCE_BINS + 1
    resamples = test["detail"]["resamples"] - test["detail"]["dropped_resamples"]
    assert sum(differences["counts"]) == resamples
    assert differences["edges"] == sorted(differences["edges"])


def test_buckets_hold_equal_counts_and_never_too_few(project: Project) -> None:
    rng = np.random.default_rng(0)
    sizes = {"1": 1_000, "2": MIN_SLICE_ROWS + 5, "3": MIN_SLICE_ROWS - 1}
    labelled = pd.concat(
        pd.DataFrame(
            {
                "ts": pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC"),
                "model_version": version,
                "prediction": rng.random(n),
                "probabilities": None,  # a binary model logs one probability: `prediction`
                "label": rng.integers(0, 2, n).astype(float),
            }
        )
        for version, n in sizes.items()
    )
    buckets = metric_buckets(project, labelled.sample(frac=1.0, random_state=0))
    assert len(buckets["1"]) == MAX_POINTS_PER_VERSION
    assert {b.rows for b in buckets["1"]} <= {1_000 // MAX_POINTS_PER_VERSION + d for d in (0, 1)}
    assert [b.middle for b in buckets["1"]] == sorted(b.middle for b in buckets["1"])
    assert [b.rows for b in buckets["2"]] == [MIN_SLICE_ROWS + 5]
    assert buckets["3"] == []


def test_a_project_without_a_champion_gets_a_page_saying_what_is_missing(
    project: Project,
) -> None:
    result = CliRunner().invoke(app, ["report", "-c", str(project.root / "configs/project.yaml")])
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.split())
    assert "loop.html" in line
    assert "0 versions" in line
    page = Page((project.reports_dir / "loop.html").read_text(encoding="utf-8"))
    assert set(page.sections) == SECTIONS
    for section, command in {
        "versions": "train",
        "metric-over-time": "serve",
        "drift": "monitor",
        "gate": "promote",
        "decisions": "promote",
    }.items():
        assert "No " in page.sections[section], section
        assert command in page.sections[section], section
    assert not page.images
