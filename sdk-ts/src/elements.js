// @ts-check
// Web components for browsers (no dependencies, no build step; the igloo dev console serves
// this file as is):
//
//   <igloo-chart>       a line chart of the series you give it (`chart.series = [...]`).
//   <igloo-timeseries>  the downsampled series of one tag from GET /api/<Model>/samples,
//                       redrawn live as GET /subscribe/<Model> reports new events.
//
//   import "igloo-sdk/elements";   // defines both elements
//   <igloo-timeseries model="Measurement" series="tag-1" window="3600"></igloo-timeseries>

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"];
const PAD = { left: 56, right: 12, top: 12, bottom: 26 };

/** Units of a time series' integer times per millisecond. */
const PER_MS = { ns: 1e6, us: 1e3, ms: 1, s: 1e-3 };

/**
 * @typedef {[number, number | null]} Point  x (ms since the epoch), y (null: a gap)
 * @typedef {{ name: string, points: Point[] }} Series
 */

/** Tick labels: round numbers, short units (1.2k, 3.4M). */
export function formatNumber(/** @type {number} */ v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return String(+v.toPrecision(3));
}

/** A round step (1, 2 or 5 × 10^k) near `span / 4`. */
function niceStep(/** @type {number} */ span) {
  const raw = span / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function formatTime(/** @type {number} */ ms, /** @type {number} */ span) {
  const d = new Date(ms);
  const iso = d.toISOString();
  if (span > 2 * 86400e3) return iso.slice(5, 10);
  if (span > 600e3) return iso.slice(11, 16);
  return iso.slice(11, 19);
}

/**
 * `<igloo-chart>`: lines over time. Set `series` (x in ms since the epoch), and `domain`
 * (`[fromMs, toMs]`) to fix the x axis instead of fitting the data; attributes `label` (y
 * axis) and `height` (px).
 * Gaps (null y) break a line; a point alone is a dot. Renders SVG in its shadow root: one
 * `path.line` per series (`data-series` is its name) and a `circle.dot` per lone point.
 */
export class IglooChart extends HTMLElement {
  static observedAttributes = ["label", "height"];

  constructor() {
    super();
    /** @type {Series[]} */
    this._series = [];
    /** @type {[number, number] | null} */
    this._domain = null;
    this.attachShadow({ mode: "open" });
    // Drawn at the element's own width, so text keeps its size.
    this.resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => this.render());
  }

  /** @param {[number, number] | null} value */
  set domain(value) {
    this._domain = value;
    this.render();
  }

  get domain() {
    return this._domain;
  }

  /** @param {Series[]} value */
  set series(value) {
    this._series = value;
    this.render();
  }

  get series() {
    return this._series;
  }

  connectedCallback() {
    this.resize?.observe(this);
    this.render();
  }

  disconnectedCallback() {
    this.resize?.disconnect();
  }

  attributeChangedCallback() {
    this.render();
  }

  render() {
    const root = /** @type {ShadowRoot} */ (this.shadowRoot);
    const height = Number(this.getAttribute("height")) || 180;
    const width = Math.max(240, Math.round(this.clientWidth) || 640);
    const points = this._series.flatMap((s) => s.points.filter((p) => p[1] !== null && Number.isFinite(p[1])));
    root.innerHTML = `<style>
      :host { display: block; font: 11px system-ui, sans-serif; color: #374151; }
      svg { display: block; width: 100%; }
      .axis { stroke: #d1d5db; } .grid { stroke: #f3f4f6; }
      .line { fill: none; stroke-width: 1.5; }
      .legend { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 2px; }
      .legend span::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; background: var(--c); }
      .empty { fill: #9ca3af; }
    </style>`;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", String(height));
    root.append(svg);
    const label = this.getAttribute("label") ?? "";
    // A y-axis title gets a line of its own above the plot, clear of the top tick's label.
    const pad = { ...PAD, top: label ? PAD.top + 14 : PAD.top };
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    if (!points.length) {
      svg.append(text(pad.left + w / 2, pad.top + h / 2, "no data yet", "middle", "empty"));
      return;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => /** @type {number} */ (p[1]));
    let [x0, x1] = this._domain ?? [Math.min(...xs), Math.max(...xs)];
    if (x1 <= x0) x1 = x0 + 1000;
    const step = niceStep(Math.max(...ys, 0) - Math.min(0, ...ys) || 1);
    const y0 = Math.floor(Math.min(0, ...ys) / step) * step;
    const y1 = Math.max(Math.ceil(Math.max(...ys) / step) * step, y0 + step);
    const sx = (/** @type {number} */ x) => pad.left + ((x - x0) / (x1 - x0)) * w;
    const sy = (/** @type {number} */ y) => pad.top + h - ((y - y0) / (y1 - y0)) * h;
    for (let y = y0; y <= y1 + step / 2; y += step) {
      svg.append(line(pad.left, sy(y), pad.left + w, sy(y), y === y0 ? "axis" : "grid"));
      svg.append(text(pad.left - 4, sy(y) + 3, formatNumber(+y.toPrecision(12)), "end"));
    }
    for (let i = 0; i <= 4; i++) {
      const x = x0 + ((x1 - x0) * i) / 4;
      svg.append(text(sx(x), height - 8, formatTime(x, x1 - x0), i === 0 ? "start" : i === 4 ? "end" : "middle"));
    }
    if (label) svg.append(text(4, PAD.top - 2, label, "start"));
    const legend = document.createElement("div");
    legend.className = "legend";
    this._series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      let d = "";
      s.points.forEach(([x, y], j) => {
        if (y === null || !Number.isFinite(y)) return;
        const [px, py] = [sx(x).toFixed(1), sy(y).toFixed(1)];
        const before = s.points[j - 1]?.[1];
        const after = s.points[j + 1]?.[1];
        const joined = before !== null && before !== undefined && Number.isFinite(before);
        d += `${joined ? "L" : "M"}${px},${py}`;
        if (!joined && (after === null || after === undefined || !Number.isFinite(after))) {
          // A point with no neighbour draws no line: mark it.
          const dot = document.createElementNS(SVG, "circle");
          for (const [k, v] of Object.entries({ cx: px, cy: py, r: "2.5", fill: color, class: "dot" })) dot.setAttribute(k, v);
          svg.append(dot);
        }
      });
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("class", "line");
      path.setAttribute("stroke", color);
      path.setAttribute("d", d);
      path.setAttribute("data-series", s.name);
      svg.append(path);
      const last = [...s.points].reverse().find((p) => p[1] !== null);
      const item = document.createElement("span");
      item.style.setProperty("--c", color);
      item.textContent = `${s.name}${last ? ` ${formatNumber(/** @type {number} */ (last[1]))}` : ""}`;
      legend.append(item);
    });
    root.append(legend);
  }
}

function line(/** @type {number} */ x1, /** @type {number} */ y1, /** @type {number} */ x2, /** @type {number} */ y2, /** @type {string} */ cls) {
  const l = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1, y1, x2, y2 })) l.setAttribute(k, String(v));
  l.setAttribute("class", cls);
  return l;
}

function text(/** @type {number} */ x, /** @type {number} */ y, /** @type {string} */ s, /** @type {string} */ anchor, cls = "") {
  const t = document.createElementNS(SVG, "text");
  t.setAttribute("x", String(x));
  t.setAttribute("y", String(y));
  t.setAttribute("text-anchor", anchor);
  t.setAttribute("fill", "currentColor");
  if (cls) t.setAttribute("class", cls);
  t.textContent = s;
  return t;
}

/**
 * Server-sent events sent with `Authorization: Bearer <credential>` (EventSource cannot send
 * headers): the `onopen`/`onerror`/`addEventListener`/`close` of an EventSource, reconnecting
 * after a second. Without a credential, a plain EventSource.
 * @typedef {{ onopen: (() => void) | null, onerror: (() => void) | null, addEventListener(type: string, fn: (e: { data: string }) => void): void, close(): void }} Events
 */
/** @param {string} url @param {string | null | undefined} credential @returns {Events} */
export function credentialEvents(url, credential) {
  if (!credential) return /** @type {Events} */ (/** @type {unknown} */ (new EventSource(url)));
  /** @type {Record<string, ((e: { data: string }) => void)[]>} */
  const listeners = {};
  const abort = new AbortController();
  let closed = false;
  /** @type {Events} */
  const source = {
    onopen: null,
    onerror: null,
    addEventListener: (type, fn) => {
      (listeners[type] ??= []).push(fn);
    },
    close: () => {
      closed = true;
      abort.abort();
    },
  };
  (async () => {
    while (!closed) {
      try {
        const resp = await fetch(url, { headers: { Accept: "text/event-stream", Authorization: `Bearer ${credential}` }, signal: abort.signal });
        if (!resp.ok || !resp.body) throw new Error(String(resp.status));
        source.onopen?.();
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let type = "message";
        /** @type {string[]} */
        let data = [];
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let nl;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, nl).replace(/\r$/, "");
            buffer = buffer.slice(nl + 1);
            if (line === "") {
              if (data.length) for (const fn of listeners[type] ?? []) fn({ data: data.join("\n") });
              type = "message";
              data = [];
            } else if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
        }
      } catch {
        if (closed) return;
      }
      source.onerror?.();
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return source;
}

/**
 * `<igloo-timeseries>`: one series of a `@@timeseries` model, downsampled by the server.
 *
 * Attributes: `model` (required), `series` (the tag, required), `base-url` (default: this
 * page's origin), `value` (the values field, default `values`), `index` (element of a list
 * field, default 0), `window` (seconds back from now, default 3600; or `start` / `end` in the
 * model's unit), `points` (default 200), `unit` (ns | us | ms | s, default ns),
 * `series-field` (the model's series field, for the live filter; default `tag`), `agg`
 * (last | min | max | avg). `live="false"` turns the subscription off. `token`: an API key
 * or JWT sent as `Authorization: Bearer …` (needed when the server has `server.auth: required`).
 *
 * Fires `igloo-data` after each redraw with `detail.samples` (the samples drawn).
 */
export class IglooTimeseries extends HTMLElement {
  static observedAttributes = ["model", "series", "base-url", "value", "index", "window", "start", "end", "points", "unit", "agg", "live", "token"];

  /** The events helper, for pages that share the element's credential handling. */
  static credentialEvents = credentialEvents;

  constructor() {
    super();
    this.chart = /** @type {IglooChart} */ (document.createElement("igloo-chart"));
    this.status = document.createElement("div");
    this.status.setAttribute("part", "status");
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>:host{display:block} [part=status]{font:11px system-ui,sans-serif;color:#6b7280;min-height:14px}</style>`;
    root.append(this.chart, this.status);
    /** @type {Events | null} */
    this.source = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.pending = null;
    this.fetching = false;
  }

  connectedCallback() {
    this.restart();
  }

  disconnectedCallback() {
    this.source?.close();
    this.source = null;
    if (this.pending) clearTimeout(this.pending);
  }

  attributeChangedCallback() {
    if (this.isConnected) this.restart();
  }

  /** @param {string} name @param {string} fallback */
  attr(name, fallback) {
    return this.getAttribute(name) ?? fallback;
  }

  get baseUrl() {
    return this.attr("base-url", globalThis.location?.origin ?? "").replace(/\/$/, "");
  }

  restart() {
    this.source?.close();
    this.source = null;
    this.removeAttribute("data-live");
    const model = this.getAttribute("model");
    const series = this.getAttribute("series");
    if (!model || !series) {
      this.status.textContent = "set model and series";
      return;
    }
    void this.refresh();
    if (this.attr("live", "true") !== "false" && typeof EventSource !== "undefined") {
      const filter = `${encodeURIComponent(this.attr("series-field", "tag"))}=${encodeURIComponent(series)}`;
      const source = credentialEvents(`${this.baseUrl}/subscribe/${encodeURIComponent(model)}?${filter}`, this.getAttribute("token"));
      this.source = source;
      // The event is on the topic; give the table writer a moment, then ask again.
      source.addEventListener("record", () => this.schedule(700));
      // Open (the server has placed the stream at the topic's end): ask again once, for what
      // arrived between the first fetch and now. `data-live` tells pages and tests it is live.
      source.onopen = () => {
        if (this.source !== source) return;
        this.setAttribute("data-live", "open");
        this.schedule(700);
      };
      source.onerror = () => {
        if (this.source === source) this.setAttribute("data-live", "reconnecting");
      };
    }
  }

  /** Refetch after `ms`, at most one pending refetch at a time. */
  schedule(/** @type {number} */ ms) {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      void this.refresh();
    }, ms);
  }

  async refresh() {
    if (this.fetching) return this.schedule(300);
    this.fetching = true;
    try {
      const unit = /** @type {keyof typeof PER_MS} */ (this.attr("unit", "ns"));
      const perMs = PER_MS[unit] ?? 1e6;
      const nowMs = Date.now();
      const start = this.getAttribute("start") ?? toUnit(nowMs - Number(this.attr("window", "3600")) * 1000, perMs);
      const end = this.getAttribute("end") ?? toUnit(nowMs + 1000, perMs);
      const q = new URLSearchParams({ series: this.attr("series", ""), start, end, points: this.attr("points", "200"), agg: this.attr("agg", "last") });
      const token = this.getAttribute("token");
      const headers = token ? { Authorization: `Bearer ${token}` } : undefined;
      const resp = await fetch(`${this.baseUrl}/api/${encodeURIComponent(this.attr("model", ""))}/samples?${q}`, { headers });
      const body = await resp.json();
      if (!resp.ok) throw new Error(body.error ?? resp.statusText);
      const field = this.attr("value", "values");
      const index = Number(this.attr("index", "0"));
      /** @type {Point[]} */
      const points = body.samples.map((/** @type {Record<string, unknown>} */ s) => {
        const v = s[field];
        const y = Array.isArray(v) ? v[index] : v;
        return [Number(s.time) / perMs, y === null || y === undefined ? null : Number(y)];
      });
      const label = Array.isArray(body.samples.find((/** @type {any} */ s) => s[field] != null)?.[field]) ? `${field}[${index}]` : field;
      this.chart.domain = [Number(start) / perMs, Number(end) / perMs];
      this.chart.series = [{ name: `${this.attr("series", "")} ${label}`, points }];
      const shown = points.filter((p) => p[1] !== null).length;
      this.status.textContent = `${shown} of ${points.length} samples have data · ${new Date().toLocaleTimeString()}`;
      this.dispatchEvent(new CustomEvent("igloo-data", { detail: { samples: body.samples } }));
    } catch (e) {
      this.status.textContent = `cannot load samples: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      this.fetching = false;
    }
  }
}

/** Milliseconds → an integer time in the series' unit, as text (exact past 2^53). */
function toUnit(/** @type {number} */ ms, /** @type {number} */ perMs) {
  return perMs >= 1 ? (BigInt(Math.round(ms)) * BigInt(perMs)).toString() : String(Math.floor(ms * perMs));
}

if (typeof customElements !== "undefined") {
  if (!customElements.get("igloo-chart")) customElements.define("igloo-chart", IglooChart);
  if (!customElements.get("igloo-timeseries")) customElements.define("igloo-timeseries", IglooTimeseries);
}
