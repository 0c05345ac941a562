"""The page's charts, drawn in the style of `train/plots.py` and embedded as PNG data URIs, so
the page needs no file beside it and no script to show them."""

from __future__ import annotations

import base64
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .artifacts import Bucket

WIDTH, DPI = 8.0, 100  # inches and dots per inch: about the width of the page's text column
DRIFTED, STEADY, REFERENCE = "#b4533a", "#5a7fa6", "#555555"
# Drawn instead of -log10(0) for a p-value that underflowed to zero.
SMALLEST_P = 1e-300


def data_uri(figure: Figure) -> str:
    """The figure as an inline PNG; without the writer's metadata, which names a web site."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def version_colour(index: int) -> str:
    """A version's colour, by its place among the registered versions: it keeps it from one
    page to the next."""
    return f"C{index % 10}"


def _axes(title: str, height: float) -> tuple[Figure, Any]:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return figure, axes


def metric_over_time(
    buckets: dict[str, list[Bucket]],
    holdouts: dict[str, float | None],
    colours: dict[str, str],
    name: str,
    maximize: bool,
) -> Figure:
    """One line per version through its buckets, and its holdout value at training, dashed."""
    figure, axes = _axes(f"{name} on labelled traffic, per model version", 3.8)
    for version, points in buckets.items():
        if not points:
            continue
        colour = colours[version]
        axes.plot(
            [point.middle.to_pydatetime() for point in points],
            [point.value for point in points],
            marker="o",
            color=colour,
            label=f"v{version} served",
        )
        if (holdout := holdouts.get(version)) is not None:
            axes.axhline(
                holdout, linestyle="--", linewidth=1, color=colour, label=f"v{version} at training"
            )
    axes.tick_params(axis="x", labelrotation=30)
    axes.set_xlabel("served at (UTC)")
    axes.set_ylabel(f"{name} ({'higher' if maximize else 'lower'} is better)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return figure


@dataclass(frozen=True)
class DriftBar:
    """One column's drift test: its score, the threshold and the monitor's verdict."""

    label: str
    score: float
    threshold: float
    drifted: bool
    below_drifts: bool  # a p-value: a score below the threshold is drift; a distance: above


def drift_bars(bars: Sequence[DriftBar]) -> Figure:
    """Horizontal bars with each column's threshold marked, drifted columns in their own colour.

    p-values are drawn as -log10(p), so that for both kinds of test a longer bar is stronger
    evidence of drift and the bar crosses its threshold mark exactly when the column drifted;
    on a linear scale every drifted p-value would be a bar too short to see.
    """
    p_values = all(bar.below_drifts for bar in bars)
    figure, axes = _axes(
        "drift evidence per column" if p_values else "drift distance per column",
        0.9 + 0.38 * len(bars),
    )

    def length(value: float, below: bool) -> float:
        return -math.log10(max(value, SMALLEST_P)) if below else value

    rows = range(len(bars))
    axes.barh(
        rows,
        [length(bar.score, bar.below_drifts) for bar in bars],
        color=[DRIFTED if bar.drifted else STEADY for bar in bars],
        height=0.6,
    )
    for row, bar in zip(rows, bars, strict=True):
        mark = length(bar.threshold, bar.below_drifts)
        axes.plot([mark, mark], [row - 0.42, row + 0.42], color=REFERENCE, linewidth=2)
    axes.set_yticks(list(rows), [bar.label for bar in bars])
    axes.invert_yaxis()
    axes.set_xlabel(
        "-log10 p-value (longer: stronger evidence of drift)"
        if p_values
        else "distance (longer: further from the reference)"
    )
    axes.legend(
        handles=[
            Line2D([], [], color=REFERENCE, linewidth=2, label="threshold"),
            Patch(color=DRIFTED, label="drifted"),
            Patch(color=STEADY, label="not drifted"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        frameon=False,
    )
    return figure


def _zero_and_min_effect(axes: Any, min_effect: float | None) -> None:
    """The line of no change and, when the policy asks for more, the minimum effect."""
    same = min_effect == 0.0
    axes.axvline(
        0.0, color=REFERENCE, linewidth=1, label="no change = min_effect" if same else "no change"
    )
    if min_effect is not None and not same:
        axes.axvline(min_effect, color=DRIFTED, linestyle="--", linewidth=1, label="min_effect")


def improvement_interval(
    low: float, high: float, estimate: float, scale: str, min_effect: float | None
) -> Figure:
    """The interval of the improvement against zero and, on the metric's own scale, the
    smallest improvement the policy wants: promotion needs it clear of zero, and the estimate
    at least the minimum effect."""
    figure, axes = _axes(f"improvement of the challenger ({scale})", 1.9)
    axes.plot([low, high], [0, 0], color=STEADY, linewidth=6, solid_capstyle="butt")
    axes.plot([estimate], [0], marker="o", color="black", label="measured")
    _zero_and_min_effect(axes, min_effect)
    axes.plot([], [], color=STEADY, linewidth=6, label="interval")
    axes.set_yticks([])
    spread = max(high - low, abs(estimate), abs(min_effect or 0.0), 1e-9)
    left = min(low, 0.0, min_effect or 0.0) - 0.15 * spread
    right = max(high, 0.0, min_effect or 0.0) + 0.15 * spread
    axes.set_xlim(left, right)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return figure


def differences(
    edges: Sequence[float],
    counts: Sequence[int],
    of: str,
    interval: tuple[float, float] | None,
    min_effect: float | None,
    interval_label: str = "interval",
) -> Figure:
    """The recorded histogram of the paired differences, with zero, the interval's bounds and
    the minimum effect drawn over it."""
    figure, axes = _axes("paired differences", 2.8)
    widths = [right - left for left, right in itertools.pairwise(edges)]
    axes.bar(edges[:-1], counts, width=widths, align="edge", color=STEADY, edgecolor="white")
    _zero_and_min_effect(axes, min_effect)
    if interval is not None:
        for value, label in zip(interval, (interval_label, None), strict=True):
            axes.axvline(value, color="black", linestyle=":", linewidth=1.5, label=label)
    axes.set_xlabel(of)
    axes.set_ylabel("count")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return figure
