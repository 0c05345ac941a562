"""The compiled form of a fitted model: its numbers in numpy arrays, scored without scikit-learn.

scikit-learn spends milliseconds per call checking its inputs; a request of one row needs
microseconds of arithmetic. This form keeps only the arithmetic, in float64 like scikit-learn, and
is saved as plain arrays and JSON (no pickle), so loading it runs no code. `compiler.py` builds it
from a fitted pipeline and `verify` in `__init__.py` proves it scores like the original. The
features and the calibration are here; the model's own arithmetic (a `Form`) is its family's,
in `families/forms.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..families.forms import FORMS, Form, Linear, Link, Trees

__all__ = [
    "Block",
    "Calibration",
    "CategoricalBlock",
    "CompiledModel",
    "Form",
    "Linear",
    "Link",
    "NumericBlock",
    "Trees",
]

FORMAT = 1
ARRAYS_FILE = "scorer.npz"
LAYOUT_FILE = "scorer.json"
CHUNK_ROWS = 4_096  # rows per step on a frame: bounds the (rows x trees) arrays in memory
NUMERIC_ARRAYS = ("fill", "kept", "flagged", "center", "scale")


@dataclass(frozen=True)
class NumericBlock:
    """Imputed (with a flag for columns that had gaps at fit), then centred and scaled."""

    columns: tuple[str, ...]
    fill: np.ndarray  # per column; columns empty at fit are dropped, as the imputer drops them
    kept: np.ndarray  # indices of the columns that reach the output
    flagged: np.ndarray  # indices of the columns that also get a missing-value flag
    center: np.ndarray
    scale: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        filled = np.where(missing, self.fill, values)[:, self.kept]
        out = np.concatenate([filled, missing[:, self.flagged].astype(np.float64)], axis=1)
        return np.asarray((out - self.center) / self.scale, dtype=np.float64)

    def from_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array(
            [[np.nan if row[c] is None else row[c] for c in self.columns] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(self.columns))

    def from_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[list(self.columns)].to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class CategoricalBlock:
    """One-hot columns; a missing value is its own category, an unseen one lights no column."""

    columns: tuple[str, ...]
    fill_value: Any
    categories: tuple[tuple[Any, ...], ...]
    positions: tuple[dict[Any, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets = np.cumsum([0, *(len(c) for c in self.categories)])
        positions = tuple(
            {value: int(start) + i for i, value in enumerate(values)}
            for start, values in zip(offsets[:-1], self.categories, strict=True)
        )
        object.__setattr__(self, "positions", positions)

    @property
    def width(self) -> int:
        return sum(len(c) for c in self.categories)

    def _encode(self, column: int, value: Any) -> int:
        if value is None or (isinstance(value, float) and value != value):
            value = self.fill_value
        return self.positions[column].get(value, -1)

    def from_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        out = np.zeros((len(rows), self.width))
        for i, row in enumerate(rows):
            for j, name in enumerate(self.columns):
                position = self._encode(j, row[name])
                if position >= 0:
                    out[i, position] = 1.0
        return out

    def from_frame(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.width))
        start = 0
        for name, values in zip(self.columns, self.categories, strict=True):
            column = frame[name].astype(object)
            column = column.where(column.notna(), self.fill_value)
            codes = pd.Categorical(column, categories=list(values)).codes
            hit = np.flatnonzero(codes >= 0)
            out[hit, start + codes[hit]] = 1.0
            start += len(values)
        return out


Block = NumericBlock | CategoricalBlock


@dataclass(frozen=True)
class Calibration:
    """A classifier's probability from its raw score: Platt's sigmoid or an isotonic step line.

    scikit-learn calibrates a model's `decision_function` where it has one (the raw score), else
    its probability (LightGBM's and XGBoost's estimators have none): `of_probability` says so."""

    method: Literal["sigmoid", "isotonic"]
    a: float = 0.0
    b: float = 0.0
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    of_probability: bool = False

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "sigmoid":
            return np.asarray(1.0 / (1.0 + np.exp(self.a * raw + self.b)), dtype=np.float64)
        return np.asarray(np.interp(np.clip(raw, self.x[0], self.x[-1]), self.x, self.y))


@dataclass(frozen=True)
class CompiledModel:
    """Features, model and calibration of one fitted pipeline; scores as the pipeline does."""

    blocks: tuple[Block, ...]
    model: Form  # the family's arithmetic: families/forms.py
    link: Link
    calibration: Calibration | None = None

    def _scores(self, features: np.ndarray) -> np.ndarray:
        raw = self.model.raw(features)
        if self.calibration is not None:
            read = self._linked(raw) if self.calibration.of_probability else raw
            return np.asarray(np.clip(self.calibration.apply(read), 0.0, 1.0))
        return self._linked(raw)

    def _linked(self, raw: np.ndarray) -> np.ndarray:
        if self.link == "logistic":
            return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)
        return np.asarray(np.exp(raw)) if self.link == "exp" else raw

    def score_records(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Scores for request rows, straight from their dicts: no data frame on this path."""
        return self._scores(self._features([b.from_records(rows) for b in self.blocks]))

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[start : start + CHUNK_ROWS]
            parts.append(self._scores(self._features([b.from_frame(chunk) for b in self.blocks])))
        return np.concatenate(parts) if parts else np.zeros(0)

    def _features(self, inputs: list[np.ndarray]) -> np.ndarray:
        out = [
            block.transform(values) if isinstance(block, NumericBlock) else values
            for block, values in zip(self.blocks, inputs, strict=True)
        ]
        return np.concatenate(out, axis=1) if len(out) > 1 else out[0]

    # --- saved as arrays and JSON ----------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        blocks: list[dict[str, Any]] = []
        for i, block in enumerate(self.blocks):
            if isinstance(block, NumericBlock):
                for name in NUMERIC_ARRAYS:
                    arrays[f"block{i}.{name}"] = getattr(block, name)
                blocks.append({"kind": "numeric", "columns": list(block.columns)})
            else:
                blocks.append(
                    {
                        "kind": "categorical",
                        "columns": list(block.columns),
                        "fill_value": block.fill_value,
                        "categories": [list(values) for values in block.categories],
                    }
                )
        for name, values in self.model.arrays().items():
            arrays[f"model.{name}"] = values
        model = {"kind": self.model.kind, **self.model.layout()}
        calibration = None
        if self.calibration is not None:
            c = self.calibration
            calibration = {
                "method": c.method,
                "a": c.a,
                "b": c.b,
                "of_probability": c.of_probability,
            }
            arrays["calibration.x"], arrays["calibration.y"] = c.x, c.y
        layout = {
            "format": FORMAT,
            "blocks": blocks,
            "model": model,
            "link": self.link,
            "calibration": calibration,
        }
        np.savez(folder / ARRAYS_FILE, allow_pickle=False, **arrays)
        (folder / LAYOUT_FILE).write_text(json.dumps(layout, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> CompiledModel:
        layout = json.loads((folder / LAYOUT_FILE).read_text(encoding="utf-8"))
        if layout.get("format") != FORMAT:
            raise ValueError(f"compiled scorer format {layout.get('format')}, expected {FORMAT}")
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        blocks: list[Block] = []
        for i, block in enumerate(layout["blocks"]):
            columns = tuple(block["columns"])
            if block["kind"] == "numeric":
                fill, kept, flagged, center, scale = (
                    arrays[f"block{i}.{n}"] for n in NUMERIC_ARRAYS
                )
                blocks.append(NumericBlock(columns, fill, kept, flagged, center, scale))
            else:
                categories = tuple(tuple(values) for values in block["categories"])
                blocks.append(CategoricalBlock(columns, block["fill_value"], categories))
        spec = layout["model"]
        model_arrays = {
            key.removeprefix("model."): values
            for key, values in arrays.items()
            if key.startswith("model.")
        }
        model = FORMS[spec["kind"]].restore(spec, model_arrays)
        calibration = None
        if (c := layout["calibration"]) is not None:
            calibration = Calibration(
                c["method"],
                c["a"],
                c["b"],
                arrays["calibration.x"],
                arrays["calibration.y"],
                of_probability=bool(c.get("of_probability", False)),  # absent before LightGBM
            )
        return cls(tuple(blocks), model, layout["link"], calibration)
