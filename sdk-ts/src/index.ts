// igloo's TypeScript client: ingest records, call consumption APIs, read time-series samples
// and subscribe to new records. Node ≥ 20 (global fetch), no dependencies. Typed per-project
// functions come from `igloo generate sdk --lang ts`.

import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";

export interface RecordError {
  index: number;
  path: string;
  reason: string;
}

export interface IngestResult {
  accepted: number;
  rejected?: RecordError[];
}

export type SampleAgg = "last" | "min" | "max" | "avg";

export interface SamplesResponse {
  series: string;
  start: number;
  end: number;
  points: number;
  agg: SampleAgg;
  samples: Array<Record<string, unknown>>;
}

/** The server answered with an error: its status, message and details. */
export class IglooError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: unknown[],
  ) {
    super(`${status}: ${message}`);
    this.name = "IglooError";
  }
}

/** Records were rejected; `records` lists every bad one (index, path, reason). */
export class IngestError extends IglooError {
  get records(): RecordError[] {
    return this.details.filter((d): d is RecordError => typeof d === "object" && d !== null);
  }
}

export interface ClientOptions {
  /** Per request, ms. */
  timeoutMs?: number;
  /** Retries of 429/502/503/504 and refused connections. */
  retries?: number;
  /** First backoff, ms; doubles per retry, with jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Bodies above this many bytes are gzipped. */
  gzipAbove?: number;
  /** An API key (`igloo keys create`) or a JWT, sent as `Authorization: Bearer …`. */
  apiKey?: string;
}

type Params = Record<string, string | number | bigint | boolean | null | undefined>;

export interface SubscribeOptions {
  /** Ends the subscription. */
  signal?: AbortSignal;
  /** Start after this event id (from an earlier subscription's `onEventId`). */
  resumeFrom?: string;
  /** Reopen a dropped stream from the last event (default true). */
  reconnect?: boolean;
  /** Called with each event's id: where to resume from later. */
  onEventId?: (id: string) => void;
}

/** The events of a server-sent event stream: `data` lines joined, with the event's `id`. */
async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<{ id?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let id: string | undefined;
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line.startsWith("data:")) {
        data.push(line.slice(5).trimStart());
      } else if (line.startsWith("id:")) {
        id = line.slice(3).trim();
      } else if (line === "" && data.length) {
        yield { id, data: data.join("\n") };
        data = [];
        id = undefined;
      }
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function toJson(record: unknown): string {
  return JSON.stringify(record, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

function query(params: Params): string {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null);
  return pairs.length ? "?" + new URLSearchParams(pairs.map(([k, v]) => [k, String(v)])).toString() : "";
}

/** Talks to one igloo server. */
export class IglooClient {
  readonly baseUrl: string;
  private readonly opts: Required<Omit<ClientOptions, "apiKey">>;
  private readonly auth: Record<string, string>;

  constructor(baseUrl = "http://127.0.0.1:4000", options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    const { apiKey, ...rest } = options;
    this.opts = { timeoutMs: 30_000, retries: 5, backoffMs: 100, maxBackoffMs: 5_000, gzipAbove: 1024, ...rest };
    this.auth = apiKey === undefined ? {} : { Authorization: `Bearer ${apiKey}` };
  }

  /**
   * POST /ingest/{model}: resolves once the broker has every record.
   *
   * The batch goes with an `Idempotency-Key` (a new UUID unless `idempotencyKey` is given:
   * pass your own to keep it across restarts of your program), the same on every retry: the
   * server writes the batch once however often it arrives within its window (24 h by default).
   */
  async ingest(
    model: string,
    records: unknown,
    options: { partial?: boolean; idempotencyKey?: string } = {},
  ): Promise<IngestResult> {
    const batch = Array.isArray(records) ? records : [records];
    let body: string | Uint8Array = batch.map(toJson).join("\n");
    const headers: Record<string, string> = {
      "Content-Type": "application/x-ndjson",
      "Idempotency-Key": options.idempotencyKey ?? randomUUID(),
    };
    if (Buffer.byteLength(body) > this.opts.gzipAbove) {
      body = gzipSync(body);
      headers["Content-Encoding"] = "gzip";
    }
    const path = `/ingest/${encodeURIComponent(model)}${options.partial ? "?partial=true" : ""}`;
    return (await this.request("POST", path, body, headers, IngestError)) as IngestResult;
  }

  /** GET /consumption/{api}: the rows. */
  async query(api: string, params: Params = {}): Promise<Array<Record<string, unknown>>> {
    return (await this.request("GET", `/consumption/${encodeURIComponent(api)}${query(params)}`)) as Array<
      Record<string, unknown>
    >;
  }

  /** GET /api/{model}/samples. */
  async samples(
    model: string,
    series: string,
    start: number | bigint,
    end: number | bigint,
    options: { points?: number; agg?: SampleAgg } = {},
  ): Promise<SamplesResponse> {
    const params = { series, start, end, points: options.points ?? 1000, agg: options.agg ?? "last" };
    return (await this.request("GET", `/api/${encodeURIComponent(model)}/samples${query(params)}`)) as SamplesResponse;
  }

  /**
   * GET /subscribe/{model}: new records as they arrive; `break` (or `signal`) ends it.
   *
   * A dropped connection is reopened (with backoff) from the last record received, sent as
   * `Last-Event-ID`: nothing is lost or repeated. `resumeFrom` starts after an event id an
   * earlier subscription saw (`options.onEventId` reports each); `reconnect: false` ends the
   * iteration when the server closes the stream.
   */
  async *subscribe(
    model: string,
    filters: Params = {},
    options: SubscribeOptions | AbortSignal = {},
  ): AsyncGenerator<Record<string, unknown>, void, undefined> {
    const opts: SubscribeOptions = options instanceof AbortSignal ? { signal: options } : options;
    const path = `/subscribe/${encodeURIComponent(model)}${query(filters)}`;
    let lastEventId = opts.resumeFrom;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (lastEventId) {
        headers["Last-Event-ID"] = lastEventId;
      }
      try {
        const resp = await fetch(this.baseUrl + path, { headers: { ...headers, ...this.auth }, signal: opts.signal });
        if (!resp.ok || !resp.body) {
          if (![429, 502, 503, 504].includes(resp.status) || opts.reconnect === false) {
            throw await this.error(resp, IglooError);
          }
          await resp.text();
        } else {
          attempt = 0;
          for await (const event of sseEvents(resp.body as unknown as AsyncIterable<Uint8Array>)) {
            if (event.id !== undefined) {
              lastEventId = event.id;
              opts.onEventId?.(event.id);
            }
            yield JSON.parse(event.data) as Record<string, unknown>;
          }
        }
      } catch (e) {
        if (e instanceof IglooError || opts.signal?.aborted || opts.reconnect === false) {
          throw e;
        }
      }
      if (opts.reconnect === false || opts.signal?.aborted) {
        return;
      }
      await sleep(this.delay(attempt, null));
    }
  }

  private async request(
    method: string,
    path: string,
    body?: string | Uint8Array,
    headers: Record<string, string> = {},
    errorType: typeof IglooError = IglooError,
  ): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      let resp: Response;
      try {
        resp = await fetch(this.baseUrl + path, {
          method,
          headers: { ...headers, ...this.auth },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
      } catch (e) {
        if (attempt < this.opts.retries) {
          await sleep(this.delay(attempt, null));
          continue;
        }
        throw new IglooError(0, `cannot reach ${this.baseUrl}: ${(e as Error).message}`, []);
      }
      if (resp.ok) {
        const text = await resp.text();
        return text ? JSON.parse(text) : null;
      }
      if ([429, 502, 503, 504].includes(resp.status) && attempt < this.opts.retries) {
        await resp.text();
        await sleep(this.delay(attempt, resp.headers.get("Retry-After")));
        continue;
      }
      throw await this.error(resp, errorType);
    }
  }

  private async error(resp: Response, errorType: typeof IglooError): Promise<IglooError> {
    const text = await resp.text();
    try {
      const payload = JSON.parse(text) as { error?: string; details?: unknown[] };
      return new errorType(resp.status, payload.error ?? text, payload.details ?? []);
    } catch {
      return new errorType(resp.status, text, []);
    }
  }

  private delay(attempt: number, retryAfter: string | null): number {
    const seconds = retryAfter === null ? NaN : Number(retryAfter);
    if (!Number.isNaN(seconds)) {
      return Math.min(seconds * 1000, this.opts.maxBackoffMs);
    }
    return Math.min(this.opts.backoffMs * 2 ** attempt, this.opts.maxBackoffMs) * (0.5 + Math.random() / 2);
  }
}

/**
 * Client-side batching: records go together when `maxRecords` wait or `maxMs` after the first,
 * whichever comes first. `flush()` sends what is left; a failed timed send rejects the next
 * `add()` or `flush()`.
 */
export class Batcher<T = unknown> {
  private pending: T[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failure: unknown = null;
  private inflight: Promise<unknown> = Promise.resolve();
  sent = 0;

  constructor(
    private readonly client: IglooClient,
    private readonly model: string,
    private readonly options: { maxRecords?: number; maxMs?: number } = {},
  ) {}

  async add(record: T): Promise<void> {
    this.throwFailure();
    this.pending.push(record);
    if (this.pending.length >= (this.options.maxRecords ?? 1000)) {
      await this.flush();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.flush().catch((e) => (this.failure = e));
      }, this.options.maxMs ?? 200);
    }
  }

  async flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.pending;
    this.pending = [];
    await this.inflight;
    this.throwFailure();
    if (batch.length) {
      const send = this.client.ingest(this.model, batch).then(() => {
        this.sent += batch.length;
      });
      this.inflight = send.catch(() => undefined);
      await send;
    }
  }

  private throwFailure(): void {
    if (this.failure !== null) {
      const e = this.failure;
      this.failure = null;
      throw e;
    }
  }
}
