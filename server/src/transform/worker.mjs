// igloo's Node.js transform worker (written by igloo; do not edit). Loads one transform
// module and answers batches over stdin/stdout in length-prefixed JSON frames; the module's
// own output goes to stderr. Started as: node --import tsx worker.mjs <transform file> <root>
import { pathToFileURL } from "node:url";

const writeFrameRaw = process.stdout.write.bind(process.stdout);
// Everything user code prints goes to stderr: stdout carries frames only.
process.stdout.write = process.stderr.write.bind(process.stderr);

function send(text) {
  const body = Buffer.from(text, "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  writeFrameRaw(Buffer.concat([head, body]));
}

// A thrown error: its message, and the stack frames of user code (not this worker's).
function describe(e) {
  if (e instanceof Error) {
    const frames = (e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l) && !/worker\.mjs|node:internal/.test(l));
    return { error: `${e.name}: ${e.message}`, stack: frames.join("\n") };
  }
  return { error: `threw ${typeof e === "string" ? e : JSON.stringify(e)}`, stack: "" };
}

// A load error without the frames of Node, tsx and esbuild: the user's own lines only.
function loadError(e) {
  if (!(e instanceof Error)) return String(e);
  const lines = (e.stack ?? `${e.name}: ${e.message}`).split("\n");
  const own = lines.filter((l) => !/^\s+at /.test(l) || !/node:internal|node_modules\/(tsx|esbuild)\//.test(l));
  return own.join("\n");
}

const file = process.argv[2];
let transform;
try {
  const mod = await import(pathToFileURL(file).href);
  transform = typeof mod.default === "function" ? mod.default : mod.transform;
  if (typeof transform !== "function") {
    throw new Error(`${file} must export its function: export default function transform(record) { … }`);
  }
} catch (e) {
  send(JSON.stringify({ load_error: loadError(e) }));
  process.exit(1);
}
send(JSON.stringify({ ready: true }));

async function run(records) {
  const parts = [];
  for (const record of records) {
    try {
      let out = await transform(record);
      if (out === null || out === undefined) out = [];
      else if (!Array.isArray(out)) out = [out];
      parts.push(`{"out":${JSON.stringify(out)}}`);
    } catch (e) {
      parts.push(JSON.stringify(describe(e)));
    }
  }
  return `{"results":[${parts.join(",")}]}`;
}

let buffered = Buffer.alloc(0);
let queue = Promise.resolve();
process.stdin.on("data", (chunk) => {
  buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
  while (buffered.length >= 4) {
    const len = buffered.readUInt32BE(0);
    if (buffered.length < 4 + len) break;
    const body = buffered.subarray(4, 4 + len).toString("utf8");
    buffered = buffered.subarray(4 + len);
    const { records } = JSON.parse(body);
    queue = queue.then(() => run(records)).then(send);
  }
});
// Stdin closed: igloo is done with this worker (or gone). Exit once the queue settles, even
// if a batch failed.
process.stdin.on("end", () => queue.finally(() => process.exit(0)));
