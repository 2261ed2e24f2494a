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
import { openBrowser, nowNs } from "./browser.mjs";

const url = process.env.IGLOO_URL;
const key = process.env.IGLOO_KEY;
const { page, shot, step, run } = await openBrowser("auth-");
// The console asks with window.prompt: answered with the admin key, and counted.
const prompts = [];
page.on("dialog", (d) => {
  prompts.push(d.message());
  d.accept(key);
});

async function post(model, record, credential) {
  const headers = { "Content-Type": "application/json", ...(credential ? { Authorization: `Bearer ${credential}` } : {}) };
  return fetch(`${url}/ingest/${model}`, { method: "POST", headers, body: JSON.stringify(record) });
}
const tag = `auth-${Date.now().toString(36)}`;

await run(async () => {
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
    await shot("01-overview");
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
    await shot("02-chart");
  });
});
