//! Fleets: `doctype-migrate fleet` over generated fleets of real database
//! files: halt and continue around a corrupt and a locked database,
//! canaries, a SIGKILL mid-run and a re-run, shards, plans by state.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use serde_json::Value;

use crate::common::*;

const V1: &str = r#"{"name": "Note", "fields": [{"fieldname": "title", "fieldtype": "Data"}]}"#;
const V2: &str = r#"{"name": "Note", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "pinned", "fieldtype": "Check"}
]}"#;

/// `count` tenant databases at version 1, `sites/NNN/site.db`, each with
/// a few rows.
struct Tenants {
    _dir: tempfile::TempDir,
    root: PathBuf,
    v2: PathBuf,
    dbs: Vec<PathBuf>,
}

impl Tenants {
    fn new(count: usize) -> Tenants {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let (v1, v2) = (root.join("v1"), root.join("v2"));
        for (d, json) in [(&v1, V1), (&v2, V2)] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("note.json"), json).unwrap();
        }
        let template = root.join("template.db");
        let out = bin()
            .args(["apply", "--db"])
            .arg(&template)
            .arg("--doctypes")
            .arg(&v1)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Connection::open(&template)
            .unwrap()
            .execute_batch("INSERT INTO tabNote (name, title) VALUES ('N1', 'a'), ('N2', 'b');")
            .unwrap();
        let dbs: Vec<PathBuf> = (0..count)
            .map(|i| {
                let site = root.join(format!("sites/{i:03}"));
                std::fs::create_dir_all(&site).unwrap();
                let db = site.join("site.db");
                std::fs::copy(&template, &db).unwrap();
                db
            })
            .collect();
        Tenants {
            _dir: dir,
            root,
            v2,
            dbs,
        }
    }

    fn glob(&self) -> String {
        format!("{}/sites/*/site.db", self.root.display())
    }

    /// `fleet SUB --dbs GLOB --doctypes v2 ARGS... --json`.
    fn fleet(&self, sub: &str, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.args(["fleet", sub, "--dbs", &self.glob(), "--doctypes"])
            .arg(&self.v2)
            .args(args)
            .arg("--json");
        cmd
    }

    /// Writes garbage over database `i`.
    fn corrupt(&self, i: usize) {
        std::fs::write(
            &self.dbs[i],
            b"this is not an SQLite database, but a tenant's bad day",
        )
        .unwrap();
    }

    /// Whether database `i` has the column version 2 adds.
    fn migrated(&self, i: usize) -> bool {
        column_names(&Connection::open(&self.dbs[i]).unwrap(), "tabNote")
            .contains(&"pinned".to_string())
    }
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"));
    cmd.arg("--quiet").stdin(Stdio::null());
    cmd
}

/// The JSON lines of a fleet run: per database `db → status`, and the summary.
fn lines(stdout: &[u8]) -> (BTreeMap<PathBuf, String>, Value) {
    let mut per_db = BTreeMap::new();
    let mut summary = Value::Null;
    for line in String::from_utf8_lossy(stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(s) = v.get("summary") {
            summary = s.clone();
        } else {
            for key in ["db", "status", "duration_ms", "changes", "error"] {
                assert!(v.get(key).is_some(), "line without {key}: {line}");
            }
            let db = PathBuf::from(v["db"].as_str().unwrap());
            let previous = per_db.insert(db, v["status"].as_str().unwrap().to_string());
            assert!(previous.is_none(), "a database reported twice: {line}");
        }
    }
    (per_db, summary)
}

fn count_of(per_db: &BTreeMap<PathBuf, String>, status: &str) -> usize {
    per_db.values().filter(|s| *s == status).count()
}

/// Holds the write lock of `db` until dropped.
fn lock(db: &Path) -> Connection {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    conn
}

#[test]
fn continue_migrates_every_other_database_around_a_corrupt_and_a_locked_one() {
    let t = Tenants::new(500);
    t.corrupt(100);
    let _held = lock(&t.dbs[300]);
    let out = t
        .fleet(
            "apply",
            &[
                "--on-error",
                "continue",
                "--parallel",
                "2",
                "--lock-timeout",
                "1",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (per_db, summary) = lines(&out.stdout);
    assert_eq!(per_db.len(), 500);
    assert_eq!(per_db[&t.dbs[100]], "unreadable");
    assert_eq!(per_db[&t.dbs[300]], "failed");
    assert_eq!(count_of(&per_db, "migrated"), 498);
    assert_eq!(summary["migrated"], 498);
    assert_eq!(summary["unreadable"], 1);
    assert_eq!(summary["failed"], 1);
    assert!(t.migrated(0) && t.migrated(499));
}

#[test]
fn halt_starts_nothing_after_the_first_problem_and_skips_the_rest() {
    let t = Tenants::new(500);
    t.corrupt(100);
    let _held = lock(&t.dbs[300]);
    let out = t
        .fleet("apply", &["--parallel", "2", "--lock-timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (per_db, summary) = lines(&out.stdout);
    assert_eq!(per_db.len(), 500, "every database has its line");
    assert_eq!(per_db[&t.dbs[100]], "unreadable");
    assert_eq!(per_db[&t.dbs[300]], "skipped");
    assert!(summary["stopped"].as_str().unwrap().contains("halted"));
    // With two workers, at most the one running beside the corrupt
    // database ran after it.
    let ran_after: Vec<usize> = (101..500)
        .filter(|&i| per_db[&t.dbs[i]] != "skipped")
        .collect();
    assert!(ran_after.len() <= 1, "ran after the halt: {ran_after:?}");
    for i in (0..500).filter(|i| ![100, 300].contains(i)) {
        assert_eq!(
            t.migrated(i),
            per_db[&t.dbs[i]] == "migrated",
            "database {i}: {}",
            per_db[&t.dbs[i]]
        );
    }
}

#[test]
fn a_failing_canary_stops_everything_before_the_rest() {
    let t = Tenants::new(50);
    t.corrupt(30);
    let list = t.root.join("canaries.txt");
    std::fs::write(&list, format!("{}\n", t.dbs[30].display())).unwrap();
    let out = t
        .fleet("apply", &["--canary-list", &format!("@{}", list.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (per_db, summary) = lines(&out.stdout);
    assert_eq!(per_db[&t.dbs[30]], "unreadable");
    assert_eq!(count_of(&per_db, "skipped"), 49);
    assert!(summary["stopped"].as_str().unwrap().contains("canary"));
    assert!((0..50).filter(|&i| i != 30).all(|i| !t.migrated(i)));

    // Canaries that end well run first, then the rest.
    let t = Tenants::new(20);
    let out = t
        .fleet("apply", &["--canary", "3", "--parallel", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let first: BTreeSet<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .take(3)
        .map(|l| {
            PathBuf::from(
                serde_json::from_str::<Value>(l).unwrap()["db"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(first, t.dbs[..3].iter().cloned().collect());
}

#[test]
fn a_run_killed_mid_way_and_run_again_migrates_every_database_exactly_once() {
    let t = Tenants::new(500);
    let mut child = t
        .fleet("apply", &["--parallel", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..40 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the run ended before the kill"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = (0..500).filter(|&i| t.migrated(i)).count();
    assert!(
        (40..500).contains(&done_before),
        "killed mid-way: {done_before} migrated"
    );

    let out = t.fleet("apply", &["--parallel", "2"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (per_db, _) = lines(&out.stdout);
    assert_eq!(count_of(&per_db, "up_to_date"), done_before);
    assert_eq!(count_of(&per_db, "migrated"), 500 - done_before);
    for db in &t.dbs {
        let conn = Connection::open(db).unwrap();
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM tabMigrationHistory WHERE status = 'completed'"
            ),
            2,
            "{}: version 1, then version 2 exactly once",
            db.display()
        );
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
    // A third run finds everything up to date.
    let out = t.fleet("apply", &[]).output().unwrap();
    let (per_db, _) = lines(&out.stdout);
    assert_eq!(count_of(&per_db, "up_to_date"), 500);
}

#[test]
fn shards_cover_the_list_exactly_once_and_plan_groups_by_state() {
    let t = Tenants::new(60);
    let mut seen: Vec<PathBuf> = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let out = t.fleet("status", &["--shard", shard]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (per_db, summary) = lines(&out.stdout);
        assert_eq!(per_db.len(), 20);
        assert_eq!(summary["pending"], 20);
        seen.extend(per_db.into_keys());
    }
    seen.sort();
    let mut all = t.dbs.clone();
    all.sort();
    assert_eq!(seen, all, "each database in exactly one shard");
    let bad = t.fleet("status", &["--shard", "3/3"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    // A pattern that matches nothing is an error, not an empty success.
    let none = bin()
        .args([
            "fleet",
            "apply",
            "--dbs",
            "/nowhere/*/site.db",
            "--doctypes",
        ])
        .arg(&t.v2)
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no database found"));

    // Three databases already at version 2, one unreadable: two states.
    let out = t.fleet("apply", &["--shard", "0/20"]).output().unwrap();
    assert!(out.status.success());
    t.corrupt(59);
    let before: Vec<Vec<u8>> = t.dbs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    let out = t.fleet("plan", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "an unreadable database");
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = plan["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["databases"].as_array().unwrap().len(), 56);
    assert_eq!(groups[0]["changes"], 1);
    assert_eq!(groups[1]["databases"].as_array().unwrap().len(), 3);
    assert_eq!(groups[1]["changes"], 0);
    assert_eq!(plan["unreadable"].as_array().unwrap().len(), 1);
    let after: Vec<Vec<u8>> = t.dbs.iter().map(|d| std::fs::read(d).unwrap()).collect();
    assert!(before == after, "plan writes nothing");
}
