from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from {{ cookiecutter.package_name }}.config import Task
from {{ cookiecutter.package_name }}.metrics import METRICS, compute_metrics, metric
from {{ cookiecutter.package_name }}.promote.stats import (
    DIFFERENCE_BINS,
    TestName,
    histogram,
    mcnemar,
    minimum_detectable_effect,
    paired_bootstrap,
    paired_t,
    required_sample_size_proportions,
    run_test,
    two_proportion_z,
    welch_t,
    wilcoxon,
)

TESTS: tuple[TestName, ...] = get_args(TestName)
ALPHA = 0.05


def classification_scores(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, an uninformed champion, and a challenger that nearly knows the answer."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows).astype(float)
    y[:2] = [0.0, 1.0]  # both classes, so every metric is defined
    champion = rng.uniform(0, 1, rows)
    challenger = np.clip(0.05 + 0.9 * y + rng.normal(0, 0.03, rows), 0, 1)
    return y, champion, challenger


def regression_scores(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 1, rows)
    return y, rng.normal(0, 1, rows), y + rng.normal(0, 0.1, rows)


def scores_for(task: Task, seed: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if task == "binary_classification":
        return classification_scores(seed, rows)
    return regression_scores(seed, rows)


def run(
    test: TestName,
    task: Task,
    name: str,
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
) -> float:
    """The gate's call: the p-value of `test` on metric `name`, 200 resamples for the bootstrap."""
    return run_test(
        test,
        task=task,
        metric=metric(task, name),
        y_true=y,
        champion_scores=champion,
        challenger_scores=challenger,
        alpha=ALPHA,
        resamples=200,
        seed=0,
    ).p_value


def bootstrap_auc(
    y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, seed: int = 0
) -> tuple[float, float, float | None, float | None]:
    result = paired_bootstrap(
        metric("binary_classification", "roc_auc"),
        y,
        champion,
        challenger,
        maximize=True,
        alpha=ALPHA,
        resamples=500,
        seed=seed,
    )
    return result.statistic, result.p_value, result.ci_low, result.ci_high


# --- per-row losses and the vectorised metrics ---------------------------------------------


# --- paired bootstrap ----------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    y, champion, challenger = classification_scores(5, 200)
    noisy = np.clip(challenger + np.random.default_rng(9).normal(0, 0.4, 200), 0, 1)
    assert bootstrap_auc(y, champion, noisy, seed=1) == bootstrap_auc(y, champion, noisy, seed=1)
    assert bootstrap_auc(y, champion, noisy, seed=1) != bootstrap_auc(y, champion, noisy, seed=2)


def test_bootstrap_finds_a_clearly_better_challenger() -> None:
    y, champion, challenger = classification_scores(6, 400)
    observed, p_value, ci_low, ci_high = bootstrap_auc(y, champion, challenger)
    assert p_value < 0.01
    assert ci_low is not None
    assert ci_high is not None
    assert 0 < ci_low <= observed <= ci_high


def test_bootstrap_sees_no_evidence_in_identical_predictions() -> None:
    y, champion, _ = classification_scores(7, 300)
    observed, p_value, ci_low, ci_high = bootstrap_auc(y, champion, champion.copy())
    assert observed == 0.0
    assert p_value == 1.0
    assert ci_low == ci_high == 0.0


def test_bootstrap_interval_covers_the_observed_improvement() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 500).astype(float)
    champion = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.3, 500), 0, 1)
    challenger = np.clip(champion + 0.05 * (y - 0.5) + rng.normal(0, 0.1, 500), 0, 1)
    observed, p_value, ci_low, ci_high = bootstrap_auc(y, champion, challenger)
    assert ci_low is not None
    assert ci_high is not None
    assert ci_low < observed < ci_high
    assert 0 < p_value < 1


def test_bootstrap_p_value_uses_the_plus_one_correction() -> None:
    y, champion, challenger = classification_scores(10, 300)
    result = paired_bootstrap(
        metric("binary_classification", "accuracy"),
        y,
        champion,
        challenger,
        maximize=True,
        alpha=ALPHA,
        resamples=99,
        seed=0,
    )
    assert result.p_value == pytest.approx(1 / 100)  # no resample favours the champion


def test_bootstrap_with_a_metric_to_minimise_counts_a_lower_value_as_better() -> None:
    y, champion, challenger = regression_scores(11, 200)
    result = paired_bootstrap(
        metric("regression", "rmse"),
        y,
        champion,
        challenger,
        maximize=False,
        alpha=ALPHA,
        resamples=200,
        seed=0,
    )
    metrics = {
        role: compute_metrics("regression", y, scores)["rmse"]
        for role, scores in (("champion", champion), ("challenger", challenger))
    }
    assert result.statistic == pytest.approx(metrics["champion"] - metrics["challenger"])
    assert result.statistic > 0
    assert result.p_value < 0.01


def test_vectorised_and_plain_metric_give_the_same_bootstrap() -> None:
    y, champion, challenger = classification_scores(12, 150)
    noisy = np.clip(challenger + np.random.default_rng(1).normal(0, 0.5, 150), 0, 1)
    fast, plain = (
        paired_bootstrap(
            metric_fn, y, champion, noisy, maximize=True, alpha=ALPHA, resamples=200, seed=4
        )
        for metric_fn in (
            metric("binary_classification", "roc_auc"),
            lambda truth, scores: float(roc_auc_score(truth, scores)),
        )
    )
    assert fast.p_value == plain.p_value
    assert fast.statistic == pytest.approx(plain.statistic)
    assert fast.ci_low == pytest.approx(plain.ci_low)
    assert fast.ci_high == pytest.approx(plain.ci_high)


def test_bootstrap_drops_resamples_where_the_metric_is_undefined() -> None:
    y = np.zeros(20)
    y[0] = 1.0
    rng = np.random.default_rng(2)
    result = paired_bootstrap(
        metric("binary_classification", "roc_auc"),
        y,
        rng.uniform(size=20),
        rng.uniform(size=20),
        maximize=True,
        alpha=ALPHA,
        resamples=400,
        seed=0,
    )
    dropped = result.detail["dropped_resamples"]
    assert 50 < dropped < 300  # (19/20)^20 of resamples miss the single positive
    assert 0 < result.p_value <= 1


def test_bootstrap_refuses_unpaired_scores() -> None:
    with pytest.raises(ValueError, match="one value per row"):
        bootstrap_auc(np.array([0.0, 1.0, 1.0]), np.ones(3), np.ones(2))


# --- tests on per-row losses, checked against scipy ----------------------------------------


def losses(seed: int, rows: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    champion = rng.exponential(1.0, rows)
    return champion, champion - 0.3 + rng.normal(0, 1, rows)


def test_paired_t_agrees_with_scipy() -> None:
    champion, challenger = losses(20)
    result = paired_t(champion, challenger, alpha=ALPHA)
    reference = stats.ttest_rel(champion, challenger, alternative="greater")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.ci_low == pytest.approx(reference.confidence_interval(1 - ALPHA).low)
    mean = float(np.mean(champion - challenger))
    assert result.ci_high == pytest.approx(2 * mean - reference.confidence_interval(1 - ALPHA).low)
    assert result.detail["mean_difference"] == pytest.approx(mean)
    assert result.n == 60


def test_paired_t_without_spread_is_no_evidence() -> None:
    champion = np.linspace(0, 1, 10)
    assert paired_t(champion, champion, alpha=ALPHA).p_value == 1.0
    assert paired_t(champion, champion - 0.1, alpha=ALPHA).p_value == 1.0


def test_wilcoxon_agrees_with_scipy() -> None:
    champion, challenger = losses(21)
    challenger[:5] = champion[:5]  # ties, which zero_method="wilcox" drops
    result = wilcoxon(champion, challenger)
    reference = stats.wilcoxon(champion, challenger, alternative="greater", zero_method="wilcox")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.detail["changed_rows"] == 55


def test_wilcoxon_with_every_row_tied_is_no_evidence() -> None:
    champion = np.linspace(0, 1, 10)
    assert wilcoxon(champion, champion.copy()).p_value == 1.0


def test_mcnemar_textbook_case() -> None:
    # b = 1 row only the champion gets right, c = 9 only the challenger, 5 both, 5 neither.
    champion = np.array([True] * 1 + [False] * 9 + [True] * 5 + [False] * 5)
    challenger = np.array([False] * 1 + [True] * 9 + [True] * 5 + [False] * 5)
    result = mcnemar(champion, challenger)
    assert {key: result.detail[key] for key in ("b", "c")} == {"b": 1.0, "c": 9.0}
    # The standard error of the accuracy difference (c - b) / n, from the paired counts.
    assert result.detail["standard_error"] == pytest.approx(math.sqrt(10 - 8**2 / 20) / 20)
    assert result.statistic == 9
    assert result.p_value == pytest.approx(11 / 1024)
    assert result.p_value == pytest.approx(stats.binom.sf(8, 10, 0.5))
    assert result.p_value == pytest.approx(stats.binomtest(9, 10, 0.5, "greater").pvalue)
    assert mcnemar(challenger, champion).p_value == pytest.approx(stats.binom.sf(0, 10, 0.5))


def test_mcnemar_without_discordant_rows_is_no_evidence() -> None:
    same = np.array([True, False, True])
    assert mcnemar(same, same.copy()).p_value == 1.0


def test_run_test_dispatches_to_the_matching_test() -> None:
    y, champion, challenger = classification_scores(22, 100)
    log_loss = metric("binary_classification", "log_loss")
    champion_losses, challenger_losses = (
        log_loss.row_loss(y, champion),
        log_loss.row_loss(y, challenger),
    )
    expected = {
        "paired_t": paired_t(champion_losses, challenger_losses, alpha=ALPHA).p_value,
        "wilcoxon": wilcoxon(champion_losses, challenger_losses).p_value,
        "mcnemar": mcnemar((champion >= 0.5) == y, (challenger >= 0.5) == y).p_value,
        "paired_bootstrap": 1 / 201,  # the challenger wins every resample
    }
    for test in TESTS:
        p_value = run(test, "binary_classification", "log_loss", y, champion, challenger)
        assert p_value == pytest.approx(expected[test])


def test_every_offline_test_keeps_a_small_histogram_of_what_it_compared() -> None:
    y, champion, challenger = classification_scores(24, 300)
    for test in TESTS:
        result = run_test(
            test,
            task="binary_classification",
            metric=metric("binary_classification", "log_loss"),
            y_true=y,
            champion_scores=champion,
            challenger_scores=challenger,
            alpha=ALPHA,
            resamples=200,
            seed=0,
        )
        kept = result.differences
        assert kept is not None, test
        assert len(kept.edges) == len(kept.counts) + 1 <= DIFFERENCE_BINS + 1, test
        assert sum(kept.counts) == (200 if test == "paired_bootstrap" else 300), test
        # Right of zero is the challenger's side, whatever the test compares.
        bins = list(zip(kept.counts, kept.edges[:-1], kept.edges[1:], strict=True))
        right = sum(count for count, low, _ in bins if low >= 0)
        left = sum(count for count, _, high in bins if high <= 0)
        assert right > 10 * left, test


def test_the_histogram_counts_the_tails_and_keeps_few_values_exact() -> None:
    rng = np.random.default_rng(8)
    heavy = np.r_[rng.normal(0, 1, 5_000), 1e6]
    kept = histogram(heavy, "losses")
    assert len(kept.counts) == DIFFERENCE_BINS
    assert sum(kept.counts) == heavy.size  # the tails are in the outer bins
    assert kept.edges[-1] < 10  # one huge value does not squeeze the rest into one bar
    discrete = histogram(np.array([-1.0] * 3 + [0.0] * 90 + [1.0] * 7), "correctness")
    assert discrete.counts == [3, 90, 7]
    assert discrete.edges == [-1.5, -0.5, 0.5, 1.5]
    assert histogram(np.array([]), "nothing").counts == []


def test_run_test_refuses_mcnemar_for_regression() -> None:
    y, champion, challenger = regression_scores(23, 50)
    with pytest.raises(ValueError, match=r"mcnemar .* needs a binary_classification task"):
        run_test(
            "mcnemar",
            task="regression",
            metric=metric("regression", "rmse"),
            y_true=y,
            champion_scores=champion,
            challenger_scores=challenger,
            alpha=ALPHA,
            resamples=100,
            seed=0,
        )


# --- properties every offline test must have -----------------------------------------------


CLASSIFIER_METRICS = sorted(METRICS["binary_classification"])
REGRESSION_METRICS = sorted(METRICS["regression"])
unit = st.floats(0, 1, allow_nan=False)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(st.tuples(st.booleans(), unit), min_size=1, max_size=60),
    test=st.sampled_from(TESTS),
    name=st.sampled_from(CLASSIFIER_METRICS),
)
def test_identical_classifiers_are_never_significant(
    rows: list[tuple[bool, float]], test: TestName, name: str
) -> None:
    y = np.array([label for label, _ in rows], dtype=float)
    scores = np.array([score for _, score in rows])
    assert run(test, "binary_classification", name, y, scores, scores.copy()) >= ALPHA


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=60),
    test=st.sampled_from([t for t in TESTS if t != "mcnemar"]),
    name=st.sampled_from(REGRESSION_METRICS),
)
def test_identical_regressors_are_never_significant(
    rows: list[tuple[float, float]], test: TestName, name: str
) -> None:
    y = np.array([truth for truth, _ in rows])
    scores = np.array([predicted for _, predicted in rows])
    assert run(test, "regression", name, y, scores, scores.copy()) >= ALPHA


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(100, 300),
    test=st.sampled_from(TESTS),
    name=st.sampled_from(CLASSIFIER_METRICS),
)
def test_a_clearly_better_classifier_is_significant(
    seed: int, size: int, test: TestName, name: str
) -> None:
    y, champion, challenger = classification_scores(seed, size)
    assert run(test, "binary_classification", name, y, champion, challenger) < ALPHA


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(100, 300),
    test=st.sampled_from([t for t in TESTS if t != "mcnemar"]),
    name=st.sampled_from(REGRESSION_METRICS),
)
def test_a_clearly_better_regressor_is_significant(
    seed: int, size: int, test: TestName, name: str
) -> None:
    y, champion, challenger = regression_scores(seed, size)
    assert run(test, "regression", name, y, champion, challenger) < ALPHA


# --- online A/B ----------------------------------------------------------------------------


def test_two_proportion_z_by_hand_and_against_chi_squared() -> None:
    result = two_proportion_z(120, 1000, 150, 1000)
    pooled = 270 / 2000
    z = (0.15 - 0.12) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(stats.norm.sf(z))
    assert result.n == 2000
    table = np.array([[120, 880], [150, 850]])
    chi2, chi2_p, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.statistic**2 == pytest.approx(chi2)
    assert result.p_value == pytest.approx(chi2_p / 2)  # one-sided, in the challenger's favour
    assert two_proportion_z(150, 1000, 120, 1000).p_value == pytest.approx(1 - chi2_p / 2)


def test_two_proportion_z_edge_cases() -> None:
    assert two_proportion_z(0, 10, 0, 20).p_value == 1.0
    assert two_proportion_z(5, 10, 10, 20).p_value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="variant b"):
        two_proportion_z(1, 10, 11, 10)


def test_welch_t_agrees_with_scipy_in_both_directions() -> None:
    rng = np.random.default_rng(30)
    a, b = rng.normal(10, 2, 80), rng.normal(9.4, 3, 120)
    lower = welch_t(a, b, lower_is_better=True)
    reference = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert lower.statistic == pytest.approx(reference.statistic)
    assert lower.p_value == pytest.approx(reference.pvalue)
    higher = welch_t(a, b, lower_is_better=False)
    reference = stats.ttest_ind(b, a, equal_var=False, alternative="greater")
    assert higher.statistic == pytest.approx(reference.statistic)
    assert higher.p_value == pytest.approx(reference.pvalue)
    assert lower.p_value + higher.p_value == pytest.approx(1.0)
    assert lower.n == 200


def test_welch_t_on_constant_samples_is_no_evidence() -> None:
    assert welch_t(np.ones(5), np.ones(7), lower_is_better=True).p_value == 1.0


def test_required_sample_size_matches_the_formula() -> None:
    p1, p2 = 0.10, 0.12
    p_mean = (p1 + p2) / 2
    expected = math.ceil(
        (
            stats.norm.ppf(0.95) * math.sqrt(2 * p_mean * (1 - p_mean))
            + stats.norm.ppf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
        )
        ** 2
        / 0.02**2
    )
    assert required_sample_size_proportions(0.10, 0.02, 0.05, 0.8) == expected == 3026


def test_required_sample_size_grows_as_the_effect_shrinks_or_the_demands_rise() -> None:
    sizes = [
        required_sample_size_proportions(0.10, effect, 0.05, 0.8) for effect in (0.04, 0.02, 0.01)
    ]
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 3
    base = required_sample_size_proportions(0.10, 0.02, 0.05, 0.8)
    assert required_sample_size_proportions(0.10, 0.02, 0.01, 0.8) > base
    assert required_sample_size_proportions(0.10, 0.02, 0.05, 0.9) > base
    with pytest.raises(ValueError, match="min_effect"):
        required_sample_size_proportions(0.10, 0.0, 0.05, 0.8)


def test_the_minimum_detectable_effect_is_the_power_formula_and_shrinks_with_rows() -> None:
    rng = np.random.default_rng(7)
    champion, challenger = rng.normal(1.0, 1.0, 400), rng.normal(1.0, 1.0, 400)
    result = paired_t(champion, challenger, alpha=ALPHA)
    spread = float((champion - challenger).std(ddof=1))
    expected = (stats.norm.ppf(1 - ALPHA) + stats.norm.ppf(0.8)) * spread / math.sqrt(400)
    assert minimum_detectable_effect(result, ALPHA) == pytest.approx(expected)
    quarter = paired_t(champion[:100], challenger[:100], alpha=ALPHA)
    assert minimum_detectable_effect(quarter, ALPHA) > 1.5 * minimum_detectable_effect(
        result, ALPHA
    )
    assert math.isnan(minimum_detectable_effect(wilcoxon(champion[:1], challenger[:1]), ALPHA))
