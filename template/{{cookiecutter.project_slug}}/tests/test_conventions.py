from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.conventions import check

from .conftest import ROOT

pytestmark = pytest.mark.answers  # every test reads files the answers shape (tests/answers.py)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The project's own tree (no caches), to break in ways the real one must never be."""
    target = tmp_path / "project"
    outputs = {".git", ".nox", ".venv", "mlruns", "mlflow.db", "data", "reports", "logs"}

    def skip(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {n for n in names if "cache" in n or (top and n in outputs)}

    shutil.copytree(ROOT, target, ignore=skip)
    return target


def _edit(path: Path, change: dict[str, object]) -> None:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[key] = value
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def test_the_project_as_generated_passes(copy: Path) -> None:
    assert check(copy) == {name: [] for name in check(copy)}


def test_a_weaker_policy_fails_unless_an_override_says_why(copy: Path) -> None:
    _edit(copy / "configs" / "project.yaml", {"promotion.alpha": 0.2})
    failures = check(copy)["promotion policy floor"]
    assert len(failures) == 1
    assert "promotion.alpha 0.2 is looser than the floor 0.05" in failures[0]
    _edit(
        copy / "configs" / "governance.yaml",
        {"overrides": [{"rule": "max_alpha", "reason": "pilot with 50 users, agreed in review"}]},
    )
    assert check(copy)["promotion policy floor"] == []


def test_missing_docs_and_answers_are_named(copy: Path) -> None:
    (copy / "docs" / "runbook.md").unlink()
    (copy / ".copier-answers.yml").unlink()
    failures = check(copy)
    assert failures["required files"] == [
        "docs/runbook.md is required by the team's conventions and is missing."
    ]
    assert "missing" in failures["answers file"][0]


def test_unpinned_actions_and_broad_permissions_fail(copy: Path) -> None:
    workflow = copy / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text(encoding="utf-8")
    text = text.replace(
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "actions/checkout@v4"
    )
    workflow.write_text(text.replace("contents: read", "contents: write", 1), encoding="utf-8")
    failures = check(copy)["workflow hardening"]
    assert any("actions/checkout@v4, which is not pinned" in f for f in failures)
    assert any("ci.yml must grant only `contents: read`" in f for f in failures)


def test_large_committed_files_fail(copy: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=copy, check=True)
    (copy / "model.bin").write_bytes(b"\0" * 3_000_000)
    subprocess.run([*git, "add", "-A"], cwd=copy, check=True)
    failures = check(copy)["committed file sizes"]
    assert failures == [
        "model.bin is 3,000,000 bytes, over 2,000,000: keep data and models out of git."
    ]


# --- committed credentials -------------------------------------------------------------------

# Made up, and assembled at run time, so that this file holds no secret-shaped text itself.
SECRET = "k9" + "Qz-prod-7731"
AWS_ID = "AKIA" + "Q3ZT7RX2MB4NWP6K"
GIT = shutil.which("git") or "git"


def _track(root: Path) -> None:
    """Make `root` a git repository tracking every file its .gitignore does not exclude."""
    subprocess.run([GIT, "init", "-q"], cwd=root, check=True)
    subprocess.run([GIT, "add", "-A"], cwd=root, check=True)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_project_with_every_file_committed_holds_no_credential(copy: Path) -> None:
    _track(copy)
    tracked = subprocess.run(
        [GIT, "ls-files"], cwd=copy, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"compose.yaml", ".env.example", "deploy/initdb.sql"} <= set(tracked)
    assert check(copy)["committed credentials"] == []


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("configs/store.yaml", f"url: postgresql://app:{SECRET}@db/x\n", "1 holds a URL with a"),
        ("configs/store.yaml", f"database:\n  password: {SECRET}\n", "2 holds a password"),
        ("deploy/app.env", f"# the app\nDB_PASSWORD={SECRET}\n", "2 holds a password"),
        ("deploy/client.json", '{\n  "api_key": "' + SECRET + '"\n}\n', "2 holds a password"),
        ("src/{{ cookiecutter.package_name }}/keys.py", "API_TOKEN = " + repr(SECRET) + "\n", "1 holds a password"),
        ("deploy/stack.yaml", "x: ${DB_PASSWORD:-" + SECRET + "}\n", "1 holds a password"),
        ("deploy/key.pem", "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n", "1 holds a private key"),
        ("docs/notes.md", f"# keys\n\naws: {AWS_ID}\n", "3 holds an AWS access"),
    ],
)
def test_a_committed_credential_is_named_by_file_and_line_not_shown(
    copy: Path, name: str, text: str, where: str
) -> None:
    _write(copy, {name: text})
    _track(copy)
    failures = check(copy)["committed credentials"]
    assert len(failures) == 1, failures
    assert failures[0].startswith(f"{name}:{where}")
    assert "read it from the environment" in failures[0]
    assert SECRET not in failures[0]
    assert AWS_ID not in failures[0]


def test_references_placeholders_and_expressions_are_not_credentials(copy: Path) -> None:
    _write(
        copy,
        {
            "deploy/stack.yaml": "\n".join(
                [
                    "db: postgresql+psycopg://app:${POSTGRES_PASSWORD:?set it}@db/x",
                    "cache: redis://app:$REDIS_PASSWORD@cache:6379",
                    "anonymous: postgresql://app:@db/x",
                    "shown: postgresql://app:***@db/x",
                    "doc: dialect://user:password@host/database",
                    "template: https://x-access-token:{token}@example.org/repo.git",
                    "password: ${DB_PASSWORD}",
                    "api_key: ${" + "{ secrets.API_KEY }}",  # a workflow expression
                    "token: <your token>",
                    "secret: change-me",
                    'client_secret: ""',
                    "require_api_key: false",
                    "fallback: ${DB_PASSWORD:-}",
                    "documented: AKIA" + "IOSFODNN7EXAMPLE",  # AWS's documentation's
                ]
            ),
            "deploy/app.env.example": "POSTGRES_PASSWORD=\nSERVICE_API_KEY=changeme\n",
            "src/{{ cookiecutter.package_name }}/auth.py": (
                "def connect(api_key: str | None = None, password: str = '') -> None:\n"
                "    token = read_token(api_key)\n"
                "    if password == token:\n"
                "        return None\n"
            ),
        },
    )
    _track(copy)
    assert check(copy)["committed credentials"] == []


def test_tests_may_hold_made_up_keys_but_no_private_key(copy: Path) -> None:
    headers = 'headers = {"x-api-key": "' + SECRET + '"}\n'
    made_up = headers + f'url = "postgresql://u:{SECRET}@db/x"\n'
    _write(copy, {"tests/test_auth.py": made_up})
    _track(copy)
    assert check(copy)["committed credentials"] == []
    _write(copy, {"tests/fixtures/id_ed25519": "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n"})
    subprocess.run([GIT, "add", "-A"], cwd=copy, check=True)
    assert [f.split(" holds")[0] for f in check(copy)["committed credentials"]] == [
        "tests/fixtures/id_ed25519:1"
    ]


def test_untracked_and_binary_files_are_not_read(copy: Path) -> None:
    _track(copy)
    _write(copy, {".env": f"POSTGRES_PASSWORD={SECRET}\n", "notes.txt": f"password: {SECRET}\n"})
    (copy / "model.bin").write_bytes(b"\0password: " + SECRET.encode())
    subprocess.run([GIT, "add", "model.bin"], cwd=copy, check=True)
    assert check(copy)["committed credentials"] == []  # .env is ignored, notes.txt not added
