"""igloo's Python client: ingest records, call consumption APIs, read time-series samples and
subscribe to new records. Standard library only; `Client` is synchronous, `AsyncClient` wraps
it for asyncio. Typed per-project functions come from `igloo generate sdk --lang py`."""

from igloo_sdk.aio import AsyncClient
from igloo_sdk.batcher import Batcher
from igloo_sdk.client import Client, IglooError, IngestError, IngestResult, RecordError, SampleAgg, Subscription

__all__ = [
    "AsyncClient",
    "Batcher",
    "Client",
    "IglooError",
    "IngestError",
    "IngestResult",
    "RecordError",
    "SampleAgg",
    "Subscription",
]
