// The dev console in a real browser (headless Chromium driven by playwright-core) against an
// `igloo serve` with `server.auth: required`, the default under `igloo serve`. Run by
// cli/tests/console.rs, which starts the engines and the server, creates an admin key and
// passes:
//   IGLOO_URL          the server, e.g. http://127.0.0.1:4123
//   IGLOO_KEY          an admin API key
//   IGLOO_ARTIFACTS    where the screenshots go
//   IGLOO_NODE_MODULES a node_modules holding playwright-core
// Exits non-zero, naming the step, when something a user would see is missing.
import assert from "node:assert/strict";
import { rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const url = process.env.IGLOO_URL;
const key = process.env.IGLOO_KEY;
const artifacts = process.env.IGLOO_ARTIFACTS;
const { chromium } = createRequire(join(process.env.IGLOO_NODE_MODULES, "noop.js"))("playwright-core");
mkdirSync(artifacts, { recursive: true });

const userDataDir = join(artifacts, ".chromium-profile-auth");
rmSync(userDataDir, { recursive: true, force: true });
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.IGLOO_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1400, height: 1000 },
});
const page = context.pages()[0] ?? (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));
page.on("console", (m) => m.type() === "error" && !/Failed to load resource|EventSource/.test(m.text()) && errors.push(m.text()));
// The console asks with window.prompt: answered with the admin key, and counted.
const prompts = [];
page.on("dialog", (d) => {
  prompts.push(d.message());
  d.accept(key);
});

let stepName = "";
async function step(name, fn) {
  stepName = name;
  const started = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - started} ms)`);
}
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const nowNs = (offsetMs = 0) => (BigInt(Date.now() + offsetMs) * 1000000n).toString();
async function post(model, record, credential) {
  const headers = { "Content-Type": "application/json", ...(credential ? { Authorization: `Bearer ${credential}` } : {}) };
  return fetch(`${url}/ingest/${model}`, { method: "POST", headers, body: JSON.stringify(record) });
}
const tag = `auth-${Date.now().toString(36)}`;

try {
  await step("the server refuses data without a credential", async () => {
    const resp = await post("Measurement", { time: nowNs(), tag, values: [1] });
    assert.equal(resp.status, 401, await resp.text());
    const overview = await fetch(`${url}/console/api/overview`);
    assert.equal(overview.status, 401);
  });

  await step("the console asks for a credential once and shows the overview with the admin key", async () => {
    await page.goto(`${url}/console`);
    await page.locator("#models tr[data-model=Measurement]").waitFor({ timeout: 15000 });
    assert.equal(prompts.length, 1, `asked ${prompts.length} times: ${prompts.join(" | ")}`);
    assert.match(prompts[0], /igloo keys create --scope admin/);
    await shot("auth-01-overview");
  });

  await step("the key is kept for the tab: a reload asks nothing", async () => {
    await page.reload();
    await page.locator("#models tr[data-model=Measurement]").waitFor({ timeout: 15000 });
    assert.equal(prompts.length, 1);
  });

  await step("<igloo-timeseries> gets the key as its token, draws the tag and redraws live", async () => {
    const resp = await post("Measurement", { time: nowNs(), tag, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, key);
    assert.equal(resp.status, 200, await resp.text());
    const input = page.locator("main input[placeholder='a tag']");
    await input.fill(tag);
    await input.dispatchEvent("change");
    assert.equal(await page.locator("#ts-Measurement").getAttribute("token"), key);
    await page.waitForFunction(() => {
      const chart = document.querySelector("#ts-Measurement")?.shadowRoot?.querySelector("igloo-chart");
      return chart?.shadowRoot?.querySelector("path.line")?.getAttribute("d")?.startsWith("M");
    }, undefined, { timeout: 15000 });
    assert.match(await page.locator("#ts-Measurement .legend").innerText(), new RegExp(`${tag} values\\[0\\] 1\\b`));
    // Live: /subscribe with the key (an EventSource cannot send headers; the element's stream can).
    await page.locator("#ts-Measurement[data-live='open']").waitFor({ timeout: 15000 });
    const next = await post("Measurement", { time: nowNs(), tag, values: [42, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, key);
    assert.equal(next.status, 200, await next.text());
    await page.locator("#ts-Measurement .legend", { hasText: `${tag} values[0] 42` }).waitFor({ timeout: 10000 });
    await shot("auth-02-chart");
  });

  assert.deepEqual(errors, [], "no script errors on the page");
} catch (e) {
  console.error(`not ok - ${stepName}\n${e.stack ?? e}`);
  await shot("auth-failure").catch(() => {});
  if (errors.length) console.error(`page errors:\n${errors.join("\n")}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
