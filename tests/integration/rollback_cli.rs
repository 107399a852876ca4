//! `doctype-migrate rollback` end to end: exit codes (0 done, 2 refused,
//! 1 error), the JSON document, dry runs that write nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::TestDb;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
        .args(args)
        .env_remove("DM_TEST_PASSPHRASE")
        .output()
        .expect("run doctype-migrate")
}

fn fixture(version: &str) -> PathBuf {
    crate::common::fixture(&format!("rollback_cli/{version}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn apply(db: &TestDb, version: &str) -> Value {
    let out = run(&[
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&fixture(version)),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    json(&out)
}

fn rollback(db: &TestDb, extra: &[&str]) -> Output {
    let mut args = vec!["rollback", "--db", s(&db.path)];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn dry_run_rollback_refusal_and_consent() {
    let db = TestDb::new();
    apply(&db, "v1");
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name, title, qty) VALUES ('a', 'A', 1)")
        .unwrap();
    let schema_v1 = db.schema();
    let v2 = apply(&db, "v2");
    let id = v2["migrations"][0]["id"].as_i64().unwrap().to_string();

    // Dry run: feasible, nothing written.
    let bytes = db.bytes();
    let out = rollback(&db, &["--id", &id, "--dry-run", "--json"]);
    assert_eq!(code(&out), 0);
    let doc = json(&out);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["feasible"], true);
    assert_eq!(doc["rolled_back_any"], false);
    assert_eq!(
        doc["plan"]["steps"][0]["id"].as_i64().unwrap().to_string(),
        id
    );
    assert!(
        doc["plan"]["steps"][0]["statements"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );
    assert_eq!(db.bytes(), bytes);

    // Roll back the latest of the DocType.
    let out = rollback(&db, &["--last", "--doctype", "Item", "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["rolled_back_any"], true);
    assert_eq!(
        doc["rolled_back"][0]["id"].as_i64().unwrap().to_string(),
        id
    );
    assert_eq!(db.schema(), schema_v1);

    // Apply again and write into the new column: refused (exit 2).
    let again = apply(&db, "v2");
    let batch = again["batch_id"].as_str().unwrap().to_string();
    db.conn()
        .execute_batch("UPDATE \"tabItem\" SET note = 'keep me'")
        .unwrap();
    let bytes = db.bytes();
    let out = rollback(&db, &["--batch", &batch, "--json"]);
    assert_eq!(code(&out), 2);
    let doc = json(&out);
    assert_eq!(doc["feasible"], false);
    assert_eq!(doc["plan"]["refusals"][0]["code"], "data_would_be_lost");
    assert_eq!(doc["plan"]["refusals"][0]["column"], "note");
    assert_eq!(doc["plan"]["refusals"][0]["rows"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was written"));
    assert_eq!(db.bytes(), bytes);

    // Text output says so too.
    let out = rollback(&db, &["--batch", &batch]);
    assert_eq!(code(&out), 2);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("REFUSED") && text.contains("data_would_be_lost"),
        "{text}"
    );

    // With consent it rolls back, with the warning recorded.
    let out = rollback(&db, &["--batch", &batch, "--allow-data-loss", "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["plan"]["warnings"][0]["code"], "data_would_be_lost");
    assert_eq!(db.schema(), schema_v1);
}

#[test]
fn refuses_a_missing_backup_and_reports_errors_with_exit_1() {
    let db = TestDb::new();
    apply(&db, "v1");
    let v2 = apply(&db, "v2");
    let id = v2["migrations"][0]["id"].as_i64().unwrap();
    let missing = db.dir.path().join("backups/tabItem__gone__full.dmbak");
    db.conn()
        .execute(
            "UPDATE \"tabMigrationHistory\" SET backup_path = ?2 WHERE id = ?1",
            rusqlite::params![id, serde_json::json!([missing]).to_string()],
        )
        .unwrap();
    let bytes = db.bytes();
    let dir = db.dir.path().join("backups");
    let out = rollback(&db, &["--last", "--json", "--backup-dir", s(&dir)]);
    assert_eq!(code(&out), 2);
    let doc = json(&out);
    assert_eq!(doc["plan"]["refusals"][0]["code"], "backup_missing");
    assert_eq!(doc["plan"]["refusals"][0]["path"], s(&missing));
    assert_eq!(db.bytes(), bytes);

    // Errors: unknown id, no target, a passphrase variable that is not set,
    // a database that does not exist.
    assert_eq!(code(&rollback(&db, &["--id", "999"])), 1);
    assert_eq!(code(&rollback(&db, &[])), 1);
    assert_eq!(code(&rollback(&db, &["--id", "1", "--last"])), 1);
    assert_eq!(
        code(&rollback(
            &db,
            &["--last", "--passphrase-env", "DM_TEST_PASSPHRASE"]
        )),
        1
    );
    let nowhere = db.dir.path().join("nope.db");
    assert_eq!(code(&run(&["rollback", "--db", s(&nowhere), "--last"])), 1);
    assert!(!nowhere.exists());
    assert_eq!(db.bytes(), bytes);
}
