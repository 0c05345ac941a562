"""Static checks of copier.yml and of the template tree (nothing is rendered here)."""

from __future__ import annotations

import ast
import keyword
import re
import sys
from pathlib import Path

import jinja2
import pytest
from jinja2 import meta

from helpers import OPTION_SETS, TEMPLATE_DIR, iter_files, load_copier_yml, questions, read_text

# Module names the fixed list in copier.yml deliberately keeps although newer Pythons dropped them.
REMOVED_AFTER_PY311 = {
    "aifc", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "crypt", "distutils",
    "imghdr", "imp", "lib2to3", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes",
    "smtpd", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib",
}  # fmt: skip


def _validator_list(question: str, variable: str) -> list[str]:
    """A list literal `{% set <variable> = [...] %}` inlined in a question's validator."""
    validator: str = questions()[question]["validator"]
    match = re.search(rf"set {variable} = (\[.*?\])", validator, flags=re.DOTALL)
    assert match, f"no `set {variable} = [...]` in the {question} validator"
    names: list[str] = ast.literal_eval(match.group(1))
    return names


def test_configuration_block() -> None:
    config = load_copier_yml()
    assert config["_min_copier_version"] == "9.4"
    assert config["_envops"] == {"undefined": "jinja2.StrictUndefined"}
    assert config["_templates_suffix"] == ""
    assert config["_answers_file"] == ".copier-answers.yml"
    assert config["_subdirectory"] == (
        "template/{% raw %}{{cookiecutter.project_slug}}{% endraw %}"
    )
    assert TEMPLATE_DIR.is_dir()


def test_stdlib_list_is_generated_from_sys() -> None:
    inlined = _validator_list("package_name", "stdlib")
    assert inlined == sorted(inlined), "keep the list sorted"
    current = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    if sys.version_info[:2] == (3, 11):
        regenerated = sorted(current)
        assert inlined == regenerated, f"regenerate the list in copier.yml: {regenerated}"
    # On later Pythons the 3.11 list is a superset: only modules removed since then are extra.
    assert current <= set(inlined), f"missing from copier.yml: {sorted(current - set(inlined))}"
    assert set(inlined) - current <= REMOVED_AFTER_PY311


def test_keyword_list_matches_python() -> None:
    inlined = _validator_list("package_name", "keywords")
    # "False", "None" and "True" already fail the lower-case identifier check.
    assert inlined == [kw for kw in keyword.kwlist if kw.islower()]


def test_cookiecutter_mapping_covers_every_question() -> None:
    spec = questions()
    computed = spec.pop("cookiecutter")
    assert computed["type"] == "yaml"
    assert computed["when"] is False
    keys = re.findall(r"^(\w+):", computed["default"], flags=re.MULTILINE)
    assert keys == [*spec, "__answers"], "map every question, in order, then __answers"
    assert '__answers: ".copier-answers.yml"' in computed["default"]


def test_option_sets_cover_every_choice() -> None:
    for name, spec in questions().items():
        choices = spec.get("choices")
        if not choices:
            continue
        values = set(choices.values() if isinstance(choices, dict) else choices)
        used = {o.answers[name] for o in OPTION_SETS}
        assert values <= used, f"no option set renders {name}={sorted(values - used)}"


def test_option_set_ids_are_unique() -> None:
    ids = [o.id for o in OPTION_SETS]
    assert len(ids) == len(set(ids))


def _template_sources() -> list[pytest.ParameterSet]:
    """One parameter per template path (its name is a template too) and per text file."""
    sources: list[pytest.ParameterSet] = []
    for path in iter_files(TEMPLATE_DIR):
        relative = path.relative_to(TEMPLATE_DIR)
        sources.append(pytest.param(relative, relative.as_posix(), id=f"path:{relative}"))
        text = read_text(path)
        if text is not None:
            sources.append(pytest.param(relative, text, id=f"file:{relative}"))
    return sources


@pytest.mark.parametrize(("where", "source"), _template_sources())
def test_template_uses_only_the_cookiecutter_namespace(where: Path, source: str) -> None:
    """Template files must render with cookiecutter too: no copier-only variables."""
    allowed = {"cookiecutter"}
    if where.name.startswith("{% if cookiecutter.__answers %}"):
        allowed.add("_copier_answers")  # the answers file is written by copier only
    # copier's filters (it loads jinja2-ansible-filters) plus cookiecutter's own ones.
    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 (only parsed, never rendered to HTML)
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
    )
    env.filters.update(dict.fromkeys(["jsonify", "slugify", "random_ascii_string"], str))
    undeclared = meta.find_undeclared_variables(env.parse(source))
    assert undeclared <= allowed, f"{where} uses {sorted(undeclared - allowed)}"


def test_migrations_run_on_every_update_and_exist() -> None:
    """No migration is gated on a version: untagged templates are 0.0.0.postN at every commit, so
    a gate would never open for forks, branches or the time before a release. Each entry runs an
    idempotent script from hooks/ after the merge (docs/updating.md, "How to write a migration")."""
    migrations = load_copier_yml()["_migrations"]
    assert migrations
    for migration in migrations:
        assert "version" not in migration, migration
        assert migration["when"] == "{{ _stage == 'after' }}", migration
        script = migration["command"][1].replace("{{ _copier_conf.src_path }}/", "")
        assert script.startswith("hooks/")
        assert (TEMPLATE_DIR.parent.parent / script).is_file()
