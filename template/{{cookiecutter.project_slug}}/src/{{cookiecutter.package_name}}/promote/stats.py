"""Significance tests for the promotion gate and for online A/B reports.

Offline, the champion and the challenger are scored on the same holdout rows, so every offline
test here is paired: comparing the models row by row cancels the noise the two share (hard rows
are hard for both), which detects a smaller real improvement than comparing two summary numbers.
All p-values are one-sided with H1 "the challenger is better": a gate must never promote on a
difference in the wrong direction, and one-sided tests spend the whole alpha on the direction that
matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from scipy import stats

from ..config import Task
from ..metrics import Metric, decisions

TestName = Literal["paired_bootstrap", "paired_t", "wilcoxon", "mcnemar"]
OnlineTestName = Literal["two_proportion_z", "welch_t"]
MetricFn = Callable[[np.ndarray, np.ndarray], float]

# Resampled rows held in memory at once: 2M float64 draw counts is about 16 MB.
CELLS_PER_CHUNK = 2_000_000
# The paired differences a record keeps: this many bins, over all but this share in each tail.
DIFFERENCE_BINS = 20
DIFFERENCE_TAIL = 0.005
LOSS_REDUCTION = "per-row loss reduction, champion - challenger"


@dataclass(frozen=True)
class Histogram:
    """The distribution of the paired differences a test weighed, in a few tens of numbers: a
    decision record shows what the test saw without holding thousands of values."""

    of: str
    edges: list[float]
    counts: list[int]

    def as_record(self) -> dict[str, Any]:
        return {"of": self.of, "edges": self.edges, "counts": self.counts}


def histogram(values: np.ndarray, of: str, bins: int = DIFFERENCE_BINS) -> Histogram:
    """Equal-width bins over all but the outermost `DIFFERENCE_TAIL` on each side, the tails
    counted in the outer bins: one huge loss would otherwise squeeze every other row into one bar.
    A handful of distinct values (a 0/1 loss) gets one bin each instead, so no count is blurred.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    distinct, counts = np.unique(finite, return_counts=True)
    if distinct.size == 0:
        return Histogram(of, [], [])
    if distinct.size <= bins:
        half = float(np.diff(distinct).min()) / 2 if distinct.size > 1 else 0.5
        edges = np.r_[distinct[0] - half, (distinct[:-1] + distinct[1:]) / 2, distinct[-1] + half]
    else:
        low, high = (float(q) for q in np.quantile(finite, [DIFFERENCE_TAIL, 1 - DIFFERENCE_TAIL]))
        if low == high:
            low, high = float(distinct[0]), float(distinct[-1])
        counts, edges = np.histogram(np.clip(finite, low, high), bins=bins, range=(low, high))
    return Histogram(of, [float(edge) for edge in edges], [int(count) for count in counts])


@dataclass(frozen=True)
class TestResult:
    """One test's verdict on "the challenger is better", with the numbers a report needs.

    `ci_low` and `ci_high` bound the improvement (positive = challenger better); each is a one-sided
    (1 - alpha) bound, so `ci_low > 0` agrees with `p_value < alpha` and together they span a
    (1 - 2 alpha) interval. Tests without a natural interval leave both None. `differences` is
    the distribution the test weighed, on the scale of its interval where it has one.
    """

    test: TestName | OnlineTestName
    statistic: float
    p_value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    detail: dict[str, float]
    differences: Histogram | None = None


def paired_bootstrap(
    metric_fn: MetricFn,
    y_true: np.ndarray,
    champion_scores: np.ndarray,
    challenger_scores: np.ndarray,
    *,
    maximize: bool,
    alpha: float,
    resamples: int,
    seed: int,
) -> TestResult:
    """Resample the holdout rows and count how often the challenger fails to improve the metric.

    Both models are scored on the same drawn rows, so the spread reflects only how their difference
    varies. Works for any metric, including rank metrics no per-row loss can express. A project
    `Metric` scores whole batches of resamples at once from draw counts; any other callable is
    called once per resample and model and should return NaN where the metric is undefined.
    """
    _check_alpha(alpha)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    y, champion, challenger = _paired_arrays(y_true, champion_scores, challenger_scores)
    direction = 1.0 if maximize else -1.0
    champion_value = metric_fn(y, champion)
    challenger_value = metric_fn(y, challenger)
    rng = np.random.default_rng(seed)
    improvements = []
    for rows in _resampled_rows(rng, len(y), resamples):
        challenger_values, champion_values = _resampled_values(
            metric_fn, y, challenger, champion, rows
        )
        improvements.append(direction * (challenger_values - champion_values))
    every_improvement = np.concatenate(improvements)
    defined = every_improvement[~np.isnan(every_improvement)]
    detail = {
        "resamples": float(resamples),
        "dropped_resamples": float(resamples - defined.size),
        "champion_metric": float(champion_value),
        "challenger_metric": float(challenger_value),
    }
    observed = direction * (challenger_value - champion_value)
    if defined.size == 0:
        return TestResult("paired_bootstrap", float(observed), 1.0, None, None, len(y), detail)
    not_better = int(np.count_nonzero(defined <= 0))
    low, high = np.quantile(defined, [alpha, 1 - alpha])
    if defined.size > 1:
        detail["standard_error"] = float(np.std(defined, ddof=1))
    return TestResult(
        test="paired_bootstrap",
        statistic=float(observed),
        p_value=(not_better + 1) / (defined.size + 1),
        ci_low=float(low),
        ci_high=float(high),
        n=len(y),
        detail=detail,
        differences=histogram(defined, "the improvement in each bootstrap resample"),
    )


def paired_t(
    champion_losses: np.ndarray, challenger_losses: np.ndarray, *, alpha: float
) -> TestResult:
    """Student's t on the per-row loss reduction (champion loss - challenger loss).

    Differences without spread give the t statistic nothing to weigh: that is reported as no
    evidence (p = 1.0) rather than NaN, which a gate could mistake for a number.
    """
    _check_alpha(alpha)
    champion, challenger = _paired_arrays(champion_losses, challenger_losses)
    reduction = champion - challenger
    n = len(reduction)
    mean = float(reduction.mean())
    spread = float(reduction.std(ddof=1)) if n > 1 else 0.0
    detail = {
        "mean_difference": mean,
        "std_difference": spread,
        "df": float(n - 1),
        "standard_error": spread / math.sqrt(n),
    }
    differences = histogram(reduction, LOSS_REDUCTION)
    if _without_spread(reduction):
        return TestResult("paired_t", 0.0, 1.0, None, None, n, detail, differences)
    result = stats.ttest_rel(champion, challenger, alternative="greater")
    margin = float(stats.t.ppf(1 - alpha, n - 1)) * spread / math.sqrt(n)
    return TestResult(
        test="paired_t",
        statistic=float(result.statistic),
        p_value=_evidence(result.pvalue),
        ci_low=mean - margin,
        ci_high=mean + margin,
        n=n,
        detail=detail,
        differences=differences,
    )


def wilcoxon(champion_losses: np.ndarray, challenger_losses: np.ndarray) -> TestResult:
    """Wilcoxon signed-rank test on the per-row loss reduction; robust to a few huge losses.

    Rows where both models lose the same are dropped (zero_method="wilcox"); when every row ties
    there is nothing to rank, which is no evidence (p = 1.0).
    """
    champion, challenger = _paired_arrays(champion_losses, challenger_losses)
    reduction = champion - challenger
    changed = int(np.count_nonzero(reduction))
    detail = {
        "changed_rows": float(changed),
        "mean_difference": float(reduction.mean()),
        "median_difference": float(np.median(reduction)),
        # The normal approximation's, for the minimum detectable effect.
        "standard_error": float(reduction.std(ddof=1) / math.sqrt(len(reduction)))
        if len(reduction) > 1
        else math.nan,
    }
    differences = histogram(reduction, LOSS_REDUCTION)
    if changed == 0:
        return TestResult("wilcoxon", 0.0, 1.0, None, None, len(reduction), detail, differences)
    result = stats.wilcoxon(champion, challenger, alternative="greater", zero_method="wilcox")
    return TestResult(
        test="wilcoxon",
        statistic=float(result.statistic),
        p_value=_evidence(result.pvalue),
        ci_low=None,
        ci_high=None,
        n=len(reduction),
        detail=detail,
        differences=differences,
    )


def mcnemar(champion_correct: np.ndarray, challenger_correct: np.ndarray) -> TestResult:
    """Exact McNemar test: where exactly one model is right, is it mostly the challenger?

    Rows both models get right or both get wrong say nothing about which is better, so only the
    discordant pairs count; under H0 each is the challenger's with probability one half.
    """
    champion, challenger = _paired_arrays(champion_correct, challenger_correct)
    champion_right, challenger_right = champion.astype(bool), challenger.astype(bool)
    champion_only = int(np.count_nonzero(champion_right & ~challenger_right))
    challenger_only = int(np.count_nonzero(~champion_right & challenger_right))
    discordant = champion_only + challenger_only
    p_value = (
        float(stats.binomtest(challenger_only, discordant, 0.5, alternative="greater").pvalue)
        if discordant
        else 1.0
    )
    return TestResult(
        test="mcnemar",
        statistic=float(challenger_only),
        p_value=p_value,
        ci_low=None,
        ci_high=None,
        n=len(champion),
        detail={
            "b": float(champion_only),
            "c": float(challenger_only),
            # Of the difference in accuracy, (c - b) / n.
            "standard_error": math.sqrt(
                max(discordant - (challenger_only - champion_only) ** 2 / len(champion), 0.0)
            )
            / len(champion),
        },
        differences=histogram(
            challenger_right.astype(float) - champion_right.astype(float),
            "per-row correctness, challenger - champion (1: only the challenger is right)",
        ),
    )


def minimum_detectable_effect(result: TestResult, alpha: float, power: float = 0.8) -> float:
    """The smallest true improvement this test finds significant with probability `power` on
    these rows: (z_(1 - alpha) + z_power) * standard error, a normal approximation. Its scale
    is the test's own: the gate metric (bootstrap), the mean per-row loss (t, Wilcoxon),
    accuracy (McNemar). NaN when the test has no standard error."""
    error = result.detail.get("standard_error", math.nan)
    if not math.isfinite(error):
        return math.nan
    return float((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * error)


def run_test(
    test: TestName,
    *,
    task: Task,
    metric: Metric,
    y_true: np.ndarray,
    champion_scores: np.ndarray,
    challenger_scores: np.ndarray,
    alpha: float,
    resamples: int,
    seed: int,
) -> TestResult:
    """The named test on both models' holdout scores: the gate's single entry point.

    The bootstrap resamples the metric itself; the t and Wilcoxon tests compare the metric's
    per-row losses; McNemar compares right and wrong decisions.
    """
    if test == "paired_bootstrap":
        return paired_bootstrap(
            metric,
            y_true,
            champion_scores,
            challenger_scores,
            maximize=metric.maximize,
            alpha=alpha,
            resamples=resamples,
            seed=seed,
        )
    y, champion, challenger = _paired_arrays(y_true, champion_scores, challenger_scores)
    if test == "mcnemar":
        if task != "binary_classification":
            raise ValueError(
                "mcnemar compares right and wrong decisions, so it needs a binary_classification "
                "task; use paired_bootstrap, paired_t or wilcoxon for regression"
            )
        return mcnemar(decisions(champion) == (y == 1), decisions(challenger) == (y == 1))
    if test in ("paired_t", "wilcoxon"):
        champion_losses = metric.row_loss(y, champion)
        challenger_losses = metric.row_loss(y, challenger)
        if test == "paired_t":
            return paired_t(champion_losses, challenger_losses, alpha=alpha)
        return wilcoxon(champion_losses, challenger_losses)
    raise ValueError(f"unknown test {test!r}; choose one of {list(get_args(TestName))}")


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> TestResult:
    """Pooled two-proportion z-test, H1: variant b (the challenger) converts more often than a.

    Pooling the rates is right under H0, where both variants share one rate.
    """
    for variant, successes, trials in (("a", successes_a, n_a), ("b", successes_b, n_b)):
        if trials < 1 or not 0 <= successes <= trials:
            raise ValueError(
                f"variant {variant}: need n >= 1 and 0 <= successes <= n, "
                f"got {successes} of {trials}"
            )
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    detail = {"rate_a": rate_a, "rate_b": rate_b, "difference": rate_b - rate_a, "pooled": pooled}
    if standard_error == 0.0:
        # Both variants all-success or all-failure: no variation to test.
        return TestResult("two_proportion_z", 0.0, 1.0, None, None, n_a + n_b, detail)
    z = (rate_b - rate_a) / standard_error
    return TestResult("two_proportion_z", z, float(stats.norm.sf(z)), None, None, n_a + n_b, detail)


def welch_t(a: np.ndarray, b: np.ndarray, *, lower_is_better: bool) -> TestResult:
    """Welch's t-test of b (the challenger) against a, one-sided in b's favour.

    Welch rather than Student because variants rarely share a variance. The statistic is positive
    when b looks better, whichever direction "better" is.
    """
    control, challenger = _as_finite(a, "a"), _as_finite(b, "b")
    if len(control) < 2 or len(challenger) < 2:
        raise ValueError(
            f"welch_t needs at least 2 values per variant, got {len(control)} and {len(challenger)}"
        )
    detail = {"mean_a": float(control.mean()), "mean_b": float(challenger.mean())}
    n = len(control) + len(challenger)
    if _without_spread(control) and _without_spread(challenger):
        return TestResult("welch_t", 0.0, 1.0, None, None, n, detail)
    higher, lower = (control, challenger) if lower_is_better else (challenger, control)
    result = stats.ttest_ind(higher, lower, equal_var=False, alternative="greater")
    return TestResult(
        test="welch_t",
        statistic=float(result.statistic),
        p_value=_evidence(result.pvalue),
        ci_low=None,
        ci_high=None,
        n=n,
        detail=detail | {"df": float(result.df)},
    )


def required_sample_size_proportions(
    p_base: float, min_effect: float, alpha: float, power: float
) -> int:
    """Users per variant to detect a rise of `min_effect` over `p_base` with a one-sided test.

    Normal approximation with the pooled variance under H0 and the separate variances under H1:
    n = (z_(1-alpha) sqrt(2 p q) + z_power sqrt(p1 q1 + p2 q2))^2 / min_effect^2, p = mean rate.
    """
    _check_alpha(alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, got {power}")
    if not 0 < p_base < 1 or min_effect <= 0 or p_base + min_effect >= 1:
        raise ValueError(
            "need 0 < p_base < p_base + min_effect < 1, "
            f"got p_base={p_base}, min_effect={min_effect}"
        )
    p_target = p_base + min_effect
    p_mean = (p_base + p_target) / 2
    under_h0 = float(stats.norm.ppf(1 - alpha)) * math.sqrt(2 * p_mean * (1 - p_mean))
    under_h1 = float(stats.norm.ppf(power)) * math.sqrt(
        p_base * (1 - p_base) + p_target * (1 - p_target)
    )
    return math.ceil(((under_h0 + under_h1) / min_effect) ** 2)


def _resampled_rows(rng: np.random.Generator, rows: int, resamples: int) -> Iterator[np.ndarray]:
    """Row indices of each resample, a chunk at a time so memory stays flat for large holdouts."""
    chunk = max(1, CELLS_PER_CHUNK // rows)
    for start in range(0, resamples, chunk):
        yield rng.integers(0, rows, size=(min(chunk, resamples - start), rows))


def _resampled_values(
    metric_fn: MetricFn,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(metric_fn, Metric):
        drawn, size = rows.shape
        flat = (rows + size * np.arange(drawn)[:, None]).ravel()
        counts = np.bincount(flat, minlength=drawn * size).reshape(drawn, size).astype(float)
        return metric_fn.on_counts(y, challenger, counts), metric_fn.on_counts(y, champion, counts)
    return (
        np.array([metric_fn(y[drawn], challenger[drawn]) for drawn in rows], dtype=float),
        np.array([metric_fn(y[drawn], champion[drawn]) for drawn in rows], dtype=float),
    )


def _paired_arrays(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays as floats, refused unless they pair up row for row: labels and losses have
    one value per row, a multiclass model's scores one row of class probabilities."""
    converted = tuple(_as_finite(array, f"argument {i + 1}") for i, array in enumerate(arrays))
    lengths = {len(array) for array in converted}
    if len(lengths) != 1:
        raise ValueError(f"paired inputs must have one value per row each, got lengths {lengths}")
    if not lengths.pop():
        raise ValueError("paired inputs are empty")
    return converted


def _as_finite(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim not in (1, 2):
        raise ValueError(f"{name}: expected one value or one row per row, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")


def _evidence(p_value: float) -> float:
    """scipy's p-value, with an undefined one read as no evidence."""
    value = float(p_value)
    return 1.0 if math.isnan(value) else value


def _without_spread(values: np.ndarray) -> bool:
    """Constant up to rounding: a spread of 1e-17 on values of 0.1 is noise, not a variance."""
    return len(values) < 2 or float(values.std()) <= 1e-9 * float(np.abs(values).max())
