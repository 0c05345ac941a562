from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import ConfigError, Task, load_project, parse_config
from {{ cookiecutter.package_name }}.metrics import default_primary_metric

from .conftest import ROOT


def _config() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "configs" / "project.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.answers
def test_the_shipped_config_is_valid() -> None:
    project = load_project(ROOT / "configs" / "project.yaml")
    assert project.root == ROOT
    assert project.config.tracking.registered_model == "{{ cookiecutter.project_slug }}"


@pytest.mark.answers
def test_an_unknown_key_is_refused_by_name() -> None:
    config = _config()
    config["train"] = {**config["train"], "primary_metrc": "x"}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"train\.primary_metrc: unknown key"):
        parse_config(config)


@pytest.mark.answers
def test_a_renamed_key_names_its_new_name() -> None:
    config = _config()
    config["serve"] = {**config["serve"], "reload_seconds": 5}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"reload_seconds: .* serve\.registry_poll_seconds"):
        parse_config(config)


@pytest.mark.answers
def test_a_metric_of_the_other_task_is_refused() -> None:
    config = _config()
    wrong = "rmse" if config["train"]["task"] == "binary_classification" else "roc_auc"  # type: ignore[index]
    config["train"] = {**config["train"], "primary_metric": wrong}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=f"primary_metric '{wrong}' is not a"):
        parse_config(config)


@pytest.mark.answers
def test_the_shipped_config_gates_on_the_task_s_default_metric() -> None:
    config = load_project(ROOT / "configs" / "project.yaml").config
    assert config.train.primary_metric == default_primary_metric(config.train.task)


def test_every_task_is_accepted_with_its_own_metrics() -> None:
    for task in get_args(Task):
        config = parse_config(
            {
                "data": {"source": {"kind": "demo"}},
                "train": {
                    "task": task,
                    "model_family": "hist_gradient_boosting",
                    "primary_metric": default_primary_metric(task),
                },
                "tracking": {"experiment": "e", "registered_model": "m"},
            }
        )
        assert config.train.task == task


@pytest.mark.answers
def test_a_bad_value_names_its_field() -> None:
    config = _config()
    config["data"] = {"source": {"kind": "demo", "rows": -1}}
    with pytest.raises(ConfigError, match=r"data\.source\.demo\.rows"):
        parse_config(config)


def test_missing_and_malformed_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_project(tmp_path / "configs" / "absent.yaml")
    broken = tmp_path / "configs" / "project.yaml"
    broken.parent.mkdir()
    broken.write_text("data: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_project(broken)


@pytest.mark.answers
def test_the_tracking_uri_defaults_to_the_project_store_and_can_be_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(ROOT / "configs" / "project.yaml")
    assert project.tracking_uri == f"sqlite:///{ROOT / 'mlflow.db'}"
    assert project.uses_local_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert project.tracking_uri.endswith("elsewhere.db")
    assert not project.uses_local_store
