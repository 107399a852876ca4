//! Embedding the engine in an application, with the public API only.
//!
//! ```sh
//! cargo run --example embed
//! ```
//!
//! What an application built on DocTypes does with the library:
//!
//! 1. at start-up, migrates its database file (`migrate_on_start`), and
//!    again on the next start, which confirms "up to date" from
//!    fingerprints without planning (the fast path);
//! 2. previews the next release's DocTypes with a dry run (plan, SQL,
//!    findings) without writing;
//! 3. applies them while an observer of the run's events prints progress;
//! 4. reads the history and rolls the release back, data included;
//! 5. does the same over a connection it opened itself (an in-memory
//!    database with a custom SQL function), lent to the engine and given
//!    back as it was.
//!
//! Everything lives in a temporary directory.

use std::error::Error;
use std::sync::Arc;

use doctype_migrate::{
    DocType, Field, FieldType, MigrationApplier, RollbackOptions, RunEvent, RunObserver,
    load_paths, migrate_on_start,
};
use rusqlite::Connection;

/// Release 1 of the application's DocTypes, as the JSON files an app
/// ships (Frappe's format).
const RELEASE_1: [(&str, &str); 2] = [
    (
        "customer.json",
        r#"{"doctype": "DocType", "name": "Customer", "fields": [
            {"fieldname": "customer_name", "fieldtype": "Data", "reqd": 1},
            {"fieldname": "credit_limit", "fieldtype": "Currency"}]}"#,
    ),
    (
        "ticket.json",
        r#"{"doctype": "DocType", "name": "Ticket", "fields": [
            {"fieldname": "subject", "fieldtype": "Data"},
            {"fieldname": "priority", "fieldtype": "Data", "default": "Medium"}]}"#,
    ),
];

/// Release 2, built in code: a new indexed field, and `priority` becomes
/// a number.
fn release_2() -> Vec<DocType> {
    vec![
        DocType::new("Customer")
            .field(Field::new("customer_name", FieldType::Data))
            .field(Field::new("credit_limit", FieldType::Currency))
            .field(Field::new("email", FieldType::Data).indexed()),
        DocType::new("Ticket")
            .field(Field::new("subject", FieldType::Data))
            .field(Field::new("priority", FieldType::Int).default_value("2")),
    ]
}

/// Prints the run's phases and what it wrote, as a progress display or a
/// service's live view would.
struct PrintEvents;

impl RunObserver for PrintEvents {
    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Phase {
                doctype: Some(d),
                phase,
            } => println!("    [{phase}] {d}"),
            RunEvent::BackupWritten { table, bytes, .. } => {
                println!("    backup of {table} written ({bytes} bytes)")
            }
            RunEvent::Committed { migrations, .. } => {
                println!("    committed {migrations} migration(s)")
            }
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("app.db");
    let doctypes = dir.path().join("doctypes");
    std::fs::create_dir(&doctypes)?;
    for (file, json) in RELEASE_1 {
        std::fs::write(doctypes.join(file), json)?;
    }

    println!("1. start-up migration");
    let report = migrate_on_start(&db, &doctypes)?;
    println!(
        "   first start: {} DocType(s) migrated",
        report.migrations.len()
    );
    let conn = Connection::open(&db)?;
    conn.execute_batch(
        "INSERT INTO \"tabTicket\" (name, subject, priority) VALUES
            ('T-1', 'Printer on fire', '1'), ('T-2', 'Coffee', 'Low');",
    )?;
    let report = migrate_on_start(&db, &doctypes)?;
    println!(
        "   next start: up to date (fast path: {})",
        report.fast_path
    );

    println!("2. dry run of release 2");
    let mut applier = MigrationApplier::builder(&db)
        .allow_data_loss(true) // 'Low' is not a number: it will be backed up first
        .observer(Arc::new(PrintEvents))
        .build()?;
    let preview = applier.dry_run(&release_2())?;
    for plan in preview.plan.pending() {
        let kinds: Vec<String> = plan
            .changes
            .iter()
            .map(|c| format!("{:?}", c.kind))
            .collect();
        println!("   {} ({})", plan.doctype, kinds.join(", "));
        for sql in plan.forward_sql() {
            println!("     {}", sql.lines().next().unwrap_or_default());
        }
    }
    for finding in &preview.findings {
        println!("   {}: {}", finding.rule.code(), finding.message);
    }

    println!("3. apply release 2");
    let report = applier.sync_all(&release_2())?;
    let batch = report.batch_id.clone().unwrap_or_default();

    println!("4. history, then roll release 2 back");
    for row in applier.history(None)? {
        println!(
            "   #{} {} {} by {}",
            row.id, row.doctype, row.status, row.applied_by
        );
    }
    let undone = applier.rollback_batch(&batch, &RollbackOptions::default())?;
    println!("   rolled back {} migration(s)", undone.rolled_back.len());
    let low: String = conn.query_row(
        "SELECT priority FROM \"tabTicket\" WHERE name = 'T-2'",
        [],
        |r| r.get(0),
    )?;
    println!("   T-2's priority is {low:?} again (restored from its backup)");

    println!("5. the application's own connection");
    let mut own = Connection::open_in_memory()?;
    own.create_scalar_function(
        "initials",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        |ctx| {
            let text: String = ctx.get(0)?;
            Ok(text
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect::<String>())
        },
    )?;
    let release_1 = load_paths(&[doctypes])?;
    let report = MigrationApplier::lend(&mut own, |b| b, |a| a.sync_all(&release_1))?;
    println!(
        "   migrated {} DocType(s) in memory",
        report.migrations.len()
    );
    own.execute(
        "INSERT INTO \"tabCustomer\" (name, customer_name) VALUES ('C-1', initials('Acme Widget Co'))",
        [],
    )?;
    let name: String = own.query_row(
        "SELECT customer_name FROM \"tabCustomer\" WHERE name = 'C-1'",
        [],
        |r| r.get(0),
    )?;
    println!("   the connection came back with its function: {name}");
    Ok(())
}
