//! Shared helpers for the backup integration tests (real SQLite files).

use std::path::{Path, PathBuf};

use doctype_migrate::{BackupManager, BackupManagerBuilder};
use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// An exactly compared SQLite value: storage class from `typeof()` plus the
/// value's bytes (REAL as its bit pattern).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum V {
    Null,
    Int(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// Opens (creating) a database file.
pub fn open(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

/// All rows of `table` as `(rowid?, values)`, each value checked against
/// `typeof()`; ordered by rowid (or by the whole row for WITHOUT ROWID).
pub fn snapshot(conn: &Connection, table: &str, with_rowid: bool) -> Vec<Vec<V>> {
    let q = format!("\"{}\"", table.replace('"', "\"\""));
    let cols: Vec<String> = {
        let mut st = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{}')",
                table.replace('\'', "''")
            ))
            .unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let mut sel: Vec<String> = Vec::new();
    if with_rowid {
        sel.push("typeof(rowid)".into());
        sel.push("rowid".into());
    }
    for c in &cols {
        let qc = format!("\"{}\"", c.replace('"', "\"\""));
        sel.push(format!("typeof({qc})"));
        sel.push(qc);
    }
    let sql = format!("SELECT {} FROM {q}", sel.join(", "));
    let mut st = conn.prepare(&sql).unwrap();
    let n = sel.len() / 2;
    let mut out: Vec<Vec<V>> = st
        .query_map([], |r| {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                let ty: String = r.get(2 * i)?;
                let v = match r.get_ref(2 * i + 1)? {
                    ValueRef::Null => V::Null,
                    ValueRef::Integer(x) => V::Int(x),
                    ValueRef::Real(f) => V::Real(f.to_bits()),
                    ValueRef::Text(t) => V::Text(t.to_vec()),
                    ValueRef::Blob(b) => V::Blob(b.to_vec()),
                };
                let expect = match v {
                    V::Null => "null",
                    V::Int(_) => "integer",
                    V::Real(_) => "real",
                    V::Text(_) => "text",
                    V::Blob(_) => "blob",
                };
                assert_eq!(
                    ty, expect,
                    "typeof disagrees with the value's storage class"
                );
                row.push(v);
            }
            Ok(row)
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    out.sort();
    out
}

/// A builder pointing at `dir` with cheap argon2 parameters (debug builds).
pub fn builder(dir: &Path) -> BackupManagerBuilder {
    BackupManager::builder().dir(dir).argon2_params(1024, 1, 1)
}

/// The table with every storage class and edge value. Column `a` has no
/// declared type, so SQLite keeps each value's storage class as given
/// (a REAL-affinity column would store -0.0 as integer 0).
pub fn create_edge_table(conn: &Connection, table: &str) {
    let q = format!("\"{}\"", table.replace('"', "\"\""));
    conn.execute_batch(&format!(
        "CREATE TABLE {q} (id INTEGER PRIMARY KEY, a, r REAL, s TEXT NOT NULL DEFAULT '', b BLOB, n INTEGER);
         CREATE INDEX \"{t}_s\" ON {q}(s);
         CREATE TRIGGER \"{t}_trg\" AFTER UPDATE ON {q} BEGIN SELECT 1; END;",
        t = table.replace('"', "\"\"")
    ))
    .unwrap();
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let subnormal = f64::from_bits(1);
    let ins = format!("INSERT INTO {q} (id, a, r, s, b, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    let mut st = conn.prepare(&ins).unwrap();
    use rusqlite::types::Value as SV;
    let rows: Vec<(i64, SV, SV, &str, SV, SV)> = vec![
        (
            1,
            SV::Null,
            SV::Real(0.0),
            "",
            SV::Null,
            SV::Integer(i64::MIN),
        ),
        (
            2,
            SV::Integer(i64::MIN),
            SV::Real(-0.0),
            "plain",
            SV::Blob(vec![]),
            SV::Integer(i64::MAX),
        ),
        (
            3,
            SV::Integer(i64::MAX),
            SV::Real(f64::MAX),
            "ünïcödé ✓",
            SV::Blob(vec![0, 1, 2]),
            SV::Integer(0),
        ),
        (
            4,
            SV::Real(-0.0),
            SV::Real(f64::MIN_POSITIVE),
            "0012",
            SV::Blob(big.clone()),
            SV::Null,
        ),
        (
            5,
            SV::Real(f64::MAX),
            SV::Real(subnormal),
            " 12",
            SV::Null,
            SV::Integer(-1),
        ),
        (
            6,
            SV::Real(f64::MIN_POSITIVE),
            SV::Real(-1.5e-300),
            "12.0",
            SV::Null,
            SV::Integer(1),
        ),
        (
            7,
            SV::Real(subnormal),
            SV::Real(1e308),
            "x",
            SV::Null,
            SV::Integer(2),
        ),
        (
            8,
            SV::Text(String::new()),
            SV::Null,
            "y",
            SV::Null,
            SV::Integer(3),
        ),
        (
            9,
            SV::Blob(big),
            SV::Real(f64::MIN),
            "z",
            SV::Null,
            SV::Integer(4),
        ),
        (
            10,
            SV::Blob(vec![]),
            SV::Real(-f64::MIN_POSITIVE),
            "'quote\"",
            SV::Null,
            SV::Integer(5),
        ),
        (
            11,
            SV::Text("text".into()),
            SV::Real(0.1),
            "nul\0inside",
            SV::Null,
            SV::Integer(6),
        ),
    ];
    for r in rows {
        st.execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5])
            .unwrap();
    }
    // Invalid UTF-8 stored as TEXT, in both a typeless and a TEXT column.
    conn.execute(
        &format!("INSERT INTO {q} (id, a, s) VALUES (12, CAST(x'fffe41c0' AS TEXT), CAST(x'80ff' AS TEXT))"),
        [],
    )
    .unwrap();
    // A rowid far from the others.
    conn.execute(
        &format!("INSERT INTO {q} (id, a, s) VALUES (9223372036854775807, 'max rowid', 'm')"),
        [],
    )
    .unwrap();
    conn.execute(
        &format!("INSERT INTO {q} (id, a, s) VALUES (-9223372036854775808, 'min rowid', 'n')"),
        [],
    )
    .unwrap();
}

/// Sanity: the edge table really holds the edge values we claim to test.
pub fn assert_edge_values_present(snap: &[Vec<V>]) {
    let all: Vec<&V> = snap.iter().flatten().collect();
    assert!(
        all.contains(&&V::Real((-0.0f64).to_bits())),
        "-0.0 not stored"
    );
    assert!(all.contains(&&V::Real(1)), "subnormal not stored");
    assert!(all.contains(&&V::Int(i64::MIN)));
    assert!(all.contains(&&V::Int(i64::MAX)));
    assert!(
        all.contains(&&V::Text(vec![0xff, 0xfe, 0x41, 0xc0])),
        "invalid UTF-8 text not stored"
    );
    assert!(all.contains(&&V::Text(vec![])));
    assert!(all.contains(&&V::Blob(vec![])));
}

/// Every `.dmbak` file in `dir`, sorted.
pub fn backup_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dmbak"))
        .collect();
    v.sort();
    v
}

/// Every entry in `dir` (file names), sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
