"""Fixtures: projects rendered from the template's working tree, once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import OPTION_SETS, OptionSet, render


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
