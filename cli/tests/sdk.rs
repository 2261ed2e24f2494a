//! Generated SDKs: `igloo generate sdk` output passes `mypy --strict` and `tsc --strict`, and
//! works end to end against `igloo dev` on real engines: ingest through the generated client,
//! read samples and a consumption API back, receive a new record from a subscription.
//! Needs the venv with mypy and sdk-py, and sdk-ts built (scripts/install-engines.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::*;

const EXTRA: &str = "\nenum Level {\n  Low\n  High\n}\n\n/// Covers the type mapping.\nmodel Reading {\n  id      String   @id\n  at      DateTime\n  level   Level\n  note    String?\n  count   Int      @default(0)\n  tags    String[]\n  payload Json?\n}\n";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn python() -> String {
    std::env::var("IGLOO_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

const PY_E2E: &str = r#"
import sys, threading, time
import igloo_sdk
from igloo_sdk import Client, IglooError, IngestError
import devapp as sdk

print("igloo_sdk from", igloo_sdk.__file__)

client = Client(sys.argv[1])
now = time.time_ns()
result = sdk.ingest_measurement(client, [{"time": now - i, "tag": "py", "values": [float(i), 2.0]} for i in range(10)])
assert result["accepted"] == 10, result
try:
    sdk.ingest_measurement(client, {"time": "x", "tag": "py", "values": []})
    raise SystemExit("a bad record was accepted")
except IngestError as e:
    assert e.status == 400 and e.records[0]["path"] == "time", e.records
deadline = time.time() + 30
while True:
    try:
        samples = sdk.samples_measurement(client, "py", now - 10**9, now + 1, points=10)
        if samples[-1]["values"] is not None:
            break
    except IglooError as e:  # until the first event is written, the series is unknown
        assert "unknown series" in e.message, e
        samples = []
    assert time.time() < deadline, samples
    time.sleep(0.1)
assert len(samples) == 10 and samples[-1]["values"] == [0.0, 2.0], samples[-1]
while True:  # records on several partitions are written in several batches
    rows = sdk.tag_stats(client, start=0, end=now + 1)
    if rows and rows[0]["tag"] == "py" and rows[0]["events"] == 10:
        break
    assert time.time() < deadline, rows
    time.sleep(0.1)

got: list[dict[str, object]] = []
def listen() -> None:
    for record in client.subscribe("Measurement", tag="live"):
        got.append(record)
        return
threading.Thread(target=listen, daemon=True).start()
time.sleep(1.5)
sdk.ingest_measurement(client, [{"time": now, "tag": "other", "values": [1.0]}, {"time": now, "tag": "live", "values": [7.0]}])
deadline = time.time() + 20
while not got and time.time() < deadline:
    time.sleep(0.05)
assert got and got[0]["tag"] == "live" and got[0]["values"] == [7.0], got
print("python sdk ok")
"#;

const TS_E2E: &str = r#"
import { IglooClient } from "igloo-sdk";
import { ingestMeasurement, samplesMeasurement, tagStats } from "./devapp.js";

const client = new IglooClient(process.argv[2]);
const now = BigInt(Date.now()) * 1_000_000n;
const result = await ingestMeasurement(client, [{ time: now, tag: "ts", values: [1.5] }, { time: now - 1n, tag: "ts", values: [0.5] }]);
if (result.accepted !== 2) throw new Error(JSON.stringify(result));
const deadline = Date.now() + 30_000;
for (;;) {
  const samples = await samplesMeasurement(client, "ts", now - 1_000_000_000n, now + 1n, { points: 5 }).catch((e) => {
    if (!/unknown series/.test(String(e))) throw e;
    return [];
  });
  if (samples.length && samples[4].values !== null) {
    if (samples[4].values[0] !== 1.5) throw new Error(JSON.stringify(samples));
    break;
  }
  if (Date.now() > deadline) throw new Error("samples never arrived");
  await new Promise((r) => setTimeout(r, 100));
}
// The two records may sit on two partitions, written in two batches: wait for both.
for (;;) {
  const rows = await tagStats(client, { start: 0, end: now + 1n });
  if (rows.some((r) => r.tag === "ts" && r.events === 2)) break;
  if (Date.now() > deadline) throw new Error(JSON.stringify(rows));
  await new Promise((r) => setTimeout(r, 100));
}
const controller = new AbortController();
const first = (async () => {
  for await (const record of client.subscribe("Measurement", { tag: "live-ts" }, controller.signal)) return record;
})();
await new Promise((r) => setTimeout(r, 1500));
await ingestMeasurement(client, [{ time: now, tag: "live-ts", values: [3] }]);
const record = await first;
controller.abort();
if (record?.tag !== "live-ts") throw new Error(JSON.stringify(record));
console.log("typescript sdk ok");
"#;

#[test]
fn generated_sdks_typecheck_and_work_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let schema = root.join("schema/measurement.prisma");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, text + EXTRA).unwrap();
    let ports = Ports::free();
    let out = tmp.path().join("gen");
    for lang in ["py", "ts"] {
        let mut cmd = igloo(&root, &ports);
        cmd.args(["generate", "sdk", "--lang", lang, "--out"]).arg(&out);
        assert!(run_ok(&mut cmd, "igloo generate sdk").contains("wrote"));
    }
    // Stable: generating again changes nothing.
    let again = run_ok(igloo(&root, &ports).args(["generate", "sdk", "--lang", "py", "--out"]).arg(&out), "again");
    assert!(again.contains("unchanged"), "{again}");

    // The SDK packages as users install them: `npm pack` and `pip wheel` artifacts.
    let sdk_ts = repo().join("sdk-ts");
    let dist = tmp.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let packed = run_ok(
        Command::new("npm").args(["pack", "--silent", "--pack-destination"]).arg(&dist).current_dir(&sdk_ts),
        "npm pack",
    );
    let tarball = dist.join(packed.lines().last().unwrap().trim());
    run_ok(
        Command::new(python())
            .args(["-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w"])
            .arg(&dist)
            .arg(repo().join("sdk-py")),
        "pip wheel",
    );
    let wheel = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("a wheel");
    let site = tmp.path().join("site");
    run_ok(
        Command::new(python()).args(["-m", "pip", "install", "-q", "--no-deps", "--target"]).arg(&site).arg(&wheel),
        "pip install the wheel",
    );
    assert!(site.join("igloo_sdk/py.typed").exists(), "the wheel ships py.typed");

    // TypeScript: tsc --strict against the installed package.
    std::fs::write(out.join("package.json"), r#"{"type": "module", "private": true}"#).unwrap();
    run_ok(
        Command::new("npm")
            .args(["install", "--offline", "--no-audit", "--no-fund", "--silent"])
            .arg(&tarball)
            .current_dir(&out),
        "npm install the packed SDK",
    );
    assert!(out.join("node_modules/igloo-sdk/dist/index.d.ts").exists(), "the package ships its types");
    assert!(out.join("node_modules/igloo-sdk/dist/elements.js").exists(), "and the web components");
    std::os::unix::fs::symlink(sdk_ts.join("node_modules/@types"), out.join("node_modules/@types")).unwrap();
    std::fs::write(out.join("e2e.ts"), TS_E2E).unwrap();
    std::fs::write(
        out.join("tsconfig.json"),
        r#"{"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true, "outDir": "js", "types": ["node"]}, "files": ["devapp.ts", "e2e.ts"]}"#,
    )
    .unwrap();
    run_ok(
        Command::new(sdk_ts.join("node_modules/.bin/tsc")).args(["-p", "tsconfig.json"]).current_dir(&out),
        "tsc --strict",
    );

    // End to end against igloo dev.
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    assert!(root.join("sdk/devapp.ts").exists(), "igloo dev writes the project's SDK module (language ts)");
    // With engines running, API result rows are typed from ClickHouse's description.
    let typed = run_ok(igloo(&root, &ports).args(["generate", "sdk", "--lang", "py", "--out"]).arg(&out), "generate");
    assert!(typed.contains("wrote"), "{typed}");
    let module = std::fs::read_to_string(out.join("devapp.py")).unwrap();
    assert!(module.contains("class TagStatsRow(TypedDict):\n    tag: str\n    events: int\n"), "{module}");
    let dev_module = std::fs::read_to_string(root.join("sdk/devapp.ts")).unwrap();
    assert!(
        dev_module.contains("export interface TagStatsRow {\n  \"tag\": string;\n  \"events\": number;"),
        "{dev_module}"
    );
    // Python: mypy --strict over the generated module and the end-to-end script.
    std::fs::write(out.join("e2e.py"), PY_E2E).unwrap();
    run_ok(
        Command::new(python()).args(["-m", "mypy", "--strict", "devapp.py", "e2e.py"]).current_dir(&out),
        "mypy --strict",
    );
    let api = ports.api("");
    // `-S`: no site-packages, so the SDK is the wheel's copy in `site`, not the checkout's.
    let pythonpath = format!("{}:{}", site.display(), out.display());
    let py = run_ok(
        Command::new(python()).args(["-S", "e2e.py"]).arg(&api).env("PYTHONPATH", &pythonpath).current_dir(&out),
        "python e2e",
    );
    assert!(py.contains("python sdk ok"), "{py}");
    assert!(py.contains(&format!("igloo_sdk from {}", site.display())), "{py}");
    std::fs::create_dir_all(out.join("js")).unwrap();
    std::os::unix::fs::symlink(out.join("node_modules"), out.join("js/node_modules")).unwrap();
    let ts = run_ok(Command::new("node").arg("js/e2e.js").arg(&api).current_dir(&out), "node e2e");
    assert!(ts.contains("typescript sdk ok"), "{ts}");

    // Saving the schema regenerates the module.
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, text.replace("  payload Json?\n", "  payload Json?\n  extra   Float?\n")).unwrap();
    dev.expect("sdk/devapp.ts regenerated", APPLY);
    let module = std::fs::read_to_string(root.join("sdk/devapp.ts")).unwrap();
    assert!(module.contains("extra?: number | null;"), "{module}");
}
