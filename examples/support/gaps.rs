//! `Gaps`: a run observer that sums the time before each kind of event,
//! for the benchmarks' "where the engine's time went".

#![allow(dead_code)] // each including example uses a part

use std::sync::Mutex;
use std::time::Instant;

use doctype_migrate::{RunEvent, RunObserver};

/// Time before each event of the observed runs, by kind of event, in the
/// order the kinds first came.
#[derive(Default)]
pub struct Gaps(Mutex<GapSums>);

/// The last event's time, and the milliseconds before each kind of event.
#[derive(Default)]
struct GapSums {
    last: Option<Instant>,
    sums: Vec<(String, f64)>,
}

impl GapSums {
    fn add(&mut self, name: &str, ms: f64) {
        match self.sums.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v += ms,
            None => self.sums.push((name.to_string(), ms)),
        }
    }
}

impl Gaps {
    /// Adds the sums of `other` (one run's observer) to these.
    pub fn add(&self, other: &Gaps) {
        let o = other.0.lock().unwrap();
        let mut me = self.0.lock().unwrap();
        for (k, v) in &o.sums {
            me.add(k, *v);
        }
    }

    /// The sums divided by `runs`.
    pub fn means(&self, runs: usize) -> Vec<(String, f64)> {
        self.0
            .lock()
            .unwrap()
            .sums
            .iter()
            .map(|(k, v)| (k.clone(), v / runs.max(1) as f64))
            .collect()
    }

    /// Prints the sums, one kind of event a line, in milliseconds.
    pub fn print(&self) {
        for (k, v) in &self.0.lock().unwrap().sums {
            println!("  {k:<44} {v:>9.0}");
        }
    }
}

impl RunObserver for Gaps {
    /// No: an observer that wants copy progress makes the engine copy in
    /// rowid ranges, and the split must not change what it measures.
    fn wants_rows_copied(&self) -> bool {
        false
    }

    fn on_event(&self, event: &RunEvent<'_>) {
        let name = match event {
            RunEvent::RunStarted { .. } => "run started (since the call)".to_string(),
            RunEvent::Phase { phase, .. } => format!("phase {phase}"),
            RunEvent::Planned { .. } => "planned".into(),
            RunEvent::LockTaken { .. } => "lock taken".into(),
            RunEvent::Validated { .. } => "validated".into(),
            RunEvent::StepExecuted { sql, .. } => {
                format!(
                    "step {}",
                    sql.split(' ').take(2).collect::<Vec<_>>().join(" ")
                )
            }
            RunEvent::Verified { .. } => "verified".into(),
            RunEvent::BackupWritten { .. } => "backup written (and verified)".into(),
            RunEvent::RowsCopied { .. } => "rows copied".into(),
            RunEvent::Committed { .. } => "committed".into(),
            RunEvent::RunFinished { .. } => "run finished".into(),
            _ => "other".into(),
        };
        let mut g = self.0.lock().unwrap();
        let now = Instant::now();
        if let Some(prev) = g.last {
            g.add(&name, now.duration_since(prev).as_secs_f64() * 1000.0);
        }
        g.last = Some(now);
    }
}
