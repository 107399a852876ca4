//! Out of disk space, for real: the database and its backup directory on a
//! small tmpfs mount, the free space swept from nothing to plenty. Wherever
//! the space runs out (writing the backup, copying the rebuilt table,
//! writing history, committing), the run fails with a clear error, the
//! database file is byte-identical to before, no partial backup or journal
//! is left behind, and once space is freed the same run succeeds.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted the
//! test prints that it is skipped and why, and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use doctype_migrate::{DocType, Field, FieldType, MigrationApplier, error_chain};
use rusqlite::Connection;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on a new temporary directory, or says why
    /// it cannot.
    fn mount(bytes: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

const SIZE: u64 = 24 * 1024 * 1024;

fn v1() -> DocType {
    DocType::new("Reading")
        .field(Field::new("code", FieldType::Data))
        .field(Field::new("note", FieldType::Text))
}

/// `code` becomes Int: a rebuild, with a column backup (values change).
fn v2() -> DocType {
    DocType::new("Reading")
        .field(Field::new("code", FieldType::Int))
        .field(Field::new("note", FieldType::Text))
}

/// A database at v1 with rows, built outside the tmpfs; its bytes.
fn seed(dir: &Path) -> Vec<u8> {
    let path = dir.join("seed.db");
    MigrationApplier::builder(&path)
        .create_if_missing(true)
        .no_audit_log()
        .build()
        .unwrap()
        .sync_all(&[v1()])
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO \"tabReading\" (name, code, note)
             SELECT 'R' || i, CASE WHEN i % 7 = 0 THEN 'x' || i ELSE CAST(i AS TEXT) END,
                    printf('%.200c', 'n') FROM n;",
        )
        .unwrap();
    std::fs::read(&path).unwrap()
}

/// Everything in `dir` except `keep`, by name.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let name = p.strip_prefix(dir).unwrap().display().to_string();
            if !keep.contains(&name.as_str()) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

fn apply(db: &Path) -> doctype_migrate::Result<doctype_migrate::ApplyReport> {
    MigrationApplier::builder(db)
        .allow_data_loss(true)
        .no_audit_log()
        .build()?
        .sync_all(&[v2()])
}

#[test]
fn running_out_of_space_anywhere_fails_cleanly_and_the_run_succeeds_after() {
    let mount = match Tmpfs::mount(SIZE) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("disk_full: skipped: {why}");
            return;
        }
    };
    let scratch = tempfile::tempdir().unwrap();
    let original = seed(scratch.path());
    let db: PathBuf = mount.path().join("app.db");
    let filler = mount.path().join("filler");
    let mut failures = 0;
    let mut first_success = None;
    // Free space after the database is in place: 0, 384 KiB, 768 KiB, ...
    // (the table is about 5 MB, larger than SQLite's page cache, so a
    // rebuild's copy spills to the file before COMMIT).
    for step in 0..40u64 {
        for f in leftovers(mount.path(), &[]) {
            std::fs::remove_file(mount.path().join(f)).unwrap();
        }
        let _ = std::fs::remove_dir_all(mount.path().join("app.db.backups"));
        std::fs::write(&db, &original).unwrap();
        let free = step * 384 * 1024;
        let used = original.len() as u64 + free;
        let fill = SIZE.saturating_sub(used + 64 * 1024);
        if std::fs::write(&filler, vec![0u8; fill as usize]).is_err() {
            continue;
        }
        match apply(&db) {
            Err(e) => {
                failures += 1;
                let text = error_chain(&e);
                eprintln!("disk_full: free {free}: {text}");
                let lower = text.to_lowercase();
                assert!(
                    lower.contains("full") || lower.contains("no space"),
                    "free {free}: the error says the disk is full: {text}"
                );
                let now = std::fs::read(&db).unwrap();
                assert!(
                    now == original,
                    "free {free}: database changed after: {text}"
                );
                let left = leftovers(mount.path(), &["app.db", "filler"]);
                assert!(
                    left.is_empty(),
                    "free {free}: left behind {left:?} after: {text}"
                );
                // Space freed: the same run succeeds.
                std::fs::remove_file(&filler).unwrap();
                let report = apply(&db).unwrap_or_else(|e| panic!("free {free}, then freed: {e}"));
                assert_eq!(report.migrations.len(), 1);
            }
            Ok(report) => {
                assert_eq!(report.migrations.len(), 1);
                first_success.get_or_insert(free);
            }
        }
        let conn = Connection::open(&db).unwrap();
        let ints: i64 = conn
            .query_row(
                "SELECT count(*) FROM \"tabReading\" WHERE typeof(code) = 'integer'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(ints > 17000, "free {free}: the change is in place");
        if first_success.is_some() && failures > 0 && step > 30 {
            break;
        }
    }
    assert!(failures > 0, "the sweep never ran out of space");
    assert!(first_success.is_some(), "the sweep never had enough space");
}
