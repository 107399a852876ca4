//! Memory stays flat: backing up, verifying and restoring a table much larger
//! than the allowed growth. Linux only (reads VmHWM from /proc/self/status
//! after resetting it through /proc/self/clear_refs). Peak RSS is the whole
//! process's and the other integration tests run as threads of this one, so
//! the test re-runs this binary on itself alone and measures there.
//!
//! Rows: `BACKUP_MEMORY_ROWS` (default 200 000, about 70 bytes each; the figure in
//! docs/performance.md uses 1 000 000 rows of the 21-column bench table, see benches/backup.rs).

use std::process::{Command, Stdio};

use crate::backup_support::*;
use crate::common::test_name;
use doctype_migrate::{BackupStrategy, RestoreTarget};

/// Set in the child process that measures.
const CHILD_ENV: &str = "DM_BACKUP_MEMORY_CHILD";

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[test]
fn backup_verify_restore_memory_is_flat() {
    if std::env::var_os(CHILD_ENV).is_some() {
        measure();
        return;
    }
    // A process of its own: this binary on this one test, one thread.
    let name = test_name(module_path!(), "backup_verify_restore_memory_is_flat");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .expect("spawn the measuring child process");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "the measuring child failed ({}):\n{stdout}",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child did not run {name}:\n{stdout}"
    );
}

/// The measurement proper, in the child process.
fn measure() {
    if !cfg!(target_os = "linux") || status_kib("VmHWM:").is_none() {
        eprintln!("skipped: no /proc/self/status");
        return;
    }
    let rows: u64 = std::env::var("BACKUP_MEMORY_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.db");
    let conn = open(&path);
    conn.execute_batch(&format!(
        "CREATE TABLE tabBig (name TEXT PRIMARY KEY, a INTEGER, b REAL, c TEXT, d BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO tabBig SELECT 'BIG-' || i, i * 7919, i / 3.0, 'c' || i, randomblob(24) FROM n;"
    ))
    .unwrap();
    let db_bytes = std::fs::metadata(&path).unwrap().len();
    let mgr = builder(&tmp.path().join("b")).key([5; 32]).build().unwrap();

    if !reset_peak() {
        eprintln!("skipped: cannot reset VmHWM");
        return;
    }
    let base = status_kib("VmRSS:").unwrap();
    let info = mgr
        .backup_table(&conn, "tabBig", BackupStrategy::FullTable, None)
        .unwrap();
    assert_eq!(info.row_count, rows);
    let after_backup = status_kib("VmHWM:").unwrap();
    mgr.verify(&info.path).unwrap();
    let after_verify = status_kib("VmHWM:").unwrap();
    mgr.restore(&conn, &info.path, RestoreTarget::NewTable("tabBig2".into()))
        .unwrap();
    let after_restore = status_kib("VmHWM:").unwrap();

    let growth_mib = |kib: u64| kib.saturating_sub(base) as f64 / 1024.0;
    eprintln!(
        "table {:.1} MiB, backup file {:.1} MiB; peak RSS growth: backup {:.1} MiB, +verify {:.1} MiB, +restore {:.1} MiB",
        db_bytes as f64 / 1048576.0,
        info.bytes as f64 / 1048576.0,
        growth_mib(after_backup),
        growth_mib(after_verify),
        growth_mib(after_restore)
    );
    if rows >= 200_000 {
        assert!(db_bytes > 12 << 20, "table should dwarf the allowed growth");
    }
    // Bound: SQLite page caches (2 MiB each), codec buffers, allocator
    // slack. Not proportional to the table.
    assert!(growth_mib(after_backup) < 8.0);
    assert!(growth_mib(after_verify) < 8.0);
    assert!(growth_mib(after_restore) < 8.0);
}
