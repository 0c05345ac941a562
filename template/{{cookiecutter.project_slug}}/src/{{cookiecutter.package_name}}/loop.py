"""The continual-learning loop in one call: ingest, train a challenger, gate, decide.

Public entry point: `retrain(project)`. Each step can fail; none of them moves `champion`
except the gate, and only when it passes. Every run ends in a decision record.
"""

from __future__ import annotations

from .config import ConfigError, Project
from .data import DataError, ingest
from .promote import Decision, Outcome, promote, record_decision
from .train import TrainingError, train


def retrain(project: Project, *, dry_run: bool = False) -> Decision:
    """Stateless retraining from scratch on the newest data, then the promotion gate."""
    step = "ingest"
    try:
        ingest(project)
        step = "train"
        train(project)
    except (ConfigError, DataError, TrainingError) as error:
        outcome = Outcome.REJECTED if isinstance(error, TrainingError) else Outcome.ERROR
        reason = f"retraining stopped at {step}, the champion is unchanged: {error}"
        return record_decision(project, "retrain", outcome, reason)
    return promote(project, dry_run=dry_run)
