"""Fixtures: projects rendered from the template's working tree, once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import OPTION_SETS, OptionSet, render

# The slow tests' files, longest first: pytest-xdist hands tests out one at a time in collection
# order (noxfile.py), so the long tests start at once and the short ones fill the gaps, instead
# of one worker finishing a long test alone at the end.
LONGEST_FIRST = [
    "test_pipeline.py",
    "test_update.py",
    "test_shared_backends.py",
    "test_demo.py",
    "test_reliability.py",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        help="every slow option set runs its generated project's whole suite, lint and type check "
        "(by default only the first does; the others run what their answers change)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file is kept


@dataclass(frozen=True)
class Rendered:
    """A project rendered from one option set."""

    option: OptionSet
    path: Path

    @property
    def answers(self) -> dict[str, str]:
        return self.option.answers


@pytest.fixture(scope="session", params=OPTION_SETS, ids=[o.id for o in OPTION_SETS])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The template rendered with each option set (shared by every fast test)."""
    option: OptionSet = request.param
    base = tmp_path_factory.mktemp(f"render-{option.id}")
    return Rendered(option, render(base / option.answers["project_slug"], option.data))


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template rendered with every default answer."""
    return render(tmp_path_factory.mktemp("render-defaults") / "demo-ml-service", {})
