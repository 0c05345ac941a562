"""Enforce the schema row by row: good rows go on, bad rows are quarantined with the reason.

A whole-file problem (a missing column, no rows at all) is an error; a bad value in one row is
not, but the row is kept aside with every reason it failed, never silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from .schema import MAX_TEXT_CHARS, ROW_KEY, ColumnSpec, DataSchema, cut_text, row_key, shown_value
from .sources import DataError, check_names

REASON = "quarantine_reason"
SOURCE_ROW = "source_row"
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class ValidationResult:
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    ignored_columns: tuple[str, ...]


def _checks(column: ColumnSpec) -> list[pa.Check]:
    checks = []
    if column.min is not None:
        checks.append(pa.Check.ge(column.min, error=f"below the minimum {column.min:g}"))
    if column.max is not None:
        checks.append(pa.Check.le(column.max, error=f"above the maximum {column.max:g}"))
    if column.integer:
        checks.append(pa.Check(lambda s: s % 1 == 0, error="not a whole number"))
    if column.categories is not None:
        checks.append(pa.Check.isin(column.categories, error="not a known category"))
    return checks


def pandera_schema(columns: list[ColumnSpec]) -> pa.DataFrameSchema:
    """The pandera form of the contract, applied after values have been parsed."""
    return pa.DataFrameSchema(
        {
            column.name: pa.Column(checks=_checks(column), nullable=column.nullable)
            for column in columns
        }
    )


def _parse(values: pd.Series, column: ColumnSpec) -> tuple[pd.Series, str]:
    if column.role == "timestamp":
        if pd.api.types.is_numeric_dtype(values):
            # Numbers in a typed (Parquet) column: seconds or milliseconds since when? Unknowable.
            values = pd.Series(pd.NA, index=values.index, dtype=object)
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        return parsed, "not a timestamp"
    if column.classes is not None:
        labels = values.map(lambda value: column.label(value) if pd.notna(value) else None)
        return labels.astype("float64"), f"not one of the classes {list(column.classes)}"
    if column.is_numeric:
        if pd.api.types.is_datetime64_any_dtype(values):
            # A typed timestamp column would otherwise pass as its count of microseconds.
            return pd.Series(np.nan, index=values.index), "not a number"
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        # "inf" parses as a float, but no model can learn from it: a bad value like any other.
        return numbers.where(np.isfinite(numbers)), "not a number"
    return _as_categories(values, column), ""


def _as_categories(values: pd.Series, column: ColumnSpec) -> pd.Series:
    """Values as the text categories are compared with. Typed numbers (a database's integer
    column with NULLs arrives as floats) match a category by value, as a binary target's classes
    do: 2.0 is the category "2", not "2.0"."""
    text = values.astype(object).where(values.isna(), values.astype(str))
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if column.categories is None or not numeric:
        return text
    by_value: dict[float, str] = {}
    for category in column.categories:
        try:
            by_value.setdefault(float(category), category)
        except ValueError:
            continue
    matched = values.map(lambda value: by_value.get(float(value), _number_text(value)))
    return text.where(values.isna(), matched)


def _number_text(value: float) -> str:
    """7.0 as "7": a whole number read as a float only because its column has NULLs."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _shown(value: object) -> str:
    """A value as the file holds it: `1735689600`, not `np.int64(1735689600)`; a long one cut."""
    return shown_value(value.item() if isinstance(value, np.generic) else value)


def text_lengths(values: pd.Series) -> pd.Series:
    """Each value's length as text, 0 for a missing one or one that is no text: numbers, times
    and booleans are short by nature, so only text is measured."""
    kinds = pd.api.types
    none = pd.Series(0, index=values.index, dtype="int64")
    if kinds.is_numeric_dtype(values) or kinds.is_datetime64_any_dtype(values):
        return none
    try:
        lengths = values.str.len()  # other objects than text (numbers, bytes...) give NaN
    except AttributeError:  # a column without any text: numbers or times as objects
        return none
    return lengths.fillna(0).astype("int64")


def _check_time(
    typed: pd.DataFrame, schema: DataSchema, now: datetime, reasons: dict[int, list[str]]
) -> None:
    """Duplicated (key, timestamp) pairs and timestamps from the future are quarantined. The key
    is the id, or without one the row's features: the same row twice."""
    key = [schema.key_column, schema.timestamp_column]
    duplicated = typed.duplicated(subset=key, keep="first") & typed[key].notna().all(axis=1)
    what = "id" if schema.id_column else "features"
    for row in typed.index[duplicated]:
        reasons[row].append(f"duplicate: same {what} and timestamp as an earlier row")
    for row in typed.index[typed[schema.timestamp_column] > now + FUTURE_TOLERANCE]:
        reasons[row].append(f"{schema.timestamp_column}: in the future")


def validate(
    raw: pd.DataFrame, schema: DataSchema, now: datetime | None = None, *, scoring: bool = False
) -> ValidationResult:
    """Split `raw` into typed valid rows and quarantined rows that say why they failed.

    With `scoring`, rows are to be predicted: they need no target and may lack the timestamp.
    """
    skipped = {schema.target.name} if scoring else set()
    if scoring and schema.timestamp_column not in raw.columns:
        skipped.add(schema.timestamp_column)
    columns = [column for column in schema.columns if column.name not in skipped]
    names = [column.name for column in columns]
    check_names("the data", list(raw.columns))
    if missing := [name for name in names if name not in raw.columns]:
        raise DataError(f"the data lacks required columns: {', '.join(missing)}")
    if raw.empty:
        raise DataError("the data has no rows")
    raw = raw.reset_index(drop=True)
    reasons: dict[int, list[str]] = defaultdict(list)

    parsed = {}
    for column in columns:
        lengths = text_lengths(raw[column.name])
        long = lengths > MAX_TEXT_CHARS
        for row in raw.index[long]:
            reasons[row].append(
                f"{column.name}: a value of {lengths[row]:,} characters, longer than the "
                f"{MAX_TEXT_CHARS:,} a text value may hold"
            )
        # Never parsed or compared: its row is quarantined, and its text goes no further.
        values, unparsable = _parse(
            raw[column.name].mask(long) if long.any() else raw[column.name], column
        )
        for row in raw.index[raw[column.name].notna() & ~long & values.isna()]:
            shown = _shown(raw.at[row, column.name])
            reasons[row].append(f"{column.name}: {shown} is {unparsable}")
        parsed[column.name] = values
    typed = pd.DataFrame(parsed, index=raw.index)
    if schema.id_column is None:
        features = typed[schema.feature_columns].astype(object)
        keys = [
            row_key(dict(zip(features.columns, values, strict=True)), schema)
            for values in features.itertuples(index=False, name=None)
        ]
        typed.insert(0, ROW_KEY, keys)

    try:
        pandera_schema(columns).validate(typed, lazy=True)
    except SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            if pd.isna(case.index):
                raise DataError(f"{case.column}: {case.check}") from None
            row = int(case.index)
            if case.check == "not_nullable":
                if not any(reason.startswith(f"{case.column}:") for reason in reasons[row]):
                    reasons[row].append(f"{case.column}: missing")
            else:
                reasons[row].append(f"{case.column}: {_shown(case.failure_case)} is {case.check}")
    if schema.timestamp_column in typed.columns:
        _check_time(typed, schema, now or datetime.now(UTC), reasons)

    bad = sorted(reasons)
    quarantined = raw.loc[bad, names].astype(object)
    quarantined = quarantined.where(quarantined.isna(), quarantined.astype(str))
    # An over-long cell is kept as its start and length: its reason says the rest.
    quarantined = quarantined.apply(lambda values: values.map(cut_text, na_action="ignore"))
    quarantined.insert(0, SOURCE_ROW, bad)
    quarantined[REASON] = ["; ".join(reasons[row]) for row in bad]
    valid = typed.drop(index=bad)
    if schema.timestamp_column in valid.columns:
        valid = valid.sort_values(schema.timestamp_column, kind="stable")
    ignored = tuple(str(name) for name in raw.columns if name not in names)
    return ValidationResult(
        valid=valid.reset_index(drop=True),
        quarantined=quarantined.reset_index(drop=True),
        ignored_columns=ignored,
    )
