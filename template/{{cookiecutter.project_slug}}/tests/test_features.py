from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import DemoSourceConfig, Task, load_project
from {{ cookiecutter.package_name }}.data import demo_schema, generate_demo
from {{ cookiecutter.package_name }}.features import build_feature_pipeline, model_input

from .conftest import ROOT

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)

TASK: Task = load_project(ROOT / "configs" / "project.yaml").config.train.task


def _rows(rows: int = 500) -> pd.DataFrame:
    return generate_demo(DemoSourceConfig(rows=rows, invalid_fraction=0.0), TASK)


def test_model_input_keeps_only_features_in_schema_order() -> None:
    schema = demo_schema(TASK)
    frame = model_input(_rows(), schema)
    assert list(frame.columns) == schema.feature_columns
    assert schema.target.name not in frame.columns


def test_the_pipeline_handles_missing_values_and_unseen_categories() -> None:
    schema = demo_schema(TASK)
    pipeline = build_feature_pipeline(schema).fit(model_input(_rows(), schema))
    odd = model_input(_rows().head(3), schema)
    odd.loc[0, "plan"] = "enterprise"
    odd.loc[1, "monthly_spend"] = np.nan
    odd.loc[2, "region"] = np.nan
    out = pipeline.transform(odd)
    assert out.shape[0] == 3
    assert np.isfinite(out).all()


def test_the_same_fitted_pipeline_gives_the_same_features_for_the_same_rows() -> None:
    schema = demo_schema(TASK)
    rows = model_input(_rows(), schema)
    pipeline = build_feature_pipeline(schema).fit(rows)
    np.testing.assert_array_equal(pipeline.transform(rows), pipeline.transform(rows.copy()))
    assert "monthly_spend" in list(pipeline.get_feature_names_out())
