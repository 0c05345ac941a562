"""cookiecutter renders the same tree as copier, from one set of questions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from helpers import ANSWERS_FILE, HOSTILE, REPO_ROOT, iter_files, questions, render

COOKIECUTTER_JSON = REPO_ROOT / "template" / "cookiecutter.json"
# Keys of cookiecutter.json that are settings, not questions.
SETTINGS = {"__answers", "__prompts__", "_extensions"}

OTHER_ANSWERS = {
    "project_name": "Acme Churn & Risk: Scorer (v2)!",
    "python_version": "3.12",
    "task": "regression",
    "model_family": "linear",
    "data_source": "file",
    "data_path": "data/raw/events.parquet",
}


def cookiecutter_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(COOKIECUTTER_JSON.read_text(encoding="utf-8"))
    return loaded


def asked() -> dict[str, dict[str, Any]]:
    """copier's questions that a user answers (the computed `cookiecutter` one is not)."""
    return {name: spec for name, spec in questions().items() if spec.get("when") is not False}


def as_copier(expression: str) -> str:
    """A cookiecutter default with its `cookiecutter.` prefixes dropped, as copier writes it."""
    return expression.replace("cookiecutter.", "")


def test_the_questions_are_the_same_in_both_files() -> None:
    ours = cookiecutter_json()
    theirs = asked()
    assert [key for key in ours if key not in SETTINGS] == list(theirs)
    for name, spec in theirs.items():
        default = ours[name]
        if "choices" in spec:
            choices = spec["choices"]
            values = list(choices.values() if isinstance(choices, dict) else choices)
            assert sorted(default) == sorted(values), name
            assert default[0] == spec["default"], f"{name}: the default comes first"
        else:
            assert as_copier(default) == str(spec["default"]), name
        assert ours["__prompts__"][name] == spec["help"], name


def test_copier_maps_every_answer_into_the_cookiecutter_namespace() -> None:
    mapped = re.findall(r"^(\w+):", questions()["cookiecutter"]["default"], flags=re.MULTILINE)
    assert mapped == [key for key in cookiecutter_json() if key not in SETTINGS - {"__answers"}]


def render_with_cookiecutter(output: Path, answers: Mapping[str, str]) -> Path:
    project = cookiecutter(
        str(REPO_ROOT),
        directory="template",
        no_input=True,
        extra_context=dict(answers),
        output_dir=str(output),
        accept_hooks=True,
    )
    return Path(project)


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in iter_files(root)
        if path.name != ANSWERS_FILE
    }


@pytest.mark.parametrize(
    "answers", [{}, OTHER_ANSWERS, HOSTILE], ids=["defaults", "file-regression", "hostile"]
)
def test_cookiecutter_renders_the_same_tree_as_copier(
    answers: dict[str, str], tmp_path: Path
) -> None:
    by_copier = render(tmp_path / "copier" / "project", answers)
    by_cookiecutter = render_with_cookiecutter(tmp_path / "cookiecutter", answers)
    assert (by_copier / ANSWERS_FILE).is_file()
    assert not (by_cookiecutter / ANSWERS_FILE).exists()
    copier_tree, cookiecutter_tree = tree(by_copier), tree(by_cookiecutter)
    assert sorted(copier_tree) == sorted(cookiecutter_tree)
    differing = [name for name in copier_tree if copier_tree[name] != cookiecutter_tree[name]]
    assert not differing
    # Both ran the first-copy task: the project is committed.
    assert (by_cookiecutter / ".git").is_dir()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "json"}, "would shadow the standard-library module"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"project_slug": "9-lives"}, "The project slug must start with a lower-case letter"),
        ({"author_email": "nobody"}, "The author e-mail must look like name@domain.tld"),
        ({"author_email": 'a"b@c.de'}, "The author e-mail must look like name@domain.tld"),
        (
            {"project_name": "Acme\x85Scorer"},
            'a non-character (it contains "\\u0085")',
        ),
        ({"package_name": "click"}, '"click" is the import name of a package'),
        (
            {"data_source": "file", "data_path": "../events.csv"},
            "The data path must be relative to the project root",
        ),
    ],
)
def test_cookiecutter_refuses_what_copier_refuses(
    answers: dict[str, str], message: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render(tmp_path / "copier", answers)
    with pytest.raises(FailedHookException):
        render_with_cookiecutter(tmp_path / "cookiecutter", answers)
    assert message in capfd.readouterr().err
    assert not any((tmp_path / "cookiecutter").iterdir())
