//! Whoever can write the database gains nothing beyond it. Each test here
//! reproduces an attack through content the engine reads back from the
//! database (history rows) and shows it refused with a typed reason, the
//! database byte-identical and no other file touched.

mod common;

use std::path::Path;

use common::TestDb;
use doctype_migrate::{
    DocType, Error, Field, FieldType, MigrationApplier, Reason, RollbackOptions,
};
use proptest::prelude::*;
use rusqlite::Connection;

fn v1() -> DocType {
    DocType::new("Customer").field(Field::new("title", FieldType::Data))
}

fn v2() -> DocType {
    v1().field(Field::new("phone", FieldType::Phone))
}

/// A database with two completed migrations of Customer (create, then an
/// added column), a customer row, and a second SQLite file beside it that
/// an attacker would like to reach.
struct Target {
    db: TestDb,
    other: std::path::PathBuf,
    latest: i64,
}

fn target() -> Target {
    let db = TestDb::new();
    let mut a = db.applier();
    a.sync_all(&[v1()]).unwrap();
    a.sync_all(&[v2()]).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabCustomer\" (name, title) VALUES ('c1', 'Acme')")
        .unwrap();
    let other = db.dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE secrets (s); INSERT INTO secrets VALUES ('keep me')")
        .unwrap();
    let latest: i64 = db
        .conn()
        .query_row("SELECT max(id) FROM \"tabMigrationHistory\"", [], |r| {
            r.get(0)
        })
        .unwrap();
    Target { db, other, latest }
}

/// Replaces the stored rollback SQL of migration `id`, as an attacker with
/// write access to the database would.
fn plant(db: &TestDb, id: i64, statements: &[String]) {
    let json = serde_json::to_string(statements).unwrap();
    db.conn()
        .execute(
            "UPDATE \"tabMigrationHistory\" SET rollback_sql = ?1 WHERE id = ?2",
            rusqlite::params![json, id],
        )
        .unwrap();
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn rollback_last(db: &TestDb) -> doctype_migrate::Result<doctype_migrate::RollbackReport> {
    MigrationApplier::builder(&db.path)
        .no_audit_log()
        .build()
        .unwrap()
        .rollback_last(None, &RollbackOptions::default())
}

#[test]
fn an_edited_rollback_that_commits_and_attaches_another_file_is_refused() {
    let t = target();
    let other = t.other.display().to_string();
    let attacks: Vec<Vec<String>> = vec![
        vec![format!(
            "COMMIT; ATTACH '{other}' AS x; DROP TABLE x.secrets"
        )],
        vec![format!("ATTACH '{other}' AS x")],
        vec![
            "ALTER TABLE \"tabCustomer\" DROP COLUMN \"phone\"".to_string(),
            format!("DROP TABLE \"tabCustomer\"; ATTACH '{other}' AS x"),
        ],
        vec!["PRAGMA writable_schema = ON".to_string()],
        vec!["DELETE FROM \"tabCustomer\"; COMMIT".to_string()],
    ];
    for attack in attacks {
        plant(&t.db, t.latest, &attack);
        let before = listing(t.db.dir.path());
        let reasons = match rollback_last(&t.db) {
            Err(Error::RollbackRefused { plan }) => plan.refusals,
            other => panic!("{attack:?}: expected a refusal, got {other:?}"),
        };
        assert!(
            reasons
                .iter()
                .any(|r| matches!(r, Reason::UnsafeRollbackSql { id, .. } if id.0 == t.latest)),
            "{attack:?}: {reasons:?}"
        );
        assert_eq!(
            listing(t.db.dir.path()),
            before,
            "{attack:?}: a file changed"
        );
    }
    let kept: String = Connection::open(&t.other)
        .unwrap()
        .query_row("SELECT s FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "keep me");
}

#[test]
fn an_edited_rollback_that_vacuums_into_a_path_writes_no_file() {
    let t = target();
    let planted = t.db.dir.path().join("authorized_keys");
    for attack in [
        format!("COMMIT; VACUUM INTO '{}'", planted.display()),
        format!("VACUUM INTO '{}'", planted.display()),
        format!("/* looks harmless */ vacuum into '{}'", planted.display()),
    ] {
        plant(&t.db, t.latest, std::slice::from_ref(&attack));
        let before = t.db.bytes();
        let result = rollback_last(&t.db);
        assert!(
            matches!(&result, Err(Error::RollbackRefused { plan })
                if plan.refusals.iter().any(|r| r.code() == "unsafe_rollback_sql")),
            "{attack}: {result:?}"
        );
        assert!(!planted.exists(), "{attack}: a file was written");
        assert_eq!(t.db.bytes(), before, "{attack}");
    }
}

#[test]
fn the_cli_rollback_exits_2_and_names_the_edited_statement() {
    let t = target();
    let planted = t.db.dir.path().join("planted.db");
    plant(
        &t.db,
        t.latest,
        &[format!("COMMIT; VACUUM INTO '{}'", planted.display())],
    );
    let before = t.db.bytes();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
        .args(["rollback", "--db", t.db.path.to_str().unwrap(), "--last"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("unsafe_rollback_sql"), "{text}");
    assert!(!planted.exists());
    assert_eq!(t.db.bytes(), before);
}

/// A statement that passes the text checks but asks the authorizer for
/// something engine SQL never does is refused when it is prepared, inside
/// the rollback's transaction: nothing of the rollback is kept.
#[test]
fn the_authorizer_refuses_what_the_text_checks_let_through() {
    let t = target();
    let other = t.other.display().to_string();
    // A trigger body may not ATTACH, but it may name a schema: refused.
    let attack = vec![
        "ALTER TABLE \"tabCustomer\" DROP COLUMN \"phone\"".to_string(),
        "CREATE TRIGGER t AFTER INSERT ON \"tabCustomer\" BEGIN DELETE FROM x.secrets; END"
            .to_string(),
        format!("INSERT INTO \"tabCustomer\" (name) SELECT '{other}'"),
    ];
    plant(&t.db, t.latest, &attack);
    let before = t.db.bytes();
    let result = rollback_last(&t.db);
    assert!(result.is_err(), "{result:?}");
    assert_eq!(t.db.bytes(), before, "nothing of the rollback is kept");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Random edits of a history row's rollback SQL: never a panic, never a
    /// file written beside the database, and either a refusal or a rollback
    /// that leaves the database consistent.
    #[test]
    fn random_history_edits_never_write_outside_the_database(
        picks in proptest::collection::vec(0usize..12, 1..4),
        noise in "[ -~]{0,20}",
    ) {
        let t = target();
        let dir = t.db.dir.path().to_path_buf();
        let other = t.other.display().to_string();
        let out = dir.join("out.db").display().to_string();
        let pieces = [
            "COMMIT".to_string(),
            format!("ATTACH '{other}' AS x"),
            format!("VACUUM INTO '{out}'"),
            "DETACH x".to_string(),
            "ALTER TABLE \"tabCustomer\" DROP COLUMN \"phone\"".to_string(),
            "DROP TABLE x.secrets".to_string(),
            "PRAGMA journal_mode = OFF".to_string(),
            "BEGIN".to_string(),
            "SAVEPOINT s".to_string(),
            noise.clone(),
            format!("INSERT INTO \"tabCustomer\" (name) VALUES ('{noise}')").replace('\'', "''"),
            "SELECT 1".to_string(),
        ];
        let statements: Vec<String> = picks.iter().map(|&i| pieces[i].clone()).collect();
        // Sometimes glue them into one text, as an attacker would.
        let planted = if picks.len() > 1 && picks[0] % 2 == 0 {
            vec![statements.join("; ")]
        } else {
            statements
        };
        plant(&t.db, t.latest, &planted);
        let _ = rollback_last(&t.db);
        prop_assert!(!dir.join("out.db").exists());
        let kept: i64 = Connection::open(&t.other)
            .unwrap()
            .query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))
            .unwrap();
        prop_assert_eq!(kept, 1);
        let ok: String = t
            .db
            .conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        prop_assert_eq!(ok, "ok");
    }
}
