"""The generated GitHub workflows: clean under zizmor, the workflow schema and actionlint, thin
(every step that does work is a `nox -s` session), and every session they call exists."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO_ROOT, SLOW_OPTION_SETS

WORKFLOWS = ("ci.yml", "monitor.yml", "continual-training.yml", "template-update.yml")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


# Every workflow, generated or the template's own, must pass all three (all work offline).
LINTERS = pytest.mark.parametrize(
    "command",
    [
        ["zizmor", "--offline", "--no-progress", "--min-severity", "informational"],
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"],
        ["actionlint", "-no-color"],
    ],
    ids=["zizmor", "check-jsonschema", "actionlint"],
)


def _lint(command: list[str], files: list[Path], cwd: Path) -> None:
    done = subprocess.run(
        [_tool(command[0]), *command[1:], *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed in the test environment")
    return found


def _workflows(project: Path) -> list[Path]:
    return [project / ".github" / "workflows" / name for name in WORKFLOWS]


def _sessions(project: Path) -> set[str]:
    """Session names declared in the generated noxfile (`@nox.session(name=...)` or the def)."""
    names = set()
    for node in ast.walk(ast.parse((project / "noxfile.py").read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if ast.unparse(target) != "nox.session":
                continue
            name = node.name
            if isinstance(decorator, ast.Call):
                for keyword in decorator.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        name = str(keyword.value.value)
            names.add(name)
    return names


def test_every_workflow_exists_and_parses(default_project: Path) -> None:
    for path in _workflows(default_project):
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path


@LINTERS
def test_linters_find_nothing(default_project: Path, command: list[str]) -> None:
    _lint(command, _workflows(default_project), cwd=default_project)


def test_workflows_are_least_privilege_pinned_bounded_and_thin(default_project: Path) -> None:
    sessions = _sessions(default_project)
    for path in _workflows(default_project):
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert workflow["permissions"] == {"contents": "read"}, path.name
        assert "concurrency" in workflow, path.name
        for name, job in workflow["jobs"].items():
            if "uses" in job:  # a reusable workflow of this repository
                assert job["uses"].startswith("$/.github/workflows/"), name
                continue
            assert job["timeout-minutes"] <= 60, name
            for step in job["steps"]:
                if "uses" in step:
                    assert PINNED.match(step["uses"]), step["uses"]
                    continue
                run = step["run"]
                called = re.findall(r"nox -s ([\w-]+)", run)
                assert called or run == "python -m pip install nox uv", run
                assert set(called) <= sessions, (
                    f"{path.name} calls {called}; noxfile has {sessions}"
                )


# The template repository's own CI.
REPO_CI = REPO_ROOT / ".github" / "workflows" / "ci.yml"


@LINTERS
def test_the_template_ci_is_clean(command: list[str]) -> None:
    _lint(command, [REPO_CI], cwd=REPO_ROOT)


def test_the_template_ci_runs_every_test_and_only_real_sessions() -> None:
    workflow = yaml.safe_load(REPO_CI.read_text(encoding="utf-8"))
    assert workflow["permissions"] == {"contents": "read"}
    sessions = _sessions(REPO_ROOT)
    runs = []
    for name, job in workflow["jobs"].items():
        assert job["timeout-minutes"] <= 60, name
        for step in job["steps"]:
            if "uses" in step:
                assert PINNED.match(step["uses"].split(" ")[0]), step["uses"]
            else:
                runs.append(step["run"])
    called = {session for run in runs for session in re.findall(r"nox -s ([\w-]+)", run)}
    assert called <= sessions
    assert {"lint", "tests"} <= called
    # The matrix names every slow option set, and the jobs between them run every test file:
    # fast tests, test_pipeline.py per option set (each its whole generated suite), and every
    # other slow test.
    matrix = workflow["jobs"]["projects"]["strategy"]["matrix"]["option"]
    assert matrix == [option.id for option in SLOW_OPTION_SETS]
    assert 'nox -s tests -- -m "not slow"' in runs
    assert 'nox -s tests -- tests/test_pipeline.py -k "$OPTION" --full-matrix' in runs
    assert "nox -s tests -- -m slow --ignore tests/test_pipeline.py" in runs
