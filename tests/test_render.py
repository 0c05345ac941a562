"""Fast tests: render the template with every option set and inspect the result."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import import_names
from conftest import Rendered
from helpers import (
    ANSWERS_FILE,
    REPO_ROOT,
    iter_texts,
    nox_command,
    render,
    subprocess_env,
)

JINJA_LEFTOVER = re.compile(r"\{\{|\{%|\{#")
WORKFLOWS = Path(".github") / "workflows"

# Import names of the generated project's dependencies, keyed by distribution name where the
# two differ. The package_name validator must refuse all of them.
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "pyyaml": "yaml",
    "pytest-xdist": "xdist",
    "xgboost-cpu": "xgboost",
}


def test_no_unrendered_jinja(rendered: Rendered) -> None:
    leftovers = []
    for relative, raw in iter_texts(rendered.path):
        # GitHub Actions expressions in workflows are meant to stay.
        text = raw.replace("${{", "") if relative.is_relative_to(WORKFLOWS) else raw
        leftovers += [
            f"{relative}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
            for m in JINJA_LEFTOVER.finditer(text)
        ]
        assert not JINJA_LEFTOVER.search(relative.as_posix()), f"unrendered path {relative}"
    assert not leftovers, "unrendered Jinja:\n" + "\n".join(leftovers)


def test_answers_file_records_the_answers(rendered: Rendered) -> None:
    answers_path = rendered.path / ANSWERS_FILE
    assert answers_path.is_file()
    text = answers_path.read_text(encoding="utf-8")
    assert text.startswith("# Changes here will be overwritten by Copier; do not edit by hand")
    recorded: dict[str, Any] = yaml.safe_load(text)
    assert Path(recorded["_src_path"]).resolve() == REPO_ROOT
    assert recorded.get("_commit"), "a git template records the commit it was rendered from"
    user_answers = {key: value for key, value in recorded.items() if not key.startswith("_")}
    # Computed and hidden questions (cookiecutter; data_path/schema_path for demo data) are
    # not recorded.
    assert user_answers == rendered.answers


def test_package_layout(rendered: Rendered) -> None:
    package = rendered.answers["package_name"]
    src = rendered.path / "src"
    assert sorted(p.name for p in src.iterdir() if p.is_dir()) == [package]
    assert (src / package / "__init__.py").is_file()
    for path in (rendered.path / "src").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m.split(".")[0] == "cookiecutter" for m in modules), path


def test_pyproject_matches_answers(rendered: Rendered) -> None:
    answers = rendered.answers
    pyproject = tomllib.loads((rendered.path / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert project["name"] == answers["project_slug"]
    assert project["description"] == answers["description"]
    assert project["requires-python"] == f">={answers['python_version']}"
    assert answers["package_name"] in project["scripts"]


def test_dependencies_cannot_be_shadowed(default_project: Path) -> None:
    """package_name must not shadow what the generated project installs (stubs aside)."""
    pyproject = tomllib.loads((default_project / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = list(pyproject["project"]["dependencies"])
    project_name = pyproject["project"]["name"]
    for group in pyproject.get("dependency-groups", {}).values():
        requirements += [r for r in group if isinstance(r, str)]
    refused = import_names.listed()
    for requirement in requirements:
        distribution = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()
        own = distribution == project_name  # the project's own extra: its model family's library
        if own or distribution.startswith("types-") or distribution.endswith("-stubs"):
            continue
        name = IMPORT_NAMES.get(distribution, distribution.replace("-", "_"))
        assert name in refused, f"package_name may shadow the dependency {name}"


def test_project_contract_files(rendered: Rendered) -> None:
    """The files the rest of the template's tooling relies on."""
    root = rendered.path
    package = rendered.answers["package_name"]
    assert (root / "configs" / "project.yaml").is_file()
    assert (root / "src" / package / "__main__.py").is_file()
    assert (root / "src" / package / "cli.py").is_file()
    listed = subprocess.run(
        nox_command("--list"),
        cwd=root,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # `* name -> docstring` for selected sessions, `- name -> ...` for the others.
    sessions = set(re.findall(r"^[*-] (\S+)", listed.stdout, flags=re.MULTILINE))
    assert {"lint", "typecheck", "tests", "pipeline", "batch-predict"} <= sessions


def test_files_parse(rendered: Rendered) -> None:
    for relative, text in iter_texts(rendered.path):
        try:
            if relative.suffix == ".py":
                ast.parse(text, filename=str(relative))
            elif relative.suffix in {".yaml", ".yml"}:
                list(yaml.safe_load_all(text))
            elif relative.suffix == ".toml":
                tomllib.loads(text)
            elif relative.suffix == ".json":
                json.loads(text)
        except (SyntaxError, yaml.YAMLError, tomllib.TOMLDecodeError, ValueError) as error:
            pytest.fail(f"{relative} does not parse: {error}")


@pytest.mark.parametrize(
    ("data", "question", "message"),
    [
        pytest.param(
            {"project_slug": "Bad Slug"},
            "project_slug",
            "The project slug must start with a lower-case letter and contain only lower-case "
            'letters, digits and "-".',
            id="slug",
        ),
        pytest.param(
            {"package_name": "class"},
            "package_name",
            '"class" is a Python keyword and cannot be a package name.',
            id="package-keyword",
        ),
        pytest.param(
            {"package_name": "json"},
            "package_name",
            '"json" would shadow the standard-library module of that name; '
            "choose another package name.",
            id="package-stdlib",
        ),
        pytest.param(
            {"package_name": "mlflow"},
            "package_name",
            '"mlflow" is the import name of a package the generated project installs; '
            "choose another package name.",
            id="package-dependency",
        ),
        pytest.param(
            {"package_name": "My-Package"},
            "package_name",
            "The package name must be a lower-case Python identifier: "
            'a letter, then letters, digits or "_".',
            id="package-identifier",
        ),
        pytest.param(
            {"project_name": "  "},
            "project_name",
            "The project name must not be empty.",
            id="name-empty",
        ),
        pytest.param(
            {"description": "One line\nand another"},
            "description",
            "The description must not contain a control character, a line break, a "
            'text-direction control or a non-character (it contains "\\n").',
            id="description-line-break",
        ),
        pytest.param(
            {"author_email": "not-an-email"},
            "author_email",
            "The author e-mail must look like name@domain.tld (letters, digits and "
            '!#$%&\'*+-/=?^_`|~. before the "@").',
            id="email",
        ),
        pytest.param(
            {"data_source": "file", "data_path": "data.txt"},
            "data_path",
            "The data path must end in .csv or .parquet.",
            id="data-path-suffix",
        ),
        pytest.param(
            {"data_source": "file", "data_path": "../outside/events.csv"},
            "data_path",
            'The data path must be relative to the project root (no leading "/" and no "..").',
            id="data-path-parent",
        ),
        pytest.param(
            {"data_source": "file", "schema_path": "/abs/schema.yaml"},
            "schema_path",
            'The schema path must be relative to the project root (no leading "/" and no "..").',
            id="schema-path-absolute",
        ),
        pytest.param(
            {"data_source": "file", "schema_path": "configs/schema.json"},
            "schema_path",
            "The schema path must end in .yaml or .yml.",
            id="schema-path-suffix",
        ),
    ],
)
def test_validators_refuse_bad_answers(
    tmp_path: Path, data: dict[str, str], question: str, message: str
) -> None:
    # copier raises a plain ValueError carrying the validator's rendered message.
    expected = f"Validation error for question '{question}': {message}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        render(tmp_path / "project", data)
    assert not (tmp_path / "project").exists()


def test_invalid_choice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Invalid choice for 'task': 'clustering'"):
        render(tmp_path / "project", {"task": "clustering"})


def _copier_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copier", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def test_cli_copy_with_defaults(tmp_path: Path) -> None:
    """The command the README gives. Without --vcs-ref it renders the latest tag, if any."""
    dst = tmp_path / "my-service"
    result = _copier_cli("copy", "--trust", "--defaults", str(REPO_ROOT), str(dst))
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((dst / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert answers["project_slug"] == "demo-ml-service"
    assert (dst / "pyproject.toml").is_file()
    assert "nox -s pipeline" in result.stdout + result.stderr  # _message_after_copy


def test_cli_reports_validation_errors(tmp_path: Path) -> None:
    dst = tmp_path / "my-service"
    result = _copier_cli(
        "copy", "--trust", "--defaults", "--data", "package_name=json", str(REPO_ROOT), str(dst)
    )
    assert result.returncode != 0
    assert '"json" would shadow the standard-library module' in result.stdout + result.stderr
    assert not dst.exists()
