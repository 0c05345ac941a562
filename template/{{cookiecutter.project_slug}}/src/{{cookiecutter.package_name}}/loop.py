"""The continual-learning loop in one call: ingest, train a challenger, gate, decide.

Public entry point: `retrain(project)`. Each step can fail; none of them moves `champion`
except the gate, and only when it passes. Every run ends in a decision record.
"""

from __future__ import annotations

from .config import Project
from .data import ingest
from .errors import ProjectError
from .promote import Decision, Outcome, promote, record_decision
from .train import LeakageError, TrainingError, train


def retrain(project: Project, *, dry_run: bool = False) -> Decision:
    """Stateless retraining from scratch on the newest data, then the promotion gate.

    Any failure before the gate ends the run with its decision record: rejected when the model
    does not beat the baseline, an error otherwise (leaking data, bad data, or a crash). The new
    version replaces a challenger still waiting for labelled shadow rows: a pair counts only for
    the versions that scored it, so the new challenger's evidence starts from zero.
    """
    step = "ingest"
    try:
        ingest(project)
        step = "train"
        train(project)
    except Exception as error:
        # Rejected means "not better than the baseline"; leaking data is an error to fix.
        rejected = isinstance(error, TrainingError) and not isinstance(error, LeakageError)
        expected = isinstance(error, ProjectError)
        cause = str(error) if expected else f"unexpected {type(error).__name__}: {error}"
        reason = f"retraining stopped at {step}, the champion is unchanged: {cause}"
        return record_decision(
            project, "retrain", Outcome.REJECTED if rejected else Outcome.ERROR, reason
        )
    return promote(project, dry_run=dry_run)
