//! Running one job over many databases: `workers` threads take the next
//! database from a shared position, the canaries first (and alone); after
//! a canary that did not end well nothing else starts, and with
//! `on_error: halt`, nothing starts after the first database that failed,
//! was unreadable or refused. Databases never started are `skipped`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::{DbOutcome, DbStatus, OnError};

/// Runs `job` over `list` (the canaries, by index into `list`, first) with
/// `workers` threads; each outcome goes to `on_outcome` as it comes.
/// Returns every outcome in list order, and why the run stopped early.
pub(crate) fn run_all(
    list: &[PathBuf],
    canaries: &[usize],
    workers: usize,
    on_error: OnError,
    job: &(dyn Fn(&Path) -> DbOutcome + Sync),
    on_outcome: &(dyn Fn(&DbOutcome) + Sync),
) -> (Vec<DbOutcome>, Option<String>) {
    let slots: Vec<Mutex<Option<DbOutcome>>> = list.iter().map(|_| Mutex::new(None)).collect();
    let stop: Mutex<Option<String>> = Mutex::new(None);
    let stopped = AtomicBool::new(false);
    let rest: Vec<usize> = (0..list.len()).filter(|i| !canaries.contains(i)).collect();
    for (phase, order) in [("canary", canaries.to_vec()), ("rest", rest)] {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        let next = AtomicUsize::new(0);
        let threads = workers.min(order.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        if stopped.load(Ordering::SeqCst) {
                            return;
                        }
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&i) = order.get(n) else { return };
                        let outcome = job(&list[i]);
                        let halt = match phase {
                            "canary" => !outcome.status.is_success(),
                            _ => on_error == OnError::Halt && outcome.status.is_problem(),
                        };
                        if halt && !stopped.swap(true, Ordering::SeqCst) {
                            let why = if phase == "canary" {
                                format!(
                                    "canary {} ended {}: the other databases were not started",
                                    outcome.db.display(),
                                    outcome.status
                                )
                            } else {
                                format!(
                                    "halted after {} ended {}",
                                    outcome.db.display(),
                                    outcome.status
                                )
                            };
                            *lock(&stop) = Some(why);
                        }
                        on_outcome(&outcome);
                        *lock(&slots[i]) = Some(outcome);
                    }
                });
            }
        });
    }
    let outcomes = slots
        .into_iter()
        .zip(list)
        .map(|(slot, db)| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| {
                    let skipped = DbOutcome::new(db, DbStatus::Skipped, Instant::now());
                    on_outcome(&skipped);
                    skipped
                })
        })
        .collect();
    (
        outcomes,
        stop.into_inner().unwrap_or_else(|e| e.into_inner()),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
