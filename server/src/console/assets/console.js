// @ts-check
// The igloo dev console: one page, no framework, no build step. Reads /console/api/* (see
// server/src/console/json.rs, whose structs the typedefs below mirror — a Rust test keeps
// them in step) and the project's public API; charts are sdk-ts's web components.
// Type-checked by tsc (server/src/console/assets/tsconfig.json).

/**
 * @typedef {object} FnName
 * @property {string} ts
 * @property {string} py
 */
/**
 * @typedef {object} FieldInfo
 * @property {string} name
 * @property {string} type
 * @property {string | null} doc
 */
/**
 * @typedef {object} ModelSdk
 * @property {FnName} ingest
 * @property {FnName | null} samples
 */
/**
 * @typedef {object} ModelInfo
 * @property {string} name
 * @property {string | null} doc
 * @property {string} topic
 * @property {number} partitions
 * @property {string} table
 * @property {number | null} rows
 * @property {boolean} ingest
 * @property {{ view?: string, transform?: string } | null} filled_by
 * @property {FieldInfo[]} fields
 * @property {string[]} key
 * @property {{ time: string, unit: string, series: string, values: string[] } | null} timeseries
 * @property {string[]} ingest_routes
 * @property {string[]} samples_routes
 * @property {number} accepted
 * @property {number} rejected
 * @property {number} written
 * @property {number} dead_lettered
 * @property {number} lag
 * @property {number} ingest_rate
 * @property {number} write_rate
 * @property {ModelSdk} sdk
 */
/**
 * @typedef {object} ViewInfo
 * @property {string} model
 * @property {string} select
 */
/**
 * @typedef {object} ApiInfo
 * @property {string} name
 * @property {string | null} doc
 * @property {Array<{ name: string, type: string, default: string | null, doc: string | null }>} params
 * @property {FnName} sdk
 */
/**
 * @typedef {object} TransformInfo
 * @property {string} name
 * @property {string} source
 * @property {string} destination
 * @property {string} language
 * @property {number} workers
 * @property {number} workers_running
 * @property {boolean} running
 * @property {string | null} error
 * @property {number} in
 * @property {number} out
 * @property {number} dropped
 * @property {number} dead_lettered
 * @property {number} crashes
 * @property {number} lag
 */
/**
 * @typedef {object} Overview
 * @property {string} project
 * @property {string} sdk_module
 * @property {string} database
 * @property {string} clickhouse
 * @property {string} bootstrap
 * @property {string[]} problems
 * @property {ModelInfo[]} models
 * @property {ViewInfo[]} views
 * @property {ApiInfo[]} apis
 * @property {TransformInfo[]} transforms
 * @property {number} dead_letters
 */
/**
 * @typedef {object} TopicRow
 * @property {number} partition
 * @property {number} offset
 * @property {number | null} timestamp_ms
 * @property {unknown} record
 */

const POLL_MS = 2000;
/** @type {Overview | null} the latest /console/api/overview */
let overview = null;
let page = null; // { name, update?(overview), leave: [fn] }

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Builds an element: h("td", { class: "num", onclick: fn }, "text", child, [children]). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// With `server.auth: required` the console's data needs an admin key or token: asked for on
// the first 401, kept for this tab only (sessionStorage), sent as `Authorization: Bearer …`.
const CREDENTIAL = "igloo.credential";

/** fetch() with the tab's credential; on a 401, asks for one and tries again. */
async function authFetch(url, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const credential = sessionStorage.getItem(CREDENTIAL);
    const headers = { ...(init.headers ?? {}), ...(credential ? { Authorization: `Bearer ${credential}` } : {}) };
    const resp = await fetch(url, { ...init, headers });
    if (resp.status !== 401 || attempt > 0) return resp;
    const given = window.prompt("This igloo server requires a credential: paste an admin API key (`igloo keys create --scope admin`) or token.");
    if (!given) return resp;
    sessionStorage.setItem(CREDENTIAL, given.trim());
  }
}

/**
 * Server-sent events with the tab's credential: elements.js's `credentialEvents` (loaded
 * first), with EventSource's `onopen`/`onerror`/`addEventListener`/`close`.
 * @param {string} url
 */
function eventSource(url) {
  const timeseries = /** @type {any} */ (customElements.get("igloo-timeseries"));
  return timeseries.credentialEvents(url, sessionStorage.getItem(CREDENTIAL));
}

async function fetchJson(url, init) {
  const resp = await authFetch(url, init);
  const text = await resp.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  if (!resp.ok) {
    const details = Array.isArray(body?.details) && body.details.length ? ` (${body.details.map(detailText).join("; ")})` : "";
    throw new Error(`${resp.status}: ${body?.error ?? text}${details}`);
  }
  return body;
}

function detailText(d) {
  return typeof d === "string" ? d : [d.index !== undefined ? `#${d.index}` : "", d.path, d.reason].filter(Boolean).join(" ");
}

const fmt = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const num = (v) => (v === null || v === undefined ? "–" : fmt.format(v));
const card = (title, ...body) => h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...body);
const table = (head, rows, attrs = {}) =>
  h("table", attrs, h("thead", {}, h("tr", {}, head.map(([label, cls]) => h("th", { class: cls }, label)))), h("tbody", {}, rows));

function prettyText(s) {
  try {
    return JSON.stringify(JSON.parse(s), null, 2);
  } catch {
    return s;
  }
}


const UNIT_PER_MS = { ns: 1000000n, us: 1000n, ms: 1n };
function nowIn(unit, offsetMs = 0) {
  const ms = BigInt(Date.now() + offsetMs);
  return unit === "s" ? (ms / 1000n).toString() : (ms * (UNIT_PER_MS[unit] ?? 1000000n)).toString();
}

function setContent(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

// ---------------------------------------------------------------------------------------------
// Shell: header, problems, polling, routing

/** The element with this id; the page's HTML has every one the script asks for. */
function byId(/** @type {string} */ id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console page: no #${id}`);
  return el;
}

/** An error's message, whatever was thrown. */
const messageOf = (/** @type {unknown} */ e) => (e instanceof Error ? e.message : String(e));

async function poll() {
  /** @type {Overview} */
  let latest;
  try {
    latest = await fetchJson("/console/api/overview");
    overview = latest;
    byId("connection").textContent = "";
  } catch (e) {
    byId("connection").textContent = `server unreachable (${messageOf(e)})`;
    return;
  }
  byId("project").textContent = `${latest.project} · ClickHouse ${latest.clickhouse} · ${latest.database}`;
  byId("dlq-count").textContent = latest.dead_letters ? String(latest.dead_letters) : "";
  const problems = byId("problems");
  problems.hidden = !latest.problems.length;
  setContent(problems, latest.problems.length ? h("strong", { class: "bad" }, "Problems") : null, latest.problems.map((p) => h("pre", {}, p)));
  if (page && !page.started) {
    page.started = true;
    page.start?.(latest);
  }
  page?.update?.(latest);
}

function route() {
  for (const fn of page?.leave ?? []) fn();
  const [name = "", arg = ""] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const pages = { "": overviewPage, data: dataPage, apis: apisPage, ingest: ingestPage, "dead-letters": deadLettersPage };
  const make = pages[name] ?? overviewPage;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a instanceof HTMLElement && a.dataset.page === (name || "overview"));
  const main = byId("main");
  main.replaceChildren();
  page = { name, leave: [], ...make(main, arg) };
  if (overview) {
    page.started = true;
    page.start?.(overview);
    page.update?.(overview);
  }
}

window.addEventListener("hashchange", route);
route();
poll();
setInterval(poll, POLL_MS);

// ---------------------------------------------------------------------------------------------
// Overview

function overviewPage(main) {
  const models = h("div");
  const transforms = h("div");
  const views = h("div");
  const apis = h("div");
  const rate = h("igloo-chart", { label: "events/s", id: "chart-throughput" });
  const lag = h("igloo-chart", { label: "messages behind", id: "chart-lag" });
  const series = h("div", { class: "grid2" });
  main.append(
    card("Models", models),
    h("div", { class: "grid2" }, card("Throughput (last 10 minutes)", rate), card("Lag (last 10 minutes)", lag)),
    series,
    card("Transforms", transforms),
    h("div", { class: "grid2" }, card("Views", views), card("APIs", apis)),
  );
  return {
    start(ov) {
      for (const m of ov.models.filter((m) => m.timeseries)) series.append(timeseriesCard(m));
    },
    async update(ov) {
      setContent(models, modelsTable(ov));
      setContent(transforms, transformsTable(ov));
      setContent(views, ov.views.length ? table([["Model"], ["SELECT"]], ov.views.map((v) => h("tr", {}, h("td", {}, v.model), h("td", {}, h("pre", {}, v.select))))) : h("p", { class: "muted" }, "No views: add views/<Model>.sql to fill a model from a SELECT."));
      setContent(apis, apisList(ov));
      try {
        const hist = await fetchJson("/console/api/history");
        drawHistory(hist, rate, lag);
      } catch {
        /* the next poll retries */
      }
    },
  };
}

function modelsTable(ov) {
  const rows = ov.models.map((m) =>
    h(
      "tr",
      { "data-model": m.name },
      h("td", {}, h("strong", {}, m.name), m.doc ? h("div", { class: "muted" }, m.doc) : null),
      h("td", { class: "mono" }, `${m.topic} (${m.partitions})`),
      h("td", { class: "mono" }, m.table),
      h("td", { class: "num", "data-col": "rows" }, num(m.rows)),
      h("td", { class: "num" }, num(m.ingest_rate)),
      h("td", { class: "num" }, num(m.write_rate)),
      h("td", { class: "num" }, num(m.lag)),
      h("td", { class: "num" }, num(m.rejected)),
      h("td", {}, m.filled_by?.view ?? (m.filled_by?.transform ? `transform ${m.filled_by.transform}` : m.ingest ? `POST /ingest/${m.name}` : "–"), m.ingest_routes.map((r) => h("div", { class: "mono muted" }, `POST ${r}`))),
      h("td", {}, h("a", { href: `#/data/${m.name}` }, "data"), " ", m.ingest ? h("a", { href: `#/ingest/${m.name}` }, "ingest") : null),
    ),
  );
  return table(
    [["Model"], ["Topic (partitions)"], ["Table"], ["Rows", "num"], ["Ingest/s", "num"], ["Written/s", "num"], ["Lag", "num"], ["Rejected", "num"], ["Filled by"], [""]],
    rows,
    { id: "models" },
  );
}

function transformsTable(ov) {
  if (!ov.transforms.length) return h("p", { class: "muted" }, "No transforms: add transforms/<Source>__<Destination>.ts or .py.");
  return table(
    [["Transform"], ["State"], ["Workers", "num"], ["In", "num"], ["Out", "num"], ["Dropped", "num"], ["Dead letters", "num"], ["Crashes", "num"], ["Lag", "num"]],
    ov.transforms.map((t) =>
      h(
        "tr",
        {},
        h("td", {}, h("strong", {}, t.name), h("div", { class: "muted" }, `${t.source} → ${t.destination} · ${t.language}`)),
        h("td", {}, t.running ? h("span", { class: "ok" }, "running") : h("span", { class: "bad" }, "stopped"), t.error ? h("pre", { class: "bad" }, t.error) : null),
        h("td", { class: "num" }, `${t.workers_running}/${t.workers}`),
        h("td", { class: "num" }, num(t.in)),
        h("td", { class: "num" }, num(t.out)),
        h("td", { class: "num" }, num(t.dropped)),
        h("td", { class: "num" }, num(t.dead_lettered)),
        h("td", { class: "num" }, num(t.crashes)),
        h("td", { class: "num" }, num(t.lag)),
      ),
    ),
  );
}

function apisList(ov) {
  const ops = operations(ov);
  if (!ops.length) return h("p", { class: "muted" }, "No APIs: add apis/<name>.sql, or declare @@timeseries on a model.");
  return h("ul", {}, ops.map((op) => h("li", {}, h("a", { href: `#/apis/${op.id}` }, `GET ${op.path}`), op.doc ? h("span", { class: "muted" }, ` ${op.doc}`) : null)));
}

function drawHistory(hist, rate, lag) {
  const rateSeries = [];
  const lagSeries = [];
  const points = (ys) => hist.t.map((t, i) => [t, ys[i]]);
  for (const [name, s] of Object.entries(hist.models)) {
    if (s.ingested.some((v) => v > 0)) rateSeries.push({ name: `${name} ingested`, points: points(s.ingested) });
    if (s.written.some((v) => v > 0) || s.ingested.some((v) => v > 0)) rateSeries.push({ name: `${name} written`, points: points(s.written) });
    lagSeries.push({ name, points: points(s.lag) });
  }
  for (const [name, s] of Object.entries(hist.transforms)) {
    rateSeries.push({ name: `${name} out`, points: points(s.out) });
    lagSeries.push({ name, points: points(s.lag) });
  }
  rate.series = rateSeries;
  lag.series = lagSeries;
}

function timeseriesCard(m) {
  const ts = m.timeseries;
  const credential = sessionStorage.getItem(CREDENTIAL);
  const chart = h("igloo-timeseries", { model: m.name, "series-field": ts.series, unit: ts.unit, value: ts.values[0], window: "3600", points: "200", id: `ts-${m.name}`, ...(credential ? { token: credential } : {}) });
  const input = h("input", { placeholder: `a ${ts.series}`, onchange: () => chart.setAttribute("series", input.value) });
  const window = h(
    "select",
    { onchange: () => chart.setAttribute("window", window.value) },
    [["300", "5 min"], ["3600", "1 h"], ["86400", "24 h"]].map(([v, l]) => h("option", { value: v, selected: v === "3600" }, l)),
  );
  // Start on the series of the newest event, if any.
  fetchJson(`/console/api/models/${encodeURIComponent(m.name)}/topic?limit=1`)
    .then((rows) => {
      const tag = rows[0]?.record?.[ts.series];
      if (tag !== undefined && !input.value) {
        input.value = String(tag);
        chart.setAttribute("series", input.value);
      }
    })
    .catch(() => {});
  return card(`${m.name}: ${ts.values[0]} of one ${ts.series}, live`, h("div", { class: "row" }, h("label", {}, ts.series, input), h("label", {}, "window", window)), chart);
}

// ---------------------------------------------------------------------------------------------
// Data: live topic peek and latest table rows

function modelPicker(current, target, filter = () => true) {
  const select = h("select", { onchange: () => (location.hash = `#/${target}/${encodeURIComponent(select.value)}`) });
  const fill = (ov) => {
    if (select.options.length) return;
    for (const m of ov.models.filter(filter)) select.append(h("option", { value: m.name, selected: m.name === current }, m.name));
    if (!current && select.value) location.hash = `#/${target}/${encodeURIComponent(select.value)}`;
  };
  return { select, fill };
}

function dataPage(main, model) {
  const picker = modelPicker(model, "data");
  const topic = h("div", { id: "peek" });
  const rows = h("div", { id: "rows" });
  const live = h("span", { class: "muted" });
  main.append(h("div", { class: "row" }, h("label", {}, "model", picker.select)));
  if (!model) return { start: picker.fill };
  main.append(
    h("div", { class: "grid2" }, card(h("span", {}, "Topic, newest first ", live), topic), card("Table, latest rows", rows)),
  );
  let source = null;
  const peekRow = (where, text, fresh) => h("div", { class: fresh ? "fresh peek-row" : "peek-row" }, h("div", { class: "muted mono" }, where), h("pre", {}, text));
  return {
    async start(ov) {
      picker.fill(ov);
      const m = ov.models.find((x) => x.name === model);
      if (!m) return setContent(topic, h("p", { class: "bad" }, `unknown model ${model}`));
      live.textContent = `${m.topic}: connecting…`;
      source = eventSource(`/subscribe/${encodeURIComponent(model)}`);
      source.onopen = () => (live.textContent = `${m.topic}: live`);
      source.onerror = () => (live.textContent = `${m.topic}: reconnecting…`);
      // Under load the stream can carry thousands of records a second: keep the newest few
      // and draw twice a second, saying how many went by.
      let arrived = [];
      let passed = 0;
      source.addEventListener("record", (e) => {
        arrived.push(e.data);
        if (arrived.length > 20) {
          arrived.shift();
          passed++;
        }
      });
      const draw = setInterval(() => {
        if (!arrived.length) return;
        const at = new Date().toLocaleTimeString();
        topic.querySelector(".empty-note")?.remove();
        if (passed) topic.prepend(h("p", { class: "muted fresh" }, `${at}: ${num(passed)} more records went by`));
        for (const data of arrived) topic.prepend(peekRow(`new · ${at}`, data, true));
        [arrived, passed] = [[], 0];
        while (topic.children.length > 100) topic.lastChild.remove();
      }, 500);
      page.leave.push(() => clearInterval(draw));
      try {
        const peeked = await fetchJson(`/console/api/models/${encodeURIComponent(model)}/topic?limit=20`);
        if (!peeked.length && !topic.querySelector(".peek-row")) topic.append(h("p", { class: "muted empty-note" }, "The topic is empty; post a record from the Ingest page."));
        for (const p of peeked) {
          const at = p.timestamp_ms ? ` · ${new Date(p.timestamp_ms).toLocaleTimeString()}` : "";
          topic.append(peekRow(`partition ${p.partition} · offset ${p.offset}${at}`, typeof p.record === "string" ? p.record : JSON.stringify(p.record), false));
        }
      } catch (e) {
        topic.append(h("p", { class: "bad" }, messageOf(e)));
      }
    },
    async update() {
      try {
        const latest = await fetchJson(`/console/api/models/${encodeURIComponent(model)}/rows?limit=20`);
        const cols = latest.length ? Object.keys(latest[0]) : [];
        setContent(rows, latest.length ? table(cols.map((c) => [c]), latest.map((r) => h("tr", {}, cols.map((c) => h("td", { class: "mono" }, typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])))))) : h("p", { class: "muted" }, "No rows yet."));
      } catch (e) {
        setContent(rows, h("p", { class: "bad" }, messageOf(e)));
      }
    },
    leave: [() => source?.close()],
  };
}

// ---------------------------------------------------------------------------------------------
// API explorer

/** Every GET query route of the project: consumption APIs, samples, and their aliases. */
function operations(ov) {
  const ops = [];
  for (const a of ov.apis) {
    ops.push({ id: `api:${a.name}`, kind: "api", path: `/consumption/${a.name}`, name: a.name, doc: a.doc, sdk: a.sdk, params: a.params.map((p) => ({ ...p, required: p.default === null || p.default === undefined })) });
  }
  for (const m of ov.models.filter((m) => m.timeseries)) {
    const ts = m.timeseries;
    const time = (name, doc) => ({ name, type: "BigInt", required: true, doc, unit: ts.unit });
    const base = [time("start", `window start, ${ts.unit} since the epoch`), time("end", `window end, ${ts.unit}`), { name: "points", type: "Int", default: "1000", doc: "samples" }, { name: "agg", type: "String", default: "last", doc: "last | min | max | avg" }];
    ops.push({ id: `samples:${m.name}`, kind: "samples", model: m.name, path: `/api/${m.name}/samples`, doc: `downsampled ${m.name} series`, sdk: m.sdk.samples, params: [{ name: "series", type: "String", required: true, doc: `the ${ts.series}` }, ...base] });
    for (const r of m.samples_routes) {
      ops.push({ id: `route:${r}`, kind: "route", model: m.name, path: r, doc: `reference shape of ${m.name} samples`, params: [{ name: ts.series, type: "String", required: true, doc: `the ${ts.series}` }, ...base.slice(0, 2)] });
    }
  }
  return ops;
}

function defaultValue(p, ov) {
  if (p.default !== undefined && p.default !== null) return p.default;
  const unit = p.unit ?? ov.models.find((m) => m.timeseries)?.timeseries.unit ?? "ns";
  if (p.type === "BigInt" && /start|from/i.test(p.name)) return nowIn(unit, -3600e3);
  if (p.type === "BigInt" && /end|to|until/i.test(p.name)) return nowIn(unit, 60e3);
  if (p.type === "DateTime" && /start|from/i.test(p.name)) return new Date(Date.now() - 3600e3).toISOString().slice(0, 19) + "Z";
  if (p.type === "DateTime" && /end|to|until/i.test(p.name)) return new Date(Date.now() + 60e3).toISOString().slice(0, 19) + "Z";
  return "";
}

function apisPage(main, id) {
  const select = h("select", { onchange: () => (location.hash = `#/apis/${encodeURIComponent(select.value)}`) });
  const form = h("form", { class: "row", id: "api-form" });
  const result = h("div", { id: "api-result" });
  const snippets = h("div", { id: "api-snippets" });
  main.append(card("API explorer", h("div", { class: "row" }, h("label", {}, "route", select)), form), card("Equivalent calls", snippets), card("Result", result));
  return {
    start(ov) {
      const ops = operations(ov);
      for (const op of ops) select.append(h("option", { value: op.id, selected: op.id === id }, `GET ${op.path}`));
      const op = ops.find((o) => o.id === id) ?? ops[0];
      if (!op) return setContent(form, h("p", { class: "muted" }, "No APIs yet: add apis/<name>.sql, or declare @@timeseries on a model."));
      select.value = op.id;
      const inputs = op.params.map((p) => {
        const input = h("input", { name: p.name, value: defaultValue(p, ov), required: p.required, placeholder: p.required ? "required" : "optional", oninput: () => showSnippets() });
        if (p.name === "series" || p.name === ov.models.find((m) => m.name === op.model)?.timeseries?.series) {
          fetchJson(`/console/api/models/${encodeURIComponent(op.model)}/topic?limit=1`).then((rows) => {
            const v = rows[0]?.record?.[p.name] ?? rows[0]?.record?.[ov.models.find((m) => m.name === op.model).timeseries.series];
            if (v !== undefined && !input.value) {
              input.value = String(v);
              showSnippets();
            }
          }, () => {});
        }
        return [p, input];
      });
      const values = () => inputs.filter(([, i]) => i.value !== "").map(([p, i]) => [p, i.value]);
      const url = () => `${op.path}?${new URLSearchParams(values().map(([p, v]) => [p.name, v]))}`;
      const showSnippets = () => setContent(snippets, snippetTabs(op, values(), url(), ov));
      setContent(form, inputs.map(([p, input]) => h("label", { title: p.doc ?? "" }, `${p.name}: ${p.type}${p.required ? "" : " (optional)"}`, input)), h("button", { type: "submit", id: "api-run" }, "Run"));
      form.onsubmit = async (e) => {
        e.preventDefault();
        const started = performance.now();
        setContent(result, h("p", { class: "muted" }, "Running…"));
        try {
          const body = await fetchJson(url());
          setContent(result, h("p", { class: "muted", id: "api-status" }, `200 OK in ${Math.round(performance.now() - started)} ms`), resultView(body));
        } catch (err) {
          setContent(result, h("p", { class: "bad", id: "api-status" }, messageOf(err)));
        }
      };
      showSnippets();
    },
  };
}

/** Rows as a table (arrays of objects, or the `samples` of a samples response) and raw JSON. */
function resultView(body) {
  const rows = Array.isArray(body) ? body : Array.isArray(body?.samples) ? body.samples : null;
  const raw = h("details", {}, h("summary", {}, "raw JSON"), h("pre", {}, JSON.stringify(body, null, 2)));
  if (!rows) return raw;
  const cols = rows.length ? Object.keys(rows[0]) : [];
  const shown = rows.slice(0, 200);
  return h(
    "div",
    {},
    h("p", { id: "api-count" }, `${rows.length} row${rows.length === 1 ? "" : "s"}${rows.length > shown.length ? ` (first ${shown.length} shown)` : ""}`),
    rows.length ? table(cols.map((c) => [c]), shown.map((r) => h("tr", {}, cols.map((c) => h("td", { class: "mono" }, typeof r[c] === "object" && r[c] !== null ? JSON.stringify(r[c]) : String(r[c]))))), { id: "api-rows" }) : null,
    raw,
  );
}

function snippetTabs(op, values, url, ov) {
  const base = location.origin;
  const module = ov.sdk_module;
  const get = (name) => values.find(([p]) => p.name === name)?.[1];
  const literal = (p, v, lang) => (["String", "Date", "DateTime"].includes(p.type) ? JSON.stringify(v) : p.type === "BigInt" && lang === "ts" ? `${v}n` : p.type === "Boolean" && lang === "py" ? (v === "true" ? "True" : "False") : v);
  const calls = { curl: `curl '${base}${url}'` };
  if (op.kind === "api") {
    calls.TypeScript = `import { IglooClient } from "igloo-sdk";\nimport { ${op.sdk.ts} } from "./${module}.ts";\n\nconst client = new IglooClient("${base}");\nconst rows = await ${op.sdk.ts}(client, { ${values.map(([p, v]) => `${p.name}: ${literal(p, v, "ts")}`).join(", ")} });`;
    calls.Python = `from igloo_sdk import Client\nfrom ${module.replace("/", ".")} import ${op.sdk.py}\n\nclient = Client("${base}")\nrows = ${op.sdk.py}(${["client", ...values.map(([p, v]) => `${p.name}=${literal(p, v, "py")}`)].join(", ")})`;
  } else if (op.kind === "samples") {
    const opts = [get("points") && `points: ${get("points")}`, get("agg") && `agg: ${JSON.stringify(get("agg"))}`].filter(Boolean);
    calls.TypeScript = `import { IglooClient } from "igloo-sdk";\nimport { ${op.sdk.ts} } from "./${module}.ts";\n\nconst client = new IglooClient("${base}");\nconst samples = await ${op.sdk.ts}(client, ${JSON.stringify(get("series") ?? "")}, ${get("start") ?? 0}n, ${get("end") ?? 0}n${opts.length ? `, { ${opts.join(", ")} }` : ""});`;
    const kw = [get("points") && `points=${get("points")}`, get("agg") && `agg=${JSON.stringify(get("agg"))}`].filter(Boolean);
    calls.Python = `from igloo_sdk import Client\nfrom ${module.replace("/", ".")} import ${op.sdk.py}\n\nclient = Client("${base}")\nsamples = ${op.sdk.py}(${["client", JSON.stringify(get("series") ?? ""), get("start") ?? 0, get("end") ?? 0, ...kw].join(", ")})`;
  }
  const out = h("pre", { id: "snippet" });
  const tabs = h("div", { class: "tabs" });
  const show = (name) => {
    out.textContent = calls[name];
    for (const b of tabs.children) b.classList.toggle("active", b.textContent === name);
  };
  for (const name of Object.keys(calls)) tabs.append(h("button", { type: "button", onclick: () => show(name) }, name));
  show("curl");
  return [tabs, out];
}

// ---------------------------------------------------------------------------------------------
// Ingest playground

function ingestPage(main, model) {
  const picker = modelPicker(model, "ingest", (m) => m.ingest);
  const text = h("textarea", { id: "ingest-body", spellcheck: "false" });
  const result = h("div", { id: "ingest-result" });
  const send = h("button", { id: "ingest-send", type: "button" }, "Send");
  const fresh = h("button", { class: "secondary", type: "button" }, "New example");
  main.append(h("div", { class: "row" }, h("label", {}, "model", picker.select)));
  if (!model) return { start: picker.fill };
  main.append(
    card(`POST /ingest/${model}`, h("p", { class: "muted" }, "A JSON object, an array of objects, or NDJSON. Edit and send; the record is followed to the topic and the table."), text, h("div", { class: "row" }, send, fresh)),
    card("What happened", result),
  );
  const loadExample = async () => {
    try {
      text.value = await (await authFetch(`/console/api/models/${encodeURIComponent(model)}/example`)).text();
    } catch (e) {
      setContent(result, h("p", { class: "bad" }, messageOf(e)));
    }
  };
  fresh.onclick = loadExample;
  let source = null;
  send.onclick = async () => {
    const before = overview?.models.find((m) => m.name === model)?.rows ?? 0;
    const started = performance.now();
    const steps = h("ul");
    setContent(result, steps);
    const step = (cls, s) => steps.append(h("li", { class: cls }, s));
    // Listen before posting, so the record cannot pass unseen.
    source?.close();
    source = eventSource(`/subscribe/${encodeURIComponent(model)}`);
    await new Promise((resolve) => {
      source.onopen = resolve;
      setTimeout(resolve, 1500);
    });
    let seen = false;
    source.addEventListener("record", () => {
      if (!seen) step("ok", `✓ on the topic after ${Math.round(performance.now() - started)} ms`);
      seen = true;
    });
    let reply;
    try {
      reply = await fetchJson(`/ingest/${encodeURIComponent(model)}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: text.value });
    } catch (e) {
      source.close();
      return step("bad", `✗ rejected: ${messageOf(e)}`);
    }
    step("ok", `✓ accepted ${reply.accepted} record${reply.accepted === 1 ? "" : "s"} (the broker acknowledged) in ${Math.round(performance.now() - started)} ms`);
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const ov = await fetchJson("/console/api/overview").catch(() => null);
      const rows = ov?.models.find((m) => m.name === model)?.rows ?? 0;
      if (rows >= before + reply.accepted) {
        step("ok", `✓ in ClickHouse table ${ov.models.find((m) => m.name === model).table} after ${Math.round(performance.now() - started)} ms (${num(rows)} rows)`);
        steps.append(h("li", {}, h("a", { href: `#/data/${model}` }, "see it in Data")));
        source.close();
        return;
      }
    }
    step("bad", "not in the table after 10 s: see the Problems above, the Dead letters page, or the igloo dev output");
    source.close();
  };
  return {
    start(ov) {
      picker.fill(ov);
      loadExample();
    },
    leave: [() => source?.close()],
  };
}

// ---------------------------------------------------------------------------------------------
// Dead letters

function deadLettersPage(main) {
  const list = h("div", { id: "dead-letters" });
  main.append(card("Dead letters, newest first (_igloo_dlq)", h("p", { class: "muted" }, "Records ClickHouse rejected and records a transform could not handle, with the error and the original payload."), list));
  let last = 0;
  return {
    async update() {
      if (Date.now() - last < 5000) return;
      last = Date.now();
      try {
        const rows = await fetchJson("/console/api/dead-letters?limit=100");
        setContent(
          list,
          rows.length
            ? table(
                [["At (UTC)"], ["Source"], ["Error"], ["Payload"]],
                rows.map((r) => h("tr", {}, h("td", { class: "mono" }, r.at), h("td", { class: "mono" }, `${r.topic} ${r.partition}/${r.offset}`), h("td", {}, h("pre", { class: "bad" }, r.error)), h("td", {}, h("pre", {}, prettyText(r.payload))))),
              )
            : h("p", { class: "muted" }, "No dead letters."),
        );
      } catch (e) {
        setContent(list, h("p", { class: "bad" }, messageOf(e)));
      }
    },
  };
}
