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
from .redaction import CREDENTIAL_WORDS

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


def tracked_files(root: Path) -> list[str] | None:
    """Git's list of the files it tracks; None outside a repository, where nothing is committed."""
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    listing = subprocess.run(  # noqa: S603 - a fixed git command
        [git, "ls-files", "-z"], cwd=root, capture_output=True, check=True
    )
    return [name for name in listing.stdout.decode().split("\0") if name]


def no_large_files(root: Path) -> list[str]:
    listed = tracked_files(root)
    if listed is None:
        return []  # not a git repository: nothing is committed yet
    governance = load_governance(root)
    if governance is None:
        return []  # policy_floor reports the missing file
    limit = governance.floor.max_file_bytes
    return [
        f"{name} is {size:,} bytes, over {limit:,}: keep data and models out of git."
        for name in listed
        if (root / name).is_file() and (size := (root / name).stat().st_size) > limit
    ]


# Credentials: a URL's password, an assignment to a secret-sounding name, a private key, an AWS
# access key id. The values are matched only to be judged, and never appear in a message.
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:(?P<value>[^\s@/'\"]*)@", re.I)
CREDENTIAL_NAME = rf"[\w.-]*(?:{CREDENTIAL_WORDS})"
SECRET_ASSIGNMENT = re.compile(
    r"""(?<![\w.$-])(?<!\$\{)["']?"""
    + CREDENTIAL_NAME
    + r"""["']?\s*(?<![=!<>])[:=](?!=)\s*"""
    + r"""(?P<value>"[^"]*"|'[^']*'|[^\s"'`,;#)\]}]+)?""",
    re.I,
)
SECRET_DEFAULT = re.compile(r"\$\{" + CREDENTIAL_NAME + r":?-(?P<value>[^}]*)\}", re.I)  # ${X:-v}
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])")
REFERENCE = ("$", "{", "<", "%(")  # $VAR, ${VAR:?msg}, a workflow's secrets, {field}, <password>
PLACEHOLDER = re.compile(r"change-?me|example|placeholder|dummy|redacted|^(password|secret)$", re.I)
CONSTANT = {"true", "false", "yes", "no", "on", "off", "null", "none", "~"}
PYTHON = {".py", ".pyi"}


def _literal(value: str, *, python: bool) -> bool:
    """Whether `value` is a credential written out, rather than a pointer to one or a stand-in."""
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
    if python and not quoted:
        return False  # an expression: a name, a call, an annotation
    text = value[1:-1] if quoted else value
    return not (
        not text.strip()
        or text.startswith(REFERENCE)
        or set(text) <= set("*x.X")
        or PLACEHOLDER.search(text)
        or text.lower() in CONSTANT
    )


def credentials_in(name: str, text: str) -> list[str]:
    """Where `text` (the file `name`) holds a credential: the place and kind, never the value."""
    python, test = Path(name).suffix in PYTHON, name.startswith("tests/")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        kinds = []
        if not test and any(
            _literal(m["value"], python=False) for m in URL_PASSWORD.finditer(line)
        ):
            kinds.append("a URL with a password")
        if not test and (
            any(
                m["value"] and _literal(m["value"], python=python)
                for m in SECRET_ASSIGNMENT.finditer(line)
            )
            or any(_literal(m["value"], python=False) for m in SECRET_DEFAULT.finditer(line))
        ):
            kinds.append("a password, key or token")
        if PRIVATE_KEY.search(line):
            kinds.append("a private key")
        if any(not m[0].endswith("EXAMPLE") for m in AWS_KEY_ID.finditer(line)):
            kinds.append("an AWS access key id")
        found += [f"{name}:{number} holds {kind}" for kind in kinds]
    return found


def no_credentials(root: Path) -> list[str]:
    """A credential in git stays in its history for good, readable by everyone with a clone.

    Every tracked text file is read. A credential is a URL with a password
    (`scheme://user:<password>@host`), a value assigned (`:` or `=`, quoted or not) to a name
    ending in password, passwd, api_key/api-key/apikey, secret or token, a private key block,
    or an AWS access key id (AKIA and 16 more; one ending in EXAMPLE is AWS's documentation's).
    The default in a variable reference (`${DB_PASSWORD:-...}`) is judged as a value too.
    A value is allowed when it is empty, a reference (it starts with `$`, `{`, `<` or `%(`:
    `${VAR}`, `${VAR:?message}`, a workflow expression naming a secret, an f-string field,
    `<password>`),
    masked (only `*`, `x` or `.`), a placeholder (it holds change-me, changeme, example,
    placeholder, dummy or redacted, or is just `password` or `secret`), or a constant such as
    `true` or `null`. In Python only a quoted string is a value: anything else is an expression.
    Under tests/ URLs and assignments are not judged: tests hand made-up keys and passwords to
    the code they check; private keys and AWS key ids are found everywhere.
    """
    listed = tracked_files(root)
    if listed is None:
        return []  # not a git repository: nothing is committed yet
    failures = []
    for name in listed:
        path = root / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        failures += [
            f"{where}: read it from the environment (" + "`${VAR}`) and rotate it, "
            "since git history keeps it."
            for where in credentials_in(name, text)
        ]
    return failures


CHECKS: dict[str, Check] = {
    "answers file": answers_intact,
    "required files": required_files,
    "promotion policy floor": policy_floor,
    "workflow hardening": workflows_hardened,
    "committed file sizes": no_large_files,
    "committed credentials": no_credentials,
}


def check(root: Path) -> dict[str, list[str]]:
    """Every check's failures (an empty list when it passes)."""
    return {name: run(root) for name, run in CHECKS.items()}
