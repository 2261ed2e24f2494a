// Runtime tests against a local HTTP stub (the protocol, not an engine): retries and backoff,
// error mapping, gzip, batching. End-to-end tests against `igloo dev` live in cli/tests/sdk.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";
import { IglooClient, IglooError, IngestError, Batcher } from "../dist/index.js";

async function stub(script) {
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      const [status, headers, payload] = script.shift() ?? [200, {}, { accepted: 0 }];
      if (status === 0) {
        // The answer is lost: the connection closes without one.
        req.socket.destroy();
        return;
      }
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(JSON.stringify(payload));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, requests, close: () => server.close() };
}

test("retries 503 honouring Retry-After", async () => {
  const s = await stub([[503, { "Retry-After": "0.2" }, { error: "down", details: [] }], [200, {}, { accepted: 1 }]]);
  const started = Date.now();
  assert.deepEqual(await new IglooClient(s.url).ingest("M", { a: 1 }), { accepted: 1 });
  assert.ok(Date.now() - started >= 190);
  assert.equal(s.requests.length, 2);
  s.close();
});

test("a batch keeps its idempotency key through retries and lost answers", async () => {
  const s = await stub([[503, {}, { error: "down", details: [] }], [0, {}, null], [200, {}, { accepted: 1 }]]);
  const c = new IglooClient(s.url, { backoffMs: 5 });
  assert.deepEqual(await c.ingest("M", { a: 1 }), { accepted: 1 });
  const keys = s.requests.map((r) => r.headers["idempotency-key"]);
  assert.equal(keys.length, 3);
  assert.equal(new Set(keys).size, 1);
  assert.equal(keys[0].length, 36);
  await c.ingest("M", { a: 1 });
  await c.ingest("M", { a: 1 }, { idempotencyKey: "order-7" });
  assert.ok(!keys.includes(s.requests[3].headers["idempotency-key"]));
  assert.equal(s.requests[4].headers["idempotency-key"], "order-7");
  s.close();
});

test("gives up after the retries", async () => {
  const s = await stub(Array(3).fill([503, {}, { error: "down", details: [] }]));
  await assert.rejects(new IglooClient(s.url, { retries: 2, backoffMs: 5 }).ingest("M", { a: 1 }), (e) => e instanceof IglooError && e.status === 503);
  assert.equal(s.requests.length, 3);
  s.close();
});

test("rejected records carry the server's report, and are not retried", async () => {
  const details = [{ index: 1, path: "time", reason: "expected an integer" }];
  const s = await stub([[400, {}, { error: "1 of 2 records are invalid", details }]]);
  await assert.rejects(new IglooClient(s.url).ingest("M", [{ time: 1 }, { time: "x" }]), (e) => {
    assert.ok(e instanceof IngestError);
    assert.deepEqual(e.records, details);
    assert.match(e.message, /1 of 2 records are invalid/);
    return true;
  });
  assert.equal(s.requests.length, 1);
  s.close();
});

test("large bodies are gzipped NDJSON; bigints stay exact", async () => {
  const s = await stub([[200, {}, { accepted: 500 }]]);
  await new IglooClient(s.url).ingest("M", Array.from({ length: 500 }, (_, n) => ({ n, big: 9007199254740993n })));
  const r = s.requests[0];
  assert.equal(r.headers["content-encoding"], "gzip");
  const lines = gunzipSync(r.body).toString().split("\n");
  assert.equal(lines.length, 500);
  assert.equal(JSON.parse(lines[7]).big, "9007199254740993");
  s.close();
});

test("unreachable server is an error after the retries", async () => {
  await assert.rejects(new IglooClient("http://127.0.0.1:1", { retries: 1, backoffMs: 5 }).ingest("M", {}), (e) => e.status === 0 && /cannot reach/.test(e.message));
});

test("query and samples send typed parameters", async () => {
  const s = await stub([[200, {}, [{ tag: "a" }]], [200, {}, { samples: [] }]]);
  const c = new IglooClient(s.url);
  assert.deepEqual(await c.query("tag_stats", { start: 1, limit: undefined, flag: true }), [{ tag: "a" }]);
  await c.samples("Measurement", "a b", 1, 2n, { points: 10, agg: "max" });
  assert.equal(s.requests[0].url, "/consumption/tag_stats?start=1&flag=true");
  assert.equal(s.requests[1].url, "/api/Measurement/samples?series=a+b&start=1&end=2&points=10&agg=max");
  s.close();
});

test("the batcher sends on size and on time", async () => {
  const s = await stub([]);
  const b = new Batcher(new IglooClient(s.url), "M", { maxRecords: 3, maxMs: 50 });
  for (let i = 0; i < 3; i++) await b.add({ n: i });
  assert.equal(s.requests.length, 1);
  await b.add({ n: 3 });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(s.requests.length, 2);
  await b.add({ n: 4 });
  await b.flush();
  assert.equal(s.requests.length, 3);
  assert.equal(b.sent, 5);
  s.close();
});

/** Each GET answers the next list of [id, record] as SSE, then closes; records Last-Event-ID. */
async function sseStub(script) {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push(req.headers["last-event-id"] ?? null);
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    for (const [id, record] of script.shift() ?? []) {
      res.write(`event: record\nid: ${id}\ndata: ${JSON.stringify(record)}\n\n`);
    }
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

test("subscribe resumes after a dropped connection without loss or repeats", async () => {
  const s = await sseStub([[["0:1", { n: 1 }], ["0:2", { n: 2 }]], [["0:3", { n: 3 }]]]);
  const got = [];
  const ids = [];
  for await (const r of new IglooClient(s.url, { backoffMs: 5 }).subscribe("M", {}, { onEventId: (id) => ids.push(id) })) {
    got.push(r.n);
    if (got.length === 3) break;
  }
  assert.deepEqual(got, [1, 2, 3]);
  assert.deepEqual(s.seen, [null, "0:2"]);
  assert.deepEqual(ids, ["0:1", "0:2", "0:3"]);
  s.close();
});

test("subscribe starts after an earlier event id, and can end with the stream", async () => {
  const s = await sseStub([[["0:9", { n: 9 }]]]);
  const got = [];
  for await (const r of new IglooClient(s.url).subscribe("M", { tag: "a" }, { resumeFrom: "0:8", reconnect: false })) {
    got.push(r.n);
  }
  assert.deepEqual(got, [9]);
  assert.deepEqual(s.seen, ["0:8"]);
  s.close();
});

test("an API key goes as a bearer credential; a 401 is not retried", async () => {
  const s = await stub([[200, {}, { accepted: 1 }], [401, { "WWW-Authenticate": "Bearer" }, { error: "bad key", details: [] }]]);
  await new IglooClient(s.url, { apiKey: "igloo_k" }).ingest("M", { a: 1 });
  assert.equal(s.requests[0].headers.authorization, "Bearer igloo_k");
  await assert.rejects(new IglooClient(s.url, { apiKey: "wrong" }).ingest("M", { a: 1 }), (e) => e instanceof IglooError && e.status === 401);
  assert.equal(s.requests.length, 2);
  s.close();
});

test("<igloo-timeseries>'s live events send the credential in a header and reconnect", async () => {
  // elements.js defines custom elements; Node has none, so it gets a stand-in base class.
  globalThis.HTMLElement ??= class {};
  const { credentialEvents } = await import("../dist/elements.js");
  const seen = [];
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(req.headers.authorization === "Bearer k1" ? 200 : 401, { "Content-Type": "text/event-stream" });
    // The first connection ends after one event: the helper reconnects.
    res.end(seen.length === 1 ? 'event: record\ndata: {"n":1}\n\n' : 'event: record\ndata: {"n":2}\nid: 2\n\n');
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const got = [];
  let opened = 0;
  const source = credentialEvents(`http://127.0.0.1:${server.address().port}/subscribe/M`, "k1");
  source.onopen = () => opened++;
  source.addEventListener("record", (e) => got.push(JSON.parse(e.data).n));
  for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  source.close();
  server.close();
  assert.deepEqual(got, [1, 2]);
  assert.ok(opened >= 2, `opened ${opened} times`);
  assert.ok(seen.every((a) => a === "Bearer k1"), JSON.stringify(seen));
});
