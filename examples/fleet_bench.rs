//! A fleet of tenant databases: `doctype-migrate fleet apply` against the
//! shell loop over the single-database command that users write without it,
//! on the same files, in one run.
//!
//! ```text
//! cargo build --release --bin doctype-migrate --example fleet_bench
//! cargo run --release --example fleet_bench [-- --dbs N --doctypes K --loop-sample M
//!     --rounds R --profile-dbs P --bin PATH --dir PATH --json PATH --keep]
//! ```
//!
//! Runs the release binary (`--bin`, default `doctype-migrate` beside the
//! example's own directory, i.e. `target/release/doctype-migrate`) as a
//! user would, in a temporary directory (under `--dir`, default the system
//! temp dir; removed at the end unless `--keep`), which is the current
//! directory of every command:
//!
//! - writes `--doctypes` (default 50) synthetic Frappe-like DocTypes (Data,
//!   Select, Int, Currency, Check, Date, Link, Small Text fields; every
//!   fifth a child table of the one before it, which gets a Table field)
//!   into `v1/`, and the same into `v2/` with one new Data column in the
//!   first DocType (a pass adding one column everywhere);
//! - applies `v1` to a template database once with
//!   `doctype-migrate apply --db template/site.db --doctypes v1` (which
//!   leaves the start-up record of `v1`), adds a few rows, and copies it to
//!   `sites/NNNNN/site.db`, `--dbs` times (default 10,000), synced to disk
//!   before anything is timed.
//!
//! Then it measures, each on the same files:
//!
//! 1. the no-op pass: `doctype-migrate fleet apply --dbs 'sites/*/site.db'
//!    --doctypes v1 --json` with `--parallel 2` and `--parallel 1`, against
//!    the shell loop `for f in sites/*/site.db; do doctype-migrate apply
//!    --db "$f" --doctypes v1 --quiet; done` (run by `sh -c`, with `set -e`
//!    and the binary's directory first in `PATH`); every database is up to
//!    date and takes the start-up fast path. `--rounds` rounds (default 3),
//!    the order rotated each round; the table reports medians. The loops
//!    stop after the first `--loop-sample` databases (default 1,000; 0 for
//!    all; a counter in the loop) and their time per database is
//!    extrapolated to the fleet (said so in the output). Then the fleet's
//!    no-op pass once more with every database moved into one directory
//!    (`flat/NNNNN.db`, then moved back);
//! 2. where the fleet's no-op pass spends its time per database, in this
//!    process over the first `--profile-dbs` databases (default 2,000)
//!    through the library: opening a SQLite connection, reading
//!    `sqlite_schema` (which parses the schema) and closing it, on these
//!    databases and on a one-table database; the same with `PRAGMA
//!    schema_version` (no parse); `MigrationApplier::builder(db).build()`;
//!    `Fleet::apply` with one worker without and with the audit log, and
//!    with two workers; then the same with SQLite's memory statistics off
//!    (`sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0)`, in this process only);
//!    and the process start of the binary (`doctype-migrate --version` in
//!    the same loop), which the shell loop pays per database;
//! 3. the pass adding one column (`--doctypes v2`): `fleet apply
//!    --parallel 2` on a fresh copy of the fleet, then the shell loop on
//!    another fresh copy (of the `--loop-sample` databases), and each one's
//!    second pass (a no-op on v2).
//!
//! Every result is checked: each run's exit status, the fleet's JSON summary
//! (`up_to_date` or `migrated` equal to the number of databases) and its
//! per-database lines, and after the v2 passes that every database has the
//! new column. Prints the table and writes every figure as JSON (default
//! `target/fleet_bench.json`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use doctype_migrate::{DbStatus, Fleet, MigrationApplier};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

#[path = "support/fmt.rs"]
mod fmt;
use fmt::thousands;

/// The column v2 adds, to the first DocType.
const NEW_COLUMN: &str = "tenant_note";

/// Base names of the synthetic DocTypes (a number is appended past the
/// first round).
const NAMES: [&str; 10] = [
    "Customer",
    "Sales Invoice",
    "Item",
    "Project",
    "Timesheet",
    "Supplier",
    "Purchase Order",
    "Employee",
    "Asset",
    "Expense Claim",
];

struct Args {
    dbs: usize,
    doctypes: usize,
    /// 0: the loops run over every database.
    loop_sample: usize,
    rounds: usize,
    profile_dbs: usize,
    bin: PathBuf,
    dir: Option<PathBuf>,
    json: PathBuf,
    keep: bool,
}

fn args() -> Args {
    let here = std::env::current_dir().expect("current directory");
    let mut a = Args {
        dbs: 10_000,
        doctypes: 50,
        loop_sample: 1_000,
        rounds: 3,
        profile_dbs: 2_000,
        bin: default_bin(),
        dir: None,
        json: PathBuf::from("target/fleet_bench.json"),
        keep: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        if v[i] == "--keep" {
            a.keep = true;
            i += 1;
            continue;
        }
        let value = v.get(i + 1).cloned().unwrap_or_default();
        let number = |what: &str| -> usize {
            value
                .replace(['_', ','], "")
                .parse()
                .unwrap_or_else(|_| panic!("{what} takes a number"))
        };
        match v[i].as_str() {
            "--dbs" => a.dbs = number("--dbs").max(1),
            "--doctypes" => a.doctypes = number("--doctypes").max(2),
            "--loop-sample" => a.loop_sample = number("--loop-sample"),
            "--rounds" => a.rounds = number("--rounds").max(1),
            "--profile-dbs" => a.profile_dbs = number("--profile-dbs"),
            "--bin" => a.bin = PathBuf::from(value),
            "--dir" => a.dir = Some(PathBuf::from(value)),
            "--json" => a.json = PathBuf::from(value),
            other => {
                panic!("unknown argument {other}; see the doc comment of examples/fleet_bench.rs")
            }
        }
        i += 2;
    }
    // Every command runs in the temporary directory: make the paths given
    // relative to where the bench was started absolute.
    a.bin = here.join(&a.bin);
    a.json = here.join(&a.json);
    a.dir = a.dir.map(|d| here.join(d));
    if a.loop_sample >= a.dbs {
        a.loop_sample = 0;
    }
    a.profile_dbs = a.profile_dbs.clamp(1, a.dbs);
    a
}

/// `target/release/doctype-migrate` when this example runs as
/// `target/release/examples/fleet_bench`.
fn default_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the example's own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|release| release.join("doctype-migrate"))
        .unwrap_or_else(|| PathBuf::from("target/release/doctype-migrate"))
}

/// One measured pass: how many databases it went over and how long it took.
#[derive(Clone, Copy, Debug)]
struct Pass {
    dbs: usize,
    secs: f64,
}

impl Pass {
    fn ms_per_db(self) -> f64 {
        self.secs * 1000.0 / self.dbs as f64
    }
    fn per_sec(self) -> f64 {
        self.dbs as f64 / self.secs
    }
    /// The time over `n` databases at this pace.
    fn at(self, n: usize) -> f64 {
        self.secs / self.dbs as f64 * n as f64
    }
    fn json(self, fleet: usize) -> Value {
        json!({
            "databases": self.dbs,
            "seconds": self.secs,
            "ms_per_db": self.ms_per_db(),
            "dbs_per_sec": self.per_sec(),
            "seconds_for_fleet": self.at(fleet),
        })
    }
}

fn main() {
    let args = args();
    assert!(
        args.bin.is_file(),
        "{} not found: build it first (cargo build --release --bin doctype-migrate), or pass --bin",
        args.bin.display()
    );
    let tmp = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).expect("create --dir");
            tempfile::tempdir_in(d)
        }
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    std::env::set_current_dir(tmp.path()).expect("enter the temp dir");
    println!(
        "fleet bench in {} with {}",
        tmp.path().display(),
        args.bin.display()
    );

    write_doctypes(Path::new("v1"), args.doctypes, false);
    write_doctypes(Path::new("v2"), args.doctypes, true);
    let template = build_template(&args);
    let template_bytes = std::fs::metadata(&template).map(|m| m.len()).unwrap_or(0);
    let (need_mb, free_mb) = disk_check(&args, template_bytes);
    println!(
        "template: {} DocTypes, {:.0} KB; the fleet needs about {need_mb:.0} MB at a time, \
         {free_mb:.0} MB free",
        args.doctypes,
        template_bytes as f64 / 1e3
    );

    let n = args.dbs;
    let m = if args.loop_sample == 0 {
        n
    } else {
        args.loop_sample
    };
    let copy_secs = build_fleet(&template, n);
    println!(
        "fleet: {} databases copied in {copy_secs:.1} s",
        thousands(n)
    );

    // 1. The no-op pass, rounds rotated.
    let mut noop_p2 = Vec::new();
    let mut noop_p1 = Vec::new();
    let mut noop_loop = Vec::new();
    for round in 0..args.rounds {
        for k in 0..3 {
            match (round + k) % 3 {
                0 => noop_p2.push(fleet_pass(&args, "v1", 2, n, DbStatus::UpToDate)),
                1 => noop_p1.push(fleet_pass(&args, "v1", 1, n, DbStatus::UpToDate)),
                _ => noop_loop.push(loop_pass(&args, "v1", m, n)),
            }
        }
        println!(
            "no-op round {}: fleet --parallel 2 {:.2} s, --parallel 1 {:.2} s, loop {:.2} s ({} dbs)",
            round + 1,
            noop_p2[round].secs,
            noop_p1[round].secs,
            noop_loop[round].secs,
            thousands(m)
        );
    }
    let noop_p2 = median_pass(&noop_p2);
    let noop_p1 = median_pass(&noop_p1);
    let noop_loop = median_pass(&noop_loop);
    let flat = flat_pass(&args, n);
    println!(
        "no-op, fleet --parallel 2, the databases in one directory: {:.2} s",
        flat.secs
    );

    // 2. Where the fleet's no-op time goes, per database (this process).
    let profile = profile(&args, m);

    // 3. The pass adding one column: fresh copies for each.
    remove_fleet();
    build_fleet(&template, n);
    let add_fleet = fleet_pass(&args, "v2", 2, n, DbStatus::Migrated);
    println!("v2 fleet --parallel 2: {:.2} s", add_fleet.secs);
    let again_fleet = fleet_pass(&args, "v2", 2, n, DbStatus::UpToDate);
    println!("v2 fleet second pass: {:.2} s", again_fleet.secs);
    check_new_column(n);
    remove_fleet();
    build_fleet(&template, m);
    let add_loop = loop_pass(&args, "v2", m, m);
    println!("v2 loop: {:.2} s ({} dbs)", add_loop.secs, thousands(m));
    let again_loop = loop_pass(&args, "v2", m, m);
    println!("v2 loop second pass: {:.2} s", again_loop.secs);
    check_new_column(m);
    remove_fleet();

    let figures = Figures {
        noop_p2,
        noop_p1,
        noop_loop,
        flat,
        add_fleet,
        again_fleet,
        add_loop,
        again_loop,
        profile,
        template_bytes,
        copy_secs,
    };
    report(&args, &figures);
    if args.keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
}

/// Writes `k` DocTypes into `dir` (one file each); with `v2`, the first
/// one has [`NEW_COLUMN`] too.
fn write_doctypes(dir: &Path, k: usize, v2: bool) {
    std::fs::create_dir_all(dir).expect("create DocType dir");
    let names: Vec<String> = (0..k)
        .map(|i| {
            let base = NAMES[i % NAMES.len()];
            match i / NAMES.len() {
                0 => base.to_string(),
                round => format!("{base} {}", round + 1),
            }
        })
        .collect();
    let is_child = |i: usize| i % 5 == 4;
    for (i, name) in names.iter().enumerate() {
        let field = |fieldname: &str, fieldtype: &str, extra: Value| {
            let mut f = json!({ "fieldname": fieldname, "fieldtype": fieldtype, "label": label(fieldname) });
            if let (Some(f), Value::Object(extra)) = (f.as_object_mut(), extra) {
                f.extend(extra);
            }
            f
        };
        let mut fields = if is_child(i) {
            vec![
                field("item_code", "Data", json!({ "in_list_view": 1, "reqd": 1 })),
                field("description", "Small Text", json!({})),
                field("qty", "Float", json!({ "in_list_view": 1 })),
                field("rate", "Currency", json!({})),
                field("amount", "Currency", json!({ "read_only": 1 })),
            ]
        } else {
            let mut f = vec![
                field("title", "Data", json!({ "in_list_view": 1, "reqd": 1 })),
                field(
                    "status",
                    "Select",
                    json!({ "options": "Draft\nOpen\nClosed", "default": "Draft" }),
                ),
                field("posting_date", "Date", json!({ "default": "Today" })),
                field("column_break_4", "Column Break", json!({})),
                field("quantity", "Int", json!({})),
                field("grand_total", "Currency", json!({})),
                field("is_active", "Check", json!({ "default": "1" })),
            ];
            if i > 0 && !is_child(i - 1) {
                let target = &names[i - 1];
                f.push(field(
                    &snake(target),
                    "Link",
                    json!({ "options": target, "search_index": 1 }),
                ));
            }
            if i + 1 < k && is_child(i + 1) {
                f.push(field("items_section", "Section Break", json!({})));
                f.push(field(
                    "items",
                    "Table",
                    json!({ "options": names[i + 1], "reqd": 1 }),
                ));
            }
            f.push(field("remarks", "Small Text", json!({})));
            f
        };
        if v2 && i == 0 {
            fields.push(field(NEW_COLUMN, "Data", json!({})));
        }
        let order: Vec<Value> = fields.iter().map(|f| f["fieldname"].clone()).collect();
        let doc = json!({
            "doctype": "DocType",
            "name": name,
            "module": "Tenant",
            "autoname": if is_child(i) { "hash" } else { "naming_series:" },
            "istable": if is_child(i) { 1 } else { 0 },
            "is_submittable": if i % 3 == 1 { 1 } else { 0 },
            "engine": "InnoDB",
            "creation": "2026-01-15 10:00:00.000000",
            "modified": "2026-01-15 10:00:00.000000",
            "modified_by": "Administrator",
            "owner": "Administrator",
            "field_order": order,
            "fields": fields,
            "permissions": if is_child(i) { json!([]) } else {
                json!([{ "role": "System Manager", "read": 1, "write": 1, "create": 1 }])
            },
            "sort_field": "modified",
            "sort_order": "DESC",
        });
        let file = dir.join(format!("{}.json", snake(name)));
        std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).expect("write DocType");
    }
}

fn snake(name: &str) -> String {
    name.to_lowercase().replace(' ', "_")
}

fn label(fieldname: &str) -> String {
    fieldname
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `template/site.db`: v1 applied by the binary (which leaves the start-up
/// record), then a few rows in the first tables. Checks that the library
/// confirms it up to date by the fast path.
fn build_template(args: &Args) -> PathBuf {
    let db = PathBuf::from("template/site.db");
    std::fs::create_dir_all("template").unwrap();
    let out = run(Command::new(&args.bin)
        .args([
            "apply",
            "--db",
            "template/site.db",
            "--doctypes",
            "v1",
            "--quiet",
        ])
        .stdout(Stdio::null()));
    assert!(out.0, "template apply failed: {}", out.1);
    let conn = Connection::open(&db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'tab%' AND name NOT LIKE 'tabMigration%' ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = 0;
    for table in tables.iter().take(10) {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let text = if columns.iter().any(|c| c == "title") {
            "title"
        } else {
            "item_code"
        };
        for r in 0..3 {
            conn.execute(
                &format!(
                    "INSERT INTO \"{table}\" (name, creation, modified, modified_by, owner, {text}) \
                     VALUES (?1, '2026-02-01 09:00:00', '2026-02-01 09:00:00', 'admin@example.com', \
                     'admin@example.com', ?2)"
                ),
                rusqlite::params![format!("{table}-{r:04}"), format!("row {r} of {table}")],
            )
            .unwrap();
            rows += 1;
        }
    }
    drop(conn);
    // The record is keyed on the input files' paths as given ("v1/...")
    // and the schema, not on rows: the copies take the fast path.
    let report = MigrationApplier::builder(&db)
        .no_audit_log()
        .build()
        .unwrap()
        .sync_paths(&[PathBuf::from("v1")])
        .unwrap();
    assert!(
        report.fast_path && report.migrations.is_empty(),
        "the template is not confirmed up to date by the start-up record"
    );
    println!(
        "template: {} tables, {rows} rows, start-up record of v1 confirmed",
        tables.len()
    );
    db
}

/// How much the fleet needs at a time (MB) and how much is free in the
/// current directory's file system (MB, `df`). Panics when it cannot fit.
fn disk_check(args: &Args, template_bytes: u64) -> (f64, f64) {
    // A database, its audit log, its directory; one fleet at a time.
    let need = (template_bytes + 16 * 1024) as f64 * args.dbs as f64 / 1e6;
    let free = Command::new("df")
        .args(["-Pk", "."])
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let line = text.lines().nth(1)?.to_string();
            line.split_whitespace().nth(3)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb * 1024.0 / 1e6);
    // Unknown (df failed: NaN) passes.
    assert!(
        free.is_nan() || free >= need * 1.2,
        "not enough disk: the fleet needs about {need:.0} MB, {free:.0} MB free (use --dir)"
    );
    (need, free)
}

/// Copies the template to `sites/NNNNN/site.db`, `n` times, then syncs
/// the file system. Returns the seconds it took.
fn build_fleet(template: &Path, n: usize) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        let dir = PathBuf::from(format!("sites/{i:05}"));
        std::fs::create_dir_all(&dir).expect("create site dir");
        std::fs::copy(template, dir.join("site.db")).expect("copy template");
    }
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    assert!(synced, "sync failed");
    t.elapsed().as_secs_f64()
}

fn remove_fleet() {
    std::fs::remove_dir_all("sites").expect("remove the fleet");
}

/// Runs a command; returns whether it succeeded and its stderr.
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .expect("run the command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `fleet apply --dbs 'sites/*/site.db' --doctypes DIR --parallel P
/// --json`; checks its summary (every one of the `n` databases ended
/// `want`) and its lines.
fn fleet_pass(args: &Args, doctypes: &str, parallel: usize, n: usize, want: DbStatus) -> Pass {
    let t = Instant::now();
    let out = Command::new(&args.bin)
        .args(["fleet", "apply", "--dbs", "sites/*/site.db", "--doctypes"])
        .arg(doctypes)
        .args(["--parallel", &parallel.to_string(), "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run fleet apply");
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fleet apply failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stdout.lines().last().unwrap_or_default()
    );
    let mut lines = 0;
    let mut summary = Value::Null;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        if let Some(s) = v.get("summary") {
            summary = s.clone();
        } else {
            assert_eq!(v["status"], want.as_str(), "{line}");
            lines += 1;
        }
    }
    assert_eq!(lines, n, "one line per database");
    for status in DbStatus::ALL {
        let expected = if status == want { n } else { 0 };
        assert_eq!(
            summary[status.as_str()].as_u64(),
            Some(expected as u64),
            "summary {summary}"
        );
    }
    Pass { dbs: n, secs }
}

/// The shell loop over `sites/*/site.db` (stopping after `m` of the `n`
/// databases when `m < n`), run by `sh -c` with `set -e`.
fn loop_pass(args: &Args, doctypes: &str, m: usize, n: usize) -> Pass {
    let apply = format!("doctype-migrate apply --db \"$f\" --doctypes {doctypes} --quiet");
    let script = if m < n {
        format!(
            "set -e; n=0; for f in sites/*/site.db; do [ \"$n\" -lt {m} ] || break; n=$((n+1)); {apply}; done"
        )
    } else {
        format!("set -e; for f in sites/*/site.db; do {apply}; done")
    };
    Pass {
        dbs: m,
        secs: shell(args, &script),
    }
}

/// Runs `script` with `sh -c`, the binary's directory first in `PATH`;
/// returns its seconds. Panics when it fails.
fn shell(args: &Args, script: &str) -> f64 {
    let bin_dir = args.bin.parent().expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t = Instant::now();
    let (ok, stderr) = run(Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::null()));
    let secs = t.elapsed().as_secs_f64();
    assert!(ok, "the shell loop failed: {stderr}");
    secs
}

/// Every one of the first `n` databases has the new column.
fn check_new_column(n: usize) {
    let table = format!("tab{}", NAMES[0]);
    for i in 0..n {
        let db = format!("sites/{i:05}/site.db");
        let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [&table, NEW_COLUMN],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "{db} lacks {table}.{NEW_COLUMN}");
    }
    println!(
        "checked: all {} databases have {table}.{NEW_COLUMN}",
        thousands(n)
    );
}

/// Per-database costs of the fleet's no-op pass, in milliseconds, over the
/// first `--profile-dbs` databases: one warm-up round, then `--rounds`
/// rounds (at least 3) of every measure in turn; medians.
struct Profile {
    dbs: usize,
    /// `Connection::open`, one read of `sqlite_schema` (which makes SQLite
    /// parse the whole schema) and close, on a database of one small table.
    floor_tiny: f64,
    /// The same on the fleet's databases.
    floor: f64,
    /// `Connection::open`, `PRAGMA schema_version` and close on the
    /// fleet's databases: the schema cookie is read from the file header,
    /// without parsing the schema.
    open_cookie: f64,
    /// `MigrationApplier::builder(db).build()` (and drop).
    open_applier: f64,
    /// `Fleet::apply`, one worker, no audit log.
    fleet_no_audit: f64,
    /// `Fleet::apply`, one worker, the audit log as the CLI writes it.
    fleet: f64,
    /// `Fleet::apply`, two workers, no audit log.
    fleet_p2_no_audit: f64,
    /// With SQLite's memory statistics off
    /// (`sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0)`): the floor, and
    /// `Fleet::apply` without audit log with one and two workers.
    nomem_floor: f64,
    nomem_fleet_no_audit: f64,
    nomem_fleet_p2_no_audit: f64,
    /// `doctype-migrate --version` in the shell loop (over the loop's
    /// databases): the process start the loop pays per database.
    process: f64,
}

/// Medians, in milliseconds per database, of `measures` run in turn for a
/// warm-up round and then `rounds` rounds.
fn per_db(measures: &[&dyn Fn()], rounds: usize, dbs: usize) -> Vec<f64> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); measures.len()];
    for round in 0..=rounds {
        for (k, measure) in measures.iter().enumerate() {
            let t = Instant::now();
            measure();
            if round > 0 {
                samples[k].push(t.elapsed().as_secs_f64() * 1000.0 / dbs as f64);
            }
        }
    }
    samples.iter().map(|v| median(v)).collect()
}

fn profile(args: &Args, m: usize) -> Profile {
    let list: Vec<PathBuf> = (0..args.profile_dbs)
        .map(|i| PathBuf::from(format!("sites/{i:05}/site.db")))
        .collect();
    let dbs = list.len();
    let rounds = args.rounds.max(3);
    let tiny = PathBuf::from("tiny.db");
    Connection::open(&tiny)
        .unwrap()
        .execute_batch("CREATE TABLE IF NOT EXISTS t (name TEXT PRIMARY KEY, v INTEGER)")
        .unwrap();
    let open_query = |db: &Path, sql: &str| {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        let _: i64 = conn.query_row(sql, [], |r| r.get(0)).unwrap();
    };
    let open_read = |db: &Path| open_query(db, "SELECT count(*) FROM sqlite_schema");
    let fleet_over = |workers: usize, audit: bool| {
        let mut b = Fleet::builder().parallel(workers);
        for db in &list {
            b = b.database(db);
        }
        if !audit {
            b = b.applier(|a| a.no_audit_log());
        }
        b.build().unwrap()
    };
    let (p1, p1_audit, p2) = (
        fleet_over(1, false),
        fleet_over(1, true),
        fleet_over(2, false),
    );
    let apply = |fleet: &Fleet| {
        let report = fleet.apply(&[PathBuf::from("v1")], &|_| {}).unwrap();
        assert_eq!(report.counts()[&DbStatus::UpToDate], dbs);
    };
    let floor_tiny = || list.iter().for_each(|_| open_read(&tiny));
    let floor = || list.iter().for_each(|db| open_read(db));
    let open_cookie = || {
        list.iter()
            .for_each(|db| open_query(db, "PRAGMA schema_version"));
    };
    let open_applier = || {
        for db in &list {
            drop(MigrationApplier::builder(db).build().unwrap());
        }
    };
    let med = per_db(
        &[
            &floor_tiny,
            &floor,
            &open_cookie,
            &open_applier,
            &|| apply(&p1),
            &|| apply(&p1_audit),
            &|| apply(&p2),
        ],
        rounds,
        dbs,
    );
    // SQLite's memory statistics (on in the bundled build) take one global
    // mutex on every allocation; parsing a schema allocates a lot. Turned
    // off here, in this process only, to show what two workers gain then.
    // SAFETY: no SQLite object exists at this point in this process (every
    // connection above was closed), which is what sqlite3_shutdown and
    // sqlite3_config require; the next open initializes SQLite again.
    let rc = unsafe {
        let rc = rusqlite::ffi::sqlite3_shutdown();
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK, "sqlite3_shutdown");
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int)
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK, "sqlite3_config(MEMSTATUS)");
    let nomem = per_db(&[&floor, &|| apply(&p1), &|| apply(&p2)], rounds, dbs);
    let script = if m < args.dbs {
        format!(
            "set -e; n=0; for f in sites/*/site.db; do [ \"$n\" -lt {m} ] || break; n=$((n+1)); doctype-migrate --version >/dev/null; done"
        )
    } else {
        "set -e; for f in sites/*/site.db; do doctype-migrate --version >/dev/null; done".into()
    };
    let v: Vec<f64> = (0..args.rounds)
        .map(|_| shell(args, &script) * 1000.0 / m as f64)
        .collect();
    let p = Profile {
        dbs,
        floor_tiny: med[0],
        floor: med[1],
        open_cookie: med[2],
        open_applier: med[3],
        fleet_no_audit: med[4],
        fleet: med[5],
        fleet_p2_no_audit: med[6],
        nomem_floor: nomem[0],
        nomem_fleet_no_audit: nomem[1],
        nomem_fleet_p2_no_audit: nomem[2],
        process: median(&v),
    };
    println!(
        "profile over {} dbs (ms/db): open+parse a one-table db {:.3}, the fleet's db {:.3}, \
         open+PRAGMA schema_version {:.3}, applier open {:.3}, fleet without audit {:.3} (2 workers {:.3}), fleet {:.3}; \
         memstatus off: floor {:.3}, fleet without audit {:.3} (2 workers {:.3}); \
         process start {:.3}",
        thousands(p.dbs),
        p.floor_tiny,
        p.floor,
        p.open_cookie,
        p.open_applier,
        p.fleet_no_audit,
        p.fleet_p2_no_audit,
        p.fleet,
        p.nomem_floor,
        p.nomem_fleet_no_audit,
        p.nomem_fleet_p2_no_audit,
        p.process
    );
    p
}

/// The no-op pass with every database (and its audit log) moved into one
/// directory, `flat/NNNNN.db`, then moved back: the same files, another
/// layout.
fn flat_pass(args: &Args, n: usize) -> Pass {
    let moves: Vec<(PathBuf, PathBuf)> = (0..n)
        .flat_map(|i| {
            let site = PathBuf::from(format!("sites/{i:05}"));
            [
                (
                    site.join("site.db"),
                    PathBuf::from(format!("flat/{i:05}.db")),
                ),
                (
                    site.join("site.db.audit.jsonl"),
                    PathBuf::from(format!("flat/{i:05}.db.audit.jsonl")),
                ),
            ]
        })
        .collect();
    std::fs::create_dir_all("flat").unwrap();
    for (from, to) in &moves {
        std::fs::rename(from, to).expect("move into flat/");
    }
    let t = Instant::now();
    let out = Command::new(&args.bin)
        .args(["fleet", "apply", "--dbs", "flat/*.db", "--doctypes", "v1"])
        .args(["--parallel", "2", "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run fleet apply");
    let secs = t.elapsed().as_secs_f64();
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(out.status.success(), "flat fleet apply failed: {last}");
    let summary: Value = serde_json::from_str(&last).expect("summary line");
    assert_eq!(summary["summary"]["up_to_date"].as_u64(), Some(n as u64));
    for (from, to) in &moves {
        std::fs::rename(to, from).expect("move back");
    }
    std::fs::remove_dir("flat").unwrap();
    Pass { dbs: n, secs }
}

struct Figures {
    noop_p2: Pass,
    noop_p1: Pass,
    noop_loop: Pass,
    flat: Pass,
    add_fleet: Pass,
    again_fleet: Pass,
    add_loop: Pass,
    again_loop: Pass,
    profile: Profile,
    template_bytes: u64,
    copy_secs: f64,
}

/// Prints the tables and writes the JSON.
fn report(args: &Args, f: &Figures) {
    let n = args.dbs;
    let sampled = f.noop_loop.dbs < n;
    println!();
    println!(
        "{} databases x {} DocTypes ({:.0} KB each), {} core(s); no-op passes: median of {} round(s)",
        thousands(n),
        args.doctypes,
        f.template_bytes as f64 / 1e3,
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        args.rounds
    );
    if sampled {
        println!(
            "the shell loops ran over the first {} databases; their time for {} is extrapolated \
             per database (marked *)",
            thousands(f.noop_loop.dbs),
            thousands(n)
        );
    }
    println!();
    println!(
        "| pass | databases run | seconds | dbs/s | ms/db | seconds for the fleet | vs loop |"
    );
    println!("|---|---|---|---|---|---|---|");
    let star = if sampled { "*" } else { "" };
    let line = |what: &str, p: Pass, vs: Option<Pass>| {
        let ratio = vs.map_or(String::new(), |l| {
            format!("{:.1}x", l.ms_per_db() / p.ms_per_db())
        });
        let mark = if p.dbs < n { star } else { "" };
        println!(
            "| {what} | {} | {:.2} | {:.0} | {:.3} | {:.1}{mark} | {ratio} |",
            thousands(p.dbs),
            p.secs,
            p.per_sec(),
            p.ms_per_db(),
            p.at(n)
        );
    };
    line(
        "no-op: fleet apply --parallel 2",
        f.noop_p2,
        Some(f.noop_loop),
    );
    line(
        "no-op: fleet apply --parallel 1",
        f.noop_p1,
        Some(f.noop_loop),
    );
    line("no-op: shell loop of apply", f.noop_loop, None);
    line(
        "no-op: fleet apply --parallel 2, all in one directory (flat/NNNNN.db)",
        f.flat,
        Some(f.noop_loop),
    );
    line(
        "add a column: fleet apply --parallel 2",
        f.add_fleet,
        Some(f.add_loop),
    );
    line("add a column: shell loop of apply", f.add_loop, None);
    line(
        "second pass (no-op on v2): fleet --parallel 2",
        f.again_fleet,
        Some(f.again_loop),
    );
    line("second pass (no-op on v2): shell loop", f.again_loop, None);
    let goal = f.noop_loop.ms_per_db() / f.noop_p2.ms_per_db();
    println!();
    println!(
        "goal: the no-op pass at least 20x faster than the loop: {goal:.1}x with --parallel 2 ({})",
        if goal >= 20.0 { "met" } else { "NOT met" }
    );

    let p = &f.profile;
    // The CLI's own cost per database beyond the library's (process start,
    // glob, reading the DocTypes, one JSON line per database), one worker.
    let cli = f.noop_p1.ms_per_db() - p.fleet;
    println!();
    println!(
        "where the fleet's no-op pass goes per database (one worker, in-process over {} dbs):",
        thousands(p.dbs)
    );
    println!();
    println!("| part | ms/db | share of --parallel 1 |");
    println!("|---|---|---|");
    let share = |ms: f64| format!("{:.0}%", ms / f.noop_p1.ms_per_db() * 100.0);
    let parts = [
        (
            "SQLite: open, first statement, close (a one-table database)",
            p.floor_tiny,
        ),
        (
            "SQLite: parsing this schema at the first statement (and freeing it)",
            p.floor - p.floor_tiny,
        ),
        (
            "applier open beyond the floor (builder, SQL guard)",
            p.open_applier - p.floor,
        ),
        (
            "fast-path check (start-up record, schema fingerprint, run markers, events)",
            p.fleet_no_audit - p.open_applier,
        ),
        ("audit log (two appended lines)", p.fleet - p.fleet_no_audit),
        (
            "the command line beyond the library (start, glob, JSON lines)",
            cli,
        ),
    ];
    for (what, ms) in parts {
        println!("| {what} | {ms:.3} | {} |", share(ms));
    }
    println!(
        "| total: fleet apply --parallel 1 | {:.3} | 100% |",
        f.noop_p1.ms_per_db()
    );
    println!(
        "\nfor comparison: open + PRAGMA schema_version + close (the schema not parsed): {:.3} ms",
        p.open_cookie
    );
    println!(
        "the loop per database: {:.3} ms, of which process start (doctype-migrate --version) \
         {:.3} ms",
        f.noop_loop.ms_per_db(),
        p.process
    );
    println!();
    println!(
        "two workers, in-process (Fleet::apply without audit log, {} dbs), ms/db:",
        thousands(p.dbs)
    );
    println!();
    println!(
        "| SQLite memory statistics | open + parse (floor) | 1 worker | 2 workers | speed-up |"
    );
    println!("|---|---|---|---|---|");
    for (what, floor, one, two) in [
        (
            "on (the bundled build's default)",
            p.floor,
            p.fleet_no_audit,
            p.fleet_p2_no_audit,
        ),
        (
            "off (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0))",
            p.nomem_floor,
            p.nomem_fleet_no_audit,
            p.nomem_fleet_p2_no_audit,
        ),
    ] {
        println!(
            "| {what} | {floor:.3} | {one:.3} | {two:.3} | {:.2}x |",
            one / two
        );
    }

    let json = json!({
        "databases": n,
        "doctypes": args.doctypes,
        "cores": std::thread::available_parallelism().map_or(1, |p| p.get()),
        "template_kb": f.template_bytes as f64 / 1e3,
        "fleet_copy_seconds": f.copy_secs,
        "rounds": args.rounds,
        "loop_databases": f.noop_loop.dbs,
        "loop_extrapolated": sampled,
        "noop": {
            "fleet_parallel_2": f.noop_p2.json(n),
            "fleet_parallel_1": f.noop_p1.json(n),
            "shell_loop": f.noop_loop.json(n),
            "ratio_parallel_2": f.noop_loop.ms_per_db() / f.noop_p2.ms_per_db(),
            "ratio_parallel_1": f.noop_loop.ms_per_db() / f.noop_p1.ms_per_db(),
            "fleet_parallel_2_flat_layout": f.flat.json(n),
            "goal_ratio": 20.0,
            "goal_met": goal >= 20.0,
        },
        "add_column": {
            "fleet_parallel_2": f.add_fleet.json(n),
            "shell_loop": f.add_loop.json(n),
            "ratio": f.add_loop.ms_per_db() / f.add_fleet.ms_per_db(),
        },
        "second_pass": {
            "fleet_parallel_2": f.again_fleet.json(n),
            "shell_loop": f.again_loop.json(n),
            "ratio": f.again_loop.ms_per_db() / f.again_fleet.ms_per_db(),
        },
        "noop_per_db_ms": {
            "profiled_databases": p.dbs,
            "sqlite_floor": p.floor,
            "applier_open": p.open_applier,
            "fleet_library_no_audit": p.fleet_no_audit,
            "fleet_library": p.fleet,
            "fleet_cli_parallel_1": f.noop_p1.ms_per_db(),
            "cli_beyond_library": cli,
            "loop": f.noop_loop.ms_per_db(),
            "loop_process_start": p.process,
            "sqlite_floor_one_table": p.floor_tiny,
            "open_and_schema_version_pragma": p.open_cookie,
            "fleet_library_no_audit_2_workers": p.fleet_p2_no_audit,
            "memstatus_off": {
                "sqlite_floor": p.nomem_floor,
                "fleet_library_no_audit": p.nomem_fleet_no_audit,
                "fleet_library_no_audit_2_workers": p.nomem_fleet_p2_no_audit,
            },
        },
    });
    if let Some(parent) = args.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&json).unwrap()).expect("write JSON");
    println!("\nfigures written to {}", args.json.display());
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The pass with the median time.
fn median_pass(v: &[Pass]) -> Pass {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.ms_per_db().total_cmp(&b.ms_per_db()));
    v[v.len() / 2]
}
