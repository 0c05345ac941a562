"""The HTTP server: uvicorn, with a deadline for each request's headers and a connection bound.

uvicorn closes a keep-alive connection left idle after an answer (`timeout_keep_alive`) and
answers 503 beyond `limit_concurrency`, but it sets no deadline on what a client has still to
send: a connection that sends nothing, or half a request line, or headers a byte a second, is
held for ever, and a few hundred of them hold every connection the process can have. Its
protocol classes take no such setting (0.55), so `HeaderDeadline` adds one to its httptools
protocol: the parser's callbacks say exactly when a request begins and when its headers are
complete, where a socket-level timer could only guess. The body's deadline is kept by the app
(`app.LimitAndCount`): there it can be a 408 the client reads, counted like every answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ..config import ServeConfig


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers are late: a new
    connection must send them within `seconds` of connecting, a kept-alive one within `seconds`
    of the next request's first byte (until then `timeout_keep_alive` applies)."""

    seconds = 10.0  # set per server by `header_deadline`

    def __init__(self, config: Config, server_state: ServerState, **kwargs: Any) -> None:
        super().__init__(config, server_state, **kwargs)
        self.headers_due: asyncio.TimerHandle | None = None

    def _expect_headers(self) -> None:
        if self.headers_due is None:
            self.headers_due = self.loop.call_later(self.seconds, self._headers_late)

    def _headers_arrived(self) -> None:
        if self.headers_due is not None:
            self.headers_due.cancel()
            self.headers_due = None

    def _headers_late(self) -> None:
        self.headers_due = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request waits while the one before it is answered: not the client's delay.
            self._expect_headers()
            return
        # Nothing is answered: a client that has not finished a request cannot be relied on to
        # read an answer, and would take a 408 on an idle connection for the answer to its next.
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect_headers()

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        super().on_headers_complete()


def header_deadline(seconds: float) -> type[HeaderDeadline]:
    """`HeaderDeadline` with its deadline set (uvicorn makes each connection's protocol from a
    class and its own `Config`, which has no place for it)."""
    return type("HeaderDeadline", (HeaderDeadline,), {"seconds": seconds})


def server_options(settings: ServeConfig) -> dict[str, Any]:
    """uvicorn's settings for the connections `serve` takes (with `uvicorn.run` or a `Config`).

    uvicorn counts the connection asking among those open, so `max_connections` open connections
    are served and a request on one more gets the 503."""
    return {
        "access_log": False,
        "http": header_deadline(settings.header_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections + 1,
    }
