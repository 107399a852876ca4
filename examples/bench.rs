//! The engine against hand-written SQL on the same machine, in one run.
//!
//! ```text
//! cargo run --release --example bench [-- --rows N[,N...] --doctypes N --rounds N --wal --json PATH]
//! ```
//!
//! Builds its own data: a business-like DocType with 21 columns (7 standard
//! plus 14 fields) and two secondary indexes, filled with `--rows` rows
//! (default 1,000,000; a list such as `1000000,10000000` measures each
//! size in the same run), and `--doctypes` small DocTypes (default 1,000).
//! `--wal` runs the type changes on WAL databases.
//! Prints a table of engine versus baseline with ratios and the targets,
//! and writes the figures as JSON (default `target/bench.json`). The
//! type-change rows run `--rounds` times (default 5), alternating engine
//! and baseline on fresh copies of the data (synced to disk before each
//! timed run), and report medians; the DocType rows report the median of
//! five rounds. Per table size:
//!
//! 1. A type change on one column through the engine (backups off) versus
//!    the hand-written 12-step rebuild for the same change.
//! 2. The same with the default column backup (gzip), versus the same
//!    hand-written rebuild without any backup.
//! 3. The same with the backup also encrypted (a key file).
//! 4. Peak resident memory growth of the process during (3).
//!
//! And once:
//!
//! 5. A no-op apply of the DocTypes (written as one JSON file each, applied
//!    from their directory with `sync_paths`, the start-up path) versus
//!    opening the database and reading sqlite_schema, in the same process.
//! 6. The first apply of the DocTypes (from the same files) versus
//!    executing the same CREATE statements in one transaction.
//!
//! For (1) it also prints where the engine's time went, from the run's
//! events.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doctype_migrate::{BackupPolicy, DocType, FieldType, MigrationApplier};

#[path = "support/fmt.rs"]
mod fmt;
use fmt::thousands;
#[path = "support/bench_table.rs"]
mod bench_table;
use bench_table::{FIELDS, build_base, business_doctype};
#[path = "support/gaps.rs"]
mod gaps;
use gaps::Gaps;
use rusqlite::Connection;
use serde_json::json;

/// `n` small DocTypes written as JSON files into `dir` (one file each, as
/// an app ships them), and loaded back.
fn small_doctypes(n: usize, dir: &Path) -> Vec<DocType> {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let fields: Vec<serde_json::Value> = (0..8)
            .map(|f| {
                let ft = ["Data", "Int", "Currency", "Check"][f % 4];
                json!({"fieldname": format!("field_{f}"), "fieldtype": ft})
            })
            .collect();
        let dt = json!({"doctype": "DocType", "name": format!("Small {i:04}"), "fields": fields});
        std::fs::write(dir.join(format!("small_{i:04}.json")), dt.to_string()).unwrap();
    }
    doctype_migrate::load_paths(&[dir.to_path_buf()]).unwrap()
}

struct Args {
    wal: bool,
    rows: Vec<u64>,
    doctypes: usize,
    rounds: usize,
    json: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        wal: false,
        rows: vec![1_000_000],
        doctypes: 1000,
        rounds: 5,
        json: PathBuf::from("target/bench.json"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        if v[i] == "--wal" {
            a.wal = true;
            i += 1;
            continue;
        }
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--rows" => {
                a.rows = next
                    .split(',')
                    .map(|n| n.trim().parse().expect("--rows takes numbers"))
                    .collect()
            }
            "--doctypes" => a.doctypes = next.parse().expect("--doctypes takes a number"),
            "--rounds" => {
                a.rounds = next
                    .parse::<usize>()
                    .expect("--rounds takes a number")
                    .max(1)
            }
            "--json" => a.json = PathBuf::from(next),
            other => panic!("unknown argument {other}; see the doc comment of examples/bench.rs"),
        }
        i += 2;
    }
    a
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("bench.key");
    std::fs::write(&key, [42u8; 32]).expect("key file");
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    for &n in &args.rows {
        let (r, size) = type_changes(dir.path(), n, args.rounds, &key, args.wal);
        rows.extend(r);
        sizes.push(size);
    }
    rows.extend(many_doctypes(dir.path(), args.doctypes));

    println!();
    println!("| # | measurement | engine | baseline | ratio | target | met |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let met = if r["met"].as_bool().unwrap() {
            "yes"
        } else {
            "**no**"
        };
        if r["unit"] == "MB" {
            println!(
                "| {} | {} | {:.1} MB (process peak {:.1} MB) | | | < {:.0} MB | {met} |",
                r["id"].as_str().unwrap(),
                r["what"].as_str().unwrap(),
                r["engine"].as_f64().unwrap(),
                r["peak"].as_f64().unwrap(),
                r["target"].as_f64().unwrap(),
            );
        } else {
            println!(
                "| {} | {} | {:.3} s | {:.3} s ({}) | {:.2}x | <= {:.2}x | {met} |",
                r["id"].as_str().unwrap(),
                r["what"].as_str().unwrap(),
                r["engine"].as_f64().unwrap(),
                r["baseline"].as_f64().unwrap(),
                r["baseline_is"].as_str().unwrap(),
                r["ratio"].as_f64().unwrap(),
                r["target"].as_f64().unwrap(),
            );
        }
    }
    let report = json!({
        "rows": args.rows,
        "rounds": args.rounds,
        "doctypes": args.doctypes,
        "database_mb": sizes,
        "measurements": rows,
    });
    if let Some(parent) = args.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report).unwrap()).expect("write JSON");
    println!("\nfigures written to {}", args.json.display());
}

/// Rows 1 to 4 for a table of `n` rows; also the database size in MB.
fn type_changes(
    dir: &Path,
    n: u64,
    rounds: usize,
    key: &Path,
    wal: bool,
) -> (Vec<serde_json::Value>, f64) {
    println!("building {n} rows x 21 columns ...");
    let base = dir.join(format!("base_{n}.db"));
    build_base(&base, n);
    if wal {
        // The mode is in the file header: every copy is a WAL database.
        Connection::open(&base)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL;")
            .unwrap();
    }
    let size_mb = std::fs::metadata(&base).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("base database: {size_mb:.0} MB");
    // Alternating engine and baseline over several rounds on fresh copies,
    // medians reported: single runs at this size swing with the page cache
    // and whatever else the machine is doing.
    let (mut hand, mut off, mut gz, mut keyed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (split, split_keyed) = (Gaps::default(), Gaps::default());
    let (mut rss_peak, mut rss_growth) = (0u64, 0u64);
    for round in 0..rounds {
        println!("round {}/{rounds} ...", round + 1);
        let h = copy(&base, dir, "hand.db");
        hand.push(time(|| hand_written_rebuild(&h)));
        let e = copy(&base, dir, "engine.db");
        let gaps = Arc::new(Gaps::default());
        off.push(time(|| {
            engine_type_change(&e, BackupPolicy::Never, None, Some(gaps.clone()))
        }));
        check_same_data(&e, &h);
        split.add(&gaps);
        remove(&[&e, &h], dir);
        let e = copy(&base, dir, "engine.db");
        gz.push(time(|| {
            engine_type_change(&e, BackupPolicy::DestructiveAndRebuild, None, None)
        }));
        remove(&[&e], dir);
        let e = copy(&base, dir, "engine.db");
        reset_peak_rss();
        let before = peak_rss_kib();
        let gaps = Arc::new(Gaps::default());
        keyed.push(time(|| {
            engine_type_change(
                &e,
                BackupPolicy::DestructiveAndRebuild,
                Some(key),
                Some(gaps.clone()),
            )
        }));
        split_keyed.add(&gaps);
        let peak = peak_rss_kib();
        rss_peak = rss_peak.max(peak);
        rss_growth = rss_growth.max(peak.saturating_sub(before));
        remove(&[&e], dir);
    }
    let _ = std::fs::remove_file(&base);
    let hand = median(&hand);
    println!("where (1) went, summed over {rounds} rounds (ms before each event):");
    split.print();
    println!("where (3) went:");
    split_keyed.print();
    let label = |s: &str| {
        format!(
            "{s} ({} rows{})",
            thousands(n),
            if wal { ", WAL" } else { "" }
        )
    };
    let baseline = "hand-written 12-step SQL, no backup";
    let growth_mb = rss_growth as f64 / 1024.0;
    let rows = vec![
        row(
            "1",
            &label("type change, backups off"),
            median(&off),
            hand,
            1.10,
            baseline,
        ),
        row(
            "2",
            &label("the same, column backup (gzip)"),
            median(&gz),
            hand,
            1.20,
            baseline,
        ),
        row(
            "3",
            &label("the same, column backup (gzip + AES-256-GCM)"),
            median(&keyed),
            hand,
            1.20,
            baseline,
        ),
        json!({
            "id": "4", "what": label("peak RSS growth during (3)"), "unit": "MB",
            "engine": growth_mb, "peak": rss_peak as f64 / 1024.0, "target": 64.0,
            "met": growth_mb < 64.0,
        }),
    ];
    (rows, size_mb)
}

/// Rows 5 and 6: the no-op and the first apply of `n` small DocTypes.
fn many_doctypes(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let small_dir = dir.join("small_doctypes");
    let small = small_doctypes(n, &small_dir);
    let creates = {
        let probe = MigrationApplier::builder(dir.join("probe.db"))
            .read_only(true)
            .build()
            .unwrap();
        let plan = probe.dry_run(&small).unwrap().plan;
        plan.doctypes
            .iter()
            .flat_map(|d| d.forward_sql())
            .collect::<Vec<_>>()
    };
    let mut first_engine = Vec::new();
    let mut first_base = Vec::new();
    let mut noop_engine = Vec::new();
    let mut noop_base = Vec::new();
    for round in 0..5 {
        let e = dir.join(format!("many_engine_{round}.db"));
        first_engine.push(time(|| {
            let report = MigrationApplier::builder(&e)
                .create_if_missing(true)
                .build()
                .unwrap()
                .sync_paths(std::slice::from_ref(&small_dir))
                .unwrap();
            assert_eq!(report.migrations.len(), small.len());
        }));
        let b = dir.join(format!("many_base_{round}.db"));
        first_base.push(time(|| {
            let mut conn = Connection::open(&b).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &creates {
                tx.execute_batch(sql).unwrap();
            }
            tx.commit().unwrap();
        }));
        noop_engine.push(time(|| {
            let report = MigrationApplier::open(&e)
                .unwrap()
                .sync_paths(std::slice::from_ref(&small_dir))
                .unwrap();
            assert!(report.fast_path && report.migrations.is_empty());
        }));
        noop_base.push(time(|| {
            let conn = Connection::open(&e).unwrap();
            let n: i64 = conn
                .query_row("SELECT count(sql) FROM sqlite_schema", [], |r| r.get(0))
                .unwrap();
            assert!(n > 0);
        }));
    }
    vec![
        row(
            "5",
            &format!("no-op apply, {n} DocTypes"),
            median(&noop_engine),
            median(&noop_base),
            2.0,
            "open + read sqlite_schema",
        ),
        row(
            "6",
            &format!("first apply, {n} DocTypes"),
            median(&first_engine),
            median(&first_base),
            1.5,
            "same CREATEs in one transaction",
        ),
    ]
}

fn remove(files: &[&Path], dir: &Path) {
    for p in files {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir_all(dir.join("engine.db.backups"));
}

fn row(
    id: &str,
    what: &str,
    engine: Duration,
    base: Duration,
    target: f64,
    baseline: &str,
) -> serde_json::Value {
    let ratio = engine.as_secs_f64() / base.as_secs_f64().max(1e-9);
    json!({
        "id": id, "what": what, "unit": "s", "engine": engine.as_secs_f64(),
        "baseline": base.as_secs_f64(), "baseline_is": baseline, "ratio": ratio,
        "target": target, "met": ratio <= target,
    })
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn copy(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).expect("copy database");
    // Not timed: the copy's dirty pages reach the disk before the run.
    File::open(&dst)
        .and_then(|f| f.sync_all())
        .expect("sync copy");
    dst
}

fn engine_type_change(
    db: &Path,
    policy: BackupPolicy,
    key: Option<&Path>,
    observer: Option<Arc<Gaps>>,
) {
    let mut b = MigrationApplier::builder(db).backup_policy(policy);
    if let Some(o) = observer {
        b = b.observer(o);
    }
    if let Some(k) = key {
        b = b.backup_key_file(k);
    }
    let report = b
        .build()
        .unwrap()
        .sync_all(&[business_doctype(FieldType::Int)])
        .unwrap();
    assert_eq!(report.migrations.len(), 1, "one migration");
}

/// sqlite.org/lang_altertable.html section 7, written by hand for this change.
fn hand_written_rebuild(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let cols: Vec<String> = [
        "name",
        "creation",
        "modified",
        "modified_by",
        "owner",
        "docstatus",
        "idx",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(FIELDS.iter().map(|(n, _)| n.to_string()))
    .collect();
    let select: Vec<String> = cols
        .iter()
        .map(|c| {
            if c == "qty_text" {
                "COALESCE(CAST(\"qty_text\" AS INTEGER), 0)".into()
            } else {
                format!("\"{c}\"")
            }
        })
        .collect();
    let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "PRAGMA foreign_keys = OFF;
         BEGIN;
         CREATE TABLE \"new_tabBench Item\" (\"name\" VARCHAR(140) NOT NULL PRIMARY KEY, \"creation\" TEXT,
             \"modified\" TEXT, \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
             \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
             \"item_code\" VARCHAR(140), \"item_name\" VARCHAR(140), \"description\" TEXT,
             \"qty_text\" INTEGER NOT NULL DEFAULT 0, \"rate\" REAL NOT NULL DEFAULT 0,
             \"amount\" REAL NOT NULL DEFAULT 0, \"uom\" VARCHAR(140), \"warehouse\" VARCHAR(140),
             \"posting_date\" TEXT, \"status\" VARCHAR(140), \"is_active\" INTEGER NOT NULL DEFAULT 0,
             \"weight\" REAL NOT NULL DEFAULT 0, \"notes\" TEXT, \"batch_no\" VARCHAR(140));
         INSERT INTO \"new_tabBench Item\" (rowid, {cols}) SELECT rowid, {select} FROM \"tabBench Item\";
         DROP TABLE \"tabBench Item\";
         ALTER TABLE \"new_tabBench Item\" RENAME TO \"tabBench Item\";
         CREATE INDEX \"h_item_code\" ON \"tabBench Item\" (\"item_code\");
         CREATE INDEX \"h_warehouse\" ON \"tabBench Item\" (\"warehouse\");
         COMMIT;",
        cols = quoted.join(", "),
        select = select.join(", ")
    );
    conn.execute_batch(&sql).unwrap();
}

fn check_same_data(a: &Path, b: &Path) {
    let sum = |p: &Path| -> (i64, i64) {
        Connection::open(p)
            .unwrap()
            .query_row("SELECT count(*), sum(qty_text) FROM \"tabBench Item\" WHERE typeof(qty_text) = 'integer'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    assert_eq!(
        sum(a),
        sum(b),
        "engine and baseline must produce the same data"
    );
}

/// Resets the kernel's peak-RSS counter (Linux: write 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
