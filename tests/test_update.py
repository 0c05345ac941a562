"""`copier update` over a real, tagged git history of the template.

The history is built in a temporary folder from the working tree: 0.1.0 is the tree as it was
before the `serve.reload_seconds` -> `serve.registry_poll_seconds` rename (the breaking change
that `_migrations` handles), 0.2.0 is the current tree, and 0.2.1 adds one line to the project's
README. A team renders 0.1.0, makes its own changes, and updates.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy, run_update

from helpers import ANSWERS_FILE, REPO_ROOT, nox_command, render, run_logged, subprocess_env

pytestmark = pytest.mark.slow
TIMEOUT = 30 * 60
PROJECT_TREE = Path("template") / "{{cookiecutter.project_slug}}"
NEW_KEY, OLD_KEY = "registry_poll_seconds", "reload_seconds"
README_LINE = "Rendered from template version 0.2.1 or later."
IDENTITY = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]
CONFLICT = re.compile(
    r"^<<<<<<< before updating\n(?P<ours>.*?)^=======\n(?P<theirs>.*?)^>>>>>>> after updating\n",
    re.MULTILINE | re.DOTALL,
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout


def commit_all(repo: Path, message: str, tag: str | None = None) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "--message", message)
    if tag:
        git(repo, "tag", tag)


def copy_working_tree(dst: Path) -> None:
    """The template's files as they are now, committed or not (ignored files excluded)."""
    listed = git(REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        src = REPO_ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text, f"{path.name}: the edit changed nothing"
    path.write_text(changed, encoding="utf-8")


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the template tagged 0.1.0, 0.2.0 and 0.2.1."""
    repo = tmp_path_factory.mktemp("template-history")
    copy_working_tree(repo)
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_all(repo, "Current tree")  # so that 0.2.0 can be restored from git below

    for path in (repo / PROJECT_TREE).rglob("*"):
        if path.is_file() and NEW_KEY in path.read_text(encoding="utf-8"):
            edit(path, lambda text: text.replace(NEW_KEY, OLD_KEY))
    commit_all(repo, "0.1.0: the serve key is still reload_seconds", tag="0.1.0")

    git(repo, "checkout", "--quiet", "HEAD~1", "--", ".")
    commit_all(repo, "0.2.0: rename serve.reload_seconds", tag="0.2.0")

    readme = repo / PROJECT_TREE / "README.md"
    edit(readme, lambda text: f"{text.rstrip()}\n\n{README_LINE}\n")
    commit_all(repo, "0.2.1: a line in the project's README", tag="0.2.1")
    return repo


def answers(project: Path) -> dict[str, str]:
    loaded: dict[str, str] = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))
    return loaded


def tool_env(tmp: Path) -> dict[str, str]:
    """pre-commit's `language: system` hooks call `python -m nox`: this interpreter's."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {"PATH": path, "PRE_COMMIT_HOME": str(tmp / "pre-commit-cache")}


def pre_commit(project: Path, env: Mapping[str, str], *hook: str) -> tuple[int, str]:
    """`pre-commit run [hook] --all-files`: its exit code and output."""
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", *hook, "--all-files", "--show-diff-on-failure"],
        cwd=project,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stdout + result.stderr


TEAM_TEST = (
    "\n\ndef test_the_team_trains_on_at_least_400_rows() -> None:\n"
    '    project = load_project(ROOT / "configs" / "project.yaml")\n'
    "    assert project.config.data.min_training_rows == 400\n"
)


def make_team_changes(project: Path) -> None:
    """A value the template also changes (a conflict to come), a value it does not, the team's
    own staging config, a new module with its test, and an edited test."""
    config = project / "configs" / "project.yaml"
    edit(config, lambda text: re.sub(rf"{OLD_KEY}: 10\b", f"{OLD_KEY}: 30", text))
    edit(config, lambda text: text.replace("min_training_rows: 500", "min_training_rows: 400"))
    staging = project / "configs" / "staging.yaml"
    staging.write_text(
        config.read_text(encoding="utf-8").replace(f"{OLD_KEY}: 30", f"{OLD_KEY}: 5"),
        encoding="utf-8",
    )
    # In the data layer: the project's architecture test wants every module in a layer.
    (project / "src" / "demo_ml_service" / "data" / "holidays.py").write_text(
        '"""Public holidays: the team\'s own feature source."""\n\n\n'
        "def is_holiday(day: str) -> bool:\n"
        '    return day.endswith("-12-25")\n',
        encoding="utf-8",
    )
    (project / "tests" / "test_holidays.py").write_text(
        "from demo_ml_service.data.holidays import is_holiday\n\n\n"
        "def test_christmas_is_a_holiday() -> None:\n"
        '    assert is_holiday("2025-12-25")\n',
        encoding="utf-8",
    )
    edit(project / "tests" / "test_config.py", lambda text: text + TEAM_TEST)


def test_update_keeps_the_teams_work_and_flags_conflicts(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("update")
    project = tmp / "demo-ml-service"
    log = tmp / "update.log"
    env = tool_env(tmp_path_factory.getbasetemp())
    run_copy(str(template_repo), project, defaults=True, unsafe=True, vcs_ref="0.1.0", quiet=True)
    assert answers(project)["_commit"] == "0.1.0"
    assert len(git(project, "log", "--oneline").splitlines()) == 1  # the copy task's commit

    make_team_changes(project)
    commit_all(project, "The team's changes")

    run_update(
        project, vcs_ref="0.2.0", defaults=True, overwrite=True, unsafe=True, conflict="inline"
    )

    # The update applied, and the copy-only task did not run again (no new commit).
    config = project / "configs" / "project.yaml"
    staging = project / "configs" / "staging.yaml"
    package = project / "src" / "demo_ml_service"
    test_config = project / "tests" / "test_config.py"
    assert answers(project)["_commit"] == "0.2.0"
    assert f"{NEW_KEY}: float" in (package / "config.py").read_text(encoding="utf-8")
    assert len(git(project, "log", "--oneline").splitlines()) == 2
    # The migration renamed the key in the team's own config file, value kept.
    staging_text = staging.read_text(encoding="utf-8")
    assert f"{NEW_KEY}: 5" in staging_text
    assert OLD_KEY not in staging_text
    # The team's edits survived.
    assert (package / "data" / "holidays.py").is_file()
    assert (project / "tests" / "test_holidays.py").is_file()
    test_config_text = test_config.read_text(encoding="utf-8")
    assert TEAM_TEST in test_config_text
    assert "def test_a_renamed_key_names_its_new_name" in test_config_text  # and the template's
    # A line both sides changed is an inline conflict, with the team's side already migrated.
    config_text = config.read_text(encoding="utf-8")
    assert "min_training_rows: 400" in config_text
    conflicts = list(CONFLICT.finditer(config_text))
    assert len(conflicts) == 1, config_text
    assert re.search(rf"{NEW_KEY}: 30\b", conflicts[0]["ours"])
    assert re.search(rf"{NEW_KEY}: 10\b", conflicts[0]["theirs"])

    # The generated pre-commit config catches the markers...
    code, output = pre_commit(project, env, "merge-conflict-markers")
    assert code == 1
    assert "configs/project.yaml" in output
    # ...and once the team keeps its side, every hook passes (lint, type check, conventions), and
    # so do the tests that the update merged: the team's own and the test file both sides edited.
    # The template's other tests are a fresh render's, which test_pipeline.py runs.
    resolved = CONFLICT.sub(lambda match: match["ours"], config_text)
    config.write_text(resolved, encoding="utf-8")
    git(project, "add", "--all")
    code, output = pre_commit(project, env)
    assert code == 0, output
    run_logged(
        nox_command("-s", "tests", "--", "tests/test_holidays.py", "tests/test_config.py"),
        cwd=project,
        log=log,
        timeout=TIMEOUT,
    )
    commit_all(project, "Update to template 0.2.0")

    # Migrations have no version gate: 0.2.0 -> 0.2.1 crosses no rename, yet a config added
    # since in the old form is migrated too, and the migrated files are left as they are.
    legacy = project / "configs" / "legacy.yaml"
    legacy.write_text(f"serve:\n  {OLD_KEY}: 7\n", encoding="utf-8")
    commit_all(project, "A config kept in the old format")
    migrated_staging = staging.read_text(encoding="utf-8")
    run_update(project, vcs_ref="0.2.1", defaults=True, overwrite=True, unsafe=True)
    assert answers(project)["_commit"] == "0.2.1"
    assert README_LINE in (project / "README.md").read_text(encoding="utf-8")
    assert legacy.read_text(encoding="utf-8") == f"serve:\n  {NEW_KEY}: 7\n"
    assert staging.read_text(encoding="utf-8") == migrated_staging


def test_rejected_hunks_are_caught_by_pre_commit(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("update-rej")
    project = tmp / "demo-ml-service"
    env = tool_env(tmp_path_factory.getbasetemp())
    run_copy(str(template_repo), project, defaults=True, unsafe=True, vcs_ref="0.1.0", quiet=True)
    config = project / "configs" / "project.yaml"
    edit(config, lambda text: re.sub(rf"{OLD_KEY}: 10\b", f"{OLD_KEY}: 30", text))
    commit_all(project, "The team's change")

    run_update(project, vcs_ref="0.2.0", defaults=True, overwrite=True, unsafe=True, conflict="rej")

    assert (project / "configs" / "project.yaml.rej").is_file()
    git(project, "add", "--all")  # as `git commit -a` would
    code, output = pre_commit(project, env, "no-rejected-hunks")
    assert code == 1
    assert "configs/project.yaml.rej" in output


def test_a_fresh_render_passes_every_pre_commit_hook_and_they_guard(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    project = render(tmp_path_factory.mktemp("pre-commit") / "demo-ml-service", {})
    env = tool_env(tmp_path_factory.getbasetemp())
    code, output = pre_commit(project, env)
    assert code == 0, output

    # Staged as a commit would take them: a model file and a key.
    (project / "models").mkdir()
    (project / "models" / "model.pkl").write_bytes(b"\x01" * 600_000)
    (project / "deploy.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", encoding="utf-8"
    )
    git(project, "add", "--all")
    for hook, name in [("large-files", "models/model.pkl"), ("private-keys", "deploy.pem")]:
        code, output = pre_commit(project, env, hook)
        assert code == 1, output
        assert name in output, output


def test_the_template_sessions_see_and_apply_a_newer_version(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("template-sessions")
    project = tmp / "demo-ml-service"
    log = tmp / "nox.log"
    run_copy(str(template_repo), project, defaults=True, unsafe=True, vcs_ref="0.2.0", quiet=True)

    # Behind: the project records a release tag, so the session compares tags, and says so.
    with pytest.raises(AssertionError, match="exited with 1"):
        run_logged(nox_command("-s", "template-check"), cwd=project, log=log, timeout=TIMEOUT)
    assert "compared tags (release tags): project 0.2.0, template 0.2.1" in log.read_text(
        encoding="utf-8"
    )

    run_logged(nox_command("-s", "template-update"), cwd=project, log=log, timeout=TIMEOUT)
    assert answers(project)["_commit"] == "0.2.1"
    assert README_LINE in (project / "README.md").read_text(encoding="utf-8")
    commit_all(project, "Update to template 0.2.1")
    run_logged(nox_command("-s", "template-check"), cwd=project, log=log, timeout=TIMEOUT)


# ------------------------------------------------------------------------------------------------
# The repository's real history, and every documented version, updated to what is submitted.
# ------------------------------------------------------------------------------------------------

CONFIG_PATH = PROJECT_TREE / "configs" / "project.yaml"
VERSION_ROW = re.compile(r"^\| (\d+(?:\.\d+)+) \|", re.MULTILINE)


def documented_versions() -> list[str]:
    """The versions of the table in docs/updating.md, oldest first."""
    table = (REPO_ROOT / "docs" / "updating.md").read_text(encoding="utf-8")
    return VERSION_ROW.findall(table)


@pytest.fixture(scope="module")
def real_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository with no tags, its working tree committed on top as HEAD.

    Tags are deleted so that every commit is untagged (0.0.0.postN), as in a fork, a branch or
    before the first release; the working tree is committed so that HEAD is what is submitted.
    """
    repo = tmp_path_factory.mktemp("real-history") / "template"
    git(REPO_ROOT.parent, "clone", "--quiet", "--no-local", str(REPO_ROOT), str(repo))
    assert git(repo, "rev-parse", "--is-shallow-repository").strip() == "false"
    for tag in git(repo, "tag", "--list").split():
        git(repo, "tag", "--delete", tag)
    for name in filter(None, git(repo, "ls-files", "-z").split("\0")):
        (repo / name).unlink(missing_ok=True)
    copy_working_tree(repo)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "--message", "Working tree")
    return repo


def before_rename(repo: Path) -> str:
    """The commit just before the rename: the parent of the first commit whose project.yaml has
    the new key (found by content, so the test survives rebases and new commits)."""
    found = git(repo, "log", "--reverse", "--format=%H", "-S", NEW_KEY, "--", str(CONFIG_PATH))
    rename = found.split()[0]
    return git(repo, "rev-parse", f"{rename}^").strip()


def test_an_untagged_project_is_migrated_when_it_crosses_the_rename(
    real_history: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The issue's scenario: render at the untagged commit before the rename, add a team config,
    `copier update --vcs-ref HEAD`; template-check compares commits before and after."""
    tmp = tmp_path_factory.mktemp("untagged")
    project = tmp / "demo-ml-service"
    log = tmp / "nox.log"
    old = before_rename(real_history)
    run_copy(str(real_history), project, defaults=True, unsafe=True, vcs_ref=old, quiet=True)
    recorded = answers(project)["_commit"]
    assert old.startswith(recorded), recorded  # no tag: copier records the commit itself
    if not (project / ".git").is_dir():  # older renders had no first-copy task: do as users did
        git(project, "init", "--quiet", "--initial-branch=main")
        commit_all(project, "Render from the template")
    config = project / "configs" / "project.yaml"
    assert re.search(rf"^  {OLD_KEY}: 10\b", config.read_text(encoding="utf-8"), re.MULTILINE)

    # The team's edits: its own staging config, a value the template leaves alone, a module.
    staging = project / "configs" / "staging.yaml"
    staging.write_text(
        f"# The team's staging overrides.\nserve:\n  port: 8080\n  {OLD_KEY}: 5  # fast\n",
        encoding="utf-8",
    )
    edit(config, lambda text: text.replace("seed: 42", "seed: 7"))
    holidays = project / "src" / "demo_ml_service" / "holidays.py"
    holidays.write_text('"""The team\'s own module."""\n', encoding="utf-8")
    commit_all(project, "The team's changes")

    head = git(real_history, "rev-parse", "HEAD").strip()
    run_update(
        project, vcs_ref="HEAD", defaults=True, overwrite=True, unsafe=True, conflict="inline"
    )

    assert head.startswith(answers(project)["_commit"])
    assert staging.read_text(encoding="utf-8") == (
        f"# The team's staging overrides.\nserve:\n  port: 8080\n  {NEW_KEY}: 5  # fast\n"
    )
    config_text = config.read_text(encoding="utf-8")
    assert "seed: 7" in config_text
    assert re.search(rf"^  {NEW_KEY}: 10\b", config_text, re.MULTILINE)
    assert OLD_KEY not in config_text
    assert not CONFLICT.search(config_text)
    assert holidays.read_text(encoding="utf-8") == '"""The team\'s own module."""\n'
    for path in (project / "configs").glob("*.yaml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))  # still YAML

    commit_all(project, "Update from the template")

    # From now on the project's own sessions compare commits of the branch, and say so: current,
    # then behind by one template commit (a version comparison sees 0.0.0.postN on both sides).
    recorded = answers(project)["_commit"]
    run_logged(nox_command("-s", "template-check"), cwd=project, log=log, timeout=TIMEOUT)
    compared = f"compared commits (branch HEAD): project {recorded}, template {head[:12]}"
    assert compared in log.read_text(encoding="utf-8")
    readme = real_history / PROJECT_TREE / "README.md"
    edit(readme, lambda text: f"{text.rstrip()}\n\n{README_LINE}\n")
    commit_all(real_history, "A line in the project's README")
    with pytest.raises(AssertionError, match="exited with 1"):
        run_logged(nox_command("-s", "template-check"), cwd=project, log=log, timeout=TIMEOUT)
    tip = git(real_history, "rev-parse", "HEAD").strip()
    compared = f"compared commits (branch HEAD): project {recorded}, template {tip[:12]}"
    assert compared in log.read_text(encoding="utf-8")
    run_logged(nox_command("-s", "template-update"), cwd=project, log=log, timeout=TIMEOUT)
    assert tip.startswith(answers(project)["_commit"])
    assert README_LINE in (project / "README.md").read_text(encoding="utf-8")


def project_files(project: Path, *, besides: set[str]) -> dict[str, bytes]:
    """Every file of a project but its git data and the files named in `besides`."""
    found = {}
    for path in sorted(project.rglob("*")):
        name = path.relative_to(project).as_posix()
        if path.is_file() and ".git" not in path.relative_to(project).parts and name not in besides:
            found[name] = path.read_bytes()
    return found


def test_every_documented_version_updates_to_head(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each version of docs/updating.md's table, tagged in the temporary history, updates to
    HEAD with its old-form team config migrated, and leaves exactly the files a fresh render of
    HEAD has (the team's config and the answers file aside). So each updated project's own
    `nox -s tests` is the run test_pipeline.py makes on a fresh render, and is not run again."""
    versions = documented_versions()
    assert versions
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))
    tags = git(template_repo, "tag", "--list").split()
    assert set(versions) <= set(tags), f"tag every documented version in template_repo: {tags}"
    head = git(template_repo, "describe", "--tags", "--always", "HEAD").strip()
    fresh = tmp_path_factory.mktemp("fresh") / "demo-ml-service"
    run_copy(str(template_repo), fresh, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    besides = {ANSWERS_FILE, "configs/staging.yaml"}
    expected = project_files(fresh, besides=besides)
    for version in versions:
        tmp = tmp_path_factory.mktemp(f"from-{version}")
        project = tmp / "demo-ml-service"
        run_copy(
            str(template_repo), project, defaults=True, unsafe=True, vcs_ref=version, quiet=True
        )
        staging = project / "configs" / "staging.yaml"
        staging.write_text(f"serve:\n  {OLD_KEY}: 5\n", encoding="utf-8")
        commit_all(project, "A team config in the oldest form")
        run_update(project, vcs_ref="HEAD", defaults=True, overwrite=True, unsafe=True)
        assert answers(project)["_commit"] == head, version
        assert staging.read_text(encoding="utf-8") == f"serve:\n  {NEW_KEY}: 5\n", version
        for path, text in ((p, p.read_text(encoding="utf-8")) for p in project.glob("configs/*")):
            assert OLD_KEY not in text, (version, path)
            assert not CONFLICT.search(text), (version, path)
        updated = project_files(project, besides=besides)
        differ = sorted(
            name
            for name in expected.keys() | updated.keys()
            if expected.get(name) != updated.get(name)
        )
        assert not differ, f"updating from {version} left files unlike a fresh render: {differ}"


def workflow_steps(project: Path) -> list[dict[str, Any]]:
    """The steps of the generated template-update workflow's one job."""
    path = project / ".github" / "workflows" / "template-update.yml"
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def test_the_update_workflow_commits_and_a_conflict_fails_the_checks(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The workflow's own `run` steps, read from its YAML, run in a clone as actions/checkout
    would leave it. Left out: the `uses:` steps (the test's Python already has nox and uv), the
    pip install, and the step that pushes and opens the pull request (the GitHub API)."""
    tmp = tmp_path_factory.mktemp("workflow")
    project = tmp / "demo-ml-service"
    run_copy(str(template_repo), project, defaults=True, unsafe=True, vcs_ref="0.1.0", quiet=True)
    config = project / "configs" / "project.yaml"
    edit(config, lambda text: re.sub(rf"{OLD_KEY}: 10\b", f"{OLD_KEY}: 30", text))  # a conflict
    commit_all(project, "The team's change")
    clone = tmp / "checkout"
    git(tmp, "clone", "--quiet", str(project), str(clone))
    team_commit = git(clone, "rev-parse", "HEAD").strip()

    outputs, summary, log = tmp / "github-output", tmp / "summary.md", tmp / "steps.log"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs)}
    env |= {"GITHUB_STEP_SUMMARY": str(summary), **tool_env(tmp_path_factory.getbasetemp())}
    ran, published = [], []
    for step in workflow_steps(clone):
        run = step.get("run")
        if not isinstance(run, str) or run.startswith("python -m pip install"):
            continue
        if "template-publish" in run:
            published.append(step)
            continue
        # GitHub expressions (`${{ vars.X }}`) are unset here, as they are when X is not defined.
        step_env = {k: str(v) for k, v in (step.get("env") or {}).items() if "${{" not in str(v)}
        run_logged(["bash", "-c", run], cwd=clone, log=log, timeout=TIMEOUT, env=env | step_env)
        ran.append(run)
    assert ran == ["nox -s template-update"]
    (publish,) = published
    assert publish["if"] == "steps.update.outputs.updated == 'true'"
    assert "updated=true" in outputs.read_text(encoding="utf-8").splitlines()

    # The commit it would push: on `template-update`, over the team's commit, nothing left out.
    assert git(clone, "branch", "--show-current").strip() == "template-update"
    assert git(clone, "rev-parse", "HEAD~1").strip() == team_commit
    assert git(clone, "status", "--porcelain") == ""
    message = git(clone, "log", "-1", "--format=%B")
    assert message.startswith("Update from the template to 0.2.1"), message
    assert "compared tags (release tags): project 0.1.0, template 0.2.1" in message
    assert "- configs/project.yaml" in message
    assert "configs/project.yaml" in summary.read_text(encoding="utf-8")
    assert answers(clone)["_commit"] == "0.2.1"

    # The project's checks fail on the committed conflict, and name the file.
    with pytest.raises(AssertionError, match="exited with 1"):
        run_logged(nox_command("-s", "lint"), cwd=clone, log=log, timeout=TIMEOUT)
    assert "unresolved conflict markers" in log.read_text(encoding="utf-8")
    assert "configs/project.yaml" in log.read_text(encoding="utf-8").split("conflict markers")[-1]
