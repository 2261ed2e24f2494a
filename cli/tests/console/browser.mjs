// What the console's browser scripts share: headless Chromium (playwright-core) with a fresh
// profile, page errors collected, named steps, screenshots, and one failure report. Reads
// IGLOO_ARTIFACTS, IGLOO_NODE_MODULES and IGLOO_CHROMIUM.
import assert from "node:assert/strict";
import { rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** Opens a browser whose page's screenshots go to IGLOO_ARTIFACTS, prefixed with `prefix`. */
export async function openBrowser(prefix = "") {
  const artifacts = process.env.IGLOO_ARTIFACTS;
  const { chromium } = createRequire(join(process.env.IGLOO_NODE_MODULES, "noop.js"))("playwright-core");
  mkdirSync(artifacts, { recursive: true });
  const userDataDir = join(artifacts, `.chromium-profile${prefix}`);
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
  let stepName = "";
  const shot = (name) => page.screenshot({ path: join(artifacts, `${prefix}${name}.png`), fullPage: true });
  return {
    page,
    shot,
    /** Runs `fn` as the step `name`, printing `ok - name (ms)`. */
    async step(name, fn) {
      stepName = name;
      const started = Date.now();
      await fn();
      console.log(`ok - ${name} (${Date.now() - started} ms)`);
    },
    /** Runs `steps`; on a failure names the step, saves a screenshot and sets the exit code. */
    async run(steps) {
      try {
        await steps();
        assert.deepEqual(errors, [], "no script errors on the page");
      } catch (e) {
        console.error(`not ok - ${stepName}\n${e.stack ?? e}`);
        await shot("failure").catch(() => {});
        if (errors.length) console.error(`page errors:\n${errors.join("\n")}`);
        process.exitCode = 1;
      } finally {
        await context.close();
        rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Now plus `offsetMs`, in ns, as the decimal text igloo's BigInt time fields take. */
export const nowNs = (offsetMs = 0) => (BigInt(Date.now() + offsetMs) * 1000000n).toString();
