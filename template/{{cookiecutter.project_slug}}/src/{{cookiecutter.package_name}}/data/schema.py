"""The data contract, declared once: columns, roles, ranges, categories and the target's classes.

Validation, features and request models are all derived from a `DataSchema`, so a column is
described in exactly one place. The format is documented in the project's `docs/data.md`.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..config import ConfigError, explain

Role = Literal["id", "timestamp", "numeric", "categorical", "target"]
# Without an id column, a row's key is a digest of its features (see `row_key`).
ROW_KEY = "row_key"

# The bounds on text in the contract, documented in docs/data.md. A category, a class, an id or a
# column's name is a short label compared whole; a longer value is free text or a pasted blob,
# and taken as a category it would be copied into schema.yaml, every snapshot manifest and every
# message. `schema infer` leaves such columns out, ingest quarantines such cells.
MAX_TEXT_CHARS = 1_000
# More distinct texts than this is no category: a new value at serving time would be refused.
MAX_CATEGORIES = 200
# Of one value, a message shows this much and counts the rest.
SHOWN_CHARS = 80


def shown_value(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as a message shows it, quoted: a long one cut, with its length, so that no
    message, reason or table carries a whole blob."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value)):,} characters)"


def cut_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` if it fits `limit`, else its start and its length: what a quarantined row keeps
    of an over-long cell."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


class ColumnSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Role
    description: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    integer: bool = False
    categories: tuple[str, ...] | None = None
    # A classifier's target values, as the data holds them: a binary target's two, a multiclass
    # target's three or more (in the order of the model's probability columns).
    classes: tuple[str, ...] | None = None
    positive: str | None = None  # binary: which class the model predicts the probability of

    @model_validator(mode="after")
    def _coherent(self) -> ColumnSpec:
        if self.categories is not None and self.role != "categorical":
            raise ValueError(f"{self.name}: only categorical columns take categories")
        if (self.classes is not None or self.positive is not None) and self.role != "target":
            raise ValueError(f"{self.name}: only the target takes classes and positive")
        if self.classes is not None:
            if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
                raise ValueError(
                    f"{self.name}: a target's classes are two or more different values, "
                    f"got {list(self.classes)}"
                )
            if self.positive is not None and len(self.classes) != 2:
                raise ValueError(
                    f"{self.name}: positive names a binary target's scored class; a target "
                    f"with {len(self.classes)} classes takes none"
                )
            if self.positive is not None and self.positive not in self.classes:
                raise ValueError(
                    f"{self.name}: positive {self.positive!r} is not one of the classes"
                )
            if self.min is not None or self.max is not None:
                raise ValueError(f"{self.name}: a target with classes takes no min or max")
        elif self.positive is not None:
            raise ValueError(f"{self.name}: positive needs the two classes")
        if self.role == "categorical" and not self.categories:
            raise ValueError(f"{self.name}: a categorical column needs its categories")
        values = [*(self.categories or ()), *(self.classes or ())]
        if long := [value for value in values if len(value) > MAX_TEXT_CHARS]:
            raise ValueError(
                f"{self.name}: {shown_value(long[0])} is longer than the {MAX_TEXT_CHARS:,} "
                "characters a category or class may have: ingest quarantines such values"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min {self.min} is above max {self.max}")
        if self.role in {"id", "timestamp", "target"} and self.nullable:
            raise ValueError(f"{self.name}: a {self.role} column cannot be nullable")
        return self

    @property
    def is_numeric(self) -> bool:
        return self.role == "numeric" or (self.role == "target" and self.classes is None)

    def label(self, value: Any) -> float | None:
        """A target value as the model sees it (binary: 1.0 for the positive class, 0.0 for the
        other; multiclass: the class's index in `classes`, 0.0 to K-1; regression: the number
        itself), or None when it is outside the target's domain."""
        if self.classes is not None:
            for index, name in enumerate(self.classes):
                if _same_value(value, name):
                    if self.is_multiclass:
                        return float(index)
                    return 1.0 if name == self.positive_class else 0.0
            return None
        number = _finite(value)
        if number is None:
            return None
        too_low = self.min is not None and number < self.min
        too_high = self.max is not None and number > self.max
        return None if too_low or too_high else number

    @property
    def is_multiclass(self) -> bool:
        """A target of three or more classes (`for_task` holds it to multiclass_classification)."""
        return self.classes is not None and len(self.classes) > 2

    def class_name(self, label: float) -> str:
        """The class a classifier's label (as `label` maps it: a multiclass index, a binary 1.0
        for the positive class) stands for: what a client sends back as feedback."""
        assert self.classes is not None, "a classifier's target"
        if self.is_multiclass:
            return self.classes[int(label)]
        positive = self.positive_class
        return next(c for c in self.classes if (c == positive) == (label == 1.0))

    @property
    def positive_class(self) -> str | None:
        """A binary target's class scored as 1 (the second class unless `positive` names the
        first); None for a multiclass or regression target."""
        if self.classes is None or self.is_multiclass:
            return None
        return self.positive if self.positive is not None else self.classes[1]


class DataSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[ColumnSpec, ...]

    @model_validator(mode="after")
    def _one_of_each_key_role(self) -> DataSchema:
        names = Counter(column.name for column in self.columns)
        if repeated := sorted(name for name, count in names.items() if count > 1):
            raise ValueError(f"column names repeat: {repeated}")
        roles = Counter(column.role for column in self.columns)
        for role in ("timestamp", "target"):
            if roles[role] != 1:
                raise ValueError(f"exactly one {role} column is required, found {roles[role]}")
        if roles["id"] > 1:
            raise ValueError(f"at most one id column is allowed, found {roles['id']}")
        if ROW_KEY in names:
            raise ValueError(f"{ROW_KEY!r} is reserved for the key of rows without an id column")
        if roles["numeric"] + roles["categorical"] == 0:
            raise ValueError("at least one numeric or categorical feature is required")
        return self

    def _only(self, role: Role) -> ColumnSpec:
        return next(column for column in self.columns if column.role == role)

    @property
    def id_column(self) -> str | None:
        """The entity id column, if the data has one: it is optional."""
        ids = [column.name for column in self.columns if column.role == "id"]
        return ids[0] if ids else None

    @property
    def key_column(self) -> str:
        """The id column, or `row_key` (added at validation) when the data has no id."""
        return self.id_column or ROW_KEY

    @property
    def timestamp_column(self) -> str:
        return self._only("timestamp").name

    @property
    def target(self) -> ColumnSpec:
        return self._only("target")

    @property
    def numeric_features(self) -> list[str]:
        return [column.name for column in self.columns if column.role == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [column.name for column in self.columns if column.role == "categorical"]

    @property
    def feature_columns(self) -> list[str]:
        return self.numeric_features + self.categorical_features

    def for_task(self, task: str) -> DataSchema:
        """The schema as the task reads it: a binary target without declared classes holds
        0 and 1 (1 positive); a multiclass target declares its three or more classes; a
        regression target must not declare classes."""
        target = self.target
        if task == "regression" and target.classes is not None:
            raise ValueError(f"{target.name}: a regression target takes no classes")
        count = len(target.classes or ())
        if task == "multiclass_classification" and count < 3:
            raise ValueError(
                f"{target.name}: a multiclass_classification target declares its classes, three "
                f"or more (it has {count or 'none'})"
                + (": two classes are train.task: binary_classification" if count == 2 else "")
            )
        if task == "binary_classification" and count > 2:
            raise ValueError(
                f"{target.name}: a binary target has two classes, this one {count}: set "
                "train.task: multiclass_classification in the project's configuration"
            )
        if task != "binary_classification" or target.classes is not None:
            return self
        binary = target.model_copy(
            update={"classes": ("0", "1"), "positive": "1", "min": None, "max": None}
        )
        columns = tuple(binary if c.role == "target" else c for c in self.columns)
        return self.model_copy(update={"columns": columns})

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @classmethod
    def from_yaml(cls, path: Path) -> DataSchema:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.model_validate(raw)
        except FileNotFoundError:
            raise ConfigError(f"schema file {path}: no such file") from None
        except ValidationError as error:
            raise ConfigError(f"schema file {path} is invalid:\n{explain(error)}") from None

    def to_yaml(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.model_dump(mode="json", exclude_defaults=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _key_part(value: Any) -> str:
    """One value as the key sees it: numbers by value (1 and 1.0 agree), missing as empty."""
    if value is None or type(value).__name__ == "NAType":
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    return str(value)


def row_key(row: Mapping[str, Any], schema: DataSchema) -> str:
    """A row's key when the data has no id column: a digest of its features, so the same row
    in a file, a snapshot or a request always gets the same key (16 hex characters)."""
    text = "\x1f".join(_key_part(row.get(name)) for name in schema.feature_columns)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _same_value(value: Any, name: str) -> bool:
    """`value` is the class `name`: the same text, or the same number (1, 1.0 and "1" agree)."""
    if isinstance(value, str) and value == name:
        return True
    number, declared = _finite(value), _finite(name)
    return number is not None and declared is not None and number == declared
