//! An online migration (expand, backfill, contract) of a column rename,
//! against the plain apply of the same change and hand-written SQL, on the
//! same machine in one run.
//!
//! ```text
//! cargo run --release --example online_bench [-- --rows N --rounds N --wal --writer
//!     --writer-pause-ms N --max-batch-ms N --pause-ms N --json PATH]
//! ```
//!
//! Builds the benchmark table of `examples/bench.rs` once (`--rows`,
//! default 1,000,000; 14 fields, 7 standard columns and Frappe's four `_`
//! meta columns, two secondary indexes), then renames its `item_name` column
//! to `item_title` (the DocType's field gets the new fieldname and
//! `renamed_from: item_name`), each run on a fresh copy of the base file
//! (synced to disk before the timed run; `--wal` switches each copy to WAL
//! first, otherwise it stays in rollback-journal mode):
//!
//! 1. `online_start`: the expand transaction (twin column and triggers),
//!    then the backfill of the twin in rowid ranges, each its own short
//!    write transaction. Reports the longest time one range held the write
//!    lock, the number of ranges, the backfill's total time (pauses
//!    included) and the expand transaction's time (the call's time minus
//!    the backfill's).
//! 2. `online_complete` right after it: one transaction holding the write
//!    lock throughout (twins checked and dropped, then the rename); also
//!    how much of it went to taking the lock, checking the twin and
//!    dropping it (up to its lock-taken event).
//! 3. The plain apply of the same DocType (`sync_all`), and two raw-SQL
//!    baselines: the same rename as one `ALTER TABLE ... RENAME COLUMN`,
//!    and a hand-written 12-step rebuild of the table with the column
//!    renamed (CREATE new, INSERT SELECT, DROP, RENAME, indexes), which is
//!    what a change that needs a rebuild costs.
//! 4. With `--writer`: `online_start` once more on another copy while a
//!    writer thread (its own connection, busy_timeout 5 s) updates single
//!    rows through the old column name in a loop (`--writer-pause-ms`
//!    between writes, default 1). Reports the writer's p50/p99/max latency
//!    per write in flight during the backfill (and how many took longer
//!    than the ranges' `--max-batch-ms`), against the same writer alone
//!    for one second before the start, and the backfill's own figures
//!    under that load. Complete then runs, and every value written must be
//!    found under the new name.
//!
//! The backfill runs with `--max-batch-ms` (default 25) and `--pause-ms`
//! (default 25), the library's defaults. Runs alternate over `--rounds`
//! rounds (default 3; the order reversed every other round) and the table
//! reports medians (with min and max). Every run's result is checked: the
//! renamed column holds every row's original value, and the online result
//! has the same table SQL as the plain apply's. Prints the table and
//! writes every figure as JSON (default `target/online_bench.json`).
//! Applier opening and connection opening are outside the timed parts.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doctype_migrate::{DocType, FieldType, MigrationApplier, RunEvent, RunObserver};
use rusqlite::Connection;
use serde_json::json;

#[path = "support/fmt.rs"]
mod fmt;
use fmt::thousands;
#[path = "support/bench_table.rs"]
mod bench_table;
use bench_table::{FIELDS, TABLE, build_base, business_doctype, table_sql};
#[path = "support/timing.rs"]
mod timing;
use timing::{median, min_max, ms, write_json};

/// The column renamed, and its new name.
const OLD: &str = "item_name";
const NEW: &str = "item_title";

struct Args {
    rows: u64,
    rounds: usize,
    wal: bool,
    writer: bool,
    writer_pause: Duration,
    max_batch: Duration,
    pause: Duration,
    json: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        rounds: 3,
        wal: false,
        writer: false,
        writer_pause: Duration::from_millis(1),
        // The library's defaults unless given.
        max_batch: doctype_migrate::BackfillSettings::default().max_batch,
        pause: doctype_migrate::BackfillSettings::default().pause,
        json: PathBuf::from("target/online_bench.json"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        // Flags first, then options taking a value.
        match v[i].as_str() {
            "--wal" => a.wal = true,
            "--writer" => a.writer = true,
            option => {
                let value = v.get(i + 1).cloned().unwrap_or_default();
                let ms = |what: &str| {
                    Duration::from_millis(
                        value
                            .parse()
                            .unwrap_or_else(|_| panic!("{what} takes a number of milliseconds")),
                    )
                };
                match option {
                    "--rows" => a.rows = value.parse().expect("--rows takes a number"),
                    "--rounds" => {
                        a.rounds = value
                            .parse::<usize>()
                            .expect("--rounds takes a number")
                            .max(1)
                    }
                    "--writer-pause-ms" => a.writer_pause = ms("--writer-pause-ms"),
                    "--max-batch-ms" => a.max_batch = ms("--max-batch-ms"),
                    "--pause-ms" => a.pause = ms("--pause-ms"),
                    "--json" => a.json = PathBuf::from(value),
                    other => panic!(
                        "unknown argument {other}; see the doc comment of examples/online_bench.rs"
                    ),
                }
                i += 1;
            }
        }
        i += 1;
    }
    a
}

/// The benchmark DocType with `item_name` renamed to `item_title`: the
/// same field in the same place, with the rename hint.
fn renamed_doctype() -> DocType {
    let mut dt = business_doctype(FieldType::Data);
    let field = dt
        .fields
        .iter_mut()
        .find(|f| f.fieldname == OLD)
        .expect("the benchmark table has the column");
    field.fieldname = NEW.into();
    field.renamed_from = Some(OLD.into());
    dt
}

/// The kinds of timed run, one fresh copy each.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Run {
    RawRename,
    RawRebuild,
    Plain,
    Online,
    OnlineWithWriter,
}

/// Figures collected over the rounds, in milliseconds unless named
/// otherwise.
#[derive(Default)]
struct Figures {
    raw_rename: Vec<f64>,
    raw_rebuild: Vec<f64>,
    plain: Vec<f64>,
    start: Vec<f64>,
    expand: Vec<f64>,
    backfill_total: Vec<f64>,
    longest_range: Vec<f64>,
    ranges: Vec<f64>,
    rows_backfilled: Vec<f64>,
    complete: Vec<f64>,
    complete_drop_twins: Vec<f64>,
    /// The `online_start` run with the writer going.
    w_backfill_total: Vec<f64>,
    w_longest_range: Vec<f64>,
    w_ranges: Vec<f64>,
    /// The writer's latencies, pooled over the rounds.
    w_idle: Vec<f64>,
    w_during: Vec<f64>,
    w_errors: u64,
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("base.db");
    println!("building {} rows x 25 columns ...", thousands(args.rows));
    build_base(&base, args.rows);
    let size_mb = std::fs::metadata(&base).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "base database: {size_mb:.0} MB; {} mode; backfill ranges aimed at {} ms, {} ms apart",
        if args.wal { "WAL" } else { "rollback-journal" },
        args.max_batch.as_millis(),
        args.pause.as_millis()
    );
    let target = renamed_doctype();
    let mut f = Figures::default();
    // What the plain apply leaves (table SQL): the online result must match.
    let mut plain_sql: Option<String> = None;
    let mut online_sql: Vec<String> = Vec::new();
    // The columns (name, declared type) the first run left: every run's
    // must match.
    let mut columns: Option<Vec<(String, String)>> = None;
    for round in 0..args.rounds {
        println!("round {}/{} ...", round + 1, args.rounds);
        let mut runs = vec![Run::RawRename, Run::Plain, Run::Online, Run::RawRebuild];
        if args.writer {
            runs.push(Run::OnlineWithWriter);
        }
        // Whatever runs first or last in a round meets a different page
        // cache: every other round runs them in the other order.
        if round % 2 == 1 {
            runs.reverse();
        }
        for run in runs {
            let db = copy(&base, dir.path(), "run.db", args.wal);
            match run {
                Run::RawRename => {
                    let conn = Connection::open(&db).unwrap();
                    f.raw_rename.push(ms(|| raw_rename(&conn)));
                }
                Run::RawRebuild => {
                    let conn = Connection::open(&db).unwrap();
                    f.raw_rebuild.push(ms(|| raw_rebuild(&conn)));
                }
                Run::Plain => {
                    let mut applier = applier(&db, &args, None);
                    f.plain.push(ms(|| {
                        let report = applier.sync_all(std::slice::from_ref(&target)).unwrap();
                        assert_eq!(report.migrations.len(), 1, "one migration");
                    }));
                    plain_sql = Some(table_sql(&db));
                }
                Run::Online => {
                    let o = online(&db, &args, &target, None);
                    println!(
                        "  online start {:.2} s (expand {:.1} ms, backfill {:.2} s in {} ranges, \
                         longest {:.1} ms); complete {:.2} s (twin checked and dropped: {:.2} s)",
                        o.start_ms / 1000.0,
                        o.start_ms - o.stats.total_ms,
                        o.stats.total_ms / 1000.0,
                        o.stats.batches,
                        o.stats.longest_batch_ms,
                        o.complete_ms / 1000.0,
                        o.drop_twins_ms / 1000.0
                    );
                    f.start.push(o.start_ms);
                    f.expand.push(o.start_ms - o.stats.total_ms);
                    f.backfill_total.push(o.stats.total_ms);
                    f.longest_range.push(o.stats.longest_batch_ms);
                    f.ranges.push(o.stats.batches as f64);
                    f.rows_backfilled.push(o.stats.rows_updated as f64);
                    f.complete.push(o.complete_ms);
                    f.complete_drop_twins.push(o.drop_twins_ms);
                    online_sql.push(table_sql(&db));
                }
                Run::OnlineWithWriter => {
                    let o = online(&db, &args, &target, Some(args.writer_pause));
                    let w = o.writer.expect("the writer ran");
                    println!(
                        "  with the writer: backfill {:.2} s in {} ranges, longest {:.1} ms; \
                         {} writes during it, max {:.1} ms",
                        o.stats.total_ms / 1000.0,
                        o.stats.batches,
                        o.stats.longest_batch_ms,
                        w.during.len(),
                        w.during.iter().cloned().fold(0.0, f64::max)
                    );
                    f.w_backfill_total.push(o.stats.total_ms);
                    f.w_longest_range.push(o.stats.longest_batch_ms);
                    f.w_ranges.push(o.stats.batches as f64);
                    f.w_idle.extend(w.idle);
                    f.w_during.extend(w.during);
                    f.w_errors += w.errors;
                }
            }
            // Every run renamed the column and kept every value (the
            // writer's run checked its own writes instead).
            if run != Run::OnlineWithWriter {
                let cols = check_renamed(&db, args.rows, run);
                let first = columns.get_or_insert_with(|| cols.clone());
                assert_eq!(&cols, first, "{run:?}: the same columns and types");
            }
            remove(&db);
        }
    }
    if let Some(plain) = &plain_sql {
        for sql in &online_sql {
            assert_eq!(
                sql, plain,
                "the online result must be the plain apply's table"
            );
        }
    }
    report(&args, size_mb, &f);
}

fn applier(db: &Path, args: &Args, observer: Option<Arc<Window>>) -> MigrationApplier {
    let mut b = MigrationApplier::builder(db)
        .no_audit_log()
        .backfill_max_batch(args.max_batch)
        .backfill_pause(args.pause);
    if let Some(o) = observer {
        b = b.observer(o);
    }
    b.build().unwrap()
}

/// One online migration: its figures, and the writer's if one ran.
struct OnlineRun {
    start_ms: f64,
    stats: doctype_migrate::BackfillStats,
    complete_ms: f64,
    /// Of complete: taking the lock, checking the twin equal in every row
    /// and dropping it with its triggers (`ALTER TABLE DROP COLUMN`
    /// rewrites every row).
    drop_twins_ms: f64,
    writer: Option<WriterFigures>,
}

/// The writer's latencies (ms): alone before the start, and during the
/// backfill (writes in flight at some moment between the expand's commit
/// and the last range's commit).
struct WriterFigures {
    idle: Vec<f64>,
    during: Vec<f64>,
    errors: u64,
}

/// When the expand step committed and when the last backfill range did,
/// from the run's events; and the last lock-taken event's wait, which at
/// complete includes checking and dropping the twins (done under the lock
/// before the plan is made).
#[derive(Default)]
struct Window {
    expanded: Mutex<Option<Instant>>,
    last_range: Mutex<Option<Instant>>,
    lock_taken_ms: Mutex<Option<f64>>,
}

impl RunObserver for Window {
    fn wants_rows_copied(&self) -> bool {
        false
    }

    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            // The first commit of online_start is the expand step's.
            RunEvent::Committed { .. } => {
                self.expanded
                    .lock()
                    .unwrap()
                    .get_or_insert_with(Instant::now);
            }
            RunEvent::Backfilled { .. } => *self.last_range.lock().unwrap() = Some(Instant::now()),
            RunEvent::LockTaken { waited_ms } => {
                *self.lock_taken_ms.lock().unwrap() = Some(*waited_ms)
            }
            _ => {}
        }
    }
}

/// `online_start` then `online_complete` on `db`; with `writer_pause`, a
/// writer thread updates rows through the old name from one second before
/// the start until the start returns.
fn online(db: &Path, args: &Args, target: &DocType, writer_pause: Option<Duration>) -> OnlineRun {
    let window = Arc::new(Window::default());
    let mut applier = applier(db, args, Some(window.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = writer_pause.map(|pause| {
        let (db, stop, rows) = (db.to_path_buf(), stop.clone(), args.rows);
        let handle = std::thread::spawn(move || write_loop(&db, rows, pause, &stop));
        // The writer alone first: what one of its writes costs anyway.
        std::thread::sleep(Duration::from_secs(1));
        handle
    });
    let called = Instant::now();
    let report = applier
        .online_start(std::slice::from_ref(target))
        .expect("online start");
    let start_ms = called.elapsed().as_secs_f64() * 1000.0;
    // The old application version is retired before complete.
    stop.store(true, Ordering::Relaxed);
    let log = writer.map(|h| h.join().expect("writer thread"));
    assert!(report.status.backfill_done(), "the backfill finished");
    let clock = Instant::now();
    let done = applier.online_complete().expect("online complete");
    let complete_ms = clock.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(done.migrations.len(), 1, "one migration at complete");
    let drop_twins_ms = window.lock_taken_ms.lock().unwrap().unwrap_or(0.0);
    let writer = log.map(|log| {
        check_writes(db, &log.last);
        let from = window.expanded.lock().unwrap().expect("expand committed");
        let to = window.last_range.lock().unwrap().unwrap_or(from);
        let pick = |keep: &dyn Fn(Instant, Instant) -> bool| -> Vec<f64> {
            log.samples
                .iter()
                .filter(|(at, took)| keep(*at, *at + *took))
                .map(|(_, took)| took.as_secs_f64() * 1000.0)
                .collect()
        };
        WriterFigures {
            // Begun and ended before the call.
            idle: pick(&|_, end| end < called),
            // In flight at some moment of the backfill: a write that began
            // during the expand step and waited through ranges counts.
            during: pick(&|begin, end| end >= from && begin <= to),
            errors: log.errors,
        }
    });
    OnlineRun {
        start_ms,
        stats: report.backfill,
        complete_ms,
        drop_twins_ms,
        writer,
    }
}

/// What the writer thread did: each write's start and latency, the writes
/// that failed (busy past its timeout), and the last value it wrote to each
/// row it wrote.
struct WriterLog {
    samples: Vec<(Instant, Duration)>,
    errors: u64,
    last: HashMap<String, String>,
}

/// The other application: single-row UPDATEs through the old column name,
/// on rows picked at random, until `stop`.
fn write_loop(db: &Path, rows: u64, pause: Duration, stop: &AtomicBool) -> WriterLog {
    let conn = Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let sql = format!("UPDATE \"{TABLE}\" SET \"{OLD}\" = ?1 WHERE name = ?2");
    let mut update = conn.prepare(&sql).unwrap();
    let mut log = WriterLog {
        samples: Vec::new(),
        errors: 0,
        last: HashMap::new(),
    };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // xorshift64: reproducible, no dependency.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let name = format!("ITEM-{:08}", rng % rows + 1);
        seq += 1;
        let value = format!("written {seq}");
        let t = Instant::now();
        let result = update.execute(rusqlite::params![value, name]);
        log.samples.push((t, t.elapsed()));
        match result {
            Ok(1) => {
                log.last.insert(name, value);
            }
            Ok(n) => panic!("the writer's update changed {n} rows"),
            Err(_) => log.errors += 1,
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    log
}

/// After complete, every value the writer wrote through the old name is
/// in the renamed column.
fn check_writes(db: &Path, last: &HashMap<String, String>) {
    let conn = Connection::open(db).unwrap();
    let sql = format!("SELECT \"{NEW}\" FROM \"{TABLE}\" WHERE name = ?1");
    let mut stmt = conn.prepare(&sql).unwrap();
    for (name, value) in last {
        let found: String = stmt.query_row([name], |r| r.get(0)).unwrap();
        assert_eq!(&found, value, "row {name} lost the writer's value");
    }
}

/// The raw baseline of the plain apply: the rename SQLite does in place.
fn raw_rename(conn: &Connection) {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         ALTER TABLE \"{TABLE}\" RENAME COLUMN \"{OLD}\" TO \"{NEW}\";
         COMMIT;"
    ))
    .unwrap();
}

/// sqlite.org/lang_altertable.html section 7 written by hand for the
/// rename, as `examples/bench.rs` writes its baseline: the cost of a change
/// that needs the table rebuilt.
fn raw_rebuild(conn: &Connection) {
    let standard = [
        "name",
        "creation",
        "modified",
        "modified_by",
        "owner",
        "docstatus",
        "idx",
    ];
    // Frappe's four meta columns, which the engine adds to every table.
    let meta = ["_user_tags", "_comments", "_assign", "_liked_by"];
    let old: Vec<&str> = standard
        .iter()
        .copied()
        .chain(FIELDS.iter().map(|(n, _)| *n))
        .chain(meta)
        .collect();
    let new: Vec<String> = old
        .iter()
        .map(|c| format!("\"{}\"", if *c == OLD { NEW } else { c }))
        .collect();
    let select: Vec<String> = old.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "PRAGMA foreign_keys = OFF;
         BEGIN;
         CREATE TABLE \"new_{TABLE}\" (\"name\" VARCHAR(140) NOT NULL PRIMARY KEY, \"creation\" TEXT,
             \"modified\" TEXT, \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
             \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
             \"item_code\" VARCHAR(140), \"{NEW}\" VARCHAR(140), \"description\" TEXT,
             \"qty_text\" VARCHAR(140), \"rate\" REAL NOT NULL DEFAULT 0,
             \"amount\" REAL NOT NULL DEFAULT 0, \"uom\" VARCHAR(140), \"warehouse\" VARCHAR(140),
             \"posting_date\" TEXT, \"status\" VARCHAR(140), \"is_active\" INTEGER NOT NULL DEFAULT 0,
             \"weight\" REAL NOT NULL DEFAULT 0, \"notes\" TEXT, \"batch_no\" VARCHAR(140),
             \"_user_tags\" TEXT, \"_comments\" TEXT, \"_assign\" TEXT, \"_liked_by\" TEXT);
         INSERT INTO \"new_{TABLE}\" (rowid, {new}) SELECT rowid, {select} FROM \"{TABLE}\";
         DROP TABLE \"{TABLE}\";
         ALTER TABLE \"new_{TABLE}\" RENAME TO \"{TABLE}\";
         CREATE INDEX \"h_item_code\" ON \"{TABLE}\" (\"item_code\");
         CREATE INDEX \"h_warehouse\" ON \"{TABLE}\" (\"warehouse\");
         COMMIT;",
        new = new.join(", "),
        select = select.join(", ")
    );
    conn.execute_batch(&sql).unwrap();
}

/// Every run leaves `item_title` (and no `item_name`) in the same place,
/// with every row's original value, and no trigger. Returns the columns.
fn check_renamed(db: &Path, rows: u64, run: Run) -> Vec<(String, String)> {
    let conn = Connection::open(db).unwrap();
    let columns: Vec<(String, String)> = conn
        .prepare(&format!(
            "SELECT name, type FROM pragma_table_info('{TABLE}')"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 25, "{run:?}: 25 columns, got {names:?}");
    assert!(
        names.contains(&NEW) && !names.contains(&OLD),
        "{run:?}: {names:?}"
    );
    assert_eq!(names[8], NEW, "{run:?}: the renamed column keeps its place");
    let (n, kept, triggers): (i64, i64, i64) = conn
        .query_row(
            &format!(
                "SELECT count(*),
                    sum(\"{NEW}\" IS 'Item number ' || CAST(substr(name, 6) AS INTEGER)),
                    (SELECT count(*) FROM sqlite_schema WHERE type = 'trigger')
                 FROM \"{TABLE}\""
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (n, kept, triggers),
        (rows as i64, rows as i64, 0),
        "{run:?}: every row keeps its value under the new name, no trigger is left"
    );
    columns
}

/// Prints the table and writes the JSON.
fn report(args: &Args, size_mb: f64, f: &Figures) {
    let mode = if args.wal { "WAL" } else { "rollback journal" };
    println!();
    println!(
        "rename of one column, {} rows ({size_mb:.0} MB), {mode}, {} round(s): median (min–max)",
        thousands(args.rows),
        args.rounds
    );
    println!();
    println!("| measurement | median | min | max |");
    println!("|---|---|---|---|");
    let line = |what: &str, v: &[f64], unit: Unit| {
        if v.is_empty() {
            return;
        }
        let (lo, hi) = min_max(v);
        println!(
            "| {what} | {} | {} | {} |",
            unit.show(median(v)),
            unit.show(lo),
            unit.show(hi)
        );
    };
    line("online start: expand transaction", &f.expand, Unit::Ms);
    line(
        "online start: longest lock hold of one backfill range",
        &f.longest_range,
        Unit::Ms,
    );
    line("online start: backfill ranges", &f.ranges, Unit::Count);
    line(
        "online start: backfill, total (pauses included)",
        &f.backfill_total,
        Unit::Ms,
    );
    line("online start: the whole call", &f.start, Unit::Ms);
    line(
        "online complete (holds the lock throughout)",
        &f.complete,
        Unit::Ms,
    );
    line(
        "of which: twin checked equal and dropped",
        &f.complete_drop_twins,
        Unit::Ms,
    );
    line(
        "plain apply of the rename (holds the lock throughout)",
        &f.plain,
        Unit::Ms,
    );
    line(
        "raw SQL: ALTER TABLE RENAME COLUMN",
        &f.raw_rename,
        Unit::Ms,
    );
    line(
        "raw SQL: 12-step rebuild with the column renamed",
        &f.raw_rebuild,
        Unit::Ms,
    );
    if args.writer {
        line(
            "with the writer: longest lock hold of one range",
            &f.w_longest_range,
            Unit::Ms,
        );
        line("with the writer: backfill ranges", &f.w_ranges, Unit::Count);
        line(
            "with the writer: backfill, total",
            &f.w_backfill_total,
            Unit::Ms,
        );
        println!();
        println!(
            "writer (single-row UPDATE through {OLD:?}, busy_timeout 5 s, {} ms between writes), \
             latency per write, pooled over the rounds:",
            args.writer_pause.as_millis()
        );
        println!();
        let limit = args.max_batch.as_secs_f64() * 1000.0;
        println!("| writer | writes | p50 | p99 | max | slower than {limit:.0} ms |");
        println!("|---|---|---|---|---|---|");
        for (what, v) in [
            ("alone, the second before the start", &f.w_idle),
            ("in flight during the backfill", &f.w_during),
        ] {
            let p = percentiles(v);
            println!(
                "| {what} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
                v.len(),
                p.0,
                p.1,
                p.2,
                v.iter().filter(|&&ms| ms > limit).count()
            );
        }
        println!("writes that failed (busy past 5 s): {}", f.w_errors);
    }
    let stat = |v: &[f64]| {
        let (lo, hi) = min_max(v);
        json!({ "median": median(v), "min": lo, "max": hi, "runs": v })
    };
    let latencies = |v: &[f64]| {
        let p = percentiles(v);
        let limit = args.max_batch.as_secs_f64() * 1000.0;
        json!({
            "writes": v.len(), "p50_ms": p.0, "p99_ms": p.1, "max_ms": p.2,
            "slower_than_max_batch": v.iter().filter(|&&ms| ms > limit).count(),
        })
    };
    let writer = if args.writer {
        json!({
            "pause_ms": args.writer_pause.as_millis() as u64,
            "idle": latencies(&f.w_idle),
            "during_backfill": latencies(&f.w_during),
            "errors": f.w_errors,
            "backfill_longest_range_ms": stat(&f.w_longest_range),
            "backfill_ranges": stat(&f.w_ranges),
            "backfill_total_ms": stat(&f.w_backfill_total),
        })
    } else {
        serde_json::Value::Null
    };
    let json = json!({
        "rows": args.rows,
        "rounds": args.rounds,
        "wal": args.wal,
        "database_mb": size_mb,
        "rename": { "table": TABLE, "from": OLD, "to": NEW },
        "backfill_settings": {
            "max_batch_ms": args.max_batch.as_millis() as u64,
            "pause_ms": args.pause.as_millis() as u64,
        },
        "online_start": {
            "expand_ms": stat(&f.expand),
            "longest_range_ms": stat(&f.longest_range),
            "ranges": stat(&f.ranges),
            "rows_backfilled": stat(&f.rows_backfilled),
            "backfill_total_ms": stat(&f.backfill_total),
            "call_ms": stat(&f.start),
        },
        "online_complete_ms": stat(&f.complete),
        "online_complete_drop_twins_ms": stat(&f.complete_drop_twins),
        "plain_apply_ms": stat(&f.plain),
        "raw_rename_ms": stat(&f.raw_rename),
        "raw_rebuild_ms": stat(&f.raw_rebuild),
        "writer": writer,
    });
    write_json(&args.json, &json);
}

#[derive(Clone, Copy)]
enum Unit {
    Ms,
    Count,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Count => format!("{v:.0}"),
            Unit::Ms if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Ms => format!("{v:.1} ms"),
        }
    }
}

/// p50, p99 and max; zeros for no samples.
fn percentiles(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    (at(0.5), at(0.99), v[v.len() - 1])
}

/// A fresh copy of the base file, synced to disk before the timed run
/// (and switched to WAL with `wal`; the mode is in the file header).
fn copy(src: &Path, dir: &Path, name: &str, wal: bool) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).expect("copy database");
    if wal {
        let mode: String = Connection::open(&dst)
            .unwrap()
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    File::open(&dst)
        .and_then(|f| f.sync_all())
        .expect("sync copy");
    dst
}

fn remove(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let mut backups = db.as_os_str().to_owned();
    backups.push(".backups");
    let _ = std::fs::remove_dir_all(PathBuf::from(backups));
}
