"""Labelled shadow traffic as evidence for the offline gate, beside the holdout.

A table of a few hundred rows has a holdout of a few tens: it can never reach the gate's
minimum. In `promotion.online.mode: shadow` the service answers with the champion, then scores
the same request with the challenger and logs both under one `prediction_id`; a label sent to
/feedback for that id joins both. Such a pair is a holdout row the world supplied: both models
scored the same row, neither trained on it, and its label is known. The gate counts the pairs
of exactly the two versions it compares (`promotion.shadow_evidence`, on by default) with the
holdout's rows, in the same paired test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..config import Project
from ..data import DataSchema
from ..features import model_input
from ..predictions import PredictionLog, PredictionLogError, short_reason
from ..scoring import SCORE_TOLERANCE, score_gap

ROLES = ("champion", "challenger")
SEEN = "not later than the challenger's training data"
NOT_REPRODUCED = "logged scores the registered versions do not reproduce"


@dataclass(frozen=True)
class ShadowRows:
    """The pairs the gate counts: each logged request as the model's input (`rows`), its label
    (`truth`), what each version answered when it was logged (`logged`, by role) and when
    (`times`). `left_out` counts pairs not counted, by reason; `problem` says why the log could
    not be read (then none count)."""

    rows: pd.DataFrame
    truth: np.ndarray
    logged: dict[str, np.ndarray]
    times: pd.Series
    left_out: dict[str, int] = field(default_factory=dict)
    problem: str | None = None

    def __len__(self) -> int:
        return len(self.truth)

    def kept(self, keep: np.ndarray, reason: str) -> ShadowRows:
        """These rows where `keep` holds; the others are counted under `reason`."""
        dropped = int(np.count_nonzero(~keep))
        if not dropped:
            return self
        return replace(
            self,
            rows=self.rows[keep].reset_index(drop=True),
            truth=self.truth[keep],
            logged={role: values[keep] for role, values in self.logged.items()},
            times=self.times[keep].reset_index(drop=True),
            left_out=self.left_out | {reason: self.left_out.get(reason, 0) + dropped},
        )

    def reproduced(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """Which pairs' logged answers the two registered versions give again (`scores`, by
        role, on `rows`). A version number names a model only within one registry: a log kept
        across a reset store would otherwise lend another model's answers to this one."""
        agree = np.ones(len(self), dtype=bool)
        for role in ROLES:
            close = score_gap(scores[role], self.logged[role]) <= SCORE_TOLERANCE
            agree &= close.reshape(len(self), -1).all(axis=1)  # every class's probability
        return agree

    def account(self) -> dict[str, Any]:
        """The decision record's account: how many counted, logged when, and what was not."""
        account: dict[str, Any] = {"shadow_rows": len(self)}
        if len(self):
            account["shadow_time_range"] = [
                self.times.min().isoformat(),
                self.times.max().isoformat(),
            ]
        if self.left_out:
            account["shadow_rows_left_out"] = self.left_out
        if self.problem:
            account["shadow_problem"] = self.problem
        return account


def no_shadow_rows(schema: DataSchema, problem: str | None = None) -> ShadowRows:
    return ShadowRows(
        rows=model_input(pd.DataFrame(columns=schema.feature_columns), schema),
        truth=np.empty(0),
        logged={role: np.empty(0) for role in ROLES},
        times=pd.Series([], dtype="datetime64[ns, UTC]"),
        problem=problem,
    )


def shadow_rows(
    project: Project,
    schema: DataSchema,
    versions: dict[str, str],
    last_seen: pd.Timestamp | None,
) -> ShadowRows:
    """The labelled shadow pairs of exactly `versions` (role -> version) in the prediction log.

    A pair whose request carries an event time no later than the challenger's training data
    (`last_seen`) is left out, the holdout's rule: the challenger may have trained on it. A log
    that cannot be read counts none, and says why: the holdout may still be enough.
    """
    try:
        with PredictionLog(project.prediction_log_url) as log:
            pairs = log.shadow_pairs(versions["champion"], versions["challenger"])
    except (sa.exc.SQLAlchemyError, PredictionLogError) as error:
        reason = f"the prediction log could not be read: {short_reason(error)}"
        return no_shadow_rows(schema, reason)
    if pairs.empty:
        return no_shadow_rows(schema)
    requests = PredictionLog.features_frame(pairs)
    found = ShadowRows(
        rows=model_input(requests.reindex(columns=schema.feature_columns), schema),
        truth=pairs["label"].to_numpy(float),
        logged={
            role: PredictionLog.scores(pairs[role], pairs[f"{role}_probabilities"])
            for role in ROLES
        },
        times=pairs["ts"].reset_index(drop=True),
    )
    timestamp = schema.timestamp_column
    if last_seen is None or timestamp not in requests.columns:
        return found
    times = pd.to_datetime(requests[timestamp], utc=True, errors="coerce", format="ISO8601")
    return found.kept(~(times <= last_seen).to_numpy(), SEEN)
