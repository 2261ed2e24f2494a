"""Client-side batching: records are sent together when `max_records` are waiting or
`max_seconds` after the first one, whichever comes first. `flush()` and leaving the `with`
block send what is left; a failed send raises from the call that triggered it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from igloo_sdk.client import Client, IngestResult


class Batcher:
    def __init__(self, client: Client, model: str, *, max_records: int = 1000, max_seconds: float = 0.2) -> None:
        self.client = client
        self.model = model
        self.max_records = max_records
        self.max_seconds = max_seconds
        self._pending: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._error: Exception | None = None
        self.sent = 0

    def add(self, record: Mapping[str, Any]) -> None:
        self._raise_pending_error()
        with self._lock:
            self._pending.append(record)
            full = len(self._pending) >= self.max_records
            if not full and self._timer is None:
                self._timer = threading.Timer(self.max_seconds, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> IngestResult | None:
        with self._lock:
            batch, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._raise_pending_error()
        if not batch:
            return None
        result = self.client.ingest(self.model, list(batch))
        self.sent += len(batch)
        return result

    def _flush_from_timer(self) -> None:
        try:
            self.flush()
        except Exception as e:  # raised by the next add() or flush()
            self._error = e

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def __enter__(self) -> Batcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
