"""asyncio over the synchronous client: each call runs in a worker thread, so the event loop
never blocks on the network. Standard library only."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Callable

from igloo_sdk.client import Client, IngestResult, Records, SampleAgg, Subscription


class AsyncClient:
    def __init__(self, base_url: str = "http://127.0.0.1:4000", **options: Any) -> None:
        self.sync = Client(base_url, **options)

    async def ingest(
        self, model: str, records: Records, *, partial: bool = False, idempotency_key: str | None = None
    ) -> IngestResult:
        return await asyncio.to_thread(
            self.sync.ingest, model, records, partial=partial, idempotency_key=idempotency_key
        )

    async def query(self, api: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.query, api, params)

    async def samples(
        self, model: str, series: Any, start: int, end: int, points: int = 1000, agg: SampleAgg = "last"
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.samples, model, series, start, end, points, agg)

    async def export(self, model: str, start: int | None = None, end: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """GET /export/{model} as NDJSON, row by row."""
        async for row in _threaded(lambda: self.sync.export(model, start, end), None):
            yield row

    async def subscribe(
        self, model: str, *, resume_from: str | None = None, reconnect: bool = True, **filters: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """New records as they arrive, resumed after a dropped connection (see
        `Client.subscribe`). Closing the iterator (leaving `async for`) stops its thread."""
        sub = Subscription(self.sync, model, filters, resume_from, reconnect)
        async for record in _threaded(lambda: iter(sub), sub.close):
            yield record


async def _threaded(
    make: Callable[[], Iterator[dict[str, Any]]], stop: Callable[[], None] | None
) -> AsyncIterator[dict[str, Any]]:
    """Runs a blocking iterator in a thread, handing its items to the loop. When the consumer
    leaves early, `stop` wakes the thread and it ends."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = object()
    leaving = threading.Event()

    def read() -> None:
        try:
            for item in make():
                if leaving.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except Exception as e:  # handed to the consumer
            if not leaving.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, e)
        if not leaving.is_set():
            loop.call_soon_threadsafe(queue.put_nowait, done)

    thread = threading.Thread(target=read, daemon=True, name="igloo-sdk-reader")
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        leaving.set()
        if stop is not None:
            stop()
            await asyncio.to_thread(thread.join, 5)
