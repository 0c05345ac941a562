"""The FastAPI app: scoring, feedback, health, metadata and metrics for the champion.

A model call costs about the same for one row as for dozens, so concurrent /predict requests
are micro-batched into one call, made on a single scoring thread while the event loop keeps
accepting requests. Shadow scoring of the challenger runs after the answers are sent, so it
never adds to the caller's latency.
"""

# No `from __future__ import annotations` here: FastAPI must see the request models that
# create_app builds at run time, not their names as strings.
import asyncio
import logging
import os
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from threadpoolctl import threadpool_limits

from ..config import ConfigError, Project
from ..data import project_schema
from ..features import records_frame
from ..predictions import FeedbackRecord, PredictionLog, PredictionRecord
from ..promote.online import assign_variant
from ..train.evaluate import predict_scores
from ..train.tracking import CHALLENGER, CHAMPION
from .metrics import ServiceMetrics
from .registry import LoadedModel, ModelRegistry
from .schemas import (
    BatchPrediction,
    ErrorDetail,
    Metadata,
    Prediction,
    batch_request_model,
    feedback_model,
    request_row_model,
)

log = logging.getLogger(__name__)
RECENT_IDS = 100_000


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Statuses a route answers besides 2xx and validation's 422: the API schema lists them, so
    clients (and schema-driven fuzzers) know every answer they can get."""
    reasons = {
        400: "The body is not JSON",
        401: "X-API-Key is required and missing or wrong",
        404: "Unknown prediction_id",
        411: "A body without a Content-Length header",
        413: "The body is over serve.max_body_bytes",
        503: "No model is loaded for the request's variant",
    }
    return {status: {"model": ErrorDetail, "description": reasons[status]} for status in statuses}


class LogBuffer:
    """Rows wait here at most one flush interval before they are written to the prediction log."""

    def __init__(self, target: PredictionLog) -> None:
        self.target = target
        self.predictions: list[PredictionRecord] = []
        self.feedback: list[FeedbackRecord] = []

    async def flush(self) -> None:
        predictions, self.predictions = self.predictions, []
        feedback, self.feedback = self.feedback, []
        if predictions or feedback:
            await asyncio.to_thread(self._write, predictions, feedback)

    def _write(self, predictions: list[PredictionRecord], feedback: list[FeedbackRecord]) -> None:
        self.target.append(predictions)
        self.target.append_feedback(feedback)


def single_threaded() -> None:
    """OpenMP's thread count is per calling thread: set it once on the scoring thread."""
    threadpool_limits(limits=1)


class MicroBatcher:
    """Concurrent /predict requests share one model call: the model's cost is per call, not per
    row. Whatever has queued while the previous batch was scored forms the next batch, so a lone
    request waits for nothing and a burst is scored together."""

    def __init__(
        self, handle: Callable[[list[dict[str, Any]]], Awaitable[list[Prediction]]], max_rows: int
    ) -> None:
        self.handle, self.max_rows = handle, max_rows
        self.queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[Prediction]]] = (
            asyncio.Queue()
        )

    async def submit(self, row: dict[str, Any]) -> Prediction:
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((row, future))
        return await future

    async def run(self) -> None:
        while True:
            items = [await self.queue.get()]
            while len(items) < self.max_rows and not self.queue.empty():
                items.append(self.queue.get_nowait())
            try:
                answers = await self.handle([row for row, _ in items])
            except Exception as error:  # each waiting request gets the error (e.g. a 503)
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), answer in zip(items, answers, strict=True):
                if not future.done():
                    future.set_result(answer)


def _api_key(project: Project) -> str | None:
    settings = project.config.serve
    key = os.environ.get(settings.api_key_env) or None
    if settings.require_api_key and not key:
        raise ConfigError(f"serve.require_api_key is on but {settings.api_key_env} is not set")
    return key


def create_app(project: Project) -> FastAPI:
    """A service for the project's registered model; nothing is loaded until start-up."""
    settings, task = project.config.serve, project.config.train.task
    schema = project_schema(project)
    row_model = request_row_model(schema)
    feedback_body = feedback_model(schema.target)
    batch_model = batch_request_model(row_model, settings.max_batch_rows)
    registry = ModelRegistry(project)
    buffer = LogBuffer(PredictionLog(project.predictions_dir))
    metrics = ServiceMetrics()
    recent: OrderedDict[str, None] = OrderedDict()
    api_key = _api_key(project)
    online = project.config.promotion.online
    name = project.config.tracking.registered_model
    pending: set[asyncio.Task[None]] = set()
    # One scoring thread, with one OpenMP thread: models score one batch at a time instead of
    # fighting the web server (and each other) for cores; micro-batching supplies the parallelism.
    scorer = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="scoring", initializer=single_threaded
    )

    async def every(seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # a failed cycle must not end the loop
                log.exception("background task failed")

    async def reload() -> None:
        await asyncio.to_thread(registry.refresh)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await reload()
        tasks = [
            asyncio.create_task(every(settings.registry_poll_seconds, reload)),
            asyncio.create_task(every(settings.flush_seconds, buffer.flush)),
            asyncio.create_task(batcher.run()),
        ]
        try:
            yield
        finally:
            for task_ in tasks:
                task_.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await buffer.flush()
            scorer.shutdown(wait=True)

    app = FastAPI(title=project.config.tracking.registered_model, lifespan=lifespan)

    @app.middleware("http")
    async def limit_and_count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            response: Response = JSONResponse(
                {"detail": f"request body over {settings.max_body_bytes} bytes"}, status_code=413
            )
        elif length is None and "transfer-encoding" in request.headers:
            # A chunked body has no length to check up front: it would be read whole, any size.
            response = JSONResponse(
                {"detail": "send the body with a Content-Length header"}, status_code=411
            )
        else:
            response = await call_next(request)
        metrics.observe_request(request.url.path, response.status_code)
        return response

    async def authorised(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")

    def held(alias: str) -> LoadedModel:
        model = registry.models.get(alias)
        if model is None:
            raise HTTPException(status_code=503, detail=f"no {alias} model is loaded")
        return model

    def score(model: LoadedModel, rows: list[dict[str, Any]]) -> tuple[list[float], float]:
        """Pure, so it can run on the scoring thread: touches nothing the event loop uses."""
        started = time.perf_counter()
        values = predict_scores(model.model, records_frame(rows, schema), task)
        return [float(v) for v in values], time.perf_counter() - started

    async def scored(model: LoadedModel, rows: list[dict[str, Any]]) -> tuple[list[float], float]:
        return await asyncio.get_running_loop().run_in_executor(scorer, score, model, rows)

    def record(
        model: LoadedModel,
        rows: list[dict[str, Any]],
        ids: list[str],
        values: list[float],
        seconds: float,
        served: bool,
    ) -> None:
        now = datetime.now(UTC)
        per_row = 1_000 * seconds / len(rows)
        for row, pid, value in zip(rows, ids, values, strict=True):
            buffer.predictions.append(
                PredictionRecord(
                    prediction_id=pid,
                    variant=model.alias,
                    model_version=model.version,
                    served=served,
                    features=row,
                    prediction=value,
                    latency_ms=per_row,
                    entity_id=str(row[schema.id_column]),
                    ts=now,
                )
            )
            if served:
                recent[pid] = None
        while len(recent) > RECENT_IDS:
            recent.popitem(last=False)
        metrics.observe_prediction(model.alias, seconds, rows=len(rows))

    async def shadow(rows: list[dict[str, Any]], ids: list[str]) -> None:
        challenger = registry.models.get(CHALLENGER)
        if challenger is not None:
            values, seconds = await scored(challenger, rows)
            record(challenger, rows, ids, values, seconds, served=False)

    async def predict_rows(rows: list[dict[str, Any]]) -> list[Prediction]:
        ids = [uuid.uuid4().hex for _ in rows]
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            variant: str = assign_variant(str(row[schema.id_column]), online, salt=name)
            if variant == CHALLENGER and CHALLENGER not in registry.models:
                variant = CHAMPION
            groups.setdefault(variant, []).append(i)
        answers: list[Prediction | None] = [None] * len(rows)
        for alias, members in groups.items():
            model = held(alias)
            chosen = [rows[i] for i in members]
            values, seconds = await scored(model, chosen)
            record(model, chosen, [ids[i] for i in members], values, seconds, served=True)
            for i, value in zip(members, values, strict=True):
                label = int(value >= 0.5) if task == "binary_classification" else None
                answers[i] = Prediction(
                    prediction_id=ids[i],
                    variant=model.alias,
                    model_version=model.version,
                    prediction=value,
                    label=label,
                )
        if online.mode == "shadow" and CHALLENGER in registry.models:
            # After the answers: shadow scoring never adds to the caller's latency.
            task_ = asyncio.create_task(shadow(rows, ids))
            pending.add(task_)
            task_.add_done_callback(pending.discard)
        return [answer for answer in answers if answer is not None]

    batcher = MicroBatcher(predict_rows, settings.max_batch_rows)

    @app.post(
        "/predict",
        response_model=Prediction,
        responses=refusals(400, 401, 411, 413, 503),
        dependencies=[Depends(authorised)],
    )
    async def predict(request: row_model) -> Prediction:  # type: ignore[valid-type]
        return await batcher.submit(request.model_dump())  # type: ignore[attr-defined]

    @app.post(
        "/predict/batch",
        response_model=BatchPrediction,
        responses=refusals(400, 401, 411, 413, 503),
        dependencies=[Depends(authorised)],
    )
    async def predict_batch(request: batch_model) -> BatchPrediction:  # type: ignore[valid-type]
        rows = [row.model_dump() for row in request.rows]  # type: ignore[attr-defined]
        return BatchPrediction(predictions=await predict_rows(rows))

    @app.post(
        "/feedback",
        status_code=202,
        responses=refusals(400, 401, 404, 411, 413),
        dependencies=[Depends(authorised)],
    )
    async def feedback(body: feedback_body) -> dict[str, str]:  # type: ignore[valid-type]
        prediction_id: str = body.prediction_id  # type: ignore[attr-defined]
        known = prediction_id in recent or await asyncio.to_thread(
            buffer.target.has_prediction, prediction_id
        )
        if not known:
            raise HTTPException(status_code=404, detail=f"prediction_id {prediction_id} is unknown")
        label = float(body.label)  # type: ignore[attr-defined]
        buffer.feedback.append(FeedbackRecord(prediction_id=prediction_id, label=label))
        return {"status": "accepted"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        body = {
            "ready": CHAMPION in registry.models,
            "models": {alias: m.version for alias, m in registry.models.items()},
            "registry_error": registry.last_error,
            "last_checked": registry.last_checked.isoformat() if registry.last_checked else None,
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metadata", response_model=Metadata)
    async def metadata() -> Metadata:
        return Metadata(
            model_name=name,
            online_mode=online.mode,
            variants={
                alias: {
                    "version": m.version,
                    "alias": alias,
                    "snapshot_id": m.snapshot_id,
                    "data_sha256": m.train_sha256,
                    "trained_at": m.trained_at,
                }
                for alias, m in registry.models.items()
            },
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        return metrics.render()

    app.state.registry, app.state.buffer = registry, buffer
    return app
