"""The generated project's tests/answers.py names every file that the slow option sets' answers
change, so that `-m answers` (what the other option sets run, test_pipeline.py) cannot leave out a
test whose outcome their answers change."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from helpers import SLOW_OPTION_SETS, iter_files, render


def project_files(project: Path) -> dict[str, bytes]:
    return {path.relative_to(project).as_posix(): path.read_bytes() for path in iter_files(project)}


def answer_files(project: Path) -> frozenset[str]:
    """ANSWER_FILES of a rendered project's tests/answers.py (standard library and pytest only)."""
    spec = importlib.util.spec_from_file_location("rendered_answers", project / "tests/answers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names: frozenset[str] = module.ANSWER_FILES
    return names


def test_the_answer_files_cover_every_file_the_answers_change(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first, *others = SLOW_OPTION_SETS
    base = tmp_path_factory.mktemp("answer-files")
    expected = project_files(render(base / first.id / "project", first.data))
    declared = answer_files(base / first.id / "project")
    changed: dict[str, set[str]] = {}
    for option in others:
        files = project_files(render(base / option.id / "project", option.data))
        for name in expected.keys() | files.keys():
            if expected.get(name) != files.get(name):
                changed.setdefault(name, set()).add(option.id)
    assert changed, "the option sets render the same files: nothing for -m answers to select"
    missing = {name: sorted(ids) for name, ids in changed.items() if name not in declared}
    assert not missing, f"tests/answers.py's ANSWER_FILES lacks files the answers change: {missing}"
    stale = sorted(declared - expected.keys())
    assert not stale, f"ANSWER_FILES names files no render has: {stale}"
