"""The continual-learning path of a generated project, through the same nox sessions its
workflows call: pipeline, then monitor on drifted data, then retrain (gate dry run), then promote.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from helpers import nox_command, render, run_logged

pytestmark = pytest.mark.slow
TIMEOUT = 30 * 60


def _champion(project: Path, model: str) -> int:
    with closing(sqlite3.connect(project / "mlflow.db")) as db:
        row = db.execute(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = 'champion'",
            (model,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _outputs(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_drift_is_detected_then_retrained_and_promoted(tmp_path: Path) -> None:
    project = render(tmp_path / "demo-ml-service", {})
    log = tmp_path / "nox.log"
    outputs = tmp_path / "github-output"

    def nox(*args: str) -> None:
        run_logged(
            nox_command(*args),
            cwd=project,
            log=log,
            timeout=TIMEOUT,
            env={"GITHUB_OUTPUT": str(outputs)},
        )

    nox("-s", "pipeline")
    assert _champion(project, "demo-ml-service") == 1

    # Same distribution, a later window: monitoring stays quiet.
    nox(
        "-s",
        "demo-data",
        "--",
        "--out",
        "data/live/same.parquet",
        "--rows",
        "3000",
        "--seed",
        "3",
        "--start",
        "2025-07-01",
        "--days",
        "30",
    )
    nox("-s", "monitor", "--", "--source", "data/live/same.parquet")
    assert _outputs(outputs)["retrain"] == "false"

    # The world drifts: monitoring asks for retraining.
    drift = ["--covariate-shift", "1.0", "--concept-shift", "1.0"]
    nox(
        "-s",
        "demo-data",
        "--",
        "--out",
        "data/live/drifted.parquet",
        "--rows",
        "3000",
        "--seed",
        "4",
        "--start",
        "2025-07-01",
        "--days",
        "30",
        *drift,
    )
    nox("-s", "monitor", "--", "--source", "data/live/drifted.parquet")
    assert _outputs(outputs)["retrain"] == "true"
    flag = json.loads((project / "reports" / "retrain.json").read_text(encoding="utf-8"))
    assert flag["retrain"] is True
    assert flag["reasons"]

    # Continual training ingests the newest data (the drifted window) and runs the gate.
    config_path = project / "configs" / "project.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["data"]["source"] |= {
        "start": "2025-07-01",
        "seed": 21,
        "covariate_shift": 1.0,
        "concept_shift": 1.0,
    }
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    nox("-s", "retrain", "--", "--dry-run")
    assert _outputs(outputs)["decision"] == "promoted"
    assert _champion(project, "demo-ml-service") == 1, "a dry run moves no alias"

    # The promotion job (behind the `production` environment in CI).
    nox("-s", "promote")
    assert _champion(project, "demo-ml-service") == 2
    records = sorted((project / "reports" / "promotion").glob("*.json"))
    last = json.loads(records[-1].read_text(encoding="utf-8"))
    assert last["outcome"] == "promoted"
    assert last["test"]["p_value"] < 0.05
