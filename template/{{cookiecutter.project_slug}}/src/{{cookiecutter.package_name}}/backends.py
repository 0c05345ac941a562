"""Where the project keeps what outlives a process: runs and models, the prediction log, and the
rows it trains on. Each is chosen by an environment variable (a CI secret, a deployment's env);
unset, it is a file inside the project, which only the machine that wrote it can see.

A scheduled job on a fresh checkout that silently fell back to those files would monitor nothing
and promote into a registry nobody serves from, so jobs name what they need (`backends --require`)
and stop first when it is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from .config import (
    PREDICTION_LOG_URL_ENV,
    TRACKING_URI_ENV,
    ConfigError,
    DemoSourceConfig,
    Project,
    SqlSourceConfig,
)
from .redaction import redact

Role = Literal["tracking", "log", "data"]
ROLES: tuple[Role, ...] = ("tracking", "log", "data")


@dataclass(frozen=True)
class Backend:
    role: Role
    what: str
    variable: str | None  # the environment variable that points it at a shared server
    location: str  # with any password hidden
    shared: bool  # another machine sees the same thing

    @property
    def kind(self) -> str:
        return "shared" if self.shared else "local"


def without_password(location: str) -> str:
    """A location fit for messages, logs and manifests: `scheme://user:***@host/...`."""
    return redact(location)


def _from_env(name: str) -> str | None:
    return os.environ.get(name) or None  # an unset CI secret arrives as ""


def backends(project: Project) -> list[Backend]:
    """The three backends as this process would use them."""
    tracking, log = _from_env(TRACKING_URI_ENV), _from_env(PREDICTION_LOG_URL_ENV)
    found = [
        Backend(
            "tracking",
            "MLflow runs and model registry",
            TRACKING_URI_ENV,
            without_password(tracking or project.tracking_uri),
            tracking is not None,
        ),
        Backend(
            "log",
            "prediction and feedback log",
            PREDICTION_LOG_URL_ENV,
            without_password(log or project.prediction_log_url),
            log is not None,
        ),
    ]
    source = project.config.data.source
    if isinstance(source, SqlSourceConfig):
        url = _from_env(source.url_env)
        where = without_password(url) if url else f"{source.url_env} is not set"
        found.append(Backend("data", "training data (sql)", source.url_env, where, url is not None))
    elif isinstance(source, DemoSourceConfig):
        found.append(Backend("data", "training data (demo)", None, "generated", shared=True))
    else:
        shared = "://" in str(source.path)  # an fsspec URL; a path is this machine's
        found.append(Backend("data", "training data (file)", None, str(source.path), shared))
    return found


def parse_roles(values: list[str]) -> list[Role]:
    """`--require` values, repeated or comma-separated."""
    named = [role.strip() for value in values for role in value.split(",") if role.strip()]
    if unknown := sorted(set(named) - set(ROLES)):
        raise ConfigError(f"--require takes {', '.join(ROLES)}, not {', '.join(unknown)}")
    return [role for role in ROLES if role in named]


def require_shared(project: Project, roles: list[Role]) -> list[Backend]:
    """The backends, or ConfigError naming every variable a required one still lacks."""
    found = backends(project)
    missing = [b for b in found if b.role in roles and not b.shared and b.variable]
    if missing:
        named = ", ".join(f"{b.variable} ({b.what})" for b in missing)
        raise ConfigError(
            f"not set: {named}. This job runs on a fresh checkout, where the embedded defaults "
            "hold nothing: set them as secrets (see docs/deploy.md)"
        )
    return found
