"""The models the service holds, and how they are swapped when an alias moves.

A request reads `self.models` once and uses what it got: swapping assigns a new mapping, so a
request in flight finishes on the model it started with and none is dropped. When the registry
is unreachable or a new version fails to load, the service keeps the models it has and says
why in `/ready`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient

from ..config import Project
from ..train.tracking import CHALLENGER, CHAMPION, alias_version, load_version, project_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    alias: str
    version: str
    model: Any
    snapshot_id: str | None
    train_sha256: str | None
    trained_at: str | None


class ModelRegistry:
    """Follows the `champion` alias (and `challenger` when an online experiment runs)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.models: dict[str, LoadedModel] = {}
        self.last_error: str | None = None
        self.last_checked: datetime | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        online = self.project.config.promotion.online.mode != "off"
        return (CHAMPION, CHALLENGER) if online else (CHAMPION,)

    def _follow(self, client: MlflowClient, alias: str, models: dict[str, LoadedModel]) -> None:
        """Point `models[alias]` at what the alias names now, loading only what is new."""
        name = self.project.config.tracking.registered_model
        version = alias_version(client, name, alias)
        if version is None:
            models.pop(alias, None)
            return
        held = models.get(alias)
        if held and held.version == str(version.version):
            return
        models[alias] = LoadedModel(
            alias=alias,
            version=str(version.version),
            model=load_version(client, name, str(version.version)),
            snapshot_id=version.tags.get("snapshot_id"),
            train_sha256=version.tags.get("train_sha256"),
            trained_at=version.tags.get("trained_at"),
        )
        log.info("loaded %s v%s as %s", name, version.version, alias)

    def refresh(self) -> bool:
        """Load whatever the aliases point at now; returns True when a model changed. Blocking."""
        models, errors = dict(self.models), []
        try:
            client = project_client(self.project)
            for alias in self.aliases:
                try:
                    self._follow(client, alias, models)
                except Exception as error:  # any failure keeps the model already in service
                    errors.append(f"{alias}: {type(error).__name__}: {error}")
        except Exception as error:  # the store itself cannot be opened
            errors.append(f"registry: {type(error).__name__}: {error}")
        challenger, champion = models.get(CHALLENGER), models.get(CHAMPION)
        if challenger and champion and challenger.version == champion.version:
            models.pop(CHALLENGER)
        changed = {a: m.version for a, m in models.items()} != {
            a: m.version for a, m in self.models.items()
        }
        self.models = models
        self.last_error = "; ".join(errors)[:2_000] or None
        self.last_checked = datetime.now(UTC)
        if self.last_error:
            log.warning("keeping the models in service: %s", self.last_error)
        return changed
