"""Security properties of every rendered project that can be read from its files.

Behaviour under hostile requests (API key, 413, 422) is tested by the generated project's own
tests; the slow tests run those, and ruff's bandit rules, for real.
"""

from __future__ import annotations

import re
import tomllib

from conftest import Rendered
from helpers import iter_texts

# Shapes of real credentials, and any literal assigned to a secret-sounding name.
SECRET_SHAPES = {
    "private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "API key literal": re.compile(
        r"(?i)\b\w*(api_?key|token|secret|password|passwd)\w*\s*[:=]\s*[\"'][^\"'\s]{8,}[\"']"
    ),
}
# The name of an environment variable is not a secret (`api_key_env="SERVICE_API_KEY"`).
ENV_NAME = re.compile(r"[:=]\s*[\"'][A-Z][A-Z0-9_]*[\"']$")


def test_no_secret_or_token_in_generated_files(rendered: Rendered) -> None:
    found = []
    for relative, text in iter_texts(rendered.path):
        for kind, pattern in SECRET_SHAPES.items():
            for match in pattern.finditer(text):
                if kind == "API key literal" and ENV_NAME.search(match.group()):
                    continue
                if kind == "private key" and relative.name == ".pre-commit-config.yaml":
                    continue  # the hook that refuses private keys names the marker
                found.append(f"{relative}: {kind}: {match.group()[:40]}")
    assert not found, "\n".join(found)


def test_the_image_runs_as_an_unprivileged_user(rendered: Rendered) -> None:
    instructions = [
        line.split(maxsplit=1)
        for line in (rendered.path / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    users = [args.strip() for keyword, *rest in instructions if keyword == "USER" for args in rest]
    assert users, "the Dockerfile never drops root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert instructions[-1][0] == "CMD"


def test_bandit_rules_are_on_and_only_narrowly_waived(rendered: Rendered) -> None:
    ruff = tomllib.loads((rendered.path / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "ruff"
    ]["lint"]
    assert "S" in ruff["select"]
    assert [rule for rule in ruff["ignore"] if rule.startswith("S")] == ["S101"]
    waived = {rule for rules in ruff["per-file-ignores"].values() for rule in rules}
    assert {rule for rule in waived if rule.startswith("S")} <= {"S603"}
    # Every inline waiver of a bandit rule names exactly one rule.
    for path in (rendered.path / "src").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "noqa: S" in line:
                assert re.search(r"# noqa: S\d{3}\b(?!,)", line), f"{path.name}: {line.strip()}"


def test_the_secret_shapes_catch_planted_secrets() -> None:
    planted = {
        "private key": "-----BEGIN RSA PRIVATE KEY-----",
        "AWS access key": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "GitHub token": "token: ghp_" + "a1B2" * 9,
        "Slack token": "xoxb-1234567890-abcdefghij",
        "API key literal": 'SERVICE_API_KEY = "k3y-that-leaked-1234"',
    }
    for kind, text in planted.items():
        assert SECRET_SHAPES[kind].search(text), kind
    assert ENV_NAME.search('api_key_env="SERVICE_API_KEY"')
