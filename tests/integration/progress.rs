//! Progress events for a rebuild (rows copied reach the row count) and
//! per-migration metrics recorded with the history row.

use std::sync::{Arc, Mutex};

use crate::common::*;
use doctype_migrate::{MigrationApplier, RunEvent, RunObserver};

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl RunObserver for Recorder {
    fn on_event(&self, event: &RunEvent<'_>) {
        let line = match event {
            RunEvent::Phase { doctype, phase } => {
                format!("phase {phase:?} {}", doctype.unwrap_or("-"))
            }
            RunEvent::RowsCopied { copied, total, .. } => format!("rows {copied} {total}"),
            RunEvent::BackupWritten { bytes, .. } => format!("backup {bytes}"),
            _ => "other".into(),
        };
        self.0.lock().unwrap().push(line);
    }
}

const V1: &str = r#"{"name": "Reading", "fields": [{"fieldname": "value", "fieldtype": "Data"}]}"#;

#[test]
fn rebuild_reports_rows_copied_up_to_the_row_count_and_records_metrics() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    db.conn()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
             INSERT INTO \"tabReading\" (name, value) SELECT 'R' || i, i * 3 FROM n;",
        )
        .unwrap();
    let v2 = V1.replace(r#""fieldtype": "Data""#, r#""fieldtype": "Int""#);
    let recorder = Arc::new(Recorder::default());
    let mut applier = MigrationApplier::builder(&db.path)
        .observer(recorder.clone())
        .build()
        .unwrap();
    let report = applier.sync_all(&[doctype(&v2)]).unwrap();
    let events = recorder.0.lock().unwrap().clone();
    let rows: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| e.strip_prefix("rows "))
        .map(|e| {
            let (a, b) = e.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(
        rows.len() >= 3,
        "progress while copying, not only at the end: {rows:?}"
    );
    assert!(
        rows.windows(2).all(|w| w[0].0 <= w[1].0),
        "monotonic: {rows:?}"
    );
    assert_eq!(
        *rows.last().unwrap(),
        (200_000, 200_000),
        "the count reaches the row count"
    );
    let order: Vec<&str> = events
        .iter()
        .filter(|e| e.starts_with("phase"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        order,
        [
            "phase Plan -",
            "phase Lock -",
            "phase Validate -",
            "phase Backup Reading",
            "phase Execute Reading",
            "phase Verify Reading",
            "phase Commit -"
        ]
    );
    assert!(events.iter().any(|e| e.starts_with("backup ")));
    let metrics = &report.migrations[0].metrics;
    assert_eq!(metrics.rows_copied, 200_000);
    assert!(metrics.bytes_backed_up > 0 && metrics.execute_ms > 0.0);
    let recorded = &applier.history(Some("Reading")).unwrap()[1].metrics;
    assert_eq!(recorded["rows_copied"], 200_000);
    assert!(recorded["backup_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(
        count(
            &db.conn(),
            "SELECT sum(value) FROM \"tabReading\" WHERE typeof(value) = 'integer'"
        ),
        3 * 200_000 * 200_001 / 2
    );
}
