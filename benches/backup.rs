//! The backup pipeline (read rows, encode, gzip, encrypt, write, fsync) on a
//! generated 21-column DocType-like table, against plain gzip at the same
//! level of the same bytes, in the same run.
//!
//! ```text
//! cargo bench --bench backup                       # 100k rows
//! BACKUP_BENCH_ROWS=1000000 cargo bench --bench backup
//! BACKUP_BENCH_LEVEL=6 cargo bench --bench backup  # another gzip level
//! ```
//!
//! Throughput is reported per byte of the SQLite database file (which holds
//! only the table), so every line is comparable:
//! * `pipeline/gzip+aes`  `BackupManager::backup_table` with a key (the product path)
//! * `pipeline/gzip`      the same without encryption
//! * `pipeline/plain`     no compression, no encryption (read + encode + hash + write)
//! * `gzip/db-file`       read the database file and gzip it (what users do by hand)
//! * `gzip/payload`       gzip of the backup's plaintext payload, in memory
//!
//! Before the measurements it prints the peak RSS growth of one encrypted
//! backup (Linux: VmHWM after resetting it through /proc/self/clear_refs).

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use doctype_migrate::{BackupManager, BackupStrategy};
use rusqlite::Connection;

fn rows() -> u64 {
    std::env::var("BACKUP_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn level() -> u32 {
    std::env::var("BACKUP_BENCH_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// A Frappe-like table: 7 standard columns and 14 fields, ~340 bytes a row.
fn generate(path: &Path, n: u64) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE \"tabSales Invoice\" (
            name TEXT PRIMARY KEY, creation TEXT, modified TEXT, modified_by TEXT, owner TEXT,
            docstatus INTEGER NOT NULL DEFAULT 0, idx INTEGER NOT NULL DEFAULT 0,
            customer TEXT, customer_name TEXT, posting_date TEXT, due_date TEXT, currency TEXT,
            conversion_rate REAL NOT NULL DEFAULT 0, total_qty REAL NOT NULL DEFAULT 0,
            net_total REAL NOT NULL DEFAULT 0, grand_total REAL NOT NULL DEFAULT 0,
            outstanding_amount REAL NOT NULL DEFAULT 0, is_return INTEGER NOT NULL DEFAULT 0,
            status TEXT, remarks TEXT, company TEXT);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO \"tabSales Invoice\" SELECT
            printf('ACC-SINV-2026-%06d', i),
            datetime(1700000000 + i * 37, 'unixepoch') || '.' || printf('%06d', (i * 7919) % 1000000),
            datetime(1700000000 + i * 41, 'unixepoch') || '.' || printf('%06d', (i * 104729) % 1000000),
            'user' || (i % 17) || '@example.com', 'owner' || (i % 5) || '@example.com',
            i % 3, i % 50,
            printf('CUST-%05d', abs(random()) % 20000), 'Customer ' || hex(randomblob(6)),
            date(1700000000 + i * 37, 'unixepoch'), date(1700000000 + i * 37 + 2592000, 'unixepoch'),
            CASE i % 4 WHEN 0 THEN 'USD' WHEN 1 THEN 'EUR' ELSE 'INR' END,
            1.0 + (i % 100) / 1000.0, i % 40, (abs(random()) % 1000000) / 100.0,
            (abs(random()) % 1000000) / 100.0, (abs(random()) % 100000) / 100.0, i % 10 = 0,
            CASE i % 5 WHEN 0 THEN 'Paid' WHEN 1 THEN 'Unpaid' WHEN 2 THEN 'Overdue' ELSE 'Draft' END,
            'Remark ' || hex(randomblob(24)), 'Example Company Ltd'
         FROM s;
         PRAGMA journal_mode = DELETE;"
    ))
    .unwrap();
    conn
}

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let level = level();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bench.db");
    let t0 = std::time::Instant::now();
    let conn = generate(&db, n);
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    eprintln!(
        "generated {n} rows, {:.1} MB in {:.1?}; gzip level {level}",
        db_bytes as f64 / 1e6,
        t0.elapsed()
    );
    let table = "tabSales Invoice";
    let dir = tmp.path().join("backups");
    let enc = BackupManager::builder()
        .dir(&dir)
        .compression_level(level)
        .key([0x11; 32])
        .build()
        .unwrap();
    let gz = BackupManager::builder()
        .dir(&dir)
        .compression_level(level)
        .build()
        .unwrap();
    let plain = BackupManager::builder()
        .dir(&dir)
        .no_compression()
        .build()
        .unwrap();

    // Peak memory of one encrypted backup.
    if std::fs::write("/proc/self/clear_refs", "5").is_ok() {
        let before = status_kib("VmRSS:").unwrap_or(0);
        let t = std::time::Instant::now();
        let info = enc
            .backup_table(&conn, table, BackupStrategy::FullTable, None)
            .unwrap();
        let took = t.elapsed();
        let peak = status_kib("VmHWM:").unwrap_or(0);
        eprintln!(
            "one encrypted backup: {:.2?}, {:.1} MB/s of table, file {:.1} MB ({:.0}% of the table); \
             RSS before {:.1} MiB, peak {:.1} MiB (growth {:.1} MiB)",
            took,
            db_bytes as f64 / 1e6 / took.as_secs_f64(),
            info.bytes as f64 / 1e6,
            100.0 * info.bytes as f64 / db_bytes as f64,
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0
        );
        std::fs::remove_file(&info.path).unwrap();
    }

    // The plaintext payload, for the in-memory gzip baseline.
    let plain_info = plain
        .backup_table(&conn, table, BackupStrategy::FullTable, None)
        .unwrap();
    let payload = std::fs::read(&plain_info.path).unwrap();
    std::fs::remove_file(&plain_info.path).unwrap();
    eprintln!(
        "plaintext payload+manifest: {:.1} MB",
        payload.len() as f64 / 1e6
    );

    let mut g = c.benchmark_group("backup");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(if n > 300_000 { 60 } else { 15 }));
    g.throughput(Throughput::Bytes(db_bytes));
    for (name, mgr) in [
        ("pipeline/gzip+aes", &enc),
        ("pipeline/gzip", &gz),
        ("pipeline/plain", &plain),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let info = mgr
                    .backup_table(&conn, table, BackupStrategy::FullTable, None)
                    .unwrap();
                std::fs::remove_file(&info.path).unwrap();
                black_box(info.bytes)
            })
        });
    }
    g.bench_function("gzip/db-file", |b| {
        b.iter(|| {
            let mut f =
                std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(&db).unwrap());
            let mut e =
                flate2::write::GzEncoder::new(CountSink(0), flate2::Compression::new(level));
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let k = f.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                e.write_all(&buf[..k]).unwrap();
            }
            black_box(e.finish().unwrap().0)
        })
    });
    g.bench_function("gzip/payload", |b| {
        b.iter(|| {
            let mut e =
                flate2::write::GzEncoder::new(CountSink(0), flate2::Compression::new(level));
            e.write_all(&payload).unwrap();
            black_box(e.finish().unwrap().0)
        })
    });
    g.finish();
}

/// Counts bytes and drops them.
struct CountSink(u64);

impl Write for CountSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
