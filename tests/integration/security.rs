//! Whoever can write the database gains nothing beyond it. Each test here
//! reproduces an attack through content the engine reads back from the
//! database (history rows) and shows it refused with a typed reason, the
//! database byte-identical and no other file touched.

use std::path::Path;

use crate::common::TestDb;
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
        vec!["PRAGMA journal_mode = OFF".to_string()],
        vec!["DELETE FROM \"tabCustomer\"; COMMIT".to_string()],
    ];
    for attack in attacks {
        plant(&t.db, t.latest, &attack);
        let before = listing(t.db.dir.path());
        let reasons = match rollback_last(&t.db) {
            Err(Error::RollbackRefused { plan }) => plan.into_plan().refusals,
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

// --- hostile content in the database -------------------------------------------

fn run_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_trigger_planted_on_the_history_table_stops_apply_and_rollback_before_any_write() {
    let t = target();
    t.db.conn()
        .execute_batch(
            "CREATE TRIGGER wipe AFTER INSERT ON \"tabMigrationHistory\"
             BEGIN DELETE FROM \"tabCustomer\"; END",
        )
        .unwrap();
    let before = t.db.bytes();
    let v3 = v2().field(Field::new("email", FieldType::Data));
    let err =
        t.db.applier()
            .sync_all(std::slice::from_ref(&v3))
            .unwrap_err();
    assert!(
        matches!(&err, Error::EngineTableTampered { table, object }
            if table == "tabMigrationHistory" && object.contains("wipe")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not created by the engine"),
        "{err}"
    );
    assert_eq!(t.db.bytes(), before, "apply wrote nothing");
    let err = rollback_last(&t.db).unwrap_err();
    assert!(matches!(err, Error::EngineTableTampered { .. }), "{err:?}");
    assert_eq!(t.db.bytes(), before, "rollback wrote nothing");
    // The dry run says so too, and the CLI exits 1.
    assert!(matches!(
        t.db.applier().dry_run(&[v3]),
        Err(Error::EngineTableTampered { .. })
    ));
    let out = run_cli(&["rollback", "--db", t.db.path.to_str().unwrap(), "--last"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trigger \"wipe\""));
    let customers: i64 =
        t.db.conn()
            .query_row("SELECT count(*) FROM \"tabCustomer\"", [], |r| r.get(0))
            .unwrap();
    assert_eq!(customers, 1);
}

/// A NULL under NOT NULL in `tabCustomer`, as a damaged file (or an
/// edited schema) leaves it: quick_check reports it; a rebuild would fail
/// or copy it.
fn damage_customer(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "INSERT INTO \"tabCustomer\" (name, title) VALUES ('c2', NULL);
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = replace(sql, '\"title\" VARCHAR(140)', '\"title\" VARCHAR(140) NOT NULL')
          WHERE name = 'tabCustomer';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
}

/// Title becomes Int (a rebuild), data loss allowed: the error it ends
/// with.
fn retype_title(db: &std::path::Path) -> doctype_migrate::Error {
    let changed = DocType::new("Customer")
        .field(Field::new("title", FieldType::Int))
        .field(Field::new("phone", FieldType::Phone));
    MigrationApplier::builder(db)
        .allow_data_loss(true)
        .no_audit_log()
        .build()
        .unwrap()
        .sync_all(&[changed])
        .unwrap_err()
}

/// On a WAL database the check goes on while the rebuild copies; its
/// verdict is still asked before anything of the DocType is kept.
#[test]
fn a_damaged_table_is_not_kept_rebuilt_on_a_wal_database() {
    let t = target();
    t.db.conn()
        .execute_batch("PRAGMA journal_mode = WAL;")
        .unwrap();
    damage_customer(&t.db.conn());
    let schema = t.db.schema();
    let err = retype_title(&t.db.path);
    let chain = format!("{err:?}");
    assert!(chain.contains("CorruptTable"), "{chain}");
    assert_eq!(t.db.schema(), schema, "nothing of the rebuild was kept");
    let titles: Vec<Option<String>> =
        t.db.conn()
            .prepare("SELECT title FROM \"tabCustomer\" ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(titles, vec![Some("Acme".to_owned()), None]);
}

#[test]
fn a_damaged_table_is_not_rebuilt() {
    let t = target();
    damage_customer(&t.db.conn());
    let before = t.db.bytes();
    let err = retype_title(&t.db.path);
    let chain = format!("{err:?}");
    assert!(chain.contains("CorruptTable"), "{chain}");
    assert!(
        doctype_migrate::error_chain(&err).contains("is damaged"),
        "{err}"
    );
    assert_eq!(t.db.bytes(), before);
}

#[test]
fn history_output_escapes_control_characters_from_the_database() {
    let t = target();
    t.db.conn()
        .execute(
            "UPDATE \"tabMigrationHistory\" SET doctype = ?1 WHERE id = 1",
            ["Cust\u{1b}[2J\u{1b}]0;pwned\u{7}omer"],
        )
        .unwrap();
    let out = run_cli(&["history", "--db", t.db.path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.contains(&0x1b), "raw ESC reached the terminal");
    assert!(!out.stdout.contains(&0x07), "raw BEL reached the terminal");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Cust\\u{1b}[2J"));
}

#[test]
fn refusal_details_keep_data_values_out_of_the_audit_log() {
    let db = TestDb::new();
    let mut a = db.applier();
    a.sync_all(&[v1()]).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabCustomer\" (name, title) VALUES
             ('a', 'secret-value-1'), ('b', 'secret-value-1')",
        )
        .unwrap();
    let unique = DocType::new("Customer").field(Field::new("title", FieldType::Data).unique());
    let err = a.sync_all(&[unique]).unwrap_err();
    assert!(matches!(err, Error::Blocked { .. }), "{err:?}");
    let log = std::fs::read_to_string(db.dir.path().join("app.db.audit.jsonl")).unwrap();
    assert!(log.contains("MF001"), "the refusal is logged: {log}");
    assert!(!log.contains("secret-value-1"), "{log}");
}

#[test]
fn oversized_input_is_refused_before_slow_work() {
    // 400,000 fields: refused for its width, not after per-field checks.
    let wide = (0..400_000).fold(DocType::new("Wide"), |dt, i| {
        dt.field(Field::new(format!("f{i}"), FieldType::Data))
    });
    let found = wide.conflicts();
    assert_eq!(found.len(), 1, "one conflict, the width");
    assert!(found[0].message.contains("400011 columns"), "{}", found[0]);
    // Defaults over 64 KiB.
    let big = DocType::new("Big")
        .field(Field::new("notes", FieldType::Text).default_value("x".repeat(65 * 1024)));
    let err = big.validate().unwrap_err();
    assert!(err.to_string().contains("at most 65536"), "{err}");
}

#[test]
fn a_read_that_waits_for_a_lock_says_read() {
    let t = target();
    let holder = t.db.conn();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = MigrationApplier::builder(&t.db.path)
        .read_only(true)
        .lock_timeout(std::time::Duration::from_millis(200))
        .busy_timeout(std::time::Duration::from_millis(20))
        .build()
        .and_then(|a| a.dry_run(&[v2()]))
        .unwrap_err();
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(
        matches!(err, Error::LockTimeout { write: false, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("could not take the read lock"),
        "{err}"
    );
}

#[test]
fn stored_rollback_sql_that_differs_from_the_derived_sql_is_refused() {
    let t = target();
    // Plausible engine SQL, but not what migration `latest` (an added
    // column) is undone by: it would drop the whole table.
    plant(&t.db, t.latest, &["DROP TABLE \"tabCustomer\"".to_string()]);
    let before = t.db.bytes();
    let reasons = match rollback_last(&t.db) {
        Err(Error::RollbackRefused { plan }) => plan.into_plan().refusals,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let mismatch = reasons
        .iter()
        .find(|r| r.code() == "rollback_sql_mismatch")
        .unwrap_or_else(|| panic!("{reasons:?}"));
    let text = mismatch.to_string();
    assert!(
        text.contains("stored: DROP TABLE \"tabCustomer\"")
            && text.contains("derived: ALTER TABLE \"tabCustomer\" DROP COLUMN \"phone\""),
        "{text}"
    );
    assert_eq!(t.db.bytes(), before);
    // The untouched row rolls back, running the derived SQL.
    let t = target();
    let report = rollback_last(&t.db).unwrap();
    assert_eq!(
        report.rolled_back[0].statements,
        ["ALTER TABLE \"tabCustomer\" DROP COLUMN \"phone\""]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Random edits of the other history columns a rollback reads (typed
    /// changes, recorded schemas, backup paths): never a panic, never a
    /// file outside the database, the database intact.
    #[test]
    fn random_edits_of_recorded_changes_and_schemas_are_harmless(
        column in 0usize..4,
        cut in 0usize..400,
        insert in "[ -~]{0,30}",
    ) {
        let t = target();
        let dir = t.db.dir.path().to_path_buf();
        let columns = ["changes", "schema_before", "schema_after", "backup_path"];
        let col = columns[column];
        let current: Option<String> = t
            .db
            .conn()
            .query_row(
                &format!("SELECT {col} FROM \"tabMigrationHistory\" WHERE id = ?1"),
                [t.latest],
                |r| r.get(0),
            )
            .unwrap();
        let mut text = current.unwrap_or_default();
        let at = text.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(text.len());
        text.insert_str(at, &insert);
        t.db.conn()
            .execute(
                &format!("UPDATE \"tabMigrationHistory\" SET {col} = ?1 WHERE id = ?2"),
                rusqlite::params![text, t.latest],
            )
            .unwrap();
        let files_before: Vec<String> = listing(&dir).into_iter().map(|(n, _)| n).collect();
        let _ = rollback_last(&t.db);
        let files_after: Vec<String> = listing(&dir)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.ends_with("-journal"))
            .collect();
        prop_assert_eq!(files_after, files_before);
        let ok: String = t
            .db
            .conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        prop_assert_eq!(ok, "ok");
    }
}

// --- backups a killed run left behind --------------------------------------------

fn backup_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".dmbak"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_killed_runs_backup_is_removed_and_never_names_another_migration() {
    let t = target();
    let backups = t.db.dir.path().join("app.db.backups");
    // A type change with a backup, committed; then the database goes back
    // to its state before, as if the run had been killed before COMMIT: the
    // backup file stays, naming a migration id no row records.
    let before = t.db.bytes();
    let retyped = DocType::new("Customer")
        .field(Field::new("title", FieldType::Int))
        .field(Field::new("phone", FieldType::Phone));
    let mut a = MigrationApplier::builder(&t.db.path)
        .allow_data_loss(true)
        .build()
        .unwrap();
    let killed = a.sync_all(std::slice::from_ref(&retyped)).unwrap();
    let killed_id = killed.migrations[0].id.unwrap();
    drop(a);
    let orphan = backup_files(&backups);
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    std::fs::write(&t.db.path, &before).unwrap();

    // The next run takes the same migration id for a migration of its own.
    let mut a = MigrationApplier::builder(&t.db.path)
        .allow_data_loss(true)
        .build()
        .unwrap();
    let next = a.sync_all(std::slice::from_ref(&retyped)).unwrap();
    assert_eq!(next.migrations[0].id, Some(killed_id), "the id is reused");
    let files = backup_files(&backups);
    assert_eq!(files.len(), 1, "the killed run's file is gone: {files:?}");
    let recorded = &next.migrations[0].backups;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].file_name().unwrap().to_string_lossy(),
        files[0],
        "the one file left is the one history names"
    );
    let log = std::fs::read_to_string(t.db.dir.path().join("app.db.audit.jsonl")).unwrap();
    assert!(
        log.contains("backup of a migration that never committed"),
        "{log}"
    );
    // And it rolls back from that file.
    a.rollback_last(None, &RollbackOptions::default()).unwrap();
}

#[test]
fn backup_restore_reads_only_files_in_the_backup_directory() {
    let t = target();
    let backups = t.db.dir.path().join("app.db.backups");
    let retyped = DocType::new("Customer")
        .field(Field::new("title", FieldType::Int))
        .field(Field::new("phone", FieldType::Phone));
    MigrationApplier::builder(&t.db.path)
        .allow_data_loss(true)
        .build()
        .unwrap()
        .sync_all(&[retyped])
        .unwrap();
    let name = backup_files(&backups).remove(0);
    // The same, genuine file, copied elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join(&name);
    std::fs::copy(backups.join(&name), &copy).unwrap();
    let before = t.db.bytes();
    let out = run_cli(&[
        "backup",
        "restore",
        "--db",
        t.db.path.to_str().unwrap(),
        copy.to_str().unwrap(),
        "--into",
        "tabRestored",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not in the backup directory"), "{err}");
    assert_eq!(t.db.bytes(), before);
    // From the backup directory it restores.
    let out = run_cli(&[
        "backup",
        "restore",
        "--db",
        t.db.path.to_str().unwrap(),
        backups.join(&name).to_str().unwrap(),
        "--into",
        "tabRestored",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Random edits of a backup file (header, payload, manifest, MAC),
    /// with and without a key: `backup restore` never panics, never writes
    /// outside the database, and either refuses or restores into the new
    /// table alone.
    #[test]
    fn random_edits_of_backup_files_are_refused_or_harmless(
        keyed in any::<bool>(),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<bool>()), 1..6),
        near_end in any::<bool>(),
    ) {
        let t = target();
        let dir = t.db.dir.path().to_path_buf();
        let backups = dir.join("app.db.backups");
        let key_file = dir.join("key");
        std::fs::write(&key_file, [7u8; 32]).unwrap();
        let build = || {
            let b = MigrationApplier::builder(&t.db.path).allow_data_loss(true);
            if keyed { b.backup_key_file(&key_file) } else { b }
        };
        let retyped = DocType::new("Customer")
            .field(Field::new("title", FieldType::Int))
            .field(Field::new("phone", FieldType::Phone));
        let applier = build().build().unwrap();
        let mut applier = applier;
        applier.sync_all(&[retyped]).unwrap();
        let name = backup_files(&backups).remove(0);
        let path = backups.join(&name);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for (pos, value, insert) in edits {
            let base = if near_end { len.saturating_sub(600) } else { 0 };
            let span = (len - base).max(1);
            let at = (base + pos as usize % span).min(bytes.len());
            if insert {
                bytes.insert(at, value);
            } else if at < bytes.len() {
                bytes[at] ^= value | 1;
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let files_before: Vec<String> = listing(&dir).into_iter().map(|(n, _)| n).collect();
        let customers_before = t.db.conn()
            .query_row("SELECT count(*) FROM \"tabCustomer\"", [], |r| r.get::<_, i64>(0))
            .unwrap();
        let manager = applier.backup_manager().unwrap();
        let _ = manager.restore(
            applier.connection(),
            &path,
            doctype_migrate::RestoreTarget::NewTable("tabRestored".into()),
        );
        let files_after: Vec<String> = listing(&dir)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.ends_with("-journal"))
            .collect();
        prop_assert_eq!(files_after, files_before);
        let customers_after = t.db.conn()
            .query_row("SELECT count(*) FROM \"tabCustomer\"", [], |r| r.get::<_, i64>(0))
            .unwrap();
        prop_assert_eq!(customers_after, customers_before);
        let ok: String = t.db.conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        prop_assert_eq!(ok, "ok");
    }
}
