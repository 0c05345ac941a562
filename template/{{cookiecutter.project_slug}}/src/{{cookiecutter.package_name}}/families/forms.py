"""The arithmetic a compiled model scores with: a linear model's dot product, a tree ensemble's
walk. numpy only, float64 like scikit-learn.

It lives under the families, not in `scoring`, because each family's `compile` hook builds its
form from the fitted estimator and the families sit below `scoring` (configuration reads the
registry). `scoring.compiled.CompiledModel` holds one form, and saves it as arrays and JSON
through `arrays`, `layout` and `restore`. A family whose estimator needs new arithmetic adds
its form here and names it in `FORMS`; one that can reuse a form (any linear model) needs
nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

Link = Literal["identity", "logistic", "exp"]
# Up to this many (rows x tree nodes), deciding every node first is faster than stepping.
DECIDE_ALL_ELEMENTS = 2**16
TREE_ARRAYS = ("feature", "threshold", "missing_left", "left", "right", "value", "roots")


class CompileError(ValueError):
    """A part of the fitted model has no compiled form; the message names it."""


@dataclass(frozen=True)
class Linear:
    coef: np.ndarray
    intercept: float
    kind: ClassVar[str] = "linear"

    def raw(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features @ self.coef + self.intercept, dtype=np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef}

    def layout(self) -> dict[str, Any]:
        return {"intercept": self.intercept}

    @classmethod
    def restore(cls, layout: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Linear:
        return cls(arrays["coef"], float(layout["intercept"]))


@dataclass(frozen=True)
class Trees:
    """Every tree's nodes in flat arrays, a leaf pointing at itself, so that all rows walk all
    trees in lockstep for `depth` steps and the leaves' values then sum to the raw score."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    baseline: float
    # Node n's children at 2n (right) and 2n + 1 (left): one lookup per step, by the decision.
    children: np.ndarray = field(init=False, repr=False, compare=False)
    kind: ClassVar[str] = "trees"

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", np.stack([self.right, self.left], axis=1).ravel())

    def raw(self, features: np.ndarray) -> np.ndarray:
        rows = len(features)
        node = np.broadcast_to(self.roots, (rows, len(self.roots)))
        if rows * len(self.feature) <= DECIDE_ALL_ELEMENTS:
            # A few rows: decide every node at once, then each step is one lookup.
            x = features[:, self.feature]
            go_left = (x <= self.threshold) | (np.isnan(x) & self.missing_left)
            following = self.children[2 * np.arange(len(self.feature)) + go_left].ravel()
            starts = (np.arange(rows) * len(self.feature))[:, None]
            for _ in range(self.depth):
                node = following[starts + node]
        else:
            # Many rows: decide only the node each row is at, step by step.
            flat = np.ascontiguousarray(features).ravel()
            starts = (np.arange(rows) * features.shape[1])[:, None]
            for _ in range(self.depth):
                x = flat[starts + self.feature[node]]
                go_left = (x <= self.threshold[node]) | (np.isnan(x) & self.missing_left[node])
                node = self.children[2 * node + go_left]
        return np.asarray(self.value[node].sum(axis=1) + self.baseline, dtype=np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in TREE_ARRAYS}

    def layout(self) -> dict[str, Any]:
        return {"depth": self.depth, "baseline": self.baseline}

    @classmethod
    def restore(cls, layout: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Trees:
        feature, threshold, missing_left, left, right, value, roots = (
            arrays[name] for name in TREE_ARRAYS
        )
        depth, baseline = int(layout["depth"]), float(layout["baseline"])
        return cls(feature, threshold, missing_left, left, right, value, roots, depth, baseline)


Form = Linear | Trees
# A saved form's `kind` -> its class, for loading.
FORMS: dict[str, type[Linear] | type[Trees]] = {form.kind: form for form in (Linear, Trees)}


def vector(values: Any) -> np.ndarray:
    """Coefficients as one float64 row, whatever shape the estimator keeps them in."""
    return np.asarray(values, dtype=np.float64).ravel()
