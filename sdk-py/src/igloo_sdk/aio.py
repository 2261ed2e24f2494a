"""asyncio over the synchronous client: each call runs in a worker thread, so the event loop
never blocks on the network. Standard library only."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from igloo_sdk.client import Client, IngestResult, Records


class AsyncClient:
    def __init__(self, base_url: str = "http://127.0.0.1:4000", **options: Any) -> None:
        self.sync = Client(base_url, **options)

    async def ingest(self, model: str, records: Records, *, partial: bool = False) -> IngestResult:
        return await asyncio.to_thread(self.sync.ingest, model, records, partial=partial)

    async def query(self, api: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.query, api, params)

    async def samples(
        self, model: str, series: Any, start: int, end: int, points: int = 1000, agg: str = "last"
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.samples, model, series, start, end, points, agg)

    async def subscribe(self, model: str, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """New records as they arrive; a reader thread feeds the loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def read() -> None:
            try:
                for record in self.sync.subscribe(model, **filters):
                    loop.call_soon_threadsafe(queue.put_nowait, record)
            except Exception as e:  # handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, e)
            loop.call_soon_threadsafe(queue.put_nowait, done)

        threading.Thread(target=read, daemon=True).start()
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            yield item
