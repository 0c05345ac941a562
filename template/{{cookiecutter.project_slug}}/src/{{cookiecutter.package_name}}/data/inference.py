"""Infer a data schema from a file: the first draft of the contract, for a person to review.

pandera's own `infer_schema` reads each column's dtype, nullability and observed range; this
module maps that onto the project's roles (`ColumnSpec`): ranges widened by a margin, text as
categories, a classifier target's classes, id-like columns left out. Every decision comes with
the reason, which `schema infer` prints as a table and writes as comments in the YAML. No
value longer than `MAX_TEXT_CHARS` becomes a category or a class, and messages show values cut.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml

from ..config import SplitConfig, Task
from ..files import written_whole
from .schema import (
    MAX_CATEGORIES,
    MAX_TEXT_CHARS,
    ROW_KEY,
    ColumnSpec,
    DataSchema,
    Role,
    shown_value,
)
from .sources import DataError, Location, check_names, read_table
from .split import time_split
from .validation import text_lengths

MARGIN = 0.1  # ranges are widened by this share of the observed range, on each side
SHOWN_VALUES = 10  # values named in a message before "..."
# With fewer rows than this, every value of a small text column being distinct says nothing.
ID_LIKE_MIN_ROWS = 20
# A column where at least this share of values are numbers is numeric; the rest are bad values
# that ingest quarantines, and the table names them.
MOSTLY_NUMBERS = 0.95
# Likewise, a column where at least this share of values fit `MAX_TEXT_CHARS` is read from those;
# the longer rest is quarantined at ingest. Otherwise the column is free text, and left out.
MOSTLY_SHORT = 0.95
# A multiclass target's values are classes when they are text (at most MAX_CLASSES of them) or
# whole numbers (at most MAX_NUMBERED_CLASSES): more, or fractions, are a quantity (regression)
# or an id, and a model with one probability per class would learn little about most of them.
MAX_CLASSES = 50
MAX_NUMBERED_CLASSES = 20
MULTICLASS_WAY = "set train.task: multiclass_classification in the project's configuration"

Kind = Literal["number", "text", "bool", "datetime", "empty"]


@dataclass(frozen=True)
class ColumnDecision:
    """What the schema says about one column of the file, and why; `role` None: left out."""

    name: str
    role: Role | None
    declared: str
    reason: str


@dataclass(frozen=True)
class InferredSchema:
    schema: DataSchema
    decisions: tuple[ColumnDecision, ...]
    notes: tuple[str, ...]  # about the rows as a whole: duplicates, future timestamps
    rows: int
    # The splits a time split would leave one-sided (`data.split.strategy` should change).
    one_sided_by_time: tuple[str, ...] = ()

    @property
    def left_out(self) -> list[str]:
        return [decision.name for decision in self.decisions if decision.role is None]


@dataclass(frozen=True)
class _Column:
    """One column as inference sees it: its kind, its values parsed as validation will, and
    pandera's inference on them (dtype, nullability, min and max checks)."""

    kind: Kind
    values: pd.Series
    missing: int
    not_numbers: list[str]  # the values of a numeric column that are not numbers
    profile: Any = None  # a pandera Column, for numbers, text and booleans
    not_number_rows: int = 0

    @property
    def nullable(self) -> bool:
        return bool(self.profile is not None and self.profile.nullable)

    @property
    def bad_numbers(self) -> str:
        """A numeric column's values that are not numbers (their rows are quarantined)."""
        rows = self.not_number_rows
        return f"{rows} value{'s' if rows > 1 else ''} not numbers: {_shown(self.not_numbers)}"


def _shown(values: Iterable[object], limit: int = SHOWN_VALUES) -> str:
    items = list(values)
    text = ", ".join(shown_value(value) for value in items[:limit])
    return f"[{text}{', ...' if len(items) > limit else ''}]"


def _number(value: float) -> str:
    return f"{value:.6g}"


def _as_text(values: pd.Series) -> pd.Series:
    """Values as validation compares them with categories: the text the data holds."""
    present = values.dropna()
    return present.astype(object).map(str)


def _numbers(values: pd.Series) -> pd.Series:
    """The numbers validation reads (infinities are bad values there, so missing here)."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers))


def _looks_like_time(values: pd.Series) -> bool:
    present = values.dropna()
    parsed = pd.to_datetime(present.astype(str), utc=True, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def _profile(values: pd.Series) -> Any:
    """pandera's own inference on one column's parsed values."""
    return pa.infer_schema(values.rename("column").to_frame()).columns["column"]


def _read_column(values: pd.Series) -> _Column:
    missing = int(values.isna().sum())
    if missing == len(values):
        return _Column("empty", values, missing, [])
    if pd.api.types.is_datetime64_any_dtype(values):
        return _Column("datetime", values, missing, [])
    text = _as_text(values).reindex(values.index)  # missing values stay missing
    if pd.api.types.is_bool_dtype(values):
        return _Column("bool", values, missing, [], _profile(text))
    numbers = _numbers(values)
    failed = values.notna() & numbers.isna()
    mostly_numbers = int(failed.sum()) <= (1 - MOSTLY_NUMBERS) * (len(values) - missing)
    if numbers.notna().any() and (pd.api.types.is_numeric_dtype(values) or mostly_numbers):
        # Bad values (text, infinities) are left out of pandera's view: they are quarantined.
        good = numbers[~failed]
        if bool((good.dropna() % 1 == 0).all()):
            good = good.astype("Int64")  # pandera then infers an integer dtype
        bad = sorted({str(value) for value in values[failed]})
        return _Column("number", numbers, missing, bad, _profile(good), int(failed.sum()))
    if _looks_like_time(values):
        return _Column("datetime", values, missing, [])
    return _Column("text", values, missing, [], _profile(text))


def _statistic(column: _Column, key: str) -> float:
    for check in column.profile.checks:
        if key in (check.statistics or {}):
            return float(check.statistics[key])
    raise AssertionError(f"pandera inferred no {key}")


def _step(pad: float) -> float:
    """A round step a tenth the size of `pad`, so bounds read 30.3, not 30.2810000001."""
    return float(10 ** (math.floor(math.log10(pad)) - 1)) if pad > 0 else 1.0


def _outward(value: float, step: float, *, down: bool) -> float:
    steps = round(value / step, 9)  # 2.7 / 0.01 is 269.99999999999997, 270 steps
    rounded = (math.floor if down else math.ceil)(steps) * step
    digits = max(0, -math.floor(math.log10(step)))
    return round(rounded, digits)


def widened(
    low: float, high: float, *, integer: bool, margin: float = MARGIN
) -> tuple[float, float]:
    """The observed range widened by `margin` of its span on each side and rounded outward,
    never crossing zero where the data does not (all non-negative stays non-negative)."""
    span = high - low
    pad = margin * span if span > 0 else margin * max(abs(low), 1.0)
    step = 1.0 if integer else _step(pad)
    lower = _outward(low - pad, step, down=True)
    upper = _outward(high + pad, step, down=False)
    if low >= 0:
        lower = max(lower, 0.0)
    if high <= 0:
        upper = min(upper, 0.0)
    return lower, upper


@dataclass(frozen=True)
class _Range:
    """A numeric column's declared range, from pandera's observed min and max."""

    min: float
    max: float
    integer: bool
    reason: str

    @property
    def declared(self) -> str:
        return f"{_number(self.min)} to {_number(self.max)}"


def _range(column: _Column) -> _Range:
    low = _statistic(column, "min_value")
    high = _statistic(column, "max_value")
    integer = str(column.profile.dtype) == "Int64"  # whole numbers were read as Int64
    lower, upper = widened(low, high, integer=integer)
    reason = f"numbers {_number(low)} to {_number(high)}, widened by {MARGIN:.0%}"
    if low >= 0 and lower == 0:
        reason += ", not below 0: none is negative"
    elif high <= 0 and upper == 0:
        reason += ", not above 0: none is positive"
    return _Range(lower, upper, integer, reason)


def _sorted_values(values: Iterable[str]) -> list[str]:
    """Numbers by value (2 before 10), otherwise text order."""
    distinct = sorted(set(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _same(value: str, other: str) -> bool:
    if value == other:
        return True
    try:
        return float(value) == float(other)
    except ValueError:
        return False


def _not_classes(column: _Column, classes: list[str]) -> str | None:
    """Why the target's distinct values `classes` are no classes of a classifier, or None: they
    are text, or a few whole numbers."""
    if column.kind != "number":
        if len(classes) <= MAX_CLASSES:
            return None
        return f"{len(classes)} distinct texts, more than the {MAX_CLASSES} classes a target takes"
    whole = bool((column.values.dropna() % 1 == 0).all())
    if whole and len(classes) <= MAX_NUMBERED_CLASSES:
        return None
    if not whole:
        return f"{len(classes)} distinct numbers, not all whole: a quantity, not classes"
    return (
        f"{len(classes)} distinct whole numbers, more than the {MAX_NUMBERED_CLASSES} a "
        "numbered class may have: a count or a quantity, not classes"
    )


def _binary_target(
    name: str, raw: pd.Series, column: _Column, positive: str | None
) -> tuple[ColumnSpec, ColumnDecision]:
    """Two classes, as the data holds them ("0.0" stays "0.0"), and the positive one."""
    text = _as_text(raw)
    classes = _sorted_values(text)
    if len(classes) != 2:
        ways = []
        if len(classes) > 2 and _not_classes(column, classes) is None:
            ways.append(f"for {len(classes)} classes {MULTICLASS_WAY}")
        if column.kind == "number":
            ways.append("for a numeric target set train.task: regression")
        raise DataError(
            f"target {name!r} has {len(classes)} distinct value(s), a binary target has two: "
            f"{_shown(classes)}" + "".join(f"; {way}" for way in ways)
        )
    if positive is None:
        chosen = classes[1]
        why = f"positive {chosen!r}: the second in sorted order (choose with --positive)"
    else:
        matches = [value for value in classes if _same(value, positive)]
        if not matches:
            raise DataError(
                f"--positive {positive!r} is not a value of target {name!r}: {_shown(classes)}"
            )
        chosen = matches[0]
        why = f"positive {chosen!r}: named by --positive"
    spec = ColumnSpec(name=name, role="target", classes=tuple(classes), positive=chosen)
    counts = text.value_counts()
    shares = ", ".join(f"{value!r} {counts[value] / counts.sum():.0%}" for value in classes)
    reason = f"two values ({shares}); {why}"
    return spec, ColumnDecision(name, "target", f"classes {', '.join(classes)}", reason)


def _multiclass_target(
    name: str, raw: pd.Series, column: _Column
) -> tuple[ColumnSpec, ColumnDecision]:
    """Three or more classes, as the data holds them ("2.0" stays "2.0"), sorted as a binary
    target's are (numbers by value): the model's probability columns follow this order."""
    text = _as_text(raw)
    classes = _sorted_values(text)
    shown = _shown(classes)
    if len(classes) < 3:
        way = "; for two classes set train.task: binary_classification" if len(classes) == 2 else ""
        raise DataError(
            f"target {name!r} has {len(classes)} distinct value(s), a multiclass target has "
            f"three or more: {shown}{way}"
        )
    if (why := _not_classes(column, classes)) is not None:
        way = "; for a numeric target set train.task: regression" if column.kind == "number" else ""
        raise DataError(f"target {name!r} holds {why}: {shown}{way}")
    spec = ColumnSpec(name=name, role="target", classes=tuple(classes))
    counts = text.value_counts()
    total = counts.sum()
    shares = ", ".join(f"{shown_value(value)} {counts[value] / total:.0%}" for value in classes)
    reason = f"{len(classes)} classes ({shares}), in this order the model's probability columns"
    declared = f"{len(classes)} classes: {_shown(classes, SHOWN_VALUES)}"
    return spec, ColumnDecision(name, "target", declared, reason)


def _regression_target(name: str, column: _Column) -> tuple[ColumnSpec, ColumnDecision]:
    if column.kind != "number":
        examples = sorted(set(_as_text(column.values)))
        raise DataError(
            f"target {name!r} holds values that are not numbers ({_shown(examples)}): "
            "a regression target holds numbers"
        )
    bounds = _range(column)
    spec = ColumnSpec(name=name, role="target", min=bounds.min, max=bounds.max)
    return spec, ColumnDecision(name, "target", bounds.declared, bounds.reason)


def _check_names(frame: pd.DataFrame, target: str, timestamp: str, id_column: str | None) -> None:
    check_names("the data", list(frame.columns))
    named = {"--target": target, "--timestamp": timestamp, "--id": id_column}
    columns = [str(name) for name in frame.columns]
    for option, name in named.items():
        if name is not None and name not in columns:
            raise DataError(f"{option} {name!r} is not a column of the data: {_shown(columns, 30)}")
    given = [name for name in named.values() if name is not None]
    if len(set(given)) != len(given):
        raise DataError("--target, --timestamp and --id must name different columns")
    if ROW_KEY in given:
        raise DataError(f"{ROW_KEY!r} is reserved for the key of rows without an id: rename it")
    if frame.empty:
        raise DataError("the data has no rows to infer a schema from")


def _timestamp(name: str, values: pd.Series, now: datetime) -> tuple[ColumnDecision, list[str]]:
    if pd.api.types.is_numeric_dtype(values):
        raise DataError(
            f"timestamp {name!r} holds numbers: write it as ISO 8601 text or a Parquet timestamp"
        )
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().all():
        raise DataError(
            f"timestamp {name!r}: no value is an ISO 8601 timestamp: {_shown(values[:3])}"
        )
    notes = []
    if missing := int(values.isna().sum()):
        notes.append(f"{missing} rows have no {name}: ingest quarantines them")
    if bad := int((values.notna() & parsed.isna()).sum()):
        examples = _shown(values[values.notna() & parsed.isna()].unique())
        notes.append(f"{bad} values of {name} are not timestamps ({examples}): quarantined")
    if future := int((parsed > now).sum()):
        notes.append(f"{future} rows have a {name} in the future: ingest quarantines them")
    low, high = parsed.min(), parsed.max()
    reason = f"named by --timestamp; ISO 8601, {low:%Y-%m-%d} to {high:%Y-%m-%d}"
    return ColumnDecision(name, "timestamp", "ISO 8601", reason), notes


def _over_long(long: pd.Series, present: int | None = None) -> str:
    """How many values (of `present`) are longer than `MAX_TEXT_CHARS`, `long` being their
    lengths, and the longest: the length, never the value."""
    count = f"{len(long)}" if present is None else f"{len(long)} of {present}"
    return (
        f"{count} value{'s' if len(long) > 1 or present else ''} longer than "
        f"{MAX_TEXT_CHARS:,} characters (the longest {int(long.max()):,})"
    )


def _feature(
    name: str, column: _Column, rows: int, long: pd.Series
) -> tuple[ColumnSpec | None, ColumnDecision]:
    """A column that is not the target, timestamp or id: numeric, categorical or left out.
    `column` is read without its over-long values, whose lengths are `long`."""
    nullable = column.nullable
    if name == ROW_KEY:
        reason = f"{ROW_KEY!r} is reserved for the key of rows without an id"
        return None, ColumnDecision(name, None, "", reason)
    present = len(column.values) - column.missing + len(long)
    if len(long) > (1 - MOSTLY_SHORT) * present:
        reason = f"free text: {_over_long(long, present)}, too long for categories"
        return None, ColumnDecision(name, None, "", reason)
    missing = f"; {column.missing} missing" if column.missing else ""
    if len(long):
        missing += f"; {_over_long(long)}, quarantined"
    if column.kind == "empty":
        return None, ColumnDecision(name, None, "", "every value is missing")
    if column.kind == "datetime":
        reason = "dates or times other than the timestamp: the model takes numbers and categories"
        return None, ColumnDecision(name, None, "", reason)
    if column.kind == "number":
        bounds = _range(column)
        reason = bounds.reason + ("; whole numbers" if bounds.integer else "") + missing
        if column.not_numbers:
            reason += f"; {column.bad_numbers}, quarantined"
        if bounds.integer and column.values.nunique() == rows >= ID_LIKE_MIN_ROWS:
            reason += "; every value is distinct (an id? pass --id)"
        spec = ColumnSpec(
            name=name,
            role="numeric",
            min=bounds.min,
            max=bounds.max,
            integer=bounds.integer,
            nullable=nullable,
        )
        declared = bounds.declared + (", whole" if bounds.integer else "")
        return spec, ColumnDecision(
            name, "numeric", declared + (", nullable" if nullable else ""), reason
        )
    text = _as_text(column.values)
    categories = sorted(set(text))
    if column.kind == "text" and len(categories) == len(text) and len(text) >= ID_LIKE_MIN_ROWS:
        reason = "every value is distinct text: id-like, no use as a feature (an id? pass --id)"
        return None, ColumnDecision(name, None, "", reason)
    if column.kind == "text" and len(categories) > MAX_CATEGORIES:
        reason = (
            f"{len(categories)} distinct texts, more than {MAX_CATEGORIES} a category may have: "
            "new values would mostly be unseen categories (an id? pass --id)"
        )
        return None, ColumnDecision(name, None, "", reason)
    what = "true/false values" if column.kind == "bool" else "text"
    reason = f"{what}, {len(categories)} distinct values{missing}"
    spec = ColumnSpec(
        name=name, role="categorical", categories=tuple(categories), nullable=nullable
    )
    declared = f"{len(categories)} categories: {_shown(categories, 5)}" + (
        ", nullable" if nullable else ""
    )
    return spec, ColumnDecision(name, "categorical", declared, reason)


def _duplicates(frame: pd.DataFrame, schema: DataSchema) -> str | None:
    """Rows validation will quarantine as repeats of an earlier row's key and timestamp."""
    key = [schema.id_column] if schema.id_column else schema.feature_columns
    repeated = int(frame.duplicated(subset=[*key, schema.timestamp_column]).sum())
    if not repeated:
        return None
    what = "id" if schema.id_column else "features"
    return f"{repeated} rows repeat an earlier row's {what} and timestamp: ingest quarantines them"


def _one_sided_by_time(target: pd.Series, times: pd.Series, split: SplitConfig) -> dict[str, Any]:
    """The splits a time split would leave with one class (or a constant target), each with
    that value: a table sorted by its label, whose newest rows say one thing. Cut as ingest
    cuts, on the rows that have both a target and a timestamp."""
    rows = pd.DataFrame({"time": times, "target": target}).dropna()
    try:
        parts = time_split(rows, "time", split).parts()
    except DataError:
        return {}  # too few timestamps: ingest says so
    return {
        name: part["target"].iloc[0] for name, part in parts.items() if part["target"].nunique() < 2
    }


def _lacking_by_time(
    target: pd.Series, times: pd.Series, split: SplitConfig, classes: tuple[str, ...]
) -> dict[str, list[str]]:
    """The splits a time split would leave without some of a multiclass target's `classes`,
    each with the classes it lacks: cut as ingest cuts, on rows with a target and a timestamp."""
    rows = pd.DataFrame({"time": times, "target": target}).dropna()
    try:
        parts = time_split(rows, "time", split).parts()
    except DataError:
        return {}  # too few timestamps: ingest says so
    lacking = {
        name: [value for value in classes if value not in set(part["target"])]
        for name, part in parts.items()
    }
    return {name: missing for name, missing in lacking.items() if missing}


def infer_schema(
    frame: pd.DataFrame,
    task: Task,
    *,
    target: str,
    timestamp: str,
    id_column: str | None = None,
    positive: str | None = None,
    now: datetime | None = None,
    split: SplitConfig | None = None,
) -> InferredSchema:
    """The schema `frame` satisfies, for `task`, with the reason for each column's role.

    Raises DataError when the named columns are absent, a binary target has other than two
    values, or a multiclass target fewer than three or values that are no classes, so a schema
    that cannot describe the data is never written.
    """
    _check_names(frame, target, timestamp, id_column)
    if positive is not None and task != "binary_classification":
        raise DataError("--positive applies to binary classification only")
    frame = frame.rename(columns=str).reset_index(drop=True)
    rows = len(frame)
    keys = {target, timestamp, id_column}
    lengths = {name: text_lengths(frame[name]) for name in frame.columns}
    long = {name: found[found > MAX_TEXT_CHARS] for name, found in lengths.items()}
    # Over-long values are no category, class or number: read without them, they are named.
    short = {name: frame[name].drop(index=found.index) for name, found in long.items()}
    columns = {
        name: _read_column(short[name]) for name in frame.columns if name not in keys - {target}
    }

    specs: list[ColumnSpec] = []
    decisions: list[ColumnDecision] = []
    notes: list[str] = []
    for name in frame.columns:
        if name == timestamp:
            decision, found = _timestamp(name, frame[name], now or datetime.now(UTC))
            specs.append(ColumnSpec(name=name, role="timestamp"))
            notes += found
        elif name == id_column:
            reason = "named by --id; read as text"
            if missing := int(frame[name].isna().sum()):
                notes.append(f"{missing} rows have no {name}: ingest quarantines them")
            if len(long[name]):
                notes.append(f"{name}: {_over_long(long[name])}; ingest quarantines those rows")
            specs.append(ColumnSpec(name=name, role="id"))
            decision = ColumnDecision(name, "id", "text, keys the rows", reason)
        elif name == target:
            column = columns[name]
            if len(long[name]):
                notes.append(f"{name}: {_over_long(long[name])}; ingest quarantines those rows")
            if column.kind == "empty":
                raise DataError(f"target {name!r}: every value is missing or too long")
            if task == "binary_classification":
                spec, decision = _binary_target(name, short[name], column, positive)
            elif task == "multiclass_classification":
                spec, decision = _multiclass_target(name, short[name], column)
            else:
                spec, decision = _regression_target(name, column)
            if column.missing:
                notes.append(f"{column.missing} rows have no {name}: ingest quarantines them")
            if column.not_numbers:
                notes.append(f"{name}: {column.bad_numbers}; ingest quarantines those rows")
            specs.append(spec)
        else:
            feature, decision = _feature(name, columns[name], rows, long[name])
            if feature is not None:
                specs.append(feature)
        decisions.append(decision)

    if not any(spec.role in {"numeric", "categorical"} for spec in specs):
        raise DataError(
            "no column is usable as a feature: "
            + "; ".join(f"{d.name}: {d.reason}" for d in decisions if d.role is None)
        )
    schema = DataSchema(columns=tuple(specs))
    typed = pd.DataFrame({name: columns[name].values for name in schema.feature_columns})
    typed[timestamp] = pd.to_datetime(frame[timestamp], utc=True, errors="coerce", format="ISO8601")
    if id_column:
        typed[id_column] = frame[id_column]
    if duplicates := _duplicates(typed, schema):
        notes.append(duplicates)
    classify = task != "regression"
    labels = _as_text(frame[target]) if classify else columns[target].values
    split = split or SplitConfig()
    holdout = f"the newest {100 * split.holdout_fraction:g}% of the rows as the holdout"
    classes = schema.target.classes
    if task == "multiclass_classification" and classes is not None:
        lacking = _lacking_by_time(labels.reindex(frame.index), typed[timestamp], split, classes)
        if lacking:
            shown = "; ".join(f"{name}: no {_shown(missing)}" for name, missing in lacking.items())
            notes.append(
                f"cut by time ({holdout}), the {', '.join(lacking)} split(s) would lack classes "
                f"of {target} ({shown}): the table looks sorted by its label, and ingest would "
                "refuse it"
            )
        return InferredSchema(schema, tuple(decisions), tuple(notes), rows, tuple(lacking))
    one_sided = _one_sided_by_time(labels.reindex(frame.index), typed[timestamp], split)
    if one_sided:
        what = "class" if task == "binary_classification" else "value"
        shown = "; ".join(
            f"{name}: {shown_value(value.item() if isinstance(value, np.generic) else value)} only"
            for name, value in one_sided.items()
        )
        notes.append(
            f"cut by time ({holdout}), the {', '.join(one_sided)} split(s) would hold one {what} "
            f"of {target} ({shown}): the table looks sorted by its label, and ingest would "
            "refuse it"
        )
    return InferredSchema(schema, tuple(decisions), tuple(notes), rows, tuple(one_sided))


def infer_file(
    location: Location,
    task: Task,
    *,
    target: str,
    timestamp: str,
    id_column: str | None = None,
    positive: str | None = None,
    delimiter: str | None = None,
    split: SplitConfig | None = None,
) -> InferredSchema:
    """Read a CSV (as text, as ingest reads it) or Parquet file, a local path or an fsspec URL,
    and infer its schema (`split`: the project's, to tell whether a time split fits)."""
    frame = read_table(location, delimiter)
    return infer_schema(
        frame,
        task,
        target=target,
        timestamp=timestamp,
        id_column=id_column,
        positive=positive,
        split=split,
    )


def _scalar(value: Any) -> str:
    """One YAML value on one line, quoted where YAML needs it ('1', 'yes', 'a: b'); a whole
    bound reads 0, not 0.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    dumped = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1, allow_unicode=True)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def _comment(text: str, indent: str = "", *, item: bool = False) -> list[str]:
    """`text` as comment lines of at most 96 characters; `item`: a list entry, "- " hung."""
    bullet, hang = ("- ", "  ") if item else ("", "")
    wrapped = textwrap.wrap(text, 96 - len(indent), initial_indent=bullet, subsequent_indent=hang)
    return [f"{indent}# {line}" for line in wrapped]


def schema_yaml(inferred: InferredSchema, source: str) -> str:
    """The schema as YAML, each column preceded by why it is declared that way; it loads back
    with `DataSchema.from_yaml` as exactly `inferred.schema`."""
    lines = [
        f"# Data schema inferred by `schema infer` from {source} ({inferred.rows} rows).",
        *_comment(
            f"Review it before use: ranges are the data's own, widened by {MARGIN:.0%} of each "
            "column's range; categories and classes are the values seen. The format is "
            "described in docs/data.md."
        ),
    ]
    left_out = [d for d in inferred.decisions if d.role is None]
    if left_out:
        lines.append("# Columns of the file left out (ingest lists them and ignores them):")
        for decision in left_out:
            lines += _comment(f"{decision.name}: {decision.reason}", item=True)
    for note in inferred.notes:
        lines += _comment(f"Note: {note}")
    lines.append("columns:")
    reasons = {d.name: d.reason for d in inferred.decisions}
    for spec in inferred.schema.columns:
        lines += _comment(reasons[spec.name], "  ")
        for index, (key, value) in enumerate(
            spec.model_dump(mode="json", exclude_defaults=True).items()
        ):
            lines.append(f"  {'- ' if index == 0 else '  '}{key}: {_scalar(value)}")
    text = "\n".join(lines) + "\n"
    loaded = DataSchema.model_validate(yaml.safe_load(text))
    if loaded != inferred.schema:
        raise AssertionError(f"the YAML written for {source} does not load back as inferred")
    return text


def write_schema(inferred: InferredSchema, path: Path, source: str) -> None:
    """Write the commented schema whole (never half a file), creating its folder."""
    text = schema_yaml(inferred, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as partial:
        partial.write_text(text, encoding="utf-8")
