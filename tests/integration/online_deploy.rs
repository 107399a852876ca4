//! Online migrations as a rolling deploy runs them, with real processes:
//! writers of both application versions during start and backfill, the
//! `doctype-migrate online` commands, a SIGKILL in the backfill.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::online::{V1, V2, app_schema};
use rusqlite::Connection;

/// The environment variable that makes this test binary a writer.
const WRITER_ENV: &str = "DM_ONLINE_WRITER";

/// A directory with `v1/`, `v2/` and `app.db` at version 1 with `rows` rows.
struct Deploy {
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
    v2: PathBuf,
}

impl Deploy {
    fn new(rows: u64) -> Deploy {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let (v1, v2) = (root.join("v1"), root.join("v2"));
        for (d, json) in [(&v1, V1), (&v2, V2)] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("ticket.json"), json).unwrap();
        }
        let db = root.join("app.db");
        let out = cli(&["apply", "--db"], &db, &["--doctypes"], &v1);
        assert!(out.status.success(), "{out:?}");
        fill(&db, rows);
        Deploy {
            _dir: dir,
            root,
            db,
            v2,
        }
    }

    /// A copy of the database at version 1 (before any writer ran).
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.root.join(name);
        std::fs::copy(&self.db, &to).unwrap();
        to
    }

    fn online(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = bin();
        cmd.arg("online").args(args).arg("--db").arg(&self.db);
        if args.first() == Some(&"start") {
            cmd.arg("--doctypes").arg(&self.v2);
        }
        cmd.output().unwrap()
    }

    fn spawn_online(&self, args: &[&str]) -> Child {
        let mut cmd = bin();
        cmd.arg("online").args(args).arg("--db").arg(&self.db);
        if args.first() == Some(&"start") {
            cmd.arg("--doctypes").arg(&self.v2);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"));
    cmd.arg("--quiet").stdin(Stdio::null());
    cmd
}

fn cli(a: &[&str], db: &Path, b: &[&str], c: &Path) -> std::process::Output {
    bin().args(a).arg(db).args(b).arg(c).output().unwrap()
}

/// `rows` tickets T000000.. with integer text in `amount`.
fn fill(db: &Path, rows: u64) {
    Connection::open(db)
        .unwrap()
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
             INSERT INTO tabTicket (name, title, amount, note) \
             SELECT printf('T%06d', i), 'title ' || i, CAST(i AS TEXT), 'n' FROM n",
            [rows as i64],
        )
        .unwrap();
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------
// Writers: this test binary re-run on `writer_entry` with WRITER_ENV set.

/// One writer process of one application version.
struct Writer {
    child: Child,
    stop: PathBuf,
    log: PathBuf,
}

impl Writer {
    fn spawn(deploy: &Deploy, version: &str) -> Writer {
        let stop = deploy.root.join(format!("stop-{version}"));
        let log = deploy.root.join(format!("writes-{version}.log"));
        let name = test_name(module_path!(), "writer_entry");
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &name,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_ENV, version)
            .env("DM_ONLINE_DB", &deploy.db)
            .env("DM_ONLINE_STOP", &stop)
            .env("DM_ONLINE_LOG", &log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Writer { child, stop, log }
    }

    /// Writes logged so far.
    fn writes(&self) -> Vec<(String, String, String)> {
        Writer::read_log(&self.log)
    }

    fn read_log(log: &Path) -> Vec<(String, String, String)> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut p = l.splitn(3, '\t');
                Some((p.next()?.into(), p.next()?.into(), p.next()?.into()))
            })
            .collect()
    }

    fn wait_for_writes(&self, n: usize) {
        let start = Instant::now();
        while self.writes().len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "writer made no progress"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the writer and returns every write it logged.
    fn stop(self) -> Vec<(String, String, String)> {
        std::fs::write(&self.stop, b"").unwrap();
        let Writer { child, stop, log } = self;
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "writer failed: {}", output_text(&out));
        Writer::read_log(&log)
            .into_iter()
            .filter(|_| stop.exists())
            .collect()
    }
}

/// A writer's loop, in its own process: inserts a ticket, updates one of
/// its own existing tickets (version 1: even rows through `title`;
/// version 2: odd rows through `subject`), and logs each write after it
/// committed, until the stop file appears. Version 2 starts writing once
/// the expand step has made `subject` exist.
#[test]
#[ignore = "entry point of the writer processes of online_deploy"]
fn writer_entry() {
    let Ok(version) = std::env::var(WRITER_ENV) else {
        return;
    };
    let var = |k: &str| PathBuf::from(std::env::var_os(k).unwrap());
    let (db, stop, log) = (
        var("DM_ONLINE_DB"),
        var("DM_ONLINE_STOP"),
        var("DM_ONLINE_LOG"),
    );
    let conn = Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    let mut log = std::fs::File::create(log).unwrap();
    let new = version == "new";
    if new {
        while column_names(&conn, "tabTicket")
            .iter()
            .all(|c| c != "subject")
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut i: u64 = 0;
    while !stop.exists() {
        let name = format!("{}-{i:06}", version.to_uppercase());
        let value = format!("{version} insert {i}");
        if new {
            conn.execute(
                "INSERT INTO tabTicket (name, subject, amount, priority) VALUES (?1, ?2, ?3, 'High')",
                rusqlite::params![name, value, i as i64],
            )
            .unwrap();
        } else {
            conn.execute(
                "INSERT INTO tabTicket (name, title, amount, note) VALUES (?1, ?2, ?3, 'o')",
                rusqlite::params![name, value, i.to_string()],
            )
            .unwrap();
        }
        writeln!(log, "I\t{name}\t{value}").unwrap();
        let target = format!("T{:06}", (i * 2 + u64::from(new)) % 1000);
        let value = format!("{version} update {i}");
        let sql = if new {
            "UPDATE tabTicket SET subject = ?2 WHERE name = ?1"
        } else {
            "UPDATE tabTicket SET title = ?2 WHERE name = ?1"
        };
        conn.execute(sql, rusqlite::params![target, value]).unwrap();
        writeln!(log, "U\t{target}\t{value}").unwrap();
        log.flush().unwrap();
        i += 1;
        // An application writes, then does something else for a moment.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every write of `writes` is in the table under `column` (the last
/// update of each row wins; the writers update disjoint rows).
fn assert_writes_present(conn: &Connection, column: &str, writes: &[(String, String, String)]) {
    let mut last = std::collections::BTreeMap::new();
    for (_, name, value) in writes {
        last.insert(name.clone(), value.clone());
    }
    assert!(!last.is_empty());
    let sql = format!("SELECT \"{column}\" FROM tabTicket WHERE name = ?1");
    let mut stmt = conn.prepare(&sql).unwrap();
    for (name, value) in &last {
        let found: Option<String> = stmt.query_row([name], |r| r.get(0)).ok();
        assert_eq!(found.as_deref(), Some(value.as_str()), "row {name}");
    }
}

#[test]
fn two_versions_write_during_start_and_backfill_and_complete_equals_a_plain_apply() {
    let deploy = Deploy::new(200_000);
    let plain = deploy.copy("plain.db");
    let old = Writer::spawn(&deploy, "old");
    old.wait_for_writes(20);
    let new = Writer::spawn(&deploy, "new");
    // Small ranges with pauses: the backfill runs long enough for both
    // writers to write throughout it.
    let out = deploy.online(&[
        "start",
        "--batch-rows",
        "500",
        "--max-batch-ms",
        "5",
        "--pause-ms",
        "2",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    new.wait_for_writes(20);
    // Both names agree in every row while both versions write.
    let conn = Connection::open(&deploy.db).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE subject IS NOT title"
        ),
        0
    );
    // The old version is retired; the new one writes on through complete.
    let old_writes = old.stop();
    let before_complete = new.writes().len();
    let out = deploy.online(&["complete"]);
    assert!(out.status.success(), "{}", output_text(&out));
    new.wait_for_writes(before_complete + 20);
    let new_writes = new.stop();
    assert!(old_writes.len() > 40 && new_writes.len() > 40);

    // Every write is there, through the final name; the old version's
    // integer text became integers as a plain apply converts them.
    assert_writes_present(&conn, "subject", &old_writes);
    assert_writes_present(&conn, "subject", &new_writes);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE typeof(amount) <> 'integer'"
        ),
        0
    );
    let inserts = old_writes
        .iter()
        .chain(&new_writes)
        .filter(|w| w.0 == "I")
        .count();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM tabTicket"),
        200_000 + inserts as i64
    );
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    // The schema a plain apply of the same DocTypes gives.
    let out = cli(&["apply", "--db"], &plain, &["--doctypes"], &deploy.v2);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        app_schema(&conn),
        app_schema(&Connection::open(&plain).unwrap())
    );
}

/// Starts an online migration in the background with a slow backfill,
/// SIGKILLs it once some ranges committed and before the last.
fn kill_mid_backfill(deploy: &Deploy) {
    let mut child = deploy.spawn_online(&[
        "start",
        "--batch-rows",
        "200",
        "--max-batch-ms",
        "1",
        "--pause-ms",
        "20",
    ]);
    let conn = Connection::open(&deploy.db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let start = Instant::now();
    loop {
        let at: Option<(i64, i64)> = conn
            .query_row(
                "SELECT backfilled_to, max_rowid FROM tabMigrationOnline",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if let Some((to, max)) = at {
            assert!(to < max, "the backfill finished before the kill");
            if to > 0 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the backfill never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (to, max): (i64, i64) = conn
        .query_row(
            "SELECT backfilled_to, max_rowid FROM tabMigrationOnline",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(to > 0 && to < max, "killed mid-backfill: {to}/{max}");
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE subject IS NOT title"
        ) > 0,
        "rows not yet backfilled remain"
    );
}

#[test]
fn a_backfill_killed_with_sigkill_resumes_and_completes_as_a_plain_apply() {
    let deploy = Deploy::new(200_000);
    let plain = deploy.copy("plain.db");
    kill_mid_backfill(&deploy);
    // Complete refuses while the backfill is not done.
    let out = deploy.online(&["complete"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("online resume"));
    let out = deploy.online(&["resume", "--json"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed"], true);
    let conn = Connection::open(&deploy.db).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE subject IS NOT title"
        ),
        0
    );
    let out = deploy.online(&["complete"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let out = cli(&["apply", "--db"], &plain, &["--doctypes"], &deploy.v2);
    assert!(out.status.success(), "{}", output_text(&out));
    let pconn = Connection::open(&plain).unwrap();
    assert_eq!(app_schema(&conn), app_schema(&pconn));
    let dump = "SELECT group_concat(name || '|' || subject || '|' || amount || '|' || typeof(amount) || '|' || priority, ';') FROM (SELECT * FROM tabTicket ORDER BY name)";
    let rows = |c: &Connection| -> String { c.query_row(dump, [], |r| r.get(0)).unwrap() };
    assert_eq!(rows(&conn), rows(&pconn));
}

#[test]
fn abort_after_a_killed_backfill_gives_back_the_schema_from_before_the_start() {
    let deploy = Deploy::new(200_000);
    let conn = Connection::open(&deploy.db).unwrap();
    let before = app_schema(&conn);
    let rows_before: i64 = count(&conn, "SELECT count(*) FROM tabTicket");
    kill_mid_backfill(&deploy);
    // A write through the new name after the kill is kept under the old one.
    conn.execute(
        "UPDATE tabTicket SET subject = 'kept' WHERE name = 'T000007'",
        [],
    )
    .unwrap();
    let out = deploy.online(&["abort"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(app_schema(&conn), before);
    assert_eq!(count(&conn, "SELECT count(*) FROM tabTicket"), rows_before);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tabTicket WHERE name = 'T000007' AND title = 'kept'"
        ),
        1
    );
    let out = deploy.online(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["online"].is_null());
}

#[test]
fn start_warns_on_a_rollback_journal_database_and_wal_switches_it_for_good() {
    let deploy = Deploy::new(100);
    let out = deploy.online(&["start"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("RUN003"),
        "{}",
        output_text(&out)
    );
    // Status reads only: the file is byte-identical after it.
    let bytes = std::fs::read(&deploy.db).unwrap();
    let out = deploy.online(&["status"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready to complete"));
    assert_eq!(std::fs::read(&deploy.db).unwrap(), bytes);
    let out = deploy.online(&["abort"]);
    assert!(out.status.success(), "{}", output_text(&out));

    let out = deploy.online(&["start", "--wal", "--json"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("RUN003"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"]["tables"][0]["renames"][0][1], "subject");
    // WAL stays on for every later connection.
    let mode: String = Connection::open(&deploy.db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // A plain apply is refused meanwhile, exit 1, naming the online migration.
    let out = cli(&["apply", "--db"], &deploy.db, &["--doctypes"], &deploy.v2);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("online complete"));
    let out = deploy.online(&["complete", "--json"]);
    assert!(out.status.success(), "{}", output_text(&out));
}
