"""The service's routes: plain async functions of the parsed body and the service state.

FastAPI hands each route the app's `ServiceState` and checks the API key through dependencies
declared once here, so a test can call a route with a body and a state, without HTTP. The
request models are built from the data schema at run time; `WithBody` gives FastAPI a route's
signature with the real model, so validation, 422 answers and the API schema all follow it.
"""

from __future__ import annotations

import inspect
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel

from .schemas import BatchPrediction, ErrorDetail, Metadata, Prediction, RequestModels
from .state import NoModelError, ServiceState

Answer = TypeVar("Answer")

REFUSALS = {
    400: "The body is not JSON",
    401: "X-API-Key is required and missing or wrong",
    404: "Unknown prediction_id",
    408: "The body did not arrive within serve.body_timeout_seconds",
    411: "A body without a Content-Length header",
    413: "The body is over serve.max_body_bytes",
    503: "No model is loaded for the request's variant",
}


def json_safe(value: Any) -> Any:
    """`value` as JSON can carry it: a non-finite number as its text (`nan`, `inf`), and text
    that is not valid Unicode (a lone surrogate) with the offending code points escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


async def validation_refused(request: Request, error: Exception) -> JSONResponse:  # noqa: ARG001
    """The 422 of a body that fails validation, naming each field whatever the input held.
    FastAPI's own answer echoes the input, so a NaN, `1e400` or a lone surrogate in it made
    the answer itself fail to encode, as a 500."""
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    return JSONResponse({"detail": json_safe(jsonable_encoder(errors))}, status_code=422)


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Statuses a route answers besides 2xx and validation's 422: the API schema lists them, so
    clients (and schema-driven fuzzers) know every answer they can get."""
    return {status: {"model": ErrorDetail, "description": REFUSALS[status]} for status in statuses}


# --- dependencies ------------------------------------------------------------------------------


async def service_state(request: Request) -> ServiceState:
    """The state of the app serving the request (`create_app` puts it on `app.state`). Async,
    so FastAPI calls it on the loop rather than handing it to a thread per request."""
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(service_state)]


async def authorised(
    state: StateDep,
    x_api_key: Annotated[str, Header(include_in_schema=False)] = "",
) -> None:
    """Refuse the request unless the service needs no key or `X-API-Key` holds it. The header is
    left out of the API schema: it is not a parameter of the route, and most services have none."""
    if state.api_key is None:
        return
    if not secrets.compare_digest(x_api_key.encode(), state.api_key.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")


# --- routes ----------------------------------------------------------------------------------


def _unavailable(error: NoModelError) -> HTTPException:
    return HTTPException(status_code=503, detail=str(error))


async def predict(body: BaseModel, state: StateDep) -> Prediction:
    """Score one row; concurrent requests are scored together in one model call."""
    try:
        return await state.predict_row(state.admit(body))
    except NoModelError as error:
        raise _unavailable(error) from error


async def predict_batch(body: BaseModel, state: StateDep) -> BatchPrediction:
    """Score up to `serve.max_batch_rows` rows in one request."""
    rows = [state.admit(row) for row in dict(body)["rows"]]
    try:
        return BatchPrediction(predictions=await state.predict_rows(rows))
    except NoModelError as error:
        raise _unavailable(error) from error


async def feedback(body: BaseModel, state: StateDep) -> dict[str, str]:
    """The true label of a prediction this service made, joined to it in the prediction log. A
    second label for the same prediction replaces the first (it is kept in the log's history)."""
    values = body.model_dump()
    prediction_id = str(values["prediction_id"])
    accepted = await state.accept_feedback(
        prediction_id, float(values["label"]), values.get("labelled_by")
    )
    if not accepted:
        raise HTTPException(status_code=404, detail=f"prediction_id {prediction_id} is unknown")
    return {"status": "accepted"}


async def health() -> dict[str, str]:
    """The process answers (it may have no model yet: see /ready)."""
    return {"status": "alive"}


async def ready(state: StateDep) -> JSONResponse:
    """200 once a champion is loaded, else 503; either way, the versions held, the last
    registry error and the prediction log's state, so an outage the service is riding out is
    visible. While log writes fail: 200 with status `degraded`, or 503 with
    `serve.ready_while_log_fails: not_ready`."""
    body = state.models.readiness()
    body["prediction_log"] = log = state.log.readiness()
    if log["state"] == "failing" and state.settings.ready_while_log_fails == "not_ready":
        body["ready"] = False
    degraded = body["ready"] and (log["state"] == "failing" or body["registry_error"])
    body["status"] = "degraded" if degraded else "ready" if body["ready"] else "not_ready"
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def metadata(state: StateDep) -> Metadata:
    """The registered model, the online experiment and each loaded variant's lineage."""
    return Metadata(
        model_name=state.model_name,
        online_mode=state.online.mode,
        variants={alias: model.lineage() for alias, model in state.models.models.items()},
    )


async def prometheus(state: StateDep) -> str:
    """Counters and latency histograms in Prometheus' text format."""
    models = state.models.models.values()
    return state.metrics.render((m.alias, m.version, m.scorer.kind) for m in models)


class WithBody(Generic[Answer]):
    """A route whose body model exists only at run time, as FastAPI must see it.

    FastAPI reads a route's parameters from its signature: this one is the route's own, with
    `body` typed by the model built from the data schema.
    """

    def __init__(
        self, route: Callable[[BaseModel, ServiceState], Awaitable[Answer]], model: type[BaseModel]
    ) -> None:
        self.route = route
        self.__doc__ = route.__doc__
        signature = inspect.signature(route, eval_str=True)
        self.__signature__ = signature.replace(
            parameters=[
                parameter.replace(annotation=model) if name == "body" else parameter
                for name, parameter in signature.parameters.items()
            ]
        )

    async def __call__(self, body: BaseModel, state: ServiceState) -> Answer:
        return await self.route(body, state)


OPENAPI_URL = "/openapi.json"


def docs_router(schema: Callable[[], dict[str, Any]], title: str, mode: str) -> APIRouter:
    """`/openapi.json` and `/docs`. With `with_key` they need X-API-Key whenever the service
    does, like every route that holds data about the model; `open` serves them to anyone,
    `hidden` not at all. Neither is in the API schema itself."""
    router = APIRouter(include_in_schema=False)
    if mode == "hidden":
        return router
    keyed = [Depends(authorised)] if mode == "with_key" else []

    async def openapi() -> JSONResponse:
        return JSONResponse(schema())

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{title}: API")

    router.add_api_route(OPENAPI_URL, openapi, methods=["GET"], dependencies=keyed)
    router.add_api_route("/docs", docs, methods=["GET"], dependencies=keyed)
    return router


def build_router(bodies: RequestModels) -> APIRouter:
    """Every route of the service, with the request models built for this project."""
    router = APIRouter()
    scoring = refusals(400, 401, 408, 411, 413, 503)
    keyed = [Depends(authorised)]
    router.add_api_route(
        "/predict",
        WithBody(predict, bodies.row),
        name="predict",
        methods=["POST"],
        response_model=Prediction,
        responses=scoring,
        dependencies=keyed,
    )
    router.add_api_route(
        "/predict/batch",
        WithBody(predict_batch, bodies.batch),
        name="predict_batch",
        methods=["POST"],
        response_model=BatchPrediction,
        responses=scoring,
        dependencies=keyed,
    )
    router.add_api_route(
        "/feedback",
        WithBody(feedback, bodies.feedback),
        name="feedback",
        methods=["POST"],
        status_code=202,
        responses=refusals(400, 401, 404, 408, 411, 413),
        dependencies=keyed,
    )
    router.add_api_route("/health", health, methods=["GET"])
    router.add_api_route("/ready", ready, methods=["GET"])
    router.add_api_route("/metadata", metadata, methods=["GET"], response_model=Metadata)
    router.add_api_route("/metrics", prometheus, methods=["GET"], response_class=PlainTextResponse)
    return router
