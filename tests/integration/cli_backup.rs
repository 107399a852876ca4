//! The binary's backup options and `backup list|verify|restore|prune`, end
//! to end on real database and backup files in temporary directories:
//! encrypted backups taken by `apply` (key file and passphrase from the
//! environment), listing, verification with tampered files, restores into
//! new and original tables, pruning that keeps what history still needs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{TestDb, column_names, count};
use doctype_migrate::{BackupManager, BackupStrategy};
use serde_json::Value;

const V1: &str = r#"{"name": "Contact", "fields": [
    {"fieldname": "full_name", "fieldtype": "Data"},
    {"fieldname": "phone", "fieldtype": "Data"},
    {"fieldname": "age", "fieldtype": "Data"}
]}"#;

/// V1 without `phone`: destructive with `--drop-orphan-columns`.
const V2: &str = r#"{"name": "Contact", "fields": [
    {"fieldname": "full_name", "fieldtype": "Data"},
    {"fieldname": "age", "fieldtype": "Data"}
]}"#;

/// V2 plus a nullable column: a safe, native change.
const V3: &str = r#"{"name": "Contact", "fields": [
    {"fieldname": "full_name", "fieldtype": "Data"},
    {"fieldname": "age", "fieldtype": "Data"},
    {"fieldname": "email", "fieldtype": "Data"}
]}"#;

const PASS_VAR: &str = "DM_CLI_BACKUP_TEST_PASSPHRASE";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Runs the binary with `args` and the passphrase variable set to `pass`
/// (or removed).
fn run_env(args: &[&str], pass: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"));
    cmd.args(args);
    match pass {
        Some(p) => cmd.env(PASS_VAR, p),
        None => cmd.env_remove(PASS_VAR),
    };
    cmd.output().expect("run doctype-migrate")
}

fn run(args: &[&str]) -> Output {
    run_env(args, None)
}

/// A database with Contact v1 applied and three rows, two with a phone.
struct Fixture {
    db: TestDb,
    key: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let db = TestDb::new();
        let key = db.dir.path().join("backup.key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        let f = Fixture { db, key };
        let out = f.apply(V1, &[], None);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        f.db.conn()
            .execute_batch(
                "INSERT INTO \"tabContact\" (name, full_name, phone, age) VALUES
                   ('C1', 'Ann', '555-1', '31'), ('C2', 'Bob', NULL, 'n/a'), ('C3', 'Cy', '555-3', '07');",
            )
            .unwrap();
        f
    }

    fn db(&self) -> &str {
        s(&self.db.path)
    }

    fn key(&self) -> &str {
        s(&self.key)
    }

    fn backup_dir(&self) -> PathBuf {
        self.db.dir.path().join("app.db.backups")
    }

    /// Writes `doctype_json` to a file and runs `apply --json` with `extra`.
    fn apply(&self, doctype_json: &str, extra: &[&str], pass: Option<&str>) -> Output {
        let file = self.db.dir.path().join("contact.json");
        std::fs::write(&file, doctype_json).unwrap();
        let mut args = vec!["apply", "--db", self.db(), "--doctypes", s(&file), "--json"];
        args.extend_from_slice(extra);
        run_env(&args, pass)
    }

    /// Applies V2 (drops `phone`, data loss allowed) with `key_args`;
    /// returns the backup file the migration took.
    fn drop_phone(&self, key_args: &[&str], pass: Option<&str>) -> PathBuf {
        let mut extra = vec!["--allow-data-loss", "--drop-orphan-columns"];
        extra.extend_from_slice(key_args);
        let out = self.apply(V2, &extra, pass);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let report = json(&out);
        let backups = report["migrations"][0]["backups"].as_array().unwrap();
        assert_eq!(backups.len(), 1, "{report}");
        PathBuf::from(backups[0].as_str().unwrap())
    }
}

#[test]
fn plan_previews_the_backups_apply_would_take() {
    let f = Fixture::new();
    let file = f.db.dir.path().join("contact.json");
    std::fs::write(&file, V2).unwrap();
    let base = [
        "plan",
        "--db",
        f.db(),
        "--doctypes",
        s(&file),
        "--drop-orphan-columns",
        "--allow-data-loss",
    ];
    let mut args = base.to_vec();
    args.push("--json");
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = json(&out);
    assert_eq!(
        plan["doctypes"][0]["backups"],
        serde_json::json!([{"table": "tabContact", "strategy": {"kind": "columns", "columns": ["phone"]}}])
    );
    let text = stdout(&run(&base));
    assert!(text.contains("backups taken first:"), "{text}");
    assert!(text.contains("tabContact columns(phone)"), "{text}");
    assert!(text.contains("Backups: 1 would be taken into"), "{text}");
    assert!(text.contains("app.db.backups (not encrypted)"), "{text}");

    args.extend(["--backup-policy", "never"]);
    let plan = json(&run(&args));
    assert!(
        plan["doctypes"][0].get("backups").is_none(),
        "policy never plans no backup: {plan}"
    );
    assert!(!f.backup_dir().exists(), "plan writes no backup");
}

#[test]
fn key_file_backups_are_listed_verified_refused_when_tampered_and_restored() {
    let f = Fixture::new();
    let backup = f.drop_phone(&["--key-file", f.key(), "--backup-level", "6"], None);
    assert!(backup.is_absolute(), "history names an absolute path");
    assert!(backup.starts_with(f.backup_dir()), "{}", backup.display());
    assert!(!column_names(&f.db.conn(), "tabContact").contains(&"phone".to_string()));

    // list --json: the backup with its manifest facts.
    let out = run(&["backup", "list", "--db", f.db(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list = json(&out);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let b = &list[0];
    assert_eq!(b["path"], s(&backup));
    assert_eq!(b["table"], "tabContact");
    assert_eq!(
        b["strategy"],
        serde_json::json!({"kind": "columns", "columns": ["phone"]})
    );
    assert_eq!(b["table_row_count"], 3);
    assert_eq!(b["migration_id"], 2);
    assert_eq!(
        (b["compressed"].clone(), b["encrypted"].clone()),
        (true.into(), true.into())
    );
    assert!(b["bytes"].as_u64().unwrap() > 0);
    let text = stdout(&run(&["backup", "list", "--db", f.db()]));
    assert!(
        text.contains("columns(phone)") && text.contains("gzip,encrypted"),
        "{text}"
    );
    assert!(text.contains("1 backup(s) in"), "{text}");

    // verify: all pass with the key; without it the file is named and exit 1.
    let out = run(&["backup", "verify", "--db", f.db(), "--key-file", f.key()]);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 ok, 0 failed"), "{}", stdout(&out));
    let out = run(&["backup", "verify", "--db", f.db()]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("encrypted"), "{}", stdout(&out));
    let name = backup.file_name().unwrap().to_str().unwrap();
    assert!(stderr(&out).contains(name), "{}", stderr(&out));
    let wrong = f.db.dir.path().join("wrong.key");
    std::fs::write(&wrong, [8u8; 32]).unwrap();
    let out = run(&[
        "backup",
        "verify",
        "--db",
        f.db(),
        "--key-file",
        s(&wrong),
        "--json",
    ]);
    assert_eq!(code(&out), 1);
    let results = json(&out);
    assert_eq!(results[0]["ok"], false);
    assert!(
        results[0]["error"].as_str().unwrap().contains("wrong key"),
        "{results}"
    );
    assert_eq!(results[0]["kind"], "wrong_key", "{results}");
    // Without a key: the kind says a key is required; with it: no kind.
    let results = json(&run(&["backup", "verify", "--db", f.db(), "--json"]));
    assert_eq!(results[0]["kind"], "key_required", "{results}");
    let results = json(&run(&[
        "backup",
        "verify",
        "--db",
        f.db(),
        "--key-file",
        f.key(),
        "--json",
    ]));
    assert_eq!(results[0]["ok"], true, "{results}");
    assert!(results[0]["kind"].is_null(), "{results}");

    // One flipped byte: verify fails naming the file, and a restore from it
    // changes nothing in the database, byte for byte.
    let good = std::fs::read(&backup).unwrap();
    let mut bad = good.clone();
    let at = 64 + (bad.len() - 64) / 3;
    bad[at] ^= 0x01;
    std::fs::write(&backup, &bad).unwrap();
    let out = run(&[
        "backup",
        "verify",
        "--db",
        f.db(),
        "--key-file",
        f.key(),
        s(&backup),
    ]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));
    assert!(stdout(&out).contains("corrupted"), "{}", stdout(&out));
    assert!(stderr(&out).contains(name), "{}", stderr(&out));
    let results = json(&run(&[
        "backup",
        "verify",
        "--db",
        f.db(),
        "--key-file",
        f.key(),
        s(&backup),
        "--json",
    ]));
    assert_eq!(results[0]["kind"], "corrupted", "{results}");
    let before = f.db.bytes();
    let out = run(&[
        "backup",
        "restore",
        "--db",
        f.db(),
        s(&backup),
        "--into",
        "phones",
        "--key-file",
        f.key(),
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("corrupted"), "{}", stderr(&out));
    assert_eq!(
        f.db.bytes(),
        before,
        "a failed restore leaves the database byte-identical"
    );
    assert!(!f.db.path.with_extension("db-journal").exists());

    // The intact file restores the dropped values into a new table.
    std::fs::write(&backup, &good).unwrap();
    let out = run(&[
        "backup",
        "restore",
        "--db",
        f.db(),
        s(&backup),
        "--into",
        "phones",
        "--key-file",
        f.key(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(
        (r["table"].clone(), r["target"].clone()),
        ("tabContact".into(), "phones".into())
    );
    let conn = f.db.conn();
    let phones: Vec<(String, Option<String>)> = conn
        .prepare("SELECT name, phone FROM phones ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        phones,
        [
            ("C1".to_string(), Some("555-1".to_string())),
            ("C2".to_string(), None),
            ("C3".to_string(), Some("555-3".to_string())),
        ]
    );
}

#[test]
fn passphrase_from_the_environment_round_trips_and_a_missing_variable_is_refused() {
    let f = Fixture::new();
    let pass_args = ["--passphrase-env", PASS_VAR];

    // Unset or empty variable: exit 1, a clear message, nothing migrated.
    let mut extra = vec!["--allow-data-loss", "--drop-orphan-columns"];
    extra.extend_from_slice(&pass_args);
    let before = f.db.bytes();
    for pass in [None, Some("")] {
        let out = f.apply(V2, &extra, pass);
        assert_eq!(code(&out), 1);
        let err = stderr(&out);
        assert!(err.contains(PASS_VAR), "{err}");
        assert!(err.contains("not set") || err.contains("empty"), "{err}");
        assert!(out.stdout.is_empty(), "{}", stdout(&out));
    }
    assert_eq!(f.db.bytes(), before, "nothing was written");
    assert!(!f.backup_dir().exists());

    let secret = "correct horse battery staple";
    let backup = f.drop_phone(&pass_args, Some(secret));
    let list = json(&run(&["backup", "list", "--db", f.db(), "--json"]));
    assert_eq!(list[0]["encrypted"], true);

    let verify = [
        "backup",
        "verify",
        "--db",
        f.db(),
        "--passphrase-env",
        PASS_VAR,
    ];
    let out = run_env(&verify, Some(secret));
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    let out = run_env(&verify, Some("wrong passphrase"));
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("wrong key"), "{}", stdout(&out));
    let out = run_env(&verify, None);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not set"), "{}", stderr(&out));

    // A full backup (policy always) restored into the original table gives
    // back rows deleted after it was taken.
    let mut extra = vec!["--backup-policy", "always"];
    extra.extend_from_slice(&pass_args);
    let out = f.apply(V3, &extra, Some(secret));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let full = PathBuf::from(
        json(&out)["migrations"][0]["backups"][0]
            .as_str()
            .expect("policy always backs up the table"),
    );
    assert_ne!(full, backup);
    let conn = f.db.conn();
    conn.execute_batch("DELETE FROM \"tabContact\" WHERE name <> 'C1'")
        .unwrap();
    let out = run_env(
        &[
            "backup",
            "restore",
            "--db",
            f.db(),
            s(&full),
            "--passphrase-env",
            PASS_VAR,
        ],
        Some(secret),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("into tabContact: 3 row(s) inserted"),
        "{}",
        stdout(&out)
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM \"tabContact\""), 3);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM \"tabContact\" WHERE age = '07'"
        ),
        1
    );
}

#[test]
fn prune_keeps_backups_completed_migrations_name_unless_forced() {
    let f = Fixture::new();
    let protected = f.drop_phone(&[], None);
    // Two later backups no migration names (taken by hand with the library).
    let manager = BackupManager::builder()
        .dir(f.backup_dir())
        .build()
        .unwrap();
    let conn = f.db.conn();
    let manual: Vec<PathBuf> = (0..2)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            manager
                .backup_table(&conn, "tabContact", BackupStrategy::FullTable, None)
                .unwrap()
                .path
        })
        .collect();

    let out = run(&["backup", "prune", "--db", f.db()]);
    assert_eq!(code(&out), 1, "a rule is required");
    let out = run(&[
        "backup",
        "prune",
        "--db",
        f.db(),
        "--older-than",
        "30d",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["deleted"], serde_json::json!([]));

    // Keep the newest one: the middle one goes, the protected one stays.
    let out = run(&["backup", "prune", "--db", f.db(), "--keep", "1", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["deleted"], serde_json::json!([s(&manual[0])]));
    assert_eq!(r["kept_protected"], serde_json::json!([s(&protected)]));
    assert!(protected.exists() && manual[1].exists() && !manual[0].exists());
    let text = stdout(&run(&["backup", "prune", "--db", f.db(), "--keep", "1"]));
    assert!(
        text.contains("Kept: named by a completed migration"),
        "{text}"
    );
    assert!(text.contains(s(&protected)), "{text}");

    // --force deletes it too.
    let out = run(&[
        "backup",
        "prune",
        "--db",
        f.db(),
        "--keep",
        "1",
        "--force",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["deleted"], serde_json::json!([s(&protected)]));
    assert_eq!(r["deleted_protected"], serde_json::json!([s(&protected)]));
    assert!(!protected.exists() && manual[1].exists());

    // A missing database is an error, not a prune without protection.
    let missing = f.db.dir.path().join("nope.db");
    let out = run(&["backup", "prune", "--db", s(&missing), "--keep", "1"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}
