//! Worker processes without engines: the framed protocol against real Node.js (with tsx) and
//! Python 3 workers — results per record, user prints kept off the protocol, throws reported
//! with their stack, load errors, and crashes (exit, no answer in time).

use std::path::Path;
use std::time::Duration;

use igloo_server::transform::protocol::{records_frame, RecordResult};
use igloo_server::transform::spec::{Lang, TransformSpec};
use igloo_server::transform::worker::{tsx_loader, Worker, WorkerError, WorkerRuntime};

/// A project directory and a runtime with its worker scripts installed.
fn setup() -> (tempfile::TempDir, WorkerRuntime) {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path());
    rt.install().unwrap();
    (tmp, rt)
}

fn runtime(root: &Path) -> WorkerRuntime {
    let tsx = std::env::var("HOME").map(|h| Path::new(&h).join(".cache/igloo/node/node_modules/tsx")).unwrap();
    WorkerRuntime {
        node: "node".into(),
        python: "python3".into(),
        tsx_loader: Some(tsx_loader(&tsx).expect("tsx is installed by scripts/install-engines.sh")),
        root: root.to_path_buf(),
        scripts: root.join(".igloo/runtime"),
    }
}

fn spec(root: &Path, file: &str, text: &str) -> TransformSpec {
    let path = root.join(file);
    std::fs::write(&path, text).unwrap();
    let lang = if file.ends_with(".ts") { Lang::Ts } else { Lang::Py };
    TransformSpec {
        name: file.split('.').next().unwrap().into(),
        path,
        lang,
        source: "A".into(),
        destination: "B".into(),
    }
}

const SECOND: Duration = Duration::from_secs(1);

async fn run(worker: &mut Worker, records: &[&str], timeout: Duration) -> Result<Vec<RecordResult>, WorkerError> {
    worker.process(&records_frame(records.iter().copied()), records.len(), timeout).await
}

#[tokio::test]
async fn python_worker_answers_per_record_and_survives_prints_and_throws() {
    let (tmp, rt) = setup();
    let code = "def transform(r):\n    print('noise on stdout')\n    if r['n'] < 0:\n        raise ValueError('negative')\n    if r['n'] == 0:\n        return None\n    return [{'n': r['n'] * 2}] * r['n']\n";
    let mut w = Worker::start(&spec(tmp.path(), "A__B.py", code), &rt).await.unwrap();
    let results = run(&mut w, &["{\"n\":2}", "{\"n\":0}", "{\"n\":-1}"], 5 * SECOND).await.unwrap();
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(results[0], RecordResult::Out { out: vec![json("{\"n\":4}"), json("{\"n\":4}")] });
    assert_eq!(results[1], RecordResult::Out { out: vec![] });
    let RecordResult::Error { error, stack } = &results[2] else { panic!("{:?}", results[2]) };
    assert_eq!(error, "ValueError: negative");
    let stack = stack.as_deref().unwrap();
    assert!(stack.contains("A__B.py\", line 4") && !stack.contains("worker.py"), "{stack}");
    // Still answering after all that.
    assert_eq!(run(&mut w, &["{\"n\":1}"], 5 * SECOND).await.unwrap().len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn crashes_and_hangs_are_reported_as_crashes() {
    let (tmp, rt) = setup();
    let code = "import os, sys, time\ndef transform(r):\n    if r['x'] == 'exit':\n        sys.stderr.write('going down\\n')\n        os._exit(7)\n    time.sleep(60)\n";
    let s = spec(tmp.path(), "A__B.py", code);
    let mut w = Worker::start(&s, &rt).await.unwrap();
    let err = run(&mut w, &["{\"x\":\"exit\"}"], 5 * SECOND).await.unwrap_err().to_string();
    assert!(err.contains("exit status: 7") && err.contains("going down"), "{err}");
    let mut w = Worker::start(&s, &rt).await.unwrap();
    let err = run(&mut w, &["{\"x\":\"hang\"}"], Duration::from_millis(500)).await.unwrap_err().to_string();
    assert!(err.contains("no answer within 500 ms"), "{err}");
}

#[tokio::test]
async fn load_errors_name_the_file_and_the_problem() {
    let (tmp, rt) = setup();
    let err = Worker::start(&spec(tmp.path(), "A__B.py", "def transform(r:\n"), &rt).await.err().unwrap().to_string();
    assert!(err.starts_with("A__B.py does not load") && err.contains("SyntaxError"), "{err}");
    let err = Worker::start(&spec(tmp.path(), "A__C.py", "x = 1\n"), &rt).await.err().unwrap().to_string();
    assert!(err.contains("must define its function: def transform(record)"), "{err}");
    let err = Worker::start(&spec(tmp.path(), "A__D.ts", "export default function (r: {) {}\n"), &rt)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("A__D.ts does not load") && err.contains("A__D.ts:1:"), "{err}");
    assert!(!err.contains("node_modules/esbuild"), "no frames of esbuild: {err}");
}

#[tokio::test]
async fn node_worker_runs_typescript_async_functions_and_keeps_console_off_the_protocol() {
    let (tmp, rt) = setup();
    let code = "interface R { n: number }\nexport default async function (r: R): Promise<R | null> {\n  console.log('noise', r.n);\n  process.stdout.write('more noise\\n');\n  if (r.n < 0) throw new TypeError(`bad ${r.n}`);\n  return r.n === 0 ? null : { n: r.n + 1 };\n}\n";
    let mut w = Worker::start(&spec(tmp.path(), "A__B.ts", code), &rt).await.unwrap();
    let results = run(&mut w, &["{\"n\":1}", "{\"n\":0}", "{\"n\":-5}"], 5 * SECOND).await.unwrap();
    assert_eq!(results[0], RecordResult::Out { out: vec![serde_json::json!({"n": 2})] });
    assert_eq!(results[1], RecordResult::Out { out: vec![] });
    let RecordResult::Error { error, stack } = &results[2] else { panic!("{:?}", results[2]) };
    assert_eq!(error, "TypeError: bad -5");
    assert!(stack.as_deref().unwrap().contains("A__B.ts:5"), "{stack:?}");
    w.stop().await;
}
