"""tests/answers.py: with --check-answers, a test that reads a file the template's answers shape
must say so.

The template runs only `pytest -m answers` in its other rendered option sets, so an unmarked test
that depends on the answers would silently go untested there. Each way of reading is tried in a
separate pytest run: at import, in a fixture shared with a later test, in the body, and as a
subprocess's argument."""

from __future__ import annotations

import pytest

from .answers import ROOT

CONFIG = ROOT / "configs" / "project.yaml"
INI = """
[pytest]
markers =
    answers: depends on the template's answers
"""
READERS = """
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = Path({config!r})


@pytest.fixture(scope="module")
def config_text() -> str:
    return CONFIG.read_text(encoding="utf-8")


def test_reads_in_its_body() -> None:
    CONFIG.read_text(encoding="utf-8")


def test_sets_up_a_fixture_that_reads(config_text: str) -> None:
    assert config_text


def test_uses_that_fixture_after_it_was_set_up(config_text: str) -> None:
    assert config_text


def test_hands_the_file_to_a_subprocess() -> None:
    subprocess.run([sys.executable, "-c", "pass", str(CONFIG)], check=True)


def test_reads_nothing_the_answers_shape(tmp_path: Path) -> None:
    (tmp_path / "own.yaml").write_text("mine: 1\\n", encoding="utf-8")


@pytest.mark.answers
def test_reads_and_says_so() -> None:
    CONFIG.read_text(encoding="utf-8")
"""
AT_IMPORT = """
from pathlib import Path

TEXT = Path({config!r}).read_text(encoding="utf-8")


def test_in_a_module_that_read_at_import() -> None:
    assert TEXT
"""
UNMARKED = [
    "test_readers.py::test_reads_in_its_body",
    "test_readers.py::test_sets_up_a_fixture_that_reads",
    "test_readers.py::test_uses_that_fixture_after_it_was_set_up",
    "test_readers.py::test_hands_the_file_to_a_subprocess",
    "test_at_import.py::test_in_a_module_that_read_at_import",
]


def test_every_way_of_reading_an_answer_file_needs_the_marker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_readers=READERS.format(config=str(CONFIG)),
        test_at_import=AT_IMPORT.format(config=str(CONFIG)),
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # so that `-p tests.answers` imports
    plugin = ["-p", "tests.answers", "-p", "no:cacheprovider"]

    checked = pytester.runpytest_subprocess(*plugin, "--check-answers")
    checked.assert_outcomes(passed=2, failed=len(UNMARKED))
    output = checked.stdout.str()
    for nodeid in UNMARKED:
        assert f"{nodeid} reads configs/project.yaml, which the template's answers shape" in output

    # Without the option (a team running its own suite) nothing is checked.
    pytester.runpytest_subprocess(*plugin).assert_outcomes(passed=2 + len(UNMARKED))
