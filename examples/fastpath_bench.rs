//! The fast paths (changes made without copying the table) against the
//! rebuild they replace and raw SQL, on the same machine in one run.
//!
//! ```text
//! cargo run --release --example fastpath_bench [-- --rows N --rounds N --json PATH]
//! ```
//!
//! Builds the benchmark table of `examples/bench.rs` once (`--rows`,
//! default 10,000,000; 14 fields, 7 standard columns and Frappe's four `_`
//! meta columns, two secondary indexes), created through the engine from
//! its DocType so that the engine's history shows it wrote every row's
//! columns. One more apply through the engine then gives it the base
//! definition of this benchmark: `status` (Select) gets `"default":
//! "Active"` and `uom` (Data, every row `Nos`) gets `"not_nullable": 1`
//! (a NOT NULL column); its time is printed too, once (a native `SET NOT
//! NULL` reads the table, and so does validation counting NULLs before
//! it). Then three changes, each from that base:
//!
//! 1. **DEFAULT**: `status` gets `"default": "Draft"`.
//! 2. **VARCHAR length**: `item_name` gets `"length": 255`
//!    (`VARCHAR(140)` → `VARCHAR(255)`, the same affinity).
//! 3. **NOT NULL relaxed**: `uom` loses `"not_nullable"`.
//!
//! Each change runs four ways, each on a fresh copy of the base file
//! (synced to disk before the timed run):
//!
//! - the engine (`sync_all`) with its fast paths: a schema-text edit for
//!   (1) and (2), a native `ALTER TABLE … ALTER COLUMN … DROP NOT NULL` for
//!   (3). Reports the call's wall time and the report's `execute_ms` (the
//!   steps alone);
//! - the engine with `always_rebuild(true)`: the 12-step rebuild, as before
//!   the fast paths;
//! - raw SQL, the hand-written 12-step rebuild (CREATE new, INSERT SELECT,
//!   DROP, RENAME, CREATE INDEX) for the same change;
//! - raw SQL, the fast statement itself: for (1) and (2) the schema edit of
//!   sqlite.org/lang_altertable.html section 7 ("making other kinds of
//!   table schema changes": `writable_schema`, an UPDATE of
//!   `sqlite_schema`, the schema version incremented), for (3) the native
//!   `ALTER TABLE … ALTER COLUMN … DROP NOT NULL`.
//!
//! Both engine runs take no backups (`BackupPolicy::Never`; the fast paths
//! need none, and under the default policy the rebuild would also write a
//! backup of the whole table), so the rebuild compares with the raw one.
//! Each engine run's plan is checked before it runs (the fast run's
//! approach must be `InPlace` or `Native`, the rebuild's `Rebuild`), and
//! after every run the table must hold every row and the same columns
//! (name, type, NOT NULL, DEFAULT) as the other three runs of the change.
//!
//! Runs alternate over `--rounds` rounds (default 3; the order reversed
//! every other round); the table reports medians. Also printed: where the
//! fast runs' time went, from the run's events (mean per run). The target
//! is under 50 ms engine time for a change whose rebuild takes tens of
//! seconds. Figures are written as JSON (default
//! `target/fastpath_bench.json`). Applier and connection opening are
//! outside the timed parts. Every file is made in a temporary directory
//! and each copy is removed after its run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use doctype_migrate::{Approach, BackupPolicy, DocType, FieldType, MigrationApplier};
use rusqlite::Connection;
use serde_json::{Value, json};

#[path = "support/fmt.rs"]
mod fmt;
use fmt::thousands;
#[path = "support/bench_table.rs"]
mod bench_table;
use bench_table::{TABLE, build_base, business_doctype, table_sql};
#[path = "support/timing.rs"]
mod timing;
use timing::{median, min_max, ms, write_json};
#[path = "support/gaps.rs"]
mod gaps;
use gaps::Gaps;

/// The engine's target: under this many milliseconds for a fast path.
const TARGET_MS: f64 = 50.0;

struct Args {
    rows: u64,
    rounds: usize,
    json: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        rows: 10_000_000,
        rounds: 3,
        json: PathBuf::from("target/fastpath_bench.json"),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--rows" => a.rows = next.parse().expect("--rows takes a number"),
            "--rounds" => {
                a.rounds = next
                    .parse::<usize>()
                    .expect("--rounds takes a number")
                    .max(1)
            }
            "--json" => a.json = PathBuf::from(next),
            other => panic!(
                "unknown argument {other}; see the doc comment of examples/fastpath_bench.rs"
            ),
        }
        i += 2;
    }
    a
}

/// The three changes measured.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    Default,
    Length,
    DropNotNull,
}

impl Change {
    const ALL: [Change; 3] = [Change::Default, Change::Length, Change::DropNotNull];

    fn label(self) -> &'static str {
        match self {
            Change::Default => "DEFAULT of `status` (Select): 'Active' -> 'Draft'",
            Change::Length => "`item_name` (Data): VARCHAR(140) -> VARCHAR(255)",
            Change::DropNotNull => "`uom` (Data): NOT NULL -> nullable",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Change::Default => "default",
            Change::Length => "varchar_length",
            Change::DropNotNull => "drop_not_null",
        }
    }

    /// The approach the engine's fast paths must take.
    fn fast_approach(self) -> Approach {
        match self {
            Change::Default | Change::Length => Approach::InPlace,
            Change::DropNotNull => Approach::Native,
        }
    }

    /// What the raw fast statement is.
    fn raw_fast_label(self) -> &'static str {
        match self {
            Change::Default | Change::Length => "writable_schema edit",
            Change::DropNotNull => "ALTER COLUMN DROP NOT NULL",
        }
    }

    /// The DocType after the change: the base with one property edited,
    /// as in its JSON.
    fn doctype(self) -> DocType {
        doctype_json(Some(self))
    }

    /// The column the change is about, and what it must look like after:
    /// (declared type, NOT NULL, DEFAULT as written in the CREATE text).
    fn expected(self) -> (&'static str, (&'static str, bool, Option<&'static str>)) {
        match self {
            Change::Default => ("status", ("VARCHAR(140)", false, Some("'Draft'"))),
            Change::Length => ("item_name", ("VARCHAR(255)", false, None)),
            Change::DropNotNull => ("uom", ("VARCHAR(140)", false, None)),
        }
    }
}

/// The benchmark DocType as JSON with this benchmark's base properties
/// (`status` defaults to `Active`, `uom` is `not_nullable`), and `change`
/// made on top; loaded as an application's DocType JSON is.
fn doctype_json(change: Option<Change>) -> DocType {
    let mut dt = serde_json::to_value(business_doctype(FieldType::Data)).unwrap();
    let fields = dt["fields"].as_array_mut().unwrap();
    field_mut(fields, "status").insert("default".into(), json!("Active"));
    field_mut(fields, "uom").insert("not_nullable".into(), json!(1));
    match change {
        None => {}
        Some(Change::Default) => {
            field_mut(fields, "status").insert("default".into(), json!("Draft"));
        }
        Some(Change::Length) => {
            field_mut(fields, "item_name").insert("length".into(), json!(255));
        }
        Some(Change::DropNotNull) => {
            field_mut(fields, "uom").remove("not_nullable");
        }
    }
    dt["doctype"] = json!("DocType");
    let mut parsed = doctype_migrate::doctypes_from_json(&dt.to_string(), "<fastpath_bench>")
        .expect("the benchmark DocType parses");
    assert_eq!(parsed.len(), 1);
    parsed.remove(0)
}

/// The JSON object of the field named `name`.
fn field_mut<'a>(fields: &'a mut [Value], name: &str) -> &'a mut serde_json::Map<String, Value> {
    fields
        .iter_mut()
        .find(|f| f["fieldname"] == name)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the benchmark table has {name}"))
}

/// The kinds of timed run, one fresh copy each.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Run {
    EngineFast,
    EngineRebuild,
    RawRebuild,
    RawFast,
}

/// One change's figures over the rounds, in milliseconds.
#[derive(Default)]
struct Figures {
    fast: Vec<f64>,
    fast_execute: Vec<f64>,
    fast_validate: Vec<f64>,
    fast_verify: Vec<f64>,
    rebuild: Vec<f64>,
    rebuild_execute: Vec<f64>,
    raw_rebuild: Vec<f64>,
    raw_fast: Vec<f64>,
    /// Where the fast runs' time went, summed over the rounds.
    split: Gaps,
    why_fast: String,
    why_rebuild: String,
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("base.db");
    println!("building {} rows x 25 columns ...", thousands(args.rows));
    let built = Instant::now();
    build_base(&base, args.rows);
    println!("  built in {:.1} s", built.elapsed().as_secs_f64());
    // The build leaves the file's pages dirty in the page cache (it runs
    // with synchronous off): on disk first, or the next commit pays for
    // flushing them.
    sync(&base);
    // The base definition, through the engine: DEFAULT 'Active' on status
    // (a schema-text edit) and NOT NULL on uom (native SET NOT NULL, which
    // reads the table for NULLs, as does validation before it).
    let setup = {
        let mut applier = MigrationApplier::builder(&base)
            .backup_policy(BackupPolicy::Never)
            .build()
            .unwrap();
        let clock = Instant::now();
        let report = applier.sync_all(&[doctype_json(None)]).unwrap();
        assert_eq!(report.migrations.len(), 1, "one migration");
        let m = &report.migrations[0].metrics;
        Setup {
            wall_ms: clock.elapsed().as_secs_f64() * 1000.0,
            validate_ms: m.validate_ms,
            execute_ms: m.execute_ms,
        }
    };
    let size_mb = std::fs::metadata(&base).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "base database: {size_mb:.0} MB; base definition applied in {} (validation {}, which \
         counts uom's NULLs; execute {}, where SET NOT NULL reads the table)",
        show(setup.wall_ms),
        show(setup.validate_ms),
        show(setup.execute_ms)
    );
    let sql = table_sql(&base);
    for column in [
        "\"item_name\" VARCHAR(140),",
        "\"uom\" VARCHAR(140) NOT NULL,",
        "\"status\" VARCHAR(140) DEFAULT 'Active',",
    ] {
        assert!(sql.contains(column), "the base table has {column}: {sql}");
    }
    let mut figures: Vec<Figures> = Change::ALL.iter().map(|_| Figures::default()).collect();
    for round in 0..args.rounds {
        println!("round {}/{} ...", round + 1, args.rounds);
        for (change, f) in Change::ALL.iter().copied().zip(figures.iter_mut()) {
            let mut runs = vec![
                Run::EngineFast,
                Run::EngineRebuild,
                Run::RawRebuild,
                Run::RawFast,
            ];
            // Whatever runs first or last meets a different page cache:
            // every other round runs them in the other order.
            if round % 2 == 1 {
                runs.reverse();
            }
            // The columns the change's first run left: every run's must match.
            let mut columns: Option<Vec<ColumnInfo>> = None;
            for run in runs {
                let db = copy(&base, dir.path());
                let took = match run {
                    Run::EngineFast | Run::EngineRebuild => {
                        let rebuild = run == Run::EngineRebuild;
                        let e = engine(&db, change, rebuild, &f.split);
                        if rebuild {
                            f.rebuild_execute.push(e.execute_ms);
                            f.why_rebuild = e.why;
                        } else {
                            f.fast_execute.push(e.execute_ms);
                            f.fast_validate.push(e.validate_ms);
                            f.fast_verify.push(e.verify_ms);
                            f.why_fast = e.why;
                        }
                        e.wall_ms
                    }
                    Run::RawRebuild => {
                        let conn = Connection::open(&db).unwrap();
                        ms(|| raw_rebuild(&conn, change))
                    }
                    Run::RawFast => {
                        let conn = Connection::open(&db).unwrap();
                        ms(|| raw_fast(&conn, change))
                    }
                };
                match run {
                    Run::EngineFast => f.fast.push(took),
                    Run::EngineRebuild => f.rebuild.push(took),
                    Run::RawRebuild => f.raw_rebuild.push(took),
                    Run::RawFast => f.raw_fast.push(took),
                }
                println!(
                    "  {:<14} {:<13} {}",
                    change.key(),
                    format!("{run:?}"),
                    show(took)
                );
                let cols = check(&db, args.rows, change, run);
                let first = columns.get_or_insert_with(|| cols.clone());
                assert_eq!(
                    &cols, first,
                    "{change:?}, {run:?}: the same columns as the change's other runs"
                );
                remove_run_dir(&db);
            }
        }
    }
    let _ = std::fs::remove_file(&base);
    report(&args, size_mb, &setup, &figures);
}

/// The apply that gives the base its definition (one run).
struct Setup {
    wall_ms: f64,
    validate_ms: f64,
    execute_ms: f64,
}

/// An engine run's figures.
struct EngineRun {
    wall_ms: f64,
    execute_ms: f64,
    validate_ms: f64,
    verify_ms: f64,
    why: String,
}

/// `sync_all` of the changed DocType on `db`, with the fast paths or with
/// `always_rebuild`. The plan is checked first, on an applier of its own
/// (not timed).
fn engine(db: &Path, change: Change, always_rebuild: bool, split: &Gaps) -> EngineRun {
    let target = change.doctype();
    let builder = || {
        MigrationApplier::builder(db)
            .backup_policy(BackupPolicy::Never)
            .always_rebuild(always_rebuild)
    };
    let plan = builder()
        .read_only(true)
        .build()
        .unwrap()
        .plan(std::slice::from_ref(&target))
        .unwrap();
    assert_eq!(plan.doctypes.len(), 1, "one DocType planned");
    let p = &plan.doctypes[0];
    let want = if always_rebuild {
        Approach::Rebuild
    } else {
        change.fast_approach()
    };
    assert_eq!(
        p.approach,
        Some(want),
        "{change:?} (always_rebuild {always_rebuild}): {}",
        p.why
    );
    let why = p.why.clone();
    let gaps = Arc::new(Gaps::default());
    let mut applier = builder().observer(gaps.clone()).build().unwrap();
    let clock = Instant::now();
    let report = applier.sync_all(std::slice::from_ref(&target)).unwrap();
    let wall_ms = clock.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(report.migrations.len(), 1, "one migration");
    let m = &report.migrations[0];
    assert_eq!(
        m.metrics.rows_copied > 0,
        always_rebuild,
        "{change:?}: rows copied only by the rebuild"
    );
    if !always_rebuild {
        split.add(&gaps);
    }
    EngineRun {
        wall_ms,
        execute_ms: m.metrics.execute_ms,
        validate_ms: m.metrics.validate_ms,
        verify_ms: m.metrics.verify_ms,
        why,
    }
}

/// The raw fast statement: the schema edit of sqlite.org's procedure for
/// (1) and (2), the native ALTER COLUMN for (3).
fn raw_fast(conn: &Connection, change: Change) {
    let (from, to) = match change {
        Change::DropNotNull => {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 ALTER TABLE \"{TABLE}\" ALTER COLUMN \"uom\" DROP NOT NULL;
                 COMMIT;"
            ))
            .unwrap();
            return;
        }
        Change::Default => (
            "\"status\" VARCHAR(140) DEFAULT 'Active'",
            "\"status\" VARCHAR(140) DEFAULT 'Draft'",
        ),
        Change::Length => ("\"item_name\" VARCHAR(140)", "\"item_name\" VARCHAR(255)"),
    };
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let version: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
    let edited = conn
        .execute(
            "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2)
             WHERE type = 'table' AND name = ?3 AND instr(sql, ?1) > 0",
            [from, to, TABLE],
        )
        .unwrap();
    assert_eq!(edited, 1, "the raw schema edit found {from:?}");
    conn.execute_batch(&format!(
        "PRAGMA schema_version = {};
         PRAGMA writable_schema = OFF;
         COMMIT;",
        version + 1
    ))
    .unwrap();
}

/// sqlite.org/lang_altertable.html section 7 written by hand for the
/// change, as `examples/bench.rs` writes its baseline.
fn raw_rebuild(conn: &Connection, change: Change) {
    let status = if change == Change::Default {
        "VARCHAR(140) DEFAULT 'Draft'"
    } else {
        "VARCHAR(140) DEFAULT 'Active'"
    };
    let item_name = if change == Change::Length {
        "VARCHAR(255)"
    } else {
        "VARCHAR(140)"
    };
    let uom = if change == Change::DropNotNull {
        "VARCHAR(140)"
    } else {
        "VARCHAR(140) NOT NULL"
    };
    let cols = [
        "name",
        "creation",
        "modified",
        "modified_by",
        "owner",
        "docstatus",
        "idx",
        "item_code",
        "item_name",
        "description",
        "qty_text",
        "rate",
        "amount",
        "uom",
        "warehouse",
        "posting_date",
        "status",
        "is_active",
        "weight",
        "notes",
        "batch_no",
        "_user_tags",
        "_comments",
        "_assign",
        "_liked_by",
    ]
    .map(|c| format!("\"{c}\""))
    .join(", ");
    let sql = format!(
        "PRAGMA foreign_keys = OFF;
         BEGIN;
         CREATE TABLE \"new_{TABLE}\" (\"name\" VARCHAR(140) NOT NULL PRIMARY KEY, \"creation\" TEXT,
             \"modified\" TEXT, \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
             \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
             \"item_code\" VARCHAR(140), \"item_name\" {item_name}, \"description\" TEXT,
             \"qty_text\" VARCHAR(140), \"rate\" REAL NOT NULL DEFAULT 0,
             \"amount\" REAL NOT NULL DEFAULT 0, \"uom\" {uom}, \"warehouse\" VARCHAR(140),
             \"posting_date\" TEXT, \"status\" {status}, \"is_active\" INTEGER NOT NULL DEFAULT 0,
             \"weight\" REAL NOT NULL DEFAULT 0, \"notes\" TEXT, \"batch_no\" VARCHAR(140),
             \"_user_tags\" TEXT, \"_comments\" TEXT, \"_assign\" TEXT, \"_liked_by\" TEXT);
         INSERT INTO \"new_{TABLE}\" (rowid, {cols}) SELECT rowid, {cols} FROM \"{TABLE}\";
         DROP TABLE \"{TABLE}\";
         ALTER TABLE \"new_{TABLE}\" RENAME TO \"{TABLE}\";
         CREATE INDEX \"dm_idx__{TABLE}__item_code\" ON \"{TABLE}\" (\"item_code\");
         CREATE INDEX \"dm_idx__{TABLE}__warehouse\" ON \"{TABLE}\" (\"warehouse\");
         COMMIT;"
    );
    conn.execute_batch(&sql).unwrap();
}

/// One column as `pragma_table_info` shows it: name, declared type, NOT
/// NULL, DEFAULT (as written), primary-key position.
type ColumnInfo = (String, String, bool, Option<String>, i64);

/// After a run: every row is there, the changed column is as the change
/// wants it, and the table has the same indexes. Returns the columns.
fn check(db: &Path, rows: u64, change: Change, run: Run) -> Vec<ColumnInfo> {
    let conn = Connection::open(db).unwrap();
    let columns: Vec<ColumnInfo> = conn
        .prepare(&format!(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{TABLE}')"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(columns.len(), 25, "{change:?}, {run:?}: 25 columns");
    let (name, (decl, not_null, default)) = change.expected();
    let col = columns.iter().find(|c| c.0 == name).unwrap();
    assert_eq!(
        (col.1.as_str(), col.2, col.3.as_deref()),
        (decl, not_null, default),
        "{change:?}, {run:?}: column {name}"
    );
    let (n, indexes): (i64, String) = conn
        .query_row(
            &format!(
                "SELECT (SELECT count(*) FROM \"{TABLE}\"),
                    (SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema
                     WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name))"
            ),
            [TABLE],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n, rows as i64, "{change:?}, {run:?}: every row");
    assert_eq!(
        indexes,
        format!("dm_idx__{TABLE}__item_code,dm_idx__{TABLE}__warehouse"),
        "{change:?}, {run:?}: the two indexes"
    );
    columns
}

/// Prints the table and writes the JSON.
fn report(args: &Args, size_mb: f64, setup: &Setup, figures: &[Figures]) {
    println!();
    println!(
        "fast paths, {} rows ({size_mb:.0} MB), rollback journal, {} round(s), medians:",
        thousands(args.rows),
        args.rounds
    );
    println!();
    println!(
        "| change | engine, fast path | (its execute) | engine, always_rebuild | (its execute) \
         | raw SQL: 12-step rebuild | raw SQL: fast statement | engine fast < {TARGET_MS:.0} ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (change, f) in Change::ALL.iter().zip(figures) {
        let fast = median(&f.fast);
        println!(
            "| {} | {} ({}) | {} | {} | {} | {} | {} ({}) | {} |",
            change.label(),
            show(fast),
            change.fast_approach(),
            show(median(&f.fast_execute)),
            show(median(&f.rebuild)),
            show(median(&f.rebuild_execute)),
            show(median(&f.raw_rebuild)),
            show(median(&f.raw_fast)),
            change.raw_fast_label(),
            if fast < TARGET_MS { "yes" } else { "**no**" }
        );
    }
    println!();
    println!("where the engine's fast runs went (ms before each event, mean per run):");
    for (change, f) in Change::ALL.iter().zip(figures) {
        println!(
            "  {} (validate_ms {:.1}, execute_ms {:.1}, verify_ms {:.1}; medians):",
            change.key(),
            median(&f.fast_validate),
            median(&f.fast_execute),
            median(&f.fast_verify)
        );
        for (k, v) in f.split.means(f.fast.len()) {
            println!("    {k:<44} {v:>9.2}");
        }
    }
    println!();
    for (change, f) in Change::ALL.iter().zip(figures) {
        println!("{}: fast plan: {}", change.key(), f.why_fast);
        println!("{}: always_rebuild plan: {}", change.key(), f.why_rebuild);
    }
    let stat = |v: &[f64]| {
        let (lo, hi) = min_max(v);
        json!({ "median": median(v), "min": lo, "max": hi, "runs": v })
    };
    let changes: serde_json::Map<String, Value> = Change::ALL
        .iter()
        .zip(figures)
        .map(|(change, f)| {
            (
                change.key().to_string(),
                json!({
                    "what": change.label(),
                    "fast_approach": change.fast_approach(),
                    "engine_fast_ms": stat(&f.fast),
                    "engine_fast_execute_ms": stat(&f.fast_execute),
                    "engine_fast_validate_ms": stat(&f.fast_validate),
                    "engine_fast_verify_ms": stat(&f.fast_verify),
                    "engine_fast_split_ms": f.split.means(f.fast.len())
                        .into_iter().map(|(k, v)| (k, json!(v)))
                        .collect::<serde_json::Map<_, _>>(),
                    "engine_always_rebuild_ms": stat(&f.rebuild),
                    "engine_always_rebuild_execute_ms": stat(&f.rebuild_execute),
                    "raw_rebuild_ms": stat(&f.raw_rebuild),
                    "raw_fast_ms": stat(&f.raw_fast),
                    "raw_fast_is": change.raw_fast_label(),
                    "target_ms": TARGET_MS,
                    "met": median(&f.fast) < TARGET_MS,
                }),
            )
        })
        .collect();
    let report = json!({
        "rows": args.rows,
        "rounds": args.rounds,
        "database_mb": size_mb,
        "base_definition": {
            "what": "DEFAULT 'Active' on status, NOT NULL on uom (SET NOT NULL)",
            "wall_ms": setup.wall_ms,
            "validate_ms": setup.validate_ms,
            "execute_ms": setup.execute_ms,
        },
        "changes": changes,
    });
    write_json(&args.json, &report);
}

fn show(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// A fresh copy of the base file in a directory of its own (the engine
/// writes its audit log and run marker beside the database), synced to
/// disk before the timed run.
fn copy(src: &Path, dir: &Path) -> PathBuf {
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).expect("run directory");
    let dst = run_dir.join("run.db");
    std::fs::copy(src, &dst).expect("copy database");
    sync(&dst);
    dst
}

/// The file's dirty pages to disk.
fn sync(db: &Path) {
    File::open(db)
        .and_then(|f| f.sync_all())
        .expect("sync database file");
}

/// Removes a run's copy and everything written beside it.
fn remove_run_dir(db: &Path) {
    if let Some(run_dir) = db.parent() {
        let _ = std::fs::remove_dir_all(run_dir);
    }
}
