"""The synchronous client."""

from __future__ import annotations

import gzip
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypedDict, Union

SampleAgg = Literal["last", "min", "max", "avg"]


class RecordError(TypedDict):
    """One problem of one record, as the server reports it."""

    index: int
    path: str
    reason: str


class IngestResult(TypedDict, total=False):
    accepted: int
    rejected: list[RecordError]


class IglooError(Exception):
    """The server answered with an error: `status`, its message and details."""

    def __init__(self, status: int, message: str, details: list[Any]) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.details = details


class IngestError(IglooError):
    """Records were rejected; `details` lists every bad record (index, path, reason)."""

    @property
    def records(self) -> list[RecordError]:
        return [d for d in self.details if isinstance(d, dict)]  # type: ignore[misc]


Records = Union[Mapping[str, Any], list[Mapping[str, Any]], list[Any]]


def _json_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Client:
    """Talks to one igloo server.

    Retries what may succeed later — 503 (honouring Retry-After), 429, 502, 504, refused or
    dropped connections and timeouts — with exponential backoff and jitter, up to `retries`
    times. Each ingest call sends an `Idempotency-Key` and reuses it on every retry, so a batch
    whose answer was lost lands once. Bodies above `gzip_above` bytes are gzipped.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:4000",
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        gzip_above: int = 1024,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # An API key (`igloo keys create`) or a JWT, sent as `Authorization: Bearer …`.
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.gzip_above = gzip_above

    # -- ingest ---------------------------------------------------------------------------

    def ingest(
        self, model: str, records: Records, *, partial: bool = False, idempotency_key: str | None = None
    ) -> IngestResult:
        """POST /ingest/{model}: one record or a list; returns once the broker has them all.

        The batch goes with an `Idempotency-Key` (a new UUID unless `idempotency_key` is given:
        pass your own to keep it across restarts of your program), the same on every retry:
        the server writes the batch once however often it arrives within its window (24 h by
        default)."""
        batch = [records] if isinstance(records, Mapping) else list(records)
        body = "\n".join(json.dumps(r, separators=(",", ":"), default=_json_default) for r in batch).encode()
        path = f"/ingest/{urllib.parse.quote(model)}" + ("?partial=true" if partial else "")
        headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if len(body) > self.gzip_above:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        result: IngestResult = self._request("POST", path, body, headers, error=IngestError)
        return result

    # -- reading --------------------------------------------------------------------------

    def query(self, api: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """GET /consumption/{api}: the rows as dicts. `None` parameters are left out."""
        rows: list[dict[str, Any]] = self._request("GET", f"/consumption/{urllib.parse.quote(api)}" + _query(params or {}))
        return rows

    def samples(
        self, model: str, series: Any, start: int, end: int, points: int = 1000, agg: SampleAgg = "last"
    ) -> dict[str, Any]:
        """GET /api/{model}/samples: `{"series", "start", "end", "points", "agg", "samples"}`."""
        params = {"series": series, "start": start, "end": end, "points": points, "agg": agg}
        response: dict[str, Any] = self._request("GET", f"/api/{urllib.parse.quote(model)}/samples" + _query(params))
        return response

    def export(self, model: str, start: int | None = None, end: int | None = None) -> Iterator[dict[str, Any]]:
        """GET /export/{model} as NDJSON, row by row."""
        params = {"start": start, "end": end, "format": "ndjson"}
        with self._open("GET", f"/export/{urllib.parse.quote(model)}" + _query(params), None, {}) as resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)

    def subscribe(
        self, model: str, *, resume_from: str | None = None, reconnect: bool = True, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """GET /subscribe/{model}: new records as they arrive (blocks; stop by breaking out).

        A dropped connection is reopened (with backoff) from the last record received, sent
        as `Last-Event-ID`: nothing is lost or repeated. `resume_from` starts after an event
        id a previous subscription saw (`Subscription.last_event_id`); `reconnect=False` ends
        the iteration when the server closes the stream."""
        sub = Subscription(self, model, filters, resume_from, reconnect)
        try:
            yield from sub
        finally:
            sub.close()

    def _sse_open(self, path: str, last_event_id: str | None) -> Any:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return self._open("GET", path, None, headers, timeout=None)

    # -- transport ------------------------------------------------------------------------

    def _open(self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float | None = -1.0) -> Any:
        if self.api_key is not None:
            headers = {**headers, "Authorization": f"Bearer {self.api_key}"}
        req = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        return urllib.request.urlopen(req, timeout=self.timeout if timeout == -1.0 else timeout)

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
        error: type[IglooError] = IglooError,
    ) -> Any:
        attempt = 0
        while True:
            try:
                with self._open(method, path, body, headers or {}) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if e.code in (429, 502, 503, 504) and attempt < self.retries:
                    time.sleep(self._delay(attempt, retry_after))
                    attempt += 1
                    continue
                try:
                    payload = json.loads(text)
                    message, details = str(payload.get("error", text)), list(payload.get("details", []))
                except (ValueError, AttributeError):
                    message, details = text, []
                raise error(e.code, message, details) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                # Refused, dropped (the answer lost), timed out: retried (ingest is idempotent).
                if attempt < self.retries:
                    time.sleep(self._delay(attempt, None))
                    attempt += 1
                    continue
                reason = e.reason if isinstance(e, urllib.error.URLError) else e
                raise IglooError(0, f"cannot reach {self.base_url}: {reason}", []) from None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_backoff)
            except ValueError:
                pass
        delay: float = min(self.backoff * 2.0**attempt, self.max_backoff)
        return delay * (0.5 + random.random() / 2)


def _query(params: Mapping[str, Any]) -> str:
    pairs = [(k, _text(v)) for k, v in params.items() if v is not None]
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Subscription:
    """One subscription's stream of records across reconnections. `close()` (from any thread)
    ends it: the open response is closed, which wakes a reader blocked on it."""

    def __init__(
        self, client: Client, model: str, filters: Mapping[str, Any], resume_from: str | None, reconnect: bool
    ) -> None:
        self.client = client
        self.path = f"/subscribe/{urllib.parse.quote(model)}" + _query(filters)
        self.last_event_id = resume_from
        self.reconnect = reconnect
        self._closed = threading.Event()
        self._resp: Any = None

    def close(self) -> None:
        self._closed.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.close()
            except Exception:  # already closed or mid-read: either way it stops
                pass

    def __iter__(self) -> Iterator[dict[str, Any]]:
        attempt = 0
        while not self._closed.is_set():
            try:
                self._resp = self.client._sse_open(self.path, self.last_event_id)
                attempt = 0
                yield from self._events(self._resp)
            except urllib.error.HTTPError as e:
                if e.code not in (429, 502, 503, 504) or not self.reconnect:
                    text = e.read().decode(errors="replace")
                    try:
                        message = str(json.loads(text).get("error", text))
                    except (ValueError, AttributeError):
                        message = text
                    raise IglooError(e.code, message, []) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
                if self._closed.is_set():
                    return
                if not self.reconnect:
                    raise IglooError(0, f"subscription to {self.path} broke: {e}", []) from None
            finally:
                if self._resp is not None:
                    self._resp.close()
                    self._resp = None
            if not self.reconnect or self._closed.is_set():
                return
            self._closed.wait(self.client._delay(attempt, None))
            attempt += 1

    def _events(self, resp: Any) -> Iterator[dict[str, Any]]:
        data: list[str] = []
        event_id: str | None = None
        for raw in resp:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif not line and data:
                record = json.loads("\n".join(data))
                if event_id is not None:
                    self.last_event_id = event_id
                data, event_id = [], None
                yield record
