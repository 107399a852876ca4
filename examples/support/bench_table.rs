//! The business-like table both benchmarks build: a DocType with 21
//! columns (7 standard plus 14 fields) and two secondary indexes, filled
//! with generated rows. Included by `bench.rs` and `serve_bench.rs`.

#![allow(dead_code)] // each including example uses a part

use std::path::Path;

use doctype_migrate::{DocType, Field, FieldType, MigrationApplier};
use rusqlite::Connection;

/// The base table's name.
pub const TABLE: &str = "tabBench Item";

pub const FIELDS: [(&str, FieldType); 14] = [
    ("item_code", FieldType::Data),
    ("item_name", FieldType::Data),
    ("description", FieldType::Text),
    ("qty_text", FieldType::Data),
    ("rate", FieldType::Currency),
    ("amount", FieldType::Currency),
    ("uom", FieldType::Data),
    ("warehouse", FieldType::Link),
    ("posting_date", FieldType::Date),
    ("status", FieldType::Select),
    ("is_active", FieldType::Check),
    ("weight", FieldType::Float),
    ("notes", FieldType::SmallText),
    ("batch_no", FieldType::Data),
];

pub fn business_doctype(qty: FieldType) -> DocType {
    let mut dt = DocType::new("Bench Item");
    for (name, ft) in FIELDS {
        let ft = if name == "qty_text" { qty } else { ft };
        let mut f = Field::new(name, ft);
        f.search_index = matches!(name, "item_code" | "warehouse");
        dt = dt.field(f);
    }
    dt
}

/// Creates `path` with the table (its `qty_text` a Data field) and `rows`
/// generated rows.
pub fn build_base(path: &Path, rows: u64) {
    MigrationApplier::builder(path)
        .create_if_missing(true)
        .build()
        .unwrap()
        .sync_all(&[business_doctype(FieldType::Data)])
        .unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .unwrap();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO \"tabBench Item\" (name, creation, modified, modified_by, owner, docstatus, idx,
             item_code, item_name, description, qty_text, rate, amount, uom, warehouse, posting_date,
             status, is_active, weight, notes, batch_no)
         SELECT printf('ITEM-%08d', i), '2026-01-01 10:00:00', '2026-01-02 11:00:00', 'admin@example.com',
             'admin@example.com', 0, i % 50, printf('CODE-%06d', i % 200000), 'Item number ' || i,
             'A reasonably long description of item ' || i || ' for the benchmark table',
             CAST(i % 1000 AS TEXT), (i % 997) * 1.25, (i % 991) * 3.5, 'Nos', 'Stores - ' || (i % 40),
             date('2026-01-01', '+' || (i % 365) || ' days'), 'Active', i % 2, (i % 113) / 7.0,
             'note ' || (i % 17), 'B' || (i % 5000)
         FROM n"
    );
    conn.execute_batch(&sql).unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE;").unwrap();
}

/// The base table's CREATE statement.
pub fn table_sql(db: &Path) -> String {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [TABLE],
            |r| r.get(0),
        )
        .unwrap()
}
