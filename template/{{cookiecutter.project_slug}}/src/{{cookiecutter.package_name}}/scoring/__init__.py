"""Scoring a registered version: by its compiled form when verified, else by its library.

At registration, training compiles the fitted pipeline (`compiler.py`), scores the holdout both
ways and keeps the compiled form only when every score agrees within `SCORE_TOLERANCE` and every
decision is the same; the verdict is saved beside the model and tagged on the version. It also
times both on one request row and on a frame of rows: the compiled form answers a request with
no frame to build, but a library's own compiled trees (LightGBM, XGBoost, scikit-learn's) walk a
large frame several times faster than numpy can, so a frame goes to whichever was faster.
Serving and batch scoring load whichever `load_scorer` finds, through the `Scorer` protocol.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
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
    "MULTICLASS_BY_LIBRARY",
    "SCIKIT_LEARN",
    "SCORE_TOLERANCE",
    "CompileError",
    "CompiledModel",
    "Scorer",
    "Verification",
    "compile_model",
    "load_scorer",
    "request_records",
    "score_gap",
    "verify",
    "write_scorer",
]

log = logging.getLogger(__name__)
COMPILED = "compiled"
SCIKIT_LEARN = "scikit-learn"
COMPILED_FOLDER = "compiled"  # inside the version's model folder, beside scikit-learn's files
VERIFICATION_FILE = "verification.json"
# The largest difference from the library's score a compiled form may show: absolute up to a
# score of 1 (every probability), relative beyond (a regressor's large numbers, which XGBoost
# computes in float32).
SCORE_TOLERANCE = 1e-5
TURNED_OFF = "turned off by train.compiled_scoring"
# Three or more classes: the compiled forms hold one score per row (a boosted ensemble per class
# and a per-class calibration would each be a form of their own), so the library scores them.
MULTICLASS_BY_LIBRARY = "a multiclass model has no compiled form: its library scores it"
# How registration times the two paths: request rows one at a time, and one frame of this many
# rows (the holdout's, repeated), the faster of a few tries.
TIMED_REQUESTS = 30
TIMED_FRAME_ROWS = 2_000
TIMED_FRAME_TRIES = 2


class Scorer(Protocol):
    """What serving and batch scoring call: scores for request rows or for a validated frame."""

    @property
    def kind(self) -> str: ...

    @property
    def frame_kind(self) -> str:
        """What scores a frame (batch scoring): `kind`, or the library where it is faster."""
        ...

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray: ...

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class SklearnScorer:
    model: Any
    schema: DataSchema
    task: Task
    kind: str = SCIKIT_LEARN
    frame_kind: str = SCIKIT_LEARN

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return predict_scores(self.model, records_frame(rows, self.schema), self.task)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return predict_scores(self.model, model_input(frame, self.schema), self.task)


@dataclass(frozen=True)
class CompiledScorer:
    """The compiled form; frames go to `frames` (the library) when registration found it faster."""

    compiled: CompiledModel
    schema: DataSchema
    frames: SklearnScorer | None = None
    kind: str = COMPILED

    @property
    def frame_kind(self) -> str:
        return COMPILED if self.frames is None else self.frames.kind

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.compiled.score_records(rows)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        if self.frames is not None:
            return self.frames.score_frame(frame)
        return self.compiled.score_frame(model_input(frame, self.schema))


@dataclass(frozen=True)
class Verification:
    """How the compiled form compared with scikit-learn on the holdout, or why there is none."""

    rows: int
    max_abs_diff: float | None
    label_mismatches: int
    refused: str | None
    # The library's time over the compiled form's: on one request row, and on a frame of rows.
    speedup_one_row: float | None = None
    speedup_frame: float | None = None

    @property
    def scoring(self) -> str:
        return SCIKIT_LEARN if self.refused else COMPILED

    @property
    def frame_scoring(self) -> str:
        """What scores a frame: the compiled form unless the library was faster on one."""
        slower = self.speedup_frame is not None and self.speedup_frame < 1
        return SCIKIT_LEARN if self.refused or slower else COMPILED

    def summary(self) -> str:
        if self.refused:
            return f"scikit-learn scoring (compiled form refused: {self.refused})"
        faster = ""
        if self.speedup_one_row is not None and self.speedup_frame is not None:
            faster = (
                f"; {self.speedup_one_row:.1f}x the library's speed on one row, "
                f"{self.speedup_frame:.1f}x on a frame: frames scored by {self.frame_scoring}"
            )
        return (
            f"compiled scoring, verified on {self.rows} holdout rows "
            f"(largest difference {self.max_abs_diff:.1e}){faster}"
        )

    def tags(self) -> dict[str, str]:
        """What the registered version records: the path it will be served by, and why."""
        tags = {
            "scoring": self.scoring,
            "scoring_frames": self.frame_scoring,
            "compiled_verified_rows": str(self.rows),
        }
        for shape, speedup in (("one_row", self.speedup_one_row), ("frame", self.speedup_frame)):
            if speedup is not None:
                tags[f"compiled_speedup_{shape}"] = f"{speedup:.2f}"
        if self.max_abs_diff is not None:
            tags["compiled_max_abs_diff"] = f"{self.max_abs_diff:.3e}"
        if self.refused:
            tags["compiled_refused"] = self.refused
        return tags


def request_records(frame: pd.DataFrame, schema: DataSchema) -> list[dict[str, Any]]:
    """Rows as a request carries them: feature values, None where one is missing."""
    features = model_input(frame, schema).astype(object)
    return cast(list[dict[str, Any]], features.where(features.notna(), None).to_dict("records"))


def score_gap(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """How far each of `got` is from `expected`, as `SCORE_TOLERANCE` measures it."""
    return np.asarray(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)))


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
        difference = score_gap(got, expected)
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


def _fastest_ns(work: Callable[[], object], tries: int) -> int:
    best = None
    for _ in range(tries):
        started = time.perf_counter_ns()
        work()
        took = time.perf_counter_ns() - started
        best = took if best is None else min(best, took)
    return max(best or 1, 1)


def time_paths(
    compiled: CompiledModel, model: Any, holdout: pd.DataFrame, schema: DataSchema, task: Task
) -> tuple[float, float]:
    """The library's time over the compiled form's, on request rows one at a time (the median)
    and on one frame of `TIMED_FRAME_ROWS` rows (the fastest of `TIMED_FRAME_TRIES`)."""
    library = SklearnScorer(model, schema, task)
    records = request_records(holdout.head(TIMED_REQUESTS), schema)
    one_row = statistics.median(
        _fastest_ns(partial(library.score_records, [row]), 1)
        / _fastest_ns(partial(compiled.score_records, [row]), 1)
        for row in records
    )
    repeats = -(-TIMED_FRAME_ROWS // max(len(holdout), 1))
    frame = model_input(pd.concat([holdout] * repeats).head(TIMED_FRAME_ROWS), schema)
    library_ns = _fastest_ns(lambda: predict_scores(model, frame, task), TIMED_FRAME_TRIES)
    compiled_ns = _fastest_ns(lambda: compiled.score_frame(frame), TIMED_FRAME_TRIES)
    return float(one_row), library_ns / compiled_ns


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
    elif task == "multiclass_classification":
        verification = Verification(0, None, 0, MULTICLASS_BY_LIBRARY)
    else:
        try:
            compiled = compile_model(model, family)
        except CompileError as error:
            verification = Verification(0, None, 0, str(error))
        else:
            verification = verify(compiled, model, holdout, schema, task)
            if verification.refused is None:
                compiled.save(folder / COMPILED_FOLDER)
                one_row, frame = time_paths(compiled, model, holdout, schema, task)
                verification = replace(verification, speedup_one_row=one_row, speedup_frame=frame)
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
    library's model (`load_model(folder)`); an unreadable compiled form falls back too. Frames
    go to the library too when registration timed it faster on them (`verification.json`)."""
    if compiled and (folder / COMPILED_FOLDER).is_dir():
        try:
            form = CompiledModel.load(folder / COMPILED_FOLDER)
        except (OSError, ValueError, KeyError) as error:
            log.warning("compiled form unreadable, scoring with scikit-learn: %s", error)
        else:
            frames = None
            if _frame_scoring(folder) == SCIKIT_LEARN:
                frames = SklearnScorer(load_model(folder), schema, task)
            return CompiledScorer(form, schema, frames)
    return SklearnScorer(load_model(folder), schema, task)


def _frame_scoring(folder: Path) -> str:
    """What the saved verdict says scores a frame; the compiled form when it does not say."""
    try:
        saved = json.loads((folder / VERIFICATION_FILE).read_text(encoding="utf-8"))
        return Verification(**saved).frame_scoring
    except (OSError, ValueError, TypeError):
        return COMPILED
