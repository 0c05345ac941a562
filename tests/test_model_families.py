"""The model families have one source, the generated package's `families/` modules: copier.yml's
choices, cookiecutter.json's list and docs/questions.md's table are generated from them
(tests/model_families.py, `nox -s families`) and must not drift."""

from __future__ import annotations

from pathlib import Path

import pytest

import model_families
from helpers import OPTION_SETS, load_copier_yml
from model_families import REPO_ROOT, Declared, declared, generated, offered


@pytest.mark.parametrize(
    "path", list(generated()), ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_a_generated_file_agrees_with_the_family_modules(path: Path) -> None:
    current, wanted = generated()[path]
    assert current == wanted, (
        f"{path.relative_to(REPO_ROOT)} disagrees with the family modules: run `nox -s families`"
    )


def test_the_template_offers_the_registered_families_and_renders_each() -> None:
    kinds = [family.kind for family in declared()]
    assert {"baseline", "hist_gradient_boosting", "linear"} <= set(kinds)
    question = load_copier_yml()["model_family"]
    assert list(question["choices"].values()) == [family.kind for family in offered()]
    assert question["default"] in question["choices"].values()
    rendered = {option.answers["model_family"] for option in OPTION_SETS}
    assert {family.kind for family in offered()} <= rendered


def test_a_module_that_breaks_the_declared_shape_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "__init__.py").write_text('SUPPORT_MODULES = ("base",)\n', encoding="utf-8")
    (tmp_path / "base.py").write_text("class Family: ...\n", encoding="utf-8")
    (tmp_path / "trees.py").write_text(
        'FAMILY = Family(kind="trees", title="Trees", offered=False)\n', encoding="utf-8"
    )
    monkeypatch.setattr(model_families, "FAMILIES_DIR", tmp_path)
    assert declared() == [Declared("trees", "Trees", offered=False)]

    (tmp_path / "forest.py").write_text(
        'FAMILY = Family(kind="woods", title="Forest")\n', encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"forest\.py: FAMILY's kind= must be .*'forest'"):
        declared()
    (tmp_path / "forest.py").write_text(
        "FAMILY = Family(kind=KIND, title='Forest')\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"forest\.py: kind must be a literal"):
        declared()
    (tmp_path / "forest.py").write_text("FAMILIES = {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"forest\.py: no FAMILY = Family"):
        declared()
