"""The data contract, declared once: columns, roles, ranges and categories.

Validation, features and (later) request models are all derived from a `DataSchema`, so a
column is described in exactly one place.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..config import ConfigError, explain

Role = Literal["id", "timestamp", "numeric", "categorical", "target"]


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

    @model_validator(mode="after")
    def _coherent(self) -> ColumnSpec:
        if self.categories is not None and self.role != "categorical":
            raise ValueError(f"{self.name}: only categorical columns take categories")
        if self.role == "categorical" and not self.categories:
            raise ValueError(f"{self.name}: a categorical column needs its categories")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min {self.min} is above max {self.max}")
        if self.role in {"id", "timestamp", "target"} and self.nullable:
            raise ValueError(f"{self.name}: a {self.role} column cannot be nullable")
        return self

    @property
    def is_numeric(self) -> bool:
        return self.role in {"numeric", "target"}


class DataSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[ColumnSpec, ...]

    @model_validator(mode="after")
    def _one_of_each_key_role(self) -> DataSchema:
        names = Counter(column.name for column in self.columns)
        if repeated := sorted(name for name, count in names.items() if count > 1):
            raise ValueError(f"column names repeat: {repeated}")
        roles = Counter(column.role for column in self.columns)
        for role in ("id", "timestamp", "target"):
            if roles[role] != 1:
                raise ValueError(f"exactly one {role} column is required, found {roles[role]}")
        if roles["numeric"] + roles["categorical"] == 0:
            raise ValueError("at least one numeric or categorical feature is required")
        return self

    def _only(self, role: Role) -> ColumnSpec:
        return next(column for column in self.columns if column.role == role)

    @property
    def id_column(self) -> str:
        return self._only("id").name

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
