from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.conventions import check

from .conftest import ROOT


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The project's own tree (no caches), to break in ways the real one must never be."""
    target = tmp_path / "project"
    outputs = {".git", ".nox", ".venv", "mlruns", "mlflow.db", "data", "reports", "logs"}

    def skip(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {n for n in names if "cache" in n or (top and n in outputs)}

    shutil.copytree(ROOT, target, ignore=skip)
    return target


def _edit(path: Path, change: dict[str, object]) -> None:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[key] = value
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def test_the_project_as_generated_passes(copy: Path) -> None:
    assert check(copy) == {name: [] for name in check(copy)}


def test_a_weaker_policy_fails_unless_an_override_says_why(copy: Path) -> None:
    _edit(copy / "configs" / "project.yaml", {"promotion.alpha": 0.2})
    failures = check(copy)["promotion policy floor"]
    assert len(failures) == 1
    assert "promotion.alpha 0.2 is looser than the floor 0.05" in failures[0]
    _edit(
        copy / "configs" / "governance.yaml",
        {"overrides": [{"rule": "max_alpha", "reason": "pilot with 50 users, agreed in review"}]},
    )
    assert check(copy)["promotion policy floor"] == []


def test_missing_docs_and_answers_are_named(copy: Path) -> None:
    (copy / "docs" / "runbook.md").unlink()
    (copy / ".copier-answers.yml").unlink()
    failures = check(copy)
    assert failures["required files"] == [
        "docs/runbook.md is required by the team's conventions and is missing."
    ]
    assert "missing" in failures["answers file"][0]


def test_unpinned_actions_and_broad_permissions_fail(copy: Path) -> None:
    workflow = copy / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text(encoding="utf-8")
    text = text.replace(
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "actions/checkout@v4"
    )
    workflow.write_text(text.replace("contents: read", "contents: write", 1), encoding="utf-8")
    failures = check(copy)["workflow hardening"]
    assert any("actions/checkout@v4, which is not pinned" in f for f in failures)
    assert any("ci.yml must grant only `contents: read`" in f for f in failures)


def test_large_committed_files_fail(copy: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=copy, check=True)
    (copy / "model.bin").write_bytes(b"\0" * 3_000_000)
    subprocess.run([*git, "add", "-A"], cwd=copy, check=True)
    failures = check(copy)["committed file sizes"]
    assert failures == [
        "model.bin is 3,000,000 bytes, over 2,000,000: keep data and models out of git."
    ]
