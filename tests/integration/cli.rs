//! The `doctype-migrate` binary end to end, on real database files: JSON
//! shapes of `plan`, `apply` and `history`, exit codes, bad input (exit 1,
//! database untouched, no file created), continue-on-error reporting.
//!
//! Exit code 2 (refused by validation) is covered by the unit tests in
//! `src/cli/output.rs`: the validator does not report blocking findings yet,
//! so no input here can produce it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{GAUGE_TRAP, HISTORY_COLUMNS, TestDb, fixture};
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
}

fn example(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/doctypes")
        .join(version)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run doctype-migrate")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn apply(db: &Path, doctypes: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "--db", s(db), "--doctypes", s(doctypes), "--json"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn plan_json_on_a_missing_database_is_deterministic_and_creates_nothing() {
    let db = TestDb::new();
    let v1 = example("v1");
    let args = ["plan", "--db", s(&db.path), "--doctypes", s(&v1), "--json"];
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!db.path.exists(), "plan must not create the database");
    let json = stdout_json(&out);
    assert_eq!(keys(&json), ["blocked", "doctypes", "warnings"]);
    assert_eq!(
        json["warnings"],
        serde_json::json!([]),
        "clean input warns of nothing"
    );
    assert_eq!(json["blocked"], false);
    let doctypes = json["doctypes"].as_array().unwrap();
    let names: Vec<&str> = doctypes
        .iter()
        .map(|d| d["doctype"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Customer", "Item", "Sales Order", "Sales Order Item"]
    );
    let item = &doctypes[1];
    assert_eq!(
        keys(item),
        [
            "doctype",
            "table",
            "changes",
            "forward_sql",
            "rollback_sql",
            "findings",
            "orphans",
            "approach",
            "why"
        ]
    );
    assert_eq!(item["table"], "tabItem");
    assert_eq!(item["approach"], "create");
    assert_eq!(item["changes"][0]["kind"], "create_table");
    assert!(
        item["forward_sql"][0]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE \"tabItem\"")
    );
    assert_eq!(item["rollback_sql"][0], "DROP TABLE \"tabItem\"");

    let again = run(&args);
    assert_eq!(again.stdout, out.stdout, "same inputs, byte-identical plan");
    let text = run(&args[..5]);
    assert_eq!(code(&text), 0);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Sales Order Item (tabSales Order Item)"),
        "{text}"
    );
    assert!(text.contains("Plan: 4 DocType(s) to migrate"), "{text}");
}

#[test]
fn apply_then_plan_and_apply_again_find_nothing_to_do() {
    let db = TestDb::new();
    let out = apply(&db.path, &example("v1"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(
        keys(&json),
        ["blocked", "batch_id", "migrations", "findings", "warnings"]
    );
    assert_eq!(json["blocked"], false);
    let migrations = json["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 4);
    let m = &migrations[0];
    assert_eq!(
        keys(m),
        [
            "id",
            "doctype",
            "table",
            "status",
            "changes",
            "affected_rows",
            "execution_time_ms",
            "metrics"
        ]
    );
    assert_eq!(m["id"], 1);
    assert_eq!(m["doctype"], "Customer");
    assert_eq!(m["status"], "completed");

    let before = db.bytes();
    let again = apply(&db.path, &example("v1"), &[]);
    assert_eq!(code(&again), 0);
    assert_eq!(stdout_json(&again)["migrations"], serde_json::json!([]));
    let plan = run(&[
        "plan",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&example("v1")),
        "--json",
    ]);
    assert_eq!(stdout_json(&plan)["doctypes"], serde_json::json!([]));
    assert_eq!(db.bytes(), before, "no-op apply and plan must not write");
}

#[test]
fn v2_plan_shows_each_change_kind_and_apply_keeps_the_data() {
    let db = TestDb::new();
    assert_eq!(code(&apply(&db.path, &example("v1"), &[])), 0);
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabItem\" (name, item_code, shelf_life_in_days) VALUES ('A', 'A', '365');
             INSERT INTO \"tabCustomer\" (name, customer_name, mobile_no) VALUES ('C', 'C', '555');",
        )
        .unwrap();
    let before = db.bytes();
    let plan = run(&[
        "plan",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&example("v2")),
        "--json",
    ]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert_eq!(db.bytes(), before, "plan must not write");
    let plan = stdout_json(&plan);
    let kinds: Vec<&str> = plan["doctypes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["changes"].as_array().unwrap())
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "rename_column",
        "add_column",
        "change_type",
        "change_default",
        "add_index",
        "add_unique",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    let out = apply(&db.path, &example("v2"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let conn = db.conn();
    let (days, kind): (i64, String) = conn
        .query_row(
            "SELECT shelf_life_in_days, typeof(shelf_life_in_days) FROM \"tabItem\"",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((days, kind.as_str()), (365, "integer"));
    let mobile: String = conn
        .query_row("SELECT mobile_number FROM \"tabCustomer\"", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(mobile, "555");
}

#[test]
fn history_json_rows_are_keyed_by_column_names_and_filter_by_doctype() {
    let db = TestDb::new();
    assert_eq!(code(&apply(&db.path, &example("v1"), &[])), 0);
    assert_eq!(code(&apply(&db.path, &example("v2"), &[])), 0);

    let out = run(&["history", "--db", s(&db.path), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = stdout_json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let columns: Vec<String> = {
        let conn = db.conn();
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info('tabMigrationHistory') ORDER BY cid")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(keys(&rows[0]), columns);
    assert_eq!(rows[0]["status"], "completed");
    assert!(rows[0]["sql"].is_array(), "sql is given back parsed");

    let out = run(&[
        "history",
        "--db",
        s(&db.path),
        "--doctype",
        "Item",
        "--json",
    ]);
    let rows = stdout_json(&out);
    let versions: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["doctype"], "Item");
            r["version"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(versions, [1, 2]);

    let text = run(&["history", "--db", s(&db.path)]);
    let text = String::from_utf8_lossy(&text.stdout);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, HISTORY_COLUMNS);
    assert_eq!(text.lines().count(), 9);
}

#[test]
fn history_of_a_missing_database_is_an_error_and_creates_nothing() {
    let db = TestDb::new();
    let out = run(&["history", "--db", s(&db.path)]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with("error: database "),
        "{}",
        stderr(&out)
    );
    assert!(!db.path.exists());
}

/// Each bad-input fixture: (file, text the error must contain).
const BAD_INPUTS: [(&str, &[&str]); 4] = [
    (
        "malformed.json",
        &[
            "malformed.json",
            "malformed DocType JSON",
            "caused by: trailing comma at line 6",
        ],
    ),
    (
        "unknown_fieldtype.json",
        &[
            "unknown_fieldtype.json",
            "field \"weight\"",
            "unknown fieldtype \"Varchar\"",
        ],
    ),
    (
        "injected_identifier.json",
        &[
            "injected_identifier.json",
            "DROP TABLE y",
            "only letters, digits and underscores",
        ],
    ),
    (
        // The same name twice is accepted as Frappe accepts it (QK001);
        // names that differ only in case would be two columns to Frappe,
        // which the database refuses.
        "case_only_duplicate_fieldname.json",
        &[
            "case_only_duplicate_fieldname.json",
            "field \"Amount\"",
            "differ only in case",
        ],
    ),
];

#[test]
fn bad_input_exits_1_names_file_and_field_and_creates_no_database() {
    for (file, needles) in BAD_INPUTS {
        let input = fixture("cli_bad_input").join(file);
        for command in ["plan", "apply"] {
            let db = TestDb::new();
            let out = run(&[command, "--db", s(&db.path), "--doctypes", s(&input)]);
            let err = stderr(&out);
            assert_eq!(code(&out), 1, "{command} {file}: {err}");
            assert!(err.starts_with("error: "), "{err}");
            for needle in needles {
                assert!(
                    err.contains(needle),
                    "{command} {file}: {needle:?} not in {err}"
                );
            }
            assert!(out.stdout.is_empty(), "{command} {file}");
            assert!(!db.path.exists(), "{command} {file} created the database");
        }
    }
}

#[test]
fn bad_input_leaves_an_existing_database_byte_identical() {
    let db = TestDb::new();
    assert_eq!(code(&apply(&db.path, &example("v1"), &[])), 0);
    let before = db.bytes();
    for (file, _) in BAD_INPUTS {
        let input = fixture("cli_bad_input").join(file);
        // The bad file next to good DocTypes: nothing of the batch may run.
        let out = run(&[
            "apply",
            "--db",
            s(&db.path),
            "--doctypes",
            s(&example("v2")),
            s(&input),
            "--continue-on-error",
        ]);
        assert_eq!(code(&out), 1, "{file}: {}", stderr(&out));
        assert_eq!(db.bytes(), before, "{file} changed the database");
    }
}

#[test]
fn usage_errors_exit_1_not_clap_default_2() {
    let out = run(&["plan", "--db", "x.db"]);
    assert_eq!(code(&out), 1, "missing --doctypes");
    assert!(stderr(&out).contains("--doctypes"));
    assert_eq!(code(&run(&["frobnicate"])), 1);
    assert_eq!(code(&run(&["--help"])), 0);
    assert_eq!(code(&run(&["--version"])), 0);
}

#[test]
fn a_directory_without_doctypes_is_an_error() {
    let db = TestDb::new();
    let empty = tempfile::tempdir().unwrap();
    let out = run(&["apply", "--db", s(&db.path), "--doctypes", s(empty.path())]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no DocType JSON found"),
        "{}",
        stderr(&out)
    );
    assert!(!db.path.exists());
}

fn gauge_doctypes(dir: &Path) -> PathBuf {
    let d = dir.join("gauge_doctypes");
    std::fs::create_dir_all(&d).unwrap();
    for (file, json) in [
        (
            "alpha.json",
            r#"{"doctype": "DocType", "name": "Alpha", "fields": [{"fieldname": "a", "fieldtype": "Data"}]}"#,
        ),
        (
            "gauge.json",
            r#"{"doctype": "DocType", "name": "Gauge", "fields": [{"fieldname": "reading", "fieldtype": "Int"}]}"#,
        ),
        (
            "zulu.json",
            r#"{"doctype": "DocType", "name": "Zulu", "fields": [{"fieldname": "z", "fieldtype": "Data"}]}"#,
        ),
    ] {
        std::fs::write(d.join(file), json).unwrap();
    }
    d
}

#[test]
fn continue_on_error_reports_the_failed_doctype_and_exits_1() {
    let db = TestDb::new();
    db.conn().execute_batch(GAUGE_TRAP).unwrap();
    let doctypes = gauge_doctypes(db.dir.path());

    let out = apply(&db.path, &doctypes, &["--continue-on-error"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed and were rolled back: Gauge"),
        "{}",
        stderr(&out)
    );
    let json = stdout_json(&out);
    let statuses: Vec<(&str, &str)> = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["doctype"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("Alpha", "completed"),
            ("Gauge", "failed"),
            ("Zulu", "completed")
        ]
    );
    let gauge = &json["migrations"][1];
    assert!(
        gauge["error"]
            .as_str()
            .unwrap()
            .contains("CHECK constraint failed")
    );

    let text = run(&["history", "--db", s(&db.path), "--doctype", "Gauge"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("failed"), "{text}");

    // Without --continue-on-error the same failure commits nothing.
    let db2 = TestDb::new();
    db2.conn().execute_batch(GAUGE_TRAP).unwrap();
    let doctypes2 = gauge_doctypes(db2.dir.path());
    let before = db2.bytes();
    let out = apply(&db2.path, &doctypes2, &[]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("migration of DocType \"Gauge\" failed; nothing was committed"),
        "{err}"
    );
    assert!(err.contains("\n  caused by: SQL failed"), "{err}");
    assert_eq!(db2.bytes(), before);
}

#[test]
fn blocked_apply_exits_2_and_leaves_the_file_byte_identical() {
    let db = TestDb::new();
    let dir = db.dir.path().join("notes_v1");
    std::fs::create_dir_all(&dir).unwrap();
    let v1 = r#"{"doctype": "DocType", "name": "Note", "fields": [{"fieldname": "code", "fieldtype": "Data"}]}"#;
    std::fs::write(dir.join("note.json"), v1).unwrap();
    assert_eq!(code(&apply(&db.path, &dir, &[])), 0);
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabNote\" (name, code) VALUES ('a', 'X'), ('b', 'X'), ('c', 'Y')",
        )
        .unwrap();
    std::fs::write(
        dir.join("note.json"),
        v1.replace(
            r#""fieldtype": "Data""#,
            r#""fieldtype": "Data", "unique": 1"#,
        ),
    )
    .unwrap();
    let before = db.bytes();
    let out = apply(&db.path, &dir, &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(json["blocked"], true);
    assert_eq!(json["findings"][0]["rule"], "MF001");
    assert_eq!(json["findings"][0]["rows_affected"], 2);
    assert_eq!(db.bytes(), before);
    let plan = run(&["plan", "--db", s(&db.path), "--doctypes", s(&dir)]);
    assert_eq!(code(&plan), 2);
    assert!(String::from_utf8_lossy(&plan.stdout).contains("MF001"));
}
