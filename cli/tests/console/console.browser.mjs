// The dev console in a real browser (headless Chromium driven by playwright-core) against a
// running `igloo dev` of the time-series template with one Python transform. Run by
// cli/tests/console.rs, which starts the engines and passes:
//   IGLOO_URL          the server, e.g. http://127.0.0.1:4123
//   IGLOO_PROJECT      the project directory (this script breaks and fixes its schema)
//   IGLOO_ARTIFACTS    where the screenshots go
//   IGLOO_NODE_MODULES a node_modules holding playwright-core
// Exits non-zero, naming the step, when something a user would see is missing.
import assert from "node:assert/strict";
import { writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openBrowser, nowNs } from "./browser.mjs";

const url = process.env.IGLOO_URL;
const project = process.env.IGLOO_PROJECT;
const { page, shot, step, run: steps } = await openBrowser();
async function post(model, records) {
  const resp = await fetch(`${url}/ingest/${model}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: records });
  assert.equal(resp.status, 200, await resp.text());
}
const run = Date.now().toString(36);
const tag = `web-${run}`;

await steps(async () => {
  await step("the overview lists the models, the transform and the API", async () => {
    await page.goto(`${url}/console`);
    const row = page.locator("#models tr[data-model=Measurement]");
    await row.waitFor();
    const text = await row.innerText();
    for (const s of ["Measurement", "Measurement (4)", "POST /ingest/Measurement", "POST /save"]) assert.ok(text.includes(s), `model row lacks ${s}: ${text}`);
    const alert = await page.locator("#models tr[data-model=Alert]").innerText();
    assert.match(alert, /transform Measurement__Alert/);
    await page.getByText("Measurement → Alert · Python").waitFor();
    await page.locator("main").getByText("running", { exact: true }).waitFor();
    await page.getByRole("link", { name: "GET /consumption/tag_stats" }).waitFor();
    await page.getByRole("link", { name: "GET /api/Measurement/samples" }).waitFor();
    await shot("01-overview");
  });

  await step("a posted record shows up in the live topic peek, then in the table rows", async () => {
    await page.goto(`${url}/console#/data/Measurement`);
    await page.getByText("Measurement: live").waitFor();
    await post("Measurement", JSON.stringify({ time: nowNs(), tag, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }));
    // Delivered live (`new · <time>`): the page's first listing of the topic may show the same
    // record too, if it was fetched after the record was produced.
    await page.locator("#peek .peek-row", { hasText: tag }).filter({ hasText: "new ·" }).first().waitFor({ timeout: 10000 });
    await page.locator("#rows td", { hasText: tag }).first().waitFor({ timeout: 10000 });
    await shot("02-data");
  });

  await step("the ingest playground posts the example record and follows it to the table", async () => {
    await page.goto(`${url}/console#/ingest/Measurement`);
    const body = page.locator("#ingest-body");
    await page.waitForFunction(() => document.querySelector("#ingest-body")?.value.includes('"tag"'));
    const example = JSON.parse(await body.inputValue());
    assert.deepEqual(Object.keys(example).sort(), ["tag", "time", "values"]);
    await body.fill(JSON.stringify({ ...example, tag: `${tag}-pg` }, null, 2));
    await page.locator("#ingest-send").click();
    await page.locator("#ingest-result", { hasText: "accepted 1 record" }).waitFor({ timeout: 10000 });
    await page.locator("#ingest-result", { hasText: "on the topic after" }).waitFor({ timeout: 10000 });
    await page.locator("#ingest-result", { hasText: "in ClickHouse table Measurement" }).waitFor({ timeout: 15000 });
    await shot("03-ingest");
    // A wrong type is answered with the field and the reason.
    await body.fill(JSON.stringify({ ...example, values: "many" }));
    await page.locator("#ingest-send").click();
    await page.locator("#ingest-result", { hasText: "rejected: 400" }).waitFor();
    assert.match(await page.locator("#ingest-result").innerText(), /values/);
  });

  await step("the API explorer runs tag_stats and the samples route, with curl and SDK equivalents", async () => {
    await page.goto(`${url}/console#/apis/api:tag_stats`);
    await page.locator("#api-form input[name=start]").waitFor();
    await page.locator("#api-form input[name=start]").fill("0");
    await page.locator("#api-run").click();
    await page.locator("#api-status", { hasText: "200 OK" }).waitFor();
    assert.match(await page.locator("#api-rows").innerText(), new RegExp(tag));
    assert.match(await page.locator("#snippet").innerText(), /^curl '.*\/consumption\/tag_stats\?start=0&end=\d+&limit=10'$/);
    await page.locator("#api-snippets button", { hasText: "TypeScript" }).click();
    assert.match(await page.locator("#snippet").innerText(), /await tagStats\(client, \{ start: 0n, end: \d+n, limit: 10 \}\)/);
    await page.locator("#api-snippets button", { hasText: "Python" }).click();
    assert.match(await page.locator("#snippet").innerText(), /tag_stats\(client, start=0, end=\d+, limit=10\)/);
    await shot("04-api-tag-stats");

    await page.goto(`${url}/console#/apis/samples:Measurement`);
    await page.locator("#api-form input[name=series]").fill(tag);
    await page.locator("#api-run").click();
    await page.locator("#api-count", { hasText: "1000 rows" }).waitFor();
    await page.locator("#api-snippets button", { hasText: "TypeScript" }).click();
    assert.match(await page.locator("#snippet").innerText(), new RegExp(`samplesMeasurement\\(client, "${tag}", \\d+n, \\d+n, \\{ points: 1000, agg: "last" \\}\\)`));
    await shot("05-api-samples");
  });

  await step("<igloo-timeseries> draws the tag and redraws live when a new event arrives", async () => {
    await page.goto(`${url}/console`);
    const input = page.locator("main input[placeholder='a tag']");
    await input.fill(tag);
    await input.dispatchEvent("change");
    const line = page.locator("#ts-Measurement path.line");
    await page.waitForFunction(() => {
      const chart = document.querySelector("#ts-Measurement")?.shadowRoot?.querySelector("igloo-chart");
      return chart?.shadowRoot?.querySelector("path.line")?.getAttribute("d")?.startsWith("M");
    });
    // The chart may still show the tag it drew before the change: wait for this tag's legend.
    const legend = page.locator("#ts-Measurement .legend", { hasText: new RegExp(`${tag} values\\[0\\] 1\\b`) });
    await legend.waitFor({ timeout: 10000 });
    // Post only once the live stream is open: a record before it is not an event to redraw on.
    await page.locator("#ts-Measurement[data-live='open']").waitFor();
    await post("Measurement", JSON.stringify({ time: nowNs(), tag, values: [42, 0, 0, 0, 0, 0, 0, 0, 0, 0] }));
    await page.locator("#ts-Measurement .legend", { hasText: `${tag} values[0] 42` }).waitFor({ timeout: 10000 });
    assert.match(await line.getAttribute("d"), /^M[\d.]+,[\d.]+/);
    // The throughput chart has the ingest line of the last minutes.
    await page.locator("#chart-throughput path.line[data-series='Measurement ingested']").waitFor();
    await shot("06-charts");
  });

  await step("the dead-letter viewer shows a transform's error with the original payload", async () => {
    const boom = `boom-${run}`;
    await post("Measurement", JSON.stringify({ time: nowNs(), tag: boom, values: [7] }));
    await page.goto(`${url}/console#/dead-letters`);
    const row = page.locator("#dead-letters tr", { hasText: `${boom} is not a tag` }).first();
    await row.waitFor({ timeout: 15000 });
    const text = await row.innerText();
    assert.match(text, new RegExp(`"tag": "${boom}"`));
    assert.match(text, /transform Measurement__Alert threw ValueError/);
    assert.match(text, /Measurement \d+\/\d+/);
    await page.locator("#dlq-count", { hasText: /^[1-9]/ }).waitFor();
    await shot("07-dead-letters");
  });

  await step("a broken schema file shows its diagnostic; fixing it clears it", async () => {
    const broken = join(project, "schema", "broken.prisma");
    writeFileSync(broken, "model Broken {\n  id Strng\n}\n");
    await page.locator("#problems", { hasText: "unknown type `Strng`" }).waitFor({ timeout: 15000 });
    assert.match(await page.locator("#problems").innerText(), /broken\.prisma:2/);
    await shot("08-problems");
    rmSync(broken);
    await page.locator("#problems").waitFor({ state: "hidden", timeout: 15000 });
  });
});
