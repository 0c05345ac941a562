"""The app factory: one `ServiceState`, the routes, the body-size guard and the lifespan.

A model call costs about the same for one row as for dozens, so concurrent /predict requests
are micro-batched into one call (`state.py` says where it runs). Shadow scoring of the
challenger runs after the answers are sent, so it never adds to the caller's latency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Project
from ..redaction import redact_logs
from .routes import build_router, docs_router, validation_refused
from .schemas import RequestModels
from .server import server_options
from .state import ServiceState

log = logging.getLogger(__name__)


def create_app(project: Project) -> FastAPI:
    """A service for the project's registered model; nothing is loaded until start-up."""
    state = ServiceState(project)
    # The API's own description is served by `docs_router`, behind the key as configured.
    app = FastAPI(
        title=state.model_name, lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.service = state
    app.add_middleware(LimitAndCount)
    app.add_exception_handler(RequestValidationError, validation_refused)
    app.include_router(build_router(RequestModels.for_schema(state.schema, state.settings)))
    app.include_router(docs_router(app.openapi, state.model_name, state.settings.api_docs))
    return app


def run_server(project: Project, host: str | None = None, port: int | None = None) -> None:
    """Serve with uvicorn until interrupted; the log buffer is flushed on shutdown."""
    import uvicorn

    redact_logs()
    settings = project.config.serve
    uvicorn.run(
        create_app(project),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        **server_options(settings),
    )


async def every(
    seconds: float, work: Callable[[], Awaitable[Any]], *, at_once: bool = False
) -> None:
    """Run `work` every `seconds` until cancelled (the first time at once when `at_once`), on a
    fixed cadence: the time a cycle takes comes out of the wait, so a log flush under load still
    starts once per interval (a crash then loses at most one interval). A failed cycle is
    logged, not fatal."""
    loop = asyncio.get_running_loop()
    due = loop.time() - (seconds if at_once else 0.0)
    while True:
        due = max(due + seconds, loop.time())  # after a cycle longer than the interval: no burst
        await asyncio.sleep(due - loop.time())
        try:
            await work()
        except Exception:
            log.exception("background task failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Follow the registry, flush the log and run the micro-batcher while serving; on shutdown,
    finish shadow scoring and flush what is left.

    Start-up waits for no backend: the first registry poll runs while the server already
    answers. A registry that does not answer (a PostgreSQL host that drops packets, a hung
    tracking server) held start-up, and with it /health, for minutes, so a liveness probe
    killed a service that was only waiting; now /health answers at once and /ready says what
    is missing until the champion is loaded. Traffic is gated on /ready, as before."""
    state: ServiceState = app.state.service
    settings = state.settings
    loops = [
        asyncio.create_task(
            every(settings.registry_poll_seconds, state.follow_registry, at_once=True)
        ),
        asyncio.create_task(every(settings.flush_seconds, state.log.flush)),
        asyncio.create_task(state.batcher.run()),
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await state.close()


class LimitAndCount:
    """Refuse a body over `serve.max_body_bytes` before it is read, answer 408 to one that does
    not arrive within `serve.body_timeout_seconds`, and count every answer.

    Plain ASGI, not `BaseHTTPMiddleware`: that one runs each request in a task group of its
    own, which cost more per request than everything else the service does for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: ServiceState = scope["app"].state.service
        limit = state.settings.max_body_bytes
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        refusal = None
        # A refused body is left unread: the connection closes after the answer, or a client
        # could go on sending it, a byte at a time, and hold the connection.
        if length is not None and (not length.isdigit() or int(length) > limit):
            refusal = JSONResponse(
                {"detail": f"request body over {limit} bytes"}, status_code=413, headers=CLOSE
            )
        elif length is None and "transfer-encoding" in headers:
            # A chunked body has no length to check up front: it would be read whole, any size.
            refusal = JSONResponse(
                {"detail": "send the body with a Content-Length header"},
                status_code=411,
                headers=CLOSE,
            )
        status = 500  # what the client gets when the app fails before answering

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if refusal is not None:
                await refusal(scope, receive, counted)
            else:
                await self.app(
                    scope, body_due(receive, state.settings.body_timeout_seconds), counted
                )
        finally:
            state.metrics.observe_request(route_label(scope), status)


CLOSE = {"connection": "close"}


def body_due(receive: Receive, seconds: float) -> Receive:
    """`receive`, failing with a 408 once the body has taken `seconds` since the request began.

    A deadline for the whole body, not for each read: a client that sends a byte a second never
    stalls a read for long, yet holds the request (and its connection) as long as it likes. An
    HTTPException is what FastAPI lets out of its body reading (anything else it turns into a
    400), so the 408 is answered and counted like every other refusal; the connection closes
    after it, as the rest of the body may still be on its way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def timed() -> Message:
        try:
            async with asyncio.timeout_at(deadline):
                return await receive()
        except TimeoutError:
            raise HTTPException(
                status_code=408,
                detail=f"the request body did not arrive within {seconds:g} s",
                headers=CLOSE,
            ) from None

    return timed


# The label of requests that match no route: one series for every unknown path, however many.
UNMATCHED = "unmatched"


def route_label(scope: Scope) -> str:
    """The template of the route a request went to (`/predict`), never its raw path: a path is
    the client's text, and counting by it would let anyone add series to /metrics, or lines.
    A request refused before routing (413, 411) counts under its path only when that is an API
    route's own (the API's paths are a fixed set)."""
    if (route := scope.get("route")) is not None:
        return str(route.path)
    path = scope["path"]
    return str(path) if path in scope["app"].openapi()["paths"] else UNMATCHED
