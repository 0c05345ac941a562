"""The models the service holds, and how they follow the registry's aliases.

The store is opened once, on the first poll that can open it, and every later poll reads the
aliases through that same store: a moved project is re-pointed once, not on every poll.

A request reads `models` once and uses what it got: a swap assigns a new mapping, so a request
in flight finishes on the model it started with and none is dropped. When the registry is
unreachable or a new version fails to load, the service keeps the models it has and says why.
A registry that never answers (a PostgreSQL host that drops packets, a hung MLflow server) must
hold up nothing but the poll: the service starts without it (`poll_registry`), answers /health
at once and says in /ready what it is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities.model_registry import ModelVersion

from ..config import Project
from ..data import project_schema
from ..redaction import redact
from ..scoring import COMPILED, Scorer, load_scorer
from ..store import CHALLENGER, CHAMPION, Store, load_model

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2_000
Result = TypeVar("Result")


@dataclass(frozen=True)
class LoadedModel:
    """A registered version in memory, with the lineage `/metadata` reports."""

    alias: str
    version: str
    scorer: Scorer
    snapshot_id: str | None
    train_sha256: str | None
    trained_at: str | None
    loaded_at: str  # when this replica started serving it: how long a promotion took to arrive

    @classmethod
    def of(cls, alias: str, version: ModelVersion, scorer: Scorer) -> LoadedModel:
        return cls(
            alias=alias,
            version=str(version.version),
            scorer=scorer,
            snapshot_id=version.tags.get("snapshot_id"),
            train_sha256=version.tags.get("train_sha256"),
            trained_at=version.tags.get("trained_at"),
            loaded_at=datetime.now(UTC).isoformat(),
        )

    def lineage(self) -> dict[str, str | None]:
        return {
            "version": self.version,
            "alias": self.alias,
            "scoring": self.scorer.kind,
            "scoring_frames": self.scorer.frame_kind,
            "snapshot_id": self.snapshot_id,
            "data_sha256": self.train_sha256,
            "trained_at": self.trained_at,
            "loaded_at": self.loaded_at,
        }


def version_scorer(store: Store, version: str) -> Scorer:
    """How a registered version scores: its compiled form unless `serve.scoring` says
    scikit-learn or the version has none (then the scikit-learn model is loaded)."""
    project = store.project
    with tempfile.TemporaryDirectory() as folder:
        return load_scorer(
            store.download_version(version, Path(folder)),
            load_model,
            project_schema(project),
            project.config.train.task,
            compiled=project.config.serve.scoring == COMPILED,
        )


class ServedModels:
    """Follows `champion` (and `challenger` while an online experiment runs) on one store."""

    def __init__(self, project: Project) -> None:
        self.project = project
        online = project.config.promotion.online.mode != "off"
        self.aliases = (CHAMPION, CHALLENGER) if online else (CHAMPION,)
        self.store: Store | None = None
        self.models: dict[str, LoadedModel] = {}
        self.last_error: str | None = None
        self.last_checked: datetime | None = None
        self.first_poll_started: float | None = None  # time.monotonic()
        # A poll the registry never answers (MLflow's client retries a dead server for minutes)
        # records no error; its age says it instead.
        self.overdue_after = 2 * project.config.serve.registry_poll_seconds

    def _opened_store(self) -> Store:
        if self.store is None:
            self.store = Store.open(self.project)
        return self.store

    def _follow(self, store: Store, alias: str, models: dict[str, LoadedModel]) -> None:
        """Point `models[alias]` at what the alias names now, loading only what is new."""
        version = store.alias_version(alias)
        if version is None:
            models.pop(alias, None)
            return
        held = models.get(alias)
        if held and held.version == str(version.version):
            return
        scorer = version_scorer(store, str(version.version))
        models[alias] = LoadedModel.of(alias, version, scorer)
        log.info(
            "loaded %s v%s as %s (%s scoring)",
            store.model_name,
            version.version,
            alias,
            scorer.kind,
        )

    def refresh(self) -> bool:
        """Load whatever the aliases point at now; returns True when a model changed. Blocking."""
        if self.first_poll_started is None:
            self.first_poll_started = time.monotonic()
        models, errors = dict(self.models), []
        try:
            store = self._opened_store()
        except Exception as error:  # the store cannot be opened yet: the next poll tries again
            errors.append(f"registry: {type(error).__name__}: {error}")
        else:
            for alias in self.aliases:
                try:
                    self._follow(store, alias, models)
                except Exception as error:  # any failure keeps the model already in service
                    errors.append(f"{alias}: {type(error).__name__}: {error}")
        challenger, champion = models.get(CHALLENGER), models.get(CHAMPION)
        if challenger and champion and challenger.version == champion.version:
            models.pop(CHALLENGER)
        changed = _versions(models) != _versions(self.models)
        self.models = models
        # An error names what it failed on, a tracking URI's password too: masked before it is
        # logged or answered by /ready, which needs no key.
        self.last_error = redact("; ".join(errors))[:MAX_ERROR_CHARS] or None
        self.last_checked = datetime.now(UTC)
        if self.last_error:
            log.warning("keeping the models in service: %s", self.last_error)
        return changed

    def readiness(self) -> dict[str, Any]:
        """What `/ready` answers: ready once a champion is loaded, and why the registry is not
        being followed (the last poll's error, or a poll that has not come back)."""
        models, error, checked = self.models, self.last_error, self.last_checked
        if error is None and checked is None:
            error = self._first_poll_pending()
        elif error is None and checked is not None:
            silent = (datetime.now(UTC) - checked).total_seconds()
            if silent > self.overdue_after:
                error = f"no answer from the registry for {silent:.0f} s"
        return {
            "ready": CHAMPION in models,
            "models": _versions(models),
            "registry_error": error,
            "last_checked": checked.isoformat() if checked else None,
        }

    def _first_poll_pending(self) -> str:
        """Why no model is loaded yet while the first poll has not come back: it names the
        registry (masked), so an operator sees which backend the service waits for."""
        where = redact(self.project.tracking_uri)
        if self.first_poll_started is None:
            return f"the registry at {where} has not been asked yet"
        waited = time.monotonic() - self.first_poll_started
        return f"no answer yet from the registry at {where} (asked {waited:.0f} s ago)"

    def unavailable(self, alias: str) -> str:
        """Why `alias` has no model, for a 503: the registry's state when it is the cause."""
        reason = self.readiness()["registry_error"]
        missing = f"no {alias} model is loaded"
        return f"{missing}: {reason}" if reason else missing


async def poll_registry(models: ServedModels) -> None:
    """One `models.refresh()`, on a daemon thread of its own rather than the loop's executor.

    A poll can block for as long as the registry's client lets it (libpq waits for ever by
    default, MLflow's HTTP client retries for minutes). Interpreter exit joins executor threads,
    so a hung poll there would keep a stopped service from exiting; a daemon thread is left
    behind instead. Cancelling the await (at shutdown) does not stop the poll, only the wait."""
    await on_daemon_thread(models.refresh, name="registry-poll")


def on_daemon_thread(work: Callable[[], Result], name: str) -> asyncio.Future[Result]:
    """`work()` on a new daemon thread, as a future of the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Result] = loop.create_future()

    def settle(result: Result | None, error: BaseException | None) -> None:
        if future.done():  # the waiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result, failure = None, None
        try:
            result = work()
        except BaseException as error:
            failure = error
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, failure)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _versions(models: dict[str, LoadedModel]) -> dict[str, str]:
    return {alias: model.version for alias, model in models.items()}
