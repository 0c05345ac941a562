"""The team's conventions, checked in CI: each failure is explained in one sentence.

Not a stage of the model's data flow: a guard on the repository itself, run by
`nox -s conventions` in `ci.yml` and by the pre-commit hook.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .config import GOVERNANCE, ConfigError, load_governance, load_project

REQUIRED = (
    "configs/project.yaml",
    "docs/model-card.md",
    "docs/runbook.md",
    "src/{{ cookiecutter.package_name }}/data",
    "src/{{ cookiecutter.package_name }}/features.py",
    "src/{{ cookiecutter.package_name }}/train",
    "src/{{ cookiecutter.package_name }}/promote",
    "src/{{ cookiecutter.package_name }}/serve",
    "src/{{ cookiecutter.package_name }}/monitor",
    ".github/workflows/ci.yml",
)
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
Check = Callable[[Path], list[str]]


def answers_intact(root: Path) -> list[str]:
    path = root / ".copier-answers.yml"
    if not path.exists():
        return [".copier-answers.yml is missing, so `copier update` cannot find the template."]
    answers: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(answers, dict) or not {"_src_path", "_commit"} <= set(answers):
        return [".copier-answers.yml lacks _src_path or _commit: restore it from git history."]
    if answers.get("package_name") and not (root / "src" / answers["package_name"]).is_dir():
        return [f"the answers name package {answers['package_name']!r}, which src/ does not hold."]
    return []


def required_files(root: Path) -> list[str]:
    return [
        f"{name} is required by the team's conventions and is missing."
        for name in REQUIRED
        if not (root / name).exists()
    ]


def policy_floor(root: Path) -> list[str]:
    try:
        policy = load_project(root / "configs" / "project.yaml").config.promotion
    except ConfigError as error:
        return [f"configs/project.yaml does not load: {error}"]
    governance = load_governance(root)
    if governance is None:
        return [f"{GOVERNANCE} is missing: the team's floor is not set."]
    floor, excused = governance.floor, {o.rule for o in governance.overrides}
    problems = {
        "max_alpha": (
            policy.alpha > floor.max_alpha,
            f"promotion.alpha {policy.alpha} is looser than the floor {floor.max_alpha}",
        ),
        "min_holdout_rows": (
            policy.min_holdout_rows < floor.min_holdout_rows,
            f"promotion.min_holdout_rows {policy.min_holdout_rows} is below the "
            f"floor {floor.min_holdout_rows}",
        ),
        "required_guardrails": (
            bool(
                missing := sorted(set(floor.required_guardrails) - set(policy.guardrails.metrics))
            ),
            f"promotion.guardrails.metrics lacks {missing}",
        ),
    }
    return [
        f"{message}; raise it, or record an override with a reason in configs/governance.yaml."
        for rule, (broken, message) in problems.items()
        if broken and rule not in excused
    ]


def workflows_hardened(root: Path) -> list[str]:
    failures = []
    for path in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        if workflow.get("permissions") != {"contents": "read"}:
            failures.append(f"{path.name} must grant only `contents: read` at the top level.")
        for job in workflow.get("jobs", {}).values():
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses and not PINNED.match(uses):
                    failures.append(
                        f"{path.name} uses {uses}, which is not pinned to a commit SHA."
                    )
    return failures


def no_large_files(root: Path) -> list[str]:
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return []  # not a git repository: nothing is committed yet
    listing = subprocess.run(  # noqa: S603 - a fixed git command
        [git, "ls-files", "-z"], cwd=root, capture_output=True, check=True
    )
    listed = listing.stdout.decode().split("\0")
    governance = load_governance(root)
    if governance is None:
        return []  # policy_floor reports the missing file
    limit = governance.floor.max_file_bytes
    return [
        f"{name} is {size:,} bytes, over {limit:,}: keep data and models out of git."
        for name in listed
        if name and (root / name).is_file() and (size := (root / name).stat().st_size) > limit
    ]


CHECKS: dict[str, Check] = {
    "answers file": answers_intact,
    "required files": required_files,
    "promotion policy floor": policy_floor,
    "workflow hardening": workflows_hardened,
    "committed file sizes": no_large_files,
}


def check(root: Path) -> dict[str, list[str]]:
    """Every check's failures (an empty list when it passes)."""
    return {name: run(root) for name, run in CHECKS.items()}
