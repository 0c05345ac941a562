from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from {{ cookiecutter.package_name }}.config import OnlineConfig, Project
from {{ cookiecutter.package_name }}.data import project_schema
from {{ cookiecutter.package_name }}.predictions import (
    FeedbackRecord,
    PredictionLog,
    PredictionRecord,
)
from {{ cookiecutter.package_name }}.promote import Outcome
from {{ cookiecutter.package_name }}.promote.online import ab_report, assign_variant

START = datetime(2026, 3, 1, tzinfo=UTC)


def test_assignment_is_stable_and_close_to_the_canary_share() -> None:
    canary = OnlineConfig(mode="canary", canary_share=0.2)
    ids = [f"C{i:06d}" for i in range(20_000)]
    first = [assign_variant(i, canary, salt="model") for i in ids]
    assert first == [assign_variant(i, canary, salt="model") for i in ids]
    assert Counter(first)["challenger"] / len(ids) == pytest.approx(0.2, abs=0.01)
    assert {assign_variant(i, OnlineConfig(mode="shadow"), salt="m") for i in ids} == {"champion"}


def _log(project: Project, accuracy: dict[str, float], per_variant: int) -> None:
    """Labelled predictions, exactly `accuracy` of them right (or close, for regression; for
    three or more classes, 70% on the class decided)."""
    log = PredictionLog(project.prediction_log_url)
    task = project.config.train.task
    classes = len(project_schema(project).target.classes or ())
    predictions, feedback = [], []
    for variant, rate in accuracy.items():
        for i in range(per_variant):
            pid, ts = f"{variant}-{i}", START + timedelta(minutes=i)
            correct = i % 20 < round(rate * 20)
            label = float(i % 2)
            score = label if correct else 1 - label
            probabilities = None
            if task == "regression":
                label, score = 100.0, 100.0 + (1.0 if correct else 20.0) * (-1) ** i
            elif task == "multiclass_classification":
                label = float(i % classes)
                score = label if correct else (label + 1) % classes
                spread = [0.3 / (classes - 1)] * classes
                spread[int(score)] = 0.7
                probabilities = tuple(spread)
            predictions.append(
                PredictionRecord(
                    prediction_id=pid,
                    variant=variant,
                    served=True,
                    features={"x": i},
                    model_version="1" if variant == "champion" else "2",
                    prediction=score,
                    latency_ms=1.0,
                    ts=ts,
                    probabilities=probabilities,
                )
            )
            feedback.append(FeedbackRecord(pid, label=label, ts=ts + timedelta(days=1)))
    assert log.append(predictions).rows == len(predictions)
    assert log.append_feedback(feedback).rows == len(feedback)


@pytest.mark.answers
def test_the_log_joins_late_labels_across_days(project: Project) -> None:
    _log(project, {"champion": 0.8, "challenger": 0.8}, per_variant=50)
    frame = PredictionLog(project.prediction_log_url).read()
    assert len(frame) == 100
    assert frame["label"].notna().all(), "labels written a day after their predictions"
    later = PredictionLog(project.prediction_log_url).read(since=START + timedelta(minutes=40))
    assert len(later) == 20


@pytest.mark.answers
@pytest.mark.parametrize(
    ("accuracy", "per_variant", "expected"),
    [
        ({"champion": 0.70, "challenger": 0.85}, 1_500, Outcome.PROMOTED),
        ({"champion": 0.85, "challenger": 0.70}, 1_500, Outcome.REJECTED),
        ({"champion": 0.80, "challenger": 0.80}, 1_500, Outcome.KEEP_COLLECTING),
        ({"champion": 0.70, "challenger": 0.95}, 50, Outcome.KEEP_COLLECTING),
    ],
)
def test_the_online_report_decides_from_labelled_outcomes(
    project: Project, accuracy: dict[str, float], per_variant: int, expected: Outcome
) -> None:
    _log(project, accuracy, per_variant)
    decision = ab_report(project)
    assert decision.outcome == expected, decision.reason
    assert decision.record["variants"]["challenger"]["samples"] == per_variant
    assert decision.record_path.exists()
