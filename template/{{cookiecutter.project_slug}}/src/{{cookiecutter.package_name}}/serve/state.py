"""Everything one running service holds, in one typed object, and what it does with it.

A compiled model scores a small batch on the event loop: it takes less time than handing the
batch to a thread, and a thread that holds the GIL for pure-Python work makes the loop wait
for the interpreter's switch interval (5 ms). scikit-learn, and large batches, score on a
single thread with a single OpenMP thread: one batch at a time instead of fighting the web
server (and each other) for cores, and micro-batching supplies the parallelism. Everything
else here runs on the event loop, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from ..config import ConfigError, Project, ServeConfig
from ..data import project_schema, row_key
from ..metrics import class_decisions, decisions, logged_predictions
from ..predictions import FeedbackRecord, PredictionLog, PredictionRecord, short_reason
from ..promote import assign_variant
from ..scoring import COMPILED
from ..store import CHALLENGER, CHAMPION
from .batching import LogBuffer, MicroBatcher
from .prometheus import ServiceMetrics
from .registry import LoadedModel, ServedModels, poll_registry
from .schemas import Prediction

log = logging.getLogger(__name__)
FLUSH_ALLOWANCE_SECONDS = 0.5  # what one flush's write may take, beyond the flush interval
RECENT_IDS = 100_000  # feedback for older predictions is checked against the log's database
INLINE_ROWS = 64  # a compiled batch up to this size scores on the event loop (well under 1 ms)
Row = dict[str, Any]


class NoModelError(RuntimeError):
    """The variant a request needs has no model in memory (none registered or none loadable)."""


def read_api_key(settings: ServeConfig) -> str | None:
    """The key clients must send, from the environment (never the config file); None: no key."""
    key = os.environ.get(settings.api_key_env) or None
    if settings.require_api_key and not key:
        raise ConfigError(f"serve.require_api_key is on but {settings.api_key_env} is not set")
    return key


def single_threaded() -> None:
    """OpenMP's thread count is per calling thread: set it once on the scoring thread."""
    threadpool_limits(limits=1)


class ServiceState:
    """The models in service, the log buffer, the counters and the scoring thread of one app."""

    def __init__(self, project: Project) -> None:
        self.settings = project.config.serve
        self.task = project.config.train.task
        self.online = project.config.promotion.online
        self.model_name = project.config.tracking.registered_model
        self.schema = project_schema(project)
        self.api_key = read_api_key(self.settings)
        self.models = ServedModels(project)
        self.known_categories = {
            name: frozenset(self.schema.column(name).categories or ())
            for name in self.schema.categorical_features
        }
        self.metrics = ServiceMetrics(categorical=self.known_categories)
        self.log = LogBuffer(
            PredictionLog(project.prediction_log_url),
            self.settings.log_buffer_rows,
            self.metrics.prediction_log,
        )
        self.recent_ids: OrderedDict[str, None] = OrderedDict()
        self.batcher: MicroBatcher[Row, Prediction] = MicroBatcher(
            self.predict_rows, self.settings.max_batch_rows
        )
        self.scoring_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="scoring", initializer=single_threaded
        )
        self.shadow_tasks: set[asyncio.Task[None]] = set()

    def entity_id(self, row: Row) -> str:
        """Who the row is about: its id, or without an id column its row key (its features)."""
        if self.schema.id_column is None:
            return row_key(row, self.schema)
        return str(row[self.schema.id_column])

    def admit(self, body: BaseModel) -> Row:
        """The row a request holds, as the model reads it: its declared fields. Fields the schema
        leaves out (`serve.extra_columns: ignore`) stop here, neither scored nor logged, and the
        row is counted; so is each category the schema does not list, which the model scores as
        it scores any unknown (`serve.unseen_categories: score`) and `monitor` reports."""
        declared = type(body).model_fields
        row = {name: value for name, value in body.model_dump().items() if name in declared}
        if body.model_extra:
            self.metrics.rows_with_ignored_fields += 1
        for name, known in self.known_categories.items():
            value = row.get(name)
            if value is not None and value not in known:
                self.metrics.unseen_categories[name] += 1
        return row

    async def follow_registry(self) -> None:
        """Swap in whatever the aliases point at now (the registry is polled off the loop)."""
        await poll_registry(self.models)

    # --- scoring ---------------------------------------------------------------------------

    def _score_now(self, model: LoadedModel, rows: list[Row]) -> tuple[np.ndarray, float]:
        """Runs on the loop or the scoring thread, so it only reads what never changes."""
        started = time.perf_counter()
        values = model.scorer.score_records(rows)
        return values, time.perf_counter() - started

    async def score(self, model: LoadedModel, rows: list[Row]) -> tuple[np.ndarray, float]:
        """The model's scores for `rows` and the seconds the model call took."""
        if model.scorer.kind == COMPILED and len(rows) <= INLINE_ROWS:
            return self._score_now(model, rows)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.scoring_thread, self._score_now, model, rows)

    def answers(self, values: np.ndarray) -> list[dict[str, Any]]:
        """Each row's answer fields: the probability or value, and a classifier's decision
        (three or more classes: the likeliest class, and every class's probability)."""
        if self.task == "binary_classification":
            flags = decisions(values)
            return [
                {"prediction": float(v), "label": int(f)}
                for v, f in zip(values, flags, strict=True)
            ]
        if self.task == "multiclass_classification":
            classes = self.schema.target.classes or ()
            return [
                {
                    "prediction": float(row[decided]),
                    "label": classes[decided],
                    "probabilities": dict(zip(classes, map(float, row), strict=True)),
                }
                for row, decided in zip(values, class_decisions(values).tolist(), strict=True)
            ]
        return [{"prediction": float(v)} for v in values]

    def record(
        self,
        model: LoadedModel,
        rows: list[Row],
        ids: list[str],
        values: np.ndarray,
        seconds: float,
        *,
        served: bool,
    ) -> None:
        """Queue the predictions for the log and count them; served ids can receive feedback."""
        now = datetime.now(UTC)
        per_row = 1_000 * seconds / len(rows)
        matrix = values.ndim == 2
        logged = logged_predictions(values)
        for row, prediction_id, value, scores in zip(rows, ids, logged, values, strict=True):
            self.log.add(
                PredictionRecord(
                    prediction_id=prediction_id,
                    variant=model.alias,
                    model_version=model.version,
                    served=served,
                    features=row,
                    prediction=float(value),
                    latency_ms=per_row,
                    entity_id=self.entity_id(row),
                    ts=now,
                    probabilities=tuple(map(float, scores)) if matrix else None,
                )
            )
            if served:
                self.recent_ids[prediction_id] = None
        while len(self.recent_ids) > RECENT_IDS:
            self.recent_ids.popitem(last=False)
        self.metrics.observe_prediction(model.alias, seconds, rows=len(rows))

    async def predict_rows(self, rows: list[Row]) -> list[Prediction]:
        """Score each row with its entity's variant; a shadow challenger scores after the answer.

        The models are read once, so an alias swap during the call changes nothing in it.
        Raises NoModelError when a variant's model is missing.
        """
        models = self.models.models
        ids = [uuid.uuid4().hex for _ in rows]
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            variant: str = assign_variant(self.entity_id(row), self.online, salt=self.model_name)
            if variant == CHALLENGER and CHALLENGER not in models:
                variant = CHAMPION
            groups.setdefault(variant, []).append(i)
        answers: dict[int, Prediction] = {}
        for alias, members in groups.items():
            model = models.get(alias)
            if model is None:
                raise NoModelError(self.models.unavailable(alias))
            chosen = [rows[i] for i in members]
            values, seconds = await self.score(model, chosen)
            self.record(model, chosen, [ids[i] for i in members], values, seconds, served=True)
            for i, answer in zip(members, self.answers(values), strict=True):
                answers[i] = Prediction(
                    prediction_id=ids[i], variant=model.alias, model_version=model.version, **answer
                )
        challenger = models.get(CHALLENGER)
        if self.online.mode == "shadow" and challenger is not None:
            task = asyncio.create_task(self._shadow(challenger, rows, ids))
            self.shadow_tasks.add(task)
            task.add_done_callback(self.shadow_tasks.discard)
        return [answers[i] for i in range(len(rows))]

    async def predict_row(self, row: Row) -> Prediction:
        """One row, scored in one model call with whatever other rows are waiting."""
        return await self.batcher.submit(row)

    async def _shadow(self, challenger: LoadedModel, rows: list[Row], ids: list[str]) -> None:
        try:
            values, seconds = await self.score(challenger, rows)
        except Exception:  # the caller has its answer already: a failed shadow only goes unlogged
            log.exception("shadow scoring with %s v%s failed", challenger.alias, challenger.version)
            return
        self.record(challenger, rows, ids, values, seconds, served=False)

    # --- feedback --------------------------------------------------------------------------

    async def knows(self, prediction_id: str) -> bool:
        """Whether the prediction was served: by this replica recently (ids in memory), or by any
        replica once written to the log. While the log cannot be read the id is taken on trust:
        a label for an unknown id only adds a row no prediction joins, while refusing would lose
        real labels, or answer 5xx for the log's outage."""
        if prediction_id in self.recent_ids or self.log.unreachable:
            return True
        try:
            if await asyncio.to_thread(self.log.target.has_prediction, prediction_id):
                return True
            # Another replica may have served it and not flushed yet: ask again after its flush.
            await asyncio.sleep(self.settings.flush_seconds + FLUSH_ALLOWANCE_SECONDS)
            return await asyncio.to_thread(self.log.target.has_prediction, prediction_id)
        except Exception as error:  # the buffer's next failed write reports the outage
            log.info("feedback for %s taken unchecked: %s", prediction_id, short_reason(error))
            return True

    async def accept_feedback(
        self, prediction_id: str, label: float, labelled_by: str | None = None
    ) -> bool:
        """Queue the label for the log; False (and nothing queued) when the id is unknown. A
        label for a prediction that has one replaces it (the latest wins; the log keeps both)."""
        if not await self.knows(prediction_id):
            return False
        self.log.add(
            FeedbackRecord(prediction_id=prediction_id, label=label, labelled_by=labelled_by)
        )
        return True

    async def close(self) -> None:
        """Finish shadow scoring, write what the buffer holds, then stop the scoring thread."""
        await asyncio.gather(*self.shadow_tasks, return_exceptions=True)
        await self.log.flush()
        if self.log.pending:
            log.warning("%d prediction-log rows were not written: lost", self.log.pending)
        self.log.target.close()
        self.scoring_thread.shutdown(wait=True)
