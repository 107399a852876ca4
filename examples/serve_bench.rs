//! `doctype-migrate serve` under load: clients polling `status` while the
//! server rebuilds a large table.
//!
//! ```text
//! cargo build --release --bin doctype-migrate
//! cargo run --release --example serve_bench [-- --rows N --clients N --interval-ms N]
//! ```
//!
//! Builds the benchmark table (`--rows`, default 1,000,000), starts the
//! release binary's `serve` on a free port, and applies a type change of
//! one column (a rebuild) through the API twice on fresh copies: once with
//! nobody else calling, once with `--clients` (default 50) threads each
//! polling `GET /api/migration/status` every `--interval-ms` (default 100;
//! 0 polls as fast as answers come). Prints the
//! p50/p99/max latency of `status` during the rebuild and the rebuild's
//! time with and without the pollers (its slowdown), and writes them to
//! `target/serve_bench.json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use doctype_migrate::FieldType;
use serde_json::{Value, json};

#[path = "support/bench_table.rs"]
mod bench_table;
use bench_table::{build_base, business_doctype};

struct Args {
    rows: u64,
    clients: usize,
    interval: Duration,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        clients: 50,
        interval: Duration::from_millis(100),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let n = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--rows" => a.rows = n.parse().expect("--rows takes a number"),
            "--clients" => a.clients = n.parse().expect("--clients takes a number"),
            "--interval-ms" => {
                a.interval = Duration::from_millis(n.parse().expect("--interval-ms takes a number"))
            }
            other => {
                panic!("unknown argument {other}; see the doc comment of examples/serve_bench.rs")
            }
        }
    }
    a
}

/// The release binary beside this example (`target/release/`).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("doctype-migrate");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release --bin doctype-migrate` first",
        bin.display()
    );
    bin
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Path, doctypes: &Path, tokens: &Path) -> Server {
    let mut child = Command::new(binary())
        .args(["serve", "--db"])
        .arg(db)
        .arg("--doctypes")
        .arg(doctypes)
        .arg("--tokens")
        .arg(tokens)
        .args(["--addr", "127.0.0.1:0", "--backup-policy", "never"])
        .args([
            "--rate-limit-per-minute",
            "1000",
            "--rate-limit-burst",
            "1000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    Server { child, base }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(method: &str, url: &str, token: &str) -> Value {
    let req = |m: &str| {
        if m == "POST" {
            agent()
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .send_empty()
        } else {
            agent()
                .get(url)
                .header("Authorization", format!("Bearer {token}"))
                .call()
        }
    };
    req(method).unwrap().body_mut().read_json().unwrap()
}

/// Plans and applies through the API; returns the time from the apply
/// call to the run's end, and the status latencies of `clients` pollers
/// meanwhile.
fn rebuild(
    server: &Server,
    operator: &str,
    viewer: &str,
    clients: usize,
    interval: Duration,
) -> (Duration, Vec<Duration>) {
    let plan = call(
        "POST",
        &format!("{}/api/migration/plans", server.base),
        operator,
    );
    let id = plan["id"].as_str().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, url, token) = (
                stop.clone(),
                format!("{}/api/migration/status", server.base),
                viewer.to_owned(),
            );
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let mut r = agent
                        .get(&url)
                        .header("Authorization", format!("Bearer {token}"))
                        .call()
                        .unwrap();
                    let v: Value = r.body_mut().read_json().unwrap();
                    if v["state"] == "running" {
                        latencies.push(t.elapsed());
                    }
                    std::thread::sleep(interval);
                }
                latencies
            })
        })
        .collect();
    let start = Instant::now();
    let started = call(
        "POST",
        &format!("{}/api/migration/plans/{id}/apply", server.base),
        operator,
    );
    let run = started["run_id"].as_str().expect("run started").to_owned();
    loop {
        let state = call(
            "GET",
            &format!("{}/api/migration/runs/{run}", server.base),
            viewer,
        );
        if state["state"] != "running" {
            assert_eq!(state["state"], "completed", "{state}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = pollers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    latencies.sort();
    (took, latencies)
}

fn token(dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(binary())
        .args(["token", "add", "--tokens"])
        .arg(dir.join("tokens.json"))
        .args(["--name", name, "--role", role])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.db");
    println!("building {} rows ...", args.rows);
    build_base(&base, args.rows);
    let doctypes = dir.path().join("doctypes");
    std::fs::create_dir_all(&doctypes).unwrap();
    let mut target = serde_json::to_value(business_doctype(FieldType::Int)).unwrap();
    target["doctype"] = json!("DocType");
    std::fs::write(doctypes.join("bench_item.json"), target.to_string()).unwrap();
    let operator = token(dir.path(), "operator", "operator");
    let viewer = token(dir.path(), "viewer", "viewer");
    let mut results = Vec::new();
    for clients in [0, args.clients] {
        let db = dir.path().join("served.db");
        std::fs::copy(&base, &db).unwrap();
        let server = serve(&db, &doctypes, &dir.path().join("tokens.json"));
        let (took, lat) = rebuild(&server, &operator, &viewer, clients, args.interval);
        drop(server);
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{clients:>3} pollers: rebuild {:.2} s; status answers during it: {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            took.as_secs_f64(),
            lat.len(),
            pct(0.5),
            pct(0.99),
            lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
        results.push(json!({
            "clients": clients, "rebuild_s": took.as_secs_f64(), "status_answers": lat.len(),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        }));
        let _ = std::fs::remove_file(&db);
    }
    let slowdown =
        results[1]["rebuild_s"].as_f64().unwrap() / results[0]["rebuild_s"].as_f64().unwrap();
    println!(
        "rebuild slowdown with {} pollers: {slowdown:.2}x",
        args.clients
    );
    let report = json!({"rows": args.rows, "interval_ms": args.interval.as_millis() as u64,
                        "runs": results, "slowdown": slowdown});
    let _ = std::fs::create_dir_all("target");
    std::fs::write(
        "target/serve_bench.json",
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
}
