//! Quick start: the whole pipeline on the bundled sales app.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! 1. creates `target/quickstart.db` (removed first, so every run starts clean);
//! 2. applies the v1 DocTypes in `examples/doctypes/v1`;
//! 3. inserts a few customers, items and a sales order with rusqlite;
//! 4. shows the dry-run plan of `examples/doctypes/v2` (changes, forward and
//!    rollback SQL) without touching the file;
//! 5. applies v2: a rename, new columns, a Data→Int type change through a
//!    table rebuild, a new index, two unique indexes and a default change;
//! 6. prints `tabMigrationHistory` and shows the data came through.

use std::error::Error;
use std::path::{Path, PathBuf};

use doctype_migrate::{DryRunReport, MigrationApplier, RollbackOptions, load_paths};
use rusqlite::{Connection, params};

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let v1 = load_paths(&[root.join("examples/doctypes/v1")])?;
    let v2 = load_paths(&[root.join("examples/doctypes/v2")])?;

    let db = root.join("target").join("quickstart.db");
    std::fs::create_dir_all(db.parent().unwrap_or(root))?;
    remove_if_exists(&db)?;
    println!("database: {}\n", db.display());

    step("1. apply examples/doctypes/v1");
    let mut applier = MigrationApplier::builder(&db)
        .create_if_missing(true)
        .applied_by("quickstart")
        .build()?;
    for m in applier.sync_all(&v1)?.migrations {
        println!("  {} ({}): {}", m.doctype, m.table, m.status);
    }

    step("2. insert sample data");
    insert_sample_rows(applier.connection())?;
    println!("  3 customers, 3 items, 1 sales order with 2 items");

    step("3. dry run of examples/doctypes/v2 (nothing is written)");
    let preview = applier.dry_run(&v2)?;
    print_plan(&preview);

    step("4. apply examples/doctypes/v2");
    let report = applier.sync_all(&v2)?;
    for m in &report.migrations {
        println!(
            "  {} ({}): {}, {} change(s), {} row(s) copied",
            m.doctype,
            m.table,
            m.status,
            m.changes.len(),
            m.affected_rows
        );
    }
    let again = applier.sync_all(&v2)?;
    println!(
        "  applying v2 again: {} migration(s) (up to date)",
        again.migrations.len()
    );

    step("5. history (tabMigrationHistory)");
    for row in applier.history(None)? {
        println!(
            "  #{:<2} {:<17} v{} {:<9} {} change(s)",
            row.id,
            row.doctype,
            row.version,
            row.status,
            row.changes.as_array().map_or(0, Vec::len)
        );
    }

    step("6. the data after v2");
    let conn = applier.connection();
    let mut stmt = conn.prepare(
        "SELECT name, shelf_life_in_days, typeof(shelf_life_in_days), stock_uom \
         FROM \"tabItem\" ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (name, days, kind, uom) = row?;
        println!(
            "  Item {name}: shelf_life_in_days = {days} ({kind}), stock_uom = {}",
            uom.as_deref().unwrap_or("NULL")
        );
    }
    let (name, mobile): (String, Option<String>) = conn.query_row(
        "SELECT name, mobile_number FROM \"tabCustomer\" ORDER BY name LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    println!(
        "  Customer {name}: mobile_number = {} (renamed from mobile_no, value kept)",
        mobile.as_deref().unwrap_or("NULL")
    );

    drop(stmt);
    step("7. roll back v2 (the whole batch), data included");
    let batch = report.batch_id.clone().unwrap_or_default();
    let undone = applier.rollback_batch(&batch, &RollbackOptions::default())?;
    for r in &undone.rolled_back {
        println!(
            "  #{} {} ({}): rolled back, {} backup(s) restored",
            r.id,
            r.doctype,
            r.table,
            r.restores.len()
        );
    }
    let (days, kind): (String, String) = applier.connection().query_row(
        "SELECT shelf_life_in_days, typeof(shelf_life_in_days) FROM \"tabItem\" WHERE name = 'WIDGET'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    println!("  Item WIDGET: shelf_life_in_days = {days:?} ({kind}) again, as in v1");

    println!(
        "\nDone. Try the CLI on the same database:\n  \
         cargo run -- history --db {}\n  \
         cargo run -- plan --db {} --doctypes examples/doctypes/v2 --json",
        relative(&db, root).display(),
        relative(&db, root).display()
    );
    Ok(())
}

fn step(title: &str) {
    println!("== {title}");
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn insert_sample_rows(conn: &Connection) -> rusqlite::Result<()> {
    let now = "2024-03-01 12:00:00";
    for (name, territory, mobile) in [
        ("Acme Corp", "North", "+1 555 0100"),
        ("Globex", "South", "+1 555 0101"),
        ("Initech", "North", "+1 555 0102"),
    ] {
        conn.execute(
            "INSERT INTO \"tabCustomer\" (name, creation, modified, owner, customer_name, territory, mobile_no, credit_limit) \
             VALUES (?1, ?2, ?2, 'Administrator', ?1, ?3, ?4, 5000)",
            params![name, now, territory, mobile],
        )?;
    }
    // shelf_life_in_days is a Data (text) column in v1 that holds whole
    // numbers; v2 makes it an Int.
    for (code, name, rate, shelf_life) in [
        ("WIDGET", "Widget", 9.5, "365"),
        ("GADGET", "Gadget", 24.0, "730"),
        ("SPROCKET", "Sprocket", 3.25, "90"),
    ] {
        conn.execute(
            "INSERT INTO \"tabItem\" (name, creation, modified, owner, item_code, item_name, standard_rate, shelf_life_in_days) \
             VALUES (?1, ?2, ?2, 'Administrator', ?1, ?3, ?4, ?5)",
            params![code, now, name, rate, shelf_life],
        )?;
    }
    conn.execute(
        "INSERT INTO \"tabSales Order\" (name, creation, modified, owner, customer, transaction_date, grand_total) \
         VALUES ('SO-2024-00001', ?1, ?1, 'Administrator', 'Acme Corp', '2024-03-01', 67.5)",
        [now],
    )?;
    for (idx, item, qty, rate) in [(1, "WIDGET", 3.0, 9.5), (2, "GADGET", 1.5, 26.0)] {
        conn.execute(
            "INSERT INTO \"tabSales Order Item\" (name, creation, modified, owner, idx, parent, parentfield, parenttype, item_code, qty, rate, amount) \
             VALUES (?1, ?2, ?2, 'Administrator', ?3, 'SO-2024-00001', 'items', 'Sales Order', ?4, ?5, ?6, ?5 * ?6)",
            params![format!("SOI-{idx}"), now, idx, item, qty, rate],
        )?;
    }
    Ok(())
}

fn print_plan(report: &DryRunReport) {
    for dt in report.plan.pending() {
        println!("  {} ({})", dt.doctype, dt.table);
        for change in &dt.changes {
            println!("    change: {change}");
        }
        for sql in dt.forward_sql() {
            println!("    forward:  {}", one_line(&sql));
        }
        for sql in dt.rollback_sql() {
            println!("    rollback: {}", one_line(&sql));
        }
        if !dt.orphans.is_empty() {
            println!("    orphans (kept): {}", dt.orphans.join(", "));
        }
    }
    for f in &report.findings {
        println!("  finding: {f}");
    }
    println!(
        "  {} DocType(s) to migrate; blocked: {}",
        report.plan.pending().count(),
        report.blocked
    );
}

/// A statement on one line, shortened for the overview.
fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 110 {
        let cut: String = flat.chars().take(107).collect();
        format!("{cut}...")
    } else {
        flat
    }
}
