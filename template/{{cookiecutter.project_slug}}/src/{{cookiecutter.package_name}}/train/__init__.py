"""Stage 3, train: fit a baseline and the configured model on the latest snapshot, log, register.

Public entry point: `train(project)`, which registers the new version as `challenger`;
replacing the champion is the promotion gate's job.
"""

from .leakage import FeatureLeak, LeakageError, LeakageReport, check_leakage
from .training import Evaluation, TrainingError, TrainResult, fit_model, train

__all__ = [
    "Evaluation",
    "FeatureLeak",
    "LeakageError",
    "LeakageReport",
    "TrainResult",
    "TrainingError",
    "check_leakage",
    "fit_model",
    "train",
]
