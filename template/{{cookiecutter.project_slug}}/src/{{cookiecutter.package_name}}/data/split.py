"""Cut the valid rows into train, validation and holdout, the way `data.split.strategy` says.

- `time` (the default) cuts at two instants: the model is always judged on rows later than it
  saw, so the holdout also measures drift over time.
- `random` draws rows; for a classifier, exactly each split's share of every class.
- `group` draws whole entities (the values of `data.split.group_column`, by default the id
  column): no entity is in two splits, so the holdout asks about entities never seen.

A draw is not a permutation of row order, which would reshuffle every row when one is added:
each row (its key and timestamp) or entity (its value) is placed by a seeded SHA-256 hash of
its name, ranked within its class (or the table, or the entities), and the ranks are cut at the
fractions, the highest ranks to the holdout. A row's rank depends on its own hash and on how
many rows of its class the table holds, so as a table grows the cuts move a little: only rows
whose hash lies between an old cut and the new one change split, and then only to the
neighbouring one (holdout and validation, validation and train); a training row never reaches
a later holdout unless the holdout's cut moves by a whole validation share. The gate checks what
is left (promote/promotion.py): it refuses a holdout row the challenger learned from.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import SplitConfig, Task
from .schema import DataSchema
from .sources import DataError

PART_NAMES = ("train", "validation", "holdout")


@dataclass(frozen=True)
class Split:
    """The valid rows in their three parts, each in timestamp order."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "validation": self.validation, "holdout": self.holdout}


def time_split(frame: pd.DataFrame, timestamp: str, config: SplitConfig) -> Split:
    """Cut at two instants so train < validation < holdout, with no timestamp on both sides."""
    times = frame[timestamp]
    validation_start = times.quantile(1 - config.validation_fraction - config.holdout_fraction)
    holdout_start = times.quantile(1 - config.holdout_fraction)
    split = Split(
        train=frame[times < validation_start],
        validation=frame[(times >= validation_start) & (times < holdout_start)],
        holdout=frame[times >= holdout_start],
    )
    if empty := [name for name, part in split.parts().items() if part.empty]:
        raise DataError(f"too few distinct timestamps to split: {', '.join(empty)} would be empty")
    return Split(**{name: part.reset_index(drop=True) for name, part in split.parts().items()})


def _text(values: pd.Series) -> pd.Series:
    """Values as names: numbers by value (1 and 1.0 agree, as in a row key), missing as empty."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        return numbers.map(repr).where(numbers.notna(), "")
    return values.astype(object).map(str).where(values.notna(), "")


def row_names(frame: pd.DataFrame, schema: DataSchema) -> pd.Series:
    """Each row's name: its key (the id, or `row_key`) and its timestamp, in microseconds since
    1970 (whatever unit a snapshot stores). Ingest keeps the pair unique, and a row keeps it in
    every later snapshot, which is what makes its place in a random split stable."""
    times = frame[schema.timestamp_column].dt.as_unit("us").astype("int64").map(str)
    names: pd.Series = _text(frame[schema.key_column]) + "\x1f" + times
    return names


def group_names(frame: pd.DataFrame, column: str) -> pd.Series:
    """Each row's entity: the group column's value as text (a missing value is one entity)."""
    return _text(frame[column])


def positions(names: pd.Series, seed: int) -> np.ndarray:
    """Each name's place: the first 8 bytes of SHA-256 of the seed and the name, as an unsigned
    integer. The same name always lands in the same place for a seed, whatever else the table
    holds; another seed gives an independent draw."""
    digests = (
        hashlib.sha256(f"{seed}\x1f{name}".encode()).digest()[:8] for name in names.to_numpy()
    )
    return np.fromiter((int.from_bytes(d, "big") for d in digests), np.uint64, len(names))


def _share(count: int, fraction: float) -> int:
    """`fraction` of `count`, rounded half up (0.15 of 10 is 2, of 30 is 5)."""
    return math.floor(count * fraction + 0.5)


def _cut(places: np.ndarray, config: SplitConfig) -> np.ndarray:
    """Each item's part (0 train, 1 validation, 2 holdout): ranked by place, the highest
    `holdout_fraction` of them (rounded) go to the holdout, the next `validation_fraction` to
    validation, the rest to train."""
    count = len(places)
    holdout = _share(count, config.holdout_fraction)
    validation = _share(count, config.validation_fraction)
    ranks = np.empty(count, dtype=np.int64)
    ranks[np.argsort(places, kind="stable")] = np.arange(count)
    parts = np.zeros(count, dtype=np.int8)
    parts[ranks >= count - holdout - validation] = 1
    parts[ranks >= count - holdout] = 2
    return parts


def _from_parts(frame: pd.DataFrame, parts: np.ndarray, what: str) -> Split:
    split = Split(
        *(frame[parts == index].reset_index(drop=True) for index in range(len(PART_NAMES)))
    )
    if empty := [name for name, part in split.parts().items() if part.empty]:
        raise DataError(
            f"too few {what} to split: {', '.join(empty)} would be empty; bring more rows, or "
            "raise data.split.validation_fraction and data.split.holdout_fraction"
        )
    return split


def random_split(
    frame: pd.DataFrame, schema: DataSchema, config: SplitConfig, *, stratify: bool
) -> Split:
    """Rows placed by the hash of their name; with `stratify`, the ranks are cut within each
    class of the target, so every split holds exactly its share of each class (rounded)."""
    places = positions(row_names(frame, schema), config.seed)
    parts = np.zeros(len(frame), dtype=np.int8)
    strata = frame[schema.target.name] if stratify else pd.Series(0, index=frame.index)
    for rows in strata.groupby(strata, sort=True).indices.values():
        parts[rows] = _cut(places[rows], config)
    return _from_parts(frame, parts, "rows")


def group_split(frame: pd.DataFrame, column: str, config: SplitConfig) -> Split:
    """Entities placed by the hash of their value and cut at the fractions of the entities, each
    with every one of its rows: no entity is in two splits."""
    names = group_names(frame, column)
    entities = pd.Series(names.unique())
    by_entity = dict(zip(entities, _cut(positions(entities, config.seed), config), strict=True))
    parts = names.map(by_entity).to_numpy(dtype=np.int8)
    return _from_parts(frame, parts, f"{column} values")


def group_column(config: SplitConfig, schema: DataSchema) -> str | None:
    """The entity column of a group split: `data.split.group_column`, else the id column."""
    return config.group_column or schema.id_column


def group_candidates(schema: DataSchema) -> list[str]:
    """Columns that can name an entity: the id, categories, and whole-number features."""
    return [
        column.name
        for column in schema.columns
        if column.role in {"id", "categorical"} or (column.role == "numeric" and column.integer)
    ]


def split_rows(frame: pd.DataFrame, schema: DataSchema, config: SplitConfig, task: Task) -> Split:
    """The valid rows cut by `config.strategy`; the group column is assumed checked
    (`ingestion.split_column_problem`)."""
    if config.strategy == "random":
        return random_split(frame, schema, config, stratify=task != "regression")
    if config.strategy == "group":
        column = group_column(config, schema)
        assert column is not None, "checked when the schema is read"
        return group_split(frame, column, config)
    return time_split(frame, schema.timestamp_column, config)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def describe(config: SplitConfig, schema: DataSchema, task: Task) -> dict[str, Any]:
    """The split as a snapshot's manifest and the decision records carry it: the settings that
    made it, and what its holdout means, in words."""
    share = _percent(config.holdout_fraction)
    described: dict[str, Any] = {
        "strategy": config.strategy,
        "validation_fraction": config.validation_fraction,
        "holdout_fraction": config.holdout_fraction,
    }
    if config.strategy == "time":
        timestamp = schema.timestamp_column
        holdout = (
            f"the newest {share} of the rows by {timestamp}: the model is judged on rows later "
            "than any it learned from"
        )
        return described | {"holdout": holdout}
    if config.strategy == "random":
        stratified = task != "regression"
        by_class = ", stratified by class" if stratified else ""
        holdout = (
            f"{share} of the rows drawn at random{by_class} (seed {config.seed}), not the newest: "
            "drift over time is not measured"
        )
        return described | {"seed": config.seed, "stratified": stratified, "holdout": holdout}
    column = group_column(config, schema)
    holdout = (
        f"{share} of the {column} values drawn at random (seed {config.seed}), every row of "
        f"each: no {column} is in two splits, and drift over time is not measured"
    )
    return described | {"seed": config.seed, "group_column": column, "holdout": holdout}


def described_split(manifest: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's split as its manifest describes it; a snapshot written before splits had a
    strategy was cut by time."""
    split = manifest.get("split")
    if isinstance(split, dict):
        return split
    timestamp = next(c["name"] for c in manifest["schema"]["columns"] if c["role"] == "timestamp")
    return {"strategy": "time", "holdout": f"the newest rows by {timestamp}"}
