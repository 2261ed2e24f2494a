"""Runtime tests against a local HTTP stub (the protocol, not an engine): retries and backoff,
error mapping, gzip, batching. End-to-end tests against `igloo dev` live in cli/tests/sdk.rs."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from igloo_sdk import Batcher, Client, IglooError, IngestError


class Stub:
    """Answers each request with the next scripted (status, headers, body); records requests."""

    def __init__(self, script: list[tuple[int, dict[str, str], Any]]) -> None:
        self.script = script
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stub.requests.append((self.command, self.path, dict(self.headers), body))
                status, headers, payload = stub.script.pop(0) if stub.script else (200, {}, {"accepted": 0})
                if status == 0:  # the answer is lost: the connection closes without one
                    self.close_connection = True
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = handle_one
            do_POST = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def stub() -> Iterator[Any]:
    made: list[Stub] = []

    def make(script: list[tuple[int, dict[str, str], Any]]) -> Stub:
        s = Stub(script)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_retries_503_honouring_retry_after(stub: Any) -> None:
    s = stub([(503, {"Retry-After": "0.2"}, {"error": "broker down", "details": []}), (200, {}, {"accepted": 1})])
    started = time.monotonic()
    assert Client(s.url).ingest("M", {"a": 1}) == {"accepted": 1}
    assert time.monotonic() - started >= 0.2
    assert len(s.requests) == 2


def test_a_batch_keeps_its_idempotency_key_through_retries_and_lost_answers(stub: Any) -> None:
    s = stub([(503, {}, {"error": "down", "details": []}), (0, {}, None), (200, {}, {"accepted": 1})])
    c = Client(s.url, backoff=0.01)
    assert c.ingest("M", {"a": 1}) == {"accepted": 1}
    keys = [headers["Idempotency-Key"] for _, _, headers, _ in s.requests]
    assert len(keys) == 3 and len(set(keys)) == 1 and len(keys[0]) == 36, keys
    # The next batch has a key of its own; a caller's key is sent as given.
    c.ingest("M", {"a": 1})
    c.ingest("M", {"a": 1}, idempotency_key="order-7")
    assert s.requests[3][2]["Idempotency-Key"] not in keys
    assert s.requests[4][2]["Idempotency-Key"] == "order-7"


def test_gives_up_after_the_retries(stub: Any) -> None:
    s = stub([(503, {}, {"error": "down", "details": []})] * 3)
    with pytest.raises(IglooError) as e:
        Client(s.url, retries=2, backoff=0.01).ingest("M", {"a": 1})
    assert e.value.status == 503 and len(s.requests) == 3


def test_rejected_records_carry_the_servers_report(stub: Any) -> None:
    details = [{"index": 1, "path": "time", "reason": "expected an integer"}]
    s = stub([(400, {}, {"error": "1 of 2 records are invalid", "details": details})])
    with pytest.raises(IngestError) as e:
        Client(s.url).ingest("M", [{"time": 1}, {"time": "x"}])
    assert e.value.status == 400 and e.value.records == details
    assert "1 of 2 records are invalid" in str(e.value)
    assert len(s.requests) == 1, "a 400 is not retried"


def test_large_bodies_are_gzipped_as_ndjson(stub: Any) -> None:
    s = stub([(200, {}, {"accepted": 500})])
    Client(s.url).ingest("M", [{"n": i} for i in range(500)])
    _, path, headers, body = s.requests[0]
    assert path == "/ingest/M" and headers["Content-Encoding"] == "gzip"
    assert [json.loads(line)["n"] for line in gzip.decompress(body).splitlines()] == list(range(500))


def test_unreachable_server_is_an_error_after_retries() -> None:
    with pytest.raises(IglooError) as e:
        Client("http://127.0.0.1:1", retries=1, backoff=0.01).ingest("M", {"a": 1})
    assert e.value.status == 0 and "cannot reach" in e.value.message


def test_query_and_samples_send_typed_parameters(stub: Any) -> None:
    s = stub([(200, {}, [{"tag": "a"}]), (200, {}, {"samples": []})])
    c = Client(s.url)
    assert c.query("tag_stats", {"start": 1, "limit": None, "flag": True}) == [{"tag": "a"}]
    c.samples("Measurement", "a b", 1, 2, points=10, agg="max")
    assert s.requests[0][1] == "/consumption/tag_stats?start=1&flag=true"
    assert s.requests[1][1] == "/api/Measurement/samples?series=a+b&start=1&end=2&points=10&agg=max"


def test_batcher_flushes_on_size_and_on_time(stub: Any) -> None:
    s = stub([])
    b = Batcher(Client(s.url), "M", max_records=3, max_seconds=0.1)
    for i in range(3):
        b.add({"n": i})
    assert len(s.requests) == 1, "a full batch goes at once"
    b.add({"n": 3})
    time.sleep(0.3)
    assert len(s.requests) == 2, "a partial batch goes after max_seconds"
    with b:
        b.add({"n": 4})
    assert len(s.requests) == 3 and b.sent == 5


def test_async_client_ingests_queries_and_subscribes() -> None:
    import asyncio

    from igloo_sdk import AsyncClient

    class Sse(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/subscribe/M?tag=a"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for n in range(2):
                    self.wfile.write(f'event: record\ndata: {{"tag":"a","n":{n}}}\n\n'.encode())
                    self.wfile.flush()
                return
            body = b'[{"n": 1}]'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"accepted": 1}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = AsyncClient(f"http://127.0.0.1:{server.server_address[1]}")

    async def main() -> list[dict[str, Any]]:
        assert await client.ingest("M", {"a": 1}) == {"accepted": 1}
        assert await client.query("api") == [{"n": 1}]
        got = []
        async for record in client.subscribe("M", tag="a", reconnect=False):
            got.append(record)
        return got

    try:
        assert asyncio.run(main()) == [{"tag": "a", "n": 0}, {"tag": "a", "n": 1}]
    finally:
        server.shutdown()


class SseScript(BaseHTTPRequestHandler):
    """Each GET /subscribe answers the next scripted list of (id, record), then closes the
    stream, or holds it open when the list ends with None. Records each Last-Event-ID."""

    script: list[list[Any]] = []
    seen_ids: list[str | None] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen_ids.append(self.headers.get("Last-Event-ID"))
        events = type(self).script.pop(0) if type(self).script else []
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for item in events:
            if item is None:
                while True:  # held open until the client goes away
                    time.sleep(0.05)
                    try:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                    except OSError:
                        return
            event_id, record = item
            self.wfile.write(f"event: record\nid: {event_id}\ndata: {json.dumps(record)}\n\n".encode())
            self.wfile.flush()


def sse_server(script: list[list[Any]]) -> tuple[ThreadingHTTPServer, type[SseScript]]:
    handler = type("Handler", (SseScript,), {"script": script, "seen_ids": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_subscribe_resumes_after_a_dropped_connection_without_loss_or_repeats() -> None:
    server, handler = sse_server([[("0:1", {"n": 1}), ("0:2", {"n": 2})], [("0:3", {"n": 3})]])
    client = Client(f"http://127.0.0.1:{server.server_address[1]}", backoff=0.01)
    got = []
    try:
        for record in client.subscribe("M"):
            got.append(record["n"])
            if len(got) == 3:
                break
    finally:
        server.shutdown()
    assert got == [1, 2, 3]
    assert handler.seen_ids == [None, "0:2"]


def test_subscribe_can_start_after_an_earlier_event_id() -> None:
    server, handler = sse_server([[("0:9", {"n": 9})]])
    client = Client(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        assert [r["n"] for r in client.subscribe("M", resume_from="0:8", reconnect=False)] == [9]
    finally:
        server.shutdown()
    assert handler.seen_ids == ["0:8"]


def test_async_subscribe_stops_its_thread_when_the_iterator_is_closed() -> None:
    import asyncio

    from igloo_sdk import AsyncClient

    server, _ = sse_server([[("0:1", {"n": 1}), None]])
    client = AsyncClient(f"http://127.0.0.1:{server.server_address[1]}")

    def readers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name == "igloo-sdk-reader"]

    async def main() -> None:
        async for record in client.subscribe("M"):
            assert record == {"n": 1}
            assert readers() == ["igloo-sdk-reader"]
            break

    try:
        asyncio.run(main())
        assert readers() == []
    finally:
        server.shutdown()


def test_async_export_streams_rows() -> None:
    import asyncio

    from igloo_sdk import AsyncClient

    class Ndjson(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            assert self.path == "/export/M?format=ndjson"
            body = b'{"a": 1}\n{"a": 2}\n'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ndjson)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = AsyncClient(f"http://127.0.0.1:{server.server_address[1]}")

    async def main() -> list[dict[str, Any]]:
        return [row async for row in client.export("M")]

    try:
        assert asyncio.run(main()) == [{"a": 1}, {"a": 2}]
    finally:
        server.shutdown()


def test_an_api_key_goes_as_a_bearer_credential_and_a_401_is_not_retried(stub: Any) -> None:
    s = stub([(200, {}, {"accepted": 1}), (401, {"WWW-Authenticate": "Bearer"}, {"error": "bad key", "details": []})])
    Client(s.url, api_key="igloo_k").ingest("M", {"a": 1})
    assert s.requests[0][2]["Authorization"] == "Bearer igloo_k"
    with pytest.raises(IglooError) as e:
        Client(s.url, api_key="wrong").ingest("M", {"a": 1})
    assert e.value.status == 401 and str(e.value).endswith("bad key") and len(s.requests) == 2
    s2 = stub([(200, {}, {"accepted": 1})])
    Client(s2.url).ingest("M", {"a": 1})
    assert "Authorization" not in s2.requests[0][2]
