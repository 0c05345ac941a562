"""Split by time, never at random: the model is always judged on rows later than it saw."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..config import SplitConfig
from .sources import DataError


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "validation": self.validation, "holdout": self.holdout}


def time_split(frame: pd.DataFrame, timestamp: str, config: SplitConfig) -> TimeSplit:
    """Cut at two instants so train < validation < holdout, with no timestamp on both sides."""
    times = frame[timestamp]
    validation_start = times.quantile(1 - config.validation_fraction - config.holdout_fraction)
    holdout_start = times.quantile(1 - config.holdout_fraction)
    split = TimeSplit(
        train=frame[times < validation_start],
        validation=frame[(times >= validation_start) & (times < holdout_start)],
        holdout=frame[times >= holdout_start],
    )
    if empty := [name for name, part in split.parts().items() if part.empty]:
        raise DataError(f"too few distinct timestamps to split: {', '.join(empty)} would be empty")
    return TimeSplit(**{name: part.reset_index(drop=True) for name, part in split.parts().items()})
