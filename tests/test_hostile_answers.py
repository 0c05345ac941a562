"""Answers that are valid but hostile to the formats they land in render a project whose every
TOML, YAML and Python file parses and holds the answers as given; answers no file can hold are
refused with a message, never a traceback."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from check_answers import problems  # the script cookiecutter's pre-generation hook runs
from helpers import ANSWERS_FILE, HOSTILE, iter_files, missing_program, render

# Each is an answer the validators must refuse, with the words their message must contain.
CONTROLS = {
    "NUL": "\x00",
    "tab": "\t",
    "line feed": "\n",
    "carriage return": "\r",
    "escape": "\x1b",
    "DEL": "\x7f",
    "NEL": "\x85",
    "C1 CSI": "\x9b",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "right-to-left override": "\u202e",
    "first strong isolate": "\u2068",
    "lone surrogate": "\ud800",
    "non-character": "\ufffe",
}
FREE_TEXT = ["project_name", "description", "author_name", "author_email"]
PARSERS: dict[str, Callable[[str], object]] = {
    ".toml": tomllib.loads,
    ".yaml": lambda text: list(yaml.safe_load_all(text)),
    ".yml": lambda text: list(yaml.safe_load_all(text)),  # .copier-answers.yml and workflows
    ".py": ast.parse,
}
REFUSED: list[Any] = [
    *(
        pytest.param(
            {field: f"a{char}b@c.de" if field == "author_email" else f"a{char}b"},
            field,
            "must not contain a control character",
            id=f"{field}-{name.replace(' ', '-')}",
        )
        # Every character on one answer (the check is shared), three on each of the others.
        for field in FREE_TEXT
        for name, char in CONTROLS.items()
        if field == "project_name" or name in {"carriage return", "NEL", "lone surrogate"}
    ),
    pytest.param(
        {"data_source": "file", "data_path": "data/a\rb.csv"},
        "data_path",
        "must not contain a control character",
        id="data_path-carriage-return",
    ),
    pytest.param(
        {"data_source": "file", "schema_path": "configs/a\x85b.yaml"},
        "schema_path",
        "must not contain a control character",
        id="schema_path-NEL",
    ),
    pytest.param(
        {"project_name": "a" * 10_000},
        "project_name",
        "must be at most 64 characters long (it has 10000)",
        id="long-project-name",
    ),
    pytest.param(
        {"project_slug": "a" * 65, "package_name": "short"},
        "project_slug",
        "must be at most 64 characters long",
        id="long-slug",
    ),
    pytest.param(
        {"package_name": "a" * 65}, "package_name", "must be at most 64", id="long-package"
    ),
    pytest.param({"description": "d" * 513}, "description", "at most 512", id="long-description"),
    pytest.param({"author_email": 'a"b@c.de'}, "author_email", "name@domain.tld", id="email-quote"),
    pytest.param({"author_email": "a\\b@c.de"}, "author_email", "name@domain.tld", id="email-bs"),
    pytest.param({"author_email": "a b@c.de"}, "author_email", "name@domain.tld", id="email-space"),
    pytest.param({"author_email": "a@b@c.de"}, "author_email", "name@domain.tld", id="email-two-@"),
    pytest.param({"author_email": "a@-c.de"}, "author_email", "name@domain.tld", id="email-host"),
    pytest.param({"author_email": "a@c.d3"}, "author_email", "name@domain.tld", id="email-tld"),
    pytest.param({"author_name": "A, B"}, "author_name", 'must not contain ","', id="name-comma"),
    pytest.param({"author_name": " "}, "author_name", "must not be empty", id="name-blank"),
    # Dependencies of dependencies, of a dependency group and of the spark extra.
    *(
        pytest.param({"package_name": name}, "package_name", "is the import name", id=name)
        for name in ["click", "h11", "anyio", "jinja2", "google", "xdist", "py4j", "mypy"]
    ),
]


def answers_with_defaults(answers: dict[str, str]) -> dict[str, str]:
    """The answers copier's validators see when the rest are left at their defaults."""
    defaults = {
        "project_name": "Demo ML Service",
        "description": "A service.",
        "author_name": "ML Platform Team",
        "author_email": "ml-platform@example.com",
        "data_source": "demo",
        "data_path": "data/raw/events.csv",
        "schema_path": "configs/schema.yaml",
    }
    merged = {**defaults, **answers}
    merged.setdefault("project_slug", "demo-ml-service")
    merged.setdefault("package_name", merged["project_slug"].replace("-", "_"))
    return merged


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("hostile") / "project", HOSTILE)


def test_the_hostile_answers_are_accepted() -> None:
    assert problems(answers_with_defaults(HOSTILE)) == []


def test_every_toml_yaml_and_python_file_parses(hostile_project: Path) -> None:
    parsed = []
    for path in iter_files(hostile_project):
        parse = PARSERS.get(path.suffix)
        if parse is None:
            continue
        try:
            parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, tomllib.TOMLDecodeError, yaml.YAMLError) as error:
            pytest.fail(f"{path.relative_to(hostile_project)} does not parse: {error}")
        parsed.append(path.suffix)
    assert set(parsed) == set(PARSERS), "the walk found every kind of file"


def test_the_parsed_values_are_the_answers(hostile_project: Path) -> None:
    project = tomllib.loads((hostile_project / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["description"] == HOSTILE["description"]
    assert project["project"]["authors"] == [
        {"name": HOSTILE["author_name"], "email": HOSTILE["author_email"]}
    ]
    config_text = (hostile_project / "configs" / "project.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(config_text)
    assert config["data"]["source"]["path"] == HOSTILE["data_path"]
    assert config["data"]["source"]["schema_path"] == HOSTILE["schema_path"]
    # The name heads the file as a comment, and stays one.
    assert config_text.splitlines()[
        0
    ] == f"# {HOSTILE['project_name']}: project configuration, " + (
        "validated at load (unknown keys are refused)."
    )
    recorded = yaml.safe_load((hostile_project / ANSWERS_FILE).read_text(encoding="utf-8"))
    for name, answer in HOSTILE.items():
        assert recorded[name] == answer, name
    init = next((hostile_project / "src").glob("*/__init__.py"))
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")), clean=False)
    assert docstring is not None
    first, blank, description, *_ = docstring.split("\n")
    assert (first, blank, description) == (
        f"{HOSTILE['project_name'].strip()}.",
        "",
        HOSTILE["description"].strip(),
    )


def test_shell_commands_quote_the_paths(hostile_project: Path) -> None:
    readme = (hostile_project / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.startswith("nox -s demo-data"))
    assert shlex.split(line)[-4:] == [
        "--out",
        HOSTILE["data_path"],
        "--schema-out",
        HOSTILE["schema_path"],
    ]


def test_the_rendered_python_passes_the_projects_lint(hostile_project: Path) -> None:
    """The answers land in the package docstring as written: ruff (with the project's own
    configuration) neither flags their characters nor wants to reformat them."""
    ruff = shutil.which("ruff")
    if ruff is None:
        missing_program("ruff is not installed")
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [ruff, *check, "src"], cwd=hostile_project, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("answers", "question", "message"), REFUSED)
def test_the_validators_refuse(answers: dict[str, str], question: str, message: str) -> None:
    found = problems(answers_with_defaults(answers))
    assert [line.split(": ", 1)[0] for line in found] == [question], found
    assert message in found[0]
    # The message shows the character escaped, never raw.
    assert found[0].isprintable(), found


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "a" * 10_000}, "at most 64 characters long (it has 10000)"),
        ({"project_name": "Acme\u0085Scorer"}, 'it contains "\\u0085"'),
        ({"author_email": 'a"b@c.de'}, "must look like name@domain.tld"),
        ({"package_name": "click"}, '"click" is the import name of a package'),
    ],
    ids=["long-name", "NEL", "email-quote", "click"],
)
def test_copier_refuses_with_a_message(
    answers: dict[str, str], message: str, tmp_path: Path
) -> None:
    """copier itself, not only the hook's evaluation of its validators, stops with the message."""
    with pytest.raises(ValueError, match=re.escape(message)):
        render(tmp_path / "project", answers)
    assert not (tmp_path / "project").exists() or not any((tmp_path / "project").iterdir())
