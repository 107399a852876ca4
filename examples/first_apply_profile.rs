//! Where the first apply of many DocTypes spends its time, from the run's
//! events alone (a `RunObserver` timing the gap before each event).
//!
//! ```sh
//! cargo run --release --example first_apply_profile [-- N]
//! ```
//!
//! Applies N small DocTypes (default 1,000) to a fresh database in a
//! temporary directory and prints, per kind of event, how many there were
//! and the total time that passed before them: "validated" is the
//! validation (the SQL001 shadow replay), "phase execute" the per-DocType
//! set-up (savepoint, history row, the previous DocType's completion),
//! "step" the CREATE statements themselves, "verified" the read-back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use doctype_migrate::{DocType, Field, FieldType, MigrationApplier, RunEvent, RunObserver};

/// Per event kind: how many, and the total milliseconds before them.
type Totals = BTreeMap<String, (usize, f64)>;

/// The time before each event, by event kind (and when the last one was).
struct Gaps(Mutex<(Instant, Totals)>);

impl RunObserver for Gaps {
    fn on_event(&self, event: &RunEvent<'_>) {
        let name = match event {
            RunEvent::Phase { doctype, phase } => {
                format!(
                    "phase {phase}{}",
                    if doctype.is_some() {
                        " (each DocType)"
                    } else {
                        ""
                    }
                )
            }
            RunEvent::RunStarted { .. } => "run started".into(),
            RunEvent::Planned { .. } => "planned".into(),
            RunEvent::LockTaken { .. } => "lock taken".into(),
            RunEvent::Validated { .. } => "validated".into(),
            RunEvent::StepExecuted { .. } => "step".into(),
            RunEvent::Verified { .. } => "verified".into(),
            RunEvent::Committed { .. } => "committed".into(),
            RunEvent::RunFinished { .. } => "run finished".into(),
            _ => "other".into(),
        };
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let ms = now.duration_since(g.0).as_secs_f64() * 1000.0;
        g.0 = now;
        let entry = g.1.entry(name).or_default();
        entry.0 += 1;
        entry.1 += ms;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let doctypes: Vec<DocType> = (0..n)
        .map(|i| {
            DocType::new(format!("Small {i}"))
                .field(Field::new("title", FieldType::Data).indexed())
                .field(Field::new("qty", FieldType::Int))
                .field(Field::new("note", FieldType::Text))
        })
        .collect();
    let gaps = Arc::new(Gaps(Mutex::new((Instant::now(), BTreeMap::new()))));
    let mut applier = MigrationApplier::builder(dir.path().join("app.db"))
        .create_if_missing(true)
        .observer(gaps.clone())
        .build()?;
    let start = Instant::now();
    gaps.0.lock().unwrap_or_else(|e| e.into_inner()).0 = start;
    applier.sync_all(&doctypes)?;
    println!(
        "first apply of {n} DocTypes: {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    println!("{:<32} {:>6} {:>10}", "time before", "count", "total ms");
    let g = gaps.0.lock().unwrap_or_else(|e| e.into_inner());
    for (name, (count, ms)) in &g.1 {
        println!("{name:<32} {count:>6} {ms:>10.1}");
    }
    Ok(())
}
