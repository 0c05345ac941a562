"""Work the service gathers up and does in batches: model calls and prediction-log writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..predictions import FeedbackRecord, PredictionLog, PredictionRecord

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
    """Rows wait here at most one flush interval before they are written to the prediction log:
    one SQLite transaction per interval instead of one per request."""

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
