"""The scripts in hooks/ that copier's tasks and migrations (and cookiecutter's hooks) run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT, render
from rename_config_keys import main as rename_main
from rename_config_keys import parse_renames, rename_keys

RENAME: dict[tuple[str, ...], str] = {("serve", "reload_seconds"): "registry_poll_seconds"}

CONFIG = """\
serve:                    # the online service
  host: 127.0.0.1
  reload_seconds: 30      # the team's value
  nested:
    reload_seconds: 1     # a deeper key of the same name: not the section's
monitor:
  reload_seconds: 2       # another section's key of the same name
"""


def test_a_key_is_renamed_only_where_it_is_a_child_of_its_section() -> None:
    migrated = rename_keys(CONFIG, RENAME)
    assert migrated == CONFIG.replace("  reload_seconds: 30", "  registry_poll_seconds: 30", 1)
    assert rename_keys(migrated, RENAME) == migrated  # idempotent


def test_a_key_inside_an_update_conflict_is_renamed_on_both_sides() -> None:
    conflicted = (
        "serve:\n"
        "<<<<<<< before updating\n"
        "  reload_seconds: 30\n"
        "=======\n"
        "  registry_poll_seconds: 10\n"
        ">>>>>>> after updating\n"
        "  host: 127.0.0.1\n"
    )
    migrated = rename_keys(conflicted, RENAME)
    assert "  registry_poll_seconds: 30\n" in migrated
    assert "reload_seconds" not in migrated


def test_a_key_deeper_down_is_renamed_only_under_its_own_parents() -> None:
    config = (
        "train:\n"
        "  leakage:                # the team's comment\n"
        "    threshold: 0.995\n"
        "    max_shared_share: 0.3  # raised for a coarse table\n"
        "    allow: {}\n"
        "  max_shared_share: 1     # a key of the same name, one level up\n"
        "monitor:\n"
        "  leakage:\n"
        "    max_shared_share: 2   # the same path under another section\n"
    )
    renames = parse_renames(["train.leakage.max_shared_share=train.leakage.max_excess_share"])
    assert renames == {("train", "leakage", "max_shared_share"): "max_excess_share"}
    migrated = rename_keys(config, renames)
    assert migrated == config.replace("    max_shared_share: 0.3", "    max_excess_share: 0.3", 1)
    assert rename_keys(migrated, renames) == migrated  # idempotent


def test_every_config_file_of_the_team_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = tmp_path / "configs"
    (configs / "env").mkdir(parents=True)
    (configs / "project.yaml").write_text(CONFIG, encoding="utf-8")
    (configs / "env" / "staging.yml").write_text("serve:\n  reload_seconds: 5\n", encoding="utf-8")
    (configs / "notes.txt").write_text("serve:\n  reload_seconds: 5\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert rename_main(["serve.reload_seconds=serve.registry_poll_seconds"]) == 0
    assert "registry_poll_seconds: 30" in (configs / "project.yaml").read_text(encoding="utf-8")
    staging = (configs / "env" / "staging.yml").read_text(encoding="utf-8")
    assert staging == "serve:\n  registry_poll_seconds: 5\n"
    assert "reload_seconds" in (configs / "notes.txt").read_text(encoding="utf-8")  # not YAML


def test_on_a_migrated_project_the_migration_changes_and_says_nothing(
    default_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Migrations run on every update (no version gate), so on a fresh render, which already
    has the new form, the script must leave every file byte for byte and print nothing."""
    before = {p: p.read_bytes() for p in (default_project / "configs").rglob("*") if p.is_file()}
    monkeypatch.chdir(default_project)
    every_rename = [
        "serve.reload_seconds=serve.registry_poll_seconds",
        "train.leakage.max_shared_share=train.leakage.max_excess_share",
    ]
    assert rename_main(every_rename) == 0
    assert capsys.readouterr().out == ""
    assert {p: p.read_bytes() for p in before} == before


def test_a_rename_across_sections_is_refused() -> None:
    with pytest.raises(ValueError, match=r"section\.old_key=section\.new_key"):
        parse_renames(["serve.reload_seconds=monitor.reload_seconds"])
    with pytest.raises(ValueError, match=r"section\.old_key=section\.new_key"):
        parse_renames(["reload_seconds"])


def test_a_project_rendered_inside_a_repository_is_not_made_a_repository(
    tmp_path: Path,
) -> None:
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    project = render(tmp_path / "services" / "demo-ml-service", {})
    assert (project / "pyproject.toml").is_file()
    assert not (project / ".git").exists()


def test_the_first_copy_task_uses_the_authors_identity_when_git_has_none(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# Project\n", encoding="utf-8")
    empty_config = tmp_path / "gitconfig"
    empty_config.touch()
    env = {
        "GIT_CONFIG_GLOBAL": str(empty_config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
    }
    script = REPO_ROOT / "hooks" / "post_copy.py"
    subprocess.run(
        [sys.executable, str(script), "Zoë O'Brien", "zoe@example.org"],
        cwd=project,
        env={**env, "PATH": os.environ["PATH"]},
        check=True,
    )
    author = subprocess.run(
        ["git", "log", "--format=%an <%ae>"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert author.stdout.strip() == "Zoë O'Brien <zoe@example.org>"
