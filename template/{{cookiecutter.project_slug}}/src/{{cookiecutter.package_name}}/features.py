"""Stage 2, features: one scikit-learn transformer built from the schema.

It is fitted inside training and saved inside the model, so serving applies exactly the
transformation that training did; there is no second implementation to drift out of step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .data import DataSchema

MISSING_CATEGORY = "__missing__"


def build_feature_pipeline(schema: DataSchema) -> ColumnTransformer:
    """Numeric: median with a missing flag, then scaled. Categorical: one-hot, unknowns ignored."""
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, schema.numeric_features),
            ("categorical", categorical, schema.categorical_features),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def model_input(frame: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """The columns a model sees, in schema order and with stable dtypes, from any frame."""
    numeric = frame[schema.numeric_features].astype("float64")
    categorical = frame[schema.categorical_features].astype(object)
    categorical = categorical.where(categorical.notna(), np.nan)
    return pd.concat([numeric, categorical], axis=1)


def records_frame(records: Sequence[Mapping[str, Any]], schema: DataSchema) -> pd.DataFrame:
    """`model_input` for request rows, built column by column: several times faster per call."""
    numeric = {
        name: pd.Series([row[name] for row in records], dtype="float64")
        for name in schema.numeric_features
    }
    categorical = {
        name: pd.Series(
            [np.nan if row[name] is None else row[name] for row in records], dtype=object
        )
        for name in schema.categorical_features
    }
    return pd.DataFrame(numeric | categorical)
