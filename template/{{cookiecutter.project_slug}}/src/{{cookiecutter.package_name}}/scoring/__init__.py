"""Scoring a registered version: by its compiled form when verified, else by scikit-learn.

At registration, training compiles the fitted pipeline (`compiler.py`), scores the holdout both
ways and keeps the compiled form only when every score agrees within `SCORE_TOLERANCE` and every
decision is the same; the verdict is saved beside the model and tagged on the version. Serving
and batch scoring load whichever `load_scorer` finds: both answer through the `Scorer` protocol.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from ..config import Task
from ..data import DataSchema
from ..families import Family
from ..features import model_input, records_frame
from ..metrics import decisions, predict_scores
from .compiled import CompiledModel
from .compiler import CompileError, compile_model

__all__ = [
    "COMPILED",
    "SCIKIT_LEARN",
    "SCORE_TOLERANCE",
    "CompileError",
    "CompiledModel",
    "Scorer",
    "Verification",
    "compile_model",
    "load_scorer",
    "request_records",
    "verify",
    "write_scorer",
]

log = logging.getLogger(__name__)
COMPILED = "compiled"
SCIKIT_LEARN = "scikit-learn"
COMPILED_FOLDER = "compiled"  # inside the version's model folder, beside scikit-learn's files
VERIFICATION_FILE = "verification.json"
SCORE_TOLERANCE = 1e-5  # largest difference from scikit-learn's score a compiled form may show
TURNED_OFF = "turned off by train.compiled_scoring"


class Scorer(Protocol):
    """What serving and batch scoring call: scores for request rows or for a validated frame."""

    @property
    def kind(self) -> str: ...

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray: ...

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class SklearnScorer:
    model: Any
    schema: DataSchema
    task: Task
    kind: str = SCIKIT_LEARN

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return predict_scores(self.model, records_frame(rows, self.schema), self.task)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return predict_scores(self.model, model_input(frame, self.schema), self.task)


@dataclass(frozen=True)
class CompiledScorer:
    compiled: CompiledModel
    schema: DataSchema
    kind: str = COMPILED

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.compiled.score_records(rows)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.compiled.score_frame(model_input(frame, self.schema))


@dataclass(frozen=True)
class Verification:
    """How the compiled form compared with scikit-learn on the holdout, or why there is none."""

    rows: int
    max_abs_diff: float | None
    label_mismatches: int
    refused: str | None

    @property
    def scoring(self) -> str:
        return SCIKIT_LEARN if self.refused else COMPILED

    def summary(self) -> str:
        if self.refused:
            return f"scikit-learn scoring (compiled form refused: {self.refused})"
        return (
            f"compiled scoring, verified on {self.rows} holdout rows "
            f"(largest difference {self.max_abs_diff:.1e})"
        )

    def tags(self) -> dict[str, str]:
        """What the registered version records: the path it will be served by, and why."""
        tags = {"scoring": self.scoring, "compiled_verified_rows": str(self.rows)}
        if self.max_abs_diff is not None:
            tags["compiled_max_abs_diff"] = f"{self.max_abs_diff:.3e}"
        if self.refused:
            tags["compiled_refused"] = self.refused
        return tags


def request_records(frame: pd.DataFrame, schema: DataSchema) -> list[dict[str, Any]]:
    """Rows as a request carries them: feature values, None where one is missing."""
    features = model_input(frame, schema).astype(object)
    return cast(list[dict[str, Any]], features.where(features.notna(), None).to_dict("records"))


def verify(
    compiled: CompiledModel, model: Any, holdout: pd.DataFrame, schema: DataSchema, task: Task
) -> Verification:
    """Score the holdout with scikit-learn and with both compiled paths (frame and records)."""
    expected = predict_scores(model, model_input(holdout, schema), task)
    worst, mismatches = 0.0, 0
    for got in (
        compiled.score_frame(model_input(holdout, schema)),
        compiled.score_records(request_records(holdout, schema)),
    ):
        difference = np.abs(got - expected)
        if not np.array_equal(np.isnan(got), np.isnan(expected)):
            worst = float("inf")
        worst = max(worst, float(np.nanmax(difference, initial=0.0)))
        if task == "binary_classification":
            mismatches = max(mismatches, int((decisions(got) != decisions(expected)).sum()))
    refused = None
    if not worst <= SCORE_TOLERANCE:
        refused = f"a score differs from scikit-learn's by {worst:.3g} (> {SCORE_TOLERANCE:g})"
    elif mismatches:
        refused = f"{mismatches} holdout rows would get a different label"
    return Verification(len(holdout), worst, mismatches, refused)


def write_scorer(
    model: Any,
    holdout: pd.DataFrame,
    schema: DataSchema,
    task: Task,
    folder: Path,
    *,
    enabled: bool = True,
    family: Family | None = None,
) -> Verification:
    """Compile and verify `model` (read by `family`'s hook, when given); the compiled form goes
    to `folder` only when it passed.

    The verdict is written either way, so a version without the compiled form says why."""
    if not enabled:
        verification = Verification(0, None, 0, TURNED_OFF)
    else:
        try:
            compiled = compile_model(model, family)
        except CompileError as error:
            verification = Verification(0, None, 0, str(error))
        else:
            verification = verify(compiled, model, holdout, schema, task)
            if verification.refused is None:
                compiled.save(folder / COMPILED_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / VERIFICATION_FILE).write_text(json.dumps(asdict(verification)), encoding="utf-8")
    return verification


def load_scorer(
    folder: Path,
    load_model: Callable[[Path], Any],
    schema: DataSchema,
    task: Task,
    *,
    compiled: bool = True,
) -> Scorer:
    """The compiled form in a version's model `folder` when it is there and wanted, else the
    scikit-learn model (`load_model(folder)`); an unreadable compiled form falls back too."""
    if compiled and (folder / COMPILED_FOLDER).is_dir():
        try:
            return CompiledScorer(CompiledModel.load(folder / COMPILED_FOLDER), schema)
        except (OSError, ValueError, KeyError) as error:
            log.warning("compiled form unreadable, scoring with scikit-learn: %s", error)
    return SklearnScorer(load_model(folder), schema, task)
