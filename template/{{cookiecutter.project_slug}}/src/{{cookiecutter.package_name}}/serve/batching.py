"""Work the service gathers up and does in batches: model calls and prediction-log writes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ..predictions import LogRecord, PredictionLog, refused_rows, short_reason
from ..redaction import redact
from .prometheus import LogCounters

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class MicroBatcher(Generic[Item, Answer]):
    """Concurrent requests share one model call: the model's cost is per call, not per row.

    Whatever has queued while the previous batch was handled forms the next batch, so a lone
    request waits for nothing and a burst is handled together. `run` must be running (the app's
    lifespan starts it) for `submit` to get an answer.
    """

    def __init__(
        self, handle: Callable[[list[Item]], Awaitable[list[Answer]]], max_items: int
    ) -> None:
        self.handle, self.max_items = handle, max_items
        self.queue: asyncio.Queue[tuple[Item, asyncio.Future[Answer]]] = asyncio.Queue()

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future))
        return await future

    async def run(self) -> None:
        while True:
            waiting = [await self.queue.get()]
            while len(waiting) < self.max_items and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
            try:
                answers = await self.handle([item for item, _ in waiting])
            except Exception as error:  # each waiting request gets the error (e.g. no model)
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), answer in zip(waiting, answers, strict=True):
                if not future.done():
                    future.set_result(answer)


class LogBuffer:
    """Prediction-log rows on their way to the database: each flush writes what has queued, in
    one transaction per `batch_rows`, instead of one transaction per request.

    While the database cannot be written (down, restarting, locked) the rows stay queued and
    every flush retries them: an outage costs memory up to `max_rows` queued rows (besides the
    batch being written), never a request. Beyond that bound the oldest rows are dropped and
    counted. Rows are upserted by key, so a batch written twice (a flush cancelled at shutdown
    and retried) is stored once. Only the event loop touches the queue; writes run in a thread.
    """

    def __init__(
        self,
        target: PredictionLog,
        max_rows: int,
        counters: LogCounters | None = None,
        batch_rows: int = 5_000,
    ) -> None:
        self.target, self.max_rows, self.batch_rows = target, max_rows, batch_rows
        self.counters = counters or LogCounters()
        self.queued: deque[LogRecord] = deque()
        self.in_flight = 0
        self.flushing = asyncio.Lock()
        self.outage_started: float | None = None  # time.monotonic() of the first failed write
        self.failure: str | None = None  # why the last write failed, redacted; None once one works
        self.dropped_before_outage = 0

    @property
    def pending(self) -> int:
        return len(self.queued) + self.in_flight

    @property
    def unreachable(self) -> bool:
        """The last write failed: the log's database is down (or refuses this release)."""
        return self.outage_started is not None

    def readiness(self) -> dict[str, Any]:
        """What `/ready` says of the log: `writing`, or `failing` with the reason, for how long,
        and how many rows wait (the bound and the rows dropped so far, so the loss is visible)."""
        if self.outage_started is None:
            return {"state": "writing", "reason": None, "rows_pending": self.pending}
        return {
            "state": "failing",
            "reason": self.failure,
            "failing_seconds": round(time.monotonic() - self.outage_started, 1),
            "rows_pending": self.pending,
            "max_rows": self.max_rows,
            "rows_dropped": self.counters.dropped - self.dropped_before_outage,
        }

    def add(self, record: LogRecord) -> None:
        self.queued.append(record)
        self._trim()

    def _trim(self) -> None:
        while len(self.queued) > self.max_rows:
            self.queued.popleft()
            self.counters.dropped += 1
        self.counters.pending = self.pending

    async def flush(self) -> None:
        """Write the rows queued now; on failure they go back to the front of the queue (the
        oldest beyond the bound dropped) and the next flush retries. Never raises but for
        cancellation."""
        async with self.flushing:
            remaining = len(self.queued)
            while remaining and self.queued:
                size = min(self.batch_rows, remaining, len(self.queued))
                batch = [self.queued.popleft() for _ in range(size)]
                remaining -= size
                self.in_flight = size
                dropped = self.counters.dropped  # an outage's drops count from its first write
                try:
                    relabels, refused = await asyncio.to_thread(self._write, batch)
                except asyncio.CancelledError:
                    self._requeue(batch)
                    raise
                except Exception as error:
                    self._failed(error, batch, dropped)
                    return
                self.in_flight = 0
                self.counters.relabels += relabels
                self._written(size - len(refused), refused)

    def _requeue(self, batch: list[LogRecord]) -> None:
        self.in_flight = 0
        self.queued.extendleft(reversed(batch))
        self._trim()

    def _write(self, batch: list[LogRecord]) -> tuple[int, list[tuple[LogRecord, Exception]]]:
        """In a worker thread: write the batch; if the database refuses some row in it, write
        the rows one by one and return those it refuses, so one bad row cannot hold the others
        back forever. Returns the relabels stored, and the refused rows. An outage raises."""
        try:
            return self.target.write(batch).relabels, []
        except Exception as error:
            if not refused_rows(error):
                raise
        relabels, refused = 0, []
        for record in batch:
            try:
                relabels += self.target.write([record]).relabels
            except Exception as error:
                if not refused_rows(error):
                    raise
                refused.append((record, error))
        return relabels, refused

    def _written(self, rows: int, refused: list[tuple[LogRecord, Exception]]) -> None:
        self.counters.written += rows
        self.counters.dropped += len(refused)
        self.counters.pending = self.pending
        if refused:
            log.error(
                "the prediction log refused %d rows, dropped (e.g. prediction %s: %s)",
                len(refused),
                refused[0][0].prediction_id,
                short_reason(refused[0][1]),
            )
        if self.outage_started is not None:
            log.warning(
                "prediction log writes resumed after %.1f s; %d rows dropped meanwhile",
                time.monotonic() - self.outage_started,
                self.counters.dropped - self.dropped_before_outage,
            )
            self.outage_started = None
            self.failure = None

    def _failed(self, error: Exception, batch: list[LogRecord], dropped_before: int) -> None:
        """Count the failure and put the batch back; log it once per outage, not once per
        flush. Rows dropped since the failed write began (`dropped_before`: rows queued while
        it waited, and those the batch's return makes room for) count as the outage's."""
        self.counters.write_failures += 1
        self.failure = redact(short_reason(error))
        first = self.outage_started is None
        if first:
            self.outage_started = time.monotonic()
            self.dropped_before_outage = dropped_before
        self._requeue(batch)
        if first:
            log.warning(
                "cannot write the prediction log at %s (%s): %d rows kept and retried every "
                "flush; beyond %d the oldest are dropped",
                self.target.shown_url,
                short_reason(error),
                self.pending,
                self.max_rows,
            )
