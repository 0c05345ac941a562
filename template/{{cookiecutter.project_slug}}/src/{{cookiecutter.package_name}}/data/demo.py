"""A synthetic subscription business: the demo data, and the knobs that drift it.

The generator is deterministic for a seed. `covariate_shift` moves the feature distributions
(more support tickets, higher spend, more basic plans); `concept_shift` changes how features
relate to the target, so a model trained before the shift gets worse after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pandas as pd

from ..config import DemoSourceConfig, Task
from .schema import ColumnSpec, DataSchema

PLANS = ("basic", "standard", "premium")
# The multiclass demo's target: what the customer does with their plan in the next 30 days.
PLAN_CHANGES = ("cancel", "downgrade", "stay", "upgrade")
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("web", "store", "partner")


def demo_schema(task: Task) -> DataSchema:
    """The contract the demo data honours, for each task."""
    if task == "multiclass_classification":
        target = ColumnSpec(
            name="plan_change",
            role="target",
            classes=PLAN_CHANGES,
            description="what the customer does with their plan within 30 days",
        )
    elif task == "binary_classification":
        target = ColumnSpec(
            name="churned",
            role="target",
            classes=("0", "1"),
            positive="1",
            description="1 when the customer cancels within 30 days",
        )
    else:
        target = ColumnSpec(
            name="next_month_spend",
            role="target",
            min=0,
            max=20_000,
            description="spend in the following 30 days",
        )
    return DataSchema(
        columns=(
            ColumnSpec(name="customer_id", role="id"),
            ColumnSpec(name="event_time", role="timestamp"),
            ColumnSpec(name="tenure_months", role="numeric", min=0, max=240),
            ColumnSpec(name="monthly_spend", role="numeric", min=0, max=10_000, nullable=True),
            ColumnSpec(name="support_tickets", role="numeric", min=0, max=100, integer=True),
            ColumnSpec(name="discount_rate", role="numeric", min=0, max=1, nullable=True),
            ColumnSpec(name="plan", role="categorical", categories=PLANS),
            ColumnSpec(name="region", role="categorical", categories=REGIONS, nullable=True),
            ColumnSpec(name="channel", role="categorical", categories=CHANNELS),
            target,
        )
    )


def generate_demo(config: DemoSourceConfig, task: Task) -> pd.DataFrame:
    """Rows of the demo business, a few of them deliberately invalid to exercise quarantine."""
    rng = np.random.default_rng(config.seed)
    n = config.rows
    shift = config.covariate_shift

    start = datetime.combine(config.start, time(), tzinfo=UTC)
    seconds = np.sort(rng.uniform(0, config.days * 86_400, n))
    event_time = pd.to_datetime([start + timedelta(seconds=float(s)) for s in seconds], utc=True)
    customers = rng.integers(0, max(n // 3, 1), n)

    plan_weights = np.array([0.45, 0.35, 0.20]) + shift * np.array([0.15, -0.05, -0.10])
    plan_weights = np.clip(plan_weights, 0.02, None)
    plan = rng.choice(PLANS, n, p=plan_weights / plan_weights.sum())
    region = rng.choice(REGIONS, n, p=[0.3, 0.3, 0.25, 0.15]).astype(object)
    channel = rng.choice(CHANNELS, n, p=[0.6, 0.25, 0.15])

    tenure = np.clip(rng.gamma(2.0, 14.0 * (1 - 0.2 * min(shift, 2.0) / 2), n), 0, 240).round(1)
    plan_price = pd.Series(plan).map({"basic": 20.0, "standard": 45.0, "premium": 90.0}).to_numpy()
    spend = np.clip(plan_price * rng.lognormal(0.1 * shift, 0.35, n), 0, 10_000).round(2)
    tickets = rng.poisson(1.2 * (1 + shift), n).clip(0, 100).astype(float)
    discount = np.clip(rng.beta(1.5, 8.0, n) + 0.05 * shift, 0, 1).round(3)

    # Concept drift: interpolate towards a world where long tenure, not support tickets, predicts
    # churn, and partner customers became loyal: a model of the old world ranks the new one badly.
    c = config.concept_shift
    w_tenure, w_tickets, w_spend, w_discount = (
        -0.06 + 0.09 * c,
        0.8 - 0.8 * c,
        0.004 + 0.02 * c,
        -2.0,
    )
    channel_effect = pd.Series(channel).map({"web": 0.0, "store": -0.4, "partner": 0.6 - 1.2 * c})
    region_effect = pd.Series(region).map({"north": 0.0, "south": 0.2, "east": -0.2, "west": 0.1})
    score = (
        -1.2
        + w_tenure * tenure
        + w_tickets * tickets
        + w_spend * spend
        + w_discount * discount
        + channel_effect.to_numpy()
        + region_effect.to_numpy()
    )

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{number:06d}" for number in customers],
            "event_time": event_time,
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_tickets": tickets,
            "discount_rate": discount,
            "plan": plan,
            "region": region,
            "channel": channel,
        }
    )
    if task == "binary_classification":
        frame["churned"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-score))).astype(int)
    elif task == "multiclass_classification":
        frame["plan_change"] = _plan_changes(rng, score, tenure, discount, plan, channel, c)
    else:
        partner = (pd.Series(channel) == "partner").to_numpy()
        growth = 1.0 - 0.08 * np.tanh(score) + (0.01 - 0.03 * c) * tenure / 12 + 0.3 * c * partner
        noise = rng.normal(0, 0.08 * plan_price)
        frame["next_month_spend"] = np.clip(spend * growth + noise, 0, 20_000).round(2)

    # Missing values where the schema allows them.
    frame.loc[rng.uniform(size=n) < 0.04, "monthly_spend"] = np.nan
    frame.loc[rng.uniform(size=n) < 0.03, "discount_rate"] = np.nan
    frame.loc[rng.uniform(size=n) < 0.02, "region"] = None
    return _corrupt(frame, rng, config.invalid_fraction)


def _plan_changes(
    rng: np.random.Generator,
    churn_score: np.ndarray,
    tenure: np.ndarray,
    discount: np.ndarray,
    plan: np.ndarray,
    channel: np.ndarray,
    concept_shift: float,
) -> np.ndarray:
    """One of `PLAN_CHANGES` per customer, drawn from a softmax: cancelling follows the churn
    score, a discount pulls a customer down a plan, tenure pushes one up; premium customers
    cannot upgrade nor basic ones downgrade. About 45% stay, 20% cancel, 20% upgrade and 14%
    downgrade; concept drift makes many more cancel, and partner customers upgrade."""
    partner = (pd.Series(channel) == "partner").to_numpy()
    logits = np.column_stack(
        [
            churn_score + 0.6,
            -1.2 + 6.0 * discount - 0.01 * tenure,
            np.zeros(len(plan)),
            -1.6 + 0.03 * tenure + 1.5 * concept_shift * partner,
        ]
    )
    logits[plan == "basic", 1] = -np.inf
    logits[plan == "premium", 3] = -np.inf
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    drawn = (rng.uniform(size=(len(plan), 1)) > cumulative).sum(axis=1)
    changes: np.ndarray = np.asarray(PLAN_CHANGES, dtype=object)
    return np.asarray(changes[np.minimum(drawn, len(PLAN_CHANGES) - 1)])


def _corrupt(frame: pd.DataFrame, rng: np.random.Generator, fraction: float) -> pd.DataFrame:
    """Break a few rows in the ways real feeds break, so quarantine has something to catch."""
    broken = np.flatnonzero(rng.uniform(size=len(frame)) < fraction)
    if broken.size == 0:
        return frame
    frame = frame.astype({"tenure_months": object, "plan": object})
    kinds = rng.integers(0, 4, broken.size)
    for row, kind in zip(broken, kinds, strict=True):
        if kind == 0:
            frame.loc[row, "tenure_months"] = -5.0
        elif kind == 1:
            frame.loc[row, "plan"] = "platinum"
        elif kind == 2:
            frame.loc[row, "tenure_months"] = "unknown"
        else:
            frame.loc[row, "discount_rate"] = 1.7
    return frame
